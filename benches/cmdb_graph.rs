//! The configuration graph over 100k CIs and 300k relationships, beside raw baselines.
//!
//! The CMDB: 100 clusters of 1,000 CIs; each CI but a cluster's root depends on (or runs
//! on) an earlier CI of its cluster and is part of (or connects to) another, and backs up
//! a CI anywhere (`backs_up` carries no impact); each root backs up three CIs. So a
//! cluster's root has the 999 other CIs of its cluster as transitive dependents. One CI in
//! ten has an attribute update, one in fifty a status change. Events are pre-built as
//! `RecordedEvent`s, CI by CI.
//!
//! - `cmdb_graph/fold_100k`: applies every event to a new `CmdbGraph` in batches of 512, as
//!   the projection runner would; `cmdb_graph/raw/decode_json_100k` only parses the same
//!   events' payloads from JSON text to `serde_json::Value`;
//!   `cmdb_graph/raw/hashmap_adjacency_100k` builds a `HashMap<String, Vec<String>>`
//!   adjacency (target -> sources) from pre-extracted string pairs.
//! - `cmdb_graph/impact_1k`: the impact of a cluster root (999 dependents);
//!   `cmdb_graph/raw/bfs_1k`: a breadth-first search on the `HashMap` adjacency.
//! - `cmdb_graph/as_of_whole_graph`: the whole graph at 60 % of the log;
//!   `cmdb_graph/history_one_ci` and `cmdb_graph/ci_as_of_one_ci`: one CI.
//!
//! - `cmdb_graph_store/sqlite/index_10k`: the same CMDB at 10k CIs (10 clusters; 100k would
//!   make one sample take minutes) projected by `CiGraphIndexer` into a fresh SQLite store's
//!   own tables, in batches of 512 (rows, edges and checkpoint in one transaction each);
//!   `cmdb_graph_store/sqlite/walk_1k`: the store's walk from a cluster root (999
//!   dependents) under `ImpactRules::walk`, one query per level in one read transaction;
//!   `cmdb_graph_store/memory/impact_1k`: the in-memory `CmdbGraph::impact` of the same root
//!   on the same 10k CIs, the baseline.
//!
//! The memory the folded graph holds (and the raw adjacency) is measured with a counting
//! global allocator and printed.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benches report failures by panicking"
)]

#[path = "support/estate.rs"]
mod estate;
use estate::*;

use std::alloc::System;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hint::black_box;
use std::sync::Arc;

use cap::Cap;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use smsys_core::records::CiGraphStore;
use smsys_core::records::{CiId, Relationship};
use smsys_core::{Projection, RecordedEvent};
use smsys_processes::{CiGraphIndexer, CmdbGraph};
use smsys_store::testkit::records::mix;
use smsys_store::{CheckpointName, SqliteCiGraph, SqliteEventStore};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// The impact rules of the bench: `connects_to` carries impact both ways here, as in the raw
/// adjacency below.
fn rules() -> smsys::processes::ImpactRules {
    let mut rules = smsys::processes::ImpactRules::default();
    rules.propagation.insert(
        Relationship::CONNECTS_TO,
        smsys::processes::cmdb_graph::Propagation::Both,
    );
    rules
}

fn fold(events: &[RecordedEvent]) -> CmdbGraph {
    let graph = CmdbGraph::new().with_rules(rules());
    futures::executor::block_on(async {
        for batch in events.chunks(512) {
            let last = batch.last().unwrap().position;
            graph.apply(batch, last).await.unwrap();
        }
    });
    graph
}

/// The raw adjacency: for each relationship that carries impact, target -> sources
/// (`connects_to` both ways).
fn pairs(n: u64) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for i in 0..n {
        for (relationship, target) in relationships(i, n) {
            if relationship != BACKS_UP {
                out.push((
                    id(i).to_string(),
                    id(target).to_string(),
                    relationship == Relationship::CONNECTS_TO,
                ));
            }
        }
    }
    out
}

