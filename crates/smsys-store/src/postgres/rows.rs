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
    let get = |e| store_error("decode event", e);
    let stream: &str = row.try_get(0).map_err(get)?;
    let stream: StreamId = stream
        .parse()
        .map_err(|e| corrupt(format!("stream id {stream:?}: {e}")))?;
    let at = |what: &str| format!("{what} of an event of {stream}");
    let version = unsigned(row.try_get(1).map_err(get)?, &at("version"))?;
    let tx_id = unsigned(row.try_get(2).map_err(get)?, &at("transaction id"))?;
    let seq = unsigned(row.try_get(3).map_err(get)?, &at("sequence"))?;
    let event_type: &str = row.try_get(4).map_err(get)?;
    let event_type =
        EventType::new(event_type).map_err(|e| corrupt(format!("{}: {e}", at("event type"))))?;
    let schema_version: i64 = row.try_get(5).map_err(get)?;
    let schema_version = u32::try_from(schema_version)
        .map_err(|_| corrupt(format!("{} {schema_version}", at("schema version"))))?;
    let payload: Value = row
        .try_get(6)
        .map_err(|e| corrupt(format!("{}: {e}", at("payload"))))?;
    let Json(metadata): Json<Metadata> = row
        .try_get(7)
        .map_err(|e| corrupt(format!("{}: {e}", at("metadata"))))?;
    let recorded_at: DateTime<Utc> = row.try_get(8).map_err(get)?;
    let previous_hash: Option<&[u8]> = row.try_get(9).map_err(get)?;
    let previous_hash = previous_hash
        .map(|h| hash(h, &at("previous hash")))
        .transpose()?;
    let stored_hash: &[u8] = row.try_get(10).map_err(get)?;
    let stored_hash = hash(stored_hash, &at("hash"))?;
    let data = EventData::new(event_type, schema_version, payload, metadata)
        .map_err(|e| corrupt(format!("{}: {e}", at("data"))))?;
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
