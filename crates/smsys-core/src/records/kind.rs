//! What makes a record type: its names, its logged payload, its own events beside the shared
//! ones, and how all of them are stored as `<category>.<name>` at a schema version.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::aggregate::{DecodeError, DomainEvent, EventSourced};
use crate::event::EventType;
use crate::records::event::{Logged, RecordEvent};
use crate::records::ids::{RecordType, Reference};
use crate::records::state::RecordState;
use crate::stream::{Category, IdError, StreamId};
use crate::upcast::{ReadFailure, Upcasters};

/// A record type's `logged` payload: the shared [`Logged`] fields (flattened) and its own.
pub trait LoggedEvent:
    Debug + Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The shared fields.
    fn logged(&self) -> &Logged;

    /// The payload's schema version.
    fn schema_version(&self) -> u32 {
        Logged::SCHEMA_VERSION
    }
}

impl LoggedEvent for Logged {
    fn logged(&self) -> &Logged {
        self
    }
}

/// A record type's own events, beside the shared [`RecordEvent`]s: an enum serialised with
/// `#[serde(rename_all = "snake_case", tag = "event", content = "data")]`, whose names must not
/// repeat a shared name or `logged`.
pub trait OwnEvents:
    Debug + Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Every name, as [`OwnEvents::name`] gives them.
    const NAMES: &'static [&'static str];

    /// This event's name (the snake_case variant name).
    fn name(&self) -> &'static str;

    /// The current schema version of this event's type.
    fn schema_version(&self) -> u32 {
        1
    }
}

/// A record type: the state of one record, rebuilt from its stream, with the shared part every
/// record has ([`RecordState`]) and its own.
///
/// A new record type is a new module: its state, its logged payload and its own events, with
/// no edit to any shared enum. `smsys-processes` adds the rules (`decide`) on top.
pub trait RecordKind: EventSourced<Event = TypedEvent<Self>> + Debug + Clone + PartialEq {
    /// The name lifecycles, SLA definitions and reports use, e.g. `incident`.
    const RECORD_TYPE: RecordType;
    /// Its logged payload.
    type Logged: LoggedEvent;
    /// Its own events.
    type Own: OwnEvents;

    /// The shared part of the state.
    fn record(&self) -> &RecordState;

    /// The stream of the record with `reference`: `<category>-<reference>`.
    ///
    /// ```
    /// use smsys_core::records::{Incident, RecordKind};
    /// let stream = Incident::stream(&"INC-7".parse()?)?;
    /// assert_eq!(stream.as_str(), "incident-INC-7");
    /// # Ok::<(), smsys_core::IdError>(())
    /// ```
    fn stream(reference: &Reference) -> Result<StreamId, IdError> {
        StreamId::new(&Category::new(Self::CATEGORY)?, reference.as_str())
    }

    /// The steps that lift this type's older event schema versions: the shared ones
    /// ([`upcasters_for`]) by default; a type whose own events changed adds its steps here.
    /// Every reader of the type's events applies them.
    fn upcasters() -> Upcasters {
        upcasters_for(Self::CATEGORY)
    }
}

/// One event of record type `K`: the logged event, a shared event, or one of its own.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedEvent<K: RecordKind> {
    /// The record was logged.
    Logged(K::Logged),
    /// A shared event.
    Record(RecordEvent),
    /// One of the type's own events.
    Own(K::Own),
}

impl<K: RecordKind> TypedEvent<K> {
    /// The name within the record type (after `<category>.`).
    pub fn name(&self) -> &'static str {
        match self {
            TypedEvent::Logged(_) => "logged",
            TypedEvent::Record(e) => e.name(),
            TypedEvent::Own(e) => e.name(),
        }
    }

    /// The shared meaning of the event, if it has one (own events have none).
    pub fn into_common(self) -> Option<CommonEvent> {
        match self {
            TypedEvent::Logged(l) => Some(CommonEvent::Logged(l.logged().clone())),
            TypedEvent::Record(e) => Some(CommonEvent::Record(e)),
            TypedEvent::Own(_) => None,
        }
    }

    /// The name of an own event that repeats `logged` or a shared name, or that does not make
    /// a valid event type with the category: a type whose events could not be stored or told
    /// apart when read. Tests of each record type assert `None`.
    pub fn name_clash() -> Option<&'static str> {
        K::Own::NAMES.iter().copied().find(|n| {
            *n == "logged"
                || RecordEvent::NAMES.contains(n)
                || EventType::new(format!("{}.{n}", K::CATEGORY)).is_err()
                || n.contains('.')
        })
    }
}

