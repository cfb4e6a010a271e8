//! The configuration graph model test: random graphs (cycles, self-loops, unregistered and
//! retired CIs, rows replaced by later batches) and random walks give the same answers on
//! the graph under test as a brute-force breadth-first search over the rows last applied.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use smsys_core::Position;
use smsys_core::records::{CiGraphStore, CiId, CiRow, Direction, GraphWalk, Relationship};

use super::ci_graph::{CiGraphHarness, ci, ci_row, unregistered_row};
use crate::CheckpointName;

const NODES: usize = 8;
const RELATIONSHIPS: [Relationship; 3] = [
    Relationship::DEPENDS_ON,
    Relationship::RUNS_ON,
    Relationship::CONNECTS_TO,
];
const RETIRED: &str = "retired";

/// One CI of a generated graph: 0 no row, 1 an unregistered row, 2 live, 3 retired; and its
/// edges as (relationship, target) indexes.
type NodeSpec = (u8, Vec<(usize, usize)>);

fn graph_spec() -> impl Strategy<Value = Vec<NodeSpec>> {
    let node = (
        prop_oneof![1 => Just(0u8), 1 => Just(1u8), 5 => Just(2u8), 2 => Just(3u8)],
        proptest::collection::vec((0..RELATIONSHIPS.len(), 0..NODES), 0..4),
    );
    proptest::collection::vec(node, NODES)
}

fn rows_of(spec: &[NodeSpec]) -> Vec<CiRow> {
    spec.iter()
        .enumerate()
        .filter_map(|(i, (kind, edges))| {
            let id = format!("c{i}");
            let edges: Vec<(Relationship, String)> = edges
                .iter()
                .map(|(r, t)| (RELATIONSHIPS[*r].clone(), format!("c{t}")))
                .collect();
            let edges: Vec<(Relationship, &str)> =
                edges.iter().map(|(r, t)| (r.clone(), t.as_str())).collect();
            match kind {
                0 => None,
                1 => Some(unregistered_row(&id, &edges)),
                2 => Some(ci_row(&id, "node", "live", &edges)),
                _ => Some(ci_row(&id, "node", RETIRED, &edges)),
            }
        })
        .collect()
}

fn walk_spec() -> impl Strategy<Value = (usize, GraphWalk)> {
    let direction = proptest::option::of(prop_oneof![
        Just(Direction::Upstream),
        Just(Direction::Downstream),
        Just(Direction::Both),
    ]);
    (
        0..NODES + 1,
        proptest::collection::vec(direction, RELATIONSHIPS.len()),
        proptest::option::of(0u32..4),
        any::<bool>(),
    )
        .prop_map(|(origin, ways, max_depth, skip)| {
            let follow = RELATIONSHIPS
                .iter()
                .zip(ways)
                .filter_map(|(r, way)| way.map(|w| (r.clone(), w)))
                .collect();
            let walk = GraphWalk {
                follow,
                max_depth,
                skip_status: skip.then(|| RETIRED.to_owned()),
            };
            (origin, walk)
        })
}

/// The walk by brute force: each level scans every edge of every row.
fn model_walk(rows: &BTreeMap<CiId, CiRow>, origin: &CiId, walk: &GraphWalk) -> Vec<(CiId, u32)> {
    let reachable = |id: &CiId| {
        rows.get(id).is_some_and(|row| {
            row.is_registered() && !(walk.skip_status.is_some() && row.status() == Some(RETIRED))
        })
    };
    let mut seen: BTreeSet<CiId> = BTreeSet::from([origin.clone()]);
    let mut frontier: BTreeSet<CiId> = BTreeSet::new();
    if rows.get(origin).is_some_and(CiRow::is_registered) {
        frontier.insert(origin.clone());
    }
    let mut found = Vec::new();
    let mut depth = 0;
    while !frontier.is_empty() && walk.max_depth.is_none_or(|max| depth < max) {
        depth += 1;
        let mut next = BTreeSet::new();
        for (source, row) in rows {
            for (relationship, target) in row.relationships() {
                let Some(way) = walk.follow.get(relationship) else {
                    continue;
                };
                if way.upstream() && frontier.contains(target) && reachable(source) {
                    next.insert(source.clone());
                }
                if way.downstream() && frontier.contains(source) && reachable(target) {
                    next.insert(target.clone());
                }
            }
        }
        next.retain(|id| !seen.contains(id));
        seen.extend(next.iter().cloned());
        found.extend(next.iter().map(|id| (id.clone(), depth)));
        frontier = next;
    }
    found
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

async fn run_case<H: CiGraphHarness>(
    h: &H,
    stale: Vec<NodeSpec>,
    last: Vec<NodeSpec>,
    chunks: usize,
    walks: Vec<(usize, GraphWalk)>,
) -> Result<(), TestCaseError> {
    let db = h.create().await;
    let graph = h.graph(&db, &CheckpointName::new("ci_graph.model").map_err(fail)?);
    let mut model: BTreeMap<CiId, CiRow> = BTreeMap::new();
    let mut batches = vec![rows_of(&stale)];
    let last = rows_of(&last);
    let size = last.len().div_ceil(chunks).max(1);
    batches.extend(last.chunks(size).map(<[CiRow]>::to_vec));
    for (n, batch) in (1u64..).zip(batches) {
        for row in &batch {
            model.insert(row.id().clone(), row.clone());
        }
        graph
            .apply(batch, Position::from_sequence(n))
            .await
            .map_err(fail)?;
    }
    let ids: Vec<CiId> = (0..=NODES).map(|i| ci(&format!("c{i}"))).collect();
    let read = graph.cis(&ids).await.map_err(fail)?;
    let expected: Vec<Option<CiRow>> = ids.iter().map(|id| model.get(id).cloned()).collect();
    prop_assert_eq!(read, expected);
    prop_assert_eq!(graph.count().await.map_err(fail)?, model.len() as u64);
    for id in &ids {
        let mut incoming: Vec<(Relationship, CiId)> = model
            .values()
            .flat_map(|row| {
                row.relationships()
                    .iter()
                    .filter(|(_, target)| target == id)
                    .map(|(r, _)| (r.clone(), row.id().clone()))
            })
            .collect();
        incoming.sort();
        prop_assert_eq!(graph.relationships_to(id).await.map_err(fail)?, incoming);
    }
    for (origin, walk) in walks {
        let origin = ci(&format!("c{origin}"));
        let found = graph.walk(&origin, &walk).await.map_err(fail)?;
        prop_assert_eq!(
            found,
            model_walk(&model, &origin, &walk),
            "walk {:?} from {}",
            walk,
            origin
        );
    }
    h.teardown(db).await;
    Ok(())
}

/// Random graphs with cycles, rows replaced by later batches, and random walks (relationship
/// types, ways, depth bounds, skipped status): the graph under test answers rows, counts,
/// incoming edges and walks exactly as a brute-force model of the rows last applied.
pub async fn ci_graph_model_test<H: CiGraphHarness>(h: &H) {
    let cases = std::env::var("SMSYS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config {
            cases,
            ..Config::default()
        });
        let strategy = (
            graph_spec(),
            graph_spec(),
            1usize..4,
            proptest::collection::vec(walk_spec(), 1..8),
        );
        let result = runner.run(&strategy, |(stale, last, chunks, walks)| {
            handle.block_on(run_case(h, stale, last, chunks, walks))
        });
        if let Err(failure) = result {
            panic!("the graph and the brute-force walk disagree: {failure}");
        }
    });
}
