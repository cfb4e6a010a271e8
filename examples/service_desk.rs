//! A day of a service desk on the embedded SQLite store.
//!
//! `cargo run --example service_desk [PATH]` opens (or creates) an smsys store at PATH, or a
//! fresh temporary file, and runs a simulated working day: hundreds of incidents and service
//! requests from a seeded random generator, with holds, escalations, reopens, a major incident,
//! approvals and rejections. It then prints a summary, one incident's full event history, and
//! verifies the hash chain of the whole log.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example talks to its user on stdout and stderr"
)]

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smsys::core::{
    Actor, Channel, CommandError, CommandHandler, CommandMeta, Context, Escalation, EventData,
    EventId, EventStore, EventType, ExpectedVersion, Level, LinkKind, Metadata, NoteKind, Phase,
    SequentialIds, SnapshotPolicy, StreamId, Version,
};
use smsys::processes::sla::{Period, SlaDriver, SlaEngine, SlaReport, load_history};
use smsys::processes::{DeskPolicy, Incident, Record, RecordCommand, RecordKind, ServiceRequest};
use smsys::store::SqliteEventStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

const SEED: u64 = 20_261_102;
const INCIDENTS: u64 = 320;
const REQUESTS: u64 = 180;
const WORKERS: u64 = 16;
const MAJOR: u64 = 42;
const SERVICES: [(&str, &str); 5] = [
    ("email", "messaging"),
    ("vpn", "network"),
    ("erp", "business-apps"),
    ("wifi", "network"),
    ("printing", "workplace"),
];
const CATALOGUE: [&str; 4] = [
    "new-laptop",
    "vpn-access",
    "shared-mailbox",
    "software-install",
];
const APPROVERS: [&str; 3] = ["mgr.ada", "mgr.bo", "mgr.cy"];
/// Catalogue items whose requests need approval before fulfilment.
const NEEDS_APPROVAL: [&str; 2] = ["new-laptop", "vpn-access"];

/// One record's run: handlers, its own seeded generator and its simulated clock.
struct Run<'a, K: RecordKind> {
    handler: &'a CommandHandler<Record<K>>,
    ids: &'a SequentialIds,
    stream: StreamId,
    rng: StdRng,
    now: DateTime<Utc>,
    commands: u64,
    refusals: Vec<String>,
    logged_at: DateTime<Utc>,
}

impl<'a, K: RecordKind> Run<'a, K> {
    /// A record's run: its own generator (so concurrency does not change the day), starting at
    /// a random minute of the working day.
    fn new(
        handler: &'a CommandHandler<Record<K>>,
        ids: &'a SequentialIds,
        stream: &str,
        seed: u64,
        day: DateTime<Utc>,
    ) -> Result<Self, Error> {
        let mut run = Self {
            handler,
            ids,
            stream: stream.parse()?,
            rng: StdRng::seed_from_u64(SEED ^ seed),
            now: day + TimeDelta::hours(8),
            commands: 0,
            refusals: Vec::new(),
            logged_at: day,
        };
        run.later(0, 600);
        run.logged_at = run.now;
        Ok(run)
    }

    fn done(self) -> Outcome {
        Outcome {
            stream: self.stream,
            logged_at: self.logged_at,
            commands: self.commands,
            refusals: self.refusals,
        }
    }

    fn later(&mut self, min_minutes: i64, max_minutes: i64) {
        self.now += TimeDelta::minutes(self.rng.random_range(min_minutes..=max_minutes));
    }

    async fn exec(&mut self, actor: &str, command: RecordCommand) -> Result<Record<K>, Error> {
        let meta = CommandMeta::new(Actor::new(actor)?);
        let ctx = Context::new(self.now, self.ids);
        self.commands += 1;
        match self
            .handler
            .execute(&self.stream, &command, &meta, &ctx)
            .await
        {
            Ok(done) => Ok(done.state),
            Err(CommandError::Rejected(refusal)) => {
                self.refusals.push(refusal.to_string());
                Ok(self.handler.load(&self.stream).await?.state)
            }
            Err(other) => Err(other.into()),
        }
    }
}

struct Outcome {
    stream: StreamId,
    logged_at: DateTime<Utc>,
    commands: u64,
    refusals: Vec<String>,
}