fn raw_adjacency(pairs: &[(String, String, bool)]) -> HashMap<String, Vec<String>> {
    let mut adjacency: HashMap<String, Vec<String>> = HashMap::new();
    for (source, target, both) in pairs {
        adjacency
            .entry(target.clone())
            .or_default()
            .push(source.clone());
        if *both {
            adjacency
                .entry(source.clone())
                .or_default()
                .push(target.clone());
        }
    }
    adjacency
}

fn raw_bfs(adjacency: &HashMap<String, Vec<String>>, origin: &str) -> usize {
    let mut seen: HashSet<&str> = HashSet::new();
    seen.insert(origin);
    let mut queue = VecDeque::from([origin]);
    while let Some(at) = queue.pop_front() {
        for next in adjacency.get(at).into_iter().flatten() {
            if seen.insert(next.as_str()) {
                queue.push_back(next.as_str());
            }
        }
    }
    seen.len() - 1
}

#[allow(
    clippy::print_stderr,
    reason = "the memory figures are the bench's report"
)]
fn report_memory(events: &[RecordedEvent], event_bytes: usize, n: u64) {
    let before = ALLOCATOR.allocated();
    let graph = fold(events);
    let held = ALLOCATOR.allocated() - before;
    let pairs = pairs(n);
    let before = ALLOCATOR.allocated();
    let adjacency = raw_adjacency(&pairs);
    let raw = ALLOCATOR.allocated() - before;
    eprintln!(
        "cmdb_graph/memory: {} CIs and {} relationships ({} events, {} checkpoints) held in {} \
         bytes ({} per CI); the raw HashMap<String, Vec<String>> adjacency of the {} edges \
         that carry impact: {} bytes; the events take {} bytes in memory as RecordedEvents",
        graph.len(),
        graph.relationship_count(),
        graph.event_count(),
        graph.checkpoint_count(),
        held,
        held / graph.len().max(1),
        pairs.len(),
        raw,
        event_bytes,
    );
    drop(adjacency);
}

