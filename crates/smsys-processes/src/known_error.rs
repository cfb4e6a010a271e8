//! Known error management (ISO/IEC 20000-1 8.6.3): known errors recorded and published to
//! other processes, under a lifecycle held as data (`known_error/lifecycle.toml` by default),
//! and the [`KnownErrorCatalogue`](catalogue::KnownErrorCatalogue) other processes consult.
//!
//! A known error is logged as a draft (often from a problem, [`LogKnownError::problem`]) with
//! its symptom and, when known, its root cause and workaround. [`KnownErrorCommand::Publish`]
//! makes it version 1, once a symptom and a workaround are recorded (guard
//! `content_complete`); [`KnownErrorCommand::Revise`] edits a draft, or makes the next
//! published version of a published one; [`KnownErrorCommand::Retire`] withdraws it, possibly
//! naming the known error that supersedes it. A draft dropped by the shared cancel is
//! discarded. The shared commands (classification, whose category incidents are matched on,
//! assignment, notes, links to CIs and records, attributes) work as for every record.
//!
//! ```
//! use smsys_core::records::{Channel, KnownError, RecordKind};
//! use smsys_core::{Aggregate, Context, EventSourced, SequentialIds};
//! use smsys_processes::known_error::{KnownErrorCommand, LogKnownError};
//! use smsys_processes::{KnownErrorManagement, KnownErrorPolicy, LogRecord};
//!
//! let policy = KnownErrorPolicy::default();
//! let ids = SequentialIds::new(0);
//! let ctx = Context::new(chrono::DateTime::UNIX_EPOCH, &ids);
//! let log = KnownErrorCommand::Log(
//!     LogKnownError::new(
//!         LogRecord::new(
//!             "KE-0001".parse()?, "ana".parse()?, Channel::Portal, "email".parse()?,
//!             "mail bounces under load",
//!         ),
//!         "mail bounces with 451",
//!     )
//!     .workaround("flush the queue"),
//! );
//! let mut state = KnownError::default();
//! for event in KnownErrorManagement::decide(&state, &log, &policy, &ctx)? {
//!     state.evolve(&event, ctx.stamp());
//! }
//! let events = KnownErrorManagement::decide(&state, &KnownErrorCommand::Publish, &policy, &ctx)?;
//! assert_eq!(events.len(), 2); // published, transitioned
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod catalogue;

use smsys_core::records::known_error::{KnownErrorContent, KnownErrorLogged, PublicationEvent};
use smsys_core::records::{
    CiId, KnownError, KnownErrorEvent, RecordKind, Reference, ServiceId, TransitionDetail,
    TypedEvent,
};
use smsys_core::{Aggregate, Context};

use crate::lifecycle::{Guard, Lifecycle, Trigger, TriggerRule, Vocabulary, desk_triggers};
use crate::record::{
    Decision, LogRecord, RecordCommand, RecordPolicy, RecordRules, Refusal, RefusalReason,
    decide_shared, log_record, refuse, required, transition,
};

const DEFAULT_LIFECYCLE: &str = include_str!("known_error/lifecycle.toml");

/// The reference known error lifecycle (`known_error/lifecycle.toml`): draft, published,
/// retired, discarded.
pub fn default_lifecycle() -> Lifecycle {
    Lifecycle::from_toml(DEFAULT_LIFECYCLE, &KnownErrorManagement::vocabulary())
        .unwrap_or_else(|e| unreachable!("the shipped known error lifecycle is valid: {e}"))
}

impl Trigger {
    /// Published to other processes (known errors): from a draft into an active status.
    pub const PUBLISH: Trigger = Trigger::from_static("publish");
    /// Retired, no longer offered (known errors): into a closed status, no resolution needed.
    pub const RETIRE: Trigger = Trigger::from_static("retire");
}

impl Guard {
    /// A symptom and a workaround are recorded (known errors).
    pub const CONTENT_COMPLETE: Guard = Guard::from_static("content_complete");
}

/// What known error management consults.
#[derive(Debug, Clone)]
pub struct KnownErrorPolicy {
    /// Lifecycles, matrix, attributes.
    pub record: RecordPolicy,
}

impl Default for KnownErrorPolicy {
    /// The reference lifecycle and matrix.
    fn default() -> Self {
        Self {
            record: RecordPolicy::new(default_lifecycle()),
        }
    }
}

