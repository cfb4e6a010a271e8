//! Release and deployment management (ISO/IEC 20000-1 8.5.3) on the embedded SQLite store,
//! over the web shop estate of the change example.
//!
//! `cargo run --example release_management`: minor release REL-0001 delivers standard change
//! CHG-0098 (the shop's upgrade to 2.4):
//! 1. built, its acceptance criteria verified with evidence, accepted; the requester's own
//!    approval refused, a change manager approving;
//! 2. a baseline of the shop and its server taken from the CMDB, with its log position and
//!    hash;
//! 3. deployed to test, failed in production and rolled back to that baseline; the failure
//!    raises an incident linked to the release;
//! 4. a new baseline, a second attempt through test and production; the CMDB records the
//!    shop's new version naming the release, and early-life support opens for 7 days;
//! 5. three incidents: two on the shop and the web shop service, correlated with the release
//!    on both records, one elsewhere, not;
//! 6. the early-life review refused while the window runs, recorded after it listing the two
//!    correlated incidents; the release closes, and its change is reviewed and closed with it.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example talks to its user on stdout and stderr"
)]

#[path = "support/estate.rs"]
mod estate;

use std::cell::Cell;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use estate::{Error, id};
use smsys::core::records::change::PlannedCiUpdate;
use smsys::core::records::change::{ChangeWindow, ImplementationOutcome};
use smsys::core::records::release::{DeploymentOutcome, ReleasePlan};
use smsys::core::records::{
    AttributeValue, Change, Channel, CiEvent, Incident, LinkKind, RecordKind, Release, ReleaseKind,
};
use smsys::core::{
    Actor, Aggregate, CommandHandler, CommandMeta, Context, EventStore, ProjectionRunner, Reacting,
    SequentialIds, StreamId,
};
use smsys::processes::change::{
    ApprovalPolicy, ChangeCommand, ChangeManagement, ChangePolicy, ChangeSchedule, ChangeTemplate,
    ChangeTemplates, LogChange,
};
use smsys::processes::problem::reactors::{LinkMirror, RecordSide};
use smsys::processes::release::reactors::{
    EarlyLifeCorrelation, FailedDeployments, ReleaseCiUpdates, ReleaseClosure,
};
use smsys::processes::release::{LogRelease, ReleaseCommand, ReleaseManagement, ReleasePolicy};
use smsys::processes::{
    CiManagement, CmdbGraph, CmdbPolicy, IncidentCommand, IncidentManagement, IncidentPolicy,
    KnownErrorPolicy, LogRecord, ProblemPolicy, RecordCommand,
};
use smsys::store::SqliteEventStore;

/// The store, the handlers, the read models, the reactors and the simulated clock.
struct Desk {
    store: Arc<SqliteEventStore>,
    releases: CommandHandler<ReleaseManagement>,
    changes: CommandHandler<ChangeManagement>,
    incidents: CommandHandler<IncidentManagement>,
    cis: CommandHandler<CiManagement>,
    graph: Arc<CmdbGraph>,
    schedule: Arc<ChangeSchedule>,
    ids: SequentialIds,
    now: Cell<DateTime<Utc>>,
}

impl Desk {
    /// Runs `command` through `handler` on `stream` as `who`, five minutes after the last
    /// command, with the read models caught up first; the refusal as an error.
    async fn exec<A: Aggregate>(
        &self,
        handler: &CommandHandler<A>,
        who: &str,
        stream: StreamId,
        command: A::Command,
    ) -> Result<(), Error>
    where
        A::Rejection: std::error::Error + Send + Sync + 'static,
    {
        self.now.set(self.now.get() + TimeDelta::minutes(5));
        self.catch_up().await?;
        let ctx = Context::new(self.now.get(), &self.ids);
        let meta = CommandMeta::new(Actor::new(who)?);
        handler.execute(&stream, &command, &meta, &ctx).await?;
        self.react().await
    }

