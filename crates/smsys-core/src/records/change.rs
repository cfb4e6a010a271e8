//! Changes (ISO/IEC 20000-1 8.5.1) as event streams: category `change`, references like
//! `CHG-0001`, the shared events, and the plan, assessment, approvals, schedule,
//! implementation, remediation, investigation and review events of their own.
//!
//! A change is logged with its kind ([`ChangeKind`]: standard, normal or emergency) and, for a
//! standard change, the pre-approved template and the version of it the change follows
//! ([`TemplatePin`]). Its plan ([`ChangePlan`]: the CIs it touches, how it is implemented, how
//! it is backed out, how it is tested, who implements it, the CI updates it makes) may be
//! revised; a revision after an approval is preceded by an `approvals_reset` event, so the
//! log shows which plan each approval was given to. The assessment ([`Assessment`]) records
//! the risk from the matrix version in force, the conditions that raised it, and the impact
//! computed from the configuration graph at a log position. Who approved is the approval
//! event's [`PersonId`], the same text as its actor.
//!
//! The requester is the logged caller. The rules (lifecycles per kind, risk matrix, approval
//! policies with segregation of duties, conflict detection) are in `smsys-processes`.

mod state;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::records::attribute::{AttributeName, Attributes};
use crate::records::event::Logged;
use crate::records::ids::{CiId, GroupId, PersonId, Reference};
use crate::records::kind::{LoggedEvent, OwnEvents, TypedEvent};
use crate::records::phase::Level;
use crate::stream::Position;

pub use state::{
    Approval, Authorisation, Change, Implementation, Investigation, Rejection, Review,
};

/// The kind of a change: what it needs before it may be implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Pre-authorised, low risk, from a template that is itself versioned and approved: no
    /// approval per change.
    Standard,
    /// Assessed and authorised per change (major-impact ones by a change advisory board).
    Normal,
    /// Made at once: an expedited authority, assessment and review afterwards.
    Emergency,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [ChangeKind; 3] = [
        ChangeKind::Standard,
        ChangeKind::Normal,
        ChangeKind::Emergency,
    ];

    /// The kind as recorded: `standard`, `normal`, `emergency`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Standard => "standard",
            ChangeKind::Normal => "normal",
            ChangeKind::Emergency => "emergency",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no change kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a change kind (standard, normal, emergency)")]
pub struct UnknownChangeKind(pub String);

impl FromStr for ChangeKind {
    type Err = UnknownChangeKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownChangeKind(s.to_owned()))
    }
}

/// The pre-approved template a standard change follows, and the version of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TemplatePin {
    /// The template's name.
    pub template: String,
    /// Its version, pinned when the change was logged.
    pub version: u32,
}

/// A change's logged payload: the shared fields (the caller is the requester), its kind and,
/// for a standard change, its template. Stored at the shared logged schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeLogged {
    /// The shared fields.
    #[serde(flatten)]
    pub record: Logged,
    /// Its kind.
    pub kind: ChangeKind,
    /// The template a standard change follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplatePin>,
}

impl LoggedEvent for ChangeLogged {
    fn logged(&self) -> &Logged {
        &self.record
    }
}

/// A CI update a change makes once implemented: attributes set and removed, a status, each
/// applied through the CMDB's commands naming the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedCiUpdate {
    /// The CI.
    pub ci: CiId,
    /// Attributes set.
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub set: Attributes,
    /// Attributes removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<AttributeName>,
    /// The status the CI moves to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// How a change is made and undone.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChangePlan {
    /// The configuration items it changes.
    pub cis: Vec<CiId>,
    /// How it is implemented.
    pub implementation: String,
    /// The remediation (back-out) plan.
    pub remediation: String,
    /// How it is verified and tested.
    #[serde(default)]
    pub test_plan: String,
    /// Who implements it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementer: Option<PersonId>,
    /// The CI updates it makes once implemented.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ci_updates: Vec<PlannedCiUpdate>,
}

/// A risk level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Low.
    Low,
    /// Moderate.
    Moderate,
    /// High.
    High,
    /// Very high.
    VeryHigh,
}

