//! The SQL the store runs, written once per schema when the store opens.

use super::config::SchemaName;
use super::rows::EVENT_COLUMNS;

/// The transaction's log position part and the delivery gate, as bigint (wrap the gate in a
/// scalar subquery in a select list, so it is computed once per statement, not per row). `xid8` has no
/// binary mapping in the driver; its text form is the 64-bit epoch-extended id.
pub(crate) const CURRENT_TX: &str = "pg_current_xact_id()::text::bigint";
pub(crate) const GATE: &str = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

/// Every statement, with the schema filled in.
#[derive(Debug)]
pub(crate) struct Queries {
    pub(crate) lock_stream: String,
    pub(crate) stream_head: String,
    pub(crate) insert_new_stream: String,
    pub(crate) insert_existing_stream: String,
    pub(crate) lock_streams: String,
    pub(crate) stream_heads: String,
    pub(crate) upsert_streams: String,
    pub(crate) insert_batch: String,
    pub(crate) events_by_id: String,
    pub(crate) stream_forwards: String,
    pub(crate) stream_backwards: String,
    pub(crate) log_page: String,
    pub(crate) log_barrier: String,
    pub(crate) stream_version: String,
    pub(crate) horizon: String,
    pub(crate) load_snapshot: String,
    pub(crate) save_snapshot: String,
    pub(crate) load_checkpoint: String,
    pub(crate) save_checkpoint: String,
}

/// The columns an append writes, after `tx_id` and the stream's columns. `append_len` is the
/// append boundary of the retry rule: the append's number of events on its first event, 0 on
/// the others.
const WRITTEN_COLUMNS: &str = "event_id, event_type, schema_version, tenant, payload, \
     recorded_at, previous_hash, hash, occurred_us, actor, correlation_id, causation_id, \
     extensions, append_len";

fn insert_events(s: &str, stream_cte: &str) -> String {
    format!(
        "WITH head AS ({stream_cte})
         INSERT INTO {s}.events (tx_id, stream_id, version, category, {WRITTEN_COLUMNS})
         SELECT {CURRENT_TX}, $1, u.version, $4, u.event_id, u.event_type, u.schema_version,
                u.tenant, u.payload::json, $5, u.previous_hash, u.hash, u.occurred_us, u.actor,
                u.correlation_id, u.causation_id, u.extensions,
                CASE u.ord WHEN 1 THEN cardinality($6::bigint[]) ELSE 0 END
         FROM unnest($6::bigint[], $7::uuid[], $8::text[], $9::bigint[], $10::text[],
                     $11::text[], $12::bytea[], $13::bytea[], $14::bigint[], $15::text[],
                     $16::uuid[], $17::uuid[], $18::json[])
              WITH ORDINALITY AS u(version, event_id, event_type, schema_version, tenant,
                                   payload, previous_hash, hash, occurred_us, actor,
                                   correlation_id, causation_id, extensions, ord)
         WHERE EXISTS (SELECT 1 FROM head)
         ORDER BY u.ord
         RETURNING version, tx_id, seq"
    )
}

