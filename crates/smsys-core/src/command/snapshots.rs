//! The command handler's snapshots: where they live, the key they are taken under, and the
//! check that one fits the stream before it is used.

use super::CommandHandler;
use crate::aggregate::{Aggregate, EventSourced};
use crate::event::EventId;
use crate::snapshot::{Snapshot, SnapshotPolicy, SnapshotStore};
use crate::stream::{StreamId, Version};

impl<A: Aggregate> CommandHandler<A> {
    /// Where snapshots are loaded from and saved to, if anywhere: the one given, else the
    /// store's own unless the policy is never to take any.
    pub(super) fn snapshot_store(&self) -> Option<&dyn SnapshotStore> {
        match &self.snapshots {
            Some(snapshots) => Some(&**snapshots),
            None if self.policy == SnapshotPolicy::Never => None,
            None => self.store.snapshots(),
        }
    }

    /// What a snapshot must have been taken under to be used: the state's type and the
    /// upcasters' fingerprint (the state's schema version is the snapshot's own field).
    fn snapshot_key(&self) -> SnapshotKey {
        SnapshotKey {
            state_type: std::any::type_name::<A::State>().to_owned(),
            upcasters: self.upcasters.fingerprint(),
        }
    }

    /// The latest snapshot of `stream` taken under this handler's key: its state, version and
    /// the id of the event at that version.
    pub(super) async fn snapshot_state(
        &self,
        stream: &StreamId,
    ) -> Option<(A::State, Version, EventId)> {
        let snapshots = self.snapshot_store()?;
        let snapshot = match snapshots.load_snapshot(stream).await {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%stream, %error, "snapshot unreadable; replaying the stream");
                return None;
            }
        };
        if snapshot.schema_version != A::State::SNAPSHOT_VERSION {
            tracing::debug!(%stream, found = snapshot.schema_version, current = A::State::SNAPSHOT_VERSION,
                "outdated snapshot; replaying the stream");
            return None;
        }
        let envelope: SnapshotEnvelope<A::State> = match serde_json::from_value(snapshot.state) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%stream, %error, "snapshot does not decode; replaying the stream");
                return None;
            }
        };
        if envelope.key != self.snapshot_key() {
            tracing::debug!(%stream, taken_under = ?envelope.key,
                "snapshot taken under another state type or upcasters; replaying the stream");
            return None;
        }
        Some((envelope.state, snapshot.version, envelope.head))
    }

    pub(super) async fn maybe_snapshot(
        &self,
        stream: &StreamId,
        state: &A::State,
        before: Option<Version>,
        after: Version,
        head: EventId,
    ) {
        if self.policy.is_due(before, after) {
            self.save_snapshot(stream, state, after, head).await;
        }
    }

    /// Saves `state` as the snapshot of `stream` at `version` (whose event is `head`), if
    /// there is a snapshot store; a failure is logged, never returned: snapshots are an
    /// optimisation.
    pub(super) async fn save_snapshot(
        &self,
        stream: &StreamId,
        state: &A::State,
        version: Version,
        head: EventId,
    ) {
        let Some(snapshots) = self.snapshot_store() else {
            return;
        };
        let envelope = SnapshotEnvelope {
            key: self.snapshot_key(),
            head,
            state,
        };
        let state = match serde_json::to_value(&envelope) {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%stream, %error, "state does not serialise; no snapshot taken");
                return;
            }
        };
        let snapshot = Snapshot {
            stream: stream.clone(),
            version,
            schema_version: A::State::SNAPSHOT_VERSION,
            state,
        };
        if let Err(error) = snapshots.save_snapshot(snapshot).await {
            tracing::warn!(%stream, %error, "snapshot not saved");
        }
    }
}

/// What a snapshot was taken under: the state's type and the upcasters' fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct SnapshotKey {
    state_type: String,
    upcasters: String,
}

/// The form a [`CommandHandler`] keeps a state in as a snapshot: the state with the key it
/// was taken under and the id of the event it was taken after.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotEnvelope<S> {
    key: SnapshotKey,
    head: EventId,
    state: S,
}
