//! The record index on SQLite against a raw rusqlite baseline, in one run.
//!
//! `index/sqlite/*` goes through `SqliteRecordIndex` (read pool on the blocking pool, the
//! query built from a `RecordQuery`, rows decoded from JSON, the next cursor; writes through
//! the writer thread with the checkpoint in the same transaction); `index/sqlite_raw/*` runs
//! the same SQL on a bare table of the same shape and indexes in a file with the same pragmas,
//! with plain rusqlite (rows left as JSON text). Every bench checks what it wrote or read.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benches report failures by panicking"
)]

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smsys_core::Position;
use smsys_core::records::{Phase, RecordIndexStore, RecordQuery, RecordRow};
use smsys_store::testkit::records::{desk_rows, epoch, mix, queue_query, timer};
use smsys_store::{CheckpointName, SqliteEventStore, SqliteRecordIndex};
use tempfile::TempDir;

const RECORDS: usize = 100_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The SQL the store runs for [`queue_query`], on the raw table.
const QUEUE_SQL: &str = "SELECT row FROM record_index WHERE index_name = ? \
    AND record_type = ? AND phase IN (?, ?, ?) AND priority IN (?, ?) AND grp = ? \
    ORDER BY due, stream LIMIT ?";

fn queue_matches(row: &RecordRow) -> bool {
    row.record_type == *"incident"
        && row.phase.is_open()
        && row.priority.is_some_and(|p| p.get() <= 2)
        && row.group.as_ref().is_some_and(|g| g == "group-07")
}

struct Raw {
    conn: rusqlite::Connection,
    _dir: TempDir,
}

impl Raw {
    /// A bare file with the record index table and its indexes as `schema` creates them.
    fn new(schema: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch(schema).unwrap();
        Self { conn, _dir: dir }
    }

