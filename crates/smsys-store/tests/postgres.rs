//! The PostgreSQL store against the real server: the conformance suite, several nodes at
//! once, terminated connections, batched appends (`postgres/batch.rs`), writers of the same
//! streams at any isolation level (`postgres/contention.rs`), how failures are classed
//! (`postgres/failures.rs`), opening schemas of earlier releases (`postgres/migration.rs`), the
//! record index (`postgres/record_index.rs`), the configuration graph suite
//! (`postgres/ci_graph.rs`) and random edits behind the store's back that
//! `verify` must name (`postgres/tamper.rs`).
//!
//! Connection settings come from `SMSYS_TEST_DATABASE_URL`, e.g.
//! `host=127.0.0.1 user=postgres dbname=test`. Without it (and without `CI=true`, where they
//! fail) these tests are not built: `postgres_skipped.rs` then shows one ignored test named
//! for the skip in the summary (see `build.rs`). Every store lives in its own freshly created
//! schema, dropped after a passing test.

#![cfg(smsys_pg_tests)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "tests report failures by panicking and skips on stderr"
)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use smsys_core::{
    AppendError, AppendResult, EventData, EventStore, ExpectedVersion, LogFilter, Position,
    RecordedEvent, StoreError, StreamId, Version, verify_events,
};
use smsys_store::postgres::{CheckpointName, PgEventStore, PgRecordIndex};
use smsys_store::testkit::{Fixture, Harness, ReadSideHarness, event};

#[path = "postgres/batch.rs"]
mod batch;
#[path = "postgres/ci_graph.rs"]
mod ci_graph;
#[path = "postgres/contention.rs"]
mod contention;
#[path = "postgres/failures.rs"]
mod failures;
#[path = "postgres/migration.rs"]
mod migration;
#[path = "postgres/record_index.rs"]
mod record_index;
#[path = "postgres/tamper.rs"]
mod tamper;
#[path = "postgres/tenancy.rs"]
mod tenancy;

const URL_VAR: &str = "SMSYS_TEST_DATABASE_URL";

/// The database to test against; `None` (after saying so) when the tests are to be skipped.
fn database_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "{URL_VAR} is not set but CI=true: the PostgreSQL tests must run in CI \
             (e.g. {URL_VAR}='host=127.0.0.1 user=postgres dbname=test')"
        ),
        _ => {
            eprintln!(
                "skipped: {URL_VAR} is not set (e.g. {URL_VAR}='host=127.0.0.1 user=postgres dbname=test')"
            );
            None
        }
    }
}

fn fresh_schema() -> String {
    format!("smsys_test_{}", uuid::Uuid::now_v7().simple())
}

/// A plain driver connection, for administration and for what the store must not do.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}={url:?}: {e}"));
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("raw connection ended: {error}");
        }
    });
    client
}

async fn open(url: &str, schema: &str, pool_size: usize) -> PgEventStore {
    PgEventStore::builder(url)
        .schema(schema)
        .expect("valid schema name")
        .pool_size(pool_size)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot open the store on {URL_VAR}={url:?}: {e}"))
}

async fn drop_schema(url: &str, schema: &str) {
    raw(url)
        .await
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("the test schema is dropped");
}

/// Conformance harness: one fresh schema per store.
#[derive(Clone)]
struct Pg {
    url: String,
}

fn harness() -> Option<Pg> {
    database_url().map(|url| Pg { url })
}

#[async_trait::async_trait]
impl Harness for Pg {
    type Store = PgEventStore;

    async fn create(&self) -> PgEventStore {
        open(&self.url, &fresh_schema(), 8).await
    }

    async fn tamper_payload(
        &self,
        store: &PgEventStore,
        stream: &StreamId,
        version: Version,
        payload: serde_json::Value,
    ) -> bool {
        let sql = format!(
            "UPDATE \"{}\".events SET payload = $1 WHERE stream_id = $2 AND version = $3",
            store.schema()
        );
        let version = i64::try_from(version.get()).expect("small version");
        raw(&self.url)
            .await
            .execute(
                &sql,
                &[
                    &tokio_postgres::types::Json(&payload),
                    &stream.as_str(),
                    &version,
                ],
            )
            .await
            .expect("tampering works")
            == 1
    }

    async fn teardown(&self, store: PgEventStore) {
        let schema = store.schema().to_string();
        drop(store);
        drop_schema(&self.url, &schema).await;
    }
}

