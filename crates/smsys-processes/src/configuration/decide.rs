//! The rules of configuration management: what each command records, or which rule refuses
//! it.

use smsys_core::Context;
use smsys_core::records::configuration_item::CiRegistered;
use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, CiEvent, CiId, CiType, ConfigurationItem, Reference,
    Relationship,
};

use super::CiCommand;
use super::policy::CmdbPolicy;
use super::refusal::CiRule;
use super::types::CiTypeDefinition;
use crate::attribute::{AttributeError, AttributeKind, AttributeSchema};

/// Decides `command` on `state`: the events to record, or the rule it breaks.
pub(super) fn decide(
    state: &ConfigurationItem,
    command: &CiCommand,
    policy: &CmdbPolicy,
    ctx: &Context<'_>,
) -> Result<Vec<CiEvent>, CiRule> {
    let (id, definition) = match command {
        CiCommand::Register {
            id,
            ci_type,
            name,
            description,
            attributes,
            change,
        } => {
            let input = Registration {
                id,
                ci_type,
                name,
                description,
                attributes,
                change: change.as_ref(),
            };
            return register(state, &input, policy, ctx).map(|r| vec![r]);
        }
        CiCommand::UpdateAttributes { .. }
        | CiCommand::Describe { .. }
        | CiCommand::ChangeStatus { .. }
        | CiCommand::Retire { .. }
        | CiCommand::AddRelationship { .. }
        | CiCommand::RemoveRelationship { .. } => registered(state, policy)?,
    };
    let status = state.status().unwrap_or_default();
    if definition.lifecycle.is_final(status) {
        return Err(CiRule::Final(status.to_owned()));
    }
    controlled(definition, command.change())?;
    let event = match command {
        CiCommand::Register { .. } => return Err(CiRule::AlreadyRegistered),
        CiCommand::UpdateAttributes {
            set,
            removed,
            change,
        } => update_attributes(state, definition, set, removed, change)?,
        CiCommand::Describe {
            name,
            description,
            change,
        } => {
            if name.trim().is_empty() {
                return Err(CiRule::BlankName);
            }
            if name == state.name() && description == state.description() {
                return Err(CiRule::Unchanged);
            }
            CiEvent::Described {
                name: name.clone(),
                description: description.clone(),
                change: change.clone(),
            }
        }
        CiCommand::ChangeStatus { to, reason, change } => {
            move_to(definition, status, to, reason, change)?
        }
        CiCommand::Retire { reason, change } => {
            let to = definition
                .lifecycle
                .retirement()
                .ok_or_else(|| CiRule::NoRetirement(definition.name.clone()))?;
            move_to(definition, status, to, reason, change)?
        }
        CiCommand::AddRelationship {
            relationship,
            target,
            change,
        } => {
            relate(state, id, definition, relationship, target, policy)?;
            CiEvent::RelationshipAdded {
                relationship: relationship.clone(),
                target: target.clone(),
                change: change.clone(),
            }
        }
        CiCommand::RemoveRelationship {
            relationship,
            target,
            change,
        } => {
            if !has_relationship(state, relationship, target) {
                return Err(CiRule::Unchanged);
            }
            CiEvent::RelationshipRemoved {
                relationship: relationship.clone(),
                target: target.clone(),
                change: change.clone(),
            }
        }
    };
    Ok(vec![event])
}

/// The registered CI's id and type definition.
fn registered<'a>(
    state: &'a ConfigurationItem,
    policy: &'a CmdbPolicy,
) -> Result<(&'a CiId, &'a CiTypeDefinition), CiRule> {
    match (state.id(), state.ci_type()) {
        (Some(id), Some(ci_type)) => policy
            .ci_type(ci_type)
            .map(|definition| (id, definition))
            .ok_or_else(|| CiRule::UnknownType(ci_type.clone())),
        (None, _) | (Some(_), None) => Err(CiRule::NotRegistered),
    }
}

fn controlled(definition: &CiTypeDefinition, change: Option<&Reference>) -> Result<(), CiRule> {
    if definition.change_controlled && change.is_none() {
        Err(CiRule::ChangeRequired(definition.name.clone()))
    } else {
        Ok(())
    }
}

/// A registration's inputs.
struct Registration<'a> {
    id: &'a CiId,
    ci_type: &'a CiType,
    name: &'a str,
    description: &'a str,
    attributes: &'a Attributes,
    change: Option<&'a Reference>,
}

