//! Business calendars: when the clock of an SLA runs.
//!
//! A calendar is versioned data ([`CalendarDefinition`]): an IANA time zone, weekly opening
//! hours with any number of intervals a day, dated closures (holidays) and dated openings
//! with their own hours. Validated into a [`BusinessCalendar`], it answers in whole seconds
//! how much business time lies between two instants and when a given amount of business time
//! will have elapsed. Instants are UTC; opening hours are local civil time.
//!
//! Rules:
//! - An interval runs from `start` (included) to `end` (excluded). `end` before `start` runs
//!   overnight into the next day (`22:00-06:00` on Monday is Monday 22:00 to Tuesday 06:00,
//!   `18:00-00:00` runs to midnight); `start == end` is refused. The whole interval belongs to
//!   the day it starts on: closing Monday removes Monday 22:00-Tuesday 06:00, and a dated
//!   opening of Monday replaces it.
//! - A dated opening replaces the weekly hours of its date (a Saturday opening, a short
//!   Christmas Eve); a closure removes them. A date appears at most once.
//! - Local boundaries become UTC instants on their day: a local time skipped when clocks go
//!   forward maps to the instant of the jump (so `01:00-04:00` lasts 2 h on the night clocks
//!   go forward), a local time that occurs twice maps to its first occurrence (so the same
//!   interval lasts 4 h on the night they go back: every real second counts once).
//! - Sub-second parts of instants are ignored.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use smsys_processes::BusinessCalendar;
//!
//! let office = BusinessCalendar::from_toml(r#"
//!     name = "office"
//!     version = 1
//!     time_zone = "Europe/Berlin"
//!     weekly = [
//!         { day = "mon", intervals = [{ start = "08:00", end = "12:00" }, { start = "13:00", end = "17:00" }] },
//!         { day = "tue", intervals = [{ start = "08:00", end = "17:00" }] },
//!     ]
//!     closures = [{ date = "2026-12-29", name = "year-end" }]
//! "#)?;
//! // Monday 2026-12-28 11:00 Berlin (10:00 UTC) plus 4 h: 1 h before lunch, 3 h after.
//! let start = Utc.with_ymd_and_hms(2026, 12, 28, 10, 0, 0).unwrap();
//! assert_eq!(office.deadline(start, 4 * 3600), Utc.with_ymd_and_hms(2026, 12, 28, 15, 0, 0).unwrap());
//! // Plus 8 h: 5 h on Monday, Tuesday closed, 3 h on Monday 2027-01-04 (until 11:00 Berlin).
//! let due = Utc.with_ymd_and_hms(2027, 1, 4, 10, 0, 0).unwrap();
//! assert_eq!(office.deadline(start, 8 * 3600), due);
//! assert_eq!(office.business_seconds_between(start, due), 8 * 3600);
//! # Ok::<(), smsys_processes::CalendarError>(())
//! ```

mod definition;
mod zone;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{ControlFlow, Range};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use definition::{
    CalendarDay, CalendarDefinition, CalendarError, Closure, DatedOpening, Interval, WeeklyHours,
};
use zone::{DAY, OffsetTable};

const WEEK: i64 = 7 * DAY;

/// A validated business calendar: pure, whole-second arithmetic on UTC instants.
///
/// Cheap to clone (the compiled form is shared). Equal when the definitions are equal.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use smsys_processes::BusinessCalendar;
///
/// let always = BusinessCalendar::always_open();
/// let start = Utc.with_ymd_and_hms(2015, 1, 1, 10, 30, 0).unwrap();
/// assert_eq!(always.deadline(start, 10 * 3600), Utc.with_ymd_and_hms(2015, 1, 1, 20, 30, 0).unwrap());
/// assert!(always.is_open(start));
/// ```
#[derive(Clone, Serialize)]
#[serde(into = "CalendarDefinition")]
pub struct BusinessCalendar {
    inner: Arc<Compiled>,
}

struct Compiled {
    definition: CalendarDefinition,
    tz: Tz,
    zone: OffsetTable,
    /// Per weekday (Monday first): `(start, end)` seconds from the day's midnight, sorted.
    weekly: [Vec<(i64, i64)>; 7],
    /// The weekly hours as seconds from Monday 00:00, adjacent intervals merged.
    pattern: Vec<(i64, i64)>,
    /// Business seconds in a week without dated exceptions or offset changes.
    week_total: i64,
    /// Dated closures (empty) and openings by day number (days since 1970-01-01), sorted.
    dated: Vec<(i64, Vec<(i64, i64)>)>,
}

