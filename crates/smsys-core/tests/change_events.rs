//! Golden fixtures of the events of changes: `change_events.v1.json` holds today's encoding of
//! the `logged` event (the shared payload, at its schema version 2, with the change's kind and,
//! for a standard change, its template pin) with and without the template, one example of
//! every own event of a change (each at schema version 1) with and without their optional
//! fields, and the transitions the three reference lifecycles (standard, normal, emergency)
//! take, each with the detail the rules record. Each row must still load, and today's
//! encoding must equal the file. `SMSYS_BLESS=1` rewrites it; once shipped, a changed event
//! gets a new schema version, an upcaster and a new file, and this one stays.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys_core::Position;
use smsys_core::records::change::{
    Assessment, ChangeControlEvent, ChangeLogged, ChangePlan, ChangeWindow, ConflictNote,
    ImpactAnalysis, ImplementationOutcome, PlannedCiUpdate, RiskCondition, RiskLevel, TemplatePin,
};
use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, Change, ChangeEvent, ChangeKind, Channel,
    DefinitionRef, Level, Logged, Phase, RecordEvent, RecordKind, TransitionDetail, TypedEvent,
};

mod golden;

use golden::Golden;

const V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/change_events.v1.json"
);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .expect("valid")
}

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("a valid id")
}

fn logged(lifecycle: &str, kind: ChangeKind, template: Option<TemplatePin>) -> ChangeEvent {
    TypedEvent::Logged(ChangeLogged {
        record: Logged {
            reference: id("CHG-0001"),
            lifecycle: DefinitionRef {
                name: lifecycle.into(),
                version: 1,
            },
            status: "new".into(),
            caller: id("rita"),
            channel: Channel::Portal,
            service: id("email"),
            affected_cis: vec![id("mx-01")],
            summary: "patch the mail server".into(),
            description: "CVE-2026-1".into(),
            attributes: Attributes::new(),
        },
        kind,
        template,
    })
}

/// A plan with every optional field set, and one with none.
fn plans() -> [ChangePlan; 2] {
    let full = ChangePlan {
        cis: vec![id("mx-01"), id("mx-02")],
        implementation: "apply the patch, restart".into(),
        remediation: "reinstall the previous package".into(),
        test_plan: "send a test mail".into(),
        implementer: Some(id("ivan")),
        ci_updates: vec![
            PlannedCiUpdate {
                ci: id("mx-01"),
                set: Attributes::from([(
                    AttributeName::new("version").expect("valid"),
                    AttributeValue::from("2.4.1"),
                )]),
                removed: vec![AttributeName::new("hotfix").expect("valid")],
                status: Some("live".into()),
            },
            PlannedCiUpdate {
                ci: id("mx-02"),
                set: Attributes::new(),
                removed: Vec::new(),
                status: None,
            },
        ],
    };
    let bare = ChangePlan {
        cis: Vec::new(),
        implementation: "restart".into(),
        remediation: "start the previous binary".into(),
        test_plan: String::new(),
        implementer: None,
        ci_updates: Vec::new(),
    };
    [full, bare]
}

/// An assessment with every optional field set, and one with none.
fn assessments() -> [Assessment; 2] {
    let full = Assessment {
        probability: Level::Medium,
        impact: Level::High,
        matrix_version: 1,
        base_risk: RiskLevel::Moderate,
        risk: RiskLevel::High,
        conditions: vec![RiskCondition {
            name: "insufficient_lead_time".into(),
            detail: "starts in 2 hours".into(),
        }],
        major: true,
        analysis: ImpactAnalysis {
            services: vec![id("email")],
            customers: vec!["sales".into()],
            affected_cis: 3,
            as_of: Some(Position::new(0, 42)),
        },
        benefit: "closes CVE-2026-1".into(),
        cost: "2 hours".into(),
        feasibility: "routine".into(),
    };
    let bare = Assessment {
        probability: Level::Low,
        impact: Level::Low,
        matrix_version: 2,
        base_risk: RiskLevel::Low,
        risk: RiskLevel::Low,
        conditions: Vec::new(),
        major: false,
        analysis: ImpactAnalysis::default(),
        benefit: String::new(),
        cost: String::new(),
        feasibility: String::new(),
    };
    [full, bare]
}

fn window(days: i64) -> ChangeWindow {
    ChangeWindow {
        start: at() + TimeDelta::days(days),
        end: at() + TimeDelta::days(days) + TimeDelta::hours(2),
        time_zone: "Europe/Paris".into(),
    }
}

