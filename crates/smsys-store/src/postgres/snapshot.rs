//! Snapshots in the store's `snapshots` table.

use async_trait::async_trait;
use serde_json::Value;
use smsys_core::{Snapshot, SnapshotStore, StoreError, StreamId, Version};
use tokio_postgres::types::Json;

use super::PgEventStore;
use super::error::corrupt;
use super::rows::{column, unsigned};

#[async_trait]
impl SnapshotStore for PgEventStore {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let rows = super::pool::query(
            &self.inner.pool,
            "load snapshot",
            &self.inner.queries.load_snapshot,
            &[&stream.as_str()],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let version: i64 = column(row, 0)?;
        let schema_version: i32 = column(row, 1)?;
        let state: Value = row
            .try_get(2)
            .map_err(|e| corrupt(format!("snapshot state of {stream}: {e}")))?;
        Ok(Some(Snapshot {
            stream: stream.clone(),
            version: Version::new(unsigned(version, "snapshot version")?),
            schema_version: u32::try_from(schema_version).map_err(|_| {
                corrupt(format!(
                    "snapshot schema version {schema_version} of {stream}"
                ))
            })?,
            state,
        }))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let version = i64::try_from(snapshot.version.get())
            .map_err(|_| corrupt(format!("snapshot version {}", snapshot.version)))?;
        let schema_version = i32::try_from(snapshot.schema_version).map_err(|_| {
            corrupt(format!(
                "snapshot schema version {}",
                snapshot.schema_version
            ))
        })?;
        super::pool::query(
            &self.inner.pool,
            "save snapshot",
            &self.inner.queries.save_snapshot,
            &[
                &snapshot.stream.as_str(),
                &version,
                &schema_version,
                &Json(&snapshot.state),
            ],
        )
        .await?;
        Ok(())
    }
}
