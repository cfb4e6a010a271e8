//! Releases (ISO/IEC 20000-1 8.5.3) as event streams: category `release`, references like
//! `REL-0001`, the shared events, and the plan, build, acceptance, approvals, baseline,
//! deployment, rollback and early-life events of their own.
//!
//! A release is logged with its kind ([`ReleaseKind`]: major, minor or emergency), the
//! acceptance criteria it must meet ([`AcceptanceCriterion`]), the environments it is
//! deployed to, in order, and the days of its early-life window, all copied from the policy
//! of its kind so a later policy edit never rewrites what a release had to meet. Its scope (the changes, problems and known
//! errors it delivers) is its links. Each criterion is verified with its evidence, who and
//! when. Before a deployment a [`Baseline`] records the exact state of every affected CI
//! (attributes, status and outgoing relationships) as of a log position, with a SHA-256 hash
//! of that state, so a rollback names what it returns to and an auditor can check it. Each
//! environment's deployment is recorded with its outcome; a failure is rolled back. After
//! the last environment the early-life window opens: incidents correlated with the release
//! are recorded on it, and an early-life review comes before closure, once the window ended
//! or was waived with a reason.
//!
//! The rules (lifecycle, approvals with segregation of duties, what each kind requires) are
//! in `smsys-processes`.

mod state;

use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::records::attribute::Attributes;
use crate::records::change::PlannedCiUpdate;
use crate::records::event::Logged;
use crate::records::ids::{CiId, CiType, GroupId, PersonId, Reference, Relationship, ServiceId};
use crate::records::kind::{LoggedEvent, OwnEvents, TypedEvent};
use crate::stream::Position;

pub use state::{Correlation, Deployment, EarlyLifeReview, Release, Rollback, Verification};

/// The kind of a release: what it requires, per the release policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKind {
    /// A major release: new or changed services, the full acceptance and approval.
    Major,
    /// A minor release: fixes and small enhancements.
    Minor,
    /// An emergency release: made at once to fix a service, with an expedited authority.
    Emergency,
}

impl ReleaseKind {
    /// Every kind.
    pub const ALL: [ReleaseKind; 3] = [
        ReleaseKind::Major,
        ReleaseKind::Minor,
        ReleaseKind::Emergency,
    ];

    /// The kind as recorded: `major`, `minor`, `emergency`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseKind::Major => "major",
            ReleaseKind::Minor => "minor",
            ReleaseKind::Emergency => "emergency",
        }
    }
}

impl fmt::Display for ReleaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no release kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a release kind (major, minor, emergency)")]
pub struct UnknownReleaseKind(pub String);

impl FromStr for ReleaseKind {
    type Err = UnknownReleaseKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReleaseKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownReleaseKind(s.to_owned()))
    }
}

/// An acceptance criterion a release must meet before it is approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceCriterion {
    /// Its name, unique within the release, e.g. `regression_tests`.
    pub name: String,
    /// What must hold.
    #[serde(default)]
    pub description: String,
}

/// A release's logged payload: the shared fields (the caller is the requester), its kind,
/// its acceptance criteria, its environments in deployment order and the length of its
/// early-life window, each copied from the policy of its kind. Stored at the shared logged
/// schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseLogged {
    /// The shared fields.
    #[serde(flatten)]
    pub record: Logged,
    /// Its kind.
    pub kind: ReleaseKind,
    /// The criteria it must meet.
    pub criteria: Vec<AcceptanceCriterion>,
    /// The environments it is deployed to, in order; the last is production.
    pub environments: Vec<String>,
    /// How many days its early-life window lasts after the last environment's deployment.
    pub early_life_days: u32,
}

impl LoggedEvent for ReleaseLogged {
    fn logged(&self) -> &Logged {
        &self.record
    }
}

/// What a release deploys and to what.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReleasePlan {
    /// The configuration items it changes (its baseline covers them).
    pub cis: Vec<CiId>,
    /// The services it affects beyond the one it was logged for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceId>,
    /// How it is deployed.
    pub deployment: String,
    /// How a failed deployment is rolled back.
    pub rollback: String,
    /// Who deploys it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployer: Option<PersonId>,
    /// The CI updates its deployment to the last environment makes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ci_updates: Vec<PlannedCiUpdate>,
}

