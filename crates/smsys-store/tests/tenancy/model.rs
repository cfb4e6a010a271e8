//! The tenancy model test, shared by the memory, SQLite and PostgreSQL runs: random commands
//! and raw appends for four tenants with colliding stream ids, then every public read path of
//! each tenant's handle against a model of what that tenant alone wrote.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use proptest::prelude::*;
use smsys_core::records::{Channel, Incident, Level, RecordIndexStore, RecordKind, RecordQuery};
use smsys_core::seal::{Sealer, verify_sealed};
use smsys_core::{
    Actor, AppendError, Category, CheckpointStore, CommandHandler, CommandMeta, Context, EventData,
    EventId, EventStore, EventType, ExpectedVersion, LogFilter, Metadata, Position,
    ProjectionRunner, RecordedEvent, SequentialIds, StreamId, TenantId, TenantStore, Tenants,
    Version,
};
use smsys_processes::index::RecordIndexer;
use smsys_processes::sla::SlaEngine;
use smsys_processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, RecordCommand,
};

/// Tenant ids: two differ only by case (one file each on a case-insensitive file system too).
pub(crate) const TENANTS: [&str; 4] = ["acme", "Acme", "globex", "init.ech"];

/// One step of a run.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// A command on incident `INC-<incident>` of a tenant (logged first when new).
    Command {
        tenant: usize,
        incident: u8,
        kind: u8,
    },
    /// A raw append to `note-<stream>` of a tenant.
    Raw { tenant: usize, stream: u8 },
    /// A raw append whose metadata names another tenant: refused.
    Foreign { tenant: usize, other: usize },
    /// An append expecting version 1 of `note-<stream>`, which may exist only in other tenants.
    Exact { tenant: usize, stream: u8 },
}

pub(crate) fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    let tenant = 0..TENANTS.len();
    let op = prop_oneof![
        4 => (tenant.clone(), 0..3u8, any::<u8>())
            .prop_map(|(tenant, incident, kind)| Op::Command { tenant, incident, kind }),
        2 => (tenant.clone(), 0..2u8).prop_map(|(tenant, stream)| Op::Raw { tenant, stream }),
        1 => (tenant.clone(), 1..TENANTS.len())
            .prop_map(|(tenant, step)| Op::Foreign { tenant, other: (tenant + step) % TENANTS.len() }),
        1 => (tenant, 0..2u8).prop_map(|(tenant, stream)| Op::Exact { tenant, stream }),
    ];
    prop::collection::vec(op, 1..max)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

fn command(kind: u8) -> RecordCommand {
    match kind % 5 {
        0 => RecordCommand::Assign {
            group: "desk".parse().expect("valid"),
            person: None,
        },
        1 => RecordCommand::Prioritise {
            impact: Level::High,
            urgency: Level::Low,
        },
        2 => RecordCommand::Resolve {
            code: "fixed".into(),
            notes: "done".into(),
        },
        3 => RecordCommand::Close,
        _ => RecordCommand::Reopen {
            reason: "again".into(),
        },
    }
}

fn raw(id: EventId, tenant: Option<&TenantId>) -> EventData {
    let mut meta = Metadata::new(id, Actor::new("agent.raw").expect("valid"), t0());
    if let Some(tenant) = tenant {
        meta = meta.with_tenant(tenant.clone());
    }
    EventData::new(
        EventType::new("note.added").expect("valid"),
        1,
        serde_json::json!({"n": id.to_string()}),
        meta,
    )
    .expect("valid")
}

/// What a tenant wrote: its events in log order, and every message its handle gave.
#[derive(Default)]
struct Written {
    events: Vec<(StreamId, Version, Option<EventId>)>,
    incidents: BTreeMap<StreamId, ()>,
    messages: Vec<String>,
}

/// How positions run in the backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "PostgreSQL positions are used by the postgres binary only"
)]
pub(crate) enum Positions {
    /// 1, 2, 3, ... per tenant (memory, SQLite).
    Dense,
    /// Strictly increasing (PostgreSQL: transaction id and sequence).
    Increasing,
}

