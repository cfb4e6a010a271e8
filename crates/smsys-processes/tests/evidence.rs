//! The evidence pack of changes (8.5.1) and releases (8.5.3): a small estate built through
//! the real command handlers on the in-memory store, some records compliant and some short of
//! what the lifecycle still allows; every figure, shortfalls included, recomputed from the raw
//! events read as JSON, without the `Change` and `Release` state types.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::StreamExt;
use serde_json::Value;
use smsys_core::records::change::{ChangePlan, ChangeWindow, ImplementationOutcome};
use smsys_core::records::release::{Baseline, BaselineCi, DeploymentOutcome, ReleasePlan};
use smsys_core::records::{
    Attributes, Change, ChangeKind, Channel, CiId, Level, RecordKind, Reference, Release,
    ReleaseKind,
};
use smsys_core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, LogFilter, Position, SequentialIds,
};
use smsys_processes::change::{
    ApprovalPolicy, AssessChange, ChangeCommand, ChangeManagement, ChangePolicy, ChangeTemplate,
    ChangeTemplates, LogChange,
};
use smsys_processes::evidence::{EvidencePack, Figure, Period, percent};
use smsys_processes::release::{
    BaselineError, BaselineSource, LogRelease, ReleaseCommand, ReleaseKinds, ReleaseManagement,
    ReleasePolicy,
};
use smsys_processes::{LogRecord, RecordCommand};
use smsys_store::MemoryEventStore;

// ---- given: changes and releases on one store ----

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .expect("valid")
}

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("valid")
}

/// `rita` requests everything; `carl` and `dana` sit on the CABs, `erin` on the emergency
/// CAB; `ivan` implements changes, `dave` deploys releases, `otto` operates deployments.
fn change_policy() -> ChangePolicy {
    let approvals = ApprovalPolicy::reference()
        .with_members(&id("change-managers"), [id("rita"), id("carl")])
        .and_then(|p| p.with_members(&id("cab"), [id("carl"), id("dana")]))
        .and_then(|p| p.with_members(&id("ecab"), [id("carl"), id("erin"), id("ivan")]))
        .expect("groups exist");
    let template = ChangeTemplate {
        name: "restart-mx".into(),
        version: 1,
        summary: "Restart a mail server".into(),
        implementation: "drain, restart, undrain".into(),
        remediation: "start the previous binary".into(),
        test_plan: String::new(),
        withdrawn: false,
    };
    let templates = ChangeTemplates::new().with(template).expect("valid");
    ChangePolicy::default()
        .with_approvals(approvals)
        .with_templates(templates)
}

/// Baselines of a fixed configuration.
#[derive(Debug)]
struct FixedBaselines;

impl BaselineSource for FixedBaselines {
    fn baseline(&self, cis: &[CiId]) -> Result<Baseline, BaselineError> {
        let recorded = cis
            .iter()
            .map(|ci| BaselineCi {
                id: ci.clone(),
                ci_type: id("server"),
                name: ci.to_string(),
                status: "live".into(),
                attributes: Attributes::new(),
                relationships: Vec::new(),
            })
            .collect();
        Ok(Baseline::new(Position::from_sequence(7), recorded))
    }
}

fn release_policy() -> ReleasePolicy {
    let approvals = ApprovalPolicy::reference()
        .with_members(&id("change-managers"), [id("rita"), id("carl")])
        .and_then(|p| p.with_members(&id("cab"), [id("rita"), id("carl"), id("dana")]))
        .and_then(|p| p.with_members(&id("ecab"), [id("carl"), id("erin")]))
        .expect("groups exist");
    ReleasePolicy::default()
        .with_approvals(approvals)
        .with_baselines(Arc::new(FixedBaselines))
}

fn record(name: &str) -> LogRecord {
    LogRecord::new(id(name), id("rita"), Channel::Portal, id("email"), "mail")
        .affected_cis(vec![id("mx-01")])
}

fn change_plan() -> ChangePlan {
    ChangePlan {
        cis: vec![id("mx-01")],
        implementation: "apply the patch, restart".into(),
        remediation: "reinstall the previous package".into(),
        test_plan: "send a test mail".into(),
        implementer: Some(id("ivan")),
        ci_updates: Vec::new(),
    }
}

