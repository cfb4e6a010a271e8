//! The conformance cases. Each takes a [`Harness`], creates its own fresh store and panics
//! with a message naming the broken guarantee.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use smsys_core::{
    AppendError, AppendResult, ChainFault, EventData, EventStore, EventStream, ExpectedVersion,
    LogFilter, Position, RecordedEvent, StreamId, Version, verify_events,
};

use super::Harness;
pub use super::batch::{
    batch_parts_stand_alone, batch_reaches_subscribers, batch_retry_returns_original_results,
};
pub use super::boundary::retry_is_one_whole_append;
use super::fixture::{Fixture, event, event_with_id};
pub use super::limits::limits_read_back_everywhere;
pub use super::model::model_test;
pub use super::retry::commands_run_at_most_once;
pub use super::seals::seals_record_and_verify;

const WAIT: Duration = Duration::from_secs(30);

async fn collect(stream: EventStream<'_>) -> Vec<RecordedEvent> {
    stream.map(|e| e.expect("reading succeeds")).collect().await
}

async fn take(stream: EventStream<'_>, n: usize) -> Vec<RecordedEvent> {
    tokio::time::timeout(
        WAIT,
        stream
            .take(n)
            .map(|e| e.expect("reading succeeds"))
            .collect(),
    )
    .await
    .unwrap_or_else(|_| panic!("subscription did not deliver {n} events within {WAIT:?}"))
}

async fn all<S: EventStore + ?Sized>(store: &S) -> Vec<RecordedEvent> {
    collect(store.read_all(Position::START, LogFilter::all())).await
}

fn events(n: usize, event_type: &str) -> Vec<EventData> {
    (0..n)
        .map(|i| event(event_type, json!({ "n": i })))
        .collect()
}

async fn append_ok<S: EventStore + ?Sized>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    batch: Vec<EventData>,
) -> AppendResult {
    store
        .append(stream, expected, batch)
        .await
        .unwrap_or_else(|e| panic!("append to {stream} under {expected} should succeed: {e}"))
}

fn assert_conflict(
    result: Result<AppendResult, AppendError>,
    expected: ExpectedVersion,
    actual: Option<Version>,
) {
    match result {
        Err(AppendError::Conflict {
            expected: e,
            actual: a,
            ..
        }) => {
            assert_eq!(e, expected, "conflict reports the expected version");
            assert_eq!(a, actual, "conflict reports the actual version");
        }
        other => {
            panic!("expected a conflict (expected {expected}, actual {actual:?}), got {other:?}")
        }
    }
}

async fn finish<H: Harness>(harness: &H, store: Arc<H::Store>) {
    if let Ok(store) = Arc::try_unwrap(store) {
        harness.teardown(store).await;
    }
}

/// Data and every metadata field come back as written, with the place the append reported.
pub async fn round_trip_keeps_data_and_metadata<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let stream = Fixture::stream("round-trip");
    let written = Fixture::rich_event();
    let result = append_ok(
        &*store,
        &stream,
        ExpectedVersion::NoStream,
        vec![written.clone()],
    )
    .await;
    assert_eq!(result.version, Version::FIRST);
    assert_eq!(result.positions.len(), 1);
    assert_eq!(result.first_version(), Version::FIRST);

    let read = collect(store.read_stream(&stream, Version::FIRST)).await;
    assert_eq!(read.len(), 1, "one event in the stream");
    let e = &read[0];
    assert_eq!(e.data, written, "data and metadata round-trip unchanged");
    assert_eq!(
        e.data.metadata().occurred_at().timestamp_subsec_nanos(),
        123_456_000,
        "occurred-at kept to whole microseconds"
    );
    assert_eq!(e.stream, stream);
    assert_eq!(e.version, Version::FIRST);
    assert_eq!(e.position, result.positions[0]);
    assert_eq!(e.previous_hash, None, "the first event links to nothing");
    assert_eq!(
        e.recorded_at.timestamp_subsec_nanos() % 1000,
        0,
        "recorded-at in whole microseconds"
    );
    let in_log = all(&*store).await;
    assert_eq!(in_log, read, "the log holds the same event");
    assert_eq!(
        store.stream_version(&stream).await.ok().flatten(),
        Some(Version::FIRST)
    );
    finish(h, store).await;
}

