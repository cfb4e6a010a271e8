//! Rows back into [`RecordedEvent`]s, from the stored values (the hash is never recomputed).

use chrono::{DateTime, Utc};
use serde_json::Value;
use smsys_core::{
    EventData, EventHash, EventType, Metadata, Position, RecordedEvent, StoreError, StreamId,
    Version,
};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::error::{corrupt, store_error};

/// A `bigint` column that holds a count or an id, never negative.
pub(crate) fn unsigned(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("{what} {value} is negative")))
}

/// A stored hash.
pub(crate) fn hash(bytes: &[u8], what: &str) -> Result<EventHash, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(EventHash::from_bytes)
        .map_err(|_| corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// A row of [`super::queries::EVENT_COLUMNS`].
pub(crate) fn decode(row: &Row) -> Result<RecordedEvent, StoreError> {
    let stream: &str = row.try_get(0).map_err(|e| store_error("decode event", e))?;
    // Error messages are only built on failure: this runs for every event read.
    decode_fields(row, stream).map_err(|what| corrupt(format!("an event of {stream:?}: {what}")))
}

fn decode_fields(row: &Row, stream: &str) -> Result<RecordedEvent, String> {
    fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a Row,
        index: usize,
        what: &str,
    ) -> Result<T, String> {
        row.try_get(index).map_err(|e| format!("{what}: {e}"))
    }
    fn positive(value: i64, what: &str) -> Result<u64, String> {
        u64::try_from(value).map_err(|_| format!("{what} {value} is negative"))
    }
    fn link(bytes: &[u8], what: &str) -> Result<EventHash, String> {
        <[u8; 32]>::try_from(bytes)
            .map(EventHash::from_bytes)
            .map_err(|_| format!("{what} is {} bytes, not 32", bytes.len()))
    }
    let stream: StreamId = stream.parse().map_err(|e| format!("stream id: {e}"))?;
    let version = positive(column(row, 1, "version")?, "version")?;
    let tx_id = positive(column(row, 2, "transaction id")?, "transaction id")?;
    let seq = positive(column(row, 3, "sequence")?, "sequence")?;
    let event_type = EventType::new(column::<&str>(row, 4, "event type")?)
        .map_err(|e| format!("event type: {e}"))?;
    let schema_version: i64 = column(row, 5, "schema version")?;
    let schema_version = u32::try_from(schema_version)
        .map_err(|_| format!("schema version {schema_version} is out of range"))?;
    let payload: Value = column(row, 6, "payload")?;
    let Json(metadata): Json<Metadata> = column(row, 7, "metadata")?;
    let recorded_at: DateTime<Utc> = column(row, 8, "recorded at")?;
    let previous_hash = column::<Option<&[u8]>>(row, 9, "previous hash")?
        .map(|h| link(h, "previous hash"))
        .transpose()?;
    let stored_hash = link(column(row, 10, "hash")?, "hash")?;
    let data = EventData::new(event_type, schema_version, payload, metadata)
        .map_err(|e| format!("data: {e}"))?;
    Ok(RecordedEvent {
        stream,
        version: Version::new(version),
        position: Position::new(tx_id, seq),
        data,
        recorded_at,
        previous_hash,
        hash: stored_hash,
    })
}
