//! The edges of what an append accepts: whatever a store accepts, every reader reads back
//! exactly, and a retry of the same append is recognised.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use smsys_core::{
    Actor, AppendError, EARLIEST_INSTANT, EventData, EventId, EventStore, EventType,
    ExpectedVersion, LATEST_INSTANT, LogFilter, MAX_JSON_DEPTH, Metadata, Position, RecordedEvent,
    Version, verify_events,
};
use uuid::Uuid;

use super::Harness;
use super::fixture::Fixture;

/// An array nested `depth` levels deep around `inner`.
fn nested(depth: usize, inner: Value) -> Value {
    (0..depth).fold(inner, |value, _| Value::Array(vec![value]))
}

fn edge_event(occurred_at: DateTime<Utc>, payload: Value, extension: Value) -> EventData {
    let metadata = Metadata::new(
        EventId::from_uuid(Uuid::now_v7()).expect("not nil"),
        Actor::new("tester").expect("valid actor"),
        occurred_at,
    )
    .with_extension("edge", extension)
    .expect("valid key");
    EventData::new(
        EventType::new("test.edge").expect("valid"),
        1,
        payload,
        metadata,
    )
    .expect("inside every limit")
}

/// The events at the edges: the deepest payload and extension value allowed, the first and
/// last instants allowed (with microsecond digits), strings with every kind of character that
/// needs escaping, and numbers at the ends of their ranges.
fn edge_events() -> Vec<EventData> {
    let first = EARLIEST_INSTANT + chrono::TimeDelta::microseconds(1);
    let odd =
        "nul \u{0} bell \u{7} tab \t quote \" backslash \\ line \u{2028} emoji \u{1F600} e\u{301}";
    vec![
        edge_event(
            Fixture::occurred_at(),
            nested(MAX_JSON_DEPTH, json!(1)),
            nested(MAX_JSON_DEPTH - 1, json!({})),
        ),
        edge_event(first, json!({ "text": odd }), json!(odd)),
        edge_event(
            LATEST_INSTANT,
            json!({
                "u64": u64::MAX,
                "i64": i64::MIN,
                "tiny": 5e-324,
                "big": 1.7976931348623157e308,
                "third": 1.0 / 3.0,
            }),
            json!([u64::MAX, -0.5]),
        ),
    ]
}

fn assert_same(read: &[RecordedEvent], written: &[EventData], path: &str) {
    assert_eq!(read.len(), written.len(), "{path} reads every edge event");
    for (r, w) in read.iter().zip(written) {
        assert_eq!(&r.data, w, "{path} reads the edge event back exactly");
    }
}

/// What an append accepts at the limits reads back exactly on every path (stream forwards and
/// backwards, log, subscription), the chain verifies, and appending the same events again is a
/// recognised retry, not a reused id.
pub async fn limits_read_back_everywhere<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let stream = Fixture::stream("edges");
    let written = edge_events();
    let first = store
        .append(&stream, ExpectedVersion::NoStream, written.clone())
        .await
        .expect("events inside every limit are accepted");
    let again = store
        .append(&stream, ExpectedVersion::NoStream, written.clone())
        .await
        .expect("the same append again is a retry");
    assert_eq!(again, first, "the retry returns the original result");

    let forwards: Vec<RecordedEvent> = store
        .read_stream(&stream, Version::FIRST)
        .map(|e| e.expect("reads"))
        .collect()
        .await;
    assert_same(&forwards, &written, "read_stream");
    let mut backwards: Vec<RecordedEvent> = store
        .read_stream_backwards(&stream, None)
        .map(|e| e.expect("reads"))
        .collect()
        .await;
    backwards.reverse();
    assert_same(&backwards, &written, "read_stream_backwards");
    let log: Vec<RecordedEvent> = store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reads"))
        .collect()
        .await;
    assert_same(&log, &written, "read_all");
    let live: Vec<RecordedEvent> = tokio::time::timeout(
        Duration::from_secs(30),
        store
            .subscribe(Position::START, LogFilter::all())
            .take(written.len())
            .map(|e| e.expect("reads"))
            .collect(),
    )
    .await
    .expect("the subscription delivers the edge events");
    assert_same(&live, &written, "subscribe");
    let report = verify_events(store.read_all(Position::START, LogFilter::all()))
        .await
        .expect("verifies");
    assert!(report.is_intact(), "edge events verify: {report:?}");
    // An event beyond the limits, built without `EventData::new` (deserialised), is refused by
    // the append itself and leaves the store as it was.
    let mut raw = serde_json::to_value(&written[0]).expect("serialises");
    raw["payload"] = nested(MAX_JSON_DEPTH + 1, json!(1));
    raw["metadata"]["event_id"] = json!(Uuid::now_v7());
    let deep: EventData = serde_json::from_value(raw).expect("reading never refuses");
    let refused = store
        .append(&stream, ExpectedVersion::Any, vec![deep])
        .await;
    assert!(
        matches!(refused, Err(AppendError::Invalid { .. })),
        "too deep is refused at append: {refused:?}"
    );
    let after: Vec<RecordedEvent> = store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reads"))
        .collect()
        .await;
    assert_eq!(after, log, "a refused append leaves the store as it was");
    let Ok(store) = Arc::try_unwrap(store) else {
        panic!("the case holds the only handle");
    };
    h.teardown(store).await;
}
