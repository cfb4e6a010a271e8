//! `decide` for changes: logging, planning, assessment, approvals, scheduling,
//! implementation, remediation, investigation and review.

use smsys_core::records::change::{
    Assessment, ChangeControlEvent, ChangeLogged, ChangePlan, ChangeWindow, ImpactAnalysis,
    ImplementationOutcome,
};
use smsys_core::records::{
    Change, ChangeEvent, ChangeKind, GroupId, NoteKind, PersonId, RecordEvent, RecordKind,
    TransitionDetail, TypedEvent,
};
use smsys_core::{Aggregate, Context};

use super::{
    AssessChange, ChangeCommand, ChangeManagement, ChangePolicy, ChangeRefusal, ChangeRule,
    ImpactFindings, LogChange, RiskInput, ScheduleRequest, stage,
};
use crate::lifecycle::Trigger;
use crate::record::{
    Decision, RecordCommand, RefusalReason, decide_shared, log_record, refuse, required, transition,
};

type Reason = RefusalReason<ChangeRule>;

fn rule(rule: ChangeRule) -> Reason {
    RefusalReason::Rule(rule)
}

/// The stage of the change's current status under its lifecycle.
fn current_stage<'p>(state: &Change, policy: &'p ChangePolicy) -> Option<&'p str> {
    crate::record::current_stage(state.record(), &policy.record)
}

/// Refuses `command` unless the change is in one of `stages`.
fn in_stage(
    state: &Change,
    policy: &ChangePolicy,
    command: &ChangeCommand,
    stages: &[&str],
) -> Result<(), Reason> {
    crate::record::check_stage(state.record(), &policy.record, stages).map_err(|stage| {
        rule(ChangeRule::WrongStage {
            command: command.name(),
            stage,
        })
    })
}

fn log(
    state: &Change,
    input: &LogChange,
    policy: &ChangePolicy,
    ctx: &Context<'_>,
) -> Result<Vec<ChangeEvent>, Reason> {
    let mut record = log_record::<ChangeManagement>(state, &input.record, policy, ctx)?;
    let kind = input.kind;
    let reference = policy
        .lifecycles
        .get(&kind)
        .ok_or(rule(ChangeRule::NoLifecycle(kind)))?;
    let lifecycle = policy
        .record
        .lifecycles
        .get(reference)
        .ok_or_else(|| RefusalReason::UnknownLifecycle(reference.clone()))?;
    if lifecycle.record_type() != &Change::RECORD_TYPE {
        return Err(RefusalReason::LifecycleForOtherType(reference.clone()));
    }
    record.lifecycle = reference.clone();
    record.status = lifecycle.initial().name.clone();
    let mismatch = |has_template| rule(ChangeRule::TemplateMismatch { kind, has_template });
    let (template, plan) = match (kind, &input.template) {
        (ChangeKind::Standard, Some(name)) => {
            let template = policy
                .templates
                .current(name)
                .ok_or_else(|| rule(ChangeRule::UnknownTemplate(name.clone())))?;
            let mut plan = template.plan(input.record.affected_cis.clone());
            if let Some(given) = &input.plan {
                check_template(&plan, given, &template.name, template.version)?;
                plan = given.clone();
            }
            let pin = smsys_core::records::change::TemplatePin {
                template: template.name.clone(),
                version: template.version,
            };
            (Some(pin), Some(plan))
        }
        (ChangeKind::Standard, None) => return Err(mismatch(false)),
        (_, Some(_)) => return Err(mismatch(true)),
        (_, None) => (None, input.plan.clone()),
    };
    let mut events = vec![TypedEvent::Logged(ChangeLogged {
        record,
        kind,
        template,
    })];
    if let Some(plan) = plan {
        events.push(TypedEvent::Own(ChangeControlEvent::Planned(plan)));
    }
    Ok(events)
}

