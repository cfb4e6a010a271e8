//! What raises a nonconformity by itself: a breached SLA target and a failed change, each
//! once over two runs, linked to its source; nothing when the policy says no.

use std::sync::Arc;

use chrono::TimeDelta;
use smsys::core::records::change::{ChangeControlEvent, ChangeLogged, ImplementationOutcome};
use smsys::core::records::{
    Change, ChangeKind, Channel, DefinitionRef, Incident, LinkKind, Logged, Nonconformity,
    NonconformitySource, RecordEvent, RecordKind, TypedEvent,
};
use smsys::core::{
    Actor, CommandHandler, DomainEvent, EventData, EventId, EventStore, ExpectedVersion, Metadata,
    ProjectionRunner, Reacting,
};
use smsys::processes::nonconformity::reactors::NonconformityRaising;
use smsys::processes::nonconformity::{
    NonconformityManagement, NonconformityPolicy, RaisingPolicy,
};
use smsys::store::MemoryEventStore;

use crate::harness::{id, t0};

/// Appends `events` to the stream of record `reference` of type `K`, numbered from `n`.
async fn append<K: RecordKind>(
    store: &Arc<dyn EventStore>,
    reference: &str,
    events: Vec<TypedEvent<K>>,
    n: u128,
) {
    let stream = K::stream(&id(reference)).expect("stream");
    let actor = Actor::new("sla-driver").expect("valid");
    let data = events
        .iter()
        .zip(n..)
        .map(|(event, n)| {
            let event_id = EventId::from_uuid(uuid::Uuid::from_u128(n)).expect("valid id");
            let at = t0() + TimeDelta::minutes(n as i64);
            EventData::new(
                event.event_type(),
                event.schema_version(),
                event.to_payload().expect("encodes"),
                Metadata::new(event_id, actor.clone(), at),
            )
            .expect("valid event")
        })
        .collect();
    store
        .append(&stream, ExpectedVersion::Any, data)
        .await
        .expect("appends");
}

fn logged(reference: &str, lifecycle: &str, status: &str) -> Logged {
    Logged {
        reference: id(reference),
        lifecycle: DefinitionRef {
            name: lifecycle.into(),
            version: 1,
        },
        status: status.into(),
        caller: id("ana"),
        channel: Channel::Phone,
        service: id("email"),
        affected_cis: vec![id("mx-01")],
        summary: "mail is down".into(),
        description: String::new(),
        attributes: Default::default(),
    }
}

/// A store with an incident whose resolution target was breached and a change that failed
/// (and one that succeeded).
async fn estate() -> Arc<dyn EventStore> {
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let breached = RecordEvent::SlaBreached {
        timer: "resolution".into(),
        sla: DefinitionRef {
            name: "desk".into(),
            version: 1,
        },
        cycle: 1,
        at: t0(),
    };
    let incident: Vec<TypedEvent<Incident>> = vec![
        TypedEvent::Logged(logged("INC-0007", "incident", "new")),
        TypedEvent::Record(breached),
    ];
    append(&store, "INC-0007", incident, 1).await;
    let change = |reference: &str, outcome| -> Vec<TypedEvent<Change>> {
        vec![
            TypedEvent::Logged(ChangeLogged {
                record: logged(reference, "change_normal", "new"),
                kind: ChangeKind::Normal,
                template: None,
            }),
            TypedEvent::Own(ChangeControlEvent::Implemented {
                outcome,
                notes: "script error".into(),
            }),
        ]
    };
    append(
        &store,
        "CHG-0003",
        change("CHG-0003", ImplementationOutcome::Failed),
        10,
    )
    .await;
    append(
        &store,
        "CHG-0004",
        change("CHG-0004", ImplementationOutcome::Success),
        20,
    )
    .await;
    store
}

fn handler(
    store: &Arc<dyn EventStore>,
    raising: RaisingPolicy,
) -> CommandHandler<NonconformityManagement> {
    CommandHandler::new(
        store.clone(),
        NonconformityPolicy::default().with_raising(raising),
    )
}

/// Runs the reactor from a fresh checkpoint (a node that remembers nothing).
async fn react(store: &Arc<dyn EventStore>, raising: RaisingPolicy) {
    let reactor = NonconformityRaising::new(
        handler(store, raising),
        Actor::new("quality-bot").expect("valid"),
    );
    let checkpoints = Arc::new(MemoryEventStore::new());
    ProjectionRunner::new(store.clone())
        .with_batch_size(2)
        .catch_up(&Reacting::new(reactor, checkpoints))
        .await
        .expect("reacts");
}

async fn nonconformities(store: &Arc<dyn EventStore>) -> Vec<Nonconformity> {
    use futures::StreamExt;
    let all: Vec<_> = store
        .read_all(smsys::core::Position::START, smsys::core::LogFilter::all())
        .map(|e| e.expect("reads"))
        .collect()
        .await;
    let mut streams: Vec<_> = all
        .iter()
        .filter(|e| e.stream.category_str() == "nonconformity")
        .map(|e| e.stream.clone())
        .collect();
    streams.dedup();
    let handler = handler(store, RaisingPolicy::NONE);
    let mut loaded = Vec::new();
    for stream in streams {
        loaded.push(handler.load(&stream).await.expect("loads").state);
    }
    loaded
}

#[tokio::test]
async fn a_breach_and_a_failed_change_raise_one_nonconformity_each_over_two_runs() {
    let store = estate().await;
    react(&store, RaisingPolicy::ALL).await;
    let first = store.read_all(smsys::core::Position::START, smsys::core::LogFilter::all());
    let count = futures::StreamExt::count(first).await;
    react(&store, RaisingPolicy::ALL).await;
    let again = store.read_all(smsys::core::Position::START, smsys::core::LogFilter::all());
    assert_eq!(
        futures::StreamExt::count(again).await,
        count,
        "a second run records nothing"
    );
    let raised = nonconformities(&store).await;
    let sources: Vec<NonconformitySource> = raised
        .iter()
        .filter_map(|nc| nc.source().cloned())
        .collect();
    assert_eq!(
        sources,
        vec![
            NonconformitySource::SlaBreach {
                record: id("INC-0007"),
                timer: "resolution".into(),
            },
            NonconformitySource::FailedChange {
                change: id("CHG-0003"),
            },
        ]
    );
    let links: Vec<Vec<(LinkKind, String)>> = raised
        .iter()
        .map(|nc| nc.record().links().to_vec())
        .collect();
    assert_eq!(
        links,
        vec![
            vec![(LinkKind::INCIDENT, "INC-0007".to_owned())],
            vec![(LinkKind::CHANGE, "CHG-0003".to_owned())],
        ]
    );
    for nc in &raised {
        let record = nc.record();
        assert_eq!(record.status(), Some("raised"));
        assert_eq!(record.caller().map(|c| c.as_str()), Some("quality-bot"));
        assert_eq!(record.service().map(|s| s.as_str()), Some("email"));
        assert!(
            record
                .reference()
                .is_some_and(|r| r.as_str().starts_with("NC-"))
        );
    }
}

#[tokio::test]
async fn nothing_is_raised_when_the_policy_says_no() {
    let store = estate().await;
    react(&store, RaisingPolicy::NONE).await;
    assert!(nonconformities(&store).await.is_empty());

    let only_changes = RaisingPolicy {
        sla_breach: false,
        failed_change: true,
    };
    react(&store, only_changes).await;
    let raised = nonconformities(&store).await;
    assert_eq!(raised.len(), 1);
    assert_eq!(
        raised[0].source(),
        Some(&NonconformitySource::FailedChange {
            change: id("CHG-0003")
        })
    );
}