mod conformance {
    smsys_store::conformance_suite!(match super::harness() {
        Some(harness) => harness,
        None => return,
    });
}

/// Read-side harness: one fresh schema per database; its checkpoints are the store's, its
/// indexes `PgEventStore::record_index`.
struct PgReadSide {
    url: String,
}

fn read_side_harness() -> Option<PgReadSide> {
    database_url().map(|url| PgReadSide { url })
}

#[async_trait::async_trait]
impl ReadSideHarness for PgReadSide {
    type Db = PgEventStore;
    type Checkpoints = PgEventStore;
    type Index = PgRecordIndex;

    async fn create(&self) -> PgEventStore {
        open(&self.url, &fresh_schema(), 4).await
    }

    fn checkpoints(&self, db: &PgEventStore) -> PgEventStore {
        db.clone()
    }

    fn index(&self, db: &PgEventStore, name: &CheckpointName) -> PgRecordIndex {
        db.record_index(name.clone())
    }

    fn reopens(&self) -> bool {
        true
    }

    async fn reopen(&self, db: PgEventStore) -> PgEventStore {
        let schema = db.schema().to_string();
        drop(db);
        open(&self.url, &schema, 4).await
    }

    async fn teardown(&self, db: PgEventStore) {
        let schema = db.schema().to_string();
        drop(db);
        drop_schema(&self.url, &schema).await;
    }
}

mod read_side {
    smsys_store::read_side_suite!(match super::read_side_harness() {
        Some(harness) => harness,
        None => return,
    });
}

async fn read_all(store: &PgEventStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reading the log succeeds"))
        .collect()
        .await
}

fn batch(n: usize, event_type: &str, node: usize) -> Vec<EventData> {
    (0..n)
        .map(|i| event(event_type, json!({ "node": node, "i": i })))
        .collect()
}

