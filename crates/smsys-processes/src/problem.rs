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
//!
//! A fix is reviewed before the problem closes (guard `fix_reviewed` in the reference
//! lifecycle): [`ProblemCommand::RecordReview`] records the incidents that recurred over a
//! window after the resolution (the [`EffectivenessReviewer`] measures them from the
//! incident trends at planned intervals), and a fix that did not hold is reopened for
//! analysis with that evidence ([`ProblemCommand::ReopenIneffective`]).
//!
//! The cross-record policies (links mirrored onto both records, workarounds noted on linked
//! incidents, incidents awaiting a fixed problem resumed) are reactors in [`reactors`];
//! [`ProblemBoard`] keeps every problem's state in memory for the duplicate check and the
//! reviews.

mod board;
pub mod reactors;
mod review;

pub use board::{ProblemBoard, ProblemDirectory, ProblemStanding};
pub use review::{DueReview, EffectivenessReviewer, ReviewError, ReviewOutcome, ReviewPolicy};

use std::sync::Arc;

use chrono::{DateTime, Utc};

use smsys_core::records::problem::ProblemControlEvent;
use smsys_core::records::{
    CiId, Phase, Problem, ProblemEvent, RecordKind, Reference, TransitionDetail, TypedEvent,
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
    /// A fix, if that is how the problem was resolved, was reviewed and held (problems): an
    /// accepted risk, a duplicate or a cancellation has no fix to review.
    pub const FIX_REVIEWED: Guard = Guard::from_static("fix_reviewed");
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
    /// How many incidents may recur after a fix for the fix to count as effective, and the
    /// review window.
    pub review: ReviewPolicy,
    /// Where the problem a duplicate names is looked up: with one, marking a duplicate of an
    /// unknown problem or of one that is not open is refused; without one, only a duplicate
    /// of itself is refused.
    pub directory: Option<Arc<dyn ProblemDirectory>>,
}

impl Default for ProblemPolicy {
    /// The reference lifecycle and matrix, the default review policy, no directory.
    fn default() -> Self {
        Self {
            record: RecordPolicy::new(default_lifecycle()),
            review: ReviewPolicy::default(),
            directory: None,
        }
    }
}

impl ProblemPolicy {
    /// Checks the problems that duplicates name in `directory` (for instance a
    /// [`ProblemBoard`] following the store).
    pub fn with_directory(mut self, directory: Arc<dyn ProblemDirectory>) -> Self {
        self.directory = Some(directory);
        self
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
    /// Record the effectiveness review of the fix (while resolved by a fix, once per fix): the
    /// incidents matching the problem that recurred in the window `(from, to]`, which starts
    /// at the resolution and spans at least [`ReviewPolicy::window`]. The fix held when at
    /// most [`ReviewPolicy::tolerated_recurrences`] recurred.
    RecordReview {
        /// The window's start (exclusive): the resolution's instant.
        from: DateTime<Utc>,
        /// The window's end (inclusive): at least the policy's window after `from`, not after
        /// now.
        to: DateTime<Utc>,
        /// The incidents that recurred in the window.
        recurrences: Vec<Reference>,
    },
    /// Reopen for analysis a problem whose fix the latest review found did not hold; the
    /// reopen's reason cites the review's evidence.
    ReopenIneffective,
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
            ProblemCommand::RecordReview { .. } => "record review",
            ProblemCommand::ReopenIneffective => "reopen ineffective",
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
    /// The problem a duplicate names is not known to the directory.
    #[error("problem {0} is not known, so this cannot be its duplicate")]
    UnknownSurvivor(Reference),
    /// The problem a duplicate names is not open (resolved, closed, cancelled).
    #[error("problem {of} is {phase}, not open, so this cannot be its duplicate")]
    SurvivorNotOpen {
        /// The problem named.
        of: Reference,
        /// Its phase.
        phase: Phase,
    },
    /// Only a fix is reviewed: the problem is not resolved, or was resolved another way.
    #[error("there is no fix to review: {0}")]
    NoFixToReview(String),
    /// A review window that does not fit the resolution and now.
    #[error("review window ({from}, {to}] {why}")]
    ReviewWindow {
        /// Its start.
        from: DateTime<Utc>,
        /// Its end.
        to: DateTime<Utc>,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The current fix was reviewed already.
    #[error("the fix of {0} was reviewed already")]
    AlreadyReviewed(DateTime<Utc>),
    /// Reopening as ineffective needs a review of the current fix that found it did not hold.
    #[error("no review of the current fix found it ineffective")]
    NoIneffectiveReview,
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
                Guard::FIX_REVIEWED,
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
        } else if *guard == Guard::FIX_REVIEWED {
            match fixed_at(record) {
                Some(at) => record
                    .review()
                    .is_some_and(|r| r.effective && r.resolved_at == at),
                None => true,
            }
        } else {
            false
        }
    }
}

