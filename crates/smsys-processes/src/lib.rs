//! The ISO/IEC 20000-1 processes of smsys, on the event-sourcing kernel.
//!
//! - [`BusinessCalendar`]: opening hours, holidays and time zones; business time between two
//!   instants and deadlines, in whole seconds, right across clock changes;
//! - [`lifecycle`]: lifecycles as data (statuses mapped to engine-known phases, transitions
//!   taken by triggers), validated, loadable from TOML or JSON, exportable to Mermaid and DOT;
//! - [`PriorityMatrix`]: impact x urgency -> priority, versioned;
//! - [`Incident`] and [`ServiceRequest`]: the service-desk records (8.6.1, 8.6.2) as aggregates
//!   whose `decide` consults a [`DeskPolicy`].
//!
//! ```
//! use smsys_core::{Aggregate, Channel, Context, SequentialIds};
//! use smsys_processes::{DeskPolicy, Incident, RecordCommand};
//!
//! let policy = DeskPolicy::default();
//! let ids = SequentialIds::new(0);
//! let ctx = Context::new(chrono::DateTime::UNIX_EPOCH, &ids);
//! let log = RecordCommand::Log {
//!     reference: "INC-1".into(),
//!     caller: "ana".into(),
//!     channel: Channel::Phone,
//!     service: "email".into(),
//!     affected_cis: vec![],
//!     summary: "mail is down".into(),
//!     description: String::new(),
//!     catalogue_item: None,
//!     fulfilment_instructions: None,
//! };
//! let events = Incident::default().decide(&log, &policy, &ctx)?;
//! assert_eq!(events.len(), 1);
//! let refused = Incident::default().decide(&RecordCommand::Close, &policy, &ctx).unwrap_err();
//! assert_eq!(refused.to_string(), "incident (not logged) (status none): close refused: the record has not been logged");
//! # Ok::<(), smsys_processes::Refusal>(())
//! ```

#![deny(missing_docs)]

mod calendar;
mod desk;
pub mod lifecycle;
mod priority;
pub mod sla;

pub use calendar::{
    BusinessCalendar, CalendarDay, CalendarDefinition, CalendarError, Closure, DatedOpening,
    Interval, WeeklyHours,
};
pub use desk::{
    Approval, DeskPolicy, Incident, IncidentKind, MajorRule, Record, RecordCommand, RecordKind,
    Refusal, RefusalReason, RequestKind, ServiceRequest,
};
pub use lifecycle::{Lifecycle, LifecycleBuilder, LifecycleError, LifecycleRegistry};
pub use priority::PriorityMatrix;
