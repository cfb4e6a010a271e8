//! What the release tests share: the people and groups, a release's inputs, the policy, test
//! sources of baselines and change authorisations, a board on a store (releases and CIs
//! through their command handlers, a configuration graph fed by a projection runner) and a
//! desk in memory (decide, then evolve, keeping every event recorded with who and when).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys::core::records::release::{Baseline, BaselineCi, ReleasePlan};
use smsys::core::records::{
    Attributes, Channel, CiId, ConfigurationItem, RecordKind, Reference, Release, ReleaseEvent,
    ReleaseKind,
};
use smsys::core::{
    Actor, Aggregate, CommandError, CommandHandler, CommandMeta, Context, DomainEvent,
    EventSourced, EventStore, Position, ProjectionRunner, SequentialIds, Stamp,
};
use smsys::processes::change::ApprovalPolicy;
use smsys::processes::configuration::{CiCommand, CiManagement, CmdbPolicy};
use smsys::processes::release::{
    BaselineError, BaselineSource, ChangeAuthorisations, LogRelease, ReleaseCommand,
    ReleaseManagement, ReleasePolicy, ReleaseRefusal, ReleaseRule,
};
use smsys::processes::{CmdbGraph, LogRecord, RefusalReason};
use smsys::store::MemoryEventStore;

/// The instant every test starts at.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .expect("valid")
}

/// A validated identifier (reference, person, group, CI, ...).
pub(crate) fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("valid")
}

/// The requester of every release (a member of the CAB and of the change managers, so that
/// only the segregation of duties keeps her from approving).
pub(crate) const REQUESTER: &str = "rita";
/// The deployer every plan names (a CAB and emergency CAB member, kept from approving by the
/// segregation of duties).
pub(crate) const DEPLOYER: &str = "dave";
/// An operator who runs deployments: in no group, never an approver.
pub(crate) const OPERATOR: &str = "otto";
/// In no group.
pub(crate) const OUTSIDER: &str = "zoe";

/// The reference approval policy with members: `rita` and `carl` manage changes; `rita`,
/// `carl`, `dana` and `dave` sit on the CAB; `carl`, `erin` and `dave` on the emergency CAB.
pub(crate) fn approvals() -> ApprovalPolicy {
    ApprovalPolicy::reference()
        .with_members(&id("change-managers"), [id("rita"), id("carl")])
        .and_then(|p| p.with_members(&id("cab"), [id("rita"), id("carl"), id("dana"), id("dave")]))
        .and_then(|p| p.with_members(&id("ecab"), [id("carl"), id("erin"), id("dave")]))
        .expect("groups exist")
}

/// The CIs every release changes: the application and the server it runs on.
pub(crate) fn release_cis() -> Vec<CiId> {
    vec![id("app-01"), id("srv-01")]
}

/// A plan on [`release_cis`], deployed by `deployer`.
pub(crate) fn plan(deployer: &str) -> ReleasePlan {
    ReleasePlan {
        cis: release_cis(),
        services: Vec::new(),
        deployment: "blue-green switch".into(),
        rollback: "switch back to the previous colour".into(),
        deployer: Some(id(deployer)),
        ci_updates: Vec::new(),
    }
}

/// The shared fields of release `name`, requested by `rita` for `email` on `app-01`.
pub(crate) fn record(name: &str) -> LogRecord {
    LogRecord::new(
        id(name),
        id(REQUESTER),
        Channel::Portal,
        id("email"),
        "mail 2.5",
    )
    .affected_cis(vec![id("app-01")])
}

/// Release `name` of `kind` with the first plan (deployed by [`DEPLOYER`]).
pub(crate) fn log_planned(name: &str, kind: ReleaseKind) -> ReleaseCommand {
    ReleaseCommand::log(LogRelease::new(record(name), kind).plan(plan(DEPLOYER)))
}

