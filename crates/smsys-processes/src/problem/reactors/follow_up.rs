//! What a problem's workaround and fix do to its incidents.

use async_trait::async_trait;
use smsys_core::records::problem::ProblemControlEvent;
use smsys_core::records::{
    Incident, LinkKind, NoteKind, Phase, Problem, ProblemEvent, RecordEvent, RecordKind, Reference,
    TransitionDetail, TypedEvent,
};
use smsys_core::{
    Actor, CommandHandler, DomainEvent, EventId, EventSourced, LogFilter, ProjectionError, Reactor,
    RecordedEvent,
};

use super::{AsOf, Ran, failed, linked, run, skipped, state_as_of};
use crate::incident::{IncidentCommand, IncidentManagement};
use crate::problem::ProblemResolution;
use crate::record::RecordCommand;

fn decode(reactor: &str, event: &RecordedEvent) -> Result<ProblemEvent, ProjectionError> {
    <Problem as EventSourced>::Event::upcasters()
        .decode::<ProblemEvent>(
            event.data.event_type(),
            event.data.schema_version(),
            event.data.payload().clone(),
        )
        .map_err(|e| failed(reactor, event, e))
}

/// The open (new, active or pending) incidents among `references`, with their phase.
async fn open_incidents(
    handler: &CommandHandler<IncidentManagement>,
    reactor: &str,
    trigger: &RecordedEvent,
    references: Vec<Reference>,
) -> Result<Vec<(Reference, smsys_core::StreamId, Phase)>, ProjectionError> {
    let mut open = Vec::new();
    for reference in references {
        let Ok(stream) = Incident::stream(&reference) else {
            continue;
        };
        let loaded = handler
            .load(&stream)
            .await
            .map_err(|e| failed(reactor, trigger, e))?;
        if let Some(phase @ (Phase::New | Phase::Active | Phase::Pending)) =
            loaded.state.record().phase()
        {
            open.push((reference, stream, phase));
        }
    }
    Ok(open)
}

/// Runs `command` on an incident (ids from `cause.1` and `purpose`); a refusal is logged and
/// skipped.
async fn on_incident(
    handler: &CommandHandler<IncidentManagement>,
    (reactor, actor): (&str, &Actor),
    stream: &smsys_core::StreamId,
    command: IncidentCommand,
    cause: (&RecordedEvent, EventId),
    purpose: &str,
) -> Result<Ran, ProjectionError> {
    let trigger = cause.0;
    let ran = run(handler, stream, &command, cause, purpose, actor)
        .await
        .map_err(|e| failed(reactor, trigger, e))?;
    if let Ran::Refused(why) = &ran {
        skipped(reactor, stream, trigger, why);
    }
    Ok(ran)
}

/// Notes a published workaround on every open incident linked to the problem: when the
/// workaround is published (on the incidents linked then) and when an incident is linked to
/// a problem whose workaround is published (on that incident). Each pair of workaround (the
/// event that recorded it) and incident is noted once, whichever trigger comes, however often
/// the incident is unlinked and linked again, and under whatever name the reactor runs; a
/// workaround recorded again is a new one.
pub struct WorkaroundNotices {
    name: String,
    actor: Actor,
    incidents: CommandHandler<IncidentManagement>,
}

impl std::fmt::Debug for WorkaroundNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkaroundNotices")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl WorkaroundNotices {
    /// Notes through `incidents` (whose store holds the problems too) as `actor`, under the
    /// name `workaround-notices`.
    pub fn new(incidents: CommandHandler<IncidentManagement>, actor: Actor) -> Self {
        Self {
            name: "workaround-notices".into(),
            actor,
            incidents,
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

#[async_trait]
impl Reactor for WorkaroundNotices {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<Problem>()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let name = event.data.event_type().as_str();
        if !(name.ends_with(".workaround_recorded") || name.ends_with(".linked")) {
            return Ok(());
        }
        let targets = match decode(&self.name, event)? {
            TypedEvent::Own(ProblemControlEvent::WorkaroundRecorded {
                published: true, ..
            }) => None,
            TypedEvent::Record(RecordEvent::Linked { kind, target })
                if kind == LinkKind::INCIDENT =>
            {
                match target.parse::<Reference>() {
                    Ok(reference) => Some(vec![reference]),
                    Err(_) => return Ok(()),
                }
            }
            TypedEvent::Logged(_) | TypedEvent::Record(_) | TypedEvent::Own(_) => return Ok(()),
        };
        let store = self.incidents.store().as_ref();
        let read: AsOf<Problem> = state_as_of(
            store,
            &event.stream,
            event.version,
            "workaround_recorded",
            false,
        )
        .await
        .map_err(|e| failed(&self.name, event, e))?;
        let (problem, recorded) = (read.then, read.marked);
        let (Some(workaround), Some(recorded)) =
            (problem.workaround().filter(|w| w.published), recorded)
        else {
            return Ok(());
        };
        let targets =
            targets.unwrap_or_else(|| linked(problem.record(), &LinkKind::INCIDENT).collect());
        let from = problem
            .record()
            .reference()
            .map_or_else(|| event.stream.entity_id().to_owned(), Reference::to_string);
        let text = format!("Workaround from problem {from}: {}", workaround.text);
        let open = open_incidents(&self.incidents, &self.name, event, targets).await?;
        for (reference, stream, _) in open {
            let note = RecordCommand::AddNote {
                kind: NoteKind::WorkNote,
                text: text.clone(),
            };
            let purpose = format!("workaround-notice/{reference}");
            on_incident(
                &self.incidents,
                (&self.name, &self.actor),
                &stream,
                note.into(),
                (event, recorded),
                &purpose,
            )
            .await?;
        }
        Ok(())
    }
}

/// What a problem resolved by a fix does to the incidents on hold awaiting it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnFix {
    /// Resume them (back to work, the SLA clock running again) with a note naming the fix:
    /// the agent confirms with the caller and resolves.
    #[default]
    Resume,
    /// Resolve them with this code and the fix as notes; an incident its lifecycle will not
    /// resolve yet (a category or priority missing) gets a note offering it instead.
    Resolve {
        /// The incidents' resolution code.
        code: String,
    },
    /// Only note, on each, that the problem was fixed and the incident can be resolved.
    Offer,
}

