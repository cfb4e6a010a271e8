//! Problem management (ISO/IEC 20000-1 8.6.3): the shared record rules plus root-cause
//! analysis, workarounds, risk acceptance and duplicates, under a lifecycle held as data
//! (`problem/lifecycle.toml` by default).
//!
//! A problem ends in one of four ways, each with its resolution code
//! ([`ProblemResolution`]): a fix (`resolve`, `fix_applied` or a product's own code), an
//! accepted risk ([`ProblemCommand::AcceptRisk`], `risk_accepted`), a duplicate of another
//! problem ([`ProblemCommand::MarkDuplicate`], `duplicate`), or a cancellation (`cancel`, into
//! the cancelled phase). The codes of the last three are recorded only by their own commands,
//! never by a plain resolve, so each stands beside the event that is its evidence.

use smsys_core::records::problem::ProblemControlEvent;
use smsys_core::records::{
    CiId, Problem, ProblemEvent, RecordKind, Reference, TransitionDetail, TypedEvent,
};
use smsys_core::{Aggregate, Context};

use crate::lifecycle::{Guard, Lifecycle, Trigger, TriggerRule, Vocabulary, desk_triggers};
use crate::record::{
    Decision, LogRecord, RecordCommand, RecordPolicy, RecordRules, Refusal, RefusalReason,
    decide_shared, log_record, refuse, required, transition,
};

const DEFAULT_LIFECYCLE: &str = include_str!("problem/lifecycle.toml");

/// The reference problem lifecycle (`problem/lifecycle.toml`).
pub fn default_lifecycle() -> Lifecycle {
    Lifecycle::from_toml(DEFAULT_LIFECYCLE, &ProblemManagement::vocabulary())
        .unwrap_or_else(|e| unreachable!("the shipped problem lifecycle is valid: {e}"))
}

impl Trigger {
    /// Root-cause analysis starts (problems): from assessment, or back from a fix.
    pub const ANALYSE: Trigger = Trigger::from_static("analyse");
    /// The fix starts (problems): from analysis.
    pub const START_FIX: Trigger = Trigger::from_static("start_fix");
    /// The risk is accepted (problems): into a resolved status.
    pub const ACCEPT_RISK: Trigger = Trigger::from_static("accept_risk");
    /// Marked the duplicate of another problem (problems): into a resolved status.
    pub const MARK_DUPLICATE: Trigger = Trigger::from_static("mark_duplicate");
}

impl Guard {
    /// A root cause is recorded (problems).
    pub const ROOT_CAUSE_RECORDED: Guard = Guard::from_static("root_cause_recorded");
    /// A risk acceptance is recorded (problems).
    pub const RISK_ACCEPTED: Guard = Guard::from_static("risk_accepted");
    /// The problem names another problem it duplicates (problems).
    pub const DUPLICATE_NAMED: Guard = Guard::from_static("duplicate_named");
    /// A resolution or an accepted risk is recorded (problems).
    pub const RESOLUTION_OR_RISK_ACCEPTED: Guard =
        Guard::from_static("resolution_or_risk_accepted");
}

/// How a problem ended: the resolution codes the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemResolution {
    /// A fix was applied (a plain resolve; a product may use codes of its own instead).
    FixApplied,
    /// The risk of leaving the cause in place was accepted ([`ProblemCommand::AcceptRisk`]).
    RiskAccepted,
    /// Another problem survives ([`ProblemCommand::MarkDuplicate`]).
    Duplicate,
    /// Cancelled (the shared cancel, into the cancelled phase, with its reason).
    Cancelled,
}

impl ProblemResolution {
    /// Every code.
    pub const ALL: [ProblemResolution; 4] = [
        ProblemResolution::FixApplied,
        ProblemResolution::RiskAccepted,
        ProblemResolution::Duplicate,
        ProblemResolution::Cancelled,
    ];

    /// The code as recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemResolution::FixApplied => "fix_applied",
            ProblemResolution::RiskAccepted => "risk_accepted",
            ProblemResolution::Duplicate => "duplicate",
            ProblemResolution::Cancelled => "cancelled",
        }
    }

    /// Whether only its own command records it (every code but `fix_applied`).
    pub fn is_reserved(self) -> bool {
        self != ProblemResolution::FixApplied
    }
}

/// What problem management consults.
#[derive(Debug, Clone)]
pub struct ProblemPolicy {
    /// Lifecycles, matrix, auto-close, attributes.
    pub record: RecordPolicy,
}

impl Default for ProblemPolicy {
    /// The reference lifecycle and matrix.
    fn default() -> Self {
        Self {
            record: RecordPolicy::new(default_lifecycle()),
        }
    }
}

