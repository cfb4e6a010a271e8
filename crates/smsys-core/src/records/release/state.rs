//! The state of a release, derived from its events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{EventSourced, Stamp};
use crate::event::Actor;
use crate::records::change::{Approval, Authorisation, Rejection};
use crate::records::ids::{CiId, RecordType, Reference, ServiceId};
use crate::records::kind::{RecordKind, TypedEvent};
use crate::records::release::{
    AcceptanceCriterion, Baseline, DeploymentOutcome, ReleaseControlEvent, ReleaseEvent,
    ReleaseKind, ReleasePlan,
};
use crate::records::state::RecordState;

/// A criterion's latest verification: met or not, the evidence, who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Whether it is met.
    pub passed: bool,
    /// The evidence.
    pub evidence: String,
    /// Who verified it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A deployment to one environment: which attempt (the number of the baseline it stood on),
/// the outcome, notes, who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The environment.
    pub environment: String,
    /// The attempt it belongs to.
    pub attempt: u32,
    /// How it ended.
    pub outcome: DeploymentOutcome,
    /// What was done or went wrong.
    pub notes: String,
    /// Who recorded it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A rollback: the environment, the baseline it returned to, whether the service was
/// restored, who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// The environment rolled back.
    pub environment: String,
    /// The hash of the baseline it returned to.
    pub baseline: String,
    /// Whether the service was restored.
    pub restored: bool,
    /// What was done.
    pub notes: String,
    /// Who recorded it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// An incident correlated with the release in its early-life window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correlation {
    /// The incident.
    pub incident: Reference,
    /// The release's CIs it names.
    pub cis: Vec<CiId>,
    /// The release's service it names.
    pub service: Option<ServiceId>,
    /// When it was correlated.
    pub at: DateTime<Utc>,
}

/// The early-life review (or the waiver of the window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlyLifeReview {
    /// Whether the release met its objectives (`None` for a waiver).
    pub successful: Option<bool>,
    /// What the review found, or why the window was waived.
    pub findings: String,
    /// The incidents correlated when it was recorded.
    pub incidents: Vec<Reference>,
    /// Who recorded it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The state of a release, derived from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Release {
    record: RecordState,
    kind: Option<ReleaseKind>,
    criteria: Vec<AcceptanceCriterion>,
    environments: Vec<String>,
    early_life_days: u32,
    plan: Option<ReleasePlan>,
    build: Option<(String, String)>,
    verifications: BTreeMap<String, Verification>,
    approvals: Vec<Approval>,
    rejection: Option<Rejection>,
    authorisation: Option<Authorisation>,
    baselines: Vec<Baseline>,
    baseline_current: bool,
    attempt: u32,
    deployments: Vec<Deployment>,
    rollbacks: Vec<Rollback>,
    early_life: Option<(DateTime<Utc>, DateTime<Utc>)>,
    correlations: Vec<Correlation>,
    waiver: Option<EarlyLifeReview>,
    review: Option<EarlyLifeReview>,
}

