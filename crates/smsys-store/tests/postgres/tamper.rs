//! Random edits of random stored values, made behind the store's back with plain SQL (the
//! PostgreSQL version of `tests/sqlite_tamper.rs`): [`PgEventStore::verify`] either names the
//! edited event (its stream, version or position), or the edit changed nothing any reader sees,
//! or it is one of the edits the architecture documents as undetected on PostgreSQL (an event
//! moved to another position after the latest seal: positions are transaction ids there, not
//! dense).
//!
//! Every column of the `events` and `streams` tables is a target, found in
//! `information_schema` (so a column a later migration adds is edited too), each edited as its
//! type allows: integers by +1 or -1, timestamps by one microsecond, `bytea` and `uuid` by one
//! flipped bit, `text` by one changed character, `json`/`jsonb` by one changed character of
//! the stored text (an edit that leaves invalid JSON is refused by the server: nothing changed)
//! or one changed value, `boolean` negated; a `NULL` gets a value, and some edits set `NULL`.
//! Unlike the SQLite test, text edits keep the text valid UTF-8 without NUL: PostgreSQL's
//! `text` cannot hold anything else (the server refuses it), so an invalid byte sequence is not
//! an edit anyone can make there. An edit a constraint refuses (a key, a `CHECK`, `NOT NULL`)
//! changed nothing.
//!
//! Each case builds its own store in a fresh schema (three streams of four events, sometimes
//! sealed with two more events after the seal), dropped after a passing case. The number of
//! cases is [`CASES`], or `PROPTEST_CASES` when set.

use std::sync::Arc;

use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use smsys_core::seal::Sealer;
use smsys_core::{
    Actor, CausationId, CorrelationId, EventData, EventId, EventStore, EventType, ExpectedVersion,
    LogFilter, Metadata, Position, RecordedEvent, StoreError, StreamId, TenantId, VerifyReport,
    Version,
};
use smsys_store::postgres::PgEventStore;

use super::{database_url, drop_schema, fresh_schema, open, raw};

/// Cases per run unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 32;

/// The streams every case writes.
const STREAMS: [&str; 3] = ["incident-a0", "incident-b1", "incident-c2"];

/// One edit: which table, column and row, and how.
#[derive(Debug, Clone)]
struct Edit {
    streams_table: bool,
    column: usize,
    row: usize,
    at: usize,
    bit: u8,
    down: bool,
    to_null: bool,
    seal: bool,
}

fn edits() -> impl Strategy<Value = Edit> {
    (
        proptest::bool::weighted(0.15),
        0usize..64,
        0usize..64,
        0usize..512,
        0u8..64,
        any::<bool>(),
        proptest::bool::weighted(0.1),
        any::<bool>(),
    )
        .prop_map(
            |(streams_table, column, row, at, bit, down, to_null, seal)| Edit {
                streams_table,
                column,
                row,
                at,
                bit,
                down,
                to_null,
                seal,
            },
        )
}

fn rich(n: u64) -> EventData {
    let mut metadata = Metadata::new(
        EventId::from_uuid(uuid::Uuid::now_v7()).unwrap(),
        Actor::new(format!("agent:{n}")).unwrap(),
        chrono::DateTime::from_timestamp(1_790_000_000 + n as i64, 123_456_000).unwrap(),
    )
    .with_correlation(CorrelationId::from_uuid(uuid::Uuid::now_v7()).unwrap())
    .with_tenant(TenantId::new("acme").unwrap())
    .with_extension("source.row", json!(format!("row {n}")))
    .unwrap();
    if n.is_multiple_of(2) {
        metadata = metadata.with_causation(CausationId::from_uuid(uuid::Uuid::now_v7()).unwrap());
    }
    EventData::new(
        EventType::new("incident.noted").unwrap(),
        1,
        json!({ "n": n, "text": format!("note number {n}"), "list": [n, 1.5, true, null] }),
        metadata,
    )
    .unwrap()
}

/// Three streams of four events each, interleaved; when `seal`, a seal of them and two more
/// events after it. Returns the latest seal's covered position.
async fn build(store: &PgEventStore, seal: bool) -> Option<Position> {
    let mut n = 0;
    let mut append = async |s: usize| {
        let stream: StreamId = STREAMS[s].parse().unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![rich(n)])
            .await
            .unwrap();
        n += 1;
    };
    for _ in 0..4 {
        for s in 0..STREAMS.len() {
            append(s).await;
        }
    }
    if !seal {
        return None;
    }
    let shared: Arc<dyn EventStore> = Arc::new(store.clone());
    let sealed = Sealer::new(shared).seal().await.unwrap().unwrap();
    append(0).await;
    append(2).await;
    Some(sealed.seal.covers)
}

