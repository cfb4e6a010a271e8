//! SLA timers: the worked examples of DOMAIN.md, policies, validation, and exactly-once firing.

#![allow(
    clippy::expect_used,
    clippy::needless_pass_by_value,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::StreamExt;
use proptest::prelude::*;
use smsys_core::records::{
    Channel, CommonEvent, DefinitionRef, Incident, Level, Logged, NoteKind, Phase, RecordEvent,
    RecordKind, RecordType, Reference, ServiceRequest, TransitionDetail,
};
use smsys_core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, ExpectedVersion, LogFilter, Position,
    SequentialIds, StreamId, Version,
};
use smsys_processes::sla::{
    AppliesTo, Condition, DeadlineKind, OnPriorityChange, OnReopen, Sla, SlaDefinition, SlaDriver,
    SlaDriverError, SlaEngine, SlaError, SlaRegistry, Target, Timer, TimerEnd,
};
use smsys_processes::{
    BusinessCalendar, Clock, IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord,
    RecordCommand, RequestCommand, RequestManagement, RequestPolicy,
};
use smsys_store::MemoryEventStore;

mod definitions;
use definitions::{definition, p};

const INCIDENT: &RecordType = &Incident::RECORD_TYPE;
const REQUEST: &RecordType = &ServiceRequest::RECORD_TYPE;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid")
}

/// The timer called `name`.
fn named<'a>(timers: &'a [Timer], name: &str) -> &'a Timer {
    timers
        .iter()
        .find(|t| t.timer() == name)
        .unwrap_or_else(|| panic!("a {name} timer"))
}

fn engine(defs: Vec<SlaDefinition>) -> SlaEngine {
    defs.into_iter().fold(
        SlaEngine::new().with_calendar(BusinessCalendar::always_open()),
        |e, d| {
            e.with_sla(Sla::new(d).expect("valid"))
                .expect("calendar known")
        },
    )
}

fn logged(service: &str) -> CommonEvent {
    CommonEvent::Logged(Logged {
        reference: "INC-1".parse().expect("valid"),
        lifecycle: DefinitionRef {
            name: "incident".into(),
            version: 1,
        },
        status: "new".into(),
        caller: "ana".parse().expect("valid"),
        channel: Channel::Phone,
        service: service.parse().expect("valid"),
        affected_cis: vec![],
        summary: "s".into(),
        description: String::new(),
        attributes: Default::default(),
    })
}

fn prioritised(n: u8) -> CommonEvent {
    CommonEvent::Record(RecordEvent::PriorityOverridden {
        priority: p(n),
        reason: "test".into(),
    })
}

fn assigned(group: &str, reassignment: bool) -> CommonEvent {
    CommonEvent::Record(RecordEvent::Assigned {
        group: group.parse().expect("valid"),
        person: None,
        reassignment,
    })
}

fn noted() -> CommonEvent {
    CommonEvent::Record(RecordEvent::Noted {
        kind: NoteKind::WorkNote,
        text: "n".into(),
    })
}

fn moved(phase: Phase, detail: TransitionDetail, when: DateTime<Utc>) -> CommonEvent {
    CommonEvent::Record(RecordEvent::Transitioned {
        transition: "t".into(),
        from: "x".into(),
        to: phase.as_str().into(),
        phase,
        detail,
        at: when,
    })
}

fn hold(when: DateTime<Utc>) -> (DateTime<Utc>, CommonEvent) {
    (
        when,
        moved(
            Phase::Pending,
            TransitionDetail::Hold {
                reason: "caller".into(),
            },
            when,
        ),
    )
}

fn resume(when: DateTime<Utc>) -> (DateTime<Utc>, CommonEvent) {
    (
        when,
        moved(
            Phase::Active,
            TransitionDetail::Resume { by_caller: true },
            when,
        ),
    )
}

fn resolved(when: DateTime<Utc>) -> (DateTime<Utc>, CommonEvent) {
    (
        when,
        moved(
            Phase::Resolved,
            TransitionDetail::Resolution {
                code: "c".into(),
                notes: "n".into(),
            },
            when,
        ),
    )
}

fn reopened(when: DateTime<Utc>) -> (DateTime<Utc>, CommonEvent) {
    (
        when,
        moved(
            Phase::Active,
            TransitionDetail::Reopen {
                reason: "r".into(),
                count: 1,
            },
            when,
        ),
    )
}

#[test]
fn example_7_ten_hours_on_a_24x7_calendar() {
    let e = engine(vec![definition("resolution", &[(None, 600)])]);
    let t0 = at(2015, 1, 1, 10, 30);
    let timers = e.timers(INCIDENT, &[(t0, logged("email"))]);
    let cal = e.calendar_for(&timers[0]).expect("calendar");
    assert_eq!(timers[0].due(cal), Some(at(2015, 1, 1, 20, 30)));
    assert_eq!(
        timers[0].threshold_instant(cal, 5000),
        Some(at(2015, 1, 1, 15, 30))
    );
}

#[test]
fn example_6_a_goal_switch_keeps_elapsed_time() {
    let t0 = at(2026, 11, 2, 10, 0);
    let history = vec![
        (t0, logged("email")),
        (t0, prioritised(3)),
        (at(2026, 11, 2, 11, 0), prioritised(2)),
    ];
    let mut def = definition("resolution", &[(Some(3), 180), (Some(2), 120)]);
    let e = engine(vec![def.clone()]);
    let cal = BusinessCalendar::always_open();
    let before = e.timers(INCIDENT, &history[..2]);
    assert_eq!(before[0].due(&cal), Some(at(2026, 11, 2, 13, 0)));
    let after = e.timers(INCIDENT, &history);
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0].due(&cal),
        Some(at(2026, 11, 2, 12, 0)),
        "3 h target at 10:00, 2 h from 11:00 keeping 1 h elapsed"
    );

    def.on_priority_change = OnPriorityChange::CancelAndRestart;
    let restarted = engine(vec![def.clone()]).timers(INCIDENT, &history);
    assert_eq!(restarted.len(), 2);
    assert_eq!(
        restarted[0].ended().map(|(_, how)| how),
        Some(TimerEnd::Cancelled)
    );
    assert_eq!(restarted[1].cycle(), 2);
    assert_eq!(
        restarted[1].due(&cal),
        Some(at(2026, 11, 2, 13, 0)),
        "a new 2 h cycle from 11:00"
    );

    def.on_priority_change = OnPriorityChange::RestartFromNow;
    let restarted_in_place = engine(vec![def]).timers(INCIDENT, &history);
    assert_eq!(
        restarted_in_place.len(),
        1,
        "the same cycle, counted from zero again"
    );
    assert_eq!(restarted_in_place[0].cycle(), 1);
    assert_eq!(
        restarted_in_place[0].due(&cal),
        Some(at(2026, 11, 2, 13, 0))
    );
}

