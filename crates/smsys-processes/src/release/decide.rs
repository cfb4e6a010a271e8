//! `decide` for releases: logging, planning, build, acceptance, approvals, baselines,
//! deployments, rollbacks and early life.

use chrono::{DateTime, Duration, Utc};
use smsys_core::records::release::{
    Baseline, DeploymentOutcome, ReleaseControlEvent, ReleaseLogged,
};
use smsys_core::records::{
    CiId, GroupId, PersonId, RecordKind, Reference, Release, ReleaseEvent, ServiceId,
    TransitionDetail, TypedEvent,
};
use smsys_core::{Aggregate, Context};

use super::{
    BaselineError, LogRelease, ReleaseCommand, ReleaseKindPolicy, ReleaseManagement, ReleasePolicy,
    ReleaseRefusal, ReleaseRule, stage,
};
use crate::lifecycle::Trigger;
use crate::record::{
    Decision, RefusalReason, current_stage, decide_shared, log_record, migration_keeps_stage,
    refuse, required, transition,
};

type Reason = RefusalReason<ReleaseRule>;

fn rule(rule: ReleaseRule) -> Reason {
    RefusalReason::Rule(rule)
}

/// Refuses `command` unless the release is in one of `stages`.
fn in_stage(
    state: &Release,
    policy: &ReleasePolicy,
    command: &ReleaseCommand,
    stages: &[&str],
) -> Result<(), Reason> {
    crate::record::check_stage(state.record(), &policy.record, stages).map_err(|stage| {
        rule(ReleaseRule::WrongStage {
            command: command.name(),
            stage,
        })
    })
}

fn kind_policy<'p>(
    state: &Release,
    policy: &'p ReleasePolicy,
) -> Result<&'p ReleaseKindPolicy, Reason> {
    let kind = state.kind().ok_or(RefusalReason::NotLogged)?;
    policy
        .kinds
        .get(kind)
        .ok_or(rule(ReleaseRule::NoKindPolicy(kind)))
}

fn log(
    state: &Release,
    input: &LogRelease,
    policy: &ReleasePolicy,
    ctx: &Context<'_>,
) -> Result<Vec<ReleaseEvent>, Reason> {
    let record = log_record::<ReleaseManagement>(state, &input.record, policy, ctx)?;
    let kind = input.kind;
    let requires = policy
        .kinds
        .get(kind)
        .ok_or(rule(ReleaseRule::NoKindPolicy(kind)))?;
    let mut events = vec![TypedEvent::Logged(ReleaseLogged {
        record,
        kind,
        criteria: requires.criteria.clone(),
        environments: requires.environments.clone(),
        early_life_days: requires.early_life_days,
    })];
    if let Some(plan) = &input.plan {
        check_plan(plan)?;
        events.push(TypedEvent::Own(ReleaseControlEvent::Planned(plan.clone())));
    }
    Ok(events)
}

fn check_plan(plan: &smsys_core::records::release::ReleasePlan) -> Result<(), Reason> {
    required(&plan.deployment, "deployment plan")?;
    required(&plan.rollback, "rollback plan")
}

/// The approver, if they may act on this release under its kind's rule: not its requester
/// nor its deployer, a member of one of the rule's groups.
fn approver_of(
    state: &Release,
    policy: &ReleasePolicy,
    asked: Option<&GroupId>,
    ctx: &Context<'_>,
) -> Result<(PersonId, GroupId, crate::change::ApprovalRule), Reason> {
    let kind = state.kind().ok_or(RefusalReason::NotLogged)?;
    let by = kind_policy(state, policy)?.approval;
    let applies = policy
        .approvals
        .rule_for(by.kind, by.major)
        .ok_or(rule(ReleaseRule::NoApprovalRule(kind)))?;
    let approver = ctx
        .actor()
        .map(PersonId::from)
        .ok_or(RefusalReason::NoActor)?;
    let duty = |role| {
        rule(ReleaseRule::SegregationOfDuties {
            approver: approver.clone(),
            role,
        })
    };
    if state.record().caller() == Some(&approver) {
        return Err(duty("requester"));
    }
    if state.plan().and_then(|p| p.deployer.as_ref()) == Some(&approver) {
        return Err(duty("deployer"));
    }
    let group = policy
        .approvals
        .group_of(applies, &approver, asked)
        .ok_or_else(|| {
            rule(ReleaseRule::NotAnApprover {
                approver: approver.clone(),
                rule: applies.name.clone(),
                group: asked.cloned(),
            })
        })?;
    Ok((approver, group, applies.clone()))
}

