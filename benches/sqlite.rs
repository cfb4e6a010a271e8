//! The SQLite store against a raw rusqlite baseline, in one run.
//!
//! `store/sqlite/*` goes through `SqliteEventStore` (hashing, idempotency lookup, version
//! check, group-commit writer, read pool); `store/sqlite_raw/*` inserts rows of the same shape
//! into a bare table of a file with the same pragmas (WAL, the same `synchronous`), one
//! transaction per append. Every bench checks what it wrote or read.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benches report failures by panicking"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use serde_json::json;
use smsys_core::{EventData, EventStore, ExpectedVersion, StreamId, Version};
use smsys_store::testkit::event;
use smsys_store::{Durability, SqliteEventStore, SqliteOptions};
use tempfile::TempDir;

const STREAM_LEN: u64 = 10_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn events(n: usize, from: u64) -> Vec<EventData> {
    (0..n as u64)
        .map(|i| {
            event(
                "bench.ticked",
                json!({"n": from + i, "note": "a ticket event"}),
            )
        })
        .collect()
}

fn stream(name: &str) -> StreamId {
    format!("bench-{name}").parse().unwrap()
}

async fn open(dir: &TempDir, durability: Durability) -> SqliteEventStore {
    SqliteOptions::new(dir.path().join("store.db"))
        .durability(durability)
        .open()
        .await
        .unwrap()
}

/// A bare table of the same rows, same pragmas, written with plain rusqlite.
struct Raw {
    conn: rusqlite::Connection,
    next_position: i64,
    _dir: TempDir,
}

impl Raw {
    fn new(durability: Durability) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (
                position INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL,
                event_id BLOB NOT NULL, event_type TEXT NOT NULL, schema_version INTEGER NOT NULL,
                payload TEXT NOT NULL, actor TEXT NOT NULL, occurred_at INTEGER NOT NULL,
                recorded_at INTEGER NOT NULL, previous_hash BLOB, hash BLOB NOT NULL
            ) STRICT;",
        )
        .unwrap();
        Self {
            conn,
            next_position: 1,
            _dir: dir,
        }
    }

    /// One transaction holding `batch`'s rows.
    fn append(&mut self, stream: &StreamId, batch: &[EventData]) {
        let tx = self.conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .unwrap();
            for e in batch {
                let payload = serde_json::to_string(e.payload()).unwrap();
                insert
                    .execute(rusqlite::params![
                        self.next_position,
                        stream.as_str(),
                        self.next_position,
                        e.event_id().as_uuid().as_bytes().as_slice(),
                        e.event_type().as_str(),
                        e.schema_version(),
                        payload,
                        e.metadata().actor().as_str(),
                        e.metadata().occurred_at().timestamp_micros(),
                        e.metadata().occurred_at().timestamp_micros(),
                        [7u8; 32].as_slice(),
                        [9u8; 32].as_slice(),
                    ])
                    .unwrap();
                self.next_position += 1;
            }
        }
        tx.commit().unwrap();
    }

    fn count(&self) -> i64 {
        self.conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }
}

fn sequential_appends(c: &mut Criterion) {
    let rt = runtime();
    for size in [1usize, 100] {
        for (durability, mode) in [(Durability::Full, "full"), (Durability::Normal, "normal")] {
            if size == 100 && durability == Durability::Normal {
                continue;
            }
            let name = format!("append_{size}_{mode}");
            let mut group = c.benchmark_group("store/sqlite");
            group.throughput(Throughput::Elements(size as u64));
            let dir = tempfile::tempdir().unwrap();
            let store = rt.block_on(open(&dir, durability));
            let s = stream(&name);
            let mut version = 0u64;
            group.bench_function(&name, |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let store = store.clone();
                    let s = s.clone();
                    let start_version = version;
                    version += iters * size as u64;
                    async move {
                        let mut v = start_version;
                        let mut elapsed = Duration::ZERO;
                        for _ in 0..iters {
                            let batch = events(size, v);
                            let expected = match v {
                                0 => ExpectedVersion::NoStream,
                                v => ExpectedVersion::Exact(Version::new(v)),
                            };
                            let started = Instant::now();
                            let written = store.append(&s, expected, batch).await.unwrap();
                            elapsed += started.elapsed();
                            v += size as u64;
                            assert_eq!(written.version, Version::new(v));
                        }
                        elapsed
                    }
                });
            });
            group.finish();
            rt.block_on(async {
                let stored = store.stream_version(&s).await.unwrap();
                assert_eq!(
                    stored.map_or(0, Version::get),
                    version,
                    "every append stored"
                );
                store.close().await;
            });

            let mut group = c.benchmark_group("store/sqlite_raw");
            group.throughput(Throughput::Elements(size as u64));
            let mut raw = Raw::new(durability);
            let s = stream("raw");
            let mut rows = 0i64;
            group.bench_function(&name, |b| {
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iters {
                        let batch = events(size, 0);
                        let started = Instant::now();
                        raw.append(&s, &batch);
                        elapsed += started.elapsed();
                    }
                    rows += (iters * size as u64) as i64;
                    elapsed
                });
            });
            group.finish();
            assert_eq!(raw.count(), rows);
        }
    }
}

