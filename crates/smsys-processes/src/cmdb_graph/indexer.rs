//! The configuration graph kept in a store's own tables: [`CiGraphIndexer`] folds the
//! `configuration_item` streams into [`CiRow`]s of a [`CiGraphStore`], so that many nodes
//! share one graph, walks included, without each folding the log.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use smsys_core::records::{
    CiEvent, CiGraphStore, CiId, CiRow, ConfigurationItem, Direction, GraphWalk,
};
use smsys_core::{
    DomainEvent, EventSourced, LogFilter, Position, Projection, ProjectionError, RecordedEvent,
    Stamp, Upcasters,
};

use super::CmdbGraphError;
use super::impact::{ImpactRules, Propagation};

/// Keeps a [`CiGraphStore`]: a [`Projection`] over the `configuration_item` category that
/// reads the rows of a batch's CIs in one [`CiGraphStore::cis`] call, folds the batch's
/// events into them (decoded through the CI upcasters, as [`CmdbGraph`](super::CmdbGraph)
/// decodes them), and writes the rows it changed with the checkpoint in one
/// [`CiGraphStore::apply`] (one transaction on SQLite and PostgreSQL).
///
/// Idempotent by stream version: an event at or below a row's version changes nothing, so a
/// batch delivered again after a crash leaves the rows as they were. A batch is decoded whole
/// before anything is written: an undecodable event fails it and writes nothing.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn smsys_core::EventStore>,
/// #     graph: std::sync::Arc<dyn smsys_core::records::CiGraphStore>) -> Result<(), Box<dyn std::error::Error>> {
/// use smsys_core::ProjectionRunner;
/// use smsys_core::records::CiId;
/// use smsys_processes::cmdb_graph::CiGraphIndexer;
/// use smsys_processes::ImpactRules;
///
/// let indexer = CiGraphIndexer::new(graph.clone());
/// ProjectionRunner::new(store).catch_up(&indexer).await?;
/// // What `CmdbGraph::impact` answers, asked of the store.
/// let affected = graph.walk(&CiId::new("srv-01")?, &ImpactRules::default().walk()).await?;
/// # Ok(()) }
/// ```
pub struct CiGraphIndexer {
    graph: Arc<dyn CiGraphStore>,
    filter: LogFilter,
    upcasters: Upcasters,
}

impl std::fmt::Debug for CiGraphIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CiGraphIndexer")
            .field("graph", &self.graph.name())
            .finish_non_exhaustive()
    }
}

impl CiGraphIndexer {
    /// An indexer writing `graph` (under the graph's name).
    pub fn new(graph: Arc<dyn CiGraphStore>) -> Self {
        Self {
            graph,
            filter: crate::stream_filter::<ConfigurationItem>(),
            upcasters: CiEvent::upcasters(),
        }
    }

    /// The graph it writes.
    pub fn graph(&self) -> &Arc<dyn CiGraphStore> {
        &self.graph
    }

    fn decode(&self, event: &RecordedEvent) -> Result<(CiId, CiEvent), ProjectionError> {
        let id = CiId::new(event.stream.entity_id()).map_err(|e| {
            ProjectionError::event(
                self.graph.name(),
                event,
                CmdbGraphError::Stream {
                    stream: event.stream.to_string(),
                    reason: e.to_string(),
                },
            )
        })?;
        let typed = self
            .upcasters
            .decode(
                event.data.event_type(),
                event.data.schema_version(),
                event.data.payload().clone(),
            )
            .map_err(|e| ProjectionError::event(self.graph.name(), event, e))?;
        Ok((id, typed))
    }
}

#[async_trait]
impl Projection for CiGraphIndexer {
    fn name(&self) -> &str {
        self.graph.name()
    }

    fn filter(&self) -> LogFilter {
        self.filter.clone()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        self.graph
            .checkpoint_for(&self.filter)
            .await
            .map_err(|e| ProjectionError::store(self.graph.name(), e))
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let mut decoded = Vec::with_capacity(events.len());
        let mut ids: Vec<CiId> = Vec::new();
        let mut slots: HashMap<CiId, usize> = HashMap::new();
        for event in events {
            if event.stream.category_str() != ConfigurationItem::CATEGORY {
                continue;
            }
            let (id, typed) = self.decode(event)?;
            let slot = *slots.entry(id.clone()).or_insert_with(|| {
                ids.push(id.clone());
                ids.len() - 1
            });
            decoded.push((event, slot, typed));
        }
        let loaded = self
            .graph
            .cis(&ids)
            .await
            .map_err(|e| ProjectionError::store(self.graph.name(), e))?;
        let mut rows: Vec<(Option<CiRow>, bool)> =
            loaded.into_iter().map(|row| (row, false)).collect();
        for (event, slot, typed) in decoded {
            let (Some((row, changed)), Some(id)) = (rows.get_mut(slot), ids.get(slot)) else {
                return Err(ProjectionError::event(
                    self.graph.name(),
                    event,
                    format!(
                        "the graph store answered {} rows for {} ids",
                        rows.len(),
                        ids.len()
                    ),
                ));
            };
            let row = match row {
                Some(row) => row,
                None => row.insert(CiRow::new(id.clone()).map_err(|e| {
                    ProjectionError::event(
                        self.graph.name(),
                        event,
                        CmdbGraphError::Stream {
                            stream: event.stream.to_string(),
                            reason: e.to_string(),
                        },
                    )
                })?),
            };
            let stamp = Stamp::of(event.data.metadata());
            *changed |= row.apply(&typed, event.version, stamp);
        }
        let changed = rows
            .into_iter()
            .filter_map(|(row, changed)| row.filter(|_| changed))
            .collect();
        self.graph
            .apply(changed, checkpoint)
            .await
            .map_err(|e| ProjectionError::store(self.graph.name(), e))
    }
}

impl ImpactRules {
    /// The walk that asks a [`CiGraphStore`] the question [`CmdbGraph::impact`](super::CmdbGraph::impact)
    /// answers under these rules: each relationship type that carries impact followed
    /// upstream (from target to source), downstream or both; retired CIs skipped unless
    /// they propagate; no depth bound. The services among the CIs reached are those whose
    /// row has the rules' service type.
    pub fn walk(&self) -> GraphWalk {
        GraphWalk {
            follow: self
                .propagation
                .iter()
                .map(|(relationship, way)| {
                    let direction = match way {
                        Propagation::TargetToSource => Direction::Upstream,
                        Propagation::SourceToTarget => Direction::Downstream,
                        Propagation::Both => Direction::Both,
                    };
                    (relationship.clone(), direction)
                })
                .collect(),
            max_depth: None,
            skip_status: (!self.retired_propagate).then(|| self.retired_status.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsys_core::records::Relationship;

    #[test]
    fn impact_rules_become_a_walk() {
        let mut rules = ImpactRules::default();
        rules
            .propagation
            .insert(Relationship::new("mirrors").unwrap(), Propagation::Both);
        rules.propagation.insert(
            Relationship::new("feeds").unwrap(),
            Propagation::SourceToTarget,
        );
        let walk = rules.walk();
        assert_eq!(walk.follow[&Relationship::RUNS_ON], Direction::Upstream);
        assert_eq!(
            walk.follow[&Relationship::new("mirrors").unwrap()],
            Direction::Both
        );
        assert_eq!(
            walk.follow[&Relationship::new("feeds").unwrap()],
            Direction::Downstream
        );
        assert_eq!(walk.skip_status.as_deref(), Some("retired"));
        assert_eq!(walk.max_depth, None);
        rules.retired_propagate = true;
        assert_eq!(rules.walk().skip_status, None);
    }
}
