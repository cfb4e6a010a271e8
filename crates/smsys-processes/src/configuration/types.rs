//! CI types as data: each type's attributes, allowed relationships, lifecycle and change
//! control, and the registry that validates them as a whole.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use smsys_core::records::{AttributeName, CiType, Relationship};

use crate::attribute::{AttributeKind, AttributeSchema};

/// One status of a CI lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiStatus {
    /// Its name, as recorded in events (`live`, `retired`).
    pub name: String,
    /// Whether a CI in it is done with: nothing but reading is accepted any more.
    #[serde(default, rename = "final")]
    pub is_final: bool,
}

impl CiStatus {
    /// A status that is not final.
    pub fn open(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            is_final: false,
        }
    }

    /// A final status.
    pub fn terminal(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            is_final: true,
        }
    }
}

/// The statuses of a CI type, its initial status and the allowed moves between them.
///
/// TOML: `initial = "planned"`, `statuses = [{ name = "planned" }, { name = "retired", final =
/// true }]`, `moves = { planned = ["ordered", "retired"] }`. Left out of a type, the
/// [default](CiLifecycle::default) applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiLifecycle {
    /// The status a CI is registered in.
    pub initial: String,
    /// Every status, in display order.
    pub statuses: Vec<CiStatus>,
    /// From each status, the statuses it may move to.
    #[serde(default)]
    pub moves: BTreeMap<String, Vec<String>>,
}

impl Default for CiLifecycle {
    /// planned -> ordered -> in_build -> live <-> maintenance -> retired, and planned, ordered
    /// or in_build -> retired; `retired` is final.
    fn default() -> Self {
        let moves = [
            ("planned", &["ordered", "retired"][..]),
            ("ordered", &["in_build", "retired"]),
            ("in_build", &["live", "retired"]),
            ("live", &["maintenance"]),
            ("maintenance", &["live", "retired"]),
        ];
        Self {
            initial: "planned".into(),
            statuses: ["planned", "ordered", "in_build", "live", "maintenance"]
                .into_iter()
                .map(CiStatus::open)
                .chain([CiStatus::terminal("retired")])
                .collect(),
            moves: moves
                .into_iter()
                .map(|(from, to)| {
                    (
                        from.to_owned(),
                        to.iter().map(|s| (*s).to_owned()).collect(),
                    )
                })
                .collect(),
        }
    }
}

impl CiLifecycle {
    /// The status named `name`.
    pub fn status(&self, name: &str) -> Option<&CiStatus> {
        self.statuses.iter().find(|s| s.name == name)
    }

    /// Whether `name` is a final status.
    pub fn is_final(&self, name: &str) -> bool {
        self.status(name).is_some_and(|s| s.is_final)
    }

    /// Whether a CI may move from `from` to `to`.
    pub fn allows(&self, from: &str, to: &str) -> bool {
        self.moves
            .get(from)
            .is_some_and(|targets| targets.iter().any(|t| t == to))
    }

    /// Where [`CiCommand::Retire`](super::CiCommand::Retire) leads: the final status named
    /// `retired`, or else the only final status (`None` when neither exists).
    pub fn retirement(&self) -> Option<&str> {
        let finals: Vec<&CiStatus> = self.statuses.iter().filter(|s| s.is_final).collect();
        match finals.iter().find(|s| s.name == "retired") {
            Some(retired) => Some(&retired.name),
            None => match finals.as_slice() {
                [only] => Some(&only.name),
                _ => None,
            },
        }
    }

    /// The statuses a CI can be in: the initial status and every status reachable from it.
    pub fn reachable(&self) -> BTreeSet<&str> {
        let mut seen = BTreeSet::from([self.initial.as_str()]);
        let mut todo = vec![self.initial.as_str()];
        while let Some(from) = todo.pop() {
            for to in self.moves.get(from).into_iter().flatten() {
                if seen.insert(to.as_str()) {
                    todo.push(to.as_str());
                }
            }
        }
        seen
    }

