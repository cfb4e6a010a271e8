//! Problem candidates from incident trends over 100k incidents, beside raw baselines.
//!
//! `trend/fold_100k` applies every event of 100k incidents (logged, classified, assigned,
//! noted, and for some linked to a CI or a problem, cancelled, flagged major), pre-built as
//! `RecordedEvent`s, to a new `IncidentTrends` in batches of 512, as the projection runner
//! would, then puts them in order (as the first query does; the log is out of order); `trend/raw/decode_json_100k` only parses the same events' payloads from JSON text to
//! `serde_json::Value`. `trend/candidates_*` asks the folded model for the candidates of the
//! default policy (a 7-day window over 90 days of incidents) and of a window holding them
//! all; `trend/raw/group_*` groups pre-extracted `(key, time)` tuples of the same incidents in
//! a `HashMap<String, Vec<usize>>` and keeps the groups that reach the threshold. Every bench
//! checks what it built.
//!
//! The memory the folded model holds is measured with a counting global allocator and
//! printed beside the bytes of the events it was folded from.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benches report failures by panicking"
)]

use std::alloc::System;
use std::collections::HashMap;
use std::hint::black_box;

use cap::Cap;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use smsys_core::records::incident::MajorIncidentEvent;
use smsys_core::records::{
    Channel, DefinitionRef, GroupId, Incident, IncidentEvent, LinkKind, Logged, NoteKind, Phase,
    RecordEvent, RecordKind, TransitionDetail, TypedEvent,
};
use smsys_core::{
    Actor, DomainEvent, EventData, EventId, Metadata, Position, Projection, RecordedEvent, Version,
};
use smsys_processes::trend::{IncidentTrends, RecurrenceQuery, TrendDimension, TrendPolicy};
use smsys_store::testkit::records::mix;

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const INCIDENTS: u64 = 100_000;
const CIS: u64 = 2_000;
const SERVICES: u64 = 40;
const CATEGORIES: u64 = 25;
const DAYS: i64 = 90;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).unwrap()
}

/// The instant every query is asked at: the end of the 90 days.
fn as_of() -> DateTime<Utc> {
    start() + TimeDelta::days(DAYS)
}

/// Incident `i`'s facts, as the generator chooses them.
struct Shape {
    at: DateTime<Utc>,
    service: u64,
    cis: Vec<u64>,
    category: u64,
    problem: bool,
    cancelled: bool,
    major: bool,
}

fn shape(i: u64) -> Shape {
    let minutes = (mix(i, 1) % (DAYS as u64 * 24 * 60)) as i64;
    // A skewed choice of CIs: a few hot ones collect trends.
    let ci = |salt| {
        let r = mix(i, salt) % 100;
        if r < 20 {
            r % 40
        } else {
            mix(i, salt + 1) % CIS
        }
    };
    let mut cis = vec![ci(2)];
    if mix(i, 4).is_multiple_of(4) {
        cis.push(ci(5));
    }
    cis.dedup();
    Shape {
        at: start() + TimeDelta::minutes(minutes),
        service: mix(i, 7) % SERVICES,
        cis,
        category: mix(i, 8) % CATEGORIES,
        problem: mix(i, 9).is_multiple_of(20),
        cancelled: mix(i, 10).is_multiple_of(33),
        major: mix(i, 11).is_multiple_of(100),
    }
}

