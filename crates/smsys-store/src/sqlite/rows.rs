//! Rows of the events, streams and snapshots tables: the queries and the mapping to and from
//! smsys types. Event rows are copied into a [`Page`] and decoded from it (see the `page`
//! module): hash included, never recomputed, so that an edit behind the store's back is found
//! by the verifier.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};
use smsys_core::{
    AppendSpan, EventHash, EventId, LogFilter, Position, RecordedEvent, Snapshot, StoreError,
    StreamId, TenantId, UndecodableRow, Version,
};

use super::error::{corrupt, store};
use super::page::{Page, StreamNames, Streams};
use crate::checkpoint::CheckpointName;

/// An event query: the columns of `page::COLUMNS` (the stream name being `$name`), then
/// `$rest` (joins, filter, order).
macro_rules! select_events {
    ($name:literal, $rest:literal) => {
        concat!(
            "SELECT e.position, ",
            $name,
            ", e.version, e.event_id, e.event_type, e.schema_version, e.payload, e.actor, \
             e.occurred_at, e.correlation_id, e.causation_id, e.tenant, e.extensions, \
             e.recorded_at, e.previous_hash, e.hash, e.stream_id FROM events e",
            $rest
        )
    };
}

/// Events with their stream's name, for reads across streams.
const SELECT_EVENTS: &str =
    select_events!("s.name", " JOIN streams s ON s.stream_id = e.stream_id");

/// A page of the whole log after position `?1`.
const LOG_PAGE: &str = select_events!(
    "s.name",
    " JOIN streams s ON s.stream_id = e.stream_id WHERE e.position > ?1 \
     ORDER BY e.position LIMIT ?2"
);

/// A page of one stream's events, named by `?1`, from version `?2` up: the stream's row is
/// looked up once, not joined to every event, and its name is not read back.
const STREAM_FORWARD: &str = select_events!(
    "NULL",
    " WHERE e.stream_id = (SELECT stream_id FROM streams WHERE name = ?1) \
     AND e.version >= ?2 ORDER BY e.version LIMIT ?3"
);

/// The same from version `?2` down.
const STREAM_BACKWARD: &str = select_events!(
    "NULL",
    " WHERE e.stream_id = (SELECT stream_id FROM streams WHERE name = ?1) \
     AND e.version <= ?2 ORDER BY e.version DESC LIMIT ?3"
);

/// The event carrying the id `?1`.
const EVENT_BY_ID: &str = select_events!(
    "s.name",
    " JOIN streams s ON s.stream_id = e.stream_id WHERE e.event_id = ?1"
);

/// The head of a stream as stored: its row id, version and last hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamHead {
    pub(crate) row_id: i64,
    pub(crate) version: Version,
    pub(crate) hash: EventHash,
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Runs `sql`, an event query (see `page::COLUMNS`), and copies its rows into `page`
/// (emptied first).
fn read_into(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    page: &mut Page,
) -> Result<(), StoreError> {
    let read = |e| store("read events", e);
    let mut stmt = conn.prepare_cached(sql).map_err(read)?;
    let mut rows = stmt.query(params).map_err(read)?;
    page.clear();
    while let Some(row) = rows.next().map_err(read)? {
        page.push(row).map_err(read)?;
    }
    Ok(())
}

/// Up to `limit` events of `stream` from `from`, ascending or descending, into `page`.
pub(crate) fn stream_page(
    conn: &Connection,
    stream: &StreamId,
    from: Version,
    backwards: bool,
    limit: usize,
    page: &mut Page,
) -> Result<(), StoreError> {
    let sql = if backwards {
        STREAM_BACKWARD
    } else {
        STREAM_FORWARD
    };
    read_into(
        conn,
        sql,
        params![stream.as_str(), to_i64(from.get()), to_i64(limit as u64)],
        page,
    )
}

