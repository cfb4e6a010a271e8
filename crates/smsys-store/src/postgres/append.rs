//! The append transaction.
//!
//! Every append is one transaction that takes the stream's lock, an advisory lock keyed by
//! the stream, then updates the stream's row `WHERE version = <expected version> AND
//! head_hash = <expected head>` (or inserts it, for a new stream) and inserts the events with
//! `tx_id = pg_current_xact_id()`, in one statement. Two ways to get there:
//!
//! - *one round trip*, when the head is known: a new stream under `NoStream`, or a stream whose
//!   last event this node wrote (a remembered guess, checked by the `WHERE`). Under an exact
//!   expectation (`Exact`, `NoStream`) the write is one statement in its own implicit
//!   transaction, without the lock: the `WHERE` arbitrates, and losing to another writer is
//!   the conflict the caller asked to hear about. Under `Any` or `StreamExists`, `BEGIN`, the
//!   lock, the write statement and `COMMIT` are pipelined. A wrong guess writes nothing and
//!   falls back to:
//! - *two round trips*: `BEGIN`, the lock, read the stream's row; then the write statement and
//!   `COMMIT`, pipelined.
//!
//! Every writer of a stream but the exact one-statement kind (both paths under `Any`, the
//! second path always, and batches) writes it only while holding its lock, and reads the head
//! (or, on the first path, runs its `WHERE`) after taking it, under READ COMMITTED, where
//! every statement sees what committed before it started. So a locked writer loses between
//! reading the head and writing only to an exact writer that got its expected version right,
//! and then reads the new head and writes after it (bounded, with a growing pause): an `Any`
//! append does not fail however many other `Any` writers write the stream, it waits its turn.
//! Writers of different streams never wait for each other. A writer whose `UPDATE` waited
//! for another's row lock re-reads the row (READ COMMITTED), finds the version changed and
//! writes nothing, so a successful writer never waited for another successful writer.
//!
//! Why the log order `(tx_id, seq)` agrees with every stream's version order: a transaction id
//! is taken at the first write, which comes after the lock (for locked writers) and after
//! the previous successful writer committed (for all: a successful writer never waited for
//! another), so the next successful writer of the stream takes a higher id. The lock is
//! advisory, not `SELECT ... FOR UPDATE`, because a row lock would take the transaction id
//! *before* waiting: a writer that waited could then succeed with a lower id than the writer
//! it waited for, and its events would sort first in the log although they come later in the
//! stream.
//!
//! # Isolation
//!
//! The design needs READ COMMITTED: under REPEATABLE READ or SERIALIZABLE the head read after
//! the lock would come from a snapshot taken before it, and writers would fail with
//! serialization errors instead of seeing each other. Every transaction begins with [`BEGIN`],
//! and every pooled connection is set to READ COMMITTED when it is opened (`pool`), whatever
//! the server, database or role default. A serialization failure or a deadlock reported all
//! the same runs the append again (bounded, with a growing pause); it is never the answer.
//!
//! # Waiting for the lock
//!
//! A writer waiting for its stream's lock holds a pooled connection meanwhile. Writers of the
//! same node queue for a stream in the process first ([`Gates`]), so a hot stream holds at
//! most one connection of each node's pool waiting (and one writing); batches wait holding
//! their connection. Waiting ends when the holder commits, or with its session (a lost
//! connection, `pg_terminate_backend`); a session that holds a stream lock and never ends
//! (an external tool) holds that stream's writers until it does.
//!
//! Batches (`batch`) take the same stream locks, all of them before their first write.
//!
//! Retries: a stored event id makes the insert fail on the `event_id` unique key (or the
//! version check fail, when the stream moved on since); either way the ids are looked up and
//! [`resolve_append_retry`](smsys_core::resolve_append_retry), with the append boundaries
//! stored beside the events (`append_len`), gives the answer every backend gives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use chrono::Utc;
use deadpool_postgres::{Object, Pool};
use smsys_core::chain::event_hash;
use smsys_core::{
    AppendError, AppendResult, BackendError, EventData, EventHash, ExpectedVersion, Position,
    StoreError, StreamId, Version, check_append_shape, to_micros,
};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::error::{BACKEND, Class, class_of, is_contention, pool_error, store_error};
use super::queries::Queries;
use super::rows::{MetadataColumns, Recorded, column, hash, unsigned};

