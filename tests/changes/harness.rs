//! What the change tests share: the people and groups, a change's inputs, the policy, a board
//! on a store (commands through the command handler) and a desk in memory (decide, then
//! evolve, keeping every event recorded with who recorded it and when).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys::core::records::change::{ChangePlan, ChangeWindow};
use smsys::core::records::{
    Change, ChangeEvent, ChangeKind, Channel, Level, RecordKind, Reference,
};
use smsys::core::{
    Actor, Aggregate, CommandHandler, CommandMeta, Context, DomainEvent, EventSourced, EventStore,
    SequentialIds, Stamp,
};
use smsys::processes::LogRecord;
use smsys::processes::change::{
    ApprovalPolicy, AssessChange, ChangeCommand, ChangeManagement, ChangePolicy, ChangeRefusal,
    ChangeTemplate, ChangeTemplates, LogChange,
};
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

/// The requester of every change.
pub(crate) const REQUESTER: &str = "rita";
/// The implementer the first plan names.
pub(crate) const IMPLEMENTER: &str = "ivan";

/// The reference approval policy with members: `rita` (the requester) and `carl` manage
/// changes, `carl` and `dana` sit on the CAB, `carl`, `erin` and `ivan` (the implementer) on
/// the emergency CAB; `zoe` is in no group.
pub(crate) fn approvals() -> ApprovalPolicy {
    ApprovalPolicy::reference()
        .with_members(&id("change-managers"), [id("rita"), id("carl")])
        .and_then(|p| p.with_members(&id("cab"), [id("carl"), id("dana")]))
        .and_then(|p| p.with_members(&id("ecab"), [id("carl"), id("erin"), id("ivan")]))
        .expect("groups exist")
}

/// Template `restart-mx` at version `version`, implemented as `implementation`.
pub(crate) fn template(version: u32, implementation: &str) -> ChangeTemplate {
    ChangeTemplate {
        name: "restart-mx".into(),
        version,
        summary: "Restart a mail server".into(),
        implementation: implementation.into(),
        remediation: "start the previous binary".into(),
        test_plan: String::new(),
        withdrawn: false,
    }
}

/// Template `restart-mx`, versions 1 and 2 (current).
pub(crate) fn templates() -> ChangeTemplates {
    ChangeTemplates::new()
        .with(template(1, "restart"))
        .and_then(|t| t.with(template(2, "drain, restart, undrain")))
        .expect("valid")
}

/// The default policy with [`approvals`] and [`templates`].
pub(crate) fn policy() -> ChangePolicy {
    ChangePolicy::default()
        .with_approvals(approvals())
        .with_templates(templates())
}

/// The shared fields of change `name`, requested by `rita` on `mx-01`.
pub(crate) fn record(name: &str) -> LogRecord {
    LogRecord::new(
        id(name),
        id(REQUESTER),
        Channel::Portal,
        id("email"),
        "patch the mail server",
    )
    .affected_cis(vec![id("mx-01")])
}

/// Change `name` of `kind`, without a plan.
pub(crate) fn log(name: &str, kind: ChangeKind) -> LogChange {
    LogChange::new(record(name), kind)
}

/// Change `name` of `kind` with the first plan; a standard one from template `restart-mx`
/// (whose plan it takes).
pub(crate) fn log_planned(name: &str, kind: ChangeKind) -> ChangeCommand {
    ChangeCommand::log(match kind {
        ChangeKind::Standard => LogChange::standard(record(name), "restart-mx"),
        ChangeKind::Normal | ChangeKind::Emergency => log(name, kind).plan(plan(IMPLEMENTER)),
    })
}

/// A plan on `mx-01` implemented by `implementer`.
pub(crate) fn plan(implementer: &str) -> ChangePlan {
    ChangePlan {
        cis: vec![id("mx-01")],
        implementation: "apply the patch, restart".into(),
        remediation: "reinstall the previous package".into(),
        test_plan: "send a test mail".into(),
        implementer: Some(id(implementer)),
        ci_updates: Vec::new(),
    }
}

/// A plan that keeps the current version of template `restart-mx`, implemented by
/// `implementer` (none for `None`).
pub(crate) fn template_plan(implementer: Option<&str>) -> ChangePlan {
    let mut plan = template(2, "drain, restart, undrain").plan(vec![id("mx-01")]);
    plan.implementer = implementer.map(id);
    plan
}

/// A window of `hours` from `start`, planned in Paris.
pub(crate) fn window(start: DateTime<Utc>, hours: i64) -> ChangeWindow {
    ChangeWindow {
        start,
        end: start + TimeDelta::hours(hours),
        time_zone: "Europe/Paris".into(),
    }
}

