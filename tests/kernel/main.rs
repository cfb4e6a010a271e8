//! The kernel end to end: aggregates, golden event fixtures, upcasters, the command handler,
//! snapshots and the hash chain, on the in-memory reference store.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

mod cache;
mod snapshots;
mod ticket;

use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use futures::StreamExt;
use proptest::prelude::*;
use serde_json::json;
use smsys::core::{
    Actor, Aggregate, AppendError, AppendResult, CausationId, CommandError, CommandHandler,
    CommandId, CommandMeta, Context, CorrelationId, DomainEvent, EventData, EventSourced,
    EventStore, EventStream, EventType, ExpectedVersion, IdSource as _, LoadError, LogFilter,
    Position, SequentialIds, Snapshot, SnapshotPolicy, SnapshotStore, Stamp, StoreError, StreamId,
    TenantId, Upcasters, Version, verify_events,
};
use smsys::store::testkit::event;
use smsys::store::{MemoryEventStore, MemorySnapshotStore};
use ticket::{Ticket, TicketCommand, TicketDesk, TicketEvent, TicketRejection};

fn at(hour: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, hour, 0, 0)
        .single()
        .expect("valid instant")
}

fn meta() -> CommandMeta {
    CommandMeta::new(Actor::new("agent:ana").expect("valid"))
}

fn open() -> TicketCommand {
    TicketCommand::Open {
        title: "VPN drops".into(),
        channel: "phone".into(),
    }
}

fn stream(id: &str) -> StreamId {
    format!("ticket-{id}").parse().expect("valid stream id")
}

// ---- golden fixtures: every shipped schema version still loads -------------------------------

fn fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/tests/fixtures/events/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load_fixture(event_type: &str, version: u32) -> TicketEvent {
    let t = EventType::new(event_type).expect("valid");
    let payload = fixture(&format!("{event_type}.v{version}"));
    TicketEvent::upcasters()
        .decode(&t, version, payload)
        .expect("upcasts and decodes")
}

#[test]
fn every_shipped_event_version_still_loads() {
    let opened = |channel: &str| {
        TicketEvent::Opened(ticket::Opened {
            title: "VPN drops every hour".into(),
            channel: channel.into(),
        })
    };
    assert_eq!(load_fixture(ticket::OPENED, 1), opened("unknown"));
    assert_eq!(load_fixture(ticket::OPENED, 2), opened("email"));
    assert_eq!(
        load_fixture(ticket::COMMENTED, 1),
        TicketEvent::Commented {
            text: "Caller confirms the drop at 10:00".into()
        }
    );
    assert_eq!(load_fixture(ticket::CLOSED, 1), TicketEvent::Closed);
}

#[test]
fn current_events_encode_as_their_newest_fixture() {
    for (event, name) in [
        (load_fixture(ticket::OPENED, 2), "ticket.opened.v2"),
        (load_fixture(ticket::COMMENTED, 1), "ticket.commented.v1"),
        (load_fixture(ticket::CLOSED, 1), "ticket.closed.v1"),
    ] {
        let version = event.schema_version();
        assert_eq!(name, format!("{}.v{version}", event.event_type()));
        assert_eq!(
            event.to_payload().expect("encodes"),
            fixture(name),
            "{name} changed shape: add a schema version and an upcaster"
        );
    }
}

#[test]
fn a_failing_upcaster_names_type_and_version() {
    let t = EventType::new(ticket::OPENED).expect("valid");
    let err = ticket::upcasters()
        .upcast(&t, 1, json!("not an object"))
        .expect_err("refused");
    assert_eq!(err.from_version, 1);
    assert!(err.to_string().contains("ticket.opened"), "{err}");
}

// ---- the command handler ---------------------------------------------------------------------