#[test]
fn example_8_response_met_and_resolution_resumes_on_reopen() {
    let mut response = definition("response", &[(None, 240)]);
    response.stop = vec![Condition::Assigned];
    response.on_reopen = OnReopen::Ignore;
    let resolution = definition("resolution", &[(None, 480)]);
    let t0 = at(2026, 11, 2, 9, 0);
    let history = vec![
        (t0, logged("email")),
        (at(2026, 11, 2, 10, 0), assigned("desk", false)),
        resolved(at(2026, 11, 2, 12, 0)),
        reopened(at(2026, 11, 3, 9, 0)),
    ];
    let e = engine(vec![response, resolution.clone()]);
    let cal = BusinessCalendar::always_open();
    let timers = e.timers(INCIDENT, &history);
    let response = named(&timers, "response");
    assert_eq!(
        response.ended().map(|(_, how)| how),
        Some(TimerEnd::Stopped)
    );
    assert_eq!(
        response.elapsed(&cal, at(2026, 11, 4, 0, 0)),
        3600,
        "4 h response met after 1 h"
    );
    let resolution_timers: Vec<_> = timers
        .iter()
        .filter(|t| t.timer() == "resolution")
        .collect();
    assert_eq!(resolution_timers.len(), 1, "resumed, not restarted");
    assert!(resolution_timers[0].is_running());
    assert_eq!(
        resolution_timers[0].elapsed(&cal, at(2026, 11, 3, 9, 0)),
        3 * 3600,
        "time spent resolved is not counted"
    );
    assert_eq!(resolution_timers[0].due(&cal), Some(at(2026, 11, 3, 14, 0)));

    let mut fresh = resolution;
    fresh.on_reopen = OnReopen::NewCycle;
    let timers = engine(vec![fresh]).timers(INCIDENT, &history);
    assert_eq!(timers.len(), 2);
    assert_eq!(timers[1].cycle(), 2);
    assert_eq!(timers[1].due(&cal), Some(at(2026, 11, 3, 17, 0)));
}

#[test]
fn holds_move_a_pausable_due_instant_but_not_a_fixed_deadline() {
    let t0 = at(2026, 11, 2, 9, 0);
    let history = vec![
        (t0, logged("email")),
        hold(at(2026, 11, 2, 10, 0)),
        resume(at(2026, 11, 2, 13, 0)),
    ];
    let mut def = definition("resolution", &[(None, 240)]);
    let cal = BusinessCalendar::always_open();
    let timers = engine(vec![def.clone()]).timers(INCIDENT, &history);
    assert_eq!(
        timers[0].due(&cal),
        Some(at(2026, 11, 2, 16, 0)),
        "4 h + 3 h on hold"
    );
    let paused = engine(vec![def.clone()]).timers(INCIDENT, &history[..2]);
    assert!(paused[0].is_paused());
    assert_eq!(
        paused[0].due(&cal),
        None,
        "no due instant while paused short of the target"
    );
    def.deadline = DeadlineKind::Fixed;
    let fixed = engine(vec![def]).timers(INCIDENT, &history);
    assert_eq!(
        fixed[0].due(&cal),
        Some(at(2026, 11, 2, 13, 0)),
        "a fixed deadline ignores the hold"
    );
}

#[test]
fn whole_seconds_never_round_up_to_a_breach() {
    let t0 = at(2026, 11, 2, 9, 0);
    let e = engine(vec![definition("resolution", &[(None, 1000)])]);
    let timers = e.timers(INCIDENT, &[(t0, logged("email"))]);
    let cal = BusinessCalendar::always_open();
    let just_before = t0 + TimeDelta::seconds(59_999);
    assert_eq!(
        timers[0].percent_bp(&cal, just_before),
        Some(9999),
        "99.998 % is not 100 %"
    );
    assert!(
        timers[0]
            .unrecorded_reached(&cal, just_before)
            .iter()
            .all(|(bp, _)| *bp < 10_000)
    );
    assert!(
        timers[0]
            .unrecorded_reached(&cal, just_before + TimeDelta::seconds(1))
            .iter()
            .any(|(bp, _)| *bp == 10_000)
    );
}

#[test]
fn cancellation_and_services_scope_timers() {
    let mut def = definition("resolution", &[(None, 60)]);
    def.applies_to = AppliesTo {
        record_types: vec![Incident::RECORD_TYPE],
        services: vec!["erp".into()],
    };
    let e = engine(vec![def]);
    let t0 = at(2026, 11, 2, 9, 0);
    assert!(
        e.timers(INCIDENT, &[(t0, logged("email"))]).is_empty(),
        "another service"
    );
    assert!(
        e.timers(REQUEST, &[(t0, logged("erp"))]).is_empty(),
        "another record type"
    );
    let cancelled = e.timers(
        INCIDENT,
        &[
            (t0, logged("erp")),
            (
                t0,
                moved(
                    Phase::Cancelled,
                    TransitionDetail::Cancellation {
                        reason: "dup".into(),
                    },
                    t0,
                ),
            ),
        ],
    );
    assert_eq!(
        cancelled[0].ended().map(|(_, h)| h),
        Some(TimerEnd::Cancelled)
    );
    assert!(
        cancelled[0]
            .unrecorded_reached(&BusinessCalendar::always_open(), t0 + TimeDelta::days(9))
            .is_empty(),
        "a cancelled timer never breaches"
    );
}

#[test]
fn bad_definitions_are_refused_with_the_reason() {
    let base = definition("resolution", &[(None, 60)]);
    let mut d = base.clone();
    d.warnings = vec![50.0, 120.0];
    assert_eq!(
        Sla::new(d).expect_err("refused").to_string(),
        "sla resolution-sla: warning threshold 120 % is outside (0, 100]"
    );
    let mut d = base.clone();
    d.warnings = vec![0.0];
    assert!(matches!(
        Sla::new(d),
        Err(SlaError::ThresholdOutOfRange { .. })
    ));
    let mut d = base.clone();
    d.stop = vec![Condition::Logged];
    assert!(matches!(Sla::new(d), Err(SlaError::NeverStops { .. })));
    let mut d = base.clone();
    d.start = vec![Condition::Entered(Phase::Closed)];
    assert!(matches!(Sla::new(d), Err(SlaError::NeverStops { .. })));
    let mut d = base.clone();
    d.targets.clear();
    assert!(matches!(Sla::new(d), Err(SlaError::BadTarget { .. })));
    let mut d = base.clone();
    d.calendar = "mars".into();
    let err = SlaEngine::new()
        .with_calendar(BusinessCalendar::always_open())
        .with_sla(Sla::new(d).expect("valid"))
        .expect_err("unknown calendar");
    assert!(err.to_string().contains("mars"), "{err}");
    let mut v2 = base.clone();
    v2.version = 2;
    v2.effective_from = base.effective_from - TimeDelta::days(1);
    let registry = SlaRegistry::new()
        .with(Sla::new(base).expect("valid"))
        .expect("first");
    assert!(matches!(
        registry.with(Sla::new(v2).expect("valid")),
        Err(SlaError::NotAfterPrevious { .. })
    ));
}

