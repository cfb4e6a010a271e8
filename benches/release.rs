//! Taking a release's baseline from the configuration graph: the 100k-CI generated CMDB
//! (`support/estate.rs`), a baseline of 10, 100 and 1,000 CIs (each CI's type, status,
//! attributes and outgoing relationships as of the graph's position, hashed), beside the raw
//! cost of the same work on the same data already gathered: serialising the CIs and hashing
//! them with SHA-256.
//!
//! `cargo bench --bench release`; CI runs it once with `cargo bench -- --test`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benches report failures by panicking"
)]

#[path = "support/estate.rs"]
mod estate;
use estate::*;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use smsys_core::Projection;
use smsys_core::records::CiId;
use smsys_core::records::release::BaselineCi;
use smsys_processes::CmdbGraph;
use smsys_processes::release::BaselineSource;

/// How many CIs the bench's estate has (the full one outside `--test`).
fn cis() -> u64 {
    if std::env::args().any(|a| a == "--test") {
        2 * CLUSTER
    } else {
        CIS
    }
}

fn baselines(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let n = cis();
    let events = recorded(n);
    let graph = CmdbGraph::new();
    for batch in events.chunks(10_000) {
        let last = batch.last().expect("a batch has events").position;
        rt.block_on(graph.apply(batch, last)).expect("applied");
    }
    let mut group = c.benchmark_group("release_baseline");
    for size in [10_u64, 100, 1_000] {
        // A release's CIs: a run of CIs in one cluster and its neighbours.
        let released: Vec<CiId> = (0..size).map(|i| id((i * 7) % n)).collect();
        group.bench_function(format!("baseline_{size}_cis"), |b| {
            b.iter(|| black_box(graph.baseline(black_box(&released)).expect("known CIs")));
        });
        let gathered: Vec<BaselineCi> = graph.baseline(&released).expect("known CIs").cis;
        group.bench_function(format!("raw_serialise_and_hash_{size}_cis"), |b| {
            b.iter(|| {
                let bytes = serde_json::to_vec(black_box(&gathered)).expect("serialises");
                black_box(Sha256::digest(&bytes))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, baselines);
criterion_main!(benches);
