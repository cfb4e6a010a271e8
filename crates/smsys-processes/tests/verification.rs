//! CMDB verification: a discovered inventory compared with the recorded CIs, the discrepancies
//! and accuracy recorded once as a verification's events.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::DateTime;
use proptest::prelude::*;
use smsys_core::records::configuration_item::CiRegistered;
use smsys_core::records::{
    Attributes, CiEvent, CiId, CmdbVerification, ConfigurationItem, Discrepancy, Reference,
};
use smsys_core::{
    Actor, CommandError, CommandHandler, CommandMeta, Context, EventSourced, SequentialIds, Stamp,
};
use smsys_processes::IncidentManagement;
use smsys_processes::verification::{
    DiscoveredCi, Inventory, InventoryError, VerificationCommand, VerificationManagement,
    VerificationRefusal, compare,
};
use smsys_store::MemoryEventStore;

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("valid")
}

/// A CI as recorded: `attributes` as (name, value) pairs.
fn recorded(
    ci: &str,
    ci_type: &str,
    status: &str,
    attributes: &[(&str, &str)],
) -> ConfigurationItem {
    let mut state = ConfigurationItem::default();
    let attributes: Attributes = attributes
        .iter()
        .map(|(n, v)| (id(n), (*v).into()))
        .collect();
    state.evolve(
        &CiEvent::Registered(CiRegistered {
            id: id(ci),
            ci_type: id(ci_type),
            name: ci.into(),
            description: String::new(),
            status: status.into(),
            attributes,
            change: None,
        }),
        Stamp::new(None, DateTime::UNIX_EPOCH),
    );
    state
}

#[test]
fn every_kind_of_discrepancy_is_found_and_counted() {
    let cmdb = [
        recorded(
            "srv-01",
            "server",
            "live",
            &[("ram_gb", "64"), ("os", "linux")],
        ),
        recorded("srv-02", "server", "live", &[("ram_gb", "32")]),
        recorded("srv-03", "server", "live", &[]),
        recorded("srv-04", "server", "retired", &[]),
        recorded("app-01", "application", "live", &[]),
        recorded("sw-01", "network_device", "live", &[]),
    ];
    let inventory = Inventory::new(
        "nightly scan",
        vec![
            // Matches: only the attributes discovery reports are compared.
            DiscoveredCi::new(id("srv-01"), id("server")).attribute(id("ram_gb"), "64"),
            DiscoveredCi::new(id("srv-02"), id("server"))
                .status("maintenance")
                .attribute(id("ram_gb"), "64")
                .attribute(id("cpu"), "8"),
            DiscoveredCi::new(id("srv-09"), id("server")),
            DiscoveredCi::new(id("sw-01"), id("server")),
        ],
    )
    .expect("valid")
    .covering(vec![id("server"), id("network_device")]);
    let comparison = compare(&inventory, cmdb.iter());
    let found: Vec<(String, Discrepancy)> = comparison
        .discrepancies
        .iter()
        .map(|(ci, d)| (ci.to_string(), d.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "srv-02".into(),
                Discrepancy::StatusDiffers {
                    recorded: "live".into(),
                    discovered: "maintenance".into()
                }
            ),
            (
                "srv-02".into(),
                Discrepancy::AttributeDiffers {
                    name: id("cpu"),
                    recorded: None,
                    discovered: Some("8".into())
                }
            ),
            (
                "srv-02".into(),
                Discrepancy::AttributeDiffers {
                    name: id("ram_gb"),
                    recorded: Some("32".into()),
                    discovered: Some("64".into())
                }
            ),
            ("srv-03".into(), Discrepancy::NotDiscovered),
            (
                "srv-09".into(),
                Discrepancy::NotRecorded {
                    discovered_type: id("server")
                }
            ),
            (
                "sw-01".into(),
                Discrepancy::TypeDiffers {
                    recorded: id("network_device"),
                    discovered: id("server")
                }
            ),
        ]
    );
    // srv-01..03, srv-09, sw-01 checked (the retired server and the application are not
    // expected); only srv-01 matches.
    assert_eq!((comparison.checked, comparison.matching), (5, 1));
    assert!((comparison.accuracy() - 0.2).abs() < 1e-9);
}