    /// One transaction inserting every row (encoded beforehand) of index `name`.
    fn insert(&mut self, name: &str, rows: &[(RecordRow, String)]) {
        let tx = self.conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO record_index VALUES
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .unwrap();
            for (row, json) in rows {
                let due = row
                    .earliest_due()
                    .map_or(i64::MAX, |d| d.timestamp_micros());
                insert
                    .execute(rusqlite::params![
                        name,
                        row.stream.as_str(),
                        row.record_type.as_str(),
                        row.status,
                        row.phase.as_str(),
                        row.priority.map_or(6, |p| i64::from(p.get())),
                        row.service.as_str(),
                        row.group.as_ref().map(|g| g.as_str()),
                        row.person.as_ref().map(|p| p.as_str()),
                        row.summary,
                        row.logged_at.timestamp_micros(),
                        due,
                        row.breached(),
                        json,
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }

    fn queue_page(&self) -> Vec<String> {
        let mut stmt = self.conn.prepare_cached(QUEUE_SQL).unwrap();
        stmt.query_map(
            rusqlite::params![
                "record_index.v1",
                "incident",
                "new",
                "active",
                "pending",
                1,
                2,
                "group-07",
                51
            ],
            |r| r.get::<_, String>(0),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn count(&self, name: &str) -> i64 {
        self.conn
            .query_row(
                "SELECT count(*) FROM record_index WHERE index_name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap()
    }
}

/// The statements that create the store's record index table and its indexes, read from a
/// store file: the raw baseline runs on the same table.
fn store_schema(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT sql FROM sqlite_schema WHERE tbl_name = 'record_index' AND sql IS NOT NULL
             ORDER BY type = 'index', name",
        )
        .unwrap();
    let statements: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        statements.len() > 3,
        "the table and its indexes: {statements:?}"
    );
    statements.join(";\n")
}

async fn open_index(dir: &TempDir) -> (SqliteEventStore, SqliteRecordIndex) {
    let store = SqliteEventStore::open(dir.path().join("store.db"))
        .await
        .unwrap();
    let index = store.record_index(CheckpointName::new("record_index.v1").unwrap());
    (store, index)
}

fn queue(c: &mut Criterion) {
    let rt = runtime();
    let rows = desk_rows(RECORDS);
    let dir = tempfile::tempdir().unwrap();
    let (store, index) = rt.block_on(open_index(&dir));
    rt.block_on(async {
        for (n, chunk) in rows.chunks(10_000).enumerate() {
            index
                .apply(chunk.to_vec(), Position::from_sequence(n as u64 + 1))
                .await
                .unwrap();
        }
        assert_eq!(
            index.count(&RecordQuery::new()).await.unwrap(),
            RECORDS as u64
        );
    });
    let query = queue_query();
    let matching = rows.iter().filter(|r| queue_matches(r)).count() as u64;
    assert!(matching > 100, "the queue spans pages: {matching}");

    let mut group = c.benchmark_group("index/sqlite");
    group.bench_function("query_open_p1p2_group_by_due_100k", |b| {
        b.to_async(&rt).iter(|| async {
            let page = index.query(&query).await.unwrap();
            assert_eq!(page.rows.len(), 50);
            assert!(page.rows.iter().all(queue_matches));
            assert!(page.next.is_some());
            page
        });
    });
    group.bench_function("count_open_p1p2_group_100k", |b| {
        b.to_async(&rt).iter(|| async {
            let n = index.count(&query).await.unwrap();
            assert_eq!(n, matching);
            n
        });
    });
    group.finish();

    let schema = store_schema(&dir.path().join("store.db"));
    let mut raw = Raw::new(&schema);
    let encoded: Vec<(RecordRow, String)> = rows
        .iter()
        .map(|r| (r.clone(), serde_json::to_string(r).unwrap()))
        .collect();
    raw.insert("record_index.v1", &encoded);
    let want: Vec<RecordRow> = rt.block_on(index.query(&query)).unwrap().rows;
    let mut group = c.benchmark_group("index/sqlite_raw");
    group.bench_function("query_open_p1p2_group_by_due_100k", |b| {
        b.iter(|| {
            let page = raw.queue_page();
            assert_eq!(page.len(), 51);
            page
        });
    });
    group.finish();
    let page = raw.queue_page();
    let decoded: Vec<RecordRow> = page[..50]
        .iter()
        .map(|json| serde_json::from_str(json).unwrap())
        .collect();
    assert_eq!(decoded, want, "the raw SQL selects the store's page");

    // A projection's batch on a full index: 512 records change phase and due instant.
    let mut group = c.benchmark_group("index/sqlite");
    group.throughput(Throughput::Elements(LIVE_BATCH as u64));
    let mut round = 0u64;
    group.bench_function("apply_512_changed_rows_into_100k", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let index = index.clone();
            let first = round;
            round += iters;
            let rows = &rows;
            async move {
                let mut elapsed = Duration::ZERO;
                for r in first..first + iters {
                    let batch = changed(rows, r);
                    let probe = batch[0].clone();
                    let checkpoint = Position::from_sequence(100 + r);
                    let started = Instant::now();
                    index.apply(batch, checkpoint).await.unwrap();
                    elapsed += started.elapsed();
                    assert_eq!(index.row(&probe.stream).await.unwrap(), Some(probe));
                    assert_eq!(index.checkpoint().await.unwrap(), Some(checkpoint));
                }
                elapsed
            }
        });
    });
    group.finish();
    rt.block_on(async {
        assert_eq!(
            index.count(&RecordQuery::new()).await.unwrap(),
            RECORDS as u64
        );
        store.close().await;
    });
}

const LIVE_BATCH: usize = 512;

/// Round `round`'s batch: `LIVE_BATCH` records spread over the index, each moved to the next
/// phase with a new due instant and version.
fn changed(rows: &[RecordRow], round: u64) -> Vec<RecordRow> {
    (0..LIVE_BATCH as u64)
        .map(|k| {
            let i = (mix(round, k) % rows.len() as u64) as usize;
            let mut row = rows[i].clone();
            let phase = (mix(round, k + 1) % 6) as usize;
            row.phase = Phase::ALL[phase];
            row.status = row.phase.as_str().to_owned();
            let due = row
                .phase
                .is_open()
                .then(|| epoch() + TimeDelta::minutes((mix(round, k + 2) % 20_160) as i64));
            row.timers = vec![timer(due, false)];
            row.version = smsys_core::Version::new(round + 2);
            row
        })
        .collect()
}

fn bulk_apply(c: &mut Criterion) {
    let rt = runtime();
    let rows = desk_rows(RECORDS);
    let mut group = c.benchmark_group("index/sqlite");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("apply_100k_one_batch", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let rows = rows.clone();
            async move {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let (store, index) = open_index(&dir).await;
                    let rows = rows.clone();
                    let started = Instant::now();
                    index.apply(rows, Position::from_sequence(1)).await.unwrap();
                    elapsed += started.elapsed();
                    assert_eq!(
                        index.count(&RecordQuery::new()).await.unwrap(),
                        RECORDS as u64
                    );
                    store.close().await;
                }
                elapsed
            }
        });
    });
    group.finish();

    let dir = tempfile::tempdir().unwrap();
    let (store, _) = rt.block_on(open_index(&dir));
    rt.block_on(store.close());
    let schema = store_schema(&dir.path().join("store.db"));
    let encoded: Vec<(RecordRow, String)> = rows
        .iter()
        .map(|r| (r.clone(), serde_json::to_string(r).unwrap()))
        .collect();
    let mut group = c.benchmark_group("index/sqlite_raw");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("insert_100k_one_transaction", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let mut raw = Raw::new(&schema);
                let started = Instant::now();
                raw.insert("record_index.v1", &encoded);
                elapsed += started.elapsed();
                assert_eq!(raw.count("record_index.v1"), RECORDS as i64);
            }
            elapsed
        });
    });
    group.finish();
}

criterion_group!(benches, queue, bulk_apply);
criterion_main!(benches);
