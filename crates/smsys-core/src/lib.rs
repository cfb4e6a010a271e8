//! The event-sourcing kernel of smsys.
//!
//! Every service-management record (incident, request, problem, change, release, configuration
//! item) is a stream of immutable events. This crate defines the vocabulary and the contract:
//!
//! - identity and order: [`StreamId`], [`Version`], [`Position`], [`ExpectedVersion`];
//! - events: [`EventData`] to append, [`RecordedEvent`] as stored, with [`Metadata`]
//!   (actor, occurred-at, correlation, causation, tenant, extensions);
//! - the storage contract: the async [`EventStore`] trait, implemented in `smsys-store`;
//! - tamper evidence: the per-stream SHA-256 chain of [`chain`] and its verifier;
//! - aggregates as pure functions: `evolve` on an [`EventSourced`] state, `decide` in an
//!   [`Aggregate`]; [`Upcasters`] for old schema versions, [`Snapshot`]s, and the
//!   [`CommandHandler`] that ties them to a store;
//! - [`import`]: other tools' history recorded as facts, in batches, with provenance;
//! - [`records`]: every record type (incidents, service requests, ...) as an event stream,
//!   built from shared parts. The kernel modules never import it.
//! - [`tenant`]: a log per tenant, reached through a [`TenantStore`] bound to one tenant.
//!
//! It does no I/O, reads no clock and starts no runtime: time and new ids come in through a
//! [`Context`].
//!
//! ```
//! use smsys_core::{ExpectedVersion, StreamId, Version};
//! let stream: StreamId = "incident-INC-1".parse()?;
//! assert!(ExpectedVersion::NoStream.accepts(None));
//! assert!(ExpectedVersion::Exact(Version::new(3)).accepts(Some(Version::new(3))));
//! # Ok::<(), smsys_core::IdError>(())
//! ```

#![deny(missing_docs)]

mod aggregate;
pub mod chain;
mod command;
mod context;
mod event;
pub mod import;
pub mod personal;
mod projection;
mod reactor;
pub mod records;
pub mod seal;
mod snapshot;
mod store;
mod stream;
pub mod tenant;
mod upcast;

pub use aggregate::{Aggregate, DecodeError, DomainEvent, EventOf, EventSourced, Stamp};
pub use chain::{
    ChainBreak, ChainFault, ChainVerifier, EventHash, UndecodableRow, VerifyReport, verify_events,
};
pub use command::{CommandError, CommandHandler, CommandMeta, Executed, LoadError, Loaded};
pub use context::{Context, IdSource, SequentialIds};
pub use event::{
    Actor, CausationId, CommandId, CorrelationId, EARLIEST_INSTANT, EventData, EventDataError,
    EventId, EventType, LATEST_INSTANT, MAX_EVENT_TYPE_LEN, MAX_JSON_DEPTH, MAX_NAME_LEN, Metadata,
    RecordedEvent, TenantId, to_micros,
};
pub use projection::{CheckpointStore, Projection, ProjectionError, ProjectionRunner};
pub use reactor::{DerivedIds, Reacting, Reactor};
pub use snapshot::{Snapshot, SnapshotPolicy, SnapshotStore};
pub use store::{
    AppendError, AppendResult, AppendSpan, BackendError, EventStore, EventStream, FilterMismatch,
    LogFilter, StoreError, StreamAppend, check_append_shape, resolve_append_retry, resolve_retry,
};
pub use stream::{
    Category, ExpectedVersion, IdError, MAX_CATEGORY_LEN, MAX_ENTITY_ID_LEN, Position, StreamId,
    Version,
};
pub use tenant::{TenantError, TenantStore, Tenants};
pub use upcast::{ReadFailure, UpcastError, Upcasters};
