//! Command throughput on SQLite: 1, 8 and 32 concurrent writers, each owning one incident and
//! running 300 commands on it (log, then notes), through the command handler with and without
//! its aggregate cache, beside the raw baseline: the same number of threads each running 300
//! single-row insert transactions with plain rusqlite, same pragmas.
//!
//! `cargo bench --bench commands`. Under `cargo bench -- --test` (CI) each writer runs 10
//! commands, so each bench runs once fast. The PostgreSQL figures are in `benches/postgres.rs`.

#![allow(
    clippy::expect_used,
    reason = "a benchmark stops at the first broken setup step"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use smsys::core::records::{Channel, NoteKind};
use smsys::core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, SequentialIds, StreamId,
};
use smsys::processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, RecordCommand,
};
use smsys::store::{Durability, SqliteEventStore, SqliteOptions};
use tempfile::TempDir;

fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

fn commands_per_writer() -> usize {
    if test_mode() { 10 } else { 300 }
}

const WRITERS: [usize; 3] = [1, 8, 32];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn log_command(n: u64) -> IncidentCommand {
    IncidentCommand::Log(LogRecord::new(
        format!("INC-{n}").parse().expect("valid"),
        "user1".parse().expect("valid"),
        Channel::Phone,
        "email".parse().expect("valid"),
        "Mail does not arrive",
    ))
}

fn note(i: usize) -> IncidentCommand {
    RecordCommand::AddNote {
        kind: NoteKind::WorkNote,
        text: format!("step {i}: checked the relay"),
    }
    .into()
}

/// Writers sharing one handler, each on its own new record.
struct Desk {
    handler: CommandHandler<IncidentManagement>,
    ids: SequentialIds,
    next: AtomicU64,
    meta: CommandMeta,
    now: DateTime<Utc>,
}

impl Desk {
    /// A desk whose records are numbered, and event ids drawn, from `base` on.
    fn new(store: Arc<dyn EventStore>, cache: usize, base: u64) -> Arc<Self> {
        Arc::new(Self {
            handler: CommandHandler::new(store, IncidentPolicy::default())
                .with_cache(cache)
                .with_max_attempts(10),
            ids: SequentialIds::new(1_790_000_000_000 + base),
            next: AtomicU64::new(base),
            meta: CommandMeta::new(Actor::new("bench").expect("valid")),
            now: DateTime::UNIX_EPOCH + TimeDelta::days(20_000),
        })
    }

    async fn writer(&self, commands: usize) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let stream: StreamId = format!("incident-INC-{n}").parse().expect("valid");
        let ctx = Context::new(self.now, &self.ids);
        for i in 0..commands {
            let command = if i == 0 { log_command(n) } else { note(i) };
            let done = self
                .handler
                .execute(&stream, &command, &self.meta, &ctx)
                .await
                .expect("accepted");
            assert!(done.append.is_some(), "every command records events");
        }
    }

    async fn round(self: &Arc<Self>, writers: usize, commands: usize) -> Duration {
        let started = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let desk = Arc::clone(self);
                tokio::spawn(async move { desk.writer(commands).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("writer finishes");
        }
        started.elapsed()
    }
}

/// The raw baseline: a bare events table, each writer thread with its own connection,
/// one insert per transaction (SQLite serialises the writers on its lock).
struct Raw {
    path: std::path::PathBuf,
    durability: Durability,
    next: AtomicU64,
    _dir: TempDir,
}

impl Raw {
    fn new(durability: Durability) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("raw.db");
        let raw = Self {
            path,
            durability,
            next: AtomicU64::new(0),
            _dir: dir,
        };
        raw.connect()
            .execute_batch(
                "CREATE TABLE events (
                    position INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL,
                    event_id BLOB NOT NULL, event_type TEXT NOT NULL, payload TEXT NOT NULL,
                    actor TEXT NOT NULL, occurred_at INTEGER NOT NULL, hash BLOB NOT NULL,
                    UNIQUE (stream, version)
                ) STRICT;",
            )
            .expect("creates the table");
        raw
    }

    fn connect(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&self.path).expect("opens");
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("wal");
        assert_eq!(mode, "wal");
        let sync = match self.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .expect("pragma");
        conn.busy_timeout(Duration::from_secs(30)).expect("pragma");
        conn
    }

    fn writer(&self, commands: usize) {
        let mut conn = self.connect();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let stream = format!("incident-INC-{n}");
        for i in 0..commands {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .expect("begins");
            tx.execute(
                "INSERT INTO events (stream, version, event_id, event_type, payload, actor, \
                 occurred_at, hash) VALUES (?1, ?2, ?3, 'incident.noted', ?4, 'bench', ?5, ?6)",
                rusqlite::params![
                    stream,
                    i as i64 + 1,
                    uuid::Uuid::from_u128(u128::from(n) << 32 | i as u128)
                        .as_bytes()
                        .as_slice(),
                    format!(
                        r#"{{"event":"noted","data":{{"kind":"work_note","text":"step {i}: checked the relay"}}}}"#
                    ),
                    1_728_000_000_000_000i64,
                    [7u8; 32].as_slice(),
                ],
            )
            .expect("inserts");
            tx.commit().expect("commits");
        }
    }

    fn round(self: &Arc<Self>, writers: usize, commands: usize) -> Duration {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..writers {
                scope.spawn(|| self.writer(commands));
            }
        });
        started.elapsed()
    }
}

async fn open(dir: &TempDir, durability: Durability) -> SqliteEventStore {
    SqliteOptions::new(dir.path().join("desk.sqlite"))
        .durability(durability)
        .open()
        .await
        .expect("opens")
}

fn commands(c: &mut Criterion) {
    let rt = runtime();
    let per_writer = commands_per_writer();
    for (durability, mode) in [(Durability::Full, "full"), (Durability::Normal, "normal")] {
        let mut group = c.benchmark_group(format!("commands/sqlite_{mode}"));
        group.sample_size(10);
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = rt.block_on(open(&dir, durability));
        let store: Arc<dyn EventStore> = Arc::new(sqlite.clone());
        let cached = Desk::new(Arc::clone(&store), 4096, 0);
        let uncached = Desk::new(Arc::clone(&store), 0, 1 << 40);
        let raw = Arc::new(Raw::new(durability));
        for writers in WRITERS {
            group.throughput(Throughput::Elements((writers * per_writer) as u64));
            group.bench_function(BenchmarkId::new("cached", writers), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let desk = Arc::clone(&cached);
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += desk.round(writers, per_writer).await;
                        }
                        total
                    }
                });
            });
            group.bench_function(BenchmarkId::new("uncached", writers), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let desk = Arc::clone(&uncached);
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += desk.round(writers, per_writer).await;
                        }
                        total
                    }
                });
            });
            group.bench_function(BenchmarkId::new("raw_inserts", writers), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| raw.round(writers, per_writer)).sum());
            });
        }
        group.finish();
        rt.block_on(sqlite.close());
    }
}

criterion_group!(benches, commands);
criterion_main!(benches);
