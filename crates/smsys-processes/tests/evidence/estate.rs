//! The estate: changes and releases on one store, through their command handlers.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys_core::records::change::{ChangePlan, ChangeWindow, ImplementationOutcome};
use smsys_core::records::release::{Baseline, BaselineCi, DeploymentOutcome, ReleasePlan};
use smsys_core::records::{
    Attributes, Change, ChangeKind, Channel, CiId, Level, RecordKind, Reference, Release,
    ReleaseKind,
};
use smsys_core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, Position, SequentialIds,
};
use smsys_processes::change::{
    ApprovalPolicy, AssessChange, ChangeCommand, ChangeManagement, ChangePolicy, ChangeTemplate,
    ChangeTemplates, LogChange,
};
use smsys_processes::evidence::Period;
use smsys_processes::release::{
    BaselineError, BaselineSource, LogRelease, ReleaseCommand, ReleaseKinds, ReleaseManagement,
    ReleasePolicy,
};
use smsys_processes::{LogRecord, RecordCommand};
use smsys_store::MemoryEventStore;

pub(crate) fn t0() -> DateTime<Utc> {
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
pub(crate) struct Estate {
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

    pub(crate) fn store(&self) -> &Arc<dyn EventStore> {
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
pub(crate) async fn estate() -> (Estate, Period) {
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
