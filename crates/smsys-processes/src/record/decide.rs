//! The shared commands decided for any record type, lifecycle stepping, and logging.

use chrono::{DateTime, Utc};
use smsys_core::records::{
    Logged, NoteKind, Phase, RecordEvent, RecordKind, TransitionDetail, TypedEvent,
};
use smsys_core::{Context, Stamp};

use crate::attribute::AttributeError;
use crate::lifecycle::{Guard, Requirement, Trigger};
use crate::record::RecordRules;
use crate::record::command::{LogRecord, RecordCommand};
use crate::record::refusal::{Refusal, RefusalReason};

type Reason<T> = RefusalReason<<T as RecordRules>::Rule>;

/// The events a command decides, each applied to a copy of the state as it is added, so later
/// checks see the effect of earlier events.
#[derive(Debug)]
pub struct Decision<'c, K: RecordKind> {
    next: K,
    events: Vec<TypedEvent<K>>,
    stamp: Stamp<'c>,
}

impl<'c, K: RecordKind> Decision<'c, K> {
    /// A decision on `state` in `ctx`.
    pub fn new(state: &K, ctx: &Context<'c>) -> Self {
        Self {
            next: state.clone(),
            events: Vec::new(),
            stamp: ctx.stamp(),
        }
    }

    /// Adds an event.
    pub fn push(&mut self, event: impl Into<TypedEvent<K>>) {
        let event = event.into();
        self.next.evolve(&event, self.stamp);
        self.events.push(event);
    }

    /// The state after the events so far.
    pub fn state(&self) -> &K {
        &self.next
    }

    /// The events.
    pub fn into_events(self) -> Vec<TypedEvent<K>> {
        self.events
    }
}

/// A refusal of `command` on `state`.
pub fn refuse<T: RecordRules>(
    state: &T::Record,
    command: &'static str,
    reason: Reason<T>,
) -> Refusal<T::Rule> {
    let record = state.record();
    Refusal {
        record_type: T::Record::RECORD_TYPE,
        record: record.reference().cloned(),
        status: record.status().map(str::to_owned),
        command,
        reason,
    }
}

pub(crate) fn required<R>(text: &str, what: &'static str) -> Result<(), RefusalReason<R>> {
    if text.trim().is_empty() {
        Err(RefusalReason::MissingInput(what))
    } else {
        Ok(())
    }
}

/// The shared fields of a new record, or why it may not be logged: the reference must name
/// the stream decided on, the attributes must fit the schema, and the policy's lifecycle for
/// new records must exist for this record type.
pub fn log_record<T: RecordRules>(
    state: &T::Record,
    input: &LogRecord,
    policy: &T::Policy,
    ctx: &Context<'_>,
) -> Result<Logged, Reason<T>> {
    if state.record().is_logged() {
        return Err(RefusalReason::AlreadyLogged);
    }
    required(&input.summary, "summary")?;
    if let Some(actual) = ctx.stream() {
        let expected = T::Record::stream(&input.reference).ok();
        if expected.as_ref() != Some(actual) {
            return Err(RefusalReason::WrongStream {
                reference: input.reference.clone(),
                expected: expected.unwrap_or_else(|| actual.clone()),
                actual: actual.clone(),
            });
        }
    }
    let shared = T::record_policy(policy);
    shared
        .attributes
        .check_log(&input.attributes)
        .map_err(RefusalReason::Attribute)?;
    let reference = &shared.lifecycle;
    let lifecycle = shared
        .lifecycles
        .get(reference)
        .ok_or_else(|| RefusalReason::UnknownLifecycle(reference.clone()))?;
    if lifecycle.record_type() != &T::Record::RECORD_TYPE {
        return Err(RefusalReason::LifecycleForOtherType(reference.clone()));
    }
    Ok(Logged {
        reference: input.reference.clone(),
        lifecycle: reference.clone(),
        status: lifecycle.initial().name.clone(),
        caller: input.caller.clone(),
        channel: input.channel,
        service: input.service.clone(),
        affected_cis: input.affected_cis.clone(),
        summary: input.summary.clone(),
        description: input.description.clone(),
        attributes: input.attributes.clone(),
    })
}

