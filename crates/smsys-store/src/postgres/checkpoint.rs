//! Durable checkpoints of named subscribers.

use std::fmt;

use smsys_core::EventStore;
use smsys_core::{EventStream, LogFilter, Position, StoreError};

use super::PgEventStore;
use super::error::{PgError, store_error};
use super::rows::unsigned;

/// Longest checkpoint name accepted, in bytes.
pub const MAX_CHECKPOINT_NAME_LEN: usize = 256;

/// The name under which a subscriber keeps its checkpoint, e.g. `mail-notifier`: 1 to
/// [`MAX_CHECKPOINT_NAME_LEN`] bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointName(String);

impl CheckpointName {
    /// Validates a name.
    pub fn new(name: impl Into<String>) -> Result<Self, PgError> {
        let name = name.into();
        if name.is_empty()
            || name.len() > MAX_CHECKPOINT_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(PgError::InvalidCheckpointName {
                name,
                max: MAX_CHECKPOINT_NAME_LEN,
            });
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckpointName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
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
        let op = |e| store_error("load checkpoint", e);
        let rows = super::pool::query(
            &self.inner.pool,
            "load checkpoint",
            &self.inner.queries.load_checkpoint,
            &[&name.as_str()],
        )
        .await?;
        rows.first()
            .map(|row| {
                let tx_id: i64 = row.try_get(0).map_err(op)?;
                let seq: i64 = row.try_get(1).map_err(op)?;
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

    /// A subscription resuming right after the checkpoint saved under `name` (from the start
    /// when there is none). The subscriber saves its checkpoint itself, after handling each
    /// event or batch: delivery is at least once across restarts, exactly once within one
    /// subscription.
    pub async fn subscribe_from_checkpoint(
        &self,
        name: &CheckpointName,
        filter: LogFilter,
    ) -> Result<EventStream<'_>, StoreError> {
        let after = self.load_checkpoint(name).await?.unwrap_or(Position::START);
        Ok(self.subscribe(after, filter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_are_checked() {
        assert!(CheckpointName::new("mail-notifier/v2 (eu)").is_ok());
        assert!(CheckpointName::new("").is_err());
        assert!(CheckpointName::new("a\nb").is_err());
        assert!(CheckpointName::new("x".repeat(MAX_CHECKPOINT_NAME_LEN + 1)).is_err());
    }
}
