//! Conflict detection of one change against 10k scheduled changes on a 100k-CI graph,
//! beside a raw baseline.
//!
//! The CMDB is the one of `benches/cmdb_graph.rs` (100 clusters of 1,000 CIs, three
//! relationships a CI, one service CI in a hundred). 10k changes, each on one to three CIs
//! drawn anywhere, with one of 200 implementers, in windows of one to eight hours over 90
//! days; their events (logged, planned, scheduled) are pre-built as `RecordedEvent`s.
//! Calendars: a global year-end freeze, a freeze bound to one service and a maintenance
//! window bound to ten CIs.
//!
//! - `change_schedule/fold_10k`: applies every change event to a new `ChangeSchedule`.
//! - `change_schedule/conflicts_10k`: the conflicts of a window asked for a change on two
//!   CIs with an implementer, related CIs within 2 hops, freezes and maintenance (the
//!   service-bound freeze asks the graph for the services each CI supports);
//!   `change_schedule/conflicts_10k_same_ci_only`: the same without graph or calendars.
//! - `change_schedule/raw/linear_scan_10k`: a scan over the 10k windows in a `Vec`, testing
//!   overlap, shared CIs and implementer (no graph, no calendars).
//! - `change_schedule/planned_on_service_week`: the changes planned on a service in a week.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benches report failures by panicking"
)]

#[path = "support/estate.rs"]
mod estate;
use estate::*;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use smsys_core::records::change::{ChangeControlEvent, ChangeLogged, ChangePlan, ChangeWindow};
use smsys_core::records::{
    Change, ChangeEvent, ChangeKind, Channel, CiId, DefinitionRef, Logged, PersonId, RecordKind,
    Reference, TypedEvent,
};
use smsys_core::{Projection, RecordedEvent};
use smsys_processes::CmdbGraph;
use smsys_processes::change::{
    ChangeCalendars, ChangeSchedule, ConflictDetector, ConflictKind, ScheduleRequest,
};
use smsys_store::testkit::records::mix;

const CHANGES: u64 = 10_000;
const PEOPLE: u64 = 200;

fn graph_events(n: u64) -> Vec<RecordedEvent> {
    recorded(n)
}

/// Change `c`: its CIs, implementer and window (hours from the start).
fn change_of(c: u64, n: u64) -> (Vec<u64>, u64, (i64, i64)) {
    let count = 1 + mix(c, 10) % 3;
    let cis = (0..count).map(|k| mix(c, 11 + k) % n).collect();
    let from = (mix(c, 20) % (90 * 24)) as i64;
    (
        cis,
        mix(c, 21) % PEOPLE,
        (from, from + 1 + (mix(c, 22) % 8) as i64),
    )
}

fn window((from, to): (i64, i64)) -> ChangeWindow {
    ChangeWindow {
        start: start() + TimeDelta::hours(from),
        end: start() + TimeDelta::hours(to),
        time_zone: "UTC".into(),
    }
}

fn person(p: u64) -> PersonId {
    format!("p{p}").parse().unwrap()
}

fn change_events(changes: u64, n: u64) -> Vec<RecordedEvent> {
    let mut log = Log::new("agent:bench").after(1_000_000);
    for c in 0..changes {
        let (cis, implementer, span) = change_of(c, n);
        let reference: Reference = format!("CHG-{c}").parse().unwrap();
        let stream = Change::stream(&reference).unwrap();
        let logged: ChangeEvent = TypedEvent::Logged(ChangeLogged {
            record: Logged {
                reference,
                lifecycle: DefinitionRef {
                    name: "change_normal".into(),
                    version: 1,
                },
                status: "scheduled".into(),
                caller: "rita".parse().unwrap(),
                channel: Channel::Portal,
                service: "payroll".parse().unwrap(),
                affected_cis: Vec::new(),
                summary: "a change".into(),
                description: String::new(),
                attributes: BTreeMap::new(),
            },
            kind: ChangeKind::Normal,
            template: None,
        });
        let planned: ChangeEvent = TypedEvent::Own(ChangeControlEvent::Planned(ChangePlan {
            cis: cis.iter().map(|i| id(*i)).collect(),
            implementation: "do it".into(),
            remediation: "undo it".into(),
            test_plan: String::new(),
            implementer: Some(person(implementer)),
            ci_updates: Vec::new(),
        }));
        let scheduled: ChangeEvent = TypedEvent::Own(ChangeControlEvent::Scheduled {
            window: window(span),
            warnings: Vec::new(),
        });
        log.push(&stream, 1, &logged);
        log.push(&stream, 2, &planned);
        log.push(&stream, 3, &scheduled);
    }
    log.out
}