/// The days of early life of `kind` in the reference policy.
pub(crate) fn early_life_days(kind: ReleaseKind) -> i64 {
    let kinds = smsys::processes::release::ReleaseKinds::reference();
    i64::from(kinds.get(kind).expect("a policy").early_life_days)
}

/// Baselines of a fixed configuration: every CI asked for, a live server, as of position 7.
#[derive(Debug, Default)]
pub(crate) struct FixedBaselines;

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

/// Change authorisations set by the test: known changes and whether each is authorised.
#[derive(Debug, Default)]
pub(crate) struct Authorisations(Mutex<BTreeMap<Reference, bool>>);

impl Authorisations {
    /// Records whether `change` is authorised.
    pub(crate) fn set(&self, change: &str, authorised: bool) {
        self.0.lock().expect("lock").insert(id(change), authorised);
    }
}

impl ChangeAuthorisations for Authorisations {
    fn authorised(&self, reference: &Reference) -> Option<bool> {
        self.0.lock().expect("lock").get(reference).copied()
    }
}

/// The default policy with [`approvals`] and [`FixedBaselines`].
pub(crate) fn policy() -> ReleasePolicy {
    ReleasePolicy::default()
        .with_approvals(approvals())
        .with_baselines(Arc::new(FixedBaselines))
}

/// Releases and CIs on an in-memory store, commands through their command handlers, the
/// configuration graph caught up from the store on [`Board::sync`].
pub(crate) struct Board {
    releases: CommandHandler<ReleaseManagement>,
    cis: CommandHandler<CiManagement>,
    graph: Arc<CmdbGraph>,
    ids: SequentialIds,
    now: DateTime<Utc>,
}

impl Board {
    /// A board under `policy` reading the configuration from `graph`, at [`t0`].
    pub(crate) fn new(graph: Arc<CmdbGraph>, policy: ReleasePolicy) -> Self {
        let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
        Self {
            releases: CommandHandler::new(store.clone(), policy),
            cis: CommandHandler::new(store, CmdbPolicy::reference()),
            graph,
            ids: SequentialIds::new(1),
            now: t0(),
        }
    }

    /// The store the board writes to.
    pub(crate) fn store(&self) -> &Arc<dyn EventStore> {
        self.releases.store()
    }

    /// The board's clock.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Moves the clock on by `by`.
    pub(crate) fn advance(&mut self, by: TimeDelta) {
        self.now += by;
    }

    /// Runs `command` on CI `ci` as `rita`, a minute later; it must be accepted.
    pub(crate) async fn ci(&mut self, ci: &str, command: CiCommand) {
        self.now += TimeDelta::minutes(1);
        let stream = ConfigurationItem::stream(&id(ci)).expect("valid");
        let ctx = Context::new(self.now, &self.ids);
        let meta = CommandMeta::new(Actor::new(REQUESTER).expect("valid"));
        self.cis
            .execute(&stream, &command, &meta, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{ci}: {e}"));
    }

    /// Catches the configuration graph up with the store.
    pub(crate) async fn sync(&self) -> Option<Position> {
        ProjectionRunner::new(self.store().clone())
            .with_batch_size(2)
            .catch_up(&*self.graph)
            .await
            .expect("the graph folds")
    }

    /// Runs `command` on release `name` as `who`, a minute later: the state after, or the
    /// refusal. A refused command must leave the stream as it was.
    pub(crate) async fn try_as(
        &mut self,
        who: &str,
        name: &str,
        command: &ReleaseCommand,
    ) -> Result<Release, ReleaseRefusal> {
        self.now += TimeDelta::minutes(1);
        let stream = Release::stream(&id::<Reference, _>(name)).expect("valid");
        let before = self.releases.load(&stream).await.expect("loads");
        let ctx = Context::new(self.now, &self.ids);
        let meta = CommandMeta::new(Actor::new(who).expect("valid"));
        match self.releases.execute(&stream, command, &meta, &ctx).await {
            Ok(executed) => Ok(executed.state),
            Err(CommandError::Rejected(refusal)) => {
                let after = self.releases.load(&stream).await.expect("loads");
                assert_eq!(after.version, before.version, "{refusal}: appended");
                assert_eq!(after.state, before.state, "{refusal}: state moved");
                Err(refusal)
            }
            Err(other) => panic!("{} on {name}: {other}", command.name()),
        }
    }

    /// Runs `command` on release `name` as `who`; it must be accepted.
    pub(crate) async fn run_as(
        &mut self,
        who: &str,
        name: &str,
        command: ReleaseCommand,
    ) -> Release {
        self.try_as(who, name, &command)
            .await
            .unwrap_or_else(|e| panic!("{} on {name}: {e}", command.name()))
    }

    /// Runs `command` on release `name` as `who`; it must be refused (leaving the stream
    /// untouched): the reason.
    pub(crate) async fn refused(
        &mut self,
        who: &str,
        name: &str,
        command: ReleaseCommand,
    ) -> RefusalReason<ReleaseRule> {
        match self.try_as(who, name, &command).await {
            Ok(_) => panic!("{} on {name} by {who} should be refused", command.name()),
            Err(refusal) => {
                assert_eq!(refusal.command, command.name());
                refusal.reason
            }
        }
    }
}

/// An event as recorded: who recorded it and when.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) event: ReleaseEvent,
    pub(crate) actor: Actor,
    pub(crate) at: DateTime<Utc>,
}

