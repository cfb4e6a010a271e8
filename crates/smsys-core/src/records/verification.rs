//! CMDB verifications (ISO/IEC 20000-1 8.2.6, "accuracy verified at planned intervals") as
//! event streams: category `cmdb_verification`, one stream per verification. A verification
//! compares a discovered inventory with the recorded CIs and records what it found: each
//! discrepancy as an event, and the accuracy (CIs matching out of CIs checked).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aggregate::{DecodeError, DomainEvent, EventSourced, Stamp};
use crate::event::EventType;
use crate::records::attribute::{AttributeName, AttributeValue};
use crate::records::ids::{CiId, CiType, Reference};
use crate::records::kind::{event_type, from_tagged, name_in, tagged_payload};
use crate::stream::{Category, IdError, StreamId};

/// How a CI found differs from the CMDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Discrepancy {
    /// Discovered, but not recorded in the CMDB.
    NotRecorded {
        /// The type discovery gave it.
        discovered_type: CiType,
    },
    /// Recorded (and not retired), but not discovered.
    NotDiscovered,
    /// Recorded under another type.
    TypeDiffers {
        /// The recorded type.
        recorded: CiType,
        /// The discovered type.
        discovered: CiType,
    },
    /// Recorded in another status.
    StatusDiffers {
        /// The recorded status.
        recorded: String,
        /// The discovered status.
        discovered: String,
    },
    /// An attribute discovery reports has another value in the CMDB, or none.
    AttributeDiffers {
        /// Which attribute.
        name: AttributeName,
        /// The recorded value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recorded: Option<AttributeValue>,
        /// The discovered value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        discovered: Option<AttributeValue>,
    },
}

/// A verification's event, stored as `cmdb_verification.<name>`, each at schema version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum VerificationEvent {
    /// The verification began: where the inventory came from, which CI types it covers (none:
    /// all), how many CIs it holds.
    Started {
        /// The verification's reference.
        reference: Reference,
        /// The inventory's source (a discovery tool, a scan).
        source: String,
        /// The CI types verified (empty: every type).
        #[serde(default)]
        scope: Vec<CiType>,
        /// How many CIs the inventory holds.
        discovered: u32,
    },
    /// A CI differs from the CMDB.
    DiscrepancyFound {
        /// The CI.
        ci: CiId,
        /// How.
        discrepancy: Discrepancy,
    },
    /// The verification ended.
    Completed {
        /// CIs checked: recorded in scope, discovered, or both.
        checked: u32,
        /// CIs with no discrepancy.
        matching: u32,
    },
}

impl VerificationEvent {
    /// Every event's name (after `cmdb_verification.`).
    pub const NAMES: &'static [&'static str] = &["started", "discrepancy_found", "completed"];

    /// The event's name.
    pub fn name(&self) -> &'static str {
        match self {
            VerificationEvent::Started { .. } => "started",
            VerificationEvent::DiscrepancyFound { .. } => "discrepancy_found",
            VerificationEvent::Completed { .. } => "completed",
        }
    }
}

impl DomainEvent for VerificationEvent {
    fn event_type(&self) -> EventType {
        event_type(CmdbVerification::CATEGORY, self.name())
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Result<Value, serde_json::Error> {
        tagged_payload(self)
    }

    fn from_payload(event_type: &EventType, payload: Value) -> Result<Self, DecodeError> {
        match name_in(CmdbVerification::CATEGORY, event_type) {
            Some(name) if VerificationEvent::NAMES.contains(&name) => {
                from_tagged(event_type, name, payload)
            }
            Some(_) | None => Err(DecodeError::UnknownType(event_type.clone())),
        }
    }
}

/// A verification's state, derived from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CmdbVerification {
    reference: Option<Reference>,
    source: String,
    scope: Vec<CiType>,
    discovered: u32,
    discrepancies: Vec<(CiId, Discrepancy)>,
    outcome: Option<(u32, u32)>,
    at: Option<chrono::DateTime<chrono::Utc>>,
}

