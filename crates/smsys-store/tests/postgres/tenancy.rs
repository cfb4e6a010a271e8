//! Tenants on PostgreSQL: the tenancy model (`tenancy/model.rs`, shared with the memory and
//! SQLite runs) on a schema per tenant, and row-level security shown to hold for an ordinary
//! role: a connection naming tenant A reads none of tenant B's rows, even by schema-qualified
//! name, while the store works through the policies.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use proptest::prelude::*;
use smsys_core::personal::DataSubject;
use smsys_core::records::RecordIndexStore;
use smsys_core::{
    Actor, CheckpointStore, EventData, EventId, EventStore, EventType, ExpectedVersion, LogFilter,
    Metadata, Position, StreamId, TenantId, Tenants,
};
use smsys_store::postgres::{CheckpointName, PgTenants};
use smsys_store::privacy::{KeyStore, PgKeyStore};

use super::{database_url, fresh_schema, raw};

#[path = "../tenancy/model.rs"]
mod model;

/// Drops every tenant schema of the registry `registry`, and the registry.
async fn drop_tenants(url: &str, registry: &str) {
    let admin = raw(url).await;
    let rows = admin
        .query(
            &format!("SELECT schema_name FROM \"{registry}\".tenants"),
            &[],
        )
        .await
        .unwrap_or_default();
    let mut sql = String::new();
    for row in rows {
        let schema: String = row.get(0);
        sql.push_str(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE;"));
    }
    sql.push_str(&format!("DROP SCHEMA IF EXISTS \"{registry}\" CASCADE;"));
    admin
        .batch_execute(&sql)
        .await
        .expect("tenant schemas dropped");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    #[test]
    fn pg_tenants_see_only_their_own_records(ops in model::ops(20)) {
        let Some(url) = database_url() else { return Ok(()) };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let registry = fresh_schema();
            let tenants = PgTenants::builder(url.as_str())
                .registry_schema(&registry)
                .expect("valid")
                .connect()
                .await
                .expect("connected");
            let outcome = model::run(&tenants, &ops, model::Positions::Increasing, |handle| {
                Arc::new(handle.store().record_index(
                    CheckpointName::new("record_index.v1").expect("valid"),
                )) as Arc<dyn RecordIndexStore>
            })
            .await;
            drop(tenants);
            if outcome.is_ok() {
                drop_tenants(&url, &registry).await;
            }
            outcome
        })?;
    }
}

fn event(n: u128) -> EventData {
    let meta = Metadata::new(
        EventId::from_uuid(uuid::Uuid::from_u128(n)).expect("non-nil"),
        Actor::new("agent.ana").expect("valid"),
        chrono::DateTime::UNIX_EPOCH,
    );
    EventData::new(
        EventType::new("note.added").expect("valid"),
        1,
        serde_json::json!({"n": n.to_string()}),
        meta,
    )
    .expect("valid")
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// An ordinary application role (no superuser, no `BYPASSRLS`) that may create schemas.
struct AppRole {
    name: String,
    database: String,
    url: String,
}

impl AppRole {
    async fn create(admin: &tokio_postgres::Client, url: &str) -> Self {
        let name = format!("smsys_app_{}", uuid::Uuid::now_v7().simple());
        let database: String = admin
            .query_one("SELECT current_database()", &[])
            .await
            .expect("a database")
            .get(0);
        admin
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS;
                 GRANT CREATE ON DATABASE \"{database}\" TO {name};"
            ))
            .await
            .expect("role created");
        let url = format!("{url} user={name}");
        Self {
            name,
            database,
            url,
        }
    }

    /// Drops the role and what it owns (after the tenant schemas are dropped).
    async fn drop(self, admin: &tokio_postgres::Client) {
        let Self { name, database, .. } = self;
        let cleanup = admin
            .batch_execute(&format!(
                "REVOKE CREATE ON DATABASE \"{database}\" FROM {name}; DROP OWNED BY {name}; DROP ROLE {name};"
            ))
            .await;
        if let Err(error) = cleanup {
            eprintln!("role {name} left behind: {error}");
        }
    }
}