/// Up to `limit` events of the log after `after` that pass `filter`, into `page`.
pub(crate) fn log_page(
    conn: &Connection,
    after: Position,
    filter: &LogFilter,
    limit: usize,
    page: &mut Page,
) -> Result<(), StoreError> {
    if after.commit() != 0 {
        // Not a position of this store: it lies beyond everything here.
        page.clear();
        return Ok(());
    }
    let after = to_i64(after.sequence());
    let count = to_i64(limit as u64);
    if filter.is_all() {
        return read_into(conn, LOG_PAGE, params![after, count], page);
    }
    let mut sql = format!("{SELECT_EVENTS} WHERE e.position > ?");
    let mut values = vec![SqlValue::Integer(after)];
    let mut any_of = |column: &str, items: Vec<String>| {
        if !items.is_empty() {
            let marks = vec!["?"; items.len()].join(", ");
            sql.push_str(&format!(" AND {column} IN ({marks})"));
            values.extend(items.into_iter().map(SqlValue::Text));
        }
    };
    any_of(
        "s.category",
        filter
            .categories()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
    );
    any_of(
        "e.event_type",
        filter
            .event_types()
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
    );
    sql.push_str(" ORDER BY e.position LIMIT ?");
    values.push(SqlValue::Integer(count));
    read_into(conn, &sql, rusqlite::params_from_iter(values), page)
}

/// The stored event carrying `id`, if any.
pub(crate) fn event_by_id(
    conn: &Connection,
    id: EventId,
) -> Result<Option<RecordedEvent>, StoreError> {
    let mut page = Page::default();
    read_into(
        conn,
        EVENT_BY_ID,
        params![id.as_uuid().as_bytes().as_slice()],
        &mut page,
    )?;
    page.next_event(Streams::Named(&mut StreamNames::new(1)))
        .transpose()
}

/// What the events table records about the append of the event carrying `id`
/// (`append_len`, see the schema's migration 3): unknown when there is no such event or it
/// was written before the store kept append boundaries.
pub(crate) fn append_span(conn: &Connection, id: EventId) -> Result<AppendSpan, StoreError> {
    let read = |e| store("read append boundary", e);
    let count: Option<Option<i64>> = conn
        .prepare_cached("SELECT append_len FROM events WHERE event_id = ?1")
        .map_err(read)?
        .query_row(params![id.as_uuid().as_bytes().as_slice()], |r| r.get(0))
        .optional()
        .map_err(read)?;
    let count = count
        .flatten()
        .map(|n| u64::try_from(n).map_err(|_| corrupt(format!("event {id}: append_len {n}"))))
        .transpose()?;
    Ok(AppendSpan::from_count(count))
}

