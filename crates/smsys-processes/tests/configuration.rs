//! Configuration management (8.2.6): the rules of `CiManagement` under the reference CI types
//! and under types written for the test, the registry's validation, change control and the
//! lifecycles as properties, and commands through a real `CommandHandler`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::result_large_err,
    reason = "tests stop at the first broken expectation; refusals are returned as the decider returns them"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, CiEvent, CiId, CiType, ConfigurationItem, Reference,
    Relationship,
};
use smsys_core::{
    Aggregate, CommandError, CommandHandler, CommandMeta, Context, EventSourced, EventStore,
    SequentialIds, Stamp, StreamId,
};
use smsys_processes::configuration::{
    CiCommand, CiDirectory, CiLifecycle, CiManagement, CiRefusal, CiRule, CiStatus,
    CiTypeDefinition, CiTypeError, CiTypeRegistry, CmdbPolicy, REFERENCE_TYPES_TOML,
};
use smsys_store::MemoryEventStore;

#[path = "configuration/handler.rs"]
mod handler;
#[path = "configuration/matrix.rs"]
mod matrix;
#[path = "configuration/properties.rs"]
mod properties;
#[path = "configuration/registry.rs"]
mod registry;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0)
        .single()
        .expect("valid")
}

fn ci(id: &str) -> CiId {
    id.parse().expect("a CI id")
}

fn ty(name: &str) -> CiType {
    CiType::new(name).expect("a CI type")
}

fn chg(reference: &str) -> Option<Reference> {
    Some(reference.parse().expect("a reference"))
}

fn name(attribute: &str) -> AttributeName {
    AttributeName::new(attribute).expect("an attribute name")
}

fn attrs(pairs: &[(&str, AttributeValue)]) -> Attributes {
    pairs.iter().map(|(n, v)| (name(n), v.clone())).collect()
}

fn register(id: &str, ci_type: &str, change: Option<Reference>) -> CiCommand {
    CiCommand::Register {
        id: ci(id),
        ci_type: ty(ci_type),
        name: id.into(),
        description: String::new(),
        attributes: Attributes::new(),
        change,
    }
}

fn set(pairs: &[(&str, AttributeValue)], change: Option<Reference>) -> CiCommand {
    CiCommand::UpdateAttributes {
        set: attrs(pairs),
        removed: Vec::new(),
        change,
    }
}

fn remove(attribute: &str, change: Option<Reference>) -> CiCommand {
    CiCommand::UpdateAttributes {
        set: Attributes::new(),
        removed: vec![name(attribute)],
        change,
    }
}

fn status(to: &str, change: Option<Reference>) -> CiCommand {
    CiCommand::ChangeStatus {
        to: to.into(),
        reason: String::new(),
        change,
    }
}

fn add(relationship: Relationship, target: &str, change: Option<Reference>) -> CiCommand {
    CiCommand::AddRelationship {
        relationship,
        target: ci(target),
        change,
    }
}

/// Decides `command` on `state` (no stream in the context).
fn when(
    policy: &CmdbPolicy,
    state: &ConfigurationItem,
    command: &CiCommand,
) -> Result<Vec<CiEvent>, CiRefusal> {
    let ids = SequentialIds::new(0);
    CiManagement::decide(state, command, policy, &Context::new(at(), &ids))
}

/// The state after `commands`, each of which must be accepted.
fn given(policy: &CmdbPolicy, commands: &[CiCommand]) -> ConfigurationItem {
    let mut state = ConfigurationItem::default();
    for command in commands {
        let events = when(policy, &state, command)
            .unwrap_or_else(|refusal| panic!("{command:?} refused: {refusal}"));
        for event in &events {
            state.evolve(event, Stamp::new(None, at()));
        }
    }
    state
}

/// The rule that refuses `command` after `history`.
fn refused(policy: &CmdbPolicy, history: &[CiCommand], command: &CiCommand) -> CiRule {
    let state = given(policy, history);
    match when(policy, &state, command) {
        Ok(events) => panic!("{command:?} accepted: {events:?}"),
        Err(refusal) => {
            assert_eq!(refusal.command, command.name());
            refusal.rule
        }
    }
}

fn reference() -> CmdbPolicy {
    CmdbPolicy::reference()
}

