//! The configuration graph in the store's file: rows and edges written by the writer thread in
//! the same transaction as the graph's checkpoint, reads and walks run on the read pool.
//!
//! Each row is kept as JSON (what reads return) beside the columns queries select on (id,
//! type, name, status); each relationship is an edge row, indexed from both ends. A walk is
//! the shared breadth-first search (`crate::ci_graph`), one query per level, inside one read
//! transaction so that every level sees the same state of the graph.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use smsys_core::records::{CiGraphStore, CiId, CiRow, CiType, GraphWalk, Relationship};
use smsys_core::{BackendError, LogFilter, Position, StoreError};

use super::SqliteEventStore;
use super::error::{BACKEND, corrupt, store};
use super::rows::{self, StoredPosition};
use super::writer::{Command, Write};
use crate::checkpoint::CheckpointName;
use crate::ci_graph::{Walker, last_per_ci};

/// Batches of more rows than this are encoded off the async runtime.
const ENCODE_INLINE: usize = 256;

/// A configuration graph kept in a [`SqliteEventStore`]'s file, beside the log: a batch of
/// rows, their edges and the graph's checkpoint are written in one transaction, so after a
/// crash the graph holds exactly the effect of the events up to the checkpoint. Made by
/// [`SqliteEventStore::ci_graph`].
///
/// The checkpoint is the store's named checkpoint under the graph's name: give other
/// subscribers and indexes other names. Answers agree exactly with
/// [`MemoryCiGraph`](crate::MemoryCiGraph), the reference. The graph holds a handle to its
/// store, so the store's writer runs while the graph lives; cloning gives another handle to
/// the same graph.
///
/// ```
/// # use smsys_core::records::{CiGraphStore, CiId, GraphWalk};
/// # use smsys_core::Position;
/// # use smsys_store::{CheckpointName, SqliteEventStore};
/// # #[tokio::main(flavor = "multi_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = SqliteEventStore::open(dir.path().join("smsys.db")).await?;
/// let graph = store.ci_graph(CheckpointName::new("ci_graph.v1")?);
/// graph.apply(Vec::new(), Position::from_sequence(7)).await?;
/// assert_eq!(graph.checkpoint().await?, Some(Position::from_sequence(7)));
/// assert!(graph.walk(&CiId::new("srv-01")?, &GraphWalk::new()).await?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteCiGraph {
    store: SqliteEventStore,
    name: CheckpointName,
}

impl std::fmt::Debug for SqliteCiGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCiGraph")
            .field("name", &self.name)
            .field("path", &self.store.path())
            .finish()
    }
}

impl SqliteEventStore {
    /// The configuration graph kept in this file under `name` (see [`SqliteCiGraph`]).
    /// Graphs of other names in the same file are left alone by everything it does.
    pub fn ci_graph(&self, name: CheckpointName) -> SqliteCiGraph {
        SqliteCiGraph {
            store: self.clone(),
            name,
        }
    }
}

impl SqliteCiGraph {
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &CheckpointName) -> Result<T, StoreError> + Send + 'static,
    {
        let name = self.name.clone();
        self.store
            .inner
            .readers
            .run(move |conn| read(conn, &name))
            .await
    }
}