/// Every own event, some twice (with and without optional fields); the later ones replace
/// the earlier ones where the state keeps one.
fn own_events() -> Vec<ChangeControlEvent> {
    use ChangeControlEvent as E;
    let [full_plan, bare_plan] = plans();
    let [full_assessment, bare_assessment] = assessments();
    let approval = |who: &str, group: &str| E::ApprovalGiven {
        approver: id(who),
        group: id(group),
    };
    vec![
        E::Planned(full_plan),
        E::Assessed(full_assessment),
        approval("carl", "cab"),
        E::ApprovalRejected {
            approver: id("dana"),
            group: id("cab"),
            reason: "no test plan".into(),
        },
        E::Authorised {
            rule: "cab".into(),
            approvers: vec![id("carl"), id("dana")],
        },
        E::ApprovalsReset {
            reason: "the plan changed after 1 approval(s)".into(),
        },
        E::Planned(bare_plan),
        E::Assessed(bare_assessment),
        approval("erin", "ecab"),
        E::Authorised {
            rule: "ecab".into(),
            approvers: vec![id("erin")],
        },
        E::Scheduled {
            window: window(1),
            warnings: vec![
                ConflictNote {
                    kind: "same_ci".into(),
                    detail: "CHG-9 on mx-01".into(),
                    with: Some(id("CHG-9")),
                    ci: Some(id("mx-01")),
                },
                ConflictNote {
                    kind: "freeze".into(),
                    detail: "year-end freeze".into(),
                    with: None,
                    ci: None,
                },
            ],
        },
        E::Scheduled {
            window: window(2),
            warnings: Vec::new(),
        },
        E::Implemented {
            outcome: ImplementationOutcome::Success,
            notes: "patched".into(),
        },
        E::Implemented {
            outcome: ImplementationOutcome::Partial,
            notes: "one of two patched".into(),
        },
        E::Implemented {
            outcome: ImplementationOutcome::Failed,
            notes: "service did not start".into(),
        },
        E::RemediationExecuted {
            restored: true,
            notes: "previous package reinstalled".into(),
        },
        E::FailureInvestigated {
            findings: "a dependency was missing".into(),
        },
        E::Reviewed {
            successful: false,
            findings: "backed out, no incidents".into(),
        },
    ]
}

fn moved(transition: &str, from: &str, to: &str, phase: Phase) -> ChangeEvent {
    let detail = match (transition, phase) {
        ("reject", _) => TransitionDetail::Cancellation {
            reason: "rejected by carl: no test plan".into(),
        },
        (_, Phase::Cancelled) => TransitionDetail::Cancellation {
            reason: "superseded by CHG-2".into(),
        },
        (_, Phase::Closed) => TransitionDetail::Closure { automatic: false },
        (_, Phase::New | Phase::Active | Phase::Pending | Phase::Resolved) => {
            TransitionDetail::Plain
        }
    };
    TypedEvent::Record(RecordEvent::Transitioned {
        transition: transition.into(),
        from: from.into(),
        to: to.into(),
        phase,
        detail,
        at: at(),
    })
}

/// Every (transition, from, to) of the three reference lifecycles, once.
fn transitions() -> Vec<ChangeEvent> {
    use Phase::{Active, Cancelled, Closed, New, Pending, Resolved};
    [
        ("schedule", "new", "scheduled", Active),
        ("assess", "new", "assess", Active),
        ("request_authorisation", "assess", "authorise", Pending),
        ("request_authorisation", "new", "authorise", Pending),
        ("authorise", "authorise", "scheduled", Active),
        ("reject", "authorise", "rejected", Cancelled),
        ("implement", "scheduled", "implement", Active),
        ("complete", "implement", "review", Resolved),
        ("fail", "implement", "failed", Active),
        ("remediate", "failed", "remediated", Resolved),
        ("revert", "assess", "new", New),
        ("revert", "authorise", "new", New),
        ("revert", "scheduled", "new", New),
        ("cancel", "new", "cancelled", Cancelled),
        ("cancel", "assess", "cancelled", Cancelled),
        ("cancel", "authorise", "cancelled", Cancelled),
        ("cancel", "scheduled", "cancelled", Cancelled),
        ("close", "review", "closed", Closed),
        ("close", "remediated", "closed", Closed),
    ]
    .into_iter()
    .map(|(transition, from, to, phase)| moved(transition, from, to, phase))
    .collect()
}

fn pin() -> TemplatePin {
    TemplatePin {
        template: "restart-mx".into(),
        version: 2,
    }
}

/// Today's encoding: the logged event without and with a template, every own event, the
/// transitions of the lifecycles.
fn examples() -> Vec<ChangeEvent> {
    [
        logged("change_normal", ChangeKind::Normal, None),
        logged("change_emergency", ChangeKind::Emergency, None),
        logged("change_standard", ChangeKind::Standard, Some(pin())),
    ]
    .into_iter()
    .chain(own_events().into_iter().map(TypedEvent::Own))
    .chain(transitions())
    .collect()
}