#[test]
fn timers_bind_to_the_version_in_effect_at_their_start_and_what_if_writes_nothing() {
    let v1 = definition("resolution", &[(None, 240)]);
    let mut v2 = v1.clone();
    v2.version = 2;
    v2.effective_from = at(2026, 11, 2, 12, 0);
    v2.targets = vec![Target {
        priority: None,
        minutes: 120,
    }];
    let e = engine(vec![v1, v2.clone()]);
    let early = e.timers(INCIDENT, &[(at(2026, 11, 2, 9, 0), logged("email"))]);
    assert_eq!(early[0].sla().version, 1);
    let late = e.timers(INCIDENT, &[(at(2026, 11, 2, 13, 0), logged("email"))]);
    assert_eq!(late[0].sla().version, 2);
    let what_if = e.what_if(
        INCIDENT,
        &[(at(2026, 11, 2, 9, 0), logged("email"))],
        &Sla::new(v2).expect("valid"),
    );
    assert_eq!(
        what_if[0].due(&BusinessCalendar::always_open()),
        Some(at(2026, 11, 2, 11, 0)),
        "the same history under version 2"
    );
}

proptest! {
    /// While the definition and priority stay the same, no event moves the due instant earlier;
    /// and deriving twice gives the same timers.
    #[test]
    fn due_instants_never_move_earlier_while_a_timer_runs(steps in proptest::collection::vec((0u8..3, 1i64..600), 1..30)) {
        let e = engine(vec![definition("resolution", &[(None, 480)])]);
        let cal = BusinessCalendar::always_open();
        let mut now = at(2026, 11, 2, 9, 0);
        let mut history = vec![(now, logged("email"))];
        let mut last_due = None;
        let mut pending = false;
        for (kind, minutes) in steps {
            now += TimeDelta::minutes(minutes);
            match kind {
                0 if !pending => { history.push(hold(now)); pending = true; }
                1 if pending => { history.push(resume(now)); pending = false; }
                _ => history.push((now, noted())),
            }
            let timers = e.timers(INCIDENT, &history);
            prop_assert_eq!(&timers, &e.timers(INCIDENT, &history));
            if let Some(due) = timers[0].due(&cal) {
                if let Some(before) = last_due {
                    prop_assert!(due >= before, "due moved from {} to {}", before, due);
                }
                last_due = Some(due);
            }
        }
    }
}

// ---- firing, exactly once ---------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn incidents(store: &MemoryEventStore) -> CommandHandler<IncidentManagement> {
    CommandHandler::new(Arc::new(store.clone()), IncidentPolicy::default())
}

async fn log_incident(store: &MemoryEventStore, t0: DateTime<Utc>) -> StreamId {
    let handler = incidents(store);
    let ids = SequentialIds::new(1);
    let stream = Incident::stream(&"INC-9".parse().expect("valid")).expect("valid");
    let meta = CommandMeta::new(Actor::new("agent").expect("valid"));
    let ctx = Context::new(t0, &ids);
    let log = LogRecord::new(
        "INC-9".parse().expect("valid"),
        "ana".parse().expect("valid"),
        Channel::Email,
        "email".parse().expect("valid"),
        "s",
    );
    for command in [
        IncidentCommand::Log(log),
        RecordCommand::Prioritise {
            impact: Level::Medium,
            urgency: Level::Medium,
        }
        .into(),
    ] {
        let done = handler
            .execute(&stream, &command, &meta, &ctx)
            .await
            .expect("accepted");
        assert_eq!(done.events.len(), 1, "{command:?}");
    }
    stream
}

#[test]
fn thresholds_and_breaches_are_recorded_once_even_late_twice_and_on_two_nodes() {
    runtime().block_on(async {
        let store = MemoryEventStore::new();
        let t0 = at(2026, 11, 2, 9, 0);
        let stream = log_incident(&store, t0).await;
        let e = Arc::new(engine(vec![definition("resolution", &[(None, 240)])]));
        let mut node_a = SlaDriver::new(Arc::new(store.clone()), e.clone());
        let mut node_b = SlaDriver::new(Arc::new(store.clone()), e.clone());
        node_a.track(&stream).await.expect("tracks");
        node_b.track(&stream).await.expect("tracks");
        assert_eq!(
            node_a.scheduler().next_instant(),
            Some(at(2026, 11, 2, 11, 0)),
            "50 % of 4 h"
        );

        // The check runs late: every threshold is recorded at the instant it was reached.
        let late = at(2026, 11, 3, 8, 0);
        let fired = node_a.fire_due(late).await.expect("fires");
        assert_eq!(fired.appended, 3, "50 %, 75 % and the breach");
        assert_eq!(
            node_a.fire_due(late).await.expect("fires").appended,
            0,
            "twice: nothing new"
        );
        assert_eq!(
            node_b.fire_due(late).await.expect("fires").appended,
            0,
            "another node: nothing new"
        );
        assert_eq!(
            node_a.scheduler().next_instant(),
            None,
            "nothing left to fire"
        );

        let sla_events: Vec<_> = store
            .read_all(Position::START, LogFilter::all())
            .map(|e| e.expect("reads"))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .filter(|e| e.event_type().as_str().contains(".sla_"))
            .collect();
        let instants: Vec<_> = sla_events
            .iter()
            .map(|e| (e.event_type().to_string(), e.data.metadata().occurred_at()))
            .collect();
        assert_eq!(
            instants,
            vec![
                (
                    "incident.sla_threshold_reached".into(),
                    at(2026, 11, 2, 11, 0)
                ),
                (
                    "incident.sla_threshold_reached".into(),
                    at(2026, 11, 2, 12, 0)
                ),
                ("incident.sla_breached".into(), at(2026, 11, 2, 13, 0)),
            ]
        );
        assert!(
            sla_events
                .iter()
                .all(|e| e.data.metadata().actor().as_str() == smsys_processes::sla::SLA_ACTOR)
        );

        // Replay: the history gives back the same timers, now with everything recorded.
        let (record_type, history, _) = smsys_processes::sla::load_history(&store, &e, &stream)
            .await
            .expect("reads");
        let timers = e.timers(&record_type, &history);
        assert_eq!(timers[0].recorded().len(), 3);
        assert_eq!(timers, e.timers(&record_type, &history));
    });
}