/// Refuses unless every change in the release's scope is authorised (a link that names no
/// change reference cannot be checked, so it is not).
fn changes_authorised(state: &Release, policy: &ReleasePolicy) -> Result<(), Reason> {
    let kind = smsys_core::records::LinkKind::CHANGE;
    for (_, target) in state.record().links().iter().filter(|(k, _)| *k == kind) {
        let Ok(change) = target.parse::<Reference>() else {
            return Err(rule(ReleaseRule::NotAChange(target.clone())));
        };
        let why = match policy.changes.as_ref().map(|c| c.authorised(&change)) {
            Some(Some(true)) => continue,
            Some(Some(false)) => "not authorised",
            Some(None) => "unknown",
            None => "unchecked (no change authorisations configured)",
        };
        return Err(rule(ReleaseRule::ChangeNotAuthorised { change, why }));
    }
    Ok(())
}

/// Refuses a baseline (from a source the policy names, not necessarily the CMDB graph) whose
/// hash is not the hash of its state, or that leaves out a CI of the release.
fn check_baseline(baseline: &Baseline, cis: &[CiId]) -> Result<(), Reason> {
    let refused = |e| Err(rule(ReleaseRule::Baseline(e)));
    if !baseline.is_intact() {
        return refused(BaselineError::NotIntact {
            recorded: baseline.hash.clone(),
            computed: baseline.computed_hash(),
        });
    }
    let missing: Vec<CiId> = cis
        .iter()
        .filter(|ci| baseline.ci(ci).is_none())
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        refused(BaselineError::Incomplete(missing))
    }
}

/// Refuses an actor who approved the release.
fn not_an_approver(state: &Release, ctx: &Context<'_>) -> Result<(), Reason> {
    let actor = ctx.actor().map(PersonId::from);
    let approved = state.authorisation().into_iter().flat_map(|a| &a.approvers);
    match actor.filter(|a| approved.clone().any(|p| p == a)) {
        Some(approver) => Err(rule(ReleaseRule::ApproverDeploys(approver))),
        None => Ok(()),
    }
}