/// What a known error is logged with: the shared fields (the caller is its author), the
/// problem it came from and its first content.
#[derive(Debug, Clone, PartialEq)]
pub struct LogKnownError {
    /// What every record is logged with; its affected CIs are the known error's.
    pub record: LogRecord,
    /// The problem it came from.
    pub problem: Option<Reference>,
    /// What users and the service desk observe (required).
    pub symptom: String,
    /// The root cause, once known.
    pub root_cause: Option<String>,
    /// What to do until the cause is removed.
    pub workaround: Option<String>,
    /// Services it affects beyond the logged one.
    pub affected_services: Vec<ServiceId>,
}

impl LogKnownError {
    /// A draft with `symptom`; no problem, root cause, workaround or further services.
    pub fn new(record: LogRecord, symptom: impl Into<String>) -> Self {
        Self {
            record,
            problem: None,
            symptom: symptom.into(),
            root_cause: None,
            workaround: None,
            affected_services: Vec::new(),
        }
    }

    /// From problem `problem`.
    pub fn problem(mut self, problem: Reference) -> Self {
        self.problem = Some(problem);
        self
    }

    /// With a root cause.
    pub fn root_cause(mut self, root_cause: impl Into<String>) -> Self {
        self.root_cause = Some(root_cause.into());
        self
    }

    /// With a workaround.
    pub fn workaround(mut self, workaround: impl Into<String>) -> Self {
        self.workaround = Some(workaround.into());
        self
    }

    /// Affecting these services beyond the logged one.
    pub fn affected_services(mut self, services: Vec<ServiceId>) -> Self {
        self.affected_services = services;
        self
    }
}

/// What can be asked of a known error.
#[derive(Debug, Clone, PartialEq)]
pub enum KnownErrorCommand {
    /// Record it as a draft.
    Log(LogKnownError),
    /// A command every record accepts.
    Record(RecordCommand),
    /// Revise the content: a draft is edited; a published known error gets its next version.
    /// Refused once retired or discarded, and when nothing would change.
    Revise {
        /// What users and the service desk observe (required).
        symptom: String,
        /// The root cause, once known.
        root_cause: Option<String>,
        /// What to do until the cause is removed (required once published).
        workaround: Option<String>,
        /// The configuration items it affects.
        affected_cis: Vec<CiId>,
        /// Services it affects beyond the logged one.
        affected_services: Vec<ServiceId>,
        /// Why (required once published: the note of the new version).
        reason: String,
    },
    /// Publish the draft as version 1 (guard `content_complete` in the reference lifecycle).
    Publish,
    /// Retire it: no longer offered to other processes.
    Retire {
        /// Why (required).
        reason: String,
        /// The known error that replaces it, if any (not itself).
        superseded_by: Option<Reference>,
    },
}

impl From<RecordCommand> for KnownErrorCommand {
    fn from(command: RecordCommand) -> Self {
        KnownErrorCommand::Record(command)
    }
}

impl KnownErrorCommand {
    /// The command's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            KnownErrorCommand::Log(_) => "log",
            KnownErrorCommand::Record(c) => c.name(),
            KnownErrorCommand::Revise { .. } => "revise",
            KnownErrorCommand::Publish => "publish",
            KnownErrorCommand::Retire { .. } => "retire",
        }
    }
}

/// Why known error management refuses beyond the shared reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnownErrorRule {
    /// A known error cannot supersede itself.
    #[error("a known error cannot be superseded by itself ({0})")]
    SupersededByItself(Reference),
    /// A revision of a published known error must keep a symptom and a workaround.
    #[error("a published known error keeps a symptom and a workaround; the revision lacks {0}")]
    IncompleteRevision(&'static str),
}

/// A refused known error command.
pub type KnownErrorRefusal = Refusal<KnownErrorRule>;

/// Known error management: `decide` for [`KnownError`]s.
#[derive(Debug, Clone, Copy)]
pub struct KnownErrorManagement;

impl RecordRules for KnownErrorManagement {
    type Record = KnownError;
    type Policy = KnownErrorPolicy;
    type Rule = KnownErrorRule;

    fn vocabulary() -> Vocabulary {
        use smsys_core::records::Phase::{Active, Closed, New, Pending};
        let mut triggers = desk_triggers();
        triggers.extend([
            TriggerRule {
                trigger: Trigger::PUBLISH,
                from: &[New],
                to: &[Active],
            },
            TriggerRule {
                trigger: Trigger::RETIRE,
                from: &[New, Active, Pending],
                to: &[Closed],
            },
        ]);
        Vocabulary {
            record_type: KnownError::RECORD_TYPE,
            triggers,
            guards: vec![Guard::RESOLUTION_RECORDED, Guard::CONTENT_COMPLETE],
            stages: Vec::new(),
        }
    }

