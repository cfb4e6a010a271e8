//! Calendar definitions as written (TOML, JSON), and why one is refused.

use std::fmt;

use chrono::{NaiveDate, NaiveTime, Timelike, Weekday};
use serde::{Deserialize, Serialize};

use super::zone::DAY;

/// An opening interval in local civil time, from `start` (included) to `end` (excluded).
///
/// `end` before `start` runs overnight into the next day; `start == end` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interval {
    /// When it opens.
    pub start: NaiveTime,
    /// When it closes; before `start` means on the next day.
    pub end: NaiveTime,
}

impl Interval {
    /// An interval from `start` to `end`.
    pub const fn new(start: NaiveTime, end: NaiveTime) -> Self {
        Self { start, end }
    }

    /// Whether it runs overnight into the next day.
    pub fn is_overnight(&self) -> bool {
        self.end < self.start
    }

    /// Seconds from its day's midnight: `(start, end)`, `end` past `DAY` when overnight.
    pub(super) fn seconds(&self) -> (i64, i64) {
        let start = i64::from(self.start.num_seconds_from_midnight());
        let end = i64::from(self.end.num_seconds_from_midnight());
        (start, if end < start { end + DAY } else { end })
    }

    pub(super) fn from_seconds((start, end): (i64, i64)) -> Self {
        let time = |s: i64| {
            u32::try_from(s.rem_euclid(DAY))
                .ok()
                .and_then(|s| NaiveTime::from_num_seconds_from_midnight_opt(s, 0))
                .unwrap_or(NaiveTime::MIN)
        };
        Self::new(time(start), time(end))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |t: NaiveTime| {
            if t.second() == 0 && t.nanosecond() == 0 {
                t.format("%H:%M").to_string()
            } else {
                t.format("%H:%M:%S%.f").to_string()
            }
        };
        write!(f, "{}-{}", time(self.start), time(self.end))
    }
}

/// The opening hours of one weekday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyHours {
    /// The weekday (`"mon"`, `"Monday"`, ...).
    pub day: Weekday,
    /// Its intervals, in any order.
    pub intervals: Vec<Interval>,
}

/// A date on which the calendar is closed (a holiday).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    /// The date, local to the calendar.
    pub date: NaiveDate,
    /// What it is, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A date with its own opening hours, replacing the weekly hours of that date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatedOpening {
    /// The date, local to the calendar.
    pub date: NaiveDate,
    /// What it is, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its intervals (at least one; a date without hours is a [`Closure`]).
    pub intervals: Vec<Interval>,
}

/// A calendar as written (JSON, TOML or code), before validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDefinition {
    /// Its name.
    pub name: String,
    /// Its version, from 1.
    pub version: u32,
    /// IANA time zone name (`"Europe/Berlin"`); opening hours and dates are local to it.
    pub time_zone: String,
    /// Open around the clock every day (24x7); `weekly` must then be empty. Closures and dated
    /// openings still apply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub always_open: bool,
    /// Opening hours per weekday; a weekday not listed is closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekly: Vec<WeeklyHours>,
    /// Dates on which the calendar is closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closures: Vec<Closure>,
    /// Dates with their own opening hours.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub openings: Vec<DatedOpening>,
}

/// The day an error is about: a weekday of the weekly hours or a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalendarDay {
    /// A weekday of the weekly hours.
    Weekday(Weekday),
    /// A date (a closure, a dated opening, or the day before one).
    Date(NaiveDate),
}

impl fmt::Display for CalendarDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalendarDay::Weekday(day) => f.write_str(match day {
                Weekday::Mon => "Monday",
                Weekday::Tue => "Tuesday",
                Weekday::Wed => "Wednesday",
                Weekday::Thu => "Thursday",
                Weekday::Fri => "Friday",
                Weekday::Sat => "Saturday",
                Weekday::Sun => "Sunday",
            }),
            CalendarDay::Date(date) => write!(f, "{date}"),
        }
    }
}

/// Why a calendar definition was refused. Each names the calendar and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The text is not a calendar definition.
    #[error("calendar definition does not parse: {0}")]
    Parse(String),
    /// The name is empty.
    #[error("a calendar has an empty name")]
    EmptyName,
    /// Version 0.
    #[error("calendar {0}: versions start at 1")]
    ZeroVersion(String),
    /// The time zone is not an IANA time zone name.
    #[error("calendar {calendar}: unknown time zone {zone:?}")]
    UnknownTimeZone {
        /// The calendar.
        calendar: String,
        /// The name given.
        zone: String,
    },
    /// No weekly opening hours: timers on it would never expire.
    #[error("calendar {0}: no weekly opening hours (use always_open for 24x7)")]
    NoWeeklyHours(String),
    /// `always_open` together with weekly hours.
    #[error("calendar {0}: always_open and weekly hours exclude each other")]
    AlwaysOpenWithWeeklyHours(String),
    /// A weekday listed twice in the weekly hours.
    #[error("calendar {calendar}: {day} is listed twice in the weekly hours")]
    DuplicateWeekday {
        /// The calendar.
        calendar: String,
        /// The weekday.
        day: CalendarDay,
    },
    /// A date listed twice among closures and dated openings.
    #[error("calendar {calendar}: {date} is listed twice among closures and openings")]
    DuplicateDate {
        /// The calendar.
        calendar: String,
        /// The date.
        date: NaiveDate,
    },
    /// A dated opening without intervals.
    #[error("calendar {calendar}: the opening on {date} has no intervals (use a closure)")]
    EmptyOpening {
        /// The calendar.
        calendar: String,
        /// The date.
        date: NaiveDate,
    },
    /// An interval whose start equals its end.
    #[error(
        "calendar {calendar}: interval {interval} on {day} is empty (an end before the start runs overnight)"
    )]
    EmptyInterval {
        /// The calendar.
        calendar: String,
        /// The weekday or date.
        day: CalendarDay,
        /// The interval.
        interval: Interval,
    },
    /// An interval bound with a fraction of a second.
    #[error("calendar {calendar}: interval {interval} on {day} is not in whole seconds")]
    FractionalSecond {
        /// The calendar.
        calendar: String,
        /// The weekday or date.
        day: CalendarDay,
        /// The interval.
        interval: Interval,
    },
    /// Two intervals of one day overlap.
    #[error("calendar {calendar}: intervals {first} and {second} on {day} overlap")]
    Overlap {
        /// The calendar.
        calendar: String,
        /// The weekday or date.
        day: CalendarDay,
        /// The earlier interval.
        first: Interval,
        /// The interval that starts before `first` ends.
        second: Interval,
    },
    /// An overnight interval runs into the next day's first interval.
    #[error(
        "calendar {calendar}: overnight interval {interval} on {day} runs into {next} on the next day"
    )]
    OvernightOverlap {
        /// The calendar.
        calendar: String,
        /// The weekday or date the overnight interval belongs to.
        day: CalendarDay,
        /// The overnight interval.
        interval: Interval,
        /// The next day's first interval.
        next: Interval,
    },
}
