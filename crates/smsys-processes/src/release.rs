//! Release and deployment management (ISO/IEC 20000-1 8.5.3): major, minor and emergency
//! releases, each kind's requirements held as data ([`ReleaseKinds`], `release/policy.toml`),
//! under one lifecycle held as data (`release/lifecycle.toml`).
//!
//! - **Scope**: the changes, problems and known errors a release delivers are its links
//!   ([`LinkKind::CHANGE`](smsys_core::records::LinkKind::CHANGE), `PROBLEM`, `KNOWN_ERROR`);
//!   the [`LinkMirror`](crate::problem::reactors::LinkMirror) shows each on both records. A
//!   release does not deploy while one of its changes is not authorised, as the
//!   [`ChangeAuthorisations`] in the policy (e.g. the [`ChangeSchedule`]) says.
//! - **Acceptance** ([`ReleaseCommand::VerifyCriterion`]): each criterion of the release's
//!   kind verified with its evidence, who and when; [`ReleaseCommand::Accept`] once all pass.
//! - **Approval** ([`ReleaseCommand::Approve`], [`ReleaseCommand::Reject`]): the rule of the
//!   change [`ApprovalPolicy`] that the kind names, with the same segregation of duties: the
//!   requester and the deployer never approve, an approver never deploys.
//! - **Baseline** ([`ReleaseCommand::TakeBaseline`]): the [`BaselineSource`] in the policy (e.g.
//!   the [`CmdbGraph`]) records the exact state of every affected CI as of a log position,
//!   with its hash, in the release's `baseline_taken` event. No deployment without one; a
//!   rollback names the baseline it returns to and a new attempt takes a new one.
//! - **Deployment** ([`ReleaseCommand::StartDeployment`],
//!   [`ReleaseCommand::RecordDeployment`]): environment by environment, in the kind's order;
//!   a failure is rolled back ([`ReleaseCommand::RollBack`]); after the last environment the
//!   early-life window opens for the kind's number of days.
//! - **Early life** ([`ReleaseCommand::CorrelateIncident`], recorded by the
//!   [`reactors::EarlyLifeCorrelation`] reactor): incidents on the release's CIs or services
//!   within the window; the review ([`ReleaseCommand::RecordEarlyLifeReview`]) comes once the
//!   window ended or was waived with a reason ([`ReleaseCommand::WaiveEarlyLife`]), and the
//!   release closes only after it.
//!
//! The reactors in [`reactors`] do what a release does to other records: correlate
//! early-life incidents on both records, apply the deployment's CI updates through the CMDB,
//! raise an incident or a problem for a rolled-back deployment, and review, close and retire
//! the changes and known errors a closed release delivered, each exactly once.

mod baseline;
mod command;
mod decide;
mod kinds;
pub mod reactors;

use std::sync::Arc;

use smsys_core::records::release::Baseline;
use smsys_core::records::{GroupId, PersonId, Phase, Reference, Release, ReleaseKind};

use crate::change::ApprovalPolicy;
use crate::lifecycle::{
    Guard, Lifecycle, StageRule, Trigger, TriggerRule, Vocabulary, desk_triggers,
};
use crate::record::{RecordPolicy, RecordRules, Refusal};

pub use baseline::{BaselineError, BaselineSource, ChangeAuthorisations};
pub use command::{LogRelease, ReleaseCommand};
pub use kinds::{
    ApprovalRef, ClosurePolicy, FailurePolicy, ReleaseKindPolicy, ReleaseKinds, ReleaseKindsError,
};

#[cfg(doc)]
use crate::{CmdbGraph, change::ChangeSchedule};

const DEFAULT_LIFECYCLE: &str = include_str!("release/lifecycle.toml");

/// The reference release lifecycle (`release/lifecycle.toml`).
pub fn default_lifecycle() -> Lifecycle {
    Lifecycle::from_toml(DEFAULT_LIFECYCLE, &ReleaseManagement::vocabulary())
        .unwrap_or_else(|e| unreachable!("the shipped release lifecycle is valid: {e}"))
}

