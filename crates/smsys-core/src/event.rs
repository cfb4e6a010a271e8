//! Events: what a writer appends ([`EventData`]) and what a store gives back ([`RecordedEvent`]).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::chain::EventHash;
use crate::stream::{IdError, Position, StreamId, Version, validate};

mod limits;

pub use limits::{EARLIEST_INSTANT, EventDataError, LATEST_INSTANT, MAX_JSON_DEPTH};

/// Longest event type name accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;
/// Longest actor, tenant or extension key accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "Uuid", into = "Uuid")]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID; the nil UUID is refused.
            pub fn from_uuid(uuid: Uuid) -> Result<Self, IdError> {
                if uuid.is_nil() {
                    return Err(IdError::NilUuid { kind: $kind });
                }
                Ok(Self(uuid))
            }

            /// The UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl TryFrom<Uuid> for $name {
            type Error = IdError;
            fn try_from(value: Uuid) -> Result<Self, Self::Error> {
                Self::from_uuid(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// Unique id of one event, chosen by the writer (a UUID v7 by convention, so ids sort by
    /// time). Appending the same ids again to the same place is recognised as a retry.
    EventId,
    "event id"
);
uuid_id!(
    /// Ties together every event caused, directly or not, by one original request.
    CorrelationId,
    "correlation id"
);
uuid_id!(
    /// The command or event that directly caused an event.
    CausationId,
    "causation id"
);

uuid_id!(
    /// One carrying-out of a command, chosen by the caller to make a retry safe
    /// ([`CommandMeta::with_command_id`](crate::CommandMeta::with_command_id)): the ids of the
    /// events the command records derive from it, so running the same command again after any
    /// failure records it at most once.
    CommandId,
    "command id"
);

impl CommandId {
    /// The id of the `index`-th event (from 0) the command records: the command's own id for
    /// the first (so ids drawn as UUID v7 keep the store's id index in time order, and a
    /// command of one event costs no derivation), an id derived from the command's for the
    /// others ([`EventId::derived`]).
    ///
    /// ```
    /// use smsys_core::CommandId;
    /// let command = CommandId::from_uuid(uuid::Uuid::from_u128(42))?;
    /// assert_eq!(command.event_id(0).as_uuid(), command.as_uuid());
    /// assert_eq!(command.event_id(1), command.event_id(1));
    /// assert_ne!(command.event_id(0), command.event_id(1));
    /// # Ok::<(), smsys_core::IdError>(())
    /// ```
    pub fn event_id(&self, index: usize) -> EventId {
        match index {
            0 => EventId(self.0),
            _ => EventId::derived(&format!("command/{}/{index}", self.0)),
        }
    }

    /// A deterministic command id derived from `name`, as [`EventId::derived`].
    pub(crate) fn derived(name: &str) -> Self {
        Self(EventId::derived(name).0)
    }
}

impl EventId {
    /// A deterministic id derived from `name` (a UUID v8 from the first 16 bytes of its
    /// SHA-256): the same name always gives the same id, so an event the engine derives from
    /// history (an SLA breach, say) is recorded once however often it is derived.
    ///
    /// ```
    /// use smsys_core::EventId;
    /// let a = EventId::derived("sla/incident-INC-1/resolution/1/10000");
    /// assert_eq!(a, EventId::derived("sla/incident-INC-1/resolution/1/10000"));
    /// assert_ne!(a, EventId::derived("sla/incident-INC-1/resolution/2/10000"));
    /// assert_eq!(a.as_uuid().get_version_num(), 8);
    /// ```
    pub fn derived(name: &str) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(name.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

/// A validated text identifier: a `String` newtype that refuses empty or blank text, text
/// longer than `$max` bytes and characters outside `$ok`, with serde as a plain string.
macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $allowed:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps the text.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                if value.trim().is_empty() {
                    return Err(IdError::Empty { kind: $kind });
                }
                $crate::stream::validate($kind, &value, $max, $allowed, $ok)?;
                Ok(Self(value))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}
pub(crate) use name_id;

name_id!(
    /// Stable name of an event type, e.g. `incident.logged`: part of the persisted contract.
    /// ASCII letters, digits and `_ . -`.
    EventType,
    "event type",
    MAX_EVENT_TYPE_LEN,
    "ASCII letters, digits and '_', '.', '-'",
    |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
);
name_id!(
    /// Who caused an event: a user, a service account or the engine itself.
    /// Printable characters, no control characters.
    Actor,
    "actor",
    MAX_NAME_LEN,
    "printable characters",
    |c: char| !c.is_control()
);
name_id!(
    /// The tenant an event belongs to, in multi-tenant deployments.
    /// ASCII letters, digits and `_ - .`.
    TenantId,
    "tenant id",
    MAX_NAME_LEN,
    "ASCII letters, digits and '_', '-', '.'",
    |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
);

/// Truncates an instant to whole microseconds, the precision every store keeps. A leap second
/// (which chrono can represent, and stores and auditors' tools mostly cannot) becomes the last
/// microsecond of the second before it, so the canonical form always has seconds 00 to 59.
///
/// Works on every instant chrono represents (unlike `duration_trunc`, which gives up outside
/// the years 1677 to 2262).
pub fn to_micros(instant: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = instant.nanosecond().min(999_999_999);
    instant
        .with_nanosecond(nanos - nanos % 1_000)
        .unwrap_or(instant)
}

fn micros<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    DateTime::<Utc>::deserialize(d).map(to_micros)
}

/// Who, when and why of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    event_id: EventId,
    actor: Actor,
    #[serde(deserialize_with = "micros")]
    occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlation_id: Option<CorrelationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    causation_id: Option<CausationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<TenantId>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    extensions: BTreeMap<String, Value>,
}

