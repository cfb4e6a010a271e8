//! Bulk import of a desk's history on SQLite (synchronous=FULL): 25,000 incidents, about
//! 140,000 events, recorded through `HistoryImport` (the batched append) and then the record
//! index caught up over them; beside the raw baseline, the same rows (payloads already encoded)
//! inserted into a bare table in one transaction with plain rusqlite. Prints the peak RSS.
//!
//! `cargo bench --bench import`. Under `cargo bench -- --test` (CI) the history has 1,000
//! incidents, so each bench runs once fast.

#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark stops at the first broken setup step and prints what criterion does not"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smsys::core::import::{HistoryImport, RecordHistory};
use smsys::core::records::{IncidentEvent, RecordIndexStore};
use smsys::core::{DomainEvent, EventStore, ProjectionRunner};
use smsys::processes::index::RecordIndexer;
use smsys::processes::sla::SlaEngine;
use smsys::store::testkit::history::desk_history;
use smsys::store::{Durability, SqliteOptions};

fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

fn records() -> usize {
    if test_mode() { 1_000 } else { 25_000 }
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Imports `histories` into a new store in `dir`, then catches the record index up.
async fn import(dir: &tempfile::TempDir, histories: Vec<RecordHistory<IncidentEvent>>) -> Duration {
    let sqlite = SqliteOptions::new(dir.path().join("import.sqlite"))
        .durability(Durability::Full)
        .open()
        .await
        .expect("opens");
    let rows: Arc<dyn RecordIndexStore> =
        Arc::new(sqlite.record_index("records".parse().expect("valid")));
    let store: Arc<dyn EventStore> = Arc::new(sqlite.clone());
    let records = histories.len();
    let started = Instant::now();
    let report = HistoryImport::new(Arc::clone(&store), "servicenow")
        .expect("valid source")
        .run(histories)
        .await
        .expect("imports");
    let indexer = RecordIndexer::new(
        Arc::clone(&store),
        Arc::clone(&rows),
        Arc::new(SlaEngine::reference()),
    );
    let reached = ProjectionRunner::new(Arc::clone(&store))
        .with_batch_size(4096)
        .catch_up(&indexer)
        .await
        .expect("catches up");
    let elapsed = started.elapsed();
    assert_eq!(report.records, records, "every record imported");
    assert_eq!(
        reached, report.last_position,
        "the index saw the whole import"
    );
    sqlite.close().await;
    elapsed
}

/// The raw baseline: the same rows, encoded beforehand, in one transaction.
fn raw(dir: &tempfile::TempDir, rows: &[(String, i64, String, String)]) -> Duration {
    let mut conn = rusqlite::Connection::open(dir.path().join("raw.db")).expect("opens");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("pragma");
    conn.execute_batch(
        "CREATE TABLE events (
            position INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL,
            event_type TEXT NOT NULL, payload TEXT NOT NULL, hash BLOB NOT NULL,
            UNIQUE (stream, version)
        ) STRICT;",
    )
    .expect("creates the table");
    let started = Instant::now();
    let tx = conn.transaction().expect("begins");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO events (stream, version, event_type, payload, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .expect("prepares");
        for (stream, version, event_type, payload) in rows {
            insert
                .execute(rusqlite::params![
                    stream,
                    version,
                    event_type,
                    payload,
                    [7u8; 32].as_slice()
                ])
                .expect("inserts");
        }
    }
    tx.commit().expect("commits");
    started.elapsed()
}

fn bulk_import(c: &mut Criterion) {
    let rt = runtime();
    let histories = desk_history(records(), 42);
    let events: usize = histories.iter().map(|h| h.events().len()).sum();
    let mut group = c.benchmark_group("import/sqlite_full");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events as u64));
    let name = format!(
        "history_{}_records_{}_events_with_index",
        histories.len(),
        events
    );
    group.bench_function(&name, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let dir = tempfile::tempdir().expect("temp dir");
                    rt.block_on(import(&dir, histories.clone()))
                })
                .sum()
        });
    });
    group.finish();
    println!(
        "peak RSS after the import benches: {} MiB",
        peak_rss_kib() / 1024
    );
    let rows: Vec<(String, i64, String, String)> = histories
        .iter()
        .flat_map(|h| {
            h.events().iter().enumerate().map(|(i, e)| {
                (
                    h.stream().to_string(),
                    i as i64 + 1,
                    e.event.event_type().to_string(),
                    e.event.to_payload().expect("encodes").to_string(),
                )
            })
        })
        .collect();
    let mut raw_group = c.benchmark_group("import/sqlite_full_raw");
    raw_group.sample_size(10);
    raw_group.throughput(Throughput::Elements(events as u64));
    raw_group.bench_function(format!("insert_{events}_rows_one_transaction"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| raw(&tempfile::tempdir().expect("temp dir"), &rows))
                .sum()
        });
    });
    raw_group.finish();
}

criterion_group!(benches, bulk_import);
criterion_main!(benches);
