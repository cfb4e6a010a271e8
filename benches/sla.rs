//! SLA benchmarks: the scheduler projection with 1,000,000 running timers, and recomputing the
//! timers of 100,000 records from their histories on the office calendar.
//!
//! `cargo bench --bench sla`; CI runs each once with `cargo bench -- --test`.

#![allow(
    clippy::expect_used,
    clippy::print_stderr,
    reason = "a benchmark stops at the first broken setup step and reports memory on stderr"
)]

use std::hint::black_box;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use smsys::core::records::{
    Channel, CommonEvent, DefinitionRef, Incident, Level, Logged, NoteKind, Phase, Priority,
    RecordEvent, RecordKind, TransitionDetail,
};
use smsys::processes::sla::{History, SlaEngine, SlaScheduler};

const TIMERS: u64 = 1_000_000;
const RECORDS: usize = 100_000;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 7, 0, 0)
        .single()
        .expect("valid")
}

/// Resident set size of this process, in KiB (Linux); 0 elsewhere.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn scheduler(c: &mut Criterion) {
    let mut group = c.benchmark_group("sla/scheduler");
    let before = rss_kib();
    let mut s = SlaScheduler::new();
    // One timer every 31 seconds over about a year.
    for key in 0..TIMERS {
        s.set(key, Some(t0() + TimeDelta::seconds((key * 31) as i64)));
    }
    eprintln!(
        "sla/scheduler: {} timers indexed, {} MiB resident for the index",
        s.len(),
        (rss_kib().saturating_sub(before)) / 1024
    );
    // "What is due" at an instant where 1,000 timers are due, with 999,000 not yet.
    let now = t0() + TimeDelta::seconds(999 * 31);
    group.throughput(Throughput::Elements(1));
    group.bench_function("due_query_1m_timers_1000_due", |b| {
        b.iter(|| {
            let due = s.due(black_box(now)).count();
            assert_eq!(due, 1000);
        });
    });
    group.bench_function("next_instant_1m_timers", |b| {
        b.iter(|| black_box(s.next_instant()).expect("one is due first"));
    });
    group.bench_function("reschedule_one_of_1m_timers", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = (key + 7919) % TIMERS;
            s.set(key, Some(t0() + TimeDelta::seconds((key * 31 + 1) as i64)));
        });
    });
    group.finish();
}

/// A realistic incident history: logged, prioritised, assigned and started, on hold and back,
/// resolved and closed, over a working day.
fn history(i: usize) -> History {
    let start = t0() + TimeDelta::minutes((i % 5000) as i64 * 7);
    let at = |m: i64| start + TimeDelta::minutes(m);
    let moved = |phase: Phase, detail: TransitionDetail, when: DateTime<Utc>| {
        CommonEvent::Record(RecordEvent::Transitioned {
            transition: "t".into(),
            from: "x".into(),
            to: phase.as_str().into(),
            phase,
            detail,
            at: when,
        })
    };
    let shared = |event: RecordEvent| CommonEvent::Record(event);
    vec![
        (
            at(0),
            CommonEvent::Logged(Logged {
                reference: format!("INC-{i}").parse().expect("valid"),
                lifecycle: DefinitionRef {
                    name: "incident".into(),
                    version: 1,
                },
                status: "new".into(),
                caller: "user".parse().expect("valid"),
                channel: Channel::Email,
                service: "email".parse().expect("valid"),
                affected_cis: vec![],
                summary: "s".into(),
                description: String::new(),
                attributes: Default::default(),
            }),
        ),
        (
            at(5),
            shared(RecordEvent::Prioritised {
                impact: Level::Medium,
                urgency: Level::ALL[i % 3],
                priority: Priority::new(2 + (i % 3) as u8).expect("valid"),
                matrix_version: 1,
            }),
        ),
        (
            at(6),
            shared(RecordEvent::Assigned {
                group: "desk".parse().expect("valid"),
                person: None,
                reassignment: false,
            }),
        ),
        (at(6), moved(Phase::Active, TransitionDetail::Plain, at(6))),
        (
            at(60),
            moved(
                Phase::Pending,
                TransitionDetail::Hold {
                    reason: "caller".into(),
                },
                at(60),
            ),
        ),
        (
            at(180),
            moved(
                Phase::Active,
                TransitionDetail::Resume { by_caller: true },
                at(180),
            ),
        ),
        (
            at(200),
            shared(RecordEvent::Noted {
                kind: NoteKind::WorkNote,
                text: "n".into(),
            }),
        ),
        (
            at(400),
            moved(
                Phase::Resolved,
                TransitionDetail::Resolution {
                    code: "c".into(),
                    notes: "n".into(),
                },
                at(400),
            ),
        ),
        (
            at(1500),
            moved(
                Phase::Closed,
                TransitionDetail::Closure { automatic: false },
                at(1500),
            ),
        ),
    ]
}

fn recompute(c: &mut Criterion) {
    let engine = SlaEngine::reference();
    let histories: Vec<History> = (0..RECORDS).map(history).collect();
    let mut group = c.benchmark_group("sla/recompute");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("timers_and_due_100k_records", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut timers = 0;
                for h in &histories {
                    for t in engine.timers(&Incident::RECORD_TYPE, h) {
                        let cal = engine.calendar_for(&t).expect("calendar");
                        black_box(t.due(cal));
                        timers += 1;
                    }
                }
                assert_eq!(timers, 2 * RECORDS, "response and resolution per record");
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, scheduler, recompute);
criterion_main!(benches);
