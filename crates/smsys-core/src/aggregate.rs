//! Aggregates as two pure functions: `decide` holds the rules, `evolve` applies facts.

use std::error::Error as StdError;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::context::Context;
use crate::event::{Actor, EventType, Metadata};
use crate::upcast::Upcasters;

/// A typed domain event with a stable name and schema version: the persisted contract.
///
/// Never change a shipped event's meaning; add a schema version and an upcaster instead.
pub trait DomainEvent: Sized + Send + Sync {
    /// The stable event type name of this value.
    fn event_type(&self) -> EventType;

    /// The current schema version of this value's type (at least 1).
    fn schema_version(&self) -> u32;

    /// The JSON payload.
    fn to_payload(&self) -> Result<Value, serde_json::Error>;

    /// Reads an event of `event_type` at its current schema version (upcasters have run).
    fn from_payload(event_type: &EventType, payload: Value) -> Result<Self, DecodeError>;

    /// The steps that lift this type's older schema versions: a
    /// [`CommandHandler`](crate::CommandHandler) always applies them (and any it is given).
    fn upcasters() -> Upcasters {
        Upcasters::new()
    }
}

/// An event that could not be read back into its typed form.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The aggregate does not know this event type.
    #[error("unknown event type {0}")]
    UnknownType(EventType),
    /// The payload does not match the type's current schema.
    #[error("payload of {event_type} does not match its schema: {source}")]
    Payload {
        /// The event type.
        event_type: EventType,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// Who recorded an event and when, as its metadata says: what a state may remember beyond the
/// payload ("who resolved it", "when was it logged").
///
/// While deciding, the stamp of the events being decided comes from the [`Context`]; on load, from
/// each recorded event's metadata. A stamp without an actor is a decision made outside a
/// command (a test calling `decide` directly).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp<'a> {
    actor: Option<&'a Actor>,
    at: DateTime<Utc>,
}

impl<'a> Stamp<'a> {
    /// A stamp by `actor` at `at`.
    pub fn new(actor: Option<&'a Actor>, at: DateTime<Utc>) -> Self {
        Self { actor, at }
    }

    /// The stamp of a recorded event.
    pub fn of(metadata: &'a Metadata) -> Self {
        Self::new(Some(metadata.actor()), metadata.occurred_at())
    }

    /// Who.
    pub fn actor(&self) -> Option<&'a Actor> {
        self.actor
    }

    /// When.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }
}

/// A state rebuilt from one event stream: the persisted contract of an aggregate.
///
/// `evolve` applies a recorded event and never fails: recorded events are facts, and replay
/// must not fail. It checks nothing; the rules live in an [`Aggregate`]'s `decide`.
///
/// The state is `Serialize + DeserializeOwned` so it can be snapshotted (command handlers keep
/// snapshots of long streams by default). Bump [`EventSourced::SNAPSHOT_VERSION`] whenever the
/// shape of the state or what `evolve` makes of an event changes (a new field, a new upcaster
/// with another meaning): old snapshots are then ignored and streams replayed.
/// It is `Clone` so a command handler's aggregate cache can keep a copy of it.
pub trait EventSourced:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The stream category of this state's streams.
    const CATEGORY: &'static str;
    /// Schema version of the snapshot form of the state.
    const SNAPSHOT_VERSION: u32 = 1;

    /// What it records.
    type Event: DomainEvent;

    /// Applies a recorded event, stamped with who recorded it and when.
    fn evolve(&mut self, event: &Self::Event, stamp: Stamp<'_>);
}

/// The rules of one kind of event stream: `decide` is pure (it may consult
/// [`Aggregate::Services`], which are data) and either refuses with a typed rejection or
/// returns the events to record (possibly none).
///
/// The state and its `evolve` are a separate [`EventSourced`] type, so the persisted contract
/// (events, state) and the rules that decide them can live in different crates.
pub trait Aggregate: Send + Sync + 'static {
    /// The state `decide` reads.
    type State: EventSourced;
    /// What `decide` consults beyond the state and the command: definitions loaded as data
    /// (lifecycles, priority matrices), never a clock or I/O. `()` when nothing is needed.
    type Services: Send + Sync;
    /// What can be asked of it.
    type Command: Send + Sync;
    /// Why it refuses a command.
    type Rejection: StdError + Send + Sync + 'static;

    /// Decides what `command` means in `state`. The acting actor, the instant and the stream
    /// come in through `ctx`.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
        services: &Self::Services,
        ctx: &Context<'_>,
    ) -> Result<Vec<EventOf<Self>>, Self::Rejection>;
}

/// The event type of an aggregate's state.
pub type EventOf<A> = <<A as Aggregate>::State as EventSourced>::Event;
