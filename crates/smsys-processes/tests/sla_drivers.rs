//! SLA drivers against one store on a simulated clock: two nodes racing each other and the
//! commands, drivers that run on time, late, every minute or restarted, and the settle delay
//! for commands stamped before they commit. Every run is deterministic (one thread, a seeded
//! generator); the interleavings come from a store that lets the other actors in before each
//! write a driver makes.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use smsys_core::records::{Channel, Incident, Level, NoteKind, RecordKind};
use smsys_core::{
    Actor, AppendError, AppendResult, CommandHandler, CommandMeta, Context, EventData, EventId,
    EventStore, EventStream, ExpectedVersion, LogFilter, Position, SequentialIds, StoreError,
    StreamId, Version,
};
use smsys_processes::sla::{
    BREACH_BP, Condition, DeadlineKind, OnPriorityChange, OnReopen, Period, Sla, SlaDefinition,
    SlaDriver, SlaDriverError, SlaEngine, SlaReport, due_events, load_history, record_sla_events,
};
use smsys_processes::{
    BusinessCalendar, IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, RecordCommand,
};
use smsys_store::MemoryEventStore;

mod definitions;
use definitions::{definition, p};

// ---- the desk ---------------------------------------------------------------------------------

fn at(h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, h, mi, s)
        .single()
        .expect("valid")
}

fn secs(n: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(n).expect("small"))
}

fn engine(defs: Vec<SlaDefinition>) -> Arc<SlaEngine> {
    Arc::new(defs.into_iter().fold(
        SlaEngine::new().with_calendar(BusinessCalendar::always_open()),
        |e, d| {
            e.with_sla(Sla::new(d).expect("valid"))
                .expect("calendar known")
        },
    ))
}

fn incident(n: usize) -> StreamId {
    Incident::stream(&format!("INC-{n}").parse().expect("valid")).expect("valid")
}

fn log(n: usize) -> IncidentCommand {
    IncidentCommand::Log(LogRecord::new(
        format!("INC-{n}").parse().expect("valid"),
        "ana".parse().expect("valid"),
        Channel::Email,
        "email".parse().expect("valid"),
        "s",
    ))
}

fn prioritise(impact: Level, urgency: Level) -> IncidentCommand {
    RecordCommand::Prioritise { impact, urgency }.into()
}

fn override_priority(n: u8) -> IncidentCommand {
    RecordCommand::OverridePriority {
        priority: p(n),
        reason: "reassessed".into(),
    }
    .into()
}

fn assign() -> IncidentCommand {
    RecordCommand::Assign {
        group: "desk".parse().expect("valid"),
        person: None,
    }
    .into()
}

fn classify() -> IncidentCommand {
    RecordCommand::Classify {
        category: "mail".into(),
        subcategory: None,
    }
    .into()
}

fn resolve() -> IncidentCommand {
    RecordCommand::Resolve {
        code: "fixed".into(),
        notes: "n".into(),
    }
    .into()
}

fn note() -> IncidentCommand {
    RecordCommand::AddNote {
        kind: NoteKind::WorkNote,
        text: "n".into(),
    }
    .into()
}

/// Commands decided through the command handler, each stamped with the instant it is given.
struct Desk {
    handler: CommandHandler<IncidentManagement>,
    ids: SequentialIds,
    meta: CommandMeta,
}

impl Desk {
    fn new(store: &MemoryEventStore) -> Self {
        Self {
            handler: CommandHandler::new(Arc::new(store.clone()), IncidentPolicy::default()),
            ids: SequentialIds::new(1),
            meta: CommandMeta::new(Actor::new("agent").expect("valid")),
        }
    }

    async fn run(&self, stream: &StreamId, command: &IncidentCommand, stamp: DateTime<Utc>) {
        let ctx = Context::new(stamp, &self.ids);
        if let Err(e) = self
            .handler
            .execute(stream, command, &self.meta, &ctx)
            .await
        {
            panic!("{command:?} on {stream} at {stamp}: {e:?}");
        }
    }
}

/// A command, the instant it is stamped with, and the instant it commits.
#[derive(Debug, Clone)]
struct Step {
    stream: StreamId,
    command: IncidentCommand,
    stamp: DateTime<Utc>,
    commit: DateTime<Utc>,
}

fn step(stream: &StreamId, stamp: DateTime<Utc>, command: IncidentCommand) -> Step {
    Step {
        stream: stream.clone(),
        command,
        stamp,
        commit: stamp,
    }
}

/// An SLA event as recorded: id, type, payload, occurred-at.
type SlaFact = (EventId, String, serde_json::Value, DateTime<Utc>);