fn cmdb_graph(c: &mut Criterion) {
    // `cargo bench -- --test` runs each bench once: a smaller CMDB keeps it quick.
    let n = if std::env::args().any(|a| a == "--test") {
        5_000
    } else {
        CIS
    };
    let before = ALLOCATOR.allocated();
    let events = recorded(n);
    let event_bytes = ALLOCATOR.allocated() - before;
    report_memory(&events, event_bytes, n);
    let texts: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e.data.payload()).unwrap())
        .collect();
    let pairs = pairs(n);

    let mut group = c.benchmark_group("cmdb_graph");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("fold_100k", |b| {
        b.iter_batched(
            || (),
            |()| {
                let graph = fold(&events);
                assert_eq!(graph.len() as u64, n);
                assert_eq!(graph.relationship_count() as u64, 3 * n);
                graph
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("raw/decode_json_100k", |b| {
        b.iter(|| {
            let mut objects = 0;
            for text in &texts {
                let value: Value = serde_json::from_str(text).unwrap();
                objects += usize::from(value.is_object());
            }
            assert_eq!(objects, events.len());
            objects
        });
    });
    group.bench_function("raw/hashmap_adjacency_100k", |b| {
        b.iter(|| {
            let adjacency = raw_adjacency(&pairs);
            assert!(adjacency.len() as u64 >= n / 2);
            adjacency
        });
    });
    group.throughput(Throughput::Elements(1));

    let graph = fold(&events);
    let adjacency = raw_adjacency(&pairs);
    let root = id(CLUSTER * (n / CLUSTER / 2));
    let dependents = raw_bfs(&adjacency, root.as_str());
    assert_eq!(dependents as u64, CLUSTER - 1);
    assert_eq!(graph.impact(&root).len(), dependents);
    group.bench_function("impact_1k", |b| {
        b.iter(|| {
            let impact = graph.impact(black_box(&root));
            assert_eq!(impact.len(), dependents);
            impact
        });
    });
    group.bench_function("raw/bfs_1k", |b| {
        b.iter(|| {
            let found = raw_bfs(&adjacency, black_box(root.as_str()));
            assert_eq!(found, dependents);
            found
        });
    });

    let past = events[events.len() * 6 / 10].position;
    let registered_by_then = events[..=events.len() * 6 / 10]
        .iter()
        .filter(|e| e.data.event_type().as_str() == "configuration_item.registered")
        .count();
    group.bench_function("as_of_whole_graph", |b| {
        b.iter(|| {
            let snapshot = graph.as_of(black_box(past));
            assert_eq!(snapshot.len(), registered_by_then);
            snapshot
        });
    });
    let one = (0..n)
        .find(|i| mix(*i, 8).is_multiple_of(10) && mix(*i, 9).is_multiple_of(50))
        .unwrap_or(1);
    let one_id = id(one);
    let one_events = ci_events(one, n).len();
    group.bench_function("history_one_ci", |b| {
        b.iter(|| {
            let history = graph.history(black_box(&one_id));
            assert_eq!(history.len(), one_events);
            history
        });
    });
    let last = events.last().unwrap().position;
    group.bench_function("ci_as_of_one_ci", |b| {
        b.iter(|| {
            let state = graph.ci_as_of(black_box(&one_id), last).unwrap();
            assert_eq!(
                state.status(),
                Some("maintenance").filter(|_| mix(one, 9).is_multiple_of(50))
            );
            state
        });
    });
    group.finish();
}

/// A fresh SQLite store in its own directory, and its (empty) graph.
fn fresh_graph(runtime: &tokio::runtime::Runtime) -> (tempfile::TempDir, SqliteCiGraph) {
    let dir = tempfile::tempdir().unwrap();
    let store = runtime
        .block_on(SqliteEventStore::open(dir.path().join("cmdb.db")))
        .unwrap();
    let graph = store.ci_graph(CheckpointName::new("ci_graph.v1").unwrap());
    (dir, graph)
}

/// Projects `events` into `graph` in batches of 512, as the projection runner would.
fn index(runtime: &tokio::runtime::Runtime, graph: &SqliteCiGraph, events: &[RecordedEvent]) {
    let indexer = CiGraphIndexer::new(Arc::new(graph.clone()));
    runtime.block_on(async {
        for batch in events.chunks(512) {
            let last = batch.last().unwrap().position;
            indexer.apply(batch, last).await.unwrap();
        }
    });
}

fn cmdb_graph_store(c: &mut Criterion) {
    let n = if std::env::args().any(|a| a == "--test") {
        2_000
    } else {
        10_000
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let events = recorded(n);
    let mut group = c.benchmark_group("cmdb_graph_store");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("sqlite/index_10k", |b| {
        b.iter_batched(
            || fresh_graph(&runtime),
            |(dir, graph)| {
                index(&runtime, &graph, &events);
                (dir, graph)
            },
            BatchSize::PerIteration,
        );
    });
    group.throughput(Throughput::Elements(1));

    let (_dir, graph) = fresh_graph(&runtime);
    index(&runtime, &graph, &events);
    assert_eq!(runtime.block_on(graph.count()).unwrap(), n);
    let memory = fold(&events);
    let root = id(CLUSTER * (n / CLUSTER / 2));
    let walk = rules().walk();
    let expected: Vec<(CiId, u32)> = memory
        .impact(&root)
        .affected()
        .iter()
        .map(|a| (a.id.clone(), a.distance))
        .collect();
    assert_eq!(expected.len() as u64, CLUSTER - 1);
    group.bench_function("sqlite/walk_1k", |b| {
        b.iter(|| {
            let found = runtime
                .block_on(graph.walk(black_box(&root), &walk))
                .unwrap();
            assert_eq!(found, expected);
            found
        });
    });
    group.bench_function("memory/impact_1k", |b| {
        b.iter(|| {
            let impact = memory.impact(black_box(&root));
            assert_eq!(impact.len(), expected.len());
            impact
        });
    });
    group.finish();
}

criterion_group!(benches, cmdb_graph, cmdb_graph_store);
criterion_main!(benches);
