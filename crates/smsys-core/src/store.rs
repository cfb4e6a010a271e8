//! The storage contract every backend implements: [`EventStore`].

use std::error::Error as StdError;
use std::fmt;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::event::{EventData, EventId, EventType, RecordedEvent};
use crate::snapshot::SnapshotStore;
use crate::stream::{Category, ExpectedVersion, Position, StreamId, Version};

mod retry;

pub use retry::{AppendSpan, resolve_append_retry, resolve_retry};

/// A stream of recorded events, read lazily: stores fetch in pages, so memory stays bounded
/// whatever the size of the log.
pub type EventStream<'a> = BoxStream<'a, Result<RecordedEvent, StoreError>>;

/// What an append wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// The stream's version after the append: the version of its last event.
    pub version: Version,
    /// The global position of each appended event, in append order.
    pub positions: Vec<Position>,
}

impl AppendResult {
    /// The version of the first appended event.
    pub fn first_version(&self) -> Version {
        Version::new(self.version.get() + 1 - self.positions.len() as u64)
    }
}

/// One stream's part of a batched append ([`EventStore::append_batch`]): the events to append
/// to `stream` if its version matches `expected`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// The stream.
    pub stream: StreamId,
    /// The version the stream must be at.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<EventData>,
}

impl StreamAppend {
    /// Appends `events` to `stream` if its version matches `expected`.
    pub fn new(stream: StreamId, expected: ExpectedVersion, events: Vec<EventData>) -> Self {
        Self {
            stream,
            expected,
            events,
        }
    }
}

/// A failure of the storage backend itself (I/O, connection, driver), as opposed to a refusal
/// of the request. Driver error types never appear in the public API; they are the `source`.
#[derive(Debug, thiserror::Error)]
#[error("{backend} {operation} failed{}", if *.transient { " (transient, may be retried)" } else { "" })]
pub struct BackendError {
    backend: &'static str,
    operation: &'static str,
    transient: bool,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl BackendError {
    /// A backend failure during `operation` (e.g. "append", "read stream").
    pub fn new(
        backend: &'static str,
        operation: &'static str,
        transient: bool,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            backend,
            operation,
            transient,
            source: source.into(),
        }
    }

    /// Which backend failed (e.g. "sqlite").
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// What it was doing.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// Whether retrying the same call may succeed (a lost connection, a busy database).
    /// After a transient failure of an append, retry with the same event ids: the store
    /// recognises an append that did commit and returns its original result.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// Failure of a store operation that is not a refusal of the request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Stored data could not be read back (damaged file, foreign schema, bad JSON).
    #[error("stored data is unreadable: {what}")]
    Corrupt {
        /// What could not be read, and where.
        what: String,
    },
    /// The store was closed or its worker stopped.
    #[error("the {backend} store is closed")]
    Closed {
        /// Which backend.
        backend: &'static str,
    },
    /// A checkpoint is kept for a reader of other events than the one asking for it:
    /// resuming from it would skip the events the new filter accepts before it. Nothing was
    /// changed. Run the new reader under a new name (it starts from the beginning), or, for a
    /// record index, clear it to rebuild it.
    #[error("{0}")]
    CheckpointFilter(Box<FilterMismatch>),
}

/// A checkpoint asked for by a reader of another filter than the one it is bound to (see
/// [`CheckpointStore::load_checkpoint_for`](crate::CheckpointStore::load_checkpoint_for)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "checkpoint {name} is kept for {kept}, not for {requested}: resuming from it would skip events; run the reader under a new name (a record index: or clear it to rebuild it)"
)]
pub struct FilterMismatch {
    /// The checkpoint's name.
    pub name: String,
    /// The filter it is bound to.
    pub kept: LogFilter,
    /// The filter of the reader that asked.
    pub requested: LogFilter,
}