#[tokio::test]
async fn pg_row_level_security_keeps_an_ordinary_role_inside_its_tenant() {
    let Some(url) = database_url() else { return };
    let admin = raw(&url).await;
    let role = AppRole::create(&admin, &url).await;
    let role_url = role.url.clone();
    let registry = fresh_schema();
    let tenants = PgTenants::builder(role_url.as_str())
        .registry_schema(&registry)
        .expect("valid")
        .connect()
        .await
        .expect("connected as the application role");
    let (a, b) = (
        TenantId::new("acme").unwrap(),
        TenantId::new("Acme").unwrap(),
    );
    let acme = tenants.tenant(&a).await.expect("opened");
    let other = tenants.tenant(&b).await.expect("opened");
    let stream: StreamId = "note-1".parse().unwrap();
    // The store works through the policies: appends, reads, subscriptions, checkpoints and
    // the record index.
    for (n, handle) in [&acme, &other].into_iter().enumerate() {
        for k in 0..3u128 {
            handle
                .append(
                    &stream,
                    ExpectedVersion::Any,
                    vec![event(n as u128 * 10 + k + 1)],
                )
                .await
                .expect("appended through row-level security");
        }
        let log: Vec<_> = handle
            .subscribe(Position::START, LogFilter::all())
            .take(3)
            .collect()
            .await;
        assert!(log.iter().all(Result::is_ok), "{log:?}");
        let last = log[2].as_ref().unwrap().position;
        handle.save_checkpoint("reader", last).await.expect("saved");
        assert_eq!(handle.load_checkpoint("reader").await.unwrap(), Some(last));
        let index = handle
            .store()
            .record_index(CheckpointName::new("idx").unwrap());
        index
            .apply(Vec::new(), last)
            .await
            .expect("index checkpoint saved");
        assert_eq!(index.checkpoint().await.unwrap(), Some(last));
        let verified = handle.store().verify().await.expect("verified");
        assert!(verified.is_intact(), "{verified:?}");
    }
    let (schema_a, schema_b) = (
        tenants.schema_of(&a).unwrap(),
        tenants.schema_of(&b).unwrap(),
    );
    assert_ne!(
        schema_a, schema_b,
        "ids differing by case get their own schemas"
    );

    // A connection of the application role naming tenant A sees nothing of B's tables.
    let app = raw(&role_url).await;
    app.batch_execute("SET smsys.tenant = 'acme'")
        .await
        .unwrap();
    for table in ["events", "streams", "checkpoints", "record_index"] {
        let theirs = count(
            &app,
            &format!("SELECT count(*) FROM \"{schema_b}\".{table}"),
        )
        .await;
        assert_eq!(theirs, 0, "{table} of the other tenant");
    }
    assert_eq!(
        count(&app, &format!("SELECT count(*) FROM \"{schema_a}\".events")).await,
        3
    );
    let write = app
        .execute(
            &format!("UPDATE \"{schema_b}\".checkpoints SET tx_id = 0 WHERE true"),
            &[],
        )
        .await;
    assert!(matches!(write, Ok(0) | Err(_)), "{write:?}");
    let insert = app
        .batch_execute(&format!(
            "INSERT INTO \"{schema_b}\".snapshots SELECT * FROM \"{schema_b}\".snapshots LIMIT 0;
             INSERT INTO \"{schema_b}\".schema_migrations (version, description) VALUES (999, 'x')"
        ))
        .await;
    assert!(insert.is_err(), "a row for another tenant is refused");
    // Without the setting, nothing at all.
    app.batch_execute("RESET smsys.tenant").await.unwrap();
    assert_eq!(
        count(&app, &format!("SELECT count(*) FROM \"{schema_a}\".events")).await,
        0
    );
    // The limit: a superuser bypasses row-level security.
    assert_eq!(
        count(
            &admin,
            &format!("SELECT count(*) FROM \"{schema_b}\".events")
        )
        .await,
        3
    );
    assert_eq!(
        tenants.tenants().await.unwrap(),
        vec![b.clone(), a.clone()],
        "sorted bytewise"
    );

    drop((acme, other, tenants, app));
    drop_tenants(&url, &registry).await;
    role.drop(&admin).await;
}

/// Every table of `schema` with whether it has row-level security enabled and forced and the
/// tenant policy.
async fn security_of_tables(
    admin: &tokio_postgres::Client,
    schema: &str,
) -> Vec<(String, bool, bool, bool)> {
    admin
        .query(
            "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                    EXISTS (SELECT 1 FROM pg_policy p
                            WHERE p.polrelid = c.oid AND p.polname = 'smsys_tenant')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
             ORDER BY 1",
            &[&schema],
        )
        .await
        .expect("tables listed")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// Tables created in a tenant's schema after the tenant was opened (the key store's
