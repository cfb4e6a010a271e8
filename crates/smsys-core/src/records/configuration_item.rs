//! Configuration items (ISO/IEC 20000-1 8.2.6) as event streams: category
//! `configuration_item`, one stream per CI, named after its [`CiId`].
//!
//! A CI is not a ticket: it has no caller, channel or SLA, so it does not share the record
//! events of incidents and problems. Its events say what changed (registration, attributes,
//! name and description, status, typed relationships to other CIs) and, on each, the change
//! that authorised it, if any; who and when are the event's metadata. Services are CIs too
//! (a CI type with catalogue attributes). The rules (CI types as data, lifecycles per type,
//! change control) are in `smsys-processes`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aggregate::{DecodeError, DomainEvent, EventSourced, Stamp};
use crate::event::{Actor, EventType};
use crate::records::attribute::{AttributeName, AttributeValue, Attributes};
use crate::records::ids::{CiId, CiType, Reference, Relationship};
use crate::records::kind::{event_type, from_tagged, name_in, tagged_payload};
use crate::stream::{Category, IdError, StreamId};

/// What registering a CI records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiRegistered {
    /// Its id (also its stream's entity id).
    pub id: CiId,
    /// Its type.
    pub ci_type: CiType,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its first status.
    pub status: String,
    /// Its attributes.
    #[serde(default)]
    pub attributes: Attributes,
    /// The change that authorised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Reference>,
}

/// A configuration item's event, stored as `configuration_item.<name>`, each at schema
/// version 1. Each carries the change that authorised it, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum CiEvent {
    /// The CI was registered.
    Registered(CiRegistered),
    /// Attributes were set (added or changed) and removed.
    AttributesUpdated {
        /// The attributes set, with their new values.
        #[serde(default)]
        set: Attributes,
        /// The attributes removed.
        #[serde(default)]
        removed: Vec<AttributeName>,
        /// The authorising change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<Reference>,
    },
    /// The name or the description changed.
    Described {
        /// The name after.
        name: String,
        /// The description after.
        description: String,
        /// The authorising change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<Reference>,
    },
    /// The status changed along the type's lifecycle (retirement is a change into a final
    /// status).
    StatusChanged {
        /// The status before.
        from: String,
        /// The status after.
        to: String,
        /// Why (may be empty).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
        /// The authorising change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<Reference>,
    },
    /// A relationship from this CI to another was added.
    RelationshipAdded {
        /// Its type.
        relationship: Relationship,
        /// The other CI.
        target: CiId,
        /// The authorising change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<Reference>,
    },
    /// A relationship from this CI to another was removed.
    RelationshipRemoved {
        /// Its type.
        relationship: Relationship,
        /// The other CI.
        target: CiId,
        /// The authorising change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<Reference>,
    },
}

impl CiEvent {
    /// Every event's name (after `configuration_item.`).
    pub const NAMES: &'static [&'static str] = &[
        "registered",
        "attributes_updated",
        "described",
        "status_changed",
        "relationship_added",
        "relationship_removed",
    ];

    /// The event's name.
    pub fn name(&self) -> &'static str {
        match self {
            CiEvent::Registered(_) => "registered",
            CiEvent::AttributesUpdated { .. } => "attributes_updated",
            CiEvent::Described { .. } => "described",
            CiEvent::StatusChanged { .. } => "status_changed",
            CiEvent::RelationshipAdded { .. } => "relationship_added",
            CiEvent::RelationshipRemoved { .. } => "relationship_removed",
        }
    }

    /// The change that authorised it, if any.
    pub fn change(&self) -> Option<&Reference> {
        match self {
            CiEvent::Registered(r) => r.change.as_ref(),
            CiEvent::AttributesUpdated { change, .. }
            | CiEvent::Described { change, .. }
            | CiEvent::StatusChanged { change, .. }
            | CiEvent::RelationshipAdded { change, .. }
            | CiEvent::RelationshipRemoved { change, .. } => change.as_ref(),
        }
    }
}

impl DomainEvent for CiEvent {
    fn event_type(&self) -> EventType {
        event_type(ConfigurationItem::CATEGORY, self.name())
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Result<Value, serde_json::Error> {
        tagged_payload(self)
    }

    fn from_payload(event_type: &EventType, payload: Value) -> Result<Self, DecodeError> {
        match name_in(ConfigurationItem::CATEGORY, event_type) {
            Some(name) if CiEvent::NAMES.contains(&name) => from_tagged(event_type, name, payload),
            Some(_) | None => Err(DecodeError::UnknownType(event_type.clone())),
        }
    }
}

/// Who changed a CI last, when, and under which change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastChange {
    /// Who.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
    /// The authorising change, if any.
    pub change: Option<Reference>,
}

/// A configuration item's state, derived from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConfigurationItem {
    id: Option<CiId>,
    ci_type: Option<CiType>,
    name: String,
    description: String,
    status: Option<String>,
    attributes: Attributes,
    relationships: BTreeSet<(Relationship, CiId)>,
    registered_at: Option<DateTime<Utc>>,
    last_change: Option<LastChange>,
}

impl ConfigurationItem {
    /// The stream of the CI `id`: `configuration_item-<id>`. A CI id names its stream, so it
    /// takes what a stream's entity id takes (ASCII letters, digits and `_ - . :`, at most 128
    /// bytes).
    pub fn stream(id: &CiId) -> Result<StreamId, IdError> {
        StreamId::new(&Category::new(Self::CATEGORY)?, id.as_str())
    }