/// `Any` appends to new and existing streams.
pub async fn expected_version_any<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("any");
    assert_eq!(
        append_ok(&*store, &s, ExpectedVersion::Any, events(1, "t"))
            .await
            .version,
        Version::new(1)
    );
    assert_eq!(
        append_ok(&*store, &s, ExpectedVersion::Any, events(2, "t"))
            .await
            .version,
        Version::new(3)
    );
    finish(h, store).await;
}

/// `NoStream` succeeds once, then conflicts.
pub async fn expected_version_no_stream<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("no-stream");
    append_ok(&*store, &s, ExpectedVersion::NoStream, events(1, "t")).await;
    let again = store
        .append(&s, ExpectedVersion::NoStream, events(1, "t"))
        .await;
    assert_conflict(again, ExpectedVersion::NoStream, Some(Version::new(1)));
    finish(h, store).await;
}

/// `StreamExists` conflicts on a new stream and succeeds on an existing one.
pub async fn expected_version_stream_exists<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("exists");
    let missing = store
        .append(&s, ExpectedVersion::StreamExists, events(1, "t"))
        .await;
    assert_conflict(missing, ExpectedVersion::StreamExists, None);
    append_ok(&*store, &s, ExpectedVersion::NoStream, events(1, "t")).await;
    let r = append_ok(&*store, &s, ExpectedVersion::StreamExists, events(1, "t")).await;
    assert_eq!(r.version, Version::new(2));
    finish(h, store).await;
}

/// `Exact` succeeds only at exactly the stream's version.
pub async fn expected_version_exact<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("exact");
    let exp1 = ExpectedVersion::Exact(Version::new(1));
    assert_conflict(store.append(&s, exp1, events(1, "t")).await, exp1, None);
    append_ok(&*store, &s, ExpectedVersion::NoStream, events(1, "t")).await;
    let exp2 = ExpectedVersion::Exact(Version::new(2));
    assert_conflict(
        store.append(&s, exp2, events(1, "t")).await,
        exp2,
        Some(Version::new(1)),
    );
    let r = append_ok(&*store, &s, exp1, events(2, "t")).await;
    assert_eq!(r.version, Version::new(3));
    assert_eq!(r.first_version(), Version::new(2));
    let exp0 = ExpectedVersion::Exact(Version::new(0));
    assert_conflict(
        store.append(&s, exp0, events(1, "t")).await,
        exp0,
        Some(Version::new(3)),
    );
    finish(h, store).await;
}

/// A refused append writes nothing, and its event ids stay free.
pub async fn conflict_writes_nothing<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("conflict");
    append_ok(&*store, &s, ExpectedVersion::NoStream, events(2, "t")).await;
    let before = all(&*store).await;
    let refused = events(3, "t");
    let r = store
        .append(&s, ExpectedVersion::Exact(Version::new(1)), refused.clone())
        .await;
    assert_conflict(
        r,
        ExpectedVersion::Exact(Version::new(1)),
        Some(Version::new(2)),
    );
    assert_eq!(
        all(&*store).await,
        before,
        "a conflicting append wrote nothing"
    );
    assert_eq!(
        store.stream_version(&s).await.ok().flatten(),
        Some(Version::new(2))
    );
    let r = append_ok(
        &*store,
        &s,
        ExpectedVersion::Exact(Version::new(2)),
        refused,
    )
    .await;
    assert_eq!(
        r.version,
        Version::new(5),
        "the refused ids can be appended afterwards"
    );
    finish(h, store).await;
}

/// Many tasks race on one stream: exactly one append wins each version; nothing is lost or
/// duplicated.
pub async fn concurrent_appenders_one_winner_per_version<H: Harness>(h: &H) {
    const TASKS: usize = 16;
    const EACH: usize = 8;
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("race");
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut attempts = 0;
            while won.len() < EACH {
                attempts += 1;
                assert!(attempts < 10_000, "task {task} starved");
                let current = store.stream_version(&s).await.expect("version reads");
                let expected = current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                let e = event("raced", json!({ "task": task, "n": won.len() }));
                let id = e.event_id();
                match store.append(&s, expected, vec![e]).await {
                    Ok(r) => {
                        assert_eq!(
                            Some(r.version),
                            Some(current.map_or(Version::FIRST, Version::next)),
                            "a winning append lands right after the version it expected"
                        );
                        won.push((r.version, id));
                    }
                    Err(AppendError::Conflict { .. }) => {}
                    Err(other) => panic!("unexpected append error: {other}"),
                }
            }
            won
        }));
    }
    let mut versions = Vec::new();
    let mut ids = HashSet::new();
    for t in tasks {
        for (v, id) in t.await.expect("task finishes") {
            versions.push(v.get());
            ids.insert(id);
        }
    }
    versions.sort_unstable();
    let want: Vec<u64> = (1..=(TASKS * EACH) as u64).collect();
    assert_eq!(versions, want, "each version won exactly once");
    let stored = collect(store.read_stream(&s, Version::FIRST)).await;
    assert_eq!(stored.len(), TASKS * EACH, "nothing lost or duplicated");
    let stored_ids: HashSet<_> = stored.iter().map(RecordedEvent::event_id).collect();
    assert_eq!(
        stored_ids, ids,
        "the stored events are exactly the winning ones"
    );
    finish(h, store).await;
}