#[test]
fn a_node_a_moment_behind_another_records_only_what_is_new() {
    runtime().block_on(async {
        let store = MemoryEventStore::new();
        let t0 = at(2026, 11, 2, 9, 0);
        let stream = log_incident(&store, t0).await;
        let e = engine(vec![definition("resolution", &[(None, 240)])]);
        let (record_type, history, read) = smsys_processes::sla::load_history(&store, &e, &stream)
            .await
            .expect("reads");
        let timers = e.timers(&record_type, &history);
        let due =
            |now| smsys_processes::sla::due_events(&stream, &timers, |t| e.calendar_for(t), now);
        // Node A records the first warning; node B, which read the same history, then records
        // all three: the first comes back as a retry, the other two are new.
        let a = smsys_processes::sla::record_sla_events(
            &store,
            &stream,
            read,
            due(at(2026, 11, 2, 11, 30)),
        )
        .await
        .expect("records");
        assert_eq!((a.new, a.complete), (1, true));
        let b = smsys_processes::sla::record_sla_events(
            &store,
            &stream,
            read,
            due(at(2026, 11, 3, 8, 0)),
        )
        .await
        .expect("records");
        assert_eq!((b.new, b.complete), (2, true));
        let (_, history, _) = smsys_processes::sla::load_history(&store, &e, &stream)
            .await
            .expect("reads");
        let sla_events = history
            .iter()
            .filter(|(_, ev)| {
                matches!(
                    ev,
                    CommonEvent::Record(
                        RecordEvent::SlaThresholdReached { .. } | RecordEvent::SlaBreached { .. }
                    )
                )
            })
            .count();
        assert_eq!(sla_events, 3, "each threshold recorded once");
    });
}

#[test]
fn a_resolution_committed_after_the_history_was_read_prevents_a_stale_breach() {
    runtime().block_on(async {
        let store = MemoryEventStore::new();
        let t0 = at(2026, 11, 2, 9, 0);
        let stream = log_incident(&store, t0).await;
        let e = Arc::new(engine(vec![definition("resolution", &[(None, 240)])]));
        // The driver reads the history at 13:00 and derives the breach...
        let (record_type, history, read) = smsys_processes::sla::load_history(&store, &e, &stream)
            .await
            .expect("reads");
        let timers = e.timers(&record_type, &history);
        let stale = smsys_processes::sla::due_events(
            &stream,
            &timers,
            |t| e.calendar_for(t),
            at(2026, 11, 2, 13, 0),
        );
        assert!(
            stale
                .iter()
                .any(|d| d.event_type().as_str() == "incident.sla_breached")
        );
        // ...while a resolution decided at 12:59 commits.
        let handler = incidents(&store);
        let ids = SequentialIds::new(7);
        let meta = CommandMeta::new(Actor::new("agent").expect("valid"));
        let late = Context::new(at(2026, 11, 2, 12, 59), &ids);
        for command in [
            RecordCommand::Assign {
                group: "desk".parse().expect("valid"),
                person: None,
            },
            RecordCommand::Classify {
                category: "mail".into(),
                subcategory: None,
            },
            RecordCommand::Resolve {
                code: "fixed".into(),
                notes: "n".into(),
            },
        ] {
            handler
                .execute(&stream, &command.into(), &meta, &late)
                .await
                .expect("accepted");
        }
        let outcome = smsys_processes::sla::record_sla_events(&store, &stream, read, stale)
            .await
            .expect("no error");
        assert!(!outcome.complete, "the record changed since it was read");
        assert_eq!(outcome.new, 0);
        // The driver derives again from the new history: the warnings, but no breach.
        let mut driver = SlaDriver::new(Arc::new(store.clone()), e.clone());
        driver.track(&stream).await.expect("tracks");
        driver
            .fire_record(&stream, at(2026, 11, 2, 13, 0))
            .await
            .expect("fires");
        let (_, history, _) = smsys_processes::sla::load_history(&store, &e, &stream)
            .await
            .expect("reads");
        assert!(
            !history
                .iter()
                .any(|(_, ev)| matches!(ev, CommonEvent::Record(RecordEvent::SlaBreached { .. }))),
            "no breach: resolved at 12:59 within 4 h"
        );
        assert_eq!(
            history
                .iter()
                .filter(|(_, ev)| matches!(
                    ev,
                    CommonEvent::Record(RecordEvent::SlaThresholdReached { .. })
                ))
                .count(),
            2
        );
    });
}

#[test]
fn service_requests_are_followed_under_their_own_record_type() {
    runtime().block_on(async {
        let store = MemoryEventStore::new();
        let requests = CommandHandler::<RequestManagement>::new(
            Arc::new(store.clone()),
            RequestPolicy::default(),
        );
        let reference: Reference = "REQ-1".parse().expect("valid");
        let stream = ServiceRequest::stream(&reference).expect("valid");
        let ids = SequentialIds::new(1);
        let meta = CommandMeta::new(Actor::new("agent").expect("valid"));
        let ctx = Context::new(at(2026, 11, 2, 9, 0), &ids);
        let log = LogRecord::new(
            reference,
            "ana".parse().expect("valid"),
            Channel::Portal,
            "laptops".parse().expect("valid"),
            "a laptop",
        );
        for command in [
            RequestCommand::Log {
                record: log,
                catalogue_item: "laptop".into(),
                fulfilment_instructions: None,
            },
            RequestCommand::AddTask {
                task: "t1".into(),
                description: "order it".into(),
            },
        ] {
            requests
                .execute(&stream, &command, &meta, &ctx)
                .await
                .expect("accepted");
        }
        let mut def = definition("fulfilment", &[(None, 240)]);
        def.applies_to = AppliesTo {
            record_types: vec![ServiceRequest::RECORD_TYPE],
            services: vec![],
        };
        let e = Arc::new(engine(vec![def]));
        let (record_type, history, read) = smsys_processes::sla::load_history(&store, &e, &stream)
            .await
            .expect("reads");
        assert_eq!(&record_type, REQUEST, "stream category request");
        assert_eq!(read, Some(Version::new(2)));
        assert_eq!(history.len(), 1, "the task is the request's own event");
        assert!(
            e.timers(INCIDENT, &history).is_empty(),
            "the definition is for service requests only"
        );

        let mut driver = SlaDriver::new(Arc::new(store.clone()), e);
        driver.track(&stream).await.expect("tracks");
        assert_eq!(
            driver.scheduler().next_instant(),
            Some(at(2026, 11, 2, 11, 0))
        );
        let fired = driver.fire_due(at(2026, 11, 3, 8, 0)).await.expect("fires");
        assert_eq!(fired.appended, 3, "50 %, 75 % and the breach");
        let types: Vec<_> = store
            .read_stream(&stream, Version::new(3))
            .map(|e| e.expect("reads").event_type().to_string())
            .collect()
            .await;
        assert_eq!(
            types,
            [
                "request.sla_threshold_reached",
                "request.sla_threshold_reached",
                "request.sla_breached"
            ]
        );
        let loaded = requests
            .load(&stream)
            .await
            .expect("the request still loads");
        assert_eq!(loaded.version, Some(Version::new(5)));
        assert_eq!(loaded.state.tasks().get("t1"), Some(&false));
    });
}

