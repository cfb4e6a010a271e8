//! Change management (ISO/IEC 20000-1 8.5.1): standard, normal and emergency changes, each
//! kind under its own lifecycle held as data, assessed for risk and impact from the
//! configuration information, authorised under approval policies with segregation of duties,
//! scheduled against the other changes, freeze and maintenance windows, implemented,
//! remediated when they fail, and reviewed.
//!
//! - **Kinds** ([`ChangeKind`]): a *standard* change follows a pre-approved template
//!   ([`ChangeTemplates`]) whose current version it pins when logged, and is scheduled without
//!   approval (`change/standard.toml`); a *normal* change is assessed, then authorised by the
//!   approval rule that applies, which schedules it (`change/normal.toml`); an *emergency*
//!   change goes to an expedited authority at once and closes only after its retrospective
//!   assessment and review (`change/emergency.toml`). [`ChangePolicy::lifecycles`] names the
//!   lifecycle of each kind; the statuses of each carry the change's stages (`new`, `assess`,
//!   `authorise`, `scheduled`, `implement`, `remediate`, `review`, `closed`, `rejected`,
//!   `cancelled`), so a product may rename statuses and the rules still know where a change is.
//! - **Plan** ([`ChangeCommand::Plan`]): the CIs changed, implementation, remediation
//!   (back-out) and test plans, implementer, CI updates. A revision after an approval resets
//!   the approvals (an `approvals_reset` event first), so each approval stands beside the plan
//!   it approved. A standard change keeps its template's plan.
//! - **Assessment** ([`ChangeCommand::Assess`]): risk from the [`RiskMatrix`] in force, raised
//!   by the [`RiskPolicy`]'s conditions; impact on services and customers from the
//!   [`ImpactSource`] (the CI graph), recorded with the graph's position.
//! - **Approvals** ([`ChangeCommand::Approve`], [`ChangeCommand::Reject`]): the first
//!   [`ApprovalRule`] matching the change's kind and major-impact flag; each approver a member
//!   of one of its groups, never the requester nor the implementer; the quorum of distinct
//!   approvers authorises the change; a rejection needs a reason and ends it.
//! - **Schedule** ([`ChangeCommand::Schedule`]): a window checked by the
//!   [`ConflictDetector`]; the conflicts the [`ConflictPolicy`] names block, the others are
//!   recorded as warnings. A normal change takes its window before its assessment (the lead
//!   time is part of its risk) and is rescheduled after authorisation only by reverting it
//!   (its approvals no longer count); a standard or emergency change is rescheduled in place,
//!   checked again.
//! - **Implementation and review**: the outcome; a failure executes the remediation plan and
//!   is investigated; the post-implementation review closes it.

mod approval;
mod conflict;
mod decide;
mod impact;
pub mod reactors;
mod risk;
mod schedule;
mod template;
mod windows;

use std::collections::BTreeMap;
use std::sync::Arc;

use smsys_core::records::change::{ChangePlan, ChangeWindow, ImplementationOutcome};
use smsys_core::records::{Change, ChangeKind, DefinitionRef, GroupId, Level, PersonId, Phase};

use crate::lifecycle::{
    Guard, Lifecycle, StageRule, Trigger, TriggerRule, Vocabulary, desk_triggers,
};
use crate::record::{LogRecord, RecordCommand, RecordPolicy, RecordRules, Refusal};

pub use approval::{ApprovalPolicy, ApprovalPolicyError, ApprovalRule};
pub use conflict::{Conflict, ConflictDetector, ConflictKind, ConflictPolicy, ScheduleRequest};
pub use impact::{GraphImpact, ImpactFindings, ImpactMarkers, ImpactSource};
pub use risk::{
    DatedRiskMatrix, RiskInput, RiskMatrices, RiskMatrix, RiskPolicy, RiskPolicyError, RiskVerdict,
    condition,
};
pub use schedule::{ChangeSchedule, PlannedChange};
pub use template::{ChangeTemplate, ChangeTemplates, TemplateError};
pub use windows::{
    ChangeCalendars, ChangeCalendarsError, Via, WindowBinding, WindowKind, WindowScope,
};