/// Appends, retrying transient failures with the same events (hence the same ids).
async fn append_retrying(
    store: &PgEventStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[EventData],
) -> Result<(AppendResult, usize), AppendError> {
    let mut failures = 0;
    loop {
        match store.append(stream, expected, events.to_vec()).await {
            Ok(result) => return Ok((result, failures)),
            Err(AppendError::Store(StoreError::Backend(error))) if error.is_transient() => {
                failures += 1;
                assert!(failures < 200, "append to {stream} keeps failing: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => return Err(other),
        }
    }
}

/// Three nodes (separate stores, separate pools) append to shared and own streams while a
/// subscriber on a fourth node runs; a slow transaction that took a lower transaction id and
/// sequence commits after faster ones. The subscriber gets every event exactly once, in the
/// one order every node reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_multi_node_subscriber_sees_every_event_once_in_one_order() {
    const NODES: usize = 3;
    const TASKS: usize = 3;
    const ROUNDS: usize = 15;
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(Arc::new(open(&url, &schema, 4).await));
    }
    let reader = Arc::new(open(&url, &schema, 2).await);

    // A slow writer: takes its transaction id and sequence number now, commits at the end.
    let slow = raw(&url).await;
    slow.batch_execute("BEGIN").await.expect("begin");
    let row = slow
        .query_one(
            &format!(
                "SELECT pg_current_xact_id()::text::bigint,
                        nextval(pg_get_serial_sequence('\"{schema}\".events', 'seq'))"
            ),
            &[],
        )
        .await
        .expect("slow transaction starts");
    let (slow_tx, slow_seq): (i64, i64) = (row.get(0), row.get(1));
    let slow_stream = Fixture::stream("slow");
    let slow_event = RecordedEvent::record(
        slow_stream.clone(),
        Version::FIRST,
        Position::new(slow_tx as u64, slow_seq as u64),
        event("slow", json!({"late": true})),
        chrono::Utc::now(),
        None,
    );

    let total_expected = NODES * TASKS * ROUNDS * 2 + 1;
    let subscriber = {
        let reader = Arc::clone(&reader);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut events = reader.subscribe(Position::START, LogFilter::all());
            while seen.len() < total_expected {
                let next = tokio::time::timeout(Duration::from_secs(60), events.next())
                    .await
                    .expect("the subscriber keeps receiving")
                    .expect("the subscription does not end")
                    .expect("the subscription does not fail");
                seen.push(next);
            }
            let extra = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
            assert!(extra.is_err(), "nothing is delivered beyond the log");
            seen
        })
    };

    let mut writers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..TASKS {
            let node = Arc::clone(node);
            writers.push(tokio::spawn(async move {
                let own = Fixture::stream(&format!("n{n}t{t}"));
                let mut ids = Vec::new();
                for round in 0..ROUNDS {
                    let events = batch(2, "multi", n);
                    ids.extend(events.iter().map(EventData::event_id));
                    if round % 2 == 0 {
                        let shared = Fixture::stream(&format!("shared{}", round % 3));
                        append_retrying(&node, &shared, ExpectedVersion::Any, &events)
                            .await
                            .expect("appends to a shared stream succeed");
                    } else {
                        let current = node.stream_version(&own).await.expect("version reads");
                        let expected =
                            current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                        append_retrying(&node, &own, expected, &events)
                            .await
                            .expect("appends to an own stream succeed");
                    }
                }
                ids
            }));
        }
    }
    let mut appended = HashSet::new();
    for w in writers {
        appended.extend(w.await.expect("writer finishes"));
    }

    // Everything the fast writers committed waits behind the slow transaction.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let horizon = reader.horizon().await.expect("horizon reads");
    assert!(
        horizon.held_back >= (NODES * TASKS * ROUNDS * 2) as u64,
        "the fast writers' events are held back: {horizon:?}"
    );
    assert!(horizon.gate <= slow_tx as u64, "{horizon:?}");
    assert!(
        !subscriber.is_finished(),
        "the subscriber cannot have everything yet"
    );

    // The slow transaction writes its event with the lower position and commits, without
    // any notification: the subscriber must still get it, before the others.
    let data = &slow_event.data;
    slow.execute(
        &format!(
            "INSERT INTO \"{schema}\".streams (stream_id, version, head_hash) VALUES ($1, 1, $2)"
        ),
        &[
            &slow_stream.as_str(),
            &slow_event.hash.as_bytes().as_slice(),
        ],
    )
    .await
    .expect("slow stream row");
    slow.execute(
        &format!(
            "INSERT INTO \"{schema}\".events (tx_id, seq, stream_id, version, category, event_id,
                 event_type, schema_version, tenant, payload, recorded_at, previous_hash, hash,
                 occurred_us, actor)
             VALUES ($1, $2, $3, 1, $4, $5, $6, $7, NULL, $8, $9, NULL, $10, $11, $12)"
        ),
        &[
            &slow_tx,
            &slow_seq,
            &slow_stream.as_str(),
            &slow_stream.category_str(),
            &data.event_id().as_uuid(),
            &data.event_type().as_str(),
            &i64::from(data.schema_version()),
            &tokio_postgres::types::Json(data.payload()),
            &slow_event.recorded_at,
            &slow_event.hash.as_bytes().as_slice(),
            &data.metadata().occurred_at().timestamp_micros(),
            &data.metadata().actor().as_str(),
        ],
    )
    .await
    .expect("slow event row");
    slow.batch_execute("COMMIT").await.expect("slow commit");
    appended.insert(slow_event.event_id());

    let seen = subscriber.await.expect("subscriber finishes");
    let seen_ids: Vec<_> = seen.iter().map(RecordedEvent::event_id).collect();
    let unique: HashSet<_> = seen_ids.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no event delivered twice");
    assert_eq!(
        unique, appended,
        "every committed event delivered, no other"
    );
    assert_eq!(
        seen[0], slow_event,
        "the slow transaction's event comes first: it holds the lowest position"
    );
    for pair in seen.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "delivered in log order"
        );
    }
    for node in nodes.iter().chain(std::iter::once(&reader)) {
        assert_eq!(read_all(node).await, seen, "every node reads the same log");
    }
    let report = verify_events(reader.read_all(Position::START, LogFilter::all()))
        .await
        .expect("reads");
    assert!(report.is_intact(), "{:?}", report.first_break);
    assert_eq!(report.events_checked, total_expected as u64);

    drop(nodes);
    drop(reader);
    drop_schema(&url, &schema).await;
}

