//! The configuration graph suite ([`CiGraphStore`]), written once and run by every backend.
//!
//! Implement [`CiGraphHarness`] (a fresh database per case, the graph of a given name in it,
//! `reopens` and `reopen` for a durable backend, `teardown`) and call
//! [`ci_graph_suite!`](crate::ci_graph_suite) in a test file: one `#[test]` per case.
//!
//! ```no_run
//! use smsys_store::testkit::ci_graph::MemoryCiGraphs;
//! smsys_store::ci_graph_suite!(MemoryCiGraphs);
//! ```
//!
//! Beyond the trait's documentation, the cases hold a backend to: rows read back exactly as
//! applied; one `cis` call sees one applied batch; graphs of other names in the same database
//! (their rows, edges and checkpoints) are left alone by `apply` and `clear`; walks agree with
//! a brute-force breadth-first search on random graphs with cycles (the model test, whose
//! number of cases is read from `SMSYS_PROPTEST_CASES`, default 24).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta};
use smsys_core::records::configuration_item::CiRegistered;
use smsys_core::records::{
    AttributeName, AttributeValue, CiEvent, CiGraphStore, CiId, CiRow, CiType, Direction,
    GraphWalk, Relationship,
};
use smsys_core::{Actor, Category, LogFilter, Position, Stamp, StoreError, Version};

pub use super::ci_graph_model::ci_graph_model_test;
pub use super::ci_graph_walks::{
    ci_graph_walk_follows_types_ways_and_depth, ci_graph_walk_terminates_on_cycles,
};
use crate::{CheckpointName, MemoryCiGraph};

/// How the suite gets fresh databases of a backend, and the graphs in them.
#[async_trait]
pub trait CiGraphHarness: Send + Sync + 'static {
    /// A database: what graphs live in (an SQLite file, a PostgreSQL schema, ...).
    type Db: Send + Sync + 'static;
    /// A graph in a database.
    type Graph: CiGraphStore + 'static;

    /// A fresh, empty database.
    async fn create(&self) -> Self::Db;

    /// The graph named `name` in `db`: the same graph for the same name.
    fn graph(&self, db: &Self::Db, name: &CheckpointName) -> Self::Graph;

    /// Whether [`reopen`](Self::reopen) gives the saved state back (a durable backend).
    fn reopens(&self) -> bool {
        false
    }

    /// Closes `db` and opens it again. Called only when [`reopens`](Self::reopens) is true.
    async fn reopen(&self, db: Self::Db) -> Self::Db {
        db
    }

    /// Releases what `create` set up. Called after each case that passed.
    async fn teardown(&self, _db: Self::Db) {}
}

/// The harness of the memory backend: one [`MemoryCiGraph`] per name.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryCiGraphs;

#[async_trait]
impl CiGraphHarness for MemoryCiGraphs {
    type Db = Mutex<HashMap<CheckpointName, MemoryCiGraph>>;
    type Graph = MemoryCiGraph;

    async fn create(&self) -> Self::Db {
        Mutex::default()
    }

    fn graph(&self, db: &Self::Db, name: &CheckpointName) -> MemoryCiGraph {
        db.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.clone())
            .or_insert_with(|| MemoryCiGraph::new(name.clone()))
            .clone()
    }
}

/// A CI id.
pub fn ci(id: &str) -> CiId {
    CiId::new(id).expect("suite CI ids are valid")
}

/// The row of a CI registered with `ci_type` and `status`, then given `edges`, one event
/// each, stamped a second apart from the epoch by `cmdb`.
pub fn ci_row(id: &str, ci_type: &str, status: &str, edges: &[(Relationship, &str)]) -> CiRow {
    let mut row = CiRow::new(ci(id)).expect("suite CI ids name streams");
    let actor = Actor::new("cmdb").expect("valid actor");
    let registered = CiEvent::Registered(CiRegistered {
        id: ci(id),
        ci_type: CiType::new(ci_type).expect("valid CI type"),
        name: format!("{id} \u{2603}"),
        description: format!("the {ci_type} {id}"),
        status: status.to_owned(),
        attributes: [(
            AttributeName::new("site").expect("valid name"),
            AttributeValue::from("hq"),
        )]
        .into_iter()
        .collect(),
        change: None,
    });
    let events = std::iter::once(registered).chain(edges.iter().map(|(relationship, target)| {
        CiEvent::RelationshipAdded {
            relationship: relationship.clone(),
            target: ci(target),
            change: None,
        }
    }));
    for (n, event) in (1u32..).zip(events) {
        let at = DateTime::UNIX_EPOCH + TimeDelta::seconds(n.into()) + TimeDelta::nanoseconds(7);
        row.apply(&event, Version::new(n.into()), Stamp::new(Some(&actor), at));
    }
    row
}

