//! The SQLite event store: the embedded default.
//!
//! One file, WAL mode, STRICT tables, numbered migrations applied on open. One writer thread
//! does every write with group commit (see the `writer` module); a batched append
//! ([`EventStore::append_batch`]) goes to it as one request per about 16,384 events, each
//! written in one transaction. Reads go through a small pool of read-only connections on
//! tokio's blocking pool. The forward reads (`read_stream`, `read_all` and a subscription's
//! catch-up) ask for the next page while the caller consumes the current one; the blocking
//! pool only copies a page's rows out of SQLite, and the caller's task decodes each event as it
//! takes it (the `reader` and `page` modules). Positions are dense from 1 and in commit order.
//! Needs a tokio runtime (for `spawn` and `spawn_blocking`).
//!
//! The read side lives in the same file: named checkpoints (the store is a
//! [`CheckpointStore`]) and record indexes ([`SqliteEventStore::record_index`]) whose rows and
//! checkpoint are written by the same writer in one transaction.
//!
//! ```
//! # use futures::StreamExt;
//! # use smsys_core::*;
//! # use smsys_store::{Durability, SqliteEventStore, SqliteOptions};
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteOptions::new(dir.path().join("smsys.db"))
//!     .durability(Durability::Full)
//!     .open()
//!     .await?;
//! let stream: StreamId = "incident-1".parse()?;
//! let meta = Metadata::new(
//!     EventId::from_uuid(uuid::Uuid::now_v7())?,
//!     Actor::new("agent:ana")?,
//!     chrono::DateTime::UNIX_EPOCH,
//! );
//! let event = EventData::new(EventType::new("incident.logged")?, 1, serde_json::json!({}), meta)?;
//! let written = store.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
//! assert_eq!(written.positions, vec![Position::from_sequence(1)]);
//! assert!(store.verify().await?.is_intact());
//! store.close().await;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use smsys_core::{
    AppendError, AppendResult, BackendError, CheckpointStore, EventData, EventId, EventStore,
    EventStream, ExpectedVersion, LogFilter, Position, RecordedEvent, Snapshot, SnapshotStore,
    StoreError, StreamAppend, StreamId, VerifyReport, Version, check_append_shape,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::paging::{PAGE_SIZE, PagedStore, stream_pages, subscription};

mod ci_graph;
mod error;
mod index;
mod keys;
mod page;
mod reader;
mod rows;
mod schema;
mod tenants;
mod writer;

pub use ci_graph::SqliteCiGraph;
use error::BACKEND;
pub use index::SqliteRecordIndex;
pub use keys::SqliteKeyStore;
pub use tenants::{MAX_TENANT_FILE_NAME_LEN, SqliteTenants, SqliteTenantsError};
use writer::{Command, MAX_BATCH_EVENTS, Part, Write};

use crate::checkpoint::CheckpointName;

/// Events per page of the forward reads (`read_stream`, `read_all`), which fetch the next
/// page while the current one is consumed.
const READ_PAGE: usize = PAGE_SIZE;

/// When an acknowledged append is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: the write-ahead log is fsynced at every commit, so an acknowledged
    /// append survives a killed process and a power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the write-ahead log is fsynced only at checkpoints. An
    /// acknowledged append survives a killed process, but the last commits can be lost on a
    /// power loss or an operating-system crash (the file stays consistent). Faster.
    Normal,
}

/// Why a store file could not be opened. A refused file is left byte-for-byte untouched.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file is not an smsys store: garbage, or a SQLite database of another application.
    #[error("{} is not an smsys store: {why}", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        why: String,
    },
    /// The file was written by a newer smsys with a schema this build does not know.
    #[error("the store has schema version {found}, this build supports up to {supported}")]
    SchemaTooNew {
        /// The file's schema version.
        found: u32,
        /// The newest schema version this build knows.
        supported: u32,
    },
    /// The file is an smsys store but damaged (e.g. truncated).
    #[error("{} is damaged: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed while opening or migrating.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// How to open a [`SqliteEventStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    path: PathBuf,
    durability: Durability,
    read_connections: usize,
    max_batch: usize,
    gather_window: Option<Duration>,
}