/// Whether `requirement` holds for a transition recording `detail`. Resolution code and notes
/// are read from the resolution being recorded, else from the one recorded earlier (a close
/// may require them too).
fn has<K: RecordKind>(state: &K, requirement: &Requirement, detail: &TransitionDetail) -> bool {
    let record = state.record();
    let (code, notes) = match detail {
        TransitionDetail::Resolution { code, notes } => (Some(code.as_str()), Some(notes.as_str())),
        TransitionDetail::Plain
        | TransitionDetail::Hold { .. }
        | TransitionDetail::Resume { .. }
        | TransitionDetail::Reopen { .. }
        | TransitionDetail::Closure { .. }
        | TransitionDetail::Cancellation { .. } => record.resolution().map_or((None, None), |r| {
            (Some(r.code.as_str()), Some(r.notes.as_str()))
        }),
    };
    let given = |text: Option<&str>| text.is_some_and(|t| !t.trim().is_empty());
    match requirement {
        Requirement::Category => record.category().is_some(),
        Requirement::Subcategory => record.subcategory().is_some(),
        Requirement::Priority => record.priority().is_some(),
        Requirement::AssignmentGroup => record.group().is_some(),
        Requirement::Assignee => record.person().is_some(),
        Requirement::ResolutionCode => given(code),
        Requirement::ResolutionNotes => given(notes),
        Requirement::Attribute(name) => record.attribute(name).is_some(),
    }
}

/// The transition `trigger` takes from the current status (optionally to `target`), checked
/// against the record type's policy rule, the transition's requirements and its guards.
pub fn transition<T: RecordRules>(
    state: &T::Record,
    policy: &T::Policy,
    trigger: &Trigger,
    target: Option<&str>,
    detail: TransitionDetail,
    at: DateTime<Utc>,
) -> Result<RecordEvent, Reason<T>> {
    let record = state.record();
    let (Some(reference), Some(status)) = (record.lifecycle(), record.status()) else {
        return Err(RefusalReason::NotLogged);
    };
    T::before_transition(state, trigger, policy)?;
    let lifecycle = T::record_policy(policy)
        .lifecycles
        .get(reference)
        .ok_or_else(|| RefusalReason::UnknownLifecycle(reference.clone()))?;
    let candidates: Vec<_> = lifecycle
        .transitions_from(status, trigger)
        .filter(|t| target.is_none_or(|to| t.to == to))
        .collect();
    let transition = match candidates.as_slice() {
        [] => {
            return Err(RefusalReason::NoTransition {
                lifecycle: reference.clone(),
                trigger: trigger.clone(),
            });
        }
        [one] => *one,
        many => {
            return Err(RefusalReason::AmbiguousTransition {
                trigger: trigger.clone(),
                candidates: many.iter().map(|t| t.to.clone()).collect(),
            });
        }
    };
    if let Some(missing) = transition.requires.iter().find(|r| !has(state, r, &detail)) {
        return Err(RefusalReason::Missing(missing.clone()));
    }
    let holds = |g: &Guard| match g {
        g if *g == Guard::RESOLUTION_RECORDED => record.resolution().is_some(),
        g => T::guard_holds(state, g),
    };
    if let Some(failed) = transition.guards.iter().find(|g| !holds(g)) {
        return Err(RefusalReason::GuardFailed(failed.clone()));
    }
    let phase = lifecycle
        .status(&transition.to)
        .map(|s| s.phase)
        .ok_or_else(|| RefusalReason::BadMappedStatus(transition.to.clone()))?;
    Ok(RecordEvent::Transitioned {
        transition: transition.name.clone(),
        from: status.to_owned(),
        to: transition.to.clone(),
        phase,
        detail,
        at,
    })
}

