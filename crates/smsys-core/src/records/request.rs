//! Service requests (ISO/IEC 20000-1 8.6.2) as event streams: category `request`, the shared
//! events, and approval and fulfilment-task events of their own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aggregate::{EventSourced, Stamp};
use crate::records::event::Logged;
use crate::records::ids::{PersonId, RecordType};
use crate::records::kind::{LoggedEvent, OwnEvents, RecordKind, TypedEvent};
use crate::records::state::RecordState;

/// A request's logged payload: the shared fields and the catalogue item requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLogged {
    /// The shared fields.
    #[serde(flatten)]
    pub record: Logged,
    /// The catalogue item requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalogue_item: Option<String>,
    /// The fulfilment instructions followed (a reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfilment_instructions: Option<String>,
}

impl LoggedEvent for RequestLogged {
    fn logged(&self) -> &Logged {
        &self.record
    }
}

/// A request's own events: approval and fulfilment tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum FulfilmentEvent {
    /// Approval asked of approvers.
    ApprovalRequested {
        /// Who may approve.
        approvers: Vec<PersonId>,
        /// How many approvals are needed.
        quorum: u32,
    },
    /// One approver approved.
    ApprovalGiven {
        /// Who.
        approver: PersonId,
    },
    /// The request was approved (quorum reached).
    Approved,
    /// An approver rejected the request.
    ApprovalRejected {
        /// Who.
        approver: PersonId,
        /// Why.
        reason: String,
    },
    /// A fulfilment task was added.
    TaskAdded {
        /// The task's id within the request.
        task: String,
        /// What is to be done.
        description: String,
    },
    /// A fulfilment task finished.
    TaskFinished {
        /// The task's id.
        task: String,
    },
}

impl OwnEvents for FulfilmentEvent {
    const NAMES: &'static [&'static str] = &[
        "approval_requested",
        "approval_given",
        "approved",
        "approval_rejected",
        "task_added",
        "task_finished",
    ];

    fn name(&self) -> &'static str {
        match self {
            FulfilmentEvent::ApprovalRequested { .. } => "approval_requested",
            FulfilmentEvent::ApprovalGiven { .. } => "approval_given",
            FulfilmentEvent::Approved => "approved",
            FulfilmentEvent::ApprovalRejected { .. } => "approval_rejected",
            FulfilmentEvent::TaskAdded { .. } => "task_added",
            FulfilmentEvent::TaskFinished { .. } => "task_finished",
        }
    }
}

/// A service request's event.
pub type RequestEvent = TypedEvent<ServiceRequest>;

/// A request's approval.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Approval {
    /// Who may approve.
    pub approvers: Vec<PersonId>,
    /// How many approvals are needed.
    pub quorum: u32,
    /// Who approved.
    pub given: Vec<PersonId>,
    /// Whether the quorum was reached.
    pub approved: bool,
    /// Who rejected, if anyone.
    pub rejected_by: Option<PersonId>,
}

/// The state of a service request, derived from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceRequest {
    record: RecordState,
    catalogue_item: Option<String>,
    fulfilment_instructions: Option<String>,
    approval: Option<Approval>,
    tasks: BTreeMap<String, bool>,
}

impl ServiceRequest {
    /// The catalogue item requested.
    pub fn catalogue_item(&self) -> Option<&str> {
        self.catalogue_item.as_deref()
    }
    /// The fulfilment instructions followed.
    pub fn fulfilment_instructions(&self) -> Option<&str> {
        self.fulfilment_instructions.as_deref()
    }
    /// The approval, if one was asked.
    pub fn approval(&self) -> Option<&Approval> {
        self.approval.as_ref()
    }
    /// Fulfilment tasks and whether each finished.
    pub fn tasks(&self) -> &BTreeMap<String, bool> {
        &self.tasks
    }
}

impl RecordKind for ServiceRequest {
    const RECORD_TYPE: RecordType = RecordType::from_static("service_request");
    type Logged = RequestLogged;
    type Own = FulfilmentEvent;

    fn record(&self) -> &RecordState {
        &self.record
    }
}

impl EventSourced for ServiceRequest {
    const CATEGORY: &'static str = "request";
    const SNAPSHOT_VERSION: u32 = 2;
    type Event = RequestEvent;

    fn evolve(&mut self, event: &RequestEvent, stamp: Stamp<'_>) {
        match event {
            TypedEvent::Logged(logged) => {
                self.record.log(&logged.record, stamp);
                self.catalogue_item.clone_from(&logged.catalogue_item);
                self.fulfilment_instructions
                    .clone_from(&logged.fulfilment_instructions);
            }
            TypedEvent::Record(e) => self.record.apply(e, stamp),
            TypedEvent::Own(e) => self.apply_fulfilment(e),
        }
    }
}

impl ServiceRequest {
    fn apply_fulfilment(&mut self, event: &FulfilmentEvent) {
        match event {
            FulfilmentEvent::ApprovalRequested { approvers, quorum } => {
                self.approval = Some(Approval {
                    approvers: approvers.clone(),
                    quorum: *quorum,
                    ..Approval::default()
                });
            }
            FulfilmentEvent::ApprovalGiven { approver } => {
                if let Some(a) = &mut self.approval {
                    a.given.push(approver.clone());
                }
            }
            FulfilmentEvent::Approved => {
                if let Some(a) = &mut self.approval {
                    a.approved = true;
                }
            }
            FulfilmentEvent::ApprovalRejected { approver, .. } => {
                if let Some(a) = &mut self.approval {
                    a.rejected_by = Some(approver.clone());
                }
            }
            FulfilmentEvent::TaskAdded { task, .. } => {
                self.tasks.insert(task.clone(), false);
            }
            FulfilmentEvent::TaskFinished { task } => {
                self.tasks.insert(task.clone(), true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_event_names_are_distinct_from_the_shared_ones() {
        assert_eq!(RequestEvent::name_clash(), None);
    }
}