impl Trigger {
    /// The release was built (releases): from planned.
    pub const BUILD: Trigger = Trigger::from_static("build");
    /// Every acceptance criterion is met (releases): into awaiting approval.
    pub const ACCEPT: Trigger = Trigger::from_static("accept");
    /// A baseline of the affected CIs was taken (releases).
    pub const BASELINE: Trigger = Trigger::from_static("baseline");
    /// The deployment starts (releases).
    pub const DEPLOY: Trigger = Trigger::from_static("deploy");
    /// A failed deployment was rolled back (releases).
    pub const ROLL_BACK: Trigger = Trigger::from_static("roll_back");
}

impl Guard {
    /// The build is recorded (releases).
    pub const BUILT: Guard = Guard::from_static("built");
    /// Every acceptance criterion's latest verification passed (releases).
    pub const CRITERIA_MET: Guard = Guard::from_static("criteria_met");
    /// A baseline stands for the next deployment: taken, intact (its hash is the hash of its
    /// state), and no rollback since (releases).
    pub const BASELINE_TAKEN: Guard = Guard::from_static("baseline_taken");
    /// Every environment was deployed in the current attempt (releases).
    pub const DEPLOYED_EVERYWHERE: Guard = Guard::from_static("deployed_everywhere");
    /// The latest deployment failed (releases).
    pub const DEPLOYMENT_FAILED: Guard = Guard::from_static("deployment_failed");
    /// The failed deployment was rolled back (releases).
    pub const ROLLED_BACK: Guard = Guard::from_static("rolled_back");
    /// The early-life review is recorded (releases).
    pub const EARLY_LIFE_REVIEWED: Guard = Guard::from_static("early_life_reviewed");
}

/// The stages of a release, which its lifecycle's statuses name.
pub mod stage {
    /// Logged and planned, not yet built.
    pub const PLANNED: &str = "planned";
    /// Built: its acceptance criteria are verified.
    pub const BUILT: &str = "built";
    /// Accepted: awaiting approval.
    pub const ACCEPTED: &str = "accepted";
    /// Approved: a baseline is taken next.
    pub const APPROVED: &str = "approved";
    /// Baselined: ready to deploy.
    pub const BASELINED: &str = "baselined";
    /// Being deployed, environment by environment.
    pub const DEPLOYING: &str = "deploying";
    /// A deployment failed: it is rolled back.
    pub const FAILED: &str = "failed";
    /// Rolled back: a new baseline comes before the next attempt.
    pub const ROLLED_BACK: &str = "rolled_back";
    /// Deployed everywhere: in early-life support.
    pub const EARLY_LIFE: &str = "early_life";
    /// Closed.
    pub const CLOSED: &str = "closed";
    /// Rejected by an approver.
    pub const REJECTED: &str = "rejected";
    /// Cancelled.
    pub const CANCELLED: &str = "cancelled";
}

/// What release management consults.
#[derive(Clone)]
pub struct ReleasePolicy {
    /// Every lifecycle version releases may follow (and the one new releases are logged
    /// under), matrix, attributes.
    pub record: RecordPolicy,
    /// What each kind requires; what a failure and a closure do.
    pub kinds: ReleaseKinds,
    /// Who approves releases (the change approval policy).
    pub approvals: ApprovalPolicy,
    /// Where a baseline is read; without one, no baseline can be taken.
    pub baselines: Option<Arc<dyn BaselineSource>>,
    /// Where the authorisation of a release's changes is read; without one, a release with
    /// changes in its scope does not deploy.
    pub changes: Option<Arc<dyn ChangeAuthorisations>>,
}

impl std::fmt::Debug for ReleasePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleasePolicy")
            .field("record", &self.record)
            .field("kinds", &self.kinds)
            .field("approvals", &self.approvals)
            .field("baselines", &self.baselines.is_some())
            .field("changes", &self.changes.is_some())
            .finish()
    }
}

impl Default for ReleasePolicy {
    /// The reference lifecycle, release policy and approval policy; no baseline source, no
    /// change authorisations.
    fn default() -> Self {
        Self {
            record: RecordPolicy::new(default_lifecycle()),
            kinds: ReleaseKinds::reference(),
            approvals: ApprovalPolicy::reference(),
            baselines: None,
            changes: None,
        }
    }
}

