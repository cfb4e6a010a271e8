//! The generated CMDB the benches share: `CIS` CIs in clusters of `CLUSTER` (a server, about
//! ten services, applications), each with typed relationships inside its cluster and one
//! `backs_up` edge anywhere, and a recorder of events as a store would hand them out.

#![allow(dead_code, reason = "each bench uses its part of the shared estate")]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys_core::records::configuration_item::CiRegistered;
use smsys_core::records::{
    AttributeName, AttributeValue, CiEvent, CiId, CiType, ConfigurationItem, Relationship,
};
use smsys_core::{
    Actor, DomainEvent, EventData, EventId, Metadata, Position, RecordedEvent, StreamId, Version,
};
use smsys_store::testkit::records::mix;

/// How many CIs the full estate has.
pub(crate) const CIS: u64 = 100_000;
/// How many CIs a cluster has.
pub(crate) const CLUSTER: u64 = 1_000;
/// A product-defined relationship type that carries no impact.
pub(crate) const BACKS_UP: Relationship = Relationship::from_static("backs_up");

/// The instant the generated log starts at.
pub(crate) fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// The id of CI `i`.
pub(crate) fn id(i: u64) -> CiId {
    format!("ci-{i:06}").parse().unwrap()
}

/// The relationships CI `i` records, of `n` CIs.
pub(crate) fn relationships(i: u64, n: u64) -> Vec<(Relationship, u64)> {
    let local = i % CLUSTER;
    let base = i - local;
    if local == 0 {
        return (1..=3).map(|k| (BACKS_UP, (i + k) % n)).collect();
    }
    let first = if mix(i, 1).is_multiple_of(2) {
        Relationship::DEPENDS_ON
    } else {
        Relationship::RUNS_ON
    };
    let second = if mix(i, 2).is_multiple_of(10) {
        Relationship::CONNECTS_TO
    } else {
        Relationship::PART_OF
    };
    vec![
        (first, base + mix(i, 3) % local),
        (second, base + mix(i, 4) % local),
        (BACKS_UP, mix(i, 5) % n),
    ]
}

/// The events of CI `i`.
pub(crate) fn ci_events(i: u64, n: u64) -> Vec<CiEvent> {
    let ci_type = match i % CLUSTER {
        0 => "server",
        l if l % 100 == 99 => "service",
        _ => "application",
    };
    let attribute = |name: &str, value: String| {
        (
            AttributeName::new(name).unwrap(),
            AttributeValue::from(value.as_str()),
        )
    };
    let mut events = vec![CiEvent::Registered(CiRegistered {
        id: id(i),
        ci_type: CiType::new(ci_type).unwrap(),
        name: format!("CI {i}"),
        description: "a generated configuration item".into(),
        status: "live".into(),
        attributes: [
            attribute("location", format!("dc-{}", mix(i, 6) % 4)),
            attribute("owner", format!("team-{}", mix(i, 7) % 50)),
        ]
        .into_iter()
        .collect(),
        change: None,
    })];
    for (relationship, target) in relationships(i, n) {
        events.push(CiEvent::RelationshipAdded {
            relationship,
            target: id(target),
            change: None,
        });
    }
    if mix(i, 8).is_multiple_of(10) {
        events.push(CiEvent::AttributesUpdated {
            set: [attribute("owner", "team-x".into())].into_iter().collect(),
            removed: Vec::new(),
            change: "CHG-1".parse().ok(),
        });
    }
    if mix(i, 9).is_multiple_of(50) {
        events.push(CiEvent::StatusChanged {
            from: "live".into(),
            to: "maintenance".into(),
            reason: String::new(),
            change: None,
        });
    }
    events
}

/// Events recorded one after another, a second apart, each chained to the one before it in
/// its stream when the stream's events are pushed together.
pub(crate) struct Log {
    /// What was recorded.
    pub(crate) out: Vec<RecordedEvent>,
    position: u64,
    actor: Actor,
}

impl Log {
    /// An empty log whose events `actor` records.
    pub(crate) fn new(actor: &str) -> Self {
        Self {
            out: Vec::new(),
            position: 0,
            actor: Actor::new(actor).unwrap(),
        }
    }

    /// Its positions start after `position` (to follow another log).
    pub(crate) fn after(mut self, position: u64) -> Self {
        self.position = position;
        self
    }

    /// Records `event` at `version` of `stream`.
    pub(crate) fn push<E: DomainEvent>(&mut self, stream: &StreamId, version: u64, event: &E) {
        self.position += 1;
        let at = start() + TimeDelta::seconds(self.position as i64);
        let eid = EventId::from_uuid(uuid::Uuid::from_u128(u128::from(self.position))).unwrap();
        let data = EventData::new(
            event.event_type(),
            event.schema_version(),
            event.to_payload().unwrap(),
            Metadata::new(eid, self.actor.clone(), at),
        )
        .unwrap();
        let previous = self
            .out
            .last()
            .filter(|e| version > 1 && e.stream == *stream)
            .map(|e| e.hash);
        self.out.push(RecordedEvent::record(
            stream.clone(),
            Version::new(version),
            Position::from_sequence(self.position),
            data,
            at,
            previous,
        ));
    }
}

/// The recorded events of `n` CIs, CI by CI.
pub(crate) fn recorded(n: u64) -> Vec<RecordedEvent> {
    let mut log = Log::new("cmdb:discovery");
    for i in 0..n {
        let stream = ConfigurationItem::stream(&id(i)).unwrap();
        for (v, event) in (1u64..).zip(ci_events(i, n)) {
            log.push(&stream, v, &event);
        }
    }
    log.out
}