impl RiskLevel {
    /// Every level, lowest first.
    pub const ALL: [RiskLevel; 4] = [
        RiskLevel::Low,
        RiskLevel::Moderate,
        RiskLevel::High,
        RiskLevel::VeryHigh,
    ];

    /// One level higher (the highest stays).
    pub fn raised(self) -> RiskLevel {
        match self {
            RiskLevel::Low => RiskLevel::Moderate,
            RiskLevel::Moderate => RiskLevel::High,
            RiskLevel::High | RiskLevel::VeryHigh => RiskLevel::VeryHigh,
        }
    }

    /// The level as recorded: `low`, `moderate`, `high`, `very_high`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Moderate => "moderate",
            RiskLevel::High => "high",
            RiskLevel::VeryHigh => "very_high",
        }
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition that raised a change's risk (short lead time, a critical service affected, a
/// CI already in maintenance, or a product's own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskCondition {
    /// The condition's name, e.g. `insufficient_lead_time`.
    pub name: String,
    /// What was found.
    pub detail: String,
}

/// The impact of a change computed from the configuration graph.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImpactAnalysis {
    /// The services affected (service CIs).
    pub services: Vec<CiId>,
    /// The customers of those services.
    pub customers: Vec<String>,
    /// How many CIs are affected, the changed ones included.
    pub affected_cis: u32,
    /// The log position of the graph the impact was computed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Position>,
}

/// A change's assessment: risk, impact, benefit, cost, feasibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// The probability of failure.
    pub probability: Level,
    /// The impact if it fails.
    pub impact: Level,
    /// The risk matrix version the risk was read from.
    pub matrix_version: u32,
    /// The risk the matrix gives.
    pub base_risk: RiskLevel,
    /// The risk after the conditions raised it.
    pub risk: RiskLevel,
    /// The conditions that raised it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RiskCondition>,
    /// Whether it is a major-impact change (authorised by a change advisory board).
    pub major: bool,
    /// The impact on services and customers.
    pub analysis: ImpactAnalysis,
    /// The expected benefit.
    #[serde(default)]
    pub benefit: String,
    /// The cost.
    #[serde(default)]
    pub cost: String,
    /// Whether and how it can be done.
    #[serde(default)]
    pub feasibility: String,
}

/// The window a change is planned in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeWindow {
    /// Its start.
    pub start: DateTime<Utc>,
    /// Its end (after the start).
    pub end: DateTime<Utc>,
    /// The IANA time zone it was planned in, e.g. `Europe/Paris`.
    pub time_zone: String,
}

impl ChangeWindow {
    /// Whether it shares an instant with `other` (windows are half-open, `[start, end)`).
    pub fn overlaps(&self, other: &ChangeWindow) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// A scheduling conflict as recorded on the change: a warning accepted when it was scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictNote {
    /// The conflict's kind, e.g. `same_ci`, `freeze`.
    pub kind: String,
    /// What was found.
    pub detail: String,
    /// The other change, where one is involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Reference>,
    /// The CI involved, where one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiId>,
}

/// How an implementation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImplementationOutcome {
    /// Done as planned.
    Success,
    /// Not done: the remediation plan is executed.
    Failed,
    /// Partly done: reviewed as a success with findings, or remediated as a failure.
    Partial,
}

impl ImplementationOutcome {
    /// The outcome as recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            ImplementationOutcome::Success => "success",
            ImplementationOutcome::Failed => "failed",
            ImplementationOutcome::Partial => "partial",
        }
    }
}

