//! The graph itself: CI ids, types, statuses, relationship types and actors interned to
//! numbers; one node per CI, shared copy-on-write (`Arc`) with the checkpoints, holding its
//! outgoing and incoming edges.

use std::sync::Arc;

use smsys_core::Actor;
use smsys_core::records::configuration_item::CiRegistered;
use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, CiEvent, CiId, CiType, Reference, Relationship,
};

/// Attributes, compact: sorted by name, without repeats (a `BTreeMap` allocates room for
/// eleven entries at once).
pub(crate) type Pairs = Box<[(AttributeName, AttributeValue)]>;

fn pairs(attributes: Attributes) -> Pairs {
    attributes.into_iter().collect()
}

/// Pushes `value`, growing `list` one slot at a time while it is short: most CIs hold a
/// few edges and events, and doubling would leave half their room empty.
pub(crate) fn push_tight<T>(list: &mut Vec<T>, value: T) {
    if list.len() == list.capacity() && list.len() < 8 {
        list.reserve_exact(1);
    }
    list.push(value);
}

pub(crate) use crate::intern::{Sym, Symbols};

/// Every interned value. Append-only: a number, once given, names the same value for ever,
/// so a snapshot may read a later interner than the graph it holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    pub(crate) cis: Symbols<CiId>,
    pub(crate) types: Symbols<CiType>,
    pub(crate) statuses: Symbols<Box<str>>,
    pub(crate) relationships: Symbols<Relationship>,
    pub(crate) actors: Symbols<Actor>,
}

impl Interner {
    /// The number of the status `status`, if some CI ever had it.
    pub(crate) fn status(&self, status: &str) -> Option<Sym> {
        self.statuses.find(&Box::from(status))
    }
}

/// A typed edge seen from one end: the CI at the other end and the relationship type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    pub(crate) other: Sym,
    pub(crate) relationship: Sym,
}

/// One CI: what it is now and its edges both ways.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub(crate) registered: bool,
    pub(crate) ci_type: Sym,
    pub(crate) status: Sym,
    pub(crate) name: Box<str>,
    pub(crate) attributes: Pairs,
    /// `self -[relationship]-> other`, without repeats.
    pub(crate) out: Vec<Edge>,
    /// `other -[relationship]-> self`, without repeats.
    pub(crate) inc: Vec<Edge>,
}

/// What one CI event does to the graph, compact: relationship events (most of a CMDB's
/// events) hold numbers, the others the decoded event.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// A relationship added (`added`) or removed.
    Relationship {
        added: bool,
        relationship: Sym,
        target: Sym,
        change: Option<Box<Reference>>,
    },
    /// Registration.
    Registered(Box<Registered>),
    /// Attributes set and removed.
    Attributes(Box<AttributeChange>),
    /// Any other event.
    Other(Box<CiEvent>),
}

/// A registration, compact.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    /// The id the event names, when it is not its stream's.
    id: Option<Box<CiId>>,
    ci_type: Sym,
    status: Sym,
    name: Box<str>,
    description: Box<str>,
    attributes: Pairs,
    change: Option<Reference>,
}

/// An attribute update, compact.
#[derive(Debug, Clone)]
pub(crate) struct AttributeChange {
    set: Pairs,
    removed: Box<[AttributeName]>,
    change: Option<Reference>,
}

/// The nodes of every interned CI (by number) and the interned values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    pub(crate) names: Arc<Interner>,
    pub(crate) nodes: Vec<Arc<Node>>,
}

impl Graph {
    /// The number of `id`, interning it (and giving it an empty node) the first time.
    pub(crate) fn intern_ci(&mut self, id: &CiId) -> Sym {
        if let Some(n) = self.names.cis.find(id) {
            return n;
        }
        let n = Arc::make_mut(&mut self.names).cis.intern(id);
        self.cover();
        n
    }

    /// Gives every interned CI a node (an empty one, shared, for those without).
    pub(crate) fn cover(&mut self) {
        let len = self.names.cis.len();
        if self.nodes.len() < len {
            let empty = Arc::new(Node::default());
            self.nodes.resize(len, empty);
        }
    }