#[test]
fn histories_lift_old_schema_versions_and_name_what_they_cannot_read() {
    runtime().block_on(async {
        use smsys_store::testkit::{Fixture, event};
        let store = MemoryEventStore::new();
        let e = engine(vec![definition("resolution", &[(None, 240)])]);
        let stream: StreamId = "incident-INC-1".parse().expect("valid");
        // Schema version 1 of `logged` (no attributes) and `classified` (no subcategory), and
        // an incident's own event, which timers do not read.
        let v1 = vec![
            event(
                "incident.logged",
                serde_json::json!({
                    "reference": "INC-1",
                    "lifecycle": { "name": "incident", "version": 1 },
                    "status": "new",
                    "caller": "ana",
                    "channel": "phone",
                    "service": "email",
                    "affected_cis": [],
                    "summary": "s",
                    "description": "",
                }),
            ),
            event(
                "incident.classified",
                serde_json::json!({ "category": "mail" }),
            ),
            event(
                "incident.major_flagged",
                serde_json::json!({ "reason": "P1" }),
            ),
        ];
        store
            .append(&stream, ExpectedVersion::NoStream, v1)
            .await
            .expect("appends");
        let (record_type, history, read) = smsys_processes::sla::load_history(&store, &e, &stream)
            .await
            .expect("reads");
        assert_eq!(&record_type, INCIDENT);
        assert_eq!(read, Some(Version::new(3)));
        let t = Fixture::occurred_at();
        assert_eq!(
            history,
            vec![
                (t, logged("email")),
                (
                    t,
                    CommonEvent::Record(RecordEvent::Classified {
                        category: "mail".into(),
                        subcategory: None,
                    })
                ),
            ]
        );
        assert_eq!(e.timers(&record_type, &history).len(), 1);
        let mut driver = SlaDriver::new(Arc::new(store.clone()), Arc::new(e.clone()));
        assert_eq!(driver.track(&stream).await.expect("tracked").len(), 1);
        assert!(
            driver.scheduler().next_instant().is_some(),
            "its timer is indexed"
        );

        store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![event(
                    "incident.assigned",
                    serde_json::json!({ "group": "" }),
                )],
            )
            .await
            .expect("appends");
        let err = smsys_processes::sla::load_history(&store, &e, &stream)
            .await
            .expect_err("a blank group does not decode");
        assert!(
            matches!(&err, SlaDriverError::Decode { version, .. } if *version == Version::new(4)),
            "{err}"
        );
        assert!(err.to_string().contains("incident.assigned"), "{err}");
        assert!(
            driver
                .track(&stream)
                .await
                .expect("skipped, not stopped")
                .is_empty(),
            "one unreadable record does not stop the driver"
        );
        assert_eq!(
            driver.scheduler().next_instant(),
            None,
            "an unreadable record leaves the index, so the driver does not retry it at once forever"
        );

        // An event type that is neither shared nor the record type's own is refused by name.
        let odd: StreamId = "incident-INC-2".parse().expect("valid");
        store
            .append(
                &odd,
                ExpectedVersion::NoStream,
                vec![event("incident.exploded", serde_json::json!({}))],
            )
            .await
            .expect("appends");
        let err = smsys_processes::sla::load_history(&store, &e, &odd)
            .await
            .expect_err("unknown");
        assert!(
            err.to_string()
                .contains("unknown event type incident.exploded"),
            "{err}"
        );

        let other: StreamId = "ticket-1".parse().expect("valid");
        assert!(matches!(
            smsys_processes::sla::load_history(&store, &e, &other).await,
            Err(SlaDriverError::NotARecord(_))
        ));
    });
}

#[test]
fn a_lowered_target_already_overrun_is_breached_at_the_change_not_before() {
    // P3 = 3 h from 10:00; at 13:30 the priority becomes P2 = 2 h, already overrun.
    let t0 = at(2026, 11, 2, 10, 0);
    let history = vec![
        (t0, logged("email")),
        (t0, prioritised(3)),
        (at(2026, 11, 2, 13, 30), prioritised(2)),
    ];
    let mut def = definition("resolution", &[(Some(3), 240), (Some(2), 120)]);
    def.warnings = vec![];
    let e = engine(vec![def]);
    let timers = e.timers(INCIDENT, &history);
    let cal = BusinessCalendar::always_open();
    assert_eq!(timers[0].due(&cal), Some(at(2026, 11, 2, 13, 30)));
    let reached = timers[0].unrecorded_reached(&cal, at(2026, 11, 2, 14, 0));
    assert_eq!(
        reached,
        vec![(10_000, at(2026, 11, 2, 13, 30))],
        "breached when the shorter target applied"
    );
}

#[test]
fn reopening_resumes_only_cycles_the_resolution_stopped_and_applies_a_priority_set_meanwhile() {
    let ola = SlaDefinition {
        timer: "ola:network".into(),
        name: "ola".into(),
        start: vec![Condition::AssignedTo("network".into())],
        stop: vec![
            Condition::AssignedAwayFrom("network".into()),
            Condition::Entered(Phase::Resolved),
        ],
        ..definition("x", &[(None, 600)])
    };
    let resolution = definition("resolution", &[(Some(3), 960), (Some(1), 240)]);
    let assign = |g: &str| assigned(g, true);
    let history = vec![
        (at(2026, 11, 2, 9, 0), logged("vpn")),
        (at(2026, 11, 2, 9, 0), prioritised(3)),
        (at(2026, 11, 2, 9, 0), assign("network")),
        (at(2026, 11, 2, 9, 30), assign("apps")),
        resolved(at(2026, 11, 2, 10, 0)),
        (at(2026, 11, 2, 10, 30), prioritised(1)),
        reopened(at(2026, 11, 2, 11, 0)),
    ];
    let e = engine(vec![ola, resolution]);
    let timers = e.timers(INCIDENT, &history);
    let cal = BusinessCalendar::always_open();
    let ola = named(&timers, "ola:network");
    assert!(
        ola.ended().is_some(),
        "the network OLA stopped when apps took over; the reopen leaves it alone"
    );
    let res = named(&timers, "resolution");
    assert!(res.is_running());
    assert_eq!(res.priority(), Some(p(1)));
    assert_eq!(
        res.due(&cal),
        Some(at(2026, 11, 2, 14, 0)),
        "1 h counted, 3 h left of the P1 target from 11:00"
    );
}