#[async_trait]
impl CiGraphStore for SqliteCiGraph {
    fn name(&self) -> &str {
        self.name.as_str()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, StoreError> {
        self.read(rows::load_checkpoint).await
    }

    async fn checkpoint_for(&self, filter: &LogFilter) -> Result<Option<Position>, StoreError> {
        self.store.load_checkpoint_for(&self.name, filter).await
    }

    async fn ci(&self, id: &CiId) -> Result<Option<CiRow>, StoreError> {
        let id = id.clone();
        self.read(move |conn, name| read_row(conn, name, &id)).await
    }

    async fn cis(&self, ids: &[CiId]) -> Result<Vec<Option<CiRow>>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |conn, name| {
            let tx = conn
                .unchecked_transaction()
                .map_err(|e| store("read ci graph rows", e))?;
            ids.iter().map(|id| read_row(&tx, name, id)).collect()
        })
        .await
    }

    async fn apply(&self, rows: Vec<CiRow>, checkpoint: Position) -> Result<(), StoreError> {
        let checkpoint = StoredPosition::new(checkpoint, "apply ci graph rows")?;
        let rows = last_per_ci(rows);
        let rows = if rows.len() > ENCODE_INLINE {
            tokio::task::spawn_blocking(move || encode_all(rows))
                .await
                .map_err(|e| {
                    StoreError::Backend(BackendError::new(BACKEND, "encode ci rows", false, e))
                })??
        } else {
            encode_all(rows)?
        };
        let graph = self.name.clone();
        self.store
            .request(|reply| Command::Write {
                write: Write::CiRows {
                    graph,
                    rows,
                    checkpoint,
                },
                reply,
            })
            .await?
    }

    async fn cis_of_type(&self, ci_type: &CiType) -> Result<Vec<CiId>, StoreError> {
        let ci_type = ci_type.clone();
        let mut ids = self
            .read(move |conn, name| {
                let op = |e| store("read cis of type", e);
                let mut stmt = conn
                    .prepare_cached("SELECT ci FROM ci_rows WHERE graph_name = ?1 AND ci_type = ?2")
                    .map_err(op)?;
                let mut found = stmt
                    .query(params![name.as_str(), ci_type.as_str()])
                    .map_err(op)?;
                let mut ids = Vec::new();
                while let Some(row) = found.next().map_err(op)? {
                    ids.push(ci_id(name, row.get(0).map_err(op)?)?);
                }
                Ok(ids)
            })
            .await?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn relationships_to(&self, id: &CiId) -> Result<Vec<(Relationship, CiId)>, StoreError> {
        let id = id.clone();
        let mut edges = self
            .read(move |conn, name| {
                let op = |e| store("read ci relationships", e);
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT relationship, source FROM ci_edges
                         WHERE graph_name = ?1 AND target = ?2",
                    )
                    .map_err(op)?;
                let mut found = stmt
                    .query(params![name.as_str(), id.as_str()])
                    .map_err(op)?;
                let mut edges = Vec::new();
                while let Some(row) = found.next().map_err(op)? {
                    let relationship: String = row.get(0).map_err(op)?;
                    let relationship = Relationship::new(relationship).map_err(|e| {
                        corrupt(format!("ci graph {name}: an edge's relationship: {e}"))
                    })?;
                    edges.push((relationship, ci_id(name, row.get(1).map_err(op)?)?));
                }
                Ok(edges)
            })
            .await?;
        edges.sort_unstable();
        Ok(edges)
    }

    async fn walk(&self, origin: &CiId, walk: &GraphWalk) -> Result<Vec<(CiId, u32)>, StoreError> {
        let origin = origin.clone();
        let walk = walk.clone();
        self.read(move |conn, name| walk_in(conn, name, &origin, &walk))
            .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.read(|conn, name| {
            let n: i64 = conn
                .prepare_cached("SELECT count(*) FROM ci_rows WHERE graph_name = ?1")
                .and_then(|mut stmt| stmt.query_row(params![name.as_str()], |r| r.get(0)))
                .map_err(|e| store("count ci graph rows", e))?;
            u64::try_from(n).map_err(|_| corrupt(format!("ci graph {name}: count {n}")))
        })
        .await
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let graph = self.name.clone();
        self.store
            .request(|reply| Command::Write {
                write: Write::ClearCiGraph { graph },
                reply,
            })
            .await?
    }
}

/// A row ready for the writer: its columns, its JSON and its edges, encoded by the caller so
/// that the writer thread only writes.
pub(crate) struct CiGraphRow {
    id: String,
    ci_type: Option<String>,
    name: String,
    status: Option<String>,
    json: String,
    /// (relationship, target).
    edges: Vec<(String, String)>,
}

impl CiGraphRow {
    fn encode(row: &CiRow) -> Result<Self, StoreError> {
        let json = serde_json::to_string(row).map_err(|e| {
            StoreError::Backend(BackendError::new(BACKEND, "encode ci graph row", false, e))
        })?;
        Ok(Self {
            id: row.id().as_str().to_owned(),
            ci_type: row.ci_type().map(|t| t.as_str().to_owned()),
            name: row.name().to_owned(),
            status: row.status().map(str::to_owned),
            json,
            edges: row
                .relationships()
                .iter()
                .map(|(r, target)| (r.as_str().to_owned(), target.as_str().to_owned()))
                .collect(),
        })
    }

    /// About how many rows writing it touches, for bounding a transaction.
    pub(crate) fn weight(&self) -> usize {
        1 + self.edges.len()
    }
}

fn encode_all(rows: Vec<CiRow>) -> Result<Vec<CiGraphRow>, StoreError> {
    rows.into_iter()
        .map(|row| CiGraphRow::encode(&row))
        .collect()
}

/// Replaces the rows of their CIs and their edges and saves the graph's checkpoint. Runs
/// inside the writer's transaction, under a savepoint, so it is all or nothing.
pub(crate) fn write_rows(
    conn: &Connection,
    graph: &CheckpointName,
    rows: &[CiGraphRow],
    checkpoint: StoredPosition,
) -> Result<(), StoreError> {
    let op = |e| store("apply ci graph rows", e);
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO ci_rows (graph_name, ci, ci_type, name, status, row)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (graph_name, ci) DO UPDATE SET ci_type = excluded.ci_type,
                 name = excluded.name, status = excluded.status, row = excluded.row",
        )
        .map_err(op)?;
    let mut drop_edges = conn
        .prepare_cached("DELETE FROM ci_edges WHERE graph_name = ?1 AND source = ?2")
        .map_err(op)?;
    let mut add_edge = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO ci_edges (graph_name, source, relationship, target)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(op)?;
    let name = graph.as_str();
    for row in rows {
        upsert
            .execute(params![
                name,
                row.id,
                row.ci_type,
                row.name,
                row.status,
                row.json
            ])
            .map_err(op)?;
        drop_edges.execute(params![name, row.id]).map_err(op)?;
        for (relationship, target) in &row.edges {
            add_edge
                .execute(params![name, row.id, relationship, target])
                .map_err(op)?;
        }
    }
    rows::save_checkpoint(conn, graph, checkpoint)
}

