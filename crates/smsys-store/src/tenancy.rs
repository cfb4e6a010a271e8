//! Tenants that never see each other: a log per tenant.
//!
//! One deployment serving many customers opens a store per tenant through a
//! [`Tenants`] implementation: [`MemoryTenants`], `SqliteTenants` (a
//! file per tenant in one directory) or `PgTenants` (a schema per tenant, guarded by
//! row-level security). Each tenant has its own streams, positions, hash chain, seals,
//! checkpoints and record index, so:
//!
//! - every read of a tenant's handle ([`TenantStore`]) is confined
//!   by construction: there is no query that could forget a `WHERE tenant = ...`;
//! - positions are dense per tenant in the embedded stores, so no gap in them reveals that
//!   another tenant wrote meanwhile, and chain links never point into another tenant's events;
//! - the same stream id (`incident-INC-1`) in two tenants is two streams.
//!
//! A handle stamps the events it appends with its tenant, refuses events naming another
//! tenant, and refuses to show an event read back that does not carry its tenant. The
//! [`Tenants`] value itself is the operator's handle: it opens any
//! tenant and lists them all ([`Tenants::tenants`]); hand
//! application code the [`TenantStore`], not the
//! [`Tenants`].
//!
//! ```
//! # futures::executor::block_on(async {
//! use futures::StreamExt;
//! use smsys_core::{
//!     Actor, EventData, EventId, EventStore, EventType, ExpectedVersion, LogFilter, Metadata,
//!     Position, StreamId, TenantId, Tenants,
//! };
//! use smsys_store::MemoryTenants;
//!
//! let tenants = MemoryTenants::new();
//! let acme = tenants.tenant(&TenantId::new("acme")?).await?;
//! let globex = tenants.tenant(&TenantId::new("globex")?).await?;
//!
//! let stream: StreamId = "incident-INC-1".parse()?;
//! let id = EventId::from_uuid(uuid::Uuid::from_u128(1))?;
//! let meta = Metadata::new(id, Actor::new("agent.ana")?, chrono::DateTime::UNIX_EPOCH);
//! let event = EventData::new(EventType::new("incident.logged")?, 1, serde_json::json!({}), meta)?;
//! acme.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
//!
//! // Stamped with its tenant, and invisible to the other one.
//! let mut log = acme.read_all(Position::START, LogFilter::all());
//! let first = log.next().await.ok_or("an event")??;
//! assert_eq!(first.data.metadata().tenant(), Some(acme.tenant()));
//! assert!(globex.stream_version(&stream).await?.is_none());
//! assert!(globex.find_event(id).await?.is_none());
//! assert_eq!(tenants.tenants().await?, vec![TenantId::new("acme")?, TenantId::new("globex")?]);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! Costs: a store per tenant. On SQLite a file (and its write-ahead log and writer thread) per
//! open tenant; on PostgreSQL a schema per tenant and a connection pool per open tenant
//! (`PgTenantsBuilder::pool_size`, 2 by default, plus one LISTEN connection): size
//! `max_connections` for the tenants a node keeps open.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use smsys_core::{TenantId, TenantStore, Tenants};

use crate::memory::MemoryEventStore;

/// Tenants in memory: a [`MemoryEventStore`] per tenant, created on first use. Cloning gives
/// another handle to the same tenants.
#[derive(Debug, Clone, Default)]
pub struct MemoryTenants {
    stores: Arc<Mutex<BTreeMap<TenantId, Arc<MemoryEventStore>>>>,
}

impl MemoryTenants {
    /// No tenants yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Tenants for MemoryTenants {
    type Store = MemoryEventStore;
    type Error = Infallible;

    async fn tenant(&self, tenant: &TenantId) -> Result<TenantStore<MemoryEventStore>, Infallible> {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        let store = stores.entry(tenant.clone()).or_default();
        Ok(TenantStore::new(tenant.clone(), Arc::clone(store)))
    }

    async fn tenants(&self) -> Result<Vec<TenantId>, Infallible> {
        let stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(stores.keys().cloned().collect())
    }
}
