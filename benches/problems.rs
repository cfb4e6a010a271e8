//! Problem commands per second through the command handler on SQLite: a whole problem
//! lifecycle (9 commands: log, assess, analyse, root cause, workaround, fix, resolve,
//! effectiveness review, close) per record, on one task and on 8 concurrent tasks with distinct
//! records. `benches/desk.rs` measures the incident lifecycle on the same store settings.
//!
//! `cargo bench --bench problems`; CI runs each once with `cargo bench -- --test`.

#![allow(
    clippy::expect_used,
    reason = "a benchmark stops at the first broken setup step"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smsys::core::records::Channel;
use smsys::core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, SequentialIds, StreamId,
};
use smsys::processes::{
    LogRecord, ProblemCommand, ProblemManagement, ProblemPolicy, RecordCommand,
};
use smsys::store::SqliteEventStore;

const COMMANDS: u64 = 9;

/// The lifecycle's commands, each with how long after the log it runs (the review needs its
/// window behind it).
fn lifecycle(n: u64, resolved: DateTime<Utc>) -> Vec<(ProblemCommand, TimeDelta)> {
    let log = LogRecord::new(
        format!("PRB-{n}").parse().expect("valid"),
        "pat".parse().expect("valid"),
        Channel::Monitoring,
        "email".parse().expect("valid"),
        "relay drops mail",
    )
    .affected_cis(vec!["mx-01".parse().expect("valid")]);
    let now = TimeDelta::zero();
    let later = TimeDelta::days(31);
    vec![
        (ProblemCommand::Log(log), now),
        (
            RecordCommand::Assign {
                group: "problems".parse().expect("valid"),
                person: None,
            }
            .into(),
            now,
        ),
        (ProblemCommand::Analyse, now),
        (
            ProblemCommand::RecordRootCause {
                cause: "queue runner stalls".into(),
                method: "five whys".into(),
                contributing_cis: vec!["mx-01".parse().expect("valid")],
            },
            now,
        ),
        (
            ProblemCommand::RecordWorkaround {
                text: "restart the runner".into(),
                published: true,
            },
            now,
        ),
        (ProblemCommand::StartFix, now),
        (
            RecordCommand::Resolve {
                code: "fix_applied".into(),
                notes: "limit raised".into(),
            }
            .into(),
            now,
        ),
        (
            ProblemCommand::RecordReview {
                from: resolved,
                to: resolved + TimeDelta::days(30),
                recurrences: Vec::new(),
            },
            later,
        ),
        (RecordCommand::Close.into(), later),
    ]
}

struct Bench {
    handler: CommandHandler<ProblemManagement>,
    ids: SequentialIds,
    next: AtomicU64,
    meta: CommandMeta,
    now: DateTime<Utc>,
}

impl Bench {
    fn new(store: Arc<dyn EventStore>) -> Arc<Self> {
        Arc::new(Self {
            handler: CommandHandler::new(store, ProblemPolicy::default()),
            ids: SequentialIds::new(1_790_000_000_000),
            next: AtomicU64::new(0),
            meta: CommandMeta::new(Actor::new("bench").expect("valid")),
            now: DateTime::UNIX_EPOCH + TimeDelta::days(20_000),
        })
    }

    async fn one_record(&self) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let stream: StreamId = format!("problem-PRB-{n}").parse().expect("valid");
        for (command, after) in lifecycle(n, self.now) {
            let ctx = Context::new(self.now + after, &self.ids);
            let done = self
                .handler
                .execute(&stream, &command, &self.meta, &ctx)
                .await
                .expect("accepted");
            assert!(done.append.is_some(), "every command records events");
        }
    }
}

fn commands(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite: Arc<dyn EventStore> = Arc::new(
        rt.block_on(SqliteEventStore::open(dir.path().join("problems.sqlite")))
            .expect("opens"),
    );
    let mut group = c.benchmark_group("problems/sqlite");
    let bench = Bench::new(sqlite);
    group.throughput(Throughput::Elements(COMMANDS));
    group.bench_function("problem_lifecycle_1_task", |b| {
        b.to_async(&rt).iter(|| bench.one_record());
    });
    group.throughput(Throughput::Elements(8 * COMMANDS));
    group.bench_function("problem_lifecycle_8_tasks", |b| {
        b.to_async(&rt).iter(|| async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let bench = Arc::clone(&bench);
                    tokio::spawn(async move { bench.one_record().await })
                })
                .collect();
            for task in tasks {
                task.await.expect("task finishes");
            }
        });
    });
    group.finish();
}

criterion_group!(benches, commands);
criterion_main!(benches);