#[test]
fn a_recorded_breach_stays_a_breach_in_reports() {
    use smsys_processes::sla::{Period, SlaReport};
    let t0 = at(2026, 11, 2, 9, 0);
    let def = definition("resolution", &[(Some(1), 240), (Some(4), 2400)]);
    let history = vec![
        (t0, logged("email")),
        (t0, prioritised(1)),
        (
            at(2026, 11, 2, 13, 0),
            CommonEvent::Record(RecordEvent::SlaBreached {
                timer: "resolution".into(),
                sla: DefinitionRef {
                    name: "resolution-sla".into(),
                    version: 1,
                },
                cycle: 1,
                at: at(2026, 11, 2, 13, 0),
            }),
        ),
        (at(2026, 11, 2, 14, 0), prioritised(4)),
        resolved(at(2026, 11, 2, 15, 0)),
    ];
    let e = engine(vec![def]);
    let timers = e.timers(INCIDENT, &history);
    let mut report = SlaReport::default();
    let stream: smsys_core::StreamId = "incident-X".parse().expect("valid");
    e.report_into(
        &mut report,
        &stream,
        "email",
        &timers,
        at(2026, 11, 3, 0, 0),
        Period::Day,
    );
    let row = report.by_timer()["resolution"];
    assert_eq!(
        (row.met, row.breached),
        (0, 1),
        "downgrading after the breach does not erase it"
    );
    assert_eq!(report.breaches.len(), 1);
}

#[test]
fn a_new_sla_version_must_be_the_newest_and_take_effect_last() {
    let v = |n: u32, month: u32| {
        let mut d = definition("resolution", &[(None, 60)]);
        d.version = n;
        d.effective_from = at(2026, month, 1, 0, 0);
        Sla::new(d).expect("valid")
    };
    let registry = SlaRegistry::new()
        .with(v(1, 1))
        .expect("v1")
        .with(v(3, 3))
        .expect("v3");
    assert!(
        matches!(
            registry.clone().with(v(2, 2)),
            Err(SlaError::NotAfterPrevious { .. })
        ),
        "v2 between v1 and v3 would rebind timers"
    );
    assert!(registry.with(v(4, 4)).is_ok());
}

/// A clock that jumps to whatever instant it is asked to sleep until.
struct Jumping(std::sync::Mutex<DateTime<Utc>>);

#[async_trait::async_trait]
impl Clock for Jumping {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("not poisoned")
    }
    async fn sleep_until(&self, at: DateTime<Utc>) {
        let mut now = self.0.lock().expect("not poisoned");
        *now = (*now).max(at);
    }
}

#[test]
fn the_driver_follows_the_store_and_fires_as_its_clock_advances() {
    runtime().block_on(async {
        let store = MemoryEventStore::new();
        let t0 = at(2026, 11, 2, 9, 0);
        let stream = log_incident(&store, t0).await;
        let e = Arc::new(engine(vec![definition("resolution", &[(None, 240)])]));
        let mut driver = SlaDriver::new(Arc::new(store.clone()), e);
        let clock = Jumping(std::sync::Mutex::new(t0));
        let watched = store.clone();
        let stop = async move {
            let mut log = watched.subscribe(Position::START, LogFilter::all());
            while let Some(e) = log.next().await {
                if e.expect("reads").event_type().as_str() == "incident.sla_breached" {
                    return;
                }
            }
        };
        let run = driver.run(&clock, stop);
        tokio::time::timeout(std::time::Duration::from_secs(20), run)
            .await
            .expect("breaches in time")
            .expect("runs");
        assert!(clock.now() >= at(2026, 11, 2, 13, 0));
        let version = store
            .stream_version(&stream)
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(
            version.get(),
            2 + 3,
            "logged and prioritised, then 50 %, 75 % and the breach"
        );
    });
}

// ---- business calendars -----------------------------------------------------------------------

fn weekdays(zone: &str, intervals: &str) -> BusinessCalendar {
    let days = ["mon", "tue", "wed", "thu", "fri"]
        .map(|day| format!("{{ day = \"{day}\", intervals = [{intervals}] }}"))
        .join(", ");
    BusinessCalendar::from_toml(&format!(
        "name = \"office\"\nversion = 1\ntime_zone = \"{zone}\"\nweekly = [{days}]"
    ))
    .expect("valid calendar")
}

fn office_engine(calendar: BusinessCalendar, minutes: u32, warnings: Vec<f64>) -> SlaEngine {
    let mut d = definition("resolution", &[(None, minutes)]);
    d.calendar = "office".into();
    d.warnings = warnings;
    SlaEngine::new()
        .with_calendar(calendar)
        .with_sla(Sla::new(d).expect("valid"))
        .expect("calendar known")
}

#[test]
fn example_1_thresholds_on_business_hours() {
    let e = office_engine(
        weekdays("UTC", "{ start = \"08:00\", end = \"16:00\" }"),
        480,
        vec![50.0, 75.0],
    );
    let timers = e.timers(INCIDENT, &[(at(2026, 11, 2, 7, 0), logged("email"))]);
    let cal = e.calendar_for(&timers[0]).expect("calendar");
    assert_eq!(
        timers[0].threshold_instant(cal, 5000),
        Some(at(2026, 11, 2, 12, 0))
    );
    assert_eq!(
        timers[0].threshold_instant(cal, 7500),
        Some(at(2026, 11, 2, 14, 0))
    );
    assert_eq!(timers[0].due(cal), Some(at(2026, 11, 2, 16, 0)));
    assert_eq!(
        timers[0].elapsed(cal, at(2026, 11, 2, 8, 0)),
        0,
        "counting starts at opening"
    );
}

#[test]
fn examples_3_and_4_due_next_working_day_moved_by_a_hold_and_a_warning_before_it() {
    let e = office_engine(
        weekdays("UTC", "{ start = \"08:00\", end = \"18:00\" }"),
        240,
        vec![75.0],
    );
    // Opened Monday 16:00: 2 h today, 2 h tomorrow -> Tuesday 10:00; 3 h on hold on Tuesday.
    let opened = vec![(at(2026, 11, 2, 16, 0), logged("email"))];
    let timers = e.timers(INCIDENT, &opened);
    let cal = e.calendar_for(&timers[0]).expect("calendar");
    assert_eq!(timers[0].due(cal), Some(at(2026, 11, 3, 10, 0)));
    let mut held = opened;
    held.push(hold(at(2026, 11, 3, 8, 30)));
    held.push(resume(at(2026, 11, 3, 11, 30)));
    let timers = e.timers(INCIDENT, &held);
    assert_eq!(
        timers[0].due(cal),
        Some(at(2026, 11, 3, 13, 0)),
        "3 h on hold move the due to 13:00"
    );
    // Example 4: opened Monday 17:00, 4 h -> Tuesday 11:00; a warning 1 h before at 10:00.
    let timers = e.timers(INCIDENT, &[(at(2026, 11, 2, 17, 0), logged("email"))]);
    assert_eq!(timers[0].due(cal), Some(at(2026, 11, 3, 11, 0)));
    assert_eq!(
        timers[0].threshold_instant(cal, 7500),
        Some(at(2026, 11, 3, 10, 0)),
        "not at midnight"
    );
}

