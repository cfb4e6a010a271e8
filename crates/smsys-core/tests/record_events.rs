//! Golden fixtures of every service-desk record event type at every shipped schema version:
//! each must still load, and today's encoding must equal the newest fixture.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use smsys_core::{
    Channel, DefinitionRef, DomainEvent, Escalation, EventType, Level, LinkKind, NoteKind, Phase,
    Priority, RecordEvent, RecordType, TransitionDetail, TypedRecordEvent,
};

/// One example of every event, covering each variant of nested enums at least once.
fn examples() -> Vec<TypedRecordEvent> {
    use RecordEvent as E;
    let at = Utc
        .with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .expect("valid");
    let lifecycle = DefinitionRef {
        name: "incident".into(),
        version: 1,
    };
    let moved = |detail| E::Transitioned {
        transition: "t".into(),
        from: "a".into(),
        to: "b".into(),
        phase: Phase::Active,
        detail,
        at,
    };
    let incident = [
        E::Logged {
            reference: "INC-1".into(),
            lifecycle: lifecycle.clone(),
            status: "new".into(),
            caller: "ana".into(),
            channel: Channel::Phone,
            service: "email".into(),
            affected_cis: vec!["mx-01".into()],
            summary: "mail down".into(),
            description: "since 9".into(),
            catalogue_item: None,
            fulfilment_instructions: None,
        },
        E::Classified {
            category: "mail".into(),
        },
        E::Prioritised {
            impact: Level::High,
            urgency: Level::Medium,
            priority: Priority::new(2).expect("valid"),
            matrix_version: 1,
        },
        E::PriorityOverridden {
            priority: Priority::new(1).expect("valid"),
            reason: "vip".into(),
        },
        E::Assigned {
            group: "desk".into(),
            person: Some("bo".into()),
            reassignment: false,
        },
        moved(TransitionDetail::Plain),
        moved(TransitionDetail::Hold {
            reason: "caller".into(),
        }),
        moved(TransitionDetail::Resume { by_caller: true }),
        moved(TransitionDetail::Resolution {
            code: "fixed".into(),
            notes: "n".into(),
        }),
        moved(TransitionDetail::Reopen {
            reason: "again".into(),
            count: 1,
        }),
        moved(TransitionDetail::Closure { automatic: true }),
        moved(TransitionDetail::Cancellation {
            reason: "duplicate".into(),
        }),
        E::Noted {
            kind: NoteKind::WorkNote,
            text: "looked".into(),
        },
        E::Escalated {
            escalation: Escalation::Functional {
                to_group: "l2".into(),
            },
            reason: "r".into(),
        },
        E::Escalated {
            escalation: Escalation::Hierarchical {
                to_manager: "erin".into(),
            },
            reason: "r".into(),
        },
        E::Linked {
            kind: LinkKind::Problem,
            target: "PRB-1".into(),
        },
        E::MajorFlagged {
            reason: "P1".into(),
        },
        E::MajorManagerAssigned {
            manager: "erin".into(),
        },
        E::ManagementInformed {
            audience: "cio".into(),
            summary: "down".into(),
        },
        E::MajorReviewed {
            findings: "spof".into(),
        },
        E::SlaThresholdReached {
            timer: "resolution".into(),
            sla: DefinitionRef {
                name: "p-sla".into(),
                version: 1,
            },
            cycle: 1,
            threshold_bp: 7500,
            at,
        },
        E::SlaBreached {
            timer: "resolution".into(),
            sla: DefinitionRef {
                name: "p-sla".into(),
                version: 1,
            },
            cycle: 2,
            at,
        },
        E::LifecycleMigrated {
            from: lifecycle,
            to: DefinitionRef {
                name: "incident".into(),
                version: 2,
            },
            from_status: "new".into(),
            to_status: "new".into(),
            mapping: BTreeMap::from([("new".into(), "new".into())]),
        },
    ];
    let request = [
        E::ApprovalRequested {
            approvers: vec!["ada".into(), "bo".into()],
            quorum: 1,
        },
        E::ApprovalGiven {
            approver: "ada".into(),
        },
        E::Approved,
        E::ApprovalRejected {
            approver: "bo".into(),
            reason: "budget".into(),
        },
        E::TaskAdded {
            task: "t1".into(),
            description: "do it".into(),
        },
        E::TaskFinished { task: "t1".into() },
    ];
    incident
        .into_iter()
        .map(|event| TypedRecordEvent {
            record_type: RecordType::Incident,
            event,
        })
        .chain(request.into_iter().map(|event| TypedRecordEvent {
            record_type: RecordType::ServiceRequest,
            event,
        }))
        .collect()
}

fn encode_all() -> Value {
    let rows: Vec<Value> = examples()
        .iter()
        .map(|e| {
            serde_json::json!({
                "event_type": e.event_type().as_str(),
                "schema_version": e.schema_version(),
                "payload": e.to_payload().expect("encodes"),
            })
        })
        .collect();
    Value::Array(rows)
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/record_events.v1.json"
);

#[test]
fn every_shipped_record_event_still_loads() {
    if std::env::var_os("SMSYS_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&encode_all()).expect("encodes");
        std::fs::write(FIXTURE, text + "\n").expect("writes the fixture");
    }
    let text = std::fs::read_to_string(FIXTURE).expect("the fixture exists");
    let rows: Vec<Value> = serde_json::from_str(&text).expect("the fixture is JSON");
    let expected = examples();
    assert_eq!(rows.len(), expected.len(), "one fixture row per example");
    for (row, want) in rows.iter().zip(&expected) {
        let event_type =
            EventType::new(row["event_type"].as_str().expect("a string")).expect("valid");
        assert_eq!(row["schema_version"], 1);
        let got = TypedRecordEvent::from_payload(&event_type, row["payload"].clone())
            .unwrap_or_else(|e| panic!("{event_type} no longer loads: {e}"));
        assert_eq!(&got, want, "{event_type}");
    }
}

#[test]
fn todays_encoding_equals_the_fixture() {
    let text = std::fs::read_to_string(FIXTURE).expect("the fixture exists");
    let shipped: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        encode_all(),
        shipped,
        "an event changed shape: add a schema version and an upcaster"
    );
}

#[test]
fn unknown_record_event_types_are_reported() {
    for name in ["incident.exploded", "problem.logged", "incident"] {
        let t = EventType::new(name).expect("valid");
        assert!(
            TypedRecordEvent::from_payload(&t, serde_json::json!({})).is_err(),
            "{name}"
        );
    }
    let t = EventType::new("incident.classified").expect("valid");
    let err = TypedRecordEvent::from_payload(&t, serde_json::json!({"category": 7}))
        .expect_err("bad payload");
    assert!(err.to_string().contains("incident.classified"), "{err}");
}