impl fmt::Debug for BusinessCalendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusinessCalendar")
            .field("definition", &self.inner.definition)
            .finish_non_exhaustive()
    }
}

impl PartialEq for BusinessCalendar {
    fn eq(&self, other: &Self) -> bool {
        self.inner.definition == other.inner.definition
    }
}

impl Eq for BusinessCalendar {}

impl From<BusinessCalendar> for CalendarDefinition {
    fn from(value: BusinessCalendar) -> Self {
        value.inner.definition.clone()
    }
}

impl<'de> Deserialize<'de> for BusinessCalendar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let definition = CalendarDefinition::deserialize(d)?;
        BusinessCalendar::new(definition).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<CalendarDefinition> for BusinessCalendar {
    type Error = CalendarError;

    fn try_from(definition: CalendarDefinition) -> Result<Self, Self::Error> {
        Self::new(definition)
    }
}

/// One week of the timeline: the days from `monday` (a day number) to `monday + 6`.
struct WeekView {
    monday: i64,
    /// The UTC offset when it is the same all week (and a day either side).
    offset: Option<i64>,
    /// Indices into `dated` of the week's dated days.
    dated: Range<usize>,
}

impl BusinessCalendar {
    /// Validates a definition.
    pub fn new(definition: CalendarDefinition) -> Result<Self, CalendarError> {
        let inner = compile(definition)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Reads and validates a TOML definition.
    pub fn from_toml(text: &str) -> Result<Self, CalendarError> {
        let definition: CalendarDefinition =
            toml::from_str(text).map_err(|e| CalendarError::Parse(e.to_string()))?;
        Self::new(definition)
    }

    /// Reads and validates a JSON definition.
    pub fn from_json(text: &str) -> Result<Self, CalendarError> {
        let definition: CalendarDefinition =
            serde_json::from_str(text).map_err(|e| CalendarError::Parse(e.to_string()))?;
        Self::new(definition)
    }

    /// The 24x7 calendar (`24x7`, version 1, UTC): every second is business time.
    pub fn always_open() -> Self {
        Self::new(CalendarDefinition {
            name: "24x7".into(),
            version: 1,
            time_zone: "UTC".into(),
            always_open: true,
            weekly: Vec::new(),
            closures: Vec::new(),
            openings: Vec::new(),
        })
        .unwrap_or_else(|e| unreachable!("the 24x7 calendar is valid: {e}"))
    }

    /// The definition.
    pub fn definition(&self) -> &CalendarDefinition {
        &self.inner.definition
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.definition.name
    }

    /// Its version.
    pub fn version(&self) -> u32 {
        self.inner.definition.version
    }

    /// Its time zone.
    pub fn time_zone(&self) -> Tz {
        self.inner.tz
    }

    /// Business seconds in a week without closures, dated openings or clock changes.
    pub fn weekly_seconds(&self) -> i64 {
        self.inner.week_total
    }

    /// Business time elapsed in `[from, to)`, in whole seconds; 0 when `to <= from`.
    ///
    /// Additive: for `a <= b <= c`, `between(a, b) + between(b, c) == between(a, c)`.
    pub fn business_seconds_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let (from, to) = (from.timestamp(), to.timestamp());
        if to <= from {
            return 0;
        }
        let c = &*self.inner;
        let mut total = 0;
        let mut week = week_of(self.local_day(from) - 1);
        // Local times of a week's days map past `monday * DAY - DAY` (offsets stay below a day).
        while monday_of(week) * DAY - DAY < to {
            let view = self.week(week);
            if let Some(base) = self.regular_base(&view) {
                let (first, last) = c.pattern_span(base);
                if first >= from && last <= to {
                    let weeks = self.regular_run(week, &view).min((to - last) / WEEK + 1);
                    total += weeks * c.week_total;
                    week += weeks;
                    continue;
                }
            }
            let _ = self.visit(&view, from, |start, end| {
                if start >= to {
                    return ControlFlow::Break(());
                }
                let (start, end) = (start.max(from), end.min(to));
                if end > start {
                    total += end - start;
                }
                ControlFlow::Continue(())
            });
            week += 1;
        }
        total
    }

