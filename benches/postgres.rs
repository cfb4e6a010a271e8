//! PostgreSQL store benchmarks, each beside a raw tokio-postgres baseline doing the same
//! inserts or reads with the same concurrency (`store/postgres/...` vs `store/postgres_raw/...`):
//! single appends, one `append_batch` of 1,000 streams (beside one multi-row insert), reading
//! a stream of 10,000 events and catching up on them (beside the same queries decoding the
//! same columns with the driver only).
//!
//! Command throughput (`desk/postgres/commands_300_w{1,8,32}`): 1, 8 or 32 writers, each
//! running 300 commands on its own incident (a log, then notes) through `CommandHandler` with
//! an aggregate cache, on a store with a connection per writer; beside as many raw writers each
//! inserting 300 event rows like the commands' in single-row transactions
//! (`desk/postgres_raw/...`). The rates and their ratio are printed at the end of the group.
//! Under `--test` each writer runs 10 commands.
//!
//! The record index (`index/postgres/...` vs `index/postgres_raw/...`), on the records of
//! `benches/index.rs` (the SQLite index bench): the first page of a filtered query over 100,000
//! records through `PgRecordIndex` (query built per call, one unprepared round trip, rows
//! decoded from JSON, the next cursor) beside the same SQL sent the same way on a bare copy of
//! the table with plain tokio-postgres (rows left as JSON text); and bulk `apply` (upsert of
//! rows and configuration items and the checkpoint, one statement per batch) beside plain
//! inserts of the same rows into a bare copy of the table. Under `--test` the index benches
//! use 20,000 records.
//!
//! Needs `SMSYS_TEST_DATABASE_URL` (e.g. `host=127.0.0.1 user=postgres dbname=test`); without
//! it the benches are skipped, except under `CI=true`, where that is an error. Works in a fresh
//! schema, dropped at the end. `cargo bench --bench postgres --features postgres -- --test`
//! runs each once.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    reason = "a benchmark binary reports failures by panicking"
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{BenchmarkId, Criterion, Throughput};
use futures::StreamExt;
use serde_json::json;
use smsys_core::records::{Channel, NoteKind, Phase, RecordIndexStore, RecordQuery, RecordRow};
use smsys_core::{
    Actor, CommandHandler, CommandMeta, Context, EventData, EventStore, ExpectedVersion, LogFilter,
    Position, RecordedEvent, StreamAppend, StreamId, Version,
};
use smsys_processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, RandomIds, RecordCommand,
};
use smsys_store::CheckpointName;
use smsys_store::postgres::{PgEventStore, PgRecordIndex};
use smsys_store::testkit::event;
use smsys_store::testkit::records::{desk_rows, queue_query};
use tokio::runtime::Runtime;
use tokio_postgres::types::{Json, Type};

const URL_VAR: &str = "SMSYS_TEST_DATABASE_URL";
const READ_EVENTS: usize = 10_000;

fn payload(i: usize) -> serde_json::Value {
    json!({"summary": "printer on fire", "impact": 2, "urgency": 1, "n": i})
}

fn events(n: usize) -> Vec<EventData> {
    (0..n)
        .map(|i| event("incident.logged", payload(i)))
        .collect()
}

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("raw connection");
    tokio::spawn(connection);
    client
}

/// A raw writer: inserts the same rows into a copy of the events table, one autocommit
/// statement per append, no stream row, no lock, no hash chain.
struct RawWriter {
    client: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
    stream: String,
    version: i64,
}

impl RawWriter {
    async fn new(url: &str, schema: &str, stream: String) -> Self {
        let client = raw(url).await;
        let insert = client
            .prepare(&format!(
                "INSERT INTO \"{schema}\".raw_events (tx_id, stream_id, version, category, event_id,
                     event_type, schema_version, tenant, payload, recorded_at, previous_hash, hash,
                     occurred_us, actor)
                 SELECT pg_current_xact_id()::text::bigint, $1, u.version, 'bench', u.event_id,
                        u.event_type, 1, NULL, u.payload, now(), NULL, $2, u.occurred_us, u.actor
                 FROM unnest($3::bigint[], $4::uuid[], $5::text[], $6::json[], $7::bigint[],
                             $8::text[])
                      AS u(version, event_id, event_type, payload, occurred_us, actor)"
            ))
            .await
            .expect("prepare raw insert");
        Self {
            client,
            insert,
            stream,
            version: 0,
        }
    }

    async fn append(&mut self, batch: &[EventData]) {
        let versions: Vec<i64> = (1..=batch.len() as i64).map(|i| self.version + i).collect();
        let ids: Vec<uuid::Uuid> = batch.iter().map(|e| e.event_id().as_uuid()).collect();
        let types: Vec<&str> = batch.iter().map(|e| e.event_type().as_str()).collect();
        let payloads: Vec<Json<&serde_json::Value>> =
            batch.iter().map(|e| Json(e.payload())).collect();
        let occurred: Vec<i64> = batch
            .iter()
            .map(|e| e.metadata().occurred_at().timestamp_micros())
            .collect();
        let actors: Vec<&str> = batch
            .iter()
            .map(|e| e.metadata().actor().as_str())
            .collect();
        let hash = [7_u8; 32].as_slice();
        let n = self
            .client
            .execute(
                &self.insert,
                &[
                    &self.stream,
                    &hash,
                    &versions,
                    &ids,
                    &types,
                    &payloads,
                    &occurred,
                    &actors,
                ],
            )
            .await
            .expect("raw insert");
        assert_eq!(n as usize, batch.len());
        self.version += batch.len() as i64;
    }
}

