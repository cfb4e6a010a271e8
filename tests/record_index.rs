//! The record index agrees with a full replay: random commands on incidents and requests, the
//! indexer caught up in random batches, restarted (its in-memory histories lost) and fed again
//! from an earlier checkpoint; every row equals the one computed from the record's replayed
//! state and whole history.

#![allow(
    clippy::expect_used,
    clippy::wildcard_enum_match_arm,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use smsys::core::records::{
    Channel, Incident, Level, NoteKind, Phase, Priority, RecordIndexStore, RecordKind, RecordRow,
    ServiceRequest,
};
use smsys::core::{
    Actor, CommandHandler, CommandMeta, Context, Position, ProjectionRunner, SequentialIds,
    StreamId,
};
use smsys::processes::index::{RecordIndexer, timer_rows};
use smsys::processes::sla::{SlaDriver, SlaEngine};
use smsys::processes::view::RecordView;
use smsys::processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, RecordCommand, RequestCommand,
    RequestManagement, RequestPolicy,
};
use smsys::store::{MemoryEventStore, MemoryRecordIndex};

const INCIDENTS: usize = 4;
const REQUESTS: usize = 2;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0)
        .single()
        .expect("valid")
}

fn command(kind: u8, arg: u8) -> RecordCommand {
    let level = |n: u8| [Level::High, Level::Medium, Level::Low][usize::from(n % 3)];
    match kind % 12 {
        0 => RecordCommand::Assign {
            group: ["desk", "network"][usize::from(arg % 2)]
                .parse()
                .expect("valid"),
            person: arg.is_multiple_of(3).then(|| "bo".parse().expect("valid")),
        },
        1 => RecordCommand::Unassign {
            reason: "wrong queue".into(),
        },
        2 => RecordCommand::Prioritise {
            impact: level(arg),
            urgency: level(arg / 3),
        },
        3 => RecordCommand::OverridePriority {
            priority: Priority::new(arg % 5 + 1).expect("valid"),
            reason: "by hand".into(),
        },
        4 => RecordCommand::Classify {
            category: "mail".into(),
            subcategory: None,
        },
        5 => RecordCommand::Hold {
            reason: "caller".into(),
            status: None,
        },
        6 => RecordCommand::Resume,
        7 => RecordCommand::Resolve {
            code: "fixed".into(),
            notes: "done".into(),
        },
        8 => RecordCommand::Reopen {
            reason: "again".into(),
        },
        9 => RecordCommand::Close,
        10 => RecordCommand::Cancel {
            reason: "duplicate".into(),
        },
        _ => RecordCommand::AddNote {
            kind: NoteKind::CallerUpdate,
            text: "still broken".into(),
        },
    }
}

fn log(reference: &str) -> LogRecord {
    LogRecord::new(
        reference.parse().expect("valid"),
        "ana".parse().expect("valid"),
        Channel::Phone,
        "email".parse().expect("valid"),
        format!("{reference}: mail bounces"),
    )
}

/// The row a full replay gives: state from the handler's load, timers from the whole history.
async fn replayed<K: RecordKind>(
    store: &MemoryEventStore,
    engine: &SlaEngine,
    stream: &StreamId,
) -> RecordRow {
    let view = RecordView::<K>::load(store, engine, stream, t0())
        .await
        .expect("loads");
    let history: Vec<_> = view
        .history
        .iter()
        .filter_map(|e| e.event.clone().into_common().map(|c| (e.at, c)))
        .collect();
    let r = view.state.record();
    RecordRow {
        stream: stream.clone(),
        record_type: K::RECORD_TYPE,
        reference: r.reference().cloned().expect("logged"),
        status: r.status().expect("logged").to_owned(),
        phase: r.phase().expect("logged"),
        priority: r.priority(),
        service: r.service().cloned().expect("logged"),
        group: r.group().cloned(),
        person: r.person().cloned(),
        caller: r.caller().cloned().expect("logged"),
        summary: r.summary().to_owned(),
        affected_cis: r.affected_cis().to_vec(),
        logged_at: r.logged_at().expect("logged"),
        resolved_at: r.resolution().map(|res| res.at),
        closed_at: r.closed_at(),
        reopen_count: r.reopen_count(),
        major: view
            .history
            .iter()
            .any(|e| e.event.name() == "major_flagged"),
        timers: timer_rows(engine, &K::RECORD_TYPE, &history),
        version: view.version.expect("logged"),
    }
}

