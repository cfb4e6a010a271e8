//! The known error catalogue: fed through a real in-memory store by the projection runner, it
//! offers published known errors only, matches incidents by CI, service and category, strongest
//! first; and fed a desk's events one at a time, it offers exactly what the state says.

use std::sync::Arc;

use proptest::prelude::*;
use smsys_core::records::{Channel, CiId, Incident, KnownError, LinkKind, RecordKind, Reference};
use smsys_core::{
    CommandError, CommandHandler, CommandMeta, Context, EventData, EventId, EventStore, Metadata,
    Position, Projection, ProjectionRunner, RecordedEvent, SequentialIds, Version,
};
use smsys_processes::incident::IncidentCommand;
use smsys_processes::known_error::catalogue::{IncidentProfile, KnownErrorCatalogue};
use smsys_processes::known_error::{KnownErrorCommand, LogKnownError};
use smsys_processes::{KnownErrorManagement, KnownErrorPolicy, LogRecord, RecordCommand};
use smsys_store::MemoryEventStore;

use crate::harness::{KnownErrors, actor, id, revise, t0};

/// Known errors on an in-memory store, decided by the command handler.
struct Catalogued {
    store: Arc<MemoryEventStore>,
    handler: CommandHandler<KnownErrorManagement>,
    ids: SequentialIds,
}

impl Catalogued {
    fn new() -> Self {
        let store = Arc::new(MemoryEventStore::new());
        let dyn_store: Arc<dyn EventStore> = store.clone();
        Self {
            handler: CommandHandler::new(dyn_store, KnownErrorPolicy::default()),
            store,
            ids: SequentialIds::new(0),
        }
    }

    async fn run(&self, reference: &str, command: impl Into<KnownErrorCommand>) {
        let stream = KnownError::stream(&id(reference)).expect("a stream");
        let ctx = Context::new(t0(), &self.ids);
        let meta = CommandMeta::new(actor("frank"));
        match self
            .handler
            .execute(&stream, &command.into(), &meta, &ctx)
            .await
        {
            Ok(_) => {}
            Err(CommandError::Rejected(refusal)) => panic!("refused: {refusal}"),
            Err(other) => panic!("failed: {other}"),
        }
    }

    /// Logs `reference` for `service` affecting `cis`, with a workaround, and publishes it.
    async fn publish(&self, reference: &str, service: &str, cis: &[&str]) {
        let record = LogRecord::new(
            id(reference),
            id("ana"),
            Channel::Portal,
            id(service),
            "mail bounces",
        )
        .affected_cis(cis.iter().map(|c| id(c)).collect());
        let log = LogKnownError::new(record, format!("symptom of {reference}"))
            .workaround(format!("workaround of {reference}"))
            .problem(id("PRB-1"));
        self.run(reference, KnownErrorCommand::Log(log)).await;
        self.run(reference, KnownErrorCommand::Publish).await;
    }

    /// A new catalogue caught up with the store.
    async fn catalogue(&self) -> KnownErrorCatalogue {
        let catalogue = KnownErrorCatalogue::new();
        let store: Arc<dyn EventStore> = self.store.clone();
        ProjectionRunner::new(store)
            .with_batch_size(3)
            .catch_up(&catalogue)
            .await
            .expect("caught up");
        catalogue
    }
}

fn references(catalogue: &KnownErrorCatalogue, profile: &IncidentProfile) -> Vec<String> {
    catalogue
        .matching(profile)
        .iter()
        .map(|m| m.reference.to_string())
        .collect()
}

