//! What can be asked of any record: the shared commands, and the input of logging one.

use std::collections::BTreeMap;

use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, Channel, CiId, DefinitionRef, Escalation, Level,
    LinkKind, NoteKind, PersonId, Priority, Reference, ServiceId,
};

/// What every record is logged with. A record type's log command adds its own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The human reference, e.g. `INC-0042`; it names the stream.
    pub reference: Reference,
    /// Who reported it.
    pub caller: PersonId,
    /// How it arrived.
    pub channel: Channel,
    /// The affected or requested service.
    pub service: ServiceId,
    /// Affected configuration items.
    pub affected_cis: Vec<CiId>,
    /// Short description (required).
    pub summary: String,
    /// Full description.
    pub description: String,
    /// Custom attributes, checked against the policy's attribute schema.
    pub attributes: Attributes,
}

impl LogRecord {
    /// A record logged by `caller` through `channel` for `service`, with `summary`; no affected
    /// CIs, description or attributes.
    pub fn new(
        reference: Reference,
        caller: PersonId,
        channel: Channel,
        service: ServiceId,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            reference,
            caller,
            channel,
            service,
            affected_cis: Vec::new(),
            summary: summary.into(),
            description: String::new(),
            attributes: Attributes::new(),
        }
    }

    /// With a description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// With affected configuration items.
    pub fn affected_cis(mut self, cis: Vec<CiId>) -> Self {
        self.affected_cis = cis;
        self
    }

    /// With a custom attribute.
    pub fn attribute(mut self, name: AttributeName, value: impl Into<AttributeValue>) -> Self {
        self.attributes.insert(name, value.into());
        self
    }
}

/// A command every record type accepts. Each record type's own command enum wraps it, and
/// converts from it (`RecordCommand::Close.into()`).
#[derive(Debug, Clone, PartialEq)]
pub enum RecordCommand {
    /// Classify.
    Classify {
        /// The category.
        category: String,
        /// The subcategory.
        subcategory: Option<String>,
    },
    /// Set impact and urgency; the priority follows from the matrix.
    Prioritise {
        /// Impact.
        impact: Level,
        /// Urgency.
        urgency: Level,
    },
    /// Set the priority by hand.
    OverridePriority {
        /// The priority.
        priority: Priority,
        /// Why.
        reason: String,
    },
    /// Assign or reassign. Assigning a new record also starts work where the lifecycle says so.
    Assign {
        /// The group.
        group: smsys_core::records::GroupId,
        /// The person.
        person: Option<PersonId>,
    },
    /// Clear the assignment (group and person).
    Unassign {
        /// Why (may be empty).
        reason: String,
    },
    /// Start work: the lifecycle's start transition, for lifecycles where assignment does not
    /// start work by itself.
    Start,
    /// Put on hold (or change the reason of a hold, where the lifecycle allows it).
    Hold {
        /// Why.
        reason: String,
        /// Which pending status, when the lifecycle offers several.
        status: Option<String>,
    },
    /// Resume work.
    Resume,
    /// Add a note. A caller update on a pending record returns it to work where the lifecycle
    /// says so.
    AddNote {
        /// Which kind.
        kind: NoteKind,
        /// The text.
        text: String,
    },
    /// Escalate. A functional escalation also reassigns to the group.
    Escalate {
        /// Where.
        escalation: Escalation,
        /// Why.
        reason: String,
    },
    /// Resolve (requests: fulfil). Which of code and notes are required is lifecycle data.
    Resolve {
        /// Resolution code.
        code: String,
        /// What was done.
        notes: String,
    },
    /// Reopen a resolved record.
    Reopen {
        /// Why.
        reason: String,
    },
    /// Close (the caller confirmed).
    Close,
    /// Close a resolved record once the auto-close period has passed.
    AutoClose,
    /// Cancel an open record.
    Cancel {
        /// Why (duplicate of ..., not an incident, ...).
        reason: String,
    },
    /// Link to another record or a configuration item.
    Link {
        /// What kind.
        kind: LinkKind,
        /// Its id.
        target: String,
    },
    /// Remove a link.
    Unlink {
        /// What kind.
        kind: LinkKind,
        /// Its id.
        target: String,
    },
    /// Set a custom attribute (checked against the policy's attribute schema).
    SetAttribute {
        /// Which.
        name: AttributeName,
        /// Its value.
        value: AttributeValue,
    },
    /// Remove a custom attribute.
    RemoveAttribute {
        /// Which.
        name: AttributeName,
    },
    /// Move the record to another lifecycle version with an explicit status mapping.
    MigrateLifecycle {
        /// The lifecycle to move to.
        to: DefinitionRef,
        /// Old status -> new status; must map the record's current status to one of the same
        /// phase.
        mapping: BTreeMap<String, String>,
    },
}

impl RecordCommand {
    /// The command's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            RecordCommand::Classify { .. } => "classify",
            RecordCommand::Prioritise { .. } => "prioritise",
            RecordCommand::OverridePriority { .. } => "override priority",
            RecordCommand::Assign { .. } => "assign",
            RecordCommand::Unassign { .. } => "unassign",
            RecordCommand::Start => "start",
            RecordCommand::Hold { .. } => "hold",
            RecordCommand::Resume => "resume",
            RecordCommand::AddNote { .. } => "add note",
            RecordCommand::Escalate { .. } => "escalate",
            RecordCommand::Resolve { .. } => "resolve",
            RecordCommand::Reopen { .. } => "reopen",
            RecordCommand::Close => "close",
            RecordCommand::AutoClose => "auto-close",
            RecordCommand::Cancel { .. } => "cancel",
            RecordCommand::Link { .. } => "link",
            RecordCommand::Unlink { .. } => "unlink",
            RecordCommand::SetAttribute { .. } => "set attribute",
            RecordCommand::RemoveAttribute { .. } => "remove attribute",
            RecordCommand::MigrateLifecycle { .. } => "migrate lifecycle",
        }
    }
}
