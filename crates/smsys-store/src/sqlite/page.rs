//! A page of event rows as SQLite returned them, and their decoding into recorded events.
//!
//! A read copies each row's values out of SQLite into a [`Page`] (every text and blob into one
//! buffer) on the read connection's thread: a plain copy. The events are decoded from the page
//! one at a time where they are consumed. Decoding allocates every string and JSON value of an
//! event and the consumer frees them soon after; on one thread the allocator hands the same
//! blocks back at once, while decoding on the read thread made every block cross threads (a
//! third of the time of a catch-up went to the allocator). Pages are reused, so a long read
//! allocates its buffers once.
//!
//! Every stored value is checked as the type it becomes requires: a damaged file gives
//! [`StoreError::Corrupt`] naming the position, never an invalid value. The hash is taken as
//! stored, never recomputed, so that an edit behind the store's back is found by the verifier.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::Row;
use rusqlite::types::ValueRef;
use serde_json::Value;
use smsys_core::{
    Actor, CausationId, CorrelationId, EventData, EventHash, EventId, EventType, IdError, Metadata,
    Position, RecordedEvent, StoreError, StreamId, TenantId, Version,
};
use uuid::Uuid;

use super::error::corrupt;

/// Columns of an event query, in this order: position, stream name (or NULL when the query
/// is of one stream), version, event id, event type, schema version, payload, actor, occurred
/// at, correlation id, causation id, tenant, extensions, recorded at, previous hash, hash, the
/// stream's row id.
pub(crate) const COLUMNS: usize = 17;

const POSITION: usize = 0;
const STREAM_NAME: usize = 1;
const VERSION: usize = 2;
const STREAM_ROW: usize = 16;

/// One stored value, texts and blobs as a range of the page's buffer.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Null,
    Integer(i64),
    Real,
    Text { start: usize, len: usize },
    Blob { start: usize, len: usize },
}

/// Rows of an event query, copied out of SQLite, decoded one by one by [`Page::next_event`].
#[derive(Debug, Default)]
pub(crate) struct Page {
    bytes: Vec<u8>,
    cells: Vec<Cell>,
    /// The next row to decode.
    next: usize,
}

impl Page {
    /// Empties the page, keeping its buffers (a forward read reuses two pages, which grow to
    /// a page's size once).
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.cells.clear();
        self.next = 0;
    }

    /// Copies a row of an event query in (all of it or, on an error, nothing).
    pub(crate) fn push(&mut self, row: &Row<'_>) -> rusqlite::Result<()> {
        let (cells, bytes) = (self.cells.len(), self.bytes.len());
        let copied = self.copy(row);
        if copied.is_err() {
            self.cells.truncate(cells);
            self.bytes.truncate(bytes);
        }
        copied
    }

    fn copy(&mut self, row: &Row<'_>) -> rusqlite::Result<()> {
        for i in 0..COLUMNS {
            let cell = match row.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Integer(v),
                ValueRef::Real(_) => Cell::Real,
                ValueRef::Text(text) => {
                    let start = self.bytes.len();
                    self.bytes.extend_from_slice(text);
                    Cell::Text {
                        start,
                        len: text.len(),
                    }
                }
                ValueRef::Blob(blob) => {
                    let start = self.bytes.len();
                    self.bytes.extend_from_slice(blob);
                    Cell::Blob {
                        start,
                        len: blob.len(),
                    }
                }
            };
            self.cells.push(cell);
        }
        Ok(())
    }

    /// How many rows the page holds, decoded or not.
    pub(crate) fn rows(&self) -> usize {
        self.cells.len() / COLUMNS
    }

    /// The stored position and version of the last row, where the page after this one starts
    /// (`None` when the page is empty or they are not integers: the row's decoding reports it).
    pub(crate) fn last_place(&self) -> Option<(i64, i64)> {
        let last = self.rows().checked_sub(1)?;
        let row = self.row(last);
        match (row.cells[POSITION], row.cells[VERSION]) {
            (Cell::Integer(position), Cell::Integer(version)) => Some((position, version)),
            _ => None,
        }
    }

    fn row(&self, i: usize) -> Stored<'_> {
        Stored {
            bytes: &self.bytes,
            cells: &self.cells[i * COLUMNS..(i + 1) * COLUMNS],
        }
    }

    /// The stored position of the row [`Page::next_event`] decodes next (`None` after the
    /// last; the position is the table's integer key, never anything else).
    pub(crate) fn next_position(&self) -> Option<i64> {
        if self.next >= self.rows() {
            return None;
        }
        match self.row(self.next).cells[POSITION] {
            Cell::Integer(position) => Some(position),
            Cell::Null | Cell::Real | Cell::Text { .. } | Cell::Blob { .. } => None,
        }
    }

    /// Decodes the next row, `None` after the last.
    pub(crate) fn next_event(
        &mut self,
        streams: Streams<'_>,
    ) -> Option<Result<RecordedEvent, StoreError>> {
        if self.next >= self.rows() {
            return None;
        }
        let event = self.row(self.next).event(streams);
        self.next += 1;
        Some(event)
    }

    /// Decodes every row not decoded yet.
    pub(crate) fn into_events(
        mut self,
        mut streams: Streams<'_>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::with_capacity(self.rows() - self.next.min(self.rows()));
        while let Some(event) = self.next_event(streams.reborrow()) {
            events.push(event?);
        }
        Ok(events)
    }
}

