//! Business-calendar arithmetic per second: deadlines of 4 h and of 3 days (24 business
//! hours), and the business time of a week, on a Monday-to-Friday Berlin office calendar with
//! several intervals a day and 15 holidays. Starts are spread over a year, so holiday weeks
//! and clock changes are included. `build` validates the definition and reads the zone's
//! offset changes from 1900 to 2100.
//!
//! `cargo bench --bench calendar`; CI runs each once with `cargo bench -- --test`.

#![allow(
    clippy::expect_used,
    reason = "a benchmark stops at the first broken setup step"
)]

use std::hint::black_box;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smsys::processes::BusinessCalendar;

const H: i64 = 3600;
/// Start instants per iteration.
const STARTS: usize = 1024;

fn office() -> BusinessCalendar {
    let day = |name: &str, extra: &str| {
        format!(
            "{{ day = \"{name}\", intervals = [{{ start = \"08:00\", end = \"12:00\" }}, \
             {{ start = \"12:30\", end = \"16:30\" }}{extra}] }}"
        )
    };
    let late = ", { start = \"17:00\", end = \"19:00\" }";
    let weekly = [
        day("mon", late),
        day("tue", ""),
        day("wed", late),
        day("thu", ""),
        day("fri", ""),
    ]
    .join(",\n");
    let closures = [
        "2026-01-01",
        "2026-01-06",
        "2026-04-03",
        "2026-04-06",
        "2026-05-01",
        "2026-05-14",
        "2026-05-25",
        "2026-06-04",
        "2026-10-03",
        "2026-11-01",
        "2026-12-25",
        "2026-12-26",
        "2026-12-31",
        "2027-01-01",
        "2027-01-06",
    ]
    .map(|date| format!("{{ date = \"{date}\" }}"))
    .join(", ");
    BusinessCalendar::from_toml(&format!(
        r#"
        name = "berlin office"
        version = 1
        time_zone = "Europe/Berlin"
        weekly = [{weekly}]
        closures = [{closures}]
        openings = [{{ date = "2026-12-24", intervals = [{{ start = "08:00", end = "12:00" }}] }}]
        "#
    ))
    .expect("a valid calendar")
}

/// Starts every 8 h 33 min 17 s from 2026-01-01, about a year of them.
fn starts() -> Vec<DateTime<Utc>> {
    let first = DateTime::from_timestamp(1_767_225_600, 0).expect("2026-01-01");
    (0..STARTS)
        .map(|i| first + TimeDelta::seconds(30_797 * i64::try_from(i).expect("small")))
        .collect()
}

fn calendar(c: &mut Criterion) {
    let office = office();
    let starts = starts();
    let mut group = c.benchmark_group("sla/calendar");
    group.throughput(Throughput::Elements(STARTS as u64));

    for (name, target) in [("deadline_4h", 4 * H), ("deadline_3_days", 3 * 8 * H)] {
        for &start in &starts {
            let due = office.deadline(start, target);
            assert_eq!(office.business_seconds_between(start, due), target);
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut last = DateTime::<Utc>::MIN_UTC;
                for &start in &starts {
                    last = last.max(office.deadline(black_box(start), black_box(target)));
                }
                assert!(last > starts[STARTS - 1]);
                last
            });
        });
    }

    let week = TimeDelta::days(7);
    let total: i64 = starts
        .iter()
        .map(|&s| office.business_seconds_between(s, s + week))
        .sum();
    assert!(total > 0 && total <= 44 * H * STARTS as i64);
    group.bench_function("between_1_week", |b| {
        b.iter(|| {
            let sum: i64 = starts
                .iter()
                .map(|&s| office.business_seconds_between(black_box(s), black_box(s + week)))
                .sum();
            assert_eq!(sum, total);
            sum
        });
    });

    let definition = office.definition().clone();
    group.throughput(Throughput::Elements(1));
    group.bench_function("build", |b| {
        b.iter(|| BusinessCalendar::new(black_box(definition.clone())).expect("valid"));
    });
    group.finish();
}

criterion_group!(benches, calendar);
criterion_main!(benches);
