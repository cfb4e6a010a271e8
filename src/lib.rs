//! smsys puts the processes of ISO/IEC 20000-1 into your product as an event-sourced
//! process engine: every incident, request, problem, change, release and configuration item is
//! a stream of immutable, hash-chained events, and the store is the system of record an auditor
//! can verify.
//!
//! This facade re-exports the workspace crates:
//!
//! - [`core`] (`smsys-core`): the event-sourcing kernel: ids, versions, positions, events, the
//!   [`EventStore`](core::EventStore) contract, the hash chain, aggregates and command handling,
//!   and [`records`](core::records), the persisted contract of every record type;
//! - [`store`] (`smsys-store`): the backends (in-memory; SQLite, the embedded default;
//!   PostgreSQL behind the `postgres` feature) and the conformance `testkit`;
//! - [`processes`] (`smsys-processes`): the service-management processes built on the kernel:
//!   the rules of each record type, lifecycles as data, custom attributes and SLA timers.
//!
//! ```
//! use futures::StreamExt;
//! use smsys::core::{Actor, EventData, EventId, EventStore, EventType, ExpectedVersion, Metadata, StreamId, Version};
//! use smsys::store::MemoryEventStore;
//!
//! # futures::executor::block_on(async {
//! let store = MemoryEventStore::new();
//! let stream: StreamId = "incident-INC-1".parse()?;
//! let meta = Metadata::new(
//!     EventId::from_uuid(uuid::Uuid::from_u128(7))?,
//!     Actor::new("agent:ana")?,
//!     chrono::DateTime::UNIX_EPOCH,
//! );
//! let logged = EventData::new(EventType::new("incident.logged")?, 1, serde_json::json!({"summary": "vpn down"}), meta)?;
//! store.append(&stream, ExpectedVersion::NoStream, vec![logged]).await?;
//! let report = smsys::core::verify_events(store.read_stream(&stream, Version::FIRST)).await?;
//! assert!(report.is_intact());
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

#![deny(missing_docs)]

pub use smsys_core as core;
pub use smsys_processes as processes;
pub use smsys_store as store;
