//! Golden fixtures of the events of releases: `release_events.v1.json` holds today's encoding
//! of the `logged` event (the shared payload, at its schema version, with the release's kind,
//! criteria and environments) for the three kinds, one example of every own event of a
//! release (each at schema version 1) with and without their optional fields, and the
//! transitions the reference release lifecycle takes, each with the detail the rules record.
//! Each row must still load, today's encoding must equal the file, and the baselines in it
//! must still verify against their recorded hash. `SMSYS_BLESS=1` rewrites it; once shipped, a
//! changed event gets a new schema version, an upcaster and a new file, and this one stays.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys_core::Position;
use smsys_core::records::change::PlannedCiUpdate;
use smsys_core::records::release::{
    AcceptanceCriterion, Baseline, BaselineCi, DeploymentOutcome, ReleaseControlEvent,
    ReleaseLogged, ReleasePlan,
};
use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, Channel, DefinitionRef, Logged, Phase, RecordEvent,
    RecordKind, Relationship, Release, ReleaseEvent, ReleaseKind, TransitionDetail, TypedEvent,
};

mod golden;

use golden::Golden;

const V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/release_events.v1.json"
);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .expect("valid")
}

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("a valid id")
}

fn attribute(name: &str, value: &str) -> (AttributeName, AttributeValue) {
    (AttributeName::new(name).expect("valid"), value.into())
}

fn criterion(name: &str, description: &str) -> AcceptanceCriterion {
    AcceptanceCriterion {
        name: name.into(),
        description: description.into(),
    }
}

fn logged(kind: ReleaseKind, environments: &[&str]) -> ReleaseEvent {
    let criteria = match kind {
        ReleaseKind::Major => vec![
            criterion("functional_tests", "The functional tests pass in test."),
            criterion("user_acceptance", ""),
        ],
        ReleaseKind::Minor => vec![criterion("regression_tests", "")],
        ReleaseKind::Emergency => Vec::new(),
    };
    let early_life_days = match kind {
        ReleaseKind::Major => 14,
        ReleaseKind::Minor => 7,
        ReleaseKind::Emergency => 3,
    };
    TypedEvent::Logged(ReleaseLogged {
        early_life_days,
        record: Logged {
            reference: id("REL-0001"),
            lifecycle: DefinitionRef {
                name: "release".into(),
                version: 1,
            },
            status: "planned".into(),
            caller: id("rita"),
            channel: Channel::Portal,
            service: id("email"),
            affected_cis: vec![id("app-01")],
            summary: "mail 2.5".into(),
            description: "the mail service, release 2.5".into(),
            attributes: Attributes::new(),
        },
        kind,
        criteria,
        environments: environments.iter().map(|e| (*e).to_owned()).collect(),
    })
}

/// A plan with every optional field set, and one with none.
fn plans() -> [ReleasePlan; 2] {
    let full = ReleasePlan {
        cis: vec![id("app-01"), id("srv-01")],
        services: vec![id("webmail")],
        deployment: "blue-green switch".into(),
        rollback: "switch back".into(),
        deployer: Some(id("dave")),
        ci_updates: vec![PlannedCiUpdate {
            ci: id("app-01"),
            set: Attributes::from([attribute("version", "2.5")]),
            removed: vec![AttributeName::new("hotfix").expect("valid")],
            status: Some("live".into()),
        }],
    };
    let bare = ReleasePlan {
        cis: vec![id("app-01")],
        services: Vec::new(),
        deployment: "copy the package".into(),
        rollback: "copy the previous package".into(),
        deployer: None,
        ci_updates: Vec::new(),
    };
    [full, bare]
}

/// A baseline of two CIs with attributes and a relationship, and one of a bare CI.
fn baselines() -> [Baseline; 2] {
    let app = BaselineCi {
        id: id("app-01"),
        ci_type: id("application"),
        name: "mail app".into(),
        status: "live".into(),
        attributes: Attributes::from([attribute("version", "2.4"), attribute("owner", "ops")]),
        relationships: vec![(Relationship::RUNS_ON, id("srv-01"))],
    };
    let srv = BaselineCi {
        id: id("srv-01"),
        ci_type: id("server"),
        name: "srv-01".into(),
        status: "maintenance".into(),
        attributes: Attributes::new(),
        relationships: Vec::new(),
    };
    [
        Baseline::new(Position::new(0, 42), vec![srv, app.clone()]),
        Baseline::new(Position::new(3, 57), vec![app]),
    ]
}