/// The events of incident `i`.
fn incident_events(i: u64, s: &Shape) -> Vec<IncidentEvent> {
    let mut events = vec![
        TypedEvent::Logged(Logged {
            reference: format!("INC-{i:06}").parse().unwrap(),
            lifecycle: DefinitionRef {
                name: "incident".into(),
                version: 1,
            },
            status: "new".into(),
            caller: format!("user-{}", mix(i, 12) % 5_000).parse().unwrap(),
            channel: Channel::Phone,
            service: format!("service-{:02}", s.service).parse().unwrap(),
            affected_cis: s
                .cis
                .iter()
                .map(|c| format!("ci-{c:04}").parse().unwrap())
                .collect(),
            summary: "Mail bounces for the whole floor".into(),
            description: "Since 08:00 every message to the partner domain bounces.".into(),
            attributes: Default::default(),
        }),
        TypedEvent::Record(RecordEvent::Classified {
            category: format!("category-{:02}", s.category),
            subcategory: None,
        }),
        TypedEvent::Record(RecordEvent::Assigned {
            group: GroupId::new(format!("group-{:02}", mix(i, 13) % 20)).unwrap(),
            person: None,
            reassignment: false,
        }),
        TypedEvent::Record(RecordEvent::Noted {
            kind: NoteKind::WorkNote,
            text: "Looked at the queue; restarting the relay.".into(),
        }),
    ];
    if s.major {
        events.push(TypedEvent::Own(MajorIncidentEvent::MajorFlagged {
            reason: "a whole floor".into(),
        }));
    }
    if mix(i, 14).is_multiple_of(10) {
        events.push(TypedEvent::Record(RecordEvent::Linked {
            kind: LinkKind::CONFIGURATION_ITEM,
            target: format!("ci-{:04}", mix(i, 15) % CIS),
        }));
    }
    if s.problem {
        events.push(TypedEvent::Record(RecordEvent::Linked {
            kind: LinkKind::PROBLEM,
            target: format!("PRB-{:04}", mix(i, 16) % 500),
        }));
    }
    if s.cancelled {
        events.push(TypedEvent::Record(RecordEvent::Transitioned {
            transition: "cancel".into(),
            from: "new".into(),
            to: "cancelled".into(),
            phase: Phase::Cancelled,
            detail: TransitionDetail::Cancellation {
                reason: "a duplicate".into(),
            },
            at: s.at,
        }));
    }
    events
}

/// The recorded events of `n` incidents, in log order (incident by incident).
fn recorded(n: u64) -> Vec<RecordedEvent> {
    let actor = Actor::new("agent:bo").unwrap();
    let mut out = Vec::new();
    let mut position = 0;
    for i in 0..n {
        let s = shape(i);
        let events = incident_events(i, &s);
        let stream = Incident::stream(&format!("INC-{i:06}").parse().unwrap()).unwrap();
        let mut previous = None;
        for (v, event) in (1u64..).zip(events) {
            position += 1;
            let id = EventId::from_uuid(uuid::Uuid::from_u128(u128::from(position))).unwrap();
            let data = EventData::new(
                event.event_type(),
                event.schema_version(),
                event.to_payload().unwrap(),
                Metadata::new(id, actor.clone(), s.at),
            )
            .unwrap();
            let e = RecordedEvent::record(
                stream.clone(),
                Version::new(v),
                Position::from_sequence(position),
                data,
                s.at,
                previous,
            );
            previous = Some(e.hash);
            out.push(e);
        }
    }
    out
}

/// Folds `events` into new trends, 512 at a time, and puts them in order (which the first
/// query does).
fn fold(events: &[RecordedEvent]) -> IncidentTrends {
    let trends = IncidentTrends::new(TrendPolicy::default()).unwrap();
    futures::executor::block_on(async {
        for batch in events.chunks(512) {
            let last = batch.last().unwrap().position;
            trends.apply(batch, last).await.unwrap();
        }
    });
    let nothing = RecurrenceQuery::on(None, None, start(), as_of());
    assert!(trends.recurrences(&nothing).is_empty());
    trends
}

/// The `(key, time)` tuples of the incidents that count (not cancelled, no problem): one per
/// CI, service and category.
fn tuples(n: u64) -> Vec<(String, DateTime<Utc>)> {
    let mut out = Vec::new();
    for i in 0..n {
        let s = shape(i);
        if s.cancelled || s.problem {
            continue;
        }
        let mut cis = s.cis.clone();
        if mix(i, 14).is_multiple_of(10) {
            cis.push(mix(i, 15) % CIS);
        }
        cis.sort_unstable();
        cis.dedup();
        for c in cis {
            out.push((format!("ci:ci-{c:04}"), s.at));
        }
        out.push((format!("service:service-{:02}", s.service), s.at));
        out.push((format!("category:category-{:02}", s.category), s.at));
    }
    out
}

