//! Record index rows for tests.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys_core::StreamId;
use smsys_core::Version;
use smsys_core::records::{
    CiId, GroupId, PersonId, Phase, Priority, RecordOrder, RecordQuery, RecordRow, RecordType,
    Reference, ServiceId, TimerRow,
};

/// The instant rows of the suite are logged around: [`at`]`(0)`.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0)
        .single()
        .expect("a valid instant")
}

/// [`epoch`] plus `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    epoch() + TimeDelta::minutes(minutes)
}

/// An incident row for the stream `incident-<reference>`: phase new, no priority, service
/// `email`, unassigned, caller `caller`, summary `Row <reference>`, logged at [`epoch`], no
/// configuration items, no timers, version 1. Tests change the fields they need.
pub fn record_row(reference: &str) -> RecordRow {
    let stream: StreamId = format!("incident-{reference}")
        .parse()
        .expect("fixture stream ids are valid");
    RecordRow {
        stream,
        record_type: RecordType::new("incident").expect("valid record type"),
        reference: Reference::new(reference).expect("fixture references are valid"),
        status: "new".to_owned(),
        phase: Phase::New,
        priority: None,
        service: service("email"),
        group: None,
        person: None,
        caller: person("caller"),
        summary: format!("Row {reference}"),
        affected_cis: Vec::new(),
        logged_at: epoch(),
        resolved_at: None,
        closed_at: None,
        reopen_count: 0,
        major: false,
        timers: Vec::new(),
        version: Version::FIRST,
    }
}

/// A running resolution timer due at `due`, breached or not.
pub fn timer(due: Option<DateTime<Utc>>, breached: bool) -> TimerRow {
    TimerRow {
        timer: "resolution".to_owned(),
        cycle: 1,
        running: due.is_some(),
        paused: false,
        due,
        next_threshold: due,
        breached,
    }
}

/// A priority, 1 to 5.
pub fn priority(p: u8) -> Priority {
    Priority::new(p).expect("fixture priorities are 1 to 5")
}

/// A group.
pub fn group(name: &str) -> GroupId {
    GroupId::new(name).expect("fixture groups are valid")
}

/// A person.
pub fn person(name: &str) -> PersonId {
    PersonId::new(name).expect("fixture persons are valid")
}

/// A service.
pub fn service(name: &str) -> ServiceId {
    ServiceId::new(name).expect("fixture services are valid")
}

/// A configuration item.
pub fn ci(name: &str) -> CiId {
    CiId::new(name).expect("fixture configuration items are valid")
}

/// A paused timer named `name` in its second cycle: not counting, no due instant.
pub fn paused_timer(name: &str) -> TimerRow {
    TimerRow {
        timer: name.to_owned(),
        cycle: 2,
        running: false,
        paused: true,
        due: None,
        next_threshold: None,
        breached: false,
    }
}

/// Groups of [`desk_rows`]: `group-00` to `group-19`.
pub const GROUPS: u64 = 20;

/// Spreads the row number `i` over independent-looking bits.
pub fn mix(i: u64, salt: u64) -> u64 {
    let mut x = i.wrapping_add(salt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 29)
}

/// A service desk's records for benches and load tests, the same for every `n`: 80 % incidents, half of them open, priorities 1 to 5 (a tenth
/// without), 20 groups, SLA timers due over two weeks on open records.
pub fn desk_rows(n: usize) -> Vec<RecordRow> {
    let request = RecordType::new("service_request").expect("valid");
    let words = [
        "Mail down",
        "VPN slow",
        "Printer jam",
        "Laptop broken",
        "Access request",
        "Password reset",
        "Disk full",
        "App crash",
    ];
    (0..n as u64)
        .map(|i| {
            let mut row = record_row(&format!("B{i:06}"));
            if mix(i, 1).is_multiple_of(5) {
                row.stream = format!("request-B{i:06}").parse().expect("valid");
                row.record_type = request.clone();
            }
            row.phase = Phase::ALL[(mix(i, 2) % 6) as usize];
            row.status = row.phase.as_str().to_owned();
            row.priority =
                (!mix(i, 3).is_multiple_of(10)).then(|| priority(1 + (mix(i, 4) % 5) as u8));
            row.group = (!mix(i, 5).is_multiple_of(20))
                .then(|| group(&format!("group-{:02}", mix(i, 6) % GROUPS)));
            row.person =
                (mix(i, 7) % 5 < 3).then(|| person(&format!("agent-{:02}", mix(i, 8) % 50)));
            row.service = service(["email", "vpn", "print", "erp"][(mix(i, 9) % 4) as usize]);
            row.summary = format!(
                "{} on host-{:04} for user {}",
                words[(mix(i, 10) % 8) as usize],
                mix(i, 11) % 5_000,
                mix(i, 12) % 900
            );
            row.affected_cis = (0..mix(i, 13) % 3)
                .map(|k| ci(&format!("ci-{:03}", mix(i, 14 + k) % 500)))
                .collect();
            row.logged_at = epoch() + TimeDelta::seconds(i as i64 * 7);
            let due = row
                .phase
                .is_open()
                .then(|| epoch() + TimeDelta::minutes((mix(i, 20) % 20_160) as i64));
            row.timers = vec![timer(due, mix(i, 21).is_multiple_of(10))];
            row
        })
        .collect()
}

/// Open P1-P2 incidents of one group, earliest due first: a queue view.
pub fn queue_query() -> RecordQuery {
    RecordQuery {
        record_types: vec![RecordType::new("incident").expect("valid")],
        priorities: vec![priority(1), priority(2)],
        groups: vec![group("group-07")],
        order: RecordOrder::Due,
        limit: 50,
        ..RecordQuery::open()
    }
}