/// Every SLA event of the store, by occurred-at then id; each id and each (record, timer,
/// cycle, threshold) at most once.
async fn sla_facts(store: &MemoryEventStore) -> Vec<SlaFact> {
    let mut facts: Vec<SlaFact> = Vec::new();
    let mut keys = BTreeSet::new();
    let mut log = store.read_all(Position::START, LogFilter::all());
    while let Some(event) = log.next().await {
        let event = event.expect("reads");
        let kind = event.event_type().as_str().to_owned();
        if !kind.contains(".sla_") {
            continue;
        }
        let payload = event.data.payload().clone();
        let key = (
            event.stream.to_string(),
            payload["timer"].to_string(),
            payload["cycle"].to_string(),
            payload
                .get("threshold_bp")
                .map_or(BREACH_BP.to_string(), ToString::to_string),
        );
        assert!(keys.insert(key.clone()), "{key:?} recorded twice");
        facts.push((
            event.event_id(),
            kind,
            payload,
            event.data.metadata().occurred_at(),
        ));
    }
    facts.sort_by_key(|f| (f.3, f.0.to_string()));
    let ids: BTreeSet<String> = facts.iter().map(|f| f.0.to_string()).collect();
    assert_eq!(ids.len(), facts.len(), "each id once");
    facts
}

/// (type, threshold, occurred-at) of each fact, for readable expectations.
fn summary(facts: &[SlaFact]) -> Vec<(&str, u64, DateTime<Utc>)> {
    facts
        .iter()
        .map(|(_, kind, payload, at)| {
            let bp = payload["threshold_bp"]
                .as_u64()
                .unwrap_or(u64::from(BREACH_BP));
            (kind.as_str(), bp, *at)
        })
        .collect()
}

/// A driver and how far it has read the log.
struct Node {
    driver: SlaDriver,
    seen: Position,
}

impl Node {
    fn new(store: Arc<dyn EventStore>, engine: Arc<SlaEngine>, settle: TimeDelta) -> Self {
        Self {
            driver: SlaDriver::new(store, engine).with_settle(settle),
            seen: Position::START,
        }
    }

    /// Tracks every record that changed since the last look, as `SlaDriver::run` does from its
    /// subscription (a new node starts from the beginning of the log).
    async fn catch_up(&mut self, log: &MemoryEventStore) -> Result<(), SlaDriverError> {
        let mut dirty = BTreeSet::new();
        let mut events = log.read_all(self.seen, LogFilter::all());
        while let Some(event) = events.next().await {
            let event = event?;
            self.seen = event.position;
            dirty.insert(event.stream);
        }
        for stream in dirty {
            self.driver.track(&stream).await?;
        }
        Ok(())
    }

    async fn check(
        &mut self,
        log: &MemoryEventStore,
        now: DateTime<Utc>,
    ) -> Result<(), SlaDriverError> {
        self.catch_up(log).await?;
        self.driver.fire_due(now).await?;
        Ok(())
    }
}

/// When a lone driver checks.
#[derive(Debug, Clone, Copy)]
enum Checks {
    /// On time: at every threshold instant plus the settle delay, and at every commit.
    OnTime,
    /// Every interval, from the first commit on.
    Every(TimeDelta),
    /// Once, at this instant (a driver that was down until then).
    Once(DateTime<Utc>),
    /// On time, except that it is down from `down` and a new driver starts at `up`.
    Restarted {
        down: DateTime<Utc>,
        up: DateTime<Utc>,
    },
}

/// Runs `steps` (by commit instant) on a new store with one driver checking as `checks` says,
/// up to `end`; returns the store and its SLA events.
async fn simulate(
    engine: &Arc<SlaEngine>,
    settle: TimeDelta,
    steps: &[Step],
    checks: Checks,
    end: DateTime<Utc>,
) -> (MemoryEventStore, Vec<SlaFact>) {
    let store = MemoryEventStore::new();
    let desk = Desk::new(&store);
    let new_node = || Node::new(Arc::new(store.clone()), Arc::clone(engine), settle);
    let mut steps: Vec<Step> = steps.to_vec();
    steps.sort_by_key(|s| s.commit);
    let mut steps = VecDeque::from(steps);
    let mut node = Some(new_node());
    let mut restart = match checks {
        Checks::Restarted { down, up } => Some((down, up)),
        Checks::OnTime | Checks::Every(_) | Checks::Once(_) => None,
    };
    let mut periodic = match checks {
        Checks::Every(_) => steps.front().map(|s| s.commit),
        Checks::Once(when) => Some(when),
        Checks::OnTime | Checks::Restarted { .. } => None,
    };
    let mut last = None;
    let mut same = 0;
    loop {
        let on_time = matches!(checks, Checks::OnTime | Checks::Restarted { .. });
        let wake = if on_time {
            node.as_ref().and_then(|n| {
                let next = n.driver.scheduler().next_instant()?;
                Some(next + n.driver.settle())
            })
        } else {
            periodic
        };
        let switch = restart.map(|(down, up)| if node.is_some() { down } else { up });
        let Some(now) = [steps.front().map(|s| s.commit), wake, switch]
            .into_iter()
            .flatten()
            .min()
            .filter(|now| *now <= end)
        else {
            break;
        };
        same = if last == Some(now) { same + 1 } else { 0 };
        assert!(same < 50, "stuck at {now}: something due is never recorded");
        last = Some(now);
        while steps.front().is_some_and(|s| s.commit <= now) {
            let s = steps.pop_front().expect("a step");
            desk.run(&s.stream, &s.command, s.stamp).await;
        }
        if let Some((down, up)) = restart {
            if node.is_some() && now >= down {
                node = None;
            } else if node.is_none() && now >= up {
                node = Some(new_node());
                restart = None;
            }
        }
        let Some(node) = node.as_mut() else { continue };
        let check = if on_time {
            true
        } else if periodic == Some(now) {
            periodic = match checks {
                Checks::Every(interval) => Some(now + interval),
                Checks::OnTime | Checks::Once(_) | Checks::Restarted { .. } => None,
            };
            true
        } else {
            false
        };
        if check {
            node.check(&store, now).await.expect("the driver goes on");
        }
    }
    let facts = sla_facts(&store).await;
    (store, facts)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

// ---- a store that lets others in ---------------------------------------------------------------

type Hook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// The memory store, running `hook` before every write and every version check a driver makes
/// (after it read the history it derived its events from): where another node or a command
/// gets in between.
struct Hooked {
    inner: MemoryEventStore,
    hook: Hook,
}

#[async_trait]
impl EventStore for Hooked {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        (self.hook)().await;
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
        (self.hook)().await;
        self.inner.stream_version(stream).await
    }

    fn subscribe(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        self.inner.subscribe(after, filter)
    }
}

