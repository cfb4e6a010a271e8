//! The cost of crypto-shredding: appends and reads with and without the `Protected`
//! decorator (memory, SQLite), and erasing a subject with 1,000 events across 100 records.
//!
//! `cargo bench --bench privacy`; CI runs each once with `cargo bench --bench privacy -- --test`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark stops at the first broken setup step"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use serde_json::json;
use smsys::core::personal::DataSubject;
use smsys::core::records::personal_data;
use smsys::core::{
    Actor, EventData, EventId, EventStore, EventType, ExpectedVersion, LogFilter, Metadata,
    Position, StreamId,
};
use smsys::store::privacy::{ErasureRequest, MemoryKeyStore, Protected, SqliteKeyStore};
use smsys::store::{Durability, MemoryEventStore, SqliteEventStore, SqliteOptions};

const RECORDS: usize = 100;
const EVENTS_PER_RECORD: usize = 10;

static NEXT: AtomicU64 = AtomicU64::new(1);

fn event(name: &str, payload: serde_json::Value) -> EventData {
    let id = u128::from(NEXT.fetch_add(1, Ordering::Relaxed));
    let meta = Metadata::new(
        EventId::from_uuid(uuid::Uuid::from_u128(id)).unwrap(),
        Actor::new("agent:bo").unwrap(),
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
    );
    EventData::new(EventType::new(name).unwrap(), 1, payload, meta).unwrap()
}

/// One record: logged by `caller`, then work notes.
fn record(caller: &str) -> (StreamId, Vec<EventData>) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let stream = format!("incident-INC-{n}").parse().unwrap();
    let mut events = vec![event(
        "incident.logged",
        json!({"reference": format!("INC-{n}"), "caller": caller, "service": "email",
               "summary": "mail bounces since this morning", "description": "reported by phone",
               "affected_cis": ["mx-01"], "channel": "phone"}),
    )];
    for _ in 1..EVENTS_PER_RECORD {
        events.push(event(
            "incident.noted",
            json!({"kind": "work_note", "text": "checked the queue, restarted the relay"}),
        ));
    }
    (stream, events)
}

async fn fill(store: &dyn EventStore, caller: &str) {
    for _ in 0..RECORDS {
        let (stream, events) = record(caller);
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
}

async fn read_count(store: &dyn EventStore) -> usize {
    store
        .read_all(Position::START, LogFilter::all())
        .count()
        .await
}

fn protected<S: EventStore + 'static>(inner: Arc<S>) -> Protected<S> {
    Protected::new(inner, Arc::new(MemoryKeyStore::new()), personal_data())
}

async fn sqlite(dir: &tempfile::TempDir, name: &str) -> Arc<SqliteEventStore> {
    Arc::new(
        SqliteOptions::new(dir.path().join(name))
            .durability(Durability::Normal)
            .open()
            .await
            .unwrap(),
    )
}

fn appends_and_reads(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let memory: Arc<MemoryEventStore> = Arc::new(MemoryEventStore::new());
    let (plain_sqlite, inner_sqlite, keys) = rt.block_on(async {
        let keys = SqliteKeyStore::open(dir.path().join("keys.db"))
            .await
            .unwrap();
        (
            sqlite(&dir, "plain.db").await,
            sqlite(&dir, "protected.db").await,
            keys,
        )
    });
    let stores: Vec<(&str, Arc<dyn EventStore>)> = vec![
        ("memory/plain", memory),
        (
            "memory/protected",
            Arc::new(protected(Arc::new(MemoryEventStore::new()))),
        ),
        ("sqlite/plain", plain_sqlite),
        (
            "sqlite/protected",
            Arc::new(Protected::new(
                inner_sqlite,
                Arc::new(keys),
                personal_data(),
            )),
        ),
    ];
    let mut group = c.benchmark_group("privacy");
    group.sample_size(20);
    for (name, store) in &stores {
        group.throughput(Throughput::Elements(EVENTS_PER_RECORD as u64));
        group.bench_function(format!("{name}/append_record_of_10"), |b| {
            b.to_async(&rt).iter_batched(
                || record("ana"),
                |(stream, events)| {
                    let store = store.clone();
                    async move {
                        store
                            .append(&stream, ExpectedVersion::NoStream, events)
                            .await
                            .unwrap()
                    }
                },
                BatchSize::SmallInput,
            );
        });
    }
    for (name, _) in &stores {
        // A fresh log of exactly 1,000 events to read.
        let reader: Arc<dyn EventStore> = rt.block_on(async {
            let reader: Arc<dyn EventStore> = match *name {
                "memory/plain" => Arc::new(MemoryEventStore::new()),
                "memory/protected" => Arc::new(protected(Arc::new(MemoryEventStore::new()))),
                "sqlite/plain" => sqlite(&dir, "read-plain.db").await,
                _ => {
                    let keys = SqliteKeyStore::open(dir.path().join("read-keys.db"))
                        .await
                        .unwrap();
                    let inner = sqlite(&dir, "read-protected.db").await;
                    Arc::new(Protected::new(inner, Arc::new(keys), personal_data()))
                }
            };
            fill(&*reader, "ana").await;
            reader
        });
        let count = rt.block_on(read_count(&*reader));
        assert_eq!(count, RECORDS * EVENTS_PER_RECORD);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(format!("{name}/read_all"), |b| {
            b.to_async(&rt).iter(|| {
                let reader = reader.clone();
                async move {
                    let read = read_count(&*reader).await;
                    assert_eq!(read, count);
                }
            });
        });
    }
    group.finish();
}

fn erasure(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("privacy");
    group.sample_size(10);
    let subject = DataSubject::new("ana").unwrap();
    group.bench_function("memory/erase_subject_100_records_1000_events", |b| {
        b.to_async(&rt).iter_batched(
            || {
                let store = protected(Arc::new(MemoryEventStore::new()));
                futures::executor::block_on(fill(&store, "ana"));
                store
            },
            |store| {
                let subject = subject.clone();
                async move {
                    let request = ErasureRequest::new(
                        "DSR-1".parse().unwrap(),
                        Actor::new("dpo").unwrap(),
                        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
                    );
                    let report = store.erase_subject(&subject, &request).await.unwrap();
                    assert_eq!(report.streams.len(), RECORDS);
                    assert_eq!(report.events, (RECORDS * EVENTS_PER_RECORD) as u64);
                }
            },
            BatchSize::PerIteration,
        );
    });
    let dir = tempfile::tempdir().unwrap();
    group.bench_function("sqlite/erase_subject_100_records_1000_events", |b| {
        // Each erasure needs a fresh store: set it up outside the timed part.
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                rt.block_on(async {
                    let inner = sqlite(&dir, &format!("erase-{n}.db")).await;
                    let keys = SqliteKeyStore::open(dir.path().join(format!("keys-{n}.db")))
                        .await
                        .unwrap();
                    let store = Protected::new(inner, Arc::new(keys), personal_data());
                    fill(&store, "ana").await;
                    let request = ErasureRequest::new(
                        "DSR-1".parse().unwrap(),
                        Actor::new("dpo").unwrap(),
                        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
                    );
                    let started = std::time::Instant::now();
                    let report = store.erase_subject(&subject, &request).await.unwrap();
                    total += started.elapsed();
                    assert_eq!(report.events, (RECORDS * EVENTS_PER_RECORD) as u64);
                });
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, appends_and_reads, erasure);
criterion_main!(benches);