fn decide_own(
    state: &Release,
    command: &ReleaseCommand,
    policy: &ReleasePolicy,
    ctx: &Context<'_>,
) -> Result<Vec<ReleaseEvent>, Reason> {
    use ReleaseCommand as C;
    use ReleaseControlEvent as E;
    let phase = state.record().phase().ok_or(RefusalReason::NotLogged)?;
    if phase.is_final() {
        return Err(RefusalReason::Final(phase));
    }
    let mut d = Decision::new(state, ctx);
    let step = |state: &Release, trigger: &Trigger| {
        transition::<ReleaseManagement>(
            state,
            policy,
            trigger,
            None,
            TransitionDetail::Plain,
            ctx.now(),
        )
    };
    let own = |event| TypedEvent::Own(event);
    match command {
        C::Plan(plan) => {
            in_stage(state, policy, command, &[stage::PLANNED])?;
            check_plan(plan)?;
            if state.plan() == Some(plan) {
                return Err(RefusalReason::Unchanged);
            }
            d.push(own(E::Planned(plan.clone())));
        }
        C::RecordBuild { build, notes } => {
            in_stage(state, policy, command, &[stage::PLANNED])?;
            required(build, "build identifier")?;
            if state.plan().is_none() {
                return Err(rule(ReleaseRule::NoPlan));
            }
            d.push(own(E::Built {
                build: build.clone(),
                notes: notes.clone(),
            }));
            let moved = step(d.state(), &Trigger::BUILD)?;
            d.push(moved);
        }
        C::VerifyCriterion {
            criterion,
            passed,
            evidence,
        } => {
            in_stage(state, policy, command, &[stage::BUILT])?;
            if !state.criteria().iter().any(|c| &c.name == criterion) {
                let known: Vec<&str> = state.criteria().iter().map(|c| c.name.as_str()).collect();
                return Err(rule(ReleaseRule::UnknownCriterion {
                    criterion: criterion.clone(),
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                }));
            }
            required(evidence, "evidence")?;
            d.push(own(E::CriterionVerified {
                criterion: criterion.clone(),
                passed: *passed,
                evidence: evidence.clone(),
            }));
        }
        C::Accept => {
            in_stage(state, policy, command, &[stage::BUILT])?;
            let unmet: Vec<&str> = state
                .criteria()
                .iter()
                .filter(|c| !state.verification(&c.name).is_some_and(|v| v.passed))
                .map(|c| c.name.as_str())
                .collect();
            if !unmet.is_empty() {
                return Err(rule(ReleaseRule::CriteriaNotMet(unmet.join(", "))));
            }
            d.push(step(state, &Trigger::ACCEPT)?);
        }
        C::Approve { group } => {
            in_stage(state, policy, command, &[stage::ACCEPTED])?;
            let (approver, group, applies) = approver_of(state, policy, group.as_ref(), ctx)?;
            if state.approvals().iter().any(|a| a.approver == approver) {
                return Err(rule(ReleaseRule::AlreadyApproved(approver)));
            }
            d.push(own(E::ApprovalGiven { approver, group }));
            let mut approvers: Vec<PersonId> = Vec::new();
            for a in d.state().approvals() {
                if applies.groups.contains(&a.group) && !approvers.contains(&a.approver) {
                    approvers.push(a.approver.clone());
                }
            }
            if approvers.len() >= applies.quorum as usize {
                d.push(own(E::Authorised {
                    rule: applies.name,
                    approvers,
                }));
                let moved = step(d.state(), &Trigger::APPROVE)?;
                d.push(moved);
            }
        }
        C::Reject { group, reason } => {
            in_stage(state, policy, command, &[stage::ACCEPTED])?;
            required(reason, "rejection reason")?;
            let (approver, group, _) = approver_of(state, policy, group.as_ref(), ctx)?;
            let detail = TransitionDetail::Cancellation {
                reason: format!("rejected by {approver}: {reason}"),
            };
            d.push(own(E::ApprovalRejected {
                approver,
                group,
                reason: reason.clone(),
            }));
            let moved = transition::<ReleaseManagement>(
                d.state(),
                policy,
                &Trigger::REJECT,
                None,
                detail,
                ctx.now(),
            )?;
            d.push(moved);
        }
        C::TakeBaseline => {
            in_stage(
                state,
                policy,
                command,
                &[stage::APPROVED, stage::ROLLED_BACK, stage::BASELINED],
            )?;
            let cis = state.cis();
            if cis.is_empty() {
                return Err(rule(ReleaseRule::NothingToBaseline));
            }
            let source = policy
                .baselines
                .as_ref()
                .ok_or(rule(ReleaseRule::NoBaselineSource))?;
            let baseline = source
                .baseline(&cis)
                .map_err(|e| rule(ReleaseRule::Baseline(e)))?;
            check_baseline(&baseline, &cis)?;
            if state.baseline() == Some(&baseline) {
                return Err(RefusalReason::Unchanged);
            }
            d.push(own(E::BaselineTaken(baseline)));
            if current_stage(state.record(), &policy.record) != Some(stage::BASELINED) {
                let moved = step(d.state(), &Trigger::BASELINE)?;
                d.push(moved);
            }
        }
        C::StartDeployment => {
            let awaiting = [stage::APPROVED, stage::ROLLED_BACK];
            if awaiting.contains(&current_stage(state.record(), &policy.record).unwrap_or("none")) {
                return Err(rule(ReleaseRule::NoBaseline));
            }
            in_stage(state, policy, command, &[stage::BASELINED])?;
            changes_authorised(state, policy)?;
            not_an_approver(state, ctx)?;
            d.push(step(state, &Trigger::DEPLOY)?);
        }
        C::RecordDeployment {
            environment,
            outcome,
            notes,
        } => {
            in_stage(state, policy, command, &[stage::DEPLOYING])?;
            required(notes, "deployment notes")?;
            let expected = state.next_environment().unwrap_or("none");
            if expected != environment {
                return Err(rule(ReleaseRule::WrongEnvironment {
                    expected: expected.to_owned(),
                    given: environment.clone(),
                }));
            }
            if *outcome == DeploymentOutcome::Success {
                changes_authorised(state, policy)?;
            }
            not_an_approver(state, ctx)?;
            d.push(own(E::Deployed {
                environment: environment.clone(),
                outcome: *outcome,
                notes: notes.clone(),
            }));
            match outcome {
                DeploymentOutcome::Failed => {
                    let moved = step(d.state(), &Trigger::FAIL)?;
                    d.push(moved);
                }
                DeploymentOutcome::Success if d.state().next_environment().is_none() => {
                    // A window too long to add (a policy's "forever") never ends by itself.
                    let until = ctx
                        .now()
                        .checked_add_signed(Duration::days(i64::from(state.early_life_days())))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    d.push(own(E::EarlyLifeStarted { until }));
                    let moved = step(d.state(), &Trigger::COMPLETE)?;
                    d.push(moved);
                }
                DeploymentOutcome::Success => {}
            }
        }
        C::RollBack { restored, notes } => {
            in_stage(state, policy, command, &[stage::FAILED])?;
            required(notes, "rollback notes")?;
            let failed = state
                .failed_deployment()
                .ok_or(rule(ReleaseRule::NothingToRollBack))?;
            let baseline = state.baseline().map(|b| b.hash.clone()).unwrap_or_default();
            d.push(own(E::RolledBack {
                environment: failed.environment.clone(),
                baseline,
                restored: *restored,
                notes: notes.clone(),
            }));
            let moved = step(d.state(), &Trigger::ROLL_BACK)?;
            d.push(moved);
        }
        C::CorrelateIncident {
            incident,
            cis,
            service,
        } => {
            in_stage(state, policy, command, &[stage::EARLY_LIFE])?;
            early_life_open(state)?;
            inside_early_life(state, ctx)?;
            if state.correlated(incident) {
                return Err(RefusalReason::Unchanged);
            }
            related(state, incident, cis, service.as_ref())?;
            d.push(own(E::IncidentCorrelated {
                incident: incident.clone(),
                cis: cis.clone(),
                service: service.clone(),
            }));
        }
        C::WaiveEarlyLife { reason } => {
            in_stage(state, policy, command, &[stage::EARLY_LIFE])?;
            required(reason, "reason to waive")?;
            early_life_open(state)?;
            inside_early_life(state, ctx)?;
            d.push(own(E::EarlyLifeWaived {
                reason: reason.clone(),
            }));
        }
        C::RecordEarlyLifeReview {
            successful,
            findings,
        } => {
            in_stage(state, policy, command, &[stage::EARLY_LIFE])?;
            required(findings, "review findings")?;
            if state.review().is_some() {
                return Err(rule(ReleaseRule::EarlyLifeDone("reviewed")));
            }
            if let Some((_, until)) = state.early_life()
                && ctx.now() < until
                && state.waiver().is_none()
            {
                return Err(rule(ReleaseRule::EarlyLifeOpen(until.to_rfc3339())));
            }
            d.push(own(E::EarlyLifeReviewed {
                successful: *successful,
                findings: findings.clone(),
                incidents: state
                    .correlations()
                    .iter()
                    .map(|c| c.incident.clone())
                    .collect(),
            }));
        }
        C::Log(_) | C::Record(_) => {}
    }
    Ok(d.into_events())
}

