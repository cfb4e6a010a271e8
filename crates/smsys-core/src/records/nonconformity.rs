//! Nonconformities and corrective action (ISO/IEC 20000-1 10.1) as event streams: category
//! `nonconformity`, references like `NC-0001`, the shared events, and the correction, cause
//! analysis, corrective action and effectiveness review events of their own.
//!
//! A nonconformity is raised from a source ([`NonconformitySource`]): a breached SLA target,
//! a failed change, an audit finding, a complaint, or manually, naming the source record
//! where there is one. The immediate correction comes first, then the analysis of its cause,
//! the corrective actions (each with an owner and a due date) and their implementation, and
//! a review of the actions' effectiveness. An ineffective review opens a new round: the cause
//! is analysed again, new actions are planned, implemented and reviewed. Every correction,
//! analysis, plan, implementation and review is retained in the order recorded, with the
//! round it belongs to ([`Nonconformity::round`]): a second analysis never overwrites the
//! first.
//!
//! The rules (the lifecycle, the guards on closure, the segregation of the reviewer from the
//! action owners) are in `smsys-processes`.
//!
//! ```
//! use smsys_core::records::nonconformity::NonconformitySource;
//! use smsys_core::records::{Nonconformity, RecordKind};
//! use smsys_core::EventSourced;
//! assert_eq!(Nonconformity::CATEGORY, "nonconformity");
//! let source = NonconformitySource::FailedChange { change: "CHG-0007".parse()? };
//! assert_eq!(source.as_str(), "failed_change");
//! assert_eq!(source.record().map(|r| r.as_str()), Some("CHG-0007"));
//! assert_eq!(Nonconformity::default().round(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{EventSourced, Stamp};
use crate::event::Actor;
use crate::records::event::Logged;
use crate::records::ids::{PersonId, RecordType, Reference};
use crate::records::kind::{LoggedEvent, OwnEvents, RecordKind, TypedEvent};
use crate::records::state::RecordState;

/// Where a nonconformity comes from, with the source record where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NonconformitySource {
    /// An SLA target was missed on a record (an incident, a service request, ...).
    SlaBreach {
        /// The record whose target was missed.
        record: Reference,
        /// The timer that breached.
        timer: String,
    },
    /// A change failed.
    FailedChange {
        /// The change.
        change: Reference,
    },
    /// An internal or external audit found it.
    AuditFinding {
        /// The audit and finding it names, e.g. `internal audit 2026-Q4, finding 3`.
        audit: String,
    },
    /// A customer complained, possibly about a record.
    Complaint {
        /// The record complained about, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<Reference>,
    },
    /// Raised by hand.
    Manual,
}

impl NonconformitySource {
    /// The kind of source as recorded: `sla_breach`, `failed_change`, `audit_finding`,
    /// `complaint` or `manual`.
    pub fn as_str(&self) -> &'static str {
        match self {
            NonconformitySource::SlaBreach { .. } => "sla_breach",
            NonconformitySource::FailedChange { .. } => "failed_change",
            NonconformitySource::AuditFinding { .. } => "audit_finding",
            NonconformitySource::Complaint { .. } => "complaint",
            NonconformitySource::Manual => "manual",
        }
    }

    /// The source record, where there is one.
    pub fn record(&self) -> Option<&Reference> {
        match self {
            NonconformitySource::SlaBreach { record, .. } => Some(record),
            NonconformitySource::FailedChange { change } => Some(change),
            NonconformitySource::Complaint { record } => record.as_ref(),
            NonconformitySource::AuditFinding { .. } | NonconformitySource::Manual => None,
        }
    }
}

/// A nonconformity's logged payload: the shared fields (the caller is who raised it) and its
/// source. Stored at the shared logged schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NonconformityLogged {
    /// The shared fields.
    #[serde(flatten)]
    pub record: Logged,
    /// Where it comes from.
    pub source: NonconformitySource,
}

impl LoggedEvent for NonconformityLogged {
    fn logged(&self) -> &Logged {
        &self.record
    }
}

/// One corrective action: what is done, who owns it, by when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectiveAction {
    /// What is done to remove the cause.
    pub description: String,
    /// Who owns it.
    pub owner: PersonId,
    /// By when it is done.
    pub due: NaiveDate,
}