/// The stored head of `stream`, if it exists.
pub(crate) fn stream_head(
    conn: &Connection,
    stream: &StreamId,
) -> Result<Option<StreamHead>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT s.stream_id, e.version, e.hash FROM streams s
             JOIN events e ON e.stream_id = s.stream_id
             WHERE s.name = ?1 ORDER BY e.version DESC LIMIT 1",
        )
        .map_err(|e| store("read stream head", e))?;
    let row = stmt
        .query_row(params![stream.as_str()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()
        .map_err(|e| store("read stream head", e))?;
    let Some((row_id, version, hash)) = row else {
        return Ok(None);
    };
    let bad = || corrupt(format!("head of stream {stream}"));
    Ok(Some(StreamHead {
        row_id,
        version: Version::new(u64::try_from(version).map_err(|_| bad())?),
        hash: EventHash::from_bytes(<[u8; 32]>::try_from(hash).map_err(|_| bad())?),
    }))
}

/// The last position of the log (0 when empty).
pub(crate) fn last_position(conn: &Connection) -> Result<u64, StoreError> {
    let last: i64 = conn
        .prepare_cached("SELECT coalesce(max(position), 0) FROM events")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
        .map_err(|e| store("read last position", e))?;
    u64::try_from(last).map_err(|_| corrupt(format!("negative position {last}")))
}

/// Writes one append's events (all of them: each event's `append_len` is taken from their
/// number), and the stream's row when it is new (`row_id: None`). Returns the stream's row id.
/// A stored event id makes the insert fail with a UNIQUE violation.
pub(crate) fn write_append(
    conn: &Connection,
    stream: &StreamId,
    row_id: Option<i64>,
    events: &[RecordedEvent],
) -> rusqlite::Result<i64> {
    let row_id: i64 = match row_id {
        Some(id) => id,
        None => conn
            .prepare_cached(
                "INSERT INTO streams (name, category) VALUES (?1, ?2) RETURNING stream_id",
            )?
            .query_row(params![stream.as_str(), stream.category_str()], |r| {
                r.get(0)
            })?,
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version,
            payload, actor, occurred_at, correlation_id, causation_id, tenant, extensions,
            recorded_at, previous_hash, hash, append_len)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?;
    let unencodable = |e: serde_json::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
    for (i, event) in events.iter().enumerate() {
        let span = AppendSpan::of(i, events.len()).count().map(to_i64);
        let meta = event.data.metadata();
        let extensions = if meta.extensions().is_empty() {
            None
        } else {
            Some(serde_json::to_string(meta.extensions()).map_err(unencodable)?)
        };
        insert.execute(params![
            to_i64(event.position.sequence()),
            row_id,
            to_i64(event.version.get()),
            event.event_id().as_uuid().as_bytes().as_slice(),
            event.event_type().as_str(),
            event.data.schema_version(),
            serde_json::to_string(event.data.payload()).map_err(unencodable)?,
            meta.actor().as_str(),
            meta.occurred_at().timestamp_micros(),
            meta.correlation_id()
                .map(|c| c.as_uuid().as_bytes().to_vec()),
            meta.causation_id().map(|c| c.as_uuid().as_bytes().to_vec()),
            meta.tenant().map(TenantId::as_str),
            extensions,
            event.recorded_at.timestamp_micros(),
            event
                .previous_hash
                .as_ref()
                .map(|h| h.as_bytes().as_slice()),
            event.hash.as_bytes().as_slice(),
            span,
        ])?;
    }
    Ok(row_id)
}

/// Checks what the hash chain does not cover, for [`super::SqliteEventStore::verify`]: every
/// stream row's category is the one its name gives (log filters and subscriptions select by
/// the stored category), and the positions are dense from 1 (the writer gives them so; a
/// deleted event leaves a gap, also where the chain cannot see it: a stream's last event).
/// Returns [`StoreError::Corrupt`] naming the first stream or position that does not hold.
pub(crate) fn check_log(conn: &Connection) -> Result<(), StoreError> {
    let read = |e| store("verify", e);
    let mut stmt = conn
        .prepare("SELECT stream_id, name, category FROM streams ORDER BY stream_id")
        .map_err(read)?;
    let mut rows = stmt.query([]).map_err(read)?;
    while let Some(row) = rows.next().map_err(read)? {
        let row_id: i64 = row.get(0).map_err(read)?;
        let text = |i: usize, column: &str| -> Result<String, StoreError> {
            let bad = |why: String| corrupt(format!("stream row {row_id}: {column} {why}"));
            match row.get_ref(i).map_err(read)? {
                rusqlite::types::ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                    .map(str::to_owned)
                    .map_err(|e| bad(format!("is not UTF-8 ({e})"))),
                other @ (rusqlite::types::ValueRef::Null
                | rusqlite::types::ValueRef::Integer(_)
                | rusqlite::types::ValueRef::Real(_)
                | rusqlite::types::ValueRef::Blob(_)) => {
                    Err(bad(format!("is {:?}, not a text", other.data_type())))
                }
            }
        };
        let name = text(1, "streams.name")?;
        let category = text(2, "streams.category")?;
        let stream: StreamId = name
            .parse()
            .map_err(|e| corrupt(format!("stream row {row_id}: streams.name {name:?}: {e}")))?;
        if stream.category_str() != category {
            return Err(corrupt(format!(
                "stream {stream}: streams.category is {category:?}, its name gives {:?}",
                stream.category_str()
            )));
        }
    }
    let (count, first, last): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), coalesce(min(position), 1), coalesce(max(position), 0) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(read)?;
    if first < 1 {
        return Err(corrupt(format!("events: position {first} is below 1")));
    }
    if count == last {
        // Unique positions from 1 to `last`, `last` of them: none is missing.
        return Ok(());
    }
    let missing: i64 = if first > 1 {
        1
    } else {
        conn.query_row(
            "SELECT e.position + 1 FROM events e
             WHERE NOT EXISTS (SELECT 1 FROM events f WHERE f.position = e.position + 1)
             ORDER BY e.position LIMIT 1",
            [],
            |r| r.get(0),
        )
        .map_err(read)?
    };
    Err(corrupt(format!(
        "events: position {missing} is missing (the log holds {count} events up to position {last})"
    )))
}

