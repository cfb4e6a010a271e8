//! The configuration graph (ISO/IEC 20000-1 8.2.6): every CI and its typed relationships,
//! held in memory, with impact analysis and "as of" queries over the graph's whole history.
//!
//! [`CmdbGraph`] is a [`Projection`] over the `configuration_item` category. It folds each
//! CI's events into a node (type, name, status, attributes) and typed directed edges, with
//! reverse adjacency, CI ids interned to numbers. A relationship is recorded on its source
//! and reads source -> target: `app runs_on srv` means the application needs the server.
//!
//! - [`CmdbGraph::impact`]: every CI affected, transitively, when one fails, with its
//!   distance, and the affected services, under [`ImpactRules`] (which relationship types
//!   carry impact, which way; the service type; whether retired CIs count). Exact and
//!   terminating on cyclic graphs (a breadth-first search that visits each CI once).
//! - [`CmdbGraph::path`]: the shortest path along which one CI depends on another.
//! - [`CmdbGraph::as_of`], [`CmdbGraph::as_of_instant`]: the whole graph as it stood at a
//!   past position or instant, a [`GraphSnapshot`] with the same queries;
//!   [`CmdbGraph::ci_as_of`] and [`CmdbGraph::history`]: one CI, cheaply.
//!
//! The same graph in a store's own tables, for many nodes sharing one database:
//! [`CiGraphIndexer`] keeps a [`CiGraphStore`](smsys_core::records::CiGraphStore), and
//! [`ImpactRules::walk`] asks it the question [`CmdbGraph::impact`] answers.
//!
//! See [`CmdbGraph`] for an example.

mod graph;
mod history;
mod impact;
mod indexer;
mod snapshot;

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use smsys_core::records::{CiEvent, CiId, CiType, ConfigurationItem, Relationship};
use smsys_core::{
    DomainEvent, EventSourced, LogFilter, Position, Projection, ProjectionError, RecordedEvent,
    Upcasters,
};

pub use impact::{AffectedCi, Impact, ImpactRules, Propagation};
pub use indexer::CiGraphIndexer;
pub use snapshot::{CiNode, GraphSnapshot};

use history::Model;

/// A CI with the relationships recorded on it (`ci -[relationship]-> target`), sorted.
pub type CiWithRelationships = (CiNode, Vec<(Relationship, CiId)>);

/// Why the graph refused an event.
#[derive(Debug, thiserror::Error)]
pub enum CmdbGraphError {
    /// The event's stream does not name a valid CI id.
    #[error("stream {stream} does not name a configuration item: {reason}")]
    Stream {
        /// The stream.
        stream: String,
        /// Why.
        reason: String,
    },
}

/// The configuration graph: a read model in memory, fed by a
/// [`ProjectionRunner`](smsys_core::ProjectionRunner) from the `configuration_item`
/// category.
///
/// Its checkpoint is held in memory with the graph, so a new instance starts empty and is
/// rebuilt from the start of the log; an event at or before its checkpoint changes nothing,
/// so a batch delivered again is harmless. A batch is applied whole or not at all: its
/// events are decoded (through the CI upcasters) before any is folded.
///
/// It keeps every CI's events (compact: relationship events as numbers) for
/// [`CmdbGraph::history`] and [`CmdbGraph::ci_as_of`], and a copy of the whole graph every
/// [`CmdbGraph::with_checkpoint_interval`] events (nodes shared copy-on-write with the live
/// graph, so a copy costs a pointer per CI plus the nodes changed after it) for
/// [`CmdbGraph::as_of`].
///
/// Three CIs (a service on an application on a server) and the impact of the server:
///
/// ```
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use std::sync::Arc;
/// use chrono::{TimeZone, Utc};
/// use smsys_core::records::configuration_item::CiRegistered;
/// use smsys_core::records::{CiEvent, CiId, CiType, ConfigurationItem, Relationship};
/// use smsys_core::{
///     Actor, DomainEvent, EventData, EventId, EventStore, ExpectedVersion, Metadata,
///     ProjectionRunner,
/// };
/// use smsys_processes::CmdbGraph;
/// use smsys_store::MemoryEventStore;
///
/// let store = Arc::new(MemoryEventStore::new());
/// let at = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
/// let mut n = 0;
/// let mut record = async |id: &str, event: CiEvent| -> Result<(), Box<dyn std::error::Error>> {
///     n += 1;
///     let meta = Metadata::new(EventId::from_uuid(uuid::Uuid::from_u128(n))?, Actor::new("cmdb")?, at);
///     let data = EventData::new(event.event_type(), 1, event.to_payload()?, meta)?;
///     store.append(&ConfigurationItem::stream(&id.parse()?)?, ExpectedVersion::Any, vec![data]).await?;
///     Ok(())
/// };
/// for (id, ci_type) in [("email", "service"), ("mail-app", "application"), ("srv-01", "server")] {
///     record(id, CiEvent::Registered(CiRegistered {
///         id: id.parse()?,
///         ci_type: CiType::new(ci_type)?,
///         name: id.into(),
///         description: String::new(),
///         status: "live".into(),
///         attributes: Default::default(),
///         change: None,
///     })).await?;
/// }
/// let link = |relationship, target: &str| -> Result<CiEvent, Box<dyn std::error::Error>> {
///     Ok(CiEvent::RelationshipAdded { relationship, target: target.parse()?, change: None })
/// };
/// record("mail-app", link(Relationship::RUNS_ON, "srv-01")?).await?;
/// record("email", link(Relationship::DEPENDS_ON, "mail-app")?).await?;
///
/// let graph = CmdbGraph::new();
/// ProjectionRunner::new(store).catch_up(&graph).await?;
/// let srv: CiId = "srv-01".parse()?;
/// let impact = graph.impact(&srv);
/// assert_eq!(impact.distance(&"mail-app".parse()?), Some(1));
/// assert_eq!(impact.distance(&"email".parse()?), Some(2));
/// assert_eq!(impact.services(), [CiId::new("email")?]);
/// let path = graph.path(&"email".parse()?, &srv).unwrap_or_default();
/// assert_eq!(path.len(), 2, "email -> mail-app -> srv-01");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).map_err(|e| e.to_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CmdbGraph {
    name: String,
    rules: ImpactRules,
    filter: LogFilter,
    upcasters: Upcasters,
    model: RwLock<Model>,
}

