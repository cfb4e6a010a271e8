//! Walk cases of the configuration graph suite: cycles, relationship types, ways, depth
//! bounds, skipped and unregistered CIs.

use smsys_core::records::{CiGraphStore, Direction, GraphWalk};

use super::ci_graph::{
    CiGraphHarness, DEPENDS_ON, PART_OF, RUNS_ON, ci, ci_row, name, seq, unregistered_row, walked,
};

/// Walks terminate on cycles and give each CI once, at its shortest distance.
pub async fn ci_graph_walk_terminates_on_cycles<H: CiGraphHarness>(h: &H) {
    let db = h.create().await;
    let graph = h.graph(&db, &name("ci_graph.cycle"));
    // a -> b -> c -> a, c -> d, d -> d, b -> d, e -> a (all depends_on).
    let rows = vec![
        ci_row("a", "node", "live", &[(DEPENDS_ON, "b")]),
        ci_row("b", "node", "live", &[(DEPENDS_ON, "c"), (DEPENDS_ON, "d")]),
        ci_row("c", "node", "live", &[(DEPENDS_ON, "a"), (DEPENDS_ON, "d")]),
        ci_row("d", "node", "live", &[(DEPENDS_ON, "d")]),
        ci_row("e", "node", "live", &[(DEPENDS_ON, "a")]),
    ];
    graph.apply(rows, seq(1)).await.expect("applies");
    let down = GraphWalk::new().follow(DEPENDS_ON, Direction::Downstream);
    assert_eq!(
        walked(&graph.walk(&ci("a"), &down).await.expect("walks")),
        [("b", 1), ("c", 2), ("d", 2)]
    );
    let up = GraphWalk::new().follow(DEPENDS_ON, Direction::Upstream);
    assert_eq!(
        walked(&graph.walk(&ci("d"), &up).await.expect("walks")),
        [("b", 1), ("c", 1), ("a", 2), ("e", 3)]
    );
    assert!(graph.walk(&ci("e"), &up).await.expect("walks").is_empty());
    let both = GraphWalk::new().follow(DEPENDS_ON, Direction::Both);
    assert_eq!(
        walked(&graph.walk(&ci("e"), &both).await.expect("walks")),
        [("a", 1), ("b", 2), ("c", 2), ("d", 3)]
    );
    h.teardown(db).await;
}

/// Walks follow only the relationship types given, each only the way given, no deeper than
/// the bound, never into an unregistered or skipped CI (a skipped origin still walks); an
/// origin without a registered row reaches nothing.
pub async fn ci_graph_walk_follows_types_ways_and_depth<H: CiGraphHarness>(h: &H) {
    let db = h.create().await;
    let graph = h.graph(&db, &name("ci_graph.walk"));
    let rows = vec![
        ci_row("svc", "service", "live", &[(DEPENDS_ON, "app")]),
        ci_row(
            "app",
            "application",
            "live",
            &[(RUNS_ON, "srv"), (DEPENDS_ON, "ghost")],
        ),
        ci_row("old", "application", "retired", &[(RUNS_ON, "srv")]),
        ci_row("web", "application", "live", &[(DEPENDS_ON, "old")]),
        ci_row("srv", "server", "retired", &[(PART_OF, "rack")]),
        ci_row("rack", "rack", "live", &[]),
        unregistered_row("early", &[(RUNS_ON, "srv")]),
    ];
    graph.apply(rows, seq(1)).await.expect("applies");
    let impact = GraphWalk::new()
        .follow(RUNS_ON, Direction::Upstream)
        .follow(DEPENDS_ON, Direction::Upstream);
    assert_eq!(
        walked(&graph.walk(&ci("srv"), &impact).await.expect("walks")),
        [("app", 1), ("old", 1), ("svc", 2), ("web", 2)],
        "never the unregistered `early`"
    );
    assert_eq!(
        walked(
            &graph
                .walk(&ci("srv"), &impact.clone().skip_status("retired"))
                .await
                .expect("walks")
        ),
        [("app", 1), ("svc", 2)],
        "a skipped origin walks; a skipped CI is neither reached nor passed through"
    );
    assert_eq!(
        walked(
            &graph
                .walk(&ci("srv"), &impact.clone().max_depth(1))
                .await
                .expect("walks")
        ),
        [("app", 1), ("old", 1)]
    );
    assert!(
        graph
            .walk(&ci("srv"), &impact.clone().max_depth(0))
            .await
            .expect("walks")
            .is_empty()
    );
    let runs_only = GraphWalk::new().follow(RUNS_ON, Direction::Upstream);
    assert_eq!(
        walked(&graph.walk(&ci("srv"), &runs_only).await.expect("walks")),
        [("app", 1), ("old", 1)]
    );
    let wrong_way = GraphWalk::new().follow(RUNS_ON, Direction::Downstream);
    assert!(
        graph
            .walk(&ci("srv"), &wrong_way)
            .await
            .expect("walks")
            .is_empty()
    );
    let down = GraphWalk::new()
        .follow(RUNS_ON, Direction::Downstream)
        .follow(DEPENDS_ON, Direction::Downstream)
        .follow(PART_OF, Direction::Downstream);
    assert_eq!(
        walked(&graph.walk(&ci("svc"), &down).await.expect("walks")),
        [("app", 1), ("srv", 2), ("rack", 3)],
        "never the unregistered target `ghost`"
    );
    assert!(
        graph
            .walk(&ci("svc"), &GraphWalk::new())
            .await
            .expect("walks")
            .is_empty()
    );
    assert!(
        graph
            .walk(&ci("ghost"), &down)
            .await
            .expect("walks")
            .is_empty()
    );
    assert!(
        graph
            .walk(&ci("early"), &down)
            .await
            .expect("walks")
            .is_empty()
    );
    h.teardown(db).await;
}