#[test]
fn an_inventory_lists_each_ci_once_and_names_its_source() {
    let twice = Inventory::new(
        "scan",
        vec![
            DiscoveredCi::new(id("srv-01"), id("server")),
            DiscoveredCi::new(id("srv-01"), id("server")),
        ],
    );
    assert_eq!(
        twice.map(|_| ()),
        Err(InventoryError::Duplicate {
            source_name: "scan".into(),
            ci: id("srv-01")
        })
    );
    assert_eq!(
        Inventory::new(" ", Vec::new()).map(|_| ()),
        Err(InventoryError::NoSource)
    );
    let empty = Inventory::new("scan", Vec::new()).expect("valid");
    let comparison = compare(&empty, []);
    assert_eq!((comparison.checked, comparison.accuracy()), (0, 1.0));
}

#[tokio::test]
async fn a_verification_is_recorded_once_with_its_accuracy() {
    let store = Arc::new(MemoryEventStore::new());
    let handler = CommandHandler::<VerificationManagement>::new(store, ());
    let cmdb = [
        recorded("srv-01", "server", "live", &[]),
        recorded("srv-02", "server", "live", &[]),
    ];
    let inventory =
        Inventory::new("scan", vec![DiscoveredCi::new(id("srv-01"), id("server"))]).expect("valid");
    let reference: Reference = id("VER-2026-11");
    let stream = CmdbVerification::stream(&reference).expect("valid");
    let command = VerificationCommand::Record {
        reference: reference.clone(),
        comparison: compare(&inventory, cmdb.iter()),
    };
    let ids = SequentialIds::new(1);
    let ctx = Context::new(DateTime::UNIX_EPOCH, &ids);
    let meta = CommandMeta::new(Actor::new("auditor").expect("valid"));
    handler
        .execute(&stream, &command, &meta, &ctx)
        .await
        .expect("recorded");
    let state = handler.load(&stream).await.expect("loads").state;
    assert_eq!(state.reference(), Some(&reference));
    assert_eq!(
        state.discrepancies(),
        [(id::<CiId, _>("srv-02"), Discrepancy::NotDiscovered)].as_slice()
    );
    assert_eq!(state.outcome(), Some((2, 1)));
    assert_eq!(state.accuracy(), Some(0.5));
    let again = handler.execute(&stream, &command, &meta, &ctx).await;
    assert!(matches!(
        again,
        Err(CommandError::Rejected(
            VerificationRefusal::AlreadyRecorded(_)
        ))
    ));
}

proptest! {
    /// On random estates and inventories: every CI of either side is checked once; a CI
    /// matches exactly when it is on both sides with the same type and attributes; and every
    /// CI on one side only is reported as such.
    #[test]
    fn the_counts_agree_with_the_sets(
        recorded_ids in proptest::collection::btree_set(0..20u8, 0..12),
        discovered_ids in proptest::collection::btree_set(0..20u8, 0..12),
        differ in proptest::collection::btree_set(0..20u8, 0..6),
    ) {
        let name = |n: u8| format!("ci-{n:02}");
        let cmdb: Vec<ConfigurationItem> = recorded_ids
            .iter()
            .map(|n| recorded(&name(*n), "server", "live", &[("ram_gb", "32")]))
            .collect();
        let items = discovered_ids
            .iter()
            .map(|n| {
                let ram = if differ.contains(n) { "64" } else { "32" };
                DiscoveredCi::new(id(&name(*n)), id("server")).attribute(id("ram_gb"), ram)
            })
            .collect();
        let comparison = compare(&Inventory::new("scan", items).expect("valid"), cmdb.iter());
        let union: BTreeSet<u8> = recorded_ids.union(&discovered_ids).copied().collect();
        let both: BTreeSet<u8> = recorded_ids.intersection(&discovered_ids).copied().collect();
        let matching = both.iter().filter(|n| !differ.contains(n)).count();
        prop_assert_eq!(comparison.checked as usize, union.len());
        prop_assert_eq!(comparison.matching as usize, matching);
        for n in recorded_ids.difference(&discovered_ids) {
            prop_assert!(comparison.discrepancies.contains(&(id(&name(*n)), Discrepancy::NotDiscovered)));
        }
        let not_recorded = comparison
            .discrepancies
            .iter()
            .filter(|(_, d)| matches!(d, Discrepancy::NotRecorded { .. }))
            .count();
        prop_assert_eq!(not_recorded, discovered_ids.difference(&recorded_ids).count());
    }
}

