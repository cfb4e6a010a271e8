//! Properties over random command sequences: change control and the lifecycles.

use super::*;

/// A command drawn for the property tests, on a server or a site.
fn command() -> impl Strategy<Value = CiCommand> {
    let change = proptest::option::of(Just(())).prop_map(|c| c.and_then(|()| chg("CHG-1")));
    let statuses = prop::sample::select(vec![
        "planned",
        "ordered",
        "in_build",
        "live",
        "maintenance",
        "retired",
        "broken",
    ]);
    let relationships = prop::sample::select(vec![
        Relationship::PART_OF,
        Relationship::CONNECTS_TO,
        Relationship::RUNS_ON,
    ]);
    let targets = prop::sample::select(vec!["dc-1", "sw-1", "srv-01"]);
    let values = prop::sample::select(vec![
        ("os", AttributeValue::from("linux")),
        ("os", AttributeValue::from("bsd")),
        ("ram_gb", AttributeValue::from(64)),
        ("country", AttributeValue::from("PT")),
        ("address", AttributeValue::from("1 main st")),
    ]);
    prop_oneof![
        (values.clone(), change.clone()).prop_map(|((n, v), c)| set(&[(n, v)], c)),
        (values, change.clone()).prop_map(|((n, _), c)| remove(n, c)),
        (prop::sample::select(vec!["a", "b"]), change.clone()).prop_map(|(n, c)| {
            CiCommand::Describe {
                name: n.into(),
                description: String::new(),
                change: c,
            }
        }),
        (statuses, change.clone()).prop_map(|(to, c)| status(to, c)),
        change.clone().prop_map(|c| CiCommand::Retire {
            reason: String::new(),
            change: c
        }),
        (relationships.clone(), targets.clone(), change.clone()).prop_map(|(r, t, c)| add(r, t, c)),
        (relationships, targets, change).prop_map(|(r, t, c)| CiCommand::RemoveRelationship {
            relationship: r,
            target: ci(t),
            change: c,
        }),
    ]
}

/// Each command and what was decided.
type Outcomes = Vec<(CiCommand, Result<Vec<CiEvent>, CiRefusal>)>;

/// Runs `commands` after registering `id` of `ci_type`: every outcome, and the final state.
fn run(
    policy: &CmdbPolicy,
    id: &str,
    ci_type: &str,
    commands: &[CiCommand],
) -> (Outcomes, ConfigurationItem) {
    let mut state = given(policy, &[register(id, ci_type, chg("CHG-0"))]);
    let mut outcomes = Vec::new();
    for command in commands {
        let outcome = when(policy, &state, command);
        for event in outcome.iter().flatten() {
            state.evolve(event, Stamp::new(None, at()));
        }
        outcomes.push((command.clone(), outcome));
    }
    (outcomes, state)
}

proptest! {
    /// On a change-controlled type every accepted event names a change; on another type no
    /// command is refused for the want of one.
    #[test]
    fn change_control_holds(commands in prop::collection::vec(command(), 0..40)) {
        let policy = reference().with_directory(directory());
        let (server, _) = run(&policy, "srv-01", "server", &commands);
        for (command, outcome) in &server {
            for event in outcome.iter().flatten() {
                prop_assert!(event.change().is_some(), "{:?}: {:?}", command, event);
            }
            if command.change().is_none() {
                prop_assert!(outcome.is_err(), "{:?}", command);
            }
        }
        let (site, _) = run(&policy, "dc-1", "site", &commands);
        for (command, outcome) in &site {
            if let Err(refusal) = outcome {
                prop_assert!(!matches!(refusal.rule, CiRule::ChangeRequired(_)), "{:?}", command);
            }
        }
    }

    /// Every accepted move is one of the lifecycle's; the status stays reachable; nothing is
    /// accepted after a final status.
    #[test]
    fn statuses_follow_the_lifecycle(commands in prop::collection::vec(command(), 0..40)) {
        let policy = reference();
        let lifecycle = CiLifecycle::default();
        let (outcomes, state) = run(&policy, "dc-1", "site", &commands);
        let mut done = false;
        for (command, outcome) in &outcomes {
            if done {
                prop_assert!(
                    matches!(outcome, Err(r) if matches!(r.rule, CiRule::Final(_))),
                    "{:?} after a final status", command
                );
            }
            for event in outcome.iter().flatten() {
                if let CiEvent::StatusChanged { from, to, .. } = event {
                    prop_assert!(lifecycle.allows(from, to), "{} -> {}", from, to);
                    done = lifecycle.is_final(to);
                }
            }
        }
        let status = state.status().expect("registered");
        prop_assert!(lifecycle.reachable().contains(status));
    }
}
