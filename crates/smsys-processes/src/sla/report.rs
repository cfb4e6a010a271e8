//! SLA attainment per period, service, priority and timer, and the breaches with their overrun.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;
use smsys_core::StreamId;
use smsys_core::records::Priority;

use super::definition::BREACH_BP;
use super::timer::{Timer, TimerEnd};
use crate::calendar::BusinessCalendar;

/// The length of a reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Calendar days (UTC).
    Day,
    /// Calendar months (UTC).
    Month,
}

impl Period {
    fn start_of(self, at: DateTime<Utc>) -> NaiveDate {
        let day = at.date_naive();
        match self {
            Period::Day => day,
            Period::Month => day.with_day(1).unwrap_or(day),
        }
    }
}

/// One row of the report: a period (by the day its timers started), service, priority, timer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ReportKey {
    /// The first day of the period.
    pub period: NaiveDate,
    /// The service.
    pub service: String,
    /// The priority the target came from.
    pub priority: Option<Priority>,
    /// The timer.
    pub timer: String,
}

/// Counts of one row. A cycle reaching 100 % of its target (the target in force at the time:
/// see [`Timer::reached_at`]) is breached; cancelled and superseded cycles count in neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Attainment {
    /// Completed within the target.
    pub met: u64,
    /// Reached the target (completed late, or still running past it).
    pub breached: u64,
    /// Still running within the target.
    pub open: u64,
    /// Cancelled or superseded.
    pub cancelled: u64,
    /// Breached if paused time had counted too.
    pub breached_counting_pauses: u64,
}

impl Attainment {
    /// Met cycles as a share of met and breached ones, in percent (`None` when there are none).
    pub fn percent(&self) -> Option<f64> {
        let decided = self.met + self.breached;
        (decided > 0).then(|| 100.0 * self.met as f64 / decided as f64)
    }

    /// The same share had paused time counted.
    pub fn percent_counting_pauses(&self) -> Option<f64> {
        let decided = self.met + self.breached;
        (decided > 0)
            .then(|| 100.0 * (decided - self.breached_counting_pauses) as f64 / decided as f64)
    }
}

/// A breached cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breach {
    /// The record.
    pub stream: StreamId,
    /// The timer.
    pub timer: String,
    /// The cycle.
    pub cycle: u32,
    /// When it was due: the instant of the recorded breach, else the instant the history
    /// reached it, else the due instant under the current target.
    pub due: Option<DateTime<Utc>>,
    /// Business seconds past the target (at completion, or at `now` while running).
    pub overrun_seconds: i64,
}

/// Attainment rows and breaches.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SlaReport {
    /// Rows by period, service, priority and timer.
    pub rows: BTreeMap<ReportKey, Attainment>,
    /// Every breached cycle.
    pub breaches: Vec<Breach>,
}

impl SlaReport {
    /// Adds a record's timers as they stand at `now`. `cal_for` gives each timer's calendar;
    /// timers without one, or without a target, are left out.
    pub fn add<'a>(
        &mut self,
        stream: &StreamId,
        service: &str,
        timers: &[Timer],
        cal_for: impl Fn(&Timer) -> Option<&'a BusinessCalendar>,
        now: DateTime<Utc>,
        period: Period,
    ) {
        for timer in timers {
            let (Some(cal), Some(target)) = (cal_for(timer), timer.target()) else {
                continue;
            };
            let key = ReportKey {
                period: period.start_of(timer.started_at()),
                service: service.to_owned(),
                priority: timer.priority(),
                timer: timer.timer().to_owned(),
            };
            let row = self.rows.entry(key).or_default();
            // A breach once recorded stays a breach, whatever happened after it (a lower
            // priority, a cancellation).
            let recorded_breach = timer.recorded().contains(&BREACH_BP);
            if matches!(timer.ended(), Some((_, TimerEnd::Cancelled))) && !recorded_breach {
                row.cancelled += 1;
                continue;
            }
            let elapsed = timer.elapsed(cal, now);
            // Reached as the timer stood then: a breach under the target of an earlier
            // priority stays a breach, recorded yet or not.
            let breached_at = timer.reached_at(cal, BREACH_BP).filter(|at| *at <= now);
            if recorded_breach || breached_at.is_some() || elapsed >= target {
                row.breached += 1;
                self.breaches.push(Breach {
                    stream: stream.clone(),
                    timer: timer.timer().to_owned(),
                    cycle: timer.cycle(),
                    due: timer
                        .recorded_at(BREACH_BP)
                        .or(breached_at)
                        .or_else(|| timer.due(cal)),
                    overrun_seconds: (elapsed - target).max(0),
                });
            } else if timer.ended().is_some() {
                row.met += 1;
            } else {
                row.open += 1;
            }
            if timer.elapsed_with_pauses(cal, now) >= target {
                row.breached_counting_pauses += 1;
            }
        }
    }

    /// Rows summed per timer over every period, service and priority.
    pub fn by_timer(&self) -> BTreeMap<String, Attainment> {
        let mut out: BTreeMap<String, Attainment> = BTreeMap::new();
        for (key, row) in &self.rows {
            let sum = out.entry(key.timer.clone()).or_default();
            sum.met += row.met;
            sum.breached += row.breached;
            sum.open += row.open;
            sum.cancelled += row.cancelled;
            sum.breached_counting_pauses += row.breached_counting_pauses;
        }
        out
    }
}
