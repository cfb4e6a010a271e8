//! Commands are retry-safe end to end: through the command handler, on a store whose answers
//! get lost, a command run again with the same command id is recorded at most once and answers
//! with its original result.

use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::TimeZone;
use futures::StreamExt;
use serde_json::{Value, json};
use smsys_core::{
    Actor, Aggregate, AppendError, AppendResult, BackendError, CommandError, CommandHandler,
    CommandId, CommandMeta, Context, DecodeError, DomainEvent, EventData, EventId, EventSourced,
    EventStore, EventStream, EventType, ExpectedVersion, LogFilter, Position, RecordedEvent,
    SequentialIds, Stamp, StoreError, StreamId, Version,
};
use uuid::Uuid;

use super::Harness;
use super::fixture::Fixture;

/// A note pad: notes are added, and it is closed once.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Pad {
    notes: Vec<String>,
    closed: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum PadEvent {
    Noted(String),
    Closed,
}

#[derive(Debug, Clone, PartialEq)]
enum PadCommand {
    Note(String),
    /// A note, and a second one when the pad already holds that note: a rerun of it decides
    /// more events than its first run did.
    Grow(String),
    Close,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the pad is closed")]
struct PadClosed;

impl DomainEvent for PadEvent {
    fn event_type(&self) -> EventType {
        EventType::new(match self {
            PadEvent::Noted(_) => "test.noted",
            PadEvent::Closed => "test.closed",
        })
        .expect("valid")
    }
    fn schema_version(&self) -> u32 {
        1
    }
    fn to_payload(&self) -> Result<Value, serde_json::Error> {
        Ok(match self {
            PadEvent::Noted(text) => json!({ "text": text }),
            PadEvent::Closed => json!({}),
        })
    }
    fn from_payload(event_type: &EventType, payload: Value) -> Result<Self, DecodeError> {
        #[derive(serde::Deserialize)]
        struct Text {
            text: String,
        }
        match event_type.as_str() {
            "test.noted" => serde_json::from_value::<Text>(payload)
                .map(|t| PadEvent::Noted(t.text))
                .map_err(|source| DecodeError::Payload {
                    event_type: event_type.clone(),
                    source,
                }),
            "test.closed" => Ok(PadEvent::Closed),
            _ => Err(DecodeError::UnknownType(event_type.clone())),
        }
    }
}

impl EventSourced for Pad {
    type Event = PadEvent;
    const CATEGORY: &'static str = "test";
    fn evolve(&mut self, event: &PadEvent, _: Stamp<'_>) {
        match event {
            PadEvent::Noted(text) => self.notes.push(text.clone()),
            PadEvent::Closed => self.closed = true,
        }
    }
}

struct Pads;

impl Aggregate for Pads {
    type State = Pad;
    type Command = PadCommand;
    type Rejection = PadClosed;
    type Services = ();
    fn decide(
        state: &Pad,
        command: &PadCommand,
        _: &(),
        _: &Context<'_>,
    ) -> Result<Vec<PadEvent>, PadClosed> {
        if state.closed {
            return Err(PadClosed);
        }
        Ok(match command {
            PadCommand::Note(text) => vec![PadEvent::Noted(text.clone())],
            PadCommand::Grow(text) if state.notes.contains(text) => vec![
                PadEvent::Noted(text.clone()),
                PadEvent::Noted("again".into()),
            ],
            PadCommand::Grow(text) => vec![PadEvent::Noted(text.clone())],
            PadCommand::Close => vec![PadEvent::Closed],
        })
    }
}

/// What the wrapper does with the next append.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Writes, then loses the answer (a transient error instead of the result).
    LoseAnswer,
    /// Fails transiently without writing.
    FailBefore,
}

/// A store whose next appends fail as told, recording what the lost appends really wrote.
struct Faulty<S> {
    inner: Arc<S>,
    faults: Mutex<Vec<Fault>>,
    lost: Mutex<Vec<AppendResult>>,
}

impl<S: EventStore> Faulty<S> {
    fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            faults: Mutex::new(Vec::new()),
            lost: Mutex::new(Vec::new()),
        }
    }
    fn next(&self, faults: &[Fault]) {
        let mut queue = self.faults.lock().expect("not poisoned");
        queue.clear();
        queue.extend(faults.iter().rev());
    }
    fn last_lost(&self) -> AppendResult {
        self.lost
            .lock()
            .expect("not poisoned")
            .last()
            .cloned()
            .expect("an answer was lost")
    }
}

fn transient() -> AppendError {
    AppendError::Store(StoreError::Backend(BackendError::new(
        "test",
        "append",
        true,
        "the answer was lost",
    )))
}

#[async_trait]
impl<S: EventStore> EventStore for Faulty<S> {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        let fault = self.faults.lock().expect("not poisoned").pop();
        match fault {
            None => self.inner.append(stream, expected, events).await,
            Some(Fault::FailBefore) => Err(transient()),
            Some(Fault::LoseAnswer) => {
                let written = self.inner.append(stream, expected, events).await?;
                self.lost.lock().expect("not poisoned").push(written);
                Err(transient())
            }
        }
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
    async fn find_event(&self, id: EventId) -> Result<Option<RecordedEvent>, StoreError> {
        self.inner.find_event(id).await
    }
}

async fn stored<S: EventStore + ?Sized>(store: &S, stream: &StreamId) -> Vec<RecordedEvent> {
    store
        .read_stream(stream, Version::FIRST)
        .map(|e| e.expect("reads"))
        .collect()
        .await
}

