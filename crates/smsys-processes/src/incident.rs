//! Incident management (ISO/IEC 20000-1 8.6.1): the shared record rules plus the major-incident
//! procedure, under a lifecycle held as data (`incident/lifecycle.toml` by default).

use serde::{Deserialize, Serialize};
use smsys_core::records::incident::MajorIncidentEvent;
use smsys_core::records::{
    Incident, IncidentEvent, PersonId, Phase, Priority, RecordEvent, RecordKind, ServiceId,
    TypedEvent,
};
use smsys_core::{Aggregate, Context};

use crate::lifecycle::{Guard, Lifecycle, Vocabulary, desk_triggers};
use crate::record::{
    Decision, LogRecord, RecordCommand, RecordPolicy, RecordRules, Refusal, RefusalReason,
    decide_shared, log_record, refuse,
};

const DEFAULT_LIFECYCLE: &str = include_str!("incident/lifecycle.toml");

/// The reference incident lifecycle (`incident/lifecycle.toml`).
pub fn default_lifecycle() -> Lifecycle {
    Lifecycle::from_toml(DEFAULT_LIFECYCLE, &IncidentManagement::vocabulary())
        .unwrap_or_else(|e| unreachable!("the shipped incident lifecycle is valid: {e}"))
}

impl Guard {
    /// A major incident's review after resolution is recorded (incidents).
    pub const MAJOR_REVIEW_DONE: Guard = Guard::from_static("major_review_done");
}

/// When an incident is flagged major automatically: the first rule that matches flags it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MajorRule {
    /// Services the rule applies to (empty: every service).
    pub services: Vec<ServiceId>,
    /// The rule matches at this priority or higher (numerically lower or equal).
    pub priority_at_or_above: Priority,
}

/// What incident management consults.
#[derive(Debug, Clone)]
pub struct IncidentPolicy {
    /// Lifecycles, matrix, auto-close, attributes.
    pub record: RecordPolicy,
    /// When an incident becomes major automatically.
    pub major_rules: Vec<MajorRule>,
}

impl Default for IncidentPolicy {
    /// The reference lifecycle and matrix; P1 incidents are major; auto-close after 3 days.
    fn default() -> Self {
        Self {
            record: RecordPolicy::new(default_lifecycle()),
            major_rules: vec![MajorRule {
                services: Vec::new(),
                priority_at_or_above: Priority::new(1)
                    .unwrap_or_else(|_| unreachable!("1 is valid")),
            }],
        }
    }
}

/// What can be asked of an incident.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentCommand {
    /// Record it.
    Log(LogRecord),
    /// A command every record accepts.
    Record(RecordCommand),
    /// Flag it as major by hand.
    FlagMajor {
        /// Why.
        reason: String,
    },
    /// Name the one person responsible for a major incident.
    AssignMajorManager {
        /// Who.
        manager: PersonId,
    },
    /// Record that top management was informed about a major incident.
    InformManagement {
        /// Who.
        audience: String,
        /// What.
        summary: String,
    },
    /// Record the review a major incident needs after resolution.
    RecordMajorReview {
        /// What it found.
        findings: String,
    },
}

impl From<RecordCommand> for IncidentCommand {
    fn from(command: RecordCommand) -> Self {
        IncidentCommand::Record(command)
    }
}

impl IncidentCommand {
    /// The command's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            IncidentCommand::Log(_) => "log",
            IncidentCommand::Record(c) => c.name(),
            IncidentCommand::FlagMajor { .. } => "flag major",
            IncidentCommand::AssignMajorManager { .. } => "assign major-incident manager",
            IncidentCommand::InformManagement { .. } => "inform management",
            IncidentCommand::RecordMajorReview { .. } => "record major-incident review",
        }
    }
}

/// Why incident management refuses beyond the shared reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentRule {
    /// A major-incident command on an incident that is not major.
    #[error("the incident is not a major incident")]
    NotMajor,
    /// Already a major incident.
    #[error("the incident is already a major incident")]
    AlreadyMajor,
    /// The review is recorded once, after resolution.
    #[error("the major-incident review is recorded once, while the incident is resolved")]
    ReviewNotDue,
}

/// A refused incident command.
pub type IncidentRefusal = Refusal<IncidentRule>;

/// Incident management: `decide` for [`Incident`]s.
#[derive(Debug, Clone, Copy)]
pub struct IncidentManagement;