/// Stream ids already parsed, so that a read parses each stream's name once however many of
/// its events it meets. A slot is found by the stream's row id but used only when the row's
/// name is the very text it was parsed from: a damaged name is refused wherever it appears,
/// and a row id that names another stream (a file changed between two pages) only costs a
/// parse.
#[derive(Debug)]
pub(crate) struct StreamNames {
    size: usize,
    slots: Vec<Option<(i64, StreamId)>>,
}

impl StreamNames {
    /// Names for a read of many pages: streams whose events are a few thousand rows apart in
    /// the log still hit.
    pub(crate) const FOR_READ: usize = 4_096;

    /// A cache of `size` names (at least 1), allocated when first used.
    pub(crate) fn new(size: usize) -> Self {
        Self {
            size: size.max(1),
            slots: Vec::new(),
        }
    }

    fn get(&mut self, row_id: i64, name: &str) -> Result<StreamId, IdError> {
        if self.slots.is_empty() {
            self.slots.resize_with(self.size, || None);
        }
        let slot = (row_id.unsigned_abs() % self.size as u64) as usize;
        if let Some(Some((id, stream))) = self.slots.get(slot)
            && *id == row_id
            && stream.as_str() == name
        {
            return Ok(stream.clone());
        }
        let stream: StreamId = name.parse()?;
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = Some((row_id, stream.clone()));
        }
        Ok(stream)
    }
}

/// Where a row's stream id comes from.
#[derive(Debug)]
pub(crate) enum Streams<'a> {
    /// The rows are all of this stream (the query selected them by its name).
    Known(&'a StreamId),
    /// The stream name column names each row's stream.
    Named(&'a mut StreamNames),
}

impl Streams<'_> {
    fn reborrow(&mut self) -> Streams<'_> {
        match self {
            Streams::Known(stream) => Streams::Known(stream),
            Streams::Named(names) => Streams::Named(names),
        }
    }
}

/// One row of a page.
struct Stored<'p> {
    bytes: &'p [u8],
    cells: &'p [Cell],
}

/// Why a stored value cannot be read as the type it stands for.
fn kind(cell: Cell) -> &'static str {
    match cell {
        Cell::Null => "null",
        Cell::Integer(_) => "an integer",
        Cell::Real => "a real",
        Cell::Text { .. } => "a text",
        Cell::Blob { .. } => "a blob",
    }
}

impl<'p> Stored<'p> {
    fn integer(&self, i: usize, what: &str) -> Result<i64, String> {
        match self.cells[i] {
            Cell::Integer(v) => Ok(v),
            other @ (Cell::Null | Cell::Real | Cell::Text { .. } | Cell::Blob { .. }) => {
                Err(format!("{what} is {}", kind(other)))
            }
        }
    }

