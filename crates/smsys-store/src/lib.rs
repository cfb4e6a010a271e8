//! Event stores for smsys, all passing one conformance suite.
//!
//! - [`MemoryEventStore`]: in memory, the reference semantics.
//! - `SqliteEventStore` (feature `sqlite`, default): the embedded default, one file with
//!   group commit; see `SqliteOptions` and `Durability`.
//! - `PgEventStore` (feature `postgres`): many application nodes on one PostgreSQL database.
//!
//! The read side lives beside the log: every store keeps named checkpoints
//! ([`CheckpointStore`](smsys_core::CheckpointStore), names checked by [`CheckpointName`]),
//! and the record index ([`RecordIndexStore`](smsys_core::records::RecordIndexStore)) has a
//! reference implementation in memory, [`MemoryRecordIndex`], and durable ones in the SQLite
//! file (`SqliteEventStore::record_index`) and the PostgreSQL schema
//! (`PgEventStore::record_index`) whose rows and checkpoint commit together. The
//! configuration graph ([`CiGraphStore`](smsys_core::records::CiGraphStore)) lives beside it
//! the same way: [`MemoryCiGraph`], `SqliteEventStore::ci_graph` and `PgEventStore::ci_graph`.
//!
//! Tenants never read each other's events: a log per tenant ([`tenancy`], which also says what
//! each backend lets one tenant notice of the others), in memory ([`MemoryTenants`]), a file
//! per tenant on SQLite (`SqliteTenants`) or a schema per tenant on PostgreSQL (`PgTenants`,
//! with row-level security).
//!
//! The [`paging`] module turns a backend's page queries into streams and subscriptions, and the
//! `testkit` module (feature `testkit`) is the conformance suite any backend, also a
//! third-party one, can run with one macro call.

#![deny(missing_docs)]

mod checkpoint;
mod ci_graph;
mod memory;
pub mod paging;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod privacy;
mod record_index;
#[cfg(feature = "sqlite")]
mod sqlite;
pub mod tenancy;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use checkpoint::{CheckpointName, CheckpointNameError, MAX_CHECKPOINT_NAME_LEN};
pub use memory::{MemoryCiGraph, MemoryEventStore, MemoryRecordIndex, MemorySnapshotStore};
#[cfg(feature = "postgres")]
pub use postgres::{
    PgCiGraph, PgEventStore, PgEventStoreBuilder, PgRecordIndex, PgTenants, PgTenantsBuilder,
};
pub use record_index::CursorError;
#[cfg(feature = "sqlite")]
pub use sqlite::{
    Durability, MAX_TENANT_FILE_NAME_LEN, OpenError, SqliteCiGraph, SqliteEventStore,
    SqliteOptions, SqliteRecordIndex, SqliteTenants, SqliteTenantsError,
};
pub use tenancy::MemoryTenants;