struct Bench {
    rt: Runtime,
    url: String,
    schema: String,
    store: Arc<PgEventStore>,
}

/// `iters` batches of `size` events, dealt out as evenly as possible among `writers`.
fn split_batches(writers: usize, size: usize, iters: u64) -> Vec<Vec<Vec<EventData>>> {
    (0..writers)
        .map(|w| {
            let mine = iters / writers as u64 + u64::from((w as u64) < iters % writers as u64);
            (0..mine).map(|_| events(size)).collect()
        })
        .collect()
}

impl Bench {
    /// `writers` store tasks, each appending `size`-event batches to its own stream; `iters`
    /// appends in all. Returns the elapsed time.
    fn store_appends(&self, writers: usize, size: usize, iters: u64, round: &mut u64) -> Duration {
        *round += 1;
        let round = *round;
        self.rt.block_on(async {
            let batches = split_batches(writers, size, iters);
            let start = Instant::now();
            let tasks: Vec<_> = batches
                .into_iter()
                .enumerate()
                .map(|(w, mine)| {
                    let store = Arc::clone(&self.store);
                    tokio::spawn(async move {
                        let stream: StreamId = format!("bench-s{size}w{writers}r{round}t{w}")
                            .parse()
                            .expect("valid stream");
                        let mut version = None;
                        for batch in mine {
                            let expected =
                                version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                            let r = store
                                .append(&stream, expected, batch)
                                .await
                                .expect("append succeeds");
                            version = Some(r.version);
                        }
                        version
                    })
                })
                .collect();
            let mut total = 0;
            for t in tasks {
                total += t.await.expect("writer").map_or(0, Version::get);
            }
            let elapsed = start.elapsed();
            assert_eq!(total, iters * size as u64, "every event appended");
            elapsed
        })
    }

    fn raw_appends(&self, writers: usize, size: usize, iters: u64, round: &mut u64) -> Duration {
        *round += 1;
        let round = *round;
        self.rt.block_on(async {
            let mut raws = Vec::new();
            for w in 0..writers {
                let stream = format!("raw-s{size}w{writers}r{round}t{w}");
                raws.push(RawWriter::new(&self.url, &self.schema, stream).await);
            }
            let batches = split_batches(writers, size, iters);
            let start = Instant::now();
            let tasks: Vec<_> = raws
                .into_iter()
                .zip(batches)
                .map(|(mut writer, mine)| {
                    tokio::spawn(async move {
                        for batch in &mine {
                            writer.append(batch).await;
                        }
                        writer.version
                    })
                })
                .collect();
            let mut total = 0;
            for t in tasks {
                total += t.await.expect("raw writer");
            }
            let elapsed = start.elapsed();
            assert_eq!(total as u64, iters * size as u64);
            elapsed
        })
    }
}

fn appends(c: &mut Criterion, bench: &Bench) {
    for (size, writers) in [(1, 1), (1, 8), (100, 1)] {
        let name = format!("append_{size}_w{writers}");
        let mut group = c.benchmark_group("store");
        group.throughput(Throughput::Elements(size as u64));
        let mut round = 0;
        group.bench_function(BenchmarkId::new("postgres", &name), |b| {
            b.iter_custom(|iters| bench.store_appends(writers, size, iters, &mut round));
        });
        group.bench_function(BenchmarkId::new("postgres_raw", &name), |b| {
            b.iter_custom(|iters| bench.raw_appends(writers, size, iters, &mut round));
        });
        group.finish();
    }
}

/// The metadata columns of a raw row, as the driver gives them.
type RawMetadata<'a> = (
    uuid::Uuid,
    Option<&'a str>,
    i64,
    &'a str,
    Option<uuid::Uuid>,
    Option<uuid::Uuid>,
    Option<serde_json::Value>,
);

fn raw_metadata(row: &tokio_postgres::Row) -> RawMetadata<'_> {
    (
        row.get(10),
        row.get(11),
        row.get(12),
        row.get(13),
        row.get(14),
        row.get(15),
        row.get(16),
    )
}

/// Parts of the batch bench, and events per part.
const BATCH_PARTS: usize = 1_000;
const BATCH_PART_EVENTS: usize = 5;

