//! The configuration graph in the store's tables agrees with the one in memory: random CI
//! histories (events before registration, re-registration, relationships to ids never
//! registered, added and removed again, cycles, retirements) recorded in a SQLite store, folded
//! by `CmdbGraph` and by `CiGraphIndexer` into the store's own tables (in random batches, a
//! batch delivered again); every CI's row equals the in-memory node, and the store's `walk`
//! under `ImpactRules::walk` equals `CmdbGraph::impact` (services included) from every CI.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use smsys::core::records::configuration_item::CiRegistered;
use smsys::core::records::{
    AttributeName, AttributeValue, CiEvent, CiGraphStore, CiId, CiType, ConfigurationItem,
    Relationship,
};
use smsys::core::{
    Actor, DomainEvent, EventData, EventId, EventStore, ExpectedVersion, Metadata, Projection,
    ProjectionRunner,
};
use smsys::processes::cmdb_graph::{CiGraphIndexer, Propagation};
use smsys::processes::{CmdbGraph, ImpactRules};
use smsys::store::{CheckpointName, SqliteEventStore};

const CIS: usize = 7;
/// Ids a relationship may name: the CIs and two never registered.
const TARGETS: usize = CIS + 2;
const TYPES: [&str; 3] = ["service", "application", "server"];
const STATUSES: [&str; 3] = ["live", "retired", "maintenance"];
const RELATIONSHIPS: [Relationship; 4] = [
    Relationship::DEPENDS_ON,
    Relationship::RUNS_ON,
    Relationship::CONNECTS_TO,
    Relationship::from_static("backs_up"),
];

fn ci(i: usize) -> CiId {
    CiId::new(format!("ci-{i}")).expect("valid id")
}

/// One generated event: on which CI, and what.
#[derive(Debug, Clone)]
enum Op {
    Register(usize, usize),
    Add(usize, usize),
    Remove(usize, usize),
    Status(usize),
    Describe,
    Attribute(bool),
}

fn op() -> impl Strategy<Value = (usize, Op)> {
    let what = prop_oneof![
        2 => (0..TYPES.len(), 0..STATUSES.len()).prop_map(|(t, s)| Op::Register(t, s)),
        5 => (0..RELATIONSHIPS.len(), 0..TARGETS).prop_map(|(r, t)| Op::Add(r, t)),
        1 => (0..RELATIONSHIPS.len(), 0..TARGETS).prop_map(|(r, t)| Op::Remove(r, t)),
        1 => (0..STATUSES.len()).prop_map(Op::Status),
        1 => Just(Op::Describe),
        1 => any::<bool>().prop_map(Op::Attribute),
    ];
    (0..CIS, what)
}

fn event(i: usize, op: &Op) -> CiEvent {
    let attribute = AttributeName::new("owner").expect("valid name");
    match op {
        Op::Register(t, s) => CiEvent::Registered(CiRegistered {
            id: ci(i),
            ci_type: CiType::new(TYPES[*t]).expect("valid type"),
            name: format!("CI {i}"),
            description: String::new(),
            status: STATUSES[*s].to_owned(),
            attributes: Default::default(),
            change: None,
        }),
        Op::Add(r, t) => CiEvent::RelationshipAdded {
            relationship: RELATIONSHIPS[*r].clone(),
            target: ci(*t),
            change: "CHG-7".parse().ok(),
        },
        Op::Remove(r, t) => CiEvent::RelationshipRemoved {
            relationship: RELATIONSHIPS[*r].clone(),
            target: ci(*t),
            change: None,
        },
        Op::Status(s) => CiEvent::StatusChanged {
            from: String::new(),
            to: STATUSES[*s].to_owned(),
            reason: String::new(),
            change: None,
        },
        Op::Describe => CiEvent::Described {
            name: format!("CI {i} renamed"),
            description: "described".into(),
            change: None,
        },
        Op::Attribute(set) => CiEvent::AttributesUpdated {
            set: if *set {
                [(attribute.clone(), AttributeValue::from("team-a"))]
                    .into_iter()
                    .collect()
            } else {
                Default::default()
            },
            removed: if *set { Vec::new() } else { vec![attribute] },
            change: None,
        },
    }
}

/// The rules: the defaults, `connects_to` both ways or not, retired CIs passing impact on or
/// not.
fn rules(both: bool, retired_propagate: bool) -> ImpactRules {
    let mut rules = ImpactRules {
        retired_propagate,
        ..ImpactRules::default()
    };
    if both {
        rules
            .propagation
            .insert(Relationship::CONNECTS_TO, Propagation::Both);
    }
    rules
}

