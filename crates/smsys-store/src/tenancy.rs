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
//! - chain links never point into another tenant's events;
//! - the same stream id (`incident-INC-1`) in two tenants is two streams.
//!
//! What a tenant's reads show of the others depends on the backend:
//!
//! - In memory and on SQLite, nothing: positions are dense per tenant (no gap in them reveals
//!   that another tenant wrote meanwhile), and each tenant's store has its own writer, so
//!   another tenant's work holds back nothing of its log (beyond sharing the machine).
//! - On PostgreSQL the logs are as separate, but the cluster is shared. Positions carry the
//!   writing transaction's cluster-wide id, so the gaps between a tenant's positions show
//!   that other transactions ran meanwhile (of any tenant or any other user of the cluster;
//!   not whose, nor what). Delivery waits for the oldest transaction open in the cluster
//!   (`PgEventStore`'s module docs), so another tenant's long transaction holds back this
//!   tenant's subscriptions, and its `read_all` fails with `LogHeldBack` once the read barrier
//!   times out. Row-level security covers rows, nothing else: every tenant's sequence
//!   (`events.seq`, its `last_value`), the catalog and the statistics views (row counts, table
//!   sizes) show each tenant's volume of activity to the application role (see `PgTenants`).
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
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use smsys_core::{TenantId, TenantStore, Tenants};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use tokio::sync::OnceCell;

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

/// The stores of the open tenants of a backend that opens them asynchronously: each tenant's
/// store is opened once and shared by every handle afterwards. The map's lock is held only to
/// find a tenant's cell, never across an open, so opening one tenant never waits for another's
/// open, while concurrent opens of one tenant share one store (the first opens it, the others
/// wait for it). A failed open leaves nothing behind: the next call tries again.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug)]
pub(crate) struct OpenStores<S> {
    cells: Mutex<HashMap<TenantId, Arc<OnceCell<Arc<S>>>>>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<S> OpenStores<S> {
    pub(crate) fn new() -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// `tenant`'s store, opened by `open` unless it is open or being opened.
    pub(crate) async fn get_or_open<E, F>(
        &self,
        tenant: &TenantId,
        open: impl FnOnce() -> F,
    ) -> Result<Arc<S>, E>
    where
        F: Future<Output = Result<Arc<S>, E>>,
    {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(cells.entry(tenant.clone()).or_default())
        };
        let opened = cell.get_or_try_init(open).await.map(Arc::clone);
        if opened.is_err() {
            let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            if cells
                .get(tenant)
                .is_some_and(|c| Arc::ptr_eq(c, &cell) && !c.initialized())
            {
                cells.remove(tenant);
            }
        }
        opened
    }

    /// Forgets every tenant's store and returns the open ones, after the opens under way
    /// finished.
    #[cfg_attr(
        not(any(feature = "sqlite", test)),
        expect(dead_code, reason = "only SqliteTenants closes its stores")
    )]
    pub(crate) async fn drain(&self) -> Vec<Arc<S>> {
        let cells: Vec<_> = self
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, cell)| cell)
            .collect();
        let mut stores = Vec::with_capacity(cells.len());
        for cell in cells {
            // Waits for an open under way; a cell without one stays empty.
            if let Ok(store) = cell.get_or_try_init(|| async { Err(()) }).await {
                stores.push(Arc::clone(store));
            }
        }
        stores
    }
}

#[cfg(all(test, any(feature = "sqlite", feature = "postgres")))]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::new(id).unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    #[tokio::test]
    async fn an_open_under_way_holds_up_only_its_own_tenant() {
        let stores = Arc::new(OpenStores::<String>::new());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let slow = {
            let stores = Arc::clone(&stores);
            tokio::spawn(async move {
                stores
                    .get_or_open(&tenant("slow"), || async move {
                        released.await.map_err(|_| "cancelled")?;
                        Ok::<_, &str>(Arc::new("slow store".to_owned()))
                    })
                    .await
            })
        };
        let waiting = {
            let stores = Arc::clone(&stores);
            tokio::spawn(async move {
                stores
                    .get_or_open(&tenant("slow"), || async {
                        Err::<Arc<String>, _>("a second open of one tenant")
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        let quick = stores
            .get_or_open(&tenant("quick"), || async {
                Ok::<_, &str>(Arc::new("quick store".to_owned()))
            })
            .await;
        assert_eq!(quick.as_deref().map(String::as_str), Ok("quick store"));
        assert!(!slow.is_finished() && !waiting.is_finished());
        release
            .send(())
            .unwrap_or_else(|()| panic!("the slow open is gone"));
        let (slow, waiting) = (slow.await, waiting.await);
        let (Ok(Ok(slow)), Ok(Ok(waiting))) = (slow, waiting) else {
            panic!("both opens of the slow tenant get its store");
        };
        assert!(Arc::ptr_eq(&slow, &waiting), "one store per tenant");
    }

    #[tokio::test]
    async fn a_failed_open_leaves_nothing_behind() {
        let stores = OpenStores::<String>::new();
        let failed = stores
            .get_or_open(&tenant("acme"), || async { Err::<Arc<String>, _>("no") })
            .await;
        assert_eq!(failed, Err("no"));
        assert!(stores.drain().await.is_empty());
        let opened = stores
            .get_or_open(&tenant("acme"), || async {
                Ok::<_, &str>(Arc::new("acme".to_owned()))
            })
            .await;
        assert!(opened.is_ok());
        assert_eq!(stores.drain().await.len(), 1);
    }
}
