//! Batched appends on PostgreSQL: batches over the same streams in opposite orders beside
//! single appends, a batch of 300,000 events, retries and reused ids inside big batches, and
//! a batch whose connection is terminated.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use smsys_core::{
    AppendError, AppendResult, EventData, EventStore, ExpectedVersion, LogFilter, Position,
    RecordedEvent, StoreError, StreamAppend, StreamId, Version, verify_events,
};
use smsys_store::testkit::{Fixture, event};

use super::{append_retrying, database_url, drop_schema, fresh_schema, open, raw, read_all};

fn events(n: usize, tag: &str) -> Vec<EventData> {
    (0..n)
        .map(|i| event("batch.pg", json!({ "tag": tag, "i": i })))
        .collect()
}

/// Every part's result, or the first failure with its part.
fn all_ok(results: Vec<Result<AppendResult, AppendError>>) -> Vec<AppendResult> {
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("part {i} failed: {e}")))
        .collect()
}

/// Within every stream, log order is version order, versions run 1, 2, 3, ... and the chain
/// verifies.
async fn check_log(store: &smsys_store::postgres::PgEventStore) -> Vec<RecordedEvent> {
    let log = read_all(store).await;
    let mut last: HashMap<&StreamId, Version> = HashMap::new();
    for pair in log.windows(2) {
        assert!(pair[0].position < pair[1].position, "the log is in order");
    }
    for e in &log {
        let previous = last.insert(&e.stream, e.version);
        assert_eq!(
            e.version.get(),
            previous.map_or(1, |v| v.get() + 1),
            "{} is read in version order without gaps",
            e.stream
        );
    }
    let report = verify_events(store.read_all(Position::START, LogFilter::all()))
        .await
        .expect("reads");
    assert!(report.is_intact(), "{:?}", report.first_break);
    log
}

/// Two writers send batches over the same streams, one in the opposite order of the other,
/// while single appends (on the one-round-trip path) write to the same streams: every part
/// succeeds (no deadlock reaches the caller), each stream's versions are handed out once, and
/// the log agrees with every stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_batches_over_the_same_streams_in_opposite_orders_both_finish() {
    const STREAMS: usize = 12;
    const ROUNDS: usize = 25;
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = Arc::new(open(&url, &schema, 6).await);
    let streams: Vec<StreamId> = (0..STREAMS)
        .map(|i| Fixture::stream(&format!("overlap{i}")))
        .collect();
    // Half of the streams exist before, half are created by whichever batch comes first.
    for s in streams.iter().step_by(2) {
        store
            .append(s, ExpectedVersion::NoStream, events(1, "seed"))
            .await
            .expect("seeds");
    }

    let batcher = |reversed: bool| {
        let store = Arc::clone(&store);
        let mut order = streams.clone();
        if reversed {
            order.reverse();
        }
        tokio::spawn(async move {
            let mut got = Vec::new();
            for round in 0..ROUNDS {
                let parts: Vec<StreamAppend> = order
                    .iter()
                    .map(|s| {
                        StreamAppend::new(
                            s.clone(),
                            ExpectedVersion::Any,
                            events(2, &format!("{reversed}-{round}")),
                        )
                    })
                    .collect();
                let results = all_ok(store.append_batch(parts).await);
                got.extend(order.iter().cloned().zip(results));
            }
            got
        })
    };
    let single = {
        let store = Arc::clone(&store);
        let streams = streams.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            for round in 0..ROUNDS * 2 {
                let s = &streams[(round * 5) % STREAMS];
                let (result, _) =
                    append_retrying(&store, s, ExpectedVersion::Any, &events(1, "one"))
                        .await
                        .expect("single appends succeed");
                got.push((s.clone(), result));
            }
            got
        })
    };
    let (a, b, c) = tokio::join!(batcher(false), batcher(true), single);
    let mut by_stream: BTreeMap<StreamId, Vec<u64>> = BTreeMap::new();
    for (stream, result) in a
        .expect("batcher")
        .into_iter()
        .chain(b.expect("reversed batcher"))
        .chain(c.expect("single appender"))
    {
        by_stream
            .entry(stream)
            .or_default()
            .extend(result.first_version().get()..=result.version.get());
    }
    for (i, s) in streams.iter().enumerate() {
        let seeded = u64::from(i % 2 == 0);
        let mut versions = by_stream.remove(s).unwrap_or_default();
        versions.sort_unstable();
        let expected: Vec<u64> = (1 + seeded..=versions.len() as u64 + seeded).collect();
        assert_eq!(
            versions, expected,
            "each version of {s} was handed out once"
        );
        assert_eq!(
            store.stream_version(s).await.expect("reads"),
            Some(Version::new(versions.len() as u64 + seeded))
        );
    }
    check_log(&store).await;
    drop(store);
    drop_schema(&url, &schema).await;
}