/// A foreign transaction that writes nothing of ours but is older holds delivery back; when it
/// ends (without any notification) the subscriber continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_subscriber_waits_for_an_older_foreign_transaction() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 4).await;
    let foreign = raw(&url).await;
    foreign.batch_execute("BEGIN").await.expect("begin");
    foreign
        .query_one("SELECT pg_current_xact_id()", &[])
        .await
        .expect("foreign transaction takes an id");
    let s = Fixture::stream("waiting");
    store
        .append(&s, ExpectedVersion::NoStream, batch(3, "w", 0))
        .await
        .expect("append succeeds");
    let mut sub = store.subscribe(Position::START, LogFilter::all());
    let early = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(
        early.is_err(),
        "nothing is delivered while an older transaction is open"
    );
    assert_eq!(store.horizon().await.expect("horizon").held_back, 3);
    assert_eq!(
        store.stream_version(&s).await.expect("reads"),
        Some(Version::new(3)),
        "stream reads do not wait"
    );
    foreign.batch_execute("ROLLBACK").await.expect("rollback");
    let got: Vec<_> = tokio::time::timeout(Duration::from_secs(5), sub.take(3).collect::<Vec<_>>())
        .await
        .expect("delivered once the foreign transaction ended");
    assert_eq!(got.len(), 3);
    assert_eq!(store.horizon().await.expect("horizon").held_back, 0);
    drop(store);
    drop_schema(&url, &schema).await;
}

/// Backend connections are terminated while a writer appends and a named subscriber follows
/// the log: every append either committed or not, a retry with the same ids returns the
/// original result, the pool recovers, and the subscriber resumes from its durable checkpoint
/// without loss or duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_fault_terminated_connections() {
    const APPENDS: usize = 150;
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let app = format!("smsys_fault_{}", uuid::Uuid::now_v7().simple());
    let store_url = format!("{url} application_name={app}");
    let store = Arc::new(open(&store_url, &schema, 4).await);
    let admin = raw(&url).await;
    let stop = Arc::new(AtomicBool::new(false));

    // The killer: terminates every backend of the store, again and again.
    let killer = {
        let stop = Arc::clone(&stop);
        let app = app.clone();
        tokio::spawn(async move {
            let mut killed = 0_i64;
            let mut round = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                tokio::time::sleep(Duration::from_millis(15 + (round * 7) % 40)).await;
                let row = admin
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&app],
                    )
                    .await
                    .expect("terminating works");
                killed += row.get::<_, i64>(0);
            }
            killed
        })
    };

    // The named subscriber: handles each event once (idempotently, by position, as a
    // projection that keeps its position would), saves the checkpoint after each, and on any
    // failure starts again from the durable checkpoint.
    let name = CheckpointName::new("fault-projection").expect("valid name");
    let subscriber = {
        let store = Arc::clone(&store);
        let name = name.clone();
        tokio::spawn(async move {
            let mut projection: Vec<RecordedEvent> = Vec::new();
            let mut restarts = 0;
            let mut redelivered = 0;
            while projection.len() < APPENDS {
                let resumed = match store.load_checkpoint(&name).await {
                    Ok(checkpoint) => checkpoint.unwrap_or(Position::START),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let mut events = store.subscribe(resumed, LogFilter::all());
                let mut first = true;
                while let Ok(Some(next)) =
                    tokio::time::timeout(Duration::from_secs(60), events.next()).await
                {
                    let Ok(event) = next else { break };
                    if first {
                        assert!(event.position > resumed, "resumes after the checkpoint");
                        first = false;
                    }
                    match projection.last() {
                        Some(last) if event.position <= last.position => redelivered += 1,
                        _ => projection.push(event.clone()),
                    }
                    if store.save_checkpoint(&name, event.position).await.is_err() {
                        break;
                    }
                    if projection.len() == APPENDS {
                        break;
                    }
                }
                restarts += 1;
                assert!(restarts < 10_000, "the subscriber makes no progress");
            }
            (projection, restarts, redelivered)
        })
    };

    let s = Fixture::stream("faulty");
    let mut results: Vec<(Vec<EventData>, AppendResult)> = Vec::new();
    let (mut failed, mut committed_anyway, mut cancelled) = (0, 0, 0);
    for i in 0..APPENDS {
        let expected = if i == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(Version::new(i as u64))
        };
        let events = vec![event("faulty", json!({ "i": i }))];
        let mut tries = 0_u64;
        let result = loop {
            tries += 1;
            // Every other append's first try is also cut off by a short timeout: the caller
            // gives up at any point, perhaps after the commit was sent.
            let cut = Duration::from_micros(200 + (i as u64 * 397) % 3000);
            let outcome = if i % 2 == 1 && tries == 1 {
                tokio::time::timeout(cut, store.append(&s, expected, events.clone())).await
            } else {
                Ok(store.append(&s, expected, events.clone()).await)
            };
            let failure = match outcome {
                Ok(Ok(result)) => break result,
                Ok(Err(AppendError::Store(StoreError::Backend(error)))) if error.is_transient() => {
                    error.to_string()
                }
                Ok(Err(other)) => panic!("unexpected append error: {other}"),
                Err(_) => {
                    cancelled += 1;
                    "cancelled by the caller".to_owned()
                }
            };
            failed += 1;
            assert!(failed < 1000, "appends keep failing: {failure}");
            // Committed or not? Look, then retry with the same ids either way.
            let version = loop {
                if let Ok(v) = store.stream_version(&s).await {
                    break v;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let want = Some(Version::new(i as u64 + 1));
            if version == want {
                committed_anyway += 1;
            } else {
                let before = (i > 0).then(|| Version::new(i as u64));
                assert_eq!(version, before, "a failed append wrote all or nothing");
            }
        };
        assert_eq!(result.version, Version::new(i as u64 + 1));
        results.push((events, result));
    }
    stop.store(true, Ordering::Relaxed);
    let killed = killer.await.expect("killer finishes");
    assert!(killed > 0, "connections were terminated");

    // Every retry, of a call that failed or not, gives the original result and writes nothing.
    for (i, (events, original)) in results.iter().enumerate() {
        let expected = if i == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(Version::new(i as u64))
        };
        let (again, _) = append_retrying(&store, &s, expected, events)
            .await
            .expect("a retry succeeds");
        assert_eq!(&again, original, "a retry returns the original result");
    }
    let stored: Vec<RecordedEvent> = store
        .read_stream(&s, Version::FIRST)
        .map(|e| e.expect("reads"))
        .collect()
        .await;
    assert_eq!(stored.len(), APPENDS, "each append is stored exactly once");
    for ((events, result), e) in results.iter().zip(&stored) {
        assert_eq!(e.data, events[0]);
        assert_eq!(e.position, result.positions[0]);
    }

    let (projection, restarts, redelivered) =
        tokio::time::timeout(Duration::from_secs(120), subscriber)
            .await
            .expect("the subscriber catches up")
            .expect("subscriber finishes");
    assert_eq!(
        projection, stored,
        "no event lost or duplicated, in log order"
    );
    assert_eq!(
        store
            .load_checkpoint(&name)
            .await
            .expect("checkpoint reads"),
        Some(stored[APPENDS - 1].position)
    );

    // The pool recovered: plain work goes through without failures now.
    let (after, failures) = append_retrying(
        &store,
        &s,
        ExpectedVersion::Exact(Version::new(APPENDS as u64)),
        &[event("faulty", json!({"after": true}))],
    )
    .await
    .expect("append after the faults");
    assert_eq!(failures, 0, "the pool replaced its dead connections");
    assert_eq!(after.version, Version::new(APPENDS as u64 + 1));
    let report = verify_events(store.read_all(Position::START, LogFilter::all()))
        .await
        .expect("reads");
    assert!(report.is_intact(), "{:?}", report.first_break);
    eprintln!(
        "fault test: {killed} backends terminated, {failed} appends failed \
         ({cancelled} cut off by the caller; {committed_anyway} of all had committed), {restarts} subscription restarts, \
         {redelivered} redelivered events skipped"
    );

    drop(store);
    drop_schema(&url, &schema).await;
}

