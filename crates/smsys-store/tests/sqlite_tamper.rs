//! Random one-byte edits of random stored values, made behind the store's back: `verify`
//! either names the edited event (or its stream, or its position), or the edit changed nothing
//! any reader sees.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use std::path::Path;

use futures::StreamExt;
use proptest::prelude::*;
use rusqlite::types::Value as Sql;
use serde_json::json;
use smsys_core::seal::Sealer;
use smsys_core::{
    Actor, EventData, EventId, EventStore, EventType, ExpectedVersion, LogFilter, Metadata,
    Position, RecordedEvent, StoreError, StreamId, TenantId,
};
use smsys_store::SqliteEventStore;

/// Columns of the events table, and of the streams table, that an edit may hit.
const EVENT_COLUMNS: [&str; 15] = [
    "position",
    "stream_id",
    "version",
    "event_id",
    "event_type",
    "schema_version",
    "payload",
    "actor",
    "occurred_at",
    "correlation_id",
    "tenant",
    "extensions",
    "recorded_at",
    "previous_hash",
    "hash",
];
const STREAM_COLUMNS: [&str; 3] = ["stream_id", "name", "category"];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn rich(n: u64) -> EventData {
    let metadata = Metadata::new(
        EventId::from_uuid(uuid::Uuid::now_v7()).unwrap(),
        Actor::new(format!("agent:{n}")).unwrap(),
        chrono::DateTime::from_timestamp(1_790_000_000 + n as i64, 0).unwrap(),
    )
    .with_correlation(smsys_core::CorrelationId::from_uuid(uuid::Uuid::now_v7()).unwrap())
    .with_tenant(TenantId::new("acme").unwrap())
    .with_extension("source.row", json!(format!("row {n}")))
    .unwrap();
    EventData::new(
        EventType::new("incident.noted").unwrap(),
        1,
        json!({ "n": n, "text": format!("note number {n}"), "list": [n, 1.5, true] }),
        metadata,
    )
    .unwrap()
}

/// A store of three streams with four events each, interleaved, and a seal of it all.
async fn build(path: &Path) -> Vec<RecordedEvent> {
    let store = SqliteEventStore::open(path).await.unwrap();
    for round in 0..4u64 {
        for s in 0..3u64 {
            let stream: StreamId = format!("incident-{s}").parse().unwrap();
            store
                .append(&stream, ExpectedVersion::Any, vec![rich(round * 3 + s)])
                .await
                .unwrap();
        }
    }
    let shared: std::sync::Arc<dyn EventStore> = std::sync::Arc::new(store.clone());
    Sealer::new(shared).seal().await.unwrap().unwrap();
    let events = read(&store).await.unwrap();
    store.close().await;
    events
}

async fn read(store: &SqliteEventStore) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut out = Vec::new();
    let mut log = store.read_all(Position::START, LogFilter::all());
    while let Some(e) = log.next().await {
        out.push(e?);
    }
    Ok(out)
}

/// Flips one byte (text, blob) or one bit (integer) of one stored value; returns the edited
/// event's position, or the edited stream's row id. `None` when the value is NULL.
fn edit(
    path: &Path,
    table_streams: bool,
    column: &str,
    row: usize,
    at: usize,
    bit: u8,
) -> Option<(bool, i64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let (table, key) = if table_streams {
        ("streams", "stream_id")
    } else {
        ("events", "position")
    };
    let keys: Vec<i64> = conn
        .prepare(&format!("SELECT {key} FROM {table} ORDER BY {key}"))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let id = keys[row % keys.len()];
    let value: Sql = conn
        .query_row(
            &format!("SELECT {column} FROM {table} WHERE {key} = ?1"),
            [id],
            |r| r.get(0),
        )
        .unwrap();
    let edited = match value {
        Sql::Null => return None,
        Sql::Integer(i) => Sql::Integer(i ^ (1 << (bit % 62))),
        Sql::Real(f) => Sql::Real(-f),
        Sql::Text(t) => {
            let mut bytes = t.into_bytes();
            let i = at % bytes.len().max(1);
            if bytes.is_empty() {
                bytes.push(b'x');
            } else {
                bytes[i] ^= 1 << (bit % 8);
            }
            // Stored as text whether or not it is still UTF-8, as a raw edit of the file would.
            conn.execute(
                &format!("UPDATE {table} SET {column} = CAST(?1 AS TEXT) WHERE {key} = ?2"),
                rusqlite::params![bytes, id],
            )
            .ok()?;
            return Some((table_streams, id));
        }
        Sql::Blob(mut b) => {
            let i = at % b.len().max(1);
            if b.is_empty() {
                b.push(1);
            } else {
                b[i] ^= 1 << (bit % 8);
            }
            Sql::Blob(b)
        }
    };
    // A constraint (a unique key, a strict type) may refuse the edit: nothing changed then.
    conn.execute(
        &format!("UPDATE {table} SET {column} = ?1 WHERE {key} = ?2"),
        rusqlite::params![edited, id],
    )
    .ok()?;
    Some((table_streams, id))
}

