//! Batched appends ([`EventStore::append_batch`](smsys_core::EventStore::append_batch)): the
//! parts of a batch are written in as few transactions as the limits below allow, each in
//! two round trips on one connection.
//!
//! A transaction ("chunk") runs:
//! 1. `BEGIN`, the advisory lock of every stream of the chunk (the same lock a single locked
//!    append takes) in the order of the lock keys, and the streams' heads, pipelined. The locks
//!    come before the first write, so the transaction takes its id only after every writer it
//!    waited for has committed: the log order rule of single appends holds (see `append`), and
//!    since every batch locks in key order, batches over the same streams in any order never
//!    deadlock.
//! 2. The parts are checked in order against the heads, each seeing the parts before it (a
//!    stream named twice sees its earlier part), and hashed. A refused part gets its own
//!    answer and is not written; it never undoes its neighbours.
//! 3. The stream rows (one statement, in stream order), the events of every accepted part (one
//!    multi-row insert from arrays, in batch order, so positions follow the batch) and
//!    `COMMIT`, pipelined.
//!
//! Retries and races: as with single appends, new event ids cost no lookup. If an id is taken,
//! the insert fails on the `event_id` key, the transaction rolls back and the chunk is run
//! again with every id looked up first, so each part is answered by
//! [`resolve_append_retry`](smsys_core::resolve_append_retry): a part that repeats exactly one
//! earlier append (or part: each part is an append of its own, its boundary stored as
//! `append_len`) gets its original result. A
//! refused part's ids are looked up the same way (it may be the retry of an append that moved
//! the stream on). Every writer of this store takes the stream locks before writing, so no
//! writer gets in between the heads and the write; one that does not (a node of an older
//! release, a hand-written statement) makes the chunk's insert fail on the `(stream_id,
//! version)` key, and the chunk rolls back and runs again, as it does when PostgreSQL picks it
//! as a deadlock victim (only possible when event ids are reused across concurrent writers)
//! or reports a serialization failure.
//!
//! While a chunk's transaction is open it holds back delivery to every subscriber (the gate
//! of the log order, see the store's docs): chunks stay small enough to commit in a fraction
//! of a second.
//!
//! Atomicity is per part, as the contract promises: a batch larger than the limits is split
//! into several transactions at part boundaries (never inside a part), and a part whose event
//! ids repeat those of an earlier part of the same chunk starts the next chunk, so it is
//! checked against the committed earlier part. If a chunk fails (a lost connection, a failed
//! `COMMIT` whose outcome is unknown), its parts and every later part report the failure as
//! transient and nothing more is attempted: send the batch again with the same ids, and the
//! parts that did commit are recognised.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use smsys_core::chain::event_hash;
use smsys_core::{
    AppendError, AppendResult, BackendError, EventData, EventHash, EventId, ExpectedVersion,
    Position, StoreError, StreamAppend, StreamId, Version, check_append_shape, to_micros,
};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::append::{Appender, BEGIN, InTransaction, Rows, backoff, payload_text, to_i64};
use super::error::{BACKEND, Class, class_of, is_contention, pool_error, store_error};
use super::rows::{Recorded, append_lens, column, hash, unsigned};

/// Most events one transaction of a batch writes.
pub(crate) const CHUNK_EVENTS: usize = 5_000;
/// Most streams one transaction of a batch locks. Advisory locks live in PostgreSQL's shared
/// lock table (`max_locks_per_transaction` x `max_connections` entries, 6,400 by default,
/// shared by every session), so a chunk must not take thousands.
pub(crate) const CHUNK_STREAMS: usize = 500;
/// Most payload bytes one transaction of a batch sends.
pub(crate) const CHUNK_BYTES: usize = 16 << 20;
/// Runs of one chunk when it races with single appends or is picked as a deadlock victim.
const CHUNK_ATTEMPTS: usize = 16;

type Outcome = Result<AppendResult, AppendError>;

