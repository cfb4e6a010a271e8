//! Why a command on a configuration item was refused: which CI, which command, which rule.

use std::fmt;

use smsys_core::StreamId;
use smsys_core::records::{AttributeName, AttributeValue, CiId, CiType, Relationship};

/// The rule a command broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiRule {
    /// The CI type is not defined by the policy.
    #[error("CI type {0} is not defined")]
    UnknownType(CiType),
    /// The CI has not been registered.
    #[error("the CI has not been registered")]
    NotRegistered,
    /// The CI is already registered.
    #[error("the CI is already registered")]
    AlreadyRegistered,
    /// The registration's id names another stream than the one the command runs on.
    #[error("CI {id} belongs to stream {expected}, not {actual}")]
    WrongStream {
        /// The id registered.
        id: CiId,
        /// The stream it names.
        expected: StreamId,
        /// The stream the command ran on.
        actual: StreamId,
    },
    /// The registration's id cannot name a stream.
    #[error("CI id {id} cannot name a stream: {reason}")]
    InvalidId {
        /// The id.
        id: CiId,
        /// Why.
        reason: String,
    },
    /// The name is blank.
    #[error("the name is blank")]
    BlankName,
    /// The CI's type is under change control and the command names no change.
    #[error("CI type {0} is under change control: an update without a change reference is refused")]
    ChangeRequired(CiType),
    /// An attribute the type's schema does not have.
    #[error("attribute {0} is not in the schema of the CI type")]
    UnknownAttribute(AttributeName),
    /// An attribute value of another kind.
    #[error("attribute {name} takes {expected}, not {found}")]
    WrongKind {
        /// The attribute.
        name: AttributeName,
        /// What it takes.
        expected: &'static str,
        /// What was given.
        found: String,
    },
    /// A choice given a value it does not allow.
    #[error("attribute {name} does not allow {value}: it takes one of {allowed:?}")]
    ValueNotAllowed {
        /// The attribute.
        name: AttributeName,
        /// The value given.
        value: AttributeValue,
        /// The values it allows.
        allowed: Vec<String>,
    },
    /// An attribute required at registration is missing.
    #[error("attribute {0} is required at registration")]
    RequiredMissing(AttributeName),
    /// An attribute required at registration is being removed.
    #[error("attribute {0} is required and cannot be removed")]
    RequiredRemoved(AttributeName),
    /// An attribute both set and removed by one update.
    #[error("attribute {0} is both set and removed")]
    SetAndRemoved(AttributeName),
    /// The status is not one of the type's lifecycle.
    #[error("CI type {ci_type} has no status {status:?}")]
    UnknownStatus {
        /// The type.
        ci_type: CiType,
        /// The status named.
        status: String,
    },
    /// The lifecycle has no such move.
    #[error("the lifecycle of CI type {ci_type} has no move from {from:?} to {to:?}")]
    StatusMove {
        /// The type.
        ci_type: CiType,
        /// The current status.
        from: String,
        /// The status asked for.
        to: String,
    },
    /// The type's lifecycle has no status to retire into (no final status named `retired`
    /// and not exactly one final status).
    #[error("the lifecycle of CI type {0} has no retirement status")]
    NoRetirement(CiType),
    /// The CI is in a final status: it can only be read.
    #[error("the CI is {0}, which is final")]
    Final(String),
    /// The type does not allow this relationship from its CIs.
    #[error("CI type {ci_type} does not allow {relationship} relationships")]
    RelationshipNotAllowed {
        /// The source's type.
        ci_type: CiType,
        /// The relationship.
        relationship: Relationship,
    },
    /// The target is of a type the relationship does not allow.
    #[error(
        "{relationship} from a {ci_type} may not target {target}, a {target_type} (allowed: {allowed:?})"
    )]
    TargetTypeNotAllowed {
        /// The source's type.
        ci_type: CiType,
        /// The relationship.
        relationship: Relationship,
        /// The target.
        target: CiId,
        /// Its type.
        target_type: CiType,
        /// The types allowed.
        allowed: Vec<CiType>,
    },
    /// The directory does not know the target.
    #[error("CI {0} is not known")]
    UnknownTarget(CiId),
    /// A relationship from a CI to itself.
    #[error("a CI cannot be related to itself")]
    SelfRelationship,
    /// Nothing would change (the relationship exists or is missing, the values are the same).
    #[error("nothing would change")]
    Unchanged,
}

/// A refused command on a configuration item: which CI, which command, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiRefusal {
    /// The CI (its id once registered, or the id a registration names).
    pub ci: Option<CiId>,
    /// The command (see [`CiCommand::name`](super::CiCommand::name)).
    pub command: &'static str,
    /// The rule broken.
    pub rule: CiRule,
}

impl fmt::Display for CiRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ci {
            Some(ci) => write!(f, "configuration item {ci}")?,
            None => f.write_str("configuration item (not registered)")?,
        }
        write!(f, ": {} refused: {}", self.command, self.rule)
    }
}

impl std::error::Error for CiRefusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.rule)
    }
}
