//! Business calendars: the worked examples of DOMAIN.md, clock changes in Berlin and New York,
//! holidays, dated openings, overnight intervals, the arithmetic's invariants under random
//! input, and every refusal of a bad definition.

#![allow(
    clippy::expect_used,
    reason = "test helpers: stop at the first broken expectation"
)]

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use smsys_processes::{BusinessCalendar, CalendarDefinition, CalendarError};

const H: i64 = 3600;

fn calendar(toml: &str) -> BusinessCalendar {
    BusinessCalendar::from_toml(toml).unwrap_or_else(|e| panic!("{e}"))
}

/// A calendar open the same hours on Monday to Friday.
fn weekdays(zone: &str, intervals: &str) -> BusinessCalendar {
    let days = ["mon", "tue", "wed", "thu", "fri"]
        .map(|day| format!("{{ day = \"{day}\", intervals = [{intervals}] }}"))
        .join(", ");
    calendar(&format!(
        "name = \"weekdays\"\nversion = 1\ntime_zone = \"{zone}\"\nweekly = [{days}]"
    ))
}

/// An instant given as local civil time of the calendar's zone ("2026-03-02 07:00"); a time
/// that occurs twice is its first occurrence.
fn local(c: &BusinessCalendar, text: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("a local time");
    c.time_zone()
        .from_local_datetime(&naive)
        .earliest()
        .expect("the local time exists")
        .with_timezone(&Utc)
}

