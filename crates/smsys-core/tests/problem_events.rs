//! Golden fixtures of the events of problems: `problem_events.v1.json` holds today's encoding
//! of the `logged` event (the shared payload, at its schema version 2) and one example of
//! every own event of a problem (each at schema version 1), and of the shared events a
//! problem's own endings record (the risk acceptance and duplicate resolutions). The shared
//! events are otherwise the same on every category and kept in `record_events.v*.json`. Each
//! row must still load, and today's encoding must equal the file. `SMSYS_BLESS=1` rewrites
//! it; once shipped, a changed event gets a new schema version, an upcaster and a new file,
//! and this one stays.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use chrono::{DateTime, TimeZone, Utc};
use smsys_core::records::problem::ProblemControlEvent;
use smsys_core::records::{
    Attributes, Channel, DefinitionRef, Logged, Phase, Problem, ProblemEvent, RecordEvent,
    RecordKind, TransitionDetail, TypedEvent,
};

mod golden;

use golden::Golden;

const V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/problem_events.v1.json"
);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .expect("valid")
}

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("a valid id")
}

fn resolved(transition: &str, code: &str, notes: &str) -> RecordEvent {
    RecordEvent::Transitioned {
        transition: transition.into(),
        from: "root_cause_analysis".into(),
        to: "resolved".into(),
        phase: Phase::Resolved,
        detail: TransitionDetail::Resolution {
            code: code.into(),
            notes: notes.into(),
        },
        at: at(),
    }
}

/// Today's encoding: the logged event, every own event, the resolutions of the own endings.
fn examples() -> Vec<ProblemEvent> {
    let logged = TypedEvent::Logged(Logged {
        reference: id("PRB-1"),
        lifecycle: DefinitionRef {
            name: "problem".into(),
            version: 1,
        },
        status: "new".into(),
        caller: id("ana"),
        channel: Channel::Monitoring,
        service: id("email"),
        affected_cis: vec![id("mx-01")],
        summary: "recurring bounces".into(),
        description: "12 incidents this week".into(),
        attributes: Attributes::new(),
    });
    let own = [
        ProblemControlEvent::RootCauseRecorded {
            cause: "mx queue fills on retries".into(),
            method: "five whys".into(),
            contributing_cis: vec![id("mx-01"), id("mx-02")],
        },
        ProblemControlEvent::RootCauseRecorded {
            cause: "unknown vendor fault".into(),
            method: String::new(),
            contributing_cis: Vec::new(),
        },
        ProblemControlEvent::WorkaroundRecorded {
            text: "flush the queue".into(),
            published: true,
        },
        ProblemControlEvent::WorkaroundRecorded {
            text: "restart mx".into(),
            published: false,
        },
        ProblemControlEvent::RiskAccepted {
            reason: "mx replaced next quarter".into(),
        },
        ProblemControlEvent::MarkedDuplicate { of: id("PRB-0") },
        ProblemControlEvent::EffectivenessReviewed {
            resolved_at: at(),
            from: at(),
            to: at() + chrono::Duration::days(30),
            recurrences: vec![id("INC-9")],
            effective: false,
        },
        ProblemControlEvent::EffectivenessReviewed {
            resolved_at: at(),
            from: at(),
            to: at() + chrono::Duration::days(30),
            recurrences: Vec::new(),
            effective: true,
        },
    ];
    std::iter::once(logged)
        .chain(own.map(TypedEvent::Own))
        .chain(
            [
                resolved("accept_risk", "risk_accepted", "mx replaced next quarter"),
                resolved("duplicate", "duplicate", "duplicate of PRB-0"),
            ]
            .map(TypedEvent::Record),
        )
        .collect()
}

fn golden() -> Golden<Problem> {
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
        "the personal data policy names fields of problem events"
    );
}

#[test]
fn the_fixture_holds_the_logged_event_and_every_own_event() {
    golden().check_coverage();
}

#[test]
fn the_fixture_folds_into_a_problem() {
    let problem = golden().folded(at());
    assert_eq!(problem.record().status(), Some("resolved"));
    let cause = problem.root_cause().expect("a root cause");
    assert_eq!(
        cause.cause, "unknown vendor fault",
        "the later one replaces"
    );
    let workaround = problem.workaround().expect("a workaround");
    assert!(!workaround.published);
    assert_eq!(
        problem.accepted_risk().map(|r| r.reason.as_str()),
        Some("mx replaced next quarter")
    );
    assert_eq!(problem.duplicate_of(), Some(&id("PRB-0")));
    assert_eq!(
        problem.record().resolution().map(|r| r.code.as_str()),
        Some("duplicate")
    );
}
