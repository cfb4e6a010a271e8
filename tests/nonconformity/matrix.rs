//! Every stage of the reference lifecycle, reached by real commands, x every nonconformity
//! command: accepted (`+`) or refused (`.`), compared to the table below, so a changed rule is
//! a reviewed diff.

use crate::harness::{Desk, QUALITY, commands};

/// The stages and the commands that reach each from a raised nonconformity.
const STAGES: &[(&str, &[&str])] = &[
    ("raised", &[]),
    ("corrected", &["correct"]),
    ("analysed", &["correct", "analyse"]),
    ("action_planned", &["correct", "analyse", "plan"]),
    (
        "action_implemented",
        &["correct", "analyse", "plan", "implement"],
    ),
    (
        "effective",
        &["correct", "analyse", "plan", "implement", "effective"],
    ),
    (
        "closed",
        &[
            "correct",
            "analyse",
            "plan",
            "implement",
            "effective",
            "close",
        ],
    ),
    ("cancelled", &["cancel"]),
    (
        "corrected (round 2)",
        &["correct", "analyse", "plan", "implement", "ineffective"],
    ),
];

const EXPECTED: &str = "\
stage                correct analyse plan implement effective ineffective close cancel
raised               +       .       .    .         .         .           .     +
corrected            .       +       .    .         .         .           .     +
analysed             .       .       +    .         .         .           .     +
action_planned       .       .       .    +         .         .           .     +
action_implemented   .       .       .    .         +         +           .     .
effective            .       .       .    .         .         .           +     .
closed               .       .       .    .         .         .           .     .
cancelled            .       .       .    .         .         .           .     .
corrected (round 2)  .       +       .    .         .         .           .     +
";

#[test]
fn every_stage_by_every_command_matches_the_table() {
    let names: Vec<&str> = commands().iter().map(|(n, _)| *n).collect();
    let mut table = format!("{:<20} {}\n", "stage", names.join(" "));
    for (stage, path) in STAGES {
        let mut row = format!("{stage:<20}");
        for (name, command) in commands() {
            let mut desk = Desk::raised("NC-0001");
            desk.walk(QUALITY, path);
            let mark = if desk.run(QUALITY, &command).is_ok() {
                "+"
            } else {
                "."
            };
            row.push_str(&format!(" {mark:<width$}", width = name.len()));
        }
        table.push_str(row.trim_end());
        table.push('\n');
    }
    assert_eq!(table, EXPECTED, "\n{table}");
}

#[test]
fn each_stage_is_the_status_its_path_reaches() {
    for (stage, path) in STAGES {
        let mut desk = Desk::raised("NC-0001");
        desk.walk(QUALITY, path);
        let status = stage.split(' ').next().unwrap_or(stage);
        assert_eq!(desk.status(), status, "{stage}");
    }
}
