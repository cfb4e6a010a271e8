//! The configuration graph (8.2.6): CI events appended to the in-memory store, folded by
//! `CmdbGraph` through the projection runner in small batches; impact analysis on chains,
//! diamonds, cycles and both-way relationships; "as of" on a hand-made history; a property
//! test against a naive replay and a naive fixpoint.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::StreamExt;
use proptest::prelude::*;
use smsys_core::records::configuration_item::CiRegistered;
use smsys_core::records::{
    AttributeName, AttributeValue, CiEvent, CiId, CiType, ConfigurationItem, Relationship,
};
use smsys_core::{
    Actor, DomainEvent, EventData, EventId, EventSourced, EventStore, ExpectedVersion, LogFilter,
    Metadata, Position, ProjectionRunner, RecordedEvent, Stamp,
};
use smsys_processes::cmdb_graph::{AffectedCi, CmdbGraph, ImpactRules, Propagation};
use smsys_store::MemoryEventStore;

// ---- given: a CMDB on the in-memory store ----

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().unwrap()
}

fn ci(text: &str) -> CiId {
    text.parse().unwrap()
}

struct Cmdb {
    store: Arc<MemoryEventStore>,
    next: u128,
}

impl Cmdb {
    fn new() -> Self {
        Self {
            store: Arc::new(MemoryEventStore::new()),
            next: 0,
        }
    }

    async fn record_at(&mut self, id: &str, event: CiEvent, at: DateTime<Utc>) -> Position {
        self.next += 1;
        let meta = Metadata::new(
            EventId::from_uuid(uuid::Uuid::from_u128(self.next)).unwrap(),
            Actor::new(format!("agent:{}", self.next % 3)).unwrap(),
            at,
        );
        let data =
            EventData::new(event.event_type(), 1, event.to_payload().unwrap(), meta).unwrap();
        let stream = ConfigurationItem::stream(&ci(id)).unwrap();
        let appended = self
            .store
            .append(&stream, ExpectedVersion::Any, vec![data])
            .await
            .unwrap();
        *appended.positions.last().unwrap()
    }

    async fn record(&mut self, id: &str, event: CiEvent) -> Position {
        let at = t0() + TimeDelta::minutes(i64::try_from(self.next).unwrap());
        self.record_at(id, event, at).await
    }

    async fn register(&mut self, id: &str, ci_type: &str) -> Position {
        self.record(id, registered(id, ci_type, "live")).await
    }

    async fn link(&mut self, source: &str, relationship: Relationship, target: &str) -> Position {
        self.record(
            source,
            CiEvent::RelationshipAdded {
                relationship,
                target: ci(target),
                change: None,
            },
        )
        .await
    }

    async fn graph(&self, interval: usize) -> CmdbGraph {
        let graph = CmdbGraph::new().with_checkpoint_interval(interval);
        ProjectionRunner::new(self.store.clone())
            .with_batch_size(3)
            .catch_up(&graph)
            .await
            .unwrap();
        graph
    }

    async fn events(&self) -> Vec<RecordedEvent> {
        self.store
            .read_all(Position::START, LogFilter::all())
            .map(Result::unwrap)
            .collect()
            .await
    }
}

fn registered(id: &str, ci_type: &str, status: &str) -> CiEvent {
    CiEvent::Registered(CiRegistered {
        id: ci(id),
        ci_type: CiType::new(ci_type).unwrap(),
        name: id.to_owned(),
        description: String::new(),
        status: status.to_owned(),
        attributes: BTreeMap::new(),
        change: None,
    })
}

fn status(from: &str, to: &str) -> CiEvent {
    CiEvent::StatusChanged {
        from: from.into(),
        to: to.into(),
        reason: String::new(),
        change: None,
    }
}

fn distances(graph: &CmdbGraph, id: &str) -> Vec<(String, u32)> {
    graph
        .impact(&ci(id))
        .affected()
        .iter()
        .map(|a| (a.id.to_string(), a.distance))
        .collect()
}

fn pairs(expected: &[(&str, u32)]) -> Vec<(String, u32)> {
    let mut v: Vec<_> = expected
        .iter()
        .map(|(s, d)| ((*s).to_owned(), *d))
        .collect();
    v.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    v
}

// ---- impact ----

