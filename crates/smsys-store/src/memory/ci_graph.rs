//! The configuration graph in memory: the reference semantics of every [`CiGraphStore`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use smsys_core::records::{CiGraphStore, CiId, CiRow, CiType, GraphWalk, Relationship};
use smsys_core::{LogFilter, Position, StoreError};

use crate::checkpoint::{Binding, CheckpointName, check_binding, filter_text};
use crate::ci_graph::{Walker, last_per_ci, reachable};

#[derive(Debug, Default)]
struct State {
    rows: BTreeMap<CiId, CiRow>,
    /// Per target, the edges pointing at it: (relationship, source).
    incoming: BTreeMap<CiId, BTreeSet<(Relationship, CiId)>>,
    checkpoint: Option<Position>,
    /// The filter the graph is bound to, as kept beside a checkpoint.
    filter: Option<String>,
}

impl State {
    fn replace(&mut self, row: CiRow) {
        let source = row.id().clone();
        if let Some(old) = self.rows.get(&source) {
            for (relationship, target) in old.relationships() {
                if let Some(edges) = self.incoming.get_mut(target) {
                    edges.remove(&(relationship.clone(), source.clone()));
                    if edges.is_empty() {
                        self.incoming.remove(target);
                    }
                }
            }
        }
        for (relationship, target) in row.relationships() {
            self.incoming
                .entry(target.clone())
                .or_default()
                .insert((relationship.clone(), source.clone()));
        }
        self.rows.insert(source, row);
    }

    fn reachable(&self, id: &CiId, walk: &GraphWalk) -> bool {
        self.rows.get(id).is_some_and(|row| reachable(row, walk))
    }

    fn walk(&self, origin: &CiId, walk: &GraphWalk) -> Vec<(CiId, u32)> {
        let registered = self.rows.get(origin).is_some_and(CiRow::is_registered);
        let (upstream, downstream) = (walk.upstream(), walk.downstream());
        let mut walker = Walker::new(origin, registered, walk);
        while let Some(frontier) = walker.frontier() {
            let mut next = Vec::new();
            for ci in frontier {
                if let Some(edges) = self.incoming.get(ci) {
                    next.extend(
                        edges
                            .iter()
                            .filter(|(r, source)| {
                                upstream.contains(&r) && self.reachable(source, walk)
                            })
                            .map(|(_, source)| source.clone()),
                    );
                }
                if let Some(row) = self.rows.get(ci) {
                    next.extend(
                        row.relationships()
                            .iter()
                            .filter(|(r, target)| {
                                downstream.contains(&r) && self.reachable(target, walk)
                            })
                            .map(|(_, target)| target.clone()),
                    );
                }
            }
            walker.advance(next);
        }
        walker.finish()
    }
}

/// A configuration graph held in memory: for tests, examples, and as the reference semantics
/// the SQLite and PostgreSQL graphs are checked against (see [`CiGraphStore`] for what each
/// method answers).
///
/// Cloning gives another handle to the same graph.
///
/// ```
/// # use smsys_core::records::{CiGraphStore, CiId, GraphWalk};
/// # use smsys_store::{CheckpointName, MemoryCiGraph};
/// # futures::executor::block_on(async {
/// let graph = MemoryCiGraph::new(CheckpointName::new("ci_graph.v1")?);
/// assert_eq!(graph.checkpoint().await?, None);
/// assert!(graph.walk(&CiId::new("srv-01")?, &GraphWalk::new()).await?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct MemoryCiGraph {
    name: CheckpointName,
    state: Arc<Mutex<State>>,
}

impl MemoryCiGraph {
    /// An empty graph named `name`.
    pub fn new(name: CheckpointName) -> Self {
        Self {
            name,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The lock is never held across code that can panic halfway through a change.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CiGraphStore for MemoryCiGraph {
    fn name(&self) -> &str {
        self.name.as_str()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, StoreError> {
        Ok(self.state().checkpoint)
    }

    async fn checkpoint_for(&self, filter: &LogFilter) -> Result<Option<Position>, StoreError> {
        let mut state = self.state();
        if check_binding(&self.name, state.filter.as_deref(), filter)? == Binding::Unbound {
            state.filter = Some(filter_text(filter));
        }
        Ok(state.checkpoint)
    }

    async fn ci(&self, id: &CiId) -> Result<Option<CiRow>, StoreError> {
        Ok(self.state().rows.get(id).cloned())
    }

    async fn cis(&self, ids: &[CiId]) -> Result<Vec<Option<CiRow>>, StoreError> {
        let state = self.state();
        Ok(ids.iter().map(|id| state.rows.get(id).cloned()).collect())
    }

    async fn apply(&self, rows: Vec<CiRow>, checkpoint: Position) -> Result<(), StoreError> {
        let rows = last_per_ci(rows);
        let mut state = self.state();
        for row in rows {
            state.replace(row);
        }
        state.checkpoint = Some(checkpoint);
        Ok(())
    }

    async fn cis_of_type(&self, ci_type: &CiType) -> Result<Vec<CiId>, StoreError> {
        Ok(self
            .state()
            .rows
            .values()
            .filter(|row| row.ci_type() == Some(ci_type))
            .map(|row| row.id().clone())
            .collect())
    }

    async fn relationships_to(&self, id: &CiId) -> Result<Vec<(Relationship, CiId)>, StoreError> {
        Ok(self
            .state()
            .incoming
            .get(id)
            .map(|edges| edges.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn walk(&self, origin: &CiId, walk: &GraphWalk) -> Result<Vec<(CiId, u32)>, StoreError> {
        Ok(self.state().walk(origin, walk))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.state().rows.len() as u64)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let mut state = self.state();
        *state = State::default();
        Ok(())
    }
}