impl Metadata {
    /// Metadata with the required parts. `occurred_at` is the caller's instant (the engine reads
    /// no clock); it is kept to whole microseconds.
    pub fn new(event_id: EventId, actor: Actor, occurred_at: DateTime<Utc>) -> Self {
        Self {
            event_id,
            actor,
            occurred_at: to_micros(occurred_at),
            correlation_id: None,
            causation_id: None,
            tenant: None,
            extensions: BTreeMap::new(),
        }
    }

    /// Sets the correlation id.
    pub fn with_correlation(mut self, id: CorrelationId) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    pub fn with_causation(mut self, id: CausationId) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Adds an extension entry (any JSON value under a non-empty key of at most
    /// [`MAX_NAME_LEN`] bytes).
    pub fn with_extension(mut self, key: impl Into<String>, value: Value) -> Result<Self, IdError> {
        let key = key.into();
        validate(
            "extension key",
            &key,
            MAX_NAME_LEN,
            "printable characters",
            |c| !c.is_control(),
        )?;
        self.extensions.insert(key, value);
        Ok(self)
    }

    /// The event id.
    pub fn event_id(&self) -> EventId {
        self.event_id
    }
    /// Who caused the event.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
    /// When it happened, as the caller said.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }
    /// The correlation id, if any.
    pub fn correlation_id(&self) -> Option<CorrelationId> {
        self.correlation_id
    }
    /// The causation id, if any.
    pub fn causation_id(&self) -> Option<CausationId> {
        self.causation_id
    }
    /// The tenant, if any.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }
    /// Extension entries, by key.
    pub fn extensions(&self) -> &BTreeMap<String, Value> {
        &self.extensions
    }
}

/// An event to append: type, schema version, JSON payload and metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    event_type: EventType,
    schema_version: u32,
    payload: Value,
    metadata: Metadata,
}