async fn scenario(commands: Vec<(usize, u8, u8)>, first: usize, cut: usize, second: usize) {
    let store = Arc::new(MemoryEventStore::new());
    let engine = Arc::new(SlaEngine::reference());
    let incidents =
        CommandHandler::<IncidentManagement>::new(store.clone(), IncidentPolicy::default());
    let requests =
        CommandHandler::<RequestManagement>::new(store.clone(), RequestPolicy::default());
    let ids = SequentialIds::new(1);
    let meta = CommandMeta::new(Actor::new("agent").expect("valid"));
    let mut now = t0();
    let stream_of = |n: usize| -> StreamId {
        if n < INCIDENTS {
            Incident::stream(&format!("INC-{n}").parse().expect("valid")).expect("valid")
        } else {
            ServiceRequest::stream(&format!("REQ-{n}").parse().expect("valid")).expect("valid")
        }
    };
    for n in 0..INCIDENTS + REQUESTS {
        let ctx = Context::new(now, &ids);
        if n < INCIDENTS {
            let log = IncidentCommand::Log(log(&format!("INC-{n}")));
            incidents
                .execute(&stream_of(n), &log, &meta, &ctx)
                .await
                .expect("logged");
        } else {
            let log = RequestCommand::Log {
                record: log(&format!("REQ-{n}")),
                catalogue_item: "mailbox".into(),
                fulfilment_instructions: None,
            };
            requests
                .execute(&stream_of(n), &log, &meta, &ctx)
                .await
                .expect("logged");
        }
    }
    // Most records get far enough to be resolved, reopened and closed.
    let setup = [(4u8, 0u8), (2, 4), (0, 1)];
    let commands = (0..INCIDENTS + REQUESTS - 1)
        .flat_map(|n| setup.map(|(kind, arg)| (n, kind, arg)))
        .chain(commands);
    for (target, kind, arg) in commands {
        now += TimeDelta::minutes(i64::from(arg) * 7 + 1);
        let ctx = Context::new(now, &ids);
        let target = target % (INCIDENTS + REQUESTS);
        let c = command(kind, arg);
        // Refusals are part of the game: they record nothing.
        if target < INCIDENTS {
            let _ = incidents
                .execute(&stream_of(target), &c.into(), &meta, &ctx)
                .await;
        } else {
            let _ = requests
                .execute(&stream_of(target), &c.into(), &meta, &ctx)
                .await;
        }
    }
    // Thresholds and breaches as the SLA driver records them.
    let mut driver = SlaDriver::new(store.clone(), engine.clone());
    for n in 0..INCIDENTS + REQUESTS {
        driver.track(&stream_of(n)).await.expect("tracked");
    }
    driver
        .fire_due(now + TimeDelta::days(30))
        .await
        .expect("fired");

    let rows: Arc<dyn RecordIndexStore> = Arc::new(MemoryRecordIndex::new(
        "record_index.v1".try_into().expect("valid name"),
    ));
    let runner = |batch| ProjectionRunner::new(store.clone()).with_batch_size(batch);
    let indexer = RecordIndexer::new(store.clone(), rows.clone(), engine.clone());
    runner(first).catch_up(&indexer).await.expect("caught up");
    // A restart that lost its in-memory histories and whose checkpoint is behind: the events
    // after it come again.
    let end = rows.checkpoint().await.expect("readable").expect("some");
    let back = Position::new(end.commit(), end.sequence() * (cut as u64 % 100) / 100);
    rows.apply(Vec::new(), back).await.expect("moved back");
    let restarted = RecordIndexer::new(store.clone(), rows.clone(), engine.clone());
    runner(second)
        .catch_up(&restarted)
        .await
        .expect("caught up again");

    for n in 0..INCIDENTS + REQUESTS {
        let stream = stream_of(n);
        let want = if n < INCIDENTS {
            replayed::<Incident>(&store, &engine, &stream).await
        } else {
            replayed::<ServiceRequest>(&store, &engine, &stream).await
        };
        let got = rows.row(&stream).await.expect("readable").expect("indexed");
        assert_eq!(got, want, "{stream}");
    }
    let open = rows
        .count(&smsys::core::records::RecordQuery::open())
        .await
        .expect("counts");
    let mut expected_open = 0;
    for n in 0..INCIDENTS + REQUESTS {
        let row = rows
            .row(&stream_of(n))
            .await
            .expect("readable")
            .expect("indexed");
        if matches!(row.phase, Phase::New | Phase::Active | Phase::Pending) {
            expected_open += 1;
        }
    }
    assert_eq!(open, expected_open);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn the_index_agrees_with_a_full_replay(
        commands in proptest::collection::vec((0usize..6, 0u8..12, 0u8..30), 0..60),
        first in 1usize..16,
        cut in 0usize..100,
        second in 1usize..16,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(scenario(commands, first, cut, second));
    }
}

