//! Effectiveness reviews of problem fixes (8.6.3): after a fix, do matching incidents stop?

use chrono::Duration;

/// How fixes are reviewed: the window after a resolution over which recurring incidents are
/// counted, and how many may recur for the fix to count as effective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// The window after the resolution (30 days by default).
    pub window: Duration,
    /// How many matching incidents may recur in the window for the fix to hold (0 by default).
    pub tolerated_recurrences: u32,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        Self {
            window: Duration::days(30),
            tolerated_recurrences: 0,
        }
    }
}