/// How every store transaction begins: the append design needs READ COMMITTED (see the
/// module docs), whatever the session default.
pub(super) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Runs under the stream lock that end in a race: a writer that does not take the lock got
/// in between (a node of an older release, a hand-written statement), or the server gave up
/// on the transaction (a serialization failure, a deadlock). Between runs the pause grows
/// from 200 us to 51 ms, about half a second in all: the writer in between has long
/// committed.
const ATTEMPTS: usize = 16;

/// The pause before run `attempt + 1` after a race.
pub(super) fn backoff(attempt: usize) -> std::time::Duration {
    std::time::Duration::from_micros(200 << attempt.min(8))
}

/// A pooled connection inside a transaction: dropped before the transaction ended (an error,
/// a cancelled future), it is taken out of the pool and closed, so the server rolls back.
pub(super) struct InTransaction {
    client: Option<Object>,
}

impl InTransaction {
    pub(super) fn new(client: Object) -> Self {
        Self {
            client: Some(client),
        }
    }

    pub(super) fn client(&self) -> Result<&Object, StoreError> {
        self.client
            .as_ref()
            .ok_or(StoreError::Closed { backend: BACKEND })
    }

    /// The transaction ended: the connection may go back to the pool.
    pub(super) fn finish(mut self) {
        self.client = None;
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

enum Attempt {
    Done(AppendResult),
    Conflict(Option<Version>),
    IdTaken,
    Race,
}

/// Local writers of a stream wait here, without a connection, while one of them waits for
/// (or holds) the stream's lock in the database: a hot stream holds at most one pooled
/// connection per node waiting for its lock. Entries live while a writer uses them.
#[derive(Debug, Default)]
pub(crate) struct Gates(Mutex<HashMap<StreamId, Weak<tokio::sync::Mutex<()>>>>);

impl Gates {
    /// Waits for the turn of this node's writers of `stream`.
    pub(super) async fn enter(&self, stream: &StreamId) -> tokio::sync::OwnedMutexGuard<()> {
        let gate = {
            let mut gates = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            match gates.get(stream).and_then(Weak::upgrade) {
                Some(gate) => gate,
                None => {
                    if gates.len() >= HEADS {
                        gates.retain(|_, gate| gate.strong_count() > 0);
                    }
                    let gate = Arc::new(tokio::sync::Mutex::new(()));
                    gates.insert(stream.clone(), Arc::downgrade(&gate));
                    gate
                }
            }
        };
        gate.lock_owned().await
    }
}

/// Most stream heads remembered for the one-round-trip path.
const HEADS: usize = 65_536;

/// The head (version, hash of the last event) of streams this node appended to last: a guess
/// the one-round-trip path checks in its `UPDATE ... WHERE`, never trusted otherwise.
#[derive(Debug, Default)]
pub(crate) struct Heads(Mutex<HashMap<StreamId, (Version, EventHash)>>);

impl Heads {
    pub(super) fn get(&self, stream: &StreamId) -> Option<(Version, EventHash)> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
            .copied()
    }

    pub(super) fn set(&self, stream: &StreamId, head: Option<(Version, EventHash)>) {
        let mut heads = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match head {
            Some(head) => {
                if heads.len() >= HEADS {
                    heads.clear();
                }
                heads.insert(stream.clone(), head);
            }
            None => {
                heads.remove(stream);
            }
        }
    }
}

/// Everything the append needs from the store.
pub(crate) struct Appender<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) queries: &'a Queries,
    pub(crate) lock_prefix: &'a str,
    pub(crate) heads: &'a Heads,
    pub(crate) gates: &'a Gates,
}

