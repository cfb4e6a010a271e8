//! Change management (ISO/IEC 20000-1 8.5.1) on the embedded SQLite store, over a small
//! estate under change control (a web shop service on an application on a server).
//!
//! `cargo run --example change_management`:
//! 1. a standard change from its template, scheduled on the server without approval;
//! 2. a normal change from request to post-implementation review: a window in the year-end
//!    freeze refused and the change rescheduled (warned of the standard change on the same
//!    server), its risk and impact on services and customers assessed from the CMDB, the
//!    requester's own approval refused, a change manager authorising, the implementation
//!    applying the planned CI update to the CMDB, naming the change;
//! 3. an emergency change implemented at once and closed only after its retrospective
//!    assessment and review;
//! 4. a failed change, backed out, investigated and reviewed.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example talks to its user on stdout and stderr"
)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys::core::records::change::{
    ChangePlan, ChangeWindow, ImplementationOutcome, PlannedCiUpdate,
};
use smsys::core::records::{
    AttributeValue, Change, ChangeKind, Channel, Level, RecordKind, Reference,
};
use smsys::core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, ProjectionRunner, Reacting,
    SequentialIds,
};
use smsys::processes::change::reactors::CiUpdates;
use smsys::processes::change::{
    ApprovalPolicy, AssessChange, ChangeCalendars, ChangeCommand, ChangeManagement, ChangePolicy,
    ChangeSchedule, ChangeTemplate, ChangeTemplates, GraphImpact, LogChange,
};
use smsys::processes::{CiManagement, CmdbGraph, CmdbPolicy, LogRecord, RecordCommand};
use smsys::store::SqliteEventStore;

#[path = "support/estate.rs"]
mod estate;

use estate::{Error, id};

/// The year-end freeze on the web shop, and the server's Saturday-night maintenance window.
const CALENDARS: &str = r#"
[[freeze]]
name = "year-end"
services = ["webshop"]
from = "2026-12-18T00:00:00Z"
until = "2027-01-04T00:00:00Z"
calendar = { name = "year-end", version = 1, time_zone = "Europe/Berlin", always_open = true }

[[maintenance]]
name = "saturday nights"
cis = ["srv-web-01"]
calendar = { name = "saturday-nights", version = 1, time_zone = "Europe/Berlin", weekly = [
    { day = "sat", intervals = [{ start = "20:00", end = "23:59" }] },
] }
"#;

/// The store, the handlers, the read models and the simulated clock.
struct Desk {
    store: Arc<SqliteEventStore>,
    changes: CommandHandler<ChangeManagement>,
    cis: CommandHandler<CiManagement>,
    graph: Arc<CmdbGraph>,
    schedule: Arc<ChangeSchedule>,
    ids: SequentialIds,
    now: DateTime<Utc>,
}

impl Desk {
    /// Runs `command` on change `reference` as `who`; the refusal as an error.
    async fn change(
        &mut self,
        who: &str,
        reference: &str,
        command: ChangeCommand,
    ) -> Result<(), Error> {
        self.now += TimeDelta::minutes(5);
        self.catch_up().await?;
        let stream = Change::stream(&id(reference)?)?;
        let ctx = Context::new(self.now, &self.ids);
        let meta = CommandMeta::new(Actor::new(who)?);
        self.changes.execute(&stream, &command, &meta, &ctx).await?;
        Ok(())
    }

    /// Runs `command` and prints its refusal, which is expected.
    async fn refused(
        &mut self,
        who: &str,
        reference: &str,
        command: ChangeCommand,
    ) -> Result<(), Error> {
        match self.change(who, reference, command).await {
            Ok(()) => Err(format!("{reference}: expected a refusal").into()),
            Err(why) => {
                println!("   refused: {why}");
                Ok(())
            }
        }
    }

    /// Brings the CI graph and the change schedule up to the log.
    async fn catch_up(&self) -> Result<(), Error> {
        let runner = ProjectionRunner::new(self.store.clone());
        runner.catch_up(self.graph.as_ref()).await?;
        runner.catch_up(self.schedule.as_ref()).await?;
        Ok(())
    }

