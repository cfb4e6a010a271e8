//! What seals show that per-stream chains cannot: a log is built and sealed on the memory
//! store, copied, edited the way someone with access to the storage could (every stream's
//! chain left intact), and verified.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::json;
use smsys::core::seal::{Sealer, verify_against, verify_sealed};
use smsys::core::{
    AppendError, AppendResult, EventData, EventStore, EventStream, ExpectedVersion, LogFilter,
    Position, RecordedEvent, StoreError, StreamId, VerifyReport, Version,
};
use smsys::store::MemoryEventStore;
use smsys::store::testkit::event;

/// A log as someone left it: read-only, served from a list of events.
struct Frozen(Vec<RecordedEvent>);

#[async_trait]
impl EventStore for Frozen {
    async fn append(
        &self,
        stream: &StreamId,
        _: ExpectedVersion,
        _: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        Err(AppendError::NoEvents {
            stream: stream.clone(),
        })
    }
    fn read_stream(&self, stream: &StreamId, from: Version) -> EventStream<'_> {
        let events: Vec<_> = self
            .0
            .iter()
            .filter(|e| &e.stream == stream && e.version >= from)
            .cloned()
            .map(Ok)
            .collect();
        futures::stream::iter(events).boxed()
    }
    fn read_stream_backwards(&self, stream: &StreamId, _: Option<Version>) -> EventStream<'_> {
        let mut events: Vec<_> = self
            .0
            .iter()
            .filter(|e| &e.stream == stream)
            .cloned()
            .map(Ok)
            .collect();
        events.reverse();
        futures::stream::iter(events).boxed()
    }
    fn read_all(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        let events: Vec<_> = self
            .0
            .iter()
            .filter(|e| e.position > after && filter.matches(e))
            .cloned()
            .map(Ok)
            .collect();
        futures::stream::iter(events).boxed()
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        Ok(self
            .0
            .iter()
            .filter(|e| &e.stream == stream)
            .map(|e| e.version)
            .max())
    }
    fn subscribe(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        self.read_all(after, filter)
    }
}

fn stream(n: usize) -> StreamId {
    format!("incident-{n}").parse().expect("valid")
}

/// Eight streams of three events each, interleaved; a seal; four more events; a seal; two
/// more events after the last seal.
async fn sealed_log() -> Vec<RecordedEvent> {
    let store = Arc::new(MemoryEventStore::new());
    let mut sealer = Sealer::new(store.clone());
    for round in 0..3 {
        for n in 0..8 {
            store
                .append(
                    &stream(n),
                    ExpectedVersion::Any,
                    vec![event("incident.noted", json!({ "round": round }))],
                )
                .await
                .expect("appends");
        }
    }
    sealer.seal().await.expect("seals").expect("a seal");
    for n in 0..4 {
        store
            .append(
                &stream(n),
                ExpectedVersion::Any,
                vec![event("incident.noted", json!({ "round": 3 }))],
            )
            .await
            .expect("appends");
    }
    sealer.seal().await.expect("seals").expect("a seal");
    for n in 4..6 {
        store
            .append(
                &stream(n),
                ExpectedVersion::Any,
                vec![event("incident.noted", json!({ "round": 4 }))],
            )
            .await
            .expect("appends");
    }
    store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reads"))
        .collect()
        .await
}

async fn verify(events: Vec<RecordedEvent>) -> VerifyReport {
    verify_sealed(&Frozen(events)).await.expect("verifies")
}

fn is_seal(e: &RecordedEvent) -> bool {
    e.stream.category_str() == smsys::core::seal::SEAL_CATEGORY
}

/// The first seal's position in the log.
fn first_seal_at(log: &[RecordedEvent]) -> usize {
    log.iter().position(is_seal).expect("a seal")
}

#[tokio::test]
async fn an_untouched_log_verifies_with_its_seals() {
    let report = verify(sealed_log().await).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.seals, 2);
}

#[tokio::test]
async fn a_deleted_stream_is_found_by_the_seal_that_covers_it() {
    let mut log = sealed_log().await;
    log.retain(|e| e.stream != stream(7));
    let report = verify(log).await;
    assert!(report.first_break.is_none(), "every remaining chain holds");
    let failure = report.seal_failures.first().expect("a seal failure");
    assert_eq!(failure.version, Version::new(1), "named at the first seal");
    assert!(
        failure.what.contains("24 events expected, 21 found"),
        "{failure}"
    );
    assert!(
        failure.what.contains("8 streams expected, 7 found"),
        "{failure}"
    );
}