    /// Whether it was registered.
    pub fn is_registered(&self) -> bool {
        self.id.is_some()
    }
    /// Its id, once registered.
    pub fn id(&self) -> Option<&CiId> {
        self.id.as_ref()
    }
    /// Its type, once registered.
    pub fn ci_type(&self) -> Option<&CiType> {
        self.ci_type.as_ref()
    }
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its description.
    pub fn description(&self) -> &str {
        &self.description
    }
    /// Its status, once registered.
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }
    /// Its attributes.
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }
    /// One attribute.
    pub fn attribute(&self, name: &AttributeName) -> Option<&AttributeValue> {
        self.attributes.get(name)
    }
    /// Its relationships to other CIs, by type then target.
    pub fn relationships(&self) -> &BTreeSet<(Relationship, CiId)> {
        &self.relationships
    }
    /// When it was registered.
    pub fn registered_at(&self) -> Option<DateTime<Utc>> {
        self.registered_at
    }
    /// Who changed it last, when, under which change.
    pub fn last_change(&self) -> Option<&LastChange> {
        self.last_change.as_ref()
    }
}

impl EventSourced for ConfigurationItem {
    const CATEGORY: &'static str = "configuration_item";
    type Event = CiEvent;

    fn evolve(&mut self, event: &CiEvent, stamp: Stamp<'_>) {
        match event {
            CiEvent::Registered(r) => {
                self.id = Some(r.id.clone());
                self.ci_type = Some(r.ci_type.clone());
                self.name.clone_from(&r.name);
                self.description.clone_from(&r.description);
                self.status = Some(r.status.clone());
                self.attributes.clone_from(&r.attributes);
                self.registered_at = Some(stamp.at());
            }
            CiEvent::AttributesUpdated { set, removed, .. } => {
                for name in removed {
                    self.attributes.remove(name);
                }
                for (name, value) in set {
                    self.attributes.insert(name.clone(), value.clone());
                }
            }
            CiEvent::Described {
                name, description, ..
            } => {
                self.name.clone_from(name);
                self.description.clone_from(description);
            }
            CiEvent::StatusChanged { to, .. } => self.status = Some(to.clone()),
            CiEvent::RelationshipAdded {
                relationship,
                target,
                ..
            } => {
                self.relationships
                    .insert((relationship.clone(), target.clone()));
            }
            CiEvent::RelationshipRemoved {
                relationship,
                target,
                ..
            } => {
                self.relationships
                    .remove(&(relationship.clone(), target.clone()));
            }
        }
        self.last_change = Some(LastChange {
            by: stamp.actor().cloned(),
            at: stamp.at(),
            change: event.change().cloned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(id: &str) -> CiId {
        CiId::new(id).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn every_event_round_trips_and_folds() {
        let change = Reference::new("CHG-1").ok();
        let events = vec![
            CiEvent::Registered(CiRegistered {
                id: ci("srv-01"),
                ci_type: CiType::from_static("server"),
                name: "srv-01".into(),
                description: "mail host".into(),
                status: "planned".into(),
                attributes: Attributes::new(),
                change: None,
            }),
            CiEvent::AttributesUpdated {
                set: [(
                    AttributeName::new("ram_gb").unwrap_or_else(|e| unreachable!("{e}")),
                    AttributeValue::from("64"),
                )]
                .into_iter()
                .collect(),
                removed: Vec::new(),
                change: change.clone(),
            },
            CiEvent::Described {
                name: "srv-01".into(),
                description: "mail and relay host".into(),
                change: None,
            },
            CiEvent::StatusChanged {
                from: "planned".into(),
                to: "live".into(),
                reason: String::new(),
                change: change.clone(),
            },
            CiEvent::RelationshipAdded {
                relationship: Relationship::CONNECTS_TO,
                target: ci("sw-02"),
                change: None,
            },
            CiEvent::RelationshipAdded {
                relationship: Relationship::PART_OF,
                target: ci("cluster-a"),
                change: None,
            },
            CiEvent::RelationshipRemoved {
                relationship: Relationship::CONNECTS_TO,
                target: ci("sw-02"),
                change: change.clone(),
            },
        ];
        let names: BTreeSet<&str> = events.iter().map(CiEvent::name).collect();
        let all: BTreeSet<&str> = CiEvent::NAMES.iter().copied().collect();
        assert_eq!(names, all, "an example of every event");
        let mut state = ConfigurationItem::default();
        for event in &events {
            let payload = event.to_payload().unwrap_or_else(|e| unreachable!("{e}"));
            let read = CiEvent::from_payload(&event.event_type(), payload);
            assert_eq!(read.as_ref().ok(), Some(event), "{}", event.name());
            state.evolve(event, Stamp::new(None, DateTime::UNIX_EPOCH));
        }
        assert_eq!(state.id(), Some(&ci("srv-01")));
        assert_eq!(state.status(), Some("live"));
        assert_eq!(state.description(), "mail and relay host");
        assert_eq!(
            state.relationships().iter().collect::<Vec<_>>(),
            [&(Relationship::PART_OF, ci("cluster-a"))]
        );
        assert_eq!(state.last_change().and_then(|c| c.change.clone()), change);
        assert!(
            ConfigurationItem::stream(&ci("srv 01")).is_err(),
            "names a stream"
        );
        let other = EventType::new("problem.registered").unwrap_or_else(|e| unreachable!("{e}"));
        assert!(CiEvent::from_payload(&other, serde_json::json!({})).is_err());
    }
}