#[tokio::test]
async fn commands_record_events_with_context_and_metadata() {
    let store = Arc::new(MemoryEventStore::new());
    let handler = CommandHandler::<TicketDesk>::new(store.clone(), ());
    let ids = SequentialIds::new(1_790_000_000_000);
    let ctx = Context::new(at(9), &ids);
    let correlation = CorrelationId::from_uuid(uuid::Uuid::from_u128(11)).expect("not nil");
    let causation = CausationId::from_uuid(uuid::Uuid::from_u128(12)).expect("not nil");
    let meta = meta()
        .with_correlation(correlation)
        .with_causation(causation)
        .with_tenant(TenantId::new("acme").expect("valid"));
    let s = stream("1");
    let done = handler
        .execute(&s, &open(), &meta, &ctx)
        .await
        .expect("opens");
    assert_eq!(
        done.append.as_ref().map(|a| a.version),
        Some(Version::new(1))
    );
    assert_eq!(done.attempts, 1);
    assert_eq!(done.state.title.as_deref(), Some("VPN drops"));
    assert_eq!(
        done.state.opened_by.as_deref(),
        Some("agent:ana"),
        "evolve is stamped with the command's actor"
    );
    assert_eq!(done.state.opened_at, Some(at(9)));
    handler
        .execute(&s, &TicketCommand::Comment("rebooted".into()), &meta, &ctx)
        .await
        .expect("comments");

    let recorded: Vec<_> = store
        .read_stream(&s, Version::FIRST)
        .map(|e| e.expect("reads"))
        .collect()
        .await;
    assert_eq!(recorded.len(), 2);
    let m = recorded[0].data.metadata();
    assert_eq!(m.actor().as_str(), "agent:ana");
    assert_eq!(
        m.occurred_at(),
        at(9),
        "occurred-at comes from the context, not a clock"
    );
    assert_eq!(m.correlation_id(), Some(correlation));
    assert_eq!(m.causation_id(), Some(causation));
    assert_eq!(m.tenant().map(TenantId::as_str), Some("acme"));
    assert_eq!(recorded[0].data.schema_version(), 2);
    let drawn = SequentialIds::new(1_790_000_000_000);
    for event in &recorded {
        let command = CommandId::from_uuid(drawn.next_uuid()).expect("not nil");
        assert_eq!(
            event.event_id(),
            command.event_id(0),
            "each command draws its id from the context's source; its events' ids derive from it"
        );
    }
    let loaded = handler.load(&s).await.expect("loads");
    assert_eq!(loaded.state.comments, vec!["rebooted".to_owned()]);
    assert_eq!(loaded.version, Some(Version::new(2)));
    assert_eq!(
        (loaded.state.opened_by, loaded.state.opened_at),
        (Some("agent:ana".to_owned()), Some(at(9))),
        "on load, the stamp comes from the recorded metadata"
    );
}

#[test]
fn decide_and_evolve_are_pure_functions_of_their_inputs() {
    let ids = SequentialIds::new(0);
    let actor = Actor::new("agent:bo").expect("valid");
    let ctx = Context::new(at(11), &ids).with_actor(&actor);
    let mut state = Ticket::default();
    let events = TicketDesk::decide(&state, &open(), &(), &ctx).expect("opens");
    assert_eq!(
        events,
        TicketDesk::decide(&state, &open(), &(), &ctx).expect("opens"),
        "the same inputs decide the same events"
    );
    for event in &events {
        state.evolve(event, ctx.stamp());
    }
    assert_eq!(state.opened_by.as_deref(), Some("agent:bo"));
    assert_eq!(state.opened_at, Some(at(11)));
    assert_eq!(
        TicketDesk::decide(&state, &open(), &(), &ctx),
        Err(TicketRejection::AlreadyOpen)
    );
    let mut anonymous = Ticket::default();
    anonymous.evolve(&events[0], Stamp::new(None, at(12)));
    assert_eq!(
        (anonymous.opened_by, anonymous.opened_at),
        (None, Some(at(12))),
        "a stamp without an actor: a decision outside a command"
    );
}

#[tokio::test]
async fn a_rejected_command_writes_nothing_and_says_why() {
    let store = Arc::new(MemoryEventStore::new());
    let handler = CommandHandler::<TicketDesk>::new(store.clone(), ());
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(9), &ids);
    let s = stream("2");
    let err = handler
        .execute(&s, &TicketCommand::Close, &meta(), &ctx)
        .await
        .expect_err("not open");
    assert!(
        matches!(err, CommandError::Rejected(TicketRejection::NotOpen)),
        "{err}"
    );
    handler
        .execute(&s, &open(), &meta(), &ctx)
        .await
        .expect("opens");
    handler
        .execute(&s, &TicketCommand::Close, &meta(), &ctx)
        .await
        .expect("closes");
    let err = handler
        .execute(&s, &TicketCommand::Comment("late".into()), &meta(), &ctx)
        .await
        .expect_err("closed");
    assert!(matches!(
        err,
        CommandError::Rejected(TicketRejection::Closed)
    ));
    assert_eq!(err.to_string(), "command refused: ticket is closed");
    assert_eq!(store.len(), 2, "rejections wrote nothing");
}

