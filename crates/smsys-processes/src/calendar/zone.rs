//! A time zone's UTC offsets as a table of transitions, and the mapping of local civil time
//! to UTC instants that calendar arithmetic uses.
//!
//! The table is read once from chrono-tz when a calendar is built, so that the arithmetic
//! needs neither chrono-tz nor calendar types: everything is whole seconds in `i64`.

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// Seconds in a day.
pub(super) const DAY: i64 = 86_400;

/// First instant the table covers: 1900-01-01T00:00:00Z. Before it, the zone's offset at that
/// instant is used.
const TABLE_START: i64 = -2_208_988_800;
/// End of the table: 2101-01-01T00:00:00Z. chrono-tz knows no transition after 2100.
const TABLE_END: i64 = 4_133_980_800;

/// UTC offsets of one zone: `initial` until the first transition, then each transition's
/// offset from its instant on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OffsetTable {
    initial: i64,
    /// `(instant, offset from then on)`, instants strictly increasing, offsets changing.
    transitions: Vec<(i64, i64)>,
}

impl OffsetTable {
    /// Reads every offset change of `tz` between 1900 and 2100.
    ///
    /// The zone is sampled once a day and each change located to the second by bisection; an
    /// offset that lasts less than a day would be missed (no zone has one).
    pub(super) fn new(tz: Tz) -> Self {
        let offset = |t: i64| -> i64 {
            DateTime::from_timestamp(t, 0).map_or(0, |at| {
                i64::from(
                    tz.offset_from_utc_datetime(&at.naive_utc())
                        .fix()
                        .local_minus_utc(),
                )
            })
        };
        let initial = offset(TABLE_START);
        let mut transitions = Vec::new();
        let (mut at, mut current) = (TABLE_START, initial);
        while at < TABLE_END {
            let next = at + DAY;
            let next_offset = offset(next);
            if next_offset == current {
                at = next;
                continue;
            }
            // The first second with another offset lies in (at, next].
            let (mut lo, mut hi) = (at, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            current = offset(hi);
            transitions.push((hi, current));
            at = hi;
        }
        Self {
            initial,
            transitions,
        }
    }

    /// A zone that never changes its offset.
    pub(super) fn fixed(offset: i64) -> Self {
        Self {
            initial: offset,
            transitions: Vec::new(),
        }
    }

    /// The segment `(start, end, offset)` holding instant `at`; `start`/`end` are `i64::MIN`/
    /// `i64::MAX` at the ends of the table.
    fn segment(&self, index: usize) -> (i64, i64, i64) {
        let start = match index {
            0 => i64::MIN,
            i => self.transitions[i - 1].0,
        };
        let offset = match index {
            0 => self.initial,
            i => self.transitions[i - 1].1,
        };
        let end = self.transitions.get(index).map_or(i64::MAX, |t| t.0);
        (start, end, offset)
    }

    fn index_at(&self, at: i64) -> usize {
        self.transitions.partition_point(|t| t.0 <= at)
    }

    /// The offset in force at instant `at`.
    pub(super) fn offset_at(&self, at: i64) -> i64 {
        self.segment(self.index_at(at)).2
    }

    /// Local civil time (seconds since 1970-01-01T00:00 local) at instant `at`.
    pub(super) fn local(&self, at: i64) -> i64 {
        at.saturating_add(self.offset_at(at))
    }

    /// The offset if it is the same during the whole of `[from, to]`.
    pub(super) fn stable_offset(&self, from: i64, to: i64) -> Option<i64> {
        let index = self.index_at(from);
        let (_, end, offset) = self.segment(index);
        (end > to).then_some(offset)
    }

    /// The first transition after `at`, if any.
    pub(super) fn next_transition(&self, at: i64) -> Option<i64> {
        self.transitions.get(self.index_at(at)).map(|t| t.0)
    }

    /// The first instant whose local civil time is `local` or later.
    ///
    /// A local time that occurs once maps to that instant; one that occurs twice (the hour
    /// repeated when clocks go back) to its first occurrence; one that does not occur (the hour
    /// skipped when clocks go forward) to the instant the clocks jump. The mapping never
    /// decreases, so local intervals keep their order and never overlap once mapped.
    pub(super) fn utc(&self, local: i64) -> i64 {
        // |offset| < 1 day, so the answer lies in the segments from `local - DAY` on; within a
        // segment local time runs with UTC, and segments are in time order, so the first
        // segment holding a candidate holds the smallest.
        let mut index = self.index_at(local.saturating_sub(DAY));
        loop {
            let (start, end, offset) = self.segment(index);
            let candidate = local.saturating_sub(offset).max(start);
            if candidate < end {
                return candidate;
            }
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{LocalResult, NaiveDate, NaiveDateTime};
    use chrono_tz::GapInfo;

    fn reference_utc(tz: Tz, local: NaiveDateTime) -> i64 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.timestamp(),
            LocalResult::Ambiguous(first, _) => first.timestamp(),
            LocalResult::None => GapInfo::new(&local, &tz)
                .and_then(|gap| gap.end)
                .map(|end| end.timestamp())
                .unwrap_or_else(|| panic!("{local} has no gap end in {tz}")),
        }
    }

    #[test]
    fn table_matches_chrono_tz_around_transitions() {
        for tz in [
            chrono_tz::Europe::Berlin,
            chrono_tz::America::New_York,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Pacific::Apia,
            chrono_tz::Asia::Kolkata,
        ] {
            let table = OffsetTable::new(tz);
            let from = NaiveDate::from_ymd_opt(2015, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .unwrap_or_default();
            // Every 11 minutes for 12 years lands inside every skipped and repeated hour.
            let mut local = from;
            let end = from + chrono::TimeDelta::days(366 * 12);
            while local < end {
                let expected = reference_utc(tz, local);
                let got = table.utc(local.and_utc().timestamp());
                assert_eq!(got, expected, "{tz} {local}");
                assert_eq!(
                    table.offset_at(expected),
                    i64::from(
                        tz.offset_from_utc_datetime(
                            &DateTime::from_timestamp(expected, 0)
                                .unwrap_or_default()
                                .naive_utc()
                        )
                        .fix()
                        .local_minus_utc()
                    ),
                    "{tz} {local}"
                );
                local += chrono::TimeDelta::minutes(11);
            }
        }
    }

    #[test]
    fn samoa_skipped_a_whole_day() {
        // Pacific/Apia went from UTC-10 to UTC+14 at the end of 2011-12-29: 2011-12-30 did
        // not happen there.
        let table = OffsetTable::new(chrono_tz::Pacific::Apia);
        let day = |y, m, d| {
            NaiveDate::from_ymd_opt(y, m, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .unwrap_or_default()
                .and_utc()
                .timestamp()
        };
        assert_eq!(table.utc(day(2011, 12, 30)), table.utc(day(2011, 12, 31)));
    }
}
