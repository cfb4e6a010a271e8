//! The record index in the store's schema: rows and checkpoint written by one statement.
//!
//! Each index (a name, e.g. `record_index.v1`) keeps one row per record in `record_index`, its
//! configuration items in `record_index_cis`, and its checkpoint in `checkpoints` under its
//! name. [`RecordIndexStore::apply`] replaces rows, configuration items and checkpoint in one
//! statement (data-modifying CTEs), hence one implicit transaction: the rows are held exactly
//! when the checkpoint says so, which is what makes a projection into it exactly once.
//!
//! Queries select on indexed columns that hold the values exactly as the shared semantics
//! (`crate::record_index`, the memory reference) compare them, and read back the row stored
//! as `json`. Each query is built with only the filters it uses and sent unprepared with typed
//! parameters: one round trip, planned for its values.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use smsys_core::records::{RecordIndexStore, RecordOrder, RecordPage, RecordQuery, RecordRow};
use smsys_core::{LogFilter, Position, StoreError, StreamId};
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql, Type};

use super::PgEventStore;
use super::checkpoint::to_i64;
use super::error::{BACKEND, corrupt};
use super::pool;
use super::rows::unsigned;
use crate::checkpoint::CheckpointName;
use crate::record_index::{CursorError, cursor_key, due_value, micros, page, priority_value};

/// A record index kept in a [`PgEventStore`]'s schema, beside the log it is built from.
///
/// Made by [`PgEventStore::record_index`]; several names (versions of the index) live side by
/// side, each with its own rows and checkpoint. A batch of rows and its checkpoint commit
/// together, so a projection writing into it has an exactly-once effect across crashes and
/// lost connections. Query semantics are those of
/// [`MemoryRecordIndex`](crate::MemoryRecordIndex), the reference, and a cursor made by one
/// store continues the same query on another.
///
/// Cloning gives another handle to the same index (same pool).
///
/// ```no_run
/// # async fn run(store: smsys_store::PgEventStore) -> Result<(), Box<dyn std::error::Error>> {
/// use smsys_core::records::{RecordIndexStore, RecordQuery};
/// use smsys_store::CheckpointName;
///
/// let index = store.record_index(CheckpointName::new("record_index.v1")?);
/// let mut query = RecordQuery::open();
/// loop {
///     let page = index.query(&query).await?;
///     // ... show page.rows
///     match page.next {
///         Some(next) => query.after = Some(next),
///         None => break,
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgRecordIndex {
    store: PgEventStore,
    name: CheckpointName,
    sql: Arc<Statements>,
}

impl std::fmt::Debug for PgRecordIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRecordIndex")
            .field("schema", self.store.schema())
            .field("name", &self.name)
            .finish()
    }
}

impl PgEventStore {
    /// The record index named `name` in this store's schema (its tables exist once the store
    /// is open; an index without rows is empty). Its checkpoint is kept in the checkpoints
    /// table under the same name: give other subscribers other names.
    pub fn record_index(&self, name: CheckpointName) -> PgRecordIndex {
        PgRecordIndex {
            store: self.clone(),
            name,
            sql: Arc::new(Statements::new(&self.schema().quoted())),
        }
    }
}

/// The fixed statements of the index, with the schema filled in.
#[derive(Debug)]
struct Statements {
    apply: String,
    row: String,
    rows_of: String,
    clear: String,
    /// The table of rows.
    rows: String,
    /// The table of configuration items.
    cis: String,
}

