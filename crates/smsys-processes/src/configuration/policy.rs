//! What configuration management consults: the CI types and, optionally, a directory of the
//! CIs already registered.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use smsys_core::records::{CiId, CiType};

use super::types::{CiTypeDefinition, CiTypeError, CiTypeRegistry};

const REFERENCE_TYPES: &str = include_str!("types.toml");

/// Looks CIs up by id, synchronously (the decider is pure and consults it through
/// [`CmdbPolicy::directory`]): what the target of a new relationship is.
pub trait CiDirectory: Send + Sync + fmt::Debug {
    /// The type of CI `id`, if it is known.
    fn ci_type(&self, id: &CiId) -> Option<CiType>;
}

impl CiDirectory for BTreeMap<CiId, CiType> {
    fn ci_type(&self, id: &CiId) -> Option<CiType> {
        self.get(id).cloned()
    }
}

/// What [`CiManagement`](super::CiManagement) consults: the CI types and an optional
/// [`CiDirectory`]. With a directory, a relationship to a CI it does not know is refused, and
/// one to a CI of a type the relationship does not allow; without one, only the relationship
/// type is checked against the source's type.
#[derive(Debug, Clone)]
pub struct CmdbPolicy {
    types: CiTypeRegistry,
    directory: Option<Arc<dyn CiDirectory>>,
}

impl CmdbPolicy {
    /// The policy of `types`, without a directory.
    pub fn new(types: CiTypeRegistry) -> Self {
        Self {
            types,
            directory: None,
        }
    }

    /// The reference CI types (`configuration/types.toml`): `service`, `application`,
    /// `database`, `server`, `network_device` and `site`.
    pub fn reference() -> Self {
        Self::new(reference_types())
    }

    /// The policy of the types in `text` (see [`CiTypeRegistry::from_toml`]).
    pub fn from_toml(text: &str) -> Result<Self, CiTypeError> {
        CiTypeRegistry::from_toml(text).map(Self::new)
    }

    /// Checks the targets of new relationships in `directory`.
    pub fn with_directory(mut self, directory: Arc<dyn CiDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The CI types.
    pub fn types(&self) -> &CiTypeRegistry {
        &self.types
    }

    /// The type named `name`.
    pub fn ci_type(&self, name: &CiType) -> Option<&CiTypeDefinition> {
        self.types.get(name)
    }

    /// The directory of CIs, if any.
    pub fn directory(&self) -> Option<&dyn CiDirectory> {
        self.directory.as_deref()
    }
}

impl Default for CmdbPolicy {
    /// [`CmdbPolicy::reference`].
    fn default() -> Self {
        Self::reference()
    }
}

/// The reference CI types (`configuration/types.toml`).
pub fn reference_types() -> CiTypeRegistry {
    CiTypeRegistry::from_toml(REFERENCE_TYPES)
        .unwrap_or_else(|e| unreachable!("the shipped CI types are valid: {e}"))
}

/// The text of the reference CI types file, for products that start from it.
pub const REFERENCE_TYPES_TOML: &str = REFERENCE_TYPES;