async fn incident(
    handler: &CommandHandler<Incident>,
    ids: &SequentialIds,
    run: u64,
    day: DateTime<Utc>,
    i: u64,
) -> Result<Outcome, Error> {
    let mut r = Run::new(
        handler,
        ids,
        &format!("incident-INC-{run}-{i:04}"),
        i << 1,
        day,
    )?;
    let (service, group) = SERVICES[r.rng.random_range(0..SERVICES.len())];
    let major = i == MAJOR;
    let caller = format!("user{:03}", r.rng.random_range(0..200));
    let ci = format!("{service}-node-{}", r.rng.random_range(1..4));
    let channel = [
        Channel::Phone,
        Channel::Email,
        Channel::Portal,
        Channel::Monitoring,
    ][r.rng.random_range(0..4)];
    r.exec(
        "agent.desk",
        RecordCommand::Log {
            reference: format!("INC-{run}-{i:04}"),
            caller: caller.clone(),
            channel,
            service: service.into(),
            affected_cis: vec![ci],
            summary: if major {
                format!("{service} down for everyone")
            } else {
                format!("{service} misbehaves")
            },
            description: "reported during the day".into(),
            catalogue_item: None,
            fulfilment_instructions: None,
        },
    )
    .await?;
    r.later(2, 15);
    r.exec(
        "agent.desk",
        RecordCommand::Classify {
            category: format!("{service}/fault"),
        },
    )
    .await?;
    let level = |rng: &mut StdRng| Level::ALL[rng.random_range(0..3)];
    // Only the major incident is P1: other impacts are medium or low.
    let (impact, urgency) = if major {
        (Level::High, Level::High)
    } else {
        (level(&mut r.rng).max(Level::Medium), level(&mut r.rng))
    };
    r.exec("agent.desk", RecordCommand::Prioritise { impact, urgency })
        .await?;
    let person = format!("{group}.eng{}", r.rng.random_range(1..6));
    r.exec(
        "agent.desk",
        RecordCommand::Assign {
            group: group.into(),
            person: Some(person.clone()),
        },
    )
    .await?;
    if !major && r.rng.random_bool(0.05) {
        r.later(5, 60);
        r.exec(
            &person,
            RecordCommand::Cancel {
                reason: format!("duplicate of INC-{run}-{:04}", i.saturating_sub(1)),
            },
        )
        .await?;
        return Ok(r.done());
    }
    if major {
        r.exec(
            "mgr.ops",
            RecordCommand::AssignMajorManager {
                manager: "mgr.ops".into(),
            },
        )
        .await?;
        r.exec(
            "mgr.ops",
            RecordCommand::InformManagement {
                audience: "cio".into(),
                summary: format!("{service} is down for all users"),
            },
        )
        .await?;
    }
    if r.rng.random_bool(0.3) {
        r.later(10, 90);
        r.exec(
            &person,
            RecordCommand::Hold {
                reason: "awaiting caller".into(),
                status: None,
            },
        )
        .await?;
        r.later(30, 240);
        r.exec(
            &caller,
            RecordCommand::AddNote {
                kind: NoteKind::CallerUpdate,
                text: "here are the details".into(),
            },
        )
        .await?;
    }
    if major || r.rng.random_bool(0.15) {
        r.later(10, 60);
        let escalation = Escalation::Functional {
            to_group: format!("{group}-l2"),
        };
        r.exec(
            &person,
            RecordCommand::Escalate {
                escalation,
                reason: "needs second line".into(),
            },
        )
        .await?;
    }
    for _ in 0..r.rng.random_range(1..4) {
        r.later(5, 60);
        r.exec(
            &person,
            RecordCommand::AddNote {
                kind: NoteKind::WorkNote,
                text: "investigating".into(),
            },
        )
        .await?;
    }
    if r.rng.random_bool(0.1) {
        r.exec(
            &person,
            RecordCommand::Link {
                kind: LinkKind::Problem,
                target: format!("PRB-{service}"),
            },
        )
        .await?;
    }
    r.later(20, 480);
    let resolve = RecordCommand::Resolve {
        code: "fixed".into(),
        notes: "root cause removed".into(),
    };
    r.exec(&person, resolve.clone()).await?;
    if r.rng.random_bool(0.1) {
        r.later(60, 1440);
        r.exec(
            &caller,
            RecordCommand::Reopen {
                reason: "it happened again".into(),
            },
        )
        .await?;
        r.later(30, 240);
        r.exec(&person, resolve).await?;
    }
    if major {
        r.later(60, 180);
        r.exec(
            "mgr.ops",
            RecordCommand::InformManagement {
                audience: "cio".into(),
                summary: "service restored".into(),
            },
        )
        .await?;
        // Closing before the review is refused: the example shows the refusal.
        r.exec("mgr.ops", RecordCommand::Close).await?;
        r.exec(
            "mgr.ops",
            RecordCommand::RecordMajorReview {
                findings: "single node without failover; problem raised".into(),
            },
        )
        .await?;
    }
    if r.rng.random_bool(0.7) {
        r.later(60, 2880);
        r.exec(&caller, RecordCommand::Close).await?;
    } else {
        r.now += TimeDelta::days(3) + TimeDelta::minutes(1);
        r.exec("smsys.engine", RecordCommand::AutoClose).await?;
    }
    Ok(r.done())
}

