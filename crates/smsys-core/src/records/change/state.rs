//! The state of a change, derived from its events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{EventSourced, Stamp};
use crate::event::Actor;
use crate::records::change::{
    Assessment, ChangeControlEvent, ChangeEvent, ChangeKind, ChangeLogged, ChangePlan,
    ChangeWindow, ConflictNote, ImplementationOutcome, TemplatePin,
};
use crate::records::ids::{GroupId, PersonId, RecordType};
use crate::records::kind::{RecordKind, TypedEvent};
use crate::records::state::RecordState;

/// An approval that counts: who, for which group, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Who approved.
    pub approver: PersonId,
    /// The group they approved for.
    pub group: GroupId,
    /// When.
    pub at: DateTime<Utc>,
}

/// A rejection: who, for which group, why, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Who rejected.
    pub approver: PersonId,
    /// The group they rejected for.
    pub group: GroupId,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The authorisation of a change: the approval rule whose quorum was reached, the approvers
/// counted, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorisation {
    /// The approval rule.
    pub rule: String,
    /// The approvers counted.
    pub approvers: Vec<PersonId>,
    /// When.
    pub at: DateTime<Utc>,
}

/// How the implementation ended: outcome, notes, who recorded it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Implementation {
    /// How it ended.
    pub outcome: ImplementationOutcome,
    /// What was done or what went wrong.
    pub notes: String,
    /// Who recorded it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A finding recorded once: the remediation executed, the failure investigated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Investigation {
    /// What was found or done.
    pub findings: String,
    /// Who recorded it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The post-implementation review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Whether the change met its objectives.
    pub successful: bool,
    /// What the review found.
    pub findings: String,
    /// Who recorded it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The state of a change, derived from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Change {
    record: RecordState,
    kind: Option<ChangeKind>,
    template: Option<TemplatePin>,
    plan: Option<ChangePlan>,
    plan_revision: u32,
    assessment: Option<Assessment>,
    /// The plan revision and window the assessment was made on.
    assessed_on: Option<(u32, Option<ChangeWindow>)>,
    approvals: Vec<Approval>,
    rejection: Option<Rejection>,
    authorisation: Option<Authorisation>,
    resets: u32,
    window: Option<ChangeWindow>,
    warnings: Vec<ConflictNote>,
    implementation: Option<Implementation>,
    remediation: Option<(bool, Investigation)>,
    investigation: Option<Investigation>,
    review: Option<Review>,
}

impl Change {
    /// Its kind, once logged.
    pub fn kind(&self) -> Option<ChangeKind> {
        self.kind
    }
    /// The template a standard change follows.
    pub fn template(&self) -> Option<&TemplatePin> {
        self.template.as_ref()
    }
    /// The current plan, once planned.
    pub fn plan(&self) -> Option<&ChangePlan> {
        self.plan.as_ref()
    }
    /// How many times the plan was set (1 for the first plan).
    pub fn plan_revision(&self) -> u32 {
        self.plan_revision
    }
    /// The latest assessment.
    pub fn assessment(&self) -> Option<&Assessment> {
        self.assessment.as_ref()
    }
    /// Whether the latest assessment was made on the current plan and window (a revised plan
    /// or a new window makes it stale: its impact and lead time may no longer hold).
    pub fn assessment_current(&self) -> bool {
        self.assessment.is_some()
            && self.assessed_on.as_ref() == Some(&(self.plan_revision, self.window.clone()))
    }
    /// The approvals that count (since the last reset).
    pub fn approvals(&self) -> &[Approval] {
        &self.approvals
    }
    /// The rejection, if an approver rejected the change since the last reset.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.rejection.as_ref()
    }
    /// The authorisation, while it holds (a reset withdraws it).
    pub fn authorisation(&self) -> Option<&Authorisation> {
        self.authorisation.as_ref()
    }
    /// How many times the approvals were reset.
    pub fn resets(&self) -> u32 {
        self.resets
    }
    /// The planned window, once scheduled.
    pub fn window(&self) -> Option<&ChangeWindow> {
        self.window.as_ref()
    }
    /// The conflicts accepted as warnings when it was last scheduled.
    pub fn warnings(&self) -> &[ConflictNote] {
        &self.warnings
    }
    /// How the implementation ended, once it did.
    pub fn implementation(&self) -> Option<&Implementation> {
        self.implementation.as_ref()
    }
    /// The remediation executed after a failure: whether the service was restored, and what
    /// was done.
    pub fn remediation(&self) -> Option<(bool, &Investigation)> {
        self.remediation
            .as_ref()
            .map(|(restored, r)| (*restored, r))
    }
    /// The investigation of a failure.
    pub fn investigation(&self) -> Option<&Investigation> {
        self.investigation.as_ref()
    }
    /// The post-implementation review.
    pub fn review(&self) -> Option<&Review> {
        self.review.as_ref()
    }
}