impl CmdbVerification {
    /// The stream of verification `reference`: `cmdb_verification-<reference>`.
    pub fn stream(reference: &Reference) -> Result<StreamId, IdError> {
        StreamId::new(&Category::new(Self::CATEGORY)?, reference.as_str())
    }

    /// Its reference, once started.
    pub fn reference(&self) -> Option<&Reference> {
        self.reference.as_ref()
    }
    /// Whether it started.
    pub fn is_started(&self) -> bool {
        self.reference.is_some()
    }
    /// The inventory's source.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The CI types verified (empty: every type).
    pub fn scope(&self) -> &[CiType] {
        &self.scope
    }
    /// How many CIs the inventory held.
    pub fn discovered(&self) -> u32 {
        self.discovered
    }
    /// The discrepancies found, in the order recorded.
    pub fn discrepancies(&self) -> &[(CiId, Discrepancy)] {
        &self.discrepancies
    }
    /// CIs checked and CIs matching, once completed.
    pub fn outcome(&self) -> Option<(u32, u32)> {
        self.outcome
    }
    /// The share of checked CIs that match, from 0 to 1, once completed (1 when nothing was
    /// checked).
    pub fn accuracy(&self) -> Option<f64> {
        self.outcome.map(|(checked, matching)| {
            if checked == 0 {
                1.0
            } else {
                f64::from(matching) / f64::from(checked)
            }
        })
    }
    /// When it was recorded.
    pub fn at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.at
    }
}

impl EventSourced for CmdbVerification {
    const CATEGORY: &'static str = "cmdb_verification";
    type Event = VerificationEvent;

    fn evolve(&mut self, event: &VerificationEvent, stamp: Stamp<'_>) {
        match event {
            VerificationEvent::Started {
                reference,
                source,
                scope,
                discovered,
            } => {
                self.reference = Some(reference.clone());
                self.source.clone_from(source);
                self.scope.clone_from(scope);
                self.discovered = *discovered;
                self.at = Some(stamp.at());
            }
            VerificationEvent::DiscrepancyFound { ci, discrepancy } => {
                self.discrepancies.push((ci.clone(), discrepancy.clone()));
            }
            VerificationEvent::Completed { checked, matching } => {
                self.outcome = Some((*checked, *matching));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips_and_folds() {
        let ci = |id: &str| CiId::new(id).unwrap_or_else(|e| unreachable!("{e}"));
        let name = AttributeName::new("ram_gb").unwrap_or_else(|e| unreachable!("{e}"));
        let events = vec![
            VerificationEvent::Started {
                reference: Reference::new("VER-1").unwrap_or_else(|e| unreachable!("{e}")),
                source: "nightly scan".into(),
                scope: vec![CiType::from_static("server")],
                discovered: 3,
            },
            VerificationEvent::DiscrepancyFound {
                ci: ci("srv-09"),
                discrepancy: Discrepancy::NotRecorded {
                    discovered_type: CiType::from_static("server"),
                },
            },
            VerificationEvent::DiscrepancyFound {
                ci: ci("srv-02"),
                discrepancy: Discrepancy::AttributeDiffers {
                    name,
                    recorded: Some("32".into()),
                    discovered: Some("64".into()),
                },
            },
            VerificationEvent::Completed {
                checked: 4,
                matching: 2,
            },
        ];
        let mut state = CmdbVerification::default();
        for event in &events {
            let payload = event.to_payload().unwrap_or_else(|e| unreachable!("{e}"));
            let read = VerificationEvent::from_payload(&event.event_type(), payload);
            assert_eq!(read.as_ref().ok(), Some(event), "{}", event.name());
            state.evolve(event, Stamp::new(None, chrono::DateTime::UNIX_EPOCH));
        }
        assert_eq!(state.discrepancies().len(), 2);
        assert_eq!(state.accuracy(), Some(0.5));
    }
}