async fn request(
    handler: &CommandHandler<ServiceRequest>,
    ids: &SequentialIds,
    run: u64,
    day: DateTime<Utc>,
    j: u64,
) -> Result<Outcome, Error> {
    let mut r = Run::new(
        handler,
        ids,
        &format!("request-REQ-{run}-{j:04}"),
        j << 1 | 1,
        day,
    )?;
    // The first request comes from an approver, who then tries to approve it.
    let caller = if j == 0 {
        APPROVERS[0].to_owned()
    } else {
        format!("user{:03}", r.rng.random_range(0..200))
    };
    let item = CATALOGUE[r.rng.random_range(0..CATALOGUE.len())];
    r.exec(
        &caller,
        RecordCommand::Log {
            reference: format!("REQ-{run}-{j:04}"),
            caller: caller.clone(),
            channel: Channel::Portal,
            service: "workplace".into(),
            affected_cis: vec![],
            summary: format!("please provide {item}"),
            description: String::new(),
            catalogue_item: Some(item.into()),
            fulfilment_instructions: Some(format!("KB-{item}")),
        },
    )
    .await?;
    if j == 0 || NEEDS_APPROVAL.contains(&item) {
        let quorum = r.rng.random_range(1..=2);
        r.exec(
            "agent.desk",
            RecordCommand::RequestApproval {
                approvers: APPROVERS.map(String::from).to_vec(),
                quorum,
            },
        )
        .await?;
        if j == 0 {
            r.exec(
                &caller,
                RecordCommand::Approve {
                    approver: caller.clone(),
                },
            )
            .await?;
        }
        r.later(30, 240);
        if j != 0 && r.rng.random_bool(0.15) {
            r.exec(
                APPROVERS[2],
                RecordCommand::Reject {
                    approver: APPROVERS[2].into(),
                    reason: "not in budget".into(),
                },
            )
            .await?;
            return Ok(r.done());
        }
        for approver in &APPROVERS[1..=quorum as usize] {
            r.exec(
                approver,
                RecordCommand::Approve {
                    approver: (*approver).into(),
                },
            )
            .await?;
        }
        r.exec(
            "agent.desk",
            RecordCommand::Assign {
                group: "workplace".into(),
                person: Some("workplace.eng1".into()),
            },
        )
        .await?;
    } else {
        r.exec(
            "agent.desk",
            RecordCommand::Assign {
                group: "workplace".into(),
                person: Some("workplace.eng2".into()),
            },
        )
        .await?;
    }
    for t in 0..r.rng.random_range(1..4) {
        r.exec(
            "workplace.eng1",
            RecordCommand::AddTask {
                task: format!("t{t}"),
                description: format!("step {t} of {item}"),
            },
        )
        .await?;
    }
    let tasks = r.handler.load(&r.stream).await?.state.tasks().len();
    for t in 0..tasks {
        r.later(10, 120);
        r.exec(
            "workplace.eng1",
            RecordCommand::FinishTask {
                task: format!("t{t}"),
            },
        )
        .await?;
    }
    r.exec(
        "workplace.eng1",
        RecordCommand::Resolve {
            code: "fulfilled".into(),
            notes: format!("{item} delivered"),
        },
    )
    .await?;
    r.later(60, 1440);
    r.exec(&caller, RecordCommand::Close).await?;
    Ok(r.done())
}

