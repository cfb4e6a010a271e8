//! Nonconformity and corrective action (ISO/IEC 20000-1 10.1): a nonconformity raised from a
//! breached SLA target, a failed change, an audit finding, a complaint or by hand, under one
//! lifecycle held as data (`nonconformity/lifecycle.toml`).
//!
//! - **Correction** ([`NonconformityCommand::Correct`]): what was done at once to contain it.
//! - **Cause analysis** ([`NonconformityCommand::AnalyseCause`]): the cause and the method.
//! - **Corrective action** ([`NonconformityCommand::PlanActions`],
//!   [`NonconformityCommand::ImplementActions`]): actions with an owner and a due date, then
//!   their implementation.
//! - **Effectiveness review** ([`NonconformityCommand::ReviewEffectiveness`]): only once the
//!   actions are implemented, and (under [`NonconformityPolicy::segregate_review`]) by none
//!   of the actions' owners. An effective review lets it close (the shared close, guard
//!   `effectiveness_confirmed`); an ineffective one sends it back to cause analysis, and the
//!   next round's analysis, plan, implementation and review are recorded beside the first.
//! - It may be cancelled with a reason (the shared cancel) until its actions are implemented.
//!
//! The [`reactors::NonconformityRaising`] reactor raises a nonconformity, exactly once, from
//! an `sla_breached` event of any record and from a change implemented with outcome `failed`,
//! as the policy's [`RaisingPolicy`] says.

mod command;
mod decide;
pub mod reactors;

use smsys_core::records::{Nonconformity, Phase, RecordKind};

use crate::lifecycle::{
    Guard, Lifecycle, StageRule, Trigger, TriggerRule, Vocabulary, desk_triggers,
};
use crate::record::{RecordPolicy, RecordRules, Refusal, RefusalReason};

pub use command::{LogNonconformity, NonconformityCommand};

const DEFAULT_LIFECYCLE: &str = include_str!("nonconformity/lifecycle.toml");

/// The reference nonconformity lifecycle (`nonconformity/lifecycle.toml`).
pub fn default_lifecycle() -> Lifecycle {
    Lifecycle::from_toml(DEFAULT_LIFECYCLE, &NonconformityManagement::vocabulary())
        .unwrap_or_else(|e| unreachable!("the shipped nonconformity lifecycle is valid: {e}"))
}

impl Trigger {
    /// The immediate correction is recorded (nonconformities): from new.
    pub const CORRECT: Trigger = Trigger::from_static("correct");
    /// Corrective actions are planned (nonconformities).
    pub const PLAN_ACTION: Trigger = Trigger::from_static("plan_action");
    /// The review found the corrective actions effective (nonconformities): into resolved.
    pub const CONFIRM_EFFECTIVE: Trigger = Trigger::from_static("confirm_effective");
}

impl Guard {
    /// The immediate correction is recorded (nonconformities).
    pub const CORRECTION_RECORDED: Guard = Guard::from_static("correction_recorded");
    /// The cause of the current round is analysed (nonconformities).
    pub const CAUSE_ANALYSED: Guard = Guard::from_static("cause_analysed");
    /// The current round's corrective actions are planned (nonconformities).
    pub const ACTIONS_PLANNED: Guard = Guard::from_static("actions_planned");
    /// The current round's corrective actions are implemented (nonconformities).
    pub const ACTIONS_IMPLEMENTED: Guard = Guard::from_static("actions_implemented");
    /// A review found the corrective actions effective (nonconformities).
    pub const EFFECTIVENESS_CONFIRMED: Guard = Guard::from_static("effectiveness_confirmed");
    /// The latest review found the corrective actions ineffective (nonconformities).
    pub const EFFECTIVENESS_NOT_CONFIRMED: Guard =
        Guard::from_static("effectiveness_not_confirmed");
}

/// The stages of a nonconformity, which its lifecycle's statuses name.
pub mod stage {
    /// Raised: the immediate correction comes next.
    pub const RAISED: &str = "raised";
    /// Corrected: its cause is analysed next (also after an ineffective review).
    pub const CORRECTED: &str = "corrected";
    /// Its cause is analysed: corrective actions are planned next.
    pub const ANALYSED: &str = "analysed";
    /// Corrective actions are planned: they are implemented next.
    pub const ACTION_PLANNED: &str = "action_planned";
    /// The actions are implemented: their effectiveness is reviewed next.
    pub const ACTION_IMPLEMENTED: &str = "action_implemented";
    /// Found effective: it may close.
    pub const EFFECTIVE: &str = "effective";
    /// Closed.
    pub const CLOSED: &str = "closed";
    /// Cancelled.
    pub const CANCELLED: &str = "cancelled";
}

/// Which sources the [`reactors::NonconformityRaising`] reactor raises nonconformities from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaisingPolicy {
    /// From every `sla_breached` event of any record.
    pub sla_breach: bool,
    /// From every change implemented with outcome `failed`.
    pub failed_change: bool,
}

