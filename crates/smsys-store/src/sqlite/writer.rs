//! The single writer thread and its group commit.
//!
//! Callers send requests on a bounded channel. The thread waits for one, takes every request
//! already waiting (up to `max_batch` requests and about [`MAX_BATCH_EVENTS`] events; under
//! concurrent writers, after a short gather window, see [`Writer::run`]), and handles them in
//! order inside one `BEGIN IMMEDIATE` transaction: each append is checked against the stream
//! heads as they stand after the appends before it in the same batch, retries are recognised
//! against the file and the batch, and each accepted append is written under its own savepoint
//! so a failing write does not undo its neighbours. A batched append ([`Command::AppendBatch`],
//! one caller's many parts) is handled part by part exactly the same way, in the same
//! transaction. Every other write (a snapshot, a checkpoint, a batch of record index or
//! configuration graph rows with its checkpoint, clearing either) is a [`Write`] under its own
//! savepoint too. One `COMMIT` (one fsync under `synchronous=FULL`) then makes the whole
//! batch durable, subscriptions are woken, and every caller gets its own answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::{Connection, TransactionBehavior};
use smsys_core::{
    AppendError, AppendResult, EventData, EventHash, ExpectedVersion, Position, RecordedEvent,
    Snapshot, StoreError, StreamId, Version, resolve_append_retry,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::ci_graph::{self, CiGraphRow};
use super::error;
use super::index::{self, IndexRow};
use super::rows::{self, StoredPosition, StreamHead};
use crate::checkpoint::CheckpointName;

/// How many events one transaction takes, about: the writer stops gathering requests once
/// they hold this many (a single request may hold more), and a batched append is sent in
/// requests of about this size. It bounds what a commit holds in memory (the requests, the
/// dirty pages) and how long other callers wait behind one large request, while an fsync is
/// shared by enough events to cost little.
pub(crate) const MAX_BATCH_EVENTS: usize = 16_384;

/// One part of a batched append, its shape already checked ([`smsys_core::check_append_shape`]).
pub(crate) struct Part {
    pub(crate) stream: StreamId,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<EventData>,
}

/// A request to the writer.
pub(crate) enum Command {
    /// Append events to a stream.
    Append {
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
        reply: oneshot::Sender<Result<AppendResult, AppendError>>,
    },
    /// Append parts in order, each as its own [`Command::Append`] would be handled, in the same
    /// transaction; the answer holds one result per part, in order.
    AppendBatch {
        parts: Vec<Part>,
        reply: oneshot::Sender<Vec<Result<AppendResult, AppendError>>>,
    },
    /// Any other write, done under its own savepoint.
    Write {
        write: Write,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Finish what was sent before, close the connection, then answer.
    Close { reply: oneshot::Sender<()> },
}

impl Command {
    /// About how many rows the request writes, for bounding a transaction.
    fn weight(&self) -> usize {
        match self {
            Command::Append { events, .. } => events.len(),
            Command::AppendBatch { parts, .. } => parts.iter().map(|p| p.events.len()).sum(),
            Command::Write {
                write: Write::IndexRows { rows, .. },
                ..
            } => rows.len(),
            Command::Write {
                write: Write::CiRows { rows, .. },
                ..
            } => rows.iter().map(CiGraphRow::weight).sum(),
            Command::Write { .. } | Command::Close { .. } => 1,
        }
    }
}

/// An answer held until the batch's commit.
enum Reply {
    Append {
        reply: oneshot::Sender<Result<AppendResult, AppendError>>,
        result: Result<AppendResult, AppendError>,
    },
    Batch {
        reply: oneshot::Sender<Vec<Result<AppendResult, AppendError>>>,
        results: Vec<Result<AppendResult, AppendError>>,
    },
    Write {
        reply: oneshot::Sender<Result<(), StoreError>>,
        result: Result<(), StoreError>,
    },
}

/// A write other than an append. Checkpoints and the record index go through the writer like
/// appends rather than through a second connection: SQLite lets one connection write at a
/// time anyway, and a second writer would wait on the lock in the busy handler's sleeps (and
/// make appends wait on its own), while here every write waits its turn in the channel, never
/// longer than the batches before it, and shares their commit (one fsync).
pub(crate) enum Write {
    /// Save a snapshot (unless a newer one is kept).
    Snapshot(Snapshot),
    /// Save a named checkpoint.
    Checkpoint {
        name: CheckpointName,
        position: StoredPosition,
    },
    /// Replace rows of a record index and save its checkpoint, all or nothing.
    IndexRows {
        index: CheckpointName,
        rows: Vec<IndexRow>,
        checkpoint: StoredPosition,
    },
    /// Remove an index's rows and checkpoint.
    ClearIndex { index: CheckpointName },
    /// Replace rows (and their edges) of a configuration graph and save its checkpoint, all
    /// or nothing.
    CiRows {
        graph: CheckpointName,
        rows: Vec<CiGraphRow>,
        checkpoint: StoredPosition,
    },
    /// Remove a configuration graph's rows, edges and checkpoint.
    ClearCiGraph { graph: CheckpointName },
    /// Bind a checkpoint to a filter unless it is bound already (kept at the start when
    /// there is none yet).
    BindCheckpoint {
        name: CheckpointName,
        filter: String,
    },
}

impl Write {
    fn operation(&self) -> &'static str {
        match self {
            Write::Snapshot(_) => "save snapshot",
            Write::Checkpoint { .. } => "save checkpoint",
            Write::IndexRows { .. } => "apply record index rows",
            Write::ClearIndex { .. } => "clear record index",
            Write::CiRows { .. } => "apply ci graph rows",
            Write::ClearCiGraph { .. } => "clear ci graph",
            Write::BindCheckpoint { .. } => "bind checkpoint",
        }
    }

    fn run(&self, conn: &Connection) -> Result<(), StoreError> {
        match self {
            Write::Snapshot(snapshot) => rows::save_snapshot(conn, snapshot),
            Write::Checkpoint { name, position } => rows::save_checkpoint(conn, name, *position),
            Write::IndexRows {
                index,
                rows,
                checkpoint,
            } => index::write_rows(conn, index, rows, *checkpoint),
            Write::ClearIndex { index } => index::clear(conn, index),
            Write::CiRows {
                graph,
                rows,
                checkpoint,
            } => ci_graph::write_rows(conn, graph, rows, *checkpoint),
            Write::ClearCiGraph { graph } => ci_graph::clear(conn, graph),
            Write::BindCheckpoint { name, filter } => rows::bind_checkpoint(conn, name, filter),
        }
    }
}

/// The head of a stream as the batch sees it.
#[derive(Clone, Copy)]
struct Head {
    row_id: Option<i64>,
    version: Option<Version>,
    hash: Option<EventHash>,
}

struct Batch {
    heads: HashMap<StreamId, Head>,
    last_position: u64,
    recorded_at: chrono::DateTime<Utc>,
    wrote: bool,
    broken: bool,
}

pub(crate) struct Writer {
    conn: Connection,
    commits: watch::Sender<u64>,
    max_batch: usize,
    window: Duration,
}

/// How long the writer sleeps between looks at the channel while gathering a batch.
const GATHER_TICK: Duration = Duration::from_micros(40);

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        commits: watch::Sender<u64>,
        max_batch: usize,
        window: Duration,
    ) -> Self {
        Self {
            conn,
            commits,
            max_batch: max_batch.max(1),
            window,
        }
    }

    /// Runs until every sender is gone or a `Close` arrives.
    ///
    /// Gathering: the writer takes what is waiting. When the previous batch held several
    /// requests (callers are writing concurrently) and fewer are waiting now, it waits up to
    /// the gather window for as many to arrive: callers answered by the previous commit are
    /// sending their next appends, and one fsync for all of them beats two. A lone caller
    /// (previous batch of one) never waits. Gathering also stops once the requests taken hold
    /// [`MAX_BATCH_EVENTS`] events.
    pub(crate) fn run(mut self, mut requests: mpsc::Receiver<Command>) {
        let mut expected = 1;
        while let Some(first) = requests.blocking_recv() {
            let deadline = Instant::now() + self.window;
            let mut batch = gather(first, &mut requests, self.max_batch, expected, deadline);
            tracing::trace!(requests = batch.len(), "sqlite writer gathered a batch");
            expected = batch.len();
            let close = batch
                .iter()
                .position(|c| matches!(c, Command::Close { .. }));
            let rest = close.map(|at| batch.split_off(at));
            self.commit(batch);
            if let Some(rest) = rest {
                // Refuse what came after the close: dropping a reply sender tells its caller
                // the store is closed.
                requests.close();
                let mut closers = Vec::new();
                for command in rest
                    .into_iter()
                    .chain(std::iter::from_fn(|| requests.try_recv().ok()))
                {
                    if let Command::Close { reply } = command {
                        closers.push(reply);
                    }
                }
                self.finish();
                for reply in closers {
                    let _ = reply.send(());
                }
                return;
            }
        }
        self.finish();
    }

    fn finish(self) {
        if let Err((_, e)) = self.conn.close() {
            tracing::warn!(error = %e, "closing the sqlite writer connection failed");
        }
        tracing::debug!("sqlite writer stopped");
    }

    fn commit(&mut self, commands: Vec<Command>) {
        let count = commands.len();
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                tracing::warn!(error = %e, "sqlite writer could not begin a transaction");
                let e = error::store("append", e);
                for command in commands {
                    fail(command, &e);
                }
                return;
            }
        };
        let mut batch = Batch {
            heads: HashMap::new(),
            last_position: 0,
            recorded_at: Utc::now(),
            wrote: false,
            broken: false,
        };
        match rows::last_position(&tx) {
            Ok(last) => batch.last_position = last,
            Err(e) => {
                for command in commands {
                    fail(command, &e);
                }
                return;
            }
        }
        let mut replies = Vec::with_capacity(count);
        let mut tx = tx;
        for command in commands {
            if batch.broken {
                // SQLite rolled the transaction back: nothing more runs in it (a savepoint would
                // start a transaction of its own and commit outside the batch).
                let failed = rolled_back;
                match command {
                    Command::Append { reply, .. } => replies.push(Reply::Append {
                        reply,
                        result: Err(AppendError::Store(failed())),
                    }),
                    Command::AppendBatch { parts, reply } => replies.push(Reply::Batch {
                        reply,
                        results: parts
                            .iter()
                            .map(|_| Err(AppendError::Store(failed())))
                            .collect(),
                    }),
                    Command::Write { reply, .. } => replies.push(Reply::Write {
                        reply,
                        result: Err(failed()),
                    }),
                    Command::Close { reply } => {
                        let _ = reply.send(());
                    }
                }
                continue;
            }
            match command {
                Command::Append {
                    stream,
                    expected,
                    events,
                    reply,
                } => {
                    let result = append(&tx, &mut batch, &stream, expected, events);
                    replies.push(Reply::Append { reply, result });
                }
                Command::AppendBatch { parts, reply } => {
                    let mut results = Vec::with_capacity(parts.len());
                    for Part {
                        stream,
                        expected,
                        events,
                    } in parts
                    {
                        // `append` answers every part after SQLite rolled back the transaction.
                        results.push(append(&tx, &mut batch, &stream, expected, events));
                        if !batch.broken && tx.is_autocommit() {
                            batch.broken = true;
                        }
                    }
                    replies.push(Reply::Batch { reply, results });
                }
                Command::Write { write, reply } => {
                    let operation = write.operation();
                    let result = tx
                        .savepoint()
                        .map_err(|e| error::store(operation, e))
                        .and_then(|sp| {
                            write.run(&sp)?;
                            sp.commit().map_err(|e| error::store(operation, e))
                        });
                    if let Err(e) = &result {
                        tracing::warn!(error = %e, operation, "sqlite write failed");
                    }
                    batch.wrote |= result.is_ok();
                    replies.push(Reply::Write { reply, result });
                }
                Command::Close { reply } => {
                    // `run` splits batches at a close; answer it anyway.
                    let _ = reply.send(());
                }
            }
            if tx.is_autocommit() {
                // SQLite rolled the whole transaction back (e.g. after an I/O error).
                batch.broken = true;
            }
        }
        let committed = if batch.broken {
            Err(rolled_back())
        } else if batch.wrote {
            // A failed COMMIT may still have reached the WAL (an fsync error): the outcome is
            // unknown, so it is transient and callers retry with the same event ids, which
            // the retry rule resolves either way.
            tx.commit().map_err(|e| {
                StoreError::Backend(smsys_core::BackendError::new(
                    error::BACKEND,
                    "commit",
                    true,
                    e,
                ))
            })
        } else {
            drop(tx);
            Ok(())
        };
        match &committed {
            Ok(()) if batch.wrote => {
                self.commits.send_modify(|n| *n += 1);
                tracing::trace!(requests = count, "sqlite batch committed");
            }
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, requests = count, "sqlite batch failed"),
        }
        for reply in replies {
            match (reply, &committed) {
                // When the batch failed, every append in it gets the failure, refusals too: a
                // refusal may rest on an earlier append of the batch that is now undone.
                (Reply::Append { reply, .. }, Err(e)) => {
                    let _ = reply.send(Err(AppendError::Store(copy(e))));
                }
                (Reply::Append { reply, result, .. }, _) => {
                    let _ = reply.send(result);
                }
                (Reply::Batch { reply, results }, Err(e)) => {
                    let _ = reply.send(
                        results
                            .iter()
                            .map(|_| Err(AppendError::Store(copy(e))))
                            .collect(),
                    );
                }
                (Reply::Batch { reply, results }, _) => {
                    let _ = reply.send(results);
                }
                (
                    Reply::Write {
                        reply,
                        result: Ok(()),
                    },
                    Err(e),
                ) => {
                    let _ = reply.send(Err(copy(e)));
                }
                (Reply::Write { reply, result }, _) => {
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Takes `first` and the requests waiting behind it: at most `max_batch` requests in all,
/// and no more once they hold [`MAX_BATCH_EVENTS`] events. While fewer than `wanted` (the
/// previous batch's size, bounded by `max_batch`) are taken, waits for more until `deadline`.
fn gather(
    first: Command,
    requests: &mut mpsc::Receiver<Command>,
    max_batch: usize,
    wanted: usize,
    deadline: Instant,
) -> Vec<Command> {
    let max_batch = max_batch.max(1);
    let wanted = wanted.min(max_batch);
    let mut weight = first.weight();
    let mut batch = vec![first];
    while batch.len() < max_batch && weight < MAX_BATCH_EVENTS {
        match requests.try_recv() {
            Ok(command) => {
                weight += command.weight();
                batch.push(command);
            }
            Err(mpsc::error::TryRecvError::Empty)
                if batch.len() < wanted && Instant::now() < deadline =>
            {
                std::thread::sleep(GATHER_TICK);
            }
            Err(_) => break,
        }
    }
    batch
}

/// Handles one append inside the batch's transaction. Returns the answer and whether it
/// holds only if the batch commits; when it does not, every append of the batch is answered
/// with the failure instead.
///
/// The common case, new event ids, costs no id lookups: the UNIQUE index on event ids refuses
/// a stored id at insert. The retry rule ([`resolve_append_retry`]) is applied, as it is for
/// every backend, whenever an id may be stored already: the version check fails (a retry of an
/// append that committed looks like a conflict) or the insert meets a stored id. The lookups
/// run in the batch's transaction, so they see the appends earlier in the same batch; the
/// events written are not kept after their insert.
fn append(
    tx: &Connection,
    batch: &mut Batch,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<EventData>,
) -> Result<AppendResult, AppendError> {
    if batch.broken {
        return Err(AppendError::Store(rolled_back()));
    }

    let head = match batch.heads.get(stream) {
        Some(head) => *head,
        None => match rows::stream_head(tx, stream) {
            Ok(head) => head.map_or(
                Head {
                    row_id: None,
                    version: None,
                    hash: None,
                },
                |StreamHead {
                     row_id,
                     version,
                     hash,
                 }| Head {
                    row_id: Some(row_id),
                    version: Some(version),
                    hash: Some(hash),
                },
            ),
            Err(e) => return Err(e.into()),
        },
    };
    if !expected.accepts(head.version) {
        return match retry(tx, stream, expected, &events)? {
            Some(original) => Ok(original),
            None => Err(AppendError::Conflict {
                stream: stream.clone(),
                expected,
                actual: head.version,
            }),
        };
    }

    let mut version = head.version.unwrap_or_default();
    let mut previous = head.hash;
    let mut position = batch.last_position;
    let recorded: Vec<RecordedEvent> = events
        .into_iter()
        .map(|data| {
            version = version.next();
            position += 1;
            let event = RecordedEvent::record(
                stream.clone(),
                version,
                Position::from_sequence(position),
                data,
                batch.recorded_at,
                previous,
            );
            previous = Some(event.hash);
            event
        })
        .collect();
    let Some(last) = recorded.last() else {
        return Err(AppendError::NoEvents {
            stream: stream.clone(),
        });
    };
    let last_hash = last.hash;

    // Each append under its own savepoint: a failing write leaves its neighbours intact.
    let written = in_savepoint(tx, &mut batch.broken, |sp| {
        rows::write_append(sp, stream, head.row_id, &recorded)
    });
    let row_id = match written {
        Ok(row_id) => row_id,
        Err(e) if error::is_unique_violation(&e) => {
            let events: Vec<EventData> = recorded.into_iter().map(|e| e.data).collect();
            return match retry(tx, stream, expected, &events)? {
                Some(original) => Ok(original),
                None => Err(error::store("append", e).into()),
            };
        }
        Err(e) => {
            tracing::warn!(%stream, error = %e, "sqlite append failed");
            return Err(error::store("append", e).into());
        }
    };
    batch.heads.insert(
        stream.clone(),
        Head {
            row_id: Some(row_id),
            version: Some(version),
            hash: Some(last_hash),
        },
    );
    batch.last_position = position;
    batch.wrote = true;
    let positions = recorded.iter().map(|e| e.position).collect();
    Ok(AppendResult { version, positions })
}

/// Runs `write` under a savepoint: released when it succeeds, rolled back to (and released)
/// when it fails, leaving the transaction as it was. The statements are prepared once, not
/// parsed for every append of a batch. If the rollback itself fails, part of the write may be
/// in the transaction: the batch is marked broken, so it is not committed.
fn in_savepoint<T>(
    conn: &Connection,
    broken: &mut bool,
    write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
    };
    run("SAVEPOINT append")?;
    match write(conn) {
        Ok(value) => match run("RELEASE append") {
            Ok(_) => Ok(value),
            Err(e) => {
                *broken = true;
                Err(e)
            }
        },
        Err(e) => {
            if let Err(undo) = run("ROLLBACK TO append").and_then(|_| run("RELEASE append")) {
                tracing::warn!(error = %undo, "sqlite could not roll back to a savepoint");
                *broken = true;
            }
            Err(e)
        }
    }
}

/// The retry rule over the ids as stored, with the append boundary recorded on the first,
/// seen from inside the batch's transaction (so with the appends earlier in the batch).
fn retry(
    conn: &Connection,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[EventData],
) -> Result<Option<AppendResult>, AppendError> {
    let mut found = Vec::with_capacity(events.len());
    for event in events {
        found.push(rows::event_by_id(conn, event.event_id())?);
    }
    let refs: Vec<Option<&RecordedEvent>> = found.iter().map(Option::as_ref).collect();
    let first = match (events.first(), refs.first()) {
        (Some(event), Some(Some(_))) => rows::append_span(conn, event.event_id())?,
        _ => smsys_core::AppendSpan::Unknown,
    };
    resolve_append_retry(stream, expected, events, &refs, first)
}

fn rolled_back() -> StoreError {
    StoreError::Backend(smsys_core::BackendError::new(
        error::BACKEND,
        "append",
        true,
        "the transaction was rolled back by sqlite",
    ))
}

/// Answers a request that could not be handled at all.
fn fail(command: Command, e: &StoreError) {
    match command {
        Command::Append { reply, .. } => {
            let _ = reply.send(Err(AppendError::Store(copy(e))));
        }
        Command::AppendBatch { parts, reply } => {
            let _ = reply.send(
                parts
                    .iter()
                    .map(|_| Err(AppendError::Store(copy(e))))
                    .collect(),
            );
        }
        Command::Write { reply, .. } => {
            let _ = reply.send(Err(copy(e)));
        }
        Command::Close { reply } => {
            let _ = reply.send(());
        }
    }
}

/// One failure shared by every request of a batch: each caller gets its own copy.
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Backend(b) => StoreError::Backend(smsys_core::BackendError::new(
            b.backend(),
            b.operation(),
            b.is_transient(),
            e.to_string(),
        )),
        StoreError::Corrupt { what } => StoreError::Corrupt { what: what.clone() },
        StoreError::Closed { backend } => StoreError::Closed { backend },
        StoreError::CheckpointFilter(mismatch) => StoreError::CheckpointFilter(mismatch.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close() -> Command {
        let (reply, _) = oneshot::channel();
        Command::Close { reply }
    }

    /// A batch takes exactly `max_batch` requests when more are waiting, and leaves the rest
    /// in the channel for the next batch.
    #[test]
    fn a_batch_holds_at_most_max_batch_requests() {
        for max_batch in [1, 2, 3, 7] {
            let (tx, mut rx) = mpsc::channel(64);
            for _ in 0..20 {
                tx.try_send(close()).unwrap();
            }
            let first = rx.try_recv().unwrap();
            let batch = gather(first, &mut rx, max_batch, 1, Instant::now());
            assert_eq!(batch.len(), max_batch, "max_batch {max_batch}");
            let first = rx.try_recv().unwrap();
            let next = gather(first, &mut rx, max_batch, max_batch, Instant::now());
            assert_eq!(next.len(), max_batch, "max_batch {max_batch}, second batch");
            let mut left = 0;
            while rx.try_recv().is_ok() {
                left += 1;
            }
            assert_eq!(left, 20 - 2 * max_batch, "max_batch {max_batch}");
        }
    }

    /// Fewer waiting than `max_batch`: the batch takes what is there and does not wait past
    /// its deadline.
    #[test]
    fn a_batch_takes_what_waits() {
        let (tx, mut rx) = mpsc::channel(64);
        for _ in 0..3 {
            tx.try_send(close()).unwrap();
        }
        let first = rx.try_recv().unwrap();
        let batch = gather(first, &mut rx, 256, 256, Instant::now());
        assert_eq!(batch.len(), 3);
    }
}