    /// The earliest instant at which `seconds` of business time have elapsed since `start`.
    ///
    /// `start` itself when `seconds <= 0`. When the amount is used up exactly at a closing
    /// time, that closing time. Saturates at [`DateTime::<Utc>::MAX_UTC`] for amounts that
    /// would run past the year 262142.
    pub fn deadline(&self, start: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
        let from = start.timestamp();
        if seconds <= 0 {
            return instant(from);
        }
        let c = &*self.inner;
        let mut remaining = seconds;
        let mut week = week_of(self.local_day(from) - 1);
        while week <= last_week() {
            let view = self.week(week);
            if let Some(base) = self.regular_base(&view)
                && c.pattern_span(base).0 >= from
                && remaining > c.week_total
            {
                let weeks = self
                    .regular_run(week, &view)
                    .min((remaining - 1) / c.week_total)
                    .min(last_week() + 1 - week);
                remaining -= weeks * c.week_total;
                week += weeks;
                continue;
            }
            let found = self.visit(&view, from, |start, end| {
                let start = start.max(from);
                if end <= start {
                    return ControlFlow::Continue(());
                }
                if remaining <= end - start {
                    return ControlFlow::Break(start + remaining);
                }
                remaining -= end - start;
                ControlFlow::Continue(())
            });
            if let ControlFlow::Break(at) = found {
                return instant(at);
            }
            week += 1;
        }
        DateTime::<Utc>::MAX_UTC
    }

    /// Whether `at` is business time.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.next_opening(at).timestamp() == at.timestamp()
    }

    /// The first instant at or after `at` that is business time: `at` itself when open.
    pub fn next_opening(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let from = at.timestamp();
        let mut week = week_of(self.local_day(from) - 1);
        while week <= last_week() {
            let view = self.week(week);
            let found = self.visit(&view, from, |start, end| {
                if end > from {
                    ControlFlow::Break(start.max(from))
                } else {
                    ControlFlow::Continue(())
                }
            });
            if let ControlFlow::Break(open) = found {
                return if open == from { at } else { instant(open) };
            }
            week += 1;
        }
        DateTime::<Utc>::MAX_UTC
    }

    /// The local day number (days since 1970-01-01) at instant `at`.
    fn local_day(&self, at: i64) -> i64 {
        self.inner.zone.local(at).div_euclid(DAY)
    }

    fn week(&self, week: i64) -> WeekView {
        let c = &*self.inner;
        let monday = monday_of(week);
        // A week's intervals lie in local [monday, monday + 8 days); their instants within a
        // day of that, and `OffsetTable::utc` looks one more day back.
        let offset = c
            .zone
            .stable_offset(monday * DAY - 2 * DAY, monday * DAY + 10 * DAY);
        let first = c.dated.partition_point(|d| d.0 < monday);
        let last = c.dated.partition_point(|d| d.0 < monday + 7);
        WeekView {
            monday,
            offset,
            dated: first..last,
        }
    }

    /// The UTC instant of the week's Monday 00:00 when the week follows the weekly pattern.
    fn regular_base(&self, view: &WeekView) -> Option<i64> {
        match view.offset {
            Some(offset) if view.dated.is_empty() => Some(view.monday * DAY - offset),
            Some(_) | None => None,
        }
    }

    /// How many weeks from `week` (regular) on are regular: at least 1.
    fn regular_run(&self, week: i64, view: &WeekView) -> i64 {
        let c = &*self.inner;
        let monday = view.monday * DAY;
        let by_date = c
            .dated
            .get(view.dated.start)
            .map_or(i64::MAX, |d| week_of(d.0) - week);
        let by_zone = c
            .zone
            .next_transition(monday - 2 * DAY)
            .map_or(i64::MAX, |t| (t - monday - 10 * DAY + WEEK - 1) / WEEK);
        by_date.min(by_zone).max(1)
    }

    /// Calls `f` with the week's open intervals as UTC `(start, end)`, in order, skipping
    /// (where cheap) those that end by `from`.
    fn visit<B>(
        &self,
        view: &WeekView,
        from: i64,
        mut f: impl FnMut(i64, i64) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        let c = &*self.inner;
        let to_utc = |local: i64| match view.offset {
            Some(offset) => local - offset,
            None => c.zone.utc(local),
        };
        if let Some(base) = self.regular_base(view) {
            let skip = c.pattern.partition_point(|&(_, end)| base + end <= from);
            for &(start, end) in &c.pattern[skip..] {
                f(base + start, base + end)?;
            }
            return ControlFlow::Continue(());
        }
        let mut dated = c.dated[view.dated.clone()].iter().peekable();
        for (weekday, hours) in c.weekly.iter().enumerate() {
            let day = view.monday + weekday_number(weekday);
            let intervals = match dated.next_if(|d| d.0 == day) {
                Some((_, intervals)) => intervals,
                None => hours,
            };
            for &(start, end) in intervals {
                let (start, end) = (to_utc(day * DAY + start), to_utc(day * DAY + end));
                if end > start && end > from {
                    f(start, end)?;
                }
            }
        }
        ControlFlow::Continue(())
    }
}

