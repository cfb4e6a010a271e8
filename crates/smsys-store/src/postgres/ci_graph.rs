//! The configuration graph in the store's schema: rows, edges and checkpoint written by one
//! statement, walks in one read-only snapshot.
//!
//! Each graph (a name, e.g. `ci_graph.v1`) keeps one row per CI in `ci_rows`, one edge per
//! relationship in `ci_edges`, and its checkpoint in `checkpoints` under its name.
//! [`CiGraphStore::apply`] replaces rows, edges and checkpoint in one statement
//! (data-modifying CTEs), hence one implicit transaction. A walk is the shared breadth-first
//! search (`crate::ci_graph`), one statement per level, in a `REPEATABLE READ` read-only
//! transaction so that every level sees the same state of the graph.

use std::sync::Arc;

use async_trait::async_trait;
use smsys_core::records::{CiGraphStore, CiId, CiRow, CiType, GraphWalk, Relationship};
use smsys_core::{LogFilter, Position, StoreError};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::PgEventStore;
use super::checkpoint::to_i64;
use super::error::{corrupt, pool_error, store_error};
use super::pool::{self, release_after};
use super::record_index::status_text;
use super::rows::unsigned;
use crate::checkpoint::CheckpointName;
use crate::ci_graph::{Walker, last_per_ci};

/// A configuration graph kept in a [`PgEventStore`]'s schema, beside the log it is built
/// from.
///
/// Made by [`PgEventStore::ci_graph`]; several names (versions of the graph) live side by
/// side, each with its own rows, edges and checkpoint. A batch of rows and its checkpoint
/// commit together, so a projection writing into it has an exactly-once effect across crashes
/// and lost connections. Answers are those of [`MemoryCiGraph`](crate::MemoryCiGraph), the
/// reference.
///
/// Cloning gives another handle to the same graph (same pool).
///
/// ```no_run
/// # async fn run(store: smsys_store::PgEventStore) -> Result<(), Box<dyn std::error::Error>> {
/// use smsys_core::records::{CiGraphStore, CiId, Direction, GraphWalk, Relationship};
/// use smsys_store::CheckpointName;
///
/// let graph = store.ci_graph(CheckpointName::new("ci_graph.v1")?);
/// let walk = GraphWalk::new().follow(Relationship::RUNS_ON, Direction::Upstream);
/// let dependents = graph.walk(&CiId::new("srv-01")?, &walk).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgCiGraph {
    store: PgEventStore,
    name: CheckpointName,
    sql: Arc<Statements>,
}

impl std::fmt::Debug for PgCiGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCiGraph")
            .field("schema", self.store.schema())
            .field("name", &self.name)
            .finish()
    }
}

impl PgEventStore {
    /// The configuration graph named `name` in this store's schema (its tables exist once
    /// the store is open; a graph without rows is empty). Its checkpoint is kept in the
    /// checkpoints table under the same name: give other subscribers other names.
    pub fn ci_graph(&self, name: CheckpointName) -> PgCiGraph {
        PgCiGraph {
            store: self.clone(),
            name,
            sql: Arc::new(Statements::new(&self.schema().quoted())),
        }
    }
}

/// The statements of the graph, with the schema filled in.
#[derive(Debug)]
struct Statements {
    apply: String,
    rows_of: String,
    of_type: String,
    incoming: String,
    count: String,
    clear: String,
    registered: String,
    level: String,
}