/// One `append_batch` of 1,000 new streams of 5 events, beside one raw multi-row insert of
/// the same rows (one statement, one transaction, no stream rows, no chain).
fn batches(c: &mut Criterion, bench: &Bench) {
    let name = format!("append_batch_{BATCH_PARTS}x{BATCH_PART_EVENTS}");
    let events_per_batch = (BATCH_PARTS * BATCH_PART_EVENTS) as u64;
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(events_per_batch));
    group.sample_size(10);
    let mut round = 0_u64;
    group.bench_function(BenchmarkId::new("postgres", &name), |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let parts: Vec<StreamAppend> = (0..BATCH_PARTS)
                    .map(|p| {
                        StreamAppend::new(
                            format!("batch-r{round}p{p}").parse().expect("valid stream"),
                            ExpectedVersion::NoStream,
                            events(BATCH_PART_EVENTS),
                        )
                    })
                    .collect();
                let started = Instant::now();
                let results = bench.rt.block_on(bench.store.append_batch(parts));
                elapsed += started.elapsed();
                assert!(results.iter().all(|r| {
                    r.as_ref()
                        .is_ok_and(|r| r.version == Version::new(BATCH_PART_EVENTS as u64))
                }));
            }
            elapsed
        });
    });
    let client = bench.rt.block_on(raw(&bench.url));
    let insert = bench
        .rt
        .block_on(client.prepare(&format!(
            "INSERT INTO \"{}\".raw_events (tx_id, stream_id, version, category, event_id,
                 event_type, schema_version, tenant, payload, recorded_at, previous_hash, hash,
                 occurred_us, actor)
             SELECT pg_current_xact_id()::text::bigint, u.stream_id, u.version, 'bench',
                    u.event_id, u.event_type, 1, NULL, u.payload, now(), NULL, $1,
                    u.occurred_us, u.actor
             FROM unnest($2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::json[],
                         $7::bigint[], $8::text[])
                  AS u(stream_id, version, event_id, event_type, payload, occurred_us, actor)",
            bench.schema
        )))
        .expect("prepare raw batch insert");
    group.bench_function(BenchmarkId::new("postgres_raw", &name), |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let rows: Vec<(String, i64, EventData)> = (0..BATCH_PARTS)
                    .flat_map(|p| {
                        let stream = format!("rawbatch-r{round}p{p}");
                        events(BATCH_PART_EVENTS)
                            .into_iter()
                            .zip(1..)
                            .map(move |(e, v)| (stream.clone(), v, e))
                    })
                    .collect();
                let started = Instant::now();
                let streams: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
                let versions: Vec<i64> = rows.iter().map(|r| r.1).collect();
                let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.2.event_id().as_uuid()).collect();
                let types: Vec<&str> = rows.iter().map(|r| r.2.event_type().as_str()).collect();
                let payloads: Vec<Json<&serde_json::Value>> =
                    rows.iter().map(|r| Json(r.2.payload())).collect();
                let occurred: Vec<i64> = rows
                    .iter()
                    .map(|r| r.2.metadata().occurred_at().timestamp_micros())
                    .collect();
                let actors: Vec<&str> = rows
                    .iter()
                    .map(|r| r.2.metadata().actor().as_str())
                    .collect();
                let hash = [7_u8; 32].as_slice();
                let n = bench
                    .rt
                    .block_on(client.execute(
                        &insert,
                        &[
                            &hash, &streams, &versions, &ids, &types, &payloads, &occurred, &actors,
                        ],
                    ))
                    .expect("raw batch insert");
                elapsed += started.elapsed();
                assert_eq!(n, events_per_batch);
            }
            elapsed
        });
    });
    group.finish();
}

/// Commands each writer runs in the command benches (a log and notes); fewer under `--test`.
const COMMANDS: usize = 300;
const COMMANDS_TEST: usize = 10;

/// Command throughput: `writers` tasks, each running `commands` commands on its own incident
/// (one `IncidentCommand::Log`, then `AddNote`s) through `CommandHandler` with an aggregate
/// cache, on a store with a connection per writer.
struct Desk {
    handler: CommandHandler<IncidentManagement>,
    meta: CommandMeta,
    now: DateTime<Utc>,
    next: AtomicU64,
}

impl Desk {
    fn log(n: u64) -> IncidentCommand {
        IncidentCommand::Log(LogRecord::new(
            format!("INC-{n}").parse().expect("valid reference"),
            "user1".parse().expect("valid person"),
            Channel::Email,
            "email".parse().expect("valid service"),
            "mail bounces",
        ))
    }

    fn note(i: usize) -> IncidentCommand {
        RecordCommand::AddNote {
            kind: NoteKind::WorkNote,
            text: format!("checked the relay, round {i}"),
        }
        .into()
    }

    /// Runs `commands` commands on a new incident; returns its stream.
    async fn record(&self, commands: usize) -> StreamId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let stream: StreamId = format!("incident-INC-{n}").parse().expect("valid stream");
        let ctx = Context::new(self.now, &RandomIds);
        for i in 0..commands {
            let command = if i == 0 { Self::log(n) } else { Self::note(i) };
            let done = self
                .handler
                .execute(&stream, &command, &self.meta, &ctx)
                .await
                .expect("accepted");
            assert_eq!(
                done.append.map(|a| a.version),
                Some(Version::new(i as u64 + 1)),
                "every command records one event"
            );
        }
        stream
    }
}

