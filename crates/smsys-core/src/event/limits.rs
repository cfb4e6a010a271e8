//! The limits every store enforces at append, so that whatever an append accepts every
//! reader reads back: how deep JSON may nest, which instants an event may carry.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{EventData, EventType};

/// The deepest nesting of arrays and objects a payload, or an extension's value, may have
/// (`{}` and `[]` are depth 1, `{"a": [1]}` is 2). Every store reads back what it accepts:
/// the JSON readers of the stores stop at 128 levels, and a stored extension is nested in one
/// or two more objects.
pub const MAX_JSON_DEPTH: usize = 64;

/// The earliest instant an event may carry: 0001-01-01T00:00:00Z. With [`LATEST_INSTANT`] it
/// bounds the four-digit years of the canonical encoding and of RFC 3339.
pub const EARLIEST_INSTANT: DateTime<Utc> =
    DateTime::from_timestamp(-62_135_596_800, 0).expect("0001-01-01 is representable");

/// The latest instant an event may carry: 9999-12-31T23:59:59.999999Z.
pub const LATEST_INSTANT: DateTime<Utc> =
    DateTime::from_timestamp(253_402_300_799, 999_999_000).expect("9999-12-31 is representable");

/// The nesting depth of `value`, counted without recursion, so a hostile value cannot
/// exhaust the stack. Only nested arrays and objects are queued: a flat payload (the usual
/// case, checked on every append) allocates nothing.
fn json_depth(value: &Value) -> usize {
    fn nested(value: &Value) -> bool {
        matches!(value, Value::Array(_) | Value::Object(_))
    }
    if !nested(value) {
        return 0;
    }
    let mut deepest = 0;
    let mut pending: Vec<(&Value, usize)> = Vec::new();
    let mut next = Some((value, 1));
    while let Some((value, depth)) = next.take().or_else(|| pending.pop()) {
        deepest = deepest.max(depth);
        if deepest > MAX_JSON_DEPTH {
            break;
        }
        match value {
            Value::Array(items) => {
                pending.extend(items.iter().filter(|v| nested(v)).map(|v| (v, depth + 1)))
            }
            Value::Object(members) => pending.extend(
                members
                    .values()
                    .filter(|v| nested(v))
                    .map(|v| (v, depth + 1)),
            ),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }
    deepest
}

/// Why an [`EventData`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDataError {
    /// Schema versions start at 1.
    #[error("event type {event_type}: schema version must be at least 1")]
    ZeroSchemaVersion {
        /// The event type.
        event_type: EventType,
    },
    /// The payload, or an extension's value, nests arrays and objects deeper than
    /// [`MAX_JSON_DEPTH`].
    #[error(
        "event type {event_type}: {part} nests arrays and objects more than {MAX_JSON_DEPTH} deep"
    )]
    TooDeep {
        /// The event type.
        event_type: EventType,
        /// `payload`, or `extension <key>`.
        part: String,
    },
    /// The occurred-at instant is outside the years 0001 to 9999.
    #[error(
        "event type {event_type}: occurred_at {occurred_at} is outside 0001-01-01 to 9999-12-31"
    )]
    InstantOutOfRange {
        /// The event type.
        event_type: EventType,
        /// The instant given.
        occurred_at: DateTime<Utc>,
    },
}

