//! The read side on SQLite: the record index caught up over a whole log, beside a bare read of
//! the same log (the raw baseline), and the runner's peak memory.
//!
//! `cargo bench --bench read_side`: 1,000,000 events (100,000 incidents of 10 events).
//! Under `cargo bench -- --test` (CI) the log has 20,000 events, so each bench runs once fast.

#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark stops at the first broken setup step and prints what criterion does not"
)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use smsys::core::records::{
    Channel, Incident, IncidentEvent, Level, Logged, Phase, Priority, RecordEvent,
    RecordIndexStore, RecordKind, RecordQuery, TransitionDetail, TypedEvent,
};
use smsys::core::{
    Actor, DomainEvent, EventData, EventId, EventStore, ExpectedVersion, LogFilter, Metadata,
    Position, ProjectionRunner,
};
use smsys::processes::index::RecordIndexer;
use smsys::processes::sla::SlaEngine;
use smsys::store::{Durability, SqliteEventStore, SqliteOptions};

const EVENTS_PER_RECORD: usize = 10;

fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

fn records() -> usize {
    if test_mode() { 2_000 } else { 100_000 }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0)
        .single()
        .expect("valid")
}

/// The ten events of one incident's life: logged, prioritised, assigned, started, three
/// notes, resolved, closed, and a late note is not allowed, so a reassignment in between.
fn life(n: usize) -> Vec<IncidentEvent> {
    let at = t0() + TimeDelta::minutes(n as i64);
    let moved = |from: &str, to: &str, phase, detail| {
        TypedEvent::Record(RecordEvent::Transitioned {
            transition: to.into(),
            from: from.into(),
            to: to.into(),
            phase,
            detail,
            at,
        })
    };
    let note = || {
        TypedEvent::Record(RecordEvent::Noted {
            kind: smsys::core::records::NoteKind::WorkNote,
            text: "looked into it".into(),
        })
    };
    let assigned = |group: &str, reassignment| {
        TypedEvent::Record(RecordEvent::Assigned {
            group: group.parse().expect("valid"),
            person: None,
            reassignment,
        })
    };
    vec![
        TypedEvent::Logged(Logged {
            reference: format!("INC-{n}").parse().expect("valid"),
            lifecycle: smsys::processes::incident::default_lifecycle().reference(),
            status: "new".into(),
            caller: "ana".parse().expect("valid"),
            channel: Channel::Phone,
            service: "email".parse().expect("valid"),
            affected_cis: vec!["mx-01".parse().expect("valid")],
            summary: format!("mail bounces {n}"),
            description: String::new(),
            attributes: Default::default(),
        }),
        TypedEvent::Record(RecordEvent::Prioritised {
            impact: Level::Medium,
            urgency: Level::Medium,
            priority: Priority::new(3).expect("valid"),
            matrix_version: 1,
        }),
        assigned("desk", false),
        moved("new", "in_progress", Phase::Active, TransitionDetail::Plain),
        note(),
        assigned("network", true),
        note(),
        note(),
        moved(
            "in_progress",
            "resolved",
            Phase::Resolved,
            TransitionDetail::Resolution {
                code: "fixed".into(),
                notes: "done".into(),
            },
        ),
        // Every tenth incident stays resolved; the others close.
        if n.is_multiple_of(10) {
            note()
        } else {
            moved(
                "resolved",
                "closed",
                Phase::Closed,
                TransitionDetail::Closure { automatic: false },
            )
        },
    ]
}

