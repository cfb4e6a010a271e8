//! How failures reach the caller: transient when retrying may help (a read-only server after
//! a failover, an old transaction holding the log back), permanent or corrupt when it cannot
//! (a stored value that does not decode).

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use smsys_core::{
    EventStore, ExpectedVersion, LogFilter, Position, RecordedEvent, StoreError, verify_events,
};
use smsys_store::postgres::{LogHeldBack, PgError, PgEventStore};
use smsys_store::testkit::{Fixture, event};

use super::{database_url, drop_schema, fresh_schema, open, raw};

/// A server that refuses writes (a standby, a primary demoted by a failover: SQLSTATE 25006)
/// fails the store transiently: the pool reconnects to the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_only_server_fails_transiently() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    drop(open(&url, &schema, 1).await);
    let read_only = format!("{url} options='-c default_transaction_read_only=on'");
    match PgEventStore::builder(read_only)
        .schema(&schema)
        .expect("valid schema name")
        .pool_size(1)
        .connect()
        .await
    {
        Err(PgError::Store(StoreError::Backend(error))) => {
            assert!(error.is_transient(), "{error}: {:?}", error)
        }
        Err(other) => panic!("expected a transient backend error, got {other}"),
        Ok(_) => panic!("a read-only server cannot migrate"),
    }
    drop_schema(&url, &schema).await;
}

/// A stored value that does not decode (here: a column of another type) is corrupt data, not
/// a transient failure a caller (a subscriber) would retry forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_undecodable_values_are_corrupt() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 1).await;
    let s = Fixture::stream("undecodable");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("u", json!({}))])
        .await
        .expect("append succeeds");
    raw(&url)
        .await
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".streams ALTER COLUMN version TYPE numeric"
        ))
        .await
        .expect("the column changes type");
    match store.stream_version(&s).await {
        Err(StoreError::Corrupt { what }) => assert!(what.contains("version"), "{what}"),
        other => panic!("expected corrupt data, got {other:?}"),
    }
    drop(store);
    drop_schema(&url, &schema).await;
}

/// The events `read_all` yields, or its first error.
async fn try_read_all(store: &PgEventStore) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut all = Vec::new();
    let mut events = store.read_all(Position::START, LogFilter::all());
    while let Some(event) = events.next().await {
        all.push(event?);
    }
    Ok(all)
}

/// While a transaction that took its position before committed events stays open past the
/// read barrier timeout, `read_all` fails transiently with `LogHeldBack` (an audit through it
/// fails instead of calling part of the log intact); once it ends, the whole log reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_all_fails_while_an_old_transaction_holds_the_log_back() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = PgEventStore::builder(url.as_str())
        .schema(&schema)
        .expect("valid schema name")
        .pool_size(2)
        .read_barrier_timeout(Duration::from_millis(200))
        .connect()
        .await
        .expect("the store opens");
    let s = Fixture::stream("held");
    store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![event("h", json!({"i": 0}))],
        )
        .await
        .expect("append succeeds");

    // A writer that has taken its position and not committed.
    let slow = raw(&url).await;
    slow.batch_execute("BEGIN").await.expect("begin");
    slow.execute(
        &format!(
            "INSERT INTO \"{schema}\".checkpoints (name, tx_id, seq)
             VALUES ('slow', pg_current_xact_id()::text::bigint,
                     nextval(pg_get_serial_sequence('\"{schema}\".events', 'seq')))"
        ),
        &[],
    )
    .await
    .expect("the slow writer takes a position");
    store
        .append(&s, ExpectedVersion::Any, vec![event("h", json!({"i": 1}))])
        .await
        .expect("append succeeds");

    let started = Instant::now();
    match try_read_all(&store).await {
        Err(StoreError::Backend(error)) => {
            assert!(error.is_transient(), "{error}");
            let held = std::error::Error::source(&error)
                .and_then(|source| source.downcast_ref::<LogHeldBack>())
                .unwrap_or_else(|| panic!("the source says why: {error:?}"));
            assert!(held.waited >= Duration::from_millis(200), "{held}");
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it gave up in time"
    );
    let audit = verify_events(store.read_all(Position::START, LogFilter::all())).await;
    assert!(audit.is_err(), "an audit cannot pass on part of the log");

    slow.batch_execute("ROLLBACK").await.expect("rollback");
    // Other tests on the cluster may hold transactions open for a moment too.
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = loop {
        match try_read_all(&store).await {
            Ok(log) => break log,
            Err(error) if Instant::now() < deadline => {
                eprintln!("read all, again: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the log reads once the transaction ended: {error}"),
        }
    };
    assert_eq!(log.len(), 2, "the whole log");
    drop(store);
    drop_schema(&url, &schema).await;
}

/// `verify` checks the columns the hash does not cover: an event's category (log filters
/// select by it) and a stream's row (appends check against it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_verify_checks_what_the_hash_does_not_cover() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 2).await;
    let (a, b) = (Fixture::stream("a"), Fixture::stream("b"));
    for s in [&a, &b, &a] {
        store
            .append(s, ExpectedVersion::Any, vec![event("v", json!({}))])
            .await
            .expect("append succeeds");
    }
    assert!(store.verify().await.expect("verifies").is_intact());
    let admin = raw(&url).await;
    let edit = |sql: String| {
        let admin = &admin;
        async move { admin.batch_execute(&sql).await.expect("the edit applies") }
    };

    edit(format!(
        "UPDATE \"{schema}\".events SET category = 'other' WHERE stream_id = '{a}' AND version = 2"
    ))
    .await;
    match store.verify().await {
        Err(StoreError::Corrupt { what }) => {
            assert!(what.contains(&format!("stream {a}, version 2")), "{what}");
            assert!(what.contains("category 'other'"), "{what}");
        }
        other => panic!("an edited category is found, got {other:?}"),
    }
    edit(format!(
        "UPDATE \"{schema}\".events SET category = 'test' WHERE stream_id = '{a}'"
    ))
    .await;
    assert!(store.verify().await.expect("verifies").is_intact());

    edit(format!(
        "UPDATE \"{schema}\".streams SET version = 1 WHERE stream_id = '{a}'"
    ))
    .await;
    match store.verify().await {
        Err(StoreError::Corrupt { what }) => {
            assert!(
                what.contains(&format!("stream {a}: its row says version 1")),
                "{what}"
            )
        }
        other => panic!("an edited stream row is found, got {other:?}"),
    }
    drop(store);
    drop_schema(&url, &schema).await;
}
