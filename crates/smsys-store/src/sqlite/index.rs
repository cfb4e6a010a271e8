//! The record index in the store's file: rows written by the writer thread in the same
//! transaction as the index's checkpoint, queries run on the read pool.
//!
//! Each row is kept twice: its filter and order columns, which queries select and sort on,
//! and the whole row as JSON, which is what a query returns. The semantics are those of the
//! memory index (`crate::record_index`); the SQL below states the same filters and orders.

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use smsys_core::records::{RecordIndexStore, RecordOrder, RecordPage, RecordQuery, RecordRow};
use smsys_core::{BackendError, LogFilter, Position, StoreError, StreamId};

use super::SqliteEventStore;
use super::error::{BACKEND, corrupt, store};
use super::rows::{self, StoredPosition};
use super::writer::{Command, Write};
use crate::checkpoint::{CheckpointName, load_bound};
use crate::record_index::{Keys, SortKey, cursor_key, descending, micros, page};

/// Batches of more rows than this are encoded off the async runtime.
const ENCODE_INLINE: usize = 256;

/// A record index kept in a [`SqliteEventStore`]'s file, beside the log: a batch of rows and
/// the index's checkpoint are written in one transaction, so after a crash the rows hold
/// exactly the effect of the events up to the checkpoint (exactly once). Made by
/// [`SqliteEventStore::record_index`].
///
/// The checkpoint is the store's named checkpoint under the index's name (what
/// [`CheckpointStore::load_checkpoint`](smsys_core::CheckpointStore::load_checkpoint) returns
/// for it). Several indexes, e.g. two versions while one is rebuilt, live side by side under
/// their names. Queries agree exactly with [`MemoryRecordIndex`](crate::MemoryRecordIndex),
/// which documents them. The index holds a handle to its store, so the store's writer runs
/// while the index lives; cloning gives another handle to the same index.
///
/// ```
/// # use smsys_core::records::{RecordIndexStore, RecordQuery};
/// # use smsys_core::Position;
/// # use smsys_store::{CheckpointName, SqliteEventStore};
/// # #[tokio::main(flavor = "multi_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = SqliteEventStore::open(dir.path().join("smsys.db")).await?;
/// let index = store.record_index(CheckpointName::new("record_index.v1")?);
/// index.apply(Vec::new(), Position::from_sequence(7)).await?;
/// assert_eq!(index.checkpoint().await?, Some(Position::from_sequence(7)));
/// assert_eq!(index.count(&RecordQuery::open()).await?, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteRecordIndex {
    store: SqliteEventStore,
    name: CheckpointName,
}

impl std::fmt::Debug for SqliteRecordIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRecordIndex")
            .field("name", &self.name)
            .field("path", &self.store.path())
            .finish()
    }
}

impl SqliteRecordIndex {
    pub(super) fn new(store: SqliteEventStore, name: CheckpointName) -> Self {
        Self { store, name }
    }
}

impl SqliteEventStore {
    /// The checkpoint kept under `name` for a reader of `filter`, binding the name to the
    /// filter on first use (see
    /// [`CheckpointStore::load_checkpoint_for`](smsys_core::CheckpointStore::load_checkpoint_for)).
    pub(crate) async fn load_checkpoint_for(
        &self,
        name: &CheckpointName,
        filter: &LogFilter,
    ) -> Result<Option<Position>, StoreError> {
        load_bound(
            name,
            filter,
            || self.bound_checkpoint(name),
            |filter| async move {
                let write = Write::BindCheckpoint {
                    name: name.clone(),
                    filter,
                };
                self.request(|reply| Command::Write { write, reply })
                    .await?
            },
        )
        .await
    }

    /// The checkpoint kept under `name` and the filter it is bound to.
    async fn bound_checkpoint(
        &self,
        name: &CheckpointName,
    ) -> Result<(Option<Position>, Option<String>), StoreError> {
        let key = name.clone();
        let kept = self
            .inner
            .readers
            .run(move |conn| rows::load_bound_checkpoint(conn, &key))
            .await?;
        Ok(kept.map_or((None, None), |(position, filter)| (Some(position), filter)))
    }
}