fn stream_name(path: &Path, stream_row: i64) -> Option<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT CAST(name AS BLOB) FROM streams WHERE stream_id = ?1",
        [stream_row],
        |r| r.get::<_, Vec<u8>>(0),
    )
    .ok()
    .map(|b| String::from_utf8_lossy(&b).into_owned())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn verify_names_every_edit_or_the_edit_changed_nothing(
        streams_table in proptest::bool::weighted(0.15),
        column in 0usize..EVENT_COLUMNS.len(),
        row in 0usize..64,
        at in 0usize..512,
        bit in 0u8..64,
    ) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("store.db");
            let original = build(&path).await;
            let column = if streams_table {
                STREAM_COLUMNS[column % STREAM_COLUMNS.len()]
            } else {
                EVENT_COLUMNS[column]
            };
            let old_names: Vec<(i64, Option<String>)> =
                (1..=4).map(|i| (i, stream_name(&path, i))).collect();
            let Some((on_streams, key)) = edit(&path, streams_table, column, row, at, bit) else {
                return; // NULL, or refused by a constraint: nothing was edited
            };
            let store = match SqliteEventStore::open(&path).await {
                Ok(store) => store,
                Err(error) => panic!("{column}: an edited row must not stop the file opening: {error}"),
            };
            let outcome = store.verify().await;
            // What the edit touched, as readers name it: the stream's name before the edit and
            // after it (an edited name is how the damaged stream now reads).
            let edited_stream: Vec<String> = if on_streams {
                old_names
                    .iter()
                    .find(|(i, _)| *i == key)
                    .and_then(|(_, n)| n.clone())
                    .into_iter()
                    .chain(stream_name(&path, key))
                    .collect()
            } else {
                original
                    .iter()
                    .find(|e| e.position.sequence() == key as u64)
                    .map(|e| e.stream.as_str().to_owned())
                    .into_iter()
                    .collect()
            };
            match outcome {
                Err(StoreError::Corrupt { what }) => {
                    let named = (!on_streams && what.contains(&format!("position {key}")))
                        || (on_streams && what.contains(&format!("stream row {key}")))
                        || edited_stream.iter().any(|s| what.contains(s.as_str()));
                    assert!(named, "{column}: the damage is named: {what}");
                }
                Err(other) => panic!("{column}: a typed Corrupt error, got {other}"),
                Ok(report) if report.is_intact() => {
                    let now = read(&store).await.expect("an intact log reads");
                    assert_eq!(now, original, "{column}: verify says intact, so nothing readable changed");
                }
                Ok(report) => {
                    let listed = report.undecodable.iter().any(|row| {
                        (!on_streams && row.position.sequence() == key as u64)
                            || edited_stream.iter().any(|s| row.what.contains(s.as_str()))
                    });
                    let named = listed || match &report.first_break {
                        Some(b) => {
                            (!on_streams && b.position.sequence() == key as u64)
                                || edited_stream.iter().any(|s| b.stream.as_str() == s)
                        }
                        None => !report.seal_failures.is_empty(),
                    };
                    assert!(named, "{column} of {key}: the edited event is named: {report:?}");
                }
            }
            store.close().await;
        });
    }
}
