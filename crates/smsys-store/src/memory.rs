//! The in-memory store: the reference semantics every other backend must match.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use chrono::Utc;
use smsys_core::{
    AppendError, AppendResult, AppendSpan, CheckpointStore, EventData, EventId, EventStore,
    EventStream, ExpectedVersion, LogFilter, Position, RecordedEvent, Snapshot, SnapshotStore,
    StoreError, StreamId, Version, check_append_shape, resolve_append_retry,
};
use tokio::sync::watch;

use crate::checkpoint::{Binding, CheckpointName, check_binding, filter_text};
use crate::paging::{PagedStore, log_pages, stream_pages, subscription};

mod ci_graph;
mod record_index;

pub use ci_graph::MemoryCiGraph;
pub use record_index::MemoryRecordIndex;

#[derive(Default)]
struct Log {
    events: Vec<RecordedEvent>,
    /// Where each event of `events` (same index) stands in its append, for the retry rule.
    spans: Vec<AppendSpan>,
    streams: HashMap<StreamId, Vec<usize>>,
    ids: HashMap<EventId, usize>,
}

struct Inner {
    log: RwLock<Log>,
    commits: watch::Sender<u64>,
    /// Each checkpoint, and the filter it is bound to.
    checkpoints: Mutex<HashMap<CheckpointName, (Position, Option<String>)>>,
}

/// An event store held in memory: for tests, examples and as the reference semantics.
///
/// Appends are serialised by one lock, so positions are dense (1, 2, 3, ...) and in commit
/// order; subscriptions are woken at commit. Cloning gives another handle to the same store.
///
/// ```
/// # use smsys_core::*;
/// # use smsys_store::MemoryEventStore;
/// # use futures::StreamExt;
/// # futures::executor::block_on(async {
/// let store = MemoryEventStore::new();
/// let stream: StreamId = "incident-1".parse()?;
/// let meta = Metadata::new(
///     EventId::from_uuid(uuid::Uuid::from_u128(1))?,
///     Actor::new("agent:ana")?,
///     chrono::DateTime::UNIX_EPOCH,
/// );
/// let event = EventData::new(EventType::new("incident.logged")?, 1, serde_json::json!({}), meta)?;
/// let written = store.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
/// assert_eq!(written.version, Version::new(1));
/// let events: Vec<_> = store.read_stream(&stream, Version::FIRST).collect().await;
/// assert_eq!(events.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryEventStore {
    inner: Arc<Inner>,
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let log = self
            .inner
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryEventStore")
            .field("events", &log.events.len())
            .field("streams", &log.streams.len())
            .finish()
    }
}

impl MemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                log: RwLock::new(Log::default()),
                commits: watch::channel(0).0,
                checkpoints: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Number of events in the log.
    pub fn len(&self) -> usize {
        self.read_log().events.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read_log(&self) -> std::sync::RwLockReadGuard<'_, Log> {
        // The lock is never held across code that can panic halfway through a change.
        self.inner
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the stored payload of one event without updating its hash, as an attacker with
    /// access to the storage would. Exists for tamper-evidence tests; returns whether the event
    /// exists.
    #[cfg(feature = "testkit")]
    pub fn tamper_payload(
        &self,
        stream: &StreamId,
        version: Version,
        payload: serde_json::Value,
    ) -> bool {
        let mut log = self
            .inner
            .log
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(index) = log
            .streams
            .get(stream)
            .and_then(|s| s.get((version.get() as usize).wrapping_sub(1)))
            .copied()
        else {
            return false;
        };
        let event = &mut log.events[index];
        let (event_type, schema, _, metadata) = event.data.clone().into_parts();
        match EventData::new(event_type, schema, payload, metadata) {
            Ok(data) => {
                event.data = data;
                true
            }
            Err(_) => false,
        }
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        check_append_shape(stream, &events)?;
        let mut log = self
            .inner
            .log
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let recorded: Vec<Option<&RecordedEvent>> = events
            .iter()
            .map(|e| log.ids.get(&e.event_id()).map(|&i| &log.events[i]))
            .collect();
        let first = events
            .first()
            .and_then(|e| log.ids.get(&e.event_id()))
            .map_or(AppendSpan::Unknown, |&i| log.spans[i]);
        if let Some(original) = resolve_append_retry(stream, expected, &events, &recorded, first)? {
            return Ok(original);
        }
        let indices = log.streams.get(stream);
        let current = indices.map(|i| Version::new(i.len() as u64));
        if !expected.accepts(current) {
            return Err(AppendError::Conflict {
                stream: stream.clone(),
                expected,
                actual: current,
            });
        }
        let mut previous_hash = indices.and_then(|i| i.last()).map(|&i| log.events[i].hash);
        let mut version = current.unwrap_or_default();
        let recorded_at = Utc::now();
        let mut positions = Vec::with_capacity(events.len());
        let mut new_indices = Vec::with_capacity(events.len());
        let len = events.len();
        log.events.reserve(len);
        log.spans.reserve(len);
        log.ids.reserve(len);
        for (i, data) in events.into_iter().enumerate() {
            version = version.next();
            let index = log.events.len();
            let position = Position::from_sequence(index as u64 + 1);
            let event = RecordedEvent::record(
                stream.clone(),
                version,
                position,
                data,
                recorded_at,
                previous_hash,
            );
            previous_hash = Some(event.hash);
            log.ids.insert(event.event_id(), index);
            log.events.push(event);
            log.spans.push(AppendSpan::of(i, len));
            positions.push(position);
            new_indices.push(index);
        }
        log.streams
            .entry(stream.clone())
            .or_default()
            .extend(new_indices);
        drop(log);
        self.inner.commits.send_modify(|n| *n += 1);
        Ok(AppendResult { version, positions })
    }

    async fn find_event(&self, id: EventId) -> Result<Option<RecordedEvent>, StoreError> {
        let log = self.read_log();
        Ok(log.ids.get(&id).map(|&i| log.events[i].clone()))
    }

    fn read_stream(&self, stream: &StreamId, from: Version) -> EventStream<'_> {
        stream_pages(self, stream.clone(), Some(from), false)
    }

    fn read_stream_backwards(&self, stream: &StreamId, from: Option<Version>) -> EventStream<'_> {
        stream_pages(self, stream.clone(), from, true)
    }

    fn read_all(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        log_pages(self, after, filter)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        Ok(self
            .read_log()
            .streams
            .get(stream)
            .map(|i| Version::new(i.len() as u64)))
    }

    fn subscribe(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        subscription(self, after, filter, self.inner.commits.subscribe())
    }
}