#[async_trait]
impl RecordIndexStore for SqliteRecordIndex {
    fn name(&self) -> &str {
        self.name.as_str()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, StoreError> {
        let name = self.name.clone();
        self.store
            .inner
            .readers
            .run(move |conn| rows::load_checkpoint(conn, &name))
            .await
    }

    async fn checkpoint_for(&self, filter: &LogFilter) -> Result<Option<Position>, StoreError> {
        self.store.load_checkpoint_for(&self.name, filter).await
    }

    async fn row(&self, stream: &StreamId) -> Result<Option<RecordRow>, StoreError> {
        let name = self.name.clone();
        let stream = stream.clone();
        self.store
            .inner
            .readers
            .run(move |conn| read_row(conn, &name, &stream))
            .await
    }

    async fn rows(&self, streams: &[StreamId]) -> Result<Vec<Option<RecordRow>>, StoreError> {
        let name = self.name.clone();
        let streams = streams.to_vec();
        self.store
            .inner
            .readers
            .run(move |conn| {
                streams
                    .iter()
                    .map(|stream| read_row(conn, &name, stream))
                    .collect()
            })
            .await
    }

    async fn apply(&self, rows: Vec<RecordRow>, checkpoint: Position) -> Result<(), StoreError> {
        let checkpoint = StoredPosition::new(checkpoint, "apply record index rows")?;
        let rows = if rows.len() > ENCODE_INLINE {
            tokio::task::spawn_blocking(move || encode_all(rows))
                .await
                .map_err(|e| {
                    StoreError::Backend(BackendError::new(BACKEND, "encode rows", false, e))
                })??
        } else {
            encode_all(rows)?
        };
        let index = self.name.clone();
        self.store
            .request(|reply| Command::Write {
                write: Write::IndexRows {
                    index,
                    rows,
                    checkpoint,
                },
                reply,
            })
            .await?
    }

    async fn query(&self, query: &RecordQuery) -> Result<RecordPage, StoreError> {
        let name = self.name.clone();
        let query = query.clone();
        self.store
            .inner
            .readers
            .run(move |conn| select_page(conn, &name, &query))
            .await
    }

    async fn count(&self, query: &RecordQuery) -> Result<u64, StoreError> {
        let name = self.name.clone();
        let query = query.clone();
        self.store
            .inner
            .readers
            .run(move |conn| count(conn, &name, &query))
            .await
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let index = self.name.clone();
        self.store
            .request(|reply| Command::Write {
                write: Write::ClearIndex { index },
                reply,
            })
            .await?
    }
}

/// A row ready for the writer: its columns and its JSON, encoded by the caller so that the
/// writer thread only writes.
pub(crate) struct IndexRow {
    stream: String,
    record_type: String,
    status: String,
    phase: &'static str,
    priority: i64,
    service: String,
    group: Option<String>,
    person: Option<String>,
    summary: String,
    logged_at: i64,
    due: i64,
    breached: bool,
    json: String,
    cis: Vec<String>,
}

impl IndexRow {
    fn encode(row: RecordRow) -> Result<Self, StoreError> {
        let json = serde_json::to_string(&row).map_err(|e| {
            StoreError::Backend(BackendError::new(
                BACKEND,
                "encode record index row",
                false,
                e,
            ))
        })?;
        let keys = Keys::of(&row);
        let breached = row.breached();
        Ok(Self {
            stream: row.stream.as_str().to_owned(),
            record_type: row.record_type.as_str().to_owned(),
            phase: row.phase.as_str(),
            priority: keys.priority,
            service: row.service.into(),
            group: row.group.map(String::from),
            person: row.person.map(String::from),
            logged_at: keys.logged,
            due: keys.due,
            breached,
            json,
            cis: row.affected_cis.into_iter().map(String::from).collect(),
            status: row.status,
            summary: row.summary,
        })
    }
}

fn encode_all(rows: Vec<RecordRow>) -> Result<Vec<IndexRow>, StoreError> {
    rows.into_iter().map(IndexRow::encode).collect()
}

/// Replaces the rows of their streams (in order: a later row of the same stream wins) and
/// saves the index's checkpoint. Runs inside the writer's transaction, under a savepoint.
pub(crate) fn write_rows(
    conn: &Connection,
    index: &CheckpointName,
    rows: &[IndexRow],
    checkpoint: StoredPosition,
) -> Result<(), StoreError> {
    let op = |e| store("apply record index rows", e);
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO record_index (index_name, stream, record_type, status, phase, priority,
                 service, grp, person, summary, logged_at, due, breached, row)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (index_name, stream) DO UPDATE SET record_type = excluded.record_type,
                 status = excluded.status, phase = excluded.phase,
                 priority = excluded.priority, service = excluded.service, grp = excluded.grp,
                 person = excluded.person, summary = excluded.summary,
                 logged_at = excluded.logged_at, due = excluded.due,
                 breached = excluded.breached, row = excluded.row",
        )
        .map_err(op)?;
    let mut drop_cis = conn
        .prepare_cached("DELETE FROM record_index_ci WHERE index_name = ?1 AND stream = ?2")
        .map_err(op)?;
    let mut add_ci = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO record_index_ci (index_name, stream, ci) VALUES (?1, ?2, ?3)",
        )
        .map_err(op)?;
    let name = index.as_str();
    for row in rows {
        upsert
            .execute(params![
                name,
                row.stream,
                row.record_type,
                row.status,
                row.phase,
                row.priority,
                row.service,
                row.group,
                row.person,
                row.summary,
                row.logged_at,
                row.due,
                row.breached,
                row.json,
            ])
            .map_err(op)?;
        drop_cis.execute(params![name, row.stream]).map_err(op)?;
        for ci in &row.cis {
            add_ci.execute(params![name, row.stream, ci]).map_err(op)?;
        }
    }
    rows::save_checkpoint(conn, index, checkpoint)
}

