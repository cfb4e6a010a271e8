//! Golden fixtures of every record event of every record type, one file per shipped set of
//! schema versions: each must still load, and today's encoding must equal the newest file.
//!
//! - `record_events.v1.json`: the events as first shipped (every event at schema version 1;
//!   service requests shared the incident's events then, so it holds only their own). Never
//!   edited.
//! - `record_events.v2.json`: today's encoding of one example of every event of incidents and
//!   service requests (`logged` and `classified` at schema version 2). `SMSYS_BLESS=1`
//!   rewrites it; once shipped, a changed event gets a new schema version, an upcaster and a
//!   new file, and this one stays.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use smsys_core::records::incident::MajorIncidentEvent;
use smsys_core::records::request::{FulfilmentEvent, RequestLogged};
use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, Channel, DefinitionRef, Escalation, Incident,
    IncidentEvent, Level, LinkKind, Logged, NoteKind, OwnEvents, Phase, Priority, RecordEvent,
    RecordKind, RequestEvent, ServiceRequest, TransitionDetail, TypedEvent, upcasters_for,
};
use smsys_core::{DecodeError, DomainEvent, EventSourced, EventType, ReadFailure};

const V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/record_events.v1.json"
);

/// The newest fixture: what `SMSYS_BLESS=1` rewrites.
const V2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/record_events.v2.json"
);

/// One event of either record type, as a fixture row holds it.
#[derive(Debug, Clone, PartialEq)]
enum Row {
    Incident(IncidentEvent),
    Request(RequestEvent),
}

impl Row {
    fn event_type(&self) -> EventType {
        match self {
            Row::Incident(e) => e.event_type(),
            Row::Request(e) => e.event_type(),
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            Row::Incident(e) => e.schema_version(),
            Row::Request(e) => e.schema_version(),
        }
    }

    fn payload(&self) -> Value {
        match self {
            Row::Incident(e) => e.to_payload(),
            Row::Request(e) => e.to_payload(),
        }
        .expect("encodes")
    }

    fn encode(&self) -> Value {
        json!({
            "event_type": self.event_type().as_str(),
            "schema_version": self.schema_version(),
            "payload": self.payload(),
        })
    }