/// Appends every incident's life, 32 writers at a time (the store's group commit shares the
/// fsyncs), each writer advancing ten incidents step by step so lives interleave in the log.
async fn fill(store: &Arc<dyn EventStore>, records: usize) {
    let writers = 32;
    let tasks = (0..writers).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let actor = Actor::new("agent").expect("valid");
            let mine: Vec<usize> = (w..records).step_by(writers).collect();
            for chunk in mine.chunks(10) {
                let lives: Vec<_> = chunk.iter().map(|&n| life(n)).collect();
                for step in 0..EVENTS_PER_RECORD {
                    for (&n, life) in chunk.iter().zip(&lives) {
                        let event = &life[step];
                        let id = (n * EVENTS_PER_RECORD + step + 1) as u128;
                        let meta = Metadata::new(
                            EventId::from_uuid(uuid::Uuid::from_u128(id)).expect("not nil"),
                            actor.clone(),
                            t0() + TimeDelta::minutes((n + step) as i64),
                        );
                        let data = EventData::new(
                            event.event_type(),
                            event.schema_version(),
                            event.to_payload().expect("encodes"),
                            meta,
                        )
                        .expect("valid");
                        let stream = Incident::stream(&format!("INC-{n}").parse().expect("valid"))
                            .expect("valid");
                        store
                            .append(&stream, ExpectedVersion::Any, vec![data])
                            .await
                            .expect("appends");
                    }
                }
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.expect("writer finished");
    }
}

/// The raw read of the whole log, then the index caught up from nothing, on `store`.
fn bench_catch_up(
    c: &mut Criterion,
    backend: &str,
    runtime: &tokio::runtime::Runtime,
    store: &Arc<dyn EventStore>,
    index_named: &dyn Fn(String) -> Arc<dyn RecordIndexStore>,
    records: usize,
) {
    let events = (records * EVENTS_PER_RECORD) as u64;
    let engine = Arc::new(SlaEngine::reference());
    let mut group = c.benchmark_group(format!("read_side/{backend}"));
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    group.bench_function(format!("read_all_{events}_raw"), |b| {
        b.to_async(runtime).iter(|| async {
            let mut n = 0u64;
            let mut all = store.read_all(Position::START, LogFilter::all());
            while let Some(e) = all.next().await {
                e.expect("readable");
                n += 1;
            }
            assert_eq!(n, events);
        });
    });
    let mut version = 0u32;
    group.bench_function(format!("index_catch_up_{events}"), |b| {
        b.to_async(runtime).iter(|| {
            version += 1;
            let index = index_named(format!("record_index.bench{version}"));
            let store = store.clone();
            let engine = engine.clone();
            async move {
                let indexer = RecordIndexer::new(store.clone(), index.clone(), engine);
                ProjectionRunner::new(store)
                    .with_batch_size(50_000)
                    .catch_up(&indexer)
                    .await
                    .expect("caught up");
                let all = index.count(&RecordQuery::default()).await.expect("counts");
                assert_eq!(all, records as u64);
                index.clear().await.expect("cleared");
            }
        });
    });
    group.finish();
    println!(
        "read_side/{backend}: peak RSS of the bench process {} MiB ({events} events)",
        peak_rss_kib() / 1024
    );
}

fn catch_up(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let records = records();
    let sqlite = runtime.block_on(async {
        let store = Arc::new(
            SqliteOptions::new(dir.path().join("bench.sqlite"))
                .durability(Durability::Normal)
                .open()
                .await
                .expect("opens"),
        );
        let dyn_store: Arc<dyn EventStore> = store.clone();
        fill(&dyn_store, records).await;
        store
    });
    let store: Arc<dyn EventStore> = sqlite.clone();
    let index_named = |name: String| -> Arc<dyn RecordIndexStore> {
        Arc::new(sqlite.record_index(name.parse().expect("valid")))
    };
    bench_catch_up(c, "sqlite", &runtime, &store, &index_named, records);
}

