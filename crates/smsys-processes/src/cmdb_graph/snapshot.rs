//! A graph frozen at a position: the same queries as the live graph.

use serde::{Deserialize, Serialize};
use smsys_core::Position;
use smsys_core::records::{Attributes, CiId, CiType, Relationship};

use super::graph::Graph;
use super::impact::{self, Impact, ImpactRules};

/// A registered CI as the graph holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiNode {
    /// Its id.
    pub id: CiId,
    /// Its type.
    pub ci_type: CiType,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: String,
    /// Its attributes.
    pub attributes: Attributes,
}

impl Graph {
    /// The registered CIs of `ci_type`, sorted.
    pub(crate) fn cis_of_type(&self, ci_type: &CiType) -> Vec<CiId> {
        let Some(wanted) = self.names.types.find(ci_type) else {
            return Vec::new();
        };
        let mut out: Vec<CiId> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.registered && n.ci_type == wanted)
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .filter_map(|i| self.names.cis.get(i).cloned())
            .collect();
        out.sort();
        out
    }

    /// The registered CI `id`.
    pub(crate) fn ci(&self, id: &CiId) -> Option<CiNode> {
        let (_, node) = self.node(id)?;
        Some(CiNode {
            id: id.clone(),
            ci_type: self.names.types.get(node.ci_type)?.clone(),
            name: node.name.to_string(),
            status: self.names.statuses.get(node.status)?.to_string(),
            attributes: node.attributes.iter().cloned().collect(),
        })
    }
}

/// The CI graph as it stood at a past position of the log, immutable: built by
/// [`CmdbGraph::as_of`](super::CmdbGraph::as_of), answering what the live graph answers.
#[derive(Debug, Clone)]
pub struct GraphSnapshot {
    pub(crate) graph: Graph,
    pub(crate) position: Position,
    pub(crate) rules: ImpactRules,
}

impl GraphSnapshot {
    /// The position it stands at: it holds every event at or before it.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The registered CI `id`, as it stood.
    pub fn ci(&self, id: &CiId) -> Option<CiNode> {
        self.graph.ci(id)
    }

    /// The CIs of `ci_type` registered then, sorted.
    pub fn cis_of_type(&self, ci_type: &CiType) -> Vec<CiId> {
        self.graph.cis_of_type(ci_type)
    }

    /// The relationships recorded on `id` (`id -[relationship]-> target`), sorted.
    pub fn relationships(&self, id: &CiId) -> Vec<(Relationship, CiId)> {
        self.graph.edges(id, true)
    }

    /// The relationships other CIs recorded towards `id` (`source -[relationship]-> id`), as
    /// (relationship, source), sorted.
    pub fn relationships_to(&self, id: &CiId) -> Vec<(Relationship, CiId)> {
        self.graph.edges(id, false)
    }

    /// How many CIs were registered.
    pub fn len(&self) -> usize {
        self.graph.len()
    }

    /// Whether no CI was registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many relationships there were.
    pub fn relationship_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The impact of `id` under the rules of the graph it was taken from.
    pub fn impact(&self, id: &CiId) -> Impact {
        impact::impact(&self.graph, &self.rules, id)
    }

    /// The impact of `id` under `rules`.
    pub fn impact_with(&self, id: &CiId, rules: &ImpactRules) -> Impact {
        impact::impact(&self.graph, rules, id)
    }

    /// The shortest path along which `from` depends on `to` (see
    /// [`CmdbGraph::path`](super::CmdbGraph::path)).
    pub fn path(&self, from: &CiId, to: &CiId) -> Option<Vec<(CiId, Relationship)>> {
        impact::path(&self.graph, &self.rules, from, to)
    }
}