impl Compiled {
    /// First opening and last closing of a regular week whose Monday 00:00 is `base`.
    fn pattern_span(&self, base: i64) -> (i64, i64) {
        let first = self.pattern.first().map_or(0, |p| p.0);
        let last = self.pattern.last().map_or(0, |p| p.1);
        (base + first, base + last)
    }
}

fn weekday_number(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(0)
}

/// Week number of a day number (weeks start on Monday; week 0 holds 1970-01-01).
fn week_of(day: i64) -> i64 {
    (day + 3).div_euclid(7)
}

/// Day number of a week's Monday.
fn monday_of(week: i64) -> i64 {
    week * 7 - 3
}

/// The last week whose instants chrono can represent.
fn last_week() -> i64 {
    week_of(DateTime::<Utc>::MAX_UTC.timestamp().div_euclid(DAY)) - 2
}

fn instant(at: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(at, 0).unwrap_or(if at > 0 {
        DateTime::<Utc>::MAX_UTC
    } else {
        DateTime::<Utc>::MIN_UTC
    })
}

/// Days since 1970-01-01.
fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - 719_163
}

fn date_of(day: i64) -> NaiveDate {
    i32::try_from(day + 719_163)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .unwrap_or(NaiveDate::MIN)
}

fn weekday_index(day: Weekday) -> usize {
    usize::try_from(day.num_days_from_monday()).unwrap_or(0)
}