#[tokio::test]
async fn impact_follows_a_chain_upstream_to_its_service() {
    let mut cmdb = Cmdb::new();
    for (id, t) in [("disk", "disk"), ("srv", "server"), ("db", "database")] {
        cmdb.register(id, t).await;
    }
    cmdb.register("app", "application").await;
    cmdb.register("email", "service").await;
    cmdb.link("disk", Relationship::PART_OF, "srv").await;
    cmdb.link("db", Relationship::RUNS_ON, "srv").await;
    cmdb.link("app", Relationship::DEPENDS_ON, "db").await;
    cmdb.link("email", Relationship::DEPENDS_ON, "app").await;
    let graph = cmdb.graph(4).await;
    assert_eq!(graph.len(), 5);
    assert_eq!(graph.relationship_count(), 4);
    assert_eq!(
        distances(&graph, "srv"),
        pairs(&[("db", 1), ("disk", 1), ("app", 2), ("email", 3)])
    );
    assert_eq!(graph.impact(&ci("srv")).services(), [ci("email")]);
    assert_eq!(
        distances(&graph, "email"),
        pairs(&[]),
        "nothing needs the service"
    );
    assert!(graph.impact(&ci("nowhere")).is_empty());
    let path = graph.path(&ci("email"), &ci("srv")).unwrap();
    assert_eq!(
        path,
        [
            (ci("app"), Relationship::DEPENDS_ON),
            (ci("db"), Relationship::DEPENDS_ON),
            (ci("srv"), Relationship::RUNS_ON),
        ]
    );
    assert_eq!(
        graph.path(&ci("srv"), &ci("email")),
        None,
        "not the other way"
    );
    assert_eq!(graph.path(&ci("srv"), &ci("srv")), Some(Vec::new()));
}

#[tokio::test]
async fn impact_of_a_diamond_counts_each_ci_once_at_its_shortest_distance() {
    let mut cmdb = Cmdb::new();
    for id in ["base", "left", "right", "top", "far"] {
        cmdb.register(id, "application").await;
    }
    cmdb.link("left", Relationship::DEPENDS_ON, "base").await;
    cmdb.link("right", Relationship::DEPENDS_ON, "base").await;
    cmdb.link("top", Relationship::DEPENDS_ON, "left").await;
    cmdb.link("top", Relationship::DEPENDS_ON, "right").await;
    cmdb.link("far", Relationship::DEPENDS_ON, "top").await;
    cmdb.link("far", Relationship::DEPENDS_ON, "base").await;
    let graph = cmdb.graph(2).await;
    assert_eq!(
        distances(&graph, "base"),
        pairs(&[("far", 1), ("left", 1), ("right", 1), ("top", 2)])
    );
    assert_eq!(
        graph.path(&ci("far"), &ci("base")),
        Some(vec![(ci("base"), Relationship::DEPENDS_ON)]),
        "the shortcut"
    );
}

#[tokio::test]
async fn impact_on_a_cycle_terminates_with_exact_distances() {
    let mut cmdb = Cmdb::new();
    for id in ["a", "b", "c", "d"] {
        cmdb.register(id, "application").await;
    }
    // a -> b -> c -> a, and d -> c.
    cmdb.link("a", Relationship::DEPENDS_ON, "b").await;
    cmdb.link("b", Relationship::DEPENDS_ON, "c").await;
    cmdb.link("c", Relationship::DEPENDS_ON, "a").await;
    cmdb.link("d", Relationship::DEPENDS_ON, "c").await;
    cmdb.link("a", Relationship::DEPENDS_ON, "a").await;
    let graph = cmdb.graph(3).await;
    assert_eq!(
        distances(&graph, "c"),
        pairs(&[("b", 1), ("d", 1), ("a", 2)]),
        "c is not its own dependent"
    );
    assert_eq!(distances(&graph, "d"), pairs(&[]));
    assert_eq!(graph.path(&ci("c"), &ci("a")).map(|p| p.len()), Some(1));
}

