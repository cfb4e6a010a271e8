//! What each release kind requires, as data: the approval rule, the environments, the
//! early-life window and the acceptance criteria; and what a failure and a closure do.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use serde::{Deserialize, Serialize};
use smsys_core::records::release::AcceptanceCriterion;
use smsys_core::records::{ChangeKind, ReleaseKind};

const REFERENCE: &str = include_str!("policy.toml");

/// Which rule of the approval policy approves releases of a kind: the rule a change of
/// `kind`, major-impact or not, would be authorised under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRef {
    /// The change kind whose rule applies.
    pub kind: ChangeKind,
    /// Whether the major-impact rule applies.
    #[serde(default)]
    pub major: bool,
}

/// What releases of one kind require.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseKindPolicy {
    /// The approval rule.
    pub approval: ApprovalRef,
    /// The environments, in deployment order; the last is production.
    pub environments: Vec<String>,
    /// How many days early-life support lasts after the last deployment.
    pub early_life_days: u32,
    /// The acceptance criteria.
    pub criteria: Vec<AcceptanceCriterion>,
}

impl ReleaseKindPolicy {
    /// The early-life window's length.
    pub fn early_life(&self) -> Duration {
        Duration::days(i64::from(self.early_life_days))
    }
}

/// What a rolled-back deployment raises (each linked to the release, exactly once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailurePolicy {
    /// An incident on the release's service and CIs.
    #[serde(default)]
    pub incident: bool,
    /// A problem to find why the deployment failed.
    #[serde(default)]
    pub problem: bool,
}

/// What closing a release does to the records it delivers (exactly once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosurePolicy {
    /// Its changes awaiting review get the early-life review as their post-implementation
    /// review, and are closed.
    #[serde(default)]
    pub review_changes: bool,
    /// Its known errors are retired, naming the release as their fix.
    #[serde(default)]
    pub retire_known_errors: bool,
}

/// The release policy: per kind, what a release requires; what a failure and a closure do.
///
/// ```
/// use smsys_core::records::ReleaseKind;
/// use smsys_processes::release::ReleaseKinds;
/// let kinds = ReleaseKinds::reference();
/// let major = kinds.get(ReleaseKind::Major).expect("a major release policy");
/// assert_eq!(major.environments.last().map(String::as_str), Some("production"));
/// assert!(ReleaseKinds::from_toml("version = 1\n[kinds.minor]\napproval = { kind = \"normal\" }\nenvironments = []\nearly_life_days = 1\ncriteria = []\n").is_err());
/// // A misspelt field is refused, not ignored.
/// let typo = "version = 1\n[closure]\nretire_known_error = true\n";
/// assert!(ReleaseKinds::from_toml(typo).is_err_and(|e| e.to_string().contains("retire_known_error")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseKinds {
    /// Its version.
    pub version: u32,
    /// What each kind requires.
    pub kinds: BTreeMap<ReleaseKind, ReleaseKindPolicy>,
    /// What a rolled-back deployment raises.
    #[serde(default)]
    pub on_failure: FailurePolicy,
    /// What closing a release does.
    #[serde(default)]
    pub closure: ClosurePolicy,
}

/// Why a release policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseKindsError {
    /// The text is not a release policy.
    #[error("not a release policy: {0}")]
    Parse(String),
    /// A kind with no environment.
    #[error("{0} releases name no environment to deploy to")]
    NoEnvironment(ReleaseKind),
    /// An environment or a criterion named twice, or with an empty name.
    #[error("{kind} releases name {what} {name:?} {why}")]
    BadName {
        /// The kind.
        kind: ReleaseKind,
        /// `environment` or `criterion`.
        what: &'static str,
        /// The name.
        name: String,
        /// `twice` or `empty`.
        why: &'static str,
    },
}

impl ReleaseKinds {
    /// The reference policy (`release/policy.toml`): major releases through test, staging and
    /// production, approved by the change advisory board, 14 days of early life; minor ones
    /// through test and production, approved by a change manager, 7 days; emergency ones
    /// straight to production, approved by the emergency board, 3 days. A rolled-back
    /// deployment raises an incident; closing a release reviews and closes its changes and
    /// retires its known errors.
    pub fn reference() -> Self {
        Self::from_toml(REFERENCE)
            .unwrap_or_else(|e| unreachable!("the shipped release policy is valid: {e}"))
    }

    /// A policy from TOML, checked.
    pub fn from_toml(text: &str) -> Result<Self, ReleaseKindsError> {
        let policy: Self =
            toml::from_str(text).map_err(|e| ReleaseKindsError::Parse(e.to_string()))?;
        policy.check()
    }

    /// What releases of `kind` require, if the policy names the kind.
    pub fn get(&self, kind: ReleaseKind) -> Option<&ReleaseKindPolicy> {
        self.kinds.get(&kind)
    }

    fn check(self) -> Result<Self, ReleaseKindsError> {
        for (kind, policy) in &self.kinds {
            if policy.environments.is_empty() {
                return Err(ReleaseKindsError::NoEnvironment(*kind));
            }
            let names = |what, names: Vec<&str>| {
                let mut seen = BTreeSet::new();
                for name in names {
                    let why = if name.trim().is_empty() {
                        "empty"
                    } else if !seen.insert(name) {
                        "twice"
                    } else {
                        continue;
                    };
                    return Err(ReleaseKindsError::BadName {
                        kind: *kind,
                        what,
                        name: name.to_owned(),
                        why,
                    });
                }
                Ok(())
            };
            names(
                "environment",
                policy.environments.iter().map(String::as_str).collect(),
            )?;
            names(
                "criterion",
                policy.criteria.iter().map(|c| c.name.as_str()).collect(),
            )?;
        }
        Ok(self)
    }
}

impl Default for ReleaseKinds {
    /// The reference policy.
    fn default() -> Self {
        Self::reference()
    }
}