/// A store that lets another writer slip in before the first `n` appends of the handler.
struct Interloper {
    inner: MemoryEventStore,
    remaining: AtomicU32,
}

#[async_trait]
impl EventStore for Interloper {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        if self.remaining.load(Ordering::SeqCst) > 0 {
            self.remaining.fetch_sub(1, Ordering::SeqCst);
            let foreign = ticket::TicketEvent::Commented {
                text: "someone else".into(),
            };
            let data = event(ticket::COMMENTED, foreign.to_payload().expect("encodes"));
            self.inner
                .append(stream, ExpectedVersion::Any, vec![data])
                .await?;
        }
        self.inner.append(stream, expected, events).await
    }
    fn read_stream(&self, stream: &StreamId, from: Version) -> EventStream<'_> {
        self.inner.read_stream(stream, from)
    }
    fn read_stream_backwards(&self, stream: &StreamId, from: Option<Version>) -> EventStream<'_> {
        self.inner.read_stream_backwards(stream, from)
    }
    fn read_all(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        self.inner.read_all(after, filter)
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.inner.stream_version(stream).await
    }
    fn subscribe(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        self.inner.subscribe(after, filter)
    }
}

#[tokio::test]
async fn a_conflict_reloads_and_decides_again_a_bounded_number_of_times() {
    let inner = MemoryEventStore::new();
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(9), &ids);
    let s = stream("3");
    CommandHandler::<TicketDesk>::new(Arc::new(inner.clone()), ())
        .execute(&s, &open(), &meta(), &ctx)
        .await
        .expect("opens");

    let racing = Arc::new(Interloper {
        inner: inner.clone(),
        remaining: AtomicU32::new(2),
    });
    let handler = CommandHandler::<TicketDesk>::new(racing.clone(), ()).with_max_attempts(3);
    let done = handler
        .execute(&s, &TicketCommand::Comment("mine".into()), &meta(), &ctx)
        .await
        .expect("succeeds on the third try");
    assert_eq!(done.attempts, 3);
    assert_eq!(
        done.state.comments,
        vec!["someone else", "someone else", "mine"],
        "decided on the fresh state"
    );

    racing.remaining.store(5, Ordering::SeqCst);
    let err = handler
        .execute(&s, &TicketCommand::Comment("lost".into()), &meta(), &ctx)
        .await
        .expect_err("gives up");
    assert!(
        matches!(err, CommandError::Conflict { attempts: 3, .. }),
        "{err}"
    );
    let comments = handler.load(&s).await.expect("loads").state.comments;
    assert!(
        !comments.contains(&"lost".to_owned()),
        "a given-up command wrote nothing"
    );
}

/// A snapshot store that can be told to fail, and counts loads.
#[derive(Default)]
struct Flaky {
    inner: MemorySnapshotStore,
    fail: AtomicBool,
    loads: AtomicU32,
}

#[async_trait]
impl SnapshotStore for Flaky {
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Closed { backend: "flaky" });
        }
        self.inner.load_snapshot(stream).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.inner.save_snapshot(snapshot).await
    }
}

#[tokio::test]
async fn snapshots_are_used_and_never_fail_a_command() {
    let store = Arc::new(MemoryEventStore::new());
    let snapshots = Arc::new(Flaky::default());
    let every2 = SnapshotPolicy::Every(NonZeroU64::new(2).expect("non-zero"));
    let handler = CommandHandler::<TicketDesk>::new(store.clone(), ())
        .with_snapshots(snapshots.clone(), every2);
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(9), &ids);
    let s = stream("4");
    handler
        .execute(&s, &open(), &meta(), &ctx)
        .await
        .expect("opens");
    for i in 0..4 {
        handler
            .execute(&s, &TicketCommand::Comment(format!("c{i}")), &meta(), &ctx)
            .await
            .expect("comments");
    }
    let kept = snapshots
        .inner
        .load_snapshot(&s)
        .await
        .expect("reads")
        .expect("a snapshot was taken");
    assert_eq!(kept.version, Version::new(4));
    let replayed = CommandHandler::<TicketDesk>::new(store.clone(), ())
        .load(&s)
        .await
        .expect("replays");
    let from_snapshot = handler.load(&s).await.expect("loads");
    assert_eq!(
        from_snapshot, replayed,
        "snapshot + tail equals full replay"
    );

    // A snapshot whose state no longer decodes, or of another schema version, is ignored.
    for bad in [
        Snapshot {
            state: json!("garbage"),
            ..kept.clone()
        },
        Snapshot {
            schema_version: 99,
            version: Version::new(5),
            ..kept.clone()
        },
    ] {
        snapshots.inner.save_snapshot(bad).await.expect("saves");
        assert_eq!(handler.load(&s).await.expect("falls back"), replayed);
    }
    snapshots.fail.store(true, Ordering::SeqCst);
    let done = handler
        .execute(&s, &TicketCommand::Close, &meta(), &ctx)
        .await
        .expect("a failing snapshot store does not fail the command");
    assert!(done.state.closed);
    assert!(snapshots.loads.load(Ordering::SeqCst) >= 4);
}