fn register(
    state: &ConfigurationItem,
    input: &Registration<'_>,
    policy: &CmdbPolicy,
    ctx: &Context<'_>,
) -> Result<CiEvent, CiRule> {
    if state.is_registered() {
        return Err(CiRule::AlreadyRegistered);
    }
    let expected = ConfigurationItem::stream(input.id).map_err(|e| CiRule::InvalidId {
        id: input.id.clone(),
        reason: e.to_string(),
    })?;
    if let Some(actual) = ctx.stream()
        && actual != &expected
    {
        return Err(CiRule::WrongStream {
            id: input.id.clone(),
            expected,
            actual: actual.clone(),
        });
    }
    let definition = policy
        .ci_type(input.ci_type)
        .ok_or_else(|| CiRule::UnknownType(input.ci_type.clone()))?;
    if input.name.trim().is_empty() {
        return Err(CiRule::BlankName);
    }
    controlled(definition, input.change)?;
    for (name, value) in input.attributes {
        check(&definition.attributes, name, value)?;
    }
    if let Some((name, _)) = definition
        .attributes
        .iter()
        .find(|(name, spec)| spec.required_at_log && !input.attributes.contains_key(*name))
    {
        return Err(CiRule::RequiredMissing(name.clone()));
    }
    Ok(CiEvent::Registered(CiRegistered {
        id: input.id.clone(),
        ci_type: input.ci_type.clone(),
        name: input.name.to_owned(),
        description: input.description.to_owned(),
        status: definition.lifecycle.initial.clone(),
        attributes: input.attributes.clone(),
        change: input.change.cloned(),
    }))
}

/// Checks one value against the schema, telling a choice's refused value from a wrong kind.
fn check(
    schema: &AttributeSchema,
    name: &AttributeName,
    value: &AttributeValue,
) -> Result<(), CiRule> {
    if let Some(spec) = schema.get(name)
        && spec.kind == AttributeKind::Choice
        && let AttributeValue::Text(text) = value
        && !spec.allowed.contains(text)
    {
        return Err(CiRule::ValueNotAllowed {
            name: name.clone(),
            value: value.clone(),
            allowed: spec.allowed.clone(),
        });
    }
    schema.check(name, value).map_err(|e| match e {
        AttributeError::Unknown(name) => CiRule::UnknownAttribute(name),
        AttributeError::WrongKind {
            name,
            expected,
            found,
        } => CiRule::WrongKind {
            name,
            expected,
            found,
        },
        AttributeError::Required(name) => CiRule::RequiredMissing(name),
    })
}

/// The update's effect: the values that differ and the attributes present that are removed.
fn update_attributes(
    state: &ConfigurationItem,
    definition: &CiTypeDefinition,
    set: &Attributes,
    removed: &[AttributeName],
    change: &Option<Reference>,
) -> Result<CiEvent, CiRule> {
    for (name, value) in set {
        check(&definition.attributes, name, value)?;
    }
    let mut gone = Vec::new();
    for name in removed {
        if set.contains_key(name) {
            return Err(CiRule::SetAndRemoved(name.clone()));
        }
        if definition
            .attributes
            .get(name)
            .is_some_and(|spec| spec.required_at_log)
        {
            return Err(CiRule::RequiredRemoved(name.clone()));
        }
        if state.attribute(name).is_some() && !gone.contains(name) {
            gone.push(name.clone());
        }
    }
    let changed: Attributes = set
        .iter()
        .filter(|(name, value)| state.attribute(name) != Some(*value))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    if changed.is_empty() && gone.is_empty() {
        return Err(CiRule::Unchanged);
    }
    Ok(CiEvent::AttributesUpdated {
        set: changed,
        removed: gone,
        change: change.clone(),
    })
}

fn move_to(
    definition: &CiTypeDefinition,
    from: &str,
    to: &str,
    reason: &str,
    change: &Option<Reference>,
) -> Result<CiEvent, CiRule> {
    if definition.lifecycle.status(to).is_none() {
        return Err(CiRule::UnknownStatus {
            ci_type: definition.name.clone(),
            status: to.to_owned(),
        });
    }
    if from == to {
        return Err(CiRule::Unchanged);
    }
    if !definition.lifecycle.allows(from, to) {
        return Err(CiRule::StatusMove {
            ci_type: definition.name.clone(),
            from: from.to_owned(),
            to: to.to_owned(),
        });
    }
    Ok(CiEvent::StatusChanged {
        from: from.to_owned(),
        to: to.to_owned(),
        reason: reason.to_owned(),
        change: change.clone(),
    })
}

fn has_relationship(state: &ConfigurationItem, relationship: &Relationship, target: &CiId) -> bool {
    state
        .relationships()
        .contains(&(relationship.clone(), target.clone()))
}

fn relate(
    state: &ConfigurationItem,
    id: &CiId,
    definition: &CiTypeDefinition,
    relationship: &Relationship,
    target: &CiId,
    policy: &CmdbPolicy,
) -> Result<(), CiRule> {
    let allowed =
        definition
            .targets(relationship)
            .ok_or_else(|| CiRule::RelationshipNotAllowed {
                ci_type: definition.name.clone(),
                relationship: relationship.clone(),
            })?;
    if target == id {
        return Err(CiRule::SelfRelationship);
    }
    if let Some(directory) = policy.directory() {
        let target_type: CiType = directory
            .ci_type(target)
            .ok_or_else(|| CiRule::UnknownTarget(target.clone()))?;
        if !allowed.contains(&target_type) {
            return Err(CiRule::TargetTypeNotAllowed {
                ci_type: definition.name.clone(),
                relationship: relationship.clone(),
                target: target.clone(),
                target_type,
                allowed: allowed.to_vec(),
            });
        }
    }
    if has_relationship(state, relationship, target) {
        return Err(CiRule::Unchanged);
    }
    Ok(())
}
