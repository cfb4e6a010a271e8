//! A day of a service desk on the embedded SQLite store.
//!
//! `cargo run --example service_desk [PATH]` opens (or creates) an smsys store at PATH, or a
//! fresh temporary file, and runs a simulated working day: hundreds of incidents and service
//! requests from a seeded random generator, with holds, escalations, reopens, a major incident,
//! approvals and rejections. It then prints a summary, one incident's full event history, and
//! verifies the hash chain of the whole log.
//!
//! The desk runs incidents under a lifecycle of its own: the reference one plus an
//! `awaiting_vendor` status (phase `pending`, so SLA resolution timers pause there), which an
//! incident may only enter once its `vendor` is recorded. `vendor` and `site` are custom
//! attributes, checked against the attribute schema of the incident policy.

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
use smsys::core::records::{
    AttributeName, Channel, CommonEvent, Escalation, Incident, Level, LinkKind, NoteKind, PersonId,
    Phase, RecordEvent, RecordIndexStore, RecordKind, RecordOrder, RecordQuery,
};
use smsys::core::{
    Actor, Aggregate, CommandError, CommandHandler, CommandMeta, Context, EventData, EventId,
    EventStore, EventType, ExpectedVersion, Metadata, ProjectionRunner, SequentialIds,
    SnapshotPolicy, StreamId, Version,
};
use smsys::processes::attribute::{AttributeSchema, AttributeSpec};
use smsys::processes::index::RecordIndexer;
use smsys::processes::lifecycle::Requirement;
use smsys::processes::sla::{Period, SlaDriver, SlaEngine, SlaReport, load_history};
use smsys::processes::view::RecordView;
use smsys::processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, Lifecycle, LogRecord, RecordCommand,
    RecordRules, Refusal, RequestCommand, RequestManagement, RequestPolicy, incident,
};
use smsys::store::SqliteEventStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

const SEED: u64 = 20_261_102;
const INCIDENTS: u64 = 320;
const REQUESTS: u64 = 180;
const WORKERS: u64 = 16;
const MAJOR: u64 = 42;
/// Service, support group, and the vendor behind it.
const SERVICES: [(&str, &str, &str); 5] = [
    ("email", "messaging", "contoso"),
    ("vpn", "network", "globex"),
    ("erp", "business-apps", "initech"),
    ("wifi", "network", "globex"),
    ("printing", "workplace", "acme"),
];
const VENDORS: [&str; 4] = ["acme", "contoso", "globex", "initech"];
const SITES: [&str; 3] = ["berlin", "hamburg", "munich"];
const CATALOGUE: [&str; 4] = [
    "new-laptop",
    "vpn-access",
    "shared-mailbox",
    "software-install",
];
const APPROVERS: [&str; 3] = ["mgr.ada", "mgr.bo", "mgr.cy"];
/// Catalogue items whose requests need approval before fulfilment.
const NEEDS_APPROVAL: [&str; 2] = ["new-laptop", "vpn-access"];
/// The desk's own pending status.
const AWAITING_VENDOR: &str = "awaiting_vendor";
/// Custom attributes of the desk's incidents.
const VENDOR: &str = "vendor";
const SITE: &str = "site";

