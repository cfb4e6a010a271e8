//! An interval index: windows sorted by start, with the longest window held, so the windows
//! overlapping `[from, to)` are found by a range scan that stops once no earlier window can
//! reach `from`.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};

/// Bookings (a change's slot number) sorted by start. The longest length only grows: a
/// removal leaves it, which keeps the scan correct (a longer bound only scans further).
#[derive(Debug, Default)]
pub(super) struct Timeline {
    entries: BTreeSet<(DateTime<Utc>, u32)>,
    longest: TimeDelta,
}

impl Timeline {
    pub(super) fn insert(&mut self, start: DateTime<Utc>, end: DateTime<Utc>, slot: u32) {
        self.longest = self.longest.max(end - start);
        self.entries.insert((start, slot));
    }

    pub(super) fn remove(&mut self, start: DateTime<Utc>, slot: u32) {
        self.entries.remove(&(start, slot));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The slots whose window may overlap `[from, to)`: every slot starting before `to` and
    /// not before `from - longest`, latest start first. The caller checks each end.
    pub(super) fn candidates(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = (DateTime<Utc>, u32)> + '_ {
        let reach = from.checked_sub_signed(self.longest);
        self.entries
            .range(..(to, 0))
            .rev()
            .take_while(move |(start, _)| reach.is_none_or(|r| *start >= r))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "tests stop at the first broken expectation"
    )]

    use super::*;

    fn h(n: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(n * 3600, 0).unwrap()
    }

    #[test]
    fn candidates_are_the_windows_starting_in_reach() {
        let mut t = Timeline::default();
        t.insert(h(0), h(10), 1);
        t.insert(h(20), h(21), 2);
        t.insert(h(30), h(31), 3);
        let found: Vec<u32> = t.candidates(h(25), h(30)).map(|(_, s)| s).collect();
        // Windows starting from 25 - 10 = 15 and before 30.
        assert_eq!(found, [2]);
        t.remove(h(20), 2);
        assert_eq!(t.candidates(h(25), h(30)).count(), 0);
        assert_eq!(t.candidates(h(5), h(31)).count(), 2);
    }
}