impl Default for CmdbGraph {
    fn default() -> Self {
        Self::new()
    }
}

impl CmdbGraph {
    /// The name the graph runs under by default.
    pub const DEFAULT_NAME: &'static str = "cmdb_graph.v1";

    /// How many events apart the graph is copied by default.
    pub const DEFAULT_CHECKPOINT_INTERVAL: usize = 50_000;

    /// An empty graph under the default [`ImpactRules`].
    pub fn new() -> Self {
        Self {
            name: Self::DEFAULT_NAME.to_owned(),
            rules: ImpactRules::default(),
            filter: crate::stream_filter::<ConfigurationItem>(),
            upcasters: CiEvent::upcasters(),
            model: RwLock::new(Model::new(Self::DEFAULT_CHECKPOINT_INTERVAL)),
        }
    }

    /// Under another projection name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Under other impact rules.
    pub fn with_rules(mut self, rules: ImpactRules) -> Self {
        self.rules = rules;
        self
    }

    /// Copies the whole graph every `events` events (at least 1); copies taken before keep
    /// their place.
    pub fn with_checkpoint_interval(self, events: usize) -> Self {
        self.write().interval = events.max(1);
        self
    }

    /// The impact rules.
    pub fn rules(&self) -> &ImpactRules {
        &self.rules
    }

