//! Why a command was refused: which record, in which status, which command, and why.

use std::fmt;

use chrono::{DateTime, Utc};
use smsys_core::StreamId;
use smsys_core::records::{DefinitionRef, Phase, RecordType, Reference};

use crate::attribute::AttributeError;
use crate::lifecycle::{Guard, Requirement, Trigger};

/// What was missing or forbidden. `R` is the record type's own reasons (major incidents,
/// approvals, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusalReason<R> {
    /// The record has not been logged.
    #[error("the record has not been logged")]
    NotLogged,
    /// The record is already logged.
    #[error("the record is already logged")]
    AlreadyLogged,
    /// The record is closed or cancelled.
    #[error("the record is {0}, which is final")]
    Final(Phase),
    /// The lifecycle has no such transition from the current status.
    #[error("lifecycle {lifecycle} has no {trigger} transition from this status")]
    NoTransition {
        /// The lifecycle.
        lifecycle: DefinitionRef,
        /// The trigger.
        trigger: Trigger,
    },
    /// Several transitions fit; the command must name the target status.
    #[error(
        "several {trigger} transitions lead from this status (to {candidates:?}); name the target status"
    )]
    AmbiguousTransition {
        /// The trigger.
        trigger: Trigger,
        /// The statuses they lead to.
        candidates: Vec<String>,
    },
    /// A field the transition requires is not set.
    #[error("the transition requires {0}, which is missing")]
    Missing(Requirement),
    /// An input of the command is empty.
    #[error("the command needs {0}, which is empty")]
    MissingInput(&'static str),
    /// A guard of the transition does not hold.
    #[error("guard {0} does not hold")]
    GuardFailed(Guard),
    /// The command needs to know who acts (the command handler sets it from the metadata).
    #[error(
        "the acting person is unknown: run the command through a CommandHandler with its CommandMeta, or give the Context an actor"
    )]
    NoActor,
    /// A log command whose reference names another stream than the one it is run on.
    #[error("reference {reference} belongs to stream {expected}, not {actual}")]
    WrongStream {
        /// The reference logged.
        reference: Reference,
        /// The stream it names.
        expected: StreamId,
        /// The stream the command ran on.
        actual: StreamId,
    },
    /// A custom attribute the schema refuses.
    #[error(transparent)]
    Attribute(AttributeError),
    /// The auto-close period has not passed.
    #[error("it may be closed automatically only from {due}")]
    AutoCloseTooEarly {
        /// When it may.
        due: DateTime<Utc>,
    },
    /// The lifecycle is unknown to the policy.
    #[error("lifecycle {0} is not known to the policy")]
    UnknownLifecycle(DefinitionRef),
    /// A lifecycle of another record type.
    #[error("lifecycle {0} is for other records")]
    LifecycleForOtherType(DefinitionRef),
    /// The record already follows that lifecycle.
    #[error("the record already follows lifecycle {0}")]
    SameLifecycle(DefinitionRef),
    /// The mapping does not say where the current status goes.
    #[error("the status mapping does not map the current status {0:?}")]
    UnmappedStatus(String),
    /// The mapping leads to a status that does not exist, or of another phase.
    #[error(
        "the status mapping leads to {0:?}, which is not a status of the same phase in the new lifecycle"
    )]
    BadMappedStatus(String),
    /// Nothing would change.
    #[error("nothing would change")]
    Unchanged,
    /// A rule of the record type.
    #[error("{0}")]
    Rule(R),
}

/// A refused command: which record, in which status, which command, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<R> {
    /// The record type.
    pub record_type: RecordType,
    /// The record's reference, once logged.
    pub record: Option<Reference>,
    /// Its status.
    pub status: Option<String>,
    /// The command.
    pub command: &'static str,
    /// Why.
    pub reason: RefusalReason<R>,
}

impl<R: fmt::Display> fmt::Display for Refusal<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.record_type.as_str().replace('_', " "))?;
        match &self.record {
            Some(r) => write!(f, "{r}")?,
            None => f.write_str("(not logged)")?,
        }
        write!(
            f,
            " (status {}): {} refused: {}",
            self.status.as_deref().unwrap_or("none"),
            self.command,
            self.reason
        )
    }
}

impl<R: std::error::Error + 'static> std::error::Error for Refusal<R> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.reason)
    }
}
