//! Aggregates as two pure functions: `decide` holds the rules, `evolve` applies facts.

use std::error::Error as StdError;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::Context;
use crate::event::EventType;

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

/// A consistency boundary: one event stream, its rules and its state.
///
/// `decide` and `evolve` are pure (`decide` may consult [`Aggregate::Services`], which are data). `decide` checks every business rule and either refuses with a
/// typed rejection or returns the events to record (possibly none). `evolve` applies a recorded
/// event and never fails: recorded events are facts, and replay must not fail.
///
/// The state is `Serialize + DeserializeOwned` so it can be snapshotted; bump
/// [`Aggregate::SNAPSHOT_VERSION`] when its shape changes and old snapshots are ignored.
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stream category of this aggregate's streams.
    const CATEGORY: &'static str;
    /// Schema version of the snapshot form of the state.
    const SNAPSHOT_VERSION: u32 = 1;

    /// What `decide` consults beyond the state and the command: definitions loaded as data
    /// (lifecycles, priority matrices), never a clock or I/O. `()` when nothing is needed.
    type Services: Send + Sync;
    /// What can be asked of it.
    type Command: Send + Sync;
    /// What it records.
    type Event: DomainEvent;
    /// Why it refuses a command.
    type Rejection: StdError + Send + Sync + 'static;

    /// Decides what `command` means in the current state.
    fn decide(
        &self,
        command: &Self::Command,
        services: &Self::Services,
        ctx: &Context<'_>,
    ) -> Result<Vec<Self::Event>, Self::Rejection>;

    /// Applies a recorded event.
    fn evolve(&mut self, event: &Self::Event);
}
