//! The command handler's aggregate cache: hits read nothing, a stale entry costs one conflict
//! and a read of the newer events only, and handlers racing on the same streams through their
//! caches never lose an update.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use smsys::core::{
    Aggregate, AppendError, AppendResult, CommandHandler, Context, DecodeError, DomainEvent,
    EventData, EventSourced, EventStore, EventStream, EventType, ExpectedVersion, LogFilter,
    Position, SequentialIds, Stamp, StoreError, StreamId, Version,
};
use smsys::store::{MemoryEventStore, SqliteEventStore};

use super::ticket::{TicketCommand, TicketDesk};
use super::{at, meta, open, stream};

/// A counter whose every event carries the count it leads to: two events with the same count
/// in one stream are a lost update (a command decided on a state that was not the latest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Counter {
    count: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Counted {
    count: u64,
}

impl DomainEvent for Counted {
    fn event_type(&self) -> EventType {
        EventType::new("counter.counted").expect("valid")
    }
    fn schema_version(&self) -> u32 {
        1
    }
    fn to_payload(&self) -> Result<Value, serde_json::Error> {
        Ok(json!({ "count": self.count }))
    }
    fn from_payload(event_type: &EventType, payload: Value) -> Result<Self, DecodeError> {
        let count = payload["count"]
            .as_u64()
            .ok_or_else(|| DecodeError::UnknownType(event_type.clone()))?;
        Ok(Counted { count })
    }
}

impl EventSourced for Counter {
    const CATEGORY: &'static str = "counter";
    type Event = Counted;
    fn evolve(&mut self, event: &Counted, _: Stamp<'_>) {
        self.count = event.count;
    }
}

struct Increment;

/// What a counter can be asked.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Count one more.
    Increment,
    /// Count one more if the count is this, else refuse.
    Expect(u64),
    /// Record nothing.
    Nothing,
}

#[derive(Debug, thiserror::Error)]
#[error("the count is {is}, not {expected}")]
struct Mismatch {
    is: u64,
    expected: u64,
}

impl Aggregate for Increment {
    type State = Counter;
    type Services = ();
    type Command = Step;
    type Rejection = Mismatch;
    fn decide(
        state: &Counter,
        step: &Step,
        _: &(),
        _: &Context<'_>,
    ) -> Result<Vec<Counted>, Mismatch> {
        let next = vec![Counted {
            count: state.count + 1,
        }];
        match *step {
            Step::Increment => Ok(next),
            Step::Expect(expected) if expected == state.count => Ok(next),
            Step::Expect(expected) => Err(Mismatch {
                is: state.count,
                expected,
            }),
            Step::Nothing => Ok(vec![]),
        }
    }
}