#[tokio::test]
async fn loading_reports_what_it_cannot_read() {
    let store = Arc::new(MemoryEventStore::new());
    // The event type's own upcasters always apply; no `with_upcasters` needed.
    let handler = CommandHandler::<TicketDesk>::new(store.clone(), ());
    let s = stream("5");
    let v1 = event(ticket::OPENED, json!({"title": "old"}));
    let (t, _, p, m) = v1.into_parts();
    let v1 = EventData::new(t, 1, p, m).expect("valid");
    store
        .append(&s, ExpectedVersion::NoStream, vec![v1])
        .await
        .expect("appends");
    let loaded = handler
        .load(&s)
        .await
        .expect("a v1 event is upcast on read");
    assert_eq!(loaded.state.channel.as_deref(), Some("unknown"));
    // Upcasters given to the handler join the type's own; one for the same step replaces it.
    let legacy = Upcasters::new().register(ticket::OPENED, 1, |mut payload| {
        payload["channel"] = json!("legacy");
        Ok(payload)
    });
    let relabelled = CommandHandler::<TicketDesk>::new(store.clone(), ())
        .with_upcasters(legacy)
        .load(&s)
        .await
        .expect("loads");
    assert_eq!(relabelled.state.channel.as_deref(), Some("legacy"));

    store
        .append(
            &s,
            ExpectedVersion::Any,
            vec![event("ticket.exploded", json!({}))],
        )
        .await
        .expect("appends");
    let err = handler.load(&s).await.expect_err("unknown type");
    assert!(
        matches!(err, LoadError::Decode { version, .. } if version == Version::new(2)),
        "{err}"
    );
    assert!(err.to_string().contains("ticket.exploded"), "{err}");

    let other: StreamId = "incident-1".parse().expect("valid");
    assert!(matches!(
        handler.load(&other).await,
        Err(LoadError::WrongCategory { .. })
    ));
}

// ---- properties ------------------------------------------------------------------------------

fn command() -> impl Strategy<Value = TicketCommand> {
    prop_oneof![
        Just(open()),
        "[a-z]{0,3}".prop_map(TicketCommand::Comment),
        Just(TicketCommand::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Replaying the stream reproduces the state the handler returned (stamps included), and the
    /// chain holds.
    #[test]
    fn replay_reproduces_state(commands in proptest::collection::vec(command(), 1..30)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let store = Arc::new(MemoryEventStore::new());
            let handler = CommandHandler::<TicketDesk>::new(store.clone(), ());
            let ids = SequentialIds::new(0);
            // Stores keep instants to the microsecond: the state a command returns must match
            // the replayed one even when the decision's instant is finer.
            let now = at(10) + chrono::TimeDelta::nanoseconds(123_456_789);
            let ctx = Context::new(now, &ids);
            let s = stream("p");
            let mut last = Ticket::default();
            let mut accepted = 0u64;
            for c in &commands {
                match handler.execute(&s, c, &meta(), &ctx).await {
                    Ok(done) => {
                        accepted += done.events.len() as u64;
                        last = done.state;
                    }
                    Err(CommandError::Rejected(_)) => {}
                    Err(other) => panic!("unexpected: {other}"),
                }
            }
            let loaded = handler.load(&s).await.expect("loads");
            prop_assert_eq!(&loaded.state, &last);
            prop_assert_eq!(loaded.version.map_or(0, Version::get), accepted);
            prop_assert!(!(last.closed && last.title.is_none()), "closed without being opened");
            let report = verify_events(store.read_all(Position::START, LogFilter::all())).await.expect("reads");
            prop_assert!(report.is_intact());
            Ok(())
        })?;
    }
}