// ---- defect 1: a node finds its event recorded elsewhere in the stream --------------------------

#[test]
fn an_sla_event_another_node_recorded_after_a_command_counts_as_done() {
    runtime().block_on(async {
        let store = MemoryEventStore::new();
        let desk = Arc::new(Desk::new(&store));
        let stream = incident(1);
        desk.run(&stream, &log(1), at(9, 0, 0)).await;
        desk.run(
            &stream,
            &prioritise(Level::Medium, Level::Medium),
            at(9, 0, 0),
        )
        .await;
        // 4 h: 50 % at 11:00, 75 % at 12:00, the breach at 13:00.
        let e = engine(vec![definition("resolution", &[(None, 240)])]);
        let now = at(11, 30, 0);

        // The bare interleaving: node A reads the record at version 2 and derives the 50 %
        // warning; a note commits as version 3; node B records the warning as version 4.
        let (record_type, history, read) = load_history(&store, &e, &stream).await.expect("reads");
        assert_eq!(read, Some(Version::new(2)));
        let timers = e.timers(&record_type, &history);
        let derived = due_events(&stream, &timers, |t| e.calendar_for(t), now);
        assert_eq!(derived.len(), 1, "the 50 % warning");
        desk.run(&stream, &note(), at(11, 10, 0)).await;
        let node_b = SlaDriver::new(Arc::new(store.clone()), Arc::clone(&e));
        assert_eq!(node_b.fire_record(&stream, now).await.expect("records"), 1);
        // Node A's append is refused as a reused id (it is at version 4, not 3): done, not an
        // error; the caller derives again.
        let outcome = record_sla_events(&store, &stream, read, derived)
            .await
            .expect("an event another node recorded is not an error");
        assert_eq!((outcome.new, outcome.complete), (0, false));

        // The same through a driver, with the interleaving between its read and its append.
        let store = MemoryEventStore::new();
        let desk = Arc::new(Desk::new(&store));
        desk.run(&stream, &log(1), at(9, 0, 0)).await;
        desk.run(
            &stream,
            &prioritise(Level::Medium, Level::Medium),
            at(9, 0, 0),
        )
        .await;
        let node_b = Arc::new(SlaDriver::new(Arc::new(store.clone()), Arc::clone(&e)));
        let once = Arc::new(AtomicBool::new(false));
        let hook: Hook = {
            let (desk, node_b, stream) = (Arc::clone(&desk), Arc::clone(&node_b), stream.clone());
            Arc::new(move || {
                if once.swap(true, Ordering::SeqCst) {
                    return Box::pin(async {});
                }
                let (desk, node_b, stream) =
                    (Arc::clone(&desk), Arc::clone(&node_b), stream.clone());
                Box::pin(async move {
                    desk.run(&stream, &note(), at(11, 10, 0)).await;
                    node_b.fire_record(&stream, now).await.expect("B records");
                })
            })
        };
        let hooked = Hooked {
            inner: store.clone(),
            hook,
        };
        let mut node_a = SlaDriver::new(Arc::new(hooked), Arc::clone(&e));
        node_a.track(&stream).await.expect("tracks");
        let fired = node_a
            .fire_due(now)
            .await
            .expect("the driver does not stop on an event another node recorded");
        assert_eq!(fired.appended, 0, "node B recorded it");
        let types: Vec<String> = store
            .read_stream(&stream, Version::new(3))
            .map(|e| e.expect("reads").event_type().to_string())
            .collect()
            .await;
        assert_eq!(
            types,
            ["incident.noted", "incident.sla_threshold_reached"],
            "the interleaving happened: the note, then node B's warning"
        );
        // Node A goes on with the next thresholds.
        let fired = node_a.fire_due(at(13, 30, 0)).await.expect("fires");
        assert_eq!(fired.appended, 2, "75 % and the breach");
        assert_eq!(
            summary(&sla_facts(&store).await),
            [
                ("incident.sla_threshold_reached", 5000, at(11, 0, 0)),
                ("incident.sla_threshold_reached", 7500, at(12, 0, 0)),
                ("incident.sla_breached", 10_000, at(13, 0, 0)),
            ]
        );
    });
}

