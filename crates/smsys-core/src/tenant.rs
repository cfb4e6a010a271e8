//! Tenants that never see each other: a log per tenant, and handles bound to one.
//!
//! A deployment serving many customers keeps one store per tenant ([`Tenants`]): each tenant
//! has its own streams, positions, hash chain, seals, checkpoints and record index. Chain links
//! never point into another tenant's events, and every read of a tenant's handle is confined
//! by construction: the tenant is part of every stream's identity through the handle it is
//! reached by. `INC-1` of one tenant and `INC-1` of another are two streams of two logs.
//!
//! A tenant never reads another tenant's events. Whether what it reads shows that other
//! tenants are active depends on the store: where positions are dense per tenant (the
//! embedded stores), no gap in them does; a store whose positions or delivery are shared
//! beyond one tenant (PostgreSQL: cluster-wide transaction ids, and delivery that waits for
//! the oldest open transaction of the cluster) shows that other writers exist and can hold
//! back a tenant's reads. `smsys_store::tenancy` says what holds on each backend.
//!
//! A handle, [`TenantStore`], is bound to one tenant. It stamps every appended event's
//! [`Metadata`](crate::Metadata) with its tenant when the event names none, refuses an event
//! that names another tenant ([`AppendError::ForeignTenant`]), and checks that every event it
//! reads back carries its tenant: a misrouted event is a [`TenantError::Misrouted`] (as the
//! source of a permanent [`StoreError::Backend`]), never shown. Operators reach every tenant
//! explicitly, through the [`Tenants`] implementation itself ([`Tenants::tenants`]).
//!
//! `smsys-store` implements [`Tenants`] in memory, on SQLite (a file per tenant) and on
//! PostgreSQL (a schema per tenant, with row-level security).

use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use crate::event::{EventData, EventId, RecordedEvent, TenantId};
use crate::projection::CheckpointStore;
use crate::snapshot::SnapshotStore;
use crate::store::{
    AppendError, AppendResult, BackendError, EventStore, EventStream, LogFilter, StoreError,
    StreamAppend,
};
use crate::stream::{ExpectedVersion, Position, StreamId, Version};

/// The operator's view of a multi-tenant deployment: one store per tenant, opened (or
/// created) on demand. Whoever holds it reaches every tenant; hand out the
/// [`TenantStore`]s it opens, each bound to one tenant.
#[async_trait]
pub trait Tenants: Send + Sync {
    /// The store each tenant's log lives in.
    type Store: EventStore + 'static;
    /// Why a tenant's store could not be opened or the tenants listed.
    type Error: StdError + Send + Sync + 'static;

    /// The handle of `tenant`, bound to it: opens its store, creating it when it does not
    /// exist yet. Handles of one tenant share one store.
    async fn tenant(&self, tenant: &TenantId) -> Result<TenantStore<Self::Store>, Self::Error>;

    /// Every tenant that has a store, sorted: the operator's explicit "all".
    async fn tenants(&self) -> Result<Vec<TenantId>, Self::Error>;
}

/// Why a tenant's handle would not show an event it read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// The event at `position` of the tenant's log names another tenant, or none: it was
    /// written past the handle (or the store was mixed up). It is not shown; the operator
    /// finds it at `position` of the tenant's store.
    #[error("the event at position {position} of tenant {tenant}'s log does not belong to it")]
    Misrouted {
        /// The handle's tenant.
        tenant: TenantId,
        /// Where the event is in that tenant's log.
        position: Position,
    },
}

/// A store bound to one tenant: every [`EventStore`] call reaches that tenant's own log only.
///
/// Appends are stamped with the tenant (events that name none) or refused
/// ([`AppendError::ForeignTenant`], events that name another); every event read back must name
/// the tenant, or the read fails with [`TenantError::Misrouted`]. Cloning gives another handle
/// to the same store. [`TenantStore::store`] is the tenant's own store, for what the trait
/// does not cover (the record index, `verify`), confined to the tenant by construction.
#[derive(Debug)]
pub struct TenantStore<S> {
    tenant: TenantId,
    store: Arc<S>,
}

impl<S> Clone for TenantStore<S> {
    fn clone(&self) -> Self {
        Self {
            tenant: self.tenant.clone(),
            store: Arc::clone(&self.store),
        }
    }
}

impl<S> TenantStore<S> {
    /// Binds `store`, which must hold `tenant`'s log and nothing else, to `tenant`.
    pub fn new(tenant: TenantId, store: Arc<S>) -> Self {
        Self { tenant, store }
    }