/// Every own event, some twice (with and without optional fields, each outcome); the later
/// ones replace the earlier ones where the state keeps one.
fn own_events() -> Vec<ReleaseControlEvent> {
    use ReleaseControlEvent as E;
    let [full_plan, bare_plan] = plans();
    let [first, second] = baselines();
    let deployed = |environment: &str, outcome| E::Deployed {
        environment: environment.into(),
        outcome,
        notes: "switched".into(),
    };
    vec![
        E::Planned(full_plan),
        E::Planned(bare_plan),
        E::Built {
            build: "2.5.0".into(),
            notes: "tag v2.5.0".into(),
        },
        E::CriterionVerified {
            criterion: "functional_tests".into(),
            passed: false,
            evidence: "run 41: 2 failures".into(),
        },
        E::CriterionVerified {
            criterion: "functional_tests".into(),
            passed: true,
            evidence: "run 42".into(),
        },
        E::ApprovalGiven {
            approver: id("carl"),
            group: id("cab"),
        },
        E::ApprovalRejected {
            approver: id("dana"),
            group: id("cab"),
            reason: "no rollback rehearsal".into(),
        },
        E::Authorised {
            rule: "cab".into(),
            approvers: vec![id("carl"), id("dana")],
        },
        E::BaselineTaken(first.clone()),
        deployed("test", DeploymentOutcome::Success),
        deployed("production", DeploymentOutcome::Failed),
        E::RolledBack {
            environment: "production".into(),
            baseline: first.hash,
            restored: true,
            notes: "switched back".into(),
        },
        E::BaselineTaken(second),
        deployed("test", DeploymentOutcome::Success),
        E::EarlyLifeStarted {
            until: at() + TimeDelta::days(14),
        },
        E::IncidentCorrelated {
            incident: id("INC-7"),
            cis: vec![id("app-01")],
            service: Some(id("email")),
        },
        E::IncidentCorrelated {
            incident: id("INC-8"),
            cis: Vec::new(),
            service: None,
        },
        E::EarlyLifeWaived {
            reason: "the service owner signs off".into(),
        },
        E::EarlyLifeReviewed {
            successful: true,
            findings: "two minor incidents".into(),
            incidents: vec![id("INC-7"), id("INC-8")],
        },
    ]
}

