//! The property: random CI histories, read back as of random positions and compared with a
//! naive replay (each CI folded from scratch) and a naive fixpoint for impact.

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Register(usize, usize),
    Attribute(usize, usize, Option<u8>),
    Status(usize, usize),
    Add(usize, usize, usize),
    Remove(usize, usize, usize),
}

const IDS: usize = 12;
const TYPES: [&str; 3] = ["server", "application", "service"];
const STATUSES: [&str; 3] = ["live", "maintenance", "retired"];
const RELATIONSHIPS: [Relationship; 5] = [
    Relationship::DEPENDS_ON,
    Relationship::RUNS_ON,
    Relationship::CONNECTS_TO,
    Relationship::PART_OF,
    Relationship::from_static("backs_up"),
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..IDS, 0..TYPES.len()).prop_map(|(c, t)| Op::Register(c, t)),
        2 => (0..IDS, 0..3usize, proptest::option::of(any::<u8>()))
            .prop_map(|(c, k, v)| Op::Attribute(c, k, v)),
        2 => (0..IDS, 0..STATUSES.len()).prop_map(|(c, s)| Op::Status(c, s)),
        6 => (0..IDS, 0..RELATIONSHIPS.len(), 0..IDS).prop_map(|(c, r, t)| Op::Add(c, r, t)),
        3 => (0..IDS, 0..RELATIONSHIPS.len(), 0..IDS).prop_map(|(c, r, t)| Op::Remove(c, r, t)),
    ]
}

fn name(c: usize) -> String {
    format!("ci-{c:02}")
}

fn event_of(op: &Op) -> (usize, CiEvent) {
    match op {
        Op::Register(c, t) => (*c, registered(&name(*c), TYPES[*t], "live")),
        Op::Attribute(c, k, v) => {
            let key = AttributeName::new(format!("k{k}")).unwrap();
            let (set, removed) = match v {
                Some(v) => (
                    [(key, AttributeValue::from(v.to_string().as_str()))]
                        .into_iter()
                        .collect(),
                    Vec::new(),
                ),
                None => (BTreeMap::new(), vec![key]),
            };
            (
                *c,
                CiEvent::AttributesUpdated {
                    set,
                    removed,
                    change: None,
                },
            )
        }
        Op::Status(c, s) => (*c, status("live", STATUSES[*s])),
        Op::Add(c, r, t) => (
            *c,
            CiEvent::RelationshipAdded {
                relationship: RELATIONSHIPS[*r].clone(),
                target: ci(&name(*t)),
                change: None,
            },
        ),
        Op::Remove(c, r, t) => (
            *c,
            CiEvent::RelationshipRemoved {
                relationship: RELATIONSHIPS[*r].clone(),
                target: ci(&name(*t)),
                change: None,
            },
        ),
    }
}

/// Every CI folded from scratch from the events at or before `position`.
fn naive_states(events: &[RecordedEvent], position: Position) -> BTreeMap<CiId, ConfigurationItem> {
    let mut states: BTreeMap<CiId, ConfigurationItem> = BTreeMap::new();
    for e in events.iter().filter(|e| e.position <= position) {
        let event = CiEvent::from_payload(e.data.event_type(), e.data.payload().clone()).unwrap();
        states
            .entry(ci(e.stream.entity_id()))
            .or_default()
            .evolve(&event, Stamp::of(e.data.metadata()));
    }
    states
}

/// Impact by fixpoint: relax every edge until nothing changes.
fn naive_impact(
    states: &BTreeMap<CiId, ConfigurationItem>,
    rules: &ImpactRules,
    origin: &CiId,
) -> BTreeMap<CiId, u32> {
    let registered = |id: &CiId| states.get(id).is_some_and(|s| s.is_registered());
    // Ids never registered are no CIs: not affected, not passing impact on, affecting nothing.
    if !registered(origin) {
        return BTreeMap::new();
    }
    let excluded = |id: &CiId| {
        !registered(id)
            || (!rules.retired_propagate
                && id != origin
                && states
                    .get(id)
                    .is_some_and(|s| s.status() == Some(&rules.retired_status)))
    };
    let mut dist: BTreeMap<CiId, u32> = BTreeMap::new();
    dist.insert(origin.clone(), 0);
    loop {
        let mut changed = false;
        for (source, state) in states {
            for (relationship, target) in state.relationships() {
                let way = rules.propagation.get(relationship);
                let mut relax = |from: &CiId, to: &CiId| {
                    if excluded(from) || excluded(to) || to == origin {
                        return;
                    }
                    if let Some(d) = dist.get(from).copied()
                        && dist.get(to).is_none_or(|old| *old > d + 1)
                    {
                        dist.insert(to.clone(), d + 1);
                        changed = true;
                    }
                };
                if matches!(way, Some(Propagation::TargetToSource | Propagation::Both)) {
                    relax(target, source);
                }
                if matches!(way, Some(Propagation::SourceToTarget | Propagation::Both)) {
                    relax(source, target);
                }
            }
        }
        if !changed {
            break;
        }
    }
    dist.remove(origin);
    dist
}