    async fn release(&self, who: &str, command: ReleaseCommand) -> Result<(), Error> {
        let stream = Release::stream(&id("REL-0001")?)?;
        self.exec(&self.releases, who, stream, command).await
    }

    /// Runs a release command and prints its refusal, which is expected.
    async fn refused(&self, who: &str, command: ReleaseCommand) -> Result<(), Error> {
        match self.release(who, command).await {
            Ok(()) => Err("expected a refusal".into()),
            Err(why) => {
                println!("   refused: {why}");
                Ok(())
            }
        }
    }

    async fn change(&self, who: &str, command: ChangeCommand) -> Result<(), Error> {
        let stream = Change::stream(&id("CHG-0098")?)?;
        self.exec(&self.changes, who, stream, command).await
    }

    /// Logs incident `reference` on `service` and `ci`.
    async fn incident(&self, reference: &str, service: &str, ci: &str) -> Result<(), Error> {
        let log = LogRecord::new(
            id(reference)?,
            id("carol")?,
            Channel::Phone,
            id(service)?,
            "orders time out",
        )
        .affected_cis(vec![id(ci)?]);
        let stream = Incident::stream(&id(reference)?)?;
        self.exec(
            &self.incidents,
            "agent.desk",
            stream,
            IncidentCommand::Log(log),
        )
        .await
    }

    /// Brings the CI graph and the change schedule up to the log.
    async fn catch_up(&self) -> Result<(), Error> {
        let runner = ProjectionRunner::new(self.store.clone());
        runner.catch_up(self.graph.as_ref()).await?;
        runner.catch_up(self.schedule.as_ref()).await?;
        Ok(())
    }

    /// Runs the release reactors over what is new in the log, each with its checkpoint in
    /// the store (a real deployment runs them continuously, on any node).
    async fn react(&self) -> Result<(), Error> {
        let log: Arc<dyn EventStore> = self.store.clone();
        let actor = Actor::new("smsys.release")?;
        let runner = ProjectionRunner::new(self.store.clone());
        let releases = || CommandHandler::new(log.clone(), self.releases.services().clone());
        let incidents = || CommandHandler::new(log.clone(), IncidentPolicy::default());
        let changes = CommandHandler::new(log.clone(), self.changes.services().clone());
        let correlation = EarlyLifeCorrelation::new(releases(), incidents(), actor.clone());
        let updates = ReleaseCiUpdates::new(
            CommandHandler::new(log.clone(), CmdbPolicy::reference()),
            actor.clone(),
        );
        let failures = FailedDeployments::new(
            releases(),
            incidents(),
            CommandHandler::new(log.clone(), ProblemPolicy::default()),
            actor.clone(),
        );
        let closure = ReleaseClosure::new(
            changes,
            CommandHandler::new(log.clone(), KnownErrorPolicy::default()),
            self.releases.services().clone(),
            actor.clone(),
        );
        let mirror = LinkMirror::new(log.clone(), actor.clone())
            .with_side(Arc::new(RecordSide::new(releases(), LinkKind::RELEASE)))
            .with_side(Arc::new(RecordSide::new(
                CommandHandler::<ChangeManagement>::new(
                    log.clone(),
                    self.changes.services().clone(),
                ),
                LinkKind::CHANGE,
            )));
        let checkpoints = || self.store.clone();
        runner
            .catch_up(&Reacting::new(mirror, checkpoints()))
            .await?;
        runner
            .catch_up(&Reacting::new(correlation, checkpoints()))
            .await?;
        runner
            .catch_up(&Reacting::new(updates, checkpoints()))
            .await?;
        runner
            .catch_up(&Reacting::new(failures, checkpoints()))
            .await?;
        runner
            .catch_up(&Reacting::new(closure, checkpoints()))
            .await?;
        Ok(())
    }

    async fn state(&self) -> Result<Release, Error> {
        Ok(self
            .releases
            .load(&Release::stream(&id("REL-0001")?)?)
            .await?
            .state)
    }
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> Result<DateTime<Utc>, Error> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .ok_or_else(|| "no such instant".into())
}

