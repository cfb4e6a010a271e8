//! Tenants on PostgreSQL: the tenancy model (`tenancy/model.rs`, shared with the memory and
//! SQLite runs) on a schema per tenant, and row-level security shown to hold for an ordinary
//! role: a connection naming tenant A reads none of tenant B's rows, even by schema-qualified
//! name, while the store works through the policies.

use std::sync::Arc;

use futures::StreamExt;
use proptest::prelude::*;
use smsys_core::records::RecordIndexStore;
use smsys_core::{
    Actor, CheckpointStore, EventData, EventId, EventStore, EventType, ExpectedVersion, LogFilter,
    Metadata, Position, StreamId, TenantId, Tenants,
};
use smsys_store::postgres::{CheckpointName, PgTenants};

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

#[tokio::test]
async fn pg_row_level_security_keeps_an_ordinary_role_inside_its_tenant() {
    let Some(url) = database_url() else { return };
    let admin = raw(&url).await;
    let role = format!("smsys_app_{}", uuid::Uuid::now_v7().simple());
    let database: String = admin
        .query_one("SELECT current_database()", &[])
        .await
        .expect("a database")
        .get(0);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS;
             GRANT CREATE ON DATABASE \"{database}\" TO {role};"
        ))
        .await
        .expect("role created");
    let role_url = format!("{url} user={role}");
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
    let cleanup = admin
        .batch_execute(&format!(
            "REVOKE CREATE ON DATABASE \"{database}\" FROM {role}; DROP OWNED BY {role}; DROP ROLE {role};"
        ))
        .await;
    if let Err(error) = cleanup {
        eprintln!("role {role} left behind: {error}");
    }
}