fn concurrent_appends(c: &mut Criterion) {
    const WRITERS: usize = 16;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(open(&dir, Durability::Full));
    let mut group = c.benchmark_group("store/sqlite");
    group.throughput(Throughput::Elements(WRITERS as u64));
    let mut total = 0u64;
    group.bench_function(
        BenchmarkId::from_parameter("append_1_concurrent16_full"),
        |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let store = store.clone();
                total += iters * WRITERS as u64;
                async move {
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..WRITERS)
                        .map(|w| {
                            let store = store.clone();
                            tokio::spawn(async move {
                                let s = stream(&format!("writer{w}"));
                                for _ in 0..iters {
                                    store
                                        .append(&s, ExpectedVersion::Any, events(1, 0))
                                        .await
                                        .unwrap();
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    started.elapsed()
                }
            });
        },
    );
    group.finish();
    rt.block_on(async {
        let mut appended = 0;
        for w in 0..WRITERS {
            let v = store
                .stream_version(&stream(&format!("writer{w}")))
                .await
                .unwrap();
            appended += v.map_or(0, Version::get);
        }
        assert_eq!(appended, total, "every concurrent append is stored");
        store.close().await;
    });
}

fn reads(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(open(&dir, Durability::Normal));
    let s = stream("long");
    rt.block_on(async {
        for chunk in 0..STREAM_LEN / 100 {
            store
                .append(&s, ExpectedVersion::Any, events(100, chunk * 100))
                .await
                .unwrap();
        }
    });
    let mut group = c.benchmark_group("store/sqlite");
    group.throughput(Throughput::Elements(STREAM_LEN));
    group.bench_function("read_stream_10k", |b| {
        b.to_async(&rt).iter(|| async {
            let events: Vec<_> = store.read_stream(&s, Version::FIRST).collect().await;
            assert_eq!(events.len() as u64, STREAM_LEN);
            assert!(events.iter().all(Result::is_ok));
        });
    });
    group.bench_function("rebuild_10k", |b| {
        b.to_async(&rt).iter(|| async {
            // A rebuild folds every event into a state without keeping the events.
            let (count, sum) = store
                .read_stream(&s, Version::FIRST)
                .fold((0u64, 0u64), |(count, sum), e| async move {
                    let e = e.unwrap();
                    (count + 1, sum + e.data.payload()["n"].as_u64().unwrap())
                })
                .await;
            assert_eq!(count, STREAM_LEN);
            assert_eq!(sum, STREAM_LEN * (STREAM_LEN - 1) / 2);
        });
    });
    group.finish();
    rt.block_on(store.close());

    let path = dir.path().join("store.db");
    let mut group = c.benchmark_group("store/sqlite_raw");
    group.throughput(Throughput::Elements(STREAM_LEN));
    group.bench_function("read_10k", |b| b.iter(|| raw_read(&path)));
    group.finish();
}

/// The same rows read with plain rusqlite: payloads parsed, nothing else.
fn raw_read(path: &Path) {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT e.version, e.payload, e.hash FROM events e ORDER BY e.position")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut count = 0u64;
    while let Some(row) = rows.next().unwrap() {
        let payload: serde_json::Value =
            serde_json::from_str(row.get_ref(1).unwrap().as_str().unwrap()).unwrap();
        assert!(payload.is_object());
        count += 1;
    }
    assert_eq!(count, STREAM_LEN);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = sequential_appends, concurrent_appends, reads
}
criterion_main!(benches);
