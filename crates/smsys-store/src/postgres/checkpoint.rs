//! Durable checkpoints of named subscribers, in the `checkpoints` table: also the
//! [`CheckpointStore`] of projections whose read model lives elsewhere, and where each record
//! index keeps its own (see [`PgRecordIndex`](super::PgRecordIndex)).

use async_trait::async_trait;
use smsys_core::{CheckpointStore, EventStore};
use smsys_core::{EventStream, LogFilter, Position, StoreError};

use super::PgEventStore;
use super::error::BACKEND;
use super::rows::{column, unsigned};
use crate::checkpoint::{CheckpointName, load_bound};

pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt {
        what: format!("{what} {value} does not fit the checkpoint table"),
    })
}

impl PgEventStore {
    /// The checkpoint saved under `name`, `None` when there is none.
    pub async fn load_checkpoint(
        &self,
        name: &CheckpointName,
    ) -> Result<Option<Position>, StoreError> {
        let rows = super::pool::query(
            &self.inner.pool,
            "load checkpoint",
            &self.inner.queries.load_checkpoint,
            &[&name.as_str()],
        )
        .await?;
        rows.first()
            .map(|row| {
                let tx_id: i64 = column(row, 0)?;
                let seq: i64 = column(row, 1)?;
                Ok(Position::new(
                    unsigned(tx_id, "checkpoint transaction id")?,
                    unsigned(seq, "checkpoint sequence")?,
                ))
            })
            .transpose()
    }

    /// Saves `position` as the checkpoint of `name`, replacing the one kept (also with an
    /// earlier one: that is how a projection is rebuilt from [`Position::START`]).
    pub async fn save_checkpoint(
        &self,
        name: &CheckpointName,
        position: Position,
    ) -> Result<(), StoreError> {
        let tx_id = to_i64(position.commit(), "transaction id")?;
        let seq = to_i64(position.sequence(), "sequence")?;
        super::pool::query(
            &self.inner.pool,
            "save checkpoint",
            &self.inner.queries.save_checkpoint,
            &[&name.as_str(), &tx_id, &seq],
        )
        .await?;
        Ok(())
    }

    /// The checkpoint saved under `name` for a reader of `filter`, binding the name to the
    /// filter on first use (see [`CheckpointStore::load_checkpoint_for`]). Two nodes binding
    /// at once agree: the first binding wins, the other node is compared with it.
    pub async fn load_checkpoint_for(
        &self,
        name: &CheckpointName,
        filter: &LogFilter,
    ) -> Result<Option<Position>, StoreError> {
        load_bound(
            name,
            filter,
            || self.bound_checkpoint(name),
            |filter| async move {
                let s = self.inner.schema.quoted();
                let bind = format!(
                    "INSERT INTO {s}.checkpoints (name, tx_id, seq, filter) VALUES ($1, 0, 0, $2)
                     ON CONFLICT (name) DO UPDATE SET filter = EXCLUDED.filter
                     WHERE {s}.checkpoints.filter IS NULL"
                );
                super::pool::query(
                    &self.inner.pool,
                    "bind checkpoint",
                    &bind,
                    &[&name.as_str(), &filter],
                )
                .await
                .map(drop)
            },
        )
        .await
    }

    /// The checkpoint saved under `name` and the filter it is bound to.
    async fn bound_checkpoint(
        &self,
        name: &CheckpointName,
    ) -> Result<(Option<Position>, Option<String>), StoreError> {
        let s = self.inner.schema.quoted();
        let load = format!("SELECT tx_id, seq, filter FROM {s}.checkpoints WHERE name = $1");
        let rows = super::pool::query(
            &self.inner.pool,
            "load checkpoint",
            &load,
            &[&name.as_str()],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok((None, None));
        };
        let tx_id: i64 = column(row, 0)?;
        let seq: i64 = column(row, 1)?;
        let position = Position::new(
            unsigned(tx_id, "checkpoint transaction id")?,
            unsigned(seq, "checkpoint sequence")?,
        );
        Ok((Some(position), column(row, 2)?))
    }

    /// A subscription of the events `filter` accepts, resuming right after the checkpoint
    /// saved under `name` (from the start when there is none). The name is bound to the
    /// filter (see [`PgEventStore::load_checkpoint_for`]): a checkpoint kept for another filter
    /// is refused with [`StoreError::CheckpointFilter`]. The subscriber saves its checkpoint
    /// itself, after handling each event or batch: delivery is at least once across restarts,
    /// exactly once within one subscription.
    pub async fn subscribe_from_checkpoint(
        &self,
        name: &CheckpointName,
        filter: LogFilter,
    ) -> Result<EventStream<'_>, StoreError> {
        let after = self
            .load_checkpoint_for(name, &filter)
            .await?
            .unwrap_or(Position::START);
        Ok(self.subscribe(after, filter))
    }
}

#[async_trait]
impl CheckpointStore for PgEventStore {
    /// The checkpoint saved under `name`; a name [`CheckpointName`] refuses is a
    /// non-transient [`StoreError::Backend`] whose source says why.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let name = CheckpointName::check(name, BACKEND, "load checkpoint")?;
        PgEventStore::load_checkpoint(self, &name).await
    }

    /// Saves `position` under `name` (names are checked as by
    /// [`CheckpointStore::load_checkpoint`]).
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        let name = CheckpointName::check(name, BACKEND, "save checkpoint")?;
        PgEventStore::save_checkpoint(self, &name, position).await
    }

    async fn load_checkpoint_for(
        &self,
        name: &str,
        filter: &LogFilter,
    ) -> Result<Option<Position>, StoreError> {
        let name = CheckpointName::check(name, BACKEND, "load checkpoint")?;
        PgEventStore::load_checkpoint_for(self, &name, filter).await
    }
}
