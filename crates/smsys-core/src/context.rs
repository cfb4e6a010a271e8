//! What a decision may know of the outside world: the instant and a source of new ids.
//!
//! Domain code reads no clock and draws no random numbers; both come in through a
//! [`Context`], so replays and tests are deterministic.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::aggregate::Stamp;
use crate::event::{Actor, to_micros};
use crate::stream::StreamId;

/// A source of new unique ids.
pub trait IdSource: Send + Sync {
    /// A new id, different from every id this source gave before.
    fn next_uuid(&self) -> Uuid;
}

/// Deterministic ids for tests and replays: UUID v7 values with a fixed timestamp and a counter
/// in place of the random bits, so they are unique, ordered and reproducible.
///
/// ```
/// use smsys_core::{IdSource, SequentialIds};
/// let ids = SequentialIds::new(1_700_000_000_000);
/// let (a, b) = (ids.next_uuid(), ids.next_uuid());
/// assert!(a < b);
/// assert_eq!(a.get_version_num(), 7);
/// ```
#[derive(Debug)]
pub struct SequentialIds {
    unix_millis: u64,
    counter: AtomicU64,
}

impl SequentialIds {
    /// Ids stamped with `unix_millis` (milliseconds since 1970-01-01 UTC).
    pub fn new(unix_millis: u64) -> Self {
        Self {
            unix_millis,
            counter: AtomicU64::new(1),
        }
    }
}

impl IdSource for SequentialIds {
    fn next_uuid(&self) -> Uuid {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut tail = [0u8; 10];
        tail[2..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(self.unix_millis, &tail).into_uuid()
    }
}

/// The instant of a decision, where its new ids come from, who acts and on which stream.
///
/// The [`CommandHandler`](crate::CommandHandler) sets the actor (from the command's metadata)
/// and the stream; a test calling `decide` directly sets what its rules need.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    now: DateTime<Utc>,
    ids: &'a dyn IdSource,
    actor: Option<&'a Actor>,
    stream: Option<&'a StreamId>,
}

impl<'a> Context<'a> {
    /// A context at `now`, drawing ids from `ids`, with no actor and no stream.
    pub fn new(now: DateTime<Utc>, ids: &'a dyn IdSource) -> Self {
        Self {
            now,
            ids,
            actor: None,
            stream: None,
        }
    }

    /// The same context, acted by `actor`.
    pub fn with_actor(self, actor: &'a Actor) -> Self {
        Self {
            actor: Some(actor),
            ..self
        }
    }

    /// The same context, deciding on `stream`.
    pub fn with_stream(self, stream: &'a StreamId) -> Self {
        Self {
            stream: Some(stream),
            ..self
        }
    }

    /// Who acts, when known: rules on identities (segregation of duties) compare it.
    pub fn actor(&self) -> Option<&'a Actor> {
        self.actor
    }

    /// The stream decided on, when known.
    pub fn stream(&self) -> Option<&'a StreamId> {
        self.stream
    }

    /// The stamp of the events this decision records: the acting actor and `now` to whole
    /// microseconds, exactly as their metadata will be read back.
    pub fn stamp(&self) -> Stamp<'a> {
        Stamp::new(self.actor, to_micros(self.now))
    }

    /// The instant of the decision.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// A new unique id.
    pub fn new_uuid(&self) -> Uuid {
        self.ids.next_uuid()
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("actor", &self.actor)
            .field("stream", &self.stream)
            .finish()
    }
}