impl Queries {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = schema.quoted();
        let cols = EVENT_COLUMNS;
        Self {
            lock_stream: "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))".to_owned(),
            stream_head: format!("SELECT version, head_hash FROM {s}.streams WHERE stream_id = $1"),
            insert_new_stream: insert_events(
                &s,
                &format!(
                    "INSERT INTO {s}.streams (stream_id, version, head_hash) VALUES ($1, $2, $3)
                     RETURNING 1"
                ),
            ),
            insert_existing_stream: insert_events(
                &s,
                &format!(
                    "UPDATE {s}.streams SET version = $2, head_hash = $3
                     WHERE stream_id = $1 AND version = $19 AND head_hash = $20 RETURNING 1"
                ),
            ),
            // The stream locks of a batch, taken in the order of their keys whatever the
            // order of the streams: batches over the same streams never deadlock. Volatile
            // functions of the select list are evaluated after the sort.
            lock_streams: "SELECT pg_advisory_xact_lock(l.key)
                 FROM (SELECT DISTINCT hashtextextended($2 || s, 0) AS key
                       FROM unnest($1::text[]) AS s) AS l
                 ORDER BY l.key"
                .to_owned(),
            stream_heads: format!(
                "SELECT stream_id, version, head_hash FROM {s}.streams WHERE stream_id = ANY($1)"
            ),
            // A batch's stream rows, written in one order (the heads were read under the
            // stream locks; a writer that got in between is caught by the events' keys).
            upsert_streams: format!(
                "INSERT INTO {s}.streams (stream_id, version, head_hash)
                 SELECT u.stream_id, u.version, u.head_hash
                 FROM unnest($1::text[], $2::bigint[], $3::bytea[])
                      AS u(stream_id, version, head_hash)
                 ORDER BY u.stream_id COLLATE \"C\"
                 ON CONFLICT (stream_id) DO UPDATE
                 SET version = EXCLUDED.version, head_hash = EXCLUDED.head_hash"
            ),
            insert_batch: format!(
                "INSERT INTO {s}.events (tx_id, stream_id, version, category, {WRITTEN_COLUMNS})
                 SELECT {CURRENT_TX}, u.stream_id, u.version, u.category, u.event_id,
                        u.event_type, u.schema_version, u.tenant, u.payload::json, $1,
                        u.previous_hash, u.hash, u.occurred_us, u.actor, u.correlation_id,
                        u.causation_id, u.extensions, u.append_len
                 FROM unnest($2::text[], $3::text[], $4::bigint[], $5::uuid[], $6::text[],
                             $7::bigint[], $8::text[], $9::text[], $10::bytea[], $11::bytea[],
                             $12::bigint[], $13::text[], $14::uuid[], $15::uuid[], $16::json[],
                             $17::integer[])
                      WITH ORDINALITY AS u(stream_id, category, version, event_id, event_type,
                                           schema_version, tenant, payload, previous_hash, hash,
                                           occurred_us, actor, correlation_id, causation_id,
                                           extensions, append_len, ord)
                 ORDER BY u.ord
                 RETURNING event_id, tx_id, seq"
            ),
            // The events carrying these ids, each with its append boundary (`append_len`) in
            // the column after the event's.
            events_by_id: format!(
                "SELECT {cols}, append_len FROM {s}.events WHERE event_id = ANY($1)"
            ),
            stream_forwards: format!(
                "SELECT {cols} FROM {s}.events WHERE stream_id = $1 AND version >= $2
                 ORDER BY version LIMIT $3"
            ),
            stream_backwards: format!(
                "SELECT {cols} FROM {s}.events WHERE stream_id = $1 AND version <= $2
                 ORDER BY version DESC LIMIT $3"
            ),
            log_page: format!(
                "SELECT {cols}, (SELECT {GATE}) AS gate FROM {s}.events
                 WHERE (tx_id, seq) > ($1, $2)
                   AND (cardinality($3::text[]) = 0 OR category = ANY($3))
                   AND (cardinality($4::text[]) = 0 OR event_type = ANY($4))
                 ORDER BY tx_id, seq LIMIT $5"
            ),
            log_barrier: format!("SELECT (SELECT max(tx_id) FROM {s}.events), {GATE}"),
            stream_version: format!("SELECT version FROM {s}.streams WHERE stream_id = $1"),
            horizon: format!(
                "WITH g AS (SELECT {GATE} AS gate)
                 SELECT g.gate, last.tx_id, last.seq,
                        (SELECT count(*) FROM {s}.events e WHERE e.tx_id >= g.gate)
                 FROM g LEFT JOIN LATERAL (
                     SELECT e.tx_id, e.seq FROM {s}.events e WHERE e.tx_id < g.gate
                     ORDER BY e.tx_id DESC, e.seq DESC LIMIT 1
                 ) last ON true"
            ),
            load_snapshot: format!(
                "SELECT version, schema_version, state FROM {s}.snapshots WHERE stream_id = $1"
            ),
            save_snapshot: format!(
                "INSERT INTO {s}.snapshots (stream_id, version, schema_version, state)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (stream_id) DO UPDATE
                 SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version,
                     state = EXCLUDED.state, saved_at = now()
                 WHERE {s}.snapshots.version <= EXCLUDED.version"
            ),
            load_checkpoint: format!("SELECT tx_id, seq FROM {s}.checkpoints WHERE name = $1"),
            save_checkpoint: format!(
                "INSERT INTO {s}.checkpoints (name, tx_id, seq) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE
                 SET tx_id = EXCLUDED.tx_id, seq = EXCLUDED.seq, updated_at = now()"
            ),
        }
    }
}
