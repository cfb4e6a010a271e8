//! The scheduler projection: the next due instant of every running timer, indexed so that
//! "what is due at `now`" costs O(log n + k).

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use chrono::{DateTime, Utc};

/// Next due instants by timer key. Rebuildable from history at any time: it holds nothing a
/// replay cannot give back.
#[derive(Debug, Clone)]
pub struct SlaScheduler<K> {
    queue: BTreeSet<(DateTime<Utc>, K)>,
    next: HashMap<K, DateTime<Utc>>,
}

impl<K> Default for SlaScheduler<K> {
    fn default() -> Self {
        Self {
            queue: BTreeSet::new(),
            next: HashMap::new(),
        }
    }
}

impl<K: Ord + Hash + Clone> SlaScheduler<K> {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or, with `None`, clears) the next due instant of `key`. O(log n).
    pub fn set(&mut self, key: K, due: Option<DateTime<Utc>>) {
        if let Some(old) = self.next.remove(&key) {
            self.queue.remove(&(old, key.clone()));
        }
        if let Some(due) = due {
            self.queue.insert((due, key.clone()));
            self.next.insert(key, due);
        }
    }

    /// The keys due at `now` (due instant at or before it), earliest first. O(log n + k).
    pub fn due(&self, now: DateTime<Utc>) -> impl Iterator<Item = (&K, DateTime<Utc>)> {
        self.queue
            .iter()
            .take_while(move |(at, _)| *at <= now)
            .map(|(at, k)| (k, *at))
    }

    /// The earliest due instant.
    pub fn next_instant(&self) -> Option<DateTime<Utc>> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// The due instant of `key`.
    pub fn get(&self, key: &K) -> Option<DateTime<Utc>> {
        self.next.get(key).copied()
    }

    /// Number of indexed timers.
    pub fn len(&self) -> usize {
        self.next.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn due_returns_exactly_what_is_due_in_order_and_follows_updates() {
        let at = |h| Utc.with_ymd_and_hms(2026, 1, 1, h, 0, 0).unwrap();
        let mut s = SlaScheduler::new();
        s.set("b", Some(at(10)));
        s.set("a", Some(at(9)));
        s.set("c", Some(at(12)));
        let due: Vec<_> = s.due(at(10)).map(|(k, _)| *k).collect();
        assert_eq!(due, vec!["a", "b"]);
        s.set("a", Some(at(13)));
        s.set("b", None);
        assert_eq!(
            s.due(at(12)).map(|(k, _)| *k).collect::<Vec<_>>(),
            vec!["c"]
        );
        assert_eq!(s.next_instant(), Some(at(12)));
        assert_eq!(s.len(), 2);
    }
}