fn meta(id: u128) -> CommandMeta {
    CommandMeta::new(Actor::new("agent:ana").expect("valid"))
        .with_command_id(CommandId::from_uuid(Uuid::from_u128(id)).expect("not nil"))
}

/// Through the command handler (with and without its cache), on a store that loses answers or
/// fails before writing: the handler's own retry is recognised; a command whose outcome stayed
/// unknown, run again with the same command id, is recorded once and answers with the original
/// result, also when the rerun would be refused (the pad was closed by the first run); and a
/// command id already recorded on another stream is refused, not taken for a rerun.
pub async fn commands_run_at_most_once<H: Harness>(h: &H) {
    let inner = Arc::new(h.create().await);
    let faulty = Arc::new(Faulty::new(Arc::clone(&inner)));
    let store: Arc<dyn EventStore> = Arc::clone(&faulty) as Arc<dyn EventStore>;
    let ids = SequentialIds::new(1);
    let now = chrono::Utc
        .with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .expect("valid");
    for cache in [0, 16] {
        let base = 100 * cache as u128;
        let pad = Fixture::stream(&format!("pad{cache}"));
        let retrying = CommandHandler::<Pads>::new(Arc::clone(&store), ()).with_cache(cache);
        let once = CommandHandler::<Pads>::new(Arc::clone(&store), ())
            .with_cache(cache)
            .with_max_attempts(1);
        let ctx = Context::new(now, &ids);

        // The handler's own retry after a lost answer.
        faulty.next(&[Fault::LoseAnswer]);
        let done = retrying
            .execute(
                &pad,
                &PadCommand::Note("first".into()),
                &meta(base + 1),
                &ctx,
            )
            .await
            .expect("the retry is recognised");
        assert_eq!(done.attempts, 2, "one retry");
        assert_eq!(done.append, Some(faulty.last_lost()), "the original result");
        assert_eq!(stored(&*inner, &pad).await.len(), 1, "recorded once");

        // An unknown outcome, then the same command again: recorded once, original result.
        for (n, fault) in [(2, Fault::LoseAnswer), (3, Fault::FailBefore)] {
            faulty.next(&[fault]);
            let command = PadCommand::Note(format!("note {n}"));
            let unknown = once.execute(&pad, &command, &meta(base + n), &ctx).await;
            assert!(
                matches!(unknown, Err(CommandError::OutcomeUnknown { .. })),
                "{fault:?}: the outcome is unknown, got {unknown:?}"
            );
            let later = Context::new(now + chrono::TimeDelta::minutes(5), &ids);
            let again = once
                .execute(&pad, &command, &meta(base + n), &later)
                .await
                .expect("running the command again succeeds");
            let events = stored(&*inner, &pad).await;
            assert_eq!(
                events.len(),
                n as usize,
                "{fault:?}: the note is recorded once"
            );
            assert_eq!(again.events, vec![PadEvent::Noted(format!("note {n}"))]);
            if fault == Fault::LoseAnswer {
                assert_eq!(
                    again.append,
                    Some(faulty.last_lost()),
                    "the original result"
                );
            }
            assert_eq!(
                again.state.notes.len(),
                n as usize,
                "the state after the command"
            );
        }

        // A rerun the rules would refuse answers with the first run's result.
        faulty.next(&[Fault::LoseAnswer]);
        let unknown = once
            .execute(&pad, &PadCommand::Close, &meta(base + 4), &ctx)
            .await;
        assert!(matches!(unknown, Err(CommandError::OutcomeUnknown { .. })));
        let again = once
            .execute(&pad, &PadCommand::Close, &meta(base + 4), &ctx)
            .await
            .expect("the close was recorded: its result, not a refusal");
        assert_eq!(again.append, Some(faulty.last_lost()));
        assert!(again.state.closed);
        assert_eq!(stored(&*inner, &pad).await.len(), 4);
        let refused = once
            .execute(&pad, &PadCommand::Close, &meta(base + 5), &ctx)
            .await;
        assert!(
            matches!(refused, Err(CommandError::Rejected(PadClosed))),
            "a new command on a closed pad is refused"
        );

        // A rerun that decides more events than the first run (whose answer was lost)
        // answers with the first run's result.
        let grow = Fixture::stream(&format!("grow{cache}"));
        faulty.next(&[Fault::LoseAnswer]);
        let command = PadCommand::Grow("g".into());
        let unknown = once.execute(&grow, &command, &meta(base + 6), &ctx).await;
        assert!(matches!(unknown, Err(CommandError::OutcomeUnknown { .. })));
        let again = once
            .execute(&grow, &command, &meta(base + 6), &ctx)
            .await
            .expect("the first run's result");
        assert_eq!(again.append, Some(faulty.last_lost()));
        assert_eq!(again.events, vec![PadEvent::Noted("g".into())]);
        assert_eq!(stored(&*inner, &grow).await.len(), 1, "recorded once");

        // A command id recorded on another stream is not a rerun here.
        let other = Fixture::stream(&format!("other{cache}"));
        let reused = once
            .execute(&other, &PadCommand::Note("x".into()), &meta(base + 1), &ctx)
            .await;
        assert!(
            matches!(
                reused,
                Err(CommandError::Append(AppendError::EventIdReused { .. }))
            ),
            "another stream's command id is refused, got {reused:?}"
        );
        assert!(stored(&*inner, &other).await.is_empty());
    }
    drop(store);
    drop(faulty);
    let Ok(store) = Arc::try_unwrap(inner) else {
        panic!("the case holds the only handle");
    };
    h.teardown(store).await;
}