impl SqliteOptions {
    /// Defaults for the store file at `path`: [`Durability::Full`], 4 read connections,
    /// batches of up to 256 requests.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Full,
            read_connections: 4,
            max_batch: 256,
            gather_window: None,
        }
    }

    /// When an append is acknowledged; see [`Durability`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How many read connections may run queries at once (at least 1).
    pub fn read_connections(mut self, n: usize) -> Self {
        self.read_connections = n.max(1);
        self
    }

    /// How many waiting requests one transaction takes at most (at least 1).
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// How long the writer may wait for more requests before committing a batch, when the
    /// previous batch showed concurrent writers. Default: 250 µs under [`Durability::Full`]
    /// (a fraction of one fsync, which the wait lets many appends share), none under
    /// [`Durability::Normal`] (commits are cheap). A lone writer never waits.
    pub fn gather_window(mut self, window: Duration) -> Self {
        self.gather_window = Some(window);
        self
    }

    /// Opens the store, creating the file if it does not exist and migrating an older schema.
    pub async fn open(mut self) -> Result<SqliteEventStore, OpenError> {
        // SQLite keeps the journal and the write-ahead log beside the file a link points to:
        // every check before opening must look there too.
        self.path = schema::resolve_link(&self.path);
        let path = self.path.clone();
        let durability = self.durability;
        let conn = tokio::task::spawn_blocking(move || schema::open_writer(&path, durability))
            .await
            .map_err(|e| BackendError::new(BACKEND, "open", false, e))??;
        let (commits, commits_rx) = watch::channel(0);
        let (requests, requests_rx) = mpsc::channel(self.max_batch.saturating_mul(4).max(16));
        let window = self.gather_window.unwrap_or(match self.durability {
            Durability::Full => Duration::from_micros(250),
            Durability::Normal => Duration::ZERO,
        });
        let writer = writer::Writer::new(conn, commits, self.max_batch, window);
        std::thread::Builder::new()
            .name("smsys-sqlite-writer".to_owned())
            .spawn(move || writer.run(requests_rx))
            .map_err(|e| BackendError::new(BACKEND, "start writer", false, e))?;
        tracing::debug!(path = %self.path.display(), durability = ?self.durability, "sqlite store open");
        Ok(SqliteEventStore {
            inner: Arc::new(Inner {
                readers: Arc::new(reader::ReadPool::new(
                    self.path.clone(),
                    self.read_connections,
                )),
                options: self,
                requests,
                commits: commits_rx,
            }),
        })
    }
}

struct Inner {
    options: SqliteOptions,
    requests: mpsc::Sender<Command>,
    readers: Arc<reader::ReadPool>,
    commits: watch::Receiver<u64>,
}

/// An event store in one SQLite file. Cloning gives another handle to the same store; the
/// writer stops when the last handle is dropped or [`close`](Self::close) is called.
///
/// Each handle opened on a file has its own writer; several on one file (or several
/// processes) stay correct, since every batch re-reads the heads it checks inside its
/// transaction, but subscriptions are only woken by commits of their own handle's writer.
#[derive(Clone)]
pub struct SqliteEventStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEventStore")
            .field("path", &self.inner.options.path)
            .field("durability", &self.inner.options.durability)
            .finish()
    }
}

impl SqliteEventStore {
    /// Opens the store at `path` with the default [`SqliteOptions`].
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, OpenError> {
        SqliteOptions::new(path).open().await
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.options.path
    }

    /// The durability the store was opened with.
    pub fn durability(&self) -> Durability {
        self.inner.options.durability
    }