impl Statements {
    fn new(s: &str) -> Self {
        Self {
            apply: format!(
                "WITH incoming AS (
                     SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],
                                          $6::int2[], $7::text[], $8::text[], $9::text[],
                                          $10::bytea[], $11::bool[], $12::int8[], $13::int8[],
                                          $14::json[])
                         AS u(stream_id, record_type, status, phase, priority_rank, service,
                              group_id, person, summary_folded, breached, logged_us, due_us,
                              row_json)
                 ),
                 upserted AS (
                     INSERT INTO {s}.record_index (index_name, stream_id, record_type, status,
                         phase, priority_rank, service, group_id, person, summary_folded,
                         breached, logged_us, due_us, row_json)
                     SELECT $1, i.stream_id, i.record_type, i.status, i.phase, i.priority_rank,
                            i.service, i.group_id, i.person, i.summary_folded, i.breached,
                            i.logged_us, i.due_us, i.row_json
                     FROM incoming i
                     ON CONFLICT (index_name, stream_id) DO UPDATE SET
                         record_type = EXCLUDED.record_type, status = EXCLUDED.status,
                         phase = EXCLUDED.phase, priority_rank = EXCLUDED.priority_rank,
                         service = EXCLUDED.service, group_id = EXCLUDED.group_id,
                         person = EXCLUDED.person, summary_folded = EXCLUDED.summary_folded,
                         breached = EXCLUDED.breached, logged_us = EXCLUDED.logged_us,
                         due_us = EXCLUDED.due_us, row_json = EXCLUDED.row_json
                 ),
                 cis AS (
                     SELECT * FROM unnest($15::text[], $16::text[]) AS c(stream_id, ci)
                 ),
                 dropped_cis AS (
                     DELETE FROM {s}.record_index_cis x
                     WHERE x.index_name = $1 AND x.stream_id = ANY($2::text[])
                       AND NOT EXISTS (SELECT 1 FROM cis c
                                       WHERE c.stream_id = x.stream_id AND c.ci = x.ci)
                 ),
                 added_cis AS (
                     INSERT INTO {s}.record_index_cis (index_name, stream_id, ci)
                     SELECT $1, c.stream_id, c.ci FROM cis c
                     ON CONFLICT DO NOTHING
                 )
                 INSERT INTO {s}.checkpoints (name, tx_id, seq) VALUES ($1, $17, $18)
                 ON CONFLICT (name) DO UPDATE
                 SET tx_id = EXCLUDED.tx_id, seq = EXCLUDED.seq, updated_at = now()"
            ),
            row: format!(
                "SELECT row_json FROM {s}.record_index WHERE index_name = $1 AND stream_id = $2"
            ),
            rows_of: format!(
                "SELECT row_json, stream_id FROM {s}.record_index \
                 WHERE index_name = $1 AND stream_id = ANY($2)"
            ),
            clear: format!(
                "WITH cis AS (DELETE FROM {s}.record_index_cis WHERE index_name = $1),
                      rows AS (DELETE FROM {s}.record_index WHERE index_name = $1)
                 DELETE FROM {s}.checkpoints WHERE name = $1"
            ),
            rows: format!("{s}.record_index"),
            cis: format!("{s}.record_index_cis"),
        }
    }
}

