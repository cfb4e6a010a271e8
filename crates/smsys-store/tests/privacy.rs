//! Personal fields through the `Protected` decorator on memory, SQLite and PostgreSQL: the
//! caller reads exactly what was appended, the inner store holds no plaintext, retries are
//! recognised, and erasure leaves placeholders while the chain still verifies. PostgreSQL
//! needs `SMSYS_TEST_DATABASE_URL` (skipped without it, failing under `CI=true`), one fresh
//! schema per test.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::wildcard_enum_match_arm,
    reason = "tests report failures by panicking and skips on stderr"
)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use smsys_core::personal::DataSubject;
use smsys_core::records::personal_data;
use smsys_core::seal::verify_sealed;
use smsys_core::{
    Actor, EventData, EventId, EventStore, EventType, ExpectedVersion, LogFilter, Metadata,
    Position, StreamAppend, StreamId, Version,
};
use smsys_store::MemoryEventStore;
use smsys_store::privacy::{
    ERASURE_EVENT_TYPE, ErasureRequest, KeyState, KeyStore, MemoryKeyStore, Protected,
    erasure_stream,
};

#[path = "privacy/edges.rs"]
mod edges;

use edges::{assert_refused_as_erased, erasure_edges};

const CALLER: &str = "caller-ana-7731";
const SUMMARY: &str = "laptop stolen from car, call 555-0100";
const NOTE: &str = "spoke to ana at home";

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn event(id: u128, name: &str, payload: Value) -> EventData {
    let meta = Metadata::new(
        EventId::from_uuid(uuid::Uuid::from_u128(id)).unwrap(),
        Actor::new("agent:bo").unwrap(),
        at(),
    );
    EventData::new(EventType::new(name).unwrap(), 1, payload, meta).unwrap()
}

fn logged(id: u128, caller: &str) -> EventData {
    event(
        id,
        "incident.logged",
        json!({"reference": "INC-1", "caller": caller, "service": "email",
               "summary": SUMMARY, "description": "", "affected_cis": ["pc-1"]}),
    )
}

fn noted(id: u128) -> EventData {
    event(
        id,
        "incident.noted",
        json!({"kind": "work_note", "text": NOTE}),
    )
}

fn stream(n: u32) -> StreamId {
    format!("incident-INC-{n}").parse().unwrap()
}

async fn all<S: EventStore + ?Sized>(store: &S) -> Vec<smsys_core::RecordedEvent> {
    store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reads"))
        .collect()
        .await
}