/// A raw writer of the command bench: single-row autocommit inserts of an event row like the
/// ones the commands record (same payload, metadata columns, hashes), nothing else.
struct RawCommands {
    client: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
}

impl RawCommands {
    async fn new(url: &str, schema: &str) -> Self {
        let client = raw(url).await;
        let insert = client
            .prepare(&format!(
                "INSERT INTO \"{schema}\".raw_desk_events (tx_id, stream_id, version, category,
                     event_id, event_type, schema_version, tenant, payload, recorded_at,
                     previous_hash, hash, occurred_us, actor, correlation_id, causation_id)
                 VALUES (pg_current_xact_id()::text::bigint, $1, $2, 'incident', $3, $4, 1, NULL,
                         $5, now(), $6, $7, $8, $9, $10, $11)"
            ))
            .await
            .expect("prepare raw command insert");
        Self { client, insert }
    }

    async fn record(&self, stream: &str, like: &RecordedEvent, commands: usize) {
        let m = like.data.metadata();
        let hash = like.hash.as_bytes().as_slice();
        for version in 1..=commands as i64 {
            let n = self
                .client
                .execute(
                    &self.insert,
                    &[
                        &stream,
                        &version,
                        &uuid::Uuid::now_v7(),
                        &like.event_type().as_str(),
                        &Json(like.data.payload()),
                        &hash,
                        &hash,
                        &m.occurred_at().timestamp_micros(),
                        &m.actor().as_str(),
                        &m.correlation_id().map(|id| id.as_uuid()),
                        &m.causation_id().map(|id| id.as_uuid()),
                    ],
                )
                .await
                .expect("raw command insert");
            assert_eq!(n, 1);
        }
    }
}

/// Commands (or raw inserts) done and the time they took, by writers and side.
type Rates = BTreeMap<(usize, &'static str), (u64, Duration)>;

/// Commands per second on PostgreSQL with 1, 8 and 32 writers (`desk/postgres/...`), beside
/// raw single-row insert transactions on as many connections (`desk/postgres_raw/...`);
/// prints the rates and their ratio at the end.
fn commands(c: &mut Criterion, rt: &Runtime, url: &str, schema: &str, quick: bool) {
    const WRITERS: [usize; 3] = [1, 8, 32];
    let per_writer = if quick { COMMANDS_TEST } else { COMMANDS };
    let store = rt
        .block_on(
            PgEventStore::builder(url)
                .schema(schema)
                .expect("valid schema")
                .pool_size(WRITERS[2])
                .connect(),
        )
        .expect("the store opens");
    let store = Arc::new(store);
    let desk = Arc::new(Desk {
        handler: CommandHandler::new(store.clone(), IncidentPolicy::default()).with_cache(1024),
        meta: CommandMeta::new(Actor::new("bench").expect("valid")),
        now: DateTime::UNIX_EPOCH + TimeDelta::days(20_000),
        next: AtomicU64::new(1),
    });
    // A note event as the commands record it: the raw writers insert rows like it.
    let like = rt.block_on(async {
        let stream = desk.record(2).await;
        let recorded: Vec<RecordedEvent> = store
            .read_stream(&stream, Version::new(2))
            .map(|e| e.expect("reads"))
            .collect()
            .await;
        raw(url)
            .await
            .batch_execute(&format!(
                "CREATE TABLE \"{schema}\".raw_desk_events
                     (LIKE \"{schema}\".events INCLUDING ALL)"
            ))
            .await
            .expect("raw table");
        recorded.into_iter().next().expect("a note event")
    });
    let like = Arc::new(like);
    let rates: Mutex<Rates> = Mutex::default();

    for writers in WRITERS {
        let ops = (writers * per_writer) as u64;
        let mut group = c.benchmark_group("desk");
        group.throughput(Throughput::Elements(ops));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(if quick { 1 } else { 10 }));
        let name = format!("commands_{per_writer}_w{writers}");
        group.bench_function(BenchmarkId::new("postgres", &name), |b| {
            b.iter_custom(|iters| {
                let elapsed = rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let tasks: Vec<_> = (0..writers)
                            .map(|_| {
                                let desk = Arc::clone(&desk);
                                tokio::spawn(async move { desk.record(per_writer).await })
                            })
                            .collect();
                        for task in tasks {
                            task.await.expect("writer");
                        }
                    }
                    started.elapsed()
                });
                let mut rates = rates.lock().expect("not poisoned");
                let entry = rates.entry((writers, "store")).or_default();
                *entry = (entry.0 + iters * ops, entry.1 + elapsed);
                elapsed
            });
        });
        let raws: Vec<Arc<RawCommands>> = rt.block_on(async {
            let mut raws = Vec::new();
            for _ in 0..writers {
                raws.push(Arc::new(RawCommands::new(url, schema).await));
            }
            raws
        });
        let mut round = 0_u64;
        group.bench_function(BenchmarkId::new("postgres_raw", &name), |b| {
            b.iter_custom(|iters| {
                let elapsed = rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        round += 1;
                        let tasks: Vec<_> = raws
                            .iter()
                            .enumerate()
                            .map(|(w, writer)| {
                                let writer = Arc::clone(writer);
                                let like = Arc::clone(&like);
                                let stream = format!("incident-RAW-w{writers}r{round}t{w}");
                                tokio::spawn(async move {
                                    writer.record(&stream, &like, per_writer).await
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.expect("raw writer");
                        }
                    }
                    started.elapsed()
                });
                let mut rates = rates.lock().expect("not poisoned");
                let entry = rates.entry((writers, "raw")).or_default();
                *entry = (entry.0 + iters * ops, entry.1 + elapsed);
                elapsed
            });
        });
        group.finish();
    }
    let rates = rates.lock().expect("not poisoned");
    let per_second = |key| {
        rates
            .get(&key)
            .map_or(0.0, |(ops, time): &(u64, Duration)| {
                *ops as f64 / time.as_secs_f64()
            })
    };
    for writers in WRITERS {
        let (store_rate, raw_rate) = (per_second((writers, "store")), per_second((writers, "raw")));
        eprintln!(
            "desk/postgres commands, {writers:>2} writers: {store_rate:>8.0} commands/s; raw single-row inserts {raw_rate:>8.0}/s; store/raw {:.2}",
            store_rate / raw_rate
        );
    }
}