fn status(release: &Release) -> &str {
    release.record().status().unwrap_or("not logged")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("release_management: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The desk on a fresh store: the change managers are `carl` and `rita`; the standard change
/// template `upgrade-shop`; baselines from the CMDB graph, change authorisations from the
/// change schedule.
async fn open() -> Result<(Desk, tempfile::TempDir), Error> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteEventStore::open(dir.path().join("releases.sqlite")).await?);
    let log: Arc<dyn EventStore> = store.clone();
    let graph = Arc::new(CmdbGraph::new());
    let schedule = Arc::new(ChangeSchedule::new("change-schedule", graph.clone()));
    let approvals = ApprovalPolicy::reference()
        .with_members(&id("change-managers")?, [id("carl")?, id("rita")?])?;
    let templates = ChangeTemplates::new().with(ChangeTemplate {
        name: "upgrade-shop".into(),
        version: 1,
        summary: "Upgrade the shop application".into(),
        implementation: "deploy the new release through the release process".into(),
        remediation: "roll back to the baseline".into(),
        test_plan: "place a test order".into(),
        withdrawn: false,
    })?;
    let changes = ChangePolicy::default()
        .with_approvals(approvals.clone())
        .with_templates(templates);
    let releases = ReleasePolicy::default()
        .with_approvals(approvals)
        .with_baselines(graph.clone())
        .with_changes(schedule.clone());
    let desk = Desk {
        releases: CommandHandler::new(log.clone(), releases),
        changes: CommandHandler::new(log.clone(), changes),
        incidents: CommandHandler::new(log.clone(), IncidentPolicy::default()),
        cis: CommandHandler::new(log, CmdbPolicy::reference()),
        store,
        graph,
        schedule,
        ids: SequentialIds::new(1),
        now: Cell::new(at(2026, 12, 1, 9, 0)?),
    };
    estate::build(&desk.cis, (desk.now.get(), &desk.ids), "CHG-0001").await?;
    Ok((desk, dir))
}

/// A deployment attempt by the deployer: started, test passes, production ends with
/// `outcome`.
async fn attempt(desk: &Desk, outcome: DeploymentOutcome, notes: &str) -> Result<(), Error> {
    desk.release("ivan", ReleaseCommand::StartDeployment)
        .await?;
    for (environment, outcome, notes) in [
        ("test", DeploymentOutcome::Success, "green in test"),
        ("production", outcome, notes),
    ] {
        let deployed = ReleaseCommand::RecordDeployment {
            environment: environment.into(),
            outcome,
            notes: notes.into(),
        };
        desk.release("ivan", deployed).await?;
    }
    Ok(())
}