async fn check(ops: Vec<(Op, i64)>, picks: Vec<(usize, usize)>) {
    let mut cmdb = Cmdb::new();
    for (op, minutes) in &ops {
        let (c, event) = event_of(op);
        cmdb.record_at(&name(c), event, t0() + TimeDelta::minutes(*minutes))
            .await;
    }
    let graph = cmdb.graph(3).await;
    let events = cmdb.events().await;
    let rules = ImpactRules::default();
    let mut positions: Vec<Position> = events.iter().map(|e| e.position).collect();
    positions.push(Position::START);
    for (pick, origin) in picks {
        let position = positions[pick % positions.len()];
        let states = naive_states(&events, position);
        let snapshot = graph.as_of(position);
        let origin = ci(&name(origin % IDS));
        for c in 0..IDS {
            let id = ci(&name(c));
            let state = states.get(&id).filter(|s| s.is_registered());
            assert_eq!(
                graph.ci_as_of(&id, position).as_ref(),
                state,
                "{id} at {position}"
            );
            let node = snapshot.ci(&id);
            assert_eq!(node.is_some(), state.is_some(), "{id} at {position}");
            if let (Some(node), Some(state)) = (node, state) {
                assert_eq!(Some(&node.ci_type), state.ci_type());
                assert_eq!(node.name, state.name());
                assert_eq!(Some(node.status.as_str()), state.status());
                assert_eq!(&node.attributes, state.attributes());
            }
            let naive: Vec<_> = states
                .get(&id)
                .map(|s| s.relationships().iter().cloned().collect())
                .unwrap_or_default();
            assert_eq!(snapshot.relationships(&id), naive, "{id} at {position}");
        }
        let expected = naive_impact(&states, &rules, &origin);
        let impact = snapshot.impact(&origin);
        let got: BTreeMap<CiId, u32> = impact
            .affected()
            .iter()
            .map(|a| (a.id.clone(), a.distance))
            .collect();
        assert_eq!(got, expected, "impact of {origin} at {position}");
        let services: Vec<CiId> = expected
            .keys()
            .filter(|id| {
                states.get(*id).is_some_and(|s| {
                    s.is_registered() && s.ci_type().is_some_and(|t| *t == *"service")
                })
            })
            .cloned()
            .collect();
        assert_eq!(impact.services(), services);
        for c in 0..IDS {
            let from = ci(&name(c));
            let path = snapshot.path(&from, &origin);
            let want = if from == origin {
                states
                    .get(&origin)
                    .is_some_and(ConfigurationItem::is_registered)
                    .then_some(0)
            } else {
                expected.get(&from).copied()
            };
            assert_eq!(
                path.as_ref().map(|p| p.len() as u32),
                want,
                "{from} to {origin}"
            );
        }
    }
    // The live graph is the graph as of the last event.
    let last = events.last().map_or(Position::START, |e| e.position);
    let states = naive_states(&events, last);
    for c in 0..IDS {
        let id = ci(&name(c));
        assert_eq!(graph.ci(&id), graph.as_of(last).ci(&id));
        let history = graph.history(&id);
        let naive = events
            .iter()
            .filter(|e| e.stream.entity_id() == id.as_str())
            .count();
        assert_eq!(history.len(), naive);
        assert_eq!(states.contains_key(&id), naive > 0);
    }
    // As of an instant: the last event in log order that occurred at or before it.
    for (_, minutes) in &ops {
        let instant = t0() + TimeDelta::minutes(*minutes);
        let expected = events
            .iter()
            .rev()
            .find(|e| e.data.metadata().occurred_at() <= instant)
            .map(|e| e.position);
        assert_eq!(graph.as_of_instant(instant).map(|s| s.position()), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn as_of_and_impact_agree_with_a_naive_replay(
        ops in proptest::collection::vec((op(), 0..200i64), 0..60),
        picks in proptest::collection::vec((any::<usize>(), any::<usize>()), 1..6),
    ) {
        tokio::runtime::Runtime::new().unwrap().block_on(check(ops, picks));
    }
}

#[test]
fn naive_helpers_see_every_ci_named() {
    let names: BTreeSet<String> = (0..IDS).map(name).collect();
    assert_eq!(names.len(), IDS);
}
