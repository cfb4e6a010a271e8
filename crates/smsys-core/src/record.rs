//! Service-desk records (incidents, ISO/IEC 20000-1 8.6.1; service requests, 8.6.2) as events.
//!
//! The events are the persisted contract; the rules that decide them live in
//! `smsys-processes`, which reads lifecycles as data. Both record types share one event
//! vocabulary; an event's stable type name is `<category>.<event>`, e.g. `incident.logged` or
//! `request.approval_given`, and every payload is at schema version 1.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aggregate::{DecodeError, DomainEvent};
use crate::event::EventType;

/// The record types of the service desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordType {
    /// An unplanned interruption or reduction in quality of a service (8.6.1).
    Incident,
    /// A request for information, advice, access or a standard change (8.6.2).
    ServiceRequest,
}

impl RecordType {
    /// The stream category of records of this type.
    pub const fn category(self) -> &'static str {
        match self {
            RecordType::Incident => "incident",
            RecordType::ServiceRequest => "request",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordType::Incident => "incident",
            RecordType::ServiceRequest => "service request",
        })
    }
}

/// The engine-known meaning of a status, whatever a product names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Recorded, not yet worked on.
    New,
    /// Being worked on.
    Active,
    /// Waiting on someone else; SLA clocks may pause.
    Pending,
    /// Resolved (or fulfilled), awaiting confirmation.
    Resolved,
    /// Closed: final.
    Closed,
    /// Cancelled: final.
    Cancelled,
}

impl Phase {
    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 6] = [
        Phase::New,
        Phase::Active,
        Phase::Pending,
        Phase::Resolved,
        Phase::Closed,
        Phase::Cancelled,
    ];

    /// Whether nothing can follow (closed or cancelled).
    pub const fn is_final(self) -> bool {
        matches!(self, Phase::Closed | Phase::Cancelled)
    }

    /// The name used in definitions and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::Active => "active",
            Phase::Pending => "pending",
            Phase::Resolved => "resolved",
            Phase::Closed => "closed",
            Phase::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A versioned definition (a lifecycle, an SLA, a calendar) by name and version: what a record
/// says it followed, so that editing a definition never silently rewrites history.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DefinitionRef {
    /// The lifecycle's name.
    pub name: String,
    /// Its version.
    pub version: u32,
}

impl fmt::Display for DefinitionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.name, self.version)
    }
}

/// Impact or urgency on the reference 1 (high) to 3 (low) scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 1.
    High,
    /// 2.
    Medium,
    /// 3.
    Low,
}

impl Level {
    /// Every level, highest first.
    pub const ALL: [Level; 3] = [Level::High, Level::Medium, Level::Low];

    /// 1, 2 or 3.
    pub const fn rank(self) -> u8 {
        match self {
            Level::High => 1,
            Level::Medium => 2,
            Level::Low => 3,
        }
    }
}

/// A priority, 1 (highest) to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Priority(u8);

/// A priority outside 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("priority must be 1 (highest) to 5, found {0}")]
pub struct PriorityError(pub u8);

impl Priority {
    /// Validates a priority.
    pub const fn new(value: u8) -> Result<Self, PriorityError> {
        if value >= 1 && value <= 5 {
            Ok(Self(value))
        } else {
            Err(PriorityError(value))
        }
    }