fn reads(c: &mut Criterion, bench: &Bench, read_store: &PgEventStore, read_schema: &str) {
    let stream: StreamId = "bench-read".parse().expect("valid stream");
    bench.rt.block_on(async {
        for chunk in 0..READ_EVENTS / 100 {
            let expected = if chunk == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(Version::new(chunk as u64 * 100))
            };
            read_store
                .append(&stream, expected, events(100))
                .await
                .expect("seed the read stream");
        }
    });
    let raw_client = bench.rt.block_on(raw(&bench.url));
    // Statistics as a table in service has them: without, the planner reads the whole rest of
    // the stream and sorts it for every page.
    bench
        .rt
        .block_on(raw_client.batch_execute(&format!("ANALYZE \"{read_schema}\".events")))
        .expect("analyze");
    let cols = "stream_id, version, tx_id, seq, event_type, schema_version, payload, recorded_at, \
                previous_hash, hash, event_id, tenant, occurred_us, actor, correlation_id, \
                causation_id, extensions";

    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(READ_EVENTS as u64));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("postgres", "read_stream_10000"), |b| {
        b.iter(|| {
            bench.rt.block_on(async {
                // Rebuild: fold the stream into a state (here, the sum of the payloads' n).
                let (count, sum) = read_store
                    .read_stream(&stream, Version::FIRST)
                    .fold((0_usize, 0_u64), |(count, sum), e| async move {
                        let e = e.expect("reads");
                        (count + 1, sum + e.data.payload()["n"].as_u64().unwrap_or(0))
                    })
                    .await;
                assert_eq!(count, READ_EVENTS);
                assert_eq!(sum, (READ_EVENTS / 100) as u64 * (0..100).sum::<u64>());
            })
        });
    });
    let by_stream = bench
        .rt
        .block_on(raw_client.prepare(&format!(
            "SELECT {cols} FROM \"{read_schema}\".events WHERE stream_id = $1 AND version >= $2
             ORDER BY version LIMIT 512"
        )))
        .expect("prepare");
    group.bench_function(BenchmarkId::new("postgres_raw", "read_stream_10000"), |b| {
        b.iter(|| {
            bench.rt.block_on(async {
                let (mut count, mut sum, mut from) = (0_usize, 0_u64, 1_i64);
                loop {
                    let rows = raw_client
                        .query(&by_stream, &[&stream.as_str(), &from])
                        .await
                        .expect("raw read");
                    for row in &rows {
                        let payload: serde_json::Value = row.get(6);
                        let _metadata = raw_metadata(row);
                        sum += payload["n"].as_u64().unwrap_or(0);
                        count += 1;
                    }
                    if rows.len() < 512 {
                        break;
                    }
                    from += 512;
                }
                assert_eq!(count, READ_EVENTS);
                assert_eq!(sum, (READ_EVENTS / 100) as u64 * (0..100).sum::<u64>());
            })
        });
    });
    group.bench_function(BenchmarkId::new("postgres", "catch_up_10000"), |b| {
        b.iter(|| {
            bench.rt.block_on(async {
                let got = read_store
                    .subscribe(Position::START, LogFilter::all())
                    .take(READ_EVENTS)
                    .fold(0_usize, |n, e| async move {
                        e.expect("delivered");
                        n + 1
                    })
                    .await;
                assert_eq!(got, READ_EVENTS);
            })
        });
    });
    let by_log = bench
        .rt
        .block_on(raw_client.prepare(&format!(
            "SELECT {cols} FROM \"{read_schema}\".events WHERE (tx_id, seq) > ($1, $2)
             ORDER BY tx_id, seq LIMIT 512"
        )))
        .expect("prepare");
    group.bench_function(BenchmarkId::new("postgres_raw", "catch_up_10000"), |b| {
        b.iter(|| {
            bench.rt.block_on(async {
                let (mut count, mut after) = (0_usize, (0_i64, 0_i64));
                loop {
                    let rows = raw_client
                        .query(&by_log, &[&after.0, &after.1])
                        .await
                        .expect("raw read");
                    for row in &rows {
                        let _payload: serde_json::Value = row.get(6);
                        let _metadata = raw_metadata(row);
                        after = (row.get(2), row.get(3));
                        count += 1;
                    }
                    if rows.len() < 512 {
                        break;
                    }
                }
                assert_eq!(count, READ_EVENTS);
            })
        });
    });
    group.finish();
}