/// Everything a reader can ask the store, in one value to compare.
#[derive(Debug, PartialEq)]
struct Seen {
    log: Vec<RecordedEvent>,
    incidents: Vec<RecordedEvent>,
    streams: Vec<(Vec<RecordedEvent>, Option<Version>)>,
    by_id: Vec<Option<RecordedEvent>>,
}

async fn collect(events: smsys_core::EventStream<'_>) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = events;
    let mut out = Vec::new();
    while let Some(e) = events.next().await {
        out.push(e?);
    }
    Ok(out)
}

async fn seen(store: &PgEventStore, ids: &[EventId]) -> Result<Seen, StoreError> {
    let log = collect(store.read_all(Position::START, LogFilter::all())).await?;
    let category = STREAMS[0].parse::<StreamId>().unwrap().category();
    let incidents =
        collect(store.read_all(Position::START, LogFilter::all().category(category))).await?;
    let mut streams = Vec::new();
    for name in STREAMS
        .iter()
        .copied()
        .chain([smsys_core::seal::seal_stream().as_str()])
    {
        let stream: StreamId = name.parse().unwrap();
        streams.push((
            collect(store.read_stream(&stream, Version::FIRST)).await?,
            store.stream_version(&stream).await?,
        ));
    }
    let mut by_id = Vec::new();
    for id in ids {
        by_id.push(store.find_event(*id).await?);
    }
    Ok(Seen {
        log,
        incidents,
        streams,
        by_id,
    })
}

/// The edited row, before and after the edit, as readers name it.
#[derive(Debug)]
struct Edited {
    column: String,
    data_type: String,
    /// The value as text, before and after.
    values: (Option<String>, Option<String>),
    /// The event's position before and after (events table).
    positions: Vec<Position>,
    /// The stream names the row had before and after.
    streams: Vec<String>,
}

impl std::fmt::Display for Edited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) of the row at {:?} in {:?}: {:?} became {:?}",
            self.column, self.data_type, self.positions, self.streams, self.values.0, self.values.1
        )
    }
}

fn position(tx_id: i64, seq: i64) -> Position {
    Position::new(tx_id as u64, seq as u64)
}

/// One changed character, still valid UTF-8 without NUL.
fn edit_text(text: &str, at: usize, bit: u8) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return "x".to_owned();
    }
    let i = at % chars.len();
    let c = chars[i];
    chars[i] = if c.is_ascii() {
        match (c as u8) ^ (1 << (bit % 7)) {
            0 => 'x',
            b => char::from(b),
        }
    } else if c == 'x' {
        'y'
    } else {
        'x'
    };
    chars.into_iter().collect()
}

/// One changed value inside a JSON document: the `at`-th scalar (in document order), or a
/// new key when there is none.
fn edit_json(value: &mut Value, at: usize, bit: u8, down: bool) {
    fn count(value: &Value) -> usize {
        match value {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(fields) => fields.values().map(count).sum(),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => 1,
        }
    }
    match count(value) {
        0 => match value {
            Value::Object(fields) => {
                fields.insert("x".to_owned(), Value::Null);
            }
            other @ (Value::Null
            | Value::Bool(_)
            | Value::Number(_)
            | Value::String(_)
            | Value::Array(_)) => *other = json!({ "x": null }),
        },
        n => {
            change_nth(value, &mut (at % n), bit, down);
        }
    }
}

/// Changes the `index`-th scalar of `value`; returns whether it did.
fn change_nth(value: &mut Value, index: &mut usize, bit: u8, down: bool) -> bool {
    match value {
        Value::Array(items) => items.iter_mut().any(|v| change_nth(v, index, bit, down)),
        Value::Object(fields) => fields.values_mut().any(|v| change_nth(v, index, bit, down)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            if *index > 0 {
                *index -= 1;
                return false;
            }
            *value = match value.take() {
                Value::Null => json!(0),
                Value::Bool(b) => Value::Bool(!b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => json!(if down { i - 1 } else { i + 1 }),
                    None => json!(0.25 - n.as_f64().unwrap_or(0.0)),
                },
                Value::String(s) => Value::String(edit_text(&s, usize::from(bit), bit)),
                other @ (Value::Array(_) | Value::Object(_)) => other,
            };
            true
        }
    }
}