/// Why an append was refused or failed. Nothing was written in any case but a
/// [`StoreError`] that is transient, where the outcome is unknown until retried.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The stream's version did not match the expected version (optimistic concurrency).
    #[error("append to {stream} expected {expected}, but the stream {}", match .actual {
        Some(v) => format!("is at version {v}"),
        None => "does not exist".to_owned(),
    })]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's actual version (`None`: no such stream).
        actual: Option<Version>,
    },
    /// The append held no events.
    #[error("append to {stream} holds no events")]
    NoEvents {
        /// The stream.
        stream: StreamId,
    },
    /// The same event id appears twice in one append.
    #[error("append to {stream} gives event id {event_id} twice")]
    DuplicateEventId {
        /// The stream.
        stream: StreamId,
        /// The repeated id.
        event_id: EventId,
    },
    /// An event id is already recorded, with other content or at another place: an id was
    /// reused for a different event (a retry of the same append is not an error).
    #[error(
        "append to {stream}: event id {event_id} is already recorded as version {recorded_version} of {recorded_stream} with other content or at another place"
    )]
    EventIdReused {
        /// The stream appended to.
        stream: StreamId,
        /// The reused id.
        event_id: EventId,
        /// Where the id is recorded.
        recorded_stream: StreamId,
        /// At which version.
        recorded_version: Version,
    },
    /// An event is outside the limits every store reads back (see [`EventData::check`]).
    #[error("append to {stream}: event {event_id}: {reason}")]
    Invalid {
        /// The stream.
        stream: StreamId,
        /// The event.
        event_id: EventId,
        /// What is wrong with it.
        reason: crate::event::EventDataError,
    },
    /// An event names another tenant than the handle appended through
    /// ([`TenantStore`](crate::TenantStore)): a tenant's handle writes that tenant's events only.
    #[error("append to {stream}: event {event_id} names another tenant than the handle's")]
    ForeignTenant {
        /// The stream.
        stream: StreamId,
        /// The event.
        event_id: EventId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppendError {
    /// Whether this is an optimistic-concurrency conflict (re-load, re-decide, retry).
    pub fn is_conflict(&self) -> bool {
        matches!(self, AppendError::Conflict { .. })
    }
}

/// Which events of the global log to read: by category and/or by event type.
/// An empty list means "all".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    categories: Vec<Category>,
    event_types: Vec<EventType>,
}

impl LogFilter {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Also accept events of streams in `category` (and only such categories).
    pub fn category(mut self, category: Category) -> Self {
        self.categories.push(category);
        self
    }

    /// Also accept events of type `event_type` (and only such types).
    pub fn event_type(mut self, event_type: EventType) -> Self {
        self.event_types.push(event_type);
        self
    }

    /// The categories accepted (empty: all).
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The event types accepted (empty: all).
    pub fn event_types(&self) -> &[EventType] {
        &self.event_types
    }

    /// The same filter with its categories and event types sorted and without repeats: two
    /// filters accept the same events exactly when their canonical forms are equal.
    ///
    /// ```
    /// use smsys_core::{Category, LogFilter};
    /// let a = LogFilter::all().category(Category::new("request")?).category(Category::new("incident")?);
    /// let b = LogFilter::all().category(Category::new("incident")?).category(Category::new("request")?);
    /// assert_ne!(a, b);
    /// assert_eq!(a.canonical(), b.canonical());
    /// # Ok::<(), smsys_core::IdError>(())
    /// ```
    pub fn canonical(&self) -> Self {
        let mut canonical = self.clone();
        canonical.categories.sort();
        canonical.categories.dedup();
        canonical.event_types.sort();
        canonical.event_types.dedup();
        canonical
    }

    /// Whether the filter accepts everything.
    pub fn is_all(&self) -> bool {
        self.categories.is_empty() && self.event_types.is_empty()
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        (self.categories.is_empty()
            || self
                .categories
                .iter()
                .any(|c| c.as_str() == event.stream.category_str()))
            && (self.event_types.is_empty()
                || self.event_types.iter().any(|t| t == event.event_type()))
    }
}

impl fmt::Display for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all events");
        }
        let cats: Vec<&str> = self.categories.iter().map(Category::as_str).collect();
        let types: Vec<&str> = self.event_types.iter().map(EventType::as_str).collect();
        write!(f, "categories {cats:?}, event types {types:?}")
    }
}