    /// Reads a stored row the way every reader does: through the upcasters of its category,
    /// then as the typed event of the record type that owns the category.
    fn load(row: &Value) -> Result<Self, ReadFailure> {
        let event_type =
            EventType::new(row["event_type"].as_str().expect("a string")).expect("valid");
        let version = row["schema_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .expect("a schema version");
        let payload = row["payload"].clone();
        let category = event_type.as_str().split_once('.').map(|(c, _)| c);
        if category == Some(Incident::CATEGORY) {
            upcasters_for(Incident::CATEGORY)
                .decode(&event_type, version, payload)
                .map(Row::Incident)
        } else if category == Some(ServiceRequest::CATEGORY) {
            upcasters_for(ServiceRequest::CATEGORY)
                .decode(&event_type, version, payload)
                .map(Row::Request)
        } else {
            panic!("{event_type} belongs to no record type")
        }
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .expect("valid")
}

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("a valid id")
}

fn name(text: &str) -> AttributeName {
    AttributeName::new(text).expect("a valid attribute name")
}

fn priority(n: u8) -> Priority {
    Priority::new(n).expect("valid")
}

fn lifecycle(version: u32) -> DefinitionRef {
    DefinitionRef {
        name: "incident".into(),
        version,
    }
}

fn sla() -> DefinitionRef {
    DefinitionRef {
        name: "p-sla".into(),
        version: 1,
    }
}

/// The shared fields of the v1 `logged` example.
fn logged(attributes: Attributes) -> Logged {
    Logged {
        reference: id("INC-1"),
        lifecycle: lifecycle(1),
        status: "new".into(),
        caller: id("ana"),
        channel: Channel::Phone,
        service: id("email"),
        affected_cis: vec![id("mx-01")],
        summary: "mail down".into(),
        description: "since 9".into(),
        attributes,
    }
}

fn moved(detail: TransitionDetail) -> RecordEvent {
    RecordEvent::Transitioned {
        transition: "t".into(),
        from: "a".into(),
        to: "b".into(),
        phase: Phase::Active,
        detail,
        at: at(),
    }
}

fn migrated() -> RecordEvent {
    RecordEvent::LifecycleMigrated {
        from: lifecycle(1),
        to: lifecycle(2),
        from_status: "new".into(),
        to_status: "new".into(),
        mapping: BTreeMap::from([("new".into(), "new".into())]),
    }
}

/// Every shipped transition detail, in the fixtures' order.
fn transitions() -> Vec<RecordEvent> {
    [
        TransitionDetail::Plain,
        TransitionDetail::Hold {
            reason: "caller".into(),
        },
        TransitionDetail::Resume { by_caller: true },
        TransitionDetail::Resolution {
            code: "fixed".into(),
            notes: "n".into(),
        },
        TransitionDetail::Reopen {
            reason: "again".into(),
            count: 1,
        },
        TransitionDetail::Closure { automatic: true },
        TransitionDetail::Cancellation {
            reason: "duplicate".into(),
        },
    ]
    .into_iter()
    .map(moved)
    .collect()
}

fn escalations() -> [RecordEvent; 2] {
    [
        RecordEvent::Escalated {
            escalation: Escalation::Functional { to_group: id("l2") },
            reason: "r".into(),
        },
        RecordEvent::Escalated {
            escalation: Escalation::Hierarchical {
                to_manager: Some(id("erin")),
            },
            reason: "r".into(),
        },
    ]
}

fn threshold_reached() -> RecordEvent {
    RecordEvent::SlaThresholdReached {
        timer: "resolution".into(),
        sla: sla(),
        cycle: 1,
        threshold_bp: 7500,
        at: at(),
    }
}

fn breached() -> RecordEvent {
    RecordEvent::SlaBreached {
        timer: "resolution".into(),
        sla: sla(),
        cycle: 2,
        at: at(),
    }
}

fn major_events() -> [MajorIncidentEvent; 4] {
    [
        MajorIncidentEvent::MajorFlagged {
            reason: "P1".into(),
        },
        MajorIncidentEvent::MajorManagerAssigned {
            manager: id("erin"),
        },
        MajorIncidentEvent::ManagementInformed {
            audience: "cio".into(),
            summary: "down".into(),
        },
        MajorIncidentEvent::MajorReviewed {
            findings: "spof".into(),
        },
    ]
}

fn fulfilment_events() -> [FulfilmentEvent; 6] {
    [
        FulfilmentEvent::ApprovalRequested {
            approvers: vec![id("ada"), id("bo")],
            quorum: 1,
        },
        FulfilmentEvent::ApprovalGiven {
            approver: id("ada"),
        },
        FulfilmentEvent::Approved,
        FulfilmentEvent::ApprovalRejected {
            approver: id("bo"),
            reason: "budget".into(),
        },
        FulfilmentEvent::TaskAdded {
            task: "t1".into(),
            description: "do it".into(),
        },
        FulfilmentEvent::TaskFinished { task: "t1".into() },
    ]
}

/// What today's types read from each row of `record_events.v1.json`, in its order.
fn v1_examples() -> Vec<Row> {
    let incident = [TypedEvent::Logged(logged(Attributes::new()))]
        .into_iter()
        .chain(
            [
                RecordEvent::Classified {
                    category: "mail".into(),
                    subcategory: None,
                },
                RecordEvent::Prioritised {
                    impact: Level::High,
                    urgency: Level::Medium,
                    priority: priority(2),
                    matrix_version: 1,
                },
                RecordEvent::PriorityOverridden {
                    priority: priority(1),
                    reason: "vip".into(),
                },
                RecordEvent::Assigned {
                    group: id("desk"),
                    person: Some(id("bo")),
                    reassignment: false,
                },
            ]
            .into_iter()
            .chain(transitions())
            .chain([RecordEvent::Noted {
                kind: NoteKind::WorkNote,
                text: "looked".into(),
            }])
            .chain(escalations())
            .chain([RecordEvent::Linked {
                kind: LinkKind::PROBLEM,
                target: "PRB-1".into(),
            }])
            .map(TypedEvent::Record),
        )
        .chain(major_events().map(TypedEvent::Own))
        .chain([threshold_reached(), breached(), migrated()].map(TypedEvent::Record))
        .map(Row::Incident);
    let request = fulfilment_events()
        .map(TypedEvent::Own)
        .into_iter()
        .map(Row::Request);
    incident.chain(request).collect()
}

/// One example of every shared event, covering each variant of its nested enums.
fn shared_examples() -> Vec<RecordEvent> {
    let attribute = |n: &str, value: AttributeValue| RecordEvent::AttributeSet {
        name: name(n),
        value,
    };
    [
        RecordEvent::Classified {
            category: "mail".into(),
            subcategory: Some("delivery".into()),
        },
        RecordEvent::Prioritised {
            impact: Level::High,
            urgency: Level::Low,
            priority: priority(2),
            matrix_version: 1,
        },
        RecordEvent::PriorityOverridden {
            priority: priority(1),
            reason: "vip".into(),
        },
        RecordEvent::Assigned {
            group: id("desk"),
            person: Some(id("bo")),
            reassignment: false,
        },
        RecordEvent::Assigned {
            group: id("network l2"),
            person: None,
            reassignment: true,
        },
        RecordEvent::Unassigned {
            reason: "wrong queue".into(),
        },
    ]
    .into_iter()
    .chain(transitions())
    .chain(
        [
            NoteKind::WorkNote,
            NoteKind::Comment,
            NoteKind::CallerUpdate,
        ]
        .map(|kind| RecordEvent::Noted {
            kind,
            text: "looked".into(),
        }),
    )
    .chain(escalations())
    .chain([
        RecordEvent::Linked {
            kind: LinkKind::PROBLEM,
            target: "PRB-1".into(),
        },
        RecordEvent::Linked {
            kind: LinkKind::CONFIGURATION_ITEM,
            target: "mx-01".into(),
        },
        RecordEvent::Unlinked {
            kind: LinkKind::CHANGE,
            target: "CHG-7".into(),
        },
        attribute("vendor", AttributeValue::from("acme")),
        attribute("floor", AttributeValue::from(3)),
        attribute(
            "ratio",
            AttributeValue::Number(serde_json::Number::from_f64(0.5).expect("finite")),
        ),
        attribute("vip", AttributeValue::from(true)),
        RecordEvent::AttributeRemoved { name: name("vip") },
        threshold_reached(),
        breached(),
        migrated(),
    ])
    .collect()
}

fn attributes() -> Attributes {
    Attributes::from([
        (name("floor"), AttributeValue::from(3)),
        (name("symptom"), AttributeValue::from("bounces")),
        (name("vip"), AttributeValue::from(false)),
    ])
}

/// Today's encoding: one example of every event of every record type.
fn v2_examples() -> Vec<Row> {
    let channels = [
        Channel::Phone,
        Channel::Email,
        Channel::Portal,
        Channel::Chat,
        Channel::Monitoring,
    ];
    let incident_logged = channels.map(|channel| {
        TypedEvent::Logged(Logged {
            channel,
            lifecycle: lifecycle(2),
            ..logged(attributes())
        })
    });
    let incident = incident_logged
        .into_iter()
        .chain(shared_examples().into_iter().map(TypedEvent::Record))
        .chain(major_events().map(TypedEvent::Own))
        .map(Row::Incident);
    let request_lifecycle = DefinitionRef {
        name: "service_request".into(),
        version: 1,
    };
    let request_logged = [
        RequestLogged {
            record: Logged {
                reference: id("REQ-1"),
                lifecycle: request_lifecycle.clone(),
                channel: Channel::Portal,
                service: id("laptops"),
                summary: "a laptop".into(),
                ..logged(attributes())
            },
            catalogue_item: Some("laptop-standard".into()),
            fulfilment_instructions: Some("KB-12".into()),
        },
        RequestLogged {
            record: Logged {
                reference: id("REQ-2"),
                lifecycle: request_lifecycle,
                affected_cis: Vec::new(),
                description: String::new(),
                ..logged(Attributes::new())
            },
            catalogue_item: None,
            fulfilment_instructions: None,
        },
    ];
    let request = request_logged
        .into_iter()
        .map(TypedEvent::Logged)
        .chain(shared_examples().into_iter().map(TypedEvent::Record))
        .chain(fulfilment_events().map(TypedEvent::Own))
        .map(Row::Request);
    incident.chain(request).collect()
}

fn read_rows(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn encode_all(rows: &[Row]) -> Value {
    Value::Array(rows.iter().map(Row::encode).collect())
}

/// With `SMSYS_BLESS` set, rewrites the newest fixture from today's encoding. Tests run in
/// parallel, so the file is replaced by a rename: a reader sees the old or the new one whole.
fn bless_v2() {
    if std::env::var_os("SMSYS_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&encode_all(&v2_examples())).expect("encodes");
        let tmp = format!("{V2}.{:?}.tmp", std::thread::current().id());
        std::fs::write(&tmp, text + "\n").expect("writes the fixture");
        std::fs::rename(&tmp, V2).expect("replaces the fixture");
    }
}

#[test]
fn every_v1_record_event_still_loads_as_todays_event() {
    let rows = read_rows(V1);
    let expected = v1_examples();
    assert_eq!(rows.len(), expected.len(), "one fixture row per example");
    for (row, want) in rows.iter().zip(&expected) {
        let event_type = &row["event_type"];
        assert_eq!(row["schema_version"], 1, "{event_type}");
        let got = Row::load(row).unwrap_or_else(|e| panic!("{event_type} no longer loads: {e}"));
        assert_eq!(&got, want, "{event_type}");
        assert_eq!(got.event_type().as_str(), event_type, "the same event type");
        if got.schema_version() == 1 {
            assert_eq!(
                got.payload(),
                row["payload"],
                "{event_type} changed shape without a new schema version"
            );
        }
    }
}

#[test]
fn v1_events_are_lifted_to_version_2() {
    let rows = read_rows(V1);
    let versions: BTreeMap<&str, u32> = v1_examples()
        .iter()
        .zip(&rows)
        .filter(|(now, _)| now.schema_version() > 1)
        .map(|(now, row)| {
            (
                row["event_type"].as_str().expect("a string"),
                now.schema_version(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        BTreeMap::from([
            ("incident.assigned", 2),
            ("incident.classified", 2),
            ("incident.escalated", 2),
            ("incident.logged", 2),
        ]),
        "the only events whose schema changed since v1"
    );
    let Row::Incident(TypedEvent::Logged(logged)) = Row::load(&rows[0]).expect("loads") else {
        panic!("row 0 is incident.logged")
    };
    assert!(logged.attributes.is_empty(), "v1 had no attributes");
    assert_eq!(
        Row::load(&rows[1]).expect("loads"),
        Row::Incident(TypedEvent::Record(RecordEvent::Classified {
            category: "mail".into(),
            subcategory: None,
        })),
        "v1 had no subcategory"
    );
}

/// Version 1 took people, CIs and references as free text; what it accepted still loads.
#[test]
fn v1_free_text_identifiers_still_load() {
    let upcasters = upcasters_for(Incident::CATEGORY);
    let load = |event_type: &str, payload: Value| -> IncidentEvent {
        let event_type = EventType::new(event_type).expect("valid");
        upcasters
            .decode(&event_type, 1, payload)
            .unwrap_or_else(|e| panic!("{event_type} does not load: {e}"))
    };
    let TypedEvent::Logged(logged) = load(
        "incident.logged",
        json!({"reference": "INC 42/é", "lifecycle": {"name": "incident", "version": 1},
               "status": "new", "caller": "ana", "channel": "phone", "service": "email",
               "affected_cis": ["mx-01", " ", ""], "summary": "s", "description": ""}),
    ) else {
        panic!("a logged event")
    };
    assert_eq!(logged.reference.as_str(), "INC_42__");
    assert_eq!(
        logged.affected_cis,
        vec![id::<smsys_core::records::CiId, _>("mx-01")]
    );
    assert_eq!(
        load(
            "incident.assigned",
            json!({"group": "desk", "person": "", "reassignment": false})
        ),
        TypedEvent::Record(RecordEvent::Assigned {
            group: id("desk"),
            person: None,
            reassignment: false,
        })
    );
    assert_eq!(
        load(
            "incident.escalated",
            json!({"escalation": {"kind": "hierarchical", "to_manager": " "}, "reason": "r"})
        ),
        TypedEvent::Record(RecordEvent::Escalated {
            escalation: Escalation::Hierarchical { to_manager: None },
            reason: "r".into(),
        })
    );
}

#[test]
fn the_v2_fixture_holds_every_event_of_every_record_type() {
    fn names<K: RecordKind>() -> BTreeSet<String> {
        ["logged"]
            .iter()
            .chain(RecordEvent::NAMES)
            .chain(<K::Own as OwnEvents>::NAMES)
            .map(|n| format!("{}.{n}", K::CATEGORY))
            .collect()
    }
    let covered: BTreeSet<String> = v2_examples()
        .iter()
        .map(|row| row.event_type().to_string())
        .collect();
    let every: BTreeSet<String> = names::<Incident>()
        .into_iter()
        .chain(names::<ServiceRequest>())
        .collect();
    assert_eq!(
        covered, every,
        "add an example of every new event to the newest fixture"
    );
}

#[test]
fn todays_encoding_equals_the_newest_fixture() {
    bless_v2();
    let shipped = Value::Array(read_rows(V2));
    assert_eq!(
        encode_all(&v2_examples()),
        shipped,
        "an event changed shape: add a schema version, an upcaster and a new fixture"
    );
}

#[test]
fn every_v2_record_event_loads() {
    bless_v2();
    let rows = read_rows(V2);
    let expected = v2_examples();
    assert_eq!(rows.len(), expected.len(), "one fixture row per example");
    for (row, want) in rows.iter().zip(&expected) {
        let event_type = &row["event_type"];
        let got = Row::load(row).unwrap_or_else(|e| panic!("{event_type} no longer loads: {e}"));
        assert_eq!(&got, want, "{event_type}");
    }
}

#[test]
fn unknown_record_event_types_are_reported() {
    let payload = || json!({});
    for name in [
        "incident.exploded",
        "problem.logged",
        "request.logged",
        "incident.approved",
        "incident",
    ] {
        let t = EventType::new(name).expect("valid");
        assert!(
            matches!(
                TypedEvent::<Incident>::from_payload(&t, payload()),
                Err(DecodeError::UnknownType(_))
            ),
            "{name}"
        );
    }
    for name in ["request.major_flagged", "incident.classified"] {
        let t = EventType::new(name).expect("valid");
        assert!(
            matches!(
                TypedEvent::<ServiceRequest>::from_payload(&t, payload()),
                Err(DecodeError::UnknownType(_))
            ),
            "{name}"
        );
    }
    let t = EventType::new("incident.classified").expect("valid");
    let err =
        TypedEvent::<Incident>::from_payload(&t, json!({"category": 7})).expect_err("bad payload");
    assert!(matches!(err, DecodeError::Payload { .. }), "{err}");
    assert!(err.to_string().contains("incident.classified"), "{err}");
    // The same through the upcasters, at the old schema version.
    let err = upcasters_for(Incident::CATEGORY)
        .decode::<IncidentEvent>(&t, 1, json!({"category": 7}))
        .expect_err("bad payload");
    assert!(matches!(err, ReadFailure::Decode(_)), "{err}");
    assert!(err.to_string().contains("incident.classified"), "{err}");
}
