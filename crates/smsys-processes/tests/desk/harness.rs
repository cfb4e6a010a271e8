//! The harness every test module drives: a record of any type decided on in memory, with the
//! events it recorded (and who recorded them, when), and what each record type adds.

use std::fmt::Debug;

use chrono::{DateTime, TimeZone, Utc};
use smsys_core::records::incident::MajorIncidentEvent;
use smsys_core::records::known_error::PublicationEvent;
use smsys_core::records::problem::ProblemControlEvent;
use smsys_core::records::request::FulfilmentEvent;
use smsys_core::records::{
    AttributeName, Channel, RecordKind, RecordState, ServiceRequest, TypedEvent,
};
use smsys_core::{Actor, Aggregate, Context, DomainEvent, EventSourced, SequentialIds, Stamp};
use smsys_processes::attribute::{AttributeKind, AttributeSchema, AttributeSpec};
use smsys_processes::known_error::LogKnownError;
use smsys_processes::lifecycle::{LifecycleDefinition, LifecycleError};
use smsys_processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, KnownErrorCommand, KnownErrorManagement,
    KnownErrorPolicy, Lifecycle, LogRecord, ProblemCommand, ProblemManagement, ProblemPolicy,
    RecordCommand, RecordPolicy, RecordRules, Refusal, RefusalReason, RequestCommand,
    RequestManagement, RequestPolicy,
};

/// The instant every test starts at.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid")
}

/// A validated identifier (reference, person, group, service, ...).
pub(crate) fn id<T>(text: &str) -> T
where
    T: std::str::FromStr,
    T::Err: Debug,
{
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is a valid id: {e:?}"))
}

/// An actor (who runs a command).
pub(crate) fn actor(name: &str) -> Actor {
    Actor::new(name).expect("a valid actor")
}

/// An attribute name.
pub(crate) fn attribute(name: &str) -> AttributeName {
    AttributeName::new(name).expect("a valid attribute name")
}

/// Record `R-1`, called in by `ana` by email about the email service.
pub(crate) fn log_input() -> LogRecord {
    LogRecord::new(
        id("R-1"),
        id("ana"),
        Channel::Email,
        id("email"),
        "mail bounces",
    )
    .description("since 08:00")
    .affected_cis(vec![id("mx-01")])
}

/// The attribute schema of the test policies: `vendor`, free text.
pub(crate) fn vendor_schema() -> AttributeSchema {
    AttributeSchema::default().with(attribute("vendor"), AttributeSpec::new(AttributeKind::Text))
}

/// A record type's decider, and what the tests need beyond it.
pub(crate) trait Kind:
    Sized
    + RecordRules
    + Aggregate<
        State = <Self as RecordRules>::Record,
        Services = <Self as RecordRules>::Policy,
        Command: From<RecordCommand> + Clone + Debug,
        Rejection = Refusal<<Self as RecordRules>::Rule>,
    >
{
    /// Whether its lifecycle closes records that were never resolved (a known error is
    /// retired, not resolved).
    const CLOSES_UNRESOLVED: bool = false;

    /// The record type's default policy.
    fn default_policy() -> Self::Policy;
    /// Its default lifecycle.
    fn default_lifecycle() -> Lifecycle;
    /// The shared part of its policy, to change.
    fn record_policy_mut(policy: &mut Self::Policy) -> &mut RecordPolicy;
    /// Its log command for `input`.
    fn log(input: LogRecord) -> Self::Command;
    /// The command's name.
    fn command_name(command: &Self::Command) -> &'static str;
    /// One of each of its own commands.
    fn own_commands() -> Vec<Self::Command>;
    /// How the matrix names one of its own commands.
    fn label(command: &Self::Command) -> String {
        Self::command_name(command).into()
    }
    /// Its own events a record in `status` of the matrix has beyond the shared ones.
    fn own_setup(status: &str) -> Vec<<Self::Record as RecordKind>::Own>;
    /// One of its own commands, with what depends on the record filled in.
    fn adapt(command: &Self::Command, state: &Self::Record) -> Self::Command {
        let _ = state;
        command.clone()
    }

    /// The default policy plus a version 2 of the default lifecycle (same statuses) to migrate
    /// to, and the `vendor` attribute.
    fn policy() -> Self::Policy {
        let mut policy = Self::default_policy();
        let v2 = edited::<Self>(&Self::default_lifecycle(), |d| d.version = 2).expect("valid v2");
        let record = Self::record_policy_mut(&mut policy);
        *record = record
            .clone()
            .with_lifecycle(v2)
            .with_attributes(vendor_schema());
        policy
    }
}

