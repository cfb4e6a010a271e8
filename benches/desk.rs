//! Commands per second through the command handler: a whole incident lifecycle (7 commands)
//! per record, on one task and on 8 concurrent tasks with distinct records.
//!
//! `cargo bench --bench desk`; CI runs each once with `cargo bench -- --test`.

#![allow(
    clippy::expect_used,
    reason = "a benchmark stops at the first broken setup step"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smsys::core::records::{Channel, Level, NoteKind};
use smsys::core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, SequentialIds, StreamId,
};
use smsys::processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, RecordCommand,
};
use smsys::store::{MemoryEventStore, SqliteEventStore};

const COMMANDS: u64 = 7;

fn lifecycle(n: u64) -> [IncidentCommand; COMMANDS as usize] {
    let log = LogRecord::new(
        format!("INC-{n}").parse().expect("valid"),
        "user1".parse().expect("valid"),
        Channel::Email,
        "email".parse().expect("valid"),
        "mail bounces",
    )
    .description("since this morning")
    .affected_cis(vec!["mx-01".parse().expect("valid")]);
    [
        IncidentCommand::Log(log),
        RecordCommand::Classify {
            category: "mail".into(),
            subcategory: None,
        }
        .into(),
        RecordCommand::Prioritise {
            impact: Level::Medium,
            urgency: Level::Medium,
        }
        .into(),
        RecordCommand::Assign {
            group: "messaging".parse().expect("valid"),
            person: Some("eng1".parse().expect("valid")),
        }
        .into(),
        RecordCommand::AddNote {
            kind: NoteKind::WorkNote,
            text: "restarted the relay".into(),
        }
        .into(),
        RecordCommand::Resolve {
            code: "fixed".into(),
            notes: "relay restarted".into(),
        }
        .into(),
        RecordCommand::Close.into(),
    ]
}

struct Bench {
    handler: CommandHandler<IncidentManagement>,
    ids: SequentialIds,
    next: AtomicU64,
    meta: CommandMeta,
    now: DateTime<Utc>,
}

impl Bench {
    fn new(store: Arc<dyn EventStore>) -> Arc<Self> {
        Arc::new(Self {
            handler: CommandHandler::new(store, IncidentPolicy::default()),
            ids: SequentialIds::new(1_790_000_000_000),
            next: AtomicU64::new(0),
            meta: CommandMeta::new(Actor::new("bench").expect("valid")),
            now: DateTime::UNIX_EPOCH + TimeDelta::days(20_000),
        })
    }

    async fn one_record(&self) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let stream: StreamId = format!("incident-INC-{n}").parse().expect("valid");
        let ctx = Context::new(self.now, &self.ids);
        for command in lifecycle(n) {
            let done = self
                .handler
                .execute(&stream, &command, &self.meta, &ctx)
                .await
                .expect("accepted");
            assert!(done.append.is_some(), "every command records events");
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn commands(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite: Arc<dyn EventStore> = Arc::new(
        rt.block_on(SqliteEventStore::open(dir.path().join("desk.sqlite")))
            .expect("opens"),
    );
    let memory: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    for (name, store) in [("sqlite", sqlite), ("memory", memory)] {
        let mut group = c.benchmark_group(format!("desk/{name}"));
        let bench = Bench::new(store);
        group.throughput(Throughput::Elements(COMMANDS));
        group.bench_function("incident_lifecycle_1_task", |b| {
            b.to_async(&rt).iter(|| bench.one_record());
        });
        group.throughput(Throughput::Elements(8 * COMMANDS));
        group.bench_function("incident_lifecycle_8_tasks", |b| {
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
}

criterion_group!(benches, commands);
criterion_main!(benches);