impl EventData {
    /// Builds an event; `schema_version` starts at 1. Refuses what some store could not read
    /// back: a payload or extension value nested deeper than [`MAX_JSON_DEPTH`], an
    /// occurred-at instant outside the years 0001 to 9999.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use smsys_core::{Actor, EventData, EventId, EventType, Metadata};
    /// let id = EventId::from_uuid(uuid::Uuid::from_u128(1))?;
    /// let meta = Metadata::new(id, Actor::new("agent:ana")?, Utc.timestamp_opt(0, 0).unwrap());
    /// let event = EventData::new(
    ///     EventType::new("incident.logged")?,
    ///     1,
    ///     serde_json::json!({"summary": "printer on fire"}),
    ///     meta,
    /// )?;
    /// assert_eq!(event.event_type().as_str(), "incident.logged");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        event_type: EventType,
        schema_version: u32,
        payload: Value,
        metadata: Metadata,
    ) -> Result<Self, EventDataError> {
        let event = Self::stored(event_type, schema_version, payload, metadata);
        event.check()?;
        Ok(event)
    }

    /// An event as a store read it back: not checked against the limits [`Self::new`]
    /// applies, so that what an older release accepted stays readable. Stores use it; to
    /// append, use [`Self::new`] (appends are checked again, see
    /// [`check_append_shape`](crate::check_append_shape)).
    pub fn stored(
        event_type: EventType,
        schema_version: u32,
        payload: Value,
        metadata: Metadata,
    ) -> Self {
        Self {
            event_type,
            schema_version,
            payload,
            metadata,
        }
    }

    /// The event type.
    pub fn event_type(&self) -> &EventType {
        &self.event_type
    }
    /// The schema version of the payload.
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }
    /// The payload.
    pub fn payload(&self) -> &Value {
        &self.payload
    }
    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    /// The event id (from the metadata).
    pub fn event_id(&self) -> EventId {
        self.metadata.event_id
    }
    /// Splits the event into its parts.
    pub fn into_parts(self) -> (EventType, u32, Value, Metadata) {
        (
            self.event_type,
            self.schema_version,
            self.payload,
            self.metadata,
        )
    }
}

/// An event as stored: its data plus the place the store gave it and its hash-chain link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its version within the stream (1 for the first event).
    pub version: Version,
    /// Its place in the global log.
    pub position: Position,
    /// What was appended.
    pub data: EventData,
    /// When the store recorded it (whole microseconds).
    pub recorded_at: DateTime<Utc>,
    /// Hash of the previous event of the same stream (`None` for the first event).
    pub previous_hash: Option<EventHash>,
    /// Hash over `previous_hash` and this event's canonical content, see [`crate::chain`].
    pub hash: EventHash,
}

impl RecordedEvent {
    /// Records `data` at a place: computes the hash chain link. Stores call this at append.
    pub fn record(
        stream: StreamId,
        version: Version,
        position: Position,
        data: EventData,
        recorded_at: DateTime<Utc>,
        previous_hash: Option<EventHash>,
    ) -> Self {
        let recorded_at = to_micros(recorded_at);
        let hash =
            crate::chain::event_hash(previous_hash.as_ref(), &stream, version, &data, recorded_at);
        Self {
            stream,
            version,
            position,
            data,
            recorded_at,
            previous_hash,
            hash,
        }
    }

    /// The event type.
    pub fn event_type(&self) -> &EventType {
        self.data.event_type()
    }

    /// The event id.
    pub fn event_id(&self) -> EventId {
        self.data.event_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn leap_seconds_become_the_last_microsecond_before_them() {
        let leap = Utc
            .with_ymd_and_hms(2016, 12, 31, 23, 59, 59)
            .unwrap()
            .with_nanosecond(1_500_000_000)
            .unwrap();
        let kept = to_micros(leap);
        assert_eq!(kept.second(), 59);
        assert_eq!(kept.nanosecond(), 999_999_000);
        let text = chain_text(kept);
        assert_eq!(text, "2016-12-31T23:59:59.999999Z");
    }

    fn chain_text(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}
