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
use super::fixture::{Fixture, event, event_with_id};

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

/// A mixed batch: new streams, a stream named twice, conflicts, reused ids and malformed
/// parts. The good parts are written in batch order (not in stream-name order); the refused
/// ones write nothing, say why, and leave their neighbours and later parts of their stream
/// alone.
pub async fn batch_parts_stand_alone<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let [z, b, c, d, e, f] =
        ["z", "b", "c", "d", "e", "f"].map(|n| Fixture::stream(&format!("batch-{n}")));
    let existing = events(2, "before");
    let stored_id = existing[0].event_id().as_uuid();
    store
        .append(&c, ExpectedVersion::NoStream, existing)
        .await
        .expect("setup append");
    let twice = events(1, "dup").pop().expect("one event");
    let first_z = events(3, "z");
    let z_id = first_z[0].event_id().as_uuid();
    let parts = vec![
        StreamAppend::new(z.clone(), ExpectedVersion::NoStream, first_z),
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
        StreamAppend::new(z.clone(), ExpectedVersion::NoStream, events(1, "z-again")),
        StreamAppend::new(d.clone(), ExpectedVersion::NoStream, vec![]),
        StreamAppend::new(
            e.clone(),
            ExpectedVersion::NoStream,
            vec![event_with_id(
                stored_id,
                "batch.t",
                json!({ "other": "content" }),
            )],
        ),
        StreamAppend::new(
            e.clone(),
            ExpectedVersion::NoStream,
            vec![event_with_id(
                z_id,
                "batch.t",
                json!({ "other": "content" }),
            )],
        ),
        StreamAppend::new(
            f.clone(),
            ExpectedVersion::Exact(Version::new(7)),
            events(1, "f1"),
        ),
        StreamAppend::new(f.clone(), ExpectedVersion::NoStream, events(1, "f2")),
        StreamAppend::new(e.clone(), ExpectedVersion::NoStream, events(2, "e")),
    ];
    let results = store.append_batch(parts.clone()).await;
    assert_eq!(results.len(), parts.len(), "one result per part");
    let ok = |i: usize| match &results[i] {
        Ok(r) => r.clone(),
        Err(e) => panic!("part {i} of the batch should succeed: {e}"),
    };
    let refused = |i: usize, why: &str, matches: bool| {
        assert!(matches, "part {i} is refused ({why}): {:?}", results[i]);
    };
    assert_eq!(ok(0).version, Version::new(3), "new stream z");
    refused(
        1,
        "version 4 of a missing stream",
        matches!(&results[1], Err(AppendError::Conflict { actual: None, .. })),
    );
    assert_eq!(
        ok(2).version,
        Version::new(3),
        "c after its two stored events"
    );
    refused(
        3,
        "an id twice",
        matches!(&results[3], Err(AppendError::DuplicateEventId { .. })),
    );
    assert_eq!(
        ok(4).version,
        Version::new(5),
        "the second part of c sees the first"
    );
    refused(
        5,
        "z was created earlier in the batch",
        matches!(&results[5], Err(AppendError::Conflict { actual: Some(v), .. }) if *v == Version::new(3)),
    );
    refused(
        6,
        "no events",
        matches!(&results[6], Err(AppendError::NoEvents { .. })),
    );
    refused(
        7,
        "an id stored before the batch, with other content",
        matches!(&results[7], Err(AppendError::EventIdReused { .. })),
    );
    refused(
        8,
        "an id written earlier in the batch, with other content",
        matches!(&results[8], Err(AppendError::EventIdReused { .. })),
    );
    refused(
        9,
        "version 7 of a missing stream",
        matches!(&results[9], Err(AppendError::Conflict { actual: None, .. })),
    );
    assert_eq!(
        ok(10).version,
        Version::new(1),
        "f after its refused first part"
    );
    assert_eq!(ok(11).version, Version::new(2), "e after its refused parts");

    let accepted = [0usize, 2, 4, 10, 11];
    let all = log(&*store).await;
    let written: Vec<_> = all[2..].iter().map(|e| e.data.clone()).collect();
    let expected: Vec<_> = accepted
        .iter()
        .flat_map(|&i| parts[i].events.clone())
        .collect();
    assert_eq!(
        written, expected,
        "the log holds the accepted parts in batch order"
    );
    let positions: Vec<Position> = accepted.iter().flat_map(|&i| ok(i).positions).collect();
    let stored: Vec<Position> = all[2..].iter().map(|e| e.position).collect();
    assert_eq!(
        positions, stored,
        "reported positions are where the events are"
    );
    assert!(
        positions.windows(2).all(|p| p[0] < p[1]),
        "positions increase"
    );
    for (stream, version) in [
        (&z, Some(3)),
        (&b, None),
        (&c, Some(5)),
        (&d, None),
        (&e, Some(2)),
        (&f, Some(1)),
    ] {
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
/// and writes nothing; a batch mixing such retries with new parts writes only the new ones;
/// an empty batch is answered with no results.
pub async fn batch_retry_returns_original_results<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    assert!(store.append_batch(vec![]).await.is_empty());
    let part = |i: usize| {
        StreamAppend::new(
            Fixture::stream(&format!("retry-{i}")),
            ExpectedVersion::NoStream,
            events(1 + i % 3, &i.to_string()),
        )
    };
    let parts: Vec<StreamAppend> = (0..20).map(part).collect();
    let first = store.append_batch(parts.clone()).await;
    let first: Vec<_> = first
        .into_iter()
        .map(|r| r.expect("every part is new"))
        .collect();
    let count = log(&*store).await.len();
    let again = store.append_batch(parts.clone()).await;
    let again: Vec<_> = again
        .into_iter()
        .map(|r| r.expect("a retried part is recognised"))
        .collect();
    assert_eq!(again, first, "the retry returns the original results");
    assert_eq!(log(&*store).await.len(), count, "the retry writes nothing");

    // An import rerun after a partial commit: old parts interleaved with new ones.
    let fresh: Vec<StreamAppend> = (0..10).map(|i| part(100 + i)).collect();
    let mixed: Vec<StreamAppend> = (0..10)
        .flat_map(|i| [parts[i].clone(), fresh[i].clone()])
        .collect();
    let results = store.append_batch(mixed.clone()).await;
    for (i, result) in results.iter().enumerate() {
        match (i % 2, result) {
            (0, Ok(r)) => assert_eq!(r, &first[i / 2], "part {i} is a retry"),
            (_, Ok(_)) => {}
            (_, Err(e)) => panic!("part {i} should succeed: {e}"),
        }
    }
    let after = log(&*store).await;
    let new: Vec<_> = after[count..].iter().map(|e| e.data.clone()).collect();
    let expected: Vec<_> = fresh.into_iter().flat_map(|p| p.events).collect();
    assert_eq!(
        new, expected,
        "only the new parts are written, in batch order"
    );
    finish(h, store).await;
}

/// A live subscription delivers a batch's events once each, in log order.
pub async fn batch_reaches_subscribers<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let parts: Vec<StreamAppend> = (0..50)
        .map(|i| {
            StreamAppend::new(
                Fixture::stream(&format!("sub-{:02}", 49 - i)),
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
    let order: Vec<String> = seen
        .iter()
        .step_by(2)
        .map(|e| e.stream.to_string())
        .collect();
    let expected: Vec<String> = (0..50)
        .map(|i| Fixture::stream(&format!("sub-{:02}", 49 - i)).to_string())
        .collect();
    assert_eq!(order, expected, "the log follows the batch's order");
    finish(h, store).await;
}