    /// The tenant this handle is bound to.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The tenant's own store: everything in it is this tenant's. Reads through it skip the
    /// handle's check that every event carries the tenant; appends through it are not
    /// stamped (and then fail that check when read through the handle): append through the
    /// handle.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The events stamped with the tenant, or the refusal of the first that names another.
    fn stamp(
        &self,
        stream: &StreamId,
        events: Vec<EventData>,
    ) -> Result<Vec<EventData>, AppendError> {
        events
            .into_iter()
            .map(|event| match event.metadata().tenant() {
                Some(named) if *named == self.tenant => Ok(event),
                Some(_) => Err(AppendError::ForeignTenant {
                    stream: stream.clone(),
                    event_id: event.event_id(),
                }),
                None => {
                    let (event_type, schema_version, payload, metadata) = event.into_parts();
                    Ok(EventData::stored(
                        event_type,
                        schema_version,
                        payload,
                        metadata.with_tenant(self.tenant.clone()),
                    ))
                }
            })
            .collect()
    }
}

/// `event` if it carries `tenant`, the refusal otherwise.
fn owned_by(tenant: &TenantId, event: RecordedEvent) -> Result<RecordedEvent, StoreError> {
    if event.data.metadata().tenant() == Some(tenant) {
        return Ok(event);
    }
    tracing::error!(
        %tenant,
        position = %event.position,
        found = ?event.data.metadata().tenant(),
        "an event of another tenant, or of none, in a tenant's log: not shown"
    );
    Err(StoreError::Backend(BackendError::new(
        "tenant",
        "read",
        false,
        TenantError::Misrouted {
            tenant: tenant.clone(),
            position: event.position,
        },
    )))
}

impl<S: EventStore + 'static> TenantStore<S> {
    fn confined<'a>(&'a self, events: EventStream<'a>) -> EventStream<'a> {
        let tenant = &self.tenant;
        events
            .map(move |read| read.and_then(|event| owned_by(tenant, event)))
            .boxed()
    }
}

#[async_trait]
impl<S: EventStore + 'static> EventStore for TenantStore<S> {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        let events = self.stamp(stream, events)?;
        self.store.append(stream, expected, events).await
    }

    /// Stamps every part; a part naming another tenant is refused alone, the others are
    /// written as one batch of the tenant's store.
    async fn append_batch(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Vec<Result<AppendResult, AppendError>> {
        let mut refused = Vec::with_capacity(appends.len());
        let mut accepted = Vec::with_capacity(appends.len());
        for part in appends {
            match self.stamp(&part.stream, part.events) {
                Ok(events) => {
                    refused.push(None);
                    accepted.push(StreamAppend::new(part.stream, part.expected, events));
                }
                Err(error) => refused.push(Some(error)),
            }
        }
        let mut written = self.store.append_batch(accepted).await.into_iter();
        refused
            .into_iter()
            .map(|refusal| match refusal {
                Some(error) => Err(error),
                None => written.next().unwrap_or_else(|| {
                    Err(AppendError::Store(StoreError::Corrupt {
                        what: "the store answered fewer appends than the batch held".to_owned(),
                    }))
                }),
            })
            .collect()
    }

    async fn find_event(&self, id: EventId) -> Result<Option<RecordedEvent>, StoreError> {
        self.store
            .find_event(id)
            .await?
            .map(|event| owned_by(&self.tenant, event))
            .transpose()
    }

    fn snapshots(&self) -> Option<&dyn SnapshotStore> {
        self.store.snapshots()
    }

    fn read_stream(&self, stream: &StreamId, from: Version) -> EventStream<'_> {
        self.confined(self.store.read_stream(stream, from))
    }

    fn read_stream_backwards(&self, stream: &StreamId, from: Option<Version>) -> EventStream<'_> {
        self.confined(self.store.read_stream_backwards(stream, from))
    }

    fn read_all(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        self.confined(self.store.read_all(after, filter))
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.store.stream_version(stream).await
    }

    fn subscribe(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        self.confined(self.store.subscribe(after, filter))
    }
}

/// The tenant's checkpoints, kept in its own store.
#[async_trait]
impl<S: CheckpointStore + 'static> CheckpointStore for TenantStore<S> {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        self.store.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        self.store.save_checkpoint(name, position).await
    }

    async fn load_checkpoint_for(
        &self,
        name: &str,
        filter: &LogFilter,
    ) -> Result<Option<Position>, StoreError> {
        self.store.load_checkpoint_for(name, filter).await
    }
}
