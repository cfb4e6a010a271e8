//! What every record type's rules share: the shared commands and how they are decided,
//! lifecycle stepping with requirements and guards, refusals, and the policy part every type
//! consults. A record type plugs in by implementing [`RecordRules`] for its decider and
//! composing [`decide_shared`] and [`log_record`] into its own `decide`.

mod command;
mod decide;
mod policy;
mod refusal;

use smsys_core::records::{RecordEvent, RecordKind};

pub use command::{LogRecord, RecordCommand};
pub use decide::{Decision, decide_shared, log_record, refuse, transition};
pub(crate) use decide::{check_stage, current_stage, migration_keeps_stage, required};
pub use policy::RecordPolicy;
pub use refusal::{Refusal, RefusalReason};

use crate::lifecycle::{Guard, Trigger, Vocabulary};

/// The rules of one record type beyond the shared ones: its vocabulary, its guards, its own
/// refusal reasons and its hooks into the shared commands.
pub trait RecordRules: Send + Sync + 'static {
    /// The record type's state.
    type Record: RecordKind;
    /// What its `decide` consults.
    type Policy: Send + Sync;
    /// Its own refusal reasons.
    type Rule: std::error::Error + Clone + PartialEq + Send + Sync + 'static;

    /// What its lifecycles may use.
    fn vocabulary() -> Vocabulary;

    /// The shared part of its policy.
    fn record_policy(policy: &Self::Policy) -> &RecordPolicy;

    /// Whether one of its own guards holds (the shared `resolution_recorded` is checked by
    /// the framework).
    fn guard_holds(record: &Self::Record, guard: &Guard) -> bool;

    /// A policy rule checked before any transition of `trigger` (e.g. approval before
    /// fulfilment). The default allows everything.
    fn before_transition(
        record: &Self::Record,
        trigger: &Trigger,
        policy: &Self::Policy,
    ) -> Result<(), RefusalReason<Self::Rule>> {
        let _ = (record, trigger, policy);
        Ok(())
    }

    /// An event of its own that follows a shared event (e.g. the major-incident flag after a
    /// priority that meets the criterion), decided on the state after that event. The default
    /// adds none.
    fn follow_up(
        record: &Self::Record,
        event: &RecordEvent,
        policy: &Self::Policy,
    ) -> Option<<Self::Record as RecordKind>::Own> {
        let _ = (record, event, policy);
        None
    }
}