/// Two handlers with small caches on one store, many tasks each, incrementing a few shared
/// counters in a seeded random order. Every increment must land exactly once, in order.
async fn race(store: Arc<dyn EventStore>, seed: u64) {
    const STREAMS: usize = 5;
    const TASKS: usize = 6;
    const COMMANDS: usize = 40;
    let handlers: Vec<Arc<CommandHandler<Increment>>> = (0..2)
        .map(|_| {
            Arc::new(
                CommandHandler::new(Arc::clone(&store), ())
                    .with_cache(3)
                    .with_max_attempts(10_000),
            )
        })
        .collect();
    let streams: Vec<StreamId> = (0..STREAMS)
        .map(|i| format!("counter-{seed}-{i}").parse().expect("valid"))
        .collect();
    let issued = Arc::new(Mutex::new(BTreeMap::<StreamId, Vec<u64>>::new()));
    let attempts = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for task in 0..2 * TASKS {
        let handler = Arc::clone(&handlers[task % 2]);
        let streams = streams.clone();
        let issued = Arc::clone(&issued);
        let attempts = Arc::clone(&attempts);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 1000 + task as u64);
        tasks.push(tokio::spawn(async move {
            let ids = SequentialIds::new((seed * 100 + task as u64) << 32);
            let ctx = Context::new(at(9), &ids);
            for _ in 0..COMMANDS {
                let s = &streams[rng.random_range(0..streams.len())];
                let done = handler
                    .execute(s, &Step::Increment, &meta(), &ctx)
                    .await
                    .expect("an increment always lands eventually");
                attempts.fetch_add(u64::from(done.attempts), Ordering::Relaxed);
                let version = done.append.expect("every increment records").version;
                assert_eq!(
                    done.state.count,
                    version.get(),
                    "the state returned is the state stored at the new version"
                );
                issued
                    .lock()
                    .expect("not poisoned")
                    .entry(s.clone())
                    .or_default()
                    .push(done.state.count);
                if rng.random_bool(0.2) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task finishes");
    }
    let issued = issued.lock().expect("not poisoned").clone();
    let mut total = 0;
    for s in &streams {
        let counts: Vec<u64> = store
            .read_stream(s, Version::FIRST)
            .map(|e| e.expect("reads").data.payload()["count"].as_u64())
            .map(|c| c.expect("a count"))
            .collect()
            .await;
        let expected: Vec<u64> = (1..=counts.len() as u64).collect();
        assert_eq!(
            counts, expected,
            "{s}: every event counts one more (seed {seed})"
        );
        let mut answered = issued.get(s).cloned().unwrap_or_default();
        answered.sort_unstable();
        assert_eq!(
            answered, expected,
            "{s}: one stored event per answered command"
        );
        total += counts.len();
        for handler in &handlers {
            let loaded = handler.load(s).await.expect("loads");
            assert_eq!(loaded.state.count, counts.len() as u64);
        }
    }
    assert_eq!(total, 2 * TASKS * COMMANDS, "no increment lost or doubled");
    assert!(
        attempts.load(Ordering::Relaxed) > total as u64,
        "the race exercised stale entries (some commands conflicted)"
    );
}

/// A refusal or a no-op decided on a cached state is only answered once the state is
/// confirmed current: another handler moved the stream meanwhile.
#[tokio::test]
async fn a_stale_entry_never_decides_a_refusal_or_a_no_op() {
    let store = Arc::new(MemoryEventStore::new());
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(9), &ids);
    let s: StreamId = "counter-stale".parse().expect("valid");
    let cached = CommandHandler::<Increment>::new(store.clone(), ()).with_cache(4);
    let other = CommandHandler::<Increment>::new(store.clone(), ());
    cached
        .execute(&s, &Step::Increment, &meta(), &ctx)
        .await
        .expect("counts 1");
    other
        .execute(&s, &Step::Increment, &meta(), &ctx)
        .await
        .expect("another writer counts 2");
    let done = cached
        .execute(&s, &Step::Expect(2), &meta(), &ctx)
        .await
        .expect("the cached count 1 is stale: the stored count is 2");
    assert_eq!(done.state.count, 3);
    other
        .execute(&s, &Step::Increment, &meta(), &ctx)
        .await
        .expect("another writer counts 4");
    let nothing = cached
        .execute(&s, &Step::Nothing, &meta(), &ctx)
        .await
        .expect("records nothing");
    assert_eq!(
        nothing.state.count, 4,
        "a no-op answers with the stored state"
    );
    let refused = cached
        .execute(&s, &Step::Expect(9), &meta(), &ctx)
        .await
        .expect_err("refused on the current state");
    assert!(refused.to_string().contains("the count is 4"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cached_handlers_racing_on_memory_never_lose_an_update() {
    for seed in 1..=4 {
        race(Arc::new(MemoryEventStore::new()), seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cached_handlers_racing_on_sqlite_never_lose_an_update() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteEventStore::open(dir.path().join("race.sqlite"))
        .await
        .expect("opens");
    let store: Arc<dyn EventStore> = Arc::new(store);
    for seed in 1..=2 {
        race(Arc::clone(&store), seed).await;
    }
}

/// Records where each stream read started, to see what a command read.
struct Reads {
    inner: MemoryEventStore,
    from: Mutex<Vec<Version>>,
}

impl Reads {
    fn new(inner: MemoryEventStore) -> Arc<Self> {
        Arc::new(Self {
            inner,
            from: Mutex::new(Vec::new()),
        })
    }
    fn taken(&self) -> Vec<Version> {
        std::mem::take(&mut *self.from.lock().expect("not poisoned"))
    }
}

#[async_trait]
impl EventStore for Reads {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        self.inner.append(stream, expected, events).await
    }
    fn read_stream(&self, stream: &StreamId, from: Version) -> EventStream<'_> {
        self.from.lock().expect("not poisoned").push(from);
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
async fn a_hit_reads_nothing_and_a_stale_entry_reads_only_the_newer_events() {
    let memory = MemoryEventStore::new();
    let reads = Reads::new(memory.clone());
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(9), &ids);
    let s = stream("cached");
    let cached = CommandHandler::<TicketDesk>::new(reads.clone(), ()).with_cache(8);
    cached
        .execute(&s, &open(), &meta(), &ctx)
        .await
        .expect("opens");
    assert_eq!(
        reads.taken(),
        vec![Version::FIRST],
        "a miss reads the stream"
    );
    for text in ["a", "b"] {
        cached
            .execute(&s, &TicketCommand::Comment(text.into()), &meta(), &ctx)
            .await
            .expect("comments");
    }
    assert_eq!(reads.taken(), vec![], "hits read nothing");
    assert_eq!(cached.cached(), 1);

    let refused = cached
        .execute(&s, &open(), &meta(), &ctx)
        .await
        .expect_err("already open");
    assert!(refused.to_string().contains("already open"), "{refused}");
    assert_eq!(
        reads.taken(),
        vec![Version::new(4)],
        "a refusal on a cached state first reads what follows it"
    );
    cached
        .execute(&s, &TicketCommand::Comment("c".into()), &meta(), &ctx)
        .await
        .expect("comments");
    assert_eq!(reads.taken(), vec![], "a refusal keeps the entry");

    let other = CommandHandler::<TicketDesk>::new(Arc::new(memory.clone()), ());
    for text in ["x", "y"] {
        other
            .execute(&s, &TicketCommand::Comment(text.into()), &meta(), &ctx)
            .await
            .expect("another writer comments");
    }
    let done = cached
        .execute(&s, &TicketCommand::Comment("d".into()), &meta(), &ctx)
        .await
        .expect("comments after one conflict");
    assert_eq!(done.attempts, 2, "the stale entry cost one conflict");
    assert_eq!(
        reads.taken(),
        vec![Version::new(5)],
        "only the events after the cached version 4 were read"
    );
    assert_eq!(done.state.comments, vec!["a", "b", "c", "x", "y", "d"]);
    assert_eq!(done.state, cached.load(&s).await.expect("loads").state);
}

#[tokio::test]
async fn the_cache_keeps_at_most_its_capacity_and_can_forget() {
    let store = Arc::new(MemoryEventStore::new());
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(9), &ids);
    let handler = CommandHandler::<TicketDesk>::new(store, ()).with_cache(2);
    for id in ["1", "2", "3"] {
        handler
            .execute(&stream(id), &open(), &meta(), &ctx)
            .await
            .expect("opens");
    }
    assert_eq!(handler.cached(), 2, "the least recently used was evicted");
    handler.forget(&stream("3"));
    assert_eq!(handler.cached(), 1);
    let off = CommandHandler::<TicketDesk>::new(Arc::new(MemoryEventStore::new()), ());
    off.execute(&stream("1"), &open(), &meta(), &ctx)
        .await
        .expect("opens");
    assert_eq!(off.cached(), 0, "no cache by default");
}

fn commands() -> impl Strategy<Value = Vec<(u8, TicketCommand)>> {
    let command = prop_oneof![
        Just(open()),
        "[a-z ]{0,6}".prop_map(TicketCommand::Comment),
        Just(TicketCommand::Close),
    ];
    prop::collection::vec((0u8..3, command), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the commands (refused ones included), the state a cached handler returns
    /// equals the state read back from the store, and the log equals an uncached handler's.
    #[test]
    fn cached_states_equal_stored_states(commands in commands()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let cached_store = Arc::new(MemoryEventStore::new());
            let plain_store = Arc::new(MemoryEventStore::new());
            let cached = CommandHandler::<TicketDesk>::new(cached_store.clone(), ()).with_cache(2);
            let plain = CommandHandler::<TicketDesk>::new(plain_store.clone(), ());
            let (ids_a, ids_b) = (SequentialIds::new(0), SequentialIds::new(0));
            for (i, (which, command)) in commands.iter().enumerate() {
                let s = stream(&which.to_string());
                let when = at(9) + chrono::TimeDelta::microseconds(i as i64 * 1_234_567);
                let a = cached.execute(&s, command, &meta(), &Context::new(when, &ids_a)).await;
                let b = plain.execute(&s, command, &meta(), &Context::new(when, &ids_b)).await;
                prop_assert_eq!(a.is_ok(), b.is_ok(), "same verdict");
                if let (Ok(a), Ok(b)) = (a, b) {
                    prop_assert_eq!(&a.state, &b.state);
                    prop_assert_eq!(&a.state, &cached.load(&s).await.expect("loads").state);
                }
            }
            let log = |store: Arc<MemoryEventStore>| async move {
                store
                    .read_all(Position::START, LogFilter::all())
                    .map(|e| e.expect("reads").data)
                    .collect::<Vec<_>>()
                    .await
            };
            prop_assert_eq!(log(cached_store).await, log(plain_store).await);
            Ok(())
        })?;
    }
}