/// `data_keys`) get the same row-level security as the store's own: the most sensitive table
/// must not wait for the next process to open the tenant.
#[tokio::test]
async fn pg_tables_created_after_a_tenant_opened_are_secured_too() {
    let Some(url) = database_url() else { return };
    let admin = raw(&url).await;
    let role = AppRole::create(&admin, &url).await;
    let registry = fresh_schema();
    let tenants = PgTenants::builder(role.url.as_str())
        .registry_schema(&registry)
        .expect("valid")
        .connect()
        .await
        .expect("connected as the application role");
    let (a, b) = (
        TenantId::new("acme").unwrap(),
        TenantId::new("beta").unwrap(),
    );
    let stream: StreamId = "incident-INC-1".parse().unwrap();
    let subject = DataSubject::new("caller.carla").unwrap();
    for tenant in [&a, &b] {
        let handle = tenants.tenant(tenant).await.expect("opened");
        let keys = PgKeyStore::open(handle.store()).await.expect("key store");
        keys.key_for(&stream, &subject)
            .await
            .expect("a key created through row-level security");
        assert!(keys.key(&stream).await.expect("read").is_some());
    }
    let (schema_a, schema_b) = (
        tenants.schema_of(&a).unwrap(),
        tenants.schema_of(&b).unwrap(),
    );
    for schema in [&schema_a, &schema_b] {
        let tables = security_of_tables(&admin, schema.as_str()).await;
        assert!(
            tables.iter().any(|(name, ..)| name == "data_keys"),
            "{tables:?}"
        );
        let open: Vec<_> = tables
            .iter()
            .filter(|(_, enabled, forced, policy)| !(*enabled && *forced && *policy))
            .collect();
        assert!(
            open.is_empty(),
            "tables of {schema} without row-level security: {open:?}"
        );
    }

    let app = raw(&role.url).await;
    app.batch_execute("SET smsys.tenant = 'acme'")
        .await
        .unwrap();
    let keys_of = |schema: &str| format!("SELECT count(*) FROM \"{schema}\".data_keys");
    assert_eq!(
        count(&app, &keys_of(schema_b.as_str())).await,
        0,
        "keys of another tenant"
    );
    assert_eq!(count(&app, &keys_of(schema_a.as_str())).await, 1);
    let stolen = app
        .execute(
            &format!("DELETE FROM \"{schema_b}\".data_keys WHERE true"),
            &[],
        )
        .await;
    assert!(matches!(stolen, Ok(0) | Err(_)), "{stolen:?}");
    assert_eq!(count(&admin, &keys_of(schema_b.as_str())).await, 1);

    drop((tenants, app));
    drop_tenants(&url, &registry).await;
    role.drop(&admin).await;
}

/// Opening one tenant does not wait for another tenant's open (here held up by a lock on its
/// schema's migration), and concurrent opens of one tenant share one store.
#[tokio::test]
async fn pg_a_slow_tenant_open_holds_up_no_other_tenant() {
    let Some(url) = database_url() else { return };
    let registry = fresh_schema();
    let tenants = PgTenants::builder(url.as_str())
        .registry_schema(&registry)
        .expect("valid")
        .connect()
        .await
        .expect("connected");
    let (slow, quick) = (
        TenantId::new("slow").unwrap(),
        TenantId::new("quick").unwrap(),
    );
    let blocker = raw(&url).await;
    blocker
        .execute(
            "SELECT pg_advisory_lock(hashtextextended('smsys.migrate.' || $1, 0))",
            &[&tenants.schema_of(&slow).unwrap().as_str()],
        )
        .await
        .expect("the slow tenant's migration lock taken");
    let opening: Vec<_> = (0..2)
        .map(|_| {
            let (tenants, slow) = (tenants.clone(), slow.clone());
            tokio::spawn(async move { tenants.tenant(&slow).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let other = tokio::time::timeout(Duration::from_secs(10), tenants.tenant(&quick))
        .await
        .expect("another tenant opens while the slow one waits")
        .expect("opened");
    assert!(opening.iter().all(|task| !task.is_finished()));
    blocker
        .execute("SELECT pg_advisory_unlock_all()", &[])
        .await
        .expect("unlocked");
    let mut stores = Vec::new();
    for task in opening {
        stores.push(task.await.expect("joined").expect("opened"));
    }
    assert!(
        Arc::ptr_eq(stores[0].store(), stores[1].store()),
        "one store per tenant"
    );
    let again = tenants.tenant(&slow).await.expect("opened");
    assert!(Arc::ptr_eq(stores[0].store(), again.store()));

    drop((stores, again, other, tenants, blocker));
    drop_tenants(&url, &registry).await;
}