// ---- defect 2: thresholds reached before a priority change --------------------------------------

/// P2 (4 min) at 09:00, downgraded to P4 (8 min) at 09:05, resolved at 09:05:30.
fn downgraded_after_the_breach() -> (Arc<SlaEngine>, Vec<Step>) {
    let e = engine(vec![definition(
        "resolution",
        &[(Some(2), 4), (Some(4), 8)],
    )]);
    let s = incident(1);
    let steps = vec![
        step(&s, at(9, 0, 0), log(1)),
        step(&s, at(9, 0, 0), prioritise(Level::Medium, Level::High)),
        step(&s, at(9, 0, 0), assign()),
        step(&s, at(9, 0, 0), classify()),
        step(&s, at(9, 5, 0), override_priority(4)),
        step(&s, at(9, 5, 30), resolve()),
    ];
    (e, steps)
}

#[test]
fn late_repeated_restarted_and_on_time_drivers_record_the_same_events_across_a_priority_change() {
    runtime().block_on(async {
        let (e, steps) = downgraded_after_the_breach();
        let settle = SlaDriver::DEFAULT_SETTLE;
        let end = at(9, 30, 0);
        let (store, on_time) = simulate(&e, settle, &steps, Checks::OnTime, end).await;
        assert_eq!(
            summary(&on_time),
            [
                ("incident.sla_threshold_reached", 5000, at(9, 2, 0)),
                ("incident.sla_threshold_reached", 7500, at(9, 3, 0)),
                ("incident.sla_breached", 10_000, at(9, 4, 0)),
            ],
            "P2: 4 minutes from 09:00"
        );
        let runs = [
            ("late", Checks::Once(end)),
            ("every minute", Checks::Every(TimeDelta::minutes(1))),
            ("every 7 seconds", Checks::Every(TimeDelta::seconds(7))),
            (
                "restarted",
                Checks::Restarted {
                    down: at(9, 2, 30),
                    up: at(9, 10, 0),
                },
            ),
            (
                "restarted before the change",
                Checks::Restarted {
                    down: at(9, 0, 1),
                    up: at(9, 5, 10),
                },
            ),
        ];
        for (name, checks) in runs {
            let (_, facts) = simulate(&e, settle, &steps, checks, end).await;
            assert_eq!(facts, on_time, "{name}: ids, types, payloads, occurred-at");
        }

        // The timer as it stands knows both: the current (P4) target, and that the breach was
        // reached at 09:04 under P2.
        let (record_type, history, _) =
            load_history(&store, &e, &incident(1)).await.expect("reads");
        let timers = e.timers(&record_type, &history);
        let cal = e.calendar_for(&timers[0]).expect("calendar");
        assert_eq!(timers[0].priority(), Some(p(4)));
        assert_eq!(timers[0].target(), Some(8 * 60), "8 min under P4");
        assert_eq!(
            timers[0].percent_bp(cal, end),
            Some(6875),
            "5.5 of 8 min under the current target"
        );
        assert_eq!(timers[0].reached_at(cal, BREACH_BP), Some(at(9, 4, 0)));
        assert_eq!(timers[0].recorded_at(BREACH_BP), Some(at(9, 4, 0)));
        // A report read before any driver recorded it shows the breach too.
        let unrecorded: Vec<_> = history
            .iter()
            .filter(|(_, ev)| {
                !matches!(
                    ev,
                    smsys_core::records::CommonEvent::Record(
                        smsys_core::records::RecordEvent::SlaThresholdReached { .. }
                            | smsys_core::records::RecordEvent::SlaBreached { .. }
                    )
                )
            })
            .cloned()
            .collect();
        let mut report = SlaReport::default();
        e.report_into(
            &mut report,
            &incident(1),
            "email",
            &e.timers(&record_type, &unrecorded),
            end,
            Period::Day,
        );
        assert_eq!(report.by_timer()["resolution"].breached, 1);
        assert_eq!(report.breaches[0].due, Some(at(9, 4, 0)));
    });
}