impl ReleasePolicy {
    /// Sets what each kind requires.
    pub fn with_kinds(mut self, kinds: ReleaseKinds) -> Self {
        self.kinds = kinds;
        self
    }
    /// Sets the approval policy.
    pub fn with_approvals(mut self, approvals: ApprovalPolicy) -> Self {
        self.approvals = approvals;
        self
    }
    /// Takes baselines from `source`.
    pub fn with_baselines(mut self, source: Arc<dyn BaselineSource>) -> Self {
        self.baselines = Some(source);
        self
    }
    /// Reads the authorisation of a release's changes from `source`.
    pub fn with_changes(mut self, source: Arc<dyn ChangeAuthorisations>) -> Self {
        self.changes = Some(source);
        self
    }
}

/// Why release management refuses beyond the shared reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseRule {
    /// The policy names no requirements for the release's kind.
    #[error("the release policy names no requirements for {0} releases")]
    NoKindPolicy(ReleaseKind),
    /// The command is not taken in the release's current stage.
    #[error("{command} is not taken while the release is in stage {stage}")]
    WrongStage {
        /// The command.
        command: &'static str,
        /// The stage.
        stage: String,
    },
    /// No plan with a deployment and a rollback plan is recorded.
    #[error("the release has no plan with a deployment and a rollback plan")]
    NoPlan,
    /// A criterion the release's kind does not name.
    #[error("{criterion:?} is not an acceptance criterion of this release (its criteria: {known})")]
    UnknownCriterion {
        /// The name given.
        criterion: String,
        /// The release's criteria.
        known: String,
    },
    /// Acceptance before every criterion passed.
    #[error("acceptance criteria not met: {0}")]
    CriteriaNotMet(String),
    /// No approval rule applies.
    #[error("no approval rule applies to {0} releases")]
    NoApprovalRule(ReleaseKind),
    /// The approver is the requester or the deployer.
    #[error("{approver} may not approve or reject this release: they are its {role}")]
    SegregationOfDuties {
        /// Who.
        approver: PersonId,
        /// `requester` or `deployer`.
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
    /// The approver approved already.
    #[error("{0} approved this release already")]
    AlreadyApproved(PersonId),
    /// An approver of the release may not deploy it.
    #[error("{0} approved this release, so may not deploy it")]
    ApproverDeploys(PersonId),
    /// A deployment asked for before a baseline was taken, or after a rollback retired it.
    #[error(
        "no baseline stands for this deployment: take a baseline of the release's CIs first (take baseline)"
    )]
    NoBaseline,
    /// A rollback with no failed deployment of the current attempt to roll back.
    #[error(
        "no failed deployment of the current attempt to roll back: record the deployment's failure first"
    )]
    NothingToRollBack,
    /// No baseline source is configured.
    #[error("no baseline source is configured: set ReleasePolicy::baselines")]
    NoBaselineSource,
    /// The source could not give a baseline of the release's CIs.
    #[error("no baseline of the release's CIs: {0}")]
    Baseline(BaselineError),
    /// The release has no CI to baseline.
    #[error("the release names no configuration item to baseline: plan its CIs first")]
    NothingToBaseline,
    /// A change in the release's scope is not authorised (or not known).
    #[error("change {change} in the release's scope is {why}: the release does not deploy")]
    ChangeNotAuthorised {
        /// The change.
        change: Reference,
        /// `not authorised`, `unknown`, or `unchecked (no change authorisations configured)`.
        why: &'static str,
    },
    /// A change link of the release's scope that names no change reference, so its
    /// authorisation cannot be checked.
    #[error("the release's scope links change {0:?}, which is not a change reference: unlink it")]
    NotAChange(String),
    /// A deployment recorded for another environment than the next one.
    #[error("the next environment to deploy is {expected}, not {given:?}")]
    WrongEnvironment {
        /// The next environment.
        expected: String,
        /// The one named.
        given: String,
    },
    /// An incident correlated outside the early-life window.
    #[error("the early-life window {window} does not include {at}")]
    OutsideEarlyLife {
        /// The window.
        window: String,
        /// The instant.
        at: String,
    },
    /// An incident correlated that names nothing of the release, or a CI or service that is
    /// not the release's.
    #[error("incident {incident} is not related to the release: {why}")]
    Unrelated {
        /// The incident.
        incident: Reference,
        /// What it names that is not the release's.
        why: String,
    },
    /// The early-life review before the window ended, without a waiver.
    #[error("the early-life window runs until {0}: review it then, or waive it with a reason")]
    EarlyLifeOpen(String),
    /// The early-life window was already reviewed or waived.
    #[error("the early-life window was {0} already")]
    EarlyLifeDone(&'static str),
    /// A lifecycle migration to another lifecycle, or that moves the release to another
    /// stage.
    #[error(
        "a release migrates only to a version of its own lifecycle ({lifecycle}), keeping its stage: {why}"
    )]
    Migration {
        /// Its lifecycle's name.
        lifecycle: String,
        /// What the migration would do.
        why: String,
    },
}

