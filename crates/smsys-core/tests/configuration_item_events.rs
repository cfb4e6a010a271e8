//! Golden fixtures of the events of configuration items: `configuration_item_events.v1.json`
//! holds today's encoding of an example of every `CiEvent` (each at schema version 1, with and
//! without its authorising change). Each row must still load, today's encoding must equal the
//! file, and every event name must be covered. `SMSYS_BLESS=1` rewrites it; once shipped, a
//! changed event gets a new schema version, an upcaster and a new file, and this one stays.
//!
//! (The `Golden` harness of `tests/golden` is for record kinds; a CI is not a record, so the
//! same checks are written here for `CiEvent`.)

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use smsys_core::records::configuration_item::CiRegistered;
use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, CiEvent, CiType, ConfigurationItem, Relationship,
};
use smsys_core::{DomainEvent, EventSourced, EventType, Stamp};

const V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/configuration_item_events.v1.json"
);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .expect("valid")
}

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("a valid id")
}

fn attributes(pairs: &[(&str, AttributeValue)]) -> Attributes {
    pairs
        .iter()
        .map(|(name, value)| (AttributeName::new(*name).expect("a name"), value.clone()))
        .collect()
}

/// Today's encoding: every event, with and without a change where it matters.
fn examples() -> Vec<CiEvent> {
    vec![
        CiEvent::Registered(CiRegistered {
            id: id("srv-01"),
            ci_type: CiType::from_static("server"),
            name: "srv-01".into(),
            description: "mail host".into(),
            status: "planned".into(),
            attributes: attributes(&[
                ("os", "debian 13".into()),
                ("ram_gb", 64.into()),
                ("virtual", false.into()),
            ]),
            change: Some(id("CHG-1")),
        }),
        CiEvent::Registered(CiRegistered {
            id: id("dc-west"),
            ci_type: CiType::from_static("site"),
            name: "west data centre".into(),
            description: String::new(),
            status: "planned".into(),
            attributes: Attributes::new(),
            change: None,
        }),
        CiEvent::AttributesUpdated {
            set: attributes(&[("ram_gb", 128.into())]),
            removed: vec![AttributeName::new("virtual").expect("a name")],
            change: Some(id("CHG-2")),
        },
        CiEvent::Described {
            name: "srv-01".into(),
            description: "mail and relay host".into(),
            change: Some(id("CHG-2")),
        },
        CiEvent::StatusChanged {
            from: "planned".into(),
            to: "ordered".into(),
            reason: "purchase order 77".into(),
            change: Some(id("CHG-3")),
        },
        CiEvent::StatusChanged {
            from: "ordered".into(),
            to: "in_build".into(),
            reason: String::new(),
            change: None,
        },
        CiEvent::RelationshipAdded {
            relationship: Relationship::PART_OF,
            target: id("dc-west"),
            change: Some(id("CHG-4")),
        },
        CiEvent::RelationshipAdded {
            relationship: Relationship::CONNECTS_TO,
            target: id("sw-02"),
            change: None,
        },
        CiEvent::RelationshipRemoved {
            relationship: Relationship::CONNECTS_TO,
            target: id("sw-02"),
            change: Some(id("CHG-5")),
        },
    ]
}

fn encode_all() -> Value {
    Value::Array(
        examples()
            .iter()
            .map(|event| {
                json!({
                    "event_type": event.event_type().as_str(),
                    "schema_version": event.schema_version(),
                    "payload": event.to_payload().expect("encodes"),
                })
            })
            .collect(),
    )
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

fn rows() -> Vec<Value> {
    bless();
    let text = std::fs::read_to_string(V1).unwrap_or_else(|e| panic!("{V1}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{V1}: {e}"))
}

/// Reads a stored row the way every reader does: through the event's upcasters.
fn load(row: &Value) -> CiEvent {
    let event_type = EventType::new(row["event_type"].as_str().expect("a string")).expect("valid");
    let version = row["schema_version"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .expect("a schema version");
    CiEvent::upcasters()
        .decode(&event_type, version, row["payload"].clone())
        .unwrap_or_else(|e| panic!("{event_type} no longer loads: {e}"))
}

#[test]
fn todays_encoding_equals_the_fixture() {
    assert_eq!(
        encode_all(),
        Value::Array(rows()),
        "an event changed shape: add a schema version, an upcaster and a new fixture"
    );
}

#[test]
fn every_fixture_row_loads_as_todays_event() {
    let rows = rows();
    let examples = examples();
    assert_eq!(rows.len(), examples.len(), "one fixture row per example");
    for (row, want) in rows.iter().zip(&examples) {
        assert_eq!(&load(row), want, "{}", row["event_type"]);
        assert_eq!(row["schema_version"], 1, "{}", row["event_type"]);
    }
}

#[test]
fn the_fixture_holds_every_event() {
    let covered: BTreeSet<String> = rows()
        .iter()
        .map(|row| row["event_type"].as_str().expect("a string").to_owned())
        .collect();
    let every: BTreeSet<String> = CiEvent::NAMES
        .iter()
        .map(|name| format!("{}.{name}", ConfigurationItem::CATEGORY))
        .collect();
    assert_eq!(covered, every, "add an example of every new event");
}

#[test]
fn the_fixture_folds_into_a_configuration_item() {
    let mut server = ConfigurationItem::default();
    // The site's registration is another CI's stream: fold the server's rows only.
    for row in rows()
        .iter()
        .filter(|row| row["payload"]["id"] != "dc-west")
    {
        server.evolve(&load(row), Stamp::new(None, at()));
    }
    assert_eq!(server.status(), Some("in_build"));
    assert_eq!(server.description(), "mail and relay host");
    assert_eq!(
        server.attributes(),
        &attributes(&[("os", "debian 13".into()), ("ram_gb", 128.into())])
    );
    assert_eq!(
        server.relationships().iter().collect::<Vec<_>>(),
        [&(Relationship::PART_OF, id("dc-west"))]
    );
    assert_eq!(
        server.last_change().and_then(|c| c.change.clone()),
        Some(id("CHG-5"))
    );
}