/// Round trip, no plaintext inside, retries recognised, then erasure.
async fn scenario<S: EventStore + 'static>(inner: Arc<S>, keys: Arc<dyn KeyStore>) {
    let store = Protected::new(inner.clone(), keys.clone(), personal_data());
    let first = vec![logged(1, CALLER), noted(2)];
    let written = store
        .append(&stream(1), ExpectedVersion::NoStream, first.clone())
        .await
        .expect("appends");
    // A retry of the same events is answered with the original result, not refused.
    let again = store
        .append(&stream(1), ExpectedVersion::NoStream, first.clone())
        .await
        .expect("a retry is recognised");
    assert_eq!(again, written);
    let batch = vec![
        StreamAppend::new(
            stream(2),
            ExpectedVersion::NoStream,
            vec![logged(3, CALLER)],
        ),
        StreamAppend::new(stream(3), ExpectedVersion::NoStream, vec![logged(4, "bo")]),
        StreamAppend::new(
            stream(1),
            ExpectedVersion::Exact(Version::new(2)),
            vec![noted(5)],
        ),
    ];
    let results: Vec<_> = store.append_batch(batch.clone()).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let retried = store.append_batch(batch).await;
    assert_eq!(
        retried.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        results.into_iter().map(Result::unwrap).collect::<Vec<_>>()
    );

    // The caller reads exactly what was appended, by every read path.
    let read: Vec<EventData> = store
        .read_stream(&stream(1), Version::FIRST)
        .map(|e| e.expect("reads").data)
        .collect()
        .await;
    assert_eq!(read, vec![first[0].clone(), first[1].clone(), noted(5)]);
    let backwards = store
        .read_stream_backwards(&stream(1), None)
        .next()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backwards.data, noted(5));
    assert_eq!(all(&store).await.len(), 5);
    assert!(all(&store).await.iter().any(|e| e.data == logged(4, "bo")));
    let found = store
        .find_event(first[0].event_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.data, first[0]);
    let live: Vec<_> = store
        .subscribe(Position::START, LogFilter::all())
        .take(5)
        .map(|e| e.unwrap().data)
        .collect()
        .await;
    assert_eq!(live[0], first[0]);

    // Nothing personal reaches the inner store; what is not personal stays readable there.
    let stored = serde_json::to_string(
        &all(&*inner)
            .await
            .iter()
            .map(|e| e.data.payload().clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for secret in [CALLER, SUMMARY, NOTE, "\"bo\""] {
        assert!(!stored.contains(secret), "{secret} is stored in plaintext");
    }
    assert!(stored.contains("pc-1") && stored.contains("INC-1"));
    let untouched = verify_sealed(&*inner).await.expect("verifies");
    assert!(untouched.is_intact(), "{untouched:?}");

    // Erasure: two records of the caller, three events.
    let subject = DataSubject::new(CALLER).unwrap();
    let request = ErasureRequest::new("DSR-1".parse().unwrap(), Actor::new("dpo").unwrap(), at());
    let report = store
        .erase_subject(&subject, &request)
        .await
        .expect("erases");
    assert_eq!(report.streams, vec![stream(1), stream(2)]);
    assert_eq!(report.events, 4);
    assert_eq!(keys.key(&stream(1)).await.unwrap(), Some(KeyState::Erased));
    assert!(matches!(
        keys.key(&stream(3)).await.unwrap(),
        Some(KeyState::Live(_))
    ));
    assert_eq!(report.plaintext_events, 0);
    // Run again, the same request answers with the recorded report.
    assert_eq!(
        store
            .erase_subject(&subject, &request)
            .await
            .expect("again"),
        report
    );

    let erased = store
        .read_stream(&stream(1), Version::FIRST)
        .next()
        .await
        .unwrap()
        .unwrap();
    let payload = erased.data.payload();
    assert_eq!(payload["caller"], "erased");
    assert_eq!(payload["summary"], "[erased]");
    assert_eq!(payload["affected_cis"], json!(["pc-1"]));
    let other = store
        .read_stream(&stream(3), Version::FIRST)
        .next()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.data, logged(4, "bo"));

    // The chain still verifies; the erasure is recorded without the subject.
    let report = verify_sealed(&*inner).await.expect("verifies");
    assert!(report.is_intact(), "{report:?}");
    let log: Vec<_> = inner
        .read_stream(&erasure_stream(), Version::FIRST)
        .map(|e| e.unwrap())
        .collect()
        .await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event_type().as_str(), ERASURE_EVENT_TYPE);
    assert!(!log[0].data.payload().to_string().contains(CALLER));

    // Nothing personal can be recorded in an erased record again.
    let refused = store
        .append(&stream(1), ExpectedVersion::Any, vec![noted(9)])
        .await;
    assert_refused_as_erased(&refused);
}

#[tokio::test]
async fn memory_round_trip_retry_and_erasure() {
    let (inner, keys) = (
        Arc::new(MemoryEventStore::new()),
        Arc::new(MemoryKeyStore::new()),
    );
    scenario(inner.clone(), keys.clone()).await;
    erasure_edges(inner, keys).await;
}