/// Runs `ops` on `tenants` and checks every read path of every tenant's handle.
pub(crate) async fn run<T>(
    tenants: &T,
    ops: &[Op],
    positions: Positions,
    index: impl Fn(&TenantStore<T::Store>) -> Arc<dyn RecordIndexStore>,
) -> Result<(), TestCaseError>
where
    T: Tenants,
    T::Store: CheckpointStore,
{
    let ids: Vec<TenantId> = TENANTS
        .iter()
        .map(|t| TenantId::new(*t).expect("valid"))
        .collect();
    let mut handles = Vec::new();
    for id in &ids {
        handles.push(
            tenants
                .tenant(id)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
    }
    let mut written: Vec<Written> = ids.iter().map(|_| Written::default()).collect();
    let event_ids = SequentialIds::new(1);
    let mut next_raw = 1u128 << 64;
    let meta = CommandMeta::new(Actor::new("agent.ana").expect("valid"));
    for op in ops {
        match *op {
            Op::Command {
                tenant,
                incident,
                kind,
            } => {
                let handle = &handles[tenant];
                let handler = CommandHandler::<IncidentManagement>::new(
                    Arc::new(handle.clone()),
                    IncidentPolicy::default(),
                );
                let reference = format!("INC-{incident}").parse().expect("valid");
                let stream = Incident::stream(&reference).expect("valid");
                let ctx = Context::new(t0(), &event_ids);
                let logged = written[tenant].incidents.contains_key(&stream);
                let cmd: IncidentCommand = if logged {
                    command(kind).into()
                } else {
                    IncidentCommand::Log(LogRecord::new(
                        reference,
                        "caller".parse().expect("valid"),
                        Channel::Phone,
                        "email".parse().expect("valid"),
                        format!("{} mail down", ids[tenant]),
                    ))
                };
                match handler.execute(&stream, &cmd, &meta, &ctx).await {
                    Ok(done) => {
                        written[tenant].incidents.insert(stream.clone(), ());
                        if let Some(append) = done.append {
                            let first = append.first_version().get();
                            for (n, _) in append.positions.iter().enumerate() {
                                let version = Version::new(first + n as u64);
                                written[tenant].events.push((stream.clone(), version, None));
                            }
                        }
                    }
                    Err(error) => written[tenant].messages.push(error.to_string()),
                }
            }
            Op::Raw { tenant, stream } => {
                next_raw += 1;
                let id = EventId::from_uuid(uuid::Uuid::from_u128(next_raw)).expect("non-nil");
                let stream: StreamId = format!("note-{stream}").parse().expect("valid");
                let done = handles[tenant]
                    .append(&stream, ExpectedVersion::Any, vec![raw(id, None)])
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                written[tenant]
                    .events
                    .push((stream, done.version, Some(id)));
            }
            Op::Foreign { tenant, other } => {
                next_raw += 1;
                let id = EventId::from_uuid(uuid::Uuid::from_u128(next_raw)).expect("non-nil");
                let stream: StreamId = "note-0".parse().expect("valid");
                let refused = handles[tenant]
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        vec![raw(id, Some(&ids[other]))],
                    )
                    .await;
                prop_assert!(
                    matches!(&refused, Err(AppendError::ForeignTenant { .. })),
                    "{refused:?}"
                );
                if let Err(error) = refused {
                    let message = error.to_string();
                    prop_assert!(!message.contains(ids[other].as_str()), "{message}");
                }
            }
            Op::Exact { tenant, stream } => {
                next_raw += 1;
                let id = EventId::from_uuid(uuid::Uuid::from_u128(next_raw)).expect("non-nil");
                let stream: StreamId = format!("note-{stream}").parse().expect("valid");
                let mine = written[tenant]
                    .events
                    .iter()
                    .filter(|(s, ..)| *s == stream)
                    .count();
                let refused = handles[tenant]
                    .append(
                        &stream,
                        ExpectedVersion::Exact(Version::new(1)),
                        vec![raw(id, None)],
                    )
                    .await;
                match refused {
                    Ok(done) => {
                        prop_assert_eq!(mine, 1, "only a stream at version 1 here accepts");
                        written[tenant]
                            .events
                            .push((stream, done.version, Some(id)));
                    }
                    Err(AppendError::Conflict { actual, .. }) => {
                        prop_assert_eq!(
                            actual.map(Version::get),
                            (mine > 0).then_some(mine as u64)
                        );
                    }
                    Err(other) => return Err(TestCaseError::fail(other.to_string())),
                }
            }
        }
    }
    // What each tenant wrote, with the event ids the store gave back.
    let mut logs = Vec::new();
    for (n, handle) in handles.iter().enumerate() {
        let log: Vec<RecordedEvent> =
            collect(handle.read_all(Position::START, LogFilter::all())).await?;
        let got: Vec<(StreamId, Version)> =
            log.iter().map(|e| (e.stream.clone(), e.version)).collect();
        let want: Vec<(StreamId, Version)> = written[n]
            .events
            .iter()
            .map(|(s, v, _)| (s.clone(), *v))
            .collect();
        prop_assert_eq!(got, want, "the log of {}", ids[n]);
        for (event, (_, _, id)) in log.iter().zip(&written[n].events) {
            prop_assert_eq!(event.data.metadata().tenant(), Some(&ids[n]));
            if let Some(id) = id {
                prop_assert_eq!(event.event_id(), *id);
            }
        }
        match positions {
            Positions::Dense => {
                let dense: Vec<Position> = (1..=log.len() as u64)
                    .map(Position::from_sequence)
                    .collect();
                let got: Vec<Position> = log.iter().map(|e| e.position).collect();
                prop_assert_eq!(got, dense, "positions of {} are dense", ids[n]);
            }
            Positions::Increasing => {
                prop_assert!(log.windows(2).all(|w| w[0].position < w[1].position));
            }
        }
        logs.push(log);
    }
    let incident = LogFilter::all().category(Category::new("incident").expect("valid"));
    let streams: Vec<StreamId> = logs
        .iter()
        .flatten()
        .map(|e| e.stream.clone())
        .chain(
            [
                "incident-INC-0",
                "incident-INC-1",
                "incident-INC-2",
                "note-0",
                "note-1",
            ]
            .map(|s| s.parse().expect("valid")),
        )
        .collect();
    for (n, handle) in handles.iter().enumerate() {
        let log = &logs[n];
        let filtered = collect(handle.read_all(Position::START, incident.clone())).await?;
        let want: Vec<_> = log
            .iter()
            .filter(|e| incident.matches(e))
            .cloned()
            .collect();
        prop_assert_eq!(&filtered, &want);
        if let Some(first) = log.first() {
            let after = collect(handle.read_all(first.position, LogFilter::all())).await?;
            prop_assert_eq!(&after[..], &log[1..]);
        }
        let live = handle
            .subscribe(Position::START, LogFilter::all())
            .take(log.len());
        let caught_up = tokio::time::timeout(Duration::from_secs(10), collect(live.boxed()))
            .await
            .map_err(|_| TestCaseError::fail("the subscription did not catch up"))??;
        prop_assert_eq!(&caught_up, log);
        for stream in &streams {
            let own: Vec<_> = log
                .iter()
                .filter(|e| e.stream == *stream)
                .cloned()
                .collect();
            prop_assert_eq!(
                &collect(handle.read_stream(stream, Version::FIRST)).await?,
                &own
            );
            let mut back = collect(handle.read_stream_backwards(stream, None)).await?;
            back.reverse();
            prop_assert_eq!(&back, &own);
            let version = handle.stream_version(stream).await.map_err(fail)?;
            prop_assert_eq!(version, own.last().map(|e| e.version));
        }
        for (m, other) in logs.iter().enumerate() {
            for event in other {
                let found = handle.find_event(event.event_id()).await.map_err(fail)?;
                prop_assert_eq!(
                    found.is_some(),
                    m == n,
                    "{} finds an event of {}",
                    ids[n],
                    ids[m]
                );
            }
        }
        for message in &written[n].messages {
            for (m, id) in ids.iter().enumerate() {
                prop_assert!(m == n || !message.contains(id.as_str()), "{message}");
            }
        }
    }
    // Checkpoints: each tenant's own.
    for (n, handle) in handles.iter().enumerate() {
        handle
            .save_checkpoint("reader", Position::from_sequence(n as u64 + 1))
            .await
            .map_err(fail)?;
        if n == 0 {
            handle
                .save_checkpoint("only-acme", Position::from_sequence(7))
                .await
                .map_err(fail)?;
        }
    }
    for (n, handle) in handles.iter().enumerate() {
        let kept = handle.load_checkpoint("reader").await.map_err(fail)?;
        prop_assert_eq!(kept, Some(Position::from_sequence(n as u64 + 1)));
        let only = handle.load_checkpoint("only-acme").await.map_err(fail)?;
        prop_assert_eq!(only.is_some(), n == 0);
    }
    // The record index: each tenant's incidents, counted and listed.
    let engine = Arc::new(SlaEngine::reference());
    for (n, handle) in handles.iter().enumerate() {
        let rows = index(handle);
        let store: Arc<dyn EventStore> = Arc::new(handle.clone());
        let indexer =
            RecordIndexer::new(Arc::clone(&store), Arc::clone(&rows), Arc::clone(&engine));
        ProjectionRunner::new(store)
            .catch_up(&indexer)
            .await
            .map_err(fail)?;
        let want: Vec<&StreamId> = written[n].incidents.keys().collect();
        let count = rows.count(&RecordQuery::new()).await.map_err(fail)?;
        prop_assert_eq!(count, want.len() as u64, "records of {}", ids[n]);
        let page = rows
            .query(&RecordQuery {
                limit: 100,
                ..RecordQuery::new()
            })
            .await
            .map_err(fail)?;
        let mut got: Vec<&StreamId> = page.rows.iter().map(|r| &r.stream).collect();
        got.sort();
        prop_assert_eq!(got, want);
        for row in &page.rows {
            prop_assert!(row.summary.starts_with(ids[n].as_str()), "{}", row.summary);
        }
    }
    // Seals: each tenant's log sealed and verified alone.
    for (n, handle) in handles.iter().enumerate() {
        let mut sealer = Sealer::new(Arc::new(handle.clone()));
        let sealed = sealer.seal().await.map_err(fail)?;
        let events = logs[n].len() as u64;
        prop_assert_eq!(sealed.map(|s| s.seal.events), Some(events));
        let report = verify_sealed(handle).await.map_err(fail)?;
        prop_assert!(report.is_intact(), "{report:?}");
    }
    prop_assert_eq!(tenants.tenants().await.map_err(fail)?, {
        let mut sorted = ids.clone();
        sorted.sort();
        sorted
    });
    Ok(())
}

fn fail(error: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

async fn collect(events: smsys_core::EventStream<'_>) -> Result<Vec<RecordedEvent>, TestCaseError> {
    events
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|e| e.map_err(fail))
        .collect()
}