impl<K: RecordKind> From<RecordEvent> for TypedEvent<K> {
    fn from(event: RecordEvent) -> Self {
        TypedEvent::Record(event)
    }
}

/// The event type `<category>.<name>`.
///
/// Categories are validated [`Category`] names and event names snake_case constants, so the
/// result is always a valid [`EventType`].
pub fn event_type(category: &str, name: &str) -> EventType {
    EventType::new(format!("{category}.{name}"))
        .unwrap_or_else(|e| unreachable!("record event types are valid: {e}"))
}

pub(crate) fn name_in<'a>(category: &str, event_type: &'a EventType) -> Option<&'a str> {
    event_type
        .as_str()
        .split_once('.')
        .filter(|(c, _)| *c == category)
        .map(|(_, name)| name)
}

/// The payload of an adjacently tagged event enum: its `data`, or `{}` for a unit variant.
pub(crate) fn tagged_payload<T: Serialize>(value: &T) -> Result<Value, serde_json::Error> {
    let mut tagged = serde_json::to_value(value)?;
    Ok(tagged
        .get_mut("data")
        .map(Value::take)
        .unwrap_or_else(|| Value::Object(serde_json::Map::new())))
}

/// Reads `payload` as the variant `name` of an adjacently tagged event enum.
pub(crate) fn from_tagged<T: DeserializeOwned>(
    event_type: &EventType,
    name: &str,
    payload: Value,
) -> Result<T, DecodeError> {
    let tagged = |data: Option<Value>| {
        let mut map = serde_json::Map::new();
        map.insert("event".to_owned(), Value::String(name.to_owned()));
        if let Some(data) = data {
            map.insert("data".to_owned(), data);
        }
        Value::Object(map)
    };
    let unit = payload.as_object().is_some_and(serde_json::Map::is_empty);
    if !unit {
        return serde_json::from_value(tagged(Some(payload))).map_err(payload_error(event_type));
    }
    // `{}` is a unit variant, or a struct variant whose fields all default.
    serde_json::from_value(tagged(None)).or_else(|first| {
        serde_json::from_value(tagged(Some(payload))).map_err(|_| payload_error(event_type)(first))
    })
}

fn payload_error(event_type: &EventType) -> impl FnOnce(serde_json::Error) -> DecodeError + '_ {
    move |source| DecodeError::Payload {
        event_type: event_type.clone(),
        source,
    }
}

impl<K: RecordKind> DomainEvent for TypedEvent<K> {
    fn event_type(&self) -> EventType {
        event_type(K::CATEGORY, self.name())
    }

    fn schema_version(&self) -> u32 {
        match self {
            TypedEvent::Logged(l) => l.schema_version(),
            TypedEvent::Record(e) => e.schema_version(),
            TypedEvent::Own(e) => e.schema_version(),
        }
    }

    fn to_payload(&self) -> Result<Value, serde_json::Error> {
        match self {
            TypedEvent::Logged(l) => serde_json::to_value(l),
            TypedEvent::Record(e) => tagged_payload(e),
            TypedEvent::Own(e) => tagged_payload(e),
        }
    }

    fn from_payload(event_type: &EventType, payload: Value) -> Result<Self, DecodeError> {
        let unknown = || DecodeError::UnknownType(event_type.clone());
        let name = name_in(K::CATEGORY, event_type).ok_or_else(unknown)?;
        if name == "logged" {
            return serde_json::from_value(payload)
                .map(TypedEvent::Logged)
                .map_err(payload_error(event_type));
        }
        if RecordEvent::NAMES.contains(&name) {
            return from_tagged(event_type, name, payload).map(TypedEvent::Record);
        }
        if K::Own::NAMES.contains(&name) {
            return from_tagged(event_type, name, payload).map(TypedEvent::Own);
        }
        Err(unknown())
    }

    fn upcasters() -> Upcasters {
        K::upcasters()
    }
}