/// A reader never sees part of a multi-event append.
pub async fn multi_event_append_is_atomic<H: Harness>(h: &H) {
    const BATCH: usize = 25;
    const BATCHES: usize = 20;
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("atomic");
    let writer = {
        let store = Arc::clone(&store);
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..BATCHES {
                append_ok(&*store, &s, ExpectedVersion::Any, events(BATCH, "batched")).await;
            }
        })
    };
    let mut observations = 0;
    while !writer.is_finished() {
        let seen = collect(store.read_stream(&s, Version::FIRST)).await.len();
        assert_eq!(
            seen % BATCH,
            0,
            "a reader saw {seen} events: part of an append"
        );
        let logged = all(&*store).await.len();
        assert_eq!(
            logged % BATCH,
            0,
            "the log showed {logged} events: part of an append"
        );
        observations += 1;
        tokio::task::yield_now().await;
    }
    writer.await.expect("writer finishes");
    assert!(observations > 0);
    assert_eq!(all(&*store).await.len(), BATCH * BATCHES);
    finish(h, store).await;
}

/// Positions strictly increase along the log, also when many writers append at once, and each
/// append's reported positions are where its events are.
pub async fn positions_strictly_increase<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut reported = Vec::new();
            for round in 0..10 {
                let name = if round % 2 == 0 {
                    format!("own{task}")
                } else {
                    "shared".to_owned()
                };
                let batch = events(1 + round % 3, "positioned");
                let ids: Vec<_> = batch.iter().map(EventData::event_id).collect();
                let r = append_ok(
                    &*store,
                    &Fixture::stream(&name),
                    ExpectedVersion::Any,
                    batch,
                )
                .await;
                assert_eq!(r.positions.len(), ids.len());
                reported.extend(ids.into_iter().zip(r.positions));
            }
            reported
        }));
    }
    let mut reported = std::collections::HashMap::new();
    for t in tasks {
        reported.extend(t.await.expect("task finishes"));
    }
    let log = all(&*store).await;
    assert_eq!(
        log.len(),
        reported.len(),
        "every appended event is in the log once"
    );
    for pair in log.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions increase: {} then {}",
            pair[0].position,
            pair[1].position
        );
    }
    for e in &log {
        assert_eq!(
            Some(&e.position),
            reported.get(&e.event_id()),
            "the append reported the event's position"
        );
    }
    finish(h, store).await;
}

/// Forward reads from any version, limits, backwards reads; longer than one page.
pub async fn read_ranges_limits_and_backwards<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("long");
    for _ in 0..12 {
        append_ok(&*store, &s, ExpectedVersion::Any, events(100, "e")).await;
    }
    let versions = |es: &[RecordedEvent]| es.iter().map(|e| e.version.get()).collect::<Vec<_>>();
    let every = collect(store.read_stream(&s, Version::FIRST)).await;
    assert_eq!(versions(&every), (1..=1200).collect::<Vec<_>>());
    let tail = collect(store.read_stream(&s, Version::new(600))).await;
    assert_eq!(versions(&tail), (600..=1200).collect::<Vec<_>>());
    let window = collect(store.read_stream(&s, Version::new(5)).take(10).boxed()).await;
    assert_eq!(versions(&window), (5..15).collect::<Vec<_>>());
    let last3 = collect(store.read_stream_backwards(&s, None).take(3).boxed()).await;
    assert_eq!(versions(&last3), vec![1200, 1199, 1198]);
    let down = collect(store.read_stream_backwards(&s, Some(Version::new(700)))).await;
    assert_eq!(versions(&down), (1..=700).rev().collect::<Vec<_>>());
    let from_zero = collect(store.read_stream(&s, Version::new(0)).take(3).boxed()).await;
    assert_eq!(
        versions(&from_zero),
        vec![1, 2, 3],
        "reading forwards from version 0 reads from the first"
    );
    let beyond = collect(store.read_stream(&s, Version::new(1201))).await;
    assert!(beyond.is_empty(), "reading past the end gives nothing");
    let from_far = collect(
        store
            .read_stream_backwards(&s, Some(Version::new(5000)))
            .take(1)
            .boxed(),
    )
    .await;
    assert_eq!(
        versions(&from_far),
        vec![1200],
        "backwards from beyond the end starts at the newest"
    );
    let after = every[999].position;
    let rest = collect(store.read_all(after, LogFilter::all())).await;
    assert_eq!(
        versions(&rest),
        (1001..=1200).collect::<Vec<_>>(),
        "the log after a position"
    );
    finish(h, store).await;
}

