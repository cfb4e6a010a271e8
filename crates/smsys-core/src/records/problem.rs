//! Problems (ISO/IEC 20000-1 8.6.3) as event streams: category `problem`, the shared events,
//! and root-cause analysis, workaround, risk acceptance, duplicate and effectiveness review
//! events of their own.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{EventSourced, Stamp};
use crate::event::Actor;
use crate::records::event::Logged;
use crate::records::ids::{CiId, RecordType, Reference};
use crate::records::kind::{OwnEvents, RecordKind, TypedEvent};
use crate::records::state::RecordState;

/// A problem's own events (problem control): what root-cause analysis found, workarounds, an
/// accepted risk, and a duplicate naming the surviving problem. Each at schema version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum ProblemControlEvent {
    /// The root cause found (a later one replaces it).
    RootCauseRecorded {
        /// What the cause is.
        cause: String,
        /// How it was found (five whys, fault tree, vendor analysis, ...).
        method: String,
        /// The configuration items that contributed.
        contributing_cis: Vec<CiId>,
    },
    /// A workaround, possibly before the root cause is known (a later one replaces it).
    WorkaroundRecorded {
        /// What to do.
        text: String,
        /// Whether it is published to other processes (the service desk).
        published: bool,
    },
    /// The risk of not fixing the cause was accepted.
    RiskAccepted {
        /// Why.
        reason: String,
    },
    /// The problem duplicates another one, which survives.
    MarkedDuplicate {
        /// The surviving problem.
        of: Reference,
    },
    /// The effectiveness of the fix was reviewed: the incidents matching the problem that
    /// recurred over a window after its resolution.
    EffectivenessReviewed {
        /// The resolution reviewed (its instant).
        resolved_at: DateTime<Utc>,
        /// The window's start (exclusive).
        from: DateTime<Utc>,
        /// The window's end (inclusive).
        to: DateTime<Utc>,
        /// The incidents that recurred in the window.
        recurrences: Vec<Reference>,
        /// Whether the fix held: at most the tolerated number of recurrences.
        effective: bool,
    },
}

impl OwnEvents for ProblemControlEvent {
    const NAMES: &'static [&'static str] = &[
        "root_cause_recorded",
        "workaround_recorded",
        "risk_accepted",
        "marked_duplicate",
        "effectiveness_reviewed",
    ];

    fn name(&self) -> &'static str {
        match self {
            ProblemControlEvent::RootCauseRecorded { .. } => "root_cause_recorded",
            ProblemControlEvent::WorkaroundRecorded { .. } => "workaround_recorded",
            ProblemControlEvent::RiskAccepted { .. } => "risk_accepted",
            ProblemControlEvent::MarkedDuplicate { .. } => "marked_duplicate",
            ProblemControlEvent::EffectivenessReviewed { .. } => "effectiveness_reviewed",
        }
    }
}

/// A problem's event.
pub type ProblemEvent = TypedEvent<Problem>;

/// A problem's root cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCause {
    /// What the cause is.
    pub cause: String,
    /// How it was found.
    pub method: String,
    /// The configuration items that contributed.
    pub contributing_cis: Vec<CiId>,
}

/// A problem's workaround.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workaround {
    /// What to do.
    pub text: String,
    /// Whether it is published.
    pub published: bool,
}

/// An accepted risk: why, who accepted it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedRisk {
    /// Why.
    pub reason: String,
    /// Who accepted it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A review of whether a problem's fix held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectivenessReview {
    /// The resolution reviewed (its instant).
    pub resolved_at: DateTime<Utc>,
    /// The window's start (exclusive).
    pub from: DateTime<Utc>,
    /// The window's end (inclusive).
    pub to: DateTime<Utc>,
    /// The incidents that recurred in the window.
    pub recurrences: Vec<Reference>,
    /// Whether the fix held.
    pub effective: bool,
    /// Who recorded the review.
    pub by: Option<Actor>,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// The state of a problem, derived from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Problem {
    record: RecordState,
    root_cause: Option<RootCause>,
    workaround: Option<Workaround>,
    accepted_risk: Option<AcceptedRisk>,
    duplicate_of: Option<Reference>,
    #[serde(default)]
    review: Option<EffectivenessReview>,
    #[serde(default)]
    reviews: u32,
}

