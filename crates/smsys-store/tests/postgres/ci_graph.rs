//! The configuration graph suite on PostgreSQL: each database a fresh schema, reopened by
//! connecting to it again, dropped after a passing case.

use smsys_store::postgres::{CheckpointName, PgCiGraph, PgEventStore};
use smsys_store::testkit::ci_graph::CiGraphHarness;

use super::{database_url, drop_schema, fresh_schema, open};

/// One fresh schema per database.
pub(crate) struct PgCiGraphs {
    url: String,
}

pub(crate) fn harness() -> Option<PgCiGraphs> {
    database_url().map(|url| PgCiGraphs { url })
}

#[async_trait::async_trait]
impl CiGraphHarness for PgCiGraphs {
    type Db = PgEventStore;
    type Graph = PgCiGraph;

    async fn create(&self) -> PgEventStore {
        open(&self.url, &fresh_schema(), 4).await
    }

    fn graph(&self, db: &PgEventStore, name: &CheckpointName) -> PgCiGraph {
        db.ci_graph(name.clone())
    }

    fn reopens(&self) -> bool {
        true
    }

    async fn reopen(&self, db: PgEventStore) -> PgEventStore {
        let schema = db.schema().to_string();
        drop(db);
        open(&self.url, &schema, 4).await
    }

    async fn teardown(&self, db: PgEventStore) {
        let schema = db.schema().to_string();
        drop(db);
        drop_schema(&self.url, &schema).await;
    }
}

mod suite {
    smsys_store::ci_graph_suite!(match super::harness() {
        Some(harness) => harness,
        None => return,
    });
}