/// Counts per status, per priority; reopen rate and mean time to resolve.
async fn summarise<K: RecordKind>(
    handler: &CommandHandler<Record<K>>,
    outcomes: &[Outcome],
) -> Result<(), Error> {
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut priorities: BTreeMap<String, u64> = BTreeMap::new();
    let (mut resolved, mut reopened, mut total_minutes) = (0u64, 0u64, 0i64);
    for outcome in outcomes {
        let state = handler.load(&outcome.stream).await?.state;
        *statuses
            .entry(state.status().unwrap_or("none").to_owned())
            .or_default() += 1;
        *priorities
            .entry(state.priority().map_or("-".into(), |p| p.to_string()))
            .or_default() += 1;
        if let Some(at) = state
            .resolved_at()
            .filter(|_| state.phase() != Some(Phase::Cancelled))
        {
            resolved += 1;
            total_minutes += (at - outcome.logged_at).num_minutes();
            reopened += u64::from(state.reopen_count() > 0);
        }
    }
    let line = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  by status:   {}", line(&statuses));
    if K::TYPE == smsys::core::RecordType::Incident {
        println!("  by priority: {}", line(&priorities));
    }
    if resolved > 0 {
        let mean = total_minutes / resolved as i64;
        println!(
            "  resolved {resolved}; reopen rate {:.1} %; mean time to resolve {}h{:02}m",
            100.0 * reopened as f64 / resolved as f64,
            mean / 60,
            mean % 60
        );
    }
    Ok(())
}