/// Adds a shared event and the record type's follow-up to it, if any.
fn push_shared<T: RecordRules>(
    d: &mut Decision<'_, T::Record>,
    event: RecordEvent,
    policy: &T::Policy,
) {
    d.push(event);
    let follow = match d.events.last() {
        Some(TypedEvent::Record(event)) => T::follow_up(&d.next, event, policy),
        Some(TypedEvent::Logged(_) | TypedEvent::Own(_)) | None => None,
    };
    if let Some(own) = follow {
        d.push(TypedEvent::Own(own));
    }
}

/// Decides a shared command for a record of type `T`: the events, or why not.
pub fn decide_shared<T: RecordRules>(
    state: &T::Record,
    command: &RecordCommand,
    policy: &T::Policy,
    ctx: &Context<'_>,
) -> Result<Vec<TypedEvent<T::Record>>, Reason<T>> {
    use RecordCommand as C;
    let record = state.record();
    let phase = record.phase().ok_or(RefusalReason::NotLogged)?;
    let shared = T::record_policy(policy);
    let rules = record
        .lifecycle()
        .and_then(|l| shared.lifecycles.get(l))
        .map(|l| *l.rules())
        .unwrap_or_default();
    let late_note = matches!(command, C::AddNote { kind, .. } if *kind != NoteKind::CallerUpdate)
        && rules.notes_after_closure;
    if phase.is_final() && !late_note {
        return Err(RefusalReason::Final(phase));
    }
    let now = ctx.now();
    let mut d = Decision::new(state, ctx);
    let step = |state: &T::Record, trigger: &Trigger, target: Option<&str>, detail| {
        transition::<T>(state, policy, trigger, target, detail, now)
    };
    match command {
        C::Classify {
            category,
            subcategory,
        } => {
            required(category, "category")?;
            if record.category() == Some(category.as_str())
                && record.subcategory() == subcategory.as_deref()
            {
                return Err(RefusalReason::Unchanged);
            }
            d.push(RecordEvent::Classified {
                category: category.clone(),
                subcategory: subcategory.clone(),
            });
        }
        C::Prioritise { impact, urgency } => {
            if record.impact_urgency() == Some((*impact, *urgency)) {
                return Err(RefusalReason::Unchanged);
            }
            let event = RecordEvent::Prioritised {
                impact: *impact,
                urgency: *urgency,
                priority: shared.matrix.priority(*impact, *urgency),
                matrix_version: shared.matrix.version(),
            };
            push_shared::<T>(&mut d, event, policy);
        }
        C::OverridePriority { priority, reason } => {
            required(reason, "override reason")?;
            if record.priority() == Some(*priority) {
                return Err(RefusalReason::Unchanged);
            }
            let event = RecordEvent::PriorityOverridden {
                priority: *priority,
                reason: reason.clone(),
            };
            push_shared::<T>(&mut d, event, policy);
        }
        C::Assign { group, person } => {
            if record.group() == Some(group) && record.person() == person.as_ref() {
                return Err(RefusalReason::Unchanged);
            }
            d.push(RecordEvent::Assigned {
                group: group.clone(),
                person: person.clone(),
                reassignment: record.group().is_some(),
            });
            if phase == Phase::New
                && rules.assignment_starts_work
                && let Ok(start) = step(d.state(), &Trigger::START, None, TransitionDetail::Plain)
            {
                d.push(start);
            }
        }
        C::Unassign { reason } => {
            if record.group().is_none() && record.person().is_none() {
                return Err(RefusalReason::Unchanged);
            }
            d.push(RecordEvent::Unassigned {
                reason: reason.clone(),
            });
        }
        C::Start => {
            d.push(step(state, &Trigger::START, None, TransitionDetail::Plain)?);
        }
        C::Hold { reason, status } => {
            required(reason, "hold reason")?;
            let detail = TransitionDetail::Hold {
                reason: reason.clone(),
            };
            d.push(step(state, &Trigger::HOLD, status.as_deref(), detail)?);
        }
        C::Resume => {
            let detail = TransitionDetail::Resume { by_caller: false };
            d.push(step(state, &Trigger::RESUME, None, detail)?);
        }
        C::AddNote { kind, text } => {
            required(text, "note text")?;
            d.push(RecordEvent::Noted {
                kind: *kind,
                text: text.clone(),
            });
            if *kind == NoteKind::CallerUpdate
                && phase == Phase::Pending
                && rules.caller_update_resumes
                && let Ok(resume) = step(
                    d.state(),
                    &Trigger::RESUME,
                    None,
                    TransitionDetail::Resume { by_caller: true },
                )
            {
                d.push(resume);
            }
        }
        C::Escalate { escalation, reason } => {
            required(reason, "escalation reason")?;
            d.push(RecordEvent::Escalated {
                escalation: escalation.clone(),
                reason: reason.clone(),
            });
            if let smsys_core::records::Escalation::Functional { to_group } = escalation {
                d.push(RecordEvent::Assigned {
                    group: to_group.clone(),
                    person: None,
                    reassignment: record.group().is_some(),
                });
            }
        }
        C::Resolve { code, notes } => {
            let detail = TransitionDetail::Resolution {
                code: code.clone(),
                notes: notes.clone(),
            };
            d.push(step(state, &Trigger::RESOLVE, None, detail)?);
        }
        C::Reopen { reason } => {
            required(reason, "reopen reason")?;
            let detail = TransitionDetail::Reopen {
                reason: reason.clone(),
                count: record.reopen_count().saturating_add(1),
            };
            d.push(step(state, &Trigger::REOPEN, None, detail)?);
        }
        C::Close | C::AutoClose => {
            let automatic = matches!(command, C::AutoClose);
            if automatic {
                // A period too long to add ("never") leaves the record to be closed by hand.
                let due = record.resolution().map(|r| {
                    r.at.checked_add_signed(shared.auto_close_after)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC)
                });
                match due {
                    Some(due) if now < due => {
                        return Err(RefusalReason::AutoCloseTooEarly { due });
                    }
                    Some(_) => {}
                    None => return Err(RefusalReason::GuardFailed(Guard::RESOLUTION_RECORDED)),
                }
            }
            let detail = TransitionDetail::Closure { automatic };
            d.push(step(state, &Trigger::CLOSE, None, detail)?);
        }
        C::Cancel { reason } => {
            required(reason, "cancellation reason")?;
            let detail = TransitionDetail::Cancellation {
                reason: reason.clone(),
            };
            d.push(step(state, &Trigger::CANCEL, None, detail)?);
        }
        C::Link { kind, target } => {
            required(target, "link target")?;
            if record.links().iter().any(|(k, t)| k == kind && t == target) {
                return Err(RefusalReason::Unchanged);
            }
            d.push(RecordEvent::Linked {
                kind: kind.clone(),
                target: target.clone(),
            });
        }
        C::Unlink { kind, target } => {
            if !record.links().iter().any(|(k, t)| k == kind && t == target) {
                return Err(RefusalReason::Unchanged);
            }
            d.push(RecordEvent::Unlinked {
                kind: kind.clone(),
                target: target.clone(),
            });
        }
        C::SetAttribute { name, value } => {
            shared
                .attributes
                .check(name, value)
                .map_err(RefusalReason::Attribute)?;
            if record.attribute(name) == Some(value) {
                return Err(RefusalReason::Unchanged);
            }
            d.push(RecordEvent::AttributeSet {
                name: name.clone(),
                value: value.clone(),
            });
        }
        C::RemoveAttribute { name } => {
            if record.attribute(name).is_none() {
                return Err(RefusalReason::Unchanged);
            }
            if shared
                .attributes
                .get(name)
                .is_some_and(|spec| spec.required_at_log)
            {
                return Err(RefusalReason::Attribute(AttributeError::Required(
                    name.clone(),
                )));
            }
            d.push(RecordEvent::AttributeRemoved { name: name.clone() });
        }
        C::MigrateLifecycle { to, mapping } => {
            let (Some(from), Some(status)) = (record.lifecycle(), record.status()) else {
                return Err(RefusalReason::NotLogged);
            };
            if from == to {
                return Err(RefusalReason::SameLifecycle(to.clone()));
            }
            let target = shared
                .lifecycles
                .get(to)
                .ok_or_else(|| RefusalReason::UnknownLifecycle(to.clone()))?;
            if target.record_type() != &T::Record::RECORD_TYPE {
                return Err(RefusalReason::LifecycleForOtherType(to.clone()));
            }
            let to_status = mapping
                .get(status)
                .ok_or_else(|| RefusalReason::UnmappedStatus(status.to_owned()))?;
            if let Some(bad) = mapping.values().find(|s| target.status(s).is_none()) {
                return Err(RefusalReason::BadMappedStatus(bad.clone()));
            }
            if target.status(to_status).map(|s| s.phase) != Some(phase) {
                return Err(RefusalReason::BadMappedStatus(to_status.clone()));
            }
            d.push(RecordEvent::LifecycleMigrated {
                from: from.clone(),
                to: to.clone(),
                from_status: status.to_owned(),
                to_status: to_status.clone(),
                mapping: mapping.clone(),
            });
        }
    }
    Ok(d.into_events())
}