impl EventData {
    /// Checks what [`Self::new`] checks: a schema version of at least 1, an occurred-at
    /// instant in the years 0001 to 9999, no JSON nested deeper than [`MAX_JSON_DEPTH`].
    /// Every store runs it on every event it is asked to append, however the event was built
    /// (deserialised, say).
    pub fn check(&self) -> Result<(), EventDataError> {
        let event_type = &self.event_type;
        let metadata = &self.metadata;
        let payload = &self.payload;
        if self.schema_version == 0 {
            return Err(EventDataError::ZeroSchemaVersion {
                event_type: event_type.clone(),
            });
        }
        let occurred_at = metadata.occurred_at();
        if !(EARLIEST_INSTANT..=LATEST_INSTANT).contains(&occurred_at) {
            return Err(EventDataError::InstantOutOfRange {
                event_type: event_type.clone(),
                occurred_at,
            });
        }
        let too_deep = |part: String| EventDataError::TooDeep {
            event_type: event_type.clone(),
            part,
        };
        if json_depth(payload) > MAX_JSON_DEPTH {
            return Err(too_deep("payload".into()));
        }
        if let Some(key) = metadata
            .extensions()
            .iter()
            .find_map(|(key, value)| (json_depth(value) > MAX_JSON_DEPTH).then_some(key))
        {
            return Err(too_deep(format!("extension {key}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, EventId, Metadata, to_micros};
    use chrono::{TimeDelta, TimeZone, Timelike};
    use uuid::Uuid;

    fn event_at(occurred_at: DateTime<Utc>, payload: Value) -> Result<EventData, EventDataError> {
        let metadata = Metadata::new(
            EventId::from_uuid(Uuid::from_u128(7)).unwrap(),
            Actor::new("tester").unwrap(),
            occurred_at,
        );
        EventData::new(EventType::new("test.limit").unwrap(), 1, payload, metadata)
    }

    fn nested(depth: usize) -> Value {
        (0..depth).fold(Value::Null, |v, _| Value::Array(vec![v]))
    }

    #[test]
    fn instants_outside_chronos_nanosecond_range_are_truncated_too() {
        for year in [1, 1500, 2300, 9999] {
            let t = Utc
                .with_ymd_and_hms(year, 6, 1, 12, 0, 0)
                .unwrap()
                .with_nanosecond(123_456_789)
                .unwrap();
            assert_eq!(to_micros(t).nanosecond(), 123_456_000, "year {year}");
        }
    }

    #[test]
    fn instants_outside_the_four_digit_years_are_refused() {
        let ok = |t| event_at(t, Value::Null).is_ok();
        assert!(ok(EARLIEST_INSTANT) && ok(LATEST_INSTANT));
        for t in [
            EARLIEST_INSTANT - TimeDelta::microseconds(1),
            LATEST_INSTANT + TimeDelta::microseconds(1),
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
        ] {
            assert!(
                matches!(
                    event_at(t, Value::Null),
                    Err(EventDataError::InstantOutOfRange { .. })
                ),
                "{t:?} is refused"
            );
        }
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused_in_payloads_and_extensions() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(event_at(at, nested(MAX_JSON_DEPTH)).is_ok());
        assert!(matches!(
            event_at(at, nested(MAX_JSON_DEPTH + 1)),
            Err(EventDataError::TooDeep { part, .. }) if part == "payload"
        ));
        let metadata = Metadata::new(
            EventId::from_uuid(Uuid::from_u128(7)).unwrap(),
            Actor::new("tester").unwrap(),
            at,
        )
        .with_extension("deep", nested(MAX_JSON_DEPTH + 1))
        .unwrap();
        let refused = EventData::new(EventType::new("t.x").unwrap(), 1, Value::Null, metadata);
        assert!(matches!(
            refused,
            Err(EventDataError::TooDeep { part, .. }) if part == "extension deep"
        ));
    }

    #[test]
    fn a_hostile_depth_is_refused_without_exhausting_the_stack() {
        // Dropping a deeply nested value recurses: build and drop it on a large stack, and
        // check it on a small one (the depth check itself must not recurse).
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(|| {
                let deep = nested(200_000);
                let checked = std::thread::scope(|scope| {
                    std::thread::Builder::new()
                        .stack_size(64 << 10)
                        .spawn_scoped(scope, || json_depth(&deep))
                        .unwrap()
                        .join()
                        .unwrap()
                });
                assert!(checked > MAX_JSON_DEPTH);
                assert!(matches!(
                    event_at(DateTime::UNIX_EPOCH, deep),
                    Err(EventDataError::TooDeep { .. })
                ));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn what_was_stored_reads_back_unchecked_and_is_checked_again_on_append() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let good = event_at(at, nested(3)).unwrap();
        let mut json = serde_json::to_value(&good).unwrap();
        assert_eq!(
            serde_json::from_value::<EventData>(json.clone()).unwrap(),
            good
        );
        json["payload"] = nested(MAX_JSON_DEPTH + 1);
        let read: EventData = serde_json::from_value(json).expect("reading never refuses");
        assert!(matches!(read.check(), Err(EventDataError::TooDeep { .. })));
    }
}
