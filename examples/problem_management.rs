//! Problem management (ISO/IEC 20000-1 8.6.3) end to end on the embedded SQLite store.
//!
//! `cargo run --example problem_management` runs, on a fresh temporary store:
//! 1. a week of incidents, six of them on the mail relay `mx-01`;
//! 2. the incident trends propose problem candidates; a problem is raised from the relay's
//!    candidate and linked to its incidents (the links show on both records);
//! 3. a workaround is published on the problem and reaches the linked open incidents; a known
//!    error is published with it, and a new incident on the relay finds it;
//! 4. the root cause is found and the fix goes through change `CHG-0042`; resolving the problem
//!    resumes the incidents on hold awaiting it;
//! 5. thirty days later the effectiveness review finds no recurrence and the problem closes.
//!
//! The cross-record policies run as reactors with their checkpoints in the store; the example
//! ends by verifying the log's hash chain.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example talks to its user on stdout and stderr"
)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys::core::records::{
    Channel, Incident, KnownError, Level, LinkKind, Problem, RecordKind, Reference,
};
use smsys::core::{
    Actor, Aggregate, CommandHandler, CommandMeta, Context, EventStore, Projection,
    ProjectionRunner, Reacting, Reactor, SequentialIds,
};
use smsys::processes::known_error::LogKnownError;
use smsys::processes::known_error::catalogue::{IncidentProfile, KnownErrorCatalogue};
use smsys::processes::problem::reactors::{
    FixFollowUp, LinkMirror, OnFix, RecordSide, WorkaroundNotices,
};
use smsys::processes::problem::{EffectivenessReviewer, ProblemBoard, ReviewOutcome};
use smsys::processes::trend::{IncidentTrends, TrendKey, TrendPolicy};
use smsys::processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, KnownErrorCommand, KnownErrorManagement,
    KnownErrorPolicy, LogRecord, ProblemCommand, ProblemManagement, ProblemPolicy, RecordCommand,
};
use smsys::store::SqliteEventStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The store, a handler per record type, the simulated clock.
struct Desk {
    store: Arc<SqliteEventStore>,
    incidents: CommandHandler<IncidentManagement>,
    problems: CommandHandler<ProblemManagement>,
    known_errors: CommandHandler<KnownErrorManagement>,
    ids: SequentialIds,
    now: DateTime<Utc>,
    agent: CommandMeta,
}

impl Desk {
    async fn run<A: Aggregate>(
        &self,
        handler: &CommandHandler<A>,
        stream: &smsys::core::StreamId,
        command: A::Command,
    ) -> Result<(), Error>
    where
        A::Rejection: Send + Sync,
    {
        let ctx = Context::new(self.now, &self.ids);
        handler
            .execute(stream, &command, &self.agent, &ctx)
            .await
            .map_err(|e| format!("{stream}: {e}"))?;
        Ok(())
    }

    async fn incident(&self, reference: &Reference, command: IncidentCommand) -> Result<(), Error> {
        self.run(&self.incidents, &Incident::stream(reference)?, command)
            .await
    }

    async fn problem(&self, reference: &Reference, command: ProblemCommand) -> Result<(), Error> {
        self.run(&self.problems, &Problem::stream(reference)?, command)
            .await
    }

    async fn known_error(
        &self,
        reference: &Reference,
        command: KnownErrorCommand,
    ) -> Result<(), Error> {
        self.run(&self.known_errors, &KnownError::stream(reference)?, command)
            .await
    }

    /// Catches one reactor up, its checkpoint kept in the store.
    async fn react(&self, reactor: impl Reactor) -> Result<(), Error> {
        let reacting = Reacting::new(reactor, self.store.clone());
        ProjectionRunner::new(self.store.clone())
            .catch_up(&reacting)
            .await?;
        Ok(())
    }

    /// Runs the cross-record policies until they have nothing left to do.
    async fn settle(&self) -> Result<(), Error> {
        let store: Arc<dyn EventStore> = self.store.clone();
        let policies = Actor::new("smsys.policies")?;
        for _ in 0..3 {
            let mirror = LinkMirror::new(store.clone(), Actor::new("smsys.link-mirror")?)
                .with_side(Arc::new(RecordSide::new(
                    CommandHandler::<IncidentManagement>::new(
                        store.clone(),
                        IncidentPolicy::default(),
                    ),
                    LinkKind::INCIDENT,
                )))
                .with_side(Arc::new(RecordSide::new(
                    CommandHandler::<ProblemManagement>::new(
                        store.clone(),
                        ProblemPolicy::default(),
                    ),
                    LinkKind::PROBLEM,
                )))
                .with_side(Arc::new(RecordSide::new(
                    CommandHandler::<KnownErrorManagement>::new(
                        store.clone(),
                        KnownErrorPolicy::default(),
                    ),
                    LinkKind::KNOWN_ERROR,
                )));
            self.react(mirror).await?;
            let incidents = || CommandHandler::new(store.clone(), IncidentPolicy::default());
            self.react(WorkaroundNotices::new(incidents(), policies.clone()))
                .await?;
            self.react(FixFollowUp::new(
                incidents(),
                policies.clone(),
                OnFix::Resume,
            ))
            .await?;
        }
        Ok(())
    }