/// The system of record: append-only event streams with optimistic concurrency and one global
/// log order.
///
/// Guarantees every implementation gives (the `testkit` conformance suite checks them):
/// - an append is atomic: all its events or none are stored;
/// - an append succeeds only if `expected` holds at commit; a refused append writes nothing;
/// - appending again exactly the events of an earlier append (the same ids, content and
///   stream, at the same versions, all of them and no more) returns the original result and
///   writes nothing (retry safety); any other use of a recorded id is refused, a part of an
///   earlier append included (see [`resolve_append_retry`]);
/// - versions of a stream run 1, 2, 3, ... without gaps;
/// - positions strictly increase along the log, and the log order is the same for every reader;
/// - a subscription delivers every event after its checkpoint exactly once, in log order, and
///   never skips an event that commits after a later-positioned one was delivered;
/// - every recorded event carries the hash chain link of [`crate::chain`].
///
/// Reads return lazily fetched streams; use [`futures::StreamExt::take`] for a limit.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` atomically to `stream` if its version matches `expected`.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError>;

    /// Appends to many streams in one go: each [`StreamAppend`] is checked and written exactly
    /// as [`EventStore::append`] would (its own expected version, all or nothing, retries
    /// recognised), as if the appends ran one after another in the order given, so a stream
    /// named twice sees its earlier part. A refused append does not affect the others. Returns
    /// one result per append, in order. Each part is an append of its own, for the retry rule
    /// too: a part is a retry of exactly one earlier part or append ([`resolve_append_retry`]).
    ///
    /// Backends write the whole batch in one transaction where they can (one commit on SQLite,
    /// one round-trip set on PostgreSQL): this is the path for imports and bulk loads. The
    /// default runs the appends one by one.
    async fn append_batch(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Vec<Result<AppendResult, AppendError>> {
        let mut results = Vec::with_capacity(appends.len());
        for StreamAppend {
            stream,
            expected,
            events,
        } in appends
        {
            results.push(self.append(&stream, expected, events).await);
        }
        results
    }

    /// The recorded event with id `id`, if any. The command handler looks a command's first
    /// event up when the command is run again ([`CommandMeta::with_command_id`]).
    ///
    /// The default walks the log; stores answer from their event-id index.
    ///
    /// [`CommandMeta::with_command_id`]: crate::CommandMeta::with_command_id
    async fn find_event(&self, id: EventId) -> Result<Option<RecordedEvent>, StoreError> {
        use futures::StreamExt;
        let mut log = self.read_all(Position::START, LogFilter::all());
        while let Some(event) = log.next().await {
            let event = event?;
            if event.event_id() == id {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    /// The store's own snapshot table, if it has one: a
    /// [`CommandHandler`](crate::CommandHandler) keeps snapshots of long streams there unless
    /// given another place. The default has none.
    fn snapshots(&self) -> Option<&dyn SnapshotStore> {
        None
    }

    /// The stream's events from version `from` (inclusive) onwards, oldest first. An unknown
    /// stream reads as empty.
    fn read_stream(&self, stream: &StreamId, from: Version) -> EventStream<'_>;

    /// The stream's events newest first, starting at version `from` (inclusive) or at the
    /// newest event when `from` is `None`. `.take(n)` gives the last `n` events.
    fn read_stream_backwards(&self, stream: &StreamId, from: Option<Version>) -> EventStream<'_>;

    /// The global log after position `after` (exclusive), in log order, filtered. Ends at the
    /// end of the log as it was when read.
    fn read_all(&self, after: Position, filter: LogFilter) -> EventStream<'_>;

    /// The stream's current version, `None` when it does not exist.
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError>;

    /// A catch-up subscription: the log after `after`, then every event committed later, live,
    /// in log order, exactly once. It ends only when the store closes or fails.
    fn subscribe(&self, after: Position, filter: LogFilter) -> EventStream<'_>;
}

/// Checks an append's own shape before any store work: at least one event, no id twice, every
/// event within the limits of [`EventData::check`].
pub fn check_append_shape(stream: &StreamId, events: &[EventData]) -> Result<(), AppendError> {
    if events.is_empty() {
        return Err(AppendError::NoEvents {
            stream: stream.clone(),
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    for event in events {
        event.check().map_err(|reason| AppendError::Invalid {
            stream: stream.clone(),
            event_id: event.event_id(),
            reason,
        })?;
        if !seen.insert(event.event_id()) {
            return Err(AppendError::DuplicateEventId {
                stream: stream.clone(),
                event_id: event.event_id(),
            });
        }
    }
    Ok(())
}
