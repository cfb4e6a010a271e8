//! Schemas written by earlier releases open with the current code: a schema at migration 2
//! (metadata as one JSON column, `schema_v2.sql`) with events written the way that release
//! wrote them reads back identically after the migration, with an intact chain, and takes new
//! appends; a row that does not decode stops the migration and leaves the schema untouched.

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use serde_json::json;
use smsys_core::{
    Actor, EventData, EventId, EventType, ExpectedVersion, LogFilter, Metadata, Position,
    RecordedEvent, StreamAppend, StreamId, TenantId, Version, verify_events,
};
use smsys_store::postgres::{PgError, PgEventStore};
use smsys_store::testkit::{Fixture, event};
use tokio_postgres::types::Json;

use super::{database_url, drop_schema, fresh_schema, open, raw, read_all};

const SCHEMA_V2: &str = include_str!("schema_v2.sql");

/// Creates `schema` as release 0.1 left it.
async fn create_v2(client: &tokio_postgres::Client, schema: &str) {
    client
        .batch_execute(&SCHEMA_V2.replace("{schema}", &format!("\"{schema}\"")))
        .await
        .expect("the old schema is created");
}

/// Writes `events` as release 0.1 did: one transaction, metadata as JSON, the chain hashed at
/// append. Returns them as recorded.
async fn write_v2(
    client: &mut tokio_postgres::Client,
    schema: &str,
    events: Vec<(StreamId, EventData)>,
) -> Vec<RecordedEvent> {
    let tx = client.transaction().await.expect("begin");
    let recorded_at = smsys_core::to_micros(Utc::now());
    let mut heads: std::collections::HashMap<StreamId, (Version, smsys_core::EventHash)> =
        std::collections::HashMap::new();
    let mut recorded = Vec::new();
    for (stream, data) in events {
        let head = heads.get(&stream).copied();
        let version = head.map_or(Version::FIRST, |(v, _)| v.next());
        let previous = head.map(|(_, h)| h);
        let mut event = RecordedEvent::record(
            stream.clone(),
            version,
            Position::START,
            data,
            recorded_at,
            previous,
        );
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO \"{schema}\".events (tx_id, stream_id, version, category, event_id,
                         event_type, schema_version, tenant, payload, metadata, recorded_at,
                         previous_hash, hash)
                     VALUES (pg_current_xact_id()::text::bigint, $1, $2, $3, $4, $5, $6, $7, $8,
                             $9, $10, $11, $12)
                     RETURNING tx_id, seq"
                ),
                &[
                    &stream.as_str(),
                    &(version.get() as i64),
                    &stream.category_str(),
                    &event.event_id().as_uuid(),
                    &event.event_type().as_str(),
                    &i64::from(event.data.schema_version()),
                    &event.data.metadata().tenant().map(TenantId::as_str),
                    &Json(event.data.payload()),
                    &Json(event.data.metadata()),
                    &event.recorded_at,
                    &previous.map(|h| h.as_bytes().to_vec()),
                    &event.hash.as_bytes().as_slice(),
                ],
            )
            .await
            .expect("an old-shape event row");
        let (tx_id, seq): (i64, i64) = (row.get(0), row.get(1));
        event.position = Position::new(tx_id as u64, seq as u64);
        heads.insert(stream, (version, event.hash));
        recorded.push(event);
    }
    for (stream, (version, head)) in &heads {
        tx.execute(
            &format!(
                "INSERT INTO \"{schema}\".streams (stream_id, version, head_hash)
                 VALUES ($1, $2, $3)"
            ),
            &[
                &stream.as_str(),
                &(version.get() as i64),
                &head.as_bytes().as_slice(),
            ],
        )
        .await
        .expect("an old-shape stream row");
    }
    tx.commit().await.expect("commit");
    recorded
}

/// Metadata as only serde builds it: extension keys `Metadata::with_extension` refuses.
fn unusual_metadata() -> Metadata {
    serde_json::from_value(json!({
        "event_id": uuid::Uuid::now_v7(),
        "actor": "svc:importer «ü»",
        "occurred_at": "1969-12-31T23:59:59.999999Z",
        "extensions": {"": [1.5, 1e300, -0.0], "bell\u{7}": {"b": null}, "ok": "fine"}
    }))
    .expect("metadata deserializes without checking extension keys")
}