/// Makes `edit` in the store's schema; `None` when nothing changed (a constraint refused it,
/// or the value stayed as it was).
async fn tamper(client: &tokio_postgres::Client, schema: &str, edit: &Edit) -> Option<Edited> {
    let table = if edit.streams_table {
        "streams"
    } else {
        "events"
    };
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let (column, data_type) = columns[edit.column % columns.len()].clone();
    let t = format!("\"{schema}\".{table}");
    let c = format!("\"{column}\"");
    let (key, returning) = if edit.streams_table {
        ("stream_id = $1", "stream_id, NULL::bigint, NULL::bigint")
    } else {
        ("ctid = $1::text::tid", "stream_id, tx_id, seq")
    };
    let returning = format!("{returning}, {c}::text");
    // The row: its key and what readers name it by before the edit.
    let rows = if edit.streams_table {
        client
            .query(
                &format!("SELECT stream_id, stream_id, NULL::bigint, NULL::bigint FROM {t} ORDER BY stream_id"),
                &[],
            )
            .await
    } else {
        client
            .query(
                &format!("SELECT ctid::text, stream_id, tx_id, seq FROM {t} ORDER BY tx_id, seq"),
                &[],
            )
            .await
    }
    .unwrap();
    let row = &rows[edit.row % rows.len()];
    let row_key: String = row.get(0);
    let mut streams = vec![row.get::<_, String>(1)];
    let mut positions = Vec::new();
    if let (Some(tx), Some(seq)) = (row.get::<_, Option<i64>>(2), row.get::<_, Option<i64>>(3)) {
        positions.push(position(tx, seq));
    }
    let old: Option<String> = client
        .query_one(
            &format!("SELECT {c}::text FROM {t} WHERE {key}"),
            &[&row_key],
        )
        .await
        .unwrap()
        .get(0);
    let update =
        |set: String| format!("UPDATE {t} SET {c} = {set} WHERE {key} RETURNING {returning}");
    let delta = if edit.down { "-" } else { "+" };
    let result = if edit.to_null {
        client.query(&update("NULL".to_owned()), &[&row_key]).await
    } else if old.is_none() {
        let value = match data_type.as_str() {
            "bigint" | "integer" | "smallint" => "1",
            "text" => "'x'",
            "uuid" => "gen_random_uuid()",
            "bytea" => "decode(repeat('00', 32), 'hex')",
            "json" => "'{}'::json",
            "jsonb" => "'{}'::jsonb",
            "boolean" => "true",
            "timestamp with time zone" => "now()",
            other => panic!("{table}.{column}: no edit for a NULL of type {other}"),
        };
        client.query(&update(value.to_owned()), &[&row_key]).await
    } else {
        let old = old.clone().unwrap_or_default();
        match data_type.as_str() {
            "bigint" | "integer" | "smallint" => {
                client
                    .query(&update(format!("{c} {delta} 1")), &[&row_key])
                    .await
            }
            "timestamp with time zone" => {
                client
                    .query(
                        &update(format!("{c} {delta} interval '1 microsecond'")),
                        &[&row_key],
                    )
                    .await
            }
            "boolean" => client.query(&update(format!("NOT {c}")), &[&row_key]).await,
            "text" => {
                let new = edit_text(&old, edit.at, edit.bit);
                client
                    .query(&update("$2".to_owned()), &[&row_key, &new])
                    .await
            }
            "bytea" => {
                let mut bytes: Vec<u8> = client
                    .query_one(&format!("SELECT {c} FROM {t} WHERE {key}"), &[&row_key])
                    .await
                    .unwrap()
                    .get(0);
                if bytes.is_empty() {
                    bytes.push(1);
                } else {
                    let i = edit.at % bytes.len();
                    bytes[i] ^= 1 << (edit.bit % 8);
                }
                client
                    .query(&update("$2".to_owned()), &[&row_key, &bytes])
                    .await
            }
            "uuid" => {
                let id: uuid::Uuid = old.parse().unwrap();
                let mut bytes = *id.as_bytes();
                bytes[edit.at % 16] ^= 1 << (edit.bit % 8);
                let new = uuid::Uuid::from_bytes(bytes);
                client
                    .query(&update("$2".to_owned()), &[&row_key, &new])
                    .await
            }
            "json" | "jsonb" => {
                let new = if edit.bit.is_multiple_of(2) {
                    edit_text(&old, edit.at, edit.bit / 2)
                } else {
                    let mut value: Value = serde_json::from_str(&old).unwrap();
                    edit_json(&mut value, edit.at, edit.bit, edit.down);
                    value.to_string()
                };
                client
                    .query(&update(format!("$2::text::{data_type}")), &[&row_key, &new])
                    .await
            }
            other => panic!("{table}.{column}: no edit for type {other}"),
        }
    };
    // A constraint (a key, a CHECK, NOT NULL, JSON syntax) may refuse the edit: nothing changed.
    let after = result.ok()?.into_iter().next()?;
    let now: Option<String> = after.get(3);
    if now == old {
        return None;
    }
    let values = (old, now);
    streams.push(after.get(0));
    if let (Some(tx), Some(seq)) = (
        after.get::<_, Option<i64>>(1),
        after.get::<_, Option<i64>>(2),
    ) {
        positions.push(position(tx, seq));
    }
    Some(Edited {
        column: format!("{table}.{column}"),
        data_type,
        values,
        positions,
        streams,
    })
}

