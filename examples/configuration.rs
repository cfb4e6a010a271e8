//! Configuration management and the service catalogue (ISO/IEC 20000-1 8.2.6, 8.2.4) on the
//! embedded SQLite store.
//!
//! `cargo run --example configuration` builds a small estate under change control (a site,
//! two switches, four servers, a database, three applications, two services), then:
//! 1. shows the impact of a server outage and of a switch outage on the services, and the
//!    dependency path from the server to the service;
//! 2. moves an application to a new server under another change, and shows the graph as it
//!    was before (as of an earlier instant), exact, from the events;
//! 3. shows an update without a change reference refused;
//! 4. verifies the CMDB against a discovered inventory: discrepancies, accuracy, and the
//!    incidents the policy opens for them;
//! 5. reads the service catalogue, whose SLAs the SLA engine applies to an incident.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example talks to its user on stdout and stderr"
)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys::core::records::{
    AttributeValue, Attributes, CiId, CmdbVerification, ConfigurationItem, Logged, RecordKind,
    Reference, Relationship,
};
use smsys::core::{
    Actor, Category, CommandHandler, CommandMeta, Context, EventStore, LogFilter, Position,
    Projection, ProjectionRunner, Reacting, SequentialIds,
};
use smsys::processes::catalogue::ServiceCatalogue;
use smsys::processes::sla::{SlaEngine, SlaSelection};
use smsys::processes::verification::{
    DiscoveredCi, DiscrepancyIncidents, DiscrepancyKind, DiscrepancyPolicy, Inventory,
    VerificationCommand, VerificationManagement, compare,
};
use smsys::processes::{CiCommand, CiManagement, CmdbGraph, CmdbPolicy, IncidentPolicy};
use smsys::store::SqliteEventStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn id<T: std::str::FromStr>(text: &str) -> Result<T, Error>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(text.parse()?)
}

fn attributes(pairs: &[(&str, AttributeValue)]) -> Result<Attributes, Error> {
    pairs
        .iter()
        .map(|(name, value)| Ok((id(name)?, value.clone())))
        .collect()
}

/// The CMDB: the store, the CI handler, the simulated clock.
struct Cmdb {
    store: Arc<SqliteEventStore>,
    cis: CommandHandler<CiManagement>,
    ids: SequentialIds,
    now: DateTime<Utc>,
    engineer: CommandMeta,
}

impl Cmdb {
    async fn run(&self, ci: &str, command: CiCommand) -> Result<(), Error> {
        let stream = ConfigurationItem::stream(&id(ci)?)?;
        let ctx = Context::new(self.now, &self.ids);
        self.cis
            .execute(&stream, &command, &self.engineer, &ctx)
            .await?;
        Ok(())
    }

    /// Registers `ci` under `change` and takes it live (planned, ordered, in build, live).
    async fn build(
        &self,
        ci: &str,
        ci_type: &str,
        attributes: Attributes,
        change: &Reference,
    ) -> Result<(), Error> {
        let register = CiCommand::Register {
            id: id(ci)?,
            ci_type: id(ci_type)?,
            name: ci.into(),
            description: String::new(),
            attributes,
            change: Some(change.clone()),
        };
        self.run(ci, register).await?;
        for to in ["ordered", "in_build", "live"] {
            let step = CiCommand::ChangeStatus {
                to: to.into(),
                reason: String::new(),
                change: Some(change.clone()),
            };
            self.run(ci, step).await?;
        }
        Ok(())
    }

    async fn relate(
        &self,
        ci: &str,
        relationship: Relationship,
        target: &str,
        change: &Reference,
    ) -> Result<(), Error> {
        let add = CiCommand::AddRelationship {
            relationship,
            target: id(target)?,
            change: Some(change.clone()),
        };
        self.run(ci, add).await
    }