/// Records of the index benches (20,000 under `--test`, where each bench runs once).
const RECORDS: usize = 100_000;
const RECORDS_TEST: usize = 20_000;
fn queue_matches(row: &RecordRow) -> bool {
    row.record_type == *"incident"
        && row.phase.is_open()
        && row.priority.is_some_and(|p| p.get() <= 2)
        && row.group.as_ref().is_some_and(|g| g == "group-07")
}

/// Open records whose summary mentions a printer, newest first: a search box.
fn search_query() -> RecordQuery {
    RecordQuery {
        text: Some("PRINTER".to_owned()),
        limit: 50,
        ..RecordQuery::open()
    }
}

fn search_matches(row: &RecordRow) -> bool {
    row.phase.is_open() && row.summary.to_ascii_lowercase().contains("printer")
}

/// The statements `PgRecordIndex` builds for the two queries (one value of a list is compared
/// with `=`), on the bare table (rows read as JSON text).
fn queue_sql(schema: &str) -> String {
    format!(
        "SELECT r.row_json::text FROM \"{schema}\".raw_record_index r WHERE r.index_name = $1 \
         AND r.record_type = $2 AND r.phase = ANY($3) AND r.priority_rank = ANY($4) \
         AND r.group_id = $5 ORDER BY r.due_us, r.stream_id LIMIT $6"
    )
}

fn search_sql(schema: &str) -> String {
    format!(
        "SELECT r.row_json::text FROM \"{schema}\".raw_record_index r WHERE r.index_name = $1 \
         AND r.phase = ANY($2) AND position($3 IN r.summary_folded) > 0 \
         ORDER BY r.logged_us DESC, r.stream_id DESC LIMIT $4"
    )
}

/// The bare copy of the index's table (same columns and indexes, no store around it) and a
/// plain insert of the same rows, one statement per batch.
struct RawIndex {
    client: tokio_postgres::Client,
    schema: String,
}

impl RawIndex {
    async fn new(url: &str, schema: &str) -> Self {
        let client = raw(url).await;
        client
            .batch_execute(&format!(
                "CREATE TABLE \"{schema}\".raw_record_index
                     (LIKE \"{schema}\".record_index INCLUDING ALL)"
            ))
            .await
            .expect("raw index table");
        Self {
            client,
            schema: schema.to_owned(),
        }
    }

    async fn insert(&self, name: &str, rows: &[RecordRow]) {
        let json: Vec<Json<&RecordRow>> = rows.iter().map(Json).collect();
        let n = self
            .client
            .execute(
                &format!(
                    "INSERT INTO \"{}\".raw_record_index (index_name, stream_id, record_type,
                         status, phase, priority_rank, service, group_id, person,
                         summary_folded, breached, logged_us, due_us, row_json)
                     SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],
                         $6::int2[], $7::text[], $8::text[], $9::text[], $10::bytea[],
                         $11::bool[], $12::int8[], $13::int8[], $14::json[]) AS u",
                    self.schema
                ),
                &[
                    &name,
                    &rows.iter().map(|r| r.stream.as_str()).collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|r| r.record_type.as_str())
                        .collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.phase.as_str()).collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|r| r.priority.map_or(6, |p| i16::from(p.get())))
                        .collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.service.as_str()).collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|r| r.group.as_ref().map(|g| g.as_str()))
                        .collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|r| r.person.as_ref().map(|p| p.as_str()))
                        .collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|r| r.summary.to_ascii_lowercase().into_bytes())
                        .collect::<Vec<_>>(),
                    &rows.iter().map(RecordRow::breached).collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|r| r.logged_at.timestamp_micros())
                        .collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|r| r.earliest_due().map_or(i64::MAX, |d| d.timestamp_micros()))
                        .collect::<Vec<_>>(),
                    &json,
                ],
            )
            .await
            .expect("raw insert");
        assert_eq!(n as usize, rows.len());
    }

    async fn truncate(&self) {
        self.client
            .batch_execute(&format!("TRUNCATE \"{}\".raw_record_index", self.schema))
            .await
            .expect("truncate");
    }
}

/// Loads `rows` into `index` in batches of 10,000.
async fn load(index: &PgRecordIndex, rows: &[RecordRow]) {
    for (n, chunk) in rows.chunks(10_000).enumerate() {
        index
            .apply(chunk.to_vec(), Position::from_sequence(n as u64 + 1))
            .await
            .expect("applies");
    }
}

