//! The configuration graph suite on SQLite files: each database a fresh store file, reopened
//! by closing the store and opening its file again.

use smsys_store::testkit::ci_graph::CiGraphHarness;
use smsys_store::{CheckpointName, SqliteCiGraph, SqliteEventStore};
use tempfile::TempDir;

/// Fresh store files for the configuration graph suite.
pub(crate) struct SqliteCiGraphs;

/// A store and the directory of its file.
pub(crate) struct GraphDb {
    store: SqliteEventStore,
    dir: TempDir,
}

#[async_trait::async_trait]
impl CiGraphHarness for SqliteCiGraphs {
    type Db = GraphDb;
    type Graph = SqliteCiGraph;

    async fn create(&self) -> GraphDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteEventStore::open(dir.path().join("store.db"))
            .await
            .expect("a new store opens");
        GraphDb { store, dir }
    }

    fn graph(&self, db: &GraphDb, name: &CheckpointName) -> SqliteCiGraph {
        db.store.ci_graph(name.clone())
    }

    fn reopens(&self) -> bool {
        true
    }

    async fn reopen(&self, db: GraphDb) -> GraphDb {
        db.store.close().await;
        let store = SqliteEventStore::open(db.dir.path().join("store.db"))
            .await
            .expect("the store reopens");
        GraphDb { store, dir: db.dir }
    }

    async fn teardown(&self, db: GraphDb) {
        db.store.close().await;
    }
}

mod suite {
    smsys_store::ci_graph_suite!(super::SqliteCiGraphs);
}
