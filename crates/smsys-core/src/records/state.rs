//! The part of the state every record has, rebuilt from the logged event and the shared
//! events: what a ticket list shows, the status and its phase, assignment, resolution, links
//! and custom attributes. Record types compose it into their own state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Stamp;
use crate::event::Actor;
use crate::records::attribute::{AttributeName, AttributeValue, Attributes};
use crate::records::detail::{Channel, TransitionDetail};
use crate::records::event::{Logged, RecordEvent};
use crate::records::ids::{CiId, GroupId, LinkKind, PersonId, Reference, ServiceId};
use crate::records::phase::{DefinitionRef, Level, Phase, Priority};

/// A recorded resolution: code, notes, who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The resolution code (empty when the lifecycle did not require one).
    pub code: String,
    /// What was done (empty when the lifecycle did not require notes).
    pub notes: String,
    /// Who resolved it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The shared part of a record's state. Getters only: it changes through events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordState {
    reference: Option<Reference>,
    lifecycle: Option<DefinitionRef>,
    status: Option<String>,
    phase: Option<Phase>,
    caller: Option<PersonId>,
    channel: Option<Channel>,
    service: Option<ServiceId>,
    affected_cis: Vec<CiId>,
    summary: String,
    description: String,
    logged_at: Option<DateTime<Utc>>,
    logged_by: Option<Actor>,
    category: Option<String>,
    subcategory: Option<String>,
    impact: Option<Level>,
    urgency: Option<Level>,
    priority: Option<Priority>,
    priority_overridden: bool,
    group: Option<GroupId>,
    person: Option<PersonId>,
    hold_reason: Option<String>,
    resolution: Option<Resolution>,
    closed_at: Option<DateTime<Utc>>,
    reopen_count: u32,
    links: Vec<(LinkKind, String)>,
    escalations: u32,
    notes: u32,
    attributes: Attributes,
}

impl RecordState {
    /// Applies the logged event's shared fields.
    pub fn log(&mut self, logged: &Logged, stamp: Stamp<'_>) {
        self.reference = Some(logged.reference.clone());
        self.lifecycle = Some(logged.lifecycle.clone());
        self.status = Some(logged.status.clone());
        self.phase = Some(Phase::New);
        self.caller = Some(logged.caller.clone());
        self.channel = Some(logged.channel);
        self.service = Some(logged.service.clone());
        self.affected_cis.clone_from(&logged.affected_cis);
        self.summary.clone_from(&logged.summary);
        self.description.clone_from(&logged.description);
        self.attributes.clone_from(&logged.attributes);
        self.logged_at = Some(stamp.at());
        self.logged_by = stamp.actor().cloned();
    }

    /// Applies a shared event, and tells whether it reopened the record (from resolved back to
    /// an open phase): what a record type's own state forgets on a reopen, it forgets then.
    pub fn apply_reopening(&mut self, event: &RecordEvent, stamp: Stamp<'_>) -> bool {
        let before = self.phase();
        self.apply(event, stamp);
        before == Some(Phase::Resolved) && self.phase().is_some_and(Phase::is_open)
    }

    /// Applies a shared event. Total: recorded events are facts.
    pub fn apply(&mut self, event: &RecordEvent, stamp: Stamp<'_>) {
        match event {
            RecordEvent::Classified {
                category,
                subcategory,
            } => {
                self.category = Some(category.clone());
                self.subcategory.clone_from(subcategory);
            }
            RecordEvent::Prioritised {
                impact,
                urgency,
                priority,
                ..
            } => {
                self.impact = Some(*impact);
                self.urgency = Some(*urgency);
                self.priority = Some(*priority);
                self.priority_overridden = false;
            }
            RecordEvent::PriorityOverridden { priority, .. } => {
                self.priority = Some(*priority);
                self.priority_overridden = true;
            }
            RecordEvent::Assigned { group, person, .. } => {
                self.group = Some(group.clone());
                self.person.clone_from(person);
            }
            RecordEvent::Unassigned { .. } => {
                self.group = None;
                self.person = None;
            }
            RecordEvent::Transitioned {
                to,
                phase,
                detail,
                at,
                ..
            } => self.transition(to, *phase, detail, *at, stamp),
            RecordEvent::Noted { .. } => self.notes += 1,
            RecordEvent::Escalated { .. } => self.escalations += 1,
            RecordEvent::Linked { kind, target } => self.links.push((kind.clone(), target.clone())),
            RecordEvent::Unlinked { kind, target } => {
                self.links.retain(|(k, t)| !(k == kind && t == target));
            }
            RecordEvent::AttributeSet { name, value } => {
                self.attributes.insert(name.clone(), value.clone());
            }
            RecordEvent::AttributeRemoved { name } => {
                self.attributes.remove(name);
            }
            // SLA events are read by the SLA projections, not by the record's own rules.
            RecordEvent::SlaThresholdReached { .. } | RecordEvent::SlaBreached { .. } => {}
            RecordEvent::LifecycleMigrated { to, to_status, .. } => {
                self.lifecycle = Some(to.clone());
                self.status = Some(to_status.clone());
            }
        }
    }