/// `100k` for 100,000 rows.
fn thousands(rows: &[RecordRow]) -> String {
    format!("{}k", rows.len() / 1_000)
}

fn index_queries(c: &mut Criterion, bench: &Bench, rows: &[RecordRow]) {
    let k = thousands(rows);
    let index = bench
        .store
        .record_index(CheckpointName::new("record_index.v1").expect("valid"));
    let schema = &bench.schema;
    let raw_index = bench.rt.block_on(async {
        load(&index, rows).await;
        assert_eq!(
            index.count(&RecordQuery::new()).await.expect("counts"),
            rows.len() as u64
        );
        let raw_index = RawIndex::new(&bench.url, schema).await;
        raw_index
            .client
            .batch_execute(&format!(
                "INSERT INTO \"{schema}\".raw_record_index SELECT * FROM \"{schema}\".record_index;
                 ANALYZE \"{schema}\".record_index; ANALYZE \"{schema}\".record_index_cis;
                 ANALYZE \"{schema}\".raw_record_index;"
            ))
            .await
            .expect("copy and analyze");
        raw_index
    });
    let queue = queue_query();
    let queue_count = rows.iter().filter(|r| queue_matches(r)).count() as u64;
    assert!(queue_count > 100, "the queue spans pages: {queue_count}");
    let search = search_query();
    let search_count = rows.iter().filter(|r| search_matches(r)).count() as u64;
    assert!(search_count > 100, "the search spans pages: {search_count}");

    let mut group = c.benchmark_group("index/postgres");
    for (name, query, matches, count) in [
        (
            format!("query_open_p1p2_group_by_due_{k}"),
            &queue,
            queue_matches as fn(&RecordRow) -> bool,
            queue_count,
        ),
        (
            format!("query_open_text_newest_{k}"),
            &search,
            search_matches,
            search_count,
        ),
    ] {
        group.bench_function(&name, |b| {
            b.to_async(&bench.rt).iter(|| async {
                let page = index.query(query).await.expect("queries");
                assert_eq!(page.rows.len(), 50);
                assert!(page.rows.iter().all(matches));
                assert!(page.next.is_some());
                page
            });
        });
        assert_eq!(
            bench.rt.block_on(index.count(query)).expect("counts"),
            count
        );
    }
    group.bench_function(format!("count_open_p1p2_group_{k}"), |b| {
        b.to_async(&bench.rt).iter(|| async {
            let n = index.count(&queue).await.expect("counts");
            assert_eq!(n, queue_count);
            n
        });
    });
    group.finish();

    // Sent as the store sends them: unprepared, typed parameters, planned for their values
    // (a prepared statement's generic plan could not use the partial index of open records).
    let client = &raw_index.client;
    let (queue_sql, search_sql) = (queue_sql(schema), search_sql(schema));
    let open: Vec<&str> = [Phase::New, Phase::Active, Phase::Pending]
        .iter()
        .map(|p| p.as_str())
        .collect();
    let ranks = vec![1_i16, 2];
    let printer = b"printer".to_vec();
    let raw_queue = || async {
        client
            .query_typed(
                &queue_sql,
                &[
                    (&"record_index.v1", Type::TEXT),
                    (&"incident", Type::TEXT),
                    (&open, Type::TEXT_ARRAY),
                    (&ranks, Type::INT2_ARRAY),
                    (&"group-07", Type::TEXT),
                    (&51_i64, Type::INT8),
                ],
            )
            .await
            .expect("raw query")
    };
    let raw_search = || async {
        client
            .query_typed(
                &search_sql,
                &[
                    (&"record_index.v1", Type::TEXT),
                    (&open, Type::TEXT_ARRAY),
                    (&printer, Type::BYTEA),
                    (&51_i64, Type::INT8),
                ],
            )
            .await
            .expect("raw query")
    };
    let mut group = c.benchmark_group("index/postgres_raw");
    group.bench_function(format!("query_open_p1p2_group_by_due_{k}"), |b| {
        b.to_async(&bench.rt).iter(|| async {
            let rows = raw_queue().await;
            assert_eq!(rows.len(), 51);
            rows.iter()
                .map(|r| r.get::<_, &str>(0).len())
                .sum::<usize>()
        });
    });
    group.bench_function(format!("query_open_text_newest_{k}"), |b| {
        b.to_async(&bench.rt).iter(|| async {
            let rows = raw_search().await;
            assert_eq!(rows.len(), 51);
            rows.iter()
                .map(|r| r.get::<_, &str>(0).len())
                .sum::<usize>()
        });
    });
    group.finish();

    // The raw SQL is the store's: it selects the same page.
    bench.rt.block_on(async {
        for (raw_rows, query) in [(raw_queue().await, &queue), (raw_search().await, &search)] {
            let decoded: Vec<RecordRow> = raw_rows[..50]
                .iter()
                .map(|r| serde_json::from_str(r.get::<_, &str>(0)).expect("a row"))
                .collect();
            assert_eq!(decoded, index.query(query).await.expect("queries").rows);
        }
    });
}

