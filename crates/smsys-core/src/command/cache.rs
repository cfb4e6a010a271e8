//! The aggregate cache of a [`CommandHandler`](super::CommandHandler): the state and version of
//! recently used streams, least recently used evicted first.
//!
//! An entry only ever holds a state that is stored: the handler puts an entry back after the
//! append that produced it succeeded, or unchanged after a refusal. It is never the arbiter: a
//! command decided on a cached state appends with the cached version as its exact expected
//! version, so a state made stale by another writer (another handler, another node) costs one
//! conflict and a read of the events after the cached version, never a lost update.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use lru::LruCache;

use crate::stream::{StreamId, Version};

/// A cached state and the stream version it reflects.
pub(super) struct Entry<S> {
    pub(super) state: S,
    pub(super) version: Version,
}

/// A bounded map from stream to its last known state.
pub(super) struct AggregateCache<S> {
    entries: Mutex<LruCache<StreamId, Entry<S>>>,
}

impl<S> AggregateCache<S> {
    pub(super) fn new(capacity: NonZeroUsize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, LruCache<StreamId, Entry<S>>> {
        // Nothing that can panic runs under the lock.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the entry of `stream` out: a command works on it without holding the lock, and a
    /// second command on the same stream meanwhile reads the stream from the store.
    pub(super) fn take(&self, stream: &StreamId) -> Option<Entry<S>> {
        self.entries().pop(stream)
    }

    /// Puts an entry back, unless one at a later version is already there (a concurrent
    /// command on the same stream finished first).
    pub(super) fn put(&self, stream: &StreamId, entry: Entry<S>) {
        let mut entries = self.entries();
        match entries.peek(stream) {
            Some(kept) if kept.version >= entry.version => {}
            _ => {
                entries.put(stream.clone(), entry);
            }
        }
    }

    /// Forgets `stream`.
    pub(super) fn forget(&self, stream: &StreamId) {
        self.entries().pop(stream);
    }

    /// How many streams are cached.
    pub(super) fn len(&self) -> usize {
        self.entries().len()
    }
}