#[test]
fn a_restart_from_now_keeps_what_was_reached_before_the_change_whenever_the_driver_looks() {
    runtime().block_on(async {
        let mut def = definition("resolution", &[(Some(2), 4), (Some(3), 10)]);
        def.on_priority_change = OnPriorityChange::RestartFromNow;
        let e = engine(vec![def]);
        let s = incident(1);
        // 50 % at 09:02 and 75 % at 09:03 under P2; from 09:03:30 P3 counts 10 min from zero:
        // the breach at 09:13:30.
        let steps = vec![
            step(&s, at(9, 0, 0), log(1)),
            step(&s, at(9, 0, 0), prioritise(Level::Medium, Level::High)),
            step(&s, at(9, 3, 30), override_priority(3)),
        ];
        let settle = SlaDriver::DEFAULT_SETTLE;
        let end = at(10, 0, 0);
        let (_, on_time) = simulate(&e, settle, &steps, Checks::OnTime, end).await;
        assert_eq!(
            summary(&on_time),
            [
                ("incident.sla_threshold_reached", 5000, at(9, 2, 0)),
                ("incident.sla_threshold_reached", 7500, at(9, 3, 0)),
                ("incident.sla_breached", 10_000, at(9, 13, 30)),
            ]
        );
        let (_, late) = simulate(&e, settle, &steps, Checks::Once(end), end).await;
        assert_eq!(late, on_time);
    });
}

// ---- the settle delay -----------------------------------------------------------------------------

/// P2 (4 min) logged 09:01:25: due 09:05:25; resolved with the stamp 09:05:24, committed at
/// `commit`.
fn resolved_a_second_early(commit: DateTime<Utc>) -> (Arc<SlaEngine>, Vec<Step>) {
    let e = engine(vec![definition("resolution", &[(Some(2), 4)])]);
    let s = incident(1);
    let steps = vec![
        step(&s, at(9, 1, 25), log(1)),
        step(&s, at(9, 1, 25), prioritise(Level::Medium, Level::High)),
        step(&s, at(9, 1, 25), assign()),
        step(&s, at(9, 1, 25), classify()),
        Step {
            commit,
            ..step(&s, at(9, 5, 24), resolve())
        },
    ];
    (e, steps)
}

fn breaches(facts: &[SlaFact]) -> Vec<DateTime<Utc>> {
    facts
        .iter()
        .filter(|f| f.1 == "incident.sla_breached")
        .map(|f| f.3)
        .collect()
}

#[test]
fn a_resolution_committing_within_the_settle_delay_prevents_the_breach_and_later_it_stands() {
    runtime().block_on(async {
        let settle = SlaDriver::DEFAULT_SETTLE;
        assert_eq!(settle, TimeDelta::seconds(5));
        let end = at(9, 30, 0);

        // Within the delay: stamped 09:05:24, committed 09:05:28, before the on-time driver
        // judges the 09:05:25 breach at 09:05:30.
        let (e, steps) = resolved_a_second_early(at(9, 5, 28));
        let (_, on_time) = simulate(&e, settle, &steps, Checks::OnTime, end).await;
        assert_eq!(
            summary(&on_time),
            [
                ("incident.sla_threshold_reached", 5000, at(9, 3, 25)),
                ("incident.sla_threshold_reached", 7500, at(9, 4, 25)),
            ],
            "resolved a second before the breach: no breach"
        );
        let (_, late) = simulate(&e, settle, &steps, Checks::Once(end), end).await;
        assert_eq!(late, on_time, "a late driver agrees");
        let every = Checks::Every(TimeDelta::seconds(1));
        let (_, every_second) = simulate(&e, settle, &steps, every, end).await;
        assert_eq!(
            every_second, on_time,
            "a driver checking every second waits out the delay too (09:05:25 to 09:05:28)"
        );
        // Without the delay the on-time driver records the breach before the resolution
        // commits: the delay is what makes the resolution count.
        let (_, hasty) = simulate(&e, TimeDelta::zero(), &steps, Checks::OnTime, end).await;
        assert_eq!(breaches(&hasty), [at(9, 5, 25)]);

        // Beyond the delay: committed 09:05:40, after the breach was recorded at 09:05:30. The
        // breach stands, and the report shows it, with the resolution at 09:05:24.
        let (e, steps) = resolved_a_second_early(at(9, 5, 40));
        let (store, facts) = simulate(&e, settle, &steps, Checks::OnTime, end).await;
        assert_eq!(breaches(&facts), [at(9, 5, 25)]);
        let types: Vec<String> = store
            .read_stream(&incident(1), Version::FIRST)
            .map(|e| e.expect("reads").event_type().to_string())
            .collect()
            .await;
        assert_eq!(
            types[types.len() - 2..],
            ["incident.sla_breached", "incident.transitioned"].map(String::from),
            "the breach, then the resolution committed after it"
        );
        let (record_type, history, _) =
            load_history(&store, &e, &incident(1)).await.expect("reads");
        let timers = e.timers(&record_type, &history);
        assert_eq!(timers[0].ended().map(|(at, _)| at), Some(at(9, 5, 24)));
        let mut report = SlaReport::default();
        e.report_into(
            &mut report,
            &incident(1),
            "email",
            &timers,
            end,
            Period::Day,
        );
        let row = report.by_timer()["resolution"];
        assert_eq!(
            (row.met, row.breached),
            (0, 1),
            "the recorded breach stands"
        );
        assert_eq!(report.breaches.len(), 1);
        assert_eq!(report.breaches[0].due, Some(at(9, 5, 25)));
    });
}

