//! Where the time and the new ids of production runs come from: the system clock and random
//! UUID v7 ids. Domain code never reads them directly; they come in through a
//! [`Context`](smsys_core::Context) or the [`Clock`] a driver is given.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use smsys_core::IdSource;
use uuid::Uuid;

/// The time source of drivers: injectable, so tests and replays control it.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
    /// Returns at (or after) `at`.
    async fn sleep_until(&self, at: DateTime<Utc>);
}

/// The system clock, sleeping on the tokio timer.
///
/// ```
/// use smsys_processes::{Clock, SystemClock};
/// let before = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
/// assert!(SystemClock.now() >= before);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from(std::time::SystemTime::now())
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let wait = (at - self.now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
}

/// New ids for production: random UUID v7 values (time-ordered, 74 random bits).
///
/// ```
/// use smsys_core::IdSource;
/// use smsys_processes::RandomIds;
/// let id = RandomIds.next_uuid();
/// assert_eq!(id.get_version_num(), 7);
/// assert_ne!(id, RandomIds.next_uuid());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_uuid(&self) -> Uuid {
        Uuid::now_v7()
    }
}