/// The SLA driver starts from the record index instead of the whole log: the timers it seeds
/// from the index's open records are those it gets by reading every record.
#[tokio::test]
async fn the_sla_driver_seeds_its_timers_from_the_index() {
    let store = Arc::new(MemoryEventStore::new());
    let engine = Arc::new(SlaEngine::reference());
    let incidents =
        CommandHandler::<IncidentManagement>::new(store.clone(), IncidentPolicy::default());
    let ids = SequentialIds::new(1);
    let meta = CommandMeta::new(Actor::new("agent").expect("valid"));
    let mut streams = Vec::new();
    for n in 0..12u8 {
        let stream = Incident::stream(&format!("INC-{n}").parse().expect("valid")).expect("valid");
        let at = t0() + TimeDelta::minutes(i64::from(n) * 13);
        let ctx = Context::new(at, &ids);
        let log = IncidentCommand::Log(log(&format!("INC-{n}")));
        incidents
            .execute(&stream, &log, &meta, &ctx)
            .await
            .expect("logged");
        for (kind, arg) in [(2, n), (0, n), (5 + n % 3, n)] {
            let _ = incidents
                .execute(&stream, &command(kind, arg).into(), &meta, &ctx)
                .await;
        }
        streams.push(stream);
    }
    let rows: Arc<dyn RecordIndexStore> = Arc::new(MemoryRecordIndex::new(
        "record_index.v1".try_into().expect("valid name"),
    ));
    let indexer = RecordIndexer::new(store.clone(), rows.clone(), engine.clone());
    let checkpoint = ProjectionRunner::new(store.clone())
        .catch_up(&indexer)
        .await
        .expect("caught up");

    let mut from_index = SlaDriver::new(store.clone(), engine.clone());
    let after = from_index.seed_from_index(&*rows).await.expect("seeded");
    assert_eq!(
        Some(after),
        checkpoint,
        "the log is followed from the index's checkpoint"
    );
    let mut from_log = SlaDriver::new(store.clone(), engine.clone());
    for stream in &streams {
        from_log.track(stream).await.expect("tracked");
    }
    let far = t0() + TimeDelta::days(60);
    let due = |d: &SlaDriver| {
        let mut due: Vec<_> = d
            .scheduler()
            .due(far)
            .map(|(k, at)| (k.clone(), at))
            .collect();
        due.sort();
        due
    };
    assert!(!due(&from_log).is_empty(), "some timers run");
    assert_eq!(due(&from_index), due(&from_log));
}