const NORMAL: &str = include_str!("change/normal.toml");
const STANDARD: &str = include_str!("change/standard.toml");
const EMERGENCY: &str = include_str!("change/emergency.toml");

/// The reference lifecycle of changes of `kind` (`change/<kind>.toml`).
pub fn default_lifecycle(kind: ChangeKind) -> Lifecycle {
    let text = match kind {
        ChangeKind::Standard => STANDARD,
        ChangeKind::Normal => NORMAL,
        ChangeKind::Emergency => EMERGENCY,
    };
    Lifecycle::from_toml(text, &ChangeManagement::vocabulary())
        .unwrap_or_else(|e| unreachable!("the shipped {kind} change lifecycle is valid: {e}"))
}

impl Trigger {
    /// A standard change is scheduled (changes): from new.
    pub const SCHEDULE: Trigger = Trigger::from_static("schedule");
    /// The implementation starts (changes).
    pub const IMPLEMENT: Trigger = Trigger::from_static("implement");
    /// The implementation succeeded, fully or partly (changes): into review.
    pub const COMPLETE: Trigger = Trigger::from_static("complete");
    /// The implementation failed (changes): the remediation plan is to be executed.
    pub const FAIL: Trigger = Trigger::from_static("fail");
    /// The remediation plan was executed (changes).
    pub const REMEDIATE: Trigger = Trigger::from_static("remediate");
    /// Back to new (changes): the approvals given no longer count.
    pub const REVERT: Trigger = Trigger::from_static("revert");
}

impl Guard {
    /// A plan with an implementation and a remediation plan is recorded (changes).
    pub const PLANNED: Guard = Guard::from_static("planned");
    /// An assessment of the current plan and window is recorded (changes).
    pub const ASSESSED: Guard = Guard::from_static("assessed");
    /// The change is authorised (changes).
    pub const AUTHORISED: Guard = Guard::from_static("authorised");
    /// A window is planned (changes).
    pub const WINDOW_PLANNED: Guard = Guard::from_static("window_planned");
    /// The change follows a pinned template version (standard changes).
    pub const TEMPLATE_PINNED: Guard = Guard::from_static("template_pinned");
    /// The implementation succeeded, fully or partly (changes).
    pub const IMPLEMENTATION_SUCCEEDED: Guard = Guard::from_static("implementation_succeeded");
    /// The implementation failed (changes).
    pub const IMPLEMENTATION_FAILED: Guard = Guard::from_static("implementation_failed");
    /// The remediation plan was executed (changes).
    pub const REMEDIATION_EXECUTED: Guard = Guard::from_static("remediation_executed");
    /// The post-implementation review is recorded (changes).
    pub const REVIEWED: Guard = Guard::from_static("reviewed");
    /// A failed implementation was investigated (changes; holds when it did not fail).
    pub const FAILURE_INVESTIGATED: Guard = Guard::from_static("failure_investigated");
}

/// The stages of a change, which its lifecycles' statuses name.
pub mod stage {
    /// Logged, not yet assessed or submitted.
    pub const NEW: &str = "new";
    /// Being assessed.
    pub const ASSESS: &str = "assess";
    /// Awaiting authorisation.
    pub const AUTHORISE: &str = "authorise";
    /// Authorised (or standard) and scheduled.
    pub const SCHEDULED: &str = "scheduled";
    /// Being implemented.
    pub const IMPLEMENT: &str = "implement";
    /// Failed: the remediation plan is to be executed.
    pub const REMEDIATE: &str = "remediate";
    /// Implemented or remediated: under review.
    pub const REVIEW: &str = "review";
    /// Closed.
    pub const CLOSED: &str = "closed";
    /// Rejected by an approver.
    pub const REJECTED: &str = "rejected";
    /// Cancelled.
    pub const CANCELLED: &str = "cancelled";
}

