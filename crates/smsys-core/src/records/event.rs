//! The events every record type shares (classification, priority, assignment, status changes,
//! notes, links, attributes, SLA thresholds, lifecycle migration) and the logged event's shared
//! fields.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::records::attribute::{AttributeName, AttributeValue, Attributes};
use crate::records::detail::{Channel, Escalation, NoteKind, TransitionDetail};
use crate::records::ids::{CiId, GroupId, LinkKind, PersonId, Reference, ServiceId};
use crate::records::phase::{DefinitionRef, Level, Phase, Priority};

/// What every record's `logged` event holds: a record type's own logged payload contains these
/// fields (flattened) plus its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    /// The human reference, e.g. `INC-0042`; the stream is named after it.
    pub reference: Reference,
    /// The lifecycle it follows.
    pub lifecycle: DefinitionRef,
    /// Its first status.
    pub status: String,
    /// Who reported it (for requests: the requester).
    pub caller: PersonId,
    /// How it arrived.
    pub channel: Channel,
    /// The affected or requested service.
    pub service: ServiceId,
    /// Affected configuration items.
    pub affected_cis: Vec<CiId>,
    /// Short description.
    pub summary: String,
    /// Full description.
    pub description: String,
    /// Custom attributes given when it was logged (schema version 2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: Attributes,
}

impl Logged {
    /// Schema version of the logged payload: 2 added `attributes` and made the reference,
    /// people, service and CIs validated ids.
    pub const SCHEMA_VERSION: u32 = 2;
}

/// One event that any record type may record, stored as `<category>.<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum RecordEvent {
    /// Classified into a category (and subcategory, from schema version 2).
    Classified {
        /// The category.
        category: String,
        /// The subcategory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subcategory: Option<String>,
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
        group: GroupId,
        /// The person, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<PersonId>,
        /// Whether it was assigned before.
        reassignment: bool,
    },
    /// The assignment (group and person) was cleared.
    Unassigned {
        /// Why.
        reason: String,
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
    /// A link was removed.
    Unlinked {
        /// What kind of target.
        kind: LinkKind,
        /// Its id.
        target: String,
    },
    /// A custom attribute was set.
    AttributeSet {
        /// Which.
        name: AttributeName,
        /// Its new value.
        value: AttributeValue,
    },
    /// A custom attribute was removed.
    AttributeRemoved {
        /// Which.
        name: AttributeName,
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
            RecordEvent::Classified { .. } => "classified",
            RecordEvent::Prioritised { .. } => "prioritised",
            RecordEvent::PriorityOverridden { .. } => "priority_overridden",
            RecordEvent::Assigned { .. } => "assigned",
            RecordEvent::Unassigned { .. } => "unassigned",
            RecordEvent::Transitioned { .. } => "transitioned",
            RecordEvent::Noted { .. } => "noted",
            RecordEvent::Escalated { .. } => "escalated",
            RecordEvent::Linked { .. } => "linked",
            RecordEvent::Unlinked { .. } => "unlinked",
            RecordEvent::AttributeSet { .. } => "attribute_set",
            RecordEvent::AttributeRemoved { .. } => "attribute_removed",
            RecordEvent::SlaThresholdReached { .. } => "sla_threshold_reached",
            RecordEvent::SlaBreached { .. } => "sla_breached",
            RecordEvent::LifecycleMigrated { .. } => "lifecycle_migrated",
        }
    }

    /// Every name, as [`RecordEvent::name`] gives them.
    pub const NAMES: &'static [&'static str] = &[
        "classified",
        "prioritised",
        "priority_overridden",
        "assigned",
        "unassigned",
        "transitioned",
        "noted",
        "escalated",
        "linked",
        "unlinked",
        "attribute_set",
        "attribute_removed",
        "sla_threshold_reached",
        "sla_breached",
        "lifecycle_migrated",
    ];

    /// The current schema version of this event's type: `classified` is at 2 (it added
    /// `subcategory`), `assigned` and `escalated` at 2 (people are validated ids: a blank
    /// person or manager is absent), the others at 1. [`upcasters_for`] lifts version 1.
    ///
    /// [`upcasters_for`]: crate::records::upcasters_for
    pub fn schema_version(&self) -> u32 {
        match self {
            RecordEvent::Classified { .. }
            | RecordEvent::Assigned { .. }
            | RecordEvent::Escalated { .. } => 2,
            RecordEvent::Prioritised { .. }
            | RecordEvent::PriorityOverridden { .. }
            | RecordEvent::Unassigned { .. }
            | RecordEvent::Transitioned { .. }
            | RecordEvent::Noted { .. }
            | RecordEvent::Linked { .. }
            | RecordEvent::Unlinked { .. }
            | RecordEvent::AttributeSet { .. }
            | RecordEvent::AttributeRemoved { .. }
            | RecordEvent::SlaThresholdReached { .. }
            | RecordEvent::SlaBreached { .. }
            | RecordEvent::LifecycleMigrated { .. } => 1,
        }
    }
}
