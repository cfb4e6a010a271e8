//! Snapshots: a saved state at a version, so loading need not replay a long stream.
//!
//! Snapshots are an optimisation only: an unreadable, outdated or missing snapshot makes the
//! loader replay the whole stream, and never fails a command.

use std::num::NonZeroU64;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::StoreError;
use crate::stream::{StreamId, Version};

/// A saved aggregate state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stream.
    pub stream: StreamId,
    /// The stream version the state includes.
    pub version: Version,
    /// Schema version of the state's form ([`crate::EventSourced::SNAPSHOT_VERSION`]).
    pub schema_version: u32,
    /// The state.
    pub state: Value,
}

/// Where snapshots are kept: one (the latest) per stream.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// The latest snapshot of `stream`, if any.
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError>;

    /// Saves `snapshot`, replacing an older one of the same stream. A snapshot older than the
    /// one kept is ignored.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;
}

/// When the command handler saves a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotPolicy {
    /// Never.
    #[default]
    Never,
    /// Whenever an append crosses a multiple of this many events.
    Every(NonZeroU64),
}

impl SnapshotPolicy {
    /// What a command handler uses unless told otherwise: every 100 events.
    pub const DEFAULT: SnapshotPolicy = SnapshotPolicy::Every(NonZeroU64::MIN.saturating_add(99));

    /// Whether a load that replayed `replayed` events without a usable snapshot calls for one
    /// (a long stream recorded in bulk, or whose snapshot was outdated).
    pub fn is_due_after_replay(self, replayed: u64) -> bool {
        match self {
            SnapshotPolicy::Never => false,
            SnapshotPolicy::Every(n) => replayed >= n.get(),
        }
    }

    /// Whether an append that moved a stream from `before` to `after` calls for a snapshot.
    pub fn is_due(self, before: Option<Version>, after: Version) -> bool {
        match self {
            SnapshotPolicy::Never => false,
            SnapshotPolicy::Every(n) => {
                let before = before.map_or(0, Version::get);
                before / n.get() != after.get() / n.get()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_n_fires_when_a_multiple_is_crossed() {
        let every = SnapshotPolicy::Every(NonZeroU64::new(10).unwrap());
        assert!(!every.is_due(None, Version::new(9)));
        assert!(every.is_due(Some(Version::new(9)), Version::new(10)));
        assert!(every.is_due(Some(Version::new(8)), Version::new(12)));
        assert!(!every.is_due(Some(Version::new(10)), Version::new(19)));
        assert!(!SnapshotPolicy::Never.is_due(None, Version::new(1000)));
        assert!(every.is_due_after_replay(10));
        assert!(!every.is_due_after_replay(9));
        assert!(!SnapshotPolicy::Never.is_due_after_replay(1000));
    }
}