fn window(start: DateTime<Utc>) -> ChangeWindow {
    ChangeWindow {
        start,
        end: start + TimeDelta::hours(2),
        time_zone: "Europe/Paris".into(),
    }
}

fn assessment() -> ChangeCommand {
    ChangeCommand::Assess(AssessChange {
        probability: Level::Low,
        impact: Level::Medium,
        benefit: "closes a CVE".into(),
        cost: "2 hours".into(),
        feasibility: "routine".into(),
    })
}

fn implemented(outcome: ImplementationOutcome) -> ChangeCommand {
    ChangeCommand::RecordImplementation {
        outcome,
        notes: "done".into(),
    }
}

fn deploy(environment: &str, outcome: DeploymentOutcome) -> ReleaseCommand {
    ReleaseCommand::RecordDeployment {
        environment: environment.into(),
        outcome,
        notes: "done".into(),
    }
}

/// Changes and releases on one in-memory store, commands through their handlers.
struct Estate {
    changes: CommandHandler<ChangeManagement>,
    releases: CommandHandler<ReleaseManagement>,
    ids: SequentialIds,
    now: DateTime<Utc>,
}

impl Estate {
    fn new() -> Self {
        let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
        Self {
            changes: CommandHandler::new(store.clone(), change_policy()),
            releases: CommandHandler::new(store, release_policy()),
            ids: SequentialIds::new(1),
            now: t0(),
        }
    }

    fn store(&self) -> &Arc<dyn EventStore> {
        self.changes.store()
    }