/// What can be asked of a problem.
#[derive(Debug, Clone, PartialEq)]
pub enum ProblemCommand {
    /// Record it.
    Log(LogRecord),
    /// A command every record accepts.
    Record(RecordCommand),
    /// Start root-cause analysis (after assessment), or analyse again (after a failed fix).
    Analyse,
    /// Start the fix, once the root cause is recorded.
    StartFix,
    /// Record the root cause found (replacing an earlier one).
    RecordRootCause {
        /// What the cause is (required).
        cause: String,
        /// How it was found.
        method: String,
        /// The configuration items that contributed.
        contributing_cis: Vec<CiId>,
    },
    /// Record a workaround (replacing an earlier one), with or without the root cause.
    RecordWorkaround {
        /// What to do (required).
        text: String,
        /// Whether it is published to other processes.
        published: bool,
    },
    /// Accept the risk of leaving the cause in place: resolves the problem (`risk_accepted`).
    AcceptRisk {
        /// Why (required).
        reason: String,
    },
    /// Mark it the duplicate of another problem, which survives: resolves it (`duplicate`).
    MarkDuplicate {
        /// The surviving problem.
        of: Reference,
    },
}

impl From<RecordCommand> for ProblemCommand {
    fn from(command: RecordCommand) -> Self {
        ProblemCommand::Record(command)
    }
}

impl ProblemCommand {
    /// The command's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            ProblemCommand::Log(_) => "log",
            ProblemCommand::Record(c) => c.name(),
            ProblemCommand::Analyse => "analyse",
            ProblemCommand::StartFix => "start fix",
            ProblemCommand::RecordRootCause { .. } => "record root cause",
            ProblemCommand::RecordWorkaround { .. } => "record workaround",
            ProblemCommand::AcceptRisk { .. } => "accept risk",
            ProblemCommand::MarkDuplicate { .. } => "mark duplicate",
        }
    }
}

/// Why problem management refuses beyond the shared reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemRule {
    /// A problem cannot duplicate itself.
    #[error("a problem cannot be the duplicate of itself ({0})")]
    DuplicateOfItself(Reference),
    /// A resolve with a code only its own command records.
    #[error("resolution code {0} is recorded by its own command, not by a resolve")]
    ReservedCode(&'static str),
}

/// A refused problem command.
pub type ProblemRefusal = Refusal<ProblemRule>;

/// Problem management: `decide` for [`Problem`]s.
#[derive(Debug, Clone, Copy)]
pub struct ProblemManagement;

impl RecordRules for ProblemManagement {
    type Record = Problem;
    type Policy = ProblemPolicy;
    type Rule = ProblemRule;

    fn vocabulary() -> Vocabulary {
        use smsys_core::records::Phase::{Active, New, Pending, Resolved};
        let mut triggers = desk_triggers();
        triggers.extend([
            TriggerRule {
                trigger: Trigger::ANALYSE,
                from: &[New, Active, Pending],
                to: &[Active],
            },
            TriggerRule {
                trigger: Trigger::START_FIX,
                from: &[Active, Pending],
                to: &[Active],
            },
            TriggerRule {
                trigger: Trigger::ACCEPT_RISK,
                from: &[New, Active, Pending],
                to: &[Resolved],
            },
            TriggerRule {
                trigger: Trigger::MARK_DUPLICATE,
                from: &[New, Active, Pending],
                to: &[Resolved],
            },
        ]);
        Vocabulary {
            record_type: Problem::RECORD_TYPE,
            triggers,
            guards: vec![
                Guard::RESOLUTION_RECORDED,
                Guard::ROOT_CAUSE_RECORDED,
                Guard::RISK_ACCEPTED,
                Guard::DUPLICATE_NAMED,
                Guard::RESOLUTION_OR_RISK_ACCEPTED,
            ],
            stages: Vec::new(),
        }
    }

    fn record_policy(policy: &ProblemPolicy) -> &RecordPolicy {
        &policy.record
    }

    fn guard_holds(record: &Problem, guard: &Guard) -> bool {
        if *guard == Guard::ROOT_CAUSE_RECORDED {
            record.root_cause().is_some()
        } else if *guard == Guard::RISK_ACCEPTED {
            record.accepted_risk().is_some()
        } else if *guard == Guard::DUPLICATE_NAMED {
            record
                .duplicate_of()
                .is_some_and(|of| Some(of) != record.record().reference())
        } else if *guard == Guard::RESOLUTION_OR_RISK_ACCEPTED {
            record.record().resolution().is_some() || record.accepted_risk().is_some()
        } else {
            false
        }
    }
}