fn calendars(n: u64) -> ChangeCalendars {
    let service = id(CLUSTER * (n / CLUSTER / 2) + 99);
    let cis: Vec<String> = (0..10).map(|k| format!("\"{}\"", id(k * 7))).collect();
    ChangeCalendars::from_toml(&format!(
        r#"
        [[freeze]]
        name = "year end"
        global = true
        from = "2026-12-20T00:00:00Z"
        until = "2027-01-04T00:00:00Z"
        calendar = {{ name = "always", version = 1, time_zone = "UTC", always_open = true }}

        [[freeze]]
        name = "service close"
        services = ["{service}"]
        calendar = {{ name = "month end", version = 1, time_zone = "UTC", always_open = true,
            closures = [{{ date = "2026-09-02" }}] }}

        [[maintenance]]
        name = "nights"
        cis = [{}]
        calendar = {{ name = "nights", version = 1, time_zone = "Europe/Paris", weekly = [
            {{ day = "sat", intervals = [{{ start = "22:00", end = "06:00" }}] }},
        ] }}
        "#,
        cis.join(", ")
    ))
    .unwrap()
}

fn fold<P: Projection>(projection: &P, events: &[RecordedEvent]) {
    futures::executor::block_on(async {
        for batch in events.chunks(512) {
            let last = batch.last().unwrap().position;
            projection.apply(batch, last).await.unwrap();
        }
    });
}

struct Raw {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    cis: Vec<CiId>,
    implementer: PersonId,
    reference: Reference,
}

fn raw_scan(raw: &[Raw], w: &ChangeWindow, cis: &[CiId], implementer: &PersonId) -> usize {
    let mut found = 0;
    for r in raw {
        if r.start < w.end && w.start < r.end {
            found += r.cis.iter().filter(|c| cis.contains(c)).count();
            found += usize::from(&r.implementer == implementer);
            black_box(&r.reference);
        }
    }
    found
}

fn change_schedule(c: &mut Criterion) {
    // `cargo bench -- --test` runs each bench once: a smaller CMDB keeps it quick.
    let n = if std::env::args().any(|a| a == "--test") {
        5_000
    } else {
        CIS
    };
    let graph = Arc::new(CmdbGraph::new());
    fold(graph.as_ref(), &graph_events(n));
    assert_eq!(graph.len() as u64, n);
    let events = change_events(CHANGES, n);
    let schedule = ChangeSchedule::new("change_schedule", graph.clone())
        .with_related_hops(2)
        .with_calendars(calendars(n));
    fold(&schedule, &events);
    assert_eq!(schedule.len() as u64, CHANGES);
    let plain = ChangeSchedule::new("plain", graph.clone()).with_related_hops(0);
    fold(&plain, &events);

    // The change asked about: CHG-7's CIs, implementer and window.
    let (cis, implementer, span) = change_of(7, n);
    let cis: Vec<CiId> = cis.iter().map(|i| id(*i)).collect();
    let implementer = person(implementer);
    let asked = window(span);
    let me: Reference = "CHG-NEW".parse().unwrap();
    let request = ScheduleRequest {
        change: &me,
        window: &asked,
        cis: &cis,
        implementer: Some(&implementer),
    };
    let raw: Vec<Raw> = (0..CHANGES)
        .map(|c| {
            let (cis, p, span) = change_of(c, n);
            let w = window(span);
            Raw {
                start: w.start,
                end: w.end,
                cis: cis.iter().map(|i| id(*i)).collect(),
                implementer: person(p),
                reference: format!("CHG-{c}").parse().unwrap(),
            }
        })
        .collect();
    let expected_raw = raw_scan(&raw, &asked, &cis, &implementer);
    let same: Vec<_> = plain.conflicts(&request);
    assert!(!same.is_empty());
    assert_eq!(same.len(), expected_raw);
    let all = schedule.conflicts(&request);
    assert!(all.iter().any(|c| c.kind == ConflictKind::SameCi));

    let mut group = c.benchmark_group("change_schedule");
    group.sample_size(20);
    group.bench_function("fold_10k", |b| {
        b.iter_batched(
            || ChangeSchedule::new("fold", graph.clone()),
            |fresh| {
                fold(&fresh, &events);
                assert_eq!(fresh.len() as u64, CHANGES);
                fresh
            },
            BatchSize::PerIteration,
        );
    });
    group.sample_size(100);
    group.bench_function("conflicts_10k", |b| {
        b.iter(|| {
            let found = schedule.conflicts(black_box(&request));
            assert_eq!(found.len(), all.len());
            found
        });
    });
    group.bench_function("conflicts_10k_same_ci_only", |b| {
        b.iter(|| {
            let found = plain.conflicts(black_box(&request));
            assert_eq!(found.len(), expected_raw);
            found
        });
    });
    group.bench_function("raw/linear_scan_10k", |b| {
        b.iter(|| {
            let found = raw_scan(&raw, black_box(&asked), &cis, &implementer);
            assert_eq!(found, expected_raw);
            found
        });
    });
    let service = id(CLUSTER * (n / CLUSTER / 2) + 99);
    let week = (start(), start() + TimeDelta::days(7));
    let planned = schedule.planned_on_service(&service, week.0, week.1).len();
    group.bench_function("planned_on_service_week", |b| {
        b.iter(|| {
            let found = schedule.planned_on_service(black_box(&service), week.0, week.1);
            assert_eq!(found.len(), planned);
            found
        });
    });
    group.finish();
}

criterion_group!(benches, change_schedule);
criterion_main!(benches);