/// A change's own events. Each at schema version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum ChangeControlEvent {
    /// The plan was set or revised.
    Planned(ChangePlan),
    /// The change was assessed (again, replacing an earlier assessment).
    Assessed(Assessment),
    /// One approver approved, for one of the groups the approval policy asks.
    ApprovalGiven {
        /// Who.
        approver: PersonId,
        /// The group they approved for.
        group: GroupId,
    },
    /// An approver rejected the change.
    ApprovalRejected {
        /// Who.
        approver: PersonId,
        /// The group they rejected for.
        group: GroupId,
        /// Why.
        reason: String,
    },
    /// The change is authorised: the approval rule's quorum was reached (or an expedited
    /// authority approved an emergency change).
    Authorised {
        /// The approval rule that applied.
        rule: String,
        /// The approvers counted.
        approvers: Vec<PersonId>,
    },
    /// The approvals given so far no longer count (the plan changed, or the change went back
    /// to new).
    ApprovalsReset {
        /// Why.
        reason: String,
    },
    /// The change was scheduled in a window (again, replacing an earlier one), with the
    /// conflicts that only warn.
    Scheduled {
        /// The window.
        window: ChangeWindow,
        /// The conflicts found that did not block it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<ConflictNote>,
    },
    /// The implementation ended.
    Implemented {
        /// How.
        outcome: ImplementationOutcome,
        /// What was done or what went wrong.
        notes: String,
    },
    /// The remediation (back-out) plan was executed after a failure.
    RemediationExecuted {
        /// Whether the service was restored to its state before the change.
        restored: bool,
        /// What was done.
        notes: String,
    },
    /// A failed change was investigated.
    FailureInvestigated {
        /// What was found.
        findings: String,
    },
    /// The post-implementation review (retrospective for an emergency change).
    Reviewed {
        /// Whether the change met its objectives.
        successful: bool,
        /// What the review found.
        findings: String,
    },
}

impl OwnEvents for ChangeControlEvent {
    const NAMES: &'static [&'static str] = &[
        "planned",
        "assessed",
        "approval_given",
        "approval_rejected",
        "authorised",
        "approvals_reset",
        "scheduled",
        "implemented",
        "remediation_executed",
        "failure_investigated",
        "reviewed",
    ];

    fn name(&self) -> &'static str {
        match self {
            ChangeControlEvent::Planned(_) => "planned",
            ChangeControlEvent::Assessed(_) => "assessed",
            ChangeControlEvent::ApprovalGiven { .. } => "approval_given",
            ChangeControlEvent::ApprovalRejected { .. } => "approval_rejected",
            ChangeControlEvent::Authorised { .. } => "authorised",
            ChangeControlEvent::ApprovalsReset { .. } => "approvals_reset",
            ChangeControlEvent::Scheduled { .. } => "scheduled",
            ChangeControlEvent::Implemented { .. } => "implemented",
            ChangeControlEvent::RemediationExecuted { .. } => "remediation_executed",
            ChangeControlEvent::FailureInvestigated { .. } => "failure_investigated",
            ChangeControlEvent::Reviewed { .. } => "reviewed",
        }
    }
}

/// A change's event (logged, shared or its own).
pub type ChangeEvent = TypedEvent<Change>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_event_names_are_distinct_from_the_shared_ones() {
        assert_eq!(ChangeEvent::name_clash(), None);
    }

    #[test]
    fn kinds_round_trip_through_text() {
        for kind in ChangeKind::ALL {
            assert_eq!(kind.as_str().parse::<ChangeKind>(), Ok(kind));
        }
        assert!("minor".parse::<ChangeKind>().is_err());
    }

    #[test]
    fn windows_overlap_when_they_share_an_instant() {
        let at = |h: i64| DateTime::<Utc>::from_timestamp(h * 3600, 0).unwrap_or_default();
        let w = |a, b| ChangeWindow {
            start: at(a),
            end: at(b),
            time_zone: "UTC".into(),
        };
        assert!(w(1, 3).overlaps(&w(2, 4)));
        assert!(!w(1, 2).overlaps(&w(2, 3)));
        assert!(w(1, 4).overlaps(&w(2, 3)));
    }

    #[test]
    fn risk_is_raised_one_level_at_a_time() {
        assert_eq!(RiskLevel::Low.raised(), RiskLevel::Moderate);
        assert_eq!(RiskLevel::VeryHigh.raised(), RiskLevel::VeryHigh);
        assert!(RiskLevel::High > RiskLevel::Moderate);
    }
}
