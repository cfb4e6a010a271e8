//! The evidence of change management (8.5.1), from folded changes.

use serde::Serialize;
use smsys_core::records::change::ImplementationOutcome;
use smsys_core::records::{Change, ChangeKind, RecordKind};

use super::{Figure, Period, Tally};

/// The figures of 8.5.1 over the changes logged in a period.
///
/// - `assessed`: normal and emergency changes with an assessment (a standard change is
///   pre-assessed through its template);
/// - `authorised_by_other`: normal and emergency changes authorised or implemented, whose
///   authorisation is in force and names approvers, none of them the requester (the logged
///   caller);
/// - `remediation_plan`: changes whose plan has a remediation (back-out) plan;
/// - `reviewed`: changes whose implementation ended, with a post-implementation review
///   (under the shipped lifecycles a change closes only once reviewed, so the shortfalls are
///   the changes awaiting review);
/// - `failed_remediated` and `failed_investigated`: changes whose implementation failed, with
///   the remediation executed and the failure investigated;
/// - `emergency_share`: emergency changes among all changes (a share: no shortfalls).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use smsys_core::records::Change;
/// use smsys_processes::evidence::{ChangeEvidence, Period};
///
/// let period = Period::new(
///     Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
///     Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
/// )?;
/// // A change that was never logged is in no period.
/// let evidence = ChangeEvidence::from_states([&Change::default()], period);
/// assert_eq!(evidence.changes, 0);
/// assert_eq!(evidence.figures().len(), 7);
/// # Ok::<(), smsys_processes::evidence::EvidenceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEvidence {
    /// The clause, `8.5.1`.
    pub clause: &'static str,
    /// The period.
    pub period: Period,
    /// How many changes were logged in the period.
    pub changes: u64,
    /// Normal and emergency changes assessed.
    pub assessed: Figure,
    /// Normal and emergency changes authorised by someone other than the requester.
    pub authorised_by_other: Figure,
    /// Changes with a remediation plan.
    pub remediation_plan: Figure,
    /// Implemented changes reviewed.
    pub reviewed: Figure,
    /// Failed changes remediated.
    pub failed_remediated: Figure,
    /// Failed changes investigated.
    pub failed_investigated: Figure,
    /// Emergency changes among all changes.
    pub emergency_share: Figure,
}

impl ChangeEvidence {
    /// The clause these figures evidence.
    pub const CLAUSE: &'static str = "8.5.1";

    /// The figures over `changes` logged in `period` (the others, and changes never logged,
    /// are ignored).
    pub fn from_states<'a>(changes: impl IntoIterator<Item = &'a Change>, period: Period) -> Self {
        let mut total = 0;
        let mut emergency = 0;
        let mut assessed = Tally::new("assessed", "normal and emergency changes assessed");
        let mut authorised = Tally::new(
            "authorised_by_other",
            "normal and emergency changes authorised or implemented, authorised by someone other than the requester",
        );
        let mut remediation = Tally::new("remediation_plan", "changes with a remediation plan");
        let mut reviewed = Tally::new("reviewed", "implemented changes reviewed");
        let mut remediated = Tally::new("failed_remediated", "failed changes remediated");
        let mut investigated = Tally::new("failed_investigated", "failed changes investigated");
        for change in changes {
            let record = change.record();
            let (Some(reference), Some(kind), Some(logged_at)) =
                (record.reference(), change.kind(), record.logged_at())
            else {
                continue;
            };
            if !period.contains(logged_at) {
                continue;
            }
            total += 1;
            let needs_authorisation = match kind {
                ChangeKind::Standard => false,
                ChangeKind::Normal => true,
                ChangeKind::Emergency => {
                    emergency += 1;
                    true
                }
            };
            if needs_authorisation {
                let why = change
                    .assessment()
                    .is_none()
                    .then(|| "not assessed".to_owned());
                assessed.sample(reference, why);
                if change.authorisation().is_some() || change.implementation().is_some() {
                    authorised.sample(reference, authorisation_shortfall(change));
                }
            }
            let why = match change.plan() {
                None => Some("no plan".to_owned()),
                Some(plan) if plan.remediation.trim().is_empty() => {
                    Some("the plan has no remediation".to_owned())
                }
                Some(_) => None,
            };
            remediation.sample(reference, why);
            if let Some(implementation) = change.implementation() {
                let why = change.review().is_none().then(|| {
                    format!(
                        "implemented ({}), not reviewed",
                        implementation.outcome.as_str()
                    )
                });
                reviewed.sample(reference, why);
                if implementation.outcome == ImplementationOutcome::Failed {
                    let why = change
                        .remediation()
                        .is_none()
                        .then(|| "failed, remediation not executed".to_owned());
                    remediated.sample(reference, why);
                    let why = change
                        .investigation()
                        .is_none()
                        .then(|| "failed, not investigated".to_owned());
                    investigated.sample(reference, why);
                }
            }
        }
        Self {
            clause: Self::CLAUSE,
            period,
            changes: total,
            assessed: assessed.figure(),
            authorised_by_other: authorised.figure(),
            remediation_plan: remediation.figure(),
            reviewed: reviewed.figure(),
            failed_remediated: remediated.figure(),
            failed_investigated: investigated.figure(),
            emergency_share: Figure::new(
                "emergency_share",
                "emergency changes among all changes",
                emergency,
                total,
                Vec::new(),
            ),
        }
    }

    /// Every figure, in the order of the JSON pack.
    pub fn figures(&self) -> [&Figure; 7] {
        [
            &self.assessed,
            &self.authorised_by_other,
            &self.remediation_plan,
            &self.reviewed,
            &self.failed_remediated,
            &self.failed_investigated,
            &self.emergency_share,
        ]
    }
}

/// Why `change`'s authorisation falls short, if it does.
fn authorisation_shortfall(change: &Change) -> Option<String> {
    let Some(authorisation) = change.authorisation() else {
        return Some("implemented without an authorisation in force".to_owned());
    };
    if authorisation.approvers.is_empty() {
        return Some("authorised with no approver named".to_owned());
    }
    let requester = change.record().caller()?;
    authorisation
        .approvers
        .contains(requester)
        .then(|| format!("authorised by the requester {requester}"))
}
