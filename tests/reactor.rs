//! A reactor turning events into commands exactly once: management is informed once when an
//! incident becomes major, whatever replays, restarts and second nodes do.

#![allow(
    clippy::expect_used,
    clippy::wildcard_enum_match_arm,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use smsys::core::records::{Channel, Incident, Level, RecordKind};
use smsys::core::{
    Actor, AppendError, CheckpointStore, CommandError, CommandHandler, CommandMeta, Context,
    DerivedIds, Position, ProjectionError, ProjectionRunner, Reacting, Reactor, RecordedEvent,
    SequentialIds, StoreError,
};
use smsys::processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, RecordCommand,
};
use smsys::store::MemoryEventStore;

#[derive(Default)]
struct Checkpoints(Mutex<HashMap<String, Position>>);

#[async_trait]
impl CheckpointStore for Checkpoints {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        Ok(self.0.lock().expect("not poisoned").get(name).copied())
    }
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        self.0
            .lock()
            .expect("not poisoned")
            .insert(name.to_owned(), position);
        Ok(())
    }
}

/// Informs management when an incident becomes major.
struct InformOnMajor {
    handler: CommandHandler<IncidentManagement>,
}

#[async_trait]
impl Reactor for InformOnMajor {
    fn name(&self) -> &str {
        "inform-on-major"
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if event.data.event_type().as_str() != "incident.major_flagged" {
            return Ok(());
        }
        let ids = DerivedIds::new(event.data.metadata().event_id(), self.name());
        let ctx = Context::new(event.data.metadata().occurred_at(), &ids);
        let meta = CommandMeta::new(Actor::new("smsys.reactor").expect("valid"));
        let command = IncidentCommand::InformManagement {
            audience: "cio".into(),
            summary: "a major incident".into(),
        };
        match self
            .handler
            .execute(&event.stream, &command, &meta, &ctx)
            .await
        {
            Ok(_) => Ok(()),
            // Done before, by this node or another: the derived ids are stored.
            Err(CommandError::Append(AppendError::EventIdReused { .. })) => Ok(()),
            Err(error) => Err(ProjectionError::event(self.name(), event, error)),
        }
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .expect("valid")
}

#[tokio::test]
async fn a_reactor_informs_management_once_across_replays_restarts_and_nodes() {
    let store = Arc::new(MemoryEventStore::new());
    let handler =
        || CommandHandler::<IncidentManagement>::new(store.clone(), IncidentPolicy::default());
    let ids = SequentialIds::new(1);
    let meta = CommandMeta::new(Actor::new("agent.ana").expect("valid"));
    let mut streams = Vec::new();
    for n in 0..4 {
        let reference = format!("INC-{n}").parse().expect("valid");
        let stream = Incident::stream(&reference).expect("valid");
        let log = LogRecord::new(
            reference,
            "caller".parse().expect("valid"),
            Channel::Phone,
            "email".parse().expect("valid"),
            "mail down",
        );
        let ctx = Context::new(t0(), &ids);
        let h = handler();
        h.execute(&stream, &IncidentCommand::Log(log), &meta, &ctx)
            .await
            .expect("logged");
        // Incidents 0 and 2 are P1, so major.
        let (impact, urgency) = if n % 2 == 0 {
            (Level::High, Level::High)
        } else {
            (Level::Low, Level::Low)
        };
        h.execute(
            &stream,
            &RecordCommand::Prioritise { impact, urgency }.into(),
            &meta,
            &ctx,
        )
        .await
        .expect("prioritised");
        streams.push(stream);
    }

    let informed = |store: Arc<MemoryEventStore>, streams: Vec<_>| async move {
        let h = CommandHandler::<IncidentManagement>::new(store, IncidentPolicy::default());
        let mut counts = Vec::new();
        for s in &streams {
            let state = h.load(s).await.expect("loads").state;
            counts.push(state.major().map_or(0, |m| m.management_informed));
        }
        counts
    };

    let runner = ProjectionRunner::new(store.clone()).with_batch_size(3);
    let checkpoints = Arc::new(Checkpoints::default());
    let node_a = Reacting::new(
        InformOnMajor { handler: handler() },
        SharedCheckpoints(checkpoints.clone()),
    );
    runner.catch_up(&node_a).await.expect("reacted");
    assert_eq!(informed(store.clone(), streams.clone()).await, [1, 0, 1, 0]);

    // A restart that lost its checkpoint replays everything: nothing new.
    checkpoints.0.lock().expect("not poisoned").clear();
    runner.catch_up(&node_a).await.expect("replayed");
    // A second node with its own checkpoints reacts to the same events: nothing new.
    let node_b = Reacting::new(InformOnMajor { handler: handler() }, Checkpoints::default());
    runner.catch_up(&node_b).await.expect("second node");
    assert_eq!(informed(store.clone(), streams.clone()).await, [1, 0, 1, 0]);
}

/// Checkpoints shared with the test, so it can lose them.
struct SharedCheckpoints(Arc<Checkpoints>);

#[async_trait]
impl CheckpointStore for SharedCheckpoints {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Position>, StoreError> {
        self.0.load_checkpoint(name).await
    }
    async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        self.0.save_checkpoint(name, position).await
    }
}

