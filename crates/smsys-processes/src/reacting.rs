//! What every reactor of this crate shares: running a command on another record in reaction
//! to an event (ids derived from it, its instant, it as the cause), logging a refusal, reading
//! a record as of one of its versions, the reference of a record opened in reaction to an
//! event, and naming a failure to retry.

use std::error::Error as StdError;

use smsys_core::records::{RecordKind, RecordState, Reference};
use smsys_core::{
    Actor, Aggregate, AppendError, CausationId, CommandError, CommandHandler, CommandMeta, Context,
    DerivedIds, DomainEvent, EventId, EventSourced, EventStore, ProjectionError, RecordedEvent,
    Stamp, StreamId, Version,
};

/// What a reactor's command came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ran {
    /// Recorded now, or before (the derived ids were already stored).
    Done,
    /// The record refused it; the refusal as text.
    Refused(String),
}

/// Runs `command` on `stream` in reaction to `trigger`: ids derived from `seed` (the event
/// whose effect this is: the trigger, or an earlier event the trigger stands for) and
/// `purpose` (never the reactor's name, so a reactor run under a new name derives the same
/// ids), the trigger's instant, `actor` acting, the trigger as the cause.
pub(crate) async fn run<A: Aggregate>(
    handler: &CommandHandler<A>,
    stream: &StreamId,
    command: &A::Command,
    (trigger, seed): (&RecordedEvent, EventId),
    purpose: &str,
    actor: &Actor,
) -> Result<Ran, CommandError<A::Rejection>> {
    let ids = DerivedIds::new(seed, purpose);
    let ctx = Context::new(trigger.data.metadata().occurred_at(), &ids);
    let mut meta = CommandMeta::new(actor.clone());
    if let Ok(cause) = CausationId::from_uuid(trigger.event_id().as_uuid()) {
        meta = meta.with_causation(cause);
    }
    match handler.execute(stream, command, &meta, &ctx).await {
        Ok(_) | Err(CommandError::Append(AppendError::EventIdReused { .. })) => Ok(Ran::Done),
        Err(CommandError::Rejected(refusal)) => Ok(Ran::Refused(refusal.to_string())),
        Err(error) => Err(error),
    }
}

/// Runs `command` on `stream` through `handler` for `reactor`, acting as `actor`, in reaction
/// to `event` (ids derived from it and `purpose`, as [`run`] does): whether it was recorded
/// (now or before); a refusal is logged through [`skipped`].
pub(crate) async fn react_on<A: Aggregate>(
    handler: &CommandHandler<A>,
    (reactor, actor): (&str, &Actor),
    stream: &StreamId,
    command: &A::Command,
    event: &RecordedEvent,
    purpose: &str,
) -> Result<bool, ProjectionError>
where
    A::Rejection: std::fmt::Display,
{
    let ran = run(
        handler,
        stream,
        command,
        (event, event.event_id()),
        purpose,
        actor,
    )
    .await
    .map_err(|e| failed(reactor, event, e))?;
    match &ran {
        Ran::Done => Ok(true),
        Ran::Refused(why) => {
            skipped(reactor, stream, event, why);
            Ok(false)
        }
    }
}

/// The record of type `K` opened in reaction to `event`: `<prefix>-<entity>-<version>`
/// (`entity` the id of the event's stream, `version` the event's), or, when that is too long
/// for a reference, `<prefix>-<16 hex digits derived from the stream>-<version>`; `None` when
/// the prefix itself makes no valid reference. The same event always names the same record,
/// so a second delivery finds it logged.
pub(crate) fn reference_for<K: RecordKind>(
    prefix: &str,
    event: &RecordedEvent,
) -> Option<(Reference, StreamId)> {
    let full = format!("{prefix}-{}-{}", event.stream.entity_id(), event.version);
    let short = || {
        let digest = EventId::derived(event.stream.as_str())
            .as_uuid()
            .simple()
            .to_string();
        let digest = digest.get(..16).unwrap_or(&digest).to_owned();
        format!("{prefix}-{digest}-{}", event.version)
    };
    let reference = full
        .parse::<Reference>()
        .or_else(|_| short().parse::<Reference>())
        .ok()?;
    let stream = K::stream(&reference).ok()?;
    Some((reference, stream))
}

/// Logs a refused reaction (it is skipped, not retried).
pub(crate) fn skipped(reactor: &str, target: &StreamId, trigger: &RecordedEvent, why: &str) {
    tracing::info!(
        reactor,
        %target,
        trigger = %trigger.event_id(),
        trigger_stream = %trigger.stream,
        "reaction skipped: {why}"
    );
}

/// A record read as of one of its versions.
pub(crate) struct AsOf<K> {
    /// Its state at that version.
    pub(crate) then: K,
    /// The id of the last event up to that version with the marker name, if any.
    pub(crate) marked: Option<EventId>,
    /// Its state now, when asked for (read in the same pass).
    pub(crate) now: Option<K>,
}

/// The record of `stream` as of `version` (its events up to and including it), read through
/// the record type's shipped upcasters, with the id of the last event up to there whose name
/// (after `<category>.`) is `marker`, and, with `and_now`, its state after every event.
pub(crate) async fn state_as_of<K: RecordKind>(
    store: &dyn EventStore,
    stream: &StreamId,
    version: Version,
    marker: &str,
    and_now: bool,
) -> Result<AsOf<K>, Box<dyn StdError + Send + Sync>> {
    let upcasters = <K as EventSourced>::Event::upcasters();
    let mut events = store.read_stream(stream, Version::FIRST);
    let mut state = K::default();
    let mut then = None;
    let mut marked = None;
    while let Some(recorded) = futures::StreamExt::next(&mut events).await {
        let recorded = recorded?;
        if recorded.version > version && then.is_none() {
            then = Some(state.clone());
            if !and_now {
                break;
            }
        }
        let name = recorded.data.event_type().as_str().rsplit_once('.');
        if then.is_none() && name.is_some_and(|(_, n)| n == marker) {
            marked = Some(recorded.event_id());
        }
        let event: <K as EventSourced>::Event = upcasters.decode(
            recorded.data.event_type(),
            recorded.data.schema_version(),
            recorded.data.payload().clone(),
        )?;
        state.evolve(&event, Stamp::of(recorded.data.metadata()));
    }
    Ok(match then {
        Some(then) => AsOf {
            then,
            marked,
            now: and_now.then_some(state),
        },
        None => AsOf {
            now: and_now.then(|| state.clone()),
            then: state,
            marked,
        },
    })
}

/// The references `record` links to with `kind`.
pub(crate) fn linked<'a>(
    record: &'a RecordState,
    kind: &'a smsys_core::records::LinkKind,
) -> impl Iterator<Item = Reference> + 'a {
    record
        .links()
        .iter()
        .filter(move |(k, _)| k == kind)
        .filter_map(|(_, target)| target.parse().ok())
}

/// A failure of `reactor` on `trigger`, to be retried.
pub(crate) fn failed(
    reactor: &str,
    trigger: &RecordedEvent,
    error: impl Into<Box<dyn StdError + Send + Sync>>,
) -> ProjectionError {
    ProjectionError::event(reactor, trigger, error)
}