fn golden() -> Golden<Change> {
    Golden {
        path: V1,
        examples: examples(),
    }
}

#[test]
fn todays_encoding_equals_the_fixture() {
    golden().check_encoding();
}

#[test]
fn every_fixture_row_loads_as_todays_event() {
    golden().check_rows_load();
}

#[test]
fn every_fixture_row_loads_with_its_personal_data_erased() {
    assert!(
        golden().check_erased_rows_load() > 0,
        "the personal data policy names fields of change events"
    );
}

#[test]
fn the_fixture_holds_the_logged_event_and_every_own_event() {
    golden().check_coverage();
}

/// The `(name, from, to)` of every transition of a lifecycle file of `smsys-processes`, read
/// from its one-line `{ name = .., trigger = .., from = [..], to = .. }` entries.
fn lifecycle_transitions(file: &str) -> Vec<(String, String, String)> {
    let path = format!(
        "{}/../smsys-processes/src/change/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("the lifecycle file");
    let field = |line: &str, key: &str| -> String {
        let rest = &line[line.find(key).expect("the field") + key.len()..];
        let end = rest.find([',', '}']).expect("the field ends");
        rest[..end].trim().trim_matches('"').to_owned()
    };
    let mut found = Vec::new();
    for line in text.lines().filter(|l| l.contains("trigger =")) {
        let from = &line[line.find("from = [").expect("from") + 8..];
        let from = &from[..from.find(']').expect("the list ends")];
        for status in from.split(',') {
            found.push((
                field(line, "name = "),
                status.trim().trim_matches('"').to_owned(),
                field(line, "to = "),
            ));
        }
    }
    found
}

#[test]
fn the_fixture_covers_every_transition_of_the_reference_lifecycles() {
    let recorded: Vec<(String, String, String)> = transitions()
        .iter()
        .filter_map(|e| match e {
            TypedEvent::Record(RecordEvent::Transitioned {
                transition,
                from,
                to,
                ..
            }) => Some((transition.clone(), from.clone(), to.clone())),
            TypedEvent::Logged(_) | TypedEvent::Record(_) | TypedEvent::Own(_) => None,
        })
        .collect();
    for file in ["standard.toml", "normal.toml", "emergency.toml"] {
        let every = lifecycle_transitions(file);
        assert!(every.len() >= 8, "{file}: read {every:?}");
        for transition in every {
            assert!(
                recorded.contains(&transition),
                "{file}: no example of {transition:?}"
            );
        }
    }
}

#[test]
fn the_fixture_folds_into_a_change() {
    let change = golden().folded(at());
    assert_eq!(change.kind(), Some(ChangeKind::Standard), "the last logged");
    assert_eq!(change.template(), Some(&pin()));
    assert_eq!(change.record().reference(), Some(&id("CHG-0001")));
    assert_eq!(change.record().caller(), Some(&id("rita")));
    let [_, bare_plan] = plans();
    assert_eq!(change.plan(), Some(&bare_plan), "the revised plan replaces");
    assert_eq!(change.plan_revision(), 2);
    let [_, bare_assessment] = assessments();
    assert_eq!(change.assessment(), Some(&bare_assessment));
    assert_eq!(change.resets(), 1);
    let approvers: Vec<String> = change
        .approvals()
        .iter()
        .map(|a| a.approver.to_string())
        .collect();
    assert_eq!(
        approvers,
        ["erin"],
        "only the approval given after the reset"
    );
    assert_eq!(change.rejection(), None, "the reset clears the rejection");
    let authorisation = change.authorisation().expect("authorised after the reset");
    assert_eq!(authorisation.rule, "ecab");
    assert_eq!(change.window(), Some(&window(2)));
    assert!(change.warnings().is_empty(), "the later schedule replaces");
    let implementation = change.implementation().expect("implemented");
    assert_eq!(implementation.outcome, ImplementationOutcome::Failed);
    assert_eq!(implementation.at, at());
    let (restored, remediation) = change.remediation().expect("remediated");
    assert!(restored);
    assert_eq!(remediation.findings, "previous package reinstalled");
    assert_eq!(
        change.investigation().map(|i| i.findings.as_str()),
        Some("a dependency was missing")
    );
    let review = change.review().expect("reviewed");
    assert!(!review.successful);
    assert_eq!(
        change.record().status(),
        Some("closed"),
        "the last transition"
    );
    assert_eq!(change.record().phase(), Some(Phase::Closed));
}
