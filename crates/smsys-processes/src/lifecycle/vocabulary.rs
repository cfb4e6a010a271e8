//! What a record type's lifecycles may use: its triggers (the commands that take transitions,
//! each allowed between certain phases), its guards, and the field requirements every record
//! has. Each record type declares its own vocabulary; nothing lists the types centrally.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use smsys_core::records::{AttributeName, RecordType};
use smsys_core::{IdError, records::Phase};

macro_rules! open_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Cow<'static, str>);

        impl $name {
            /// A name known at compile time.
            pub const fn from_static(name: &'static str) -> Self {
                Self(Cow::Borrowed(name))
            }

            /// A name read at run time; a lifecycle using it is checked against the record
            /// type's vocabulary when validated.
            pub fn new(name: impl Into<String>) -> Self {
                Self(Cow::Owned(name.into()))
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

open_name!(
    /// The command that takes a transition, by name (`start`, `hold`, `resolve`, `approve`,
    /// ...). A record type's [`Vocabulary`] says which exist and between which phases.
    Trigger
);

open_name!(
    /// A condition on a record's history that must hold to take a transition, by name
    /// (`resolution_recorded`, `major_review_done`, ...). A record type's [`Vocabulary`] says
    /// which exist.
    Guard
);

impl Trigger {
    /// Work starts: new to active.
    pub const START: Trigger = Trigger::from_static("start");
    /// Work waits: into a pending status (also from pending, to change the reason, and from
    /// resolved, where a lifecycle allows it).
    pub const HOLD: Trigger = Trigger::from_static("hold");
    /// Work resumes: pending to active or new.
    pub const RESUME: Trigger = Trigger::from_static("resume");
    /// Resolved or fulfilled: from any open phase into resolved.
    pub const RESOLVE: Trigger = Trigger::from_static("resolve");
    /// Reopened: resolved back to an open phase.
    pub const REOPEN: Trigger = Trigger::from_static("reopen");
    /// Closed.
    pub const CLOSE: Trigger = Trigger::from_static("close");
    /// Cancelled.
    pub const CANCEL: Trigger = Trigger::from_static("cancel");
}

impl Guard {
    /// A resolution is recorded.
    pub const RESOLUTION_RECORDED: Guard = Guard::from_static("resolution_recorded");
}

/// A trigger and the phases it may join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRule {
    /// The trigger.
    pub trigger: Trigger,
    /// Phases its transitions may leave from.
    pub from: &'static [Phase],
    /// Phases its transitions may lead to.
    pub to: &'static [Phase],
}

impl TriggerRule {
    /// Whether a transition with this trigger may go from phase `from` to phase `to`.
    pub fn allows(&self, from: Phase, to: Phase) -> bool {
        self.from.contains(&from) && self.to.contains(&to)
    }
}

use Phase::{Active, Cancelled, Closed, New, Pending, Resolved};

const OPEN: &[Phase] = &[New, Active, Pending, Resolved];

/// The triggers of every service-desk record (incidents, requests, problems, ...): where a
/// rule is a product's choice (resolving straight from new, holding a resolved record,
/// cancelling a resolved one) the vocabulary allows it and the lifecycle decides.
pub fn desk_triggers() -> Vec<TriggerRule> {
    vec![
        TriggerRule {
            trigger: Trigger::START,
            from: &[New],
            to: &[Active],
        },
        TriggerRule {
            trigger: Trigger::HOLD,
            from: OPEN,
            to: &[Pending],
        },
        TriggerRule {
            trigger: Trigger::RESUME,
            from: &[Pending],
            to: &[New, Active],
        },
        TriggerRule {
            trigger: Trigger::RESOLVE,
            from: &[New, Active, Pending],
            to: &[Resolved],
        },
        TriggerRule {
            trigger: Trigger::REOPEN,
            from: &[Resolved],
            to: &[New, Active, Pending],
        },
        TriggerRule {
            trigger: Trigger::CLOSE,
            from: OPEN,
            to: &[Closed],
        },
        TriggerRule {
            trigger: Trigger::CANCEL,
            from: OPEN,
            to: &[Cancelled],
        },
    ]
}

/// A stage of a record type's own vocabulary (a change's `assess`, `authorise`, ...) and the
/// engine phase it maps to, which SLA clocks and reports read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRule {
    /// The stage's name.
    pub name: &'static str,
    /// Its phase.
    pub phase: Phase,
}

/// What the lifecycles of one record type may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    /// The record type.
    pub record_type: RecordType,
    /// Its triggers.
    pub triggers: Vec<TriggerRule>,
    /// Its guards.
    pub guards: Vec<Guard>,
    /// Its own stages, where the six phases do not fit its process (empty: statuses name
    /// phases only). When it has stages, every status names one.
    pub stages: Vec<StageRule>,
}

impl Vocabulary {
    /// The stage named `name`, if the record type has it.
    pub fn stage(&self, name: &str) -> Option<&StageRule> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The rule of `trigger`, if the record type has it.
    pub fn trigger(&self, trigger: &Trigger) -> Option<&TriggerRule> {
        self.triggers.iter().find(|t| &t.trigger == trigger)
    }

    /// Whether the record type has `guard`.
    pub fn has_guard(&self, guard: &Guard) -> bool {
        self.guards.contains(guard)
    }
}

/// A field of the record that must be set before a transition may be taken. Written in
/// definitions as `category`, `subcategory`, `priority`, `assignment_group`, `assignee`,
/// `resolution_code`, `resolution_notes` or `attribute:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Requirement {
    /// A category (classification).
    Category,
    /// A subcategory.
    Subcategory,
    /// A priority.
    Priority,
    /// An assignment group.
    AssignmentGroup,
    /// An assigned person.
    Assignee,
    /// A resolution code, given with the resolve command.
    ResolutionCode,
    /// Resolution notes, given with the resolve command.
    ResolutionNotes,
    /// A custom attribute.
    Attribute(AttributeName),
}

impl Requirement {
    fn name(&self) -> Cow<'_, str> {
        match self {
            Requirement::Category => "category".into(),
            Requirement::Subcategory => "subcategory".into(),
            Requirement::Priority => "priority".into(),
            Requirement::AssignmentGroup => "assignment_group".into(),
            Requirement::Assignee => "assignee".into(),
            Requirement::ResolutionCode => "resolution_code".into(),
            Requirement::ResolutionNotes => "resolution_notes".into(),
            Requirement::Attribute(name) => format!("attribute:{name}").into(),
        }
    }
}

impl TryFrom<String> for Requirement {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Ok(match value.as_str() {
            "category" => Requirement::Category,
            "subcategory" => Requirement::Subcategory,
            "priority" => Requirement::Priority,
            "assignment_group" => Requirement::AssignmentGroup,
            "assignee" => Requirement::Assignee,
            "resolution_code" => Requirement::ResolutionCode,
            "resolution_notes" => Requirement::ResolutionNotes,
            other => match other.strip_prefix("attribute:") {
                Some(name) => Requirement::Attribute(
                    AttributeName::new(name).map_err(|e: IdError| e.to_string())?,
                ),
                None => return Err(format!("unknown requirement {other:?}")),
            },
        })
    }
}

impl From<Requirement> for String {
    fn from(value: Requirement) -> Self {
        value.name().into_owned()
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Attribute(name) => write!(f, "attribute {name}"),
            Requirement::Category
            | Requirement::Subcategory
            | Requirement::Priority
            | Requirement::AssignmentGroup
            | Requirement::Assignee
            | Requirement::ResolutionCode
            | Requirement::ResolutionNotes => f.write_str(&self.name().replace('_', " ")),
        }
    }
}
