//! What a release does to other records, as [`Reactor`](smsys_core::Reactor)s, each exactly
//! once:
//!
//! - [`EarlyLifeCorrelation`]: an incident logged (or linked to a CI) on a release's CIs or
//!   services while the release is in its early-life window is correlated on the release
//!   ([`ReleaseCommand::CorrelateIncident`](super::ReleaseCommand::CorrelateIncident)) and
//!   linked to it from the incident;
//! - [`ReleaseCiUpdates`]: once the last environment is deployed (the release's
//!   `early_life_started` event), the CI updates of its plan are applied through the CMDB,
//!   each naming the release;
//! - [`FailedDeployments`]: a rolled-back deployment raises an incident and/or a problem on
//!   the release's service and CIs, as the release policy's
//!   [`FailurePolicy`](super::FailurePolicy) says, linked both ways with the release;
//! - [`ReleaseClosure`]: a release that closes gives its early-life review to the changes it
//!   delivered that await review, closes them, and retires its known errors, as the policy's
//!   [`ClosurePolicy`](super::ClosurePolicy) says.
//!
//! Run each with [`Reacting`](smsys_core::Reacting) and a durable checkpoint store. Delivery
//! is at least once; every command takes its ids from the triggering event and a purpose
//! naming its target, and its instant from the event, so a replay, a restart or a second node
//! appends nothing new. A command the target refuses is logged through `tracing` and skipped.

mod ci_updates;
mod closure;
mod early_life;
mod failure;

pub use ci_updates::ReleaseCiUpdates;
pub use closure::ReleaseClosure;
pub use early_life::EarlyLifeCorrelation;
pub use failure::FailedDeployments;

use smsys_core::records::release::ReleaseControlEvent;
use smsys_core::records::{RecordKind, Reference, Release, ReleaseEvent, TypedEvent};
use smsys_core::{
    Aggregate, CommandHandler, DomainEvent, EventSourced, EventStore, ProjectionError,
    RecordedEvent, StreamId,
};

use crate::reacting::{AsOf, failed, state_as_of};

/// The name of `event` within its record type (after `<category>.`).
fn event_name(event: &RecordedEvent) -> &str {
    let name = event.data.event_type().as_str();
    name.rsplit_once('.').map_or(name, |(_, n)| n)
}

/// The release event `event` records, through the shipped upcasters.
fn decode(reactor: &str, event: &RecordedEvent) -> Result<ReleaseEvent, ProjectionError> {
    <Release as EventSourced>::Event::upcasters()
        .decode(
            event.data.event_type(),
            event.data.schema_version(),
            event.data.payload().clone(),
        )
        .map_err(|e| failed(reactor, event, e))
}

/// The release's own event `event` records, if it is one named `name`.
fn own_event(
    reactor: &str,
    event: &RecordedEvent,
    name: &str,
) -> Result<Option<ReleaseControlEvent>, ProjectionError> {
    if event.stream.category_str() != Release::CATEGORY || event_name(event) != name {
        return Ok(None);
    }
    match decode(reactor, event)? {
        TypedEvent::Own(own) => Ok(Some(own)),
        TypedEvent::Logged(_) | TypedEvent::Record(_) => Ok(None),
    }
}

/// The release of `event`'s stream as of `event`, with its reference.
async fn release_as_of(
    reactor: &str,
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<(Release, Reference), ProjectionError> {
    let read: AsOf<Release> = state_as_of(store, &event.stream, event.version, "", false)
        .await
        .map_err(|e| failed(reactor, event, e))?;
    let release = read.then;
    let reference = release
        .record()
        .reference()
        .cloned()
        .ok_or_else(|| failed(reactor, event, "the release is not logged"))?;
    Ok((release, reference))
}

/// Whether the record of `stream` is logged, as `handler` loads it.
async fn logged<A: Aggregate>(
    reactor: &str,
    handler: &CommandHandler<A>,
    stream: &StreamId,
    event: &RecordedEvent,
) -> Result<bool, ProjectionError>
where
    A::State: RecordKind,
{
    let loaded = handler
        .load(stream)
        .await
        .map_err(|e| failed(reactor, event, e))?;
    Ok(loaded.state.record().reference().is_some())
}