/// Removes every row and the checkpoint of one index.
pub(crate) fn clear(conn: &Connection, index: &CheckpointName) -> Result<(), StoreError> {
    let op = |e| store("clear record index", e);
    conn.prepare_cached("DELETE FROM record_index WHERE index_name = ?1")
        .and_then(|mut stmt| stmt.execute(params![index.as_str()]))
        .map_err(op)?;
    conn.prepare_cached("DELETE FROM record_index_ci WHERE index_name = ?1")
        .and_then(|mut stmt| stmt.execute(params![index.as_str()]))
        .map_err(op)?;
    rows::delete_checkpoint(conn, index)
}

fn decode(index: &CheckpointName, json: &str) -> Result<RecordRow, StoreError> {
    serde_json::from_str(json).map_err(|e| corrupt(format!("record index {index}: row: {e}")))
}

fn read_row(
    conn: &Connection,
    index: &CheckpointName,
    stream: &StreamId,
) -> Result<Option<RecordRow>, StoreError> {
    let json = conn
        .prepare_cached("SELECT row FROM record_index WHERE index_name = ?1 AND stream = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![index.as_str(), stream.as_str()], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        })
        .map_err(|e| store("read record index row", e))?;
    json.map(|json| decode(index, &json)).transpose()
}

/// A statement being built: its text and its positional parameters.
struct Sql {
    text: String,
    params: Vec<SqlValue>,
}

impl Sql {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn param(&mut self, value: impl Into<SqlValue>) {
        self.text.push('?');
        self.params.push(value.into());
    }

    /// `AND column IN (values)`, nothing when there are no values.
    fn any_of(&mut self, column: &str, values: impl IntoIterator<Item = SqlValue>) {
        let values: Vec<SqlValue> = values.into_iter().collect();
        match values.len() {
            0 => {}
            1 => {
                self.push(" AND ");
                self.push(column);
                self.push(" = ");
                self.params.extend(values);
                self.text.push('?');
            }
            n => {
                self.push(" AND ");
                self.push(column);
                self.push(" IN (?");
                self.push(&", ?".repeat(n - 1));
                self.push(")");
                self.params.extend(values);
            }
        }
    }
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

/// `FROM record_index WHERE` every filter of the query (see the memory index).
fn filtered(select: &str, index: &CheckpointName, query: &RecordQuery) -> Sql {
    let mut sql = Sql {
        text: String::with_capacity(256),
        params: Vec::new(),
    };
    sql.push(select);
    sql.push(" FROM record_index WHERE index_name = ");
    sql.param(text(index.as_str()));
    sql.any_of(
        "record_type",
        query.record_types.iter().map(|t| text(t.as_str())),
    );
    sql.any_of("status", query.statuses.iter().map(|s| text(s)));
    sql.any_of("phase", query.phases.iter().map(|p| text(p.as_str())));
    sql.any_of(
        "priority",
        query
            .priorities
            .iter()
            .map(|p| SqlValue::Integer(i64::from(p.get()))),
    );
    sql.any_of("grp", query.groups.iter().map(|g| text(g.as_str())));
    sql.any_of("person", query.persons.iter().map(|p| text(p.as_str())));
    sql.any_of("service", query.services.iter().map(|s| text(s.as_str())));
    if let Some(ci) = &query.ci {
        sql.push(" AND stream IN (SELECT stream FROM record_index_ci WHERE index_name = ");
        sql.param(text(index.as_str()));
        sql.push(" AND ci = ");
        sql.param(text(ci.as_str()));
        sql.push(")");
    }
    if let Some(breached) = query.breached {
        sql.push(" AND breached = ");
        sql.param(i64::from(breached));
    }
    if let Some(by) = query.due_by {
        sql.push(" AND due <= ");
        sql.param(micros(by));
    }
    if let Some(needle) = &query.text {
        // instr on ASCII-lowercased text is exactly the memory index's ASCII case-insensitive
        // substring, with no wildcards to escape (LIKE would need `%`, `_` and the escape
        // character escaped) and no truncation at a NUL character.
        sql.push(" AND instr(lower(summary), ");
        sql.param(needle.to_ascii_lowercase());
        sql.push(") > 0");
    }
    if let Some(from) = query.logged_from {
        sql.push(" AND logged_at >= ");
        sql.param(micros(from));
    }
    if let Some(until) = query.logged_until {
        sql.push(" AND logged_at < ");
        sql.param(micros(until));
    }
    sql
}

/// The sort columns of an order, as a row value, and its `ORDER BY`.
fn order_columns(order: RecordOrder) -> (&'static str, &'static str) {
    match order {
        RecordOrder::LoggedDesc => ("(logged_at, stream)", "logged_at DESC, stream DESC"),
        RecordOrder::LoggedAsc => ("(logged_at, stream)", "logged_at, stream"),
        RecordOrder::Priority => (
            "(priority, logged_at, stream)",
            "priority, logged_at, stream",
        ),
        RecordOrder::Due => ("(due, stream)", "due, stream"),
    }
}

fn select_page(
    conn: &Connection,
    index: &CheckpointName,
    query: &RecordQuery,
) -> Result<RecordPage, StoreError> {
    let after = cursor_key(query).map_err(|e| e.into_store_error(BACKEND))?;
    let mut sql = filtered("SELECT row", index, query);
    let (columns, order_by) = order_columns(query.order);
    if let Some((SortKey(first, second), cursor)) = after {
        sql.push(" AND ");
        sql.push(columns);
        sql.push(if descending(query.order) {
            " < ("
        } else {
            " > ("
        });
        sql.param(first);
        if query.order == RecordOrder::Priority {
            sql.push(", ");
            sql.param(second);
        }
        sql.push(", ");
        sql.param(text(cursor.stream.as_str()));
        sql.push(")");
    }
    sql.push(" ORDER BY ");
    sql.push(order_by);
    sql.push(" LIMIT ");
    // One row more than the page: whether it exists says whether a next page does.
    sql.param(i64::try_from(query.page_size() + 1).unwrap_or(i64::MAX));
    let op = |e| store("query record index", e);
    let mut stmt = conn.prepare_cached(&sql.text).map_err(op)?;
    let mut found = stmt.query(params_from_iter(sql.params)).map_err(op)?;
    let mut rows = Vec::with_capacity(query.page_size() + 1);
    while let Some(row) = found.next().map_err(op)? {
        let json = row.get_ref(0).map_err(op)?;
        let json = json
            .as_str()
            .map_err(|e| corrupt(format!("record index {index}: row: {e}")))?;
        rows.push(decode(index, json)?);
    }
    Ok(page(rows, query))
}

fn count(
    conn: &Connection,
    index: &CheckpointName,
    query: &RecordQuery,
) -> Result<u64, StoreError> {
    let sql = filtered("SELECT count(*)", index, query);
    let op = |e| store("count record index", e);
    let n: i64 = conn
        .prepare_cached(&sql.text)
        .and_then(|mut stmt| stmt.query_row(params_from_iter(sql.params), |r| r.get(0)))
        .map_err(op)?;
    u64::try_from(n).map_err(|_| corrupt(format!("record index {index}: count {n}")))
}