    /// The step of `event` recorded on the CI `ci`, interning what it names.
    pub(crate) fn step(&mut self, ci: Sym, event: CiEvent) -> Step {
        match event {
            CiEvent::RelationshipAdded {
                relationship,
                target,
                change,
            } => self.relationship_step(true, &relationship, &target, change),
            CiEvent::RelationshipRemoved {
                relationship,
                target,
                change,
            } => self.relationship_step(false, &relationship, &target, change),
            CiEvent::Registered(r) => {
                let own = self.names.cis.get(ci) == Some(&r.id);
                let names = Arc::make_mut(&mut self.names);
                Step::Registered(Box::new(Registered {
                    id: (!own).then(|| Box::new(r.id)),
                    ci_type: names.types.intern(&r.ci_type),
                    status: names.statuses.intern(&Box::from(r.status.as_str())),
                    name: r.name.into(),
                    description: r.description.into(),
                    attributes: pairs(r.attributes),
                    change: r.change,
                }))
            }
            CiEvent::AttributesUpdated {
                set,
                removed,
                change,
            } => Step::Attributes(Box::new(AttributeChange {
                set: pairs(set),
                removed: removed.into(),
                change,
            })),
            CiEvent::StatusChanged {
                from,
                to,
                reason,
                change,
            } => {
                if self.names.status(&to).is_none() {
                    Arc::make_mut(&mut self.names)
                        .statuses
                        .intern(&Box::from(to.as_str()));
                }
                Step::Other(Box::new(CiEvent::StatusChanged {
                    from,
                    to,
                    reason,
                    change,
                }))
            }
            event @ CiEvent::Described { .. } => Step::Other(Box::new(event)),
        }
    }

    fn relationship_step(
        &mut self,
        added: bool,
        relationship: &Relationship,
        target: &CiId,
        change: Option<smsys_core::records::Reference>,
    ) -> Step {
        let target = self.intern_ci(target);
        let relationship = match self.names.relationships.find(relationship) {
            Some(n) => n,
            None => Arc::make_mut(&mut self.names)
                .relationships
                .intern(relationship),
        };
        Step::Relationship {
            added,
            relationship,
            target,
            change: change.map(Box::new),
        }
    }

    /// Applies `step`, recorded on the CI numbered `ci`. Total: relationship sets behave as
    /// the CI's own state does (adding one held, or removing one not held, changes nothing).
    pub(crate) fn apply(&mut self, ci: Sym, step: &Step) {
        self.cover();
        match step {
            Step::Relationship {
                added,
                relationship,
                target,
                ..
            } => {
                let out = Edge {
                    other: *target,
                    relationship: *relationship,
                };
                let inc = Edge {
                    other: ci,
                    relationship: *relationship,
                };
                let held = self
                    .nodes
                    .get(ci as usize)
                    .is_some_and(|n| n.out.contains(&out));
                if *added == held {
                    return;
                }
                if let Some(node) = self.nodes.get_mut(ci as usize) {
                    let node = Arc::make_mut(node);
                    if *added {
                        push_tight(&mut node.out, out);
                    } else if let Some(i) = node.out.iter().position(|e| *e == out) {
                        node.out.swap_remove(i);
                    }
                }
                if let Some(node) = self.nodes.get_mut(*target as usize) {
                    let node = Arc::make_mut(node);
                    if *added {
                        push_tight(&mut node.inc, inc);
                    } else if let Some(i) = node.inc.iter().position(|e| *e == inc) {
                        node.inc.swap_remove(i);
                    }
                }
            }
            Step::Registered(r) => {
                if let Some(node) = self.nodes.get_mut(ci as usize) {
                    let node = Arc::make_mut(node);
                    node.registered = true;
                    node.ci_type = r.ci_type;
                    node.status = r.status;
                    node.name.clone_from(&r.name);
                    node.attributes.clone_from(&r.attributes);
                }
            }
            Step::Attributes(a) => {
                if let Some(node) = self.nodes.get_mut(ci as usize) {
                    let node = Arc::make_mut(node);
                    let mut attributes: Attributes = node.attributes.iter().cloned().collect();
                    for name in &a.removed {
                        attributes.remove(name);
                    }
                    for (name, value) in &a.set {
                        attributes.insert(name.clone(), value.clone());
                    }
                    node.attributes = pairs(attributes);
                }
            }
            Step::Other(event) => {
                let names = Arc::clone(&self.names);
                let Some(node) = self.nodes.get_mut(ci as usize) else {
                    return;
                };
                let node = Arc::make_mut(node);
                match &**event {
                    CiEvent::Described { name, .. } => node.name = name.as_str().into(),
                    CiEvent::StatusChanged { to, .. } => {
                        node.status = names.status(to).unwrap_or(Sym::MAX);
                    }
                    CiEvent::Registered(_)
                    | CiEvent::AttributesUpdated { .. }
                    | CiEvent::RelationshipAdded { .. }
                    | CiEvent::RelationshipRemoved { .. } => {}
                }
            }
        }
    }