/// A refused release command.
pub type ReleaseRefusal = Refusal<ReleaseRule>;

/// Release management: `decide` for [`Release`]s.
///
/// A minor release logged with its plan, built, and accepted once its kind's criteria are
/// verified; its approval by its own requester is refused:
///
/// ```
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use std::sync::Arc;
/// use chrono::{TimeZone, Utc};
/// use smsys_core::records::release::ReleasePlan;
/// use smsys_core::records::{Channel, RecordKind, Release, ReleaseKind};
/// use smsys_core::{Actor, CommandHandler, CommandMeta, Context, SequentialIds};
/// use smsys_processes::LogRecord;
/// use smsys_processes::release::{LogRelease, ReleaseCommand, ReleaseManagement, ReleasePolicy};
/// use smsys_store::MemoryEventStore;
///
/// let releases = CommandHandler::<ReleaseManagement>::new(
///     Arc::new(MemoryEventStore::new()),
///     ReleasePolicy::default(),
/// );
/// let stream = Release::stream(&"REL-0001".parse()?)?;
/// let ids = SequentialIds::new(1);
/// let ctx = Context::new(Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(), &ids);
/// let as_who = |who: &str| Actor::new(who).map(CommandMeta::new);
/// let record = LogRecord::new(
///     "REL-0001".parse()?, "rita".parse()?, Channel::Portal, "email".parse()?, "mail 2.5",
/// )
/// .affected_cis(vec!["mx-01".parse()?]);
/// let plan = ReleasePlan {
///     deployment: "rolling restart".into(),
///     rollback: "reinstall 2.4".into(),
///     ..ReleasePlan::default()
/// };
/// let log = ReleaseCommand::log(LogRelease::new(record, ReleaseKind::Minor).plan(plan));
/// releases.execute(&stream, &log, &as_who("rita")?, &ctx).await?;
/// let build = ReleaseCommand::RecordBuild { build: "2.5.0".into(), notes: String::new() };
/// releases.execute(&stream, &build, &as_who("ivan")?, &ctx).await?;
/// for criterion in ["regression_tests", "operational_readiness"] {
///     let verified = ReleaseCommand::VerifyCriterion {
///         criterion: criterion.into(),
///         passed: true,
///         evidence: "run 42".into(),
///     };
///     releases.execute(&stream, &verified, &as_who("quinn")?, &ctx).await?;
/// }
/// releases.execute(&stream, &ReleaseCommand::Accept, &as_who("quinn")?, &ctx).await?;
/// let own = ReleaseCommand::Approve { group: None };
/// assert!(releases.execute(&stream, &own, &as_who("rita")?, &ctx).await.is_err());
/// let release = releases.load(&stream).await?.state;
/// assert_eq!(release.record().status(), Some("accepted"));
/// assert!(release.criteria_met());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).map_err(|e| e.to_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ReleaseManagement;

impl RecordRules for ReleaseManagement {
    type Record = Release;
    type Policy = ReleasePolicy;
    type Rule = ReleaseRule;

