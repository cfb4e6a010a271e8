//! Scheduling conflicts: what a scheduler reports when a change is given a window, and which
//! of them block scheduling (policy) and which only warn.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use smsys_core::records::change::{ChangeWindow, ConflictNote};
use smsys_core::records::{CiId, PersonId, Reference};

/// The kind of a scheduling conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// Another change on the same CI in an overlapping window.
    SameCi,
    /// Another change, in an overlapping window, on a CI this one's CIs depend on or that
    /// depends on them (within the policy's hops).
    RelatedCi,
    /// The window is not inside the maintenance window of one of its CIs.
    OutsideMaintenance,
    /// The window overlaps a freeze (blackout) window of one of its CIs or services.
    Freeze,
    /// The implementer is booked on another change in an overlapping window.
    AssigneeBooked,
}

impl ConflictKind {
    /// Every kind.
    pub const ALL: [ConflictKind; 5] = [
        ConflictKind::SameCi,
        ConflictKind::RelatedCi,
        ConflictKind::OutsideMaintenance,
        ConflictKind::Freeze,
        ConflictKind::AssigneeBooked,
    ];

    /// The kind as recorded: `same_ci`, `related_ci`, `outside_maintenance`, `freeze`,
    /// `assignee_booked`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::SameCi => "same_ci",
            ConflictKind::RelatedCi => "related_ci",
            ConflictKind::OutsideMaintenance => "outside_maintenance",
            ConflictKind::Freeze => "freeze",
            ConflictKind::AssigneeBooked => "assignee_booked",
        }
    }
}

impl fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One conflict found, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conflict {
    /// Its kind.
    pub kind: ConflictKind,
    /// What was found, for people: which change, which CI, which window.
    pub detail: String,
    /// The other change, where one is involved.
    pub with: Option<Reference>,
    /// The CI involved, where one is.
    pub ci: Option<CiId>,
}

impl Conflict {
    /// The conflict as recorded on the change.
    pub fn note(&self) -> ConflictNote {
        ConflictNote {
            kind: self.kind.as_str().to_owned(),
            detail: self.detail.clone(),
            with: self.with.clone(),
            ci: self.ci.clone(),
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// What is asked of a scheduler: may this change take this window?
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRequest<'a> {
    /// The change (its own bookings never conflict with it).
    pub change: &'a Reference,
    /// The window asked for.
    pub window: &'a ChangeWindow,
    /// The CIs it changes.
    pub cis: &'a [CiId],
    /// Who implements it.
    pub implementer: Option<&'a PersonId>,
}

/// Finds the conflicts of a window asked for a change. Its answer depends on what it was fed
/// (other changes' windows, the CI graph, freeze and maintenance calendars); `decide` asks it
/// through [`ChangePolicy::conflicts`](super::ChangePolicy::conflicts).
pub trait ConflictDetector: Send + Sync + fmt::Debug {
    /// Every conflict of `request`, in a stable order.
    fn conflicts(&self, request: &ScheduleRequest<'_>) -> Vec<Conflict>;
}

/// Which conflicts block scheduling; the others are recorded on the change as warnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictPolicy {
    /// The kinds that refuse the window.
    pub blocking: BTreeSet<ConflictKind>,
}

impl Default for ConflictPolicy {
    /// A freeze and a double-booked implementer block; the rest warn.
    fn default() -> Self {
        Self {
            blocking: [ConflictKind::Freeze, ConflictKind::AssigneeBooked]
                .into_iter()
                .collect(),
        }
    }
}

impl ConflictPolicy {
    /// Whether a conflict of `kind` blocks scheduling.
    pub fn blocks(&self, kind: ConflictKind) -> bool {
        self.blocking.contains(&kind)
    }
}
