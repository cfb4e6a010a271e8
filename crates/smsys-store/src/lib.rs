//! Event stores for smsys, all passing one conformance suite.
//!
//! - [`MemoryEventStore`]: in memory, the reference semantics.
//! - `SqliteEventStore` (feature `sqlite`, default): the embedded default, one file with
//!   group commit; see `SqliteOptions` and `Durability`.
//! - `PgEventStore` (feature `postgres`): many application nodes on one PostgreSQL database.
//!
//! The [`paging`] module turns a backend's page queries into streams and subscriptions, and the
//! `testkit` module (feature `testkit`) is the conformance suite any backend, also a
//! third-party one, can run with one macro call.

#![deny(missing_docs)]

mod memory;
pub mod paging;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use memory::{MemoryEventStore, MemorySnapshotStore};
#[cfg(feature = "postgres")]
pub use postgres::{PgEventStore, PgEventStoreBuilder};
#[cfg(feature = "sqlite")]
pub use sqlite::{Durability, OpenError, SqliteEventStore, SqliteOptions};