impl Release {
    /// Its kind, once logged.
    pub fn kind(&self) -> Option<ReleaseKind> {
        self.kind
    }
    /// The criteria it must meet.
    pub fn criteria(&self) -> &[AcceptanceCriterion] {
        &self.criteria
    }
    /// Its environments, in deployment order.
    pub fn environments(&self) -> &[String] {
        &self.environments
    }
    /// How many days its early-life window lasts.
    pub fn early_life_days(&self) -> u32 {
        self.early_life_days
    }
    /// The current plan, once planned.
    pub fn plan(&self) -> Option<&ReleasePlan> {
        self.plan.as_ref()
    }
    /// The build (identifier, notes), once built.
    pub fn build(&self) -> Option<(&str, &str)> {
        self.build.as_ref().map(|(b, n)| (b.as_str(), n.as_str()))
    }
    /// The latest verification of `criterion`.
    pub fn verification(&self, criterion: &str) -> Option<&Verification> {
        self.verifications.get(criterion)
    }
    /// Whether every criterion's latest verification passed.
    pub fn criteria_met(&self) -> bool {
        self.criteria
            .iter()
            .all(|c| self.verifications.get(&c.name).is_some_and(|v| v.passed))
    }
    /// The approvals given.
    pub fn approvals(&self) -> &[Approval] {
        &self.approvals
    }
    /// The rejection, if an approver rejected the release.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.rejection.as_ref()
    }
    /// The approval, once the quorum was reached.
    pub fn authorisation(&self) -> Option<&Authorisation> {
        self.authorisation.as_ref()
    }
    /// Every baseline taken, oldest first.
    pub fn baselines(&self) -> &[Baseline] {
        &self.baselines
    }
    /// The baseline the next deployment (or the rollback of the current one) stands on: the
    /// latest, while no rollback came after it.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baselines.last().filter(|_| self.baseline_current)
    }
    /// The deployment attempt: each baseline starts one (0 before the first baseline).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// Every deployment, oldest first.
    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }
    /// The environments deployed successfully in the current attempt, in order.
    pub fn deployed_in_attempt(&self) -> Vec<&str> {
        self.deployments
            .iter()
            .filter(|d| d.attempt == self.attempt && d.outcome == DeploymentOutcome::Success)
            .map(|d| d.environment.as_str())
            .collect()
    }
    /// The environment the current attempt deploys to next, if any is left.
    pub fn next_environment(&self) -> Option<&str> {
        let done = self.deployed_in_attempt().len();
        self.environments.get(done).map(String::as_str)
    }
    /// The latest deployment, if it failed in the current attempt and was not yet rolled
    /// back (a failure of an earlier attempt was rolled back before the attempt's baseline).
    pub fn failed_deployment(&self) -> Option<&Deployment> {
        self.deployments.last().filter(|d| {
            d.outcome == DeploymentOutcome::Failed
                && d.attempt == self.attempt
                && self.baseline_current
        })
    }
    /// Every rollback, oldest first.
    pub fn rollbacks(&self) -> &[Rollback] {
        &self.rollbacks
    }
    /// The baseline `rollback` returned to: the CIs as they were before that attempt.
    pub fn returned_to(&self, rollback: &Rollback) -> Option<&Baseline> {
        self.baselines.iter().find(|b| b.hash == rollback.baseline)
    }
    /// The early-life window (from the last environment's deployment to its end), once
    /// opened.
    pub fn early_life(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.early_life
    }
    /// The incidents correlated with it, in the order recorded.
    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }
    /// Whether `incident` is correlated with it.
    pub fn correlated(&self, incident: &Reference) -> bool {
        self.correlations.iter().any(|c| &c.incident == incident)
    }
    /// The waiver of the early-life window.
    pub fn waiver(&self) -> Option<&EarlyLifeReview> {
        self.waiver.as_ref()
    }
    /// The early-life review.
    pub fn review(&self) -> Option<&EarlyLifeReview> {
        self.review.as_ref()
    }
    /// The CIs it affects: its plan's and those it was logged with, sorted.
    pub fn cis(&self) -> Vec<CiId> {
        let mut cis: Vec<CiId> = self.record.affected_cis().to_vec();
        if let Some(plan) = &self.plan {
            cis.extend(plan.cis.iter().cloned());
        }
        cis.sort_unstable();
        cis.dedup();
        cis
    }
    /// The services it affects: the one it was logged for and its plan's, sorted.
    pub fn services(&self) -> Vec<ServiceId> {
        let mut services: Vec<ServiceId> = self.record.service().into_iter().cloned().collect();
        if let Some(plan) = &self.plan {
            services.extend(plan.services.iter().cloned());
        }
        services.sort_unstable();
        services.dedup();
        services
    }
}

impl RecordKind for Release {
    const RECORD_TYPE: RecordType = RecordType::from_static("release");
    type Logged = super::ReleaseLogged;
    type Own = ReleaseControlEvent;

    fn record(&self) -> &RecordState {
        &self.record
    }
}

impl EventSourced for Release {
    const CATEGORY: &'static str = "release";
    const SNAPSHOT_VERSION: u32 = 1;
    type Event = ReleaseEvent;

    fn evolve(&mut self, event: &ReleaseEvent, stamp: Stamp<'_>) {
        match event {
            TypedEvent::Logged(logged) => {
                self.record.log(&logged.record, stamp);
                self.kind = Some(logged.kind);
                self.criteria.clone_from(&logged.criteria);
                self.environments.clone_from(&logged.environments);
                self.early_life_days = logged.early_life_days;
            }
            TypedEvent::Record(e) => self.record.apply(e, stamp),
            TypedEvent::Own(e) => self.apply_own(e, stamp),
        }
    }
}