/// An instant as local civil time with the weekday ("Tue 2026-03-03 10:00").
fn show(c: &BusinessCalendar, at: DateTime<Utc>) -> String {
    at.with_timezone(&c.time_zone())
        .format("%a %Y-%m-%d %H:%M")
        .to_string()
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 instant")
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------------
// The worked examples of DOMAIN.md ("SLA timers") that are calendar arithmetic.

#[test]
fn example_1_counting_starts_at_opening_and_thresholds_fall_inside_the_day() {
    let c = weekdays("Europe/Berlin", r#"{ start = "08:00", end = "16:00" }"#);
    let started = local(&c, "2026-03-02 07:00");
    assert_eq!(show(&c, c.next_opening(started)), "Mon 2026-03-02 08:00");
    assert_eq!(show(&c, c.deadline(started, 4 * H)), "Mon 2026-03-02 12:00");
    assert_eq!(show(&c, c.deadline(started, 6 * H)), "Mon 2026-03-02 14:00");
    assert_eq!(show(&c, c.deadline(started, 8 * H)), "Mon 2026-03-02 16:00");
    assert_eq!(
        c.business_seconds_between(started, local(&c, "2026-03-02 12:00")),
        4 * H
    );
}

#[test]
fn example_2_a_day_of_business_time_is_three_working_days() {
    let c = weekdays("Europe/Berlin", r#"{ start = "09:00", end = "17:00" }"#);
    let started = local(&c, "2026-03-02 09:00");
    assert_eq!(
        show(&c, c.deadline(started, 24 * H)),
        "Wed 2026-03-04 17:00"
    );
    // Opened Friday afternoon, the weekend does not count.
    let friday = local(&c, "2026-03-06 13:00");
    assert_eq!(show(&c, c.deadline(friday, 24 * H)), "Wed 2026-03-11 13:00");
}

#[test]
fn example_3_due_next_morning_and_a_hold_moves_it_by_the_paused_business_time() {
    let c = weekdays("Europe/Berlin", r#"{ start = "08:00", end = "18:00" }"#);
    let opened = local(&c, "2026-03-02 16:00");
    assert_eq!(show(&c, c.deadline(opened, 4 * H)), "Tue 2026-03-03 10:00");
    // On hold Tuesday 08:00-11:00: 2 h had elapsed, the remaining 2 h run from 11:00.
    let (hold, resume) = (local(&c, "2026-03-03 08:00"), local(&c, "2026-03-03 11:00"));
    let elapsed = c.business_seconds_between(opened, hold);
    assert_eq!(elapsed, 2 * H);
    let paused = c.business_seconds_between(hold, resume);
    assert_eq!(paused, 3 * H);
    assert_eq!(
        show(&c, c.deadline(resume, 4 * H - elapsed)),
        "Tue 2026-03-03 13:00"
    );
    // The same as the target extended by the paused business time.
    assert_eq!(
        show(&c, c.deadline(opened, 4 * H + paused)),
        "Tue 2026-03-03 13:00"
    );
}

#[test]
fn example_4_an_overnight_gap_is_skipped_not_counted_to_midnight() {
    let c = weekdays("Europe/Berlin", r#"{ start = "08:00", end = "18:00" }"#);
    let opened = local(&c, "2026-03-02 17:00");
    assert_eq!(show(&c, c.deadline(opened, 4 * H)), "Tue 2026-03-03 11:00");
    assert_eq!(show(&c, c.deadline(opened, 3 * H)), "Tue 2026-03-03 10:00");
}

#[test]
fn example_5_different_hours_per_day_and_a_closed_weekday() {
    let c = calendar(
        r#"
        name = "uneven"
        version = 1
        time_zone = "Europe/Berlin"
        weekly = [
            { day = "mon", intervals = [{ start = "09:00", end = "17:00" }] },
            { day = "tue", intervals = [{ start = "09:00", end = "16:00" }] },
            { day = "thu", intervals = [{ start = "08:00", end = "17:00" }] },
        ]
    "#,
    );
    let started = local(&c, "2026-03-02 11:00");
    assert_eq!(
        show(&c, c.deadline(started, 16 * H)),
        "Thu 2026-03-05 11:00"
    );
    let day_end = |day: &str| c.business_seconds_between(started, local(&c, day));
    assert_eq!(day_end("2026-03-02 23:00"), 6 * H);
    assert_eq!(day_end("2026-03-03 23:00"), 13 * H);
    assert_eq!(day_end("2026-03-04 23:00"), 13 * H);
    assert_eq!(day_end("2026-03-05 11:00"), 16 * H);
}

#[test]
fn example_7_around_the_clock() {
    let c = BusinessCalendar::always_open();
    let started = utc("2015-01-01T10:30:00Z");
    assert_eq!(c.deadline(started, 10 * H), utc("2015-01-01T20:30:00Z"));
    assert_eq!(
        c.business_seconds_between(started, utc("2015-01-08T10:30:00Z")),
        7 * 24 * H
    );
}

// ---------------------------------------------------------------------------------------------
// Clock changes: computed on UTC instants of local boundaries.

fn always_open_in(zone: &str) -> BusinessCalendar {
    calendar(&format!(
        "name = \"24x7 {zone}\"\nversion = 1\ntime_zone = \"{zone}\"\nalways_open = true"
    ))
}

#[test]
fn berlin_around_the_clock_counts_real_seconds_over_both_changes() {
    let c = always_open_in("Europe/Berlin");
    let between = |from, to| c.business_seconds_between(local(&c, from), local(&c, to));
    // 02:00 becomes 03:00 on 2026-03-29: 01:00-04:00 local is 2 h of real time.
    assert_eq!(between("2026-03-29 01:00", "2026-03-29 04:00"), 2 * H);
    // 03:00 becomes 02:00 on 2026-10-25: 01:00-04:00 local is 4 h.
    assert_eq!(between("2026-10-25 01:00", "2026-10-25 04:00"), 4 * H);
    assert_eq!(between("2026-03-29 00:00", "2026-03-30 00:00"), 23 * H);
    assert_eq!(between("2026-10-25 00:00", "2026-10-26 00:00"), 25 * H);
    // One hour after 01:30 the clocks read 03:30.
    let start = local(&c, "2026-03-29 01:30");
    assert_eq!(show(&c, c.deadline(start, H)), "Sun 2026-03-29 03:30");
    // One hour after 01:30 CEST they read 02:30, then again 02:30 an hour later.
    let start = local(&c, "2026-10-25 01:30");
    assert_eq!(c.deadline(start, H), utc("2026-10-25T00:30:00Z"));
    assert_eq!(c.deadline(start, 2 * H), utc("2026-10-25T01:30:00Z"));
}

#[test]
fn new_york_around_the_clock_counts_real_seconds_over_both_changes() {
    let c = always_open_in("America/New_York");
    let between = |from, to| c.business_seconds_between(local(&c, from), local(&c, to));
    // 02:00 EST becomes 03:00 EDT on 2026-03-08; 02:00 EDT becomes 01:00 EST on 2026-11-01.
    assert_eq!(between("2026-03-08 00:00", "2026-03-08 04:00"), 3 * H);
    assert_eq!(between("2026-11-01 00:00", "2026-11-01 04:00"), 5 * H);
    let start = local(&c, "2026-03-08 01:00");
    assert_eq!(show(&c, c.deadline(start, 2 * H)), "Sun 2026-03-08 04:00");
}

#[test]
fn business_hours_spanning_the_changed_hour() {
    let c = calendar(
        r#"
        name = "sunday night batch"
        version = 1
        time_zone = "Europe/Berlin"
        weekly = [
            { day = "sun", intervals = [{ start = "01:00", end = "04:00" }] },
            { day = "sat", intervals = [{ start = "02:30", end = "05:00" }] },
        ]
    "#,
    );
    let sunday = |date: &str| {
        c.business_seconds_between(
            local(&c, &format!("{date} 00:00")),
            local(&c, &format!("{date} 12:00")),
        )
    };
    assert_eq!(sunday("2026-03-22"), 3 * H);
    assert_eq!(sunday("2026-03-29"), 2 * H);
    assert_eq!(sunday("2026-10-25"), 4 * H);
    // The second hour of 2026-10-25 ends at 02:00 CET, the repeated 02:00.
    let start = local(&c, "2026-10-25 01:00");
    assert_eq!(c.deadline(start, 2 * H), utc("2026-10-25T01:00:00Z"));
    assert!(c.is_open(utc("2026-10-25T00:30:00Z")), "02:30 CEST");
    assert!(c.is_open(utc("2026-10-25T01:30:00Z")), "02:30 CET");
}

#[test]
fn a_boundary_in_the_skipped_hour_moves_to_the_jump_and_a_repeated_one_to_its_first_occurrence() {
    let c = calendar(
        r#"
        name = "late sunday"
        version = 1
        time_zone = "Europe/Berlin"
        weekly = [{ day = "sun", intervals = [{ start = "02:30", end = "05:00" }] }]
    "#,
    );
    let day = |date: &str| {
        c.business_seconds_between(
            local(&c, &format!("{date} 00:00")),
            local(&c, &format!("{date} 12:00")),
        )
    };
    assert_eq!(day("2026-03-22"), 2 * H + 1800);
    // 02:30 does not exist: open from the jump (03:00 CEST) to 05:00.
    assert_eq!(day("2026-03-29"), 2 * H);
    assert_eq!(
        c.next_opening(local(&c, "2026-03-29 00:00")),
        utc("2026-03-29T01:00:00Z")
    );
    // 02:30 occurs twice: open from the first (CEST) to 05:00 CET.
    assert_eq!(day("2026-10-25"), 3 * H + 1800);
    assert_eq!(
        c.next_opening(local(&c, "2026-10-25 00:00")),
        utc("2026-10-25T00:30:00Z")
    );
}

#[test]
fn overnight_intervals_across_the_changes() {
    for zone in ["Europe/Berlin", "America/New_York"] {
        let c = calendar(&format!(
            r#"
            name = "night desk"
            version = 1
            time_zone = "{zone}"
            weekly = [{{ day = "sat", intervals = [{{ start = "22:00", end = "06:00" }}] }}]
        "#
        ));
        let night = |saturday: &str| {
            c.business_seconds_between(
                local(&c, &format!("{saturday} 12:00")),
                local(&c, &format!("{saturday} 12:00")) + TimeDelta::days(1),
            )
        };
        let (spring, next_saturday, autumn) = match zone {
            "Europe/Berlin" => ("2026-03-28", "2026-04-04", "2026-10-24"),
            _ => ("2026-03-07", "2026-03-14", "2026-10-31"),
        };
        assert_eq!(night("2026-06-06"), 8 * H, "{zone}");
        assert_eq!(night(spring), 7 * H, "{zone}");
        assert_eq!(night(autumn), 9 * H, "{zone}");
        // Seven hours from Saturday 22:00 in spring end at 06:00; the eighth is a week later.
        let start = local(&c, &format!("{spring} 22:00"));
        assert_eq!(
            c.deadline(start, 7 * H),
            local(&c, &format!("{spring} 22:00")) + TimeDelta::hours(7)
        );
        assert_eq!(
            c.deadline(start, 8 * H),
            local(&c, &format!("{next_saturday} 23:00")),
            "{zone}"
        );
    }
}

#[test]
fn weekday_hours_keep_their_local_times_over_a_change() {
    let c = weekdays("Europe/Berlin", r#"{ start = "09:00", end = "17:00" }"#);
    let friday = local(&c, "2026-03-27 09:00");
    let monday = local(&c, "2026-03-30 17:00");
    assert_eq!(c.business_seconds_between(friday, monday), 16 * H);
    let late_friday = local(&c, "2026-03-27 16:00");
    assert_eq!(late_friday, utc("2026-03-27T15:00:00Z"));
    assert_eq!(c.deadline(late_friday, 2 * H), utc("2026-03-30T08:00:00Z"));
    assert_eq!(
        show(&c, c.deadline(late_friday, 2 * H)),
        "Mon 2026-03-30 10:00"
    );
}

// ---------------------------------------------------------------------------------------------
// Holidays, dated openings, overnight intervals and closures.

fn holiday_office() -> BusinessCalendar {
    calendar(
        r#"
        name = "office"
        version = 3
        time_zone = "Europe/Berlin"
        weekly = [
            { day = "mon", intervals = [{ start = "08:00", end = "16:00" }] },
            { day = "tue", intervals = [{ start = "08:00", end = "16:00" }] },
            { day = "wed", intervals = [{ start = "08:00", end = "16:00" }] },
            { day = "thu", intervals = [{ start = "08:00", end = "16:00" }] },
            { day = "fri", intervals = [{ start = "08:00", end = "16:00" }] },
        ]
        closures = [
            { date = "2026-12-25", name = "Christmas" },
            { date = "2027-01-01", name = "New Year" },
        ]
        openings = [
            { date = "2026-12-24", name = "Christmas Eve", intervals = [{ start = "08:00", end = "12:00" }] },
            { date = "2026-12-19", name = "stock take", intervals = [{ start = "10:00", end = "14:00" }] },
        ]
    "#,
    )
}

#[test]
fn a_closure_skips_its_day_and_a_dated_opening_replaces_the_hours() {
    let c = holiday_office();
    let eve = local(&c, "2026-12-24 10:00");
    // Two hours on the short Christmas Eve, Christmas closed, the weekend closed.
    assert_eq!(show(&c, c.deadline(eve, 4 * H)), "Mon 2026-12-28 10:00");
    assert!(!c.is_open(local(&c, "2026-12-24 13:00")));
    assert!(!c.is_open(local(&c, "2026-12-25 09:00")));
    // The stock-take Saturday opens 10:00-14:00.
    let friday = local(&c, "2026-12-18 15:00");
    assert_eq!(show(&c, c.deadline(friday, 3 * H)), "Sat 2026-12-19 12:00");
    // A week with a short day and a holiday: 8 + 8 + 8 + 4 + 0.
    let week =
        c.business_seconds_between(local(&c, "2026-12-21 00:00"), local(&c, "2026-12-28 00:00"));
    assert_eq!(week, 28 * H);
    // The year end: 4 days of 8 h, then New Year closed.
    assert_eq!(
        show(&c, c.deadline(local(&c, "2026-12-28 08:00"), 32 * H + 1)),
        "Mon 2027-01-04 08:00"
    );
    assert_eq!(
        show(&c, c.next_opening(local(&c, "2026-12-31 16:00"))),
        "Mon 2027-01-04 08:00"
    );
}

#[test]
fn an_overnight_interval_belongs_to_the_day_it_starts_on() {
    let nights = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .map(|day| {
            format!("{{ day = \"{day}\", intervals = [{{ start = \"22:00\", end = \"06:00\" }}] }}")
        })
        .join(", ");
    let c = calendar(&format!(
        r#"
        name = "nights"
        version = 1
        time_zone = "Europe/Berlin"
        weekly = [{nights}]
        closures = [{{ date = "2026-06-02" }}]
        openings = [{{ date = "2026-06-04", intervals = [{{ start = "23:00", end = "02:00" }}] }}]
    "#
    ));
    // Closing Tuesday keeps Monday night (into Tuesday) and removes Tuesday night.
    assert!(c.is_open(local(&c, "2026-06-02 03:00")));
    assert!(!c.is_open(local(&c, "2026-06-02 06:00")));
    assert!(!c.is_open(local(&c, "2026-06-02 23:00")));
    assert!(!c.is_open(local(&c, "2026-06-03 01:00")));
    assert!(c.is_open(local(&c, "2026-06-03 22:00")));
    // Monday 00:00 to Thursday 00:00: Sunday night's 6 h, Monday night's 8 h, 2 h of
    // Wednesday night.
    let between =
        c.business_seconds_between(local(&c, "2026-06-01 00:00"), local(&c, "2026-06-04 00:00"));
    assert_eq!(between, 16 * H);
    // Thursday's dated opening 23:00-02:00 replaces Thursday night.
    assert_eq!(
        c.business_seconds_between(local(&c, "2026-06-04 12:00"), local(&c, "2026-06-05 12:00")),
        3 * H
    );
    // Eight hours from Monday 23:00: 7 h to Tuesday 06:00, then Wednesday 22:00-23:00.
    assert_eq!(
        show(&c, c.deadline(local(&c, "2026-06-01 23:00"), 8 * H)),
        "Wed 2026-06-03 23:00"
    );
}

#[test]
fn opening_hours_are_half_open() {
    let c = weekdays(
        "Europe/Berlin",
        r#"{ start = "08:00", end = "12:00" }, { start = "12:00", end = "16:00" }"#,
    );
    assert!(c.is_open(local(&c, "2026-03-02 08:00")));
    assert!(c.is_open(local(&c, "2026-03-02 12:00")));
    assert!(!c.is_open(local(&c, "2026-03-02 16:00")));
    assert!(!c.is_open(local(&c, "2026-03-02 07:59") + TimeDelta::seconds(59)));
    assert_eq!(c.weekly_seconds(), 5 * 8 * H);
    assert_eq!(
        show(&c, c.next_opening(local(&c, "2026-03-06 16:00"))),
        "Mon 2026-03-09 08:00"
    );
}

#[test]
fn zero_and_negative_amounts_and_reversed_ranges() {
    let c = holiday_office();
    let t = local(&c, "2026-12-25 09:00");
    assert_eq!(c.deadline(t, 0), t);
    assert_eq!(c.deadline(t, -5), t);
    assert_eq!(c.business_seconds_between(t, t), 0);
    assert_eq!(c.business_seconds_between(t + TimeDelta::days(9), t), 0);
}

#[test]
fn long_targets_skip_whole_weeks_and_stay_exact() {
    let c = holiday_office();
    let start = local(&c, "2026-01-05 08:00");
    // 250 working days of 8 h, with the year's dated days.
    let due = c.deadline(start, 250 * 8 * H);
    assert_eq!(c.business_seconds_between(start, due), 250 * 8 * H);
    assert_eq!(
        c.business_seconds_between(start, due - TimeDelta::seconds(1)),
        250 * 8 * H - 1
    );
    // Saturates rather than overflows.
    assert_eq!(c.deadline(start, i64::MAX), DateTime::<Utc>::MAX_UTC);
}

#[test]
fn definitions_round_trip_through_serde() {
    let c = holiday_office();
    let json = serde_json::to_string(&c).expect("serialises");
    let back: BusinessCalendar = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, c);
    assert_eq!(back.name(), "office");
    assert_eq!(back.version(), 3);
    let definition: CalendarDefinition = c.definition().clone();
    assert_eq!(BusinessCalendar::new(definition).expect("valid"), c);
    let mut bad: serde_json::Value = serde_json::from_str(&json).expect("json");
    bad["time_zone"] = "Mars/Olympus_Mons".into();
    let refused = serde_json::from_value::<BusinessCalendar>(bad).expect_err("refused");
    assert!(
        refused.to_string().contains("Mars/Olympus_Mons"),
        "{refused}"
    );
}

// ---------------------------------------------------------------------------------------------
// Properties, on calendars with clock changes, overnight intervals and dated days.

static CALENDARS: LazyLock<Vec<BusinessCalendar>> = LazyLock::new(|| {
    vec![
        calendar(
            r#"
            name = "berlin office"
            version = 1
            time_zone = "Europe/Berlin"
            weekly = [
                { day = "mon", intervals = [{ start = "08:00", end = "12:00" }, { start = "13:00", end = "17:30" }] },
                { day = "tue", intervals = [{ start = "08:00", end = "12:00" }, { start = "13:00", end = "17:30" }] },
                { day = "wed", intervals = [{ start = "07:00", end = "11:00" }, { start = "12:00", end = "16:00" }, { start = "20:00", end = "23:00" }] },
                { day = "thu", intervals = [{ start = "08:00", end = "17:00" }] },
                { day = "fri", intervals = [{ start = "08:00", end = "14:00" }] },
            ]
            closures = [
                { date = "2026-01-01" }, { date = "2026-04-03" }, { date = "2026-04-06" },
                { date = "2026-05-01" }, { date = "2026-05-14" }, { date = "2026-05-25" },
                { date = "2026-10-03" }, { date = "2026-12-25" }, { date = "2026-12-26" },
                { date = "2027-01-01" }, { date = "2027-03-26" }, { date = "2027-03-29" },
            ]
            openings = [{ date = "2026-12-24", intervals = [{ start = "08:00", end = "12:00" }] }]
        "#,
        ),
        calendar(
            r#"
            name = "new york nights"
            version = 1
            time_zone = "America/New_York"
            weekly = [
                { day = "fri", intervals = [{ start = "20:00", end = "03:00" }] },
                { day = "sat", intervals = [{ start = "03:30", end = "04:30" }, { start = "22:00", end = "06:00" }] },
                { day = "sun", intervals = [{ start = "09:00", end = "00:00" }] },
                { day = "tue", intervals = [{ start = "09:00", end = "17:00" }] },
            ]
            closures = [{ date = "2026-11-01" }, { date = "2026-07-04" }]
            openings = [{ date = "2026-03-07", intervals = [{ start = "21:00", end = "04:00" }] }]
        "#,
        ),
        always_open_in("Europe/Berlin"),
        BusinessCalendar::always_open(),
        calendar(
            r#"
            name = "lord howe"
            version = 1
            time_zone = "Australia/Lord_Howe"
            weekly = [
                { day = "sun", intervals = [{ start = "01:45", end = "02:15" }, { start = "09:00", end = "17:00" }] },
                { day = "mon", intervals = [{ start = "09:00", end = "17:00" }] },
            ]
        "#,
        ),
    ]
});

/// 2025-06-01 .. 2028-01-01.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (1_748_736_000i64..1_830_297_600)
        .prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
}

fn ordered_triple() -> impl Strategy<Value = [DateTime<Utc>; 3]> {
    (instant(), 0i64..(30 * 24 * H), 0i64..(30 * 24 * H)).prop_map(|(a, x, y)| {
        let b = a + TimeDelta::seconds(x);
        [a, b, b + TimeDelta::seconds(y)]
    })
}

fn which() -> impl Strategy<Value = usize> {
    0..CALENDARS.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn business_time_is_additive(which in which(), [a, b, c] in ordered_triple()) {
        let cal = &CALENDARS[which];
        prop_assert_eq!(
            cal.business_seconds_between(a, b) + cal.business_seconds_between(b, c),
            cal.business_seconds_between(a, c)
        );
    }

    #[test]
    fn the_deadline_is_the_earliest_instant_with_that_much_business_time(
        which in which(),
        start in instant(),
        x in 0i64..(10 * 24 * H),
    ) {
        let cal = &CALENDARS[which];
        let due = cal.deadline(start, x);
        prop_assert!(due >= start);
        prop_assert_eq!(cal.business_seconds_between(start, due), x);
        if x > 0 {
            prop_assert!(cal.business_seconds_between(start, due - TimeDelta::seconds(1)) < x);
            prop_assert!(cal.is_open(due - TimeDelta::seconds(1)));
        }
    }

    #[test]
    fn the_deadline_of_the_elapsed_time_lands_on_an_open_instant(
        which in which(),
        [start, t, _] in ordered_triple(),
    ) {
        let cal = &CALENDARS[which];
        let elapsed = cal.business_seconds_between(start, t);
        let due = cal.deadline(start, elapsed);
        prop_assert!(due <= t);
        if elapsed > 0 && cal.is_open(t - TimeDelta::seconds(1)) {
            prop_assert_eq!(due, t);
        }
    }

    #[test]
    fn the_deadline_never_moves_earlier_for_more_time(
        which in which(),
        start in instant(),
        x in 0i64..(10 * 24 * H),
        more in 0i64..(3 * 24 * H),
    ) {
        let cal = &CALENDARS[which];
        prop_assert!(cal.deadline(start, x) <= cal.deadline(start, x + more));
    }

    #[test]
    fn next_opening_is_open_and_nothing_before_it_is(which in which(), at in instant()) {
        let cal = &CALENDARS[which];
        let open = cal.next_opening(at);
        prop_assert!(open >= at);
        prop_assert!(cal.is_open(open));
        prop_assert_eq!(cal.business_seconds_between(at, open), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: every refusal names what is wrong.

fn refused(toml: &str) -> CalendarError {
    BusinessCalendar::from_toml(toml).expect_err("the definition is refused")
}

fn with_weekly(weekly: &str) -> String {
    format!("name = \"bad\"\nversion = 1\ntime_zone = \"Europe/Berlin\"\nweekly = [{weekly}]")
}

#[test]
fn an_unknown_time_zone_is_named() {
    let e =
        refused("name = \"bad\"\nversion = 1\ntime_zone = \"Europe/Berlim\"\nalways_open = true");
    assert!(
        matches!(e, CalendarError::UnknownTimeZone { ref zone, .. } if zone == "Europe/Berlim")
    );
    assert_eq!(
        e.to_string(),
        "calendar bad: unknown time zone \"Europe/Berlim\""
    );
}

#[test]
fn an_empty_interval_is_refused_with_its_day() {
    let e = refused(&with_weekly(
        r#"{ day = "mon", intervals = [{ start = "08:00", end = "08:00" }] }"#,
    ));
    assert!(matches!(e, CalendarError::EmptyInterval { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "calendar bad: interval 08:00-08:00 on Monday is empty (an end before the start runs overnight)"
    );
    let e = refused(&format!(
        "{}\nopenings = [{{ date = \"2026-12-24\", intervals = [{{ start = \"09:00\", end = \"09:00\" }}] }}]",
        with_weekly(r#"{ day = "mon", intervals = [{ start = "08:00", end = "16:00" }] }"#)
    ));
    assert!(e.to_string().contains("on 2026-12-24"), "{e}");
}

#[test]
fn overlapping_intervals_are_refused_with_their_day() {
    let e = refused(&with_weekly(
        r#"{ day = "tue", intervals = [{ start = "11:00", end = "13:00" }, { start = "08:00", end = "12:00" }] }"#,
    ));
    assert!(matches!(e, CalendarError::Overlap { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "calendar bad: intervals 08:00-12:00 and 11:00-13:00 on Tuesday overlap"
    );
    // An overnight interval overlapping a later one of its own day.
    let e = refused(&with_weekly(
        r#"{ day = "wed", intervals = [{ start = "22:00", end = "02:00" }, { start = "23:00", end = "23:30" }] }"#,
    ));
    assert_eq!(
        e.to_string(),
        "calendar bad: intervals 22:00-02:00 and 23:00-23:30 on Wednesday overlap"
    );
}

#[test]
fn an_overnight_interval_running_into_the_next_day_is_refused() {
    let e = refused(&with_weekly(
        r#"{ day = "mon", intervals = [{ start = "22:00", end = "06:00" }] },
           { day = "tue", intervals = [{ start = "05:00", end = "09:00" }] }"#,
    ));
    assert!(matches!(e, CalendarError::OvernightOverlap { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "calendar bad: overnight interval 22:00-06:00 on Monday runs into 05:00-09:00 on the next day"
    );
    // Sunday night runs into Monday.
    let e = refused(&with_weekly(
        r#"{ day = "sun", intervals = [{ start = "23:00", end = "01:00" }] },
           { day = "mon", intervals = [{ start = "00:30", end = "09:00" }] }"#,
    ));
    assert!(
        e.to_string().contains("on Sunday runs into 00:30-09:00"),
        "{e}"
    );
    // Touching is fine.
    assert!(
        BusinessCalendar::from_toml(&with_weekly(
            r#"{ day = "sun", intervals = [{ start = "23:00", end = "01:00" }] },
               { day = "mon", intervals = [{ start = "01:00", end = "09:00" }] }"#,
        ))
        .is_ok()
    );
    // A dated opening's night runs into the weekly hours of the next day (a Friday).
    let weekly =
        with_weekly(r#"{ day = "fri", intervals = [{ start = "01:00", end = "09:00" }] }"#);
    let e = refused(&format!(
        "{weekly}\nopenings = [{{ date = \"2026-12-24\", intervals = [{{ start = \"20:00\", end = \"02:00\" }}] }}]"
    ));
    assert_eq!(
        e.to_string(),
        "calendar bad: overnight interval 20:00-02:00 on 2026-12-24 runs into 01:00-09:00 on the next day"
    );
    // A weekly night (Wednesday) runs into a dated opening on Thursday 2026-12-24.
    let weekly =
        with_weekly(r#"{ day = "wed", intervals = [{ start = "22:00", end = "06:00" }] }"#);
    let e = refused(&format!(
        "{weekly}\nopenings = [{{ date = \"2026-12-24\", intervals = [{{ start = \"05:00\", end = \"12:00\" }}] }}]"
    ));
    assert!(
        e.to_string()
            .contains("on 2026-12-23 runs into 05:00-12:00"),
        "{e}"
    );
    // Closing the Thursday clears the conflict with Wednesday's night.
    let weekly = with_weekly(
        r#"{ day = "wed", intervals = [{ start = "22:00", end = "06:00" }] },
           { day = "thu", intervals = [{ start = "07:00", end = "12:00" }] }"#,
    );
    assert!(
        BusinessCalendar::from_toml(&format!(
            "{weekly}\nclosures = [{{ date = \"2026-12-24\" }}]"
        ))
        .is_ok()
    );
}

#[test]
fn duplicates_are_refused_by_name() {
    let e = refused(&with_weekly(
        r#"{ day = "fri", intervals = [{ start = "08:00", end = "12:00" }] },
           { day = "Friday", intervals = [{ start = "13:00", end = "16:00" }] }"#,
    ));
    assert!(matches!(e, CalendarError::DuplicateWeekday { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "calendar bad: Friday is listed twice in the weekly hours"
    );
    let weekly =
        with_weekly(r#"{ day = "fri", intervals = [{ start = "08:00", end = "12:00" }] }"#);
    let e = refused(&format!(
        "{weekly}\nclosures = [{{ date = \"2026-12-25\" }}, {{ date = \"2026-12-26\" }}, {{ date = \"2026-12-25\" }}]"
    ));
    assert_eq!(
        e.to_string(),
        "calendar bad: 2026-12-25 is listed twice among closures and openings"
    );
    let e = refused(&format!(
        "{weekly}\nclosures = [{{ date = \"2026-12-24\" }}]\nopenings = [{{ date = \"2026-12-24\", intervals = [{{ start = \"08:00\", end = \"12:00\" }}] }}]"
    ));
    assert!(matches!(e, CalendarError::DuplicateDate { .. }), "{e:?}");
    assert!(e.to_string().contains("2026-12-24"), "{e}");
}

#[test]
fn version_zero_and_other_malformed_definitions_are_refused() {
    let ok = with_weekly(r#"{ day = "mon", intervals = [{ start = "08:00", end = "16:00" }] }"#);
    let e = refused(&ok.replace("version = 1", "version = 0"));
    assert_eq!(e, CalendarError::ZeroVersion("bad".into()));
    assert_eq!(e.to_string(), "calendar bad: versions start at 1");
    let e = refused(&ok.replace("name = \"bad\"", "name = \" \""));
    assert_eq!(e, CalendarError::EmptyName);
    let e = refused(&with_weekly(""));
    assert_eq!(e, CalendarError::NoWeeklyHours("bad".into()));
    let e = refused(&format!("{ok}\nalways_open = true"));
    assert_eq!(e, CalendarError::AlwaysOpenWithWeeklyHours("bad".into()));
    let e = refused(&format!(
        "{ok}\nopenings = [{{ date = \"2026-12-24\", intervals = [] }}]"
    ));
    assert_eq!(
        e.to_string(),
        "calendar bad: the opening on 2026-12-24 has no intervals (use a closure)"
    );
    let e = refused(&with_weekly(
        r#"{ day = "sat", intervals = [{ start = "08:00:00.5", end = "16:00" }] }"#,
    ));
    assert!(matches!(e, CalendarError::FractionalSecond { .. }), "{e:?}");
    assert!(e.to_string().contains("on Saturday"), "{e}");
    let e = refused("name = \"bad\"\nversion = 1");
    assert!(matches!(e, CalendarError::Parse(_)), "{e:?}");
    let e = BusinessCalendar::from_json("{").expect_err("refused");
    assert!(matches!(e, CalendarError::Parse(_)), "{e:?}");
}
