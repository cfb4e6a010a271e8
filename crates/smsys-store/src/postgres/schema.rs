//! The numbered migrations of the store's schema, applied on connect.
//!
//! Tables (all in the configured schema):
//! - `streams`: one row per stream with its version and the hash of its last event. Writers
//!   serialise per stream only (see `append`), never on a global row.
//! - `events`: the log. `tx_id` is the writing transaction's id (`pg_current_xact_id()`),
//!   `seq` a bigserial; the log order is `(tx_id, seq)`. `(stream_id, version)` and `event_id`
//!   are unique. The payload is `json` (kept as written, unlike `jsonb`, which would reorder
//!   keys and rewrite numbers). The metadata is stored in columns (migration 3), so reading an
//!   event parses no dates and no metadata JSON: `event_id`, `tenant`, `actor`,
//!   `occurred_us` (whole microseconds since the epoch), `correlation_id`, `causation_id`,
//!   and `extensions` (`json`, `NULL` when there are none). `append_len` (migration 4) keeps
//!   append boundaries for the retry rule (`smsys_core::AppendSpan`): the number of events of
//!   the append on its first event, 0 on the others, `NULL` on events written before
//!   migration 4 (unknown: their retries keep the lenient rule of `smsys_core::resolve_retry`).
//! - `snapshots`: the latest snapshot per stream.
//! - `checkpoints`: the durable position of named subscribers and record indexes, and the
//!   filter a checkpoint is kept for (`filter`, migration 4; `NULL` when none is kept).
//! - `record_index`: the rows of every record index (`index_name` tells versions apart), one
//!   per (index, stream): the full row as `json` (read back exactly) and a column for every
//!   filter and order, kept as the shared semantics compare them (`crate::record_index`):
//!   instants as whole microseconds since the epoch (`due_us` is `i64::MAX` without a due
//!   instant), `priority_rank` 1 to 5 or 6 without a priority, `summary_folded` the summary's
//!   UTF-8 with ASCII letters lowercased (`bytea`: a summary may hold NUL, which `text`
//!   cannot), `status` with NUL escaped (see `record_index`); text in byte order
//!   (`COLLATE "C"`: `stream_id` sorts as Rust compares strings, and comparisons are cheap).
//!   Indexes: one per order (`logged`, `priority`, `due`), one per filter column followed by
//!   the default order (`status`, `group`, `person`, `service`), and the queue of a group by
//!   due instant over open records only (`open_group_due`, a partial index a query on open
//!   phases can use).
//! - `record_index_cis`: (index, stream, configuration item), for the `ci` filter.
//! - `ci_rows` (migration 5): the rows of every configuration graph (`graph_name` tells
//!   versions apart), one per (graph, CI): the full row as `json`, its type and status
//!   (`NULL` until registered; status with NUL escaped as in `record_index`).
//! - `ci_edges` (migration 5): (graph, source, relationship, target), one per relationship of
//!   a row, indexed from both ends for walks.
//! - `schema_migrations`: which of the migrations below ran.

use smsys_core::{Metadata, TenantId};
use tokio_postgres::types::Json;
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use super::config::SchemaName;
use super::error::{PgError, corrupt, store_error};
use super::rows::{MetadataColumns, column};
use super::tenants;

/// Unique constraint on event ids: a violation means a retry or a reused id.
pub(crate) const EVENT_ID_KEY: &str = "events_event_id_key";
/// Unique constraint on (stream, version).
pub(crate) const STREAM_VERSION_KEY: &str = "events_stream_version_key";
/// Primary key of the streams table.
pub(crate) const STREAMS_KEY: &str = "streams_pkey";

/// One migration: its number and its steps, run in order in the migration's transaction.
struct Migration {
    version: i32,
    description: &'static str,
    steps: &'static [Step],
}

