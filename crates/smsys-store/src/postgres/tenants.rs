//! A schema per tenant, guarded by row-level security.
//!
//! Each tenant's store lives in its own schema, `smsys_t_` and 32 hex digits of the SHA-256
//! of the registry's schema name and the tenant id: injective in practice, lowercase (ids differing only in case get other
//! schemas), within PostgreSQL's 63-byte identifiers whatever the id's length, and the same on
//! every node. A registry table (`<registry>.tenants`, schema `smsys_tenants` by default)
//! keeps each tenant with its schema; its unique schema column makes a collision an error
//! rather than a shared schema.
//!
//! Defence in depth: every table of a tenant's schema gets `ENABLE` and `FORCE ROW LEVEL
//! SECURITY` and a policy `smsys_tenant` admitting rows (to read and to write) only while the
//! session setting `smsys.tenant` names that tenant, and each tenant's pool sets it on every
//! new connection. A query that reaches another tenant's schema by mistake (a schema-qualified
//! name, a mixed-up `search_path`) reads and writes nothing. Tables are secured in the
//! transaction that creates them: the migrations of a tenant's store secure every table of
//! its schema before they commit, and so does whatever else creates tables there
//! (`PgKeyStore::open`, through `PgEventStore::create_tables`); a table created in a tenant's
//! schema any other way has no policy until the tenant is next opened. Each open also
//! secures whatever table lacks it (idempotent, under an advisory lock per schema).
//!
//! Its limits: superusers and roles with `BYPASSRLS` ignore the policies (run the application
//! as an ordinary role), a table owner is bound only because of `FORCE`, and the setting is
//! the application's own claim, not an authentication: SQL injected into a connection could
//! change it. It covers rows, nothing else: the application role owns every tenant's schema,
//! so it reads every tenant's sequence (the `last_value` behind `events.seq`; appends need
//! `USAGE` on it, which is enough to read it, so nothing can be revoked), and any role reads
//! the catalog and the statistics views (row counts, table sizes): each tenant's volume of
//! activity, never its content. Only a database (or role) per tenant keeps that apart; these
//! tenants share one connection string, so one role. The registry has no policy: it is the
//! operator's.
//!
//! What the cluster shares beyond that: positions carry cluster-wide transaction ids (their
//! gaps show that other transactions ran), and delivery waits for the oldest transaction open
//! in the cluster, so one tenant's long transaction holds back every tenant's subscriptions
//! (see [`crate::tenancy`]).
//!
//! Opening a tenant (registering it, connecting, migrating, securing) waits for no other
//! tenant's open; concurrent opens of one tenant share one store.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use sha2::Digest;
use smsys_core::{StoreError, TenantId, TenantStore, Tenants};
use tokio_postgres::Transaction;

use super::error::{PgError, corrupt, pool_error, store_error};
use super::rows::column;
use super::{PgEventStore, PgEventStoreBuilder, SchemaName, pool};
use crate::tenancy::OpenStores;

/// The name of the row-level security policy on every table of a tenant's schema.
const POLICY: &str = "smsys_tenant";

/// The registry's schema unless [`PgTenantsBuilder::registry_schema`] names another.
const DEFAULT_REGISTRY: &str = "smsys_tenants";

/// Builds [`PgTenants`]: connection, registry schema, the pool of each tenant's store.
///
/// ```no_run
/// # async fn open() -> Result<(), Box<dyn std::error::Error>> {
/// use smsys_core::{TenantId, Tenants};
/// use smsys_store::postgres::PgTenants;
/// let tenants = PgTenants::builder("host=127.0.0.1 user=smsys_app dbname=app")
///     .pool_size(2)
///     .connect()
///     .await?;
/// let acme = tenants.tenant(&TenantId::new("acme")?).await?;
/// # drop(acme); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PgTenantsBuilder {
    store: PgEventStoreBuilder,
    registry: Option<SchemaName>,
    row_security: bool,
}

impl PgTenantsBuilder {
    /// Tenants on the database at `connection` (see [`PgEventStoreBuilder::new`]), registry in
    /// schema `smsys_tenants`, pools of 2 connections per tenant, row-level security on.
    pub fn new(connection: impl Into<String>) -> Self {
        Self {
            store: PgEventStoreBuilder::new(connection).pool_size(2),
            registry: None,
            row_security: true,
        }
    }