impl Statements {
    fn new(s: &str) -> Self {
        let reachable = |end: &str| {
            format!(
                "JOIN {s}.ci_rows r ON r.graph_name = e.graph_name AND r.ci_id = e.{end}
                 WHERE e.graph_name = $1 AND r.ci_type IS NOT NULL
                   AND r.status IS DISTINCT FROM $5"
            )
        };
        Self {
            apply: format!(
                "WITH incoming AS (
                     SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::json[])
                         AS u(ci_id, ci_type, status, row_json)
                 ),
                 upserted AS (
                     INSERT INTO {s}.ci_rows (graph_name, ci_id, ci_type, status, row_json)
                     SELECT $1, i.ci_id, i.ci_type, i.status, i.row_json FROM incoming i
                     ON CONFLICT (graph_name, ci_id) DO UPDATE SET
                         ci_type = EXCLUDED.ci_type, status = EXCLUDED.status,
                         row_json = EXCLUDED.row_json
                 ),
                 edges AS (
                     SELECT * FROM unnest($6::text[], $7::text[], $8::text[])
                         AS e(source_id, relationship, target_id)
                 ),
                 dropped AS (
                     DELETE FROM {s}.ci_edges x
                     WHERE x.graph_name = $1 AND x.source_id = ANY($2::text[])
                       AND NOT EXISTS (SELECT 1 FROM edges e
                                       WHERE e.source_id = x.source_id
                                         AND e.relationship = x.relationship
                                         AND e.target_id = x.target_id)
                 ),
                 added AS (
                     INSERT INTO {s}.ci_edges (graph_name, source_id, relationship, target_id)
                     SELECT $1, e.source_id, e.relationship, e.target_id FROM edges e
                     ON CONFLICT DO NOTHING
                 )
                 INSERT INTO {s}.checkpoints (name, tx_id, seq) VALUES ($1, $9, $10)
                 ON CONFLICT (name) DO UPDATE
                 SET tx_id = EXCLUDED.tx_id, seq = EXCLUDED.seq, updated_at = now()"
            ),
            rows_of: format!(
                "SELECT row_json, ci_id FROM {s}.ci_rows WHERE graph_name = $1 AND ci_id = ANY($2)"
            ),
            of_type: format!(
                "SELECT ci_id FROM {s}.ci_rows WHERE graph_name = $1 AND ci_type = $2"
            ),
            incoming: format!(
                "SELECT relationship, source_id FROM {s}.ci_edges
                 WHERE graph_name = $1 AND target_id = $2"
            ),
            count: format!("SELECT count(*) FROM {s}.ci_rows WHERE graph_name = $1"),
            clear: format!(
                "WITH edges AS (DELETE FROM {s}.ci_edges WHERE graph_name = $1),
                      rows AS (DELETE FROM {s}.ci_rows WHERE graph_name = $1)
                 DELETE FROM {s}.checkpoints WHERE name = $1"
            ),
            registered: format!(
                "SELECT ci_type IS NOT NULL FROM {s}.ci_rows WHERE graph_name = $1 AND ci_id = $2"
            ),
            // $2 the frontier, $3 the types followed upstream, $4 downstream, $5 the skipped
            // status (NULL: none).
            level: format!(
                "SELECT e.source_id FROM {s}.ci_edges e {}
                   AND e.target_id = ANY($2) AND e.relationship = ANY($3)
                 UNION
                 SELECT e.target_id FROM {s}.ci_edges e {}
                   AND e.source_id = ANY($2) AND e.relationship = ANY($4)",
                reachable("source_id"),
                reachable("target_id")
            ),
        }
    }
}

fn ci_id(name: &CheckpointName, text: &str) -> Result<CiId, StoreError> {
    CiId::new(text).map_err(|e| corrupt(format!("ci graph {name}: a CI id: {e}")))
}

fn text_at<'a>(row: &'a Row, index: usize, name: &CheckpointName) -> Result<&'a str, StoreError> {
    row.try_get(index)
        .map_err(|e| corrupt(format!("ci graph {name}: column {index}: {e}")))
}