#[tokio::test]
async fn the_catalogue_offers_published_known_errors_strongest_match_first() {
    let c = Catalogued::new();
    c.publish("KE-0001", "email", &["mx-01"]).await;
    c.publish("KE-0002", "web", &[]).await;
    c.run(
        "KE-0002",
        RecordCommand::Classify {
            category: "mail".into(),
            subcategory: None,
        },
    )
    .await;
    c.publish("KE-0003", "email", &[]).await;
    c.publish("KE-0004", "web", &["mx-09"]).await;
    c.run(
        "KE-0004",
        RecordCommand::Link {
            kind: LinkKind::CONFIGURATION_ITEM,
            target: "mx-02".into(),
        },
    )
    .await;
    // A draft on the same CI, and a retired and a discarded known error, are never offered.
    let draft = LogKnownError::new(
        LogRecord::new(id("KE-0005"), id("ana"), Channel::Portal, id("email"), "s")
            .affected_cis(vec![id("mx-01")]),
        "draft symptom",
    )
    .workaround("w");
    c.run("KE-0005", KnownErrorCommand::Log(draft.clone()))
        .await;
    c.publish("KE-0006", "email", &["mx-01"]).await;
    c.run(
        "KE-0006",
        KnownErrorCommand::Retire {
            reason: "fixed".into(),
            superseded_by: Some(id("KE-0001")),
        },
    )
    .await;
    let mut discarded = draft;
    discarded.record.reference = id("KE-0007");
    c.run("KE-0007", KnownErrorCommand::Log(discarded)).await;
    c.run(
        "KE-0007",
        RecordCommand::Cancel {
            reason: "never confirmed".into(),
        },
    )
    .await;

    let catalogue = c.catalogue().await;
    let profile = IncidentProfile {
        cis: vec![id("mx-01"), id("mx-02")],
        service: Some(id("email")),
        category: Some("mail".into()),
    };
    assert_eq!(
        references(&catalogue, &profile),
        ["KE-0001", "KE-0004", "KE-0003", "KE-0002"],
        "CI and service, CI (linked), service, category"
    );
    let found = catalogue.matching(&profile);
    assert_eq!(found[0].matched.cis, [id::<CiId>("mx-01")]);
    assert!(found[0].matched.service && !found[0].matched.category);
    assert!(found[1].matched.ci() && !found[1].matched.service);
    assert!(!found[2].matched.ci() && found[2].matched.service);
    assert!(found[3].matched.category && !found[3].matched.service);
    assert_eq!(found[0].symptom, "symptom of KE-0001");
    assert_eq!(
        found[0].workaround.as_deref(),
        Some("workaround of KE-0001")
    );
    assert_eq!(found[0].problem, Some(id("PRB-1")));
    assert_eq!(found[0].version.get(), 1);
    for hidden in ["KE-0005", "KE-0006", "KE-0007"] {
        assert_eq!(catalogue.get(&id(hidden)), None, "{hidden}");
    }
    assert_eq!(catalogue.offered().len(), 4);
    assert!(catalogue.matching(&IncidentProfile::default()).is_empty());
    // Ties by reference.
    let by_service = IncidentProfile {
        service: Some(id("email")),
        ..IncidentProfile::default()
    };
    assert_eq!(references(&catalogue, &by_service), ["KE-0001", "KE-0003"]);
}

#[tokio::test]
async fn a_revision_replaces_the_offered_content_and_a_retirement_withdraws_it() {
    let c = Catalogued::new();
    c.publish("KE-0001", "email", &["mx-01"]).await;
    let catalogue = KnownErrorCatalogue::new();
    let store: Arc<dyn EventStore> = c.store.clone();
    let runner = ProjectionRunner::new(store);
    runner.catch_up(&catalogue).await.expect("caught up");
    let reference: Reference = id("KE-0001");
    assert_eq!(catalogue.get(&reference).map(|o| o.version.get()), Some(1));

    c.run("KE-0001", revise(Some("restart mx"))).await;
    runner.catch_up(&catalogue).await.expect("caught up");
    let offered = catalogue.get(&reference).expect("offered");
    assert_eq!(offered.version.get(), 2);
    assert_eq!(offered.content.workaround.as_deref(), Some("restart mx"));
    let on_new_ci = IncidentProfile {
        cis: vec![id("mx-02")],
        ..IncidentProfile::default()
    };
    assert_eq!(references(&catalogue, &on_new_ci), ["KE-0001"]);

    c.run(
        "KE-0001",
        KnownErrorCommand::Retire {
            reason: "fixed".into(),
            superseded_by: None,
        },
    )
    .await;
    runner.catch_up(&catalogue).await.expect("caught up");
    assert_eq!(catalogue.get(&reference), None);
    assert!(catalogue.matching(&on_new_ci).is_empty());
}