impl RaisingPolicy {
    /// Raises from every source the reactor knows.
    pub const ALL: RaisingPolicy = RaisingPolicy {
        sla_breach: true,
        failed_change: true,
    };
    /// Raises from none.
    pub const NONE: RaisingPolicy = RaisingPolicy {
        sla_breach: false,
        failed_change: false,
    };
}

/// What nonconformity management consults.
#[derive(Debug, Clone)]
pub struct NonconformityPolicy {
    /// Lifecycles, matrix, attributes.
    pub record: RecordPolicy,
    /// Which sources raise a nonconformity by themselves.
    pub raising: RaisingPolicy,
    /// Whether the reviewer of effectiveness must own none of the actions reviewed.
    pub segregate_review: bool,
}

impl Default for NonconformityPolicy {
    /// The reference lifecycle; SLA breaches and failed changes raise nonconformities; the
    /// reviewer owns none of the actions.
    fn default() -> Self {
        Self {
            record: RecordPolicy::new(default_lifecycle()),
            raising: RaisingPolicy::ALL,
            segregate_review: true,
        }
    }
}

impl NonconformityPolicy {
    /// Sets which sources raise a nonconformity.
    pub fn with_raising(mut self, raising: RaisingPolicy) -> Self {
        self.raising = raising;
        self
    }
}

/// Why nonconformity management refuses beyond the shared reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonconformityRule {
    /// The command is not taken in the nonconformity's current stage.
    #[error("{command} is not taken while the nonconformity is in stage {stage}")]
    WrongStage {
        /// The command.
        command: &'static str,
        /// The stage.
        stage: String,
    },
    /// A nonconformity names itself as its source.
    #[error("nonconformity {0} cannot be its own source")]
    OwnSource(smsys_core::records::Reference),
    /// A plan without actions.
    #[error("a corrective action plan names at least one action")]
    NoActions,
    /// An action due before today.
    #[error("action {action:?} is due {due}, before today")]
    DueInThePast {
        /// The action's description.
        action: String,
        /// Its due date.
        due: String,
    },
    /// The effectiveness reviewed before the actions were implemented.
    #[error("the corrective actions are not implemented: review their effectiveness after")]
    ActionNotImplemented,
    /// The reviewer owns one of the actions reviewed.
    #[error("{0} owns a corrective action under review, so may not review its effectiveness")]
    ReviewerOwnsAction(smsys_core::records::PersonId),
    /// Closure without a review that found the actions effective.
    #[error(
        "no review found the corrective actions effective: review their effectiveness before closing"
    )]
    NotEffective,
    /// A lifecycle migration to another lifecycle, or that moves it to another stage.
    #[error(
        "a nonconformity migrates only to a version of its own lifecycle ({lifecycle}), keeping its stage: {why}"
    )]
    Migration {
        /// Its lifecycle's name.
        lifecycle: String,
        /// What the migration would do.
        why: String,
    },
}

/// A refused nonconformity command.
pub type NonconformityRefusal = Refusal<NonconformityRule>;

/// Nonconformity management: `decide` for [`Nonconformity`] records.
///
/// A nonconformity raised from a failed change, corrected, analysed, its action planned and
/// implemented; the action's owner may not review its effectiveness, and it does not close
/// before an effective review:
///
/// ```
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use smsys_core::records::nonconformity::CorrectiveAction;
/// use smsys_core::records::{Channel, Nonconformity, NonconformitySource, RecordKind};
/// use smsys_core::{Actor, Aggregate, Context, EventSourced, SequentialIds};
/// use smsys_processes::nonconformity::{
///     LogNonconformity, NonconformityCommand as C, NonconformityManagement, NonconformityPolicy,
/// };
/// use smsys_processes::{LogRecord, RecordCommand};
///
/// let policy = NonconformityPolicy::default();
/// let ids = SequentialIds::new(0);
/// let now = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
/// let (olga, rui) = (Actor::new("olga")?, Actor::new("rui")?);
/// let record = LogRecord::new(
///     "NC-0001".parse()?, "qa".parse()?, Channel::Portal, "email".parse()?,
///     "change CHG-0007 failed and broke mail",
/// );
/// let source = NonconformitySource::FailedChange { change: "CHG-0007".parse()? };
/// let mut state = Nonconformity::default();
/// let mut run = |state: &mut Nonconformity, command: &C, who: &Actor| {
///     let ctx = Context::new(now, &ids).with_actor(who);
///     let events = NonconformityManagement::decide(state, command, &policy, &ctx)?;
///     for event in &events {
///         state.evolve(event, ctx.stamp());
///     }
///     Ok::<_, smsys_processes::nonconformity::NonconformityRefusal>(events.len())
/// };
/// run(&mut state, &C::log(LogNonconformity::new(record, source)), &rui)?;
/// run(&mut state, &C::Correct { correction: "backed out".into() }, &rui)?;
/// let analyse = C::AnalyseCause { cause: "untested script".into(), method: "five whys".into() };
/// run(&mut state, &analyse, &rui)?;
/// let action = CorrectiveAction {
///     description: "test scripts in staging".into(),
///     owner: "olga".parse()?,
///     due: NaiveDate::from_ymd_opt(2026, 12, 15).unwrap(),
/// };
/// run(&mut state, &C::PlanActions { actions: vec![action] }, &rui)?;
/// assert!(run(&mut state, &RecordCommand::Close.into(), &rui).is_err());
/// run(&mut state, &C::ImplementActions { notes: "staging gate added".into() }, &olga)?;
/// let review = C::ReviewEffectiveness { effective: true, findings: "no recurrence".into() };
/// assert!(run(&mut state, &review, &olga).is_err(), "the owner does not review");
/// run(&mut state, &review, &rui)?;
/// run(&mut state, &RecordCommand::Close.into(), &rui)?;
/// assert_eq!(state.record().status(), Some("closed"));
/// assert_eq!(state.analyses().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct NonconformityManagement;

