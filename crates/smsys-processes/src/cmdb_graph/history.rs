//! The graph's history: every CI's events (compact), the log order across CIs, and full
//! copies of the graph every N events, so a past graph replays only from the nearest copy.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use smsys_core::records::{CiEvent, CiId, ConfigurationItem};
use smsys_core::{EventSourced, Position, Stamp};

use super::graph::{Graph, Node, Step, Sym, push_tight};

/// One event of one CI.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) position: Position,
    pub(crate) at: DateTime<Utc>,
    pub(crate) actor: Sym,
    pub(crate) step: Step,
}

/// A full copy of the graph's nodes after the first `upto` events of the log (shared nodes:
/// a copy costs a pointer per CI; a node changed later is copied then).
#[derive(Debug)]
struct Checkpoint {
    upto: usize,
    nodes: Vec<Arc<Node>>,
}

/// The graph now and its history.
#[derive(Debug, Default)]
pub(crate) struct Model {
    pub(crate) graph: Graph,
    /// Each CI's events, by CI number, in log order.
    histories: Vec<Vec<Entry>>,
    /// Every event in log order: (CI number, index in its history).
    log: Vec<(Sym, u32)>,
    checkpoints: Vec<Checkpoint>,
    pub(crate) interval: usize,
    pub(crate) checkpoint: Option<Position>,
}

impl Model {
    /// An empty model copying the graph every `interval` events.
    pub(crate) fn new(interval: usize) -> Self {
        Self {
            interval: interval.max(1),
            ..Self::default()
        }
    }

    /// Folds `event`, recorded at `position` on the CI `id` by `actor` at `at`.
    pub(crate) fn fold(
        &mut self,
        id: &CiId,
        position: Position,
        at: DateTime<Utc>,
        actor: &smsys_core::Actor,
        event: CiEvent,
    ) {
        let ci = self.graph.intern_ci(id);
        let step = self.graph.step(ci, event);
        let actor = match self.graph.names.actors.find(actor) {
            Some(n) => n,
            None => Arc::make_mut(&mut self.graph.names).actors.intern(actor),
        };
        self.graph.apply(ci, &step);
        if self.histories.len() <= ci as usize {
            self.histories.resize_with(ci as usize + 1, Vec::new);
        }
        let Some(history) = self.histories.get_mut(ci as usize) else {
            return;
        };
        let index = u32::try_from(history.len()).unwrap_or(u32::MAX);
        push_tight(
            history,
            Entry {
                position,
                at,
                actor,
                step,
            },
        );
        self.log.push((ci, index));
        if self.log.len().is_multiple_of(self.interval) {
            self.checkpoints.push(Checkpoint {
                upto: self.log.len(),
                nodes: self.graph.nodes.clone(),
            });
        }
    }

    fn entry(&self, (ci, index): (Sym, u32)) -> Option<&Entry> {
        self.histories.get(ci as usize)?.get(index as usize)
    }

    /// How many events of the log are at or before `position`.
    fn events_upto(&self, position: Position) -> usize {
        self.log
            .partition_point(|e| self.entry(*e).is_some_and(|e| e.position <= position))
    }

    /// The graph after the first `upto` events of the log.
    fn graph_upto(&self, upto: usize) -> Graph {
        let from = self.checkpoints.iter().rev().find(|c| c.upto <= upto);
        let (start, nodes) = match from {
            Some(c) => (c.upto, c.nodes.clone()),
            None => (0, Vec::new()),
        };
        let mut graph = Graph {
            names: Arc::clone(&self.graph.names),
            nodes,
        };
        graph.cover();
        for e in self.log.get(start..upto).unwrap_or_default() {
            if let Some(entry) = self.entry(*e) {
                graph.apply(e.0, &entry.step);
            }
        }
        graph
    }

    /// The graph as of `position`: every event at or before it.
    pub(crate) fn as_of(&self, position: Position) -> Graph {
        self.graph_upto(self.events_upto(position))
    }

    /// The position of the last event (in log order) that occurred at or before `instant`.
    pub(crate) fn last_at_or_before(&self, instant: DateTime<Utc>) -> Option<Position> {
        self.log
            .iter()
            .rev()
            .filter_map(|e| self.entry(*e))
            .find(|e| e.at <= instant)
            .map(|e| e.position)
    }

    fn history_of(&self, id: &CiId) -> (Sym, &[Entry]) {
        let Some(n) = self.graph.names.cis.find(id) else {
            return (0, &[]);
        };
        (n, self.histories.get(n as usize).map_or(&[], Vec::as_slice))
    }

    /// The CI `id` folded from its events at or before `position`, if it was registered by
    /// then.
    pub(crate) fn ci_as_of(&self, id: &CiId, position: Position) -> Option<ConfigurationItem> {
        let mut state = ConfigurationItem::default();
        let (ci, history) = self.history_of(id);
        for entry in history {
            if entry.position > position {
                break;
            }
            let Some(event) = self.graph.event(ci, &entry.step) else {
                continue;
            };
            let actor = self.graph.names.actors.get(entry.actor);
            state.evolve(&event, Stamp::new(actor, entry.at));
        }
        state.is_registered().then_some(state)
    }

    /// The events of the CI `id`, in log order.
    pub(crate) fn history(&self, id: &CiId) -> Vec<(Position, DateTime<Utc>, CiEvent)> {
        let (ci, history) = self.history_of(id);
        history
            .iter()
            .filter_map(|e| Some((e.position, e.at, self.graph.event(ci, &e.step)?)))
            .collect()
    }

    /// How many events it holds.
    pub(crate) fn events(&self) -> usize {
        self.log.len()
    }

    /// How many full copies of the graph it keeps.
    pub(crate) fn checkpoints(&self) -> usize {
        self.checkpoints.len()
    }
}
