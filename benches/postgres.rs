//! PostgreSQL store benchmarks, each beside a raw tokio-postgres baseline doing the same
//! inserts or reads with the same concurrency (`store/postgres/...` vs `store/postgres_raw/...`).
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use futures::StreamExt;
use serde_json::json;
use smsys_core::{EventData, EventStore, ExpectedVersion, LogFilter, Position, StreamId, Version};
use smsys_store::postgres::PgEventStore;
use smsys_store::testkit::event;
use tokio::runtime::Runtime;
use tokio_postgres::types::Json;

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
                     event_type, schema_version, tenant, payload, metadata, recorded_at,
                     previous_hash, hash)
                 SELECT pg_current_xact_id()::text::bigint, $1, u.version, 'bench', u.event_id,
                        u.event_type, 1, NULL, u.payload, u.metadata, now(), NULL, $2
                 FROM unnest($3::bigint[], $4::uuid[], $5::text[], $6::json[], $7::json[])
                      AS u(version, event_id, event_type, payload, metadata)"
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
        let metadata: Vec<Json<&smsys_core::Metadata>> =
            batch.iter().map(|e| Json(e.metadata())).collect();
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
                    &metadata,
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
    let cols = "stream_id, version, tx_id, seq, event_type, schema_version, payload, metadata, \
                recorded_at, previous_hash, hash";

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
                        let _metadata: serde_json::Value = row.get(7);
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
                        let _metadata: serde_json::Value = row.get(7);
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
    appends(&mut c, &bench);
    reads(&mut c, &bench, &read_store, &read_schema);
    c.final_summary();

    drop(read_store);
    let Bench { rt, store, .. } = bench;
    drop(store);
    rt.block_on(async {
        raw(&url)
            .await
            .batch_execute(&format!(
                "DROP SCHEMA \"{schema}\" CASCADE; DROP SCHEMA \"{read_schema}\" CASCADE"
            ))
            .await
            .expect("drop bench schemas");
    });
}