/// A status as stored: PostgreSQL text cannot hold NUL, so NUL becomes `U+0001 '0'` and
/// `U+0001` becomes `U+0001 U+0001`. One to one, so equality is kept; every other text is
/// unchanged. (Statuses come from lifecycle definitions; the other filtered names are ids
/// that refuse control characters.)
pub(super) fn status_text(status: &str) -> Cow<'_, str> {
    if !status.contains(['\0', '\u{1}']) {
        return Cow::Borrowed(status);
    }
    let mut out = String::with_capacity(status.len() + 2);
    for c in status.chars() {
        match c {
            '\0' => out.push_str("\u{1}0"),
            '\u{1}' => out.push_str("\u{1}\u{1}"),
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// Text as the `text` filter compares it: UTF-8 bytes with ASCII letters lowercased.
fn folded(text: &str) -> Vec<u8> {
    text.to_ascii_lowercase().into_bytes()
}

/// The rows of a batch as column arrays, the configuration items as (stream, ci) pairs.
struct Columns<'a> {
    streams: Vec<&'a str>,
    record_types: Vec<&'a str>,
    statuses: Vec<Cow<'a, str>>,
    phases: Vec<&'static str>,
    priorities: Vec<i16>,
    services: Vec<&'a str>,
    groups: Vec<Option<&'a str>>,
    persons: Vec<Option<&'a str>>,
    summaries: Vec<Vec<u8>>,
    breached: Vec<bool>,
    logged: Vec<i64>,
    due: Vec<i64>,
    json: Vec<Json<&'a RecordRow>>,
    ci_streams: Vec<&'a str>,
    cis: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn new(rows: &'a [RecordRow]) -> Result<Self, StoreError> {
        let n = rows.len();
        let mut columns = Self {
            streams: Vec::with_capacity(n),
            record_types: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            phases: Vec::with_capacity(n),
            priorities: Vec::with_capacity(n),
            services: Vec::with_capacity(n),
            groups: Vec::with_capacity(n),
            persons: Vec::with_capacity(n),
            summaries: Vec::with_capacity(n),
            breached: Vec::with_capacity(n),
            logged: Vec::with_capacity(n),
            due: Vec::with_capacity(n),
            json: Vec::with_capacity(n),
            ci_streams: Vec::new(),
            cis: Vec::new(),
        };
        for row in rows {
            let stream = row.stream.as_str();
            columns.streams.push(stream);
            columns.record_types.push(row.record_type.as_str());
            columns.statuses.push(status_text(&row.status));
            columns.phases.push(row.phase.as_str());
            columns
                .priorities
                .push(i16::try_from(priority_value(row)).map_err(|_| {
                    corrupt(format!("the priority of {stream} has no rank in the index"))
                })?);
            columns.services.push(row.service.as_str());
            columns.groups.push(row.group.as_ref().map(|g| g.as_str()));
            columns
                .persons
                .push(row.person.as_ref().map(|p| p.as_str()));
            columns.summaries.push(folded(&row.summary));
            columns.breached.push(row.breached());
            columns.logged.push(micros(row.logged_at));
            columns.due.push(due_value(row));
            columns.json.push(Json(row));
            let cis: BTreeSet<&str> = row.affected_cis.iter().map(|c| c.as_str()).collect();
            for ci in cis {
                columns.ci_streams.push(stream);
                columns.cis.push(ci);
            }
        }
        Ok(columns)
    }
}

/// The last row given for each stream (a later row replaces an earlier one, as one after the
/// other would), in stream order, so concurrent writers lock rows in one order.
fn last_per_stream(rows: Vec<RecordRow>) -> Vec<RecordRow> {
    let mut by_stream = BTreeMap::new();
    for row in rows {
        by_stream.insert(row.stream.clone(), row);
    }
    by_stream.into_values().collect()
}

/// A statement built for one query, with its typed parameters.
struct Select {
    sql: String,
    params: Vec<(Box<dyn ToSql + Sync + Send>, Type)>,
}

impl Select {
    /// `SELECT {columns} FROM` the index's rows `WHERE` every filter of `query` holds.
    fn new(sql: &Statements, name: &CheckpointName, columns: &str, query: &RecordQuery) -> Self {
        let mut select = Self {
            sql: String::with_capacity(512),
            params: Vec::new(),
        };
        let index = select.bind(name.as_str().to_owned(), Type::TEXT);
        let _ = write!(
            select.sql,
            "SELECT {columns} FROM {} r WHERE r.index_name = {index}",
            sql.rows
        );
        fn texts<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
            values.map(str::to_owned).collect()
        }
        let (text, texts_type) = (Type::TEXT, Type::TEXT_ARRAY);
        let record_types = texts(query.record_types.iter().map(|t| t.as_str()));
        select.any(
            "r.record_type",
            record_types,
            text.clone(),
            texts_type.clone(),
        );
        let statuses = query.statuses.iter().map(|s| status_text(s).into_owned());
        select.any(
            "r.status",
            statuses.collect(),
            text.clone(),
            texts_type.clone(),
        );
        let phases = texts(query.phases.iter().map(|p| p.as_str()));
        select.any("r.phase", phases, text.clone(), texts_type.clone());
        let ranks: Vec<i16> = query
            .priorities
            .iter()
            .map(|p| i16::from(p.get()))
            .collect();
        select.any("r.priority_rank", ranks, Type::INT2, Type::INT2_ARRAY);
        let groups = texts(query.groups.iter().map(|g| g.as_str()));
        select.any("r.group_id", groups, text.clone(), texts_type.clone());
        let persons = texts(query.persons.iter().map(|p| p.as_str()));
        select.any("r.person", persons, text.clone(), texts_type.clone());
        let services = texts(query.services.iter().map(|s| s.as_str()));
        select.any("r.service", services, text, texts_type);
        if let Some(ci) = &query.ci {
            let p = select.bind(ci.as_str().to_owned(), Type::TEXT);
            select.and(format_args!(
                "EXISTS (SELECT 1 FROM {} x WHERE x.index_name = r.index_name \
                 AND x.stream_id = r.stream_id AND x.ci = {p})",
                sql.cis
            ));
        }
        if let Some(breached) = query.breached {
            let p = select.bind(breached, Type::BOOL);
            select.and(format_args!("r.breached = {p}"));
        }
        if let Some(by) = query.due_by {
            let p = select.bind(micros(by), Type::INT8);
            select.and(format_args!("r.due_us <= {p}"));
        }
        if let Some(text) = &query.text {
            let p = select.bind(folded(text), Type::BYTEA);
            select.and(format_args!("position({p} IN r.summary_folded) > 0"));
        }
        if let Some(from) = query.logged_from {
            let p = select.bind(micros(from), Type::INT8);
            select.and(format_args!("r.logged_us >= {p}"));
        }
        if let Some(until) = query.logged_until {
            let p = select.bind(micros(until), Type::INT8);
            select.and(format_args!("r.logged_us < {p}"));
        }
        select
    }

    /// Adds a parameter; returns its placeholder.
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static, ty: Type) -> String {
        self.params.push((Box::new(value), ty));
        format!("${}", self.params.len())
    }

    fn and(&mut self, condition: std::fmt::Arguments<'_>) {
        let _ = write!(self.sql, " AND {condition}");
    }

    /// `column` is one of `values` (no condition when there are none). One value is compared
    /// with `=`: the planner then keeps an index's order after that column (with `= ANY` it
    /// would not, before PostgreSQL 17).
    fn any<T>(&mut self, column: &str, mut values: Vec<T>, ty: Type, array: Type)
    where
        T: ToSql + Sync + Send + 'static,
        Vec<T>: ToSql,
    {
        match values.len() {
            0 => {}
            1 => {
                if let Some(value) = values.pop() {
                    let p = self.bind(value, ty);
                    self.and(format_args!("{column} = {p}"));
                }
            }
            _ => {
                let p = self.bind(values, array);
                self.and(format_args!("{column} = ANY({p})"));
            }
        }
    }

    /// Continues strictly after the query's cursor, in its order, for one page and one row
    /// more (whether a next page exists).
    fn page(mut self, query: &RecordQuery) -> Result<Self, StoreError> {
        let refused = |e: CursorError| e.into_store_error(BACKEND);
        if let Some((key, cursor)) = cursor_key(query).map_err(refused)? {
            let stream = self.bind(cursor.stream.as_str().to_owned(), Type::TEXT);
            let first = self.bind(key.0, Type::INT8);
            match query.order {
                RecordOrder::LoggedDesc => {
                    self.and(format_args!(
                        "(r.logged_us, r.stream_id) < ({first}, {stream})"
                    ));
                }
                RecordOrder::LoggedAsc => {
                    self.and(format_args!(
                        "(r.logged_us, r.stream_id) > ({first}, {stream})"
                    ));
                }
                RecordOrder::Priority => {
                    // `first` is the rank (1 to 6, checked by the decoding), `second` the
                    // logged instant.
                    let second = self.bind(key.1, Type::INT8);
                    self.and(format_args!(
                        "(r.priority_rank, r.logged_us, r.stream_id) > ({first}, {second}, {stream})"
                    ));
                }
                RecordOrder::Due => {
                    self.and(format_args!(
                        "(r.due_us, r.stream_id) > ({first}, {stream})"
                    ));
                }
            }
        }
        let order = match query.order {
            RecordOrder::LoggedDesc => "r.logged_us DESC, r.stream_id DESC",
            RecordOrder::LoggedAsc => "r.logged_us, r.stream_id",
            RecordOrder::Priority => "r.priority_rank, r.logged_us, r.stream_id",
            RecordOrder::Due => "r.due_us, r.stream_id",
        };
        let limit = i64::try_from(query.page_size() + 1).unwrap_or(i64::MAX);
        let limit = self.bind(limit, Type::INT8);
        let _ = write!(self.sql, " ORDER BY {order} LIMIT {limit}");
        Ok(self)
    }

    async fn run(
        &self,
        store: &PgEventStore,
        operation: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        let params: Vec<(&(dyn ToSql + Sync), Type)> = self
            .params
            .iter()
            .map(|(value, ty)| (value.as_ref() as &(dyn ToSql + Sync), ty.clone()))
            .collect();
        pool::query_typed(&store.inner.pool, operation, &self.sql, &params).await
    }
}