    async fn change(&mut self, who: &str, name: &str, command: ChangeCommand) {
        self.now += TimeDelta::minutes(1);
        let stream = Change::stream(&id::<Reference, _>(name)).expect("valid");
        let ctx = Context::new(self.now, &self.ids);
        let meta = CommandMeta::new(Actor::new(who).expect("valid"));
        let what = command.name();
        self.changes
            .execute(&stream, &command, &meta, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{what} on {name}: {e}"));
    }

    async fn release(&mut self, who: &str, name: &str, command: ReleaseCommand) {
        self.now += TimeDelta::minutes(1);
        let stream = Release::stream(&id::<Reference, _>(name)).expect("valid");
        let ctx = Context::new(self.now, &self.ids);
        let meta = CommandMeta::new(Actor::new(who).expect("valid"));
        let what = command.name();
        self.releases
            .execute(&stream, &command, &meta, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{what} on {name}: {e}"));
    }

    /// Normal change `name` logged with a plan, scheduled, assessed, authorised by `carl`.
    async fn authorised_normal(&mut self, name: &str) {
        let log = LogChange::new(record(name), ChangeKind::Normal).plan(change_plan());
        self.change("rita", name, ChangeCommand::log(log)).await;
        self.change("rita", name, RecordCommand::Start.into()).await;
        let start = self.now + TimeDelta::days(20);
        self.change("rita", name, ChangeCommand::Schedule(window(start)))
            .await;
        self.change("rita", name, assessment()).await;
        self.change("rita", name, ChangeCommand::RequestAuthorisation)
            .await;
        self.change("carl", name, ChangeCommand::Approve { group: None })
            .await;
    }

    /// Emergency change `name` logged with a plan, scheduled, authorised by `erin`,
    /// implemented with `outcome`.
    async fn emergency(&mut self, name: &str, outcome: ImplementationOutcome) {
        let log = LogChange::new(record(name), ChangeKind::Emergency).plan(change_plan());
        self.change("rita", name, ChangeCommand::log(log)).await;
        let start = self.now + TimeDelta::hours(1);
        self.change("rita", name, ChangeCommand::Schedule(window(start)))
            .await;
        self.change("rita", name, ChangeCommand::RequestAuthorisation)
            .await;
        self.change("erin", name, ChangeCommand::Approve { group: None })
            .await;
        self.change("ivan", name, ChangeCommand::StartImplementation)
            .await;
        self.change("ivan", name, implemented(outcome)).await;
    }

    /// Major release `name` logged, built, accepted, approved by `carl` and `dana`,
    /// baselined and deployment started.
    async fn approved_release(&mut self, name: &str) {
        let plan = ReleasePlan {
            cis: vec![id("app-01"), id("srv-01")],
            services: Vec::new(),
            deployment: "blue-green switch".into(),
            rollback: "switch back".into(),
            deployer: Some(id("dave")),
            ci_updates: Vec::new(),
        };
        let log = LogRelease::new(record(name), ReleaseKind::Major).plan(plan);
        self.release("rita", name, ReleaseCommand::log(log)).await;
        let build = ReleaseCommand::RecordBuild {
            build: "2.5.0".into(),
            notes: String::new(),
        };
        self.release("rita", name, build).await;
        let kinds = ReleaseKinds::reference();
        let criteria = &kinds.get(ReleaseKind::Major).expect("a policy").criteria;
        for criterion in criteria.iter().map(|c| c.name.clone()) {
            let verify = ReleaseCommand::VerifyCriterion {
                criterion,
                passed: true,
                evidence: "run 42".into(),
            };
            self.release("rita", name, verify).await;
        }
        self.release("rita", name, ReleaseCommand::Accept).await;
        for approver in ["carl", "dana"] {
            let approve = ReleaseCommand::Approve { group: None };
            self.release(approver, name, approve).await;
        }
        self.release("rita", name, ReleaseCommand::TakeBaseline)
            .await;
        self.release("otto", name, ReleaseCommand::StartDeployment)
            .await;
    }

    /// Deploys `name` to every environment successfully: its early life starts.
    async fn deploy_everywhere(&mut self, name: &str) {
        for environment in ["test", "staging", "production"] {
            self.release(
                "otto",
                name,
                deploy(environment, DeploymentOutcome::Success),
            )
            .await;
        }
    }
}

/// The estate, and the period it is evidenced for.
async fn estate() -> (Estate, Period) {
    let mut e = Estate::new();
    // Before the period: left out.
    let early = LogChange::new(record("CHG-0"), ChangeKind::Normal);
    e.change("rita", "CHG-0", ChangeCommand::log(early)).await;
    let period = Period::new(t0() + TimeDelta::hours(1), t0() + TimeDelta::days(90)).unwrap();
    e.now = period.start();

    // CHG-1: normal, implemented, reviewed and closed: compliant.
    e.authorised_normal("CHG-1").await;
    e.change("ivan", "CHG-1", ChangeCommand::StartImplementation)
        .await;
    e.change("ivan", "CHG-1", implemented(ImplementationOutcome::Success))
        .await;
    let review = ChangeCommand::RecordReview {
        successful: true,
        findings: "no incidents".into(),
    };
    e.change("rita", "CHG-1", review).await;
    e.change("rita", "CHG-1", RecordCommand::Close.into()).await;
    // CHG-2: normal, implemented, awaiting its review.
    e.authorised_normal("CHG-2").await;
    e.change("ivan", "CHG-2", ChangeCommand::StartImplementation)
        .await;
    e.change("ivan", "CHG-2", implemented(ImplementationOutcome::Success))
        .await;
    // CHG-3: emergency, failed, remediated; not yet assessed retrospectively, investigated
    // or reviewed.
    e.emergency("CHG-3", ImplementationOutcome::Failed).await;
    let remediation = ChangeCommand::RecordRemediation {
        restored: true,
        notes: "previous package reinstalled".into(),
    };
    e.change("ivan", "CHG-3", remediation).await;
    // CHG-4: emergency, failed, nothing since.
    e.emergency("CHG-4", ImplementationOutcome::Failed).await;
    // CHG-5: standard, from its template, scheduled.
    let standard = LogChange::standard(record("CHG-5"), "restart-mx");
    e.change("rita", "CHG-5", ChangeCommand::log(standard))
        .await;
    let start = e.now + TimeDelta::days(1);
    e.change("rita", "CHG-5", ChangeCommand::Schedule(window(start)))
        .await;
    // CHG-6: normal, logged without a plan.
    let bare = LogChange::new(record("CHG-6"), ChangeKind::Normal);
    e.change("rita", "CHG-6", ChangeCommand::log(bare)).await;

    // REL-1: deployed, reviewed after its early life, closed: compliant.
    e.approved_release("REL-1").await;
    e.deploy_everywhere("REL-1").await;
    e.now += TimeDelta::days(15);
    let review = || ReleaseCommand::RecordEarlyLifeReview {
        successful: true,
        findings: "quiet".into(),
    };
    e.release("rita", "REL-1", review()).await;
    e.release("rita", "REL-1", RecordCommand::Close.into())
        .await;
    // REL-2: in early life, not reviewed (its review comes after the period).
    e.approved_release("REL-2").await;
    e.deploy_everywhere("REL-2").await;
    // REL-3: two attempts, the first rolled back without restoring the service; early life
    // waived, not reviewed.
    e.approved_release("REL-3").await;
    for environment in ["test", "staging"] {
        e.release(
            "otto",
            "REL-3",
            deploy(environment, DeploymentOutcome::Success),
        )
        .await;
    }
    e.release(
        "otto",
        "REL-3",
        deploy("production", DeploymentOutcome::Failed),
    )
    .await;
    let roll_back = ReleaseCommand::RollBack {
        restored: false,
        notes: "the old colour did not come up".into(),
    };
    e.release("otto", "REL-3", roll_back).await;
    e.release("rita", "REL-3", ReleaseCommand::TakeBaseline)
        .await;
    e.release("otto", "REL-3", ReleaseCommand::StartDeployment)
        .await;
    e.deploy_everywhere("REL-3").await;
    let waive = ReleaseCommand::WaiveEarlyLife {
        reason: "the service was restored by hand".into(),
    };
    e.release("rita", "REL-3", waive).await;
    // REL-4: built, not deployed.
    let log = LogRelease::new(record("REL-4"), ReleaseKind::Minor);
    e.release("rita", "REL-4", ReleaseCommand::log(log)).await;

    // After the period: REL-2 reviewed, which the pack must not see.
    e.now = period.end() + TimeDelta::days(1);
    e.release("rita", "REL-2", review()).await;
    (e, period)
}

// ---- then: every figure recomputed from the raw events ----

/// A figure as recomputed: name, numerator, denominator, shortfalls `(record, why)`.
type Expected = (String, u64, u64, Vec<(String, String)>);

fn figure(
    name: &str,
    numerator: u64,
    denominator: u64,
    mut shortfalls: Vec<(String, String)>,
) -> Expected {
    shortfalls.sort();
    (name.to_owned(), numerator, denominator, shortfalls)
}

fn actual(figure: &Figure) -> Expected {
    assert_eq!(
        figure.percent,
        percent(figure.numerator, figure.denominator),
        "{}",
        figure.name
    );
    let expected_percent = (figure.denominator > 0)
        .then(|| figure.numerator as f64 * 100.0 / figure.denominator as f64);
    assert_eq!(figure.percent, expected_percent, "{}", figure.name);
    let shortfalls = figure
        .shortfalls
        .iter()
        .map(|s| (s.record.as_str().to_owned(), s.why.clone()))
        .collect();
    (
        figure.name.clone(),
        figure.numerator,
        figure.denominator,
        shortfalls,
    )
}

/// One change as its raw events tell it.
#[derive(Debug, Default)]
struct RawChange {
    reference: String,
    kind: String,
    caller: String,
    logged_at: Option<DateTime<Utc>>,
    assessed: bool,
    remediation: Option<String>,
    authorised: Option<Vec<String>>,
    outcome: Option<String>,
    remediated: bool,
    investigated: bool,
    reviewed: bool,
}

/// One release as its raw events tell it.
#[derive(Debug, Default)]
struct RawRelease {
    reference: String,
    logged_at: Option<DateTime<Utc>>,
    criteria: Vec<String>,
    verified: BTreeMap<String, bool>,
    authorised: bool,
    baselines: u32,
    /// Environment and the number of baselines taken before it.
    deployments: Vec<(String, u32)>,
    /// Environment and whether restored.
    rollbacks: Vec<(String, bool)>,
    early_life: bool,
    waived: bool,
    reviewed: bool,
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_owned()
}

/// The changes and releases of the log, read as JSON, as of the end of `period`.
async fn raw(
    store: &dyn EventStore,
    period: Period,
) -> (BTreeMap<String, RawChange>, BTreeMap<String, RawRelease>) {
    let mut changes: BTreeMap<String, RawChange> = BTreeMap::new();
    let mut releases: BTreeMap<String, RawRelease> = BTreeMap::new();
    let mut log = store.read_all(Position::START, LogFilter::all());
    while let Some(event) = log.next().await {
        let json = serde_json::to_value(event.expect("reads")).expect("encodes");
        let stream = text(&json["stream"]);
        let data = &json["data"];
        let occurred: DateTime<Utc> =
            serde_json::from_value(data["metadata"]["occurred_at"].clone()).expect("an instant");
        if occurred >= period.end() {
            continue;
        }
        let p = &data["payload"];
        let (category, name) = text(&data["event_type"])
            .split_once('.')
            .map(|(c, n)| (c.to_owned(), n.to_owned()))
            .expect("<category>.<name>");
        match category.as_str() {
            "change" => {
                let c = changes.entry(stream).or_default();
                match name.as_str() {
                    "logged" => {
                        c.reference = text(&p["reference"]);
                        c.kind = text(&p["kind"]);
                        c.caller = text(&p["caller"]);
                        c.logged_at = Some(occurred);
                    }
                    "planned" => c.remediation = Some(text(&p["remediation"])),
                    "assessed" => c.assessed = true,
                    "authorised" => {
                        let approvers = p["approvers"].as_array().expect("a list");
                        c.authorised = Some(approvers.iter().map(text).collect());
                    }
                    "approvals_reset" => c.authorised = None,
                    "implemented" => c.outcome = Some(text(&p["outcome"])),
                    "remediation_executed" => c.remediated = true,
                    "failure_investigated" => c.investigated = true,
                    "reviewed" => c.reviewed = true,
                    _ => {}
                }
            }
            "release" => {
                let r = releases.entry(stream).or_default();
                match name.as_str() {
                    "logged" => {
                        r.reference = text(&p["reference"]);
                        r.logged_at = Some(occurred);
                        let criteria = p["criteria"].as_array().expect("a list");
                        r.criteria = criteria.iter().map(|c| text(&c["name"])).collect();
                    }
                    "criterion_verified" => {
                        let passed = p["passed"].as_bool().expect("a bool");
                        r.verified.insert(text(&p["criterion"]), passed);
                    }
                    "authorised" => r.authorised = true,
                    "baseline_taken" => r.baselines += 1,
                    "deployed" => r.deployments.push((text(&p["environment"]), r.baselines)),
                    "rolled_back" => {
                        let restored = p["restored"].as_bool().expect("a bool");
                        r.rollbacks.push((text(&p["environment"]), restored));
                    }
                    "early_life_started" => r.early_life = true,
                    "early_life_waived" => r.waived = true,
                    "early_life_reviewed" => r.reviewed = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let logged_in = |at: Option<DateTime<Utc>>| at.is_some_and(|at| period.contains(at));
    changes.retain(|_, c| logged_in(c.logged_at));
    releases.retain(|_, r| logged_in(r.logged_at));
    (changes, releases)
}

/// The 8.5.1 figures, recomputed.
fn change_figures(changes: &BTreeMap<String, RawChange>) -> Vec<Expected> {
    let all: Vec<&RawChange> = changes.values().collect();
    let count = |items: &[&RawChange]| items.len() as u64;
    let short = |items: &[&RawChange], why: &dyn Fn(&RawChange) -> Option<String>| {
        items
            .iter()
            .filter_map(|c| why(c).map(|w| (c.reference.clone(), w)))
            .collect::<Vec<_>>()
    };
    let tally = |name: &str, items: Vec<&RawChange>, why: &dyn Fn(&RawChange) -> Option<String>| {
        let shortfalls = short(&items, why);
        figure(
            name,
            count(&items) - shortfalls.len() as u64,
            count(&items),
            shortfalls,
        )
    };
    let controlled: Vec<&RawChange> = all
        .iter()
        .copied()
        .filter(|c| c.kind != "standard")
        .collect();
    let authorised: Vec<&RawChange> = controlled
        .iter()
        .copied()
        .filter(|c| c.authorised.is_some() || c.outcome.is_some())
        .collect();
    let implemented: Vec<&RawChange> = all
        .iter()
        .copied()
        .filter(|c| c.outcome.is_some())
        .collect();
    let failed: Vec<&RawChange> = all
        .iter()
        .copied()
        .filter(|c| c.outcome.as_deref() == Some("failed"))
        .collect();
    let emergency = all.iter().filter(|c| c.kind == "emergency").count() as u64;
    vec![
        tally("assessed", controlled.clone(), &|c| {
            (!c.assessed).then(|| "not assessed".to_owned())
        }),
        tally(
            "authorised_by_other",
            authorised,
            &|c| match &c.authorised {
                None => Some("implemented without an authorisation in force".to_owned()),
                Some(a) if a.is_empty() => Some("authorised with no approver named".to_owned()),
                Some(a) if a.contains(&c.caller) => {
                    Some(format!("authorised by the requester {}", c.caller))
                }
                Some(_) => None,
            },
        ),
        tally("remediation_plan", all.clone(), &|c| match &c.remediation {
            None => Some("no plan".to_owned()),
            Some(r) if r.trim().is_empty() => Some("the plan has no remediation".to_owned()),
            Some(_) => None,
        }),
        tally("reviewed", implemented, &|c| {
            (!c.reviewed).then(|| {
                format!(
                    "implemented ({}), not reviewed",
                    c.outcome.as_deref().unwrap_or("")
                )
            })
        }),
        tally("failed_remediated", failed.clone(), &|c| {
            (!c.remediated).then(|| "failed, remediation not executed".to_owned())
        }),
        tally("failed_investigated", failed, &|c| {
            (!c.investigated).then(|| "failed, not investigated".to_owned())
        }),
        figure("emergency_share", emergency, count(&all), Vec::new()),
    ]
}

/// The 8.5.3 figures, recomputed.
fn release_figures(releases: &BTreeMap<String, RawRelease>) -> Vec<Expected> {
    let all: Vec<&RawRelease> = releases.values().collect();
    let tally = |name: &str, items: &[&RawRelease], why: &dyn Fn(&RawRelease) -> Option<String>| {
        let shortfalls: Vec<(String, String)> = items
            .iter()
            .filter_map(|r| why(r).map(|w| (r.reference.clone(), w)))
            .collect();
        let n = items.len() as u64;
        figure(name, n - shortfalls.len() as u64, n, shortfalls)
    };
    let deployed: Vec<&RawRelease> = all
        .iter()
        .copied()
        .filter(|r| !r.deployments.is_empty())
        .collect();
    let early: Vec<&RawRelease> = all.iter().copied().filter(|r| r.early_life).collect();
    let rollbacks: u64 = all.iter().map(|r| r.rollbacks.len() as u64).sum();
    let not_restored = all
        .iter()
        .flat_map(|r| {
            r.rollbacks
                .iter()
                .filter(|(_, restored)| !restored)
                .map(|(env, _)| {
                    (
                        r.reference.clone(),
                        format!("rolled back in {env} without restoring the service"),
                    )
                })
        })
        .collect();
    vec![
        tally("deployed_with_acceptance", &deployed, &|r| {
            let unmet: Vec<&str> = r
                .criteria
                .iter()
                .filter(|c| r.verified.get(*c) != Some(&true))
                .map(String::as_str)
                .collect();
            (!unmet.is_empty())
                .then(|| format!("deployed with criteria not met: {}", unmet.join(", ")))
        }),
        tally("deployed_with_approval", &deployed, &|r| {
            (!r.authorised).then(|| "deployed without approval".to_owned())
        }),
        tally("deployed_with_baseline", &deployed, &|r| {
            r.deployments
                .iter()
                .find(|(_, baselines)| *baselines == 0)
                .map(|(env, _)| format!("deployed to {env} without a baseline"))
        }),
        tally(
            "early_life_reviewed",
            &early,
            &|r| match (r.reviewed, r.waived) {
                (true, _) => None,
                (false, true) => Some("early life waived, not reviewed".to_owned()),
                (false, false) => Some("in early life, not reviewed".to_owned()),
            },
        ),
        figure(
            "rollbacks_per_release",
            rollbacks,
            all.len() as u64,
            not_restored,
        ),
    ]
}

#[tokio::test]
async fn every_figure_of_the_pack_is_recomputed_from_the_raw_events() {
    let (e, period) = estate().await;
    let pack = EvidencePack::from_store(e.store().as_ref(), period)
        .await
        .expect("the pack");
    let (changes, releases) = raw(e.store().as_ref(), period).await;
    assert_eq!(pack.changes.changes, changes.len() as u64);
    assert_eq!(pack.releases.releases, releases.len() as u64);
    let computed: Vec<Expected> = pack.changes.figures().into_iter().map(actual).collect();
    assert_eq!(computed, change_figures(&changes));
    let computed: Vec<Expected> = pack.releases.figures().into_iter().map(actual).collect();
    assert_eq!(computed, release_figures(&releases));
}

#[tokio::test]
async fn the_pack_names_the_records_that_fall_short() {
    let (e, period) = estate().await;
    let pack = EvidencePack::from_store(e.store().as_ref(), period)
        .await
        .expect("the pack");
    let c = &pack.changes;
    assert_eq!(c.changes, 6, "CHG-0 was logged before the period");
    let records = |f: &Figure| -> Vec<String> {
        f.shortfalls
            .iter()
            .map(|s| format!("{} {}", s.record, s.why))
            .collect()
    };
    assert_eq!((c.assessed.numerator, c.assessed.denominator), (2, 5));
    assert_eq!(
        records(&c.assessed),
        [
            "CHG-3 not assessed",
            "CHG-4 not assessed",
            "CHG-6 not assessed"
        ]
    );
    assert_eq!(
        (
            c.authorised_by_other.numerator,
            c.authorised_by_other.denominator
        ),
        (4, 4)
    );
    assert_eq!(records(&c.remediation_plan), ["CHG-6 no plan"]);
    assert_eq!(
        records(&c.reviewed),
        [
            "CHG-2 implemented (success), not reviewed",
            "CHG-3 implemented (failed), not reviewed",
            "CHG-4 implemented (failed), not reviewed",
        ]
    );
    assert_eq!(
        records(&c.failed_remediated),
        ["CHG-4 failed, remediation not executed"]
    );
    assert_eq!(c.failed_investigated.numerator, 0);
    assert_eq!(c.failed_investigated.denominator, 2);
    assert_eq!(
        (c.emergency_share.numerator, c.emergency_share.denominator),
        (2, 6)
    );

    let r = &pack.releases;
    assert_eq!(r.releases, 4);
    assert_eq!(r.deployed_with_baseline.denominator, 3);
    assert_eq!(r.deployed_with_baseline.percent, Some(100.0));
    assert_eq!(
        records(&r.early_life_reviewed),
        [
            "REL-2 in early life, not reviewed",
            "REL-3 early life waived, not reviewed",
        ],
        "REL-2's review came after the period"
    );
    assert_eq!(
        records(&r.rollbacks_per_release),
        ["REL-3 rolled back in production without restoring the service"]
    );
    assert_eq!(r.rollbacks_per_release.percent, Some(25.0));

    let json = serde_json::to_value(&pack).expect("encodes");
    assert_eq!(json["changes"]["clause"], "8.5.1");
    assert_eq!(json["releases"]["clause"], "8.5.3");
    assert_eq!(json["period"]["start"], serde_json::json!(period.start()));
    assert_eq!(
        json["changes"]["assessed"]["shortfalls"][0]["record"],
        "CHG-3"
    );
    assert_eq!(
        json["releases"]["early_life_reviewed"]["percent"],
        100.0 / 3.0
    );
}

#[tokio::test]
async fn an_empty_period_is_refused_and_a_later_one_sees_no_record() {
    assert!(Period::new(t0(), t0()).is_err());
    let (e, period) = estate().await;
    let later = Period::new(
        period.end() + TimeDelta::days(30),
        period.end() + TimeDelta::days(60),
    )
    .unwrap();
    let pack = EvidencePack::from_store(e.store().as_ref(), later)
        .await
        .expect("the pack");
    assert_eq!(pack.changes.changes, 0);
    assert_eq!(pack.releases.releases, 0);
    assert!(pack.changes.figures().iter().all(|f| f.percent.is_none()));
}