/// Counts the events it is given; follows the categories it is told.
struct Counter {
    filter: smsys::core::LogFilter,
    seen: Arc<Mutex<usize>>,
}

#[async_trait]
impl Reactor for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn filter(&self) -> smsys::core::LogFilter {
        self.filter.clone()
    }

    async fn react(&self, _event: &RecordedEvent) -> Result<(), ProjectionError> {
        *self.seen.lock().expect("not poisoned") += 1;
        Ok(())
    }
}

/// A reactor whose filter changed is refused its old checkpoint: resuming from it would skip
/// the earlier events the new filter accepts. Under a new name it starts from the beginning.
#[tokio::test]
async fn a_reactor_with_another_filter_does_not_resume_from_the_old_checkpoint() {
    use smsys::core::{Category, LogFilter};
    let store = Arc::new(MemoryEventStore::new());
    let handler =
        CommandHandler::<IncidentManagement>::new(store.clone(), IncidentPolicy::default());
    let ids = SequentialIds::new(1);
    let reference = "INC-1".parse().expect("valid");
    let stream = Incident::stream(&reference).expect("valid");
    let log = LogRecord::new(
        reference,
        "caller".parse().expect("valid"),
        Channel::Phone,
        "email".parse().expect("valid"),
        "mail down",
    );
    let meta = CommandMeta::new(Actor::new("agent.ana").expect("valid"));
    handler
        .execute(
            &stream,
            &IncidentCommand::Log(log),
            &meta,
            &Context::new(t0(), &ids),
        )
        .await
        .expect("logged");

    let runner = ProjectionRunner::new(store.clone());
    let seen = Arc::new(Mutex::new(0));
    let requests = LogFilter::all().category(Category::new("request").expect("valid"));
    let narrow = Reacting::new(
        Counter {
            filter: requests,
            seen: seen.clone(),
        },
        store.clone(),
    );
    runner.catch_up(&narrow).await.expect("nothing to react to");
    assert_eq!(*seen.lock().expect("not poisoned"), 0);

    let incidents = LogFilter::all().category(Category::new("incident").expect("valid"));
    let wide = Reacting::new(
        Counter {
            filter: incidents,
            seen: seen.clone(),
        },
        store.clone(),
    );
    match runner.catch_up(&wide).await {
        Err(ProjectionError::Store {
            source: StoreError::CheckpointFilter(mismatch),
            ..
        }) => assert_eq!(mismatch.name, "counter"),
        other => panic!("expected the old checkpoint refused, got {other:?}"),
    }
    assert_eq!(
        *seen.lock().expect("not poisoned"),
        0,
        "nothing was skipped or delivered"
    );
}