    /// The event `step`, recorded on the CI `ci`, was made from.
    pub(crate) fn event(&self, ci: Sym, step: &Step) -> Option<CiEvent> {
        let names = &self.names;
        match step {
            Step::Registered(r) => Some(CiEvent::Registered(CiRegistered {
                id: match &r.id {
                    Some(id) => (**id).clone(),
                    None => names.cis.get(ci)?.clone(),
                },
                ci_type: names.types.get(r.ci_type)?.clone(),
                name: r.name.to_string(),
                description: r.description.to_string(),
                status: names.statuses.get(r.status)?.to_string(),
                attributes: r.attributes.iter().cloned().collect(),
                change: r.change.clone(),
            })),
            Step::Attributes(a) => Some(CiEvent::AttributesUpdated {
                set: a.set.iter().cloned().collect(),
                removed: a.removed.to_vec(),
                change: a.change.clone(),
            }),
            Step::Relationship {
                added,
                relationship,
                target,
                change,
            } => {
                let relationship = self.names.relationships.get(*relationship)?.clone();
                let target = self.names.cis.get(*target)?.clone();
                let change = change.as_deref().cloned();
                Some(if *added {
                    CiEvent::RelationshipAdded {
                        relationship,
                        target,
                        change,
                    }
                } else {
                    CiEvent::RelationshipRemoved {
                        relationship,
                        target,
                        change,
                    }
                })
            }
            Step::Other(event) => Some((**event).clone()),
        }
    }

    /// The node of `id`, if it was registered.
    pub(crate) fn node(&self, id: &CiId) -> Option<(Sym, &Node)> {
        let n = self.names.cis.find(id)?;
        let node = self.nodes.get(n as usize)?;
        node.registered.then_some((n, &**node))
    }

    /// The registered CIs.
    pub(crate) fn len(&self) -> usize {
        self.nodes.iter().filter(|n| n.registered).count()
    }

    /// The edges.
    pub(crate) fn edge_count(&self) -> usize {
        self.nodes.iter().map(|n| n.out.len()).sum()
    }

    /// The edges of `id`, outgoing (`outgoing`) or incoming, as (relationship, other CI),
    /// sorted.
    pub(crate) fn edges(&self, id: &CiId, outgoing: bool) -> Vec<(Relationship, CiId)> {
        let Some(n) = self.names.cis.find(id) else {
            return Vec::new();
        };
        let Some(node) = self.nodes.get(n as usize) else {
            return Vec::new();
        };
        let list = if outgoing { &node.out } else { &node.inc };
        let mut edges: Vec<(Relationship, CiId)> = list
            .iter()
            .filter_map(|e| {
                Some((
                    self.names.relationships.get(e.relationship)?.clone(),
                    self.names.cis.get(e.other)?.clone(),
                ))
            })
            .collect();
        edges.sort();
        edges
    }
}