/// What change management consults.
#[derive(Debug, Clone)]
pub struct ChangePolicy {
    /// Every lifecycle version changes may follow, matrix, attributes.
    pub record: RecordPolicy,
    /// The lifecycle new changes of each kind are logged under.
    pub lifecycles: BTreeMap<ChangeKind, DefinitionRef>,
    /// Who authorises which changes.
    pub approvals: ApprovalPolicy,
    /// The standard change templates.
    pub templates: ChangeTemplates,
    /// The risk matrix, the conditions that raise a risk and the major-impact criteria.
    pub risk: RiskPolicy,
    /// The dated versions of the risk matrix: when given, an assessment reads the version in
    /// force at its instant instead of `risk.matrix`, and records its number.
    pub risk_matrices: Option<RiskMatrices>,
    /// Which conflicts block scheduling.
    pub conflict_policy: ConflictPolicy,
    /// Where an assessment reads the impact of a change on services and customers; without
    /// one, an assessment records the changed CIs only.
    pub impact: Option<Arc<dyn ImpactSource>>,
    /// Where scheduling looks for conflicts; without one, none are found.
    pub conflicts: Option<Arc<dyn ConflictDetector>>,
}

impl Default for ChangePolicy {
    /// The reference lifecycles, approval policy and risk policy; no templates, no impact
    /// source, no conflict detector.
    fn default() -> Self {
        let mut record = RecordPolicy::new(default_lifecycle(ChangeKind::Normal));
        let mut lifecycles = BTreeMap::new();
        for kind in ChangeKind::ALL {
            let lifecycle = default_lifecycle(kind);
            lifecycles.insert(kind, lifecycle.reference());
            record = record.with_lifecycle(lifecycle);
        }
        Self {
            record,
            lifecycles,
            approvals: ApprovalPolicy::reference(),
            templates: ChangeTemplates::new(),
            risk: RiskPolicy::default(),
            risk_matrices: None,
            conflict_policy: ConflictPolicy::default(),
            impact: None,
            conflicts: None,
        }
    }
}

impl ChangePolicy {
    /// Sets the approval policy.
    pub fn with_approvals(mut self, approvals: ApprovalPolicy) -> Self {
        self.approvals = approvals;
        self
    }
    /// Sets the standard change templates.
    pub fn with_templates(mut self, templates: ChangeTemplates) -> Self {
        self.templates = templates;
        self
    }
    /// Assesses with the version of the risk matrix in force at each assessment.
    pub fn with_risk_matrices(mut self, matrices: RiskMatrices) -> Self {
        self.risk_matrices = Some(matrices);
        self
    }
    /// Reads impact from `source` when assessing.
    pub fn with_impact(mut self, source: Arc<dyn ImpactSource>) -> Self {
        self.impact = Some(source);
        self
    }
    /// Looks for conflicts with `detector` when scheduling.
    pub fn with_conflicts(mut self, detector: Arc<dyn ConflictDetector>) -> Self {
        self.conflicts = Some(detector);
        self
    }
    /// Logs new changes of `kind` under `lifecycle` (added to the registry).
    pub fn logging_under(mut self, kind: ChangeKind, lifecycle: Lifecycle) -> Self {
        self.lifecycles.insert(kind, lifecycle.reference());
        self.record = self.record.with_lifecycle(lifecycle);
        self
    }
}

/// What logging a change takes.
#[derive(Debug, Clone, PartialEq)]
pub struct LogChange {
    /// The shared fields (the caller is the requester; the affected CIs are the CIs changed).
    pub record: LogRecord,
    /// Its kind.
    pub kind: ChangeKind,
    /// For a standard change, the template it follows (its current version is pinned).
    pub template: Option<String>,
    /// A first plan (a standard change takes its template's).
    pub plan: Option<ChangePlan>,
}