/// 50,000 parts and 300,000 events in one call: split into several transactions at part
/// boundaries, in batch order. Sending a slice of it again with new parts mixed in returns
/// the original results and writes only the new parts; a part reusing another stream's id is
/// refused alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_batch_of_300000_events() {
    const PARTS: usize = 50_000;
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 4).await;
    // Every tenth part goes to one of a few shared streams, the others to their own.
    let parts: Vec<StreamAppend> = (0..PARTS)
        .map(|i| {
            let stream = if i % 10 == 0 {
                Fixture::stream(&format!("shared{}", i % 7))
            } else {
                Fixture::stream(&format!("own{i}"))
            };
            StreamAppend::new(stream, ExpectedVersion::Any, events(6, &i.to_string()))
        })
        .collect();
    let started = std::time::Instant::now();
    let results = all_ok(store.append_batch(parts.clone()).await);
    eprintln!("300,000 events in {:?}", started.elapsed());
    assert_eq!(results.len(), PARTS);
    let positions: Vec<Position> = results.iter().flat_map(|r| r.positions.clone()).collect();
    assert_eq!(positions.len(), 6 * PARTS);
    assert!(
        positions.windows(2).all(|p| p[0] < p[1]),
        "positions follow the batch"
    );
    let commits: std::collections::BTreeSet<u64> = positions.iter().map(|p| p.commit()).collect();
    assert!(commits.len() > 1, "the batch took several transactions");
    let shared3 = (0..PARTS).filter(|i| i % 10 == 0 && i % 7 == 3).count() as u64;
    assert_eq!(
        store
            .stream_version(&Fixture::stream("shared3"))
            .await
            .expect("reads"),
        Some(Version::new(6 * shared3)),
        "a stream named by many parts has all of them"
    );

    // Again: 2,000 of the parts mixed with new ones and one reusing a stored id elsewhere.
    let reused = parts[1].events[0].clone();
    let mut again = Vec::new();
    let mut expect = Vec::new();
    for i in 0..2_000 {
        again.push(parts[i * 25].clone());
        expect.push(Some(results[i * 25].clone()));
        again.push(StreamAppend::new(
            Fixture::stream(&format!("later{i}")),
            ExpectedVersion::NoStream,
            events(2, "later"),
        ));
        expect.push(None);
    }
    again.push(StreamAppend::new(
        Fixture::stream("thief"),
        ExpectedVersion::NoStream,
        vec![reused],
    ));
    let answers = store.append_batch(again).await;
    let (last, answers) = answers.split_last().expect("answers");
    assert!(
        matches!(last, Err(AppendError::EventIdReused { .. })),
        "an id of another stream is refused: {last:?}"
    );
    for (i, (answer, expected)) in answers.iter().zip(&expect).enumerate() {
        let answer = answer
            .as_ref()
            .unwrap_or_else(|e| panic!("part {i} of the second batch failed: {e}"));
        match expected {
            Some(original) => assert_eq!(answer, original, "a retried part gets its result"),
            None => assert_eq!(answer.version, Version::new(2), "a new part is written"),
        }
    }
    let log = check_log(&store).await;
    assert_eq!(
        log.len(),
        6 * PARTS + 2 * 2_000,
        "the retried parts wrote nothing"
    );
    assert_eq!(
        store
            .stream_version(&Fixture::stream("thief"))
            .await
            .expect("reads"),
        None
    );
    drop(store);
    drop_schema(&url, &schema).await;
}

/// A batch whose connection is terminated while it waits for a stream held by another
/// session fails as transient for every part, writes nothing, and the same batch succeeds
/// afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fault_batch_terminated_while_waiting_for_a_stream() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let app = format!("smsys_batch_{}", uuid::Uuid::now_v7().simple());
    let store = Arc::new(open(&format!("{url} application_name={app}"), &schema, 2).await);
    let streams: Vec<StreamId> = (0..4)
        .map(|i| Fixture::stream(&format!("held{i}")))
        .collect();
    let holder = raw(&url).await;
    holder.batch_execute("BEGIN").await.expect("begin");
    holder
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&format!("smsys:{schema}:{}", streams[2])],
        )
        .await
        .expect("the stream lock is taken");
    let parts: Vec<StreamAppend> = streams
        .iter()
        .map(|s| StreamAppend::new(s.clone(), ExpectedVersion::NoStream, events(3, "held")))
        .collect();
    let pending = {
        let store = Arc::clone(&store);
        let parts = parts.clone();
        tokio::spawn(async move { store.append_batch(parts).await })
    };
    let admin = raw(&url).await;
    let mut terminated = 0;
    for _ in 0..500 {
        let row = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .expect("terminating works");
        terminated = row.get::<_, i64>(0);
        if terminated > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(terminated, 1, "the waiting batch's backend was found");
    for result in pending.await.expect("batch task") {
        match result {
            Err(AppendError::Store(StoreError::Backend(error))) => {
                assert!(error.is_transient(), "{error}")
            }
            other => panic!("expected a transient backend error, got {other:?}"),
        }
    }
    holder.batch_execute("ROLLBACK").await.expect("rollback");
    for s in &streams {
        assert_eq!(store.stream_version(s).await.expect("reads"), None);
    }
    let results = all_ok(store.append_batch(parts).await);
    assert!(results.iter().all(|r| r.version == Version::new(3)));
    check_log(&store).await;
    drop(store);
    drop_schema(&url, &schema).await;
}