#[tokio::test]
async fn connects_to_carries_impact_from_its_target_and_rules_can_change_it() {
    let mut cmdb = Cmdb::new();
    for id in ["sw-1", "sw-2", "fw"] {
        cmdb.register(id, "network").await;
    }
    cmdb.link("sw-1", Relationship::CONNECTS_TO, "sw-2").await;
    cmdb.link("fw", Relationship::DEPENDS_ON, "sw-2").await;
    let graph = cmdb.graph(100).await;
    // By default the switch a link points to carries impact to what links to it, not back.
    assert_eq!(distances(&graph, "sw-1"), pairs(&[]));
    assert_eq!(distances(&graph, "sw-2"), pairs(&[("fw", 1), ("sw-1", 1)]));
    let mut rules = ImpactRules::default();
    rules
        .propagation
        .insert(Relationship::CONNECTS_TO, Propagation::Both);
    let both = graph.impact_with(&ci("sw-1"), &rules);
    let both: Vec<(String, u32)> = both
        .affected()
        .iter()
        .map(|a| (a.id.to_string(), a.distance))
        .collect();
    assert_eq!(both, [("sw-2".to_owned(), 1), ("fw".to_owned(), 2)]);
    assert_eq!(
        graph.path(&ci("fw"), &ci("sw-2")),
        Some(vec![(ci("sw-2"), Relationship::DEPENDS_ON)])
    );
    let json = serde_json::to_string(&rules).unwrap();
    assert_eq!(serde_json::from_str::<ImpactRules>(&json).unwrap(), rules);
    let partial: ImpactRules = serde_json::from_str(r#"{"retired_propagate": true}"#).unwrap();
    assert_eq!(partial.propagation, ImpactRules::default().propagation);
}

#[tokio::test]
async fn retired_cis_stop_impact_unless_asked_and_services_are_named() {
    let mut cmdb = Cmdb::new();
    cmdb.register("srv", "server").await;
    cmdb.register("old-app", "application").await;
    cmdb.register("new-app", "application").await;
    cmdb.register("legacy", "service").await;
    cmdb.register("portal", "service").await;
    cmdb.link("old-app", Relationship::RUNS_ON, "srv").await;
    cmdb.link("new-app", Relationship::RUNS_ON, "srv").await;
    cmdb.link("legacy", Relationship::DEPENDS_ON, "old-app")
        .await;
    cmdb.link("portal", Relationship::DEPENDS_ON, "new-app")
        .await;
    cmdb.record("old-app", status("live", "retired")).await;
    let graph = cmdb.graph(5).await;
    let impact = graph.impact(&ci("srv"));
    assert_eq!(
        distances(&graph, "srv"),
        pairs(&[("new-app", 1), ("portal", 2)])
    );
    assert_eq!(impact.services(), [ci("portal")]);
    assert_eq!(graph.path(&ci("legacy"), &ci("srv")), None);
    let rules = ImpactRules {
        retired_propagate: true,
        ..ImpactRules::default()
    };
    let all = graph.impact_with(&ci("srv"), &rules);
    assert_eq!(all.services(), [ci("legacy"), ci("portal")]);
    assert_eq!(all.distance(&ci("old-app")), Some(1));
    assert_eq!(
        graph.impact(&ci("old-app")).affected(),
        [AffectedCi {
            distance: 1,
            id: ci("legacy")
        }],
        "the retired CI asked about still passes impact on"
    );
    let renamed = ImpactRules {
        service_type: CiType::new("application").unwrap(),
        ..ImpactRules::default()
    };
    assert_eq!(
        graph.impact_with(&ci("srv"), &renamed).services(),
        [ci("new-app")]
    );
}

// ---- as of ----

#[tokio::test]
async fn as_of_shows_the_graph_and_each_ci_as_they_stood() {
    let mut cmdb = Cmdb::new();
    let p1 = cmdb.register("srv", "server").await;
    cmdb.register("app", "application").await;
    let p3 = cmdb.link("app", Relationship::RUNS_ON, "srv").await;
    let ram = AttributeName::new("ram_gb").unwrap();
    let p4 = cmdb
        .record(
            "srv",
            CiEvent::AttributesUpdated {
                set: [(ram.clone(), AttributeValue::from("64"))]
                    .into_iter()
                    .collect(),
                removed: Vec::new(),
                change: None,
            },
        )
        .await;
    cmdb.register("srv-2", "server").await;
    cmdb.record(
        "app",
        CiEvent::RelationshipRemoved {
            relationship: Relationship::RUNS_ON,
            target: ci("srv"),
            change: None,
        },
    )
    .await;
    let p7 = cmdb.link("app", Relationship::RUNS_ON, "srv-2").await;
    cmdb.record("srv", status("live", "retired")).await;
    let graph = cmdb.graph(2).await;
    assert!(graph.checkpoint_count() >= 3);

    let before = graph.as_of(Position::START);
    assert!(before.is_empty() && before.ci(&ci("srv")).is_none());
    let at1 = graph.as_of(p1);
    assert_eq!(at1.len(), 1);
    assert_eq!(at1.ci(&ci("srv")).unwrap().status, "live");
    let at3 = graph.as_of(p3);
    assert_eq!(
        at3.relationships(&ci("app")),
        [(Relationship::RUNS_ON, ci("srv"))]
    );
    assert_eq!(
        at3.relationships_to(&ci("srv")),
        [(Relationship::RUNS_ON, ci("app"))]
    );
    assert_eq!(at3.impact(&ci("srv")).len(), 1);
    assert!(at3.ci(&ci("srv")).unwrap().attributes.is_empty());
    assert_eq!(
        graph.as_of(p4).ci(&ci("srv")).unwrap().attributes.get(&ram),
        Some(&AttributeValue::from("64"))
    );
    let at7 = graph.as_of(p7);
    assert_eq!(at7.position(), p7);
    assert_eq!(
        at7.relationships(&ci("app")),
        [(Relationship::RUNS_ON, ci("srv-2"))]
    );
    assert!(at7.impact(&ci("srv")).is_empty());
    assert_eq!(at7.path(&ci("app"), &ci("srv-2")).map(|p| p.len()), Some(1));
    assert_eq!(graph.ci(&ci("srv")).unwrap().status, "retired");
    assert_eq!(at7.ci(&ci("srv")).unwrap().status, "live");

    let srv = graph.ci_as_of(&ci("srv"), p3).unwrap();
    assert!(srv.attributes().is_empty() && srv.status() == Some("live"));
    assert!(
        graph.ci_as_of(&ci("srv-2"), p4).is_none(),
        "not yet registered"
    );
    let history = graph.history(&ci("srv"));
    assert_eq!(history.len(), 3);
    assert_eq!(history[1].0, p4);
    assert!(matches!(history[2].2, CiEvent::StatusChanged { .. }));
    assert_eq!(graph.history(&ci("app")).len(), 4);

    // Instants: event n occurred at t0 + (n - 1) minutes.
    assert!(graph.as_of_instant(t0() - TimeDelta::minutes(1)).is_none());
    let snapshot = graph.as_of_instant(t0() + TimeDelta::seconds(150)).unwrap();
    assert_eq!(snapshot.position(), p3);
}

#[tokio::test]
async fn as_of_instant_follows_the_log_when_occurred_at_goes_back() {
    let mut cmdb = Cmdb::new();
    let p1 = cmdb
        .record_at("a", registered("a", "server", "live"), t0())
        .await;
    let late = t0() + TimeDelta::hours(2);
    let p2 = cmdb
        .record_at("b", registered("b", "server", "live"), late)
        .await;
    let early = t0() + TimeDelta::hours(1);
    let p3 = cmdb
        .record_at("c", registered("c", "server", "live"), early)
        .await;
    let graph = cmdb.graph(1).await;
    let at = |minutes| {
        graph
            .as_of_instant(t0() + TimeDelta::minutes(minutes))
            .unwrap()
    };
    assert_eq!(at(30).position(), p1);
    assert_eq!(
        at(90).position(),
        p3,
        "c occurred before, b is recorded before c"
    );
    assert_eq!(at(90).len(), 3);
    assert_eq!(at(150).position(), p3);
    assert!(p2 < p3);
}

#[tokio::test]
async fn a_batch_delivered_again_changes_nothing() {
    use smsys_core::Projection;
    let mut cmdb = Cmdb::new();
    cmdb.register("srv", "server").await;
    cmdb.register("app", "application").await;
    cmdb.link("app", Relationship::RUNS_ON, "srv").await;
    let graph = cmdb.graph(1).await;
    let events = cmdb.events().await;
    graph
        .apply(&events, events.last().unwrap().position)
        .await
        .unwrap();
    assert_eq!(graph.event_count(), 3);
    assert_eq!(graph.history(&ci("app")).len(), 2);
    assert_eq!(graph.relationship_count(), 1);
}

#[path = "cmdb_graph/property.rs"]
mod property;