/// A part of the batch that passed the shape check, with its payloads as JSON text.
struct Part {
    index: usize,
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<EventData>,
    payloads: Vec<String>,
}

/// Splits `parts` into chunks at part boundaries (see the module docs).
fn chunks(parts: Vec<Part>) -> Vec<Vec<Part>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<Part> = Vec::new();
    let (mut events, mut bytes) = (0, 0);
    let mut streams: HashSet<StreamId> = HashSet::new();
    let mut ids: HashSet<EventId> = HashSet::new();
    for part in parts {
        let part_bytes: usize = part.payloads.iter().map(String::len).sum();
        let new_stream = usize::from(!streams.contains(&part.stream));
        let full = events + part.events.len() > CHUNK_EVENTS
            || bytes + part_bytes > CHUNK_BYTES
            || streams.len() + new_stream > CHUNK_STREAMS
            || part.events.iter().any(|e| ids.contains(&e.event_id()));
        if full && !chunk.is_empty() {
            chunks.push(std::mem::take(&mut chunk));
            (events, bytes) = (0, 0);
            streams.clear();
            ids.clear();
        }
        events += part.events.len();
        bytes += part_bytes;
        streams.insert(part.stream.clone());
        ids.extend(part.events.iter().map(EventData::event_id));
        chunk.push(part);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

/// How one run of a chunk ended.
enum Run {
    /// Every part is answered; `wrote` says whether anything was committed.
    Done { outcomes: Vec<Outcome>, wrote: bool },
    /// An event id is stored already: run again, looking ids up first.
    IdTaken,
    /// Another writer got in between, or a deadlock: run again.
    Again,
}

/// What the checks decided for a part.
enum Plan {
    /// Written: its rows are `rows` of the chunk's arrays, its last version `version`.
    Write {
        rows: std::ops::Range<usize>,
        version: Version,
    },
    /// Answered without writing.
    Answer(Outcome),
    /// Refused by its expected version (`actual`) unless its ids show a retry.
    Check { actual: Option<Version> },
}

impl Appender<'_> {
    /// Appends every part of `appends` (see the module docs); `committed` runs after each
    /// transaction that wrote events.
    pub(crate) async fn append_batch(
        &self,
        appends: Vec<StreamAppend>,
        committed: &(dyn Fn() + Sync),
    ) -> Vec<Outcome> {
        let total = appends.len();
        let mut answered: Vec<(usize, Outcome)> = Vec::with_capacity(total);
        let mut parts = Vec::with_capacity(total);
        for (index, append) in appends.into_iter().enumerate() {
            let StreamAppend {
                stream,
                expected,
                events,
            } = append;
            if let Err(refused) = check_append_shape(&stream, &events) {
                answered.push((index, Err(refused)));
                continue;
            }
            match events.iter().map(payload_text).collect() {
                Ok(payloads) => parts.push(Part {
                    index,
                    stream,
                    expected,
                    events,
                    payloads,
                }),
                Err(error) => answered.push((index, Err(error.into()))),
            }
        }
        let mut failed = false;
        for chunk in chunks(parts) {
            if failed {
                answered.extend(chunk.iter().map(|part| (part.index, Err(not_attempted()))));
                continue;
            }
            match self.chunk(&chunk).await {
                Ok((outcomes, wrote)) => {
                    if wrote {
                        committed();
                    }
                    answered.extend(chunk.iter().map(|part| part.index).zip(outcomes));
                }
                Err(error) => {
                    tracing::debug!(%error, parts = chunk.len(), "a batch's transaction failed");
                    let error = Arc::new(error);
                    answered.extend(chunk.iter().map(|part| (part.index, Err(shared(&error)))));
                    failed = true;
                }
            }
        }
        answered.sort_by_key(|(index, _)| *index);
        answered.into_iter().map(|(_, outcome)| outcome).collect()
    }

    /// Runs one chunk until it is answered: again after a race or a deadlock, and with ids
    /// looked up once one was found taken.
    async fn chunk(&self, chunk: &[Part]) -> Result<(Vec<Outcome>, bool), StoreError> {
        let mut lookup = false;
        for attempt in 0..CHUNK_ATTEMPTS {
            match self.run(chunk, lookup).await? {
                Run::Done { outcomes, wrote } => return Ok((outcomes, wrote)),
                Run::IdTaken => lookup = true,
                Run::Again => {
                    tracing::debug!(attempt, "a batch's transaction raced, running it again");
                    // Let the writer in between finish; grows with each attempt.
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Err(StoreError::Backend(BackendError::new(
            BACKEND,
            "append",
            true,
            "a batch's transaction kept racing with other writers",
        )))
    }

    /// One transaction for `chunk`.
    async fn run(&self, chunk: &[Part], lookup: bool) -> Result<Run, StoreError> {
        let op = |e| store_error("append", e);
        let client = self.pool.get().await.map_err(|e| pool_error("append", e))?;
        let q = self.queries;
        let (lock, heads, by_id, upsert, insert) = tokio::try_join!(
            client.prepare_cached(&q.lock_streams),
            client.prepare_cached(&q.stream_heads),
            client.prepare_cached(&q.events_by_id),
            client.prepare_cached(&q.upsert_streams),
            client.prepare_cached(&q.insert_batch),
        )
        .map_err(op)?;
        let tx = InTransaction::new(client);
        let client = tx.client()?;

        // Round trip 1: begin, lock the streams, read their heads (and the stored ids).
        let mut streams: Vec<&str> = chunk.iter().map(|p| p.stream.as_str()).collect();
        streams.sort_unstable();
        streams.dedup();
        let ids: Vec<Uuid> = if lookup {
            ids_of(chunk.iter())
        } else {
            Vec::new()
        };
        let lock_params: [&(dyn ToSql + Sync); 2] = [&streams, &self.lock_prefix];
        let stream_params: [&(dyn ToSql + Sync); 1] = [&streams];
        let id_params: [&(dyn ToSql + Sync); 1] = [&ids];
        let (begun, locked, head_rows, found) = tokio::join!(
            client.batch_execute(BEGIN),
            client.query(&lock, &lock_params),
            client.query(&heads, &stream_params),
            async {
                if lookup {
                    client.query(&by_id, &id_params).await
                } else {
                    Ok(Vec::new())
                }
            },
        );
        for result in [begun.map(|()| Vec::new()), locked] {
            if let Err(error) = result {
                return contended(error).map_err(op);
            }
        }
        let head_rows = head_rows.map_err(op)?;
        let mut heads: HashMap<&str, (Version, EventHash)> = HashMap::new();
        for row in &head_rows {
            let stream: &str = column(row, 0)?;
            let version: i64 = column(row, 1)?;
            let head: &[u8] = column(row, 2)?;
            heads.insert(
                stream,
                (
                    Version::new(unsigned(version, "stream version")?),
                    hash(head, "stream head hash")?,
                ),
            );
        }
        let stored = Recorded::decode(&found.map_err(op)?)?;

        // The checks, in batch order, each part against the heads the parts before it left.
        let recorded_at = to_micros(Utc::now());
        let mut rows = Rows::with_capacity(chunk.iter().map(|p| p.events.len()).sum());
        let mut row_streams: Vec<&str> = Vec::with_capacity(rows.versions.capacity());
        let mut row_categories: Vec<&str> = Vec::with_capacity(rows.versions.capacity());
        let mut row_append_lens: Vec<Option<i32>> = Vec::with_capacity(rows.versions.capacity());
        let mut plans = Vec::with_capacity(chunk.len());
        for part in chunk {
            if lookup {
                match stored.resolve(&part.stream, part.expected, &part.events) {
                    Ok(Some(original)) => {
                        plans.push(Plan::Answer(Ok(original)));
                        continue;
                    }
                    Err(reused) => {
                        plans.push(Plan::Answer(Err(reused)));
                        continue;
                    }
                    Ok(None) => {}
                }
            }
            let current = heads.get(part.stream.as_str()).copied();
            let actual = current.map(|(v, _)| v);
            if !part.expected.accepts(actual) {
                plans.push(if lookup {
                    Plan::Answer(Err(conflict(part, actual)))
                } else {
                    Plan::Check { actual }
                });
                continue;
            }
            let first = rows.versions.len();
            let (mut version, mut previous) = match current {
                Some((v, h)) => (v, Some(h)),
                None => (Version::default(), None),
            };
            for (data, payload) in part.events.iter().zip(&part.payloads) {
                version = version.next();
                let link = event_hash(previous.as_ref(), &part.stream, version, data, recorded_at);
                rows.push(version, data, payload.clone(), previous, link)?;
                row_streams.push(part.stream.as_str());
                row_categories.push(part.stream.category_str());
                previous = Some(link);
            }
            row_append_lens.extend(append_lens(part.events.len()));
            if let Some(head) = previous {
                heads.insert(part.stream.as_str(), (version, head));
            }
            plans.push(Plan::Write {
                rows: first..rows.versions.len(),
                version,
            });
        }

        // Refused parts: perhaps retries of appends that moved their streams on.
        let checks: Vec<&Part> = chunk
            .iter()
            .zip(&plans)
            .filter(|(_, plan)| matches!(plan, Plan::Check { .. }))
            .map(|(part, _)| part)
            .collect();
        let stored = if checks.is_empty() {
            stored
        } else {
            let ids = ids_of(checks.into_iter());
            let found = client.query(&by_id, &[&ids]).await.map_err(op)?;
            Recorded::decode(&found)?
        };

        if rows.versions.is_empty() {
            client.batch_execute("COMMIT").await.map_err(op)?;
            tx.finish();
            return Ok(Run::Done {
                outcomes: answer(chunk, plans, &stored, &[]),
                wrote: false,
            });
        }

        // Round trip 2: the stream rows, the events, commit.
        let mut written: Vec<(&StreamId, (Version, EventHash))> = chunk
            .iter()
            .zip(&plans)
            .filter(|(_, plan)| matches!(plan, Plan::Write { .. }))
            .filter_map(|(part, _)| {
                let head = heads.get(part.stream.as_str())?;
                Some((&part.stream, *head))
            })
            .collect();
        written.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        written.dedup_by(|a, b| a.0 == b.0);
        let head_streams: Vec<&str> = written.iter().map(|(s, _)| s.as_str()).collect();
        let head_versions: Vec<i64> = written
            .iter()
            .map(|(_, (v, _))| to_i64(*v))
            .collect::<Result<_, _>>()?;
        let head_hashes: Vec<&[u8]> = written
            .iter()
            .map(|(_, (_, h))| h.as_bytes().as_slice())
            .collect();
        let upsert_params: [&(dyn ToSql + Sync); 3] = [&head_streams, &head_versions, &head_hashes];
        let m = &rows.metadata;
        let insert_params: [&(dyn ToSql + Sync); 17] = [
            &recorded_at,
            &row_streams,
            &row_categories,
            &rows.versions,
            &rows.ids,
            &rows.types,
            &rows.schema_versions,
            &m.tenants,
            &rows.payloads,
            &rows.previous,
            &rows.hashes,
            &m.occurred_us,
            &m.actors,
            &m.correlations,
            &m.causations,
            &m.extensions,
            &row_append_lens,
        ];
        let (upserted, inserted, committed) = tokio::join!(
            client.execute(&upsert, &upsert_params),
            client.query(&insert, &insert_params),
            client.batch_execute("COMMIT"),
        );
        if let Err(error) = committed {
            // The outcome is unknown: the caller retries with the same ids.
            return Err(op(error));
        }
        tx.finish();
        // A failed statement aborted the transaction, and `COMMIT` rolled it back.
        if let Err(error) = upserted {
            return contended(error).map_err(op);
        }
        let inserted = match inserted {
            Ok(inserted) => inserted,
            Err(error) => return contended(error).map_err(op),
        };
        let mut by_id = HashMap::with_capacity(inserted.len());
        for row in &inserted {
            let id: Uuid = column(row, 0)?;
            let tx_id: i64 = column(row, 1)?;
            let seq: i64 = column(row, 2)?;
            let position = Position::new(
                unsigned(tx_id, "transaction id")?,
                unsigned(seq, "sequence")?,
            );
            by_id.insert(id, position);
        }
        let positions: Vec<Position> = rows
            .ids
            .iter()
            .map(|id| {
                by_id.get(id).copied().ok_or_else(|| StoreError::Corrupt {
                    what: format!("the batch insert did not return event {id}"),
                })
            })
            .collect::<Result<_, _>>()?;
        for (stream, head) in written {
            self.heads.set(stream, Some(head));
        }
        Ok(Run::Done {
            outcomes: answer(chunk, plans, &stored, &positions),
            wrote: true,
        })
    }
}

/// The answer of each part of a chunk, from its plan.
fn answer(
    chunk: &[Part],
    plans: Vec<Plan>,
    stored: &Recorded,
    positions: &[Position],
) -> Vec<Outcome> {
    chunk
        .iter()
        .zip(plans)
        .map(|(part, plan)| match plan {
            Plan::Write { rows, version } => match positions.get(rows) {
                Some(positions) => Ok(AppendResult {
                    version,
                    positions: positions.to_vec(),
                }),
                None => Err(StoreError::Corrupt {
                    what: format!(
                        "the batch insert into {} returned too few rows",
                        part.stream
                    ),
                }
                .into()),
            },
            Plan::Answer(outcome) => outcome,
            Plan::Check { actual } => {
                match stored.resolve(&part.stream, part.expected, &part.events) {
                    Ok(Some(original)) => Ok(original),
                    Ok(None) => Err(conflict(part, actual)),
                    Err(reused) => Err(reused),
                }
            }
        })
        .collect()
}

fn conflict(part: &Part, actual: Option<Version>) -> AppendError {
    AppendError::Conflict {
        stream: part.stream.clone(),
        expected: part.expected,
        actual,
    }
}

fn ids_of<'a>(parts: impl Iterator<Item = &'a Part>) -> Vec<Uuid> {
    parts
        .flat_map(|p| p.events.iter().map(|e| e.event_id().as_uuid()))
        .collect()
}

/// What a failed statement of a chunk means: run again (a taken id, a race, a deadlock) or a
/// failure of the chunk.
fn contended(error: tokio_postgres::Error) -> Result<Run, tokio_postgres::Error> {
    match class_of(&error) {
        Class::EventIdTaken => Ok(Run::IdTaken),
        Class::StreamRace => Ok(Run::Again),
        Class::Transient if is_contention(&error) => Ok(Run::Again),
        Class::Transient | Class::Permanent => Err(error),
    }
}

/// The failure of a chunk, for each of its parts.
fn shared(error: &Arc<StoreError>) -> AppendError {
    let store = match &**error {
        StoreError::Corrupt { what } => StoreError::Corrupt { what: what.clone() },
        StoreError::Closed { backend } => StoreError::Closed { backend },
        StoreError::CheckpointFilter(mismatch) => StoreError::CheckpointFilter(mismatch.clone()),
        StoreError::Backend(backend) => StoreError::Backend(BackendError::new(
            BACKEND,
            "append",
            backend.is_transient(),
            Arc::clone(error),
        )),
    };
    AppendError::Store(store)
}

/// The answer of a part after an earlier chunk failed.
fn not_attempted() -> AppendError {
    AppendError::Store(StoreError::Backend(BackendError::new(
        BACKEND,
        "append",
        true,
        "not attempted: an earlier transaction of the batch failed",
    )))
}