/// Refusals name where and what, never the personal value refused.
#[tokio::test]
async fn refusals_do_not_quote_personal_data() {
    let store = Protected::new(
        Arc::new(MemoryEventStore::new()),
        Arc::new(MemoryKeyStore::new()),
        personal_data(),
    );
    for caller in [
        json!("Ana Smith\nphone 555-0100"),
        json!({"phone": "555-0100"}),
    ] {
        let mut event = logged(1, "x");
        let (event_type, version, mut payload, metadata) = event.into_parts();
        payload["caller"] = caller;
        event = EventData::stored(event_type, version, payload, metadata);
        let error = store
            .append(&stream(1), ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap_err();
        let mut text = format!("{error} {error:?}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text.push_str(&format!(" | {cause} {cause:?}"));
            source = cause.source();
        }
        assert!(
            !text.contains("555-0100"),
            "personal data in a refusal: {text}"
        );
        assert!(text.contains("/caller"), "{text}");
    }
}

#[tokio::test]
async fn payloads_that_look_encrypted_are_refused() {
    let store = Protected::new(
        Arc::new(MemoryEventStore::new()),
        Arc::new(MemoryKeyStore::new()),
        personal_data(),
    );
    let forged = event(
        1,
        "incident.noted",
        json!({"kind": "comment", "text": {"$personal": {}}}),
    );
    assert!(
        store
            .append(&stream(1), ExpectedVersion::Any, vec![forged])
            .await
            .is_err()
    );
    // A record never logged has no subject to register its key to.
    let refused = store
        .append(&stream(1), ExpectedVersion::Any, vec![noted(2)])
        .await;
    assert!(
        format!("{:?}", refused).contains("NoSubject"),
        "{refused:?}"
    );
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use smsys_store::SqliteEventStore;
    use smsys_store::privacy::SqliteKeyStore;

    #[tokio::test]
    async fn sqlite_round_trip_retry_and_erasure() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(
            SqliteEventStore::open(dir.path().join("log.db"))
                .await
                .unwrap(),
        );
        let keys = SqliteKeyStore::open(dir.path().join("keys.db"))
            .await
            .unwrap();
        let keys = Arc::new(keys);
        scenario(inner.clone(), keys.clone()).await;
        erasure_edges(inner.clone(), keys).await;
        assert!(inner.verify().await.unwrap().is_intact());
    }

    /// Erased keys are gone after a reopen, and their bytes are in neither the key file nor
    /// its write-ahead log.
    #[tokio::test]
    async fn sqlite_key_erasure_is_durable_and_overwrites_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        let keys = SqliteKeyStore::open(&path).await.unwrap();
        let (ana, bo) = (
            DataSubject::new("ana").unwrap(),
            DataSubject::new("bo").unwrap(),
        );
        let live = |state: KeyState| state.into_live().expect("a live key");
        let key = live(keys.key_for(&stream(1), &ana).await.unwrap());
        assert_eq!(
            live(keys.key_for(&stream(1), &bo).await.unwrap()),
            key,
            "create-or-get"
        );
        keys.key_for(&stream(2), &ana).await.unwrap();
        let kept = keys.key_for(&stream(3), &bo).await.unwrap();
        let on_disk = || {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(std::fs::read(dir.path().join("keys.db-wal")).unwrap_or_default());
            bytes
        };
        let holds = |bytes: &[u8], key: &smsys_store::privacy::DataKey| {
            bytes.windows(32).any(|w| w == key.bytes())
        };
        assert!(holds(&on_disk(), &key), "the key is written before erasure");
        assert_eq!(
            keys.erase(&ana, &[stream(2), stream(1), stream(3)])
                .await
                .unwrap(),
            vec![stream(1), stream(2)]
        );
        assert!(
            !holds(&on_disk(), &key),
            "the erased key's bytes are overwritten"
        );
        drop(keys);
        let keys = SqliteKeyStore::open(&path).await.unwrap();
        assert_eq!(keys.key(&stream(1)).await.unwrap(), Some(KeyState::Erased));
        assert_eq!(
            keys.key_for(&stream(1), &ana).await.unwrap(),
            KeyState::Erased,
            "never created again"
        );
        assert!(!keys.register(&stream(1), &bo).await.unwrap());
        assert_eq!(keys.key(&stream(4)).await.unwrap(), None);
        assert!(keys.keys_of(&ana).await.unwrap().is_empty());
        assert_eq!(keys.key(&stream(3)).await.unwrap(), Some(kept));
        assert_eq!(
            keys.keys(&[stream(3), stream(1), stream(4)]).await.unwrap(),
            vec![
                keys.key(&stream(3)).await.unwrap(),
                Some(KeyState::Erased),
                None
            ]
        );
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use smsys_store::postgres::PgEventStore;
    use smsys_store::privacy::PgKeyStore;

    const URL_VAR: &str = "SMSYS_TEST_DATABASE_URL";

    fn database_url() -> Option<String> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("{URL_VAR} is not set but CI=true: the PostgreSQL tests must run in CI")
            }
            _ => {
                eprintln!("skipped: {URL_VAR} is not set");
                None
            }
        }
    }

    #[tokio::test]
    async fn postgres_round_trip_retry_and_erasure() {
        let Some(url) = database_url() else { return };
        let schema = format!("smsys_test_{}", uuid::Uuid::now_v7().simple());
        let inner = PgEventStore::builder(url.as_str())
            .schema(&schema)
            .expect("valid schema name")
            .pool_size(4)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot open the store on {URL_VAR}={url:?}: {e}"));
        let keys = PgKeyStore::open(&inner).await.expect("key table");
        let inner = Arc::new(inner);
        scenario(inner.clone(), Arc::new(keys.clone())).await;
        erasure_edges(inner.clone(), Arc::new(keys.clone())).await;
        assert!(inner.verify().await.unwrap().is_intact());
        // Reopened on another pool, the erased keys stay erased.
        let again = PgEventStore::builder(url.as_str())
            .schema(&schema)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let keys = PgKeyStore::open(&again).await.unwrap();
        assert_eq!(keys.key(&stream(1)).await.unwrap(), Some(KeyState::Erased));
        assert!(matches!(
            keys.key(&stream(3)).await.unwrap(),
            Some(KeyState::Live(_))
        ));
        assert_eq!(
            keys.keys(&[stream(1), stream(3), stream(99)])
                .await
                .unwrap()
                .iter()
                .map(|k| k.as_ref().map(KeyState::is_erased))
                .collect::<Vec<_>>(),
            vec![Some(true), Some(false), None]
        );
        drop((inner, again, keys));
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .unwrap();
    }
}