// ---- two drivers, a command writer, a simulated clock ----------------------------------------------

/// splitmix64: small, seeded, good enough to pick interleavings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn level(&mut self) -> Level {
        [Level::High, Level::Medium, Level::Low][usize::try_from(self.below(3)).expect("small")]
    }
}

fn level(level: Level) -> u8 {
    match level {
        Level::High => 1,
        Level::Medium => 2,
        Level::Low => 3,
    }
}

/// Timers of every policy, with warnings at 25, 50, 75 and 90 %, minutes long.
fn stress_engine() -> Arc<SlaEngine> {
    let warnings = vec![25.0, 50.0, 75.0, 90.0];
    let mut response = definition("response", &[(Some(1), 2), (Some(2), 3), (None, 5)]);
    response.stop = vec![Condition::Assigned];
    response.on_reopen = OnReopen::Ignore;
    response.warnings.clone_from(&warnings);
    let mut resolution = definition(
        "resolution",
        &[
            (Some(1), 4),
            (Some(2), 6),
            (Some(3), 10),
            (Some(4), 15),
            (None, 20),
        ],
    );
    resolution.warnings.clone_from(&warnings);
    let mut restart = definition("restart", &[(Some(1), 3), (Some(2), 5), (None, 12)]);
    restart.on_priority_change = OnPriorityChange::RestartFromNow;
    restart.on_reopen = OnReopen::NewCycle;
    restart.warnings.clone_from(&warnings);
    let mut fixed = definition("fixed", &[(Some(1), 5), (Some(3), 7), (None, 9)]);
    fixed.on_priority_change = OnPriorityChange::CancelAndRestart;
    fixed.deadline = DeadlineKind::Fixed;
    fixed.warnings = warnings;
    engine(vec![response, resolution, restart, fixed])
}

/// A few incidents with random priorities, priority changes, holds, resolutions, reopens and
/// cancellations, each command committing at its stamp.
fn stress_script(rng: &mut Rng) -> Vec<Step> {
    #[derive(PartialEq)]
    enum Status {
        Working,
        OnHold,
        Resolved,
    }
    let mut steps = Vec::new();
    for n in 1..=6 {
        let s = incident(n);
        let mut t = at(9, 0, 0) + secs(rng.below(600));
        let (impact, urgency) = (rng.level(), rng.level());
        // The reference matrix: impact + urgency - 1.
        let mut priority = level(impact) + level(urgency) - 1;
        let mut mine = vec![(t, log(n)), (t, prioritise(impact, urgency))];
        t += secs(rng.below(200));
        mine.push((t, assign()));
        mine.push((t, classify()));
        let mut status = Status::Working;
        for _ in 0..2 + rng.below(7) {
            t += secs(rng.below(150));
            let command = match rng.below(8) {
                0 | 1 => {
                    // Another priority (the same one is refused as unchanged).
                    let step = u8::try_from(1 + rng.below(4)).expect("small");
                    priority = 1 + (priority - 1 + step) % 5;
                    override_priority(priority)
                }
                2 if status == Status::Working => {
                    status = Status::OnHold;
                    RecordCommand::Hold {
                        reason: "awaiting caller".into(),
                        status: None,
                    }
                    .into()
                }
                3 if status == Status::OnHold => {
                    status = Status::Working;
                    RecordCommand::Resume.into()
                }
                4 if status != Status::Resolved => {
                    status = Status::Resolved;
                    resolve()
                }
                5 if status == Status::Resolved => {
                    status = Status::Working;
                    RecordCommand::Reopen {
                        reason: "again".into(),
                    }
                    .into()
                }
                6 if status != Status::Resolved && rng.below(3) == 0 => {
                    mine.push((
                        t,
                        RecordCommand::Cancel {
                            reason: "duplicate".into(),
                        }
                        .into(),
                    ));
                    break;
                }
                _ => note(),
            };
            mine.push((t, command));
        }
        steps.extend(
            mine.into_iter()
                .map(|(stamp, command)| step(&s, stamp, command)),
        );
    }
    steps
}

/// Moves some commands to a second or three before a threshold their record reached (in
/// `reached`): a resolution, hold or priority change just before a warning or a breach.
/// Commands keep their order.
fn just_before(steps: &mut [Step], reached: &[(StreamId, DateTime<Utc>)], rng: &mut Rng) {
    for (stream, threshold) in reached {
        if rng.below(2) == 0 {
            continue;
        }
        let mine: Vec<usize> = (0..steps.len())
            .filter(|i| steps[*i].stream == *stream)
            .collect();
        let Some(k) = mine.iter().position(|i| steps[*i].stamp > *threshold) else {
            continue;
        };
        let stamp = *threshold - secs(1 + rng.below(3));
        if k > 0 && steps[mine[k - 1]].stamp <= stamp {
            steps[mine[k]].stamp = stamp;
            steps[mine[k]].commit = stamp;
        }
    }
}