    fn validate(&self, ci_type: &CiType) -> Result<(), CiTypeError> {
        let mut names = BTreeSet::new();
        for status in &self.statuses {
            if status.name.trim().is_empty() {
                return Err(CiTypeError::BlankStatus {
                    ci_type: ci_type.clone(),
                });
            }
            if !names.insert(status.name.as_str()) {
                return Err(CiTypeError::DuplicateStatus {
                    ci_type: ci_type.clone(),
                    status: status.name.clone(),
                });
            }
        }
        match self.status(&self.initial) {
            None => {
                return Err(CiTypeError::InitialMissing {
                    ci_type: ci_type.clone(),
                    initial: self.initial.clone(),
                });
            }
            Some(initial) if initial.is_final => {
                return Err(CiTypeError::InitialFinal {
                    ci_type: ci_type.clone(),
                    initial: self.initial.clone(),
                });
            }
            Some(_) => {}
        }
        for (from, targets) in &self.moves {
            for status in std::iter::once(from).chain(targets) {
                if !names.contains(status.as_str()) {
                    return Err(CiTypeError::UnknownStatus {
                        ci_type: ci_type.clone(),
                        status: status.clone(),
                    });
                }
            }
            if self.is_final(from) && !targets.is_empty() {
                return Err(CiTypeError::MoveFromFinal {
                    ci_type: ci_type.clone(),
                    status: from.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A type of configuration item, held as data (TOML or JSON).
///
/// ```toml
/// [[type]]
/// name = "database"
/// description = "a database instance"
/// change_controlled = true
/// attributes.engine = { kind = "choice", allowed = ["postgresql", "mysql"], required_at_registration = true }
/// relationships.runs_on = ["server"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiTypeDefinition {
    /// Its name, as CIs record it.
    pub name: CiType,
    /// What CIs of this type are.
    #[serde(default)]
    pub description: String,
    /// Its attributes: kinds, allowed values, those required at registration
    /// (`required_at_registration`, also read as `required_at_log`).
    #[serde(default)]
    pub attributes: AttributeSchema,
    /// The relationships a CI of this type may record, each with the types its target may
    /// be.
    #[serde(default)]
    pub relationships: BTreeMap<Relationship, Vec<CiType>>,
    /// Its statuses and moves (the [default](CiLifecycle::default) when left out).
    #[serde(default)]
    pub lifecycle: CiLifecycle,
    /// Whether every change to a CI of this type (its registration included) must name the
    /// change that authorised it.
    #[serde(default)]
    pub change_controlled: bool,
}

impl CiTypeDefinition {
    /// A type named `name` with no attributes, no relationships, the default lifecycle and no
    /// change control.
    pub fn new(name: CiType) -> Self {
        Self {
            name,
            description: String::new(),
            attributes: AttributeSchema::default(),
            relationships: BTreeMap::new(),
            lifecycle: CiLifecycle::default(),
            change_controlled: false,
        }
    }

    /// The types a target of `relationship` may be (`None`: the relationship is not allowed
    /// from this type).
    pub fn targets(&self, relationship: &Relationship) -> Option<&[CiType]> {
        self.relationships.get(relationship).map(Vec::as_slice)
    }

    fn validate(&self, known: &BTreeSet<&CiType>) -> Result<(), CiTypeError> {
        for (attribute, spec) in self.attributes.iter() {
            let choice = spec.kind == AttributeKind::Choice;
            if choice == spec.allowed.is_empty() {
                return Err(CiTypeError::AllowedValues {
                    ci_type: self.name.clone(),
                    attribute: attribute.clone(),
                    choice,
                });
            }
        }
        for (relationship, targets) in &self.relationships {
            if targets.is_empty() {
                return Err(CiTypeError::NoTargetTypes {
                    ci_type: self.name.clone(),
                    relationship: relationship.clone(),
                });
            }
            if let Some(target) = targets.iter().find(|t| !known.contains(t)) {
                return Err(CiTypeError::UnknownTargetType {
                    ci_type: self.name.clone(),
                    relationship: relationship.clone(),
                    target: target.clone(),
                });
            }
        }
        self.lifecycle.validate(&self.name)
    }
}

/// Why a set of CI types was refused: each names the type and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiTypeError {
    /// The text is not a set of CI types (bad TOML, an unknown field, a wrong type).
    #[error("CI types: {0}")]
    Parse(String),
    /// Two types share a name.
    #[error("CI type {0}: defined twice")]
    Duplicate(CiType),
    /// A relationship allows a target type that is not defined.
    #[error("CI type {ci_type}: relationships.{relationship} names unknown CI type {target}")]
    UnknownTargetType {
        /// The type.
        ci_type: CiType,
        /// The relationship.
        relationship: Relationship,
        /// The unknown target type.
        target: CiType,
    },
    /// A relationship allows no target type at all.
    #[error("CI type {ci_type}: relationships.{relationship} allows no target type")]
    NoTargetTypes {
        /// The type.
        ci_type: CiType,
        /// The relationship.
        relationship: Relationship,
    },
    /// A choice without allowed values, or allowed values on another kind.
    #[error(
        "CI type {ci_type}: attributes.{attribute}.allowed {}",
        if *choice { "is empty for a choice" } else { "is only for choices" }
    )]
    AllowedValues {
        /// The type.
        ci_type: CiType,
        /// The attribute.
        attribute: AttributeName,
        /// Whether the attribute is a choice (without allowed values) or not (with some).
        choice: bool,
    },
    /// A status with a blank name.
    #[error("CI type {ci_type}: lifecycle.statuses has a blank name")]
    BlankStatus {
        /// The type.
        ci_type: CiType,
    },
    /// Two statuses share a name.
    #[error("CI type {ci_type}: lifecycle.statuses names {status:?} twice")]
    DuplicateStatus {
        /// The type.
        ci_type: CiType,
        /// The status.
        status: String,
    },
    /// The initial status is not one of the statuses.
    #[error("CI type {ci_type}: lifecycle.initial {initial:?} is not one of its statuses")]
    InitialMissing {
        /// The type.
        ci_type: CiType,
        /// The initial status named.
        initial: String,
    },
    /// The initial status is final.
    #[error("CI type {ci_type}: lifecycle.initial {initial:?} is a final status")]
    InitialFinal {
        /// The type.
        ci_type: CiType,
        /// The initial status named.
        initial: String,
    },
    /// A move names a status that is not one of the statuses.
    #[error("CI type {ci_type}: lifecycle.moves names unknown status {status:?}")]
    UnknownStatus {
        /// The type.
        ci_type: CiType,
        /// The unknown status.
        status: String,
    },
    /// A move leaves a final status.
    #[error("CI type {ci_type}: lifecycle.moves leaves final status {status:?}")]
    MoveFromFinal {
        /// The type.
        ci_type: CiType,
        /// The final status.
        status: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypesFile {
    #[serde(rename = "type", default)]
    types: Vec<CiTypeDefinition>,
}

/// CI types by name, validated as a whole: names unique, every relationship's target types
/// defined, every lifecycle consistent.
///
/// ```
/// use smsys_processes::configuration::CiTypeRegistry;
/// let types = CiTypeRegistry::from_toml(
///     "[[type]]\nname = \"server\"\n\n[[type]]\nname = \"site\"\n\
///      [type.relationships]\npart_of = [\"campus\"]\n",
/// );
/// assert_eq!(
///     types.unwrap_err().to_string(),
///     "CI type site: relationships.part_of names unknown CI type campus"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CiTypeRegistry {
    types: BTreeMap<CiType, CiTypeDefinition>,
}

impl CiTypeRegistry {
    /// Validates `types` as a whole; the first fault found is named.
    pub fn new(types: impl IntoIterator<Item = CiTypeDefinition>) -> Result<Self, CiTypeError> {
        let mut by_name = BTreeMap::new();
        for definition in types {
            let name = definition.name.clone();
            if by_name.insert(name.clone(), definition).is_some() {
                return Err(CiTypeError::Duplicate(name));
            }
        }
        let known: BTreeSet<&CiType> = by_name.keys().collect();
        for definition in by_name.values() {
            definition.validate(&known)?;
        }
        Ok(Self { types: by_name })
    }

    /// Reads types from TOML (an array of tables `[[type]]`, each a [`CiTypeDefinition`]) and
    /// validates them.
    pub fn from_toml(text: &str) -> Result<Self, CiTypeError> {
        let file: TypesFile =
            toml::from_str(text).map_err(|e| CiTypeError::Parse(e.to_string()))?;
        Self::new(file.types)
    }

    /// The type named `name`.
    pub fn get(&self, name: &CiType) -> Option<&CiTypeDefinition> {
        self.types.get(name)
    }

    /// Every type, by name.
    pub fn iter(&self) -> impl Iterator<Item = &CiTypeDefinition> {
        self.types.values()
    }

    /// How many types it holds.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether it holds no type.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lifecycle_is_valid_and_retires_into_retired() {
        let lifecycle = CiLifecycle::default();
        assert_eq!(lifecycle.validate(&CiType::from_static("server")), Ok(()));
        assert_eq!(lifecycle.retirement(), Some("retired"));
        assert!(lifecycle.allows("live", "maintenance"));
        assert!(lifecycle.allows("maintenance", "live"));
        assert!(!lifecycle.allows("live", "retired"));
        assert_eq!(lifecycle.reachable().len(), lifecycle.statuses.len());
    }
}
