//! What can be asked of a release, and what logging one takes.

use smsys_core::records::release::{DeploymentOutcome, ReleasePlan};
use smsys_core::records::{CiId, GroupId, Reference, ReleaseKind, ServiceId};

use crate::record::{LogRecord, RecordCommand};

#[cfg(doc)]
use super::BaselineSource;

/// What logging a release takes.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRelease {
    /// The shared fields (the caller is the requester; the affected CIs are the CIs it
    /// changes).
    pub record: LogRecord,
    /// Its kind.
    pub kind: ReleaseKind,
    /// A first plan.
    pub plan: Option<ReleasePlan>,
}

impl LogRelease {
    /// A release of `kind`, without a plan.
    pub fn new(record: LogRecord, kind: ReleaseKind) -> Self {
        Self {
            record,
            kind,
            plan: None,
        }
    }

    /// With a first plan.
    pub fn plan(mut self, plan: ReleasePlan) -> Self {
        self.plan = Some(plan);
        self
    }
}

/// What can be asked of a release.
#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseCommand {
    /// Record it.
    Log(Box<LogRelease>),
    /// A command every record accepts (links set its scope; close once reviewed; cancel).
    Record(RecordCommand),
    /// Set or revise the plan (before it is built).
    Plan(ReleasePlan),
    /// Record the build (planned releases with a plan).
    RecordBuild {
        /// The build's identifier (required).
        build: String,
        /// What was built.
        notes: String,
    },
    /// Verify one acceptance criterion (while built), with its evidence.
    VerifyCriterion {
        /// The criterion's name.
        criterion: String,
        /// Whether it is met.
        passed: bool,
        /// The evidence (required).
        evidence: String,
    },
    /// Accept it once every criterion passed: it awaits approval.
    Accept,
    /// Approve it, as the acting person, for one of the groups of the rule its kind names;
    /// the quorum approves it.
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
    /// Take a baseline of its CIs from the policy's [`BaselineSource`] (approved, or rolled
    /// back, or again before deploying).
    TakeBaseline,
    /// Start deploying (baselined, its changes authorised, the actor not an approver).
    StartDeployment,
    /// Record the deployment to the next environment.
    RecordDeployment {
        /// The environment (the next in the kind's order).
        environment: String,
        /// How it ended.
        outcome: DeploymentOutcome,
        /// What was done or went wrong (required).
        notes: String,
    },
    /// Record that a failed deployment was rolled back to the baseline.
    RollBack {
        /// Whether the service was restored to the baseline.
        restored: bool,
        /// What was done (required).
        notes: String,
    },
    /// Correlate an incident with it (within its early-life window).
    CorrelateIncident {
        /// The incident.
        incident: Reference,
        /// The release's CIs it names.
        cis: Vec<CiId>,
        /// The release's service it names.
        service: Option<ServiceId>,
    },
    /// Waive the rest of the early-life window (with a reason).
    WaiveEarlyLife {
        /// Why (required).
        reason: String,
    },
    /// Record the early-life review (once the window ended or was waived).
    RecordEarlyLifeReview {
        /// Whether the release met its objectives.
        successful: bool,
        /// What the review found (required).
        findings: String,
    },
}

impl From<RecordCommand> for ReleaseCommand {
    fn from(command: RecordCommand) -> Self {
        ReleaseCommand::Record(command)
    }
}

impl ReleaseCommand {
    /// Log `release`.
    pub fn log(release: LogRelease) -> Self {
        ReleaseCommand::Log(Box::new(release))
    }

    /// The command's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            ReleaseCommand::Log(_) => "log",
            ReleaseCommand::Record(c) => c.name(),
            ReleaseCommand::Plan(_) => "plan",
            ReleaseCommand::RecordBuild { .. } => "record build",
            ReleaseCommand::VerifyCriterion { .. } => "verify criterion",
            ReleaseCommand::Accept => "accept",
            ReleaseCommand::Approve { .. } => "approve",
            ReleaseCommand::Reject { .. } => "reject",
            ReleaseCommand::TakeBaseline => "take baseline",
            ReleaseCommand::StartDeployment => "start deployment",
            ReleaseCommand::RecordDeployment { .. } => "record deployment",
            ReleaseCommand::RollBack { .. } => "roll back",
            ReleaseCommand::CorrelateIncident { .. } => "correlate incident",
            ReleaseCommand::WaiveEarlyLife { .. } => "waive early life",
            ReleaseCommand::RecordEarlyLifeReview { .. } => "record early-life review",
        }
    }
}
