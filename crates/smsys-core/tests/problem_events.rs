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

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use smsys_core::records::problem::ProblemControlEvent;
use smsys_core::records::{
    Attributes, Channel, DefinitionRef, Logged, OwnEvents, Phase, Problem, ProblemEvent,
    RecordEvent, RecordKind, TransitionDetail, TypedEvent,
};
use smsys_core::{DomainEvent, EventSourced, EventType, Stamp};

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

fn encode(event: &ProblemEvent) -> Value {
    json!({
        "event_type": event.event_type().as_str(),
        "schema_version": event.schema_version(),
        "payload": event.to_payload().expect("encodes"),
    })
}

fn encode_all() -> Value {
    Value::Array(examples().iter().map(encode).collect())
}

/// With `SMSYS_BLESS` set, rewrites the fixture from today's encoding (by a rename, so a
/// parallel reader sees the old or the new file whole).
fn bless() {
    if std::env::var_os("SMSYS_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&encode_all()).expect("encodes");
        let tmp = format!("{V1}.{:?}.tmp", std::thread::current().id());
        std::fs::write(&tmp, text + "\n").expect("writes the fixture");
        std::fs::rename(&tmp, V1).expect("replaces the fixture");
    }
}

fn read_rows() -> Vec<Value> {
    let text = std::fs::read_to_string(V1).unwrap_or_else(|e| panic!("{V1}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{V1}: {e}"))
}

/// Reads a stored row the way every reader does: through the problem's upcasters.
fn load(row: &Value) -> ProblemEvent {
    let event_type = EventType::new(row["event_type"].as_str().expect("a string")).expect("valid");
    let version = row["schema_version"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .expect("a schema version");
    Problem::upcasters()
        .decode(&event_type, version, row["payload"].clone())
        .unwrap_or_else(|e| panic!("{event_type} no longer loads: {e}"))
}

#[test]
fn todays_encoding_equals_the_fixture() {
    bless();
    assert_eq!(
        encode_all(),
        Value::Array(read_rows()),
        "an event changed shape: add a schema version, an upcaster and a new fixture"
    );
}

#[test]
fn every_fixture_row_loads_as_todays_event() {
    bless();
    let rows = read_rows();
    let expected = examples();
    assert_eq!(rows.len(), expected.len(), "one fixture row per example");
    for (row, want) in rows.iter().zip(&expected) {
        assert_eq!(&load(row), want, "{}", row["event_type"]);
        assert_eq!(
            row["schema_version"],
            want.schema_version(),
            "{}",
            row["event_type"]
        );
        if let TypedEvent::Own(_) = want {
            assert_eq!(row["schema_version"], 1, "{}", row["event_type"]);
        }
    }
}

#[test]
fn the_fixture_holds_the_logged_event_and_every_own_event() {
    let covered: BTreeSet<String> = examples()
        .iter()
        .filter(|e| !matches!(e, TypedEvent::Record(_)))
        .map(|e| e.event_type().to_string())
        .collect();
    let every: BTreeSet<String> = ["logged"]
        .iter()
        .chain(<ProblemControlEvent as OwnEvents>::NAMES)
        .map(|n| format!("{}.{n}", Problem::CATEGORY))
        .collect();
    assert_eq!(covered, every, "add an example of every new event");
}

#[test]
fn the_fixture_folds_into_a_problem() {
    bless();
    let mut problem = Problem::default();
    for row in read_rows() {
        problem.evolve(&load(&row), Stamp::new(None, at()));
    }
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