/// Each command commits within the settle delay of its stamp (often at its very end, so that
/// it is not in the history until then), in order per record.
fn commit_within(steps: &mut [Step], settle: TimeDelta, rng: &mut Rng) {
    let window = u64::try_from(settle.num_seconds()).expect("positive");
    let mut last: BTreeMap<StreamId, DateTime<Utc>> = BTreeMap::new();
    for s in steps {
        let delay = if rng.below(2) == 0 {
            window
        } else {
            rng.below(window + 1)
        };
        let commit = last
            .get(&s.stream)
            .map_or(s.stamp + secs(delay), |c| (*c).max(s.stamp + secs(delay)));
        last.insert(s.stream.clone(), commit);
        s.commit = commit;
    }
}

/// The record and occurred-at of every SLA event of the store.
async fn reached(store: &MemoryEventStore) -> Vec<(StreamId, DateTime<Utc>)> {
    store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reads"))
        .filter(|e| futures::future::ready(e.event_type().as_str().contains(".sla_")))
        .map(|e| (e.stream.clone(), e.data.metadata().occurred_at()))
        .collect()
        .await
}

/// Two drivers, a command writer and a clock, sharing one store. The drivers' store lets the
/// others in before each of their writes: a pending command commits, or the other driver
/// checks.
struct World {
    store: MemoryEventStore,
    desk: Desk,
    engine: Arc<SlaEngine>,
    settle: TimeDelta,
    nodes: [tokio::sync::Mutex<Node>; 2],
    state: Mutex<WorldState>,
    depth: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

struct WorldState {
    rng: Rng,
    now: DateTime<Utc>,
    /// Commands not yet committed, per record, in order.
    pending: BTreeMap<StreamId, VecDeque<Step>>,
}

impl World {
    fn new(seed: u64, engine: &Arc<SlaEngine>, settle: TimeDelta, steps: Vec<Step>) -> Arc<Self> {
        let store = MemoryEventStore::new();
        let mut pending: BTreeMap<StreamId, VecDeque<Step>> = BTreeMap::new();
        for s in steps {
            pending.entry(s.stream.clone()).or_default().push_back(s);
        }
        Arc::new_cyclic(|world: &Weak<World>| {
            let node = || Self::node(world, &store, engine, settle);
            World {
                desk: Desk::new(&store),
                nodes: [
                    tokio::sync::Mutex::new(node()),
                    tokio::sync::Mutex::new(node()),
                ],
                store: store.clone(),
                engine: Arc::clone(engine),
                settle,
                state: Mutex::new(WorldState {
                    rng: Rng(seed),
                    now: at(9, 0, 0),
                    pending,
                }),
                depth: AtomicUsize::new(0),
                errors: Mutex::new(Vec::new()),
            }
        })
    }