    fn record_policy(policy: &KnownErrorPolicy) -> &RecordPolicy {
        &policy.record
    }

    fn guard_holds(record: &KnownError, guard: &Guard) -> bool {
        *guard == Guard::CONTENT_COMPLETE && record.content().is_complete()
    }
}

type Reason = RefusalReason<KnownErrorRule>;

fn decide_own(
    state: &KnownError,
    command: &KnownErrorCommand,
    policy: &KnownErrorPolicy,
    ctx: &Context<'_>,
) -> Result<Vec<KnownErrorEvent>, Reason> {
    use RefusalReason as R;
    let record = state.record();
    let phase = record.phase().ok_or(R::NotLogged)?;
    if phase.is_final() {
        return Err(R::Final(phase));
    }
    let mut d = Decision::new(state, ctx);
    let step = |state: &KnownError, trigger: &Trigger| {
        transition::<KnownErrorManagement>(
            state,
            policy,
            trigger,
            None,
            TransitionDetail::Plain,
            ctx.now(),
        )
    };
    match command {
        KnownErrorCommand::Revise {
            symptom,
            root_cause,
            workaround,
            affected_cis,
            affected_services,
            reason,
        } => {
            required(symptom, "symptom")?;
            let content = KnownErrorContent {
                symptom: symptom.clone(),
                root_cause: root_cause.clone(),
                workaround: workaround.clone(),
                affected_cis: affected_cis.clone(),
                affected_services: affected_services.clone(),
            };
            if content == *state.content() {
                return Err(R::Unchanged);
            }
            if state.published().is_some() {
                required(reason, "revision reason")?;
                if !content.is_complete() {
                    return Err(R::Rule(KnownErrorRule::IncompleteRevision("a workaround")));
                }
            }
            d.push(TypedEvent::Own(PublicationEvent::ContentRevised {
                symptom: content.symptom,
                root_cause: content.root_cause,
                workaround: content.workaround,
                affected_cis: content.affected_cis,
                affected_services: content.affected_services,
                reason: reason.clone(),
            }));
        }
        KnownErrorCommand::Publish => {
            let moved = step(state, &Trigger::PUBLISH)?;
            d.push(TypedEvent::Own(PublicationEvent::Published {
                version: state.version().next(),
            }));
            d.push(moved);
        }
        KnownErrorCommand::Retire {
            reason,
            superseded_by,
        } => {
            required(reason, "retirement reason")?;
            if let Some(by) = superseded_by
                .as_ref()
                .filter(|by| record.reference() == Some(by))
            {
                return Err(R::Rule(KnownErrorRule::SupersededByItself(by.clone())));
            }
            let moved = step(state, &Trigger::RETIRE)?;
            d.push(TypedEvent::Own(PublicationEvent::Retired {
                reason: reason.clone(),
                superseded_by: superseded_by.clone(),
            }));
            d.push(moved);
        }
        KnownErrorCommand::Log(_) | KnownErrorCommand::Record(_) => {}
    }
    Ok(d.into_events())
}

fn log(
    state: &KnownError,
    input: &LogKnownError,
    policy: &KnownErrorPolicy,
    ctx: &Context<'_>,
) -> Result<Vec<KnownErrorEvent>, Reason> {
    let logged = log_record::<KnownErrorManagement>(state, &input.record, policy, ctx)?;
    required(&input.symptom, "symptom")?;
    Ok(vec![TypedEvent::Logged(KnownErrorLogged {
        record: logged,
        problem: input.problem.clone(),
        symptom: input.symptom.clone(),
        root_cause: input.root_cause.clone(),
        workaround: input.workaround.clone(),
        affected_services: input.affected_services.clone(),
    })])
}

impl Aggregate for KnownErrorManagement {
    type State = KnownError;
    type Services = KnownErrorPolicy;
    type Command = KnownErrorCommand;
    type Rejection = KnownErrorRefusal;

    fn decide(
        state: &KnownError,
        command: &KnownErrorCommand,
        policy: &KnownErrorPolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<KnownErrorEvent>, KnownErrorRefusal> {
        let decided = match command {
            KnownErrorCommand::Log(input) => log(state, input, policy, ctx),
            KnownErrorCommand::Record(c) => decide_shared::<Self>(state, c, policy, ctx),
            KnownErrorCommand::Revise { .. }
            | KnownErrorCommand::Publish
            | KnownErrorCommand::Retire { .. } => decide_own(state, command, policy, ctx),
        };
        decided.map_err(|reason| refuse::<Self>(state, command.name(), reason))
    }
}
