//! Events to rows and rows back into [`RecordedEvent`]s, from the stored values (the hash is
//! never recomputed).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;
use smsys_core::{
    Actor, AppendError, AppendResult, AppendSpan, CausationId, CorrelationId, EventData, EventHash,
    EventId, EventType, ExpectedVersion, Metadata, Position, RecordedEvent, StoreError, StreamId,
    TenantId, Version, resolve_append_retry,
};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Json};
use uuid::Uuid;

use super::error::corrupt;

/// Columns every event read selects, in the order [`Decoder::decode`] reads them.
pub(crate) const EVENT_COLUMNS: &str = "stream_id, version, tx_id, seq, event_type, \
     schema_version, payload, recorded_at, previous_hash, hash, event_id, tenant, occurred_us, \
     actor, correlation_id, causation_id, extensions";

/// Where [`EVENT_COLUMNS`] puts each value.
mod col {
    pub(super) const STREAM: usize = 0;
    pub(super) const VERSION: usize = 1;
    pub(super) const TX_ID: usize = 2;
    pub(super) const SEQ: usize = 3;
    pub(super) const EVENT_TYPE: usize = 4;
    pub(super) const SCHEMA_VERSION: usize = 5;
    pub(super) const PAYLOAD: usize = 6;
    pub(super) const RECORDED_AT: usize = 7;
    pub(super) const PREVIOUS_HASH: usize = 8;
    pub(super) const HASH: usize = 9;
    pub(super) const EVENT_ID: usize = 10;
    pub(super) const TENANT: usize = 11;
    pub(super) const OCCURRED_US: usize = 12;
    pub(super) const ACTOR: usize = 13;
    pub(super) const CORRELATION: usize = 14;
    pub(super) const CAUSATION: usize = 15;
    pub(super) const EXTENSIONS: usize = 16;
    /// The first column a query may add after [`super::EVENT_COLUMNS`].
    pub(super) const NEXT: usize = 17;
}

/// The transaction id column of a row of [`EVENT_COLUMNS`].
pub(crate) const TX_ID_COLUMN: usize = col::TX_ID;
/// The first column a query selects after [`EVENT_COLUMNS`].
pub(crate) const AFTER_EVENT_COLUMNS: usize = col::NEXT;

/// A `bigint` column that holds a count or an id, never negative.
pub(crate) fn unsigned(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("{what} {value} is negative")))
}

/// Column `index` of a row the store read. A value that does not decode (a wrong type, a
/// `NULL`, bad JSON) is stored data the store did not write: [`StoreError::Corrupt`], which
/// reading again does not cure.
pub(crate) fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(|e| {
        let name = row.columns().get(index).map_or("?", |c| c.name());
        corrupt(format!("column {name} does not decode: {e}"))
    })
}

/// A stored hash.
pub(crate) fn hash(bytes: &[u8], what: &str) -> Result<EventHash, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(EventHash::from_bytes)
        .map_err(|_| corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// Every row of `rows` (of [`EVENT_COLUMNS`]).
pub(crate) fn decode_all(rows: &[Row]) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut decoder = Decoder::default();
    rows.iter().map(|row| decoder.decode(row)).collect()
}

/// Stored events by id, each with its append boundary: what the retry rule looks at.
#[derive(Debug, Default)]
pub(crate) struct Recorded(HashMap<EventId, (RecordedEvent, AppendSpan)>);

impl Recorded {
    /// Rows of the `events_by_id` query: [`EVENT_COLUMNS`], then `append_len`.
    pub(crate) fn decode(rows: &[Row]) -> Result<Self, StoreError> {
        let mut decoder = Decoder::default();
        let mut events = HashMap::with_capacity(rows.len());
        for row in rows {
            let event = decoder.decode(row)?;
            let count: Option<i32> = column(row, AFTER_EVENT_COLUMNS)?;
            let count = count
                .map(|n| unsigned(i64::from(n), "append_len"))
                .transpose()?;
            events.insert(event.event_id(), (event, AppendSpan::from_count(count)));
        }
        Ok(Self(events))
    }