/// A standard change's plan keeps its template's implementation, remediation and tests.
fn check_template(
    template: &ChangePlan,
    plan: &ChangePlan,
    name: &str,
    version: u32,
) -> Result<(), Reason> {
    let deviation = |field| {
        rule(ChangeRule::TemplateDeviation(
            field,
            name.to_owned(),
            version,
        ))
    };
    if plan.implementation != template.implementation {
        return Err(deviation("implementation"));
    }
    if plan.remediation != template.remediation {
        return Err(deviation("remediation"));
    }
    if plan.test_plan != template.test_plan {
        return Err(deviation("test plan"));
    }
    Ok(())
}

fn plan(
    state: &Change,
    given: &ChangePlan,
    policy: &ChangePolicy,
    d: &mut Decision<'_, Change>,
) -> Result<(), Reason> {
    required(&given.implementation, "implementation plan")?;
    required(&given.remediation, "remediation plan")?;
    if state.plan() == Some(given) {
        return Err(RefusalReason::Unchanged);
    }
    if let Some(pin) = state.template() {
        let template = policy
            .templates
            .get(&pin.template, pin.version)
            .ok_or_else(|| rule(ChangeRule::UnknownTemplate(pin.template.clone())))?;
        check_template(
            &template.plan(Vec::new()),
            given,
            &pin.template,
            pin.version,
        )?;
    }
    if !state.approvals().is_empty() || state.authorisation().is_some() {
        d.push(TypedEvent::Own(ChangeControlEvent::ApprovalsReset {
            reason: format!(
                "the plan changed after {} approval(s)",
                state.approvals().len()
            ),
        }));
    }
    d.push(TypedEvent::Own(ChangeControlEvent::Planned(given.clone())));
    Ok(())
}

fn assess(
    state: &Change,
    input: &AssessChange,
    policy: &ChangePolicy,
    ctx: &Context<'_>,
) -> Result<Assessment, Reason> {
    let kind = state.kind().ok_or(RefusalReason::NotLogged)?;
    let plan = state.plan().ok_or(rule(ChangeRule::NoPlan))?;
    let findings = match &policy.impact {
        Some(source) => source.analyse(&plan.cis),
        None => ImpactFindings {
            analysis: ImpactAnalysis {
                affected_cis: u32::try_from(plan.cis.len()).unwrap_or(u32::MAX),
                ..ImpactAnalysis::default()
            },
            ..ImpactFindings::default()
        },
    };
    let lead_time = state.window().map(|w| w.start - ctx.now());
    let in_force;
    let risk = match &policy.risk_matrices {
        Some(matrices) => {
            in_force = policy.risk.in_force_at(matrices, ctx.now());
            &in_force
        }
        None => &policy.risk,
    };
    let verdict = risk.assess(&RiskInput {
        kind,
        probability: input.probability,
        impact: input.impact,
        lead_time,
        findings: &findings,
    });
    Ok(Assessment {
        probability: input.probability,
        impact: input.impact,
        matrix_version: risk.matrix.version(),
        base_risk: verdict.base,
        risk: verdict.risk,
        conditions: verdict.conditions,
        major: verdict.major,
        analysis: findings.analysis,
        benefit: input.benefit.clone(),
        cost: input.cost.clone(),
        feasibility: input.feasibility.clone(),
    })
}

fn check_window(window: &ChangeWindow, ctx: &Context<'_>) -> Result<(), Reason> {
    let bad = |why| {
        rule(ChangeRule::BadWindow {
            start: window.start.to_rfc3339(),
            end: window.end.to_rfc3339(),
            zone: window.time_zone.clone(),
            why,
        })
    };
    if window.end <= window.start {
        return Err(bad("is empty: it must end after it starts"));
    }
    if window.end <= ctx.now() {
        return Err(bad("has ended already"));
    }
    if window.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(bad("names no known IANA time zone"));
    }
    Ok(())
}

