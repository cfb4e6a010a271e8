//! Impact analysis: which CIs are affected when one fails, at which distance, and the
//! shortest dependency path between two CIs; the rules that say which relationships carry
//! impact in which direction.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use smsys_core::records::{CiId, CiType, Relationship};

use super::graph::{Graph, Sym};

/// Which way a relationship carries impact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// From the target to the source: `app runs_on srv`, the server fails, the application is
    /// affected.
    TargetToSource,
    /// From the source to the target only.
    SourceToTarget,
    /// Both ways (a link where either end failing affects the other).
    Both,
}

impl Propagation {
    fn bits(self) -> u8 {
        match self {
            Propagation::TargetToSource => TO_SOURCE,
            Propagation::SourceToTarget => TO_TARGET,
            Propagation::Both => TO_SOURCE | TO_TARGET,
        }
    }
}

const TO_SOURCE: u8 = 1;
const TO_TARGET: u8 = 2;

/// What impact analysis follows, as data a product can change (serde).
///
/// By default `depends_on`, `runs_on`, `part_of` and `connects_to` carry impact from their
/// target to their source (`srv connects_to switch`: the switch failing affects the server,
/// not the other way round), other relationship types not at all; services are the CIs of
/// type `service`; CIs in status `retired` are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImpactRules {
    /// The relationship types that carry impact, and which way.
    pub propagation: BTreeMap<Relationship, Propagation>,
    /// The CI type of services.
    pub service_type: CiType,
    /// The status of retired CIs.
    pub retired_status: String,
    /// Whether retired CIs are affected and pass impact on. When `false` (the default) a
    /// retired CI other than the one asked about is neither reported nor passes impact on:
    /// it is out of service, so nothing is lost through it.
    pub retired_propagate: bool,
}

impl Default for ImpactRules {
    fn default() -> Self {
        Self {
            propagation: [
                (Relationship::DEPENDS_ON, Propagation::TargetToSource),
                (Relationship::RUNS_ON, Propagation::TargetToSource),
                (Relationship::PART_OF, Propagation::TargetToSource),
                (Relationship::CONNECTS_TO, Propagation::TargetToSource),
            ]
            .into_iter()
            .collect(),
            service_type: CiType::from_static("service"),
            retired_status: "retired".to_owned(),
            retired_propagate: false,
        }
    }
}

/// A CI affected by another, and how many relationships away.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AffectedCi {
    /// The number of relationships on the shortest path that carries the impact (at least 1).
    pub distance: u32,
    /// The CI.
    pub id: CiId,
}

/// The CIs affected when one fails, by ascending distance then id; the affected services
/// among them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Impact {
    origin: Option<CiId>,
    affected: Vec<AffectedCi>,
    services: Vec<CiId>,
}

impl Impact {
    /// The CI asked about (`None` for an empty impact made by `Default`).
    pub fn origin(&self) -> Option<&CiId> {
        self.origin.as_ref()
    }

    /// Every affected CI (not the origin), by distance, then id.
    pub fn affected(&self) -> &[AffectedCi] {
        &self.affected
    }

    /// The affected CIs of the service type, sorted by id.
    pub fn services(&self) -> &[CiId] {
        &self.services
    }

    /// The distance of `id`, when it is affected.
    pub fn distance(&self, id: &CiId) -> Option<u32> {
        self.affected
            .iter()
            .find(|a| &a.id == id)
            .map(|a| a.distance)
    }

    /// How many CIs are affected.
    pub fn len(&self) -> usize {
        self.affected.len()
    }

    /// Whether nothing is affected.
    pub fn is_empty(&self) -> bool {
        self.affected.is_empty()
    }
}

/// The rules resolved against one graph's interned values.
struct Resolved {
    /// Per relationship number, which way it carries impact.
    bits: Vec<u8>,
    retired: Option<Sym>,
}

impl Resolved {
    fn new(graph: &Graph, rules: &ImpactRules) -> Self {
        let names = &graph.names;
        let mut bits = vec![0; names.relationships.len()];
        for (relationship, way) in &rules.propagation {
            if let Some(n) = names.relationships.find(relationship)
                && let Some(slot) = bits.get_mut(n as usize)
            {
                *slot = way.bits();
            }
        }
        Self {
            bits,
            retired: if rules.retired_propagate {
                None
            } else {
                names.status(&rules.retired_status)
            },
        }
    }

    fn carries(&self, relationship: Sym, way: u8) -> bool {
        self.bits
            .get(relationship as usize)
            .is_some_and(|b| b & way != 0)
    }
}

