//! The ISO/IEC 20000-1 processes of smsys, on the event-sourcing kernel.
//!
//! - [`lifecycle`]: lifecycles as data (statuses mapped to engine-known phases, transitions
//!   taken by triggers, requirements, guards and behaviour rules), validated against each
//!   record type's vocabulary, loadable from TOML or JSON, exportable to Mermaid and DOT;
//! - [`record`]: what every record type's rules share (the shared commands, lifecycle
//!   stepping, refusals, [`RecordPolicy`]) and the [`RecordRules`] a record type implements;
//! - [`incident`] (8.6.1), [`request`] (8.6.2), [`problem`] and [`known_error`] (8.6.3): the
//!   service-desk processes, each with its own commands, policy and refusal reasons; the
//!   known error catalogue other processes consult ([`known_error::catalogue`]);
//! - [`configuration`] (8.2.6): configuration items under CI types held as data (attributes,
//!   allowed relationships, lifecycles, change control), decided by [`CiManagement`];
//!   [`cmdb_graph`]: the CI graph (impact, shortest dependency path, exact as-of);
//!   [`verification`]: discovered inventories compared with the CMDB; [`catalogue`] (8.2.4):
//!   the service catalogue, which names each service's SLAs;
//! - [`change`] (8.5.1): standard, normal and emergency changes under lifecycles per kind,
//!   risk, approvals with segregation of duties and a conflict-checked schedule;
//!   [`release`] (8.5.3): releases with acceptance, approval, a hashed baseline of their CIs
//!   before deployment, rollback and early-life incident correlation;
//! - [`evidence`]: the clause map as data (which events evidence which activity of which
//!   clause) and the evidence of changes (8.5.1) and releases (8.5.3) for a period, each
//!   figure with the records that fall short;
//! - [`nonconformity`] (10.1): nonconformities raised from SLA breaches, failed changes, audit
//!   findings, complaints or by hand, with correction, cause analysis, corrective actions and
//!   an effectiveness review, every round retained;
//! - [`lint`]: customised lifecycles, policies and SLA definitions checked against the
//!   activities the standard requires, each finding naming its clause;
//! - [`attribute`]: the typed schema of custom attributes;
//! - [`index`]: the record index projection (rows with SLA timer state, kept next to the
//!   log) and [`view`]: one record's state, timers and typed history for display;
//! - [`trend`]: problem candidates from incident trends and the recurrences a review of a
//!   problem's fix asks for (8.6.3);
//! - [`PriorityMatrix`], [`BusinessCalendar`], [`sla`] timers, and the production [`Clock`]
//!   and [`RandomIds`].
//!
//! ```
//! use smsys_core::records::{Channel, Incident, RecordKind};
//! use smsys_core::{Aggregate, Context, SequentialIds};
//! use smsys_processes::incident::{IncidentCommand, IncidentManagement, IncidentPolicy};
//! use smsys_processes::record::{LogRecord, RecordCommand};
//!
//! let policy = IncidentPolicy::default();
//! let ids = SequentialIds::new(0);
//! let ctx = Context::new(chrono::DateTime::UNIX_EPOCH, &ids);
//! let log = IncidentCommand::Log(LogRecord::new(
//!     "INC-1".parse()?, "ana".parse()?, Channel::Phone, "email".parse()?, "mail is down",
//! ));
//! let events = IncidentManagement::decide(&Incident::default(), &log, &policy, &ctx)?;
//! assert_eq!(events.len(), 1);
//! let refused = IncidentManagement::decide(
//!     &Incident::default(), &RecordCommand::Close.into(), &policy, &ctx,
//! ).unwrap_err();
//! assert_eq!(
//!     refused.to_string(),
//!     "incident (not logged) (status none): close refused: the record has not been logged"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod attribute;
mod calendar;
pub mod catalogue;
pub mod change;
mod clock;
pub mod cmdb_graph;
pub mod configuration;
pub mod evidence;
pub mod incident;
pub mod index;
mod intern;
pub mod known_error;
pub mod lifecycle;
pub mod lint;
pub mod nonconformity;
mod priority;
pub mod problem;
mod reacting;
pub mod record;
pub mod release;
pub mod request;
pub mod sla;
pub mod trend;
pub mod verification;
pub mod view;

pub use calendar::{
    BusinessCalendar, CalendarDay, CalendarDefinition, CalendarError, Closure, DatedOpening,
    Interval, WeeklyHours,
};
pub use clock::{Clock, RandomIds, SystemClock};
pub use cmdb_graph::{CiGraphIndexer, CmdbGraph, ImpactRules};
pub use configuration::{CiCommand, CiManagement, CmdbPolicy};
pub use incident::{IncidentCommand, IncidentManagement, IncidentPolicy};
pub use known_error::{KnownErrorCommand, KnownErrorManagement, KnownErrorPolicy};
pub use lifecycle::{Lifecycle, LifecycleBuilder, LifecycleError, LifecycleRegistry};
pub use nonconformity::{NonconformityCommand, NonconformityManagement, NonconformityPolicy};
pub use priority::PriorityMatrix;
pub use problem::{ProblemCommand, ProblemManagement, ProblemPolicy};
pub use record::{LogRecord, RecordCommand, RecordPolicy, RecordRules, Refusal, RefusalReason};
pub use release::{ReleaseCommand, ReleaseManagement, ReleasePolicy};
pub use request::{RequestCommand, RequestManagement, RequestPolicy};
pub use trend::{IncidentTrends, TrendCandidate, TrendPolicy};

/// The filter of the log that reads only the streams of `S` (a record type, CIs,
/// verifications): what the read models and reactors over one kind of stream follow.
pub(crate) fn stream_filter<S: smsys_core::EventSourced>() -> smsys_core::LogFilter {
    match smsys_core::Category::new(S::CATEGORY) {
        Ok(category) => smsys_core::LogFilter::all().category(category),
        Err(e) => unreachable!("the category of a shipped stream type is valid: {e}"),
    }
}

/// The events of `S`'s streams among `events`, decoded through `upcasters`, all before any is
/// folded: a read model that fails on one event of a batch is left as it was. `reader` names
/// the read model in the error.
pub(crate) fn decode_batch<'e, S: smsys_core::EventSourced>(
    reader: &str,
    upcasters: &smsys_core::Upcasters,
    events: &'e [smsys_core::RecordedEvent],
) -> Result<Vec<(&'e smsys_core::RecordedEvent, S::Event)>, smsys_core::ProjectionError> {
    let mut decoded = Vec::with_capacity(events.len());
    for event in events {
        if event.stream.category_str() != S::CATEGORY {
            continue;
        }
        let typed = upcasters
            .decode::<S::Event>(
                event.data.event_type(),
                event.data.schema_version(),
                event.data.payload().clone(),
            )
            .map_err(|e| smsys_core::ProjectionError::event(reader, event, e))?;
        decoded.push((event, typed));
    }
    Ok(decoded)
}