fn index_apply(c: &mut Criterion, bench: &Bench, rows: &[RecordRow], apply_schema: &str) {
    let k = thousands(rows);
    let store = bench.rt.block_on(async {
        PgEventStore::builder(bench.url.as_str())
            .schema(apply_schema)
            .expect("valid schema")
            .pool_size(2)
            .connect()
            .await
            .expect("the store opens")
    });
    let index = store.record_index(CheckpointName::new("record_index.v1").expect("valid"));
    let raw_index = bench.rt.block_on(RawIndex::new(&bench.url, apply_schema));
    let truncate = || async {
        raw_index
            .client
            .batch_execute(&format!(
                "TRUNCATE \"{apply_schema}\".record_index, \"{apply_schema}\".record_index_cis"
            ))
            .await
            .expect("truncate");
    };

    let mut group = c.benchmark_group("index/postgres");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(rows.len() as u64));
    for batch in [512, 10_000] {
        group.bench_function(format!("apply_{k}_batches_of_{batch}"), |b| {
            b.to_async(&bench.rt).iter_custom(|iters| {
                let index = &index;
                let truncate = &truncate;
                async move {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iters {
                        truncate().await;
                        let batches: Vec<Vec<RecordRow>> =
                            rows.chunks(batch).map(<[RecordRow]>::to_vec).collect();
                        let started = Instant::now();
                        for (n, chunk) in batches.into_iter().enumerate() {
                            index
                                .apply(chunk, Position::from_sequence(n as u64 + 1))
                                .await
                                .expect("applies");
                        }
                        elapsed += started.elapsed();
                        assert_eq!(
                            index.count(&RecordQuery::new()).await.expect("counts"),
                            rows.len() as u64
                        );
                        assert_eq!(
                            index.checkpoint().await.expect("reads"),
                            Some(Position::from_sequence(rows.len().div_ceil(batch) as u64))
                        );
                    }
                    elapsed
                }
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("index/postgres_raw");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(rows.len() as u64));
    for batch in [512, 10_000] {
        group.bench_function(format!("insert_{k}_batches_of_{batch}"), |b| {
            b.to_async(&bench.rt).iter_custom(|iters| {
                let raw_index = &raw_index;
                async move {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iters {
                        raw_index.truncate().await;
                        let started = Instant::now();
                        for chunk in rows.chunks(batch) {
                            raw_index.insert("record_index.v1", chunk).await;
                        }
                        elapsed += started.elapsed();
                    }
                    elapsed
                }
            });
        });
    }
    group.finish();
    drop(index);
    drop(store);
}

fn main() {
    let url = match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{URL_VAR} is not set but CI=true: the PostgreSQL benches must run in CI")
        }
        _ => {
            eprintln!(
                "skipped: {URL_VAR} is not set (e.g. 'host=127.0.0.1 user=postgres dbname=test')"
            );
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let id = uuid::Uuid::now_v7().simple().to_string()[16..].to_owned();
    let schema = format!("smsys_bench_{id}");
    let read_schema = format!("smsys_bench_read_{id}");
    let apply_schema = format!("smsys_bench_apply_{id}");
    let desk_schema = format!("smsys_bench_desk_{id}");
    let open = |schema: &str| {
        rt.block_on(
            PgEventStore::builder(url.as_str())
                .schema(schema)
                .expect("valid schema")
                .pool_size(8)
                .connect(),
        )
        .expect("the store opens")
    };
    let store = Arc::new(open(&schema));
    let read_store = open(&read_schema);
    rt.block_on(async {
        raw(&url)
            .await
            .batch_execute(&format!(
                "CREATE TABLE \"{schema}\".raw_events (LIKE \"{schema}\".events INCLUDING ALL)"
            ))
            .await
            .expect("raw table");
    });
    let bench = Bench {
        rt,
        url: url.clone(),
        schema: schema.clone(),
        store,
    };

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let quick = std::env::args().any(|a| a == "--test");
    appends(&mut c, &bench);
    batches(&mut c, &bench);
    reads(&mut c, &bench, &read_store, &read_schema);
    commands(&mut c, &bench.rt, &url, &desk_schema, quick);
    let rows = desk_rows(if quick { RECORDS_TEST } else { RECORDS });
    index_queries(&mut c, &bench, &rows);
    index_apply(&mut c, &bench, &rows, &apply_schema);
    c.final_summary();

    drop(read_store);
    let Bench { rt, store, .. } = bench;
    drop(store);
    rt.block_on(async {
        raw(&url)
            .await
            .batch_execute(&format!(
                "DROP SCHEMA \"{schema}\" CASCADE; DROP SCHEMA \"{read_schema}\" CASCADE;
                 DROP SCHEMA IF EXISTS \"{apply_schema}\" CASCADE;
                 DROP SCHEMA IF EXISTS \"{desk_schema}\" CASCADE"
            ))
            .await
            .expect("drop bench schemas");
    });
}