/// An append waiting for its stream (held by another session) is terminated: it fails as transient, wrote
/// nothing, and the same append succeeds afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fault_append_terminated_while_waiting_for_its_stream() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let app = format!("smsys_lock_{}", uuid::Uuid::now_v7().simple());
    let store = Arc::new(open(&format!("{url} application_name={app}"), &schema, 2).await);
    let s = Fixture::stream("locked");
    // Another session holds the stream: its lock, and an uncommitted row creating it.
    let holder = raw(&url).await;
    holder.batch_execute("BEGIN").await.expect("begin");
    holder
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&format!("smsys:{schema}:{s}")],
        )
        .await
        .expect("the stream lock is taken");
    holder
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".streams (stream_id, version, head_hash)
                 VALUES ($1, 1, $2)"
            ),
            &[&s.as_str(), &[0_u8; 32].as_slice()],
        )
        .await
        .expect("the stream row is taken");
    let events = batch(2, "locked", 0);
    let pending = {
        let store = Arc::clone(&store);
        let events = events.clone();
        let s = s.clone();
        tokio::spawn(async move { store.append(&s, ExpectedVersion::NoStream, events).await })
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
    assert_eq!(terminated, 1, "the waiting append's backend was found");
    match pending.await.expect("append task") {
        Err(AppendError::Store(StoreError::Backend(error))) => {
            assert!(error.is_transient(), "{error}")
        }
        other => panic!("expected a transient backend error, got {other:?}"),
    }
    holder.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(
        store.stream_version(&s).await.expect("reads"),
        None,
        "nothing written"
    );
    let (result, _) = append_retrying(&store, &s, ExpectedVersion::NoStream, &events)
        .await
        .expect("the same append succeeds now");
    assert_eq!(result.version, Version::new(2));
    drop(store);
    drop_schema(&url, &schema).await;
}

