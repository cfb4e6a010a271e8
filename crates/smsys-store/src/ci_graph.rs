//! The configuration graph's semantics, shared by the backends: which rows of a batch are
//! written, which CIs a walk may reach, and the walk itself, a breadth-first search level by
//! level (one batched lookup of the next level's CIs per level), exact and terminating on
//! cycles because each CI is taken once, at the first level that reaches it.

use std::collections::{BTreeMap, HashSet};

use smsys_core::records::{CiId, CiRow, GraphWalk};

/// The last row given for each CI (a later row replaces an earlier one, as one after the
/// other would), sorted by id, so concurrent writers touch rows in one order.
pub(crate) fn last_per_ci(rows: Vec<CiRow>) -> Vec<CiRow> {
    let mut by_id = BTreeMap::new();
    for row in rows {
        by_id.insert(row.id().clone(), row);
    }
    by_id.into_values().collect()
}

/// Whether a walk may reach (and pass through) the CI of `row`: registered, and not in the
/// walk's skipped status.
pub(crate) fn reachable(row: &CiRow, walk: &GraphWalk) -> bool {
    row.is_registered()
        && match (&walk.skip_status, row.status()) {
            (Some(skipped), Some(status)) => skipped != status,
            (None, _) | (_, None) => true,
        }
}

/// A walk in progress: the CIs seen, the level whose neighbours are asked for next, and what
/// was found so far. A backend asks [`Walker::frontier`] for the CIs whose reachable
/// neighbours (along the walk's relationship types, each way it follows them) it looks up in
/// one request, hands them to [`Walker::advance`], and repeats until the frontier is `None`.
#[derive(Debug)]
pub(crate) struct Walker {
    max_depth: Option<u32>,
    seen: HashSet<CiId>,
    frontier: Vec<CiId>,
    depth: u32,
    found: Vec<(CiId, u32)>,
}

impl Walker {
    /// A walk from `origin`, which has a registered row when `registered`: an origin without
    /// one, or a walk that follows nothing, reaches nothing.
    pub(crate) fn new(origin: &CiId, registered: bool, walk: &GraphWalk) -> Self {
        let start = registered && !walk.follow.is_empty();
        Self {
            max_depth: walk.max_depth,
            seen: std::iter::once(origin.clone()).collect(),
            frontier: if start {
                vec![origin.clone()]
            } else {
                Vec::new()
            },
            depth: 0,
            found: Vec::new(),
        }
    }

    /// The CIs (sorted) whose neighbours come next; `None` once the walk is over (nothing
    /// new was reached, or the depth bound is met).
    pub(crate) fn frontier(&self) -> Option<&[CiId]> {
        let bounded = self.max_depth.is_some_and(|max| self.depth >= max);
        (!self.frontier.is_empty() && !bounded).then_some(self.frontier.as_slice())
    }

    /// Takes the reachable neighbours of the frontier (any order, repeats allowed): those not
    /// seen before are the next level, one relationship further.
    pub(crate) fn advance(&mut self, neighbours: impl IntoIterator<Item = CiId>) {
        self.depth += 1;
        let mut next: Vec<CiId> = neighbours
            .into_iter()
            .filter(|ci| self.seen.insert(ci.clone()))
            .collect();
        next.sort_unstable();
        self.found
            .extend(next.iter().map(|ci| (ci.clone(), self.depth)));
        self.frontier = next;
    }

    /// Every CI reached, by distance then id.
    pub(crate) fn finish(self) -> Vec<(CiId, u32)> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsys_core::records::{Direction, Relationship};

    fn ci(id: &str) -> CiId {
        CiId::new(id).unwrap()
    }

    #[test]
    fn a_walk_takes_each_ci_once_at_its_first_level() {
        let walk = GraphWalk::new().follow(Relationship::RUNS_ON, Direction::Upstream);
        let mut walker = Walker::new(&ci("a"), true, &walk);
        assert_eq!(walker.frontier(), Some(&[ci("a")][..]));
        walker.advance([ci("c"), ci("b"), ci("a"), ci("c")]);
        assert_eq!(walker.frontier(), Some(&[ci("b"), ci("c")][..]));
        walker.advance([ci("a"), ci("b"), ci("d")]);
        walker.advance([ci("c")]);
        assert_eq!(walker.frontier(), None, "nothing new: over");
        assert_eq!(walker.finish(), [(ci("b"), 1), (ci("c"), 1), (ci("d"), 2)]);
        let bounded = Walker::new(&ci("a"), true, &walk.clone().max_depth(0));
        assert_eq!(bounded.frontier(), None);
        assert_eq!(Walker::new(&ci("a"), false, &walk).frontier(), None);
        assert_eq!(
            Walker::new(&ci("a"), true, &GraphWalk::new()).frontier(),
            None
        );
    }
}
