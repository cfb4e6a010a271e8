//! What the release reactor tests share: an estate on one store (CIs, releases, incidents,
//! problems, changes, known errors, each through its command handler) with its clock in the
//! test's hands, a release driven to deployment or to a rollback, and counts over the log.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys::core::records::change::PlannedCiUpdate;
use smsys::core::records::release::{DeploymentOutcome, ReleasePlan};
use smsys::core::records::{
    Channel, CiId, ConfigurationItem, Incident, LinkKind, RecordKind, Reference, Release,
    ReleaseKind,
};
use smsys::core::{
    Actor, Aggregate, CheckpointStore, CommandHandler, CommandMeta, Context, EventStore, LogFilter,
    Position, ProjectionRunner, Reacting, Reactor, SequentialIds, StreamId,
};
use smsys::processes::change::{ApprovalPolicy, ChangeManagement, ChangePolicy};
use smsys::processes::configuration::{CiCommand, CiManagement, CmdbPolicy};
use smsys::processes::incident::{IncidentCommand, IncidentManagement};
use smsys::processes::known_error::KnownErrorManagement;
use smsys::processes::problem::ProblemManagement;
use smsys::processes::release::{
    ChangeAuthorisations, LogRelease, ReleaseCommand, ReleaseKinds, ReleaseManagement,
    ReleasePolicy,
};
use smsys::processes::{
    CmdbGraph, IncidentPolicy, KnownErrorPolicy, LogRecord, ProblemPolicy, RecordCommand,
};

/// The instant every estate starts at.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .expect("valid")
}

/// A validated identifier (reference, person, group, CI, ...).
pub(crate) fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("valid")
}

/// Who the reactors act as.
pub(crate) fn reactor_actor() -> Actor {
    Actor::new("smsys.release").expect("valid")
}

/// The requester of every release.
pub(crate) const REQUESTER: &str = "rita";
/// The deployer every plan names.
pub(crate) const DEPLOYER: &str = "dave";
/// The approver of emergency releases.
pub(crate) const APPROVER: &str = "erin";
/// The service every release and change is logged for.
pub(crate) const SERVICE: &str = "email";

/// Every change counts as authorised.
struct AllAuthorised;

impl ChangeAuthorisations for AllAuthorised {
    fn authorised(&self, _: &Reference) -> Option<bool> {
        Some(true)
    }
}

/// The reference approval policy with `carl` managing changes and `erin` on the emergency
/// board.
pub(crate) fn approvals() -> ApprovalPolicy {
    ApprovalPolicy::reference()
        .with_members(&id("change-managers"), [id("carl")])
        .and_then(|p| p.with_members(&id("ecab"), [id(APPROVER)]))
        .expect("groups exist")
}

/// One store and every handler on it, with a clock and ids the test controls.
pub(crate) struct Estate {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) graph: Arc<CmdbGraph>,
    pub(crate) releases: CommandHandler<ReleaseManagement>,
    pub(crate) incidents: CommandHandler<IncidentManagement>,
    pub(crate) problems: CommandHandler<ProblemManagement>,
    pub(crate) changes: CommandHandler<ChangeManagement>,
    pub(crate) known_errors: CommandHandler<KnownErrorManagement>,
    pub(crate) cis: CommandHandler<CiManagement>,
    pub(crate) clock: Clock,
}

/// The instant of the next command and the ids of the events it records.
pub(crate) struct Clock {
    ids: SequentialIds,
    /// The instant of the next command.
    pub(crate) now: DateTime<Utc>,
}

impl Clock {
    /// Runs `command` on `stream` through `handler` as `who` now; the clock then moves a
    /// minute on. The refusal as text.
    pub(crate) async fn run<A: Aggregate>(
        &mut self,
        handler: &CommandHandler<A>,
        who: &str,
        stream: &StreamId,
        command: A::Command,
    ) -> Result<(), String>
    where
        A::Rejection: std::fmt::Display,
    {
        let ctx = Context::new(self.now, &self.ids);
        let meta = CommandMeta::new(Actor::new(who).expect("valid"));
        let ran = handler.execute(stream, &command, &meta, &ctx).await;
        self.now += TimeDelta::minutes(1);
        ran.map(|_| ()).map_err(|e| e.to_string())
    }
}