fn major_criterion(
    state: &Incident,
    policy: &IncidentPolicy,
    priority: Priority,
) -> Option<String> {
    if state.is_major() {
        return None;
    }
    let service = state.record().service();
    policy
        .major_rules
        .iter()
        .find(|r| {
            priority <= r.priority_at_or_above
                && (r.services.is_empty() || service.is_some_and(|s| r.services.contains(s)))
        })
        .map(|r| {
            format!(
                "priority {priority} meets the major-incident criterion ({} or higher)",
                r.priority_at_or_above
            )
        })
}

impl RecordRules for IncidentManagement {
    type Record = Incident;
    type Policy = IncidentPolicy;
    type Rule = IncidentRule;

    fn vocabulary() -> Vocabulary {
        Vocabulary {
            record_type: Incident::RECORD_TYPE,
            triggers: desk_triggers(),
            guards: vec![Guard::RESOLUTION_RECORDED, Guard::MAJOR_REVIEW_DONE],
            stages: Vec::new(),
        }
    }

    fn record_policy(policy: &IncidentPolicy) -> &RecordPolicy {
        &policy.record
    }

    fn guard_holds(record: &Incident, guard: &Guard) -> bool {
        *guard == Guard::MAJOR_REVIEW_DONE && record.major().is_none_or(|m| m.reviewed)
    }

    fn follow_up(
        record: &Incident,
        event: &RecordEvent,
        policy: &IncidentPolicy,
    ) -> Option<MajorIncidentEvent> {
        let (RecordEvent::Prioritised { priority, .. }
        | RecordEvent::PriorityOverridden { priority, .. }) = event
        else {
            return None;
        };
        major_criterion(record, policy, *priority)
            .map(|reason| MajorIncidentEvent::MajorFlagged { reason })
    }
}

fn decide_major(
    state: &Incident,
    command: &IncidentCommand,
    ctx: &Context<'_>,
) -> Result<Vec<IncidentEvent>, RefusalReason<IncidentRule>> {
    use crate::record::RefusalReason as R;
    use crate::record::required;
    let phase = state.record().phase().ok_or(R::NotLogged)?;
    if phase.is_final() {
        return Err(R::Final(phase));
    }
    let major = state.major();
    let not_major = || R::Rule(IncidentRule::NotMajor);
    let event = match command {
        IncidentCommand::FlagMajor { reason } => {
            required(reason, "reason")?;
            if major.is_some() {
                return Err(R::Rule(IncidentRule::AlreadyMajor));
            }
            MajorIncidentEvent::MajorFlagged {
                reason: reason.clone(),
            }
        }
        IncidentCommand::AssignMajorManager { manager } => {
            let major = major.ok_or_else(not_major)?;
            if major.manager.as_ref() == Some(manager) {
                return Err(R::Unchanged);
            }
            MajorIncidentEvent::MajorManagerAssigned {
                manager: manager.clone(),
            }
        }
        IncidentCommand::InformManagement { audience, summary } => {
            required(audience, "audience")?;
            required(summary, "summary")?;
            major.ok_or_else(not_major)?;
            MajorIncidentEvent::ManagementInformed {
                audience: audience.clone(),
                summary: summary.clone(),
            }
        }
        IncidentCommand::RecordMajorReview { findings } => {
            required(findings, "review findings")?;
            let major = major.ok_or_else(not_major)?;
            if phase != Phase::Resolved || major.reviewed {
                return Err(R::Rule(IncidentRule::ReviewNotDue));
            }
            MajorIncidentEvent::MajorReviewed {
                findings: findings.clone(),
            }
        }
        IncidentCommand::Log(_) | IncidentCommand::Record(_) => return Ok(Vec::new()),
    };
    let mut d = Decision::new(state, ctx);
    d.push(TypedEvent::Own(event));
    Ok(d.into_events())
}

impl Aggregate for IncidentManagement {
    type State = Incident;
    type Services = IncidentPolicy;
    type Command = IncidentCommand;
    type Rejection = IncidentRefusal;

    fn decide(
        state: &Incident,
        command: &IncidentCommand,
        policy: &IncidentPolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<IncidentEvent>, IncidentRefusal> {
        let decided = match command {
            IncidentCommand::Log(input) => {
                log_record::<Self>(state, input, policy, ctx).map(|l| vec![TypedEvent::Logged(l)])
            }
            IncidentCommand::Record(c) => decide_shared::<Self>(state, c, policy, ctx),
            IncidentCommand::FlagMajor { .. }
            | IncidentCommand::AssignMajorManager { .. }
            | IncidentCommand::InformManagement { .. }
            | IncidentCommand::RecordMajorReview { .. } => decide_major(state, command, ctx),
        };
        decided.map_err(|reason| refuse::<Self>(state, command.name(), reason))
    }
}