    fn vocabulary() -> Vocabulary {
        use Phase::{Active, Cancelled, Closed, New, Pending, Resolved};
        let rule = |trigger, from, to| TriggerRule { trigger, from, to };
        let mut triggers = desk_triggers();
        triggers.extend([
            rule(Trigger::BUILD, &[New], &[Active]),
            rule(Trigger::ACCEPT, &[Active], &[Pending]),
            rule(Trigger::APPROVE, &[Pending], &[Active]),
            rule(Trigger::REJECT, &[Pending], &[Cancelled]),
            rule(Trigger::BASELINE, &[Active], &[Active]),
            rule(Trigger::DEPLOY, &[Active], &[Active]),
            rule(Trigger::COMPLETE, &[Active], &[Resolved]),
            rule(Trigger::FAIL, &[Active], &[Active]),
            rule(Trigger::ROLL_BACK, &[Active], &[Active]),
        ]);
        let stage = |name, phase| StageRule { name, phase };
        Vocabulary {
            record_type: <Release as smsys_core::records::RecordKind>::RECORD_TYPE,
            triggers,
            guards: vec![
                Guard::PLANNED,
                Guard::BUILT,
                Guard::CRITERIA_MET,
                Guard::AUTHORISED,
                Guard::BASELINE_TAKEN,
                Guard::DEPLOYED_EVERYWHERE,
                Guard::DEPLOYMENT_FAILED,
                Guard::ROLLED_BACK,
                Guard::EARLY_LIFE_REVIEWED,
            ],
            stages: vec![
                stage(stage::PLANNED, New),
                stage(stage::BUILT, Active),
                stage(stage::ACCEPTED, Pending),
                stage(stage::APPROVED, Active),
                stage(stage::BASELINED, Active),
                stage(stage::DEPLOYING, Active),
                stage(stage::FAILED, Active),
                stage(stage::ROLLED_BACK, Active),
                stage(stage::EARLY_LIFE, Resolved),
                stage(stage::CLOSED, Closed),
                stage(stage::REJECTED, Cancelled),
                stage(stage::CANCELLED, Cancelled),
            ],
        }
    }

    fn record_policy(policy: &ReleasePolicy) -> &RecordPolicy {
        &policy.record
    }

    fn guard_holds(release: &Release, guard: &Guard) -> bool {
        if *guard == Guard::PLANNED {
            release
                .plan()
                .is_some_and(|p| !p.deployment.trim().is_empty() && !p.rollback.trim().is_empty())
        } else if *guard == Guard::BUILT {
            release.build().is_some()
        } else if *guard == Guard::CRITERIA_MET {
            release.criteria_met()
        } else if *guard == Guard::AUTHORISED {
            release.authorisation().is_some()
        } else if *guard == Guard::BASELINE_TAKEN {
            release.baseline().is_some_and(Baseline::is_intact)
        } else if *guard == Guard::DEPLOYED_EVERYWHERE {
            release.baseline().is_some() && release.next_environment().is_none()
        } else if *guard == Guard::DEPLOYMENT_FAILED {
            release.failed_deployment().is_some()
        } else if *guard == Guard::ROLLED_BACK {
            release.baseline().is_none() && !release.rollbacks().is_empty()
        } else if *guard == Guard::EARLY_LIFE_REVIEWED {
            release.review().is_some()
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_lifecycle_and_policy_load() {
        let lifecycle = default_lifecycle();
        assert_eq!(lifecycle.initial().name, "planned");
        let kinds = ReleaseKinds::reference();
        for kind in ReleaseKind::ALL {
            let requires = kinds.get(kind);
            assert!(
                requires.is_some_and(|r| !r.environments.is_empty()),
                "{kind}"
            );
        }
        let policy = ReleasePolicy::default();
        for kind in ReleaseKind::ALL {
            let by = policy.kinds.get(kind).map(|k| k.approval);
            assert!(
                by.is_some_and(|a| policy.approvals.rule_for(a.kind, a.major).is_some()),
                "an approval rule applies to {kind} releases"
            );
        }
    }
}