/// An assessment of `probability` and `impact` (high and high: major).
pub(crate) fn assess(probability: Level, impact: Level) -> ChangeCommand {
    ChangeCommand::Assess(AssessChange {
        probability,
        impact,
        benefit: "closes CVE-2026-1".into(),
        cost: "2 hours".into(),
        feasibility: "routine".into(),
    })
}

/// An assessment of low probability and medium impact: not major.
pub(crate) fn assessment() -> ChangeCommand {
    assess(Level::Low, Level::Medium)
}

/// Change management on an in-memory store, commands through the command handler.
pub(crate) struct Board {
    changes: CommandHandler<ChangeManagement>,
    ids: SequentialIds,
    now: DateTime<Utc>,
}

impl Board {
    /// A board under `policy`, at [`t0`].
    pub(crate) fn new(policy: ChangePolicy) -> Self {
        let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
        Self {
            changes: CommandHandler::new(store, policy),
            ids: SequentialIds::new(1),
            now: t0(),
        }
    }

    /// Runs `command` on change `name` as `who`, a minute later; the refusal as text.
    pub(crate) async fn try_as(
        &mut self,
        who: &str,
        name: &str,
        command: ChangeCommand,
    ) -> Result<(), String> {
        self.now += TimeDelta::minutes(1);
        let stream = Change::stream(&id::<Reference, _>(name)).expect("valid");
        let ctx = Context::new(self.now, &self.ids);
        let meta = CommandMeta::new(Actor::new(who).expect("valid"));
        let run = self.changes.execute(&stream, &command, &meta, &ctx);
        run.await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Runs `command` on change `name` as `who`; it must be accepted.
    pub(crate) async fn run_as(&mut self, who: &str, name: &str, command: ChangeCommand) {
        let what = command.name();
        self.try_as(who, name, command)
            .await
            .unwrap_or_else(|e| panic!("{what} on {name}: {e}"));
    }

    /// The store the board writes to.
    pub(crate) fn store(&self) -> &Arc<dyn EventStore> {
        self.changes.store()
    }

    /// The state of change `name` as the store holds it.
    pub(crate) async fn state(&self, name: &str) -> Change {
        let stream = Change::stream(&id::<Reference, _>(name)).expect("valid");
        self.changes.load(&stream).await.expect("loads").state
    }
}

/// An event as recorded: who recorded it and when.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) event: ChangeEvent,
    pub(crate) actor: Actor,
    pub(crate) at: DateTime<Utc>,
}

/// One change decided on in memory: each accepted command's events folded into the state.
#[derive(Clone)]
pub(crate) struct Desk {
    pub(crate) state: Change,
    pub(crate) events: Vec<Recorded>,
    pub(crate) policy: Arc<ChangePolicy>,
    pub(crate) now: DateTime<Utc>,
}

impl Desk {
    /// No change yet, under `policy`, at [`t0`].
    pub(crate) fn new(policy: Arc<ChangePolicy>) -> Self {
        Self {
            state: Change::default(),
            events: Vec::new(),
            policy,
            now: t0(),
        }
    }

    /// The events `command` would record if `who` ran it now (nothing is recorded).
    pub(crate) fn decide(
        &self,
        who: &str,
        command: &ChangeCommand,
    ) -> Result<Vec<ChangeEvent>, ChangeRefusal> {
        let ids = SequentialIds::new(1);
        let actor = Actor::new(who).expect("valid");
        let ctx = Context::new(self.now, &ids).with_actor(&actor);
        ChangeManagement::decide(&self.state, command, &self.policy, &ctx)
    }

    /// Runs `command` as `who` a minute later: the events recorded, or the refusal.
    pub(crate) fn run(
        &mut self,
        who: &str,
        command: &ChangeCommand,
    ) -> Result<Vec<ChangeEvent>, ChangeRefusal> {
        self.now += TimeDelta::minutes(1);
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
    pub(crate) fn ok(&mut self, who: &str, command: &ChangeCommand) {
        if let Err(refusal) = self.run(who, command) {
            panic!("{} should be accepted: {refusal}", command.name());
        }
    }

    /// The state rebuilt from the recorded events, each written to its stored form and read
    /// back, stamped as recorded.
    pub(crate) fn replayed(&self) -> Change {
        let mut state = Change::default();
        for recorded in &self.events {
            let payload = recorded.event.to_payload().expect("encodes");
            let event =
                ChangeEvent::from_payload(&recorded.event.event_type(), payload).expect("decodes");
            state.evolve(&event, Stamp::new(Some(&recorded.actor), recorded.at));
        }
        state
    }
}