/// `lifecycle` changed by `edit`, validated against the vocabulary of `K`.
pub(crate) fn edited<K: Kind>(
    lifecycle: &Lifecycle,
    edit: impl FnOnce(&mut LifecycleDefinition),
) -> Result<Lifecycle, LifecycleError> {
    let mut definition = lifecycle.definition().clone();
    edit(&mut definition);
    Lifecycle::new(definition, &K::vocabulary())
}

impl Kind for IncidentManagement {
    fn default_policy() -> IncidentPolicy {
        IncidentPolicy::default()
    }
    fn default_lifecycle() -> Lifecycle {
        smsys_processes::incident::default_lifecycle()
    }
    fn record_policy_mut(policy: &mut IncidentPolicy) -> &mut RecordPolicy {
        &mut policy.record
    }
    fn log(input: LogRecord) -> IncidentCommand {
        IncidentCommand::Log(input)
    }
    fn command_name(command: &IncidentCommand) -> &'static str {
        command.name()
    }
    fn own_commands() -> Vec<IncidentCommand> {
        vec![
            IncidentCommand::FlagMajor {
                reason: "all mail down".into(),
            },
            IncidentCommand::AssignMajorManager {
                manager: id("erin"),
            },
            IncidentCommand::InformManagement {
                audience: "cio".into(),
                summary: "mail down".into(),
            },
            IncidentCommand::RecordMajorReview {
                findings: "single mx".into(),
            },
        ]
    }
    fn own_setup(_status: &str) -> Vec<MajorIncidentEvent> {
        Vec::new()
    }
}

impl Kind for RequestManagement {
    fn default_policy() -> RequestPolicy {
        RequestPolicy::default()
    }
    fn default_lifecycle() -> Lifecycle {
        smsys_processes::request::default_lifecycle()
    }
    fn record_policy_mut(policy: &mut RequestPolicy) -> &mut RecordPolicy {
        &mut policy.record
    }
    fn log(input: LogRecord) -> RequestCommand {
        RequestCommand::Log {
            record: input,
            catalogue_item: "new-mailbox".into(),
            fulfilment_instructions: None,
        }
    }
    fn command_name(command: &RequestCommand) -> &'static str {
        command.name()
    }
    fn own_commands() -> Vec<RequestCommand> {
        vec![
            RequestCommand::RequestApproval {
                approvers: vec![id("carol"), id("dave")],
                quorum: 1,
            },
            RequestCommand::Approve,
            RequestCommand::Reject {
                reason: "no budget".into(),
            },
            RequestCommand::AddTask {
                task: "t1".into(),
                description: "licence".into(),
            },
            RequestCommand::FinishTask { task: "t0".into() },
        ]
    }
    /// Finishing a task finishes the first open one, if any.
    fn adapt(command: &RequestCommand, state: &ServiceRequest) -> RequestCommand {
        let open = state.tasks().iter().find(|(_, done)| !**done);
        match (command, open) {
            (RequestCommand::FinishTask { .. }, Some((task, _))) => {
                RequestCommand::FinishTask { task: task.clone() }
            }
            (other, _) => other.clone(),
        }
    }
    fn own_setup(status: &str) -> Vec<FulfilmentEvent> {
        let mut events = vec![FulfilmentEvent::TaskAdded {
            task: "t0".into(),
            description: "create mailbox".into(),
        }];
        if status == "awaiting_approval" {
            events.push(FulfilmentEvent::ApprovalRequested {
                approvers: vec![id("carol"), id("dave")],
                quorum: 1,
            });
        }
        events
    }
}

