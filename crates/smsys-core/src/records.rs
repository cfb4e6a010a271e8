//! Every record type as an event stream: the persisted contract of incidents, service requests,
//! problems, known errors, changes, releases, nonconformities and the record types to come.
//!
//! A record type ([`RecordKind`]) is its state, rebuilt by a total `evolve`, and its events,
//! stored as `<category>.<name>` with a schema version:
//!
//! - the `logged` event, whose payload holds the shared [`Logged`] fields and the type's own;
//! - the shared [`RecordEvent`]s (classification, priority, assignment, status changes, notes,
//!   escalation, links, custom attributes, SLA thresholds, lifecycle migration), which every
//!   record type records and SLA timers, reports and the record index read as
//!   [`CommonEvent`]s without knowing the type;
//! - its own events ([`OwnEvents`]), e.g. the major-incident procedure of an incident.
//!
//! Each type composes the shared [`RecordState`] into its own state. A new record type is a
//! new module, here or in a product's crate; nothing shared lists the types. The rules that
//! decide the events live in `smsys-processes`.
//!
//! ```
//! use smsys_core::records::{Incident, RecordKind};
//! use smsys_core::EventSourced;
//! assert_eq!(Incident::CATEGORY, "incident");
//! assert_eq!(Incident::RECORD_TYPE.as_str(), "incident");
//! assert!(Incident::default().record().status().is_none());
//! ```

mod attribute;
pub mod change;
mod ci_index;
pub mod configuration_item;
mod detail;
mod event;
mod ids;
pub mod incident;
mod index;
mod kind;
pub mod known_error;
pub mod nonconformity;
pub mod personal;
mod phase;
pub mod problem;
pub mod release;
pub mod request;
mod state;
pub mod verification;

pub use attribute::{AttributeName, AttributeValue, Attributes};
pub use change::{Change, ChangeEvent, ChangeKind};
pub use ci_index::{CiGraphStore, CiRow, Direction, GraphWalk};
pub use configuration_item::{CiEvent, ConfigurationItem};
pub use detail::{Channel, Escalation, NoteKind, TransitionDetail};
pub use event::{Logged, RecordEvent};
pub use ids::{
    CiId, CiType, GroupId, LinkKind, MAX_NAME_ID_LEN, PersonId, RecordType, Reference,
    Relationship, ServiceId,
};
pub use incident::{Incident, IncidentEvent};
pub use index::{
    Cursor, RecordIndexStore, RecordOrder, RecordPage, RecordQuery, RecordRow, TimerRow,
};
pub use kind::{
    CommonEvent, LoggedEvent, OwnEvents, RecordKind, TypedEvent, event_type, upcasters_for,
};
pub use known_error::{KnownError, KnownErrorEvent};
pub use nonconformity::{Nonconformity, NonconformityEvent, NonconformitySource};
pub use personal::{ERASED_PERSON, ERASED_TEXT, personal_data, shared_personal_data};
pub use phase::{DefinitionRef, Level, Phase, Priority, PriorityError};
pub use problem::{Problem, ProblemEvent};
pub use release::{Release, ReleaseEvent, ReleaseKind};
pub use request::{RequestEvent, ServiceRequest};
pub use state::{RecordState, Resolution};
pub use verification::{CmdbVerification, Discrepancy, VerificationEvent};

#[cfg(test)]
mod tests {
    /// Architecture invariant: the kernel never imports the record types.
    #[test]
    fn kernel_modules_never_import_records() {
        let kernel = [
            ("aggregate.rs", include_str!("aggregate.rs")),
            ("chain.rs", include_str!("chain.rs")),
            ("command.rs", include_str!("command.rs")),
            ("context.rs", include_str!("context.rs")),
            ("event.rs", include_str!("event.rs")),
            ("personal.rs", include_str!("personal.rs")),
            ("projection.rs", include_str!("projection.rs")),
            ("reactor.rs", include_str!("reactor.rs")),
            ("seal.rs", include_str!("seal.rs")),
            ("seal/sealer.rs", include_str!("seal/sealer.rs")),
            ("snapshot.rs", include_str!("snapshot.rs")),
            ("store.rs", include_str!("store.rs")),
            ("store/retry.rs", include_str!("store/retry.rs")),
            ("stream.rs", include_str!("stream.rs")),
            ("tenant.rs", include_str!("tenant.rs")),
            ("upcast.rs", include_str!("upcast.rs")),
        ];
        for (file, text) in kernel {
            assert!(
                !text.contains("crate::records") && !text.contains("super::records"),
                "{file} imports the record types"
            );
        }
    }
}