fn old_events() -> Vec<(StreamId, EventData)> {
    let (a, b, c) = (
        Fixture::stream("old-a"),
        Fixture::stream("old-b"),
        Fixture::stream_in("incident", "INC-7"),
    );
    let odd = EventData::new(
        EventType::new("odd.one").expect("valid"),
        2,
        json!({"n": 18_446_744_073_709_551_615_u64, "f": 0.30000000000000004, "s": "\u{0}?"}),
        unusual_metadata(),
    )
    .expect("valid");
    let tenanted = EventData::new(
        EventType::new("tenanted").expect("valid"),
        1,
        json!([]),
        Metadata::new(
            EventId::from_uuid(uuid::Uuid::now_v7()).expect("not nil"),
            Actor::new("agent:bo").expect("valid"),
            Utc.with_ymd_and_hms(2031, 1, 2, 3, 4, 5)
                .single()
                .expect("valid")
                + chrono::TimeDelta::microseconds(6),
        )
        .with_tenant(TenantId::new("acme").expect("valid")),
    )
    .expect("valid");
    vec![
        (a.clone(), event("old.plain", json!({"i": 1}))),
        (b.clone(), Fixture::rich_event()),
        (a.clone(), Fixture::rich_event()),
        (c.clone(), odd),
        (a.clone(), event("old.plain", json!({"i": 2}))),
        (c, tenanted),
        (b, event("old.plain", json!(null))),
        (a, event("old.plain", json!({"i": 3}))),
    ]
}

/// A schema at migration 2 with events opens with the current code: every event reads back
/// identically (log and streams), the chain is intact, the metadata column is gone, new
/// appends continue the chains, and opening again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_of_release_0_1_migrates_and_reads_back_identically() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let mut admin = raw(&url).await;
    create_v2(&admin, &schema).await;
    let mut written = write_v2(&mut admin, &schema, old_events()).await;
    // A second transaction, so the log spans more than one transaction id.
    let more: Vec<(StreamId, EventData)> = (0..600)
        .map(|i| {
            (
                Fixture::stream("old-many"),
                event("old.many", json!({ "i": i })),
            )
        })
        .collect();
    written.extend(write_v2(&mut admin, &schema, more).await);

    let store = open(&url, &schema, 2).await;
    let log = read_all(&store).await;
    assert_eq!(
        log, written,
        "every event reads back identically, in log order"
    );
    for stream in ["old-a", "old-b", "old-many"]
        .map(Fixture::stream)
        .into_iter()
        .chain([Fixture::stream_in("incident", "INC-7")])
    {
        let forwards: Vec<RecordedEvent> =
            smsys_core::EventStore::read_stream(&store, &stream, Version::FIRST)
                .map(|e| e.expect("reads"))
                .collect()
                .await;
        let expected: Vec<&RecordedEvent> = written.iter().filter(|e| e.stream == stream).collect();
        assert_eq!(forwards.iter().collect::<Vec<_>>(), expected, "{stream}");
    }
    let report = verify_events(smsys_core::EventStore::read_all(
        &store,
        Position::START,
        LogFilter::all(),
    ))
    .await
    .expect("reads");
    assert!(report.is_intact(), "{:?}", report.first_break);
    assert_eq!(report.events_checked, written.len() as u64);
    let columns = admin
        .query_one(
            "SELECT count(*) FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = 'events' AND column_name = 'metadata'",
            &[&schema],
        )
        .await
        .expect("reads the catalog");
    assert_eq!(columns.get::<_, i64>(0), 0, "the metadata column is gone");

    // New appends continue the old chains, also with metadata only serde can build.
    let a = Fixture::stream("old-a");
    let later = EventData::new(
        EventType::new("new.odd").expect("valid"),
        1,
        json!({"after": true}),
        unusual_metadata(),
    )
    .expect("valid");
    smsys_core::EventStore::append(
        &store,
        &a,
        ExpectedVersion::Exact(Version::new(4)),
        vec![later.clone()],
    )
    .await
    .expect("appends after the migration");
    let results = smsys_core::EventStore::append_batch(
        &store,
        vec![
            StreamAppend::new(
                Fixture::stream("old-b"),
                ExpectedVersion::Exact(Version::new(2)),
                vec![Fixture::rich_event()],
            ),
            StreamAppend::new(
                a.clone(),
                ExpectedVersion::Any,
                vec![event("new", json!(1))],
            ),
        ],
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let a_events: Vec<RecordedEvent> =
        smsys_core::EventStore::read_stream(&store, &a, Version::new(5))
            .map(|e| e.expect("reads"))
            .collect()
            .await;
    assert_eq!(a_events[0].data, later, "unusual metadata round-trips");
    let report = verify_events(smsys_core::EventStore::read_all(
        &store,
        Position::START,
        LogFilter::all(),
    ))
    .await
    .expect("reads");
    assert!(report.is_intact(), "{:?}", report.first_break);
    assert_eq!(report.events_checked, written.len() as u64 + 3);

    drop(store);
    let again = open(&url, &schema, 1).await;
    assert_eq!(read_all(&again).await.len(), written.len() + 3);
    drop(again);
    drop_schema(&url, &schema).await;
}

