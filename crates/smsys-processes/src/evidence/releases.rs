//! The evidence of release and deployment management (8.5.3), from folded releases.

use serde::Serialize;
use smsys_core::records::{RecordKind, Release};

use super::{Figure, Period, Shortfall, Tally};

/// The figures of 8.5.3 over the releases logged in a period.
///
/// - `deployed_with_acceptance`: releases with a deployment whose acceptance criteria are
///   met (the latest verification of each passed);
/// - `deployed_with_approval`: releases with a deployment, approved;
/// - `deployed_with_baseline`: releases with a deployment, every deployment standing on a
///   baseline (its attempt started with one);
/// - `early_life_reviewed`: releases whose early life started, with an early-life review (a
///   waiver shortens the window; the review is still due);
/// - `rollbacks_per_release`: rollbacks over releases (`percent` is per hundred releases);
///   the shortfalls are the rollbacks that did not restore the service.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use smsys_core::records::Release;
/// use smsys_processes::evidence::{Period, ReleaseEvidence};
///
/// let period = Period::new(
///     Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
///     Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
/// )?;
/// let evidence = ReleaseEvidence::from_states([&Release::default()], period);
/// assert_eq!(evidence.releases, 0);
/// assert_eq!(evidence.rollbacks_per_release.percent, None);
/// # Ok::<(), smsys_processes::evidence::EvidenceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseEvidence {
    /// The clause, `8.5.3`.
    pub clause: &'static str,
    /// The period.
    pub period: Period,
    /// How many releases were logged in the period.
    pub releases: u64,
    /// Deployed releases whose acceptance criteria are met.
    pub deployed_with_acceptance: Figure,
    /// Deployed releases approved.
    pub deployed_with_approval: Figure,
    /// Deployed releases, each deployment on a baseline.
    pub deployed_with_baseline: Figure,
    /// Releases in or past early life, reviewed.
    pub early_life_reviewed: Figure,
    /// Rollbacks per release.
    pub rollbacks_per_release: Figure,
}

impl ReleaseEvidence {
    /// The clause these figures evidence.
    pub const CLAUSE: &'static str = "8.5.3";

    /// The figures over `releases` logged in `period` (the others, and releases never
    /// logged, are ignored).
    pub fn from_states<'a>(
        releases: impl IntoIterator<Item = &'a Release>,
        period: Period,
    ) -> Self {
        let mut total = 0;
        let mut rollbacks = 0;
        let mut not_restored = Vec::new();
        let mut acceptance = Tally::new(
            "deployed_with_acceptance",
            "deployed releases whose acceptance criteria are met",
        );
        let mut approval = Tally::new("deployed_with_approval", "deployed releases approved");
        let mut baseline = Tally::new(
            "deployed_with_baseline",
            "deployed releases, each deployment attempt on a baseline",
        );
        let mut early_life = Tally::new(
            "early_life_reviewed",
            "releases in or past early life, reviewed",
        );
        for release in releases {
            let record = release.record();
            let (Some(reference), Some(logged_at)) = (record.reference(), record.logged_at())
            else {
                continue;
            };
            if !period.contains(logged_at) {
                continue;
            }
            total += 1;
            for rollback in release.rollbacks() {
                rollbacks += 1;
                if !rollback.restored {
                    not_restored.push(Shortfall {
                        record: reference.clone(),
                        why: format!(
                            "rolled back in {} without restoring the service",
                            rollback.environment
                        ),
                    });
                }
            }
            if !release.deployments().is_empty() {
                let unmet: Vec<&str> = release
                    .criteria()
                    .iter()
                    .filter(|c| !release.verification(&c.name).is_some_and(|v| v.passed))
                    .map(|c| c.name.as_str())
                    .collect();
                let why = (!unmet.is_empty())
                    .then(|| format!("deployed with criteria not met: {}", unmet.join(", ")));
                acceptance.sample(reference, why);
                let why = release
                    .authorisation()
                    .is_none()
                    .then(|| "deployed without approval".to_owned());
                approval.sample(reference, why);
                let why = release
                    .deployments()
                    .iter()
                    .find(|d| d.attempt == 0)
                    .map(|d| format!("deployed to {} without a baseline", d.environment));
                baseline.sample(reference, why);
            }
            if release.early_life().is_some() {
                let why = match (release.review(), release.waiver()) {
                    (Some(_), _) => None,
                    (None, Some(_)) => Some("early life waived, not reviewed".to_owned()),
                    (None, None) => Some("in early life, not reviewed".to_owned()),
                };
                early_life.sample(reference, why);
            }
        }
        Self {
            clause: Self::CLAUSE,
            period,
            releases: total,
            deployed_with_acceptance: acceptance.figure(),
            deployed_with_approval: approval.figure(),
            deployed_with_baseline: baseline.figure(),
            early_life_reviewed: early_life.figure(),
            rollbacks_per_release: Figure::new(
                "rollbacks_per_release",
                "rollbacks per release (percent: per hundred releases); shortfalls: rollbacks that did not restore the service",
                rollbacks,
                total,
                not_restored,
            ),
        }
    }

    /// Every figure, in the order of the JSON pack.
    pub fn figures(&self) -> [&Figure; 5] {
        [
            &self.deployed_with_acceptance,
            &self.deployed_with_approval,
            &self.deployed_with_baseline,
            &self.early_life_reviewed,
            &self.rollbacks_per_release,
        ]
    }
}
