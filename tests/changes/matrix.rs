//! The status x command matrix of each kind of change: a change brought into every status of
//! its kind's reference lifecycle by real commands, then every change command (and the shared
//! start, close and cancel) decided on it, accepted or refused, compared to the table below.
//! A changed rule is a changed table: review the diff.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::TimeDelta;
use smsys::core::records::change::ImplementationOutcome;
use smsys::core::records::{ChangeEvent, ChangeKind, RecordKind};
use smsys::processes::change::{ChangeCommand, ChangeRefusal, ChangeRule};
use smsys::processes::{RecordCommand, RefusalReason};

use crate::harness::{
    Desk, IMPLEMENTER, REQUESTER, assessment, log_planned, policy, t0, template_plan, window,
};

/// Legend: `+` accepted; `.` not taken in this status (no such transition, wrong stage);
/// `g` a guard of the transition does not hold; `F` the change is closed or cancelled, which
/// is final; `=` nothing would change; `x` refused by another rule (already logged, nothing
/// failed to investigate, a normal change assessed before its window gives the lead time).
const STANDARD: &str = "
status     log  plan assess ask  sched appr rej  impl ok   fail remed invst revw revert start close cancel
new        x    +    +      .    +     .    .    .    .    .    .     x     .    .      .     .     +
scheduled  x    .    +      .    +     .    .    +    .    .    .     x     .    +      .     .     +
implement  x    .    +      .    .     .    .    .    +    +    .     x     .    .      .     .     .
failed     x    .    +      .    .     .    .    .    .    .    +     +     .    .      .     .     .
remediated x    .    +      .    .     .    .    .    .    .    .     +     +    .      .     g     .
review     x    .    +      .    .     .    .    .    .    .    .     x     +    .      .     g     .
closed     x    F    F      F    F     F    F    F    F    F    F     F     F    F      F     F     F
cancelled  x    F    F      F    F     F    F    F    F    F    F     F     F    F      F     F     F
";

const NORMAL: &str = "
status     log  plan assess ask  sched appr rej  impl ok   fail remed invst revw revert start close cancel
new        x    +    .      .    +     .    .    .    .    .    .     x     .    .      +     .     +
assess     x    +    x      g    +     .    .    .    .    .    .     x     .    +      .     .     +
authorise  x    .    .      .    .     +    +    .    .    .    .     x     .    +      .     .     +
scheduled  x    .    .      .    .     .    .    +    .    .    .     x     .    +      .     .     +
implement  x    .    .      .    .     .    .    .    +    +    .     x     .    .      .     .     .
failed     x    .    .      .    .     .    .    .    .    .    +     +     .    .      .     .     .
remediated x    .    .      .    .     .    .    .    .    .    .     +     +    .      .     g     .
review     x    .    .      .    .     .    .    .    .    .    .     x     +    .      .     g     .
closed     x    F    F      F    F     F    F    F    F    F    F     F     F    F      F     F     F
rejected   x    F    F      F    F     F    F    F    F    F    F     F     F    F      F     F     F
cancelled  x    F    F      F    F     F    F    F    F    F    F     F     F    F      F     F     F
";

const EMERGENCY: &str = "
status     log  plan assess ask  sched appr rej  impl ok   fail remed invst revw revert start close cancel
new        x    +    +      g    +     .    .    .    .    .    .     x     .    .      .     .     +
authorise  x    +    +      .    +     +    +    .    .    .    .     x     .    +      .     .     +
scheduled  x    .    +      .    +     .    .    +    .    .    .     x     .    +      .     .     +
implement  x    .    +      .    .     .    .    .    +    +    .     x     .    .      .     .     .
failed     x    .    +      .    .     .    .    .    .    .    +     +     .    .      .     .     .
remediated x    .    +      .    .     .    .    .    .    .    .     +     +    .      .     g     .
review     x    .    +      .    .     .    .    .    .    .    .     x     +    .      .     g     .
closed     x    F    F      F    F     F    F    F    F    F    F     F     F    F      F     F     F
rejected   x    F    F      F    F     F    F    F    F    F    F     F     F    F      F     F     F
cancelled  x    F    F      F    F     F    F    F    F    F    F     F     F    F      F     F     F
";

/// The approver every approval and rejection of the matrix comes from: a member of every
/// group, neither requester nor implementer.
const APPROVER: &str = "carl";

/// The columns: a label, who runs the command, the command.
fn columns(kind: ChangeKind) -> Vec<(&'static str, &'static str, ChangeCommand)> {
    use ChangeCommand as C;
    let implemented = |outcome| C::RecordImplementation {
        outcome,
        notes: "done".into(),
    };
    vec![
        ("log", REQUESTER, log_planned("CHG-1", kind)),
        ("plan", REQUESTER, C::Plan(template_plan(Some(IMPLEMENTER)))),
        ("assess", REQUESTER, assessment()),
        ("ask", REQUESTER, C::RequestAuthorisation),
        (
            "sched",
            REQUESTER,
            C::Schedule(window(t0() + TimeDelta::days(3), 2)),
        ),
        ("appr", APPROVER, C::Approve { group: None }),
        (
            "rej",
            APPROVER,
            C::Reject {
                group: None,
                reason: "too risky".into(),
            },
        ),
        ("impl", IMPLEMENTER, C::StartImplementation),
        (
            "ok",
            IMPLEMENTER,
            implemented(ImplementationOutcome::Success),
        ),
        (
            "fail",
            IMPLEMENTER,
            implemented(ImplementationOutcome::Failed),
        ),
        (
            "remed",
            IMPLEMENTER,
            C::RecordRemediation {
                restored: true,
                notes: "backed out".into(),
            },
        ),
        (
            "invst",
            REQUESTER,
            C::RecordInvestigation {
                findings: "a dependency was missing".into(),
            },
        ),
        (
            "revw",
            REQUESTER,
            C::RecordReview {
                successful: true,
                findings: "no incidents".into(),
            },
        ),
        (
            "revert",
            REQUESTER,
            C::Revert {
                reason: "new facts".into(),
            },
        ),
        ("start", REQUESTER, RecordCommand::Start.into()),
        ("close", REQUESTER, RecordCommand::Close.into()),
        (
            "cancel",
            REQUESTER,
            RecordCommand::Cancel {
                reason: "no longer needed".into(),
            }
            .into(),
        ),
    ]
}

