//! Lifecycle definitions as written (TOML, JSON or a builder), before validation.

use serde::{Deserialize, Serialize};
use smsys_core::records::{Phase, RecordType};

use crate::lifecycle::vocabulary::{Guard, Requirement, Trigger, Vocabulary};
use crate::lifecycle::{Lifecycle, LifecycleError};

/// A status, its phase, and (for record types with their own stages) its stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Its name.
    pub name: String,
    /// The engine-known phase it belongs to: what SLA clocks and reports read.
    pub phase: Phase,
    /// The record type's own stage (e.g. a change's `assess` or `authorise`), where its
    /// vocabulary has stages; each stage maps to one phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// A named move between statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Its name.
    pub name: String,
    /// The command that takes it.
    pub trigger: Trigger,
    /// The statuses it leaves from.
    pub from: Vec<String>,
    /// The status it leads to.
    pub to: String,
    /// Fields that must be set to take it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Requirement>,
    /// Conditions that must hold to take it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<Guard>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// How records under a lifecycle behave beyond its transitions: a product's choices, held as
/// data. The defaults are the reference behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRules {
    /// Assigning a record in a new status also takes its start transition, where one exists
    /// (default yes).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub assignment_starts_work: bool,
    /// A caller update on a pending record takes its resume transition (default yes).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub caller_update_resumes: bool,
    /// Work notes and comments are still accepted once the record is closed or cancelled
    /// (default no).
    #[serde(default, skip_serializing_if = "is_false")]
    pub notes_after_closure: bool,
    /// No closed status may be reached without passing a resolved one; checked when the
    /// lifecycle is validated (default yes).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub closing_requires_resolution: bool,
}

impl Default for LifecycleRules {
    fn default() -> Self {
        Self {
            assignment_starts_work: true,
            caller_update_resumes: true,
            notes_after_closure: false,
            closing_requires_resolution: true,
        }
    }
}

/// A lifecycle definition as written, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleDefinition {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// The record type it is for.
    pub record_type: RecordType,
    /// The status a new record starts in.
    pub initial: String,
    /// The statuses.
    pub statuses: Vec<Status>,
    /// The transitions.
    pub transitions: Vec<Transition>,
    /// Behaviour beyond the transitions.
    #[serde(default)]
    pub rules: LifecycleRules,
}

/// Builds a [`Lifecycle`] in code; [`LifecycleBuilder::build`] validates it against the record
/// type's vocabulary.
///
/// ```
/// use smsys_core::records::Phase;
/// use smsys_processes::lifecycle::{Guard, LifecycleBuilder, Requirement, Trigger};
/// use smsys_processes::{IncidentManagement, RecordRules};
///
/// let lifecycle = LifecycleBuilder::new("vendor-incident", 1, IncidentManagement::vocabulary())
///     .status("new", Phase::New)
///     .status("working", Phase::Active)
///     .status("awaiting_vendor", Phase::Pending)
///     .status("resolved", Phase::Resolved)
///     .status("closed", Phase::Closed)
///     .status("cancelled", Phase::Cancelled)
///     .transition("start", Trigger::START, &["new"], "working")
///     .requires(Requirement::AssignmentGroup)
///     .transition("to_vendor", Trigger::HOLD, &["working"], "awaiting_vendor")
///     .transition("vendor_back", Trigger::RESUME, &["awaiting_vendor"], "working")
///     .transition("resolve", Trigger::RESOLVE, &["new", "working"], "resolved")
///     .transition("reopen", Trigger::REOPEN, &["resolved"], "working")
///     .transition("close", Trigger::CLOSE, &["resolved"], "closed")
///     .guard(Guard::RESOLUTION_RECORDED)
///     .transition("cancel", Trigger::CANCEL, &["new", "working", "awaiting_vendor"], "cancelled")
///     .build()?;
/// assert_eq!(lifecycle.status("awaiting_vendor").map(|s| s.phase), Some(Phase::Pending));
///
/// // A definition that cannot work is refused with the offending status named.
/// let stuck = LifecycleBuilder::new("stuck", 1, IncidentManagement::vocabulary())
///     .status("new", Phase::New)
///     .status("closed", Phase::Closed)
///     .build();
/// assert_eq!(
///     stuck.unwrap_err().to_string(),
///     "lifecycle stuck: status \"closed\" cannot be reached from the initial status"
/// );
/// # Ok::<(), smsys_processes::LifecycleError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LifecycleBuilder {
    definition: LifecycleDefinition,
    vocabulary: Vocabulary,
}

impl LifecycleBuilder {
    /// A lifecycle named `name` at `version` for the record type of `vocabulary`. The first
    /// status added is the initial one unless [`LifecycleBuilder::initial`] says otherwise.
    pub fn new(name: impl Into<String>, version: u32, vocabulary: Vocabulary) -> Self {
        Self {
            definition: LifecycleDefinition {
                name: name.into(),
                version,
                record_type: vocabulary.record_type.clone(),
                initial: String::new(),
                statuses: Vec::new(),
                transitions: Vec::new(),
                rules: LifecycleRules::default(),
            },
            vocabulary,
        }
    }

    /// Adds a status in `phase`.
    pub fn status(mut self, name: impl Into<String>, phase: Phase) -> Self {
        let name = name.into();
        if self.definition.initial.is_empty() {
            self.definition.initial.clone_from(&name);
        }
        self.definition.statuses.push(Status {
            name,
            phase,
            stage: None,
        });
        self
    }

    /// Adds a status in one of the record type's stages (its phase is the stage's).
    pub fn staged(mut self, name: impl Into<String>, stage: &str) -> Self {
        let phase = self.vocabulary.stage(stage).map_or(Phase::New, |s| s.phase);
        self = self.status(name, phase);
        if let Some(s) = self.definition.statuses.last_mut() {
            s.stage = Some(stage.to_owned());
        }
        self
    }

    /// Makes `name` the initial status.
    pub fn initial(mut self, name: impl Into<String>) -> Self {
        self.definition.initial = name.into();
        self
    }

    /// Adds a transition taken by `trigger` from any of `from` to `to`.
    pub fn transition(
        mut self,
        name: impl Into<String>,
        trigger: Trigger,
        from: &[&str],
        to: impl Into<String>,
    ) -> Self {
        self.definition.transitions.push(Transition {
            name: name.into(),
            trigger,
            from: from.iter().map(|s| (*s).to_owned()).collect(),
            to: to.into(),
            requires: Vec::new(),
            guards: Vec::new(),
        });
        self
    }

    /// Requires a field for the transition added last.
    pub fn requires(mut self, requirement: Requirement) -> Self {
        if let Some(t) = self.definition.transitions.last_mut() {
            t.requires.push(requirement);
        }
        self
    }

    /// Adds a guard to the transition added last.
    pub fn guard(mut self, guard: Guard) -> Self {
        if let Some(t) = self.definition.transitions.last_mut() {
            t.guards.push(guard);
        }
        self
    }

    /// Sets the behaviour rules.
    pub fn rules(mut self, rules: LifecycleRules) -> Self {
        self.definition.rules = rules;
        self
    }

    /// Validates and builds the lifecycle.
    pub fn build(self) -> Result<Lifecycle, LifecycleError> {
        Lifecycle::new(self.definition, &self.vocabulary)
    }
}