#[async_trait]
impl CiGraphStore for PgCiGraph {
    fn name(&self) -> &str {
        self.name.as_str()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, StoreError> {
        self.store.load_checkpoint(&self.name).await
    }

    async fn checkpoint_for(&self, filter: &LogFilter) -> Result<Option<Position>, StoreError> {
        self.store.load_checkpoint_for(&self.name, filter).await
    }

    async fn ci(&self, id: &CiId) -> Result<Option<CiRow>, StoreError> {
        let mut rows = self.cis(std::slice::from_ref(id)).await?;
        Ok(rows.pop().flatten())
    }

    async fn cis(&self, ids: &[CiId]) -> Result<Vec<Option<CiRow>>, StoreError> {
        let names: Vec<&str> = ids.iter().map(CiId::as_str).collect();
        let found = pool::query(
            &self.store.inner.pool,
            "read ci graph rows",
            &self.sql.rows_of,
            &[&self.name.as_str(), &names],
        )
        .await?;
        let mut by_id = std::collections::HashMap::with_capacity(found.len());
        for row in &found {
            by_id.insert(text_at(row, 1, &self.name)?, row);
        }
        ids.iter()
            .map(|id| {
                by_id
                    .get(id.as_str())
                    .map(|row| {
                        row.try_get::<_, Json<CiRow>>(0)
                            .map(|Json(row)| row)
                            .map_err(|e| {
                                corrupt(format!("ci graph {}: the row of {id}: {e}", self.name))
                            })
                    })
                    .transpose()
            })
            .collect()
    }

    async fn apply(&self, rows: Vec<CiRow>, checkpoint: Position) -> Result<(), StoreError> {
        let rows = last_per_ci(rows);
        let ids: Vec<&str> = rows.iter().map(|r| r.id().as_str()).collect();
        let types: Vec<Option<&str>> = rows
            .iter()
            .map(|r| r.ci_type().map(CiType::as_str))
            .collect();
        let statuses: Vec<Option<String>> = rows
            .iter()
            .map(|r| r.status().map(|s| status_text(s).into_owned()))
            .collect();
        let json: Vec<Json<&CiRow>> = rows.iter().map(Json).collect();
        let (mut sources, mut relationships, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            for (relationship, target) in row.relationships() {
                sources.push(row.id().as_str());
                relationships.push(relationship.as_str());
                targets.push(target.as_str());
            }
        }
        let tx_id = to_i64(checkpoint.commit(), "transaction id")?;
        let seq = to_i64(checkpoint.sequence(), "sequence")?;
        pool::query(
            &self.store.inner.pool,
            "apply ci graph",
            &self.sql.apply,
            &[
                &self.name.as_str(),
                &ids,
                &types,
                &statuses,
                &json,
                &sources,
                &relationships,
                &targets,
                &tx_id,
                &seq,
            ],
        )
        .await?;
        Ok(())
    }

    async fn cis_of_type(&self, ci_type: &CiType) -> Result<Vec<CiId>, StoreError> {
        let found = pool::query(
            &self.store.inner.pool,
            "read cis of type",
            &self.sql.of_type,
            &[&self.name.as_str(), &ci_type.as_str()],
        )
        .await?;
        let mut ids = found
            .iter()
            .map(|row| ci_id(&self.name, text_at(row, 0, &self.name)?))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn relationships_to(&self, id: &CiId) -> Result<Vec<(Relationship, CiId)>, StoreError> {
        let found = pool::query(
            &self.store.inner.pool,
            "read ci relationships",
            &self.sql.incoming,
            &[&self.name.as_str(), &id.as_str()],
        )
        .await?;
        let mut edges = found
            .iter()
            .map(|row| {
                let relationship =
                    Relationship::new(text_at(row, 0, &self.name)?).map_err(|e| {
                        corrupt(format!(
                            "ci graph {}: an edge's relationship: {e}",
                            self.name
                        ))
                    })?;
                Ok((
                    relationship,
                    ci_id(&self.name, text_at(row, 1, &self.name)?)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        edges.sort_unstable();
        Ok(edges)
    }

    async fn walk(&self, origin: &CiId, walk: &GraphWalk) -> Result<Vec<(CiId, u32)>, StoreError> {
        const OP: &str = "walk ci graph";
        let mut client = self
            .store
            .inner
            .pool
            .get()
            .await
            .map_err(|e| pool_error(OP, e))?;
        let upstream: Vec<&str> = walk
            .upstream()
            .into_iter()
            .map(Relationship::as_str)
            .collect();
        let downstream: Vec<&str> = walk
            .downstream()
            .into_iter()
            .map(Relationship::as_str)
            .collect();
        let skipped = walk.skip_status.as_deref().map(status_text);
        let name = self.name.as_str();
        // Driver errors and corrupt data apart: a lost connection is not given back.
        let outcome: Result<Result<Vec<(CiId, u32)>, StoreError>, tokio_postgres::Error> = async {
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let registered = tx.prepare_cached(&self.sql.registered).await?;
            let registered = tx
                .query_opt(&registered, &[&name, &origin.as_str()])
                .await?
                .map(|row| row.try_get::<_, bool>(0))
                .transpose()?
                .unwrap_or(false);
            let level = tx.prepare_cached(&self.sql.level).await?;
            let mut walker = Walker::new(origin, registered, walk);
            while let Some(frontier) = walker.frontier() {
                let frontier: Vec<&str> = frontier.iter().map(CiId::as_str).collect();
                let found = tx
                    .query(
                        &level,
                        &[
                            &name,
                            &frontier,
                            &upstream,
                            &downstream,
                            &skipped.as_deref(),
                        ],
                    )
                    .await?;
                let next = found
                    .iter()
                    .map(|row| ci_id(&self.name, text_at(row, 0, &self.name)?))
                    .collect::<Result<Vec<_>, _>>();
                match next {
                    Ok(next) => walker.advance(next),
                    Err(e) => return Ok(Err(e)),
                }
            }
            tx.rollback().await?;
            Ok(Ok(walker.finish()))
        }
        .await;
        match outcome {
            Ok(answer) => answer,
            Err(error) => {
                release_after(client, &error);
                Err(store_error(OP, error))
            }
        }
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let found = pool::query(
            &self.store.inner.pool,
            "count ci graph rows",
            &self.sql.count,
            &[&self.name.as_str()],
        )
        .await?;
        let n: i64 = found
            .first()
            .ok_or_else(|| corrupt("the count query returned no row"))?
            .try_get(0)
            .map_err(|e| corrupt(format!("the count of ci graph {}: {e}", self.name)))?;
        unsigned(n, "ci graph row count")
    }

    async fn clear(&self) -> Result<(), StoreError> {
        pool::query(
            &self.store.inner.pool,
            "clear ci graph",
            &self.sql.clear,
            &[&self.name.as_str()],
        )
        .await?;
        Ok(())
    }
}