async fn run() -> Result<(), Error> {
    let (desk, _dir) = open().await?;
    let shop_cis = vec![id("shop")?, id("srv-web-01")?];

    println!("0. Standard change CHG-0098 (upgrade the shop), scheduled without approval");
    let record = LogRecord::new(
        id("CHG-0098")?,
        id("rita")?,
        Channel::Portal,
        id("webshop")?,
        "upgrade the shop to 2.4",
    )
    .affected_cis(shop_cis.clone());
    desk.change(
        "rita",
        ChangeCommand::log(LogChange::standard(record, "upgrade-shop")),
    )
    .await?;
    let start = desk.now.get() + TimeDelta::hours(2);
    let window = ChangeWindow {
        start,
        end: start + TimeDelta::days(2),
        time_zone: "Europe/Berlin".into(),
    };
    desk.change("rita", ChangeCommand::Schedule(window)).await?;

    println!("1. Minor release REL-0001 delivers CHG-0098");
    let plan = ReleasePlan {
        cis: shop_cis.clone(),
        services: Vec::new(),
        deployment: "blue-green switch of the shop".into(),
        rollback: "switch back to the previous colour".into(),
        deployer: Some(id("ivan")?),
        ci_updates: vec![PlannedCiUpdate {
            ci: id("shop")?,
            set: [(id("version")?, AttributeValue::from("2.4"))]
                .into_iter()
                .collect(),
            removed: Vec::new(),
            status: None,
        }],
    };
    let record = LogRecord::new(
        id("REL-0001")?,
        id("rita")?,
        Channel::Portal,
        id("webshop")?,
        "shop 2.4",
    )
    .affected_cis(shop_cis);
    let log = LogRelease::new(record, ReleaseKind::Minor).plan(plan);
    desk.release("rita", ReleaseCommand::log(log)).await?;
    desk.release(
        "rita",
        RecordCommand::Link {
            kind: LinkKind::CHANGE,
            target: "CHG-0098".into(),
        }
        .into(),
    )
    .await?;
    desk.release(
        "ivan",
        ReleaseCommand::RecordBuild {
            build: "shop-2.4.0+b118".into(),
            notes: "built from tag v2.4.0".into(),
        },
    )
    .await?;
    for (criterion, evidence) in [
        ("regression_tests", "CI run 5521: 1,204 tests passed"),
        (
            "operational_readiness",
            "runbook v7 and dashboards signed off by ops",
        ),
    ] {
        desk.release(
            "quinn",
            ReleaseCommand::VerifyCriterion {
                criterion: criterion.into(),
                passed: true,
                evidence: evidence.into(),
            },
        )
        .await?;
    }
    desk.release("quinn", ReleaseCommand::Accept).await?;
    println!("   the requester approving her own release:");
    desk.refused("rita", ReleaseCommand::Approve { group: None })
        .await?;
    desk.release("carl", ReleaseCommand::Approve { group: None })
        .await?;
    let change = desk
        .changes
        .load(&Change::stream(&id("CHG-0098")?)?)
        .await?
        .state;
    let scope: Vec<String> = change
        .record()
        .links()
        .iter()
        .map(|(kind, target)| format!("{kind} {target}"))
        .collect();
    println!("   CHG-0098 links to {} (both ways)", scope.join(", "));
    let rel = desk.state().await?;
    println!(
        "   criteria met: {}, approved under rule {}: {}",
        rel.criteria_met(),
        rel.authorisation()
            .map(|a| a.rule.as_str())
            .unwrap_or("none"),
        status(&rel)
    );

    println!("2. Baseline before deployment");
    println!("   deploying without one:");
    desk.refused("ivan", ReleaseCommand::StartDeployment)
        .await?;
    desk.release("ivan", ReleaseCommand::TakeBaseline).await?;
    let rel = desk.state().await?;
    let first = rel.baseline().ok_or("no baseline")?.clone();
    for ci in &first.cis {
        let attributes: Vec<String> = ci
            .attributes
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let relationships: Vec<String> = ci
            .relationships
            .iter()
            .map(|(relationship, to)| format!("{relationship} {to}"))
            .collect();
        println!(
            "   {} ({}, {}): {}; {}",
            ci.id,
            ci.ci_type,
            ci.status,
            attributes.join(", "),
            relationships.join(", ")
        );
    }
    println!(
        "   as of log position {}, hash {}, intact: {}",
        first.as_of,
        first.hash,
        first.is_intact()
    );

    println!("3. First attempt: test passes, production fails, rolled back");
    attempt(
        &desk,
        DeploymentOutcome::Failed,
        "checkout errors after the switch",
    )
    .await?;
    desk.release(
        "ivan",
        ReleaseCommand::RollBack {
            restored: true,
            notes: "switched back to blue".into(),
        },
    )
    .await?;
    let rel = desk.state().await?;
    let rollback = rel.rollbacks().last().ok_or("no rollback")?;
    let returned_to = rel
        .returned_to(rollback)
        .ok_or("no baseline to return to")?;
    println!(
        "   rolled back {} to baseline {} (as of position {}, the first: {}): {}",
        rollback.environment,
        rollback.baseline,
        returned_to.as_of,
        returned_to == &first,
        status(&rel)
    );
    for link in rel.record().links() {
        println!("   linked: {} {}", link.0, link.1);
    }

    println!("4. Second attempt on a new baseline");
    desk.release("ivan", ReleaseCommand::TakeBaseline).await?;
    attempt(
        &desk,
        DeploymentOutcome::Success,
        "switched to green, checkout healthy",
    )
    .await?;
    desk.change("ivan", ChangeCommand::StartImplementation)
        .await?;
    desk.change(
        "ivan",
        ChangeCommand::RecordImplementation {
            outcome: ImplementationOutcome::Success,
            notes: "delivered by release REL-0001".into(),
        },
    )
    .await?;
    desk.catch_up().await?;
    let rel = desk.state().await?;
    let (_, until) = rel.early_life().ok_or("no early life")?;
    let shop = desk
        .graph
        .ci(&id("shop")?)
        .ok_or("the shop is not in the CMDB")?;
    println!(
        "   attempts: {}, deployments: {}; {} until {until}",
        rel.attempt(),
        rel.deployments().len(),
        status(&rel)
    );
    let updated_by =
        desk.graph
            .history(&id("shop")?)
            .into_iter()
            .rev()
            .find_map(|(_, _, event)| {
                if let CiEvent::AttributesUpdated { change, .. } = event {
                    change
                } else {
                    None
                }
            });
    println!(
        "   the CMDB's shop: version {}, updated under {}",
        shop.attributes
            .get(&id("version")?)
            .map_or_else(|| "none".to_owned(), ToString::to_string),
        updated_by.map_or_else(|| "nothing".to_owned(), |r| r.to_string())
    );

    println!("5. Incidents in early life");
    desk.incident("INC-0101", "webshop", "shop").await?;
    desk.incident("INC-0102", "webshop", "srv-web-01").await?;
    desk.incident("INC-0103", "intranet", "sw-core").await?;
    let rel = desk.state().await?;
    for correlation in rel.correlations() {
        let incident = desk
            .incidents
            .load(&Incident::stream(&correlation.incident)?)
            .await?
            .state;
        let cis: Vec<String> = correlation.cis.iter().map(ToString::to_string).collect();
        let links: Vec<String> = incident
            .record()
            .links()
            .iter()
            .map(|(kind, target)| format!("{kind} {target}"))
            .collect();
        println!(
            "   {} correlated (CIs: {}); the incident links to {}",
            correlation.incident,
            cis.join(", "),
            links.join(", ")
        );
    }
    if !rel.correlated(&id("INC-0103")?) {
        println!("   INC-0103 (intranet, sw-core) is not the release's: not correlated");
    }

    println!("6. Early-life review and closure");
    desk.refused(
        "rita",
        ReleaseCommand::RecordEarlyLifeReview {
            successful: true,
            findings: "stable".into(),
        },
    )
    .await?;
    desk.now.set(until);
    desk.release(
        "rita",
        ReleaseCommand::RecordEarlyLifeReview {
            successful: true,
            findings: "two timeouts in the first days, fixed by configuration".into(),
        },
    )
    .await?;
    desk.release("rita", RecordCommand::Close.into()).await?;
    let rel = desk.state().await?;
    let review = rel.review().ok_or("no review")?;
    let listed: Vec<String> = review.incidents.iter().map(ToString::to_string).collect();
    println!(
        "   reviewed (successful: {}) listing {}: {}",
        review.successful.unwrap_or(false),
        listed.join(", "),
        status(&rel)
    );
    let change = desk
        .changes
        .load(&Change::stream(&id("CHG-0098")?)?)
        .await?
        .state;
    println!(
        "   CHG-0098: {} (its review: {})",
        change.record().status().unwrap_or("not logged"),
        change.review().map_or("none", |r| r.findings.as_str())
    );
    Ok(())
}