/// Every event of the log too damaged to be decoded, in log order, for
/// [`super::SqliteEventStore::verify`]: each with its position and the decoding error (which
/// names the column, and the stream and version when they are readable). Reads the log in
/// pages of `page_size` rows, going on after each such row.
pub(crate) fn undecodable_rows(
    conn: &Connection,
    page_size: usize,
) -> Result<Vec<UndecodableRow>, StoreError> {
    let mut found = Vec::new();
    let mut page = Page::default();
    let mut names = StreamNames::new(page_size);
    let mut after = 0_i64;
    loop {
        read_into(
            conn,
            LOG_PAGE,
            params![after, to_i64(page_size as u64)],
            &mut page,
        )?;
        let full = page.rows() == page_size;
        while let Some(position) = page.next_position() {
            after = position;
            let decoded = page.next_event(Streams::Named(&mut names));
            if let Some(Err(error)) = decoded {
                let position = u64::try_from(position)
                    .map_err(|_| corrupt(format!("events: position {position} is below 1")))?;
                let StoreError::Corrupt { what } = error else {
                    return Err(error);
                };
                found.push(UndecodableRow::new(Position::new(0, position), what));
            }
        }
        if !full {
            return Ok(found);
        }
    }
}

/// The current version of `stream`.
pub(crate) fn stream_version(
    conn: &Connection,
    stream: &StreamId,
) -> Result<Option<Version>, StoreError> {
    Ok(stream_head(conn, stream)?.map(|h| h.version))
}

/// Saves `snapshot` unless a newer one is kept.
pub(crate) fn save_snapshot(conn: &Connection, snapshot: &Snapshot) -> Result<(), StoreError> {
    let state = serde_json::to_string(&snapshot.state)
        .map_err(|e| corrupt(format!("snapshot state: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO snapshots (stream, version, schema_version, state) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (stream) DO UPDATE SET version = excluded.version,
             schema_version = excluded.schema_version, state = excluded.state
         WHERE excluded.version >= snapshots.version",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            snapshot.stream.as_str(),
            to_i64(snapshot.version.get()),
            snapshot.schema_version,
            state
        ])
    })
    .map_err(|e| store("save snapshot", e))?;
    Ok(())
}

/// The snapshot kept for `stream`.
pub(crate) fn load_snapshot(
    conn: &Connection,
    stream: &StreamId,
) -> Result<Option<Snapshot>, StoreError> {
    let row = conn
        .prepare_cached("SELECT version, schema_version, state FROM snapshots WHERE stream = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![stream.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()
        })
        .map_err(|e| store("load snapshot", e))?;
    let Some((version, schema_version, state)) = row else {
        return Ok(None);
    };
    let bad = |what: &str| corrupt(format!("snapshot of {stream}: {what}"));
    Ok(Some(Snapshot {
        stream: stream.clone(),
        version: Version::new(u64::try_from(version).map_err(|_| bad("negative version"))?),
        schema_version: u32::try_from(schema_version).map_err(|_| bad("schema version"))?,
        state: serde_json::from_str(&state).map_err(|e| bad(&e.to_string()))?,
    }))
}