/// Whether `report` names the edited row: a chain break at one of its positions or in one of
/// its streams, or else a seal that does not hold.
fn names(report: &VerifyReport, edited: &Edited) -> bool {
    let named = |b: &smsys_core::ChainBreak| {
        edited.positions.contains(&b.position)
            || edited.streams.iter().any(|s| s == b.stream.as_str())
    };
    match &report.first_break {
        Some(first) => named(first),
        None => !report.seal_failures.is_empty(),
    }
}

/// Whether `what` (a [`StoreError::Corrupt`] message) names the edited row.
fn names_in_text(what: &str, edited: &Edited) -> bool {
    edited
        .positions
        .iter()
        .any(|p| what.contains(&p.to_string()))
        || edited.streams.iter().any(|s| what.contains(s.as_str()))
}

/// The one edit verify may not see: an event moved to another position (its `tx_id` or
/// `seq`), both before and after the edit beyond the latest seal.
fn moved_after_seal(before: &Seen, now: &Seen, edited: &Edited, covers: Option<Position>) -> bool {
    let [from, to] = edited.positions[..] else {
        return false;
    };
    let unsealed = |p: Position| covers.is_none_or(|c| p > c);
    if from == to || !unsealed(from) || !unsealed(to) {
        return false;
    }
    let moved = |events: &[RecordedEvent]| -> Vec<RecordedEvent> {
        let mut events: Vec<RecordedEvent> = events
            .iter()
            .cloned()
            .map(|mut e| {
                if e.position == from {
                    e.position = to;
                }
                e
            })
            .collect();
        events.sort_by_key(|e| e.position);
        events
    };
    let expected = Seen {
        log: moved(&before.log),
        incidents: moved(&before.incidents),
        streams: before
            .streams
            .iter()
            .map(|(events, version)| (moved(events), *version))
            .collect(),
        by_id: before
            .by_id
            .iter()
            .map(|e| moved(e.as_slice()).into_iter().next())
            .collect(),
    };
    *now == expected
}

async fn case(url: &str, edit: &Edit) -> Result<(), TestCaseError> {
    let schema = fresh_schema();
    let store = open(url, &schema, 2).await;
    let covers = build(&store, edit.seal).await;
    let ids: Vec<EventId> = collect(store.read_all(Position::START, LogFilter::all()))
        .await
        .unwrap()
        .iter()
        .map(RecordedEvent::event_id)
        .collect();
    let before = seen(&store, &ids).await.unwrap();
    let client = raw(url).await;
    let Some(edited) = tamper(&client, &schema, edit).await else {
        // Refused by a constraint, or the same value: nothing was edited.
        drop(store);
        drop_schema(url, &schema).await;
        return Ok(());
    };
    match store.verify().await {
        Err(StoreError::Corrupt { what }) => prop_assert!(
            names_in_text(&what, &edited),
            "{edited}: the damage is named: {what}"
        ),
        Err(other) => prop_assert!(false, "{edited}: a typed Corrupt error, got {other}"),
        Ok(report) if report.is_intact() => {
            let now = seen(&store, &ids).await;
            let now = match now {
                Ok(now) => now,
                Err(error) => {
                    return Err(TestCaseError::fail(format!(
                        "{edited}: verify says intact, yet reading fails: {error}"
                    )));
                }
            };
            prop_assert!(
                now == before || moved_after_seal(&before, &now, &edited, covers),
                "{edited}: verify says intact, so nothing readable changed: {before:#?} became {now:#?}"
            );
        }
        Ok(report) => prop_assert!(
            names(&report, &edited),
            "{edited}: the edited event is named: {report:?}"
        ),
    }
    drop(store);
    drop_schema(url, &schema).await;
    Ok(())
}

#[test]
fn postgres_verify_names_every_edit_or_the_edit_changed_nothing() {
    let Some(url) = database_url() else { return };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&edits(), |edit| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(case(&url, &edit))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
