//! The CI type registry: its validation errors name the type and field; the reference types
//! file loads with the relationships and change control it documents.

use super::*;

fn registry_error(toml: &str) -> CiTypeError {
    CiTypeRegistry::from_toml(toml).expect_err("refused")
}

#[test]
fn the_registry_names_the_type_and_field_at_fault() {
    let two = "[[type]]\nname = \"site\"\n[[type]]\nname = \"site\"\n";
    assert_eq!(registry_error(two), CiTypeError::Duplicate(ty("site")));
    let target = "[[type]]\nname = \"server\"\nrelationships.part_of = [\"rack\"]\n";
    assert_eq!(
        registry_error(target).to_string(),
        "CI type server: relationships.part_of names unknown CI type rack"
    );
    let none = "[[type]]\nname = \"server\"\nrelationships.part_of = []\n";
    assert!(matches!(
        registry_error(none),
        CiTypeError::NoTargetTypes { .. }
    ));
    let choice = "[[type]]\nname = \"server\"\nattributes.env = { kind = \"choice\" }\n";
    assert_eq!(
        registry_error(choice).to_string(),
        "CI type server: attributes.env.allowed is empty for a choice"
    );
    let lifecycle = |body: &str| format!("[[type]]\nname = \"server\"\n[type.lifecycle]\n{body}");
    let initial = lifecycle("initial = \"new\"\nstatuses = [{ name = \"live\" }]\n");
    assert_eq!(
        registry_error(&initial),
        CiTypeError::InitialMissing {
            ci_type: ty("server"),
            initial: "new".into()
        }
    );
    let moves = lifecycle(
        "initial = \"live\"\nstatuses = [{ name = \"live\" }]\nmoves = { live = [\"gone\"] }\n",
    );
    assert_eq!(
        registry_error(&moves).to_string(),
        "CI type server: lifecycle.moves names unknown status \"gone\""
    );
    let twice =
        lifecycle("initial = \"live\"\nstatuses = [{ name = \"live\" }, { name = \"live\" }]\n");
    assert!(matches!(
        registry_error(&twice),
        CiTypeError::DuplicateStatus { .. }
    ));
    let final_initial =
        lifecycle("initial = \"gone\"\nstatuses = [{ name = \"gone\", final = true }]\n");
    assert!(matches!(
        registry_error(&final_initial),
        CiTypeError::InitialFinal { .. }
    ));
    let out = lifecycle(
        "initial = \"live\"\nstatuses = [{ name = \"live\" }, { name = \"gone\", final = true }]\n\
         moves = { live = [\"gone\"], gone = [\"live\"] }\n",
    );
    assert!(matches!(
        registry_error(&out),
        CiTypeError::MoveFromFinal { .. }
    ));
    let blank =
        lifecycle("initial = \"live\"\nstatuses = [{ name = \"live\" }, { name = \" \" }]\n");
    assert!(matches!(
        registry_error(&blank),
        CiTypeError::BlankStatus { .. }
    ));
    assert!(matches!(
        registry_error("[[type]]\nname = \"server\"\ncolour = \"red\"\n"),
        CiTypeError::Parse(e) if e.contains("colour")
    ));
    assert!(matches!(
        registry_error("[[type]]\nname = \"Server\"\n"),
        CiTypeError::Parse(_)
    ));
}

#[test]
fn the_reference_types_file_loads() {
    let types = CiTypeRegistry::from_toml(REFERENCE_TYPES_TOML).expect("valid");
    assert_eq!(&types, CmdbPolicy::reference().types());
    let get = |name: &str| types.get(&ty(name)).expect("defined");
    let service = get("service");
    assert!(service.change_controlled);
    for attribute in ["owner", "customers", "hours", "sla", "ola"] {
        assert!(
            service.attributes.get(&name(attribute)).is_some(),
            "{attribute}"
        );
    }
    assert!(
        service
            .attributes
            .get(&name("owner"))
            .is_some_and(|s| s.required_at_log)
    );
    let targets = |t: &str, r: Relationship| get(t).targets(&r).map(<[CiType]>::to_vec);
    let types_of = |names: &[&str]| Some(names.iter().map(|n| ty(n)).collect::<Vec<_>>());
    assert_eq!(
        targets("service", Relationship::DEPENDS_ON),
        types_of(&["application", "service"])
    );
    assert_eq!(
        targets("application", Relationship::RUNS_ON),
        types_of(&["server"])
    );
    assert_eq!(
        targets("application", Relationship::DEPENDS_ON),
        types_of(&["database", "application", "service"])
    );
    assert_eq!(
        targets("database", Relationship::RUNS_ON),
        types_of(&["server"])
    );
    assert_eq!(
        targets("server", Relationship::PART_OF),
        types_of(&["site"])
    );
    assert_eq!(
        targets("server", Relationship::CONNECTS_TO),
        types_of(&["network_device"])
    );
    assert_eq!(
        targets("network_device", Relationship::CONNECTS_TO),
        types_of(&["network_device"])
    );
    assert_eq!(
        targets("network_device", Relationship::PART_OF),
        types_of(&["site"])
    );
    for controlled in [
        "service",
        "application",
        "database",
        "server",
        "network_device",
    ] {
        assert!(get(controlled).change_controlled, "{controlled}");
    }
    assert!(!get("site").change_controlled);
    for definition in types.iter() {
        assert_eq!(
            definition.lifecycle,
            CiLifecycle::default(),
            "{}",
            definition.name
        );
    }
}