    /// 1 to 5.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Priority {
    type Error = PriorityError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Priority> for u8 {
    fn from(value: Priority) -> Self {
        value.0
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

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

/// What a record is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// A problem record.
    Problem,
    /// A change record.
    Change,
    /// A configuration item.
    ConfigurationItem,
    /// The parent incident (for child incidents).
    ParentIncident,
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
        to_group: String,
    },
    /// To a manager.
    Hierarchical {
        /// The manager escalated to.
        to_manager: String,
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

/// One event of a service-desk record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum RecordEvent {
    /// The record was logged (recorded) under a lifecycle.
    Logged {
        /// The human reference, e.g. `INC-0042`.
        reference: String,
        /// The lifecycle it follows.
        lifecycle: DefinitionRef,
        /// Its first status.
        status: String,
        /// Who reported it (for requests: the requester).
        caller: String,
        /// How it arrived.
        channel: Channel,
        /// The affected or requested service.
        service: String,
        /// Affected configuration items.
        affected_cis: Vec<String>,
        /// Short description.
        summary: String,
        /// Full description.
        description: String,
        /// For requests: the catalogue item requested.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        catalogue_item: Option<String>,
        /// For requests: the fulfilment instructions followed (a reference).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fulfilment_instructions: Option<String>,
    },
    /// Classified into a category.
    Classified {
        /// The category.
        category: String,
    },
    /// Impact and urgency set, with the priority that follows.
    Prioritised {
        /// Impact.
        impact: Level,
        /// Urgency.
        urgency: Level,
        /// The priority the matrix gives.
        priority: Priority,
        /// Version of the matrix used.
        matrix_version: u32,
    },
    /// The priority set by hand, against the matrix.
    PriorityOverridden {
        /// The new priority.
        priority: Priority,
        /// Why.
        reason: String,
    },
    /// Assigned (or reassigned) to a group and, optionally, a person.
    Assigned {
        /// The support group.
        group: String,
        /// The person, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<String>,
        /// Whether it was assigned before.
        reassignment: bool,
    },
    /// The status changed along a lifecycle transition.
    Transitioned {
        /// The transition taken.
        transition: String,
        /// The status before.
        from: String,
        /// The status after.
        to: String,
        /// The phase after.
        phase: Phase,
        /// What the engine records about the move.
        detail: TransitionDetail,
        /// When (the decision's instant; SLA clocks and auto-close read it).
        at: DateTime<Utc>,
    },
    /// A note was added.
    Noted {
        /// Which kind.
        kind: NoteKind,
        /// The text.
        text: String,
    },
    /// Escalated.
    Escalated {
        /// Where to.
        escalation: Escalation,
        /// Why.
        reason: String,
    },
    /// Linked to another record or a configuration item.
    Linked {
        /// What kind of target.
        kind: LinkKind,
        /// Its id.
        target: String,
    },
    /// Flagged as a major incident.
    MajorFlagged {
        /// Why: the criterion met, or the reason given by hand.
        reason: String,
    },
    /// The one person responsible for a major incident.
    MajorManagerAssigned {
        /// Who.
        manager: String,
    },
    /// Top management informed about a major incident.
    ManagementInformed {
        /// Who was informed.
        audience: String,
        /// What they were told.
        summary: String,
    },
    /// The review of a major incident after its resolution.
    MajorReviewed {
        /// What the review found.
        findings: String,
    },
    /// Approval of a request asked of approvers.
    ApprovalRequested {
        /// Who may approve.
        approvers: Vec<String>,
        /// How many approvals are needed.
        quorum: u32,
    },
    /// One approver approved.
    ApprovalGiven {
        /// Who.
        approver: String,
    },
    /// The request was approved (quorum reached).
    Approved,
    /// An approver rejected the request.
    ApprovalRejected {
        /// Who.
        approver: String,
        /// Why.
        reason: String,
    },
    /// A fulfilment task was added to a request.
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
    /// An SLA timer reached a warning threshold. Appended by the SLA scheduler with an event id
    /// derived from (record, timer, cycle, threshold), so it is recorded exactly once.
    SlaThresholdReached {
        /// The timer's name (e.g. `resolution`).
        timer: String,
        /// The SLA definition version the timer bound to.
        sla: DefinitionRef,
        /// The timer's cycle (1 for the first; a reopen may start another).
        cycle: u32,
        /// The threshold, in basis points of the target (5000 = 50 %).
        threshold_bp: u32,
        /// The instant the threshold was reached.
        at: DateTime<Utc>,
    },
    /// An SLA timer reached 100 % of its target.
    SlaBreached {
        /// The timer's name.
        timer: String,
        /// The SLA definition version the timer bound to.
        sla: DefinitionRef,
        /// The timer's cycle.
        cycle: u32,
        /// The instant the target was reached (the due instant).
        at: DateTime<Utc>,
    },
    /// The record moved to another lifecycle version, statuses mapped explicitly.
    LifecycleMigrated {
        /// The lifecycle before.
        from: DefinitionRef,
        /// The lifecycle after.
        to: DefinitionRef,
        /// The status before.
        from_status: String,
        /// The status after.
        to_status: String,
        /// The whole mapping applied (old status to new status), for the audit trail.
        mapping: BTreeMap<String, String>,
    },
}

impl RecordEvent {
    /// The event's name within its record type (the part after `<category>.`).
    pub fn name(&self) -> &'static str {
        match self {
            RecordEvent::Logged { .. } => "logged",
            RecordEvent::Classified { .. } => "classified",
            RecordEvent::Prioritised { .. } => "prioritised",
            RecordEvent::PriorityOverridden { .. } => "priority_overridden",
            RecordEvent::Assigned { .. } => "assigned",
            RecordEvent::Transitioned { .. } => "transitioned",
            RecordEvent::Noted { .. } => "noted",
            RecordEvent::Escalated { .. } => "escalated",
            RecordEvent::Linked { .. } => "linked",
            RecordEvent::MajorFlagged { .. } => "major_flagged",
            RecordEvent::MajorManagerAssigned { .. } => "major_manager_assigned",
            RecordEvent::ManagementInformed { .. } => "management_informed",
            RecordEvent::MajorReviewed { .. } => "major_reviewed",
            RecordEvent::ApprovalRequested { .. } => "approval_requested",
            RecordEvent::ApprovalGiven { .. } => "approval_given",
            RecordEvent::Approved => "approved",
            RecordEvent::ApprovalRejected { .. } => "approval_rejected",
            RecordEvent::TaskAdded { .. } => "task_added",
            RecordEvent::TaskFinished { .. } => "task_finished",
            RecordEvent::SlaThresholdReached { .. } => "sla_threshold_reached",
            RecordEvent::SlaBreached { .. } => "sla_breached",
            RecordEvent::LifecycleMigrated { .. } => "lifecycle_migrated",
        }
    }
}

/// A [`RecordEvent`] of a given record type: what is stored (the type fixes the event type's
/// `<category>.` prefix).
#[derive(Debug, Clone, PartialEq)]
pub struct TypedRecordEvent {
    /// The record type.
    pub record_type: RecordType,
    /// The event.
    pub event: RecordEvent,
}

impl DomainEvent for TypedRecordEvent {
    fn event_type(&self) -> EventType {
        let name = format!("{}.{}", self.record_type.category(), self.event.name());
        // Categories and names are constants of this module, all valid event type characters.
        EventType::new(name).unwrap_or_else(|_| unreachable!("record event types are valid"))
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Result<Value, serde_json::Error> {
        let mut tagged = serde_json::to_value(&self.event)?;
        Ok(tagged
            .get_mut("data")
            .map(Value::take)
            .unwrap_or_else(|| Value::Object(serde_json::Map::new())))
    }

    fn from_payload(event_type: &EventType, payload: Value) -> Result<Self, DecodeError> {
        let unknown = || DecodeError::UnknownType(event_type.clone());
        let (category, name) = event_type.as_str().split_once('.').ok_or_else(unknown)?;
        let record_type = [RecordType::Incident, RecordType::ServiceRequest]
            .into_iter()
            .find(|t| t.category() == category)
            .ok_or_else(unknown)?;
        let unit = payload.as_object().is_some_and(serde_json::Map::is_empty);
        let tagged = if unit {
            serde_json::json!({ "event": name })
        } else {
            serde_json::json!({ "event": name, "data": payload })
        };
        let event = serde_json::from_value(tagged).or_else(|first| {
            // A struct variant whose fields all default can also be stored as `{}`.
            if unit {
                serde_json::from_value(serde_json::json!({ "event": name, "data": {} }))
                    .map_err(|_| first)
            } else {
                Err(first)
            }
        });
        let event = event.map_err(|source| {
            if source.to_string().starts_with("unknown variant") {
                unknown()
            } else {
                DecodeError::Payload {
                    event_type: event_type.clone(),
                    source,
                }
            }
        })?;
        Ok(Self { record_type, event })
    }
}