/// The commands that bring a fresh change of `kind` into `status`, and who runs each.
fn path(kind: ChangeKind, status: &str) -> Vec<(&'static str, ChangeCommand)> {
    use ChangeCommand as C;
    let implemented = |outcome| C::RecordImplementation {
        outcome,
        notes: "done".into(),
    };
    let then = |from: &str, more: Vec<(&'static str, ChangeCommand)>| {
        let mut steps = path(kind, from);
        steps.extend(more);
        steps
    };
    let scheduled = C::Schedule(window(t0() + TimeDelta::days(2), 2));
    let approve = (APPROVER, C::Approve { group: None });
    match (kind, status) {
        (_, "new") => vec![(REQUESTER, log_planned("CHG-1", kind))],
        (ChangeKind::Normal, "assess") => {
            then("new", vec![(REQUESTER, RecordCommand::Start.into())])
        }
        (ChangeKind::Normal, "authorise") => then(
            "assess",
            vec![
                (REQUESTER, scheduled),
                (REQUESTER, assessment()),
                (REQUESTER, C::RequestAuthorisation),
            ],
        ),
        (ChangeKind::Emergency, "authorise") => then(
            "new",
            vec![(REQUESTER, scheduled), (REQUESTER, C::RequestAuthorisation)],
        ),
        (ChangeKind::Standard, "scheduled") => then("new", vec![(REQUESTER, scheduled)]),
        (ChangeKind::Normal | ChangeKind::Emergency, "scheduled") => {
            then("authorise", vec![approve])
        }
        (_, "implement") => then("scheduled", vec![(IMPLEMENTER, C::StartImplementation)]),
        (_, "review") => then(
            "implement",
            vec![(IMPLEMENTER, implemented(ImplementationOutcome::Success))],
        ),
        (_, "failed") => then(
            "implement",
            vec![(IMPLEMENTER, implemented(ImplementationOutcome::Failed))],
        ),
        (_, "remediated") => then(
            "failed",
            vec![(
                IMPLEMENTER,
                C::RecordRemediation {
                    restored: true,
                    notes: "backed out".into(),
                },
            )],
        ),
        (_, "closed") => {
            let mut more = vec![(
                REQUESTER,
                C::RecordReview {
                    successful: true,
                    findings: "no incidents".into(),
                },
            )];
            if kind == ChangeKind::Emergency {
                more.push((REQUESTER, assessment()));
            }
            more.push((REQUESTER, RecordCommand::Close.into()));
            then("review", more)
        }
        (_, "rejected") => then(
            "authorise",
            vec![(
                APPROVER,
                C::Reject {
                    group: None,
                    reason: "too risky".into(),
                },
            )],
        ),
        (_, "cancelled") => then(
            "new",
            vec![(
                REQUESTER,
                RecordCommand::Cancel {
                    reason: "no longer needed".into(),
                }
                .into(),
            )],
        ),
        (kind, status) => panic!("no path to {status} for a {kind} change"),
    }
}

/// The cell of a decision, as the legend says.
fn cell(decided: &Result<Vec<ChangeEvent>, ChangeRefusal>) -> char {
    use RefusalReason as R;
    let Err(refusal) = decided else {
        return '+';
    };
    let reason = &refusal.reason;
    if matches!(
        reason,
        R::NoTransition { .. } | R::Rule(ChangeRule::WrongStage { .. })
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

/// The table of `kind`, as the rules decide it today, with the reason behind each cell.
fn matrix(kind: ChangeKind) -> (String, Vec<String>) {
    let policy = Arc::new(policy());
    let columns = columns(kind);
    let mut table = String::from("\nstatus    ");
    for (label, _, _) in &columns {
        let _ = write!(table, " {label:<4}");
    }
    table.push('\n');
    let mut details = Vec::new();
    let lifecycle = smsys::processes::change::default_lifecycle(kind);
    for status in lifecycle.statuses() {
        let mut desk = Desk::new(policy.clone());
        for (who, command) in path(kind, &status.name) {
            desk.ok(who, &command);
        }
        assert_eq!(desk.state.record().status(), Some(status.name.as_str()));
        let _ = write!(table, "{:<10}", status.name);
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

fn check(kind: ChangeKind, expected: &str) {
    let (actual, details) = matrix(kind);
    let normalise = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        normalise(&actual),
        normalise(expected),
        "the {kind} change matrix changed; today's table:{actual}\nwhy:\n{}",
        details.join("\n")
    );
}

#[test]
fn standard_change_status_command_matrix() {
    check(ChangeKind::Standard, STANDARD);
}

#[test]
fn normal_change_status_command_matrix() {
    check(ChangeKind::Normal, NORMAL);
}

#[test]
fn emergency_change_status_command_matrix() {
    check(ChangeKind::Emergency, EMERGENCY);
}