/// Unknown streams read as empty and have no version; an empty store has an empty log.
pub async fn unknown_and_empty_streams<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("nobody");
    assert_eq!(store.stream_version(&s).await.ok().flatten(), None);
    assert!(
        collect(store.read_stream(&s, Version::FIRST))
            .await
            .is_empty()
    );
    assert!(
        collect(store.read_stream_backwards(&s, None))
            .await
            .is_empty()
    );
    assert!(all(&*store).await.is_empty());
    append_ok(
        &*store,
        &Fixture::stream("somebody"),
        ExpectedVersion::Any,
        events(1, "e"),
    )
    .await;
    assert!(
        collect(store.read_stream(&s, Version::FIRST))
            .await
            .is_empty(),
        "other streams do not leak in"
    );
    finish(h, store).await;
}

/// Log reads filtered by category and event type keep log order.
pub async fn read_all_filters<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    for i in 0..6 {
        let category = if i % 2 == 0 { "alpha" } else { "beta" };
        let kind = if i % 3 == 0 {
            "x.happened"
        } else {
            "y.happened"
        };
        let s = Fixture::stream_in(category, &format!("s{}", i % 4));
        append_ok(&*store, &s, ExpectedVersion::Any, events(2, kind)).await;
    }
    let everything = all(&*store).await;
    let cat = |c: &str| smsys_core::Category::new(c).expect("valid");
    let ty = |t: &str| smsys_core::EventType::new(t).expect("valid");
    for filter in [
        LogFilter::all().category(cat("alpha")),
        LogFilter::all().event_type(ty("y.happened")),
        LogFilter::all()
            .category(cat("beta"))
            .event_type(ty("x.happened")),
        LogFilter::all()
            .category(cat("alpha"))
            .category(cat("beta")),
        LogFilter::all().category(cat("gamma")),
    ] {
        let want: Vec<_> = everything
            .iter()
            .filter(|e| filter.matches(e))
            .cloned()
            .collect();
        let got = collect(store.read_all(Position::START, filter.clone())).await;
        assert_eq!(got, want, "filter {filter}");
    }
    assert!(everything.iter().any(|e| e.stream.category_str() == "beta"));
    finish(h, store).await;
}

/// Re-appending the same events to the same place returns the original result, writes nothing.
pub async fn idempotent_retry_returns_original_result<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("retry");
    let first = events(3, "t");
    let original = append_ok(&*store, &s, ExpectedVersion::NoStream, first.clone()).await;
    let retried = append_ok(&*store, &s, ExpectedVersion::NoStream, first.clone()).await;
    assert_eq!(retried, original, "a retry returns the original result");
    assert_eq!(all(&*store).await.len(), 3, "a retry writes nothing");
    let second = events(2, "t");
    let r2 = append_ok(
        &*store,
        &s,
        ExpectedVersion::Exact(Version::new(3)),
        second.clone(),
    )
    .await;
    append_ok(&*store, &s, ExpectedVersion::Any, events(1, "t")).await;
    assert_eq!(
        append_ok(&*store, &s, ExpectedVersion::NoStream, first).await,
        original,
        "a late retry, after other appends, still returns the original result"
    );
    assert_eq!(
        append_ok(
            &*store,
            &s,
            ExpectedVersion::Exact(Version::new(3)),
            second.clone()
        )
        .await,
        r2
    );
    assert_eq!(
        append_ok(&*store, &s, ExpectedVersion::Any, second).await,
        r2
    );
    assert_eq!(all(&*store).await.len(), 6);
    finish(h, store).await;
}