/// Snapshots and checkpoints round-trip; an older snapshot does not replace a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_snapshots_and_checkpoints_round_trip() {
    use smsys_core::{Snapshot, SnapshotStore};
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 2).await;
    let s = Fixture::stream("snap");
    assert_eq!(store.load_snapshot(&s).await.expect("loads"), None);
    let snap = |v: u64, n: i64| Snapshot {
        stream: s.clone(),
        version: Version::new(v),
        schema_version: 2,
        state: json!({"n": n, "big": 9_007_199_254_740_993_u64, "z": 0.1, "a": [1, {"b": null}]}),
    };
    store.save_snapshot(snap(5, 5)).await.expect("saves");
    store.save_snapshot(snap(3, 3)).await.expect("saves");
    assert_eq!(
        store.load_snapshot(&s).await.expect("loads"),
        Some(snap(5, 5))
    );
    store.save_snapshot(snap(9, 9)).await.expect("saves");
    assert_eq!(
        store.load_snapshot(&s).await.expect("loads"),
        Some(snap(9, 9))
    );

    let name = CheckpointName::new("projection-a").expect("valid");
    assert_eq!(store.load_checkpoint(&name).await.expect("loads"), None);
    store
        .save_checkpoint(&name, Position::new(123, 456))
        .await
        .expect("saves");
    assert_eq!(
        store.load_checkpoint(&name).await.expect("loads"),
        Some(Position::new(123, 456))
    );
    // A second node opening the same schema migrates nothing and sees the same data.
    let other = open(&url, &schema, 1).await;
    assert_eq!(
        other.load_checkpoint(&name).await.expect("loads"),
        Some(Position::new(123, 456))
    );
    drop((store, other));
    drop_schema(&url, &schema).await;
}

/// Bad configuration is refused with a typed error; an unreachable server fails to open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_configuration_errors() {
    use smsys_store::postgres::PgError;
    assert!(matches!(
        PgEventStore::builder("host=127.0.0.1").schema("Bad-Name"),
        Err(PgError::InvalidSchemaName { .. })
    ));
    let r = PgEventStore::builder("host=127.0.0.1")
        .pool_size(0)
        .connect()
        .await;
    assert!(matches!(r, Err(PgError::ZeroPoolSize)), "{r:?}");
    let r = PgEventStore::builder("not a = valid = string")
        .connect()
        .await;
    assert!(
        matches!(r, Err(PgError::InvalidConnectionString(_))),
        "{r:?}"
    );
    let r = PgEventStore::builder("host=127.0.0.1 port=1 user=postgres dbname=none")
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert!(matches!(r, Err(PgError::Store(_))), "{r:?}");
}

/// A database whose transaction ids restarted below the stored ones (a dump restored into a new
/// cluster) is refused at open: new events would sort before old ones and never be delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_transaction_ids_that_went_backwards() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 1).await;
    store
        .append(
            &Fixture::stream("old"),
            ExpectedVersion::NoStream,
            batch(1, "e", 0),
        )
        .await
        .expect("appends");
    drop(store);
    // As if the log had been written by a cluster far ahead of this one.
    raw(&url)
        .await
        .batch_execute(&format!(
            "UPDATE \"{schema}\".events SET tx_id = tx_id + 1000000000000"
        ))
        .await
        .expect("updates");
    let refused = PgEventStore::builder(url.as_str())
        .schema(schema.as_str())
        .expect("valid schema name")
        .connect()
        .await;
    match refused {
        Err(e @ smsys_store::postgres::PgError::TransactionIdsBehind { .. }) => {
            assert!(e.to_string().contains("restored"), "{e}");
        }
        Err(other) => panic!("expected TransactionIdsBehind, got {other}"),
        Ok(_) => panic!("a store whose ids went backwards must not open"),
    }
    drop_schema(&url, &schema).await;
}