#[tokio::test]
async fn events_delivered_again_change_nothing() {
    let c = Catalogued::new();
    c.publish("KE-0001", "email", &["mx-01"]).await;
    c.run("KE-0001", revise(Some("restart mx"))).await;
    let catalogue = c.catalogue().await;
    let checkpoint = catalogue.checkpoint().await.expect("held").expect("some");
    let before = catalogue.offered();
    let events: Vec<RecordedEvent> = {
        use futures::StreamExt;
        let all = c.store.read_all(Position::START, catalogue.filter());
        all.map(|e| e.expect("reads")).collect().await
    };
    catalogue.apply(&events, checkpoint).await.expect("applied");
    assert_eq!(catalogue.offered(), before);
    assert_eq!(before[&id("KE-0001")].version.get(), 2);
}

#[test]
fn an_incident_profile_holds_its_affected_and_linked_cis_service_and_category() {
    let mut d = crate::harness::Incidents::logged();
    d.ok(RecordCommand::Link {
        kind: LinkKind::CONFIGURATION_ITEM,
        target: "mx-02".into(),
    });
    d.ok(RecordCommand::Link {
        kind: LinkKind::PROBLEM,
        target: "PRB-1".into(),
    });
    d.ok(IncidentCommand::Record(RecordCommand::Classify {
        category: "mail".into(),
        subcategory: None,
    }));
    let incident: &Incident = &d.state;
    let profile = IncidentProfile::of(incident);
    assert_eq!(profile.cis, [id::<CiId>("mx-01"), id("mx-02")]);
    assert_eq!(profile.service, Some(id("email")));
    assert_eq!(profile.category.as_deref(), Some("mail"));
}

/// `d`'s events as a store records them on stream `known_error-R-1`.
fn recorded(d: &KnownErrors) -> Vec<RecordedEvent> {
    use smsys_core::DomainEvent;
    let stream = KnownError::stream(&id("R-1")).expect("a stream");
    let mut previous = None;
    d.events
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = u64::try_from(i + 1).expect("small");
            let event_id =
                EventId::from_uuid(uuid::Uuid::from_u128(u128::from(n))).expect("non-nil");
            let who = r.actor.clone().unwrap_or_else(|| actor("system"));
            let data = EventData::new(
                r.event.event_type(),
                r.event.schema_version(),
                r.event.to_payload().expect("encodes"),
                Metadata::new(event_id, who, r.at),
            )
            .expect("valid");
            let event = RecordedEvent::record(
                stream.clone(),
                Version::new(n),
                Position::from_sequence(n),
                data,
                r.at,
                previous.take(),
            );
            previous = Some(event.hash);
            event
        })
        .collect()
}

/// Feeds the catalogue `d`'s events one at a time: after each, it offers `R-1` exactly while
/// the state then is published and not retired, with its latest version's content.
pub(crate) fn offers_exactly_the_published(d: &KnownErrors) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let catalogue = KnownErrorCatalogue::new();
    let mut state = KnownError::default();
    let reference: Reference = id("R-1");
    for (event, r) in recorded(d).iter().zip(&d.events) {
        runtime
            .block_on(catalogue.apply(std::slice::from_ref(event), event.position))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        smsys_core::EventSourced::evolve(
            &mut state,
            &r.event,
            smsys_core::Stamp::new(r.actor.as_ref(), r.at),
        );
        let offered = catalogue.get(&reference);
        let published = state.published().filter(|_| {
            state.retired().is_none() && !state.record().phase().is_some_and(|p| p.is_final())
        });
        match (offered, published) {
            (None, None) => {}
            (Some(o), Some(p)) => {
                prop_assert_eq!(o.version, p.version);
                prop_assert_eq!(&o.content, &p.content);
                prop_assert_eq!(&o.content, state.content(), "the latest content");
            }
            (o, p) => prop_assert!(false, "offered {:?} but published {:?}", o, p),
        }
        if state.retired().is_some() {
            prop_assert!(
                catalogue.offered().is_empty(),
                "a retired known error offered"
            );
        }
    }
    Ok(())
}