fn schedule(
    state: &Change,
    window: &ChangeWindow,
    policy: &ChangePolicy,
    ctx: &Context<'_>,
) -> Result<ChangeControlEvent, Reason> {
    check_window(window, ctx)?;
    let record = state.record();
    let reference = record.reference().ok_or(RefusalReason::NotLogged)?;
    let cis = state
        .plan()
        .map_or(record.affected_cis(), |p| p.cis.as_slice());
    let implementer = state.plan().and_then(|p| p.implementer.as_ref());
    let conflicts = policy.conflicts.as_ref().map_or_else(Vec::new, |detector| {
        detector.conflicts(&ScheduleRequest {
            change: reference,
            window,
            cis,
            implementer,
        })
    });
    let (blocking, warnings): (Vec<_>, Vec<_>) = conflicts
        .into_iter()
        .partition(|c| policy.conflict_policy.blocks(c.kind));
    if !blocking.is_empty() {
        return Err(rule(ChangeRule::Conflicts(blocking)));
    }
    let warnings: Vec<_> = warnings.iter().map(super::Conflict::note).collect();
    if state.window() == Some(window) && state.warnings() == warnings.as_slice() {
        return Err(RefusalReason::Unchanged);
    }
    Ok(ChangeControlEvent::Scheduled {
        window: window.clone(),
        warnings,
    })
}

/// The approver, if they may act on this change under its rule: not its requester nor its
/// implementer, a member of one of the rule's groups.
fn approver_of(
    state: &Change,
    policy: &ChangePolicy,
    asked: Option<&GroupId>,
    ctx: &Context<'_>,
) -> Result<(PersonId, GroupId), Reason> {
    let kind = state.kind().ok_or(RefusalReason::NotLogged)?;
    let major = state.assessment().is_some_and(|a| a.major);
    let applies = policy
        .approvals
        .rule_for(kind, major)
        .ok_or(rule(ChangeRule::NoApprovalRule { kind, major }))?;
    let approver = ctx
        .actor()
        .map(PersonId::from)
        .ok_or(RefusalReason::NoActor)?;
    let duty = |role| {
        rule(ChangeRule::SegregationOfDuties {
            approver: approver.clone(),
            role,
        })
    };
    if state.record().caller() == Some(&approver) {
        return Err(duty("requester"));
    }
    if state.plan().and_then(|p| p.implementer.as_ref()) == Some(&approver) {
        return Err(duty("implementer"));
    }
    let group = policy
        .approvals
        .group_of(applies, &approver, asked)
        .ok_or_else(|| {
            rule(ChangeRule::NotAnApprover {
                approver: approver.clone(),
                rule: applies.name.clone(),
                group: asked.cloned(),
            })
        })?;
    Ok((approver, group))
}