#[tokio::test]
async fn discrepancies_of_the_policys_kinds_open_one_incident_or_change_each() {
    use smsys_core::records::{Change, ChangeKind, Incident, RecordKind};
    use smsys_core::{LogFilter, Position, ProjectionRunner, Reacting};
    use smsys_processes::IncidentPolicy;
    use smsys_processes::change::{ChangeManagement, ChangePolicy};
    use smsys_processes::verification::{
        DiscrepancyChangePolicy, DiscrepancyChanges, DiscrepancyIncidents, DiscrepancyKind,
        DiscrepancyPolicy,
    };

    let store = Arc::new(MemoryEventStore::new());
    let verifications = CommandHandler::<VerificationManagement>::new(store.clone(), ());
    let cmdb = [
        recorded("srv-01", "server", "live", &[("ram_gb", "32")]),
        recorded("srv-02", "server", "live", &[]),
    ];
    let inventory = Inventory::new(
        "scan",
        vec![
            DiscoveredCi::new(id("srv-01"), id("server")).attribute(id("ram_gb"), "64"),
            DiscoveredCi::new(id("srv-07"), id("server")),
        ],
    )
    .expect("valid");
    let reference: Reference = id("VER-1");
    let ids = SequentialIds::new(1);
    let ctx = Context::new(DateTime::UNIX_EPOCH, &ids);
    let meta = CommandMeta::new(Actor::new("auditor").expect("valid"));
    verifications
        .execute(
            &CmdbVerification::stream(&reference).expect("valid"),
            &VerificationCommand::Record {
                reference,
                comparison: compare(&inventory, cmdb.iter()),
            },
            &meta,
            &ctx,
        )
        .await
        .expect("recorded");
    let policy = DiscrepancyPolicy {
        open_incident_for: vec![DiscrepancyKind::NotRecorded, DiscrepancyKind::NotDiscovered],
        service: id("cmdb"),
        caller: id("config.manager"),
        reference_prefix: "INC-CMDB".into(),
    };
    let reactor = |name: &str| {
        DiscrepancyIncidents::new(
            CommandHandler::new(store.clone(), IncidentPolicy::default()),
            Actor::new("smsys.verification").expect("valid"),
            policy.clone(),
        )
        .named(name)
    };
    let runner = ProjectionRunner::new(store.clone());
    for name in ["discrepancy-incidents", "discrepancy-incidents", "renamed"] {
        let reacting = Reacting::new(reactor(name), Arc::new(MemoryEventStore::new()));
        runner.catch_up(&reacting).await.expect("reacts");
    }
    let mut logged = Vec::new();
    let mut all =
        smsys_core::EventStore::read_all(store.as_ref(), Position::START, LogFilter::all());
    while let Some(event) = futures::StreamExt::next(&mut all).await {
        let event = event.expect("reads");
        if event.data.event_type().as_str() == "incident.logged" {
            logged.push(event.stream.clone());
        }
    }
    // By CI: the attribute difference on srv-01 (stream version 2) opens nothing; srv-02 not
    // discovered (3) and srv-07 not recorded (4) open one each, once.
    let expected: Vec<_> = ["INC-CMDB-VER-1-3", "INC-CMDB-VER-1-4"]
        .iter()
        .map(|r| Incident::stream(&id(r)).expect("valid"))
        .collect();
    assert_eq!(logged, expected);
    drop(all);
    let incidents = CommandHandler::<IncidentManagement>::new(store, IncidentPolicy::default());
    let first = incidents.load(&expected[0]).await.expect("loads").state;
    assert_eq!(
        first.record().summary(),
        "srv-02 is in the CMDB but was not found"
    );
    assert_eq!(
        first.record().affected_cis(),
        [id::<CiId, _>("srv-02")].as_slice()
    );

    // The attribute difference on srv-01 (stream version 2) opens a change, once.
    let change_policy = DiscrepancyChangePolicy {
        open_change_for: vec![DiscrepancyKind::AttributeDiffers],
        service: id("cmdb"),
        requester: id("config.manager"),
        reference_prefix: "CHG-CMDB".into(),
    };
    for name in ["discrepancy-changes", "discrepancy-changes"] {
        let reactor = DiscrepancyChanges::new(
            CommandHandler::new(incidents.store().clone(), ChangePolicy::default()),
            Actor::new("smsys.verification").expect("valid"),
            change_policy.clone(),
        )
        .named(name);
        let reacting = Reacting::new(reactor, Arc::new(MemoryEventStore::new()));
        runner.catch_up(&reacting).await.expect("reacts");
    }
    let mut opened = Vec::new();
    let mut all = incidents
        .store()
        .read_all(Position::START, LogFilter::all());
    while let Some(event) = futures::StreamExt::next(&mut all).await {
        let event = event.expect("reads");
        if event.data.event_type().as_str() == "change.logged" {
            opened.push(event.stream.clone());
        }
    }
    let change = Change::stream(&id("CHG-CMDB-VER-1-2")).expect("valid");
    assert_eq!(opened, std::slice::from_ref(&change));
    drop(all);
    let changes =
        CommandHandler::<ChangeManagement>::new(incidents.store().clone(), ChangePolicy::default());
    let opened = changes.load(&change).await.expect("loads").state;
    assert_eq!(opened.kind(), Some(ChangeKind::Normal));
    assert_eq!(
        opened.record().affected_cis(),
        [id::<CiId, _>("srv-01")].as_slice()
    );
}

