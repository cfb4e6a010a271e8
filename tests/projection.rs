//! Projections through the runner: catch-up and live following from a checkpoint, a handler
//! that fails stopping its projection with the event named and its checkpoint before it,
//! other projections going on, and a rebuild under a new name while the old one serves.

#![allow(
    clippy::expect_used,
    clippy::wildcard_enum_match_arm,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use smsys::core::{
    EventStore, ExpectedVersion, Position, Projection, ProjectionError, ProjectionRunner,
    RecordedEvent, StreamId, Version,
};
use smsys::store::MemoryEventStore;
use smsys::store::testkit::event;

/// A read model in memory: the (stream, version) of every event it holds, and its checkpoint,
/// changed together (as one transaction would). It fails on events of type `poison.*`.
/// (stream, version) of each event held, and the checkpoint.
type Held = (Vec<(String, u64)>, Option<Position>);

struct Log {
    name: String,
    held: Mutex<Held>,
}

impl Log {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            held: Mutex::new((Vec::new(), None)),
        }
    }

    fn held(&self) -> Vec<(String, u64)> {
        self.held.lock().expect("not poisoned").0.clone()
    }
}

#[async_trait]
impl Projection for Log {
    fn name(&self) -> &str {
        &self.name
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        Ok(self.held.lock().expect("not poisoned").1)
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let mut staged = Vec::new();
        for e in events {
            if e.data.event_type().as_str().starts_with("poison.") {
                return Err(ProjectionError::event(&self.name, e, "cannot digest this"));
            }
            staged.push((e.stream.as_str().to_owned(), e.version.get()));
        }
        let mut held = self.held.lock().expect("not poisoned");
        held.0.extend(staged);
        held.1 = Some(checkpoint);
        Ok(())
    }
}

async fn append(store: &MemoryEventStore, stream: &str, n: usize, event_type: &str) {
    let stream: StreamId = stream.parse().expect("valid");
    for i in 0..n {
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![event(event_type, serde_json::json!({ "i": i }))],
            )
            .await
            .expect("appends");
    }
}

#[tokio::test]
async fn a_projection_catches_up_in_batches_and_resumes_from_its_checkpoint() {
    let store = Arc::new(MemoryEventStore::new());
    append(&store, "ticket-a", 7, "ticket.noted").await;
    append(&store, "ticket-b", 6, "ticket.noted").await;
    let runner = ProjectionRunner::new(store.clone()).with_batch_size(4);
    let log = Log::new("log.v1");
    let reached = runner.catch_up(&log).await.expect("caught up");
    assert_eq!(log.held().len(), 13);
    assert_eq!(reached, Some(Position::from_sequence(13)));
    // More events: only those are applied.
    append(&store, "ticket-a", 2, "ticket.noted").await;
    runner.catch_up(&log).await.expect("caught up again");
    let held = log.held();
    assert_eq!(held.len(), 15);
    assert_eq!(held[13..], [("ticket-a".into(), 8), ("ticket-a".into(), 9)]);
}

#[tokio::test]
async fn a_failing_handler_stops_its_projection_before_the_event_and_others_go_on() {
    let store = Arc::new(MemoryEventStore::new());
    append(&store, "ticket-a", 5, "ticket.noted").await;
    append(&store, "poison-b", 1, "poison.pill").await;
    append(&store, "ticket-a", 3, "ticket.noted").await;
    let runner = ProjectionRunner::new(store.clone()).with_batch_size(4);

    let fragile = Log::new("fragile.v1");
    let error = runner.catch_up(&fragile).await.expect_err("stops");
    match &error {
        ProjectionError::Event {
            projection,
            position,
            stream,
            version,
            event_type,
            ..
        } => {
            assert_eq!(projection, "fragile.v1");
            assert_eq!(*position, Position::from_sequence(6));
            assert_eq!(stream.as_str(), "poison-b");
            assert_eq!(*version, Version::FIRST);
            assert_eq!(event_type.as_str(), "poison.pill");
        }
        other => panic!("expected the event named, got {other}"),
    }
    assert!(
        error
            .to_string()
            .contains("poison.pill at poison-b version 1"),
        "{error}"
    );
    // The effect and the checkpoint of every event before the failing one are kept.
    assert_eq!(fragile.held().len(), 5);
    assert_eq!(
        fragile.checkpoint().await.expect("readable"),
        Some(Position::from_sequence(5))
    );
    // Running it again stops at the same event, changing nothing.
    assert!(runner.catch_up(&fragile).await.is_err());
    assert_eq!(fragile.held().len(), 5);

    // Another projection, reading only tickets, is not concerned.
    struct Skipping(Log);
    #[async_trait]
    impl Projection for Skipping {
        fn name(&self) -> &str {
            self.0.name()
        }
        fn filter(&self) -> smsys::core::LogFilter {
            smsys::core::LogFilter::all()
                .category(smsys::core::Category::new("ticket").expect("valid"))
        }
        async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
            self.0.checkpoint().await
        }
        async fn apply(
            &self,
            events: &[RecordedEvent],
            checkpoint: Position,
        ) -> Result<(), ProjectionError> {
            self.0.apply(events, checkpoint).await
        }
    }
    let other = Skipping(Log::new("other.v1"));
    runner.catch_up(&other).await.expect("not concerned");
    assert_eq!(other.0.held().len(), 8);
}

#[tokio::test]
async fn a_rebuild_under_a_new_name_starts_from_the_beginning_while_the_old_one_serves() {
    let store = Arc::new(MemoryEventStore::new());
    append(&store, "ticket-a", 10, "ticket.noted").await;
    let runner = ProjectionRunner::new(store.clone());
    let v1 = Log::new("log.v1");
    runner.catch_up(&v1).await.expect("v1");
    append(&store, "ticket-a", 5, "ticket.noted").await;
    let v2 = Log::new("log.v2");
    runner
        .catch_up(&v2)
        .await
        .expect("v2 rebuilt from the start");
    assert_eq!(v2.held().len(), 15);
    assert_eq!(
        v1.held().len(),
        10,
        "the old version serves what it held until it is caught up"
    );
    runner.catch_up(&v1).await.expect("v1");
    assert_eq!(v1.held(), v2.held());
}

#[tokio::test]
async fn run_follows_the_log_live_and_stops_on_shutdown() {
    let store = Arc::new(MemoryEventStore::new());
    append(&store, "ticket-a", 3, "ticket.noted").await;
    let runner = ProjectionRunner::new(store.clone()).with_batch_size(2);
    let log = Arc::new(Log::new("live.v1"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let (runner, log) = (runner.clone(), log.clone());
        tokio::spawn(async move {
            runner
                .run(&*log, async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    append(&store, "ticket-b", 4, "ticket.noted").await;
    for _ in 0..200 {
        if log.held().len() == 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let _ = stop.send(());
    let reached = task.await.expect("joined").expect("no error");
    assert_eq!(log.held().len(), 7, "every event exactly once");
    assert_eq!(reached, Some(Position::from_sequence(7)));
}
