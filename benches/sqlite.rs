//! The SQLite store against a raw rusqlite baseline, in one run.
//!
//! `store/sqlite/*` goes through `SqliteEventStore` (hashing, idempotency lookup, version
//! check, group-commit writer, read pool); `store/sqlite_raw/*` inserts rows of the same shape
//! into a bare table of a file with the same pragmas (WAL, the same `synchronous`), one
//! transaction per append, or reads the store's own file with a plain `SELECT`. Every bench
//! checks what it wrote or read.
//!
//! - `append_{1,100}_{full,normal}`, `append_1_concurrent16_full`: appends one after another,
//!   and from 16 tasks at once.
//! - `append_batch_1000_full`: one `append_batch` of 1,000 parts (one event each, a stream
//!   each), beside `sqlite_raw/append_batch_1000_full`, the same rows in one transaction.
//! - `bulk_load_50k_parts_300k_events_full`: an import, one `append_batch` of 50,000 new
//!   streams of 6 events each into a new file (the store splits it into transactions).
//! - `read_stream_10k`, `rebuild_10k`: one stream of 10,000 events read whole, collected or
//!   folded; `sqlite_raw/read_10k` selects and parses the same payloads.
//! - `catch_up_10k`: `read_all` from the start over a log of 10,000 events from 1,000
//!   interleaved streams (what a projection catching up reads); `sqlite_raw/catch_up_10k`
//!   selects the same columns with the stream names joined and parses each payload.

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
use smsys_core::{
    EventData, EventStore, ExpectedVersion, LogFilter, Position, StreamAppend, StreamId, Version,
};
use smsys_store::testkit::event;
use smsys_store::{Durability, SqliteEventStore, SqliteOptions};
use tempfile::TempDir;

const STREAM_LEN: u64 = 10_000;

/// Streams of the catch-up log; each gets `STREAM_LEN / CATCH_UP_STREAMS` events, interleaved.
const CATCH_UP_STREAMS: u64 = 1_000;

/// Parts of one `append_batch`.
const BATCH_PARTS: usize = 1_000;

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

fn batch_appends(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(open(&dir, Durability::Full));
    let mut group = c.benchmark_group("store/sqlite");
    group.throughput(Throughput::Elements(BATCH_PARTS as u64));
    let mut batches = 0u64;
    group.bench_function("append_batch_1000_full", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = store.clone();
            let first = batches;
            batches += iters;
            async move {
                let mut elapsed = Duration::ZERO;
                for batch in first..first + iters {
                    let parts: Vec<StreamAppend> = (0..BATCH_PARTS)
                        .map(|p| {
                            StreamAppend::new(
                                stream(&format!("b{batch}.{p}")),
                                ExpectedVersion::NoStream,
                                events(1, p as u64),
                            )
                        })
                        .collect();
                    let started = Instant::now();
                    let results = store.append_batch(parts).await;
                    elapsed += started.elapsed();
                    assert_eq!(results.len(), BATCH_PARTS);
                    assert!(results.iter().all(Result::is_ok), "every part is new");
                }
                elapsed
            }
        });
    });
    group.finish();
    rt.block_on(async {
        let count = store
            .read_all(Position::START, LogFilter::all())
            .fold(0u64, |n, e| async move {
                e.unwrap();
                n + 1
            })
            .await;
        assert_eq!(count, batches * BATCH_PARTS as u64, "every part is stored");
        store.close().await;
    });

    let mut group = c.benchmark_group("store/sqlite_raw");
    group.throughput(Throughput::Elements(BATCH_PARTS as u64));
    let mut raw = Raw::new(Durability::Full);
    let s = stream("raw");
    let mut rows = 0i64;
    group.bench_function("append_batch_1000_full", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let batch = events(BATCH_PARTS, 0);
                let started = Instant::now();
                raw.append(&s, &batch);
                elapsed += started.elapsed();
            }
            rows += (iters * BATCH_PARTS as u64) as i64;
            elapsed
        });
    });
    group.finish();
    assert_eq!(raw.count(), rows);
}