/// Refuses a correlation that names no CI or service of the release, or names one that is
/// not the release's: the event records the release's CIs and service the incident names.
fn related(
    state: &Release,
    incident: &Reference,
    cis: &[CiId],
    service: Option<&ServiceId>,
) -> Result<(), Reason> {
    let unrelated = |why: String| {
        Err(rule(ReleaseRule::Unrelated {
            incident: incident.clone(),
            why,
        }))
    };
    if cis.is_empty() && service.is_none() {
        return unrelated("it names no CI or service of the release".into());
    }
    let ours = state.cis();
    let foreign: Vec<String> = cis
        .iter()
        .filter(|ci| !ours.contains(ci))
        .map(ToString::to_string)
        .collect();
    if !foreign.is_empty() {
        return unrelated(format!("CI {} is not the release's", foreign.join(", ")));
    }
    match service {
        Some(service) if !state.services().contains(service) => {
            unrelated(format!("service {service} is not the release's"))
        }
        Some(_) | None => Ok(()),
    }
}

/// Refuses unless now is inside the early-life window (a correlation, or a waiver, which
/// ends the window before its time).
fn inside_early_life(state: &Release, ctx: &Context<'_>) -> Result<(), Reason> {
    let (from, until) = state.early_life().ok_or(RefusalReason::Unchanged)?;
    let at = ctx.now();
    if at < from || at >= until {
        return Err(rule(ReleaseRule::OutsideEarlyLife {
            window: format!("{} to {}", from.to_rfc3339(), until.to_rfc3339()),
            at: at.to_rfc3339(),
        }));
    }
    Ok(())
}