    /// The retry rule ([`resolve_append_retry`]) for an append of `events` to `stream`.
    pub(crate) fn resolve(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<Option<AppendResult>, AppendError> {
        let found: Vec<Option<&(RecordedEvent, AppendSpan)>> =
            events.iter().map(|e| self.0.get(&e.event_id())).collect();
        let first = match found.first() {
            Some(Some((_, span))) => *span,
            Some(None) | None => AppendSpan::Unknown,
        };
        let recorded: Vec<Option<&RecordedEvent>> =
            found.iter().map(|f| f.map(|(event, _)| event)).collect();
        resolve_append_retry(stream, expected, events, &recorded, first)
    }
}

/// The `append_len` of each of the `len` events of an append, as the batch insert takes it.
pub(crate) fn append_lens(len: usize) -> impl Iterator<Item = Option<i32>> {
    (0..len).map(move |i| {
        AppendSpan::of(i, len)
            .count()
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
    })
}

/// Decodes rows of [`EVENT_COLUMNS`]. It keeps the last stream id, event type and actor it
/// parsed: a page mostly repeats them, and a repeated one is copied instead of checked again.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    stream: Option<StreamId>,
    event_type: Option<EventType>,
    actor: Option<Actor>,
}

impl Decoder {
    /// A row of [`EVENT_COLUMNS`].
    pub(crate) fn decode(&mut self, row: &Row) -> Result<RecordedEvent, StoreError> {
        let stream: &str = column(row, col::STREAM)?;
        // Error messages are only built on failure: this runs for every event read.
        self.decode_fields(row, stream)
            .map_err(|what| corrupt(format!("an event of {stream:?}: {what}")))
    }