/// One CI as a baseline records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineCi {
    /// The CI.
    pub id: CiId,
    /// Its type.
    pub ci_type: CiType,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: String,
    /// Its attributes.
    #[serde(default)]
    pub attributes: Attributes,
    /// Its outgoing relationships, sorted.
    #[serde(default)]
    pub relationships: Vec<(Relationship, CiId)>,
}

/// The exact state of a release's affected CIs as of a log position, with a SHA-256 hash of
/// that state (`as_of` and the CIs), taken before a deployment.
///
/// ```
/// use smsys_core::records::release::{Baseline, BaselineCi};
/// use smsys_core::Position;
/// let ci = BaselineCi {
///     id: "srv-01".parse()?,
///     ci_type: "server".parse()?,
///     name: "srv-01".into(),
///     status: "live".into(),
///     attributes: Default::default(),
///     relationships: Vec::new(),
/// };
/// let baseline = Baseline::new(Position::from_sequence(42), vec![ci]);
/// assert!(baseline.is_intact());
/// assert_eq!(baseline.hash.len(), 64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// The log position of the configuration it records.
    pub as_of: Position,
    /// Every affected CI, sorted by id.
    pub cis: Vec<BaselineCi>,
    /// SHA-256 of `as_of` and `cis`, 64 lowercase hex digits.
    pub hash: String,
}

impl Baseline {
    /// A baseline of `cis` as of `as_of`: the CIs and their relationships sorted, the hash
    /// computed.
    pub fn new(as_of: Position, mut cis: Vec<BaselineCi>) -> Self {
        for ci in &mut cis {
            ci.relationships.sort();
            ci.relationships.dedup();
        }
        cis.sort_by(|a, b| a.id.cmp(&b.id));
        cis.dedup_by(|a, b| a.id == b.id);
        let hash = Self::digest(as_of, &cis);
        Self { as_of, cis, hash }
    }

    /// The hash of `as_of` and `cis` as recorded now.
    pub fn computed_hash(&self) -> String {
        Self::digest(self.as_of, &self.cis)
    }

    /// Whether the recorded hash is the hash of the recorded state.
    pub fn is_intact(&self) -> bool {
        self.computed_hash() == self.hash
    }

    /// The baseline's record of `ci`.
    pub fn ci(&self, ci: &CiId) -> Option<&BaselineCi> {
        self.cis.iter().find(|c| &c.id == ci)
    }

    fn digest(as_of: Position, cis: &[BaselineCi]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(as_of.commit().to_be_bytes());
        hasher.update(as_of.sequence().to_be_bytes());
        // Serialising these plain structs (strings, maps with ordered keys) cannot fail.
        let state = serde_json::to_vec(cis).unwrap_or_default();
        hasher.update(&state);
        let mut hex = String::with_capacity(64);
        for byte in hasher.finalize() {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

/// How a deployment to one environment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentOutcome {
    /// Deployed and verified.
    Success,
    /// Not deployed, or deployed and not working: it is rolled back.
    Failed,
}

impl DeploymentOutcome {
    /// The outcome as recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentOutcome::Success => "success",
            DeploymentOutcome::Failed => "failed",
        }
    }
}

/// A release's own events. Each at schema version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum ReleaseControlEvent {
    /// The plan was set or revised.
    Planned(ReleasePlan),
    /// The release was built.
    Built {
        /// The build's identifier (version, tag, artefact).
        build: String,
        /// What was built.
        notes: String,
    },
    /// An acceptance criterion was verified (again, replacing an earlier verification).
    CriterionVerified {
        /// The criterion's name.
        criterion: String,
        /// Whether it is met.
        passed: bool,
        /// The evidence (test run, sign-off, document).
        evidence: String,
    },
    /// One approver approved, for one of the groups the approval policy asks.
    ApprovalGiven {
        /// Who.
        approver: PersonId,
        /// The group they approved for.
        group: GroupId,
    },
    /// An approver rejected the release.
    ApprovalRejected {
        /// Who.
        approver: PersonId,
        /// The group they rejected for.
        group: GroupId,
        /// Why.
        reason: String,
    },
    /// The release is approved: the approval rule's quorum was reached.
    Authorised {
        /// The approval rule that applied.
        rule: String,
        /// The approvers counted.
        approvers: Vec<PersonId>,
    },
    /// A baseline of the affected CIs was taken.
    BaselineTaken(Baseline),
    /// The deployment to one environment ended.
    Deployed {
        /// The environment.
        environment: String,
        /// How.
        outcome: DeploymentOutcome,
        /// What was done or went wrong.
        notes: String,
    },
    /// A failed deployment was rolled back to the latest baseline.
    RolledBack {
        /// The environment rolled back.
        environment: String,
        /// The hash of the baseline it returned to.
        baseline: String,
        /// Whether the service was restored to the baseline.
        restored: bool,
        /// What was done.
        notes: String,
    },
    /// The early-life support window opened after the last environment's deployment.
    EarlyLifeStarted {
        /// When it ends.
        until: DateTime<Utc>,
    },
    /// An incident was correlated with the release during its early-life window.
    IncidentCorrelated {
        /// The incident.
        incident: Reference,
        /// The release's CIs the incident names.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cis: Vec<CiId>,
        /// The release's service the incident names.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<ServiceId>,
    },
    /// The early-life window was waived before it ended.
    EarlyLifeWaived {
        /// Why (required).
        reason: String,
    },
    /// The early-life review: the correlated incidents and the verdict.
    EarlyLifeReviewed {
        /// Whether the release met its objectives.
        successful: bool,
        /// What the review found.
        findings: String,
        /// The incidents correlated when it was reviewed.
        incidents: Vec<Reference>,
    },
}