impl Estate {
    /// An estate on `store` at `now`, with the reference release policy but `kinds`, event
    /// ids numbered from `first_id` (another estate on the same store starts elsewhere).
    pub(crate) fn on(
        store: Arc<dyn EventStore>,
        kinds: ReleaseKinds,
        first_id: u64,
        now: DateTime<Utc>,
    ) -> Self {
        let graph = Arc::new(CmdbGraph::new());
        let policy = ReleasePolicy::default()
            .with_kinds(kinds)
            .with_approvals(approvals())
            .with_baselines(graph.clone())
            .with_changes(Arc::new(AllAuthorised));
        Self {
            releases: CommandHandler::new(store.clone(), policy),
            incidents: CommandHandler::new(store.clone(), IncidentPolicy::default()),
            problems: CommandHandler::new(store.clone(), ProblemPolicy::default()),
            changes: CommandHandler::new(
                store.clone(),
                ChangePolicy::default().with_approvals(approvals()),
            ),
            known_errors: CommandHandler::new(store.clone(), KnownErrorPolicy::default()),
            cis: CommandHandler::new(store.clone(), CmdbPolicy::reference()),
            store,
            graph,
            clock: Clock {
                ids: SequentialIds::new(first_id),
                now,
            },
        }
    }

    /// Runs `command` on release `name` as `who`; it must be accepted.
    pub(crate) async fn release(&mut self, who: &str, name: &str, command: ReleaseCommand) {
        let what = command.name();
        let stream = Release::stream(&id(name)).expect("valid");
        self.clock
            .run(&self.releases, who, &stream, command)
            .await
            .unwrap_or_else(|e| panic!("{what} on {name}: {e}"));
    }

    /// Registers server `ci` (under change `CHG-0`) and catches the graph up.
    pub(crate) async fn register(&mut self, ci: &str) {
        let stream = ConfigurationItem::stream(&id(ci)).expect("valid");
        let register = CiCommand::Register {
            id: id(ci),
            ci_type: id("server"),
            name: ci.into(),
            description: String::new(),
            attributes: Default::default(),
            change: Some(id("CHG-0")),
        };
        self.clock
            .run(&self.cis, "rita", &stream, register)
            .await
            .expect("registered");
        self.catch_up_graph().await;
    }

    /// Catches the configuration graph up with the store.
    pub(crate) async fn catch_up_graph(&self) {
        ProjectionRunner::new(self.store.clone())
            .catch_up(self.graph.as_ref())
            .await
            .expect("the graph catches up");
    }

    /// Logs emergency release `name` on `cis` with a plan making `ci_updates`, builds,
    /// accepts, approves and baselines it and starts its deployment.
    pub(crate) async fn ready(
        &mut self,
        name: &str,
        cis: &[&str],
        ci_updates: Vec<PlannedCiUpdate>,
    ) {
        let cis: Vec<CiId> = cis.iter().map(|c| id(c)).collect();
        let record = LogRecord::new(
            id(name),
            id(REQUESTER),
            Channel::Portal,
            id(SERVICE),
            "fix the mail relay",
        )
        .affected_cis(cis.clone());
        let plan = ReleasePlan {
            cis,
            services: Vec::new(),
            deployment: "roll the package out".into(),
            rollback: "reinstall the previous package".into(),
            deployer: Some(id(DEPLOYER)),
            ci_updates,
        };
        let log = LogRelease::new(record, ReleaseKind::Emergency).plan(plan);
        self.release(REQUESTER, name, ReleaseCommand::log(log))
            .await;
        self.ready_logged(name).await;
    }

    /// Builds, accepts, approves and baselines logged release `name` and starts its
    /// deployment.
    pub(crate) async fn ready_logged(&mut self, name: &str) {
        let build = ReleaseCommand::RecordBuild {
            build: "2.4.1".into(),
            notes: "patched relay".into(),
        };
        self.release(REQUESTER, name, build).await;
        let verify = ReleaseCommand::VerifyCriterion {
            criterion: "smoke_tests".into(),
            passed: true,
            evidence: "run 42".into(),
        };
        self.release(REQUESTER, name, verify).await;
        self.release(REQUESTER, name, ReleaseCommand::Accept).await;
        self.release(APPROVER, name, ReleaseCommand::Approve { group: None })
            .await;
        self.catch_up_graph().await;
        self.release(REQUESTER, name, ReleaseCommand::TakeBaseline)
            .await;
        self.release(DEPLOYER, name, ReleaseCommand::StartDeployment)
            .await;
    }