    fn decode_fields(&mut self, row: &Row, stream_id: &str) -> Result<RecordedEvent, String> {
        let stream = match &self.stream {
            Some(known) if known.as_str() == stream_id => known.clone(),
            Some(_) | None => {
                let parsed: StreamId = stream_id.parse().map_err(|e| format!("stream id: {e}"))?;
                self.stream = Some(parsed.clone());
                parsed
            }
        };
        let version = positive(field(row, col::VERSION, "version")?, "version")?;
        let tx_id = positive(field(row, col::TX_ID, "transaction id")?, "transaction id")?;
        let seq = positive(field(row, col::SEQ, "sequence")?, "sequence")?;
        let type_name: &str = field(row, col::EVENT_TYPE, "event type")?;
        let event_type = match &self.event_type {
            Some(known) if known.as_str() == type_name => known.clone(),
            Some(_) | None => {
                let parsed = EventType::new(type_name).map_err(|e| format!("event type: {e}"))?;
                self.event_type = Some(parsed.clone());
                parsed
            }
        };
        let schema_version: i64 = field(row, col::SCHEMA_VERSION, "schema version")?;
        let schema_version = u32::try_from(schema_version)
            .ok()
            .filter(|&v| v >= 1)
            .ok_or_else(|| format!("schema version {schema_version} is out of range"))?;
        let Json(payload): Json<Value> = field(row, col::PAYLOAD, "payload")?;
        let recorded_at: DateTime<Utc> = field(row, col::RECORDED_AT, "recorded at")?;
        let previous_hash = field::<Option<&[u8]>>(row, col::PREVIOUS_HASH, "previous hash")?
            .map(|h| link(h, "previous hash"))
            .transpose()?;
        let stored_hash = link(field(row, col::HASH, "hash")?, "hash")?;
        let metadata = self.metadata(row)?;
        let data = EventData::stored(event_type, schema_version, payload, metadata);
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
}

fn field<'a, T: FromSql<'a>>(row: &'a Row, index: usize, what: &str) -> Result<T, String> {
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

impl Decoder {
    /// The metadata from its columns: no JSON but the extensions, no date parsing.
    fn metadata(&mut self, row: &Row) -> Result<Metadata, String> {
        let event_id: Uuid = field(row, col::EVENT_ID, "event id")?;
        let event_id = EventId::from_uuid(event_id).map_err(|e| format!("event id: {e}"))?;
        let name: &str = field(row, col::ACTOR, "actor")?;
        let actor = match &self.actor {
            Some(known) if known.as_str() == name => known.clone(),
            Some(_) | None => {
                let parsed = Actor::new(name).map_err(|e| format!("actor: {e}"))?;
                self.actor = Some(parsed.clone());
                parsed
            }
        };
        metadata(row, event_id, actor)
    }
}

/// The rest of the metadata of `event_id` by `actor`.
fn metadata(row: &Row, event_id: EventId, actor: Actor) -> Result<Metadata, String> {
    let micros: i64 = field(row, col::OCCURRED_US, "occurred at")?;
    let occurred_at = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| format!("occurred at {micros} µs is out of range"))?;
    let mut metadata = Metadata::new(event_id, actor, occurred_at);
    if let Some(id) = field::<Option<Uuid>>(row, col::CORRELATION, "correlation id")? {
        let id = CorrelationId::from_uuid(id).map_err(|e| format!("correlation id: {e}"))?;
        metadata = metadata.with_correlation(id);
    }
    if let Some(id) = field::<Option<Uuid>>(row, col::CAUSATION, "causation id")? {
        let id = CausationId::from_uuid(id).map_err(|e| format!("causation id: {e}"))?;
        metadata = metadata.with_causation(id);
    }
    if let Some(tenant) = field::<Option<&str>>(row, col::TENANT, "tenant")? {
        let tenant = TenantId::new(tenant).map_err(|e| format!("tenant: {e}"))?;
        metadata = metadata.with_tenant(tenant);
    }
    let extensions: Option<Json<BTreeMap<String, Value>>> =
        field(row, col::EXTENSIONS, "extensions")?;
    if let Some(Json(extensions)) = extensions {
        metadata = with_extensions(&metadata, extensions)?;
    }
    Ok(metadata)
}

/// Adds the stored extensions. `Metadata::with_extension` checks each key, but metadata
/// deserialized from JSON is not checked, so a key it refuses may have been stored: such
/// metadata is rebuilt the way it was first decoded, through serde.
fn with_extensions(
    metadata: &Metadata,
    extensions: BTreeMap<String, Value>,
) -> Result<Metadata, String> {
    let mut built = metadata.clone();
    for (key, value) in &extensions {
        match built.with_extension(key.as_str(), value.clone()) {
            Ok(next) => built = next,
            Err(_) => return through_serde(metadata, extensions),
        }
    }
    Ok(built)
}

fn through_serde(
    metadata: &Metadata,
    extensions: BTreeMap<String, Value>,
) -> Result<Metadata, String> {
    let mut object = serde_json::to_value(metadata).map_err(|e| format!("metadata: {e}"))?;
    if let Value::Object(fields) = &mut object {
        fields.insert(
            "extensions".to_owned(),
            Value::Object(extensions.into_iter().collect()),
        );
    }
    serde_json::from_value(object).map_err(|e| format!("metadata: {e}"))
}

/// The metadata of events as the column arrays the write statements take.
#[derive(Debug, Default)]
pub(crate) struct MetadataColumns<'a> {
    pub(crate) occurred_us: Vec<i64>,
    pub(crate) actors: Vec<&'a str>,
    pub(crate) correlations: Vec<Option<Uuid>>,
    pub(crate) causations: Vec<Option<Uuid>>,
    pub(crate) extensions: Vec<Option<Json<&'a BTreeMap<String, Value>>>>,
    pub(crate) tenants: Vec<Option<&'a str>>,
}

impl<'a> MetadataColumns<'a> {
    pub(crate) fn new(metadata: &'a [Metadata]) -> Self {
        let mut columns = Self::with_capacity(metadata.len());
        for m in metadata {
            columns.push(m);
        }
        columns
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            occurred_us: Vec::with_capacity(n),
            actors: Vec::with_capacity(n),
            correlations: Vec::with_capacity(n),
            causations: Vec::with_capacity(n),
            extensions: Vec::with_capacity(n),
            tenants: Vec::with_capacity(n),
        }
    }

    pub(crate) fn push(&mut self, metadata: &'a Metadata) {
        self.occurred_us
            .push(metadata.occurred_at().timestamp_micros());
        self.actors.push(metadata.actor().as_str());
        self.correlations
            .push(metadata.correlation_id().map(|id| id.as_uuid()));
        self.causations
            .push(metadata.causation_id().map(|id| id.as_uuid()));
        let extensions = metadata.extensions();
        self.extensions
            .push((!extensions.is_empty()).then_some(Json(extensions)));
        self.tenants.push(metadata.tenant().map(TenantId::as_str));
    }
}
