//! Shared vocabulary of record events: channels, notes, escalations and what a status change
//! records beyond its from and to.

use serde::{Deserialize, Serialize};

use crate::records::ids::{GroupId, PersonId};

/// How a record reached the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// By phone.
    Phone,
    /// By e-mail.
    Email,
    /// Through a self-service portal.
    Portal,
    /// In person or chat.
    Chat,
    /// From monitoring.
    Monitoring,
}

/// A kind of note on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// Internal note of the work done (the "actions taken" of 8.6.1).
    WorkNote,
    /// A comment visible to the caller.
    Comment,
    /// An update from the caller.
    CallerUpdate,
}

/// Functional escalation (to a more capable group) or hierarchical (to management).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Escalation {
    /// To another support group.
    Functional {
        /// The group escalated to.
        to_group: GroupId,
    },
    /// To a manager.
    Hierarchical {
        /// The manager escalated to, when named (optional from schema version 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_manager: Option<PersonId>,
    },
}

/// How a status change relates to the phases: what the engine records beyond from/to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TransitionDetail {
    /// Nothing beyond the move.
    Plain,
    /// Into a pending status, with the reason.
    Hold {
        /// Why work waits.
        reason: String,
    },
    /// Out of a pending status back to work; `by_caller` when a caller update did it.
    Resume {
        /// Whether a caller update returned it to work.
        by_caller: bool,
    },
    /// Into a resolved status.
    Resolution {
        /// The resolution code.
        code: String,
        /// What was done.
        notes: String,
    },
    /// From resolved back to work.
    Reopen {
        /// Why.
        reason: String,
        /// The record's reopen count after this reopen.
        count: u32,
    },
    /// Into a closed status.
    Closure {
        /// Whether the closure was automatic (after the auto-close period) rather than
        /// confirmed.
        automatic: bool,
    },
    /// Into a cancelled status.
    Cancellation {
        /// Why (duplicate of ..., not an incident, ...).
        reason: String,
    },
}