/// One release decided on in memory: each accepted command's events folded into the state.
#[derive(Clone)]
pub(crate) struct Desk {
    pub(crate) state: Release,
    pub(crate) events: Vec<Recorded>,
    pub(crate) policy: Arc<ReleasePolicy>,
    pub(crate) now: DateTime<Utc>,
}

impl Desk {
    /// No release yet, under `policy`, at [`t0`].
    pub(crate) fn new(policy: Arc<ReleasePolicy>) -> Self {
        Self {
            state: Release::default(),
            events: Vec::new(),
            policy,
            now: t0(),
        }
    }

    /// The events `command` would record if `who` ran it now (nothing is recorded).
    pub(crate) fn decide(
        &self,
        who: &str,
        command: &ReleaseCommand,
    ) -> Result<Vec<ReleaseEvent>, ReleaseRefusal> {
        let ids = SequentialIds::new(1);
        let actor = Actor::new(who).expect("valid");
        let ctx = Context::new(self.now, &ids).with_actor(&actor);
        ReleaseManagement::decide(&self.state, command, &self.policy, &ctx)
    }

    /// Runs `command` as `who` now: the events recorded, or the refusal.
    pub(crate) fn run(
        &mut self,
        who: &str,
        command: &ReleaseCommand,
    ) -> Result<Vec<ReleaseEvent>, ReleaseRefusal> {
        let events = self.decide(who, command)?;
        let actor = Actor::new(who).expect("valid");
        for event in &events {
            self.state.evolve(event, Stamp::new(Some(&actor), self.now));
            self.events.push(Recorded {
                event: event.clone(),
                actor: actor.clone(),
                at: self.now,
            });
        }
        Ok(events)
    }

    /// Runs `command` as `who`; it must be accepted.
    pub(crate) fn ok(&mut self, who: &str, command: &ReleaseCommand) {
        if let Err(refusal) = self.run(who, command) {
            panic!("{} should be accepted: {refusal}", command.name());
        }
    }

    /// The state rebuilt from the recorded events, each written to its stored form and read
    /// back, stamped as recorded.
    pub(crate) fn replayed(&self) -> Release {
        let mut state = Release::default();
        for recorded in &self.events {
            let payload = recorded.event.to_payload().expect("encodes");
            let event =
                ReleaseEvent::from_payload(&recorded.event.event_type(), payload).expect("decodes");
            state.evolve(&event, Stamp::new(Some(&recorded.actor), recorded.at));
        }
        state
    }
}
