//! `decide` for nonconformities: raising, correction, cause analysis, corrective actions and
//! the effectiveness review.

use smsys_core::records::nonconformity::{CorrectiveActionEvent, NonconformityLogged};
use smsys_core::records::{
    Nonconformity, NonconformityEvent, PersonId, RecordKind, TransitionDetail, TypedEvent,
};
use smsys_core::{Aggregate, Context};

use super::{
    LogNonconformity, NonconformityCommand, NonconformityManagement, NonconformityPolicy,
    NonconformityRefusal, NonconformityRule, stage,
};
use crate::lifecycle::Trigger;
use crate::record::{
    Decision, RefusalReason, decide_shared, log_record, migration_keeps_stage, refuse, required,
    transition,
};

type Reason = RefusalReason<NonconformityRule>;

fn rule(rule: NonconformityRule) -> Reason {
    RefusalReason::Rule(rule)
}

/// Refuses `command` unless the nonconformity is in one of `stages`.
fn in_stage(
    state: &Nonconformity,
    policy: &NonconformityPolicy,
    command: &NonconformityCommand,
    stages: &[&str],
) -> Result<(), Reason> {
    crate::record::check_stage(state.record(), &policy.record, stages).map_err(|stage| {
        rule(NonconformityRule::WrongStage {
            command: command.name(),
            stage,
        })
    })
}

fn log(
    state: &Nonconformity,
    input: &LogNonconformity,
    policy: &NonconformityPolicy,
    ctx: &Context<'_>,
) -> Result<Vec<NonconformityEvent>, Reason> {
    let record = log_record::<NonconformityManagement>(state, &input.record, policy, ctx)?;
    if input.source.record() == Some(&input.record.reference) {
        return Err(rule(NonconformityRule::OwnSource(
            input.record.reference.clone(),
        )));
    }
    if let smsys_core::records::NonconformitySource::AuditFinding { audit } = &input.source {
        required(audit, "audit finding")?;
    }
    Ok(vec![TypedEvent::Logged(NonconformityLogged {
        record,
        source: input.source.clone(),
    })])
}

fn decide_own(
    state: &Nonconformity,
    command: &NonconformityCommand,
    policy: &NonconformityPolicy,
    ctx: &Context<'_>,
) -> Result<Vec<NonconformityEvent>, Reason> {
    use CorrectiveActionEvent as E;
    use NonconformityCommand as C;
    let phase = state.record().phase().ok_or(RefusalReason::NotLogged)?;
    if phase.is_final() {
        return Err(RefusalReason::Final(phase));
    }
    let mut d = Decision::new(state, ctx);
    let step = |state: &Nonconformity, trigger: &Trigger| {
        transition::<NonconformityManagement>(
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
        C::Correct { correction } => {
            in_stage(state, policy, command, &[stage::RAISED])?;
            required(correction, "correction")?;
            d.push(own(E::Corrected {
                correction: correction.clone(),
            }));
            let moved = step(d.state(), &Trigger::CORRECT)?;
            d.push(moved);
        }
        C::AnalyseCause { cause, method } => {
            in_stage(state, policy, command, &[stage::CORRECTED])?;
            required(cause, "cause")?;
            required(method, "analysis method")?;
            d.push(own(E::CauseAnalysed {
                cause: cause.clone(),
                method: method.clone(),
            }));
            let moved = step(d.state(), &Trigger::ANALYSE)?;
            d.push(moved);
        }
        C::PlanActions { actions } => {
            in_stage(state, policy, command, &[stage::ANALYSED])?;
            if actions.is_empty() {
                return Err(rule(NonconformityRule::NoActions));
            }
            let today = ctx.now().date_naive();
            for action in actions {
                required(&action.description, "action description")?;
                if action.due < today {
                    return Err(rule(NonconformityRule::DueInThePast {
                        action: action.description.clone(),
                        due: action.due.to_string(),
                    }));
                }
            }
            d.push(own(E::ActionPlanned {
                actions: actions.clone(),
            }));
            let moved = step(d.state(), &Trigger::PLAN_ACTION)?;
            d.push(moved);
        }
        C::ImplementActions { notes } => {
            in_stage(state, policy, command, &[stage::ACTION_PLANNED])?;
            required(notes, "implementation notes")?;
            d.push(own(E::ActionImplemented {
                notes: notes.clone(),
            }));
            let moved = step(d.state(), &Trigger::IMPLEMENT)?;
            d.push(moved);
        }
        C::ReviewEffectiveness {
            effective,
            findings,
        } => {
            if state.implementation().is_none() {
                return Err(rule(NonconformityRule::ActionNotImplemented));
            }
            in_stage(state, policy, command, &[stage::ACTION_IMPLEMENTED])?;
            required(findings, "review findings")?;
            if policy.segregate_review {
                let reviewer = ctx
                    .actor()
                    .map(PersonId::from)
                    .ok_or(RefusalReason::NoActor)?;
                if state.owns_action(&reviewer) {
                    return Err(rule(NonconformityRule::ReviewerOwnsAction(reviewer)));
                }
            }
            d.push(own(E::EffectivenessReviewed {
                effective: *effective,
                findings: findings.clone(),
            }));
            let trigger = if *effective {
                Trigger::CONFIRM_EFFECTIVE
            } else {
                Trigger::ANALYSE
            };
            let moved = step(d.state(), &trigger)?;
            d.push(moved);
        }
        C::Log(_) | C::Record(_) => {}
    }
    Ok(d.into_events())
}

impl Aggregate for NonconformityManagement {
    type State = Nonconformity;
    type Services = NonconformityPolicy;
    type Command = NonconformityCommand;
    type Rejection = NonconformityRefusal;

    fn decide(
        state: &Nonconformity,
        command: &NonconformityCommand,
        policy: &NonconformityPolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<NonconformityEvent>, NonconformityRefusal> {
        let decided = match command {
            NonconformityCommand::Log(input) => log(state, input, policy, ctx),
            NonconformityCommand::Record(c) => {
                migration_keeps_stage(state.record(), c, &policy.record)
                    .map_err(|refused| match refused {
                        Ok((lifecycle, why)) => {
                            rule(NonconformityRule::Migration { lifecycle, why })
                        }
                        Err(reason) => reason,
                    })
                    .and_then(|()| decide_shared::<Self>(state, c, policy, ctx))
            }
            NonconformityCommand::Correct { .. }
            | NonconformityCommand::AnalyseCause { .. }
            | NonconformityCommand::PlanActions { .. }
            | NonconformityCommand::ImplementActions { .. }
            | NonconformityCommand::ReviewEffectiveness { .. } => {
                decide_own(state, command, policy, ctx)
            }
        };
        decided.map_err(|reason| refuse::<Self>(state, command.name(), reason))
    }
}