/// The same on PostgreSQL (feature `postgres`, `SMSYS_TEST_DATABASE_URL`), with a tenth of
/// the records: filling the log goes through single appends.
#[cfg(feature = "postgres")]
fn catch_up_postgres(c: &mut Criterion) {
    use smsys::store::PgEventStore;
    let Ok(url) = std::env::var("SMSYS_TEST_DATABASE_URL") else {
        println!("read_side/postgres: skipped, SMSYS_TEST_DATABASE_URL is not set");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let records = records() / 10;
    let schema = format!(
        "smsys_bench_read_side_{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    );
    let pg = runtime.block_on(async {
        let store = Arc::new(
            PgEventStore::builder(url.as_str())
                .schema(&schema)
                .expect("valid schema")
                .pool_size(8)
                .connect()
                .await
                .expect("the store opens"),
        );
        let dyn_store: Arc<dyn EventStore> = store.clone();
        fill(&dyn_store, records).await;
        store
    });
    let store: Arc<dyn EventStore> = pg.clone();
    let index_named = |name: String| -> Arc<dyn RecordIndexStore> {
        Arc::new(pg.record_index(name.parse().expect("valid")))
    };
    bench_catch_up(c, "postgres", &runtime, &store, &index_named, records);
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connects");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .expect("schema dropped");
    });
}

#[cfg(not(feature = "postgres"))]
fn catch_up_postgres(_: &mut Criterion) {}

/// How far behind the live index is when 8 writers stop: each iteration, 8 writers log 50
/// incidents each (10 events apiece) while the runner follows the log; the time measured is
/// from the last writer's acknowledgement until the index holds every event.
fn live_lag(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, index) = runtime.block_on(async {
        let store = Arc::new(
            SqliteEventStore::open(dir.path().join("live.sqlite"))
                .await
                .expect("opens"),
        );
        let index: Arc<dyn RecordIndexStore> =
            Arc::new(store.record_index("record_index.v1".parse().expect("valid")));
        (store, index)
    });
    let engine = Arc::new(SlaEngine::reference());
    let indexer = Arc::new(RecordIndexer::new(store.clone(), index.clone(), engine));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = {
        let (store, indexer) = (store.clone(), indexer);
        runtime.spawn(async move {
            ProjectionRunner::new(store)
                .with_batch_size(1_024)
                .run(&*indexer, async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    let per_writer = if test_mode() { 5 } else { 50 };
    let mut round = 0usize;
    let mut group = c.benchmark_group("read_side/sqlite");
    group.sample_size(10);
    group.bench_function("live_lag_8_writers", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (store, index) = (store.clone(), index.clone());
            let first = round;
            round += iters as usize;
            async move {
                let mut lag = std::time::Duration::ZERO;
                for i in 0..iters as usize {
                    let base = (first + i) * 8 * per_writer + 1_000_000_000;
                    let writers = (0..8).map(|w| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let mut last = Position::START;
                            for k in 0..per_writer {
                                let n = base + w * per_writer + k;
                                let stream =
                                    Incident::stream(&format!("INC-{n}").parse().expect("valid"))
                                        .expect("valid");
                                let events: Vec<EventData> = life(n)
                                    .iter()
                                    .enumerate()
                                    .map(|(step, e)| {
                                        let id = (n * EVENTS_PER_RECORD + step + 1) as u128;
                                        EventData::new(
                                            e.event_type(),
                                            e.schema_version(),
                                            e.to_payload().expect("encodes"),
                                            Metadata::new(
                                                EventId::from_uuid(uuid::Uuid::from_u128(id))
                                                    .expect("not nil"),
                                                Actor::new("agent").expect("valid"),
                                                t0(),
                                            ),
                                        )
                                        .expect("valid")
                                    })
                                    .collect();
                                let done = store
                                    .append(&stream, ExpectedVersion::NoStream, events)
                                    .await
                                    .expect("appends");
                                last = last.max(*done.positions.last().expect("some"));
                            }
                            last
                        })
                    });
                    let mut last = Position::START;
                    for w in futures::future::join_all(writers).await {
                        last = last.max(w.expect("writer finished"));
                    }
                    let acked = std::time::Instant::now();
                    while index
                        .checkpoint()
                        .await
                        .expect("readable")
                        .is_none_or(|c| c < last)
                    {
                        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                    }
                    lag += acked.elapsed();
                }
                lag
            }
        });
    });
    group.finish();
    let _ = stop.send(());
    runtime
        .block_on(follower)
        .expect("joined")
        .expect("the index followed the log");
}

criterion_group!(benches, catch_up, catch_up_postgres, live_lag);
criterion_main!(benches);