impl LogChange {
    /// A change of `kind`, without a plan.
    pub fn new(record: LogRecord, kind: ChangeKind) -> Self {
        Self {
            record,
            kind,
            template: None,
            plan: None,
        }
    }

    /// A standard change from `template`.
    pub fn standard(record: LogRecord, template: impl Into<String>) -> Self {
        Self {
            template: Some(template.into()),
            ..Self::new(record, ChangeKind::Standard)
        }
    }

    /// With a first plan.
    pub fn plan(mut self, plan: ChangePlan) -> Self {
        self.plan = Some(plan);
        self
    }
}

/// What an assessment takes from the assessor; the risk and impact are computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessChange {
    /// The probability of failure.
    pub probability: Level,
    /// The impact if it fails.
    pub impact: Level,
    /// The expected benefit.
    pub benefit: String,
    /// The cost.
    pub cost: String,
    /// Whether and how it can be done.
    pub feasibility: String,
}

/// What can be asked of a change.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeCommand {
    /// Record it.
    Log(Box<LogChange>),
    /// A command every record accepts (the shared start takes a normal change into
    /// assessment; close and cancel as for every record).
    Record(RecordCommand),
    /// Set or revise the plan (before authorisation; resets approvals already given).
    Plan(ChangePlan),
    /// Assess risk and impact (a normal change while assessed; the others at any time before
    /// closure, an emergency change retrospectively).
    Assess(AssessChange),
    /// Ask for authorisation (a normal change once planned, assessed and given a window; an
    /// emergency change once planned and given a window).
    RequestAuthorisation,
    /// Give the change a window (before implementation), checked for conflicts; a standard
    /// change is scheduled by it.
    Schedule(ChangeWindow),
    /// Approve it, as the acting person, for one of the groups of the rule that applies (the
    /// first they belong to if none is named); the quorum authorises and schedules it.
    Approve {
        /// The group approved for.
        group: Option<GroupId>,
    },
    /// Reject it (with a reason), as the acting person, for one of the rule's groups.
    Reject {
        /// The group rejected for.
        group: Option<GroupId>,
        /// Why (required).
        reason: String,
    },
    /// Start the implementation.
    StartImplementation,
    /// Record how the implementation ended: success and partial go to review, a failure to
    /// remediation.
    RecordImplementation {
        /// How.
        outcome: ImplementationOutcome,
        /// What was done or went wrong (required).
        notes: String,
    },
    /// Record that the remediation plan was executed after a failure.
    RecordRemediation {
        /// Whether the service was restored.
        restored: bool,
        /// What was done (required).
        notes: String,
    },
    /// Record the investigation of a failed change.
    RecordInvestigation {
        /// What was found (required).
        findings: String,
    },
    /// Record the post-implementation review.
    RecordReview {
        /// Whether the change met its objectives.
        successful: bool,
        /// What the review found (required).
        findings: String,
    },
    /// Back to new, before implementation: the approvals given no longer count.
    Revert {
        /// Why (required).
        reason: String,
    },
}

impl From<RecordCommand> for ChangeCommand {
    fn from(command: RecordCommand) -> Self {
        ChangeCommand::Record(command)
    }
}

impl ChangeCommand {
    /// Log `change`.
    pub fn log(change: LogChange) -> Self {
        ChangeCommand::Log(Box::new(change))
    }

    /// The command's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            ChangeCommand::Log(_) => "log",
            ChangeCommand::Record(c) => c.name(),
            ChangeCommand::Plan(_) => "plan",
            ChangeCommand::Assess(_) => "assess",
            ChangeCommand::RequestAuthorisation => "request authorisation",
            ChangeCommand::Schedule(_) => "schedule",
            ChangeCommand::Approve { .. } => "approve",
            ChangeCommand::Reject { .. } => "reject",
            ChangeCommand::StartImplementation => "start implementation",
            ChangeCommand::RecordImplementation { .. } => "record implementation",
            ChangeCommand::RecordRemediation { .. } => "record remediation",
            ChangeCommand::RecordInvestigation { .. } => "record investigation",
            ChangeCommand::RecordReview { .. } => "record review",
            ChangeCommand::Revert { .. } => "revert",
        }
    }
}