/// Refuses a waiver once the window was reviewed or waived.
fn early_life_open(state: &Release) -> Result<(), Reason> {
    if state.review().is_some() {
        Err(rule(ReleaseRule::EarlyLifeDone("reviewed")))
    } else if state.waiver().is_some() {
        Err(rule(ReleaseRule::EarlyLifeDone("waived")))
    } else {
        Ok(())
    }
}

impl Aggregate for ReleaseManagement {
    type State = Release;
    type Services = ReleasePolicy;
    type Command = ReleaseCommand;
    type Rejection = ReleaseRefusal;

    fn decide(
        state: &Release,
        command: &ReleaseCommand,
        policy: &ReleasePolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<ReleaseEvent>, ReleaseRefusal> {
        let decided = match command {
            ReleaseCommand::Log(input) => log(state, input, policy, ctx),
            ReleaseCommand::Record(c) => migration_keeps_stage(state.record(), c, &policy.record)
                .map_err(|refused| match refused {
                    Ok((lifecycle, why)) => rule(ReleaseRule::Migration { lifecycle, why }),
                    Err(reason) => reason,
                })
                .and_then(|()| decide_shared::<Self>(state, c, policy, ctx)),
            ReleaseCommand::Plan(_)
            | ReleaseCommand::RecordBuild { .. }
            | ReleaseCommand::VerifyCriterion { .. }
            | ReleaseCommand::Accept
            | ReleaseCommand::Approve { .. }
            | ReleaseCommand::Reject { .. }
            | ReleaseCommand::TakeBaseline
            | ReleaseCommand::StartDeployment
            | ReleaseCommand::RecordDeployment { .. }
            | ReleaseCommand::RollBack { .. }
            | ReleaseCommand::CorrelateIncident { .. }
            | ReleaseCommand::WaiveEarlyLife { .. }
            | ReleaseCommand::RecordEarlyLifeReview { .. } => {
                decide_own(state, command, policy, ctx)
            }
        };
        decided.map_err(|reason| refuse::<Self>(state, command.name(), reason))
    }
}