    async fn caught_up<P: Projection>(&self, projection: P) -> Result<P, Error> {
        ProjectionRunner::new(self.store.clone())
            .catch_up(&projection)
            .await?;
        Ok(projection)
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("configuration: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn build_estate(cmdb: &Cmdb) -> Result<(), Error> {
    let build: Reference = id("CHG-0001")?;
    let text = |t: &str| AttributeValue::from(t);
    let site = CiCommand::Register {
        id: id("dc-1")?,
        ci_type: id("site")?,
        name: "Frankfurt data centre".into(),
        description: String::new(),
        attributes: attributes(&[("country", text("DE"))])?,
        change: None,
    };
    cmdb.run("dc-1", site).await?;
    for (switch, role) in [("sw-core", "switch"), ("sw-edge", "switch")] {
        cmdb.build(
            switch,
            "network_device",
            attributes(&[("role", text(role))])?,
            &build,
        )
        .await?;
        cmdb.relate(switch, Relationship::PART_OF, "dc-1", &build)
            .await?;
    }
    cmdb.relate("sw-edge", Relationship::CONNECTS_TO, "sw-core", &build)
        .await?;
    for server in ["srv-web-01", "srv-web-02", "srv-db-01", "srv-mail-01"] {
        let attrs = attributes(&[
            ("environment", text("production")),
            ("ram_gb", AttributeValue::Number(32.into())),
        ])?;
        cmdb.build(server, "server", attrs, &build).await?;
        cmdb.relate(server, Relationship::PART_OF, "dc-1", &build)
            .await?;
        cmdb.relate(server, Relationship::CONNECTS_TO, "sw-edge", &build)
            .await?;
    }
    cmdb.build(
        "db-orders",
        "database",
        attributes(&[("engine", text("postgresql"))])?,
        &build,
    )
    .await?;
    cmdb.relate("db-orders", Relationship::RUNS_ON, "srv-db-01", &build)
        .await?;
    for (app, servers, needs) in [
        ("shop-frontend", &["srv-web-01"][..], &["shop-backend"][..]),
        ("shop-backend", &["srv-web-02"][..], &["db-orders"][..]),
        ("mail-relay", &["srv-mail-01"][..], &[][..]),
    ] {
        cmdb.build(app, "application", Attributes::new(), &build)
            .await?;
        for server in servers {
            cmdb.relate(app, Relationship::RUNS_ON, server, &build)
                .await?;
        }
        for need in needs {
            cmdb.relate(app, Relationship::DEPENDS_ON, need, &build)
                .await?;
        }
    }
    for (service, owner, slas, app) in [
        ("webshop", "e-commerce", "gold-resolution", "shop-frontend"),
        ("email", "it-operations", "silver-resolution", "mail-relay"),
    ] {
        let attrs = attributes(&[
            ("owner", text(owner)),
            ("customers", text("all staff, web customers")),
            ("hours", text("24x7")),
            ("sla", text(slas)),
        ])?;
        cmdb.build(service, "service", attrs, &build).await?;
        cmdb.relate(service, Relationship::DEPENDS_ON, app, &build)
            .await?;
    }
    Ok(())
}

async fn run() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("cmdb.sqlite");
    let store = Arc::new(SqliteEventStore::open(&path).await?);
    println!("smsys CMDB on {}", path.display());
    let day1 = Utc
        .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .ok_or("valid date")?;
    let mut cmdb = Cmdb {
        cis: CommandHandler::new(store.clone(), CmdbPolicy::reference()),
        store: store.clone(),
        ids: SequentialIds::new(1),
        now: day1,
        engineer: CommandMeta::new(Actor::new("eng.lee")?),
    };
    build_estate(&cmdb).await?;
    let graph = cmdb.caught_up(CmdbGraph::new()).await?;
    println!(
        "estate: {} CIs, {} relationships",
        graph.len(),
        graph.relationship_count()
    );

    // 1. Impact of outages on the services.
    for down in ["srv-db-01", "sw-edge"] {
        let impact = graph.impact(&id(down)?);
        let services: Vec<&str> = impact.services().iter().map(CiId::as_str).collect();
        println!(
            "{down} down: {} CIs affected, services {services:?}",
            impact.len()
        );
    }
    // How the webshop depends on the database server.
    let path = graph
        .path(&id("webshop")?, &id("srv-db-01")?)
        .ok_or("the webshop depends on srv-db-01")?;
    let steps: Vec<String> = path.iter().map(|(ci, rel)| format!("{rel} {ci}")).collect();
    println!("webshop {}", steps.join(", "));

    // 2. A change moves the shop backend to a new server; the graph before it is exact.
    let move_change: Reference = id("CHG-0002")?;
    cmdb.now = day1 + TimeDelta::days(3);
    let before = cmdb.now - TimeDelta::hours(1);
    let attrs = attributes(&[("environment", AttributeValue::from("production"))])?;
    cmdb.build("srv-app-01", "server", attrs, &move_change)
        .await?;
    cmdb.relate(
        "shop-backend",
        Relationship::RUNS_ON,
        "srv-app-01",
        &move_change,
    )
    .await?;
    let unhost = CiCommand::RemoveRelationship {
        relationship: Relationship::RUNS_ON,
        target: id("srv-web-02")?,
        change: Some(move_change.clone()),
    };
    cmdb.run("shop-backend", unhost).await?;
    let graph = cmdb.caught_up(CmdbGraph::new()).await?;
    let then = graph
        .as_of_instant(before)
        .ok_or("the estate existed before the move")?;
    let hosts = |rels: Vec<(Relationship, CiId)>| -> Vec<String> {
        rels.into_iter()
            .filter(|(r, _)| *r == Relationship::RUNS_ON)
            .map(|(_, ci)| ci.to_string())
            .collect()
    };
    println!(
        "shop-backend runs on {:?} now, on {:?} as of {before} (position {})",
        hosts(graph.relationships(&id("shop-backend")?)),
        hosts(then.relationships(&id("shop-backend")?)),
        then.position()
    );
    println!(
        "srv-web-02 down: webshop affected now: {}, before the move: {}",
        graph
            .impact(&id("srv-web-02")?)
            .services()
            .contains(&id("webshop")?),
        then.impact(&id("srv-web-02")?)
            .services()
            .contains(&id("webshop")?)
    );
    let history = graph.history(&id("shop-backend")?);
    println!("shop-backend history: {} events", history.len());

    // 3. Change control: an update without a change reference is refused.
    let uncontrolled = CiCommand::UpdateAttributes {
        set: attributes(&[("ram_gb", AttributeValue::Number(64.into()))])?,
        removed: Vec::new(),
        change: None,
    };
    match cmdb.run("srv-web-01", uncontrolled).await {
        Ok(()) => return Err("an uncontrolled update was accepted".into()),
        Err(refused) => println!("refused: {refused}"),
    }

    // 4. Verification against a nightly scan of the servers.
    let scan = Inventory::new(
        "nightly scan",
        vec![
            DiscoveredCi::new(id("srv-web-01")?, id("server")?)
                .attribute(id("ram_gb")?, AttributeValue::Number(64.into())),
            DiscoveredCi::new(id("srv-web-02")?, id("server")?),
            DiscoveredCi::new(id("srv-db-01")?, id("server")?),
            DiscoveredCi::new(id("srv-app-01")?, id("server")?),
            DiscoveredCi::new(id("srv-x99")?, id("server")?),
        ],
    )?
    .covering(vec![id("server")?]);
    let recorded: Vec<ConfigurationItem> = {
        let mut cis = Vec::new();
        for ci in [
            "srv-web-01",
            "srv-web-02",
            "srv-db-01",
            "srv-mail-01",
            "srv-app-01",
        ] {
            let stream = ConfigurationItem::stream(&id(ci)?)?;
            cis.push(cmdb.cis.load(&stream).await?.state);
        }
        cis
    };
    let comparison = compare(&scan, recorded.iter());
    let verification: Reference = id("VER-2026-11-05")?;
    let verifications = CommandHandler::<VerificationManagement>::new(store.clone(), ());
    let ctx = Context::new(cmdb.now, &cmdb.ids);
    verifications
        .execute(
            &CmdbVerification::stream(&verification)?,
            &VerificationCommand::Record {
                reference: verification.clone(),
                comparison: comparison.clone(),
            },
            &CommandMeta::new(Actor::new("auditor.kim")?),
            &ctx,
        )
        .await?;
    for (ci, discrepancy) in &comparison.discrepancies {
        println!("  {ci}: {discrepancy:?}");
    }
    println!(
        "verification {verification}: {} checked, {} matching, accuracy {:.0} %",
        comparison.checked,
        comparison.matching,
        comparison.accuracy() * 100.0
    );
    let policy = DiscrepancyPolicy {
        open_incident_for: vec![DiscrepancyKind::NotRecorded, DiscrepancyKind::NotDiscovered],
        service: id("cmdb")?,
        caller: id("config.manager")?,
        reference_prefix: "INC-CMDB".into(),
    };
    let opener = DiscrepancyIncidents::new(
        CommandHandler::new(store.clone(), IncidentPolicy::default()),
        Actor::new("smsys.verification")?,
        policy,
    );
    ProjectionRunner::new(store.clone())
        .catch_up(&Reacting::new(opener, store.clone()))
        .await?;
    let mut opened = Vec::new();
    let incidents = LogFilter::all().category(Category::new("incident")?);
    let mut log = store.read_all(Position::START, incidents);
    while let Some(event) = futures::StreamExt::next(&mut log).await {
        let event = event?;
        if event.data.event_type().as_str() == "incident.logged" {
            opened.push(event.stream.entity_id().to_owned());
        }
    }
    println!("incidents opened for discrepancies: {opened:?}");

    // 5. The service catalogue names each service's SLAs; the SLA engine applies them.
    let mut services = Vec::new();
    for service in ["webshop", "email"] {
        let stream = ConfigurationItem::stream(&id(service)?)?;
        services.push(cmdb.cis.load(&stream).await?.state);
    }
    let catalogue = ServiceCatalogue::from_cis(services.iter());
    for entry in catalogue.services() {
        println!(
            "service {}: owner {:?}, SLAs {:?}, depends on {:?}",
            entry.service, entry.owner, entry.slas, entry.depends_on
        );
    }
    println!(
        "SLAs for an incident on webshop: {:?}",
        catalogue.slas_for("webshop", cmdb.now)
    );
    let engine = SlaEngine::from_toml(&[ALWAYS], SERVICE_SLAS)?.with_selection(Arc::new(catalogue));
    let logged = Logged {
        reference: id("INC-0001")?,
        lifecycle: smsys::processes::incident::default_lifecycle().reference(),
        status: "new".into(),
        caller: id("ana")?,
        channel: smsys::core::records::Channel::Phone,
        service: id("webshop")?,
        affected_cis: vec![id("shop-frontend")?],
        summary: "checkout fails".into(),
        description: String::new(),
        attributes: Attributes::new(),
    };
    let timers = engine.timers(
        &smsys::core::records::Incident::RECORD_TYPE,
        &[(cmdb.now, smsys::core::records::CommonEvent::Logged(logged))],
    );
    for timer in &timers {
        let due = engine.calendar_for(timer).and_then(|cal| timer.due(cal));
        println!(
            "incident on webshop: {} timer under {} v{}, due {due:?}",
            timer.timer(),
            timer.sla().name,
            timer.sla().version
        );
    }

    let report = store.verify().await?;
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

/// A calendar open around the clock.
const ALWAYS: &str = r#"
name = "24x7"
version = 1
time_zone = "UTC"
always_open = true
"#;

/// The SLAs the catalogue names: gold and silver resolution targets.
const SERVICE_SLAS: &str = r#"
[[sla]]
name = "gold-resolution"
version = 1
effective_from = "2026-01-01T00:00:00Z"
timer = "resolution"
applies_to = { record_types = ["incident"] }
start = ["logged"]
stop = [{ entered = "resolved" }]
cancel = [{ entered = "cancelled" }]
pause_in = ["pending"]
targets = [{ minutes = 240 }]
calendar = "24x7"
warnings = [75]

[[sla]]
name = "silver-resolution"
version = 1
effective_from = "2026-01-01T00:00:00Z"
timer = "resolution"
applies_to = { record_types = ["incident"] }
start = ["logged"]
stop = [{ entered = "resolved" }]
cancel = [{ entered = "cancelled" }]
pause_in = ["pending"]
targets = [{ minutes = 480 }]
calendar = "24x7"
warnings = [75]
"#;