/// A nonconformity's own events: correction, cause analysis, corrective action and the
/// review of its effectiveness. Each at schema version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum CorrectiveActionEvent {
    /// The immediate correction: what was done to contain the nonconformity and its
    /// consequences.
    Corrected {
        /// What was done.
        correction: String,
    },
    /// Its cause was analysed.
    CauseAnalysed {
        /// The cause found.
        cause: String,
        /// How it was found, e.g. `five whys`.
        method: String,
    },
    /// Corrective actions were planned to remove the cause.
    ActionPlanned {
        /// The actions, each with an owner and a due date.
        actions: Vec<CorrectiveAction>,
    },
    /// The planned actions were implemented.
    ActionImplemented {
        /// What was done.
        notes: String,
    },
    /// The effectiveness of the actions was reviewed; an ineffective review opens a new round
    /// of cause analysis.
    EffectivenessReviewed {
        /// Whether the actions removed the cause.
        effective: bool,
        /// What the review found.
        findings: String,
    },
}

impl OwnEvents for CorrectiveActionEvent {
    const NAMES: &'static [&'static str] = &[
        "corrected",
        "cause_analysed",
        "action_planned",
        "action_implemented",
        "effectiveness_reviewed",
    ];

    fn name(&self) -> &'static str {
        match self {
            CorrectiveActionEvent::Corrected { .. } => "corrected",
            CorrectiveActionEvent::CauseAnalysed { .. } => "cause_analysed",
            CorrectiveActionEvent::ActionPlanned { .. } => "action_planned",
            CorrectiveActionEvent::ActionImplemented { .. } => "action_implemented",
            CorrectiveActionEvent::EffectivenessReviewed { .. } => "effectiveness_reviewed",
        }
    }
}

/// A nonconformity's event (logged, shared or its own).
pub type NonconformityEvent = TypedEvent<Nonconformity>;

/// One retained step of the corrective action: what it recorded, the round it belongs to
/// (1 for the first; each ineffective review starts the next), who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step<T> {
    /// What was recorded.
    pub what: T,
    /// The round it belongs to.
    pub round: u32,
    /// Who recorded it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A cause analysis: the cause and how it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CauseAnalysis {
    /// The cause found.
    pub cause: String,
    /// How it was found.
    pub method: String,
}

/// An effectiveness review: whether the actions removed the cause, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectivenessReview {
    /// Whether the actions removed the cause.
    pub effective: bool,
    /// What the review found.
    pub findings: String,
}

/// The state of a nonconformity, derived from its events: every step retained.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Nonconformity {
    record: RecordState,
    source: Option<NonconformitySource>,
    ineffective: u32,
    corrections: Vec<Step<String>>,
    analyses: Vec<Step<CauseAnalysis>>,
    plans: Vec<Step<Vec<CorrectiveAction>>>,
    implementations: Vec<Step<String>>,
    reviews: Vec<Step<EffectivenessReview>>,
}

impl Nonconformity {
    /// Where it comes from, once logged.
    pub fn source(&self) -> Option<&NonconformitySource> {
        self.source.as_ref()
    }
    /// The current round of corrective action: 1, and one more after each ineffective review.
    pub fn round(&self) -> u32 {
        self.ineffective.saturating_add(1)
    }
    /// Every correction, oldest first.
    pub fn corrections(&self) -> &[Step<String>] {
        &self.corrections
    }
    /// Every cause analysis, oldest first (one per round at most).
    pub fn analyses(&self) -> &[Step<CauseAnalysis>] {
        &self.analyses
    }
    /// Every plan of corrective actions, oldest first.
    pub fn plans(&self) -> &[Step<Vec<CorrectiveAction>>] {
        &self.plans
    }
    /// Every implementation of a plan, oldest first.
    pub fn implementations(&self) -> &[Step<String>] {
        &self.implementations
    }
    /// Every effectiveness review, oldest first.
    pub fn reviews(&self) -> &[Step<EffectivenessReview>] {
        &self.reviews
    }
    /// The cause analysis of the current round, once recorded.
    pub fn analysis(&self) -> Option<&Step<CauseAnalysis>> {
        current(&self.analyses, self.round())
    }
    /// The plan of the current round, once recorded.
    pub fn plan(&self) -> Option<&Step<Vec<CorrectiveAction>>> {
        current(&self.plans, self.round())
    }
    /// The implementation of the current round's plan, once recorded.
    pub fn implementation(&self) -> Option<&Step<String>> {
        current(&self.implementations, self.round())
    }
    /// The review that found the actions effective, once recorded.
    pub fn effective_review(&self) -> Option<&Step<EffectivenessReview>> {
        self.reviews.iter().rev().find(|r| r.what.effective)
    }
    /// Whether `person` owns one of the current round's actions.
    pub fn owns_action(&self, person: &PersonId) -> bool {
        self.plan()
            .is_some_and(|p| p.what.iter().any(|a| &a.owner == person))
    }
}