    /// A read model built from the whole log.
    async fn caught_up<P: Projection>(&self, projection: P) -> Result<P, Error> {
        ProjectionRunner::new(self.store.clone())
            .catch_up(&projection)
            .await?;
        Ok(projection)
    }
}

fn id<T: std::str::FromStr>(text: &str) -> Result<T, Error>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(text.parse()?)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("problem_management: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("problems.sqlite");
    let store = Arc::new(SqliteEventStore::open(&path).await?);
    println!("smsys problem management on {}", path.display());
    let monday = Utc
        .with_ymd_and_hms(2026, 11, 2, 8, 0, 0)
        .single()
        .ok_or("valid date")?;
    let mut desk = Desk {
        incidents: CommandHandler::new(store.clone(), IncidentPolicy::default()),
        problems: CommandHandler::new(store.clone(), ProblemPolicy::default()),
        known_errors: CommandHandler::new(store.clone(), KnownErrorPolicy::default()),
        store,
        ids: SequentialIds::new(1),
        now: monday,
        agent: CommandMeta::new(Actor::new("agent.ana")?),
    };

    // 1. A week of incidents: every fourth on the mail relay, the others spread over nine
    // CIs of six services.
    let others = [
        ("web", "web-01"),
        ("vpn", "vpn-02"),
        ("print", "prn-07"),
        ("erp", "erp-db"),
        ("wifi", "ap-3f"),
        ("phones", "pbx-01"),
        ("web", "web-02"),
        ("vpn", "vpn-01"),
        ("print", "prn-02"),
    ];
    let mut on_relay = Vec::new();
    for n in 1..=24u32 {
        desk.now = monday + TimeDelta::minutes(i64::from(n) * 300);
        let reference: Reference = id(&format!("INC-{n:04}"))?;
        let (service, ci) = if n % 4 == 0 {
            on_relay.push(reference.clone());
            ("email", "mx-01")
        } else {
            others[(n as usize) % others.len()]
        };
        let log = LogRecord::new(
            reference.clone(),
            id(&format!("user-{}", n % 7))?,
            Channel::Phone,
            id(service)?,
            format!("{service} not working"),
        )
        .affected_cis(vec![id(ci)?]);
        desk.incident(&reference, IncidentCommand::Log(log)).await?;
        for command in [
            RecordCommand::Classify {
                category: service.into(),
                subcategory: None,
            },
            RecordCommand::Prioritise {
                impact: Level::Medium,
                urgency: Level::High,
            },
            RecordCommand::Assign {
                group: id("service-desk")?,
                person: None,
            },
        ] {
            desk.incident(&reference, command.into()).await?;
        }
    }
    // The relay's incidents wait for the problem.
    for reference in &on_relay[..4] {
        let hold = RecordCommand::Hold {
            reason: "awaiting problem".into(),
            status: None,
        };
        desk.incident(reference, hold.into()).await?;
    }
    println!("logged 24 incidents, {} on mx-01", on_relay.len());

    // 2. Trends propose candidates; a problem is raised from the relay's.
    let trends = desk
        .caught_up(IncidentTrends::new(TrendPolicy::default())?)
        .await?;
    let candidates = trends.candidates(desk.now);
    for candidate in &candidates {
        println!(
            "candidate {:<16} {} incidents",
            candidate.id(),
            candidate.incidents().len()
        );
    }
    let relay = candidates
        .iter()
        .find(|c| matches!(c.key(), TrendKey::Ci(ci) if ci.as_str() == "mx-01"))
        .ok_or("the relay's incidents form a candidate")?;
    let prb: Reference = id("PRB-0001")?;
    desk.now += TimeDelta::hours(1);
    let log = LogRecord::new(
        prb.clone(),
        id("pat.problem-manager")?,
        Channel::Monitoring,
        id("email")?,
        "mail relay drops messages",
    )
    .affected_cis(vec![id("mx-01")?]);
    desk.problem(&prb, ProblemCommand::Log(log)).await?;
    let assign = RecordCommand::Assign {
        group: id("problem-management")?,
        person: None,
    };
    desk.problem(&prb, assign.into()).await?;
    for link in relay.problem_links() {
        desk.problem(&prb, link.into()).await?;
    }
    desk.settle().await?;
    let linked = desk
        .incidents
        .load(&Incident::stream(&on_relay[0])?)
        .await?;
    println!(
        "{prb} raised from {}, linked to {} incidents; {} links back: {:?}",
        relay.id(),
        relay.incidents().len(),
        on_relay[0],
        linked.state.record().links()
    );

    // 3. A workaround reaches the linked incidents; a known error publishes it.
    desk.now += TimeDelta::hours(2);
    desk.problem(&prb, ProblemCommand::Analyse).await?;
    let workaround = "restart the relay's queue runner";
    desk.problem(
        &prb,
        ProblemCommand::RecordWorkaround {
            text: workaround.into(),
            published: true,
        },
    )
    .await?;
    let ke: Reference = id("KE-0001")?;
    let log = LogKnownError::new(
        LogRecord::new(
            ke.clone(),
            id("pat.problem-manager")?,
            Channel::Monitoring,
            id("email")?,
            "mail relay drops messages",
        )
        .affected_cis(vec![id("mx-01")?]),
        "mail accepted but never delivered",
    )
    .problem(prb.clone())
    .workaround(workaround);
    desk.known_error(&ke, KnownErrorCommand::Log(log)).await?;
    let classify = RecordCommand::Classify {
        category: "email".into(),
        subcategory: None,
    };
    desk.known_error(&ke, classify.into()).await?;
    desk.known_error(&ke, KnownErrorCommand::Publish).await?;
    let link = RecordCommand::Link {
        kind: LinkKind::PROBLEM,
        target: prb.to_string(),
    };
    desk.known_error(&ke, link.into()).await?;
    desk.settle().await?;
    let noted = desk
        .incidents
        .load(&Incident::stream(&on_relay[0])?)
        .await?;
    println!(
        "workaround published: {} now holds {} note(s)",
        on_relay[0],
        noted.state.record().notes()
    );
    // A new incident on the relay finds the known error.
    let fresh: Reference = id("INC-0100")?;
    let log = LogRecord::new(
        fresh.clone(),
        id("user-9")?,
        Channel::Portal,
        id("email")?,
        "mails lost",
    )
    .affected_cis(vec![id("mx-01")?]);
    desk.incident(&fresh, IncidentCommand::Log(log)).await?;
    let catalogue = desk.caught_up(KnownErrorCatalogue::new()).await?;
    let incident = desk.incidents.load(&Incident::stream(&fresh)?).await?;
    for found in catalogue.matching(&IncidentProfile::of(&incident.state)) {
        println!(
            "{fresh} matches {} {} ({:?}): {}",
            found.reference,
            found.version,
            found.matched,
            found.workaround.unwrap_or_default()
        );
    }

    // 4. The root cause, the fix through a change, the incidents on hold resumed.
    desk.now += TimeDelta::days(1);
    desk.problem(
        &prb,
        ProblemCommand::RecordRootCause {
            cause: "queue runner stalls on oversized messages".into(),
            method: "log analysis and five whys".into(),
            contributing_cis: vec![id("mx-01")?],
        },
    )
    .await?;
    let change = RecordCommand::Link {
        kind: LinkKind::CHANGE,
        target: "CHG-0042".into(),
    };
    desk.problem(&prb, change.into()).await?;
    desk.problem(&prb, ProblemCommand::StartFix).await?;
    desk.now += TimeDelta::days(2);
    let resolve = RecordCommand::Resolve {
        code: "fix_applied".into(),
        notes: "size limit raised by change CHG-0042".into(),
    };
    desk.problem(&prb, resolve.into()).await?;
    let fixed_at = desk.now;
    desk.settle().await?;
    let mut resumed = 0;
    for reference in &on_relay[..4] {
        let incident = desk.incidents.load(&Incident::stream(reference)?).await?;
        if incident.state.record().status() == Some("in_progress") {
            resumed += 1;
        }
    }
    println!("{prb} resolved by the fix: {resumed} of 4 incidents on hold resumed");

    // 5. Thirty days later: the review finds no recurrence on the relay; the problem closes.
    let now = fixed_at + ProblemPolicy::default().review.window + TimeDelta::hours(1);
    let trends = desk
        .caught_up(IncidentTrends::new(TrendPolicy::default())?)
        .await?;
    let board = desk.caught_up(ProblemBoard::new("problems")).await?;
    let reviewer = EffectivenessReviewer::new(
        Arc::new(board),
        Arc::new(trends),
        Actor::new("smsys.reviewer")?,
    );
    for outcome in reviewer.run(&desk.problems, now).await? {
        if let ReviewOutcome::Recorded {
            problem,
            recurrences,
        } = outcome
        {
            println!("review of {problem}: {} recurrence(s)", recurrences.len());
        }
    }
    desk.now = now;
    desk.problem(&prb, RecordCommand::Close.into()).await?;
    let problem = desk.problems.load(&Problem::stream(&prb)?).await?;
    println!(
        "{prb} is {}: root cause {:?}, review effective: {}",
        problem.state.record().status().unwrap_or("?"),
        problem.state.root_cause().map(|r| r.cause.as_str()),
        problem.state.review().is_some_and(|r| r.effective)
    );

    let report = desk.store.verify().await?;
    println!(
        "hash chain: {} events checked, {}",
        report.events_checked,
        if report.is_intact() {
            "intact"
        } else {
            "BROKEN"
        }
    );
    if !report.is_intact() {
        return Err("the hash chain is broken".into());
    }
    Ok(())
}