/// A live server registered under CHG-1.
fn live_server() -> Vec<CiCommand> {
    vec![
        register("srv-01", "server", chg("CHG-1")),
        status("ordered", chg("CHG-1")),
        status("in_build", chg("CHG-1")),
        status("live", chg("CHG-1")),
    ]
}

/// A site, not under change control.
fn site() -> Vec<CiCommand> {
    vec![register("dc-1", "site", None)]
}

#[test]
fn registration_starts_in_the_initial_status_with_its_change() {
    let events = when(
        &reference(),
        &ConfigurationItem::default(),
        &register("srv-01", "server", chg("CHG-1")),
    )
    .expect("accepted");
    let [CiEvent::Registered(registered)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(registered.status, "planned");
    assert_eq!(registered.change, chg("CHG-1"));
}

#[test]
fn registration_rules() {
    let policy = reference();
    let mut unknown = register("x-1", "printer", None);
    assert_eq!(
        refused(&policy, &[], &unknown),
        CiRule::UnknownType(ty("printer"))
    );
    assert_eq!(
        refused(&policy, &site(), &register("dc-1", "site", None)),
        CiRule::AlreadyRegistered
    );
    if let CiCommand::Register { name, ci_type, .. } = &mut unknown {
        *ci_type = ty("site");
        *name = "  ".into();
    }
    assert_eq!(refused(&policy, &[], &unknown), CiRule::BlankName);
    assert_eq!(
        refused(&policy, &[], &register("mx-01", "server", None)),
        CiRule::ChangeRequired(ty("server"))
    );
    assert!(matches!(
        refused(&policy, &[], &register("mx 01", "site", None)),
        CiRule::InvalidId { .. }
    ));
    // A service needs its owner from registration on.
    assert_eq!(
        refused(&policy, &[], &register("email", "service", chg("CHG-1"))),
        CiRule::RequiredMissing(name("owner"))
    );
}

#[test]
fn registration_names_its_own_stream() {
    let ids = SequentialIds::new(0);
    let other = ConfigurationItem::stream(&ci("srv-02")).expect("a stream");
    let ctx = Context::new(at(), &ids).with_stream(&other);
    let refusal = CiManagement::decide(
        &ConfigurationItem::default(),
        &register("srv-01", "server", chg("CHG-1")),
        &reference(),
        &ctx,
    )
    .expect_err("refused");
    assert_eq!(refusal.ci, Some(ci("srv-01")));
    assert_eq!(
        refusal.to_string(),
        "configuration item srv-01: register refused: CI srv-01 belongs to stream \
         configuration_item-srv-01, not configuration_item-srv-02"
    );
}

#[test]
fn nothing_but_registration_before_registration() {
    let policy = reference();
    for command in [
        set(&[("os", "linux".into())], None),
        status("live", None),
        CiCommand::Retire {
            reason: String::new(),
            change: None,
        },
        add(Relationship::PART_OF, "dc-1", None),
    ] {
        let refusal = when(&policy, &ConfigurationItem::default(), &command).expect_err("refused");
        assert_eq!(refusal.rule, CiRule::NotRegistered);
        assert_eq!(refusal.ci, None);
    }
}

#[test]
fn change_controlled_types_refuse_an_update_without_a_change() {
    let policy = reference();
    let server = live_server();
    for command in [
        set(&[("os", "linux".into())], None),
        CiCommand::Describe {
            name: "srv-01".into(),
            description: "mail".into(),
            change: None,
        },
        status("maintenance", None),
        add(Relationship::PART_OF, "dc-1", None),
    ] {
        assert_eq!(
            refused(&policy, &server, &command),
            CiRule::ChangeRequired(ty("server")),
            "{command:?}"
        );
    }
    // A site is not under change control.
    let state = given(&policy, &site());
    assert!(when(&policy, &state, &set(&[("country", "PT".into())], None)).is_ok());
}

#[test]
fn attributes_follow_the_type_schema() {
    let policy = reference();
    let server = live_server();
    let c = || chg("CHG-2");
    assert_eq!(
        refused(&policy, &server, &set(&[("colour", "red".into())], c())),
        CiRule::UnknownAttribute(name("colour"))
    );
    assert!(matches!(
        refused(&policy, &server, &set(&[("ram_gb", "lots".into())], c())),
        CiRule::WrongKind { name: n, expected: "a number", .. } if n == name("ram_gb")
    ));
    assert!(matches!(
        refused(&policy, &server, &set(&[("environment", "prod".into())], c())),
        CiRule::ValueNotAllowed { name: n, .. } if n == name("environment")
    ));
    let mut both = set(&[("os", "linux".into())], c());
    if let CiCommand::UpdateAttributes { removed, .. } = &mut both {
        removed.push(name("os"));
    }
    assert_eq!(
        refused(&policy, &server, &both),
        CiRule::SetAndRemoved(name("os"))
    );
    // Setting the same value again, or removing one that is not set, changes nothing.
    let mut history = server;
    history.push(set(&[("os", "linux".into())], c()));
    assert_eq!(
        refused(&policy, &history, &set(&[("os", "linux".into())], c())),
        CiRule::Unchanged
    );
    assert_eq!(
        refused(&policy, &history, &remove("hostname", c())),
        CiRule::Unchanged
    );
    // Only what changes is recorded.
    let state = given(&policy, &history);
    let events = when(
        &policy,
        &state,
        &set(&[("os", "linux".into()), ("ram_gb", 64.into())], c()),
    )
    .expect("accepted");
    assert!(matches!(
        events.as_slice(),
        [CiEvent::AttributesUpdated { set, removed, .. }]
            if set == &attrs(&[("ram_gb", 64.into())]) && removed.is_empty()
    ));
}

#[test]
fn a_required_attribute_cannot_be_removed() {
    let policy = reference();
    let mut service = register("email", "service", chg("CHG-1"));
    if let CiCommand::Register { attributes, .. } = &mut service {
        *attributes = attrs(&[("owner", "ana".into()), ("hours", "24x7".into())]);
    }
    let history = [service];
    assert_eq!(
        refused(&policy, &history, &remove("owner", chg("CHG-2"))),
        CiRule::RequiredRemoved(name("owner"))
    );
    assert!(
        when(
            &policy,
            &given(&policy, &history),
            &remove("hours", chg("CHG-2"))
        )
        .is_ok()
    );
}

#[test]
fn describe_rules() {
    let policy = reference();
    let describe = |name: &str, description: &str| CiCommand::Describe {
        name: name.into(),
        description: description.into(),
        change: chg("CHG-2"),
    };
    assert_eq!(
        refused(&policy, &live_server(), &describe(" ", "x")),
        CiRule::BlankName
    );
    assert_eq!(
        refused(&policy, &live_server(), &describe("srv-01", "")),
        CiRule::Unchanged
    );
    assert!(
        when(
            &policy,
            &given(&policy, &live_server()),
            &describe("srv-01", "mail")
        )
        .is_ok()
    );
}

#[test]
fn status_moves_follow_the_lifecycle() {
    let policy = reference();
    let planned = [register("srv-01", "server", chg("CHG-1"))];
    assert_eq!(
        refused(&policy, &planned, &status("live", chg("CHG-1"))),
        CiRule::StatusMove {
            ci_type: ty("server"),
            from: "planned".into(),
            to: "live".into()
        }
    );
    assert_eq!(
        refused(&policy, &planned, &status("broken", chg("CHG-1"))),
        CiRule::UnknownStatus {
            ci_type: ty("server"),
            status: "broken".into()
        }
    );
    assert_eq!(
        refused(&policy, &planned, &status("planned", chg("CHG-1"))),
        CiRule::Unchanged
    );
    // live -> maintenance -> live, and retirement from maintenance, not from live.
    let retire = CiCommand::Retire {
        reason: "replaced".into(),
        change: chg("CHG-9"),
    };
    assert!(matches!(
        refused(&policy, &live_server(), &retire),
        CiRule::StatusMove { .. }
    ));
    let mut history = live_server();
    history.extend([
        status("maintenance", chg("CHG-2")),
        status("live", chg("CHG-3")),
        status("maintenance", chg("CHG-4")),
    ]);
    let state = given(&policy, &history);
    let events = when(&policy, &state, &retire).expect("accepted");
    assert!(matches!(
        events.as_slice(),
        [CiEvent::StatusChanged { from, to, .. }] if from == "maintenance" && to == "retired"
    ));
}

#[test]
fn a_retired_ci_can_only_be_read() {
    let policy = reference();
    let mut history = site();
    history.push(CiCommand::Retire {
        reason: "closed".into(),
        change: None,
    });
    for command in [
        set(&[("country", "PT".into())], None),
        CiCommand::Describe {
            name: "dc".into(),
            description: String::new(),
            change: None,
        },
        status("live", None),
        CiCommand::Retire {
            reason: String::new(),
            change: None,
        },
        add(Relationship::PART_OF, "x", None),
        CiCommand::RemoveRelationship {
            relationship: Relationship::PART_OF,
            target: ci("x"),
            change: None,
        },
    ] {
        assert_eq!(
            refused(&policy, &history, &command),
            CiRule::Final("retired".into()),
            "{command:?}"
        );
    }
}

/// A type with two final statuses, neither named `retired`.
fn asset_types() -> CmdbPolicy {
    let mut asset = CiTypeDefinition::new(ty("asset"));
    asset.lifecycle = CiLifecycle {
        initial: "in_stock".into(),
        statuses: vec![
            CiStatus::open("in_stock"),
            CiStatus::terminal("sold"),
            CiStatus::terminal("scrapped"),
        ],
        moves: [(
            "in_stock".to_owned(),
            vec!["sold".to_owned(), "scrapped".to_owned()],
        )]
        .into_iter()
        .collect(),
    };
    CmdbPolicy::new(CiTypeRegistry::new([asset]).expect("valid"))
}

#[test]
fn retirement_needs_a_retirement_status() {
    let policy = asset_types();
    let retire = CiCommand::Retire {
        reason: String::new(),
        change: None,
    };
    assert_eq!(
        refused(&policy, &[register("a-1", "asset", None)], &retire),
        CiRule::NoRetirement(ty("asset"))
    );
}

fn directory() -> Arc<dyn CiDirectory> {
    let known: BTreeMap<CiId, CiType> = [
        ("srv-01", "server"),
        ("dc-1", "site"),
        ("sw-1", "network_device"),
        ("db-1", "database"),
    ]
    .into_iter()
    .map(|(id, t)| (ci(id), ty(t)))
    .collect();
    Arc::new(known)
}

#[test]
fn relationships_follow_the_types() {
    let without = reference();
    let with = reference().with_directory(directory());
    let server = live_server();
    let c = || chg("CHG-2");
    assert_eq!(
        refused(&without, &server, &add(Relationship::RUNS_ON, "dc-1", c())),
        CiRule::RelationshipNotAllowed {
            ci_type: ty("server"),
            relationship: Relationship::RUNS_ON
        }
    );
    assert_eq!(
        refused(
            &without,
            &server,
            &add(Relationship::CONNECTS_TO, "srv-01", c())
        ),
        CiRule::SelfRelationship
    );
    // Without a directory the target's type is not checked.
    let state = given(&without, &server);
    assert!(when(&without, &state, &add(Relationship::PART_OF, "db-1", c())).is_ok());
    // With one, the target must be known and of an allowed type.
    assert_eq!(
        refused(&with, &server, &add(Relationship::PART_OF, "db-1", c())),
        CiRule::TargetTypeNotAllowed {
            ci_type: ty("server"),
            relationship: Relationship::PART_OF,
            target: ci("db-1"),
            target_type: ty("database"),
            allowed: vec![ty("site")],
        }
    );
    assert_eq!(
        refused(&with, &server, &add(Relationship::PART_OF, "dc-9", c())),
        CiRule::UnknownTarget(ci("dc-9"))
    );
    let mut history = server;
    history.push(add(Relationship::PART_OF, "dc-1", c()));
    assert_eq!(
        refused(&with, &history, &add(Relationship::PART_OF, "dc-1", c())),
        CiRule::Unchanged
    );
    let remove = |target: &str| CiCommand::RemoveRelationship {
        relationship: Relationship::PART_OF,
        target: ci(target),
        change: chg("CHG-3"),
    };
    assert_eq!(refused(&with, &history, &remove("dc-2")), CiRule::Unchanged);
    let state = given(&with, &history);
    assert!(matches!(
        when(&with, &state, &remove("dc-1"))
            .expect("accepted")
            .as_slice(),
        [CiEvent::RelationshipRemoved { .. }]
    ));
}

#[test]
fn refusals_read_well() {
    let policy = reference();
    let refusal = when(
        &policy,
        &given(&policy, &live_server()),
        &set(&[("os", "linux".into())], None),
    )
    .expect_err("refused");
    assert_eq!(
        refusal.to_string(),
        "configuration item srv-01: update_attributes refused: CI type server is under change \
         control: an update without a change reference is refused"
    );
}