impl Problem {
    /// The root cause, once recorded.
    pub fn root_cause(&self) -> Option<&RootCause> {
        self.root_cause.as_ref()
    }
    /// The workaround, once recorded.
    pub fn workaround(&self) -> Option<&Workaround> {
        self.workaround.as_ref()
    }
    /// The accepted risk, while the problem is resolved (or closed) by accepting it.
    pub fn accepted_risk(&self) -> Option<&AcceptedRisk> {
        self.accepted_risk.as_ref()
    }
    /// The surviving problem, while this one is resolved (or closed) as its duplicate.
    pub fn duplicate_of(&self) -> Option<&Reference> {
        self.duplicate_of.as_ref()
    }
    /// The effectiveness review of the current resolution, once recorded (a reopen clears
    /// it; earlier reviews stay in the history).
    pub fn review(&self) -> Option<&EffectivenessReview> {
        self.review.as_ref()
    }
    /// How many effectiveness reviews were recorded over the problem's life.
    pub fn reviews(&self) -> u32 {
        self.reviews
    }
}

impl RecordKind for Problem {
    const RECORD_TYPE: RecordType = RecordType::from_static("problem");
    type Logged = Logged;
    type Own = ProblemControlEvent;

    fn record(&self) -> &RecordState {
        &self.record
    }
}

impl EventSourced for Problem {
    const CATEGORY: &'static str = "problem";
    const SNAPSHOT_VERSION: u32 = 2;
    type Event = ProblemEvent;

    fn evolve(&mut self, event: &ProblemEvent, stamp: Stamp<'_>) {
        match event {
            TypedEvent::Logged(logged) => self.record.log(logged, stamp),
            TypedEvent::Record(e) => {
                // A problem open again is no longer settled by an accepted risk or as a
                // duplicate, and its fix's review is history, as its resolution is undone.
                if self.record.apply_reopening(e, stamp) {
                    self.accepted_risk = None;
                    self.duplicate_of = None;
                    self.review = None;
                }
            }
            TypedEvent::Own(e) => self.apply_own(e, stamp),
        }
    }
}

impl Problem {
    fn apply_own(&mut self, event: &ProblemControlEvent, stamp: Stamp<'_>) {
        match event {
            ProblemControlEvent::RootCauseRecorded {
                cause,
                method,
                contributing_cis,
            } => {
                self.root_cause = Some(RootCause {
                    cause: cause.clone(),
                    method: method.clone(),
                    contributing_cis: contributing_cis.clone(),
                });
            }
            ProblemControlEvent::WorkaroundRecorded { text, published } => {
                self.workaround = Some(Workaround {
                    text: text.clone(),
                    published: *published,
                });
            }
            ProblemControlEvent::RiskAccepted { reason } => {
                self.accepted_risk = Some(AcceptedRisk {
                    reason: reason.clone(),
                    by: stamp.actor().cloned(),
                    at: stamp.at(),
                });
            }
            ProblemControlEvent::MarkedDuplicate { of } => self.duplicate_of = Some(of.clone()),
            ProblemControlEvent::EffectivenessReviewed {
                resolved_at,
                from,
                to,
                recurrences,
                effective,
            } => {
                self.review = Some(EffectivenessReview {
                    resolved_at: *resolved_at,
                    from: *from,
                    to: *to,
                    recurrences: recurrences.clone(),
                    effective: *effective,
                    by: stamp.actor().cloned(),
                    at: stamp.at(),
                });
                self.reviews += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_event_names_are_distinct_from_the_shared_ones() {
        assert_eq!(ProblemEvent::name_clash(), None);
    }
}