/// An event id reused for other content, another stream, another place or mixed with new ids
/// is refused, and nothing is written.
pub async fn event_id_reuse_is_refused<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("reuse");
    let id = uuid::Uuid::now_v7();
    append_ok(
        &*store,
        &s,
        ExpectedVersion::NoStream,
        vec![event_with_id(id, "t", json!({"a": 1}))],
    )
    .await;
    let before = all(&*store).await;
    let reuse = |r: Result<AppendResult, AppendError>, what: &str| match r {
        Err(AppendError::EventIdReused { event_id, .. }) => {
            assert_eq!(event_id.as_uuid(), id, "{what}: names the id")
        }
        other => panic!("{what}: expected EventIdReused, got {other:?}"),
    };
    reuse(
        store
            .append(
                &s,
                ExpectedVersion::Any,
                vec![event_with_id(id, "t", json!({"a": 2}))],
            )
            .await,
        "other content",
    );
    reuse(
        store
            .append(
                &Fixture::stream("other"),
                ExpectedVersion::Any,
                vec![event_with_id(id, "t", json!({"a": 1}))],
            )
            .await,
        "other stream",
    );
    reuse(
        store
            .append(
                &s,
                ExpectedVersion::StreamExists,
                vec![event_with_id(id, "t", json!({"a": 1}))],
            )
            .await,
        "other place",
    );
    let fresh = event("t", json!({}));
    let r = store
        .append(
            &s,
            ExpectedVersion::Any,
            vec![fresh, event_with_id(id, "t", json!({"a": 1}))],
        )
        .await;
    assert!(
        matches!(r, Err(AppendError::EventIdReused { .. })),
        "new and stored ids mixed: {r:?}"
    );
    assert_eq!(all(&*store).await, before, "refused appends wrote nothing");
    finish(h, store).await;
}

/// Empty appends and ids repeated within one append are refused; nothing is written.
pub async fn bad_appends_are_refused<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("bad");
    let r = store.append(&s, ExpectedVersion::Any, Vec::new()).await;
    assert!(
        matches!(r, Err(AppendError::NoEvents { .. })),
        "empty append: {r:?}"
    );
    let id = uuid::Uuid::now_v7();
    let twice = vec![
        event_with_id(id, "t", json!({})),
        event_with_id(id, "t", json!({})),
    ];
    let r = store.append(&s, ExpectedVersion::Any, twice).await;
    assert!(
        matches!(r, Err(AppendError::DuplicateEventId { .. })),
        "id twice: {r:?}"
    );
    assert!(all(&*store).await.is_empty(), "nothing written");
    assert_eq!(store.stream_version(&s).await.ok().flatten(), None);
    finish(h, store).await;
}

/// A subscription from the start delivers the whole log once, then new events live.
pub async fn subscription_from_start_sees_everything_once<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    for i in 0..30 {
        append_ok(
            &*store,
            &Fixture::stream(&format!("s{}", i % 4)),
            ExpectedVersion::Any,
            events(1, "e"),
        )
        .await;
    }
    let mut sub = store.subscribe(Position::START, LogFilter::all());
    let first: Vec<_> = take((&mut sub).boxed(), 30).await;
    assert_eq!(first, all(&*store).await, "catch-up equals the log");
    for _ in 0..5 {
        append_ok(
            &*store,
            &Fixture::stream("late"),
            ExpectedVersion::Any,
            events(1, "late"),
        )
        .await;
    }
    let live = take((&mut sub).boxed(), 5).await;
    assert!(
        live.iter().all(|e| e.stream == Fixture::stream("late")),
        "live events follow"
    );
    let log = all(&*store).await;
    assert_eq!(live, log[30..].to_vec());
    let nothing_more = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
    assert!(nothing_more.is_err(), "no event is delivered twice");
    drop(sub);
    finish(h, store).await;
}

/// A subscription from a checkpoint resumes right after it, also filtered.
pub async fn subscription_from_checkpoint_resumes<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    for i in 0..20 {
        let cat = if i % 2 == 0 { "even" } else { "odd" };
        append_ok(
            &*store,
            &Fixture::stream_in(cat, "s"),
            ExpectedVersion::Any,
            events(1, "e"),
        )
        .await;
    }
    let log = all(&*store).await;
    let checkpoint = log[9].position;
    let resumed = take(store.subscribe(checkpoint, LogFilter::all()), 10).await;
    assert_eq!(resumed, log[10..].to_vec());
    let even = LogFilter::all().category(smsys_core::Category::new("even").expect("valid"));
    let filtered = take(store.subscribe(checkpoint, even.clone()), 5).await;
    let want: Vec<_> = log[10..]
        .iter()
        .filter(|e| even.matches(e))
        .cloned()
        .collect();
    assert_eq!(filtered, want);
    finish(h, store).await;
}