fn compile(definition: CalendarDefinition) -> Result<Compiled, CalendarError> {
    let d = &definition;
    let calendar = || d.name.clone();
    if d.name.trim().is_empty() {
        return Err(CalendarError::EmptyName);
    }
    if d.version == 0 {
        return Err(CalendarError::ZeroVersion(calendar()));
    }
    let tz: Tz = d
        .time_zone
        .parse()
        .map_err(|_| CalendarError::UnknownTimeZone {
            calendar: calendar(),
            zone: d.time_zone.clone(),
        })?;

    let mut weekly: [Vec<(i64, i64)>; 7] = Default::default();
    if d.always_open {
        if !d.weekly.is_empty() {
            return Err(CalendarError::AlwaysOpenWithWeeklyHours(calendar()));
        }
        for hours in &mut weekly {
            hours.push((0, DAY));
        }
    } else {
        let mut seen = [false; 7];
        for hours in &d.weekly {
            let index = weekday_index(hours.day);
            let day = CalendarDay::Weekday(hours.day);
            if std::mem::replace(&mut seen[index], true) {
                return Err(CalendarError::DuplicateWeekday {
                    calendar: calendar(),
                    day,
                });
            }
            weekly[index] = day_intervals(d, day, &hours.intervals)?;
        }
        if weekly.iter().all(Vec::is_empty) {
            return Err(CalendarError::NoWeeklyHours(calendar()));
        }
    }
    for (index, day) in [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
    .into_iter()
    .enumerate()
    {
        check_overnight(
            d,
            CalendarDay::Weekday(day),
            &weekly[index],
            &weekly[(index + 1) % 7],
        )?;
    }

    let mut dated = BTreeMap::new();
    let mut add = |date: NaiveDate, intervals| {
        if dated.insert(day_number(date), intervals).is_some() {
            return Err(CalendarError::DuplicateDate {
                calendar: calendar(),
                date,
            });
        }
        Ok(())
    };
    for closure in &d.closures {
        add(closure.date, Vec::new())?;
    }
    for opening in &d.openings {
        if opening.intervals.is_empty() {
            return Err(CalendarError::EmptyOpening {
                calendar: calendar(),
                date: opening.date,
            });
        }
        let intervals = day_intervals(d, CalendarDay::Date(opening.date), &opening.intervals)?;
        add(opening.date, intervals)?;
    }
    let hours_of = |day: i64| -> &[(i64, i64)] {
        match dated.get(&day) {
            Some(intervals) => intervals,
            None => &weekly[usize::try_from((day + 3).rem_euclid(7)).unwrap_or(0)],
        }
    };
    for (&day, intervals) in &dated {
        let before = CalendarDay::Date(date_of(day - 1));
        check_overnight(d, before, hours_of(day - 1), intervals)?;
        let this = CalendarDay::Date(date_of(day));
        check_overnight(d, this, intervals, hours_of(day + 1))?;
    }

    let mut pattern: Vec<(i64, i64)> = Vec::new();
    for (index, hours) in weekly.iter().enumerate() {
        let offset = weekday_number(index) * DAY;
        for &(start, end) in hours {
            match pattern.last_mut() {
                Some(last) if last.1 == offset + start => last.1 = offset + end,
                Some(_) | None => pattern.push((offset + start, offset + end)),
            }
        }
    }
    let week_total = pattern.iter().map(|(start, end)| end - start).sum();
    let zone = match tz.name() {
        "UTC" | "Etc/UTC" | "Etc/UCT" | "Etc/Zulu" | "Etc/GMT" | "GMT" | "UCT" | "Zulu" => {
            OffsetTable::fixed(0)
        }
        _ => OffsetTable::new(tz),
    };
    Ok(Compiled {
        tz,
        zone,
        weekly,
        pattern,
        week_total,
        dated: dated.into_iter().collect(),
        definition,
    })
}

/// One day's intervals as sorted `(start, end)` seconds from its midnight, checked.
fn day_intervals(
    d: &CalendarDefinition,
    day: CalendarDay,
    intervals: &[Interval],
) -> Result<Vec<(i64, i64)>, CalendarError> {
    let mut sorted = Vec::with_capacity(intervals.len());
    for &interval in intervals {
        if interval.start == interval.end {
            return Err(CalendarError::EmptyInterval {
                calendar: d.name.clone(),
                day,
                interval,
            });
        }
        if interval.start.nanosecond() != 0 || interval.end.nanosecond() != 0 {
            return Err(CalendarError::FractionalSecond {
                calendar: d.name.clone(),
                day,
                interval,
            });
        }
        sorted.push((interval.seconds(), interval));
    }
    sorted.sort_by_key(|(seconds, _)| *seconds);
    for pair in sorted.windows(2) {
        if let [(first_s, first), (second_s, second)] = pair
            && second_s.0 < first_s.1
        {
            return Err(CalendarError::Overlap {
                calendar: d.name.clone(),
                day,
                first: *first,
                second: *second,
            });
        }
    }
    Ok(sorted.into_iter().map(|(seconds, _)| seconds).collect())
}

/// Refuses an overnight interval of `day` that runs into the first interval of the next day.
fn check_overnight(
    d: &CalendarDefinition,
    day: CalendarDay,
    hours: &[(i64, i64)],
    next: &[(i64, i64)],
) -> Result<(), CalendarError> {
    // Sorted and disjoint: the last interval ends last, the first starts first.
    if let (Some(&last), Some(&first)) = (hours.last(), next.first())
        && last.1 - DAY > first.0
    {
        return Err(CalendarError::OvernightOverlap {
            calendar: d.name.clone(),
            day,
            interval: Interval::from_seconds(last),
            next: Interval::from_seconds(first),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{LocalResult, NaiveDateTime, NaiveTime, TimeZone};
    use chrono_tz::GapInfo;
    use proptest::prelude::*;

    fn calendar(toml: &str) -> BusinessCalendar {
        BusinessCalendar::from_toml(toml).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The obvious algorithm, day by day through chrono-tz, as a reference.
    fn reference_between(c: &BusinessCalendar, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        let tz = c.time_zone();
        let utc = |local: NaiveDateTime| match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.timestamp(),
            LocalResult::Ambiguous(first, _) => first.timestamp(),
            LocalResult::None => GapInfo::new(&local, &tz)
                .and_then(|gap| gap.end)
                .map(|end| end.timestamp())
                .unwrap_or_else(|| panic!("no gap end")),
        };
        let first_day = c.local_day(from) - 2;
        let last_day = c.local_day(to) + 1;
        let mut total = 0;
        for day in first_day..=last_day {
            let date = date_of(day);
            let hours = c
                .inner
                .dated
                .iter()
                .find(|d| d.0 == day)
                .map_or_else(|| &c.inner.weekly[weekday_index(date.weekday())], |d| &d.1);
            for &(start, end) in hours {
                let midnight = date.and_time(NaiveTime::MIN);
                let start = utc(midnight + chrono::TimeDelta::seconds(start));
                let end = utc(midnight + chrono::TimeDelta::seconds(end));
                total += (end.min(to) - start.max(from)).max(0);
            }
        }
        total
    }

    static CALENDARS: std::sync::LazyLock<Vec<BusinessCalendar>> = std::sync::LazyLock::new(|| {
        vec![
            calendar(
                r#"
                name = "berlin office"
                version = 1
                time_zone = "Europe/Berlin"
                weekly = [
                    { day = "mon", intervals = [{ start = "08:00", end = "12:00" }, { start = "13:00", end = "17:00" }] },
                    { day = "tue", intervals = [{ start = "08:00", end = "17:00" }] },
                    { day = "sat", intervals = [{ start = "01:30", end = "03:30" }] },
                    { day = "sun", intervals = [{ start = "02:00", end = "02:40" }, { start = "22:00", end = "06:00" }] },
                ]
                closures = [{ date = "2026-03-30" }, { date = "2026-10-27" }]
                openings = [{ date = "2026-10-25", intervals = [{ start = "01:00", end = "04:00" }] }]
            "#,
            ),
            calendar(
                r#"
                name = "new york night shift"
                version = 1
                time_zone = "America/New_York"
                weekly = [
                    { day = "fri", intervals = [{ start = "20:00", end = "03:00" }] },
                    { day = "sat", intervals = [{ start = "12:00", end = "00:00" }] },
                    { day = "sun", intervals = [{ start = "00:30", end = "02:30" }, { start = "09:00", end = "10:00" }] },
                    { day = "wed", intervals = [{ start = "09:00", end = "17:00" }] },
                ]
                closures = [{ date = "2026-03-07" }]
            "#,
            ),
            calendar(
                r#"
                name = "berlin 24x7"
                version = 1
                time_zone = "Europe/Berlin"
                always_open = true
                closures = [{ date = "2026-12-25" }]
            "#,
            ),
        ]
    });

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn fast_arithmetic_agrees_with_the_day_by_day_reference(
            which in 0usize..3,
            // 2026-01-01 .. 2027-01-01, spans up to 40 days
            from in 1_767_225_600i64..1_798_761_600,
            span in 0i64..(40 * DAY),
        ) {
            let c = &CALENDARS[which];
            let to = from + span;
            let fast = c.business_seconds_between(instant(from), instant(to));
            prop_assert_eq!(fast, reference_between(c, from, to));
            if fast > 0 {
                let due = c.deadline(instant(from), fast).timestamp();
                prop_assert!(due <= to);
                prop_assert_eq!(reference_between(c, from, due), fast);
                prop_assert!(reference_between(c, from, due - 1) < fast);
            }
        }
    }

    #[test]
    fn offset_table_of_utc_is_empty() {
        let c = BusinessCalendar::always_open();
        assert_eq!(c.inner.zone, OffsetTable::fixed(0));
        assert_eq!(c.weekly_seconds(), WEEK);
        assert_eq!(c.inner.pattern, vec![(0, WEEK)]);
    }

    #[test]
    fn day_numbers_round_trip() {
        for date in [
            NaiveDate::from_ymd_opt(1970, 1, 1),
            NaiveDate::from_ymd_opt(1969, 12, 29),
            NaiveDate::from_ymd_opt(2026, 3, 29),
        ]
        .into_iter()
        .flatten()
        {
            assert_eq!(date_of(day_number(date)), date);
            let monday = monday_of(week_of(day_number(date)));
            assert_eq!(date_of(monday).weekday(), Weekday::Mon);
            assert!(monday <= day_number(date) && day_number(date) < monday + 7);
        }
    }

    #[test]
    fn interval_display() {
        let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap_or(NaiveTime::MIN);
        assert_eq!(
            Interval::new(t(22, 0, 0), t(6, 0, 0)).to_string(),
            "22:00-06:00"
        );
        assert_eq!(
            Interval::new(t(8, 0, 30), t(9, 0, 0)).to_string(),
            "08:00:30-09:00"
        );
    }
}
