//! Projections: read models that follow the log from a durable checkpoint.
//!
//! A [`Projection`] handles recorded events in log order, in batches, and keeps its own
//! checkpoint: the position of the last event whose effect it holds. The
//! [`ProjectionRunner`] catches a projection up from its checkpoint, then follows the log live.
//!
//! The exactly-once contract:
//! - delivery is at least once: after a crash, the events after the last saved checkpoint are
//!   delivered again;
//! - a projection whose read model lives in the same database as its checkpoint writes both in
//!   one transaction (the record index on SQLite and PostgreSQL does): the effect is exactly
//!   once;
//! - any other projection (a read model elsewhere, kept with a [`CheckpointStore`]) must be
//!   idempotent by position or by stream version: applying an event it already holds changes
//!   nothing.
//!
//! A projection has no side effects: rebuilding it from [`Position::START`] (under a new
//! name, while the old one keeps serving) must not send a mail or issue a command twice.
//! Side effects belong to reactors, which derive the ids of what they append from the event
//! that triggered them, so a replay appends nothing new.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};

use crate::event::{EventType, RecordedEvent};
use crate::store::{EventStore, LogFilter, StoreError};
use crate::stream::{Position, StreamId, Version};

/// Why a projection stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The projection could not handle an event: it stopped before it, and its checkpoint is
    /// at or before the event before it.
    #[error(
        "projection {projection} failed on {event_type} at {stream} version {version} (position {position}): {source}"
    )]
    Event {
        /// The projection.
        projection: String,
        /// The event's position.
        position: Position,
        /// Its stream.
        stream: StreamId,
        /// Its version in the stream.
        version: Version,
        /// Its type.
        event_type: EventType,
        /// What failed.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Reading the log, or the projection's own storage, failed.
    #[error("projection {projection}: {source}")]
    Store {
        /// The projection.
        projection: String,
        /// What failed.
        #[source]
        source: StoreError,
    },
}

impl ProjectionError {
    /// A failure of `projection` on `event`.
    pub fn event(
        projection: &str,
        event: &RecordedEvent,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        ProjectionError::Event {
            projection: projection.to_owned(),
            position: event.position,
            stream: event.stream.clone(),
            version: event.version,
            event_type: event.data.event_type().clone(),
            source: source.into(),
        }
    }

    /// A storage failure of `projection`.
    pub fn store(projection: &str, source: StoreError) -> Self {
        ProjectionError::Store {
            projection: projection.to_owned(),
            source,
        }
    }
}

/// A read model fed from the log.
///
/// `apply` receives a batch of events in log order (only those its [`Projection::filter`]
/// accepts) and the checkpoint to keep once the batch's effect is held. It either holds the
/// effect of the whole batch and the new checkpoint, or of none of it (returning an error
/// naming the event that failed): the runner then applies the batch's events one at a time to
/// keep the effect of the events before the failing one.
#[async_trait]
pub trait Projection: Send + Sync {
    /// The name its checkpoint is kept under. A new version of a projection takes a new name
    /// (e.g. `record_index.v2`) and is built from the start while the old one keeps serving.
    fn name(&self) -> &str;

    /// The events it reads (all by default).
    fn filter(&self) -> LogFilter {
        LogFilter::all()
    }

    /// The position of the last event whose effect it holds (`None`: nothing yet).
    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError>;

    /// Applies `events` (in log order, possibly empty) and keeps `checkpoint`, which is at or
    /// after the last of them.
    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError>;
}

/// Where projections whose read model lives elsewhere keep their checkpoints.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The checkpoint saved under `name`, `None` when there is none.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError>;

    /// Saves `position` under `name`, replacing the one kept (an earlier one too: that is how
    /// a projection is rebuilt).
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError>;

    /// The checkpoint saved under `name` for a reader of the events `filter` accepts.
    ///
    /// A checkpoint says how far a reader got through the events *it* reads: resumed with
    /// another filter, it would skip every event the new filter accepts before it. So the
    /// first call binds `name` to `filter` (kept with the checkpoint, compared in
    /// [`LogFilter::canonical`] form), and a later call with another filter is refused with
    /// [`StoreError::CheckpointFilter`], changing nothing. A checkpoint saved before its name
    /// was bound is bound to the filter of the first call.
    ///
    /// The stores of this workspace keep the binding; the default, for a store that keeps
    /// none, is [`CheckpointStore::load_checkpoint`] and does not check.
    async fn load_checkpoint_for(
        &self,
        name: &str,
        filter: &LogFilter,
    ) -> Result<Option<Position>, StoreError> {
        let _ = filter;
        self.load_checkpoint(name).await
    }
}