    /// Most connections each open tenant's pool keeps (default 2); each tenant's store holds
    /// one more for LISTEN. A node with `n` open tenants may hold `n * (size + 1) + 1`
    /// connections.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.store = self.store.pool_size(size);
        self
    }

    /// How long opening a connection or waiting for a free one may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.store = self.store.connect_timeout(timeout);
        self
    }

    /// The schema of the registry of tenants (default `smsys_tenants`).
    pub fn registry_schema(mut self, name: &str) -> Result<Self, PgError> {
        self.registry = Some(SchemaName::new(name)?);
        Ok(self)
    }

    /// Whether each tenant's tables get row-level security (default on); see the module docs.
    pub fn row_security(mut self, on: bool) -> Self {
        self.row_security = on;
        self
    }

    /// Connects and creates the registry.
    pub async fn connect(self) -> Result<PgTenants, PgError> {
        PgTenants::open(self).await
    }
}

/// Tenants on PostgreSQL: a schema per tenant, registered in a registry table, each opened as
/// a [`PgEventStore`] with its own small pool on first use and shared afterwards (opens of
/// different tenants proceed independently); see the module docs for the naming, the
/// row-level security and what the tenants of one cluster share. Cloning gives another handle
/// to the same tenants.
#[derive(Debug, Clone)]
pub struct PgTenants {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: PgTenantsBuilder,
    registry_schema: SchemaName,
    registry: Pool,
    stores: OpenStores<PgEventStore>,
}

impl PgTenants {
    /// A builder for tenants on the database at `connection`.
    pub fn builder(connection: impl Into<String>) -> PgTenantsBuilder {
        PgTenantsBuilder::new(connection)
    }

    /// The schema holding `tenant`'s store (unless the registry already holds another).
    pub fn schema_of(&self, tenant: &TenantId) -> Result<SchemaName, PgError> {
        schema_of(&self.inner.registry_schema, tenant)
    }
}

/// The schema of `tenant` in the deployment whose registry is `registry`.
fn schema_of(registry: &SchemaName, tenant: &TenantId) -> Result<SchemaName, PgError> {
    {
        let digest = sha2::Sha256::digest(format!("{registry}/{tenant}").as_bytes());
        let mut name = String::from("smsys_t_");
        for byte in &digest[..16] {
            name.push_str(&format!("{byte:02x}"));
        }
        SchemaName::new(name)
    }
}