fn current<T>(steps: &[Step<T>], round: u32) -> Option<&Step<T>> {
    steps.last().filter(|s| s.round == round)
}

impl RecordKind for Nonconformity {
    const RECORD_TYPE: RecordType = RecordType::from_static("nonconformity");
    type Logged = NonconformityLogged;
    type Own = CorrectiveActionEvent;

    fn record(&self) -> &RecordState {
        &self.record
    }
}

impl EventSourced for Nonconformity {
    const CATEGORY: &'static str = "nonconformity";
    const SNAPSHOT_VERSION: u32 = 1;
    type Event = NonconformityEvent;

    fn evolve(&mut self, event: &NonconformityEvent, stamp: Stamp<'_>) {
        match event {
            TypedEvent::Logged(logged) => {
                self.record.log(&logged.record, stamp);
                self.source = Some(logged.source.clone());
            }
            TypedEvent::Record(e) => self.record.apply(e, stamp),
            TypedEvent::Own(e) => self.apply_own(e, stamp),
        }
    }
}

impl Nonconformity {
    fn step<T>(&self, what: T, stamp: Stamp<'_>) -> Step<T> {
        Step {
            what,
            round: self.round(),
            by: stamp.actor().cloned(),
            at: stamp.at(),
        }
    }

    fn apply_own(&mut self, event: &CorrectiveActionEvent, stamp: Stamp<'_>) {
        match event {
            CorrectiveActionEvent::Corrected { correction } => {
                let step = self.step(correction.clone(), stamp);
                self.corrections.push(step);
            }
            CorrectiveActionEvent::CauseAnalysed { cause, method } => {
                let analysis = CauseAnalysis {
                    cause: cause.clone(),
                    method: method.clone(),
                };
                let step = self.step(analysis, stamp);
                self.analyses.push(step);
            }
            CorrectiveActionEvent::ActionPlanned { actions } => {
                let step = self.step(actions.clone(), stamp);
                self.plans.push(step);
            }
            CorrectiveActionEvent::ActionImplemented { notes } => {
                let step = self.step(notes.clone(), stamp);
                self.implementations.push(step);
            }
            CorrectiveActionEvent::EffectivenessReviewed {
                effective,
                findings,
            } => {
                let review = EffectivenessReview {
                    effective: *effective,
                    findings: findings.clone(),
                };
                let step = self.step(review, stamp);
                self.reviews.push(step);
                if !effective {
                    self.ineffective = self.ineffective.saturating_add(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_event_names_are_distinct_from_the_shared_ones() {
        assert_eq!(NonconformityEvent::name_clash(), None);
    }

    #[test]
    fn an_ineffective_review_opens_a_new_round_and_keeps_the_first() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let stamp = Stamp::new(None, at);
        let mut nc = Nonconformity::default();
        let analysed = |cause: &str| {
            TypedEvent::Own(CorrectiveActionEvent::CauseAnalysed {
                cause: cause.into(),
                method: "five whys".into(),
            })
        };
        nc.evolve(&analysed("first"), stamp);
        let review = TypedEvent::Own(CorrectiveActionEvent::EffectivenessReviewed {
            effective: false,
            findings: "recurred".into(),
        });
        nc.evolve(&review, stamp);
        assert_eq!(nc.round(), 2);
        assert!(nc.analysis().is_none(), "the new round has no analysis yet");
        nc.evolve(&analysed("second"), stamp);
        let causes: Vec<&str> = nc
            .analyses()
            .iter()
            .map(|a| a.what.cause.as_str())
            .collect();
        assert_eq!(causes, ["first", "second"]);
        assert_eq!(nc.analysis().map(|a| a.round), Some(2));
        assert!(nc.effective_review().is_none());
    }

    #[test]
    fn sources_name_their_record() {
        let manual = NonconformitySource::Manual;
        assert_eq!((manual.as_str(), manual.record()), ("manual", None));
        let complaint = NonconformitySource::Complaint { record: None };
        assert_eq!(complaint.record(), None);
        let json = serde_json::to_value(&manual).unwrap_or_default();
        assert_eq!(json, serde_json::json!({"kind": "manual"}));
    }
}