/// The row of a CI never registered, with `edges` (relationships recorded before a
/// registration).
pub fn unregistered_row(id: &str, edges: &[(Relationship, &str)]) -> CiRow {
    let mut row = CiRow::new(ci(id)).expect("suite CI ids name streams");
    for (n, (relationship, target)) in (1u64..).zip(edges) {
        let event = CiEvent::RelationshipAdded {
            relationship: relationship.clone(),
            target: ci(target),
            change: None,
        };
        row.apply(
            &event,
            Version::new(n),
            Stamp::new(None, DateTime::UNIX_EPOCH),
        );
    }
    row
}

pub(super) fn name(text: &str) -> CheckpointName {
    CheckpointName::new(text).expect("suite names are valid")
}

pub(super) fn seq(n: u64) -> Position {
    Position::from_sequence(n)
}

pub(super) fn walked(found: &[(CiId, u32)]) -> Vec<(&str, u32)> {
    found.iter().map(|(id, d)| (id.as_str(), *d)).collect()
}

pub(super) const RUNS_ON: Relationship = Relationship::RUNS_ON;
pub(super) const DEPENDS_ON: Relationship = Relationship::DEPENDS_ON;
pub(super) const PART_OF: Relationship = Relationship::PART_OF;

/// Rows applied are read back exactly, one by one and several at once (in the order asked,
/// `None` where there is none), with the checkpoint, the count, the CIs of a type and the
/// edges pointing at a CI.
pub async fn ci_graph_apply_and_read<H: CiGraphHarness>(h: &H) {
    let db = h.create().await;
    let graph = h.graph(&db, &name("ci_graph.read"));
    assert_eq!(graph.checkpoint().await.expect("reads"), None);
    assert_eq!(graph.count().await.expect("counts"), 0);
    let rows = vec![
        ci_row(
            "app",
            "application",
            "live",
            &[(RUNS_ON, "srv"), (DEPENDS_ON, "db")],
        ),
        ci_row("srv", "server", "live", &[]),
        ci_row("db", "application", "live", &[(RUNS_ON, "srv")]),
        unregistered_row("early", &[(RUNS_ON, "srv")]),
    ];
    graph
        .apply(rows.clone(), Position::new(0, 9))
        .await
        .expect("applies");
    assert_eq!(
        graph.checkpoint().await.expect("reads"),
        Some(Position::new(0, 9))
    );
    assert_eq!(graph.count().await.expect("counts"), 4);
    for row in &rows {
        assert_eq!(
            graph.ci(row.id()).await.expect("reads").as_ref(),
            Some(row),
            "{}",
            row.id()
        );
    }
    assert_eq!(graph.ci(&ci("nothing")).await.expect("reads"), None);
    let ids = [ci("db"), ci("nothing"), ci("app"), ci("db")];
    let read = graph.cis(&ids).await.expect("reads");
    let expected = vec![
        Some(rows[2].clone()),
        None,
        Some(rows[0].clone()),
        Some(rows[2].clone()),
    ];
    assert_eq!(read, expected, "in the order asked");
    assert_eq!(
        graph
            .cis_of_type(&CiType::new("application").expect("valid"))
            .await
            .expect("reads"),
        [ci("app"), ci("db")]
    );
    assert!(
        graph
            .cis_of_type(&CiType::new("switch").expect("valid"))
            .await
            .expect("reads")
            .is_empty()
    );
    assert_eq!(
        graph.relationships_to(&ci("srv")).await.expect("reads"),
        [
            (RUNS_ON, ci("app")),
            (RUNS_ON, ci("db")),
            (RUNS_ON, ci("early"))
        ],
        "from every row, registered or not"
    );
    h.teardown(db).await;
}