impl PgTenants {
    async fn open(options: PgTenantsBuilder) -> Result<Self, PgError> {
        let store = &options.store;
        let mut config = tokio_postgres::Config::from_str(&store.connection)
            .map_err(|e| PgError::InvalidConnectionString(Box::new(e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(store.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("smsys");
        }
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let registry = Pool::builder(manager)
            .post_create(pool::read_committed(None))
            .max_size(1)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(store.connect_timeout))
            .create_timeout(Some(store.connect_timeout))
            .build()
            .map_err(|e| PgError::Pool(Box::new(e)))?;
        let registry_schema = match &options.registry {
            Some(name) => name.clone(),
            None => SchemaName::new(DEFAULT_REGISTRY)?,
        };
        let r = registry_schema.quoted();
        let client = registry
            .get()
            .await
            .map_err(|e| pool_error("create tenant registry", e))?;
        client
            .batch_execute(&format!(
                "BEGIN;
                 SELECT pg_advisory_xact_lock(hashtextextended('smsys.tenants.{}', 0));
                 CREATE SCHEMA IF NOT EXISTS {r};
                 CREATE TABLE IF NOT EXISTS {r}.tenants (
                     tenant      text PRIMARY KEY,
                     schema_name text NOT NULL UNIQUE,
                     created_at  timestamptz NOT NULL DEFAULT now()
                 );
                 COMMIT;",
                registry_schema.as_str()
            ))
            .await
            .map_err(|e| PgError::Store(store_error("create tenant registry", e)))?;
        drop(client);
        Ok(Self {
            inner: Arc::new(Inner {
                options,
                registry_schema,
                registry,
                stores: OpenStores::new(),
            }),
        })
    }

    /// Registers `tenant` if needed and opens its store (migrated and, with row-level security
    /// on, secured: see [`secure`]).
    async fn open_tenant(&self, tenant: &TenantId) -> Result<Arc<PgEventStore>, PgError> {
        let schema = self.register(tenant).await?;
        let mut store = self
            .inner
            .options
            .store
            .clone()
            .schema_name(schema)
            .session_tenant(tenant.clone());
        store.row_security = self.inner.options.row_security;
        Ok(Arc::new(store.connect().await?))
    }

    /// The schema registered for `tenant`, registering it first if needed.
    async fn register(&self, tenant: &TenantId) -> Result<SchemaName, StoreError> {
        let r = self.inner.registry_schema.quoted();
        let wanted = self.schema_of(tenant).map_err(|e| corrupt(e.to_string()))?;
        let operation = "register tenant";
        pool::query(
            &self.inner.registry,
            operation,
            &format!(
                "INSERT INTO {r}.tenants (tenant, schema_name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            ),
            &[&tenant.as_str(), &wanted.as_str()],
        )
        .await?;
        let rows = pool::query(
            &self.inner.registry,
            operation,
            &format!("SELECT schema_name FROM {r}.tenants WHERE tenant = $1"),
            &[&tenant.as_str()],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Err(corrupt(format!(
                "schema {wanted} of tenant {tenant} is registered for another tenant"
            )));
        };
        let schema: String = column(row, 0)?;
        SchemaName::new(schema.as_str()).map_err(|_| {
            corrupt(format!(
                "tenant {tenant} is registered with schema {schema:?}"
            ))
        })
    }
}

/// Row-level security on every table of `tenant`'s `schema` that lacks it, in `tx` (under a
/// transaction-scoped advisory lock per schema, so concurrent calls neither fail nor repeat
/// each other's work): `ENABLE` and `FORCE ROW LEVEL SECURITY` and the policy [`POLICY`]
/// admitting rows only while `smsys.tenant` names `tenant`. Idempotent; run in the transaction
/// that creates tables, so that no table of a tenant's schema is ever committed without it (the
/// store's migrations and `PgEventStore::create_tables` do).
pub(crate) async fn secure(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    schema: &SchemaName,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('smsys.rls.' || $1, 0))",
        &[&schema.as_str()],
    )
    .await?;
    let tables = tx
        .query(
            "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                    EXISTS (SELECT 1 FROM pg_policy p
                            WHERE p.polrelid = c.oid AND p.polname = $2)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
             ORDER BY 1",
            &[&schema.as_str(), &POLICY],
        )
        .await?;
    let claim = format!(
        "current_setting('smsys.tenant', true) = '{}'",
        tenant.as_str().replace('\'', "''")
    );
    let mut sql = String::new();
    for row in &tables {
        let table: String = row.try_get(0)?;
        let (enabled, forced, policy): (bool, bool, bool) =
            (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
        let t = format!("{}.\"{}\"", schema.quoted(), table.replace('"', "\"\""));
        if !enabled {
            sql.push_str(&format!("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;\n"));
        }
        if !forced {
            sql.push_str(&format!("ALTER TABLE {t} FORCE ROW LEVEL SECURITY;\n"));
        }
        if !policy {
            sql.push_str(&format!(
                "CREATE POLICY {POLICY} ON {t} USING ({claim}) WITH CHECK ({claim});\n"
            ));
        }
    }
    if !sql.is_empty() {
        tracing::info!(%tenant, %schema, "row-level security on the tenant's tables");
        tx.batch_execute(&sql).await?;
    }
    Ok(())
}

#[async_trait]
impl Tenants for PgTenants {
    type Store = PgEventStore;
    type Error = PgError;

    async fn tenant(&self, tenant: &TenantId) -> Result<TenantStore<PgEventStore>, PgError> {
        let store = self
            .inner
            .stores
            .get_or_open(tenant, || self.open_tenant(tenant))
            .await?;
        Ok(TenantStore::new(tenant.clone(), store))
    }

    async fn tenants(&self) -> Result<Vec<TenantId>, PgError> {
        let r = self.inner.registry_schema.quoted();
        let rows = pool::query(
            &self.inner.registry,
            "list tenants",
            &format!("SELECT tenant FROM {r}.tenants ORDER BY tenant COLLATE \"C\""),
            &[],
        )
        .await?;
        let mut tenants = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = column(row, 0)?;
            let tenant = TenantId::new(id.as_str())
                .map_err(|e| corrupt(format!("registered tenant {id:?}: {e}")))?;
            tenants.push(tenant);
        }
        Ok(tenants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_valid_distinct_per_case_and_short() {
        let names: Vec<SchemaName> = ["acme", "Acme", "ACME", ".", "..", &"x".repeat(256)]
            .iter()
            .map(|id| {
                let tenant = TenantId::new(*id).unwrap_or_else(|e| panic!("{e}"));
                let registry = SchemaName::new(DEFAULT_REGISTRY).unwrap_or_else(|e| panic!("{e}"));
                schema_of(&registry, &tenant).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        for name in &names {
            assert_eq!(name.as_str().len(), 40);
        }
        let distinct: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len());
    }
}