/// The steps that lift the shared events of records of `category` from schema version 1,
/// written when identifiers were free text:
///
/// - `logged` 1 -> 2: adds nothing (`attributes` defaults to none); blank affected CIs are
///   dropped; a reference that is not a valid [`Reference`] has each character outside
///   ASCII letters, digits and `_ - . :` replaced by `_` (and is cut to 128 bytes); the
///   stream id, not the reference, is the record's identity;
/// - `classified` 1 -> 2: unchanged (`subcategory` defaults to none);
/// - `assigned` 1 -> 2: a blank person becomes no person;
/// - `escalated` 1 -> 2: a blank manager becomes no manager.
pub fn upcasters_for(category: &str) -> Upcasters {
    Upcasters::new()
        .register(&format!("{category}.logged"), 1, |mut payload| {
            if let Some(cis) = payload
                .get_mut("affected_cis")
                .and_then(Value::as_array_mut)
            {
                cis.retain(|ci| ci.as_str().is_some_and(|s| !s.trim().is_empty()));
            }
            if let Some(reference) = payload.get_mut("reference") {
                let text = reference.as_str().unwrap_or_default();
                if Reference::new(text).is_err() {
                    *reference = Value::String(legacy_reference(text));
                }
            }
            Ok(payload)
        })
        .register(&format!("{category}.classified"), 1, Ok)
        .register(&format!("{category}.assigned"), 1, |payload| {
            Ok(without_blank(payload, &["person"]))
        })
        .register(&format!("{category}.escalated"), 1, |mut payload| {
            if let Some(escalation) = payload.get_mut("escalation") {
                *escalation = without_blank(escalation.take(), &["to_manager"]);
            }
            Ok(payload)
        })
}

/// `payload` without the fields of `names` that are blank strings.
fn without_blank(mut payload: Value, names: &[&str]) -> Value {
    if let Some(map) = payload.as_object_mut() {
        for name in names {
            if map
                .get(*name)
                .and_then(Value::as_str)
                .is_some_and(|s| s.trim().is_empty())
            {
                map.remove(*name);
            }
        }
    }
    payload
}

/// A valid reference made from free text: characters outside the allowed set become `_`.
fn legacy_reference(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(crate::stream::MAX_ENTITY_ID_LEN);
    if out.is_empty() {
        out.push('_');
    }
    out
}

impl RecordEvent {
    /// The stored payload (the variant's fields).
    pub fn to_payload(&self) -> Result<Value, serde_json::Error> {
        tagged_payload(self)
    }

    /// The event type of this event on a stream of `category`: `<category>.<name>`.
    pub fn event_type_in(&self, category: &str) -> EventType {
        event_type(category, self.name())
    }
}

/// The shared meaning of an event of any record type: what SLA timers, reports and the record
/// index read without knowing the record type.
#[derive(Debug, Clone, PartialEq)]
pub enum CommonEvent {
    /// The record was logged (the shared fields).
    Logged(Logged),
    /// A shared event.
    Record(RecordEvent),
}

impl CommonEvent {
    /// Reads a stored event of a record type whose own event names are `own` through
    /// `upcasters`: `Ok(None)` for one of its own events (which only its record type reads); an
    /// event type that is neither shared nor its own is refused as unknown.
    pub fn read(
        upcasters: &Upcasters,
        own: &[&str],
        event_type: &EventType,
        schema_version: u32,
        payload: Value,
    ) -> Result<Option<Self>, ReadFailure> {
        let (_, payload) = upcasters
            .upcast(event_type, schema_version, payload)
            .map_err(ReadFailure::Upcast)?;
        let Some((_, name)) = event_type.as_str().split_once('.') else {
            return Err(ReadFailure::Decode(DecodeError::UnknownType(
                event_type.clone(),
            )));
        };
        if name == "logged" {
            return serde_json::from_value(payload)
                .map(|l| Some(CommonEvent::Logged(l)))
                .map_err(|e| ReadFailure::Decode(payload_error(event_type)(e)));
        }
        if RecordEvent::NAMES.contains(&name) {
            return from_tagged(event_type, name, payload)
                .map(|e| Some(CommonEvent::Record(e)))
                .map_err(ReadFailure::Decode);
        }
        if own.contains(&name) {
            return Ok(None);
        }
        Err(ReadFailure::Decode(DecodeError::UnknownType(
            event_type.clone(),
        )))
    }
}