    /// A new driver on the hooked store.
    fn node(
        world: &Weak<World>,
        store: &MemoryEventStore,
        engine: &Arc<SlaEngine>,
        settle: TimeDelta,
    ) -> Node {
        let world = world.clone();
        let hook: Hook = Arc::new(move || {
            let world = world.clone();
            Box::pin(async move {
                if let Some(world) = world.upgrade() {
                    world.interfere().await;
                }
            })
        });
        let hooked = Hooked {
            inner: store.clone(),
            hook,
        };
        Node::new(Arc::new(hooked), Arc::clone(engine), settle)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WorldState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn roll(&self, n: u64) -> u64 {
        self.state().rng.below(n)
    }

    fn now(&self) -> DateTime<Utc> {
        self.state().now
    }

    fn failed(&self, error: &SlaDriverError) {
        self.errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(error.to_string());
    }

    /// Before a driver's write: maybe a command commits, maybe the other driver checks, maybe
    /// both.
    async fn interfere(self: Arc<Self>) {
        if self.depth.fetch_add(1, Ordering::SeqCst) < 2 {
            let roll = self.roll(8);
            if roll < 4 {
                self.commit_one().await;
            }
            if (2..6).contains(&roll) {
                let which = usize::try_from(self.roll(2)).expect("small");
                // The driver that is writing holds its own lock: this finds the other one.
                if let Ok(mut node) = self.nodes[which].try_lock() {
                    let now = self.now();
                    if let Err(error) = node.check(&self.store, now).await {
                        self.failed(&error);
                    }
                }
            }
        }
        self.depth.fetch_sub(1, Ordering::SeqCst);
    }

    /// Commits the next command of a random record, if its stamp is at most a minute ahead:
    /// a command may commit any time from its stamp to the settle delay after it, and one
    /// stamped after the instants a check judges cannot change them (a writer whose clock runs
    /// ahead, as far as the drivers can tell).
    async fn commit_one(&self) {
        let next = {
            let mut state = self.state();
            let ahead = state.now + TimeDelta::minutes(1);
            let ready: Vec<StreamId> = state
                .pending
                .iter()
                .filter(|(_, q)| q.front().is_some_and(|s| s.stamp <= ahead))
                .map(|(k, _)| k.clone())
                .collect();
            if ready.is_empty() {
                None
            } else {
                let pick = usize::try_from(state.rng.below(ready.len() as u64)).expect("small");
                state
                    .pending
                    .get_mut(&ready[pick])
                    .and_then(VecDeque::pop_front)
            }
        };
        if let Some(s) = next {
            self.desk.run(&s.stream, &s.command, s.stamp).await;
        }
    }

    /// The earliest stamp after `now` of a command not yet committed.
    fn next_stamp(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.state()
            .pending
            .values()
            .filter_map(|q| q.front().map(|s| s.stamp))
            .filter(|stamp| *stamp > now)
            .min()
    }

    /// Commits every command whose commit instant has come.
    async fn commit_due(&self, now: DateTime<Utc>) {
        loop {
            let next = {
                let mut state = self.state();
                let stream = state
                    .pending
                    .iter()
                    .find(|(_, q)| q.front().is_some_and(|s| s.commit <= now))
                    .map(|(k, _)| k.clone());
                stream.and_then(|k| state.pending.get_mut(&k).and_then(VecDeque::pop_front))
            };
            let Some(s) = next else { return };
            self.desk.run(&s.stream, &s.command, s.stamp).await;
        }
    }

    async fn check(self: &Arc<Self>, which: usize, now: DateTime<Utc>, restart: bool) {
        let mut node = self.nodes[which].lock().await;
        if restart {
            *node = Self::node(
                &Arc::downgrade(self),
                &self.store,
                &self.engine,
                self.settle,
            );
        }
        if let Err(error) = node.check(&self.store, now).await {
            self.failed(&error);
        }
    }
}

/// Per seed: a script of incidents, some commands moved to just before a threshold; the events
/// one on-time driver records with every command committing at its stamp; then two drivers
/// checking at random (down for a while, restarted) while commands commit up to the settle
/// delay after their stamps, and each driver's writes let a command or the other driver in.
/// No driver fails, each threshold is recorded once, and the events are exactly the on-time
/// driver's.
#[test]
fn two_drivers_racing_commands_on_a_simulated_clock_record_what_one_on_time_driver_records() {
    let settle = SlaDriver::DEFAULT_SETTLE;
    let window = u64::try_from(settle.num_seconds()).expect("positive");
    let end = at(10, 0, 0);
    runtime().block_on(async {
        for seed in 1..=8_u64 {
            let mut rng = Rng(seed.wrapping_mul(0x5851_F42D_4C95_7F2D));
            let e = stress_engine();
            let mut on_time = stress_script(&mut rng);
            let (draft, _) = simulate(&e, settle, &on_time, Checks::OnTime, end).await;
            just_before(&mut on_time, &reached(&draft).await, &mut rng);
            let (_, expected) = simulate(&e, settle, &on_time, Checks::OnTime, end).await;
            let mut steps = on_time;
            commit_within(&mut steps, settle, &mut rng);
            assert!(
                !breaches(&expected).is_empty(),
                "seed {seed}: the script breaches something"
            );

            let world = World::new(rng.next(), &e, settle, steps);
            let mut now = at(9, 0, 0);
            let mut down_until = [now; 2];
            while now < end {
                // Often into the settle delay of the next command: stamped, not yet committed.
                let next_stamp = world.next_stamp(now);
                now = match next_stamp {
                    Some(stamp) if world.roll(3) == 0 => stamp + secs(world.roll(window)),
                    Some(_) | None => now + secs(1 + world.roll(40)),
                }
                .min(end);
                world.state().now = now;
                world.commit_due(now).await;
                let first = usize::try_from(world.roll(2)).expect("small");
                for which in [first, 1 - first] {
                    if now < down_until[which] {
                        continue;
                    }
                    match world.roll(40) {
                        // Down for up to 20 minutes, then restarted.
                        0 => down_until[which] = now + secs(60 + world.roll(1140)),
                        1..=24 => {
                            let restart = down_until[which] > at(9, 0, 0);
                            down_until[which] = at(9, 0, 0);
                            world.check(which, now, restart).await;
                        }
                        _ => {}
                    }
                }
            }
            world.commit_due(end).await;
            world.check(0, end, false).await;
            world.check(1, end, false).await;

            let errors = world
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            assert!(errors.is_empty(), "seed {seed}: driver errors {errors:?}");
            assert!(
                world.state().pending.values().all(VecDeque::is_empty),
                "seed {seed}: every command committed"
            );
            let facts = sla_facts(&world.store).await;
            let missing: Vec<_> = expected.iter().filter(|f| !facts.contains(f)).collect();
            let extra: Vec<_> = facts.iter().filter(|f| !expected.contains(f)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "seed {seed}: not what one on-time driver records; missing {missing:?}, extra {extra:?}"
            );
            assert_eq!(facts, expected, "seed {seed}: ids, types, payloads, occurred-at");
        }
    });
}