/// The stage of the record's current status under its lifecycle.
pub(crate) fn current_stage<'p>(
    record: &smsys_core::records::RecordState,
    policy: &'p crate::record::RecordPolicy,
) -> Option<&'p str> {
    let lifecycle = policy.lifecycles.get(record.lifecycle()?)?;
    lifecycle.stage(record.status()?)
}

/// `Ok` when the record's current stage is one of `stages`; else the stage it is in (`none`
/// when its status has none), for the record type's own wrong-stage refusal.
pub(crate) fn check_stage(
    record: &smsys_core::records::RecordState,
    policy: &crate::record::RecordPolicy,
    stages: &[&str],
) -> Result<(), String> {
    let stage = current_stage(record, policy).unwrap_or("none");
    if stages.contains(&stage) {
        Ok(())
    } else {
        Err(stage.to_owned())
    }
}

/// Why a lifecycle migration would skip the rules of the stage the record is in: a
/// migration to another lifecycle, or one that maps its status to another stage. `Ok` for
/// any other command. The error is the record's lifecycle name and what the migration would
/// do.
pub(crate) fn migration_keeps_stage<R>(
    record: &smsys_core::records::RecordState,
    command: &RecordCommand,
    policy: &crate::record::RecordPolicy,
) -> Result<(), Result<(String, String), RefusalReason<R>>> {
    let RecordCommand::MigrateLifecycle { to, mapping } = command else {
        return Ok(());
    };
    let (Some(current), Some(status)) = (record.lifecycle(), record.status()) else {
        return Err(Err(RefusalReason::NotLogged));
    };
    if to.name != current.name {
        return Err(Ok((
            current.name.clone(),
            format!("{} is another lifecycle", to.name),
        )));
    }
    let stage_now = current_stage(record, policy);
    let target = policy.lifecycles.get(to);
    let mapped = mapping.get(status).map(String::as_str).unwrap_or(status);
    let stage_then = target.and_then(|l| l.stage(mapped));
    if stage_then.is_some() && stage_then != stage_now {
        return Err(Ok((
            current.name.clone(),
            format!(
                "{status} (stage {}) would become {mapped} (stage {})",
                stage_now.unwrap_or("none"),
                stage_then.unwrap_or("none")
            ),
        )));
    }
    Ok(())
}