#[tokio::test]
async fn a_truncated_tail_is_found_against_the_published_seal() {
    let mut log = sealed_log().await;
    let published = log.iter().rev().find(|e| is_seal(e)).expect("a seal").hash;
    let first = first_seal_at(&log);
    // Cut everything after the first seal, the last seal with it: what is left is sound...
    log.truncate(first + 1);
    let report = verify(log.clone()).await;
    assert!(report.is_intact(), "{report:?}");
    // ...but it no longer extends the seal whose hash was handed out.
    let proved = verify_against(&Frozen(log), published)
        .await
        .expect("verifies");
    assert!(!proved.is_intact());
    assert!(
        proved.seal_failures[0].what.contains("published hash"),
        "{proved:?}"
    );
}

#[tokio::test]
async fn events_cut_before_a_seal_are_found() {
    let mut log = sealed_log().await;
    let second = log.iter().rposition(is_seal).expect("a second seal");
    // The last three events the second seal covers.
    let cut: Vec<usize> = (0..second)
        .rev()
        .filter(|&i| !is_seal(&log[i]))
        .take(3)
        .collect();
    for i in cut {
        log.remove(i);
    }
    let report = verify(log).await;
    let failure = report.seal_failures.first().expect("a seal failure");
    assert_eq!(failure.version, Version::new(2));
}

#[tokio::test]
async fn swapped_events_of_different_streams_are_found() {
    let mut log = sealed_log().await;
    // Positions 3 and 4 hold events of two different streams: exchange their places.
    let (a, b) = (2, 3);
    assert_ne!(log[a].stream, log[b].stream);
    let (pa, pb) = (log[a].position, log[b].position);
    log[a].position = pb;
    log[b].position = pa;
    log.swap(a, b);
    let report = verify(log).await;
    assert!(
        report.first_break.is_none(),
        "each stream's own order is unchanged"
    );
    let failure = report.seal_failures.first().expect("a seal failure");
    assert!(failure.what.contains("log digest"), "{failure}");
}

#[tokio::test]
async fn a_streams_deleted_last_event_is_found() {
    let mut log = sealed_log().await;
    let seal = first_seal_at(&log);
    // The last event of stream 5 before the first seal (its third), not at the log's end.
    let last = log[..seal]
        .iter()
        .rposition(|e| e.stream == stream(5))
        .expect("an event of stream 5");
    log.remove(last);
    let report = verify(log).await;
    assert!(!report.is_intact());
    assert!(
        !report.seal_failures.is_empty(),
        "the seal finds it: {report:?}"
    );
}

#[tokio::test]
async fn a_moved_event_is_found() {
    let mut log = sealed_log().await;
    // The first event moves to an unused position before the first seal's.
    log[0].position = Position::from_sequence(log[0].position.sequence() + 1000);
    log.sort_by_key(|e| e.position);
    let report = verify(log).await;
    assert!(!report.is_intact(), "{report:?}");
}

#[tokio::test]
async fn what_follows_the_last_seal_is_not_covered() {
    let mut log = sealed_log().await;
    let last = log.len() - 1;
    assert!(!is_seal(&log[last]), "the log ends after its last seal");
    log.truncate(last);
    let report = verify(log).await;
    assert!(
        report.is_intact(),
        "a truncation after the last seal is invisible: seal often and publish the hash"
    );
}

#[tokio::test]
async fn every_altered_event_is_named_once() {
    let mut log = sealed_log().await;
    let altered = [3usize, 17];
    for &i in &altered {
        let (event_type, schema, _, metadata) = log[i].data.clone().into_parts();
        log[i].data = EventData::stored(event_type, schema, json!({ "round": 99 }), metadata);
    }
    let report = verify(log.clone()).await;
    let named: Vec<Position> = report.breaks.iter().map(|b| b.position).collect();
    assert_eq!(
        named,
        altered.iter().map(|&i| log[i].position).collect::<Vec<_>>(),
        "each altered event, once, in log order"
    );
    assert_eq!(report.first_break.as_ref(), report.breaks.first());
    assert_eq!(report.events_checked, log.len() as u64 - 2);
}