impl OwnEvents for ReleaseControlEvent {
    const NAMES: &'static [&'static str] = &[
        "planned",
        "built",
        "criterion_verified",
        "approval_given",
        "approval_rejected",
        "authorised",
        "baseline_taken",
        "deployed",
        "rolled_back",
        "early_life_started",
        "incident_correlated",
        "early_life_waived",
        "early_life_reviewed",
    ];

    fn name(&self) -> &'static str {
        match self {
            ReleaseControlEvent::Planned(_) => "planned",
            ReleaseControlEvent::Built { .. } => "built",
            ReleaseControlEvent::CriterionVerified { .. } => "criterion_verified",
            ReleaseControlEvent::ApprovalGiven { .. } => "approval_given",
            ReleaseControlEvent::ApprovalRejected { .. } => "approval_rejected",
            ReleaseControlEvent::Authorised { .. } => "authorised",
            ReleaseControlEvent::BaselineTaken(_) => "baseline_taken",
            ReleaseControlEvent::Deployed { .. } => "deployed",
            ReleaseControlEvent::RolledBack { .. } => "rolled_back",
            ReleaseControlEvent::EarlyLifeStarted { .. } => "early_life_started",
            ReleaseControlEvent::IncidentCorrelated { .. } => "incident_correlated",
            ReleaseControlEvent::EarlyLifeWaived { .. } => "early_life_waived",
            ReleaseControlEvent::EarlyLifeReviewed { .. } => "early_life_reviewed",
        }
    }
}

/// A release's event (logged, shared or its own).
pub type ReleaseEvent = TypedEvent<Release>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_event_names_are_distinct_from_the_shared_ones() {
        assert_eq!(ReleaseEvent::name_clash(), None);
    }

    #[test]
    fn kinds_round_trip_through_text() {
        for kind in ReleaseKind::ALL {
            assert_eq!(kind.as_str().parse::<ReleaseKind>(), Ok(kind));
        }
        assert!("patch".parse::<ReleaseKind>().is_err());
    }

    fn ci(id: &str, status: &str) -> BaselineCi {
        BaselineCi {
            id: CiId::new(id).unwrap_or_else(|e| unreachable!("{e}")),
            ci_type: CiType::new("server").unwrap_or_else(|e| unreachable!("{e}")),
            name: id.into(),
            status: status.into(),
            attributes: Attributes::new(),
            relationships: Vec::new(),
        }
    }

    #[test]
    fn a_baseline_hash_covers_every_field_and_ignores_input_order() {
        let a = Baseline::new(
            Position::from_sequence(7),
            vec![ci("b", "live"), ci("a", "live")],
        );
        let b = Baseline::new(
            Position::from_sequence(7),
            vec![ci("a", "live"), ci("b", "live")],
        );
        assert_eq!(a, b);
        assert!(a.is_intact());
        let moved = Baseline::new(
            Position::from_sequence(8),
            vec![ci("a", "live"), ci("b", "live")],
        );
        assert_ne!(a.hash, moved.hash);
        let mut altered = a;
        altered.cis[0].status = "maintenance".into();
        assert!(!altered.is_intact());
    }
}