    async fn state(&self, reference: &str) -> Result<Change, Error> {
        Ok(self
            .changes
            .load(&Change::stream(&id(reference)?)?)
            .await?
            .state)
    }
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> Result<DateTime<Utc>, Error> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .ok_or_else(|| "no such instant".into())
}

fn status(change: &Change) -> &str {
    change.record().status().unwrap_or("not logged")
}

fn window(start: DateTime<Utc>, minutes: i64) -> ChangeWindow {
    ChangeWindow {
        start,
        end: start + TimeDelta::minutes(minutes),
        time_zone: "Europe/Berlin".into(),
    }
}

fn plan(updates: Vec<PlannedCiUpdate>) -> Result<ChangePlan, Error> {
    Ok(ChangePlan {
        cis: vec![id("srv-web-01")?],
        implementation: "upgrade the OS, reboot, check the shop".into(),
        remediation: "restore the pre-upgrade snapshot".into(),
        test_plan: "place a test order".into(),
        implementer: Some(id("ivan")?),
        ci_updates: updates,
    })
}

fn request(reference: &str, summary: &str) -> Result<LogRecord, Error> {
    Ok(LogRecord::new(
        id(reference)?,
        id("rita")?,
        Channel::Portal,
        id("webshop")?,
        summary,
    )
    .affected_cis(vec![id("srv-web-01")?]))
}