/// The desk's incident lifecycle: the reference one, plus `awaiting_vendor` (a pending status
/// like `on_hold`), entered by a hold that requires the `vendor` attribute and left by a resume
/// when the vendor delivers; resolving and cancelling work from there too.
fn desk_incident_lifecycle() -> Result<Lifecycle, Error> {
    let mut definition = incident::default_lifecycle().definition().clone();
    definition.name = "desk_incident".into();
    definition.version = 1;
    let mut awaiting = definition
        .statuses
        .iter()
        .find(|s| s.name == "on_hold")
        .cloned()
        .ok_or("the reference lifecycle has on_hold")?;
    awaiting.name = AWAITING_VENDOR.into();
    definition.statuses.push(awaiting);
    let like = |name: &str| {
        definition
            .transitions
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .ok_or(format!("the reference lifecycle has a {name} transition"))
    };
    let mut to_vendor = like("hold")?;
    to_vendor.name = "to_vendor".into();
    to_vendor.to = AWAITING_VENDOR.into();
    to_vendor
        .requires
        .push(Requirement::Attribute(VENDOR.parse()?));
    let mut vendor_back = like("resume")?;
    vendor_back.name = "vendor_back".into();
    vendor_back.from = vec![AWAITING_VENDOR.into()];
    for t in &mut definition.transitions {
        if t.name == "resolve" || t.name == "cancel" {
            t.from.push(AWAITING_VENDOR.into());
        }
    }
    definition.transitions.extend([to_vendor, vendor_back]);
    Ok(Lifecycle::new(
        definition,
        &IncidentManagement::vocabulary(),
    )?)
}

/// The desk's incident policy: the reference one, new incidents under the desk's lifecycle,
/// and two custom attributes: the site (given when logged) and the vendor.
fn incident_policy() -> Result<IncidentPolicy, Error> {
    let attributes = AttributeSchema::default()
        .with(
            SITE.parse()?,
            AttributeSpec::choice(SITES).required_at_log(),
        )
        .with(VENDOR.parse()?, AttributeSpec::choice(VENDORS));
    let reference = IncidentPolicy::default();
    Ok(IncidentPolicy {
        record: reference
            .record
            .logging_under(desk_incident_lifecycle()?)
            .with_attributes(attributes),
        ..reference
    })
}

/// A refused command, with the command's name.
struct Refused {
    command: &'static str,
    text: String,
}

/// One record's run: handler, its own seeded generator and its simulated clock.
struct Run<'a, A: Aggregate> {
    handler: &'a CommandHandler<A>,
    ids: &'a SequentialIds,
    stream: StreamId,
    rng: StdRng,
    now: DateTime<Utc>,
    commands: u64,
    refusals: Vec<Refused>,
    logged_at: DateTime<Utc>,
}

