//! The changes and releases of a store, folded as of the end of a period.

use std::collections::BTreeMap;

use futures::StreamExt;
use smsys_core::records::{Change, Release};
use smsys_core::{DomainEvent, EventSourced, EventStore, Position, Stamp, StreamId};

use super::{EvidenceError, Period};

/// The changes and releases of a store as they stood at the end of a period, each folded
/// from its stream through its type's upcasters.
///
/// ```
/// # tokio_test_block(async {
/// use chrono::{TimeZone, Utc};
/// use smsys_processes::evidence::{Estate, EvidencePack, Period};
/// use smsys_store::MemoryEventStore;
///
/// let store = MemoryEventStore::new();
/// let period = Period::new(
///     Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
///     Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
/// )?;
/// let estate = Estate::fold_from(&store, period).await?;
/// assert_eq!(estate.changes().count(), 0);
/// let pack = EvidencePack::from_estate(&estate, period);
/// assert_eq!(pack.releases.releases, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Estate {
    changes: BTreeMap<StreamId, Change>,
    releases: BTreeMap<StreamId, Release>,
}

impl Estate {
    /// Reads the `change` and `release` categories of `store` and folds each stream, leaving
    /// out the events that occurred at or after the end of `period`.
    pub async fn fold_from(store: &dyn EventStore, period: Period) -> Result<Self, EvidenceError> {
        Ok(Self {
            changes: fold::<Change>(store, period).await?,
            releases: fold::<Release>(store, period).await?,
        })
    }

    /// The changes, by stream.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.values()
    }

    /// The releases, by stream.
    pub fn releases(&self) -> impl Iterator<Item = &Release> {
        self.releases.values()
    }
}

async fn fold<S: EventSourced + Default>(
    store: &dyn EventStore,
    period: Period,
) -> Result<BTreeMap<StreamId, S>, EvidenceError> {
    let upcasters = <S::Event as DomainEvent>::upcasters();
    let mut states: BTreeMap<StreamId, S> = BTreeMap::new();
    let mut events = store.read_all(Position::START, crate::stream_filter::<S>());
    while let Some(recorded) = events.next().await {
        let recorded = recorded?;
        let metadata = recorded.data.metadata();
        if metadata.occurred_at() >= period.end() {
            continue;
        }
        let event: S::Event = upcasters
            .decode(
                recorded.data.event_type(),
                recorded.data.schema_version(),
                recorded.data.payload().clone(),
            )
            .map_err(|source| EvidenceError::Decode {
                stream: recorded.stream.clone(),
                version: recorded.version,
                source,
            })?;
        states
            .entry(recorded.stream.clone())
            .or_default()
            .evolve(&event, Stamp::of(metadata));
    }
    Ok(states)
}