/// Why change management refuses beyond the shared reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRule {
    /// A standard change names no template, or another kind names one.
    #[error("a {kind} change {}", if *.has_template { "follows no template" } else { "must follow a template" })]
    TemplateMismatch {
        /// The change's kind.
        kind: ChangeKind,
        /// Whether a template was named.
        has_template: bool,
    },
    /// The template named has no current version (unknown or withdrawn).
    #[error("standard change template {0:?} is unknown or withdrawn")]
    UnknownTemplate(String),
    /// A standard change's plan departs from its template.
    #[error("a standard change keeps its template's {0} (template {1:?} version {2})")]
    TemplateDeviation(&'static str, String, u32),
    /// No lifecycle is named for the change's kind.
    #[error("the policy names no lifecycle for {0} changes")]
    NoLifecycle(ChangeKind),
    /// The command is not taken in the change's current stage.
    #[error("{command} is not taken while the change is in stage {stage}")]
    WrongStage {
        /// The command.
        command: &'static str,
        /// The stage.
        stage: String,
    },
    /// No plan is recorded.
    #[error("the change has no plan")]
    NoPlan,
    /// No approval rule applies.
    #[error("no approval rule applies to a {kind} change{}", if *.major { " of major impact" } else { "" })]
    NoApprovalRule {
        /// The change's kind.
        kind: ChangeKind,
        /// Whether it is major-impact.
        major: bool,
    },
    /// The approver is the requester or the implementer.
    #[error("{approver} may not approve or reject this change: they are its {role}")]
    SegregationOfDuties {
        /// Who.
        approver: PersonId,
        /// `requester` or `implementer`.
        role: &'static str,
    },
    /// The approver belongs to none of the rule's groups (or not to the group named).
    #[error("{approver} is not a member of {} under approval rule {rule:?}", .group.as_ref().map_or_else(|| "any group".to_owned(), |g| format!("group {g}")))]
    NotAnApprover {
        /// Who.
        approver: PersonId,
        /// The rule.
        rule: String,
        /// The group named, if any.
        group: Option<GroupId>,
    },
    /// An approver of the change may not implement it.
    #[error("{0} approved this change, so may not implement it")]
    ApproverImplements(PersonId),
    /// The approver approved already since the last reset.
    #[error("{0} approved this change already")]
    AlreadyApproved(PersonId),
    /// A window that is empty, ends in the past or names no known time zone.
    #[error("window {start} to {end} ({zone}) {why}")]
    BadWindow {
        /// Its start.
        start: String,
        /// Its end.
        end: String,
        /// Its time zone.
        zone: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Conflicts that block scheduling.
    #[error("the window conflicts: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Conflicts(Vec<Conflict>),
    /// A normal change assessed before its window is planned (the lead time is part of its
    /// risk).
    #[error(
        "a normal change is assessed once its window is planned: the lead time is part of its risk"
    )]
    NoWindow,
    /// A lifecycle migration to another kind's lifecycle, or that moves the change to another
    /// stage: either would skip the rules of the stage it is in.
    #[error(
        "a change migrates only to a version of its own lifecycle ({lifecycle}), keeping its stage: {why}"
    )]
    Migration {
        /// Its lifecycle's name.
        lifecycle: String,
        /// What the migration would do.
        why: String,
    },
    /// An investigation of a change that did not fail.
    #[error("the implementation did not fail, so there is no failure to investigate")]
    NotFailed,
}

/// A refused change command.
pub type ChangeRefusal = Refusal<ChangeRule>;

