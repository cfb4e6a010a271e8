//! Configuration management (ISO/IEC 20000-1 8.2.6): the rules over the configuration items
//! of `smsys_core::records::configuration_item`, under CI types held as data.
//!
//! A [`CiTypeDefinition`] says what a type of CI is: its attributes (an
//! [`AttributeSchema`](crate::attribute::AttributeSchema): kinds, allowed values, those
//! required at registration), the relationships its CIs may record and the types their
//! targets may be, its lifecycle ([`CiLifecycle`]: statuses, the initial one, the allowed
//! moves, which are final) and whether it is under change control (every change to one of
//! its CIs names the change that authorised it). A [`CmdbPolicy`] holds the types, validated
//! as a whole ([`CiTypeRegistry`]), and optionally a [`CiDirectory`] to check the targets of
//! relationships; the reference types are `configuration/types.toml`
//! ([`CmdbPolicy::reference`]).
//!
//! [`CiManagement`] is the decider: a [`CiCommand`] is either recorded as one
//! [`CiEvent`] or refused with a [`CiRefusal`] naming the
//! [`CiRule`] it broke. Who and when are the event's metadata; which change, its payload.

mod decide;
mod policy;
mod refusal;
mod types;

pub use policy::{CiDirectory, CmdbPolicy, REFERENCE_TYPES_TOML, reference_types};
pub use refusal::{CiRefusal, CiRule};
pub use types::{CiLifecycle, CiStatus, CiTypeDefinition, CiTypeError, CiTypeRegistry};

use smsys_core::records::{
    AttributeName, Attributes, CiEvent, CiId, CiType, ConfigurationItem, Reference, Relationship,
};
use smsys_core::{Aggregate, Context};

/// What can be asked of a configuration item. Each command carries the change that
/// authorises it (required on a type under change control).
#[derive(Debug, Clone, PartialEq)]
pub enum CiCommand {
    /// Register it, in its type's initial status.
    Register {
        /// Its id: must name the stream the command runs on.
        id: CiId,
        /// Its type.
        ci_type: CiType,
        /// Its name (not blank).
        name: String,
        /// Its description.
        description: String,
        /// Its attributes (those the type requires at registration among them).
        attributes: Attributes,
        /// The authorising change.
        change: Option<Reference>,
    },
    /// Set (add or change) and remove attributes.
    UpdateAttributes {
        /// The attributes to set.
        set: Attributes,
        /// The attributes to remove (none required by the type).
        removed: Vec<AttributeName>,
        /// The authorising change.
        change: Option<Reference>,
    },
    /// Rename it or change its description.
    Describe {
        /// The name after (not blank).
        name: String,
        /// The description after.
        description: String,
        /// The authorising change.
        change: Option<Reference>,
    },
    /// Move it to another status, as its type's lifecycle allows.
    ChangeStatus {
        /// The status to move to.
        to: String,
        /// Why (may be empty).
        reason: String,
        /// The authorising change.
        change: Option<Reference>,
    },
    /// Retire it: move it into its type's final status named `retired`, or into the only final
    /// status, as the lifecycle allows.
    Retire {
        /// Why (may be empty).
        reason: String,
        /// The authorising change.
        change: Option<Reference>,
    },
    /// Record a relationship from it to another CI.
    AddRelationship {
        /// The relationship type (allowed by its type).
        relationship: Relationship,
        /// The other CI (of a type the relationship allows).
        target: CiId,
        /// The authorising change.
        change: Option<Reference>,
    },
    /// Remove a relationship from it to another CI.
    RemoveRelationship {
        /// The relationship type.
        relationship: Relationship,
        /// The other CI.
        target: CiId,
        /// The authorising change.
        change: Option<Reference>,
    },
}