    fn unsigned(&self, i: usize, what: &str) -> Result<u64, String> {
        let v = self.integer(i, what)?;
        u64::try_from(v).map_err(|_| format!("{what} {v} is negative"))
    }

    fn instant(&self, i: usize, what: &str) -> Result<DateTime<Utc>, String> {
        let v = self.integer(i, what)?;
        DateTime::from_timestamp_micros(v).ok_or_else(|| format!("{what} {v} is out of range"))
    }

    fn text_or_null(&self, i: usize, what: &str) -> Result<Option<&'p str>, String> {
        match self.cells[i] {
            Cell::Null => Ok(None),
            Cell::Text { start, len } => std::str::from_utf8(&self.bytes[start..start + len])
                .map(Some)
                .map_err(|e| format!("{what} is not UTF-8 ({e})")),
            other @ (Cell::Integer(_) | Cell::Real | Cell::Blob { .. }) => {
                Err(format!("{what} is {}", kind(other)))
            }
        }
    }

    fn text(&self, i: usize, what: &str) -> Result<&'p str, String> {
        self.text_or_null(i, what)?
            .ok_or_else(|| format!("{what} is null"))
    }

    fn blob_or_null(&self, i: usize, what: &str) -> Result<Option<&'p [u8]>, String> {
        match self.cells[i] {
            Cell::Null => Ok(None),
            Cell::Blob { start, len } => Ok(Some(&self.bytes[start..start + len])),
            other @ (Cell::Integer(_) | Cell::Real | Cell::Text { .. }) => {
                Err(format!("{what} is {}", kind(other)))
            }
        }
    }

    fn uuid(&self, i: usize, what: &str) -> Result<Option<Uuid>, String> {
        self.blob_or_null(i, what)?
            .map(|b| Uuid::from_slice(b).map_err(|e| format!("{what}: {e}")))
            .transpose()
    }

    fn hash(&self, i: usize, what: &str) -> Result<Option<EventHash>, String> {
        self.blob_or_null(i, what)?
            .map(|b| {
                <[u8; 32]>::try_from(b)
                    .map(EventHash::from_bytes)
                    .map_err(|_| format!("{what} of {} bytes", b.len()))
            })
            .transpose()
    }

    /// Decodes the row. A value that cannot be read is [`StoreError::Corrupt`] naming the
    /// event's position, its stream and version when those are readable, and the column
    /// (`events.<column>`, or `streams.name`) with what is wrong with it.
    fn event(&self, mut streams: Streams<'_>) -> Result<RecordedEvent, StoreError> {
        let position = self
            .unsigned(POSITION, "events.position")
            .map_err(|what| corrupt(format!("event row: {what}")))?;
        self.event_at(position, streams.reborrow()).map_err(|what| {
            let place = self.place(&streams);
            corrupt(format!("event at position {position}{place}: {what}"))
        })
    }

    /// The stream and version of a row that failed to decode, as far as they are readable:
    /// ` (stream s, version v)`, either part left out when unreadable.
    fn place(&self, streams: &Streams<'_>) -> String {
        let stream = match streams {
            Streams::Known(stream) => Some(stream.as_str().to_owned()),
            Streams::Named(_) => self
                .text(STREAM_NAME, "streams.name")
                .ok()
                .filter(|name| name.parse::<StreamId>().is_ok())
                .map(str::to_owned),
        };
        let version = self.unsigned(VERSION, "events.version").ok();
        match (stream, version) {
            (Some(stream), Some(version)) => format!(" (stream {stream}, version {version})"),
            (Some(stream), None) => format!(" (stream {stream})"),
            (None, Some(version)) => format!(" (version {version})"),
            (None, None) => String::new(),
        }
    }

    fn event_at(&self, position: u64, streams: Streams<'_>) -> Result<RecordedEvent, String> {
        let stream = match streams {
            Streams::Known(stream) => stream.clone(),
            Streams::Named(names) => {
                let row_id = self.integer(STREAM_ROW, "events.stream_id")?;
                names
                    .get(row_id, self.text(STREAM_NAME, "streams.name")?)
                    .map_err(|e| format!("streams.name: {e}"))?
            }
        };
        let version = Version::new(self.unsigned(VERSION, "events.version")?);
        let event_id = self
            .uuid(3, "events.event_id")?
            .ok_or_else(|| "events.event_id is null".to_owned())?;
        let event_id = EventId::from_uuid(event_id).map_err(|e| format!("events.event_id: {e}"))?;
        let event_type = EventType::new(self.text(4, "events.event_type")?)
            .map_err(|e| format!("events.event_type: {e}"))?;
        let schema_version = u32::try_from(self.unsigned(5, "events.schema_version")?)
            .ok()
            .filter(|&v| v >= 1)
            .ok_or_else(|| "events.schema_version out of range".to_owned())?;
        let payload: Value = serde_json::from_str(self.text(6, "events.payload")?)
            .map_err(|e| format!("events.payload: {e}"))?;
        let actor =
            Actor::new(self.text(7, "events.actor")?).map_err(|e| format!("events.actor: {e}"))?;
        let occurred_at = self.instant(8, "events.occurred_at")?;
        let mut metadata = Metadata::new(event_id, actor, occurred_at);
        if let Some(id) = self.uuid(9, "events.correlation_id")? {
            metadata = metadata.with_correlation(
                CorrelationId::from_uuid(id).map_err(|e| format!("events.correlation_id: {e}"))?,
            );
        }
        if let Some(id) = self.uuid(10, "events.causation_id")? {
            metadata = metadata.with_causation(
                CausationId::from_uuid(id).map_err(|e| format!("events.causation_id: {e}"))?,
            );
        }
        if let Some(tenant) = self.text_or_null(11, "events.tenant")? {
            metadata = metadata
                .with_tenant(TenantId::new(tenant).map_err(|e| format!("events.tenant: {e}"))?);
        }
        if let Some(text) = self.text_or_null(12, "events.extensions")? {
            let entries: BTreeMap<String, Value> =
                serde_json::from_str(text).map_err(|e| format!("events.extensions: {e}"))?;
            for (key, value) in entries {
                metadata = metadata
                    .with_extension(key, value)
                    .map_err(|e| format!("events.extensions: {e}"))?;
            }
        }
        let data = EventData::stored(event_type, schema_version, payload, metadata);
        let recorded_at = self.instant(13, "events.recorded_at")?;
        let previous_hash = self.hash(14, "events.previous_hash")?;
        let hash = self
            .hash(15, "events.hash")?
            .ok_or_else(|| "events.hash is null".to_owned())?;
        Ok(RecordedEvent {
            stream,
            version,
            position: Position::from_sequence(position),
            data,
            recorded_at,
            previous_hash,
            hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// A row of an event query with `changes` in place of the valid values, as SQL literals.
    fn row_sql(changes: &[(usize, &str)]) -> String {
        let mut values = vec![
            "5".to_owned(),
            "'test-a'".to_owned(),
            "2".to_owned(),
            format!("X'{}'", "01".repeat(16)),
            "'batch.t'".to_owned(),
            "1".to_owned(),
            r#"'{"n": 1}'"#.to_owned(),
            "'tester'".to_owned(),
            "0".to_owned(),
            "NULL".to_owned(),
            "NULL".to_owned(),
            "NULL".to_owned(),
            "NULL".to_owned(),
            "0".to_owned(),
            format!("X'{}'", "07".repeat(32)),
            format!("X'{}'", "09".repeat(32)),
            "1".to_owned(),
        ];
        for (i, value) in changes {
            values[*i] = (*value).to_owned();
        }
        format!("SELECT {}", values.join(", "))
    }

    fn decode(changes: &[(usize, &str)]) -> Result<RecordedEvent, StoreError> {
        let conn = Connection::open_in_memory().unwrap();
        let mut page = Page::default();
        let sql = row_sql(changes);
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            page.push(row).unwrap();
        }
        // The next page's place is read as stored, whenever both are integers.
        let integer = |column: usize| {
            changes
                .iter()
                .find(|(i, _)| *i == column)
                .is_none_or(|(_, v)| v.parse::<i64>().is_ok())
        };
        assert_eq!(
            page.last_place().is_some(),
            integer(POSITION) && integer(VERSION)
        );
        let mut names = StreamNames::new(8);
        let event = page.next_event(Streams::Named(&mut names)).unwrap();
        assert!(page.next_event(Streams::Named(&mut names)).is_none());
        event
    }

    fn refused(changes: &[(usize, &str)], says: &str) {
        match decode(changes) {
            Err(StoreError::Corrupt { what }) => assert!(what.contains(says), "{what}"),
            other => panic!("{changes:?}: expected a corrupt row, got {other:?}"),
        }
    }

    #[test]
    fn a_stored_row_decodes_as_it_was_written() {
        let event = decode(&[]).unwrap();
        assert_eq!(event.position, Position::from_sequence(5));
        assert_eq!(event.stream.as_str(), "test-a");
        assert_eq!(event.version, Version::new(2));
        assert_eq!(event.event_type().as_str(), "batch.t");
        assert_eq!(event.data.payload(), &serde_json::json!({"n": 1}));
        assert_eq!(event.previous_hash, Some(EventHash::from_bytes([7; 32])));
        assert_eq!(event.hash, EventHash::from_bytes([9; 32]));
    }

    #[test]
    fn damaged_values_are_corrupt_rows_naming_the_position() {
        refused(&[(0, "-1")], "event row: events.position -1 is negative");
        refused(&[(0, "'five'")], "event row: events.position is a text");
        refused(
            &[(1, "'nodash'")],
            "event at position 5 (version 2): streams.name",
        );
        refused(&[(1, "NULL")], "(version 2): streams.name is null");
        refused(
            &[(1, "CAST(X'746573742DFF' AS TEXT)")],
            "event at position 5 (version 2): streams.name is not UTF-8",
        );
        refused(&[(2, "2.5")], "events.version is a real");
        refused(&[(3, "X'01'")], "events.event_id");
        refused(&[(3, &format!("X'{}'", "00".repeat(16)))], "nil");
        refused(&[(4, "'bad type!'")], "events.event_type");
        refused(&[(5, "0")], "events.schema_version out of range");
        refused(&[(5, "4294967296")], "events.schema_version out of range");
        refused(&[(6, "'{\"n\": '")], "events.payload");
        refused(
            &[(6, "CAST(X'7B22FF227D' AS TEXT)")],
            "event at position 5 (stream test-a, version 2): events.payload is not UTF-8",
        );
        refused(&[(6, "X'7B7D'")], "events.payload is a blob");
        refused(&[(7, "''")], "events.actor");
        refused(&[(8, "9223372036854775807")], "events.occurred_at");
        refused(&[(11, "'a b'")], "events.tenant");
        refused(&[(12, "'[1]'")], "events.extensions");
        refused(&[(15, "X'0909'")], "events.hash of 2 bytes");
        refused(&[(15, "NULL")], "events.hash is null");
        refused(&[(16, "'one'")], "events.stream_id is a text");
        // Every text column holding bytes that are not UTF-8 is named.
        for (column, name) in [
            (4, "events.event_type"),
            (6, "events.payload"),
            (7, "events.actor"),
            (11, "events.tenant"),
            (12, "events.extensions"),
        ] {
            refused(
                &[(column, "CAST(X'61FF62' AS TEXT)")],
                &format!("event at position 5 (stream test-a, version 2): {name} is not UTF-8"),
            );
        }
    }

    #[test]
    fn a_stream_name_is_parsed_once_and_checked_every_time() {
        let mut names = StreamNames::new(4);
        let a = names.get(1, "test-a").unwrap();
        assert_eq!(names.get(1, "test-a").unwrap(), a);
        // Same row id, other text: the text decides.
        assert_eq!(names.get(1, "test-b").unwrap().as_str(), "test-b");
        assert!(names.get(1, "nodash").is_err());
        assert!(names.get(5, "no dash").is_err());
    }
}
