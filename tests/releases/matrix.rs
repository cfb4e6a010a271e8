//! The stage x command matrix of the reference release lifecycle: a minor release brought
//! into every status by real commands, then every release command (and the shared close and
//! cancel) decided on it, accepted or refused, compared to the table below. A changed rule is
//! a changed table: review the diff.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::TimeDelta;
use smsys::core::records::release::DeploymentOutcome;
use smsys::core::records::{RecordKind, ReleaseEvent, ReleaseKind};
use smsys::processes::release::{ReleaseCommand, ReleaseRefusal, ReleaseRule};
use smsys::processes::{RecordCommand, RefusalReason};

use crate::harness::{
    DEPLOYER, Desk, OPERATOR, REQUESTER, early_life_days, id, log_planned, plan, policy,
};

/// Legend: `+` accepted; `.` not taken in this stage (no such transition, wrong stage); `g` a
/// guard of the transition does not hold; `F` the release is closed, rejected or cancelled,
/// which is final; `=` nothing would change; `x` refused by another rule (already logged,
/// criteria not met, early life still open, no baseline).
const MINOR: &str = "
status      log  plan build verify accept appr rej  base start ok   fail rollb corr waive revw close cancel
planned     x    +    +     .      .      .    .    .    .     .    .    .     .    .     .    .     +
built       x    .    .     +      x      .    .    .    .     .    .    .     .    .     .    .     +
accepted    x    .    .     .      .      +    +    .    .     .    .    .     .    .     .    .     +
approved    x    .    .     .      .      .    .    +    x     .    .    .     .    .     .    .     +
baselined   x    .    .     .      .      .    .    =    +     .    .    .     .    .     .    .     +
deploying   x    .    .     .      .      .    .    .    .     +    +    .     .    .     .    .     .
failed      x    .    .     .      .      .    .    .    .     .    .    +     .    .     .    .     .
rolled_back x    .    .     .      .      .    .    +    x     .    .    .     .    .     .    .     +
early_life  x    .    .     .      .      .    .    .    .     .    .    .     +    +     x    g     .
closed      x    F    F     F      F      F    F    F    F     F    F    F     F    F     F    F     F
rejected    x    F    F     F      F      F    F    F    F     F    F    F     F    F     F    F     F
cancelled   x    F    F     F      F      F    F    F    F     F    F    F     F    F     F    F     F
";

/// The approver of the matrix: a change manager, neither requester nor deployer.
const APPROVER: &str = "carl";

fn deployed(environment: &str, outcome: DeploymentOutcome) -> ReleaseCommand {
    ReleaseCommand::RecordDeployment {
        environment: environment.into(),
        outcome,
        notes: "done".into(),
    }
}

/// The columns: a label, who runs the command, the command.
fn columns() -> Vec<(&'static str, &'static str, ReleaseCommand)> {
    use ReleaseCommand as C;
    let mut revised = plan(DEPLOYER);
    revised.deployment = "canary first".into();
    vec![
        ("log", REQUESTER, log_planned("REL-1", ReleaseKind::Minor)),
        ("plan", REQUESTER, C::Plan(revised)),
        (
            "build",
            REQUESTER,
            C::RecordBuild {
                build: "2.5.0".into(),
                notes: String::new(),
            },
        ),
        (
            "verify",
            REQUESTER,
            C::VerifyCriterion {
                criterion: "regression_tests".into(),
                passed: true,
                evidence: "run 42".into(),
            },
        ),
        ("accept", REQUESTER, C::Accept),
        ("appr", APPROVER, C::Approve { group: None }),
        (
            "rej",
            APPROVER,
            C::Reject {
                group: None,
                reason: "not ready".into(),
            },
        ),
        ("base", REQUESTER, C::TakeBaseline),
        ("start", OPERATOR, C::StartDeployment),
        ("ok", OPERATOR, deployed("test", DeploymentOutcome::Success)),
        (
            "fail",
            OPERATOR,
            deployed("test", DeploymentOutcome::Failed),
        ),
        (
            "rollb",
            OPERATOR,
            C::RollBack {
                restored: true,
                notes: "switched back".into(),
            },
        ),
        (
            "corr",
            "smsys",
            C::CorrelateIncident {
                incident: id("INC-1"),
                cis: vec![id("app-01")],
                service: None,
            },
        ),
        (
            "waive",
            REQUESTER,
            C::WaiveEarlyLife {
                reason: "owner signs off".into(),
            },
        ),
        (
            "revw",
            REQUESTER,
            C::RecordEarlyLifeReview {
                successful: true,
                findings: "quiet".into(),
            },
        ),
        ("close", REQUESTER, RecordCommand::Close.into()),
        (
            "cancel",
            REQUESTER,
            RecordCommand::Cancel {
                reason: "superseded".into(),
            }
            .into(),
        ),
    ]
}

