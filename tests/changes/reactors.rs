//! What a successful change does to other records, through its reactors run twice on
//! fresh checkpoints: its planned CI updates applied through the CMDB naming it, and the known
//! errors it is linked to retired, each once.

use std::sync::Arc;

use chrono::TimeDelta;
use smsys::core::records::change::{ImplementationOutcome, PlannedCiUpdate};
use smsys::core::records::{
    ChangeKind, Channel, ConfigurationItem, KnownError, LinkKind, RecordKind,
};
use smsys::core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, LogFilter, Position, ProjectionRunner,
    Reacting, Reactor, SequentialIds,
};
use smsys::processes::change::reactors::{CiUpdates, KnownErrorRetirement};
use smsys::processes::change::{ChangeCommand, ChangePolicy};
use smsys::processes::configuration::{CiCommand, CiManagement, CmdbPolicy};
use smsys::processes::known_error::{KnownErrorCommand, KnownErrorManagement, LogKnownError};
use smsys::processes::{KnownErrorPolicy, LogRecord, RecordCommand};
use smsys::store::MemoryEventStore;

use crate::harness::{Board, approvals, id, log, plan, t0, window};

/// Catches `reactor` up from a fresh checkpoint (a node that remembers nothing).
async fn react(store: &Arc<dyn EventStore>, reactor: impl Reactor) {
    let reacting = Reacting::new(reactor, Arc::new(MemoryEventStore::new()));
    ProjectionRunner::new(store.clone())
        .with_batch_size(3)
        .catch_up(&reacting)
        .await
        .expect("reacts");
}

#[tokio::test]
async fn a_successful_change_updates_its_cis_and_retires_its_known_errors_once() {
    let mut b = Board::new(ChangePolicy::default().with_approvals(approvals()));
    let store = b.store().clone();
    let cis = CommandHandler::<CiManagement>::new(store.clone(), CmdbPolicy::reference());
    let known_errors =
        CommandHandler::<KnownErrorManagement>::new(store.clone(), KnownErrorPolicy::default());
    let ctx_ids = SequentialIds::new(1_000);
    let ctx = Context::new(t0(), &ctx_ids);
    let meta = CommandMeta::new(Actor::new("rita").expect("valid"));
    let mx = ConfigurationItem::stream(&id("mx-01")).expect("valid");
    let register = CiCommand::Register {
        id: id("mx-01"),
        ci_type: id("server"),
        name: "mx-01".into(),
        description: String::new(),
        attributes: Default::default(),
        change: Some(id("CHG-0")),
    };
    cis.execute(&mx, &register, &meta, &ctx)
        .await
        .expect("registered");
    let ke = KnownError::stream(&id("KE-1")).expect("valid");
    let log_ke = KnownErrorCommand::Log(
        LogKnownError::new(
            LogRecord::new(
                id("KE-1"),
                id("rita"),
                Channel::Portal,
                id("email"),
                "mx drops mail",
            ),
            "mail dropped",
        )
        .workaround("resend"),
    );
    known_errors
        .execute(&ke, &log_ke, &meta, &ctx)
        .await
        .expect("logged");
    known_errors
        .execute(&ke, &KnownErrorCommand::Publish, &meta, &ctx)
        .await
        .expect("published");

    let mut planned = plan("ivan");
    planned.ci_updates = vec![PlannedCiUpdate {
        ci: id("mx-01"),
        set: [(id("os"), "debian 13".into())].into_iter().collect(),
        removed: Vec::new(),
        status: None,
    }];
    b.run_as(
        "rita",
        "CHG-5",
        ChangeCommand::log(log("CHG-5", ChangeKind::Emergency).plan(planned)),
    )
    .await;
    b.run_as(
        "rita",
        "CHG-5",
        RecordCommand::Link {
            kind: LinkKind::KNOWN_ERROR,
            target: "KE-1".into(),
        }
        .into(),
    )
    .await;
    b.run_as(
        "rita",
        "CHG-5",
        ChangeCommand::Schedule(window(t0() + TimeDelta::hours(1), 1)),
    )
    .await;
    b.run_as("rita", "CHG-5", ChangeCommand::RequestAuthorisation)
        .await;
    b.run_as("erin", "CHG-5", ChangeCommand::Approve { group: None })
        .await;
    b.run_as("ivan", "CHG-5", ChangeCommand::StartImplementation)
        .await;
    b.run_as(
        "ivan",
        "CHG-5",
        ChangeCommand::RecordImplementation {
            outcome: ImplementationOutcome::Success,
            notes: "upgraded".into(),
        },
    )
    .await;

    let reactor_actor = Actor::new("smsys.change").expect("valid");
    for _ in 0..2 {
        react(
            &store,
            CiUpdates::new(
                CommandHandler::new(store.clone(), CmdbPolicy::reference()),
                reactor_actor.clone(),
            ),
        )
        .await;
        react(
            &store,
            KnownErrorRetirement::new(
                CommandHandler::new(store.clone(), KnownErrorPolicy::default()),
                reactor_actor.clone(),
            ),
        )
        .await;
    }
    let server = cis.load(&mx).await.expect("loads").state;
    assert_eq!(server.attribute(&id("os")), Some(&"debian 13".into()));
    let last = server.last_change().expect("changed");
    assert_eq!(last.change.as_ref().map(|c| c.as_str()), Some("CHG-5"));
    let known_error = known_errors.load(&ke).await.expect("loads").state;
    let retired = known_error.retired().expect("retired by the change");
    assert_eq!(retired.reason, "fixed by change CHG-5");

    // Twice over the log, two nodes: one update, one retirement.
    let mut events = store.read_all(Position::START, LogFilter::all());
    let (mut updates, mut retirements) = (0, 0);
    while let Some(event) = futures::StreamExt::next(&mut events).await {
        let name = event.expect("reads").data.event_type().as_str().to_owned();
        updates += usize::from(name == "configuration_item.attributes_updated");
        retirements += usize::from(name == "known_error.retired");
    }
    assert_eq!((updates, retirements), (1, 1));
}