/// A position as the checkpoints table keeps it: both parts fit SQLite's signed integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredPosition {
    commit: i64,
    sequence: i64,
}

impl StoredPosition {
    /// Checks that `position` fits the table (every position this store makes does).
    pub(crate) fn new(position: Position, operation: &'static str) -> Result<Self, StoreError> {
        match (
            i64::try_from(position.commit()),
            i64::try_from(position.sequence()),
        ) {
            (Ok(commit), Ok(sequence)) => Ok(Self { commit, sequence }),
            _ => Err(StoreError::Backend(smsys_core::BackendError::new(
                super::error::BACKEND,
                operation,
                false,
                format!("position {position} is beyond the largest a sqlite checkpoint keeps"),
            ))),
        }
    }
}

/// Saves `position` under `name`, replacing the one kept.
pub(crate) fn save_checkpoint(
    conn: &Connection,
    name: &CheckpointName,
    position: StoredPosition,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        r#"INSERT INTO checkpoints (name, "commit", sequence) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET "commit" = excluded."commit",
             sequence = excluded.sequence"#,
    )
    .and_then(|mut stmt| stmt.execute(params![name.as_str(), position.commit, position.sequence]))
    .map_err(|e| store("save checkpoint", e))?;
    Ok(())
}

/// Removes the checkpoint kept under `name`.
pub(crate) fn delete_checkpoint(
    conn: &Connection,
    name: &CheckpointName,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM checkpoints WHERE name = ?1")
        .and_then(|mut stmt| stmt.execute(params![name.as_str()]))
        .map_err(|e| store("delete checkpoint", e))?;
    Ok(())
}

/// The checkpoint kept under `name`.
pub(crate) fn load_checkpoint(
    conn: &Connection,
    name: &CheckpointName,
) -> Result<Option<Position>, StoreError> {
    Ok(load_bound_checkpoint(conn, name)?.map(|(position, _)| position))
}

/// The checkpoint kept under `name` with the filter it is bound to (`None`: not bound).
pub(crate) fn load_bound_checkpoint(
    conn: &Connection,
    name: &CheckpointName,
) -> Result<Option<(Position, Option<String>)>, StoreError> {
    let row = conn
        .prepare_cached(r#"SELECT "commit", sequence, filter FROM checkpoints WHERE name = ?1"#)
        .and_then(|mut stmt| {
            stmt.query_row(params![name.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .optional()
        })
        .map_err(|e| store("load checkpoint", e))?;
    row.map(
        |(commit, sequence, filter)| match (u64::try_from(commit), u64::try_from(sequence)) {
            (Ok(commit), Ok(sequence)) => Ok((Position::new(commit, sequence), filter)),
            _ => Err(corrupt(format!(
                "checkpoint {name}: negative position {commit}:{sequence}"
            ))),
        },
    )
    .transpose()
}

/// Binds the checkpoint `name` to `filter` unless it is bound already; a name without a
/// checkpoint gets one at the start.
pub(crate) fn bind_checkpoint(
    conn: &Connection,
    name: &CheckpointName,
    filter: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        r#"INSERT INTO checkpoints (name, "commit", sequence, filter) VALUES (?1, 0, 0, ?2)
         ON CONFLICT (name) DO UPDATE SET filter = excluded.filter
         WHERE checkpoints.filter IS NULL"#,
    )
    .and_then(|mut stmt| stmt.execute(params![name.as_str(), filter]))
    .map_err(|e| store("bind checkpoint", e))?;
    Ok(())
}