    /// Checks the whole file: SQLite's own structure (`PRAGMA quick_check`); what the hash
    /// chain does not cover (each stream's stored category is the one its name gives, which
    /// log filters select by, and the positions are dense from 1: a deleted event is found
    /// even where it was a stream's last), a failure being a [`StoreError::Corrupt`] naming
    /// the stream or the first missing position; then the hash chain of every event in log
    /// order and every seal ([`smsys_core::seal`]). Returns the first event whose hash, link,
    /// version or position does not hold and every seal that does not; every event too
    /// damaged to be read is listed in [`VerifyReport::undecodable`] (naming its position, its
    /// stream and version when readable, and the column) and the walk goes on past it (its
    /// stream's chain then breaks at its next event).
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let problems = self
            .inner
            .readers
            .run(|conn| {
                let mut stmt = conn
                    .prepare("PRAGMA quick_check")
                    .map_err(|e| error::store("quick check", e))?;
                let lines = stmt
                    .query_map([], |r| r.get::<_, String>(0))
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(|e| error::store("quick check", e))?;
                Ok(lines)
            })
            .await?;
        if problems.iter().any(|line| line != "ok") {
            return Err(StoreError::Corrupt {
                what: format!("sqlite quick_check: {}", problems.join("; ")),
            });
        }
        self.inner.readers.run(rows::check_log).await?;
        match smsys_core::seal::verify_sealed(self).await {
            Err(StoreError::Corrupt { what }) => {
                // A row too damaged to decode: list every such row, and walk past them.
                let undecodable = self
                    .inner
                    .readers
                    .run(|conn| rows::undecodable_rows(conn, READ_PAGE))
                    .await?;
                if undecodable.is_empty() {
                    return Err(StoreError::Corrupt { what });
                }
                smsys_core::seal::verify_sealed_past(self, undecodable).await
            }
            other => other,
        }
    }

    /// The record index kept in this file under `name` (see [`SqliteRecordIndex`]). Indexes
    /// of other names in the same file are left alone by everything it does.
    pub fn record_index(&self, name: CheckpointName) -> SqliteRecordIndex {
        SqliteRecordIndex::new(self.clone(), name)
    }

    /// Finishes the requests already sent, closes every connection (checkpointing the
    /// write-ahead log into the file) and returns. Later calls on any handle fail with
    /// [`StoreError::Closed`].
    pub async fn close(&self) {
        // Readers first, so that the writer's connection is the last one: closing it
        // checkpoints the write-ahead log into the file and removes it.
        self.inner.readers.close().await;
        let (reply, done) = oneshot::channel();
        if self
            .inner
            .requests
            .send(Command::Close { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Closed { backend: BACKEND };
        self.inner
            .requests
            .send(command(reply))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        check_append_shape(stream, &events)?;
        let stream = stream.clone();
        self.request(|reply| Command::Append {
            stream,
            expected,
            events,
            reply,
        })
        .await?
    }

    /// Sends the parts to the writer, which handles them exactly as the same appends sent one
    /// after another, in one transaction: one `COMMIT`, one fsync, subscriptions woken once.
    ///
    /// A large batch goes in requests of about 16,384 events (whole parts; a part larger than
    /// that goes alone), each committed before the next is sent, so memory and the time other
    /// writers wait stay bounded on a bulk load of any size. Atomicity is per part in any case:
    /// once an earlier request has committed, a later one that fails leaves it stored, other
    /// writers' appends may commit between two requests, and the parts that fail report a
    /// transient error; retrying the whole batch with the same event ids returns the original
    /// result for every part that was stored.
    async fn append_batch(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Vec<Result<AppendResult, AppendError>> {
        let mut results = Vec::with_capacity(appends.len());
        let mut appends = appends.into_iter().peekable();
        while appends.peek().is_some() {
            // One request: parts up to about MAX_BATCH_EVENTS events. A malformed part is
            // answered here and holds its place (`None` marks a part sent to the writer).
            let mut answers: Vec<Option<Result<AppendResult, AppendError>>> = Vec::new();
            let mut parts = Vec::new();
            let mut events = 0;
            while let Some(append) = appends.next_if(|_| events < MAX_BATCH_EVENTS) {
                match check_append_shape(&append.stream, &append.events) {
                    Ok(()) => {
                        events += append.events.len();
                        answers.push(None);
                        parts.push(Part {
                            stream: append.stream,
                            expected: append.expected,
                            events: append.events,
                        });
                    }
                    Err(refused) => answers.push(Some(Err(refused))),
                }
            }
            let sent = parts.len();
            let (mut written, closed) = if sent == 0 {
                (Vec::new().into_iter(), false)
            } else {
                match self
                    .request(|reply| Command::AppendBatch { parts, reply })
                    .await
                {
                    Ok(written) => {
                        if written.len() != sent {
                            tracing::error!(
                                sent,
                                answered = written.len(),
                                "sqlite writer answered a batch with the wrong number of results"
                            );
                        }
                        (written.into_iter(), false)
                    }
                    Err(_) => (Vec::new().into_iter(), true),
                }
            };
            tracing::trace!(
                parts = answers.len(),
                events,
                "sqlite batch request answered"
            );
            results.extend(answers.into_iter().map(|answer| {
                answer.or_else(|| written.next()).unwrap_or_else(|| {
                    Err(if closed {
                        StoreError::Closed { backend: BACKEND }
                    } else {
                        // The outcome is unknown: a retry with the same ids settles it.
                        StoreError::Backend(BackendError::new(
                            BACKEND,
                            "append batch",
                            true,
                            "the writer gave no answer for this part",
                        ))
                    }
                    .into())
                })
            }));
        }
        results
    }

    fn read_stream(&self, stream: &StreamId, from: Version) -> EventStream<'_> {
        let cursor = reader::Cursor::Stream {
            stream: stream.clone(),
            from,
        };
        Box::pin(reader::Pages::new(
            Arc::clone(&self.inner.readers),
            cursor,
            READ_PAGE,
        ))
    }

    fn read_stream_backwards(&self, stream: &StreamId, from: Option<Version>) -> EventStream<'_> {
        stream_pages(self, stream.clone(), from, true)
    }

    fn read_all(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        let cursor = reader::Cursor::Log {
            after,
            filter: Arc::new(filter),
        };
        Box::pin(reader::Pages::new(
            Arc::clone(&self.inner.readers),
            cursor,
            READ_PAGE,
        ))
    }

    fn snapshots(&self) -> Option<&dyn SnapshotStore> {
        Some(self)
    }

    async fn find_event(&self, id: EventId) -> Result<Option<RecordedEvent>, StoreError> {
        self.inner
            .readers
            .run(move |conn| rows::event_by_id(conn, id))
            .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |conn| rows::stream_version(conn, &stream))
            .await
    }

    /// Catches up with the same forward read as `read_all` (the next page read while this one
    /// is consumed), then follows the log from the last event delivered with the shared
    /// subscription of [`crate::paging`], whose first read happens at once: what committed
    /// during the catch-up is read then, so nothing is skipped.
    fn subscribe(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        enum Phase<'a> {
            CatchUp {
                pages: reader::Pages,
                last: Position,
            },
            Live(EventStream<'a>),
            Done,
        }
        let cursor = reader::Cursor::Log {
            after,
            filter: Arc::new(filter.clone()),
        };
        let pages = reader::Pages::new(Arc::clone(&self.inner.readers), cursor, READ_PAGE);
        let start = Phase::CatchUp { pages, last: after };
        futures::stream::unfold(
            (start, Some(filter)),
            move |(mut phase, mut filter)| async move {
                loop {
                    match phase {
                        Phase::CatchUp { mut pages, last } => match pages.next().await {
                            Some(Ok(event)) => {
                                let last = event.position;
                                return Some((Ok(event), (Phase::CatchUp { pages, last }, filter)));
                            }
                            Some(Err(e)) => return Some((Err(e), (Phase::Done, None))),
                            None => {
                                let filter = filter.take()?;
                                let commits = self.inner.commits.clone();
                                phase = Phase::Live(subscription(self, last, filter, commits));
                            }
                        },
                        Phase::Live(mut live) => {
                            let item = live.next().await?;
                            return Some((item, (Phase::Live(live), None)));
                        }
                        Phase::Done => return None,
                    }
                }
            },
        )
        .boxed()
    }
}