const UNSEEN: u32 = u32::MAX;

/// Breadth-first search from `origin` along impact; calls `visit(ci, distance, from,
/// relationship)` for each CI reached (not the origin), in the order reached; stops early
/// when `visit` returns `true`. Returns whether it stopped early.
fn search(
    graph: &Graph,
    rules: &ImpactRules,
    origin: Sym,
    mut visit: impl FnMut(Sym, u32, Sym, Sym) -> bool,
) -> bool {
    let registered = |n: Sym| graph.nodes.get(n as usize).is_some_and(|n| n.registered);
    // An id only named as a relationship's target is no CI: it is never affected and never
    // passes impact on, nor is it a CI to ask about.
    if !registered(origin) {
        return false;
    }
    let resolved = Resolved::new(graph, rules);
    let mut distance = vec![UNSEEN; graph.nodes.len()];
    let mut queue = VecDeque::new();
    if let Some(d) = distance.get_mut(origin as usize) {
        *d = 0;
        queue.push_back(origin);
    }
    while let Some(y) = queue.pop_front() {
        let Some(node) = graph.nodes.get(y as usize) else {
            continue;
        };
        let d = distance.get(y as usize).copied().unwrap_or(0);
        let next = node
            .inc
            .iter()
            .filter(|e| resolved.carries(e.relationship, TO_SOURCE))
            .chain(
                node.out
                    .iter()
                    .filter(|e| resolved.carries(e.relationship, TO_TARGET)),
            );
        for edge in next {
            let Some(seen) = distance.get_mut(edge.other as usize) else {
                continue;
            };
            if *seen != UNSEEN || !registered(edge.other) {
                continue;
            }
            let retired = resolved.retired.is_some_and(|r| {
                graph
                    .nodes
                    .get(edge.other as usize)
                    .is_some_and(|n| n.registered && n.status == r)
            });
            if retired {
                continue;
            }
            *seen = d + 1;
            if visit(edge.other, d + 1, y, edge.relationship) {
                return true;
            }
            queue.push_back(edge.other);
        }
    }
    false
}

/// The impact of `id` on `graph` under `rules`.
pub(crate) fn impact(graph: &Graph, rules: &ImpactRules, id: &CiId) -> Impact {
    let mut out = Impact {
        origin: Some(id.clone()),
        ..Impact::default()
    };
    let Some(origin) = graph.names.cis.find(id) else {
        return out;
    };
    let service = graph.names.types.find(&rules.service_type);
    let mut found = Vec::new();
    search(graph, rules, origin, |ci, distance, _, _| {
        found.push((ci, distance));
        false
    });
    for (ci, distance) in found {
        let Some(id) = graph.names.cis.get(ci) else {
            continue;
        };
        let is_service = graph
            .nodes
            .get(ci as usize)
            .is_some_and(|n| n.registered && Some(n.ci_type) == service);
        if is_service {
            out.services.push(id.clone());
        }
        out.affected.push(AffectedCi {
            distance,
            id: id.clone(),
        });
    }
    out.affected.sort_unstable();
    out.services.sort_unstable();
    out
}

/// The shortest path along which `from` depends on `to`: the CIs after `from`, each with the
/// relationship that links it to the CI before it; empty when `from` is `to`; `None` when
/// `from` is not in the impact of `to`.
pub(crate) fn path(
    graph: &Graph,
    rules: &ImpactRules,
    from: &CiId,
    to: &CiId,
) -> Option<Vec<(CiId, Relationship)>> {
    let names = &graph.names;
    if from == to {
        let registered = graph.node(from).is_some_and(|(_, n)| n.registered);
        return registered.then(Vec::new);
    }
    let origin = names.cis.find(to)?;
    let target = names.cis.find(from)?;
    // Each CI reached: the CI it was reached from (the one it depends on) and how.
    let mut parent: Vec<(Sym, Sym)> = vec![(UNSEEN, UNSEEN); graph.nodes.len()];
    let found = search(graph, rules, origin, |ci, _, from, relationship| {
        if let Some(slot) = parent.get_mut(ci as usize) {
            *slot = (from, relationship);
        }
        ci == target
    });
    if !found {
        return None;
    }
    let mut steps = Vec::new();
    let mut at = target;
    while at != origin {
        let (next, relationship) = *parent.get(at as usize)?;
        steps.push((
            names.cis.get(next)?.clone(),
            names.relationships.get(relationship)?.clone(),
        ));
        at = next;
    }
    Some(steps)
}