fn assessment(probability: Level, impact: Level) -> ChangeCommand {
    ChangeCommand::Assess(AssessChange {
        probability,
        impact,
        benefit: "security fixes".into(),
        cost: "2 engineer hours".into(),
        feasibility: "tested in staging".into(),
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("change_management: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteEventStore::open(dir.path().join("changes.sqlite")).await?);
    let log: Arc<dyn EventStore> = store.clone();
    let graph = Arc::new(CmdbGraph::new());
    let schedule = Arc::new(
        ChangeSchedule::new("change-schedule", graph.clone())
            .with_calendars(ChangeCalendars::from_toml(CALENDARS)?),
    );
    let approvals = ApprovalPolicy::reference()
        .with_members(&id("change-managers")?, [id("carl")?, id("rita")?])?
        .with_members(&id("ecab")?, [id("erin")?])?;
    let templates = ChangeTemplates::new().with(ChangeTemplate {
        name: "restart-web".into(),
        version: 3,
        summary: "Restart a web server".into(),
        implementation: "drain, restart, undrain".into(),
        remediation: "start the previous binary".into(),
        test_plan: "probe /health".into(),
        withdrawn: false,
    })?;
    let policy = ChangePolicy::default()
        .with_approvals(approvals)
        .with_templates(templates)
        .with_impact(Arc::new(GraphImpact::new(graph.clone())))
        .with_conflicts(schedule.clone());
    let mut desk = Desk {
        changes: CommandHandler::new(log.clone(), policy),
        cis: CommandHandler::new(log.clone(), CmdbPolicy::reference()),
        store,
        graph,
        schedule,
        ids: SequentialIds::new(1),
        now: at(2026, 12, 1, 9, 0)?,
    };
    estate::build(&desk.cis, (desk.now, &desk.ids), "CHG-0001").await?;
    let saturday = at(2026, 12, 12, 20, 0)?; // 21:00 in Berlin

    println!("1. Standard change CHG-0098 from template restart-web");
    let standard = LogChange::standard(
        request("CHG-0098", "restart the web server")?,
        "restart-web",
    );
    desk.change("rita", "CHG-0098", ChangeCommand::log(standard))
        .await?;
    desk.change(
        "rita",
        "CHG-0098",
        ChangeCommand::Schedule(window(saturday + TimeDelta::minutes(60), 30)),
    )
    .await?;
    let chg = desk.state("CHG-0098").await?;
    let pin = chg.template().ok_or("a pinned template")?;
    println!(
        "   {} v{} pinned; status {}, no approval",
        pin.template,
        pin.version,
        status(&chg)
    );

    println!("2. Normal change CHG-0100: upgrade the OS of srv-web-01");
    let update = PlannedCiUpdate {
        ci: id("srv-web-01")?,
        set: [(id("os")?, AttributeValue::from("debian 13"))]
            .into_iter()
            .collect(),
        removed: Vec::new(),
        status: None,
    };
    let normal = LogChange::new(
        request("CHG-0100", "upgrade the web server's OS")?,
        ChangeKind::Normal,
    )
    .plan(plan(vec![update])?);
    desk.change("rita", "CHG-0100", ChangeCommand::log(normal))
        .await?;
    desk.change("rita", "CHG-0100", RecordCommand::Start.into())
        .await?;
    println!("   a window in the year-end freeze:");
    let frozen = at(2026, 12, 19, 20, 0)?;
    desk.refused(
        "rita",
        "CHG-0100",
        ChangeCommand::Schedule(window(frozen, 90)),
    )
    .await?;
    desk.change(
        "rita",
        "CHG-0100",
        ChangeCommand::Schedule(window(saturday, 120)),
    )
    .await?;
    for warning in desk.state("CHG-0100").await?.warnings() {
        println!(
            "   rescheduled to {saturday}, with a warning: {}",
            warning.detail
        );
    }
    desk.change("rita", "CHG-0100", assessment(Level::Low, Level::Medium))
        .await?;
    let chg = desk.state("CHG-0100").await?;
    let assessed = chg.assessment().ok_or("assessed")?;
    let services: Vec<&str> = assessed
        .analysis
        .services
        .iter()
        .map(|s| s.as_str())
        .collect();
    println!(
        "   risk {} (matrix v{}, base {}), major {}, services {:?}, customers {:?}, {} CIs affected",
        assessed.risk,
        assessed.matrix_version,
        assessed.base_risk,
        assessed.major,
        services,
        assessed.analysis.customers,
        assessed.analysis.affected_cis
    );
    desk.change("rita", "CHG-0100", ChangeCommand::RequestAuthorisation)
        .await?;
    println!("   the requester approves her own change:");
    desk.refused("rita", "CHG-0100", ChangeCommand::Approve { group: None })
        .await?;
    desk.change("carl", "CHG-0100", ChangeCommand::Approve { group: None })
        .await?;
    let chg = desk.state("CHG-0100").await?;
    let authorised = chg.authorisation().ok_or("authorised")?;
    println!(
        "   authorised under {} by {:?}; status {}",
        authorised.rule,
        authorised.approvers,
        status(&chg)
    );
    let planned =
        desk.schedule
            .planned_on_service(&id("webshop")?, saturday, saturday + TimeDelta::days(1));
    let on_service: Vec<&str> = planned.iter().map(|p| p.reference.as_str()).collect();
    println!("   planned on webshop that night: {on_service:?}");
    desk.change("ivan", "CHG-0100", ChangeCommand::StartImplementation)
        .await?;
    desk.change(
        "ivan",
        "CHG-0100",
        ChangeCommand::RecordImplementation {
            outcome: ImplementationOutcome::Success,
            notes: "upgraded, shop checked".into(),
        },
    )
    .await?;
    let updater = CiUpdates::new(
        CommandHandler::new(log.clone(), CmdbPolicy::reference()),
        Actor::new("smsys.change")?,
    );
    let reacting = Reacting::new(updater, desk.store.clone());
    ProjectionRunner::new(desk.store.clone())
        .catch_up(&reacting)
        .await?;
    desk.catch_up().await?;
    let server = desk.graph.ci(&id("srv-web-01")?).ok_or("the server")?;
    let history = desk.graph.history(&id("srv-web-01")?);
    let last = history.last().ok_or("a history")?;
    let os = server.attributes.get(&id("os")?).map(ToString::to_string);
    let by = last.2.change().map_or("none", Reference::as_str);
    println!(
        "   CMDB updated: os = {}, by change {by}",
        os.unwrap_or_default()
    );
    desk.change(
        "rita",
        "CHG-0100",
        ChangeCommand::RecordReview {
            successful: true,
            findings: "no incident in the week after".into(),
        },
    )
    .await?;
    desk.change("rita", "CHG-0100", RecordCommand::Close.into())
        .await?;
    println!("   reviewed and {}", status(&desk.state("CHG-0100").await?));

    println!("3. Emergency change CHG-0101: patch an exploited flaw now");
    let emergency = LogChange::new(
        request("CHG-0101", "patch the exploited flaw")?,
        ChangeKind::Emergency,
    )
    .plan(plan(Vec::new())?);
    desk.change("rita", "CHG-0101", ChangeCommand::log(emergency))
        .await?;
    let soon = desk.now + TimeDelta::minutes(30);
    desk.change(
        "rita",
        "CHG-0101",
        ChangeCommand::Schedule(window(soon, 30)),
    )
    .await?;
    desk.change("rita", "CHG-0101", ChangeCommand::RequestAuthorisation)
        .await?;
    desk.change("erin", "CHG-0101", ChangeCommand::Approve { group: None })
        .await?;
    desk.change("ivan", "CHG-0101", ChangeCommand::StartImplementation)
        .await?;
    desk.change(
        "ivan",
        "CHG-0101",
        ChangeCommand::RecordImplementation {
            outcome: ImplementationOutcome::Success,
            notes: "patched".into(),
        },
    )
    .await?;
    desk.change(
        "rita",
        "CHG-0101",
        ChangeCommand::RecordReview {
            successful: true,
            findings: "flaw closed; the expedited path worked".into(),
        },
    )
    .await?;
    println!("   closing before the retrospective assessment:");
    desk.refused("rita", "CHG-0101", RecordCommand::Close.into())
        .await?;
    desk.change("rita", "CHG-0101", assessment(Level::Medium, Level::High))
        .await?;
    desk.change("rita", "CHG-0101", RecordCommand::Close.into())
        .await?;
    println!(
        "   assessed retrospectively and {}",
        status(&desk.state("CHG-0101").await?)
    );

    println!("4. Normal change CHG-0102 fails and is backed out");
    let failing = LogChange::new(request("CHG-0102", "tune the kernel")?, ChangeKind::Normal)
        .plan(plan(Vec::new())?);
    desk.change("rita", "CHG-0102", ChangeCommand::log(failing))
        .await?;
    desk.change("rita", "CHG-0102", RecordCommand::Start.into())
        .await?;
    let later = saturday + TimeDelta::days(35);
    desk.change(
        "rita",
        "CHG-0102",
        ChangeCommand::Schedule(window(later, 60)),
    )
    .await?;
    desk.change("rita", "CHG-0102", assessment(Level::Medium, Level::Low))
        .await?;
    desk.change("rita", "CHG-0102", ChangeCommand::RequestAuthorisation)
        .await?;
    desk.change("carl", "CHG-0102", ChangeCommand::Approve { group: None })
        .await?;
    desk.change("ivan", "CHG-0102", ChangeCommand::StartImplementation)
        .await?;
    desk.change(
        "ivan",
        "CHG-0102",
        ChangeCommand::RecordImplementation {
            outcome: ImplementationOutcome::Failed,
            notes: "the shop stopped answering".into(),
        },
    )
    .await?;
    desk.change(
        "ivan",
        "CHG-0102",
        ChangeCommand::RecordRemediation {
            restored: true,
            notes: "snapshot restored, shop answering".into(),
        },
    )
    .await?;
    desk.change(
        "rita",
        "CHG-0102",
        ChangeCommand::RecordReview {
            successful: false,
            findings: "backed out within the window".into(),
        },
    )
    .await?;
    println!("   closing before the failure is investigated:");
    desk.refused("rita", "CHG-0102", RecordCommand::Close.into())
        .await?;
    desk.change(
        "rita",
        "CHG-0102",
        ChangeCommand::RecordInvestigation {
            findings: "the new setting exhausts the connection pool".into(),
        },
    )
    .await?;
    desk.change("rita", "CHG-0102", RecordCommand::Close.into())
        .await?;
    let chg = desk.state("CHG-0102").await?;
    println!(
        "   remediated (restored: {}), investigated and {}",
        chg.remediation().is_some_and(|(restored, _)| restored),
        status(&chg)
    );
    Ok(())
}