/// The raw baseline: groups the tuples in `(from, to]` by key, keeps those reaching their
/// dimension's threshold.
fn raw_groups(
    tuples: &[(String, DateTime<Utc>)],
    policy: &TrendPolicy,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> usize {
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (key, at)) in tuples.iter().enumerate() {
        if from < *at && *at <= to {
            groups.entry(key.as_str()).or_default().push(i);
        }
    }
    groups
        .iter()
        .filter(|(key, members)| {
            let threshold = match key.split_once(':').map(|(d, _)| d) {
                Some("ci") => policy.ci,
                Some("service") => policy.service,
                _ => policy.category,
            };
            threshold.is_some_and(|t| members.len() >= t as usize)
        })
        .count()
}

#[allow(
    clippy::print_stderr,
    reason = "the memory figures are the bench's report"
)]
fn report_memory(events: &[RecordedEvent], event_bytes: usize) {
    let before = ALLOCATOR.allocated();
    let trends = fold(events);
    let held = ALLOCATOR.allocated() - before;
    let json: usize = events
        .iter()
        .map(|e| serde_json::to_string(e.data.payload()).unwrap().len())
        .sum();
    eprintln!(
        "trend/memory: {} incidents held in {} bytes ({} per incident); \
         their {} events take {} bytes in memory as RecordedEvents, {} bytes of payload JSON",
        trends.len(),
        held,
        held / trends.len().max(1),
        events.len(),
        event_bytes,
        json,
    );
    drop(trends);
}

fn trend(c: &mut Criterion) {
    // `cargo bench -- --test` runs each bench once: a smaller log keeps it quick.
    let n = if std::env::args().any(|a| a == "--test") {
        5_000
    } else {
        INCIDENTS
    };
    let before = ALLOCATOR.allocated();
    let events = recorded(n);
    let event_bytes = ALLOCATOR.allocated() - before;
    report_memory(&events, event_bytes);
    let texts: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e.data.payload()).unwrap())
        .collect();

    let mut group = c.benchmark_group("trend");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n));
    group.bench_function("fold_100k", |b| {
        b.iter_batched(
            || (),
            |()| {
                let trends = fold(&events);
                assert_eq!(trends.len() as u64, n);
                trends
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("raw/decode_json_100k", |b| {
        b.iter(|| {
            let mut objects = 0;
            for text in &texts {
                let value: Value = serde_json::from_str(text).unwrap();
                objects += usize::from(value.is_object());
            }
            assert_eq!(objects, events.len());
            objects
        });
    });

    let trends = fold(&events);
    let tuples = tuples(n);
    let all = TrendPolicy {
        window_days: DAYS as u32 + 1,
        ..TrendPolicy::default()
    };
    let every = IncidentTrends::new(all.clone()).unwrap();
    futures::executor::block_on(every.apply(&events, events.last().unwrap().position)).unwrap();
    for (name, trends, policy) in [
        ("7d", &trends, TrendPolicy::default()),
        ("all", &every, all),
    ] {
        let from = as_of() - policy.window();
        let counted = |candidates: &[smsys_processes::TrendCandidate]| {
            candidates
                .iter()
                .filter(|c| c.key().dimension() != TrendDimension::MajorIncident)
                .count()
        };
        let expected = raw_groups(&tuples, &policy, from, as_of());
        assert!(expected > 0, "the data makes trends");
        assert_eq!(counted(&trends.candidates(as_of())), expected);
        group.bench_function(format!("candidates_{name}_100k"), |b| {
            b.iter(|| {
                let candidates = trends.candidates(black_box(as_of()));
                assert_eq!(counted(&candidates), expected);
                candidates
            });
        });
        group.bench_function(format!("raw/group_{name}_100k"), |b| {
            b.iter(|| {
                let found = raw_groups(&tuples, &policy, from, black_box(as_of()));
                assert_eq!(found, expected);
                found
            });
        });
    }
    group.finish();
}

criterion_group!(benches, trend);
criterion_main!(benches);
