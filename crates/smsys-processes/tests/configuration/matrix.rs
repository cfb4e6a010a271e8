//! The status x command matrix of a change-controlled CI type under the default lifecycle: every
//! command, with and without a change, tried on a server in every status, compared to a
//! checked-in expectation (`tests/expect/configuration_matrix.txt`; regenerate with
//! `SMSYS_BLESS=1`, review the diff).

use std::fmt::Write as _;

use super::*;

/// The commands tried in every status (named for the matrix), each with a change.
fn commands() -> Vec<(String, CiCommand)> {
    let c = || chg("CHG-9");
    let mut commands = vec![
        ("register".to_owned(), register("srv-01", "server", c())),
        (
            "update_attributes".to_owned(),
            set(&[("os", "linux".into())], c()),
        ),
        (
            "describe".to_owned(),
            CiCommand::Describe {
                name: "srv-01".into(),
                description: "mail host".into(),
                change: c(),
            },
        ),
    ];
    for to in CiLifecycle::default()
        .statuses
        .iter()
        .map(|s| s.name.clone())
    {
        commands.push((format!("change_status -> {to}"), status(&to, c())));
    }
    commands.extend([
        (
            "retire".to_owned(),
            CiCommand::Retire {
                reason: String::new(),
                change: c(),
            },
        ),
        (
            "add_relationship part_of".to_owned(),
            add(Relationship::PART_OF, "dc-1", c()),
        ),
        (
            "remove_relationship part_of".to_owned(),
            CiCommand::RemoveRelationship {
                relationship: Relationship::PART_OF,
                target: ci("dc-1"),
                change: c(),
            },
        ),
        (
            "update_attributes (no change)".to_owned(),
            set(&[("os", "linux".into())], None),
        ),
    ]);
    commands
}

/// A server brought into `target` along the default lifecycle, each step under a change.
fn server_in(target: &str) -> Vec<CiCommand> {
    let path: &[&str] = match target {
        "planned" => &[],
        "ordered" => &["ordered"],
        "in_build" => &["ordered", "in_build"],
        "live" => &["ordered", "in_build", "live"],
        "maintenance" => &["ordered", "in_build", "live", "maintenance"],
        "retired" => &["retired"],
        other => panic!("no path to {other}"),
    };
    std::iter::once(register("srv-01", "server", chg("CHG-1")))
        .chain(path.iter().map(|to| status(to, chg("CHG-1"))))
        .collect()
}

/// The short name of a rule: its variant.
fn rule_name(rule: &CiRule) -> String {
    let debug = format!("{rule:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn matrix() -> String {
    let policy = reference();
    let mut out = String::from(
        "# server (change controlled, default lifecycle): status x command -> recorded event or refusal\n",
    );
    for status in CiLifecycle::default().statuses.iter().map(|s| &s.name) {
        let state = given(&policy, &server_in(status));
        for (name, command) in commands() {
            let cell = match when(&policy, &state, &command) {
                Ok(events) => events
                    .iter()
                    .map(CiEvent::name)
                    .collect::<Vec<_>>()
                    .join(" + "),
                Err(refusal) => format!("refused: {}", rule_name(&refusal.rule)),
            };
            writeln!(out, "{status:<12} {name:<32} {cell}").expect("writes to a string");
        }
    }
    out
}

#[test]
fn status_command_matrix_matches_the_checked_in_expectation() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/expect/configuration_matrix.txt"
    );
    let actual = matrix();
    if std::env::var_os("SMSYS_BLESS").is_some() {
        std::fs::write(path, &actual).expect("writes the expectation");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .find(|(e, a)| e != a)
            .map(|(e, a)| format!("expected: {e}\n  actual: {a}"))
            .unwrap_or_else(|| "the line counts differ".into());
        panic!(
            "{path} no longer matches the rules ({first}).\nIf the change is intended, rerun with SMSYS_BLESS=1 and review the diff."
        );
    }
}