/// When the problem was resolved by a fix (a resolution whose code is not reserved), while
/// it stands resolved (or closed) that way.
fn fixed_at(problem: &Problem) -> Option<DateTime<Utc>> {
    problem.record().resolution().and_then(|r| {
        let reserved = ProblemResolution::ALL
            .into_iter()
            .any(|c| c.is_reserved() && c.as_str() == r.code.trim());
        (!reserved).then_some(r.at)
    })
}

/// Refuses a duplicate of a problem the directory does not know or that is not open.
fn check_survivor(policy: &ProblemPolicy, of: &Reference) -> Result<(), ProblemRule> {
    let Some(directory) = &policy.directory else {
        return Ok(());
    };
    match directory.standing(of) {
        None => Err(ProblemRule::UnknownSurvivor(of.clone())),
        Some(standing) if !standing.is_open() => Err(ProblemRule::SurvivorNotOpen {
            of: of.clone(),
            phase: standing.phase,
        }),
        Some(_) => Ok(()),
    }
}

/// The review event, if the window fits the fix and now.
fn review_event(
    state: &Problem,
    policy: &ProblemPolicy,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    recurrences: &[Reference],
    now: DateTime<Utc>,
) -> Result<ProblemControlEvent, ProblemRule> {
    if state.record().phase() != Some(Phase::Resolved) {
        return Err(ProblemRule::NoFixToReview(
            "the problem is not resolved".into(),
        ));
    }
    let Some(resolved_at) = fixed_at(state) else {
        let code = state.record().resolution().map(|r| r.code.clone());
        return Err(ProblemRule::NoFixToReview(format!(
            "it was resolved as {}",
            code.unwrap_or_default()
        )));
    };
    if state.review().is_some_and(|r| r.resolved_at == resolved_at) {
        return Err(ProblemRule::AlreadyReviewed(resolved_at));
    }
    let window = |why| Err(ProblemRule::ReviewWindow { from, to, why });
    if from != resolved_at {
        return window("does not start at the resolution");
    }
    if to <= from {
        return window("is empty");
    }
    if to - from < policy.review.window {
        return window("is shorter than the policy's review window");
    }
    if to > now {
        return window("ends in the future");
    }
    let mut recurrences = recurrences.to_vec();
    recurrences.sort();
    recurrences.dedup();
    let tolerated = usize::try_from(policy.review.tolerated_recurrences).unwrap_or(usize::MAX);
    Ok(ProblemControlEvent::EffectivenessReviewed {
        resolved_at,
        from,
        to,
        effective: recurrences.len() <= tolerated,
        recurrences,
    })
}

/// The reopen's reason: the latest review's evidence.
fn ineffective_reason(state: &Problem) -> Result<String, ProblemRule> {
    let review = state
        .review()
        .filter(|r| !r.effective)
        .ok_or(ProblemRule::NoIneffectiveReview)?;
    let incidents: Vec<&str> = review.recurrences.iter().map(Reference::as_str).collect();
    Ok(format!(
        "the fix did not hold: {} incident(s) recurred in ({}, {}]: {}",
        review.recurrences.len(),
        review.from.to_rfc3339(),
        review.to.to_rfc3339(),
        incidents.join(", ")
    ))
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
            check_survivor(policy, of).map_err(R::Rule)?;
            d.push(TypedEvent::Own(ProblemControlEvent::MarkedDuplicate {
                of: of.clone(),
            }));
            let detail = resolution(ProblemResolution::Duplicate, format!("duplicate of {of}"));
            let moved = step(d.state(), &Trigger::MARK_DUPLICATE, detail)?;
            d.push(moved);
        }
        ProblemCommand::RecordReview {
            from,
            to,
            recurrences,
        } => {
            let event = review_event(state, policy, (*from, *to), recurrences, ctx.now())
                .map_err(R::Rule)?;
            d.push(TypedEvent::Own(event));
        }
        ProblemCommand::ReopenIneffective => {
            let reason = ineffective_reason(state).map_err(R::Rule)?;
            let detail = TransitionDetail::Reopen {
                reason,
                count: record.reopen_count().saturating_add(1),
            };
            d.push(step(state, &Trigger::REOPEN, detail)?);
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
            | ProblemCommand::MarkDuplicate { .. }
            | ProblemCommand::RecordReview { .. }
            | ProblemCommand::ReopenIneffective => decide_own(state, command, policy, ctx),
        };
        decided.map_err(|reason| refuse::<Self>(state, command.name(), reason))
    }
}