/// Brings `desk` (a fresh minor release) into `status`.
fn reach(desk: &mut Desk, status: &str) {
    use ReleaseCommand as C;
    match status {
        "planned" => desk.ok(REQUESTER, &log_planned("REL-1", ReleaseKind::Minor)),
        "built" => {
            reach(desk, "planned");
            desk.ok(
                REQUESTER,
                &C::RecordBuild {
                    build: "2.5.0".into(),
                    notes: String::new(),
                },
            );
        }
        "accepted" => {
            reach(desk, "built");
            for criterion in ["regression_tests", "operational_readiness"] {
                let verify = C::VerifyCriterion {
                    criterion: criterion.into(),
                    passed: true,
                    evidence: "run 42".into(),
                };
                desk.ok(REQUESTER, &verify);
            }
            desk.ok(REQUESTER, &C::Accept);
        }
        "approved" => {
            reach(desk, "accepted");
            desk.ok(APPROVER, &C::Approve { group: None });
        }
        "baselined" => {
            reach(desk, "approved");
            desk.ok(REQUESTER, &C::TakeBaseline);
        }
        "deploying" => {
            reach(desk, "baselined");
            desk.ok(OPERATOR, &C::StartDeployment);
        }
        "failed" => {
            reach(desk, "deploying");
            desk.ok(OPERATOR, &deployed("test", DeploymentOutcome::Failed));
        }
        "rolled_back" => {
            reach(desk, "failed");
            let roll_back = C::RollBack {
                restored: true,
                notes: "switched back".into(),
            };
            desk.ok(OPERATOR, &roll_back);
        }
        "early_life" => {
            reach(desk, "deploying");
            desk.ok(OPERATOR, &deployed("test", DeploymentOutcome::Success));
            desk.ok(
                OPERATOR,
                &deployed("production", DeploymentOutcome::Success),
            );
        }
        "closed" => {
            reach(desk, "early_life");
            desk.now += TimeDelta::days(early_life_days(ReleaseKind::Minor));
            let review = C::RecordEarlyLifeReview {
                successful: true,
                findings: "quiet".into(),
            };
            desk.ok(REQUESTER, &review);
            desk.ok(REQUESTER, &RecordCommand::Close.into());
        }
        "rejected" => {
            reach(desk, "accepted");
            let reject = C::Reject {
                group: None,
                reason: "not ready".into(),
            };
            desk.ok(APPROVER, &reject);
        }
        "cancelled" => {
            reach(desk, "planned");
            let cancel = RecordCommand::Cancel {
                reason: "superseded".into(),
            };
            desk.ok(REQUESTER, &cancel.into());
        }
        other => panic!("no path to {other}"),
    }
}

/// The cell of a decision, as the legend says.
fn cell(decided: &Result<Vec<ReleaseEvent>, ReleaseRefusal>) -> char {
    use RefusalReason as R;
    let Err(refusal) = decided else {
        return '+';
    };
    let reason = &refusal.reason;
    if matches!(
        reason,
        R::NoTransition { .. } | R::Rule(ReleaseRule::WrongStage { .. })
    ) {
        '.'
    } else if matches!(reason, R::GuardFailed(_)) {
        'g'
    } else if matches!(reason, R::Final(_)) {
        'F'
    } else if matches!(reason, R::Unchanged) {
        '='
    } else {
        'x'
    }
}

/// The table as the rules decide it today, with the reason behind each cell.
fn matrix() -> (String, Vec<String>) {
    let policy = Arc::new(policy());
    let columns = columns();
    let mut table = String::from("\nstatus     ");
    for (label, _, _) in &columns {
        let _ = write!(table, " {label:<4}");
    }
    table.push('\n');
    let mut details = Vec::new();
    let lifecycle = smsys::processes::release::default_lifecycle();
    for status in lifecycle.statuses() {
        let mut desk = Desk::new(policy.clone());
        reach(&mut desk, &status.name);
        assert_eq!(desk.state.record().status(), Some(status.name.as_str()));
        let _ = write!(table, "{:<11}", status.name);
        for (label, who, command) in &columns {
            let decided = desk.decide(who, command);
            let _ = write!(
                table,
                " {:<width$}",
                cell(&decided),
                width = label.len().max(4)
            );
            details.push(format!(
                "{} x {label}: {:?}",
                status.name,
                decided.map(|e| e.len()).map_err(|r| r.reason)
            ));
        }
        table.push('\n');
    }
    (table, details)
}

#[test]
fn release_stage_command_matrix() {
    let (actual, details) = matrix();
    let normalise = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        normalise(&actual),
        normalise(MINOR),
        "the release matrix changed; today's table:{actual}\nwhy:\n{}",
        details.join("\n")
    );
}

/// Every stage the vocabulary names is a status of the reference lifecycle, and the matrix
/// reaches each.
#[test]
fn the_matrix_covers_every_stage() {
    let lifecycle = smsys::processes::release::default_lifecycle();
    let statuses: Vec<&str> = lifecycle
        .statuses()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let rows: Vec<&str> = MINOR
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(rows, statuses);
    assert_eq!(statuses.len(), 12);
}