impl CiCommand {
    /// Every command's name, as refusals name it.
    pub const NAMES: &'static [&'static str] = &[
        "register",
        "update_attributes",
        "describe",
        "change_status",
        "retire",
        "add_relationship",
        "remove_relationship",
    ];

    /// The command's name, as refusals name it.
    pub fn name(&self) -> &'static str {
        match self {
            CiCommand::Register { .. } => "register",
            CiCommand::UpdateAttributes { .. } => "update_attributes",
            CiCommand::Describe { .. } => "describe",
            CiCommand::ChangeStatus { .. } => "change_status",
            CiCommand::Retire { .. } => "retire",
            CiCommand::AddRelationship { .. } => "add_relationship",
            CiCommand::RemoveRelationship { .. } => "remove_relationship",
        }
    }

    /// The change that authorises it, if any.
    pub fn change(&self) -> Option<&Reference> {
        match self {
            CiCommand::Register { change, .. }
            | CiCommand::UpdateAttributes { change, .. }
            | CiCommand::Describe { change, .. }
            | CiCommand::ChangeStatus { change, .. }
            | CiCommand::Retire { change, .. }
            | CiCommand::AddRelationship { change, .. }
            | CiCommand::RemoveRelationship { change, .. } => change.as_ref(),
        }
    }
}

/// Configuration management's decider: [`CiCommand`]s on a [`ConfigurationItem`] under a
/// [`CmdbPolicy`].
///
/// ```
/// use smsys_core::records::{AttributeName, AttributeValue, CiType, ConfigurationItem};
/// use smsys_core::{Aggregate, Context, EventSourced, SequentialIds};
/// use smsys_processes::configuration::{CiCommand, CiManagement, CiRule, CmdbPolicy};
///
/// let policy = CmdbPolicy::reference();
/// let ids = SequentialIds::new(0);
/// let ctx = Context::new(chrono::DateTime::UNIX_EPOCH, &ids);
/// let mut server = ConfigurationItem::default();
/// let register = CiCommand::Register {
///     id: "srv-01".parse()?,
///     ci_type: CiType::new("server")?,
///     name: "srv-01".into(),
///     description: "mail host".into(),
///     attributes: Default::default(),
///     change: Some("CHG-7".parse()?),
/// };
/// for event in CiManagement::decide(&server.clone(), &register, &policy, &ctx)? {
///     server.evolve(&event, ctx.stamp());
/// }
/// assert_eq!(server.status(), Some("planned"));
///
/// // Servers are under change control: an update without a change reference is refused.
/// let ram = [(AttributeName::new("ram_gb")?, AttributeValue::from(64))].into_iter().collect();
/// let mut update = CiCommand::UpdateAttributes { set: ram, removed: vec![], change: None };
/// let refused = CiManagement::decide(&server, &update, &policy, &ctx).unwrap_err();
/// assert_eq!(refused.rule, CiRule::ChangeRequired(CiType::new("server")?));
///
/// if let CiCommand::UpdateAttributes { change, .. } = &mut update {
///     *change = Some("CHG-8".parse()?);
/// }
/// let events = CiManagement::decide(&server, &update, &policy, &ctx)?;
/// assert_eq!(events[0].change().map(|c| c.as_str()), Some("CHG-8"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CiManagement;

impl Aggregate for CiManagement {
    type State = ConfigurationItem;
    type Services = CmdbPolicy;
    type Command = CiCommand;
    type Rejection = CiRefusal;

    fn decide(
        state: &ConfigurationItem,
        command: &CiCommand,
        policy: &CmdbPolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<CiEvent>, CiRefusal> {
        decide::decide(state, command, policy, ctx).map_err(|rule| CiRefusal {
            ci: match (state.id(), command) {
                (Some(id), _) | (None, CiCommand::Register { id, .. }) => Some(id.clone()),
                (
                    None,
                    CiCommand::UpdateAttributes { .. }
                    | CiCommand::Describe { .. }
                    | CiCommand::ChangeStatus { .. }
                    | CiCommand::Retire { .. }
                    | CiCommand::AddRelationship { .. }
                    | CiCommand::RemoveRelationship { .. },
                ) => None,
            },
            command: command.name(),
            rule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_types_load() {
        let policy = CmdbPolicy::reference();
        let names: Vec<&str> = policy.types().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "application",
                "database",
                "network_device",
                "server",
                "service",
                "site"
            ]
        );
    }
}