/// Follows problems resolved by a fix (a resolution code other than the reserved ones of
/// [`ProblemResolution`]): the incidents linked to the problem and on hold (phase pending)
/// are resumed, resolved or offered resolution, per [`OnFix`].
pub struct FixFollowUp {
    name: String,
    actor: Actor,
    on_fix: OnFix,
    incidents: CommandHandler<IncidentManagement>,
}

impl std::fmt::Debug for FixFollowUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixFollowUp")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("on_fix", &self.on_fix)
            .finish_non_exhaustive()
    }
}

impl FixFollowUp {
    /// Acts through `incidents` (whose store holds the problems too) as `actor`, per
    /// `on_fix`, under the name `fix-follow-up`.
    pub fn new(incidents: CommandHandler<IncidentManagement>, actor: Actor, on_fix: OnFix) -> Self {
        Self {
            name: "fix-follow-up".into(),
            actor,
            on_fix,
            incidents,
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    async fn follow(
        &self,
        event: &RecordedEvent,
        stream: &smsys_core::StreamId,
        reference: &Reference,
        fix: &str,
    ) -> Result<(), ProjectionError> {
        let who = (self.name.as_str(), &self.actor);
        let cause = (event, event.event_id());
        let purpose = |step: &str| format!("fix-follow-up/{reference}/{step}");
        let note = |text: String| {
            IncidentCommand::from(RecordCommand::AddNote {
                kind: NoteKind::WorkNote,
                text,
            })
        };
        let offer = format!("{fix}. This incident can be resolved.");
        match &self.on_fix {
            OnFix::Resume => {
                // The note first: a crash between the two leaves the incident on hold, so a
                // replay finds it and finishes (the note's ids are already stored).
                let text = format!("{fix}. Resumed to confirm with the caller.");
                on_incident(
                    &self.incidents,
                    who,
                    stream,
                    note(text),
                    cause,
                    &purpose("note"),
                )
                .await?;
                on_incident(
                    &self.incidents,
                    who,
                    stream,
                    RecordCommand::Resume.into(),
                    cause,
                    &purpose("resume"),
                )
                .await?;
            }
            OnFix::Resolve { code } => {
                let resolve = RecordCommand::Resolve {
                    code: code.clone(),
                    notes: fix.to_owned(),
                };
                let resolved = on_incident(
                    &self.incidents,
                    who,
                    stream,
                    resolve.into(),
                    cause,
                    &purpose("resolve"),
                )
                .await?;
                if resolved != Ran::Done {
                    on_incident(
                        &self.incidents,
                        who,
                        stream,
                        note(offer),
                        cause,
                        &purpose("note"),
                    )
                    .await?;
                }
            }
            OnFix::Offer => {
                on_incident(
                    &self.incidents,
                    who,
                    stream,
                    note(offer),
                    cause,
                    &purpose("note"),
                )
                .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Reactor for FixFollowUp {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<Problem>()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if !event.data.event_type().as_str().ends_with(".transitioned") {
            return Ok(());
        }
        let TypedEvent::Record(RecordEvent::Transitioned {
            phase: Phase::Resolved,
            detail: TransitionDetail::Resolution { code, notes },
            ..
        }) = decode(&self.name, event)?
        else {
            return Ok(());
        };
        let reserved = ProblemResolution::ALL
            .into_iter()
            .any(|r| r.is_reserved() && r.as_str() == code.trim());
        if reserved {
            return Ok(());
        }
        let store = self.incidents.store().as_ref();
        // A resolution since undone (reopened, resolved again) is followed up no more: the
        // incidents on hold now may be waiting for the next fix.
        let read: AsOf<Problem> = state_as_of(store, &event.stream, event.version, "", true)
            .await
            .map_err(|e| failed(&self.name, event, e))?;
        let (problem, current) = (read.then, read.now.unwrap_or_default());
        let resolved_at = |p: &Problem| p.record().resolution().map(|r| r.at);
        if resolved_at(&current) != resolved_at(&problem) {
            return Ok(());
        }
        let from = problem
            .record()
            .reference()
            .map_or_else(|| event.stream.entity_id().to_owned(), Reference::to_string);
        let fix = format!("Problem {from} was resolved ({code}): {notes}");
        let targets = linked(problem.record(), &LinkKind::INCIDENT).collect();
        for (reference, stream, phase) in
            open_incidents(&self.incidents, &self.name, event, targets).await?
        {
            if phase == Phase::Pending {
                self.follow(event, &stream, &reference, &fix).await?;
            }
        }
        Ok(())
    }
}
