//! Events and streams for tests.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use smsys_core::{
    Actor, CausationId, CorrelationId, EventData, EventId, EventType, Metadata, StreamId, TenantId,
};
use uuid::Uuid;

/// An event of `event_type` with a fresh UUID v7 id and a fixed occurred-at instant.
pub fn event(event_type: &str, payload: Value) -> EventData {
    event_with_id(Uuid::now_v7(), event_type, payload)
}

/// An event with the given id.
pub fn event_with_id(id: Uuid, event_type: &str, payload: Value) -> EventData {
    let metadata = Metadata::new(
        EventId::from_uuid(id).expect("fixture ids are not nil"),
        Actor::new("tester").expect("valid actor"),
        Fixture::occurred_at(),
    );
    EventData::new(
        EventType::new(event_type).expect("fixture event types are valid"),
        1,
        payload,
        metadata,
    )
    .expect("schema version 1 is valid")
}

/// Builders for the suite's streams and richer events.
#[derive(Debug, Clone, Copy)]
pub struct Fixture;

impl Fixture {
    /// The instant fixture events say they occurred at.
    pub fn occurred_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0)
            .single()
            .expect("a valid instant")
    }

    /// A stream of category `test` named `name`.
    pub fn stream(name: &str) -> StreamId {
        format!("test-{name}")
            .parse()
            .expect("fixture stream ids are valid")
    }

    /// A stream of the given category.
    pub fn stream_in(category: &str, name: &str) -> StreamId {
        format!("{category}-{name}")
            .parse()
            .expect("fixture stream ids are valid")
    }

    /// An event that uses every metadata field.
    pub fn rich_event() -> EventData {
        let metadata = Metadata::new(
            EventId::from_uuid(Uuid::now_v7()).expect("not nil"),
            Actor::new("agent:ana@example.org").expect("valid actor"),
            Fixture::occurred_at() + chrono::TimeDelta::nanoseconds(123_456_789),
        )
        .with_correlation(CorrelationId::from_uuid(Uuid::now_v7()).expect("not nil"))
        .with_causation(CausationId::from_uuid(Uuid::now_v7()).expect("not nil"))
        .with_tenant(TenantId::new("acme-eu").expect("valid tenant"))
        .with_extension(
            "source",
            serde_json::json!({"channel": "email", "ip": "192.0.2.1", "tags": ["a", "b"]}),
        )
        .expect("valid key");
        EventData::new(
            EventType::new("incident.logged").expect("valid type"),
            3,
            serde_json::json!({
                "summary": "Drucker brennt — «urgent» \"quoted\" \n\t",
                "impact": 1,
                "big": 9_007_199_254_740_993_u64,
                "negative": -42,
                "ratio": 0.1,
                "nested": {"z": [1, 2, {"y": null}], "a": true},
                "emoji": "🔥",
            }),
            metadata,
        )
        .expect("valid event")
    }
}