#[async_trait]
impl PagedStore for SqliteEventStore {
    async fn stream_page(
        &self,
        stream: &StreamId,
        from: Version,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |conn| {
                let mut page = page::Page::default();
                rows::stream_page(conn, &stream, from, backwards, limit, &mut page)?;
                page.into_events(page::Streams::Known(&stream))
            })
            .await
    }

    async fn log_page(
        &self,
        after: Position,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let filter = filter.clone();
        self.inner
            .readers
            .run(move |conn| {
                let mut page = page::Page::default();
                rows::log_page(conn, after, &filter, limit, &mut page)?;
                page.into_events(page::Streams::Named(&mut page::StreamNames::new(limit)))
            })
            .await
    }
}

#[async_trait]
impl SnapshotStore for SqliteEventStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let stream = stream.clone();
        self.inner
            .readers
            .run(move |conn| rows::load_snapshot(conn, &stream))
            .await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.request(|reply| Command::Write {
            write: Write::Snapshot(snapshot),
            reply,
        })
        .await?
    }
}

/// Checkpoints in the store's file (table `checkpoints`), written by the writer thread: a
/// saved checkpoint is as durable as an append (see [`Durability`]). A record index's
/// checkpoint is kept here under the index's name.
#[async_trait]
impl CheckpointStore for SqliteEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let name = CheckpointName::check(name, BACKEND, "load checkpoint")?;
        self.inner
            .readers
            .run(move |conn| rows::load_checkpoint(conn, &name))
            .await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        let name = CheckpointName::check(name, BACKEND, "save checkpoint")?;
        let position = rows::StoredPosition::new(position, "save checkpoint")?;
        self.request(|reply| Command::Write {
            write: Write::Checkpoint { name, position },
            reply,
        })
        .await?
    }

    async fn load_checkpoint_for(
        &self,
        name: &str,
        filter: &LogFilter,
    ) -> Result<Option<Position>, StoreError> {
        let name = CheckpointName::check(name, BACKEND, "load checkpoint")?;
        self.load_checkpoint_for(&name, filter).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryEventStore;
    use futures::StreamExt;
    use smsys_core::{Actor, EventId, EventType, Metadata};

    fn event(n: u64) -> EventData {
        let meta = Metadata::new(
            EventId::from_uuid(uuid::Uuid::now_v7()).unwrap(),
            Actor::new("tester").unwrap(),
            chrono::DateTime::UNIX_EPOCH,
        );
        EventData::new(
            EventType::new("batch.t").unwrap(),
            1,
            serde_json::json!({ "n": n }),
            meta,
        )
        .unwrap()
    }

    /// A batch of several requests' worth of parts: new streams, streams named again in a
    /// later request (after a commit), conflicts, malformed parts and a part repeated as a
    /// retry. Every result equals the reference store's, and the log holds the same events.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_larger_than_a_transaction_agrees_with_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteEventStore::open(dir.path().join("store.db"))
            .await
            .unwrap();
        let memory = MemoryEventStore::new();
        let streams: Vec<StreamId> = (0..6_000)
            .map(|i| format!("bulk-{i}").parse().unwrap())
            .collect();
        let mut parts = Vec::new();
        let mut n = 0u64;
        let mut events = |count: u64| {
            n += count;
            (n - count..n).map(event).collect::<Vec<_>>()
        };
        // Three rounds over every stream: about 3 * 6,000 * 2 events, over three requests.
        for round in 0..3u64 {
            for (i, stream) in streams.iter().enumerate() {
                let count = 1 + (i as u64 + round) % 3;
                let expected = match (round, i % 97) {
                    (_, 13) => ExpectedVersion::Exact(Version::new(99)),
                    (0, _) => ExpectedVersion::NoStream,
                    _ => ExpectedVersion::Any,
                };
                parts.push(StreamAppend::new(stream.clone(), expected, events(count)));
            }
        }
        parts.push(StreamAppend::new(
            streams[1].clone(),
            ExpectedVersion::Any,
            vec![],
        ));
        let repeated = parts[5].clone();
        parts.push(repeated);
        let twice = event(0);
        parts.push(StreamAppend::new(
            streams[2].clone(),
            ExpectedVersion::Any,
            vec![twice.clone(), twice],
        ));
        let total: usize = parts.iter().map(|p| p.events.len()).sum();
        assert!(
            total > 2 * MAX_BATCH_EVENTS,
            "the batch spans several requests"
        );

        let got = sqlite.append_batch(parts.clone()).await;
        let want = memory.append_batch(parts).await;
        assert_eq!(got.len(), want.len());
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "part {i}"),
                (Err(got), Err(want)) => {
                    assert_eq!(format!("{got:?}"), format!("{want:?}"), "part {i}")
                }
                _ => panic!("part {i}: sqlite {got:?}, reference {want:?}"),
            }
        }
        assert!(want.iter().any(Result::is_err) && want.iter().any(Result::is_ok));
        let stored: Vec<RecordedEvent> = sqlite
            .read_all(Position::START, LogFilter::all())
            .map(Result::unwrap)
            .collect()
            .await;
        let reference: Vec<RecordedEvent> = memory
            .read_all(Position::START, LogFilter::all())
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(stored.len(), reference.len());
        for (s, r) in stored.iter().zip(&reference) {
            assert_eq!(
                (&s.stream, s.version, s.position, &s.data),
                (&r.stream, r.version, r.position, &r.data)
            );
        }
        assert!(sqlite.verify().await.unwrap().is_intact());
        sqlite.close().await;
    }

    /// A subscription catches up over several pages (read ahead), then follows live appends,
    /// each event once and in log order; a plain read of a stream sees its pages in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscription_catches_up_over_pages_then_follows() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open(dir.path().join("store.db"))
            .await
            .unwrap();
        let streams: Vec<StreamId> = (0..3)
            .map(|i| format!("sub-{i}").parse().unwrap())
            .collect();
        let before = 3 * READ_PAGE as u64 + 7;
        let parts: Vec<StreamAppend> = (0..before)
            .map(|n| {
                let stream = streams[(n % 3) as usize].clone();
                StreamAppend::new(stream, ExpectedVersion::Any, vec![event(n)])
            })
            .collect();
        assert!(store.append_batch(parts).await.iter().all(Result::is_ok));
        let mut subscription = store.subscribe(Position::START, LogFilter::all());
        let mut seen = 0u64;
        while seen < before {
            let event = subscription.next().await.unwrap().unwrap();
            seen += 1;
            assert_eq!(event.position, Position::from_sequence(seen));
            assert_eq!(event.data.payload()["n"], seen - 1);
        }
        for n in before..before + 5 {
            store
                .append(&streams[0], ExpectedVersion::Any, vec![event(n)])
                .await
                .unwrap();
            let event = subscription.next().await.unwrap().unwrap();
            seen += 1;
            assert_eq!(event.position, Position::from_sequence(seen));
            assert_eq!(event.data.payload()["n"], n);
        }
        let versions: Vec<u64> = store
            .read_stream(&streams[1], Version::FIRST)
            .map(|e| e.unwrap().version.get())
            .collect()
            .await;
        assert_eq!(versions, (1..=before / 3).collect::<Vec<_>>());
        drop(subscription);
        store.close().await;
    }
}