impl Release {
    fn apply_own(&mut self, event: &ReleaseControlEvent, stamp: Stamp<'_>) {
        use ReleaseControlEvent as E;
        let by = stamp.actor().cloned();
        let at = stamp.at();
        match event {
            E::Planned(plan) => self.plan = Some(plan.clone()),
            E::Built { build, notes } => self.build = Some((build.clone(), notes.clone())),
            E::CriterionVerified {
                criterion,
                passed,
                evidence,
            } => {
                self.verifications.insert(
                    criterion.clone(),
                    Verification {
                        passed: *passed,
                        evidence: evidence.clone(),
                        by,
                        at,
                    },
                );
            }
            E::ApprovalGiven { approver, group } => self.approvals.push(Approval {
                approver: approver.clone(),
                group: group.clone(),
                at,
            }),
            E::ApprovalRejected {
                approver,
                group,
                reason,
            } => {
                self.rejection = Some(Rejection {
                    approver: approver.clone(),
                    group: group.clone(),
                    reason: reason.clone(),
                    at,
                });
            }
            E::Authorised { rule, approvers } => {
                self.authorisation = Some(Authorisation {
                    rule: rule.clone(),
                    approvers: approvers.clone(),
                    at,
                });
            }
            E::BaselineTaken(baseline) => {
                self.baselines.push(baseline.clone());
                self.baseline_current = true;
                self.attempt = u32::try_from(self.baselines.len()).unwrap_or(u32::MAX);
            }
            E::Deployed {
                environment,
                outcome,
                notes,
            } => {
                self.deployments.push(Deployment {
                    environment: environment.clone(),
                    attempt: self.attempt,
                    outcome: *outcome,
                    notes: notes.clone(),
                    by,
                    at,
                });
            }
            E::RolledBack {
                environment,
                baseline,
                restored,
                notes,
            } => {
                self.rollbacks.push(Rollback {
                    environment: environment.clone(),
                    baseline: baseline.clone(),
                    restored: *restored,
                    notes: notes.clone(),
                    by,
                    at,
                });
                self.baseline_current = false;
            }
            E::EarlyLifeStarted { until } => self.early_life = Some((at, *until)),
            E::IncidentCorrelated {
                incident,
                cis,
                service,
            } => {
                if !self.correlated(incident) {
                    self.correlations.push(Correlation {
                        incident: incident.clone(),
                        cis: cis.clone(),
                        service: service.clone(),
                        at,
                    });
                }
            }
            E::EarlyLifeWaived { reason } => {
                self.waiver = Some(EarlyLifeReview {
                    successful: None,
                    findings: reason.clone(),
                    incidents: self
                        .correlations
                        .iter()
                        .map(|c| c.incident.clone())
                        .collect(),
                    by,
                    at,
                });
            }
            E::EarlyLifeReviewed {
                successful,
                findings,
                incidents,
            } => {
                self.review = Some(EarlyLifeReview {
                    successful: Some(*successful),
                    findings: findings.clone(),
                    incidents: incidents.clone(),
                    by,
                    at,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::records::release::BaselineCi;
    use crate::stream::Position;

    fn baseline(sequence: u64) -> Baseline {
        let ci = BaselineCi {
            id: CiId::new("srv-01").unwrap_or_else(|e| unreachable!("{e}")),
            ci_type: "server".parse().unwrap_or_else(|e| unreachable!("{e:?}")),
            name: "srv-01".into(),
            status: "live".into(),
            attributes: Default::default(),
            relationships: Vec::new(),
        };
        Baseline::new(Position::from_sequence(sequence), vec![ci])
    }

    #[test]
    fn a_failure_of_an_earlier_attempt_is_not_the_current_failed_deployment() {
        use ReleaseControlEvent as E;
        let at = Utc
            .with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
            .single()
            .unwrap_or_else(|| unreachable!());
        let mut release = Release::default();
        let mut fold = |event: E| release.apply_own(&event, Stamp::new(None, at));
        fold(E::BaselineTaken(baseline(1)));
        fold(E::Deployed {
            environment: "test".into(),
            outcome: DeploymentOutcome::Failed,
            notes: "broken".into(),
        });
        assert_eq!(
            release.failed_deployment().map(|d| d.attempt),
            Some(1),
            "failed, not yet rolled back"
        );
        let mut fold = |event: E| release.apply_own(&event, Stamp::new(None, at));
        fold(E::RolledBack {
            environment: "test".into(),
            baseline: baseline(1).hash,
            restored: true,
            notes: "back".into(),
        });
        assert_eq!(release.failed_deployment(), None, "rolled back");
        let mut fold = |event: E| release.apply_own(&event, Stamp::new(None, at));
        fold(E::BaselineTaken(baseline(2)));
        assert_eq!(release.attempt(), 2);
        assert_eq!(
            release.failed_deployment(),
            None,
            "the failure belongs to attempt 1, rolled back before this attempt's baseline"
        );
    }
}