#[async_trait]
impl PagedStore for MemoryEventStore {
    async fn stream_page(
        &self,
        stream: &StreamId,
        from: Version,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.read_log();
        let Some(indices) = log.streams.get(stream) else {
            return Ok(Vec::new());
        };
        let from = from.get().max(1) as usize;
        let page = if backwards {
            let end = from.min(indices.len());
            indices[..end]
                .iter()
                .rev()
                .take(limit)
                .map(|&i| log.events[i].clone())
                .collect()
        } else {
            indices
                .iter()
                .skip(from - 1)
                .take(limit)
                .map(|&i| log.events[i].clone())
                .collect()
        };
        Ok(page)
    }

    async fn log_page(
        &self,
        after: Position,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if after.commit() != 0 {
            // Not a position of this store: it lies beyond everything here.
            return Ok(Vec::new());
        }
        let log = self.read_log();
        let start = (after.sequence() as usize).min(log.events.len());
        Ok(log.events[start..]
            .iter()
            .filter(|e| filter.matches(e))
            .take(limit)
            .cloned()
            .collect())
    }
}

impl MemoryEventStore {
    fn checkpoints(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<CheckpointName, (Position, Option<String>)>> {
        self.inner
            .checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Checkpoints kept in memory, beside the log, under names checked like every store's
/// ([`CheckpointName`]), each bound to the filter of its reader.
#[async_trait]
impl CheckpointStore for MemoryEventStore {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let name = CheckpointName::check(name, "memory", "load checkpoint")?;
        Ok(self.checkpoints().get(&name).map(|(position, _)| *position))
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        let name = CheckpointName::check(name, "memory", "save checkpoint")?;
        self.checkpoints()
            .entry(name)
            .and_modify(|(kept, _)| *kept = position)
            .or_insert((position, None));
        Ok(())
    }

    async fn load_checkpoint_for(
        &self,
        name: &str,
        filter: &LogFilter,
    ) -> Result<Option<Position>, StoreError> {
        let name = CheckpointName::check(name, "memory", "load checkpoint")?;
        let mut checkpoints = self.checkpoints();
        let kept = checkpoints.get(&name);
        let position = kept.map(|(position, _)| *position);
        if check_binding(&name, kept.and_then(|(_, f)| f.as_deref()), filter)? == Binding::Unbound {
            let start = position.unwrap_or(Position::START);
            checkpoints.insert(name, (start, Some(filter_text(filter))));
        }
        Ok(position)
    }
}

/// Snapshots kept in memory.
#[derive(Debug, Default, Clone)]
pub struct MemorySnapshotStore {
    snapshots: Arc<Mutex<HashMap<StreamId, Snapshot>>>,
}

impl MemorySnapshotStore {
    /// An empty snapshot store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SnapshotStore for MemorySnapshotStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let snapshots = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(snapshots.get(stream).cloned())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut snapshots = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let newer = snapshots
            .get(&snapshot.stream)
            .is_none_or(|kept| kept.version <= snapshot.version);
        if newer {
            snapshots.insert(snapshot.stream.clone(), snapshot);
        }
        Ok(())
    }
}