    /// Records the deployment of release `name` to production with `outcome`.
    pub(crate) async fn deployed(&mut self, name: &str, outcome: DeploymentOutcome) {
        let deployed = ReleaseCommand::RecordDeployment {
            environment: "production".into(),
            outcome,
            notes: "rolled out".into(),
        };
        self.release(DEPLOYER, name, deployed).await;
    }

    /// Deploys emergency release `name` on `cis` to production: its early-life window opens
    /// now, for 3 days. The instant of the deployment.
    pub(crate) async fn deploy(
        &mut self,
        name: &str,
        cis: &[&str],
        ci_updates: Vec<PlannedCiUpdate>,
    ) -> DateTime<Utc> {
        self.ready(name, cis, ci_updates).await;
        let at = self.clock.now;
        self.deployed(name, DeploymentOutcome::Success).await;
        at
    }

    /// Fails the deployment of emergency release `name` on `cis` and rolls it back.
    pub(crate) async fn fail(&mut self, name: &str, cis: &[&str]) {
        self.ready(name, cis, Vec::new()).await;
        self.deployed(name, DeploymentOutcome::Failed).await;
        let back = ReleaseCommand::RollBack {
            restored: true,
            notes: "previous package reinstalled".into(),
        };
        self.release(DEPLOYER, name, back).await;
    }

    /// Logs incident `name` on `cis` for `service`, reported by `carol`.
    pub(crate) async fn incident(&mut self, name: &str, cis: &[&str], service: &str) {
        let record = LogRecord::new(
            id(name),
            id("carol"),
            Channel::Phone,
            id(service),
            "mail is slow",
        )
        .affected_cis(cis.iter().map(|c| id(c)).collect());
        let stream = Incident::stream(&id(name)).expect("valid");
        self.clock
            .run(
                &self.incidents,
                "carol",
                &stream,
                IncidentCommand::Log(record),
            )
            .await
            .expect("logged");
    }

    /// Links incident `name` to configuration item `ci`.
    pub(crate) async fn link_ci(&mut self, name: &str, ci: &str) {
        let stream = Incident::stream(&id(name)).expect("valid");
        let link = RecordCommand::Link {
            kind: LinkKind::CONFIGURATION_ITEM,
            target: ci.into(),
        };
        self.clock
            .run(&self.incidents, "carol", &stream, link.into())
            .await
            .expect("linked");
    }

    /// The state of release `name`.
    pub(crate) async fn release_state(&self, name: &str) -> Release {
        let stream = Release::stream(&id(name)).expect("valid");
        self.releases.load(&stream).await.expect("loads").state
    }

    /// The state of incident `name`.
    pub(crate) async fn incident_state(&self, name: &str) -> Incident {
        let stream = Incident::stream(&id(name)).expect("valid");
        self.incidents.load(&stream).await.expect("loads").state
    }

    /// How many events of type `event_type` (e.g. `release.incident_correlated`) the log
    /// holds.
    pub(crate) async fn count(&self, event_type: &str) -> usize {
        let mut events = self.store.read_all(Position::START, LogFilter::all());
        let mut n = 0;
        while let Some(event) = futures::StreamExt::next(&mut events).await {
            n += usize::from(event.expect("reads").data.event_type().as_str() == event_type);
        }
        n
    }
}

/// The records of `kind` that `links` names.
pub(crate) fn links_of(links: &[(LinkKind, String)], kind: &LinkKind) -> Vec<String> {
    links
        .iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, target)| target.clone())
        .collect()
}

/// Catches `reactor` up on `store` from the checkpoint kept in `checkpoints`, in batches of 3.
pub(crate) async fn react_with<R: Reactor, C: CheckpointStore>(
    store: &Arc<dyn EventStore>,
    reacting: &Reacting<R, C>,
) {
    ProjectionRunner::new(store.clone())
        .with_batch_size(3)
        .catch_up(reacting)
        .await
        .expect("reacts");
}

/// Catches `reactor` up from a fresh checkpoint (a node that remembers nothing).
pub(crate) async fn react(store: &Arc<dyn EventStore>, reactor: impl Reactor) {
    let checkpoints = Arc::new(smsys::store::MemoryEventStore::new());
    react_with(store, &Reacting::new(reactor, checkpoints)).await;
}