/// Applying a batch again changes nothing; a batch's rows are seen together with their
/// checkpoint or not at all, while another task writes batch after batch.
pub async fn ci_graph_apply_is_idempotent_and_atomic<H: CiGraphHarness>(h: &H) {
    const ROWS: usize = 12;
    const BATCHES: u64 = 30;
    let db = h.create().await;
    let graph = Arc::new(h.graph(&db, &name("ci_graph.atomic")));
    let ids: Vec<CiId> = (0..ROWS).map(|i| ci(&format!("n{i:02}"))).collect();
    // Batch k: every row in status `s<k>`, each pointing at the next.
    let batch = |k: u64| -> Vec<CiRow> {
        (0..ROWS)
            .map(|i| {
                let next = format!("n{:02}", (i + 1) % ROWS);
                ci_row(
                    &format!("n{i:02}"),
                    "server",
                    &format!("s{k}"),
                    &[(RUNS_ON, &next)],
                )
            })
            .collect()
    };
    graph.apply(batch(1), seq(1)).await.expect("applies");
    let once = graph.cis(&ids).await.expect("reads");
    graph.apply(batch(1), seq(1)).await.expect("applies again");
    assert_eq!(graph.cis(&ids).await.expect("reads"), once, "idempotent");
    assert_eq!(graph.count().await.expect("counts"), ROWS as u64);
    let writer = {
        let graph = Arc::clone(&graph);
        tokio::spawn(async move {
            for k in 2..=BATCHES {
                graph.apply(batch(k), seq(k)).await.expect("applies");
                assert_eq!(graph.checkpoint().await.expect("reads"), Some(seq(k)));
            }
        })
    };
    let mut seen = 0;
    loop {
        let done = writer.is_finished();
        let before = graph.checkpoint().await.expect("reads");
        let rows = graph.cis(&ids).await.expect("reads");
        let after = graph.checkpoint().await.expect("reads");
        let statuses: Vec<Option<String>> = rows
            .iter()
            .map(|r| r.as_ref().and_then(|r| r.status().map(str::to_owned)))
            .collect();
        let first = statuses[0].clone().expect("every row is present");
        assert!(
            statuses.iter().all(|s| s.as_deref() == Some(&first)),
            "one batch: {statuses:?}"
        );
        let k: u64 = first[1..].parse().expect("a batch number");
        let (before, after) = (
            before.map_or(0, Position::sequence),
            after.map_or(0, Position::sequence),
        );
        assert!(
            before <= k && k <= after,
            "batch {k} seen between {before} and {after}"
        );
        seen += 1;
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    writer.await.expect("the writer finished");
    assert!(seen > 0);
    h.teardown(db).await;
}

/// A replaced row's edges are replaced: a relationship it no longer holds is gone from
/// `relationships_to` and from walks; within a batch the later row of a CI wins.
pub async fn ci_graph_edges_replaced_with_their_row<H: CiGraphHarness>(h: &H) {
    let db = h.create().await;
    let graph = h.graph(&db, &name("ci_graph.replace"));
    let up = GraphWalk::new()
        .follow(RUNS_ON, Direction::Upstream)
        .follow(DEPENDS_ON, Direction::Upstream);
    graph
        .apply(
            vec![
                ci_row(
                    "app",
                    "application",
                    "live",
                    &[(RUNS_ON, "srv-a"), (DEPENDS_ON, "db")],
                ),
                ci_row("srv-a", "server", "live", &[]),
                ci_row("srv-b", "server", "live", &[]),
                ci_row("db", "database", "live", &[]),
            ],
            seq(1),
        )
        .await
        .expect("applies");
    assert_eq!(
        walked(&graph.walk(&ci("srv-a"), &up).await.expect("walks")),
        [("app", 1)]
    );
    graph
        .apply(
            vec![
                ci_row("app", "application", "live", &[(RUNS_ON, "srv-a")]),
                ci_row(
                    "app",
                    "application",
                    "live",
                    &[(RUNS_ON, "srv-b"), (DEPENDS_ON, "db")],
                ),
            ],
            seq(2),
        )
        .await
        .expect("applies");
    assert!(
        graph
            .relationships_to(&ci("srv-a"))
            .await
            .expect("reads")
            .is_empty()
    );
    assert!(
        graph
            .walk(&ci("srv-a"), &up)
            .await
            .expect("walks")
            .is_empty()
    );
    assert_eq!(
        walked(&graph.walk(&ci("srv-b"), &up).await.expect("walks")),
        [("app", 1)]
    );
    assert_eq!(
        graph.relationships_to(&ci("db")).await.expect("reads"),
        [(DEPENDS_ON, ci("app"))]
    );
    let app = graph.ci(&ci("app")).await.expect("reads").expect("present");
    assert_eq!(app.relationships().len(), 2, "the later row of the batch");
    h.teardown(db).await;
}

fn cis_only() -> LogFilter {
    LogFilter::all().category(Category::new("configuration_item").expect("valid category"))
}

fn cis_and_changes() -> LogFilter {
    cis_only().category(Category::new("change").expect("valid category"))
}

fn assert_refused(result: Result<Option<Position>, StoreError>, kept: &LogFilter) {
    match result {
        Err(StoreError::CheckpointFilter(mismatch)) => {
            assert_eq!(mismatch.name, "ci_graph.filtered");
            assert_eq!(mismatch.kept, kept.canonical());
        }
        other => panic!("expected the checkpoint refused for another filter, got {other:?}"),
    }
}

/// A graph's checkpoint is bound to its indexer's filter; another filter is refused; clearing
/// removes the binding; a graph of another name is bound on its own.
pub async fn ci_graph_bound_to_its_filter<H: CiGraphHarness>(h: &H) {
    let db = h.create().await;
    let graph = h.graph(&db, &name("ci_graph.filtered"));
    let (narrow, wide) = (cis_only(), cis_and_changes());
    assert_eq!(graph.checkpoint_for(&narrow).await.expect("binds"), None);
    graph
        .apply(vec![ci_row("srv", "server", "live", &[])], seq(4))
        .await
        .expect("applies");
    assert_eq!(
        graph.checkpoint_for(&narrow).await.expect("loads"),
        Some(seq(4))
    );
    assert_refused(graph.checkpoint_for(&wide).await, &narrow);
    let other = h.graph(&db, &name("ci_graph.other"));
    assert_eq!(other.checkpoint_for(&wide).await.expect("binds"), None);
    graph.clear().await.expect("clears");
    assert_eq!(graph.checkpoint_for(&wide).await.expect("binds anew"), None);
    assert_refused(graph.checkpoint_for(&narrow).await, &wide);
    h.teardown(db).await;
}

/// Clearing removes a graph's rows, edges and checkpoint and leaves graphs of other names
/// (their rows, edges and walks) alone.
pub async fn ci_graph_clear_leaves_other_names<H: CiGraphHarness>(h: &H) {
    let db = h.create().await;
    let first = h.graph(&db, &name("ci_graph.first"));
    let second = h.graph(&db, &name("ci_graph.second"));
    let up = GraphWalk::new().follow(RUNS_ON, Direction::Upstream);
    first
        .apply(
            vec![
                ci_row("app", "application", "live", &[(RUNS_ON, "srv")]),
                ci_row("srv", "server", "live", &[]),
            ],
            seq(3),
        )
        .await
        .expect("applies");
    second
        .apply(
            vec![
                ci_row("db", "database", "live", &[(RUNS_ON, "srv")]),
                ci_row("srv", "server", "live", &[]),
            ],
            seq(5),
        )
        .await
        .expect("applies");
    assert_eq!(
        walked(&first.walk(&ci("srv"), &up).await.expect("walks")),
        [("app", 1)]
    );
    assert_eq!(
        walked(&second.walk(&ci("srv"), &up).await.expect("walks")),
        [("db", 1)]
    );
    first.clear().await.expect("clears");
    assert_eq!(first.checkpoint().await.expect("reads"), None);
    assert_eq!(first.count().await.expect("counts"), 0);
    assert!(first.ci(&ci("app")).await.expect("reads").is_none());
    assert!(
        first
            .relationships_to(&ci("srv"))
            .await
            .expect("reads")
            .is_empty()
    );
    assert!(first.walk(&ci("srv"), &up).await.expect("walks").is_empty());
    assert_eq!(second.checkpoint().await.expect("reads"), Some(seq(5)));
    assert_eq!(second.count().await.expect("counts"), 2);
    assert_eq!(
        walked(&second.walk(&ci("srv"), &up).await.expect("walks")),
        [("db", 1)]
    );
    h.teardown(db).await;
}

/// What was applied outlives the handle: rows, edges and checkpoint are there after a
/// reopen (durable backends only).
pub async fn ci_graph_survives_reopen<H: CiGraphHarness>(h: &H) {
    let db = h.create().await;
    if !h.reopens() {
        h.teardown(db).await;
        return;
    }
    let rows = vec![
        ci_row("app", "application", "live", &[(RUNS_ON, "srv")]),
        ci_row("srv", "server", "live", &[]),
    ];
    let graph = h.graph(&db, &name("ci_graph.durable"));
    graph.apply(rows.clone(), seq(8)).await.expect("applies");
    drop(graph);
    let db = h.reopen(db).await;
    let graph = h.graph(&db, &name("ci_graph.durable"));
    assert_eq!(graph.checkpoint().await.expect("reads"), Some(seq(8)));
    let read = graph.cis(&[ci("app"), ci("srv")]).await.expect("reads");
    assert_eq!(read, rows.into_iter().map(Some).collect::<Vec<_>>());
    let up = GraphWalk::new().follow(RUNS_ON, Direction::Upstream);
    assert_eq!(
        walked(&graph.walk(&ci("srv"), &up).await.expect("walks")),
        [("app", 1)]
    );
    drop(graph);
    h.teardown(db).await;
}

/// Expands to one `#[test]` per case of the configuration graph suite for the
/// [`CiGraphHarness`] value given.
#[macro_export]
macro_rules! ci_graph_suite {
    ($harness:expr) => {
        $crate::ci_graph_suite!(@cases $harness;
            ci_graph_apply_and_read,
            ci_graph_apply_is_idempotent_and_atomic,
            ci_graph_edges_replaced_with_their_row,
            ci_graph_walk_terminates_on_cycles,
            ci_graph_walk_follows_types_ways_and_depth,
            ci_graph_bound_to_its_filter,
            ci_graph_clear_leaves_other_names,
            ci_graph_survives_reopen,
            ci_graph_model_test
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::run_ci_graph_case($harness, |h| async move {
                    $crate::testkit::ci_graph::$case(&h).await;
                });
            }
        )*
    };
}