async fn scenario(ops: Vec<(usize, Op)>, batch: usize, rules: ImpactRules) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteEventStore::open(dir.path().join("store.db"))
        .await
        .expect("opens");
    let actor = Actor::new("cmdb").expect("valid actor");
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid");
    for (n, (i, op)) in (1u32..).zip(&ops) {
        let event = event(*i, op);
        let id = EventId::from_uuid(uuid::Uuid::from_u128(u128::from(n))).expect("valid id");
        let at = t0 + TimeDelta::seconds(n.into()) + TimeDelta::microseconds(n.into());
        let data = EventData::new(
            event.event_type(),
            event.schema_version(),
            event.to_payload().expect("encodes"),
            Metadata::new(id, actor.clone(), at),
        )
        .expect("valid event");
        let stream = ConfigurationItem::stream(&ci(*i)).expect("valid stream");
        store
            .append(&stream, ExpectedVersion::Any, vec![data])
            .await
            .expect("appends");
    }
    let log: Arc<dyn EventStore> = Arc::new(store.clone());
    let memory = CmdbGraph::new().with_rules(rules.clone());
    ProjectionRunner::new(Arc::clone(&log))
        .catch_up(&memory)
        .await
        .expect("the graph folds");
    let graph = Arc::new(store.ci_graph(CheckpointName::new("ci_graph.v1").expect("valid")));
    let indexer = CiGraphIndexer::new(graph.clone());
    let reached = ProjectionRunner::new(Arc::clone(&log))
        .with_batch_size(batch)
        .catch_up(&indexer)
        .await
        .expect("the indexer folds");
    // A batch delivered again changes nothing.
    let all: Vec<_> = {
        use futures::StreamExt;
        log.read_all(smsys::core::Position::START, indexer.filter())
            .map(|e| e.expect("reads"))
            .collect()
            .await
    };
    let before = graph
        .cis(&(0..TARGETS).map(ci).collect::<Vec<_>>())
        .await
        .expect("reads");
    if let Some(last) = reached {
        indexer.apply(&all, last).await.expect("applies again");
    }
    let ids: Vec<CiId> = (0..TARGETS).map(ci).collect();
    let rows = graph.cis(&ids).await.expect("reads");
    assert_eq!(rows, before, "delivered again");
    assert_eq!(graph.checkpoint().await.expect("reads"), reached);

    let walk = rules.walk();
    for (id, row) in ids.iter().zip(&rows) {
        let node = memory.ci(id);
        match row {
            Some(row) if row.is_registered() => {
                let node = node.expect("registered in memory too");
                assert_eq!(Some(&node.ci_type), row.ci_type(), "{id}");
                assert_eq!(node.name, row.name(), "{id}");
                assert_eq!(Some(node.status.as_str()), row.status(), "{id}");
                assert_eq!(&node.attributes, row.attributes(), "{id}");
            }
            Some(_) | None => assert_eq!(node, None, "{id} is no CI"),
        }
        let edges: Vec<(Relationship, CiId)> = row
            .as_ref()
            .map(|r| r.relationships().iter().cloned().collect())
            .unwrap_or_default();
        assert_eq!(memory.relationships(id), edges, "{id}");
        assert_eq!(
            graph.relationships_to(id).await.expect("reads"),
            memory.relationships_to(id),
            "{id}"
        );
        let impact = memory.impact(id);
        let walked = graph.walk(id, &walk).await.expect("walks");
        let expected: Vec<(CiId, u32)> = impact
            .affected()
            .iter()
            .map(|a| (a.id.clone(), a.distance))
            .collect();
        assert_eq!(walked, expected, "impact of {id}");
        let reached: Vec<CiId> = walked.into_iter().map(|(ci, _)| ci).collect();
        let mut services: Vec<CiId> = graph
            .cis(&reached)
            .await
            .expect("reads")
            .into_iter()
            .flatten()
            .filter(|row| row.ci_type() == Some(&rules.service_type))
            .map(|row| row.id().clone())
            .collect();
        services.sort();
        assert_eq!(services, impact.services(), "services affected by {id}");
    }
    for ci_type in TYPES {
        let ci_type = CiType::new(ci_type).expect("valid");
        assert_eq!(
            graph.cis_of_type(&ci_type).await.expect("reads"),
            memory.cis_of_type(&ci_type)
        );
    }
    store.close().await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("SMSYS_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_graph_in_the_store_agrees_with_the_graph_in_memory(
        ops in proptest::collection::vec(op(), 1..60),
        batch in 1usize..20,
        both in any::<bool>(),
        retired_propagate in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(scenario(ops, batch, rules(both, retired_propagate)));
    }
}