impl Kind for ProblemManagement {
    /// The reference policy with a week's review window (the matrix decides ten days after
    /// set-up).
    fn default_policy() -> ProblemPolicy {
        let mut policy = ProblemPolicy::default();
        policy.review.window = chrono::TimeDelta::days(7);
        policy
    }
    fn default_lifecycle() -> Lifecycle {
        smsys_processes::problem::default_lifecycle()
    }
    fn record_policy_mut(policy: &mut ProblemPolicy) -> &mut RecordPolicy {
        &mut policy.record
    }
    fn log(input: LogRecord) -> ProblemCommand {
        ProblemCommand::Log(input)
    }
    fn command_name(command: &ProblemCommand) -> &'static str {
        command.name()
    }
    /// Every own command; the duplicate twice: of another problem, and of itself (`R-1`); a
    /// review of the week after set-up.
    fn own_commands() -> Vec<ProblemCommand> {
        vec![
            ProblemCommand::Analyse,
            ProblemCommand::StartFix,
            ProblemCommand::RecordRootCause {
                cause: "mx queue fills on retries".into(),
                method: "five whys".into(),
                contributing_cis: vec![id("mx-01")],
            },
            ProblemCommand::RecordWorkaround {
                text: "flush the queue".into(),
                published: true,
            },
            ProblemCommand::AcceptRisk {
                reason: "mx replaced next quarter".into(),
            },
            ProblemCommand::MarkDuplicate { of: id("PRB-9") },
            ProblemCommand::MarkDuplicate { of: id("R-1") },
            ProblemCommand::RecordReview {
                from: t0(),
                to: t0() + chrono::TimeDelta::days(7),
                recurrences: Vec::new(),
            },
            ProblemCommand::ReopenIneffective,
        ]
    }
    fn label(command: &ProblemCommand) -> String {
        if let ProblemCommand::MarkDuplicate { of } = command {
            format!("mark duplicate ({of})")
        } else {
            command.name().into()
        }
    }
    /// Past analysis, a problem has its root cause.
    fn own_setup(status: &str) -> Vec<ProblemControlEvent> {
        match status {
            "fix_in_progress" | "resolved" | "closed" => {
                vec![ProblemControlEvent::RootCauseRecorded {
                    cause: "mx queue fills".into(),
                    method: "logs".into(),
                    contributing_cis: vec![id("mx-01")],
                }]
            }
            _ => Vec::new(),
        }
    }
}

impl Kind for KnownErrorManagement {
    const CLOSES_UNRESOLVED: bool = true;

    fn default_policy() -> KnownErrorPolicy {
        KnownErrorPolicy::default()
    }
    fn default_lifecycle() -> Lifecycle {
        smsys_processes::known_error::default_lifecycle()
    }
    fn record_policy_mut(policy: &mut KnownErrorPolicy) -> &mut RecordPolicy {
        &mut policy.record
    }
    /// A draft from problem `PRB-1` with a symptom and a workaround (so publishable).
    fn log(input: LogRecord) -> KnownErrorCommand {
        KnownErrorCommand::Log(
            LogKnownError::new(input, "mail bounces with 451")
                .problem(id("PRB-1"))
                .workaround("flush the queue"),
        )
    }
    fn command_name(command: &KnownErrorCommand) -> &'static str {
        command.name()
    }
    /// Every own command: a revision keeping the workaround and one dropping it, publication,
    /// retirement superseded by another known error and by itself (`R-1`).
    fn own_commands() -> Vec<KnownErrorCommand> {
        vec![
            revise(Some("restart mx")),
            revise(None),
            KnownErrorCommand::Publish,
            KnownErrorCommand::Retire {
                reason: "fixed by CHG-7".into(),
                superseded_by: Some(id("KE-9")),
            },
            KnownErrorCommand::Retire {
                reason: "fixed by CHG-7".into(),
                superseded_by: Some(id("R-1")),
            },
        ]
    }
    fn label(command: &KnownErrorCommand) -> String {
        if let KnownErrorCommand::Revise {
            workaround: None, ..
        } = command
        {
            "revise (no workaround)".into()
        } else if let KnownErrorCommand::Retire {
            superseded_by: Some(by),
            ..
        } = command
        {
            format!("retire (by {by})")
        } else {
            command.name().into()
        }
    }
    /// Published (and retired) known errors were published as version 1.
    fn own_setup(status: &str) -> Vec<PublicationEvent> {
        match status {
            "published" | "retired" => vec![PublicationEvent::Published {
                version: smsys_core::records::known_error::KnownErrorVersion::FIRST,
            }],
            _ => Vec::new(),
        }
    }
}

/// A revision of `R-1`'s content: a root cause found, `workaround`, CIs `mx-01` and `mx-02`.
pub(crate) fn revise(workaround: Option<&str>) -> KnownErrorCommand {
    KnownErrorCommand::Revise {
        symptom: "mail bounces with 451".into(),
        root_cause: Some("mx queue fills on retries".into()),
        workaround: workaround.map(str::to_owned),
        affected_cis: vec![id("mx-01"), id("mx-02")],
        affected_services: vec![id("smtp-relay")],
        reason: "root cause found".into(),
    }
}

/// An event as recorded: who recorded it and when.
pub(crate) struct Recorded<K: Kind> {
    pub(crate) event: TypedEvent<K::Record>,
    pub(crate) actor: Option<Actor>,
    pub(crate) at: DateTime<Utc>,
}

