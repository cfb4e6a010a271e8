//! Reactors: process managers that turn events into commands on other records, exactly once.
//!
//! A [`Reactor`] handles each event it follows, typically by running a command through a
//! [`CommandHandler`](crate::CommandHandler) with a [`Context`](crate::Context) whose ids come
//! from [`DerivedIds`] seeded by the triggering event. A replay, a second node or a restart
//! derives the very same event ids, and the store's retry rule turns the repeated append into a
//! no-op (or an `EventIdReused` refusal the reactor counts as done). [`Reacting`] runs a
//! reactor as a projection whose checkpoint lives in a [`CheckpointStore`]: delivery is at
//! least once, the effect exactly once.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use uuid::Uuid;

use crate::context::IdSource;
use crate::event::{EventId, RecordedEvent};
use crate::projection::{CheckpointStore, Projection, ProjectionError};
use crate::store::LogFilter;
use crate::stream::Position;

/// Turns events into commands.
#[async_trait]
pub trait Reactor: Send + Sync {
    /// The name its checkpoint is kept under.
    fn name(&self) -> &str;

    /// The events it follows (all by default). Its checkpoint is bound to this filter: a
    /// reactor whose filter changed is refused its old checkpoint
    /// ([`StoreError::CheckpointFilter`](crate::StoreError::CheckpointFilter)), since
    /// resuming would skip the earlier events the new filter accepts; run it under a new name
    /// (it then reacts to the whole log, which its derived ids make harmless).
    fn filter(&self) -> LogFilter {
        LogFilter::all()
    }

    /// Reacts to one event. Must be safe to run again for the same event: derive the ids of
    /// what it appends from the event ([`DerivedIds`]), and count a refusal that says the
    /// work is already done (the ids are stored, the target already moved on) as success.
    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError>;
}

/// Ids derived from a triggering event and a purpose: the same trigger and purpose always
/// give the same sequence of ids.
///
/// ```
/// use smsys_core::{EventId, IdSource};
/// use smsys_core::DerivedIds;
/// let trigger = EventId::derived("some event");
/// let a = DerivedIds::new(trigger, "close-linked-incidents/INC-7");
/// let b = DerivedIds::new(trigger, "close-linked-incidents/INC-7");
/// assert_eq!(a.next_uuid(), b.next_uuid());
/// assert_ne!(a.next_uuid(), DerivedIds::new(trigger, "other").next_uuid());
/// ```
#[derive(Debug)]
pub struct DerivedIds {
    seed: String,
    counter: AtomicU64,
}

impl DerivedIds {
    /// Ids for what `purpose` appends in reaction to the event `trigger`.
    pub fn new(trigger: EventId, purpose: &str) -> Self {
        Self {
            seed: format!("{}/{purpose}", trigger.as_uuid()),
            counter: AtomicU64::new(0),
        }
    }
}

impl IdSource for DerivedIds {
    fn next_uuid(&self) -> Uuid {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        EventId::derived(&format!("{}/{n}", self.seed)).as_uuid()
    }
}

/// A reactor run as a projection: it reacts to each event of a batch in order, then saves the
/// checkpoint in `checkpoints`. After a crash the events since the last checkpoint are
/// delivered again; the reactor's derived ids make that harmless.
#[derive(Debug)]
pub struct Reacting<R, C> {
    reactor: R,
    checkpoints: C,
}

impl<R: Reactor, C: CheckpointStore> Reacting<R, C> {
    /// Runs `reactor`, keeping its checkpoint in `checkpoints`.
    pub fn new(reactor: R, checkpoints: C) -> Self {
        Self {
            reactor,
            checkpoints,
        }
    }

    /// The reactor.
    pub fn reactor(&self) -> &R {
        &self.reactor
    }
}

#[async_trait]
impl<R: Reactor, C: CheckpointStore> Projection for Reacting<R, C> {
    fn name(&self) -> &str {
        self.reactor.name()
    }

    fn filter(&self) -> LogFilter {
        self.reactor.filter()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        self.checkpoints
            .load_checkpoint_for(self.reactor.name(), &self.reactor.filter())
            .await
            .map_err(|e| ProjectionError::store(self.reactor.name(), e))
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        for event in events {
            self.reactor.react(event).await?;
        }
        self.checkpoints
            .save_checkpoint(self.reactor.name(), checkpoint)
            .await
            .map_err(|e| ProjectionError::store(self.reactor.name(), e))
    }
}