/// A subscriber running while many writers append sees every event exactly once, in log order.
pub async fn subscription_sees_concurrent_appends_exactly_once<H: Harness>(h: &H) {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 25;
    const TOTAL: usize = WRITERS * ROUNDS * 2;
    let store = Arc::new(h.create().await);
    let subscriber = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            take(store.subscribe(Position::START, LogFilter::all()), TOTAL).await
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let name = if round % 3 == 0 {
                    "shared".to_owned()
                } else {
                    format!("w{w}")
                };
                append_ok(
                    &*store,
                    &Fixture::stream(&name),
                    ExpectedVersion::Any,
                    events(2, "c"),
                )
                .await;
            }
        }));
    }
    for w in writers {
        w.await.expect("writer finishes");
    }
    let seen = subscriber.await.expect("subscriber finishes");
    let ids: HashSet<_> = seen.iter().map(RecordedEvent::event_id).collect();
    assert_eq!(ids.len(), TOTAL, "no event delivered twice");
    for pair in seen.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "delivered in log order"
        );
    }
    assert_eq!(
        seen,
        all(&*store).await,
        "the subscription saw exactly the log, in its order"
    );
    finish(h, store).await;
}

/// The hash chain of every stream and of the whole log verifies.
pub async fn hash_chain_verifies<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    for i in 0..12 {
        let s = Fixture::stream(&format!("c{}", i % 3));
        append_ok(
            &*store,
            &s,
            ExpectedVersion::Any,
            events(1 + i % 3, "chained"),
        )
        .await;
    }
    append_ok(
        &*store,
        &Fixture::stream("rich"),
        ExpectedVersion::Any,
        vec![Fixture::rich_event()],
    )
    .await;
    let report = verify_events(store.read_all(Position::START, LogFilter::all()))
        .await
        .expect("reads");
    assert!(report.is_intact(), "log verifies: {:?}", report.first_break);
    assert_eq!(report.events_checked, all(&*store).await.len() as u64);
    assert_eq!(report.streams, 4);
    let one = verify_events(store.read_stream(&Fixture::stream("c1"), Version::FIRST))
        .await
        .expect("reads");
    assert!(one.is_intact());
    let log = all(&*store).await;
    for pair in log.windows(2).filter(|p| p[0].stream == p[1].stream) {
        assert_eq!(
            pair[1].previous_hash,
            Some(pair[0].hash),
            "consecutive events are linked"
        );
    }
    finish(h, store).await;
}

/// An altered payload is reported at exactly the altered event.
pub async fn tampered_payload_is_found<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);
    let s = Fixture::stream("evidence");
    append_ok(
        &*store,
        &Fixture::stream("before"),
        ExpectedVersion::Any,
        events(2, "e"),
    )
    .await;
    append_ok(&*store, &s, ExpectedVersion::NoStream, events(5, "e")).await;
    append_ok(
        &*store,
        &Fixture::stream("after"),
        ExpectedVersion::Any,
        events(2, "e"),
    )
    .await;
    let target = Version::new(3);

    let mut copy = all(&*store).await;
    let victim = copy
        .iter_mut()
        .find(|e| e.stream == s && e.version == target)
        .expect("present");
    let (t, v, _, m) = victim.data.clone().into_parts();
    victim.data = EventData::new(t, v, json!({"n": 999}), m).expect("valid");
    let report = verify_events(futures::stream::iter(copy.into_iter().map(Ok)))
        .await
        .expect("no read errors");
    let broken = report.first_break.expect("the altered copy is found");
    assert_eq!((broken.stream.clone(), broken.version), (s.clone(), target));
    assert!(
        matches!(broken.fault, ChainFault::HashMismatch { .. }),
        "{broken}"
    );

    if h.tamper_payload(&store, &s, target, json!({"n": 999}))
        .await
    {
        let report = verify_events(store.read_all(Position::START, LogFilter::all()))
            .await
            .expect("reads");
        let broken = report.first_break.expect("the tampered store is found out");
        assert_eq!(
            (broken.stream, broken.version),
            (s, target),
            "at exactly the altered event"
        );
        assert!(matches!(broken.fault, ChainFault::HashMismatch { .. }));
        assert_eq!(report.events_checked, 4, "everything before it verified");
    }
    finish(h, store).await;
}