/// One record of type `K`, decided on in memory.
pub(crate) struct Desk<K: Kind> {
    pub(crate) state: K::Record,
    pub(crate) events: Vec<Recorded<K>>,
    pub(crate) policy: K::Policy,
    pub(crate) now: DateTime<Utc>,
    /// Who runs the next commands (`None`: a decision without an actor).
    pub(crate) actor: Option<Actor>,
    ids: SequentialIds,
}

impl<K: Kind> Desk<K> {
    /// Given no record yet, under `policy`, the desk agent `frank` acting.
    pub(crate) fn with_policy(policy: K::Policy) -> Self {
        Self {
            state: K::Record::default(),
            events: Vec::new(),
            policy,
            now: t0(),
            actor: Some(actor("frank")),
            ids: SequentialIds::new(0),
        }
    }

    /// Given no record yet, under [`Kind::policy`].
    pub(crate) fn new() -> Self {
        Self::with_policy(K::policy())
    }

    /// Given record `R-1` logged by `frank` for `ana` under `policy`.
    pub(crate) fn logged_under(policy: K::Policy) -> Self {
        let mut desk = Self::with_policy(policy);
        desk.ok(K::log(log_input()));
        desk
    }

    /// Given record `R-1` logged by `frank` for `ana` under [`Kind::policy`].
    pub(crate) fn logged() -> Self {
        Self::logged_under(K::policy())
    }

    /// The shared part of the record.
    pub(crate) fn record(&self) -> &RecordState {
        self.state.record()
    }

    /// The shared part of the policy, to change.
    pub(crate) fn record_policy(&mut self) -> &mut RecordPolicy {
        K::record_policy_mut(&mut self.policy)
    }

    /// From now on, `name` acts.
    pub(crate) fn acting(&mut self, name: &str) -> &mut Self {
        self.actor = Some(actor(name));
        self
    }

    /// Given `events` were recorded (by the acting actor, now), whatever the rules say.
    pub(crate) fn given(&mut self, events: impl IntoIterator<Item = TypedEvent<K::Record>>) {
        for event in events {
            self.state
                .evolve(&event, Stamp::new(self.actor.as_ref(), self.now));
            self.events.push(Recorded {
                event,
                actor: self.actor.clone(),
                at: self.now,
            });
        }
    }

    /// Decides `command` and records the events: their names, or the refusal.
    pub(crate) fn run(
        &mut self,
        command: impl Into<K::Command>,
    ) -> Result<Vec<&'static str>, Refusal<K::Rule>> {
        let command = command.into();
        let ids = &self.ids;
        let ctx = Context::new(self.now, ids);
        let ctx = match &self.actor {
            Some(actor) => ctx.with_actor(actor),
            None => ctx,
        };
        let events = K::decide(&self.state, &command, &self.policy, &ctx)?;
        let names = events.iter().map(TypedEvent::name).collect();
        self.given(events);
        Ok(names)
    }

    /// When `command` runs, then it is accepted: the names of the events it recorded.
    pub(crate) fn ok(&mut self, command: impl Into<K::Command>) -> Vec<&'static str> {
        let command = command.into();
        let name = K::command_name(&command);
        self.run(command)
            .unwrap_or_else(|r| panic!("{name} should be accepted: {r}"))
    }

    /// When `command` runs, then it is refused: why.
    pub(crate) fn refused(&mut self, command: impl Into<K::Command>) -> RefusalReason<K::Rule> {
        let command = command.into();
        let name = K::command_name(&command);
        let before = self.events.len();
        let reason = match self.run(command) {
            Ok(events) => panic!("{name} should be refused, recorded {events:?}"),
            Err(refusal) => refusal.reason,
        };
        assert_eq!(self.events.len(), before, "a refusal recorded events");
        reason
    }

    /// The state rebuilt from the recorded events, each written to its stored form and read
    /// back, stamped as recorded.
    pub(crate) fn replayed(&self) -> K::Record {
        let mut state = K::Record::default();
        for recorded in &self.events {
            let payload = recorded.event.to_payload().expect("encodes");
            let event = <K::Record as EventSourced>::Event::from_payload(
                &recorded.event.event_type(),
                payload,
            )
            .expect("decodes");
            state.evolve(&event, Stamp::new(recorded.actor.as_ref(), recorded.at));
        }
        state
    }
}

/// An incident desk.
pub(crate) type Incidents = Desk<IncidentManagement>;
/// A service request desk.
pub(crate) type Requests = Desk<RequestManagement>;
/// A problem desk.
pub(crate) type Problems = Desk<ProblemManagement>;
/// A known error desk.
pub(crate) type KnownErrors = Desk<KnownErrorManagement>;