impl Appender<'_> {
    pub(crate) async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult, AppendError> {
        check_append_shape(stream, events)?;
        // This node's writers of the stream take turns before taking a connection.
        let _turn = self.gates.enter(stream).await;
        // One round trip when the head is known (a new stream, or this node wrote the
        // stream's last event): the `UPDATE ... WHERE version AND head_hash` checks the guess.
        let guess = match (expected, self.heads.get(stream)) {
            (ExpectedVersion::NoStream, None) => Some(None),
            (_, Some(head)) if expected.accepts(Some(head.0)) => Some(Some(head)),
            _ => None,
        };
        if let Some(head) = guess {
            // An exact expectation needs no lock: the `WHERE` arbitrates, and losing is a
            // conflict, the right answer. `Any` (and `StreamExists`) must not lose to anyone
            // between the head and the write, so they take the lock like every locked writer.
            let lock = matches!(
                expected,
                ExpectedVersion::Any | ExpectedVersion::StreamExists
            );
            match self.fast(stream, head, events, lock).await? {
                Attempt::Done(result) => return Ok(result),
                Attempt::IdTaken => {
                    if let Some(original) = self.recognise_retry(stream, expected, events).await? {
                        return Ok(original);
                    }
                }
                Attempt::Race | Attempt::Conflict(_) => self.heads.set(stream, None),
            }
        }
        for attempt in 0..ATTEMPTS {
            match self.locked(stream, expected, events).await? {
                Attempt::Done(result) => return Ok(result),
                Attempt::Conflict(actual) => {
                    // The stream moved on: perhaps because this very append committed before
                    // (a retry after a lost answer).
                    if let Some(original) = self.recognise_retry(stream, expected, events).await? {
                        return Ok(original);
                    }
                    return Err(AppendError::Conflict {
                        stream: stream.clone(),
                        expected,
                        actual,
                    });
                }
                Attempt::IdTaken => {
                    if let Some(original) = self.recognise_retry(stream, expected, events).await? {
                        return Ok(original);
                    }
                }
                Attempt::Race => {
                    tracing::debug!(%stream, attempt, "append raced, trying again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Err(StoreError::Backend(BackendError::new(
            BACKEND,
            "append",
            true,
            format!(
                "append to {stream} kept racing with writers that do not take the stream lock, \
                 or kept being picked as a deadlock or serialization victim"
            ),
        ))
        .into())
    }

    /// The original result if `events` are stored already (see
    /// [`resolve_append_retry`](smsys_core::resolve_append_retry)).
    async fn recognise_retry(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<Option<AppendResult>, AppendError> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id().as_uuid()).collect();
        let rows =
            super::pool::query(self.pool, "append", &self.queries.events_by_id, &[&ids]).await?;
        Recorded::decode(&rows)?.resolve(stream, expected, events)
    }

    /// The append on a guessed head in one round trip: under the stream's lock when `lock`,
    /// else as one statement in its own implicit transaction.
    async fn fast(
        &self,
        stream: &StreamId,
        head: Option<(Version, EventHash)>,
        events: &[EventData],
        lock: bool,
    ) -> Result<Attempt, StoreError> {
        let op = |e| store_error("append", e);
        let write = Write::new(stream, head, events)?;
        let client = self.pool.get().await.map_err(|e| pool_error("append", e))?;
        if !lock {
            let inserted = async {
                let statement = client.prepare_cached(write.sql(self.queries)).await?;
                client.query(&statement, &write.params()).await
            }
            .await;
            if let Err(error) = &inserted {
                super::pool::release_after(client, error);
            }
            return self.finish(stream, &write, inserted);
        }
        let (lock, statement) = tokio::try_join!(
            client.prepare_cached(&self.queries.lock_stream),
            client.prepare_cached(write.sql(self.queries)),
        )
        .map_err(op)?;
        let tx = InTransaction::new(client);
        let client = tx.client()?;
        let key = self.lock_key(stream);
        let lock_params: [&(dyn ToSql + Sync); 1] = [&key];
        let params = write.params();
        let (begun, locked, inserted, committed) = tokio::join!(
            client.batch_execute(BEGIN),
            client.execute(&lock, &lock_params),
            client.query(&statement, &params),
            client.batch_execute("COMMIT"),
        );
        // A failed statement aborted the transaction, and `COMMIT` rolled it back.
        for result in [begun, locked.map(drop)] {
            if let Err(error) = result {
                if is_contention(&error) && committed.is_ok() {
                    tx.finish();
                    return Ok(Attempt::Race);
                }
                // Dropping `tx` closes the connection, whatever state it is in.
                return Err(op(error));
            }
        }
        if let Err(error) = committed {
            return commit_failed(tx, error);
        }
        tx.finish();
        self.finish(stream, &write, inserted)
    }

    /// The append under the stream's lock, in two round trips.
    async fn locked(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<Attempt, StoreError> {
        let op = |e| store_error("append", e);
        let client = self.pool.get().await.map_err(|e| pool_error("append", e))?;
        let (lock, head, new_stream, existing_stream) = tokio::try_join!(
            client.prepare_cached(&self.queries.lock_stream),
            client.prepare_cached(&self.queries.stream_head),
            client.prepare_cached(&self.queries.insert_new_stream),
            client.prepare_cached(&self.queries.insert_existing_stream),
        )
        .map_err(op)?;
        let tx = InTransaction::new(client);
        let client = tx.client()?;

        // Round trip 1: begin, lock the stream, read its head.
        let key = self.lock_key(stream);
        let stream_id = stream.as_str();
        let lock_params: [&(dyn ToSql + Sync); 1] = [&key];
        let head_params: [&(dyn ToSql + Sync); 1] = [&stream_id];
        let (begun, locked, row) = tokio::join!(
            client.batch_execute(BEGIN),
            client.execute(&lock, &lock_params),
            client.query_opt(&head, &head_params),
        );
        let row = begun.and(locked).and(row);
        if let Err(error) = &row
            && is_contention(error)
        {
            // The transaction is aborted: end it, and run again.
            client.batch_execute("ROLLBACK").await.map_err(op)?;
            tx.finish();
            return Ok(Attempt::Race);
        }
        let current = match row.map_err(op)? {
            Some(row) => {
                let version: i64 = column(&row, 0)?;
                let head: &[u8] = column(&row, 1)?;
                Some((
                    Version::new(unsigned(version, "stream version")?),
                    hash(head, "stream head hash")?,
                ))
            }
            None => None,
        };
        let current_version = current.map(|(v, _)| v);
        if !expected.accepts(current_version) {
            client.batch_execute("ROLLBACK").await.map_err(op)?;
            tx.finish();
            self.heads.set(stream, current);
            return Ok(Attempt::Conflict(current_version));
        }

        // Round trip 2: write and commit.
        let write = Write::new(stream, current, events)?;
        let statement = if current.is_some() {
            &existing_stream
        } else {
            &new_stream
        };
        let params = write.params();
        let (inserted, committed) = tokio::join!(
            client.query(statement, &params),
            client.batch_execute("COMMIT"),
        );
        // A failed statement aborted the transaction, and `COMMIT` rolled it back.
        if let Err(error) = committed {
            return commit_failed(tx, error);
        }
        tx.finish();
        self.finish(stream, &write, inserted)
    }

    /// The key of `stream`'s advisory lock (hashed by the lock statement).
    fn lock_key(&self, stream: &StreamId) -> String {
        format!("{}{}", self.lock_prefix, stream.as_str())
    }

    /// Reads what the write statement returned.
    fn finish(
        &self,
        stream: &StreamId,
        write: &Write<'_>,
        inserted: Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>,
    ) -> Result<Attempt, StoreError> {
        let op = |e| store_error("append", e);
        let inserted = match inserted {
            Ok(inserted) => inserted,
            Err(error) => {
                return match class_of(&error) {
                    Class::EventIdTaken => Ok(Attempt::IdTaken),
                    Class::StreamRace => Ok(Attempt::Race),
                    Class::Transient if is_contention(&error) => Ok(Attempt::Race),
                    Class::Transient | Class::Permanent => Err(op(error)),
                };
            }
        };
        if inserted.len() != write.rows.versions.len() {
            // The stream row was not where we thought: nothing was written.
            return Ok(Attempt::Race);
        }
        let mut by_version = HashMap::with_capacity(inserted.len());
        for row in &inserted {
            let v: i64 = column(row, 0)?;
            let tx_id: i64 = column(row, 1)?;
            let seq: i64 = column(row, 2)?;
            by_version.insert(
                v,
                Position::new(
                    unsigned(tx_id, "transaction id")?,
                    unsigned(seq, "sequence")?,
                ),
            );
        }
        let positions = write
            .rows
            .versions
            .iter()
            .map(|v| {
                by_version
                    .get(v)
                    .copied()
                    .ok_or_else(|| StoreError::Corrupt {
                        what: format!("the insert into {stream} did not return version {v}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        self.heads.set(stream, Some((write.version, write.head)));
        Ok(Attempt::Done(AppendResult {
            version: write.version,
            positions,
        }))
    }
}

/// A failed `COMMIT`: the server refused it for contention (a serialization failure: rolled
/// back, run again), or the outcome is unknown (the connection is lost: the caller retries
/// with the same ids, and a committed append is recognised).
fn commit_failed(tx: InTransaction, error: tokio_postgres::Error) -> Result<Attempt, StoreError> {
    if is_contention(&error) {
        // The server ended the transaction and answered: the connection is fine.
        tx.finish();
        return Ok(Attempt::Race);
    }
    Err(store_error("append", error))
}

/// One append's rows, hashed, and the parameters of the write statement.
struct Write<'a> {
    stream: &'a str,
    category: &'a str,
    /// The head the write expects (`None`: a new stream).
    expected_version: Option<i64>,
    expected_head: Option<Vec<u8>>,
    /// The head after the write.
    version: Version,
    head: EventHash,
    last_version: i64,
    head_bytes: Vec<u8>,
    recorded_at: chrono::DateTime<Utc>,
    rows: Rows<'a>,
}

impl<'a> Write<'a> {
    fn new(
        stream: &'a StreamId,
        current: Option<(Version, EventHash)>,
        events: &'a [EventData],
    ) -> Result<Self, StoreError> {
        // Hash the chain links here: each hash covers the previous event's hash.
        let recorded_at = to_micros(Utc::now());
        let mut previous = current.map(|(_, h)| h);
        let mut version = current.map(|(v, _)| v).unwrap_or_default();
        let mut rows = Rows::with_capacity(events.len());
        for data in events {
            version = version.next();
            let link = event_hash(previous.as_ref(), stream, version, data, recorded_at);
            rows.push(version, data, payload_text(data)?, previous, link)?;
            previous = Some(link);
        }
        let head = previous.ok_or(StoreError::Corrupt {
            what: format!("an append to {stream} without events"),
        })?;
        Ok(Self {
            stream: stream.as_str(),
            category: stream.category_str(),
            expected_version: current.map(|(v, _)| to_i64(v)).transpose()?,
            expected_head: current.map(|(_, h)| h.as_bytes().to_vec()),
            version,
            head,
            last_version: to_i64(version)?,
            head_bytes: head.as_bytes().to_vec(),
            recorded_at,
            rows,
        })
    }

    fn sql<'q>(&self, queries: &'q Queries) -> &'q str {
        if self.expected_version.is_some() {
            &queries.insert_existing_stream
        } else {
            &queries.insert_new_stream
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let rows = &self.rows;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.stream,
            &self.last_version,
            &self.head_bytes,
            &self.category,
            &self.recorded_at,
            &rows.versions,
            &rows.ids,
            &rows.types,
            &rows.schema_versions,
            &rows.metadata.tenants,
            &rows.payloads,
            &rows.previous,
            &rows.hashes,
            &rows.metadata.occurred_us,
            &rows.metadata.actors,
            &rows.metadata.correlations,
            &rows.metadata.causations,
            &rows.metadata.extensions,
        ];
        if let (Some(version), Some(head)) = (&self.expected_version, &self.expected_head) {
            params.push(version);
            params.push(head);
        }
        params
    }
}

pub(super) fn to_i64(version: Version) -> Result<i64, StoreError> {
    i64::try_from(version.get()).map_err(|_| StoreError::Corrupt {
        what: format!("version {version} is beyond what the store can hold"),
    })
}

/// The column arrays of appended events (the stream's columns apart).
pub(super) struct Rows<'a> {
    pub(super) versions: Vec<i64>,
    pub(super) ids: Vec<Uuid>,
    pub(super) types: Vec<&'a str>,
    pub(super) schema_versions: Vec<i64>,
    /// The payloads as JSON text, cast to `json` by the statement.
    pub(super) payloads: Vec<String>,
    pub(super) previous: Vec<Option<Vec<u8>>>,
    pub(super) hashes: Vec<Vec<u8>>,
    pub(super) metadata: MetadataColumns<'a>,
}

impl<'a> Rows<'a> {
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            versions: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            schema_versions: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            previous: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
            metadata: MetadataColumns::with_capacity(n),
        }
    }

    /// Adds an event; `payload` is its payload as JSON text.
    pub(super) fn push(
        &mut self,
        version: Version,
        data: &'a EventData,
        payload: String,
        previous: Option<EventHash>,
        hash: EventHash,
    ) -> Result<(), StoreError> {
        self.versions.push(to_i64(version)?);
        self.ids.push(data.event_id().as_uuid());
        self.types.push(data.event_type().as_str());
        self.schema_versions.push(i64::from(data.schema_version()));
        self.payloads.push(payload);
        self.previous.push(previous.map(|h| h.as_bytes().to_vec()));
        self.hashes.push(hash.as_bytes().to_vec());
        self.metadata.push(data.metadata());
        Ok(())
    }
}

/// A payload as the JSON text the store writes.
pub(super) fn payload_text(data: &EventData) -> Result<String, StoreError> {
    serde_json::to_string(data.payload()).map_err(|e| StoreError::Corrupt {
        what: format!(
            "the payload of event {} does not serialize: {e}",
            data.event_id()
        ),
    })
}