impl RecordKind for Change {
    const RECORD_TYPE: RecordType = RecordType::from_static("change");
    type Logged = ChangeLogged;
    type Own = ChangeControlEvent;

    fn record(&self) -> &RecordState {
        &self.record
    }
}

impl EventSourced for Change {
    const CATEGORY: &'static str = "change";
    const SNAPSHOT_VERSION: u32 = 1;
    type Event = ChangeEvent;

    fn evolve(&mut self, event: &ChangeEvent, stamp: Stamp<'_>) {
        match event {
            TypedEvent::Logged(logged) => {
                self.record.log(&logged.record, stamp);
                self.kind = Some(logged.kind);
                self.template.clone_from(&logged.template);
            }
            TypedEvent::Record(e) => self.record.apply(e, stamp),
            TypedEvent::Own(e) => self.apply_own(e, stamp),
        }
    }
}

impl Change {
    fn apply_own(&mut self, event: &ChangeControlEvent, stamp: Stamp<'_>) {
        let finding = |findings: &str| Investigation {
            findings: findings.to_owned(),
            by: stamp.actor().cloned(),
            at: stamp.at(),
        };
        match event {
            ChangeControlEvent::Planned(plan) => {
                self.plan = Some(plan.clone());
                self.plan_revision = self.plan_revision.saturating_add(1);
            }
            ChangeControlEvent::Assessed(assessment) => {
                self.assessment = Some(assessment.clone());
                self.assessed_on = Some((self.plan_revision, self.window.clone()));
            }
            ChangeControlEvent::ApprovalGiven { approver, group } => {
                self.approvals.push(Approval {
                    approver: approver.clone(),
                    group: group.clone(),
                    at: stamp.at(),
                });
            }
            ChangeControlEvent::ApprovalRejected {
                approver,
                group,
                reason,
            } => {
                self.rejection = Some(Rejection {
                    approver: approver.clone(),
                    group: group.clone(),
                    reason: reason.clone(),
                    at: stamp.at(),
                });
            }
            ChangeControlEvent::Authorised { rule, approvers } => {
                self.authorisation = Some(Authorisation {
                    rule: rule.clone(),
                    approvers: approvers.clone(),
                    at: stamp.at(),
                });
            }
            ChangeControlEvent::ApprovalsReset { reason: _ } => {
                self.approvals.clear();
                self.rejection = None;
                self.authorisation = None;
                self.resets = self.resets.saturating_add(1);
            }
            ChangeControlEvent::Scheduled { window, warnings } => {
                self.window = Some(window.clone());
                self.warnings.clone_from(warnings);
            }
            ChangeControlEvent::Implemented { outcome, notes } => {
                self.implementation = Some(Implementation {
                    outcome: *outcome,
                    notes: notes.clone(),
                    by: stamp.actor().cloned(),
                    at: stamp.at(),
                });
            }
            ChangeControlEvent::RemediationExecuted { restored, notes } => {
                self.remediation = Some((*restored, finding(notes)));
            }
            ChangeControlEvent::FailureInvestigated { findings } => {
                self.investigation = Some(finding(findings));
            }
            ChangeControlEvent::Reviewed {
                successful,
                findings,
            } => {
                self.review = Some(Review {
                    successful: *successful,
                    findings: findings.clone(),
                    by: stamp.actor().cloned(),
                    at: stamp.at(),
                });
            }
        }
    }
}
