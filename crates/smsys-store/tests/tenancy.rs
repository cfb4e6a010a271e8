//! Tenants that never see each other, in memory and on SQLite: random commands and appends for
//! four tenants with colliding stream ids, then every read path of each tenant's handle
//! against a model (`tenancy/model.rs`, shared with the PostgreSQL run); a misrouted event is
//! refused on read; tenant files and their listing.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests report failures by panicking"
)]

use std::sync::Arc;

use futures::StreamExt;
use proptest::prelude::*;
use smsys_core::records::RecordIndexStore;
use smsys_core::{
    Actor, EventData, EventId, EventStore, EventType, ExpectedVersion, LogFilter, Metadata,
    Position, StoreError, StreamId, TenantError, TenantId, Tenants,
};
use smsys_store::{MemoryRecordIndex, MemoryTenants, SqliteOptions, SqliteTenants};

#[path = "tenancy/model.rs"]
mod model;

use model::{Positions, ops, run};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn memory_tenants_see_only_their_own_records(ops in ops(40)) {
        runtime().block_on(async {
            let tenants = MemoryTenants::new();
            run(&tenants, &ops, Positions::Dense, |_| {
                Arc::new(MemoryRecordIndex::new("record_index.v1".try_into().expect("valid")))
                    as Arc<dyn RecordIndexStore>
            })
            .await
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_tenants_see_only_their_own_records(ops in ops(30)) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let tenants = SqliteTenants::open(dir.path(), SqliteOptions::new("unused"))
                .expect("opened");
            let outcome = run(&tenants, &ops, Positions::Dense, |handle| {
                Arc::new(handle.store().record_index("record_index.v1".try_into().expect("valid")))
                    as Arc<dyn RecordIndexStore>
            })
            .await;
            tenants.close().await;
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
        serde_json::json!({}),
        meta,
    )
    .expect("valid")
}

#[tokio::test]
async fn an_event_written_past_the_handle_is_never_shown() {
    let tenants = MemoryTenants::new();
    let acme = tenants
        .tenant(&TenantId::new("acme").unwrap())
        .await
        .unwrap();
    let stream: StreamId = "note-1".parse().unwrap();
    acme.append(&stream, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    // Written to the tenant's store directly: no tenant in its metadata.
    acme.store()
        .append(&stream, ExpectedVersion::Any, vec![event(2)])
        .await
        .unwrap();
    let read: Vec<_> = acme
        .read_all(Position::START, LogFilter::all())
        .collect()
        .await;
    assert!(read[0].is_ok());
    fn misrouted<T>(result: &Result<T, StoreError>) -> bool {
        match result {
            Err(StoreError::Backend(error)) => {
                std::error::Error::source(error).and_then(|s| s.downcast_ref::<TenantError>())
                    == Some(&TenantError::Misrouted {
                        tenant: TenantId::new("acme").unwrap(),
                        position: Position::from_sequence(2),
                    })
            }
            _ => false,
        }
    }
    assert!(misrouted(&read[1]), "{:?}", read[1]);
    let found = acme
        .find_event(EventId::from_uuid(uuid::Uuid::from_u128(2)).unwrap())
        .await;
    assert!(misrouted(&found), "{found:?}");
}

#[tokio::test]
async fn sqlite_tenants_get_a_file_each_and_are_listed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ["acme", "Acme", ".", "..", "a_b.c"].map(|t| TenantId::new(t).unwrap());
    {
        let tenants = SqliteTenants::open(dir.path(), SqliteOptions::new("unused")).unwrap();
        for (n, id) in ids.iter().enumerate() {
            let handle = tenants.tenant(id).await.unwrap();
            assert_eq!(handle.store().path().parent(), Some(dir.path()));
            handle
                .append(
                    &"note-1".parse().unwrap(),
                    ExpectedVersion::NoStream,
                    vec![event(n as u128 + 1)],
                )
                .await
                .unwrap();
            // A second handle shares the store.
            let again = tenants.tenant(id).await.unwrap();
            assert!(Arc::ptr_eq(handle.store(), again.store()));
        }
        tenants.close().await;
    }
    std::fs::write(dir.path().join("notes.txt"), "not a tenant").unwrap();
    std::fs::write(dir.path().join("tenant-A.sqlite"), "not made by smsys").unwrap();
    let tenants = SqliteTenants::open(dir.path(), SqliteOptions::new("unused")).unwrap();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(tenants.tenants().await.unwrap(), want);
    for id in &ids {
        let handle = tenants.tenant(id).await.unwrap();
        let log: Vec<_> = handle
            .read_all(Position::START, LogFilter::all())
            .collect()
            .await;
        assert_eq!(log.len(), 1, "{id}");
        assert_eq!(log[0].as_ref().unwrap().data.metadata().tenant(), Some(id));
    }
    tenants.close().await;
}

#[tokio::test]
async fn a_tenant_id_too_long_for_a_file_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = SqliteTenants::open(dir.path(), SqliteOptions::new("unused")).unwrap();
    let long = TenantId::new("A".repeat(150)).unwrap();
    let refused = tenants.tenant(&long).await;
    assert!(
        matches!(
            refused,
            Err(smsys_store::SqliteTenantsError::IdTooLong { .. })
        ),
        "{refused:?}"
    );
}