/// Removes every row, edge and the checkpoint of one graph.
pub(crate) fn clear(conn: &Connection, graph: &CheckpointName) -> Result<(), StoreError> {
    let op = |e| store("clear ci graph", e);
    for sql in [
        "DELETE FROM ci_rows WHERE graph_name = ?1",
        "DELETE FROM ci_edges WHERE graph_name = ?1",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params![graph.as_str()]))
            .map_err(op)?;
    }
    rows::delete_checkpoint(conn, graph)
}

fn ci_id(graph: &CheckpointName, text: String) -> Result<CiId, StoreError> {
    CiId::new(text).map_err(|e| corrupt(format!("ci graph {graph}: a CI id: {e}")))
}

fn read_row(
    conn: &Connection,
    graph: &CheckpointName,
    id: &CiId,
) -> Result<Option<CiRow>, StoreError> {
    let json = conn
        .prepare_cached("SELECT row FROM ci_rows WHERE graph_name = ?1 AND ci = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![graph.as_str(), id.as_str()], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        })
        .map_err(|e| store("read ci graph row", e))?;
    json.map(|json| {
        serde_json::from_str(&json)
            .map_err(|e| corrupt(format!("ci graph {graph}: the row of {id}: {e}")))
    })
    .transpose()
}

/// The CIs one level further: the registered, not skipped CIs linked to the frontier (given
/// as a JSON array, `?2`) by the relationship types (`?3`) followed that way; `?4` the
/// skipped status or NULL.
const UPSTREAM: &str = "SELECT e.source FROM ci_edges e
     JOIN ci_rows r ON r.graph_name = e.graph_name AND r.ci = e.source
     WHERE e.graph_name = ?1 AND e.target IN (SELECT value FROM json_each(?2))
       AND e.relationship IN (SELECT value FROM json_each(?3))
       AND r.ci_type IS NOT NULL AND r.status IS NOT ?4";
const DOWNSTREAM: &str = "SELECT e.target FROM ci_edges e
     JOIN ci_rows r ON r.graph_name = e.graph_name AND r.ci = e.target
     WHERE e.graph_name = ?1 AND e.source IN (SELECT value FROM json_each(?2))
       AND e.relationship IN (SELECT value FROM json_each(?3))
       AND r.ci_type IS NOT NULL AND r.status IS NOT ?4";

fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    // A list of strings always serializes.
    serde_json::to_string(&items.into_iter().collect::<Vec<_>>()).unwrap_or_default()
}

/// The walk, every level read in one read transaction (one snapshot of the file).
fn walk_in(
    conn: &Connection,
    graph: &CheckpointName,
    origin: &CiId,
    walk: &GraphWalk,
) -> Result<Vec<(CiId, u32)>, StoreError> {
    let op = |e| store("walk ci graph", e);
    let tx = conn.unchecked_transaction().map_err(op)?;
    let registered = tx
        .prepare_cached("SELECT ci_type IS NOT NULL FROM ci_rows WHERE graph_name = ?1 AND ci = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![graph.as_str(), origin.as_str()], |r| {
                r.get::<_, bool>(0)
            })
            .optional()
        })
        .map_err(op)?
        .unwrap_or(false);
    let upstream = json_list(walk.upstream().into_iter().map(Relationship::as_str));
    let downstream = json_list(walk.downstream().into_iter().map(Relationship::as_str));
    let skipped = walk.skip_status.as_deref();
    let mut walker = Walker::new(origin, registered, walk);
    while let Some(frontier) = walker.frontier() {
        let frontier = json_list(frontier.iter().map(CiId::as_str));
        let mut next = Vec::new();
        for (sql, types) in [(UPSTREAM, &upstream), (DOWNSTREAM, &downstream)] {
            if types == "[]" {
                continue;
            }
            let mut stmt = tx.prepare_cached(sql).map_err(op)?;
            let mut found = stmt
                .query(params![graph.as_str(), frontier, types, skipped])
                .map_err(op)?;
            while let Some(row) = found.next().map_err(op)? {
                next.push(ci_id(graph, row.get(0).map_err(op)?)?);
            }
        }
        walker.advance(next);
    }
    Ok(walker.finish())
}