/// An import: one `append_batch` of 50,000 new streams, 6 events each, into a new file.
fn bulk_load(c: &mut Criterion) {
    const PARTS: usize = 50_000;
    const PER_PART: usize = 6;
    let rt = runtime();
    let mut group = c.benchmark_group("store/sqlite");
    group.sample_size(10);
    group.throughput(Throughput::Elements((PARTS * PER_PART) as u64));
    group.bench_function("bulk_load_50k_parts_300k_events_full", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let store = open(&dir, Durability::Full).await;
                let parts: Vec<StreamAppend> = (0..PARTS)
                    .map(|p| {
                        StreamAppend::new(
                            stream(&format!("import{p}")),
                            ExpectedVersion::NoStream,
                            events(PER_PART, (p * PER_PART) as u64),
                        )
                    })
                    .collect();
                let started = Instant::now();
                let results = store.append_batch(parts).await;
                elapsed += started.elapsed();
                assert_eq!(results.len(), PARTS);
                for (p, result) in results.into_iter().enumerate() {
                    let written = result.unwrap();
                    assert_eq!(written.version, Version::new(PER_PART as u64));
                    let first = (p * PER_PART + 1) as u64;
                    assert_eq!(written.positions[0], Position::from_sequence(first));
                }
                store.close().await;
            }
            elapsed
        });
    });
    group.finish();
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

/// The whole log read from the start, as a projection catching up reads it: 1,000 streams of
/// ten events, interleaved in the log.
fn catch_up(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(open(&dir, Durability::Normal));
    let per_stream = STREAM_LEN / CATCH_UP_STREAMS;
    rt.block_on(async {
        for round in 0..per_stream {
            let parts = (0..CATCH_UP_STREAMS)
                .map(|s| {
                    StreamAppend::new(
                        stream(&format!("ticket{s}")),
                        ExpectedVersion::Any,
                        events(1, round * CATCH_UP_STREAMS + s),
                    )
                })
                .collect();
            let results = store.append_batch(parts).await;
            assert!(results.iter().all(Result::is_ok));
        }
    });
    let mut group = c.benchmark_group("store/sqlite");
    group.throughput(Throughput::Elements(STREAM_LEN));
    group.bench_function("catch_up_10k", |b| {
        b.to_async(&rt).iter(|| async {
            let (count, sum) = store
                .read_all(Position::START, LogFilter::all())
                .fold((0u64, 0u64), |(count, sum), e| async move {
                    let e = e.unwrap();
                    assert_eq!(e.position.sequence(), count + 1, "log order");
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
    group.bench_function("catch_up_10k", |b| b.iter(|| raw_catch_up(&path)));
    group.finish();
}

/// The catch-up read with plain rusqlite: every column the store reads, stream names joined,
/// each value borrowed and each payload parsed, nothing validated or built.
fn raw_catch_up(path: &Path) {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT e.position, s.name, e.version, e.event_id, e.event_type, e.schema_version,
                e.payload, e.actor, e.occurred_at, e.correlation_id, e.causation_id, e.tenant,
                e.extensions, e.recorded_at, e.previous_hash, e.hash
             FROM events e JOIN streams s ON s.stream_id = e.stream_id ORDER BY e.position",
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let (mut count, mut sum, mut bytes) = (0u64, 0u64, 0usize);
    while let Some(row) = rows.next().unwrap() {
        for i in [1, 3, 4, 7, 15] {
            bytes += row.get_ref(i).unwrap().as_bytes().unwrap().len();
        }
        for i in [0, 2, 5, 8, 13] {
            row.get_ref(i).unwrap().as_i64().unwrap();
        }
        for i in [9, 10, 11, 12, 14] {
            row.get_ref(i).unwrap();
        }
        let payload: serde_json::Value =
            serde_json::from_str(row.get_ref(6).unwrap().as_str().unwrap()).unwrap();
        sum += payload["n"].as_u64().unwrap();
        count += 1;
    }
    assert_eq!(count, STREAM_LEN);
    assert_eq!(sum, STREAM_LEN * (STREAM_LEN - 1) / 2);
    assert!(bytes > 0);
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
    targets = sequential_appends, concurrent_appends, batch_appends, bulk_load, reads, catch_up
}
criterion_main!(benches);
