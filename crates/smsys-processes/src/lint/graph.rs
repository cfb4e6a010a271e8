//! The lifecycle graph the lint walks: statuses joined by transitions, searched breadth first
//! so that a finding can show the shortest path that breaks a rule.

use std::collections::{BTreeMap, VecDeque};

use crate::lifecycle::{LifecycleDefinition, Status, Transition};

/// A definition seen as a graph. It does not need the definition to be valid: transitions
/// naming unknown statuses are walked like any other.
pub(crate) struct Graph<'a> {
    definition: &'a LifecycleDefinition,
}

/// The statuses a walk reached, each with the status it was first reached from.
pub(crate) struct Walk<'a> {
    parents: BTreeMap<&'a str, Option<&'a str>>,
    order: Vec<&'a str>,
}

impl<'a> Graph<'a> {
    pub(crate) fn new(definition: &'a LifecycleDefinition) -> Self {
        Self { definition }
    }

    pub(crate) fn definition(&self) -> &'a LifecycleDefinition {
        self.definition
    }

    pub(crate) fn status(&self, name: &str) -> Option<&'a Status> {
        self.definition.statuses.iter().find(|s| s.name == name)
    }

    pub(crate) fn statuses(&self) -> &'a [Status] {
        &self.definition.statuses
    }

    pub(crate) fn transitions(&self) -> &'a [Transition] {
        &self.definition.transitions
    }

    /// Every status reachable from `starts` (themselves included) over the transitions `open`
    /// accepts.
    pub(crate) fn walk(&self, starts: &[&'a str], open: impl Fn(&Transition) -> bool) -> Walk<'a> {
        let mut walk = Walk {
            parents: BTreeMap::new(),
            order: Vec::new(),
        };
        let mut queue = VecDeque::new();
        for &start in starts {
            if walk.parents.insert(start, None).is_none() {
                walk.order.push(start);
                queue.push_back(start);
            }
        }
        while let Some(at) = queue.pop_front() {
            for t in self.definition.transitions.iter().filter(|t| open(t)) {
                if !t.from.iter().any(|f| f == at) {
                    continue;
                }
                let next = t.to.as_str();
                if !walk.parents.contains_key(next) {
                    walk.parents.insert(next, Some(at));
                    walk.order.push(next);
                    queue.push_back(next);
                }
            }
        }
        walk
    }
}

impl<'a> Walk<'a> {
    pub(crate) fn contains(&self, status: &str) -> bool {
        self.parents.contains_key(status)
    }

    /// The statuses reached, nearest first.
    pub(crate) fn reached(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.order.iter().copied()
    }

    /// The shortest path the walk found from a start to `status`, both included.
    pub(crate) fn path_to(&self, status: &'a str) -> Vec<&'a str> {
        let mut path = vec![status];
        let mut at = status;
        // Each status has one parent and starts have none, so this ends; the bound guards
        // against a map that says otherwise.
        while let Some(Some(parent)) = self.parents.get(at) {
            if path.len() > self.parents.len() {
                break;
            }
            path.push(parent);
            at = parent;
        }
        path.reverse();
        path
    }
}
