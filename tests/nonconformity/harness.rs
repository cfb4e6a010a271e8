//! What the nonconformity tests share: the people, a nonconformity's inputs, the policy, and a
//! desk in memory (decide, then evolve, keeping every event).

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use smsys::core::records::nonconformity::CorrectiveAction;
use smsys::core::records::{
    Channel, Nonconformity, NonconformityEvent, NonconformitySource, RecordKind,
};
use smsys::core::{Actor, Aggregate, Context, EventSourced, SequentialIds, Stamp};
use smsys::processes::nonconformity::{
    LogNonconformity, NonconformityCommand, NonconformityManagement, NonconformityPolicy,
    NonconformityRefusal,
};
use smsys::processes::{LogRecord, RecordCommand};

/// The instant every test starts at.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .expect("valid")
}

/// A validated identifier.
pub(crate) fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("valid")
}

/// Who raises nonconformities and reviews them (owns no action).
pub(crate) const QUALITY: &str = "quinn";
/// Who owns the corrective actions.
pub(crate) const OWNER: &str = "olga";

/// The shared fields of nonconformity `reference`, raised by `quinn` for `email`.
pub(crate) fn record(reference: &str) -> LogRecord {
    LogRecord::new(
        id(reference),
        id(QUALITY),
        Channel::Portal,
        id("email"),
        "resolution target missed",
    )
}

/// Raises `reference` from a failed change.
pub(crate) fn log(reference: &str) -> NonconformityCommand {
    let source = NonconformitySource::FailedChange {
        change: id("CHG-0007"),
    };
    NonconformityCommand::log(LogNonconformity::new(record(reference), source))
}

/// An action owned by `owner`, due 14 days after [`t0`].
pub(crate) fn action(owner: &str) -> CorrectiveAction {
    CorrectiveAction {
        description: "alert at 80 % queue depth".into(),
        owner: id(owner),
        due: due(14),
    }
}

/// The date `days` after [`t0`].
pub(crate) fn due(days: i64) -> NaiveDate {
    (t0() + TimeDelta::days(days)).date_naive()
}

/// Every nonconformity command with a name, in the matrix's order.
pub(crate) fn commands() -> Vec<(&'static str, NonconformityCommand)> {
    use NonconformityCommand as C;
    vec![
        (
            "correct",
            C::Correct {
                correction: "restarted the queue".into(),
            },
        ),
        (
            "analyse",
            C::AnalyseCause {
                cause: "no capacity alert".into(),
                method: "five whys".into(),
            },
        ),
        (
            "plan",
            C::PlanActions {
                actions: vec![action(OWNER)],
            },
        ),
        (
            "implement",
            C::ImplementActions {
                notes: "alert configured".into(),
            },
        ),
        (
            "effective",
            C::ReviewEffectiveness {
                effective: true,
                findings: "no breach since".into(),
            },
        ),
        (
            "ineffective",
            C::ReviewEffectiveness {
                effective: false,
                findings: "breached again".into(),
            },
        ),
        ("close", RecordCommand::Close.into()),
        (
            "cancel",
            RecordCommand::Cancel {
                reason: "raised twice".into(),
            }
            .into(),
        ),
    ]
}

/// The command named `name` among [`commands`].
pub(crate) fn command(name: &str) -> NonconformityCommand {
    commands()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| c)
        .expect("a known command")
}

/// A nonconformity in memory: decide, then evolve, keeping every event.
pub(crate) struct Desk {
    pub(crate) policy: NonconformityPolicy,
    pub(crate) state: Nonconformity,
    pub(crate) events: Vec<(NonconformityEvent, Actor, DateTime<Utc>)>,
    pub(crate) now: DateTime<Utc>,
}

impl Desk {
    /// A desk under the reference policy.
    pub(crate) fn new() -> Self {
        Self::with(NonconformityPolicy::default())
    }

    /// A desk under `policy`.
    pub(crate) fn with(policy: NonconformityPolicy) -> Self {
        Self {
            policy,
            state: Nonconformity::default(),
            events: Vec::new(),
            now: t0(),
        }
    }

    /// A desk with `reference` raised.
    pub(crate) fn raised(reference: &str) -> Self {
        let mut desk = Self::new();
        desk.run(QUALITY, &log(reference)).expect("raised");
        desk
    }

    /// Runs `command` as `who`: how many events it recorded, or the refusal.
    pub(crate) fn run(
        &mut self,
        who: &str,
        command: &NonconformityCommand,
    ) -> Result<usize, NonconformityRefusal> {
        let actor = Actor::new(who).expect("valid actor");
        let ids = SequentialIds::new(self.events.len() as u64);
        let ctx = Context::new(self.now, &ids).with_actor(&actor);
        let events = NonconformityManagement::decide(&self.state, command, &self.policy, &ctx)?;
        for event in &events {
            self.state.evolve(event, ctx.stamp());
            self.events.push((event.clone(), actor.clone(), self.now));
        }
        Ok(events.len())
    }

    /// Runs the named commands of [`commands`] as `who`, each accepted.
    pub(crate) fn walk(&mut self, who: &str, names: &[&str]) {
        for name in names {
            self.run(who, &command(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// The status now.
    pub(crate) fn status(&self) -> &str {
        self.state.record().status().unwrap_or("none")
    }

    /// The state replayed from the events.
    pub(crate) fn replayed(&self) -> Nonconformity {
        let mut state = Nonconformity::default();
        for (event, actor, at) in &self.events {
            state.evolve(event, Stamp::new(Some(actor), *at));
        }
        state
    }
}
