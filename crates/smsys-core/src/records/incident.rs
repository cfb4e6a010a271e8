//! Incidents (ISO/IEC 20000-1 8.6.1) as event streams: category `incident`, the shared
//! events, and the major-incident events of their own.

use serde::{Deserialize, Serialize};

use crate::aggregate::{EventSourced, Stamp};
use crate::records::event::Logged;
use crate::records::ids::{PersonId, RecordType};
use crate::records::kind::{OwnEvents, RecordKind, TypedEvent};
use crate::records::state::RecordState;

/// An incident's own events: the major-incident procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum MajorIncidentEvent {
    /// Flagged as a major incident.
    MajorFlagged {
        /// Why: the criterion met, or the reason given by hand.
        reason: String,
    },
    /// The one person responsible for a major incident.
    MajorManagerAssigned {
        /// Who.
        manager: PersonId,
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
}

impl OwnEvents for MajorIncidentEvent {
    const NAMES: &'static [&'static str] = &[
        "major_flagged",
        "major_manager_assigned",
        "management_informed",
        "major_reviewed",
    ];

    fn name(&self) -> &'static str {
        match self {
            MajorIncidentEvent::MajorFlagged { .. } => "major_flagged",
            MajorIncidentEvent::MajorManagerAssigned { .. } => "major_manager_assigned",
            MajorIncidentEvent::ManagementInformed { .. } => "management_informed",
            MajorIncidentEvent::MajorReviewed { .. } => "major_reviewed",
        }
    }
}

/// An incident's event.
pub type IncidentEvent = TypedEvent<Incident>;

/// The major-incident part of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Major {
    /// Why it is major.
    pub reason: String,
    /// The one person responsible.
    pub manager: Option<PersonId>,
    /// How many times management was informed.
    pub management_informed: u32,
    /// Whether the review after the (latest) resolution is recorded.
    pub reviewed: bool,
}

/// The state of an incident, derived from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Incident {
    record: RecordState,
    major: Option<Major>,
}

impl Incident {
    /// The major-incident part, once flagged.
    pub fn major(&self) -> Option<&Major> {
        self.major.as_ref()
    }

    /// Whether it is a major incident.
    pub fn is_major(&self) -> bool {
        self.major.is_some()
    }
}

impl RecordKind for Incident {
    const RECORD_TYPE: RecordType = RecordType::from_static("incident");
    type Logged = Logged;
    type Own = MajorIncidentEvent;

    fn record(&self) -> &RecordState {
        &self.record
    }
}

impl EventSourced for Incident {
    const CATEGORY: &'static str = "incident";
    const SNAPSHOT_VERSION: u32 = 2;
    type Event = IncidentEvent;

    fn evolve(&mut self, event: &IncidentEvent, stamp: Stamp<'_>) {
        match event {
            TypedEvent::Logged(logged) => self.record.log(logged, stamp),
            TypedEvent::Record(e) => {
                // The review follows the final resolution: a major incident that is open again
                // needs it again.
                if self.record.apply_reopening(e, stamp)
                    && let Some(major) = &mut self.major
                {
                    major.reviewed = false;
                }
            }
            TypedEvent::Own(e) => self.apply_major(e),
        }
    }
}

impl Incident {
    fn apply_major(&mut self, event: &MajorIncidentEvent) {
        match event {
            MajorIncidentEvent::MajorFlagged { reason } => {
                self.major = Some(Major {
                    reason: reason.clone(),
                    ..Major::default()
                });
            }
            MajorIncidentEvent::MajorManagerAssigned { manager } => {
                let major = self.major.get_or_insert_with(Major::default);
                major.manager = Some(manager.clone());
            }
            MajorIncidentEvent::ManagementInformed { .. } => {
                self.major
                    .get_or_insert_with(Major::default)
                    .management_informed += 1;
            }
            MajorIncidentEvent::MajorReviewed { .. } => {
                self.major.get_or_insert_with(Major::default).reviewed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_event_names_are_distinct_from_the_shared_ones() {
        assert_eq!(IncidentEvent::name_clash(), None);
    }
}