/// Change management: `decide` for [`Change`]s.
#[derive(Debug, Clone, Copy)]
pub struct ChangeManagement;

impl RecordRules for ChangeManagement {
    type Record = Change;
    type Policy = ChangePolicy;
    type Rule = ChangeRule;

    fn vocabulary() -> Vocabulary {
        use Phase::{Active, Cancelled, Closed, New, Pending, Resolved};
        let rule = |trigger, from, to| TriggerRule { trigger, from, to };
        let mut triggers = desk_triggers();
        triggers.extend([
            rule(Trigger::REQUEST_APPROVAL, &[New, Active], &[Pending]),
            rule(Trigger::APPROVE, &[Pending], &[Active]),
            rule(Trigger::REJECT, &[Pending], &[Cancelled]),
            rule(Trigger::SCHEDULE, &[New], &[Active]),
            rule(Trigger::IMPLEMENT, &[Active], &[Active]),
            rule(Trigger::COMPLETE, &[Active], &[Resolved]),
            rule(Trigger::FAIL, &[Active], &[Active]),
            rule(Trigger::REMEDIATE, &[Active], &[Resolved]),
            rule(Trigger::REVERT, &[Active, Pending], &[New]),
        ]);
        let stage = |name, phase| StageRule { name, phase };
        Vocabulary {
            record_type: <Change as smsys_core::records::RecordKind>::RECORD_TYPE,
            triggers,
            guards: vec![
                Guard::PLANNED,
                Guard::ASSESSED,
                Guard::AUTHORISED,
                Guard::WINDOW_PLANNED,
                Guard::TEMPLATE_PINNED,
                Guard::IMPLEMENTATION_SUCCEEDED,
                Guard::IMPLEMENTATION_FAILED,
                Guard::REMEDIATION_EXECUTED,
                Guard::REVIEWED,
                Guard::FAILURE_INVESTIGATED,
            ],
            stages: vec![
                stage(stage::NEW, New),
                stage(stage::ASSESS, Active),
                stage(stage::AUTHORISE, Pending),
                stage(stage::SCHEDULED, Active),
                stage(stage::IMPLEMENT, Active),
                stage(stage::REMEDIATE, Active),
                stage(stage::REVIEW, Resolved),
                stage(stage::CLOSED, Closed),
                stage(stage::REJECTED, Cancelled),
                stage(stage::CANCELLED, Cancelled),
            ],
        }
    }

    fn record_policy(policy: &ChangePolicy) -> &RecordPolicy {
        &policy.record
    }

    fn guard_holds(change: &Change, guard: &Guard) -> bool {
        let outcome = change.implementation().map(|i| i.outcome);
        if *guard == Guard::PLANNED {
            change.plan().is_some_and(|p| {
                !p.implementation.trim().is_empty() && !p.remediation.trim().is_empty()
            })
        } else if *guard == Guard::ASSESSED {
            change.assessment_current()
        } else if *guard == Guard::AUTHORISED {
            change.authorisation().is_some()
        } else if *guard == Guard::WINDOW_PLANNED {
            change.window().is_some()
        } else if *guard == Guard::TEMPLATE_PINNED {
            change.template().is_some()
        } else if *guard == Guard::IMPLEMENTATION_SUCCEEDED {
            matches!(
                outcome,
                Some(ImplementationOutcome::Success | ImplementationOutcome::Partial)
            )
        } else if *guard == Guard::IMPLEMENTATION_FAILED {
            outcome == Some(ImplementationOutcome::Failed)
        } else if *guard == Guard::REMEDIATION_EXECUTED {
            change.remediation().is_some()
        } else if *guard == Guard::REVIEWED {
            change.review().is_some()
        } else if *guard == Guard::FAILURE_INVESTIGATED {
            outcome != Some(ImplementationOutcome::Failed) || change.investigation().is_some()
        } else {
            false
        }
    }
}
