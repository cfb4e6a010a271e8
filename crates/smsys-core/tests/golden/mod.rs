//! The golden-fixture checks every record type's own events go through: today's encoding
//! equals the checked-in file, every row loads (through the type's upcasters) as today's
//! event, the file covers the `logged` event and every own event, and its rows fold into a
//! state. `SMSYS_BLESS=1` rewrites the file (by a rename, so a parallel reader sees the old or
//! the new file whole); once shipped, a changed event gets a new schema version, an upcaster
//! and a new file, and the old one stays.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use smsys_core::records::{OwnEvents, RecordKind, TypedEvent};
use smsys_core::{DomainEvent, EventType, Stamp};

/// A record type's fixture file and the examples it holds.
pub(crate) struct Golden<K: RecordKind> {
    /// The fixture's path.
    pub(crate) path: &'static str,
    /// Today's events, in the file's order.
    pub(crate) examples: Vec<TypedEvent<K>>,
}

impl<K: RecordKind> Golden<K> {
    fn encode_all(&self) -> Value {
        Value::Array(
            self.examples
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

    /// With `SMSYS_BLESS` set, rewrites the fixture from today's encoding.
    fn bless(&self) {
        if std::env::var_os("SMSYS_BLESS").is_some() {
            let text = serde_json::to_string_pretty(&self.encode_all()).expect("encodes");
            let tmp = format!("{}.{:?}.tmp", self.path, std::thread::current().id());
            std::fs::write(&tmp, text + "\n").expect("writes the fixture");
            std::fs::rename(&tmp, self.path).expect("replaces the fixture");
        }
    }

    fn rows(&self) -> Vec<Value> {
        let path = self.path;
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Reads a stored row the way every reader does: through the type's upcasters.
    fn load(row: &Value) -> TypedEvent<K> {
        let event_type =
            EventType::new(row["event_type"].as_str().expect("a string")).expect("valid");
        let version = row["schema_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .expect("a schema version");
        K::upcasters()
            .decode(&event_type, version, row["payload"].clone())
            .unwrap_or_else(|e| panic!("{event_type} no longer loads: {e}"))
    }

    /// Every row still loads once the personal fields the shipped policy names
    /// ([`smsys_core::records::personal_data`]) are replaced by their erased placeholders, as
    /// crypto-shredding leaves them; returns how many fields were erased, so a caller can
    /// check the policy covers the type at all.
    pub(crate) fn check_erased_rows_load(&self) -> usize {
        let policy = smsys_core::records::personal_data();
        let mut erased = 0;
        for mut row in self.rows() {
            let event_type =
                EventType::new(row["event_type"].as_str().expect("a string")).expect("valid");
            for field in policy.fields(&event_type) {
                if let Some(value) = row["payload"].pointer_mut(field.pointer.as_str()) {
                    *value = field.erased.clone();
                    erased += 1;
                }
            }
            let _ = Self::load(&row);
        }
        erased
    }

    /// Today's encoding equals the fixture.
    pub(crate) fn check_encoding(&self) {
        self.bless();
        assert_eq!(
            self.encode_all(),
            Value::Array(self.rows()),
            "an event changed shape: add a schema version, an upcaster and a new fixture"
        );
    }

    /// Every row loads as today's event, at today's schema version (own events at 1).
    pub(crate) fn check_rows_load(&self) {
        self.bless();
        let rows = self.rows();
        assert_eq!(
            rows.len(),
            self.examples.len(),
            "one fixture row per example"
        );
        for (row, want) in rows.iter().zip(&self.examples) {
            assert_eq!(&Self::load(row), want, "{}", row["event_type"]);
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

    /// The examples hold the logged event and every own event of the type.
    pub(crate) fn check_coverage(&self) {
        let covered: BTreeSet<String> = self
            .examples
            .iter()
            .filter(|e| !matches!(e, TypedEvent::Record(_)))
            .map(|e| e.event_type().to_string())
            .collect();
        let every: BTreeSet<String> = ["logged"]
            .iter()
            .chain(<K::Own as OwnEvents>::NAMES)
            .map(|n| format!("{}.{n}", K::CATEGORY))
            .collect();
        assert_eq!(covered, every, "add an example of every new event");
    }

    /// The fixture's rows folded, in order, into a state (each stamped at `at`).
    pub(crate) fn folded(&self, at: DateTime<Utc>) -> K {
        self.bless();
        let mut state = K::default();
        for row in self.rows() {
            state.evolve(&Self::load(&row), Stamp::new(None, at));
        }
        state
    }
}
