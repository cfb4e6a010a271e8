//! A file of schema version 2 (written before the store kept append boundaries) migrates to
//! the current schema: its events read back identically, keep the lenient retry rule (their
//! boundaries are unknown), and events appended after the migration get the strict one.

use serde_json::json;
use smsys_core::{AppendError, EventStore, ExpectedVersion, Version};
use smsys_store::SqliteEventStore;
use smsys_store::testkit::{Fixture, event};

use super::{all, runtime};

/// Whether `table` has a column `column`.
fn has_column(conn: &rusqlite::Connection, table: &str, column: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        == 1
}

#[test]
fn a_version_2_file_gains_append_boundaries_and_keeps_its_events() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let s = Fixture::stream("migrated");
        let old: Vec<_> = (0..3).map(|i| event("old", json!({ "i": i }))).collect();
        let store = SqliteEventStore::open(&path).await.unwrap();
        let original = store
            .append(&s, ExpectedVersion::NoStream, old.clone())
            .await
            .unwrap();
        let written = all(&store).await;
        store.close().await;
        // The file as schema version 2 left it: no append boundaries, no checkpoint filters,
        // no configuration graph.
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "ALTER TABLE events DROP COLUMN append_len;
                 ALTER TABLE checkpoints DROP COLUMN \"filter\";
                 DROP TABLE ci_rows;
                 DROP TABLE ci_edges;
                 PRAGMA user_version = 2;",
            )
            .unwrap();
            assert!(!has_column(&conn, "events", "append_len"));
        }

        let store = SqliteEventStore::open(&path).await.unwrap();
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let version: u32 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(
                version, 4,
                "migrated to the latest (4: the configuration graph)"
            );
            assert!(has_column(&conn, "events", "append_len"));
            assert!(has_column(&conn, "checkpoints", "filter"));
            let unknown: i64 = conn
                .query_row(
                    "SELECT count(*) FROM events WHERE append_len IS NULL",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(unknown, 3, "the old events' boundaries are unknown");
        }
        assert_eq!(
            all(&store).await,
            written,
            "the events read back identically"
        );

        // Old events: the lenient rule (a part of their append is answered as a retry).
        let part = store
            .append(&s, ExpectedVersion::NoStream, old[..2].to_vec())
            .await
            .expect("an old append's boundaries are unknown: lenient");
        assert_eq!(part.version, Version::new(2));
        let whole = store
            .append(&s, ExpectedVersion::NoStream, old.clone())
            .await
            .unwrap();
        assert_eq!(whole, original);

        // New events: the strict rule.
        let new: Vec<_> = (0..3).map(|i| event("new", json!({ "i": i }))).collect();
        let appended = store
            .append(&s, ExpectedVersion::Exact(Version::new(3)), new.clone())
            .await
            .unwrap();
        let refused = store
            .append(&s, ExpectedVersion::Any, new[..2].to_vec())
            .await;
        assert!(
            matches!(refused, Err(AppendError::EventIdReused { .. })),
            "a part of a new append is refused: {refused:?}"
        );
        let again = store
            .append(&s, ExpectedVersion::Exact(Version::new(3)), new)
            .await
            .unwrap();
        assert_eq!(again, appended);
        assert_eq!(all(&store).await.len(), 6, "retries wrote nothing");
        store.close().await;
    });
}