impl RecordRules for NonconformityManagement {
    type Record = Nonconformity;
    type Policy = NonconformityPolicy;
    type Rule = NonconformityRule;

    fn vocabulary() -> Vocabulary {
        use Phase::{Active, Cancelled, Closed, New, Pending, Resolved};
        let rule = |trigger, from, to| TriggerRule { trigger, from, to };
        let mut triggers = desk_triggers();
        triggers.extend([
            rule(Trigger::CORRECT, &[New], &[Active]),
            rule(Trigger::ANALYSE, &[Active, Pending], &[Active]),
            rule(Trigger::PLAN_ACTION, &[Active], &[Active]),
            rule(Trigger::IMPLEMENT, &[Active], &[Pending]),
            rule(Trigger::CONFIRM_EFFECTIVE, &[Pending], &[Resolved]),
        ]);
        let stage = |name, phase| StageRule { name, phase };
        Vocabulary {
            record_type: Nonconformity::RECORD_TYPE,
            triggers,
            guards: vec![
                Guard::CORRECTION_RECORDED,
                Guard::CAUSE_ANALYSED,
                Guard::ACTIONS_PLANNED,
                Guard::ACTIONS_IMPLEMENTED,
                Guard::EFFECTIVENESS_CONFIRMED,
                Guard::EFFECTIVENESS_NOT_CONFIRMED,
            ],
            stages: vec![
                stage(stage::RAISED, New),
                stage(stage::CORRECTED, Active),
                stage(stage::ANALYSED, Active),
                stage(stage::ACTION_PLANNED, Active),
                stage(stage::ACTION_IMPLEMENTED, Pending),
                stage(stage::EFFECTIVE, Resolved),
                stage(stage::CLOSED, Closed),
                stage(stage::CANCELLED, Cancelled),
            ],
        }
    }

    fn record_policy(policy: &NonconformityPolicy) -> &RecordPolicy {
        &policy.record
    }

    fn guard_holds(nc: &Nonconformity, guard: &Guard) -> bool {
        if *guard == Guard::CORRECTION_RECORDED {
            !nc.corrections().is_empty()
        } else if *guard == Guard::CAUSE_ANALYSED {
            nc.analysis().is_some()
        } else if *guard == Guard::ACTIONS_PLANNED {
            nc.plan().is_some()
        } else if *guard == Guard::ACTIONS_IMPLEMENTED {
            nc.implementation().is_some()
        } else if *guard == Guard::EFFECTIVENESS_CONFIRMED {
            nc.effective_review().is_some()
        } else if *guard == Guard::EFFECTIVENESS_NOT_CONFIRMED {
            nc.reviews().last().is_some_and(|r| !r.what.effective)
        } else {
            false
        }
    }

    fn before_transition(
        nc: &Nonconformity,
        trigger: &Trigger,
        _policy: &NonconformityPolicy,
    ) -> Result<(), RefusalReason<NonconformityRule>> {
        if *trigger == Trigger::CLOSE && nc.effective_review().is_none() {
            Err(RefusalReason::Rule(NonconformityRule::NotEffective))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_lifecycle_loads() {
        let lifecycle = default_lifecycle();
        assert_eq!(lifecycle.initial().name, stage::RAISED);
        for name in [stage::CORRECTED, stage::EFFECTIVE, stage::CLOSED] {
            assert_eq!(lifecycle.stage(name), Some(name));
        }
        let policy = NonconformityPolicy::default().with_raising(RaisingPolicy::NONE);
        assert_eq!(policy.raising, RaisingPolicy::NONE);
    }
}