fn moved(transition: &str, from: &str, to: &str, phase: Phase) -> ReleaseEvent {
    let detail = match (transition, phase) {
        ("reject", _) => TransitionDetail::Cancellation {
            reason: "rejected by dana: no rollback rehearsal".into(),
        },
        (_, Phase::Cancelled) => TransitionDetail::Cancellation {
            reason: "superseded by REL-2".into(),
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

/// Every (transition, from, to) of the reference release lifecycle, once; the closure last.
fn transitions() -> Vec<ReleaseEvent> {
    use Phase::{Active, Cancelled, Closed, Pending, Resolved};
    [
        ("build", "planned", "built", Active),
        ("accept", "built", "accepted", Pending),
        ("approve", "accepted", "approved", Active),
        ("reject", "accepted", "rejected", Cancelled),
        ("baseline", "approved", "baselined", Active),
        ("baseline", "rolled_back", "baselined", Active),
        ("deploy", "baselined", "deploying", Active),
        ("fail", "deploying", "failed", Active),
        ("roll_back", "failed", "rolled_back", Active),
        ("complete", "deploying", "early_life", Resolved),
        ("cancel", "planned", "cancelled", Cancelled),
        ("cancel", "built", "cancelled", Cancelled),
        ("cancel", "accepted", "cancelled", Cancelled),
        ("cancel", "approved", "cancelled", Cancelled),
        ("cancel", "baselined", "cancelled", Cancelled),
        ("cancel", "rolled_back", "cancelled", Cancelled),
        ("close", "early_life", "closed", Closed),
    ]
    .into_iter()
    .map(|(transition, from, to, phase)| moved(transition, from, to, phase))
    .collect()
}

/// Today's encoding: the logged event of each kind, every own event, the transitions.
fn examples() -> Vec<ReleaseEvent> {
    [
        logged(ReleaseKind::Emergency, &["production"]),
        logged(ReleaseKind::Minor, &["test", "production"]),
        logged(ReleaseKind::Major, &["test", "staging", "production"]),
    ]
    .into_iter()
    .chain(own_events().into_iter().map(TypedEvent::Own))
    .chain(transitions())
    .collect()
}

fn golden() -> Golden<Release> {
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
        "the personal data policy names fields of release events"
    );
}

#[test]
fn the_fixture_holds_the_logged_event_and_every_own_event() {
    golden().check_coverage();
}

/// The `(name, from, to)` of every transition of the release lifecycle file of
/// `smsys-processes`, read from its one-line `{ name = .., from = [..], to = .. }` entries.
fn lifecycle_transitions() -> Vec<(String, String, String)> {
    let path = format!(
        "{}/../smsys-processes/src/release/lifecycle.toml",
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
fn the_fixture_covers_every_transition_of_the_reference_lifecycle() {
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
    let every = lifecycle_transitions();
    assert_eq!(every.len(), recorded.len(), "{every:?}");
    for transition in every {
        assert!(
            recorded.contains(&transition),
            "no example of {transition:?}"
        );
    }
}

/// The baselines as the file holds them still verify: the hash scheme has not moved.
#[test]
fn the_fixture_baselines_still_verify_against_their_hash() {
    let release = golden().folded(at());
    assert_eq!(release.baselines(), baselines().as_slice());
    for baseline in release.baselines() {
        assert!(baseline.is_intact(), "{}", baseline.hash);
    }
    let [first, _] = baselines();
    assert_eq!(release.rollbacks()[0].baseline, first.hash);
}

#[test]
fn the_fixture_folds_into_a_release() {
    let release = golden().folded(at());
    assert_eq!(release.kind(), Some(ReleaseKind::Major), "the last logged");
    assert_eq!(release.environments(), ["test", "staging", "production"]);
    assert_eq!(release.criteria().len(), 2);
    assert_eq!(release.record().reference(), Some(&id("REL-0001")));
    let [_, bare_plan] = plans();
    assert_eq!(
        release.plan(),
        Some(&bare_plan),
        "the revised plan replaces"
    );
    assert_eq!(release.build(), Some(("2.5.0", "tag v2.5.0")));
    let verified = release.verification("functional_tests").expect("verified");
    assert!(verified.passed, "the later verification replaces");
    assert_eq!(verified.evidence, "run 42");
    assert_eq!(release.approvals().len(), 1);
    assert_eq!(
        release.rejection().map(|r| r.reason.as_str()),
        Some("no rollback rehearsal")
    );
    assert_eq!(release.authorisation().map(|a| a.approvers.len()), Some(2));
    assert_eq!(release.attempt(), 2, "each baseline starts an attempt");
    let attempts: Vec<u32> = release.deployments().iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, [1, 1, 2]);
    assert_eq!(release.deployed_in_attempt(), ["test"]);
    let [_, second] = baselines();
    assert_eq!(
        release.baseline(),
        Some(&second),
        "taken after the rollback"
    );
    assert_eq!(
        release.early_life(),
        Some((at(), at() + TimeDelta::days(14)))
    );
    let incidents: Vec<String> = release
        .correlations()
        .iter()
        .map(|c| c.incident.to_string())
        .collect();
    assert_eq!(incidents, ["INC-7", "INC-8"]);
    assert_eq!(release.correlations()[0].service, Some(id("email")));
    assert_eq!(
        release.waiver().map(|w| w.incidents.len()),
        Some(2),
        "the waiver records the incidents correlated by then"
    );
    let review = release.review().expect("reviewed");
    assert_eq!(review.successful, Some(true));
    assert_eq!(
        release.record().status(),
        Some("closed"),
        "the last transition"
    );
    assert_eq!(release.record().phase(), Some(Phase::Closed));
}

/// A baseline with numbers, flags and texts among its attributes stays intact through its
/// stored form: the hash is of what a reader gets back, not only of what the writer had.
#[test]
fn a_baseline_stays_intact_through_its_stored_form() {
    use smsys_core::DomainEvent;
    let number = |text: &str| AttributeValue::Number(text.parse().expect("a number"));
    let ci = BaselineCi {
        id: id("db-01"),
        ci_type: id("database"),
        name: "db-01".into(),
        status: "live".into(),
        attributes: Attributes::from([
            (AttributeName::new("cores").expect("valid"), number("16")),
            (AttributeName::new("load").expect("valid"), number("0.1")),
            (AttributeName::new("huge").expect("valid"), number("1e300")),
            (AttributeName::new("negative").expect("valid"), number("-7")),
            (
                AttributeName::new("virtual").expect("valid"),
                AttributeValue::Flag(true),
            ),
            attribute("engine", "postgresql"),
        ]),
        relationships: vec![
            (Relationship::RUNS_ON, id("srv-02")),
            (Relationship::RUNS_ON, id("srv-01")),
        ],
    };
    let baseline = Baseline::new(Position::new(2, 9), vec![ci]);
    assert!(baseline.is_intact());
    let event: ReleaseEvent = TypedEvent::Own(ReleaseControlEvent::BaselineTaken(baseline.clone()));
    let text = serde_json::to_string(&event.to_payload().expect("encodes")).expect("text");
    let payload = serde_json::from_str(&text).expect("parses");
    let read = ReleaseEvent::from_payload(&event.event_type(), payload).expect("decodes");
    let TypedEvent::Own(ReleaseControlEvent::BaselineTaken(read)) = read else {
        panic!("{read:?} is not the baseline");
    };
    assert_eq!(read, baseline);
    assert!(read.is_intact(), "{text}");
}