fn decide_own(
    state: &Change,
    command: &ChangeCommand,
    policy: &ChangePolicy,
    ctx: &Context<'_>,
) -> Result<Vec<ChangeEvent>, Reason> {
    use ChangeCommand as C;
    let phase = state.record().phase().ok_or(RefusalReason::NotLogged)?;
    if phase.is_final() {
        return Err(RefusalReason::Final(phase));
    }
    let kind = state.kind().ok_or(RefusalReason::NotLogged)?;
    let mut d = Decision::new(state, ctx);
    let step = |state: &Change, trigger: &Trigger, detail| {
        transition::<ChangeManagement>(state, policy, trigger, None, detail, ctx.now())
    };
    let own = |event| TypedEvent::Own(event);
    // A normal change is planned before it asks for authorisation (a revised plan goes back
    // through assessment: revert it); an emergency change may be replanned while it awaits
    // its expedited authority, which resets the approvals given.
    let (planning, scheduling): (&[&str], &[&str]) = match kind {
        // Its window is part of its assessment, on which it was authorised: rescheduled
        // after authorisation only through a revert.
        ChangeKind::Normal => (&[stage::NEW, stage::ASSESS], &[stage::NEW, stage::ASSESS]),
        ChangeKind::Emergency => (
            &[stage::NEW, stage::AUTHORISE],
            &[stage::NEW, stage::AUTHORISE, stage::SCHEDULED],
        ),
        ChangeKind::Standard => (&[stage::NEW], &[stage::NEW, stage::SCHEDULED]),
    };
    match command {
        C::Plan(given) => {
            in_stage(state, policy, command, planning)?;
            plan(state, given, policy, &mut d)?;
        }
        C::Assess(input) => {
            if kind == ChangeKind::Normal {
                in_stage(state, policy, command, &[stage::ASSESS])?;
                if state.window().is_none() {
                    return Err(rule(ChangeRule::NoWindow));
                }
            }
            let assessment = assess(state, input, policy, ctx)?;
            d.push(own(ChangeControlEvent::Assessed(assessment)));
        }
        C::RequestAuthorisation => {
            d.push(step(
                state,
                &Trigger::REQUEST_APPROVAL,
                TransitionDetail::Plain,
            )?);
        }
        C::Schedule(window) => {
            in_stage(state, policy, command, scheduling)?;
            d.push(own(schedule(state, window, policy, ctx)?));
            if current_stage(state, policy) == Some(stage::NEW) && kind == ChangeKind::Standard {
                let moved = step(d.state(), &Trigger::SCHEDULE, TransitionDetail::Plain)?;
                d.push(moved);
            }
        }
        C::Approve { group } => {
            in_stage(state, policy, command, &[stage::AUTHORISE])?;
            let (approver, group) = approver_of(state, policy, group.as_ref(), ctx)?;
            if state.approvals().iter().any(|a| a.approver == approver) {
                return Err(rule(ChangeRule::AlreadyApproved(approver)));
            }
            d.push(own(ChangeControlEvent::ApprovalGiven { approver, group }));
            let major = state.assessment().is_some_and(|a| a.major);
            if let Some(applies) = policy.approvals.rule_for(kind, major) {
                let mut approvers: Vec<PersonId> = Vec::new();
                for a in d.state().approvals() {
                    if applies.groups.contains(&a.group) && !approvers.contains(&a.approver) {
                        approvers.push(a.approver.clone());
                    }
                }
                if approvers.len() >= applies.quorum as usize {
                    d.push(own(ChangeControlEvent::Authorised {
                        rule: applies.name.clone(),
                        approvers,
                    }));
                    let moved = step(d.state(), &Trigger::APPROVE, TransitionDetail::Plain)?;
                    d.push(moved);
                }
            }
        }
        C::Reject { group, reason } => {
            in_stage(state, policy, command, &[stage::AUTHORISE])?;
            required(reason, "rejection reason")?;
            let (approver, group) = approver_of(state, policy, group.as_ref(), ctx)?;
            let detail = TransitionDetail::Cancellation {
                reason: format!("rejected by {approver}: {reason}"),
            };
            d.push(own(ChangeControlEvent::ApprovalRejected {
                approver,
                group,
                reason: reason.clone(),
            }));
            let moved = step(d.state(), &Trigger::REJECT, detail)?;
            d.push(moved);
        }
        C::StartImplementation => {
            let actor = ctx.actor().map(PersonId::from);
            let approved = state.authorisation().into_iter().flat_map(|a| &a.approvers);
            if let Some(approver) = actor.filter(|a| approved.clone().any(|p| p == a)) {
                return Err(rule(ChangeRule::ApproverImplements(approver)));
            }
            d.push(step(state, &Trigger::IMPLEMENT, TransitionDetail::Plain)?);
        }
        C::RecordImplementation { outcome, notes } => {
            in_stage(state, policy, command, &[stage::IMPLEMENT])?;
            required(notes, "implementation notes")?;
            d.push(own(ChangeControlEvent::Implemented {
                outcome: *outcome,
                notes: notes.clone(),
            }));
            let trigger = match outcome {
                ImplementationOutcome::Failed => Trigger::FAIL,
                ImplementationOutcome::Success | ImplementationOutcome::Partial => {
                    Trigger::COMPLETE
                }
            };
            let moved = step(d.state(), &trigger, TransitionDetail::Plain)?;
            d.push(moved);
        }
        C::RecordRemediation { restored, notes } => {
            in_stage(state, policy, command, &[stage::REMEDIATE])?;
            required(notes, "remediation notes")?;
            d.push(own(ChangeControlEvent::RemediationExecuted {
                restored: *restored,
                notes: notes.clone(),
            }));
            let moved = step(d.state(), &Trigger::REMEDIATE, TransitionDetail::Plain)?;
            d.push(moved);
        }
        C::RecordInvestigation { findings } => {
            let failed = state
                .implementation()
                .is_some_and(|i| i.outcome == ImplementationOutcome::Failed);
            if !failed {
                return Err(rule(ChangeRule::NotFailed));
            }
            required(findings, "investigation findings")?;
            d.push(own(ChangeControlEvent::FailureInvestigated {
                findings: findings.clone(),
            }));
        }
        C::RecordReview {
            successful,
            findings,
        } => {
            in_stage(state, policy, command, &[stage::REVIEW])?;
            required(findings, "review findings")?;
            d.push(own(ChangeControlEvent::Reviewed {
                successful: *successful,
                findings: findings.clone(),
            }));
        }
        C::Revert { reason } => {
            required(reason, "reason to revert")?;
            let reason = format!("reverted to new: {reason}");
            if state.approvals().is_empty() && state.authorisation().is_none() {
                d.push(TypedEvent::Record(RecordEvent::Noted {
                    kind: NoteKind::WorkNote,
                    text: reason,
                }));
            } else {
                d.push(own(ChangeControlEvent::ApprovalsReset { reason }));
            }
            let moved = step(d.state(), &Trigger::REVERT, TransitionDetail::Plain)?;
            d.push(moved);
        }
        C::Log(_) | C::Record(_) => {}
    }
    Ok(d.into_events())
}