    fn transition(
        &mut self,
        to: &str,
        phase: Phase,
        detail: &TransitionDetail,
        at: DateTime<Utc>,
        stamp: Stamp<'_>,
    ) {
        // Leaving resolved for an open phase (a reopen, or a hold the lifecycle allows from
        // resolved) undoes the resolution: the record is open again.
        if self.phase == Some(Phase::Resolved) && phase.is_open() {
            self.resolution = None;
        }
        self.status = Some(to.to_owned());
        self.phase = Some(phase);
        self.hold_reason = None;
        if phase.is_final() {
            self.closed_at = Some(at);
        }
        match detail {
            TransitionDetail::Hold { reason } => self.hold_reason = Some(reason.clone()),
            TransitionDetail::Resolution { code, notes } => {
                self.resolution = Some(Resolution {
                    code: code.clone(),
                    notes: notes.clone(),
                    by: stamp.actor().cloned(),
                    at,
                });
            }
            TransitionDetail::Reopen { count, .. } => self.reopen_count = *count,
            TransitionDetail::Plain
            | TransitionDetail::Resume { .. }
            | TransitionDetail::Closure { .. }
            | TransitionDetail::Cancellation { .. } => {}
        }
    }

    /// Whether it has been logged.
    pub fn is_logged(&self) -> bool {
        self.lifecycle.is_some()
    }
    /// The human reference.
    pub fn reference(&self) -> Option<&Reference> {
        self.reference.as_ref()
    }
    /// The lifecycle followed.
    pub fn lifecycle(&self) -> Option<&DefinitionRef> {
        self.lifecycle.as_ref()
    }
    /// The current status.
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }
    /// The phase of the current status.
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }
    /// Who reported it.
    pub fn caller(&self) -> Option<&PersonId> {
        self.caller.as_ref()
    }
    /// How it arrived.
    pub fn channel(&self) -> Option<Channel> {
        self.channel
    }
    /// The service.
    pub fn service(&self) -> Option<&ServiceId> {
        self.service.as_ref()
    }
    /// Affected configuration items.
    pub fn affected_cis(&self) -> &[CiId] {
        &self.affected_cis
    }
    /// Short description.
    pub fn summary(&self) -> &str {
        &self.summary
    }
    /// Full description.
    pub fn description(&self) -> &str {
        &self.description
    }
    /// When it was logged.
    pub fn logged_at(&self) -> Option<DateTime<Utc>> {
        self.logged_at
    }
    /// Who logged it.
    pub fn logged_by(&self) -> Option<&Actor> {
        self.logged_by.as_ref()
    }
    /// The category.
    pub fn category(&self) -> Option<&str> {
        self.category.as_deref()
    }
    /// The subcategory.
    pub fn subcategory(&self) -> Option<&str> {
        self.subcategory.as_deref()
    }
    /// Impact and urgency, once prioritised from the matrix.
    pub fn impact_urgency(&self) -> Option<(Level, Level)> {
        self.impact.zip(self.urgency)
    }
    /// The priority.
    pub fn priority(&self) -> Option<Priority> {
        self.priority
    }
    /// Whether the priority was set by hand.
    pub fn priority_overridden(&self) -> bool {
        self.priority_overridden
    }
    /// The assignment group.
    pub fn group(&self) -> Option<&GroupId> {
        self.group.as_ref()
    }
    /// The assigned person.
    pub fn person(&self) -> Option<&PersonId> {
        self.person.as_ref()
    }
    /// Why it is on hold, while pending.
    pub fn hold_reason(&self) -> Option<&str> {
        self.hold_reason.as_deref()
    }
    /// The resolution, while resolved or closed after one.
    pub fn resolution(&self) -> Option<&Resolution> {
        self.resolution.as_ref()
    }
    /// When it was closed or cancelled.
    pub fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.closed_at
    }
    /// How many times it was reopened.
    pub fn reopen_count(&self) -> u32 {
        self.reopen_count
    }
    /// Links.
    pub fn links(&self) -> &[(LinkKind, String)] {
        &self.links
    }
    /// Number of escalations.
    pub fn escalations(&self) -> u32 {
        self.escalations
    }
    /// Number of notes.
    pub fn notes(&self) -> u32 {
        self.notes
    }
    /// Custom attributes.
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }
    /// One custom attribute.
    pub fn attribute(&self, name: &AttributeName) -> Option<&AttributeValue> {
        self.attributes.get(name)
    }
}