fn decide_own(
    state: &Problem,
    command: &ProblemCommand,
    policy: &ProblemPolicy,
    ctx: &Context<'_>,
) -> Result<Vec<ProblemEvent>, RefusalReason<ProblemRule>> {
    use RefusalReason as R;
    let record = state.record();
    let phase = record.phase().ok_or(R::NotLogged)?;
    if phase.is_final() {
        return Err(R::Final(phase));
    }
    let mut d = Decision::new(state, ctx);
    let step = |state: &Problem, trigger: &Trigger, detail| {
        transition::<ProblemManagement>(state, policy, trigger, None, detail, ctx.now())
    };
    let resolution = |code: ProblemResolution, notes: String| TransitionDetail::Resolution {
        code: code.as_str().to_owned(),
        notes,
    };
    match command {
        ProblemCommand::Analyse => {
            d.push(step(state, &Trigger::ANALYSE, TransitionDetail::Plain)?);
        }
        ProblemCommand::StartFix => {
            d.push(step(state, &Trigger::START_FIX, TransitionDetail::Plain)?);
        }
        ProblemCommand::RecordRootCause {
            cause,
            method,
            contributing_cis,
        } => {
            required(cause, "root cause")?;
            let unchanged = state.root_cause().is_some_and(|r| {
                r.cause == *cause && r.method == *method && r.contributing_cis == *contributing_cis
            });
            if unchanged {
                return Err(R::Unchanged);
            }
            d.push(TypedEvent::Own(ProblemControlEvent::RootCauseRecorded {
                cause: cause.clone(),
                method: method.clone(),
                contributing_cis: contributing_cis.clone(),
            }));
        }
        ProblemCommand::RecordWorkaround { text, published } => {
            required(text, "workaround")?;
            let unchanged = state
                .workaround()
                .is_some_and(|w| w.text == *text && w.published == *published);
            if unchanged {
                return Err(R::Unchanged);
            }
            d.push(TypedEvent::Own(ProblemControlEvent::WorkaroundRecorded {
                text: text.clone(),
                published: *published,
            }));
        }
        ProblemCommand::AcceptRisk { reason } => {
            required(reason, "risk acceptance reason")?;
            d.push(TypedEvent::Own(ProblemControlEvent::RiskAccepted {
                reason: reason.clone(),
            }));
            let detail = resolution(ProblemResolution::RiskAccepted, reason.clone());
            let moved = step(d.state(), &Trigger::ACCEPT_RISK, detail)?;
            d.push(moved);
        }
        ProblemCommand::MarkDuplicate { of } => {
            if record.reference() == Some(of) {
                return Err(R::Rule(ProblemRule::DuplicateOfItself(of.clone())));
            }
            d.push(TypedEvent::Own(ProblemControlEvent::MarkedDuplicate {
                of: of.clone(),
            }));
            let detail = resolution(ProblemResolution::Duplicate, format!("duplicate of {of}"));
            let moved = step(d.state(), &Trigger::MARK_DUPLICATE, detail)?;
            d.push(moved);
        }
        ProblemCommand::Log(_) | ProblemCommand::Record(_) => {}
    }
    Ok(d.into_events())
}

/// A resolve may not record a code that only its own command records.
fn check_resolve(command: &RecordCommand) -> Result<(), RefusalReason<ProblemRule>> {
    let RecordCommand::Resolve { code, .. } = command else {
        return Ok(());
    };
    match ProblemResolution::ALL
        .into_iter()
        .find(|r| r.is_reserved() && r.as_str() == code.trim())
    {
        Some(reserved) => Err(RefusalReason::Rule(ProblemRule::ReservedCode(
            reserved.as_str(),
        ))),
        None => Ok(()),
    }
}

impl Aggregate for ProblemManagement {
    type State = Problem;
    type Services = ProblemPolicy;
    type Command = ProblemCommand;
    type Rejection = ProblemRefusal;

    fn decide(
        state: &Problem,
        command: &ProblemCommand,
        policy: &ProblemPolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<ProblemEvent>, ProblemRefusal> {
        let decided = match command {
            ProblemCommand::Log(input) => {
                log_record::<Self>(state, input, policy, ctx).map(|l| vec![TypedEvent::Logged(l)])
            }
            ProblemCommand::Record(c) => {
                check_resolve(c).and_then(|()| decide_shared::<Self>(state, c, policy, ctx))
            }
            ProblemCommand::Analyse
            | ProblemCommand::StartFix
            | ProblemCommand::RecordRootCause { .. }
            | ProblemCommand::RecordWorkaround { .. }
            | ProblemCommand::AcceptRisk { .. }
            | ProblemCommand::MarkDuplicate { .. } => decide_own(state, command, policy, ctx),
        };
        decided.map_err(|reason| refuse::<Self>(state, command.name(), reason))
    }
}
