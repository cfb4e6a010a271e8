//! Golden fixtures of the events of known errors: `known_error_events.v1.json` holds today's
//! encoding of the `logged` event (the shared payload, at its schema version 2, with the known
//! error's own logged fields) and one example of every own event of a known error (each at
//! schema version 1), with and without their optional fields, and the shared transitions its
//! lifecycle takes (publish, retire, discard). Each row must still load, and today's encoding
//! must equal the file. `SMSYS_BLESS=1` rewrites it; once shipped, a changed event gets a new
//! schema version, an upcaster and a new file, and this one stays.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use chrono::{DateTime, TimeZone, Utc};
use smsys_core::records::known_error::{KnownErrorLogged, KnownErrorVersion, PublicationEvent};
use smsys_core::records::{
    Attributes, Channel, DefinitionRef, KnownError, KnownErrorEvent, Logged, Phase, RecordEvent,
    RecordKind, TransitionDetail, TypedEvent,
};

mod golden;

use golden::Golden;

const V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/known_error_events.v1.json"
);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .expect("valid")
}

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("a valid id")
}

fn moved(transition: &str, from: &str, to: &str, phase: Phase) -> KnownErrorEvent {
    let detail = match phase {
        Phase::Cancelled => TransitionDetail::Cancellation {
            reason: "never confirmed".into(),
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

/// Today's encoding: the logged event, every own event, the transitions of the lifecycle.
fn examples() -> Vec<KnownErrorEvent> {
    let logged = TypedEvent::Logged(KnownErrorLogged {
        record: Logged {
            reference: id("KE-0001"),
            lifecycle: DefinitionRef {
                name: "known_error".into(),
                version: 1,
            },
            status: "draft".into(),
            caller: id("ana"),
            channel: Channel::Portal,
            service: id("email"),
            affected_cis: vec![id("mx-01")],
            summary: "mail bounces under load".into(),
            description: "from PRB-1".into(),
            attributes: Attributes::new(),
        },
        problem: Some(id("PRB-1")),
        symptom: "mail bounces with 451".into(),
        root_cause: None,
        workaround: Some("flush the queue".into()),
        affected_services: vec![id("smtp-relay")],
    });
    let own = [
        PublicationEvent::ContentRevised {
            symptom: "mail bounces with 451".into(),
            root_cause: Some("mx queue fills on retries".into()),
            workaround: Some("flush the queue".into()),
            affected_cis: vec![id("mx-01"), id("mx-02")],
            affected_services: vec![id("smtp-relay")],
            reason: "root cause found".into(),
        },
        PublicationEvent::Published {
            version: KnownErrorVersion::FIRST,
        },
        PublicationEvent::ContentRevised {
            symptom: "mail bounces".into(),
            root_cause: None,
            workaround: None,
            affected_cis: Vec::new(),
            affected_services: Vec::new(),
            reason: String::new(),
        },
        PublicationEvent::Retired {
            reason: "fixed by CHG-7".into(),
            superseded_by: Some(id("KE-0002")),
        },
        PublicationEvent::Retired {
            reason: "obsolete".into(),
            superseded_by: None,
        },
    ];
    std::iter::once(logged)
        .chain(own.map(TypedEvent::Own))
        .chain([
            moved("publish", "draft", "published", Phase::Active),
            moved("retire", "published", "retired", Phase::Closed),
            moved("discard", "draft", "discarded", Phase::Cancelled),
        ])
        .collect()
}

fn golden() -> Golden<KnownError> {
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
        "the personal data policy names fields of known error events"
    );
}

#[test]
fn the_fixture_holds_the_logged_event_and_every_own_event() {
    golden().check_coverage();
}

#[test]
fn the_fixture_folds_into_a_known_error() {
    let known_error = golden().folded(at());
    assert_eq!(known_error.record().status(), Some("discarded"));
    assert_eq!(known_error.problem(), Some(&id("PRB-1")));
    let numbers: Vec<u32> = known_error
        .versions()
        .iter()
        .map(|v| v.version.get())
        .collect();
    assert_eq!(
        numbers,
        [1, 2],
        "a revision once published is the next version"
    );
    assert_eq!(known_error.version(), KnownErrorVersion::new(2));
    let first = &known_error.versions()[0].content;
    assert_eq!(
        first.root_cause.as_deref(),
        Some("mx queue fills on retries"),
        "the draft revision is in version 1"
    );
    assert_eq!(known_error.content().symptom, "mail bounces");
    let retired = known_error.retired().expect("retired");
    assert_eq!(retired.reason, "obsolete", "the later one replaces");
    assert_eq!(retired.superseded_by, None);
}