impl<'a, A, R> Run<'a, A>
where
    A: Aggregate<Rejection = Refusal<R>>,
    R: std::error::Error + Send + Sync + 'static,
{
    /// A record's run: its own generator (so concurrency does not change the day), starting at
    /// a random minute of the working day.
    fn new(
        handler: &'a CommandHandler<A>,
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

    /// Runs `command` as `actor`: a refusal is noted, and the run goes on.
    async fn exec(
        &mut self,
        actor: &str,
        command: impl Into<A::Command>,
    ) -> Result<A::State, Error> {
        let meta = CommandMeta::new(Actor::new(actor)?);
        let ctx = Context::new(self.now, self.ids);
        self.commands += 1;
        match self
            .handler
            .execute(&self.stream, &command.into(), &meta, &ctx)
            .await
        {
            Ok(done) => Ok(done.state),
            Err(CommandError::Rejected(refusal)) => {
                self.refusals.push(Refused {
                    command: refusal.command,
                    text: refusal.to_string(),
                });
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
    refusals: Vec<Refused>,
}

async fn incident(
    handler: &CommandHandler<IncidentManagement>,
    ids: &SequentialIds,
    run: u64,
    day: DateTime<Utc>,
    i: u64,
) -> Result<Outcome, Error> {
    let reference = format!("INC-{run}-{i:04}");
    let mut r = Run::new(handler, ids, &format!("incident-{reference}"), i << 1, day)?;
    let (service, group, vendor) = SERVICES[r.rng.random_range(0..SERVICES.len())];
    let major = i == MAJOR;
    let caller = format!("user{:03}", r.rng.random_range(0..200));
    let ci = format!("{service}-node-{}", r.rng.random_range(1..4));
    let channel = [
        Channel::Phone,
        Channel::Email,
        Channel::Portal,
        Channel::Monitoring,
    ][r.rng.random_range(0..4)];
    let site = SITES[r.rng.random_range(0..SITES.len())];
    let summary = if major {
        format!("{service} down for everyone")
    } else {
        format!("{service} misbehaves")
    };
    let log = LogRecord::new(
        reference.parse()?,
        caller.parse()?,
        channel,
        service.parse()?,
        summary,
    )
    .description("reported during the day")
    .affected_cis(vec![ci.parse()?])
    .attribute(SITE.parse()?, site);
    r.exec("agent.desk", IncidentCommand::Log(log)).await?;
    r.later(2, 15);
    r.exec(
        "agent.desk",
        RecordCommand::Classify {
            category: format!("{service}/fault"),
            subcategory: None,
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
            group: group.parse()?,
            person: Some(person.parse()?),
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
        let manager: PersonId = "mgr.ops".parse()?;
        r.exec("mgr.ops", IncidentCommand::AssignMajorManager { manager })
            .await?;
        r.exec(
            "mgr.ops",
            IncidentCommand::InformManagement {
                audience: "cio".into(),
                summary: format!("{service} is down for all users"),
            },
        )
        .await?;
    }
    if r.rng.random_bool(0.3) {
        r.later(10, 90);
        // The desk's lifecycle has two pending statuses: a hold names the one it means.
        r.exec(
            &person,
            RecordCommand::Hold {
                reason: "awaiting caller".into(),
                status: Some("on_hold".into()),
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
    if major || r.rng.random_bool(0.12) {
        r.later(10, 90);
        let to_vendor = RecordCommand::Hold {
            reason: format!("waiting for a fix from {vendor}"),
            status: Some(AWAITING_VENDOR.into()),
        };
        // Now and then the engineer forgets that the vendor must be recorded first.
        if r.rng.random_bool(0.1) {
            r.exec(&person, to_vendor.clone()).await?;
        }
        r.exec(
            &person,
            RecordCommand::SetAttribute {
                name: VENDOR.parse()?,
                value: vendor.into(),
            },
        )
        .await?;
        r.exec(&person, to_vendor).await?;
        if !major && r.rng.random_bool(0.3) {
            // Still waiting for the vendor when the day is over.
            return Ok(r.done());
        }
        // A vendor answers an outage within the hour, anything else within the day.
        if major {
            r.later(20, 60);
        } else {
            r.later(60, 480);
        }
        r.exec(
            &person,
            RecordCommand::AddNote {
                kind: NoteKind::WorkNote,
                text: format!("{vendor} delivered a fix"),
            },
        )
        .await?;
        r.exec(&person, RecordCommand::Resume).await?;
    }
    if major || r.rng.random_bool(0.15) {
        r.later(10, 60);
        let escalation = Escalation::Functional {
            to_group: format!("{group}-l2").parse()?,
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
                kind: LinkKind::PROBLEM,
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
            IncidentCommand::InformManagement {
                audience: "cio".into(),
                summary: "service restored".into(),
            },
        )
        .await?;
        // Closing before the review is refused: the example shows the refusal.
        r.exec("mgr.ops", RecordCommand::Close).await?;
        r.exec(
            "mgr.ops",
            IncidentCommand::RecordMajorReview {
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
    handler: &CommandHandler<RequestManagement>,
    ids: &SequentialIds,
    run: u64,
    day: DateTime<Utc>,
    j: u64,
) -> Result<Outcome, Error> {
    let reference = format!("REQ-{run}-{j:04}");
    let mut r = Run::new(
        handler,
        ids,
        &format!("request-{reference}"),
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
    let record = LogRecord::new(
        reference.parse()?,
        caller.parse()?,
        Channel::Portal,
        "workplace".parse()?,
        format!("please provide {item}"),
    );
    r.exec(
        &caller,
        RequestCommand::Log {
            record,
            catalogue_item: item.into(),
            fulfilment_instructions: Some(format!("KB-{item}")),
        },
    )
    .await?;
    if j == 0 || NEEDS_APPROVAL.contains(&item) {
        let quorum = r.rng.random_range(1..=2);
        let approvers = APPROVERS
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<PersonId>, _>>()?;
        r.exec(
            "agent.desk",
            RequestCommand::RequestApproval { approvers, quorum },
        )
        .await?;
        if j == 0 {
            // The requester acting as approver: refused (segregation of duties).
            r.exec(&caller, RequestCommand::Approve).await?;
        }
        r.later(30, 240);
        if j != 0 && r.rng.random_bool(0.15) {
            r.exec(
                APPROVERS[2],
                RequestCommand::Reject {
                    reason: "not in budget".into(),
                },
            )
            .await?;
            return Ok(r.done());
        }
        for approver in &APPROVERS[1..=quorum as usize] {
            r.exec(approver, RequestCommand::Approve).await?;
        }
        r.exec(
            "agent.desk",
            RecordCommand::Assign {
                group: "workplace".parse()?,
                person: Some("workplace.eng1".parse()?),
            },
        )
        .await?;
    } else {
        r.exec(
            "agent.desk",
            RecordCommand::Assign {
                group: "workplace".parse()?,
                person: Some("workplace.eng2".parse()?),
            },
        )
        .await?;
    }
    for t in 0..r.rng.random_range(1..4) {
        r.exec(
            "workplace.eng1",
            RequestCommand::AddTask {
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
            RequestCommand::FinishTask {
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

/// Counts per status, priority and custom attribute; reopen rate and mean time to resolve.
async fn summarise<A>(handler: &CommandHandler<A>, outcomes: &[Outcome]) -> Result<(), Error>
where
    A: Aggregate,
    A::State: RecordKind,
{
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut priorities: BTreeMap<String, u64> = BTreeMap::new();
    let mut attributes: BTreeMap<AttributeName, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut resolved, mut reopened, mut total_minutes) = (0u64, 0u64, 0i64);
    for outcome in outcomes {
        let state = handler.load(&outcome.stream).await?.state;
        let record = state.record();
        *statuses
            .entry(record.status().unwrap_or("none").to_owned())
            .or_default() += 1;
        *priorities
            .entry(record.priority().map_or("-".into(), |p| p.to_string()))
            .or_default() += 1;
        for (name, value) in record.attributes() {
            *attributes
                .entry(name.clone())
                .or_default()
                .entry(value.to_string())
                .or_default() += 1;
        }
        if let Some(resolution) = record
            .resolution()
            .filter(|_| record.phase() != Some(Phase::Cancelled))
        {
            resolved += 1;
            total_minutes += (resolution.at - outcome.logged_at).num_minutes();
            reopened += u64::from(record.reopen_count() > 0);
        }
    }
    let line = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  by status:   {}", line(&statuses));
    if A::State::RECORD_TYPE == Incident::RECORD_TYPE {
        println!("  by priority: {}", line(&priorities));
    }
    for (name, values) in &attributes {
        println!("  by {:<9} {}", format!("{name}:"), line(values));
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

    let every = SnapshotPolicy::Every(NonZeroU64::new(16).ok_or("non-zero")?);
    let incidents = Arc::new(
        CommandHandler::<IncidentManagement>::new(store.clone(), incident_policy()?)
            .with_snapshots(store.clone(), every)
            .with_cache(4096),
    );
    let request_policy = RequestPolicy {
        approval_required: NEEDS_APPROVAL.map(String::from).into(),
        ..RequestPolicy::default()
    };
    let requests = Arc::new(
        CommandHandler::<RequestManagement>::new(store.clone(), request_policy)
            .with_snapshots(store.clone(), every)
            .with_cache(4096),
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
    let outcomes = || incident_outcomes.iter().chain(&request_outcomes);
    let commands: u64 = outcomes().map(|o| o.commands).sum();

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

    // One example per refused command, with how often it was refused.
    let mut refused: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    for refusal in outcomes().flat_map(|o| &o.refusals) {
        refused
            .entry(refusal.command)
            .or_insert((0, &refusal.text))
            .0 += 1;
    }
    println!(
        "\nRefused commands ({}), one example per command:",
        refused.values().map(|(n, _)| n).sum::<u64>()
    );
    for (n, example) in refused.values() {
        println!("  {n:>3} x {example}");
    }

    // SLA timers: a driver indexes every record's timers and records each warning and breach
    // that fell due, a week after the day began (everything but the incidents still awaiting
    // their vendor has closed by then).
    let engine = Arc::new(SlaEngine::reference());
    let mut driver = SlaDriver::new(store.clone(), engine.clone());
    let streams: Vec<&StreamId> = outcomes().map(|o| &o.stream).collect();
    for stream in &streams {
        driver.track(stream).await?;
    }
    let week_later = day + TimeDelta::days(7);
    let fired = driver.fire_due(week_later).await?;
    let mut report = SlaReport::default();
    let mut warnings = 0;
    for stream in &streams {
        let (record_type, history, _) = load_history(&*store, &engine, stream).await?;
        warnings += history
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    CommonEvent::Record(RecordEvent::SlaThresholdReached { .. })
                )
            })
            .count();
        let service = history.iter().find_map(|(_, e)| match e {
            CommonEvent::Logged(logged) => Some(logged.service.clone()),
            CommonEvent::Record(_) => None,
        });
        let timers = engine.timers(&record_type, &history);
        engine.report_into(
            &mut report,
            stream,
            service.as_ref().map_or("-", |s| s.as_str()),
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

    // The read side: the record index follows the log into tables of the same SQLite file
    // (rows and checkpoint in one transaction), so listing open incidents reads no events.
    let index: Arc<dyn RecordIndexStore> = Arc::new(store.record_index("record_index.v1".parse()?));
    let indexer = RecordIndexer::new(store.clone(), index.clone(), engine.clone());
    let indexing = Instant::now();
    ProjectionRunner::new(store.clone())
        .with_batch_size(2_000)
        .catch_up(&indexer)
        .await?;
    let open_incidents = RecordQuery {
        record_types: vec![Incident::RECORD_TYPE],
        order: RecordOrder::Priority,
        limit: 5,
        ..RecordQuery::open()
    };
    let page = index.query(&open_incidents).await?;
    println!(
        "
Open incidents from the record index ({} of {}, index caught up in {:.0} ms):",
        page.rows.len(),
        index.count(&open_incidents).await?,
        indexing.elapsed().as_secs_f64() * 1000.0
    );
    for row in &page.rows {
        println!(
            "  {:<12} {:<16} {:<3} {:<14} {}",
            row.reference.as_str(),
            row.status,
            row.priority.map_or("-".into(), |p| p.to_string()),
            row.group.as_ref().map_or("-", |g| g.as_str()),
            row.summary
        );
    }

    let major: StreamId = format!("incident-INC-{run}-{MAJOR:04}").parse()?;
    let state = incidents.load(&major).await?.state;
    let record = state.record();
    let details = state.major().ok_or("the major incident is major")?;
    println!(
        "\nMajor incident {} ({}, lifecycle {}): manager {}, management informed {} times, review recorded: {}",
        record.reference().map_or("-", |r| r.as_str()),
        record.status().unwrap_or("none"),
        record.lifecycle().map_or("-".into(), |l| l.to_string()),
        details.manager.as_ref().map_or("-", |m| m.as_str()),
        details.management_informed,
        details.reviewed
    );
    let view = RecordView::<Incident>::load(&*store, &engine, &major, week_later).await?;
    for t in &view.timers {
        println!(
            "  SLA {} cycle {}: {}h{:02}m of {}h{:02}m business time, {} %, {}",
            t.timer,
            t.cycle,
            t.elapsed / 3600,
            t.elapsed % 3600 / 60,
            t.target.unwrap_or(0) / 3600,
            t.target.unwrap_or(0) % 3600 / 60,
            t.percent_bp.map_or("-".into(), |bp| (bp / 100).to_string()),
            if t.breached { "breached" } else { "met" }
        );
    }
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