/// A change migrates only to a version of its own lifecycle, keeping its stage: moving to
/// another kind's lifecycle, or to a status of another stage, would skip the guards of the
/// stage it is in (an unauthorised change mapped to implementation, an emergency change's
/// review mapped past its retrospective assessment).
fn check_migration(
    state: &Change,
    command: &RecordCommand,
    policy: &ChangePolicy,
) -> Result<(), Reason> {
    crate::record::migration_keeps_stage(state.record(), command, &policy.record).map_err(
        |refused| match refused {
            Ok((lifecycle, why)) => rule(ChangeRule::Migration { lifecycle, why }),
            Err(reason) => reason,
        },
    )
}

impl Aggregate for ChangeManagement {
    type State = Change;
    type Services = ChangePolicy;
    type Command = ChangeCommand;
    type Rejection = ChangeRefusal;

    fn decide(
        state: &Change,
        command: &ChangeCommand,
        policy: &ChangePolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<ChangeEvent>, ChangeRefusal> {
        let decided = match command {
            ChangeCommand::Log(input) => log(state, input, policy, ctx),
            ChangeCommand::Record(c) => check_migration(state, c, policy)
                .and_then(|()| decide_shared::<Self>(state, c, policy, ctx)),
            ChangeCommand::Plan(_)
            | ChangeCommand::Assess(_)
            | ChangeCommand::RequestAuthorisation
            | ChangeCommand::Schedule(_)
            | ChangeCommand::Approve { .. }
            | ChangeCommand::Reject { .. }
            | ChangeCommand::StartImplementation
            | ChangeCommand::RecordImplementation { .. }
            | ChangeCommand::RecordRemediation { .. }
            | ChangeCommand::RecordInvestigation { .. }
            | ChangeCommand::RecordReview { .. }
            | ChangeCommand::Revert { .. } => decide_own(state, command, policy, ctx),
        };
        decided.map_err(|reason| refuse::<Self>(state, command.name(), reason))
    }
}