#[test]
fn a_ci_recorded_outside_the_scope_or_retired_is_not_reported_unrecorded() {
    let cmdb = [
        recorded("srv-01", "application", "live", &[]),
        recorded("srv-02", "server", "retired", &[]),
    ];
    let inventory = Inventory::new(
        "scan",
        vec![
            DiscoveredCi::new(id("srv-01"), id("server")),
            DiscoveredCi::new(id("srv-02"), id("server")),
        ],
    )
    .expect("valid")
    .covering(vec![id("server")]);
    let comparison = compare(&inventory, cmdb.iter());
    assert_eq!(
        comparison.discrepancies,
        vec![
            (
                id("srv-01"),
                Discrepancy::TypeDiffers {
                    recorded: id("application"),
                    discovered: id("server")
                }
            ),
            (
                id("srv-02"),
                Discrepancy::StatusDiffers {
                    recorded: "retired".into(),
                    discovered: "discovered".into()
                }
            ),
        ]
    );
    assert_eq!((comparison.checked, comparison.matching), (2, 0));
}

#[tokio::test]
async fn a_verification_reference_too_long_for_an_incident_gets_a_digest() {
    use smsys_core::{ProjectionRunner, Reacting};
    use smsys_processes::IncidentPolicy;
    use smsys_processes::verification::{DiscrepancyIncidents, DiscrepancyKind, DiscrepancyPolicy};

    let store = Arc::new(MemoryEventStore::new());
    let verifications = CommandHandler::<VerificationManagement>::new(store.clone(), ());
    let inventory =
        Inventory::new("scan", vec![DiscoveredCi::new(id("srv-7"), id("server"))]).expect("valid");
    let reference: Reference = id(&format!("VER-{}", "x".repeat(120)));
    let ids = SequentialIds::new(1);
    let ctx = Context::new(DateTime::UNIX_EPOCH, &ids);
    let meta = CommandMeta::new(Actor::new("auditor").expect("valid"));
    verifications
        .execute(
            &CmdbVerification::stream(&reference).expect("valid"),
            &VerificationCommand::Record {
                reference,
                comparison: compare(&inventory, []),
            },
            &meta,
            &ctx,
        )
        .await
        .expect("recorded");
    let opener = DiscrepancyIncidents::new(
        CommandHandler::new(store.clone(), IncidentPolicy::default()),
        Actor::new("smsys.verification").expect("valid"),
        DiscrepancyPolicy {
            open_incident_for: vec![DiscrepancyKind::NotRecorded],
            service: id("cmdb"),
            caller: id("config.manager"),
            reference_prefix: "INC-CMDB".into(),
        },
    );
    ProjectionRunner::new(store.clone())
        .catch_up(&Reacting::new(opener, Arc::new(MemoryEventStore::new())))
        .await
        .expect("a long reference does not stop the reactor");
    let mut all = smsys_core::EventStore::read_all(
        store.as_ref(),
        smsys_core::Position::START,
        smsys_core::LogFilter::all(),
    );
    let mut opened = Vec::new();
    while let Some(event) = futures::StreamExt::next(&mut all).await {
        let event = event.expect("reads");
        if event.data.event_type().as_str() == "incident.logged" {
            opened.push(event.stream.entity_id().to_owned());
        }
    }
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert!(
        opened[0].starts_with("INC-CMDB-") && opened[0].len() < 40,
        "{opened:?}"
    );
}