    fn read(&self) -> RwLockReadGuard<'_, Model> {
        self.model.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Model> {
        self.model.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The registered CI `id`, as it stands.
    pub fn ci(&self, id: &CiId) -> Option<CiNode> {
        self.read().graph.ci(id)
    }

    /// The relationships recorded on `id` (`id -[relationship]-> target`), sorted.
    pub fn relationships(&self, id: &CiId) -> Vec<(Relationship, CiId)> {
        self.read().graph.edges(id, true)
    }

    /// The relationships other CIs recorded towards `id` (`source -[relationship]-> id`), as
    /// (relationship, source), sorted.
    pub fn relationships_to(&self, id: &CiId) -> Vec<(Relationship, CiId)> {
        self.read().graph.edges(id, false)
    }

    /// The CIs `ids` (`None` for one not registered), each with the relationships recorded on
    /// it, sorted, read under one lock with the position the graph has folded up to, so they
    /// all stand as of that position without copying the graph; `None` before its first
    /// batch.
    pub fn cis_as_folded(
        &self,
        ids: &[CiId],
    ) -> Option<(Position, Vec<Option<CiWithRelationships>>)> {
        let model = self.read();
        let position = model.checkpoint?;
        let cis = ids
            .iter()
            .map(|id| {
                let node = model.graph.ci(id)?;
                Some((node, model.graph.edges(id, true)))
            })
            .collect();
        Some((position, cis))
    }

    /// How many CIs are registered.
    pub fn len(&self) -> usize {
        self.read().graph.len()
    }

    /// Whether no CI is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many relationships there are.
    pub fn relationship_count(&self) -> usize {
        self.read().graph.edge_count()
    }

    /// How many events it folded.
    pub fn event_count(&self) -> usize {
        self.read().events()
    }

    /// How many copies of the whole graph it keeps for [`CmdbGraph::as_of`].
    pub fn checkpoint_count(&self) -> usize {
        self.read().checkpoints()
    }

    /// Every CI affected when `id` fails, under the graph's rules: each CI `x` with
    /// `x -[r]-> y` for an affected `y` (or `id`) and `r` carrying impact from target to
    /// source, and each `z` with `y -[r]-> z` and `r` carrying it from source to target;
    /// with its distance (the fewest relationships between), and the affected services.
    /// `id` itself is not listed. An id only named as a relationship's target and never
    /// registered is no CI: it is never listed, never passes impact on, and, like an unknown
    /// `id`, affects nothing.
    pub fn impact(&self, id: &CiId) -> Impact {
        impact::impact(&self.read().graph, &self.rules, id)
    }

    /// The impact of `id` under `rules`.
    pub fn impact_with(&self, id: &CiId, rules: &ImpactRules) -> Impact {
        impact::impact(&self.read().graph, rules, id)
    }

    /// The shortest path along which `from` depends on `to`, under the graph's rules: the
    /// CIs after `from`, each with the relationship between it and the CI before it, ending
    /// with `to`. Empty when `from` is `to` (a registered CI); `None` when `from` is not in
    /// the impact of `to`.
    pub fn path(&self, from: &CiId, to: &CiId) -> Option<Vec<(CiId, Relationship)>> {
        impact::path(&self.read().graph, &self.rules, from, to)
    }

    /// The position it has folded the log up to (its checkpoint): `None` before its first
    /// batch.
    pub fn position(&self) -> Option<Position> {
        self.read().checkpoint
    }

    /// The live graph frozen at the position it has folded up to, read under one lock so the
    /// graph and its position agree (a copy costs a pointer per CI, as a copy for
    /// [`CmdbGraph::as_of`] does); `None` before its first batch.
    pub fn current(&self) -> Option<GraphSnapshot> {
        let model = self.read();
        Some(GraphSnapshot {
            position: model.checkpoint?,
            graph: model.graph.clone(),
            rules: self.rules.clone(),
        })
    }

    /// The graph exactly as it stood at `position`: every event at or before it, replayed
    /// from the nearest copy at or before it.
    pub fn as_of(&self, position: Position) -> GraphSnapshot {
        GraphSnapshot {
            graph: self.read().as_of(position),
            position,
            rules: self.rules.clone(),
        }
    }

    /// The graph as of the last event (in log order) whose `occurred_at` is at or before
    /// `instant`: every event at or before that event's position. When `occurred_at` is not
    /// monotonic in the log, an event that occurred after `instant` but was recorded before
    /// that event is included, and one that occurred before `instant` but was recorded after
    /// it is not: the log's order decides, as it decides everything else. `None` when no
    /// event occurred at or before `instant`.
    pub fn as_of_instant(&self, instant: DateTime<Utc>) -> Option<GraphSnapshot> {
        let position = self.read().last_at_or_before(instant)?;
        Some(self.as_of(position))
    }

    /// The CI `id` exactly as it stood at `position`, if it was registered by then.
    pub fn ci_as_of(&self, id: &CiId, position: Position) -> Option<ConfigurationItem> {
        self.read().ci_as_of(id, position)
    }

    /// The CI `id` as of `instant`, under the rule of [`Self::as_of_instant`], if it was
    /// registered by then.
    pub fn ci_as_of_instant(&self, id: &CiId, instant: DateTime<Utc>) -> Option<ConfigurationItem> {
        let graph = self.read();
        let position = graph.last_at_or_before(instant)?;
        graph.ci_as_of(id, position)
    }

    /// The registered CIs of `ci_type`, sorted.
    pub fn cis_of_type(&self, ci_type: &CiType) -> Vec<CiId> {
        self.read().graph.cis_of_type(ci_type)
    }

    /// Every event of the CI `id`, in log order, with its position and `occurred_at`.
    pub fn history(&self, id: &CiId) -> Vec<(Position, DateTime<Utc>, CiEvent)> {
        self.read().history(id)
    }

    fn decode(&self, event: &RecordedEvent) -> Result<(CiId, CiEvent), ProjectionError> {
        let id = CiId::new(event.stream.entity_id()).map_err(|e| {
            ProjectionError::event(
                &self.name,
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
            .map_err(|e| ProjectionError::event(&self.name, event, e))?;
        Ok((id, typed))
    }
}

#[async_trait]
impl Projection for CmdbGraph {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        self.filter.clone()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        Ok(self.read().checkpoint)
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let held = self.read().checkpoint;
        let mut decoded = Vec::with_capacity(events.len());
        for event in events {
            if held.is_some_and(|h| event.position <= h)
                || event.stream.category_str() != ConfigurationItem::CATEGORY
            {
                continue;
            }
            let (id, typed) = self.decode(event)?;
            decoded.push((event, id, typed));
        }
        let mut model = self.write();
        let held = model.checkpoint;
        for (event, id, typed) in decoded {
            if held.is_some_and(|h| event.position <= h) {
                continue;
            }
            let metadata = event.data.metadata();
            model.fold(
                &id,
                event.position,
                metadata.occurred_at(),
                metadata.actor(),
                typed,
            );
        }
        model.checkpoint = Some(held.map_or(checkpoint, |h| h.max(checkpoint)));
        Ok(())
    }
}