#[test]
fn a_timer_across_the_berlin_autumn_clock_change_counts_real_business_seconds() {
    // 24x7 in Berlin local time: the night of 2026-10-25 has 25 hours.
    let berlin = BusinessCalendar::from_toml(
        "name = \"office\"\nversion = 1\ntime_zone = \"Europe/Berlin\"\nalways_open = true",
    )
    .expect("valid");
    let e = office_engine(berlin, 24 * 60, vec![]);
    let start = at(2026, 10, 24, 22, 0); // 00:00 local on Sunday 25 October
    let timers = e.timers(INCIDENT, &[(start, logged("email"))]);
    let cal = e.calendar_for(&timers[0]).expect("calendar");
    assert_eq!(
        timers[0].due(cal),
        Some(start + TimeDelta::hours(24)),
        "24 real hours, whatever the wall clock says"
    );
    // Business hours 08:00-18:00 Berlin: the due instant is in local office hours on both sides.
    let e = office_engine(
        weekdays("Europe/Berlin", "{ start = \"08:00\", end = \"18:00\" }"),
        12 * 60,
        vec![],
    );
    let friday_noon = at(2026, 10, 23, 10, 0); // 12:00 CEST
    let timers = e.timers(INCIDENT, &[(friday_noon, logged("email"))]);
    let cal = e.calendar_for(&timers[0]).expect("calendar");
    // 6 h on Friday (to 18:00 CEST), 6 h on Monday from 08:00 CET (07:00 UTC) -> 14:00 CET.
    assert_eq!(timers[0].due(cal), Some(at(2026, 10, 26, 13, 0)));
}

fn history_of(t0: DateTime<Utc>, priority: u8) -> Vec<(DateTime<Utc>, CommonEvent)> {
    vec![(t0, logged("email")), (t0, prioritised(priority))]
}

#[test]
fn the_reference_engine_loads_its_shipped_definitions() {
    let e = SlaEngine::reference();
    let names: Vec<_> = e.slas().names().collect();
    assert_eq!(
        names,
        vec![
            "desk-resolution",
            "desk-response",
            "problem-resolution",
            "problem-response"
        ]
    );
    let t0 = at(2026, 11, 2, 9, 0); // Monday 10:00 Berlin
    // A P2 problem: taken up within 285 business minutes (Monday 10:00 + 2.5 h to 12:30, then
    // 13:00 + 2.25 h -> 15:15 Berlin), resolved within 10 business days.
    let problem = RecordType::new("problem").expect("valid");
    let timers = e.timers(&problem, &history_of(t0, 2));
    let response = named(&timers, "response");
    let cal = e.calendar_for(response).expect("office");
    assert_eq!(response.due(cal), Some(at(2026, 11, 2, 14, 15)));
    let resolution = named(&timers, "resolution");
    // 10 days of 9.5 h from Monday 10:00: the second Monday after, at 10:00 Berlin.
    assert_eq!(resolution.due(cal), Some(at(2026, 11, 16, 9, 0)));
    assert!(
        e.record_type_of(&"problem-PRB-1".parse().expect("valid"))
            .is_some(),
        "the reference engine follows problems"
    );
    let history = vec![(t0, logged("email")), (t0, prioritised(2))];
    let timers = e.timers(INCIDENT, &history);
    let response = named(&timers, "response");
    let cal = e.calendar_for(response).expect("office");
    assert_eq!(
        response.due(cal),
        Some(t0 + TimeDelta::minutes(30)),
        "P2 response: 30 business minutes"
    );
    let resolution = named(&timers, "resolution");
    // 8 business hours from Monday 10:00 (lunch 12:30-13:00): 10-12:30, 13-18 = 7.5 h, then
    // 0.5 h on Tuesday from 08:00 -> 08:30 Berlin = 07:30 UTC.
    assert_eq!(resolution.due(cal), Some(at(2026, 11, 3, 7, 30)));
    assert!(
        SlaEngine::from_toml(&[], "[[sla]]\nname = 1").is_err(),
        "bad input is an error, not a panic"
    );
}

#[test]
fn an_ola_per_support_group_runs_while_that_group_holds_the_record() {
    let text = r#"
        [[sla]]
        name = "ola-network"
        version = 1
        effective_from = "2026-01-01T00:00:00Z"
        timer = "ola:network"
        start = [{ assigned_to = "network" }]
        stop = [{ assigned_away_from = "network" }, { entered = "resolved" }]
        targets = [{ minutes = 120 }]
        calendar = "24x7"
    "#;
    let always = "name = \"24x7\"\nversion = 1\ntime_zone = \"UTC\"\nalways_open = true";
    let e = SlaEngine::from_toml(&[always], text).expect("valid definitions");
    let assign = |group: &str| assigned(group, true);
    let history = vec![
        (at(2026, 11, 2, 9, 0), logged("vpn")),
        (at(2026, 11, 2, 9, 5), assign("desk")),
        (at(2026, 11, 2, 10, 0), assign("network")),
        (at(2026, 11, 2, 11, 30), assign("desk")),
        (at(2026, 11, 2, 12, 0), assign("network")),
    ];
    let timers = e.timers(INCIDENT, &history);
    let cal = BusinessCalendar::always_open();
    assert_eq!(timers.len(), 2, "one cycle per stay with the group");
    assert_eq!(
        timers[0].ended(),
        Some((at(2026, 11, 2, 11, 30), TimerEnd::Stopped))
    );
    assert_eq!(timers[0].elapsed(&cal, at(2026, 11, 3, 0, 0)), 90 * 60);
    assert_eq!(timers[1].cycle(), 2);
    assert_eq!(timers[1].due(&cal), Some(at(2026, 11, 2, 14, 0)));
}

