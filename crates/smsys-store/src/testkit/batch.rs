//! Conformance cases of [`EventStore::append_batch`]: each part behaves exactly as its own
//! `append` would, in the order given, and a refused part leaves its neighbours alone.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use smsys_core::{
    AppendError, EventData, EventStore, ExpectedVersion, LogFilter, Position, RecordedEvent,
    StreamAppend, Version, verify_events,
};

use super::Harness;
use super::fixture::{Fixture, event};

const WAIT: Duration = Duration::from_secs(30);

fn events(n: usize, tag: &str) -> Vec<EventData> {
    (0..n)
        .map(|i| event("batch.t", json!({ "tag": tag, "n": i })))
        .collect()
}

async fn log<S: EventStore + ?Sized>(store: &S) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reading succeeds"))
        .collect()
        .await
}

async fn finish<H: Harness>(harness: &H, store: Arc<H::Store>) {
    if let Ok(store) = Arc::try_unwrap(store) {
        harness.teardown(store).await;
    }
}

/// A mixed batch: new streams, a stream named twice, a conflict and a malformed part. The good
/// parts are written in batch order; the refused ones write nothing and say why.
pub async fn batch_parts_stand_alone<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let (a, b, c, d) = (
        Fixture::stream("batch-a"),
        Fixture::stream("batch-b"),
        Fixture::stream("batch-c"),
        Fixture::stream("batch-d"),
    );
    let existing = events(2, "before");
    store
        .append(&c, ExpectedVersion::NoStream, existing)
        .await
        .expect("setup append");
    let twice = events(1, "dup").pop().expect("one event");
    let parts = vec![
        StreamAppend::new(a.clone(), ExpectedVersion::NoStream, events(3, "a")),
        StreamAppend::new(
            b.clone(),
            ExpectedVersion::Exact(Version::new(4)),
            events(2, "b"),
        ),
        StreamAppend::new(
            c.clone(),
            ExpectedVersion::Exact(Version::new(2)),
            events(1, "c1"),
        ),
        StreamAppend::new(
            d.clone(),
            ExpectedVersion::NoStream,
            vec![twice.clone(), twice],
        ),
        StreamAppend::new(
            c.clone(),
            ExpectedVersion::Exact(Version::new(3)),
            events(2, "c2"),
        ),
        StreamAppend::new(a.clone(), ExpectedVersion::NoStream, events(1, "a-again")),
        StreamAppend::new(d.clone(), ExpectedVersion::NoStream, vec![]),
    ];
    let results = store.append_batch(parts.clone()).await;
    assert_eq!(results.len(), parts.len(), "one result per part");
    let ok = |i: usize| match &results[i] {
        Ok(r) => r.clone(),
        Err(e) => panic!("part {i} of the batch should succeed: {e}"),
    };
    assert_eq!(ok(0).version, Version::new(3), "new stream a");
    assert!(
        matches!(&results[1], Err(AppendError::Conflict { actual: None, .. })),
        "part 1 expects version 4 of a missing stream: {:?}",
        results[1]
    );
    assert_eq!(
        ok(2).version,
        Version::new(3),
        "c after its two stored events"
    );
    assert!(
        matches!(&results[3], Err(AppendError::DuplicateEventId { .. })),
        "part 3 repeats an id: {:?}",
        results[3]
    );
    assert_eq!(
        ok(4).version,
        Version::new(5),
        "the second part of c sees the first"
    );
    assert!(
        matches!(&results[5], Err(AppendError::Conflict { actual: Some(v), .. }) if *v == Version::new(3)),
        "a was created earlier in the batch: {:?}",
        results[5]
    );
    assert!(
        matches!(&results[6], Err(AppendError::NoEvents { .. })),
        "an empty part is refused: {:?}",
        results[6]
    );

    let all = log(&*store).await;
    assert_eq!(
        all.len(),
        2 + 3 + 1 + 2,
        "only the accepted parts are stored"
    );
    let written: Vec<_> = all[2..].iter().map(|e| e.data.clone()).collect();
    let expected: Vec<_> = [0usize, 2, 4]
        .iter()
        .flat_map(|&i| parts[i].events.clone())
        .collect();
    assert_eq!(
        written, expected,
        "the log holds the accepted parts in batch order"
    );
    let positions: Vec<Position> = [0usize, 2, 4]
        .iter()
        .flat_map(|&i| ok(i).positions)
        .collect();
    let stored: Vec<Position> = all[2..].iter().map(|e| e.position).collect();
    assert_eq!(
        positions, stored,
        "reported positions are where the events are"
    );
    assert!(
        positions.windows(2).all(|p| p[0] < p[1]),
        "positions increase"
    );
    for (stream, version) in [(&a, Some(3)), (&b, None), (&c, Some(5)), (&d, None)] {
        assert_eq!(
            store.stream_version(stream).await.expect("version reads"),
            version.map(Version::new),
            "version of {stream}"
        );
    }
    let report = verify_events(store.read_all(Position::START, LogFilter::all()))
        .await
        .expect("reads");
    assert!(
        report.is_intact(),
        "the chain verifies: {:?}",
        report.first_break
    );
    finish(h, store).await;
}

/// Sending the same batch again (a retry after a lost answer) returns the original results
/// and writes nothing; an empty batch is answered with no results.
pub async fn batch_retry_returns_original_results<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    assert!(store.append_batch(vec![]).await.is_empty());
    let parts: Vec<StreamAppend> = (0..20)
        .map(|i| {
            StreamAppend::new(
                Fixture::stream(&format!("retry-{i}")),
                ExpectedVersion::NoStream,
                events(1 + i % 3, &i.to_string()),
            )
        })
        .collect();
    let first = store.append_batch(parts.clone()).await;
    let first: Vec<_> = first
        .into_iter()
        .map(|r| r.expect("every part is new"))
        .collect();
    let count = log(&*store).await.len();
    let again = store.append_batch(parts).await;
    let again: Vec<_> = again
        .into_iter()
        .map(|r| r.expect("a retried part is recognised"))
        .collect();
    assert_eq!(again, first, "the retry returns the original results");
    assert_eq!(log(&*store).await.len(), count, "the retry writes nothing");
    finish(h, store).await;
}

/// A live subscription delivers a batch's events once each, in log order.
pub async fn batch_reaches_subscribers<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let parts: Vec<StreamAppend> = (0..50)
        .map(|i| {
            StreamAppend::new(
                Fixture::stream(&format!("sub-{i}")),
                ExpectedVersion::NoStream,
                events(2, &i.to_string()),
            )
        })
        .collect();
    let subscription = store.subscribe(Position::START, LogFilter::all());
    let writer = Arc::clone(&store);
    let results = tokio::spawn(async move { writer.append_batch(parts).await })
        .await
        .expect("the batch task runs");
    assert!(results.iter().all(Result::is_ok), "every part is new");
    let seen: Vec<RecordedEvent> = tokio::time::timeout(
        WAIT,
        subscription
            .take(100)
            .map(|e| e.expect("reading succeeds"))
            .collect(),
    )
    .await
    .expect("the subscription delivers the batch");
    assert_eq!(seen, log(&*store).await, "subscription equals the log");
    finish(h, store).await;
}
