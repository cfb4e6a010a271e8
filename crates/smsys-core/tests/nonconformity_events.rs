//! Golden fixtures of the events of nonconformities: `nonconformity_events.v1.json` holds
//! today's encoding of the `logged` event (the shared payload, at its schema version, with the
//! nonconformity's source) for every kind of source, one example of every own event of a
//! nonconformity (each at schema version 1), and the transitions the reference lifecycle
//! takes, including the return to cause analysis after an ineffective review. Each row must
//! still load, also with its personal data erased, and today's encoding must equal the file.
//! `SMSYS_BLESS=1` rewrites it; once shipped, a changed event gets a new schema version, an
//! upcaster and a new file, and this one stays.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use smsys_core::records::nonconformity::{
    CorrectiveAction, CorrectiveActionEvent, NonconformityLogged,
};
use smsys_core::records::{
    Attributes, Channel, DefinitionRef, Logged, Nonconformity, NonconformityEvent,
    NonconformitySource, Phase, RecordEvent, RecordKind, TransitionDetail, TypedEvent,
};

mod golden;

use golden::Golden;

const V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/nonconformity_events.v1.json"
);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .expect("valid")
}

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("a valid id")
}

fn logged(reference: &str, source: NonconformitySource) -> NonconformityEvent {
    TypedEvent::Logged(NonconformityLogged {
        record: Logged {
            reference: id(reference),
            lifecycle: DefinitionRef {
                name: "nonconformity".into(),
                version: 1,
            },
            status: "raised".into(),
            caller: id("quality"),
            channel: Channel::Monitoring,
            service: id("email"),
            affected_cis: vec![id("mx-01")],
            summary: "resolution target missed".into(),
            description: "raised from the breach".into(),
            attributes: Attributes::new(),
        },
        source,
    })
}

fn moved(transition: &str, from: &str, to: &str, phase: Phase) -> NonconformityEvent {
    let detail = match phase {
        Phase::Cancelled => TransitionDetail::Cancellation {
            reason: "raised twice".into(),
        },
        Phase::New | Phase::Active | Phase::Pending | Phase::Resolved | Phase::Closed => {
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

/// Today's encoding: the logged event for every source, every own event, the transitions.
fn examples() -> Vec<NonconformityEvent> {
    let sources = [
        NonconformitySource::SlaBreach {
            record: id("INC-0007"),
            timer: "resolution".into(),
        },
        NonconformitySource::FailedChange {
            change: id("CHG-0003"),
        },
        NonconformitySource::AuditFinding {
            audit: "internal audit 2026-Q4, finding 3".into(),
        },
        NonconformitySource::Complaint {
            record: Some(id("REQ-0002")),
        },
        NonconformitySource::Complaint { record: None },
        NonconformitySource::Manual,
    ];
    let own = [
        CorrectiveActionEvent::Corrected {
            correction: "restarted the queue".into(),
        },
        CorrectiveActionEvent::CauseAnalysed {
            cause: "no capacity alert".into(),
            method: "five whys".into(),
        },
        CorrectiveActionEvent::ActionPlanned {
            actions: vec![CorrectiveAction {
                description: "alert at 80 % queue depth".into(),
                owner: id("olga"),
                due: NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid"),
            }],
        },
        CorrectiveActionEvent::ActionImplemented {
            notes: "alert configured".into(),
        },
        CorrectiveActionEvent::EffectivenessReviewed {
            effective: false,
            findings: "breached again".into(),
        },
        CorrectiveActionEvent::EffectivenessReviewed {
            effective: true,
            findings: "no breach for a month".into(),
        },
    ];
    sources
        .into_iter()
        .zip([
            "NC-0001", "NC-0002", "NC-0003", "NC-0004", "NC-0005", "NC-0006",
        ])
        .map(|(source, reference)| logged(reference, source))
        .chain(own.map(TypedEvent::Own))
        .chain([
            moved("correct", "raised", "corrected", Phase::Active),
            moved("analyse", "corrected", "analysed", Phase::Active),
            moved("plan_action", "analysed", "action_planned", Phase::Active),
            moved(
                "implement",
                "action_planned",
                "action_implemented",
                Phase::Pending,
            ),
            moved(
                "reanalyse",
                "action_implemented",
                "corrected",
                Phase::Active,
            ),
            moved(
                "confirm_effective",
                "action_implemented",
                "effective",
                Phase::Resolved,
            ),
            moved("close", "effective", "closed", Phase::Closed),
            moved("cancel", "raised", "cancelled", Phase::Cancelled),
        ])
        .collect()
}

fn golden() -> Golden<Nonconformity> {
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
        "the shipped policy names personal fields of nonconformities"
    );
}

#[test]
fn the_fixture_holds_the_logged_event_and_every_own_event() {
    golden().check_coverage();
}

#[test]
fn the_fixture_folds_into_a_nonconformity() {
    let nc = golden().folded(at());
    assert_eq!(nc.record().status(), Some("cancelled"));
    assert_eq!(nc.source(), Some(&NonconformitySource::Manual));
    assert_eq!(nc.round(), 2, "one ineffective review");
    assert_eq!(nc.reviews().len(), 2);
    assert_eq!(nc.analyses().len(), 1);
    assert_eq!(nc.analyses()[0].round, 1);
    assert!(nc.effective_review().is_some());
}