async fn print_history(store: &SqliteEventStore, stream: &StreamId) -> Result<(), Error> {
    println!("\nFull history of {stream}:");
    let mut events = store.read_stream(stream, Version::FIRST);
    while let Some(event) = events.next().await {
        let event = event?;
        let m = event.data.metadata();
        println!(
            "  v{:<3} {}  {:<14} {:<32} {}",
            event.version,
            m.occurred_at().format("%a %H:%M"),
            m.actor(),
            event.event_type(),
            event.data.payload()
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("service_desk: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let started = Instant::now();
    let temporary;
    let path = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().join("service-desk.sqlite")
        }
    };
    let store = Arc::new(SqliteEventStore::open(&path).await?);
    println!("smsys service desk on {}", path.display());

    // Each run of the example on the same file is a new working day.
    let runs: StreamId = "desk-runs".parse()?;
    let day0 = Utc
        .with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
        .single()
        .ok_or("valid date")?;
    let marker_id = EventId::from_uuid(uuid::Uuid::now_v7())?;
    let marker = EventData::new(
        EventType::new("desk.run_started")?,
        1,
        serde_json::json!({}),
        Metadata::new(marker_id, Actor::new("example")?, day0),
    )?;
    let run = store
        .append(&runs, ExpectedVersion::Any, vec![marker])
        .await?
        .version
        .get();
    let day = day0 + TimeDelta::days(run as i64 - 1);
    let ids = Arc::new(SequentialIds::new(u64::try_from(day.timestamp_millis())?));

    let policy = DeskPolicy {
        approval_required: NEEDS_APPROVAL.map(String::from).into(),
        ..DeskPolicy::default()
    };
    let every = SnapshotPolicy::Every(NonZeroU64::new(16).ok_or("non-zero")?);
    let incidents = Arc::new(
        CommandHandler::<Incident>::new(store.clone(), policy.clone())
            .with_snapshots(store.clone(), every),
    );
    let requests = Arc::new(
        CommandHandler::<ServiceRequest>::new(store.clone(), policy)
            .with_snapshots(store.clone(), every),
    );

    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (incidents, requests, ids) = (incidents.clone(), requests.clone(), ids.clone());
        workers.push(tokio::spawn(async move {
            let mut done = (Vec::new(), Vec::new());
            for i in (w..INCIDENTS).step_by(WORKERS as usize) {
                done.0.push(incident(&incidents, &ids, run, day, i).await?);
            }
            for j in (w..REQUESTS).step_by(WORKERS as usize) {
                done.1.push(request(&requests, &ids, run, day, j).await?);
            }
            Ok::<_, Error>(done)
        }));
    }
    let (mut incident_outcomes, mut request_outcomes) = (Vec::new(), Vec::new());
    for worker in workers {
        let (i, r) = worker.await??;
        incident_outcomes.extend(i);
        request_outcomes.extend(r);
    }
    let worked = started.elapsed();
    let commands: u64 = incident_outcomes
        .iter()
        .chain(&request_outcomes)
        .map(|o| o.commands)
        .sum();
    let refusals: Vec<&String> = incident_outcomes
        .iter()
        .chain(&request_outcomes)
        .flat_map(|o| &o.refusals)
        .collect();

    println!(
        "\nDay {run} ({}): {INCIDENTS} incidents and {REQUESTS} service requests, {commands} commands in {:.2} s ({:.0} commands/s)",
        day.format("%a %Y-%m-%d"),
        worked.as_secs_f64(),
        commands as f64 / worked.as_secs_f64()
    );
    println!("\nIncidents");
    summarise(&incidents, &incident_outcomes).await?;
    println!("\nService requests");
    summarise(&requests, &request_outcomes).await?;
    println!("\nRefused commands ({}), for example:", refusals.len());
    for refusal in refusals.iter().take(4) {
        println!("  {refusal}");
    }

    // SLA timers: a driver indexes every record's timers and records each warning and breach
    // that fell due, a week after the day began (everything has closed by then).
    let engine = Arc::new(SlaEngine::reference());
    let mut driver = SlaDriver::new(store.clone(), engine.clone());
    let streams: Vec<&StreamId> = incident_outcomes
        .iter()
        .chain(&request_outcomes)
        .map(|o| &o.stream)
        .collect();
    for stream in &streams {
        driver.track(stream).await?;
    }
    let week_later = day + TimeDelta::days(7);
    let fired = driver.fire_due(week_later).await?;
    let mut report = SlaReport::default();
    let mut warnings = 0;
    for stream in &streams {
        let (record_type, history, _) = load_history(&*store, stream).await?;
        warnings += history
            .iter()
            .filter(|(_, e)| matches!(e, smsys::core::RecordEvent::SlaThresholdReached { .. }))
            .count();
        let service = history.iter().find_map(|(_, e)| {
            if let smsys::core::RecordEvent::Logged { service, .. } = e {
                Some(service.clone())
            } else {
                None
            }
        });
        let timers = engine.timers(record_type, &history);
        engine.report_into(
            &mut report,
            stream,
            service.as_deref().unwrap_or("-"),
            &timers,
            week_later,
            Period::Day,
        );
    }
    println!(
        "\nSLA timers (office hours, Europe/Berlin): {warnings} warnings and {} breach{} recorded",
        report.breaches.len(),
        if report.breaches.len() == 1 { "" } else { "es" }
    );
    println!(
        "  {} events appended by the SLA driver for {} records",
        fired.appended, fired.records
    );
    for (timer, row) in report.by_timer() {
        println!(
            "  {timer:<11} met {:>3}, breached {:>3}, cancelled {:>2}: attainment {:.1} % ({:.1} % had paused time counted)",
            row.met,
            row.breached,
            row.cancelled,
            row.percent().unwrap_or(100.0),
            row.percent_counting_pauses().unwrap_or(100.0)
        );
    }
    if let Some(worst) = report.breaches.iter().max_by_key(|b| b.overrun_seconds) {
        println!(
            "  largest overrun: {} {} cycle {}, {}h{:02}m of business time late",
            worst.stream,
            worst.timer,
            worst.cycle,
            worst.overrun_seconds / 3600,
            worst.overrun_seconds % 3600 / 60
        );
    }

    let major: StreamId = format!("incident-INC-{run}-{MAJOR:04}").parse()?;
    let state = incidents.load(&major).await?.state;
    println!(
        "\nMajor incident {}: manager {}, management informed {} times, review recorded: {}",
        state,
        state.major_manager().unwrap_or("-"),
        state.management_informed(),
        state.major_reviewed()
    );
    print_history(&store, &major).await?;

    let report = store.verify().await?;
    match &report.first_break {
        None => println!(
            "\nHash chain intact: {} events in {} streams verified",
            report.events_checked, report.streams
        ),
        Some(broken) => return Err(format!("hash chain broken: {broken}").into()),
    }
    println!("Finished in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}
