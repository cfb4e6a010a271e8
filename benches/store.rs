//! Kernel and in-memory store benchmarks: appends, reads, aggregate rebuilds, hashing.
//!
//! `cargo bench --bench store`; CI runs each once with `cargo bench -- --test`.

#![allow(
    clippy::expect_used,
    reason = "a benchmark stops at the first broken setup step"
)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use smsys::core::{
    Aggregate, CommandHandler, Context, DecodeError, DomainEvent, EventData, EventSourced,
    EventStore, EventType, ExpectedVersion, Stamp, StreamId, Version, chain,
};
use smsys::store::MemoryEventStore;
use smsys::store::testkit::event;

/// A minimal aggregate: it sums the amounts recorded in its stream.
#[derive(Default, Clone, Serialize, Deserialize)]
struct Tally {
    total: i64,
    entries: u64,
}

struct Added(i64);

impl DomainEvent for Added {
    fn event_type(&self) -> EventType {
        EventType::new("tally.added").expect("valid")
    }
    fn schema_version(&self) -> u32 {
        1
    }
    fn to_payload(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({ "amount": self.0 }))
    }
    fn from_payload(event_type: &EventType, payload: Value) -> Result<Self, DecodeError> {
        payload["amount"]
            .as_i64()
            .map(Added)
            .ok_or_else(|| DecodeError::UnknownType(event_type.clone()))
    }
}

impl EventSourced for Tally {
    const CATEGORY: &'static str = "tally";
    type Event = Added;
    fn evolve(&mut self, event: &Added, _: Stamp<'_>) {
        self.total += event.0;
        self.entries += 1;
    }
}

impl Aggregate for Tally {
    type State = Tally;
    type Services = ();
    type Command = i64;
    type Rejection = std::convert::Infallible;
    fn decide(
        _: &Tally,
        amount: &i64,
        _: &(),
        _: &Context<'_>,
    ) -> Result<Vec<Added>, Self::Rejection> {
        Ok(vec![Added(*amount)])
    }
}

fn batch(n: usize) -> Vec<EventData> {
    (0..n)
        .map(|i| {
            event(
                "tally.added",
                json!({ "amount": i, "note": "benchmark payload of a realistic size" }),
            )
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime")
}

async fn filled(n: usize) -> (MemoryEventStore, StreamId) {
    let store = MemoryEventStore::new();
    let stream: StreamId = "tally-bench".parse().expect("valid");
    for chunk in 0..n / 1000 {
        let expected = if chunk == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Any
        };
        store
            .append(&stream, expected, batch(1000))
            .await
            .expect("appends");
    }
    (store, stream)
}

fn memory(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("store/memory");
    for n in [1usize, 100] {
        group.throughput(Throughput::Elements(n as u64));
        let store = MemoryEventStore::new();
        let stream: StreamId = "tally-append".parse().expect("valid");
        group.bench_function(format!("append_{n}"), |b| {
            b.to_async(&rt).iter_batched(
                || batch(n),
                |events| async {
                    let r = store
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .expect("appends");
                    assert_eq!(r.positions.len(), n);
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.throughput(Throughput::Elements(100));
    group.bench_function("append_100_to_empty_store", |b| {
        let stream: StreamId = "tally-append".parse().expect("valid");
        b.to_async(&rt).iter_batched(
            || (MemoryEventStore::new(), batch(100)),
            |(store, events)| {
                let stream = stream.clone();
                async move {
                    let r = store
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .expect("appends");
                    assert_eq!(r.positions.len(), 100);
                    store
                }
            },
            BatchSize::SmallInput,
        );
    });
    let (store, stream) = rt.block_on(filled(10_000));
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("read_stream_10k", |b| {
        b.to_async(&rt).iter(|| async {
            let n = store.read_stream(&stream, Version::FIRST).count().await;
            assert_eq!(n, 10_000);
        });
    });
    let handler = CommandHandler::<Tally>::new(Arc::new(store.clone()), ());
    group.bench_function("rebuild_10k", |b| {
        b.to_async(&rt).iter(|| async {
            let loaded = handler.load(&stream).await.expect("loads");
            assert_eq!(loaded.state.entries, 10_000);
            black_box(loaded.state.total)
        });
    });
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel/chain");
    let data = batch(1).remove(0);
    let stream: StreamId = "tally-hash".parse().expect("valid");
    let now = chrono::Utc::now();
    group.throughput(Throughput::Elements(1));
    group.bench_function("event_hash", |b| {
        b.iter(|| {
            chain::event_hash(
                None,
                black_box(&stream),
                Version::FIRST,
                black_box(&data),
                now,
            )
        });
    });
    group.finish();
}

criterion_group!(benches, memory, hashing);
criterion_main!(benches);