/// An old event whose metadata does not decode stops the migration with a typed error, and
/// the schema stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_stops_at_metadata_that_does_not_decode() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let mut admin = raw(&url).await;
    create_v2(&admin, &schema).await;
    write_v2(
        &mut admin,
        &schema,
        vec![(Fixture::stream("bad"), event("bad", json!({})))],
    )
    .await;
    admin
        .batch_execute(&format!(
            "UPDATE \"{schema}\".events SET metadata = '{{\"actor\": \"x\"}}'"
        ))
        .await
        .expect("damages the metadata");
    let refused = PgEventStore::builder(url.as_str())
        .schema(&schema)
        .expect("valid schema name")
        .connect()
        .await;
    match refused {
        Err(PgError::Store(smsys_core::StoreError::Corrupt { what })) => {
            assert!(what.contains("metadata"), "{what}")
        }
        Err(other) => panic!("expected a corrupt-data error, got {other}"),
        Ok(_) => panic!("a log with undecodable metadata must not be migrated silently"),
    }
    let level = admin
        .query_one(
            &format!("SELECT max(version) FROM \"{schema}\".schema_migrations"),
            &[],
        )
        .await
        .expect("reads");
    assert_eq!(
        level.get::<_, Option<i32>>(0),
        Some(2),
        "nothing was migrated"
    );
    drop_schema(&url, &schema).await;
}

/// Whether `table` of `schema` has a column `column`.
async fn has_column(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
    column: &str,
) -> bool {
    client
        .query_one(
            "SELECT count(*) FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
            &[&schema, &table, &column],
        )
        .await
        .expect("reads the catalog")
        .get::<_, i64>(0)
        == 1
}

/// Migration 4 adds append boundaries and checkpoint filters: events of an older release have
/// no boundary (`NULL`), so a part of their append is still answered as a retry (the lenient
/// rule), while a part of an append made after the migration is refused, with `append` and
/// as a batch part; the exact retry returns the original result either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_4_keeps_old_retries_lenient_and_makes_new_ones_whole() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let mut admin = raw(&url).await;
    create_v2(&admin, &schema).await;
    let s = Fixture::stream("bounded");
    let old: Vec<EventData> = (0..3).map(|i| event("old", json!({ "i": i }))).collect();
    let written = write_v2(
        &mut admin,
        &schema,
        old.iter().map(|e| (s.clone(), e.clone())).collect(),
    )
    .await;

    let store = open(&url, &schema, 2).await;
    assert!(has_column(&admin, &schema, "events", "append_len").await);
    assert!(has_column(&admin, &schema, "checkpoints", "filter").await);
    let level = admin
        .query_one(
            &format!("SELECT max(version) FROM \"{schema}\".schema_migrations"),
            &[],
        )
        .await
        .expect("reads");
    // Migrated to the latest migration (5: the configuration graph).
    assert_eq!(level.get::<_, Option<i32>>(0), Some(5));
    let unknown = admin
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".events WHERE append_len IS NULL"),
            &[],
        )
        .await
        .expect("reads");
    assert_eq!(unknown.get::<_, i64>(0), 3, "old boundaries are unknown");
    assert_eq!(read_all(&store).await, written);

    let part =
        smsys_core::EventStore::append(&store, &s, ExpectedVersion::NoStream, old[..2].to_vec())
            .await
            .expect("an old append's boundaries are unknown: lenient");
    assert_eq!(part.version, Version::new(2));

    let new: Vec<EventData> = (0..3).map(|i| event("new", json!({ "i": i }))).collect();
    let appended = smsys_core::EventStore::append(
        &store,
        &s,
        ExpectedVersion::Exact(Version::new(3)),
        new.clone(),
    )
    .await
    .expect("a new append");
    let bounds = admin
        .query(
            &format!(
                "SELECT append_len FROM \"{schema}\".events WHERE stream_id = $1 AND version > 3
                 ORDER BY version"
            ),
            &[&s.as_str()],
        )
        .await
        .expect("reads");
    let bounds: Vec<Option<i32>> = bounds.iter().map(|r| r.get(0)).collect();
    assert_eq!(bounds, vec![Some(3), Some(0), Some(0)]);
    let refused =
        smsys_core::EventStore::append(&store, &s, ExpectedVersion::Any, new[1..].to_vec()).await;
    assert!(
        matches!(refused, Err(smsys_core::AppendError::EventIdReused { .. })),
        "a part of a new append is refused: {refused:?}"
    );
    let batch = smsys_core::EventStore::append_batch(
        &store,
        vec![
            StreamAppend::new(s.clone(), ExpectedVersion::Any, new[..2].to_vec()),
            StreamAppend::new(s.clone(), ExpectedVersion::Any, new.clone()),
        ],
    )
    .await;
    assert!(
        matches!(batch[0], Err(smsys_core::AppendError::EventIdReused { .. })),
        "a part of a new append is refused as a batch part: {:?}",
        batch[0]
    );
    assert_eq!(batch[1].as_ref().ok(), Some(&appended), "the exact retry");
    assert_eq!(read_all(&store).await.len(), 6, "retries wrote nothing");
    drop(store);
    drop_schema(&url, &schema).await;
}