#[test]
fn clearing_the_assignment_stops_a_group_ola_and_leaving_resolved_by_a_hold_is_a_reopen() {
    let ola = SlaDefinition {
        timer: "ola:network".into(),
        name: "ola".into(),
        start: vec![Condition::AssignedTo("network".into())],
        stop: vec![Condition::AssignedAwayFrom("network".into())],
        ..definition("x", &[(None, 600)])
    };
    let resolution = definition("resolution", &[(None, 240)]);
    let history = vec![
        (at(2026, 11, 2, 9, 0), logged("vpn")),
        (at(2026, 11, 2, 9, 0), assigned("network", false)),
        (
            at(2026, 11, 2, 9, 30),
            CommonEvent::Record(RecordEvent::Unassigned {
                reason: "wrong queue".into(),
            }),
        ),
        resolved(at(2026, 11, 2, 10, 0)),
        // A lifecycle that holds resolved records: the record is open again.
        hold(at(2026, 11, 2, 11, 0)),
        resume(at(2026, 11, 2, 12, 0)),
    ];
    let timers = engine(vec![ola, resolution]).timers(INCIDENT, &history);
    let ola = named(&timers, "ola:network");
    assert!(
        ola.ended().is_some(),
        "the OLA stopped when the assignment was cleared"
    );
    let res = named(&timers, "resolution");
    assert!(res.is_running(), "the resolution timer resumed");
    assert_eq!(
        res.due(&BusinessCalendar::always_open()),
        Some(at(2026, 11, 2, 15, 0)),
        "1 h counted before the resolution; the hour on hold paused it; 3 h left from 12:00"
    );
}

/// A service CI of the catalogue naming `slas`.
fn catalogued(service: &str, slas: &str) -> smsys_core::records::ConfigurationItem {
    use smsys_core::records::configuration_item::CiRegistered;
    use smsys_core::records::{CiEvent, ConfigurationItem};
    use smsys_core::{EventSourced, Stamp};
    let mut ci = ConfigurationItem::default();
    ci.evolve(
        &CiEvent::Registered(CiRegistered {
            id: service.parse().expect("valid"),
            ci_type: "service".parse().expect("valid"),
            name: service.into(),
            description: String::new(),
            status: "live".into(),
            attributes: [("sla".parse().expect("valid"), slas.into())]
                .into_iter()
                .collect(),
            change: None,
        }),
        Stamp::new(None, at(2026, 1, 1, 0, 0)),
    );
    ci
}

#[test]
fn the_service_catalogue_names_each_services_slas() {
    use smsys_processes::catalogue::ServiceCatalogue;
    let gold = definition("gold", &[(None, 60)]);
    let mut silver = definition("silver", &[(None, 240)]);
    // By configuration, silver is for the web service only.
    silver.applies_to.services = vec!["web".into()];
    let catalogue = ServiceCatalogue::from_cis([&catalogued("email", "gold-sla")].iter().copied());
    let e = engine(vec![gold, silver]).with_selection(Arc::new(catalogue));
    let t0 = at(2026, 11, 2, 9, 0);
    let timers_of = |service: &str| {
        let mut names: Vec<String> = e
            .timers(INCIDENT, &[(t0, logged(service))])
            .iter()
            .map(|t| t.timer().to_owned())
            .collect();
        names.sort();
        names
    };
    // The catalogue names gold for e-mail: only gold runs there.
    assert_eq!(timers_of("email"), ["gold"]);
    // Services it does not know keep the definitions' own rules.
    assert_eq!(timers_of("web"), ["gold", "silver"]);
    assert_eq!(timers_of("print"), ["gold"]);
    // A retired service leaves the catalogue.
    let mut retired = catalogued("email", "silver-sla");
    smsys_core::EventSourced::evolve(
        &mut retired,
        &smsys_core::records::CiEvent::StatusChanged {
            from: "live".into(),
            to: "retired".into(),
            reason: String::new(),
            change: None,
        },
        smsys_core::Stamp::new(None, t0),
    );
    assert!(ServiceCatalogue::from_cis([&retired]).is_empty());
}

#[tokio::test]
async fn the_graph_catalogue_binds_each_timer_to_the_slas_named_when_it_started() {
    use smsys_core::records::configuration_item::CiRegistered;
    use smsys_core::records::{CiEvent, ConfigurationItem};
    use smsys_core::{
        Actor, DomainEvent, EventData, EventId, EventStore, ExpectedVersion, Metadata,
        ProjectionRunner,
    };
    use smsys_processes::CmdbGraph;
    use smsys_processes::catalogue::GraphCatalogue;

    let store = Arc::new(MemoryEventStore::new());
    let stream = ConfigurationItem::stream(&"email".parse().expect("valid")).expect("valid");
    let monday = at(2026, 11, 2, 9, 0);
    let events = [
        (
            monday,
            CiEvent::Registered(CiRegistered {
                id: "email".parse().expect("valid"),
                ci_type: "service".parse().expect("valid"),
                name: "E-mail".into(),
                description: String::new(),
                status: "live".into(),
                attributes: [("sla".parse().expect("valid"), "gold-sla".into())]
                    .into_iter()
                    .collect(),
                change: None,
            }),
        ),
        (
            monday + TimeDelta::days(2),
            CiEvent::AttributesUpdated {
                set: [("sla".parse().expect("valid"), "silver-sla".into())]
                    .into_iter()
                    .collect(),
                removed: Vec::new(),
                change: Some("CHG-9".parse().expect("valid")),
            },
        ),
    ];
    for (n, (when, event)) in events.into_iter().enumerate() {
        let metadata = Metadata::new(
            EventId::derived(&format!("catalogue/{n}")),
            Actor::new("eng").expect("valid"),
            when,
        );
        let data = EventData::new(
            event.event_type(),
            1,
            event.to_payload().expect("encodes"),
            metadata,
        )
        .expect("valid");
        store
            .append(&stream, ExpectedVersion::Any, vec![data])
            .await
            .expect("appends");
    }
    let graph = Arc::new(CmdbGraph::new());
    ProjectionRunner::new(store.clone())
        .catch_up(graph.as_ref())
        .await
        .expect("folds");
    let e = engine(vec![
        definition("gold", &[(None, 60)]),
        definition("silver", &[(None, 240)]),
    ])
    .with_selection(Arc::new(GraphCatalogue::new(graph.clone())));
    let timer_of = |logged_at| {
        let timers = e.timers(INCIDENT, &[(logged_at, logged("email"))]);
        timers
            .iter()
            .map(|t| t.timer().to_owned())
            .collect::<Vec<_>>()
    };
    // An incident logged on Tuesday keeps gold, though the catalogue names silver today.
    assert_eq!(timer_of(monday + TimeDelta::days(1)), ["gold"]);
    assert_eq!(timer_of(monday + TimeDelta::days(3)), ["silver"]);
    // Before the service was catalogued, the definitions' own rules apply.
    assert_eq!(timer_of(monday - TimeDelta::days(1)), ["gold", "silver"]);
    let tuesday = GraphCatalogue::new(graph).as_of(monday + TimeDelta::days(1));
    assert_eq!(
        tuesday.get("email").map(|s| s.slas.clone()),
        Some(vec!["gold-sla".to_owned()])
    );
}