/// A stored row, read back from its `json`.
fn decode_row(row: &Row, name: &CheckpointName) -> Result<RecordRow, StoreError> {
    row.try_get::<_, Json<RecordRow>>(0)
        .map(|Json(row)| row)
        .map_err(|e| corrupt(format!("a row of record index {name}: {e}")))
}

#[async_trait]
impl RecordIndexStore for PgRecordIndex {
    fn name(&self) -> &str {
        self.name.as_str()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, StoreError> {
        self.store.load_checkpoint(&self.name).await
    }

    async fn checkpoint_for(&self, filter: &LogFilter) -> Result<Option<Position>, StoreError> {
        self.store.load_checkpoint_for(&self.name, filter).await
    }

    async fn row(&self, stream: &StreamId) -> Result<Option<RecordRow>, StoreError> {
        let rows = pool::query(
            &self.store.inner.pool,
            "read record index row",
            &self.sql.row,
            &[&self.name.as_str(), &stream.as_str()],
        )
        .await?;
        rows.first()
            .map(|row| decode_row(row, &self.name))
            .transpose()
    }

    async fn rows(&self, streams: &[StreamId]) -> Result<Vec<Option<RecordRow>>, StoreError> {
        let names: Vec<&str> = streams.iter().map(StreamId::as_str).collect();
        let found = pool::query(
            &self.store.inner.pool,
            "read record index rows",
            &self.sql.rows_of,
            &[&self.name.as_str(), &names],
        )
        .await?;
        let mut by_stream = std::collections::HashMap::with_capacity(found.len());
        for row in &found {
            let stream: &str = row
                .try_get(1)
                .map_err(|e| corrupt(format!("a row of record index {}: {e}", self.name)))?;
            by_stream.insert(stream.to_owned(), row);
        }
        streams
            .iter()
            .map(|stream| {
                by_stream
                    .get(stream.as_str())
                    .map(|row| decode_row(row, &self.name))
                    .transpose()
            })
            .collect()
    }

    async fn apply(&self, rows: Vec<RecordRow>, checkpoint: Position) -> Result<(), StoreError> {
        let rows = last_per_stream(rows);
        let c = Columns::new(&rows)?;
        let tx_id = to_i64(checkpoint.commit(), "transaction id")?;
        let seq = to_i64(checkpoint.sequence(), "sequence")?;
        pool::query(
            &self.store.inner.pool,
            "apply record index",
            &self.sql.apply,
            &[
                &self.name.as_str(),
                &c.streams,
                &c.record_types,
                &c.statuses,
                &c.phases,
                &c.priorities,
                &c.services,
                &c.groups,
                &c.persons,
                &c.summaries,
                &c.breached,
                &c.logged,
                &c.due,
                &c.json,
                &c.ci_streams,
                &c.cis,
                &tx_id,
                &seq,
            ],
        )
        .await?;
        Ok(())
    }

    async fn query(&self, query: &RecordQuery) -> Result<RecordPage, StoreError> {
        let select = Select::new(&self.sql, &self.name, "r.row_json", query).page(query)?;
        let rows = select.run(&self.store, "query record index").await?;
        let rows = rows
            .iter()
            .map(|row| decode_row(row, &self.name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, query))
    }

    async fn count(&self, query: &RecordQuery) -> Result<u64, StoreError> {
        let select = Select::new(&self.sql, &self.name, "count(*)", query);
        let rows = select.run(&self.store, "count record index").await?;
        let count: i64 = rows
            .first()
            .ok_or_else(|| corrupt("the count query returned no row"))?
            .try_get(0)
            .map_err(|e| corrupt(format!("the count of record index {}: {e}", self.name)))?;
        unsigned(count, "record count")
    }

    async fn clear(&self) -> Result<(), StoreError> {
        pool::query(
            &self.store.inner.pool,
            "clear record index",
            &self.sql.clear,
            &[&self.name.as_str()],
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_equality_without_nul() {
        assert!(matches!(status_text("In progress"), Cow::Borrowed(_)));
        let odd = ["a\0b", "a\u{1}0b", "a\u{1}\u{1}b", "\0", "\u{1}", "\u{1}0"];
        let stored: Vec<String> = odd.iter().map(|s| status_text(s).into_owned()).collect();
        for s in &stored {
            assert!(!s.contains('\0'), "{s:?}");
        }
        let distinct: BTreeSet<&String> = stored.iter().collect();
        assert_eq!(distinct.len(), odd.len(), "one to one: {stored:?}");
    }

    #[test]
    fn text_is_folded_for_ascii_letters_only() {
        assert_eq!(
            folded("Printer ÄÖ \u{212A}"),
            "printer ÄÖ \u{212A}".as_bytes()
        );
    }
}