/// A step of a migration.
enum Step {
    /// SQL, with `{schema}` standing for the quoted schema.
    Sql(&'static str),
    /// Fills the metadata columns of migration 3 from the `metadata` JSON of every event,
    /// decoded by the same code that read it before.
    MetadataColumns,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "streams, events, snapshots, checkpoints",
        steps: &[Step::Sql(
            r#"
CREATE TABLE {schema}.streams (
    stream_id  text NOT NULL,
    version    bigint NOT NULL CHECK (version > 0),
    head_hash  bytea NOT NULL CHECK (octet_length(head_hash) = 32),
    CONSTRAINT streams_pkey PRIMARY KEY (stream_id)
);

CREATE TABLE {schema}.events (
    tx_id          bigint NOT NULL,
    seq            bigserial NOT NULL,
    stream_id      text NOT NULL,
    version        bigint NOT NULL CHECK (version > 0),
    category       text NOT NULL,
    event_id       uuid NOT NULL,
    event_type     text NOT NULL,
    schema_version bigint NOT NULL CHECK (schema_version > 0),
    tenant         text,
    payload        json NOT NULL,
    metadata       json NOT NULL,
    recorded_at    timestamptz NOT NULL,
    previous_hash  bytea CHECK (octet_length(previous_hash) = 32),
    hash           bytea NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT events_pkey PRIMARY KEY (tx_id, seq),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

CREATE TABLE {schema}.snapshots (
    stream_id      text PRIMARY KEY,
    version        bigint NOT NULL CHECK (version > 0),
    schema_version integer NOT NULL,
    state          json NOT NULL,
    saved_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.checkpoints (
    name       text PRIMARY KEY,
    tx_id      bigint NOT NULL,
    seq        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"#,
        )],
    },
    Migration {
        version: 2,
        description: "record index",
        steps: &[Step::Sql(
            r#"
CREATE TABLE {schema}.record_index (
    index_name     text COLLATE "C" NOT NULL,
    stream_id      text COLLATE "C" NOT NULL,
    record_type    text COLLATE "C" NOT NULL,
    status         text COLLATE "C" NOT NULL,
    phase          text COLLATE "C" NOT NULL,
    priority_rank  smallint NOT NULL CHECK (priority_rank BETWEEN 1 AND 6),
    service        text COLLATE "C" NOT NULL,
    group_id       text COLLATE "C",
    person         text COLLATE "C",
    summary_folded bytea NOT NULL,
    breached       boolean NOT NULL,
    logged_us      bigint NOT NULL,
    due_us         bigint NOT NULL,
    row_json       json NOT NULL,
    CONSTRAINT record_index_pkey PRIMARY KEY (index_name, stream_id)
);
CREATE INDEX record_index_logged ON {schema}.record_index (index_name, logged_us, stream_id);
CREATE INDEX record_index_priority
    ON {schema}.record_index (index_name, priority_rank, logged_us, stream_id);
CREATE INDEX record_index_due ON {schema}.record_index (index_name, due_us, stream_id);
CREATE INDEX record_index_status
    ON {schema}.record_index (index_name, status, logged_us, stream_id);
CREATE INDEX record_index_group
    ON {schema}.record_index (index_name, group_id, logged_us, stream_id);
CREATE INDEX record_index_person
    ON {schema}.record_index (index_name, person, logged_us, stream_id);
CREATE INDEX record_index_service
    ON {schema}.record_index (index_name, service, logged_us, stream_id);
CREATE INDEX record_index_open_group_due
    ON {schema}.record_index (index_name, group_id, due_us, stream_id)
    WHERE phase IN ('new', 'active', 'pending');

CREATE TABLE {schema}.record_index_cis (
    index_name text COLLATE "C" NOT NULL,
    stream_id  text COLLATE "C" NOT NULL,
    ci         text COLLATE "C" NOT NULL,
    CONSTRAINT record_index_cis_pkey PRIMARY KEY (index_name, stream_id, ci)
);
CREATE INDEX record_index_cis_ci ON {schema}.record_index_cis (index_name, ci, stream_id);
"#,
        )],
    },
    Migration {
        version: 3,
        description: "event metadata in columns",
        steps: &[
            Step::Sql(
                r#"
ALTER TABLE {schema}.events
    ADD COLUMN occurred_us    bigint,
    ADD COLUMN actor          text,
    ADD COLUMN correlation_id uuid,
    ADD COLUMN causation_id   uuid,
    ADD COLUMN extensions     json;
"#,
            ),
            Step::MetadataColumns,
            Step::Sql(
                r#"
ALTER TABLE {schema}.events
    ALTER COLUMN occurred_us SET NOT NULL,
    ALTER COLUMN actor SET NOT NULL,
    DROP COLUMN metadata;
"#,
            ),
        ],
    },
    Migration {
        version: 4,
        description: "append boundaries, checkpoint filters",
        steps: &[Step::Sql(
            r#"
ALTER TABLE {schema}.events ADD COLUMN append_len integer CHECK (append_len >= 0);
ALTER TABLE {schema}.checkpoints ADD COLUMN "filter" text;
"#,
        )],
    },
    Migration {
        version: 5,
        description: "configuration graph",
        steps: &[Step::Sql(
            r#"
CREATE TABLE {schema}.ci_rows (
    graph_name text COLLATE "C" NOT NULL,
    ci_id      text COLLATE "C" NOT NULL,
    ci_type    text COLLATE "C",
    status     text COLLATE "C",
    row_json   json NOT NULL,
    CONSTRAINT ci_rows_pkey PRIMARY KEY (graph_name, ci_id)
);
CREATE INDEX ci_rows_type ON {schema}.ci_rows (graph_name, ci_type, ci_id);

CREATE TABLE {schema}.ci_edges (
    graph_name   text COLLATE "C" NOT NULL,
    source_id    text COLLATE "C" NOT NULL,
    relationship text COLLATE "C" NOT NULL,
    target_id    text COLLATE "C" NOT NULL,
    CONSTRAINT ci_edges_pkey PRIMARY KEY (graph_name, source_id, relationship, target_id)
);
CREATE INDEX ci_edges_to ON {schema}.ci_edges (graph_name, target_id, relationship, source_id);
"#,
        )],
    },
];

/// Events whose metadata one statement of the backfill rewrites.
const BACKFILL_PAGE: i64 = 5_000;

/// The highest migration this release knows.
pub(crate) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Creates the schema if needed and applies the migrations it lacks, in one transaction,
/// under an advisory lock so that nodes starting together migrate once.
/// Refuses a database whose transaction ids restarted below the stored ones: the log is
/// ordered by transaction id, so new events would sort before old ones.
pub(crate) async fn check_transaction_ids(
    client: &Client,
    schema: &SchemaName,
) -> Result<(), PgError> {
    let row = client
        .query_one(
            &format!(
                "SELECT coalesce(max(tx_id), 0), pg_snapshot_xmax(pg_current_snapshot())::text::bigint FROM {}.events",
                schema.quoted()
            ),
            &[],
        )
        .await
        .map_err(|e| PgError::Store(store_error("check transaction ids", e)))?;
    let (newest_stored, next): (i64, i64) = (row.get(0), row.get(1));
    if newest_stored >= next {
        return Err(PgError::TransactionIdsBehind {
            schema: schema.to_string(),
            newest_stored,
            next,
        });
    }
    Ok(())
}

/// Applies the migrations `schema` lacks; with `tenant`, gives every table of the schema
/// row-level security for it in the same transaction ([`tenants::secure`]), so a table a
/// migration adds to a tenant's schema is never committed without it.
pub(crate) async fn migrate(
    client: &mut Client,
    schema: &SchemaName,
    tenant: Option<&TenantId>,
) -> Result<i32, PgError> {
    let s = schema.quoted();
    let err = |e| PgError::Store(store_error("migrate", e));
    let tx = client.transaction().await.map_err(err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('smsys.migrate.' || $1, 0))",
        &[&schema.as_str()],
    )
    .await
    .map_err(err)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
             version     integer PRIMARY KEY,
             description text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(err)?;
    let row = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {s}.schema_migrations"),
            &[],
        )
        .await
        .map_err(err)?;
    let current: i32 = column(&row, 0)?;
    if current > latest() {
        return Err(PgError::SchemaTooNew {
            schema: schema.to_string(),
            found: current,
            known: latest(),
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(schema = %schema, version = migration.version, "applying migration");
        for step in migration.steps {
            match step {
                Step::Sql(sql) => tx
                    .batch_execute(&sql.replace("{schema}", &s))
                    .await
                    .map_err(err)?,
                Step::MetadataColumns => metadata_columns(&tx, schema).await?,
            }
        }
        tx.execute(
            &format!("INSERT INTO {s}.schema_migrations (version, description) VALUES ($1, $2)"),
            &[&migration.version, &migration.description],
        )
        .await
        .map_err(err)?;
    }
    if let Some(tenant) = tenant {
        tenants::secure(&tx, tenant, schema).await.map_err(err)?;
    }
    tx.commit().await.map_err(err)?;
    Ok(latest())
}

/// Migration 3: copies each event's metadata from its `metadata` JSON into the new columns,
/// page by page in log order. The JSON is decoded exactly as the store read it before (into
/// the typed [`Metadata`]), so every event reads back as it did; the tenant column is
/// rewritten from it too. An event whose metadata does not decode, or names another event id
/// than its row, stops the migration (nothing is changed): the log needs a look first.
async fn metadata_columns(tx: &Transaction<'_>, schema: &SchemaName) -> Result<(), PgError> {
    let s = schema.quoted();
    let err = |e| PgError::Store(store_error("migrate", e));
    let select = tx
        .prepare(&format!(
            "SELECT tx_id, seq, event_id, metadata FROM {s}.events
             WHERE (tx_id, seq) > ($1, $2) ORDER BY tx_id, seq LIMIT $3"
        ))
        .await
        .map_err(err)?;
    let update = tx
        .prepare(&format!(
            "UPDATE {s}.events e
             SET occurred_us = u.occurred_us, actor = u.actor, correlation_id = u.correlation_id,
                 causation_id = u.causation_id, extensions = u.extensions, tenant = u.tenant
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::uuid[],
                         $6::uuid[], $7::json[], $8::text[])
                  AS u(tx_id, seq, occurred_us, actor, correlation_id, causation_id, extensions,
                       tenant)
             WHERE e.tx_id = u.tx_id AND e.seq = u.seq"
        ))
        .await
        .map_err(err)?;
    let mut after = (0_i64, 0_i64);
    let mut done = 0_u64;
    loop {
        let rows = tx
            .query(&select, &[&after.0, &after.1, &BACKFILL_PAGE])
            .await
            .map_err(err)?;
        let Some(last) = rows.last() else { break };
        after = (column(last, 0)?, column(last, 1)?);
        let mut keys = (
            Vec::with_capacity(rows.len()),
            Vec::with_capacity(rows.len()),
        );
        let mut metadata = Vec::with_capacity(rows.len());
        for row in &rows {
            let (tx_id, seq): (i64, i64) = (column(row, 0)?, column(row, 1)?);
            let event_id: Uuid = column(row, 2)?;
            let Json(meta): Json<Metadata> = row.try_get(3).map_err(|e| {
                PgError::Store(corrupt(format!(
                    "the metadata of event ({tx_id}, {seq}) does not decode: {e}"
                )))
            })?;
            if meta.event_id().as_uuid() != event_id {
                return Err(PgError::Store(corrupt(format!(
                    "event ({tx_id}, {seq}) is stored as {event_id} but its metadata names {}",
                    meta.event_id()
                ))));
            }
            keys.0.push(tx_id);
            keys.1.push(seq);
            metadata.push(meta);
        }
        let columns = MetadataColumns::new(&metadata);
        tx.execute(
            &update,
            &[
                &keys.0,
                &keys.1,
                &columns.occurred_us,
                &columns.actors,
                &columns.correlations,
                &columns.causations,
                &columns.extensions,
                &columns.tenants,
            ],
        )
        .await
        .map_err(err)?;
        done += rows.len() as u64;
    }
    tracing::info!(schema = %schema, events = done, "event metadata moved into columns");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1);
            assert!(!m.steps.is_empty());
            for step in m.steps {
                if let Step::Sql(sql) = step {
                    assert!(sql.contains("{schema}"));
                }
            }
        }
    }

    fn all_sql() -> String {
        MIGRATIONS
            .iter()
            .flat_map(|m| m.steps)
            .filter_map(|step| match step {
                Step::Sql(sql) => Some(*sql),
                Step::MetadataColumns => None,
            })
            .collect()
    }

    #[test]
    fn constraint_names_used_for_error_mapping_are_declared() {
        let all = all_sql();
        assert!(all.contains(EVENT_ID_KEY));
        assert!(all.contains(STREAM_VERSION_KEY));
        assert!(all.contains(STREAMS_KEY));
    }
}