/// A shared checkpoint store is a checkpoint store (one store handle serving many reactors).
#[async_trait]
impl<T: CheckpointStore + ?Sized> CheckpointStore for Arc<T> {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        (**self).load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        (**self).save_checkpoint(name, position).await
    }

    async fn load_checkpoint_for(
        &self,
        name: &str,
        filter: &LogFilter,
    ) -> Result<Option<Position>, StoreError> {
        (**self).load_checkpoint_for(name, filter).await
    }
}

/// Feeds projections from an [`EventStore`]: catch-up from their checkpoint, then live.
///
/// ```
/// # use std::sync::Arc;
/// # use smsys_core::{EventStore, ProjectionRunner};
/// # fn demo(store: Arc<dyn EventStore>) {
/// let runner = ProjectionRunner::new(store).with_batch_size(1_000);
/// # }
/// ```
#[derive(Clone)]
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    batch_size: usize,
}

impl std::fmt::Debug for ProjectionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl ProjectionRunner {
    /// A runner reading `store`, applying up to 512 events per batch.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            batch_size: 512,
        }
    }

    /// Applies up to `events` events per batch (at least 1).
    pub fn with_batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// Applies every event after the projection's checkpoint up to the end of the log as it
    /// stands now; returns the checkpoint reached (`None`: the projection holds nothing).
    pub async fn catch_up(
        &self,
        projection: &dyn Projection,
    ) -> Result<Option<Position>, ProjectionError> {
        let mut checkpoint = projection.checkpoint().await?;
        let after = checkpoint.unwrap_or(Position::START);
        let mut events = self.store.read_all(after, projection.filter());
        let mut batch = Vec::with_capacity(self.batch_size);
        while let Some(event) = events.next().await {
            batch.push(event.map_err(|e| ProjectionError::store(projection.name(), e))?);
            if batch.len() >= self.batch_size {
                checkpoint = Some(self.apply(projection, &mut batch).await?);
            }
        }
        if !batch.is_empty() {
            checkpoint = Some(self.apply(projection, &mut batch).await?);
        }
        Ok(checkpoint)
    }

    /// Catches up, then follows the log live until `shutdown` completes, applying whatever
    /// has arrived (up to the batch size) at once. Returns the checkpoint reached.
    pub async fn run(
        &self,
        projection: &dyn Projection,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Option<Position>, ProjectionError> {
        let mut checkpoint = projection.checkpoint().await?;
        let after = checkpoint.unwrap_or(Position::START);
        let mut events = self.store.subscribe(after, projection.filter());
        let mut shutdown = std::pin::pin!(shutdown.fuse());
        loop {
            let first = futures::select! {
                () = shutdown => return Ok(checkpoint),
                next = events.next().fuse() => match next {
                    Some(event) => event,
                    None => return Ok(checkpoint),
                },
            };
            let mut batch = vec![first.map_err(|e| ProjectionError::store(projection.name(), e))?];
            while batch.len() < self.batch_size {
                match events.next().now_or_never() {
                    Some(Some(event)) => {
                        batch.push(event.map_err(|e| ProjectionError::store(projection.name(), e))?)
                    }
                    Some(None) | None => break,
                }
            }
            checkpoint = Some(self.apply(projection, &mut batch).await?);
        }
    }

    /// Applies a non-empty batch; when an event fails, applies the events before it one at a
    /// time so their effect and checkpoint are kept, then reports the failure.
    async fn apply(
        &self,
        projection: &dyn Projection,
        batch: &mut Vec<RecordedEvent>,
    ) -> Result<Position, ProjectionError> {
        let Some(last) = batch.last().map(|e| e.position) else {
            return Err(ProjectionError::store(
                projection.name(),
                StoreError::Corrupt {
                    what: "an empty projection batch".into(),
                },
            ));
        };
        match projection.apply(batch, last).await {
            Ok(()) => {
                batch.clear();
                Ok(last)
            }
            Err(ProjectionError::Event { position, .. }) if batch.len() > 1 => {
                tracing::debug!(projection = projection.name(), %position,
                    "batch failed; applying the events before the failing one alone");
                for event in batch.drain(..) {
                    projection
                        .apply(std::slice::from_ref(&event), event.position)
                        .await?;
                }
                Ok(last)
            }
            Err(error) => Err(error),
        }
    }
}
