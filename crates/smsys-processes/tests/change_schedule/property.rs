//! The property: random schedules (changes planned on random CIs of a small graph with a
//! cycle, rescheduled, cancelled, closed or implemented), the indexed detector's conflicts
//! compared with a brute-force scan over every change.

use super::*;

/// The edges of the property test's graph: a cycle, a both-way chain, one edge that carries
/// no impact.
const EDGES: [(usize, &str, usize); 7] = [
    (0, "depends_on", 1),
    (1, "runs_on", 2),
    (2, "depends_on", 0),
    (3, "part_of", 2),
    (4, "connects_to", 3),
    (5, "backs_up", 4),
    (6, "depends_on", 5),
];
const CIS: usize = 8;

#[derive(Debug, Clone)]
struct Generated {
    cis: BTreeSet<usize>,
    implementer: Option<u8>,
    windows: Vec<(i64, i64)>,
    end: u8,
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        proptest::collection::btree_set(0..CIS, 1..3),
        proptest::option::of(0u8..3),
        proptest::collection::vec((0i64..48, 1i64..6), 1..3),
        0u8..4,
    )
        .prop_map(|(cis, implementer, windows, end)| Generated {
            cis,
            implementer,
            windows: windows.into_iter().map(|(s, l)| (s, s + l)).collect(),
            end,
        })
}

fn name(i: usize) -> String {
    format!("c{i}")
}

/// Every CI within `hops` of an asked one, either way, along impact-carrying edges.
fn brute_related(asked: &BTreeSet<usize>, hops: u32) -> BTreeSet<usize> {
    let mut distance: HashMap<usize, u32> = asked.iter().map(|c| (*c, 0)).collect();
    let mut queue: VecDeque<usize> = asked.iter().copied().collect();
    while let Some(at) = queue.pop_front() {
        let d = distance[&at];
        if d == hops {
            continue;
        }
        for (a, r, b) in EDGES {
            let next = if a == at && r != "backs_up" {
                b
            } else if b == at && r != "backs_up" {
                a
            } else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(e) = distance.entry(next) {
                e.insert(d + 1);
                queue.push_back(next);
            }
        }
    }
    distance
        .into_iter()
        .filter(|(_, d)| *d > 0)
        .map(|(c, _)| c)
        .collect()
}

fn brute_force(
    changes: &[Generated],
    me: usize,
    asked: &Generated,
    hops: u32,
) -> BTreeSet<(ConflictKind, String, String)> {
    let (start, end) = asked.windows[0];
    let related = brute_related(&asked.cis, hops);
    let mut out = BTreeSet::new();
    for (n, other) in changes.iter().enumerate() {
        let (s, e) = *other.windows.last().unwrap();
        if n == me || other.end != 0 || !(s < end && start < e) {
            continue;
        }
        let with = format!("CHG-{n}");
        let shared: Vec<_> = other.cis.intersection(&asked.cis).collect();
        for c in &shared {
            out.insert((ConflictKind::SameCi, with.clone(), name(**c)));
        }
        if shared.is_empty() {
            for c in other.cis.intersection(&related) {
                out.insert((ConflictKind::RelatedCi, with.clone(), name(*c)));
            }
        }
        if asked.implementer.is_some() && asked.implementer == other.implementer {
            out.insert((ConflictKind::AssigneeBooked, with, String::new()));
        }
    }
    out
}

async fn fed(changes: &[Generated], hops: u32) -> ChangeSchedule {
    let mut desk = Desk::new();
    for i in 0..CIS {
        desk.register(&name(i), "application").await;
    }
    for (a, r, b) in EDGES {
        desk.link(&name(a), Relationship::new(r).unwrap(), &name(b))
            .await;
    }
    for (n, change) in changes.iter().enumerate() {
        let reference = format!("CHG-{n}");
        let cis: Vec<String> = change.cis.iter().map(|c| name(*c)).collect();
        let cis: Vec<&str> = cis.iter().map(String::as_str).collect();
        let person = change.implementer.map(|p| format!("p{p}"));
        desk.logged(&reference, &[]).await;
        desk.plan(&reference, &cis, person.as_deref()).await;
        for (s, e) in &change.windows {
            desk.schedule(&reference, window(*s, *e)).await;
        }
        match change.end {
            1 => desk.moved(&reference, "cancelled", Phase::Cancelled).await,
            2 => {
                desk.implemented(&reference, ImplementationOutcome::Success)
                    .await
            }
            3 => desk.moved(&reference, "closed", Phase::Closed).await,
            _ => {}
        }
    }
    desk.schedule_with(hops, ChangeCalendars::new()).await
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_index_finds_what_a_scan_finds(
        changes in proptest::collection::vec(generated(), 0..25),
        asked in generated(),
        me in 0usize..30,
        hops in 0u32..4,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let schedule = runtime.block_on(fed(&changes, hops));
        let (s, e) = asked.windows[0];
        let cis: Vec<String> = asked.cis.iter().map(|c| name(*c)).collect();
        let cis: Vec<&str> = cis.iter().map(String::as_str).collect();
        let person = asked.implementer.map(|p| format!("p{p}"));
        let conflicts = ask(&schedule, &format!("CHG-{me}"), &cis, person.as_deref(), &window(s, e));
        let sorted = conflicts.windows(2).all(|p| {
            (p[0].kind, &p[0].with, &p[0].ci) <= (p[1].kind, &p[1].with, &p[1].ci)
        });
        prop_assert!(sorted, "{conflicts:?}");
        let indexed: Vec<_> = found(&conflicts);
        let unique: BTreeSet<_> = indexed.iter().cloned().collect();
        prop_assert_eq!(unique.len(), indexed.len());
        prop_assert_eq!(unique, brute_force(&changes, me, &asked, hops));
        let live = changes.iter().filter(|c| c.end == 0).count();
        prop_assert_eq!(schedule.len(), live);
    }
}
