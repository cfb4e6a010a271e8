//! Lifecycles as data: statuses mapped to engine-known phases, and named transitions.
//!
//! Products rename and add statuses ("Awaiting vendor", "Waiting for CAB"); the engine still
//! knows what each status means through its [`Phase`], and which command takes a transition
//! through its [`Trigger`]. A definition is validated before use; a record remembers the
//! lifecycle version it was opened under.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smsys_core::{DefinitionRef, Phase, RecordType};

/// The command that takes a transition. Each trigger fixes which phases it may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Work starts: new to active.
    Start,
    /// Work waits: into a pending status.
    Hold,
    /// Work resumes: pending to active.
    Resume,
    /// Approval is asked (requests): into a pending status.
    RequestApproval,
    /// Approval reached (requests): pending to active or new.
    Approve,
    /// Approval refused (requests): into a cancelled status.
    Reject,
    /// Resolved or fulfilled: into a resolved status.
    Resolve,
    /// Reopened: resolved to active.
    Reopen,
    /// Closed: into a closed status.
    Close,
    /// Cancelled: into a cancelled status.
    Cancel,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 10] = [
        Trigger::Start,
        Trigger::Hold,
        Trigger::Resume,
        Trigger::RequestApproval,
        Trigger::Approve,
        Trigger::Reject,
        Trigger::Resolve,
        Trigger::Reopen,
        Trigger::Close,
        Trigger::Cancel,
    ];

    /// The name used in definitions.
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Hold => "hold",
            Trigger::Resume => "resume",
            Trigger::RequestApproval => "request_approval",
            Trigger::Approve => "approve",
            Trigger::Reject => "reject",
            Trigger::Resolve => "resolve",
            Trigger::Reopen => "reopen",
            Trigger::Close => "close",
            Trigger::Cancel => "cancel",
        }
    }

    /// Whether a transition with this trigger may go from phase `from` to phase `to`.
    pub fn allows(self, from: Phase, to: Phase) -> bool {
        use Phase::{Active, Cancelled, Closed, New, Pending, Resolved};
        match self {
            Trigger::Start => from == New && to == Active,
            Trigger::Hold => matches!(from, New | Active) && to == Pending,
            Trigger::Resume => from == Pending && to == Active,
            Trigger::RequestApproval => matches!(from, New | Active) && to == Pending,
            Trigger::Approve => from == Pending && matches!(to, New | Active),
            Trigger::Reject => from == Pending && to == Cancelled,
            Trigger::Resolve => matches!(from, Active | Pending) && to == Resolved,
            Trigger::Reopen => from == Resolved && to == Active,
            // Closing from other open phases is a product's choice; the graph check refuses a
            // lifecycle where that skips resolution for a record type that requires it.
            Trigger::Close => !from.is_final() && to == Closed,
            Trigger::Cancel => !from.is_final() && from != Resolved && to == Cancelled,
        }
    }

    /// Whether the trigger exists only for service requests.
    pub const fn requests_only(self) -> bool {
        matches!(
            self,
            Trigger::RequestApproval | Trigger::Approve | Trigger::Reject
        )
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field of the record that must be set before a transition may be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// A category (classification).
    Category,
    /// A priority.
    Priority,
    /// An assignment group.
    AssignmentGroup,
    /// An assigned person.
    Assignee,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Requirement::Category => "category",
            Requirement::Priority => "priority",
            Requirement::AssignmentGroup => "assignment group",
            Requirement::Assignee => "assignee",
        })
    }
}

/// A condition on the record's history that must hold to take a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// A resolution code and notes are recorded.
    ResolutionRecorded,
    /// Every fulfilment task has finished (requests).
    AllTasksFinished,
    /// The request is approved (requests).
    Approved,
    /// A major incident's review is recorded (incidents).
    MajorReviewDone,
}

impl Guard {
    fn fits(self, record_type: RecordType) -> bool {
        match self {
            Guard::ResolutionRecorded => true,
            Guard::AllTasksFinished | Guard::Approved => record_type == RecordType::ServiceRequest,
            Guard::MajorReviewDone => record_type == RecordType::Incident,
        }
    }
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Guard::ResolutionRecorded => "a recorded resolution",
            Guard::AllTasksFinished => "all fulfilment tasks finished",
            Guard::Approved => "an approval",
            Guard::MajorReviewDone => "the major-incident review",
        })
    }
}

/// A status and its phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Its name.
    pub name: String,
    /// The engine-known phase it belongs to.
    pub phase: Phase,
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

/// A lifecycle definition as written (JSON, TOML or a builder), before validation.
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
}

/// Builds a [`Lifecycle`] in code; [`LifecycleBuilder::build`] validates it.
///
/// ```
/// use smsys_core::{Phase, RecordType};
/// use smsys_processes::lifecycle::{Guard, LifecycleBuilder, Requirement, Trigger};
///
/// let lifecycle = LifecycleBuilder::new("vendor-incident", 1, RecordType::Incident)
///     .status("new", Phase::New)
///     .status("working", Phase::Active)
///     .status("awaiting_vendor", Phase::Pending)
///     .status("resolved", Phase::Resolved)
///     .status("closed", Phase::Closed)
///     .status("cancelled", Phase::Cancelled)
///     .transition("start", Trigger::Start, &["new"], "working")
///     .requires(Requirement::AssignmentGroup)
///     .transition("to_vendor", Trigger::Hold, &["working"], "awaiting_vendor")
///     .transition("vendor_back", Trigger::Resume, &["awaiting_vendor"], "working")
///     .transition("resolve", Trigger::Resolve, &["working"], "resolved")
///     .transition("reopen", Trigger::Reopen, &["resolved"], "working")
///     .transition("close", Trigger::Close, &["resolved"], "closed")
///     .guard(Guard::ResolutionRecorded)
///     .transition("cancel", Trigger::Cancel, &["new", "working", "awaiting_vendor"], "cancelled")
///     .build()?;
/// assert_eq!(lifecycle.status("awaiting_vendor").map(|s| s.phase), Some(Phase::Pending));
///
/// // A definition that cannot work is refused with the offending status named.
/// let stuck = LifecycleBuilder::new("stuck", 1, RecordType::Incident)
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
}

impl LifecycleBuilder {
    /// A lifecycle named `name` at `version` for `record_type`. The first status added is the
    /// initial one unless [`LifecycleBuilder::initial`] says otherwise.
    pub fn new(name: impl Into<String>, version: u32, record_type: RecordType) -> Self {
        Self {
            definition: LifecycleDefinition {
                name: name.into(),
                version,
                record_type,
                initial: String::new(),
                statuses: Vec::new(),
                transitions: Vec::new(),
            },
        }
    }

    /// Adds a status in `phase`.
    pub fn status(mut self, name: impl Into<String>, phase: Phase) -> Self {
        let name = name.into();
        if self.definition.initial.is_empty() {
            self.definition.initial.clone_from(&name);
        }
        self.definition.statuses.push(Status { name, phase });
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

    /// Validates and builds the lifecycle.
    pub fn build(self) -> Result<Lifecycle, LifecycleError> {
        Lifecycle::new(self.definition)
    }
}

/// Why a lifecycle definition was refused. Each names the offending status or transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The text is not a lifecycle definition.
    #[error("lifecycle definition does not parse: {0}")]
    Parse(String),
    /// A name is empty.
    #[error("lifecycle {lifecycle}: a {what} has an empty name")]
    EmptyName {
        /// The lifecycle.
        lifecycle: String,
        /// "status" or "transition".
        what: &'static str,
    },
    /// Version 0.
    #[error("lifecycle {0}: versions start at 1")]
    ZeroVersion(String),
    /// Two statuses with one name.
    #[error("lifecycle {lifecycle}: status {status:?} is defined twice")]
    DuplicateStatus {
        /// The lifecycle.
        lifecycle: String,
        /// The status.
        status: String,
    },
    /// Two transitions with one name.
    #[error("lifecycle {lifecycle}: transition {transition:?} is defined twice")]
    DuplicateTransition {
        /// The lifecycle.
        lifecycle: String,
        /// The transition.
        transition: String,
    },
    /// The initial status is not defined, or not in the `new` phase.
    #[error("lifecycle {lifecycle}: initial status {status:?} {problem}")]
    BadInitial {
        /// The lifecycle.
        lifecycle: String,
        /// The status.
        status: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A transition names a status that is not defined.
    #[error("lifecycle {lifecycle}: transition {transition:?} names unknown status {status:?}")]
    UnknownStatus {
        /// The lifecycle.
        lifecycle: String,
        /// The transition.
        transition: String,
        /// The unknown status.
        status: String,
    },
    /// A transition's trigger does not fit the phases it joins.
    #[error(
        "lifecycle {lifecycle}: transition {transition:?} is triggered by {trigger} but goes from a {from} status to a {to} status"
    )]
    TriggerPhaseMismatch {
        /// The lifecycle.
        lifecycle: String,
        /// The transition.
        transition: String,
        /// Its trigger.
        trigger: Trigger,
        /// Phase left.
        from: Phase,
        /// Phase joined.
        to: Phase,
    },
    /// A trigger, requirement or guard that does not exist for this record type.
    #[error(
        "lifecycle {lifecycle}: transition {transition:?} uses {what}, which {record_type} records do not have"
    )]
    NotForRecordType {
        /// The lifecycle.
        lifecycle: String,
        /// The transition.
        transition: String,
        /// The trigger or guard.
        what: String,
        /// The record type.
        record_type: RecordType,
    },
    /// A status no path from the initial status reaches.
    #[error("lifecycle {lifecycle}: status {status:?} cannot be reached from the initial status")]
    Unreachable {
        /// The lifecycle.
        lifecycle: String,
        /// The status.
        status: String,
    },
    /// A status from which no closed or cancelled status can be reached.
    #[error(
        "lifecycle {lifecycle}: from status {status:?} no closed or cancelled status can be reached"
    )]
    CannotReachClosing {
        /// The lifecycle.
        lifecycle: String,
        /// The status.
        status: String,
    },
    /// A closed status reachable without passing a resolved status.
    #[error(
        "lifecycle {lifecycle}: closed status {status:?} can be reached without passing a resolved status"
    )]
    ClosedWithoutResolution {
        /// The lifecycle.
        lifecycle: String,
        /// The closed status.
        status: String,
    },
}

/// A validated lifecycle.
///
/// ```
/// use smsys_processes::Lifecycle;
/// let incident = Lifecycle::default_incident();
/// assert_eq!(incident.initial().name, "new");
/// assert!(incident.to_mermaid().starts_with("stateDiagram-v2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "LifecycleDefinition")]
pub struct Lifecycle {
    definition: LifecycleDefinition,
    index: HashMap<String, usize>,
}

impl From<Lifecycle> for LifecycleDefinition {
    fn from(value: Lifecycle) -> Self {
        value.definition
    }
}

impl<'de> Deserialize<'de> for Lifecycle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let definition = LifecycleDefinition::deserialize(d)?;
        Lifecycle::new(definition).map_err(serde::de::Error::custom)
    }
}

const DEFAULT_INCIDENT: &str = include_str!("../lifecycles/incident.toml");
const DEFAULT_SERVICE_REQUEST: &str = include_str!("../lifecycles/service_request.toml");

impl Lifecycle {
    /// Validates a definition.
    pub fn new(definition: LifecycleDefinition) -> Result<Self, LifecycleError> {
        let index = validate(&definition)?;
        Ok(Self { definition, index })
    }

    /// Reads and validates a TOML definition.
    pub fn from_toml(text: &str) -> Result<Self, LifecycleError> {
        let definition: LifecycleDefinition =
            toml::from_str(text).map_err(|e| LifecycleError::Parse(e.to_string()))?;
        Self::new(definition)
    }

    /// Reads and validates a JSON definition.
    pub fn from_json(text: &str) -> Result<Self, LifecycleError> {
        let definition: LifecycleDefinition =
            serde_json::from_str(text).map_err(|e| LifecycleError::Parse(e.to_string()))?;
        Self::new(definition)
    }

    /// The reference incident lifecycle (`lifecycles/incident.toml`).
    pub fn default_incident() -> Self {
        Self::from_toml(DEFAULT_INCIDENT)
            .unwrap_or_else(|e| unreachable!("the shipped incident lifecycle is valid: {e}"))
    }

    /// The reference service request lifecycle (`lifecycles/service_request.toml`).
    pub fn default_service_request() -> Self {
        Self::from_toml(DEFAULT_SERVICE_REQUEST)
            .unwrap_or_else(|e| unreachable!("the shipped request lifecycle is valid: {e}"))
    }

    /// The definition.
    pub fn definition(&self) -> &LifecycleDefinition {
        &self.definition
    }

    /// Name and version.
    pub fn reference(&self) -> DefinitionRef {
        DefinitionRef {
            name: self.definition.name.clone(),
            version: self.definition.version,
        }
    }

    /// The record type.
    pub fn record_type(&self) -> RecordType {
        self.definition.record_type
    }

    /// The initial status.
    pub fn initial(&self) -> &Status {
        self.status(&self.definition.initial)
            .unwrap_or_else(|| unreachable!("validated: the initial status exists"))
    }

    /// A status by name.
    pub fn status(&self, name: &str) -> Option<&Status> {
        self.index.get(name).map(|&i| &self.definition.statuses[i])
    }

    /// The statuses, in definition order.
    pub fn statuses(&self) -> &[Status] {
        &self.definition.statuses
    }

    /// The transitions leaving `from` with `trigger`, in definition order.
    pub fn transitions_from<'a>(
        &'a self,
        from: &'a str,
        trigger: Trigger,
    ) -> impl Iterator<Item = &'a Transition> + 'a {
        self.definition
            .transitions
            .iter()
            .filter(move |t| t.trigger == trigger && t.from.iter().any(|f| f == from))
    }

    /// Mermaid `stateDiagram-v2` text of the lifecycle.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        let _ = writeln!(out, "    [*] --> {}", self.definition.initial);
        for s in &self.definition.statuses {
            let _ = writeln!(out, "    {}: {} ({})", s.name, s.name, s.phase);
        }
        for t in &self.definition.transitions {
            for from in &t.from {
                let _ = writeln!(out, "    {from} --> {}: {}", t.to, t.name);
            }
        }
        for s in self
            .definition
            .statuses
            .iter()
            .filter(|s| s.phase.is_final())
        {
            let _ = writeln!(out, "    {} --> [*]", s.name);
        }
        out
    }

    /// Graphviz DOT text of the lifecycle.
    pub fn to_dot(&self) -> String {
        let d = &self.definition;
        let mut out = format!(
            "digraph \"{} v{}\" {{\n    rankdir=LR;\n",
            d.name, d.version
        );
        for s in &d.statuses {
            let shape = if s.phase.is_final() {
                "doublecircle"
            } else {
                "ellipse"
            };
            let _ = writeln!(
                out,
                "    \"{}\" [label=\"{}\\n({})\", shape={shape}];",
                s.name, s.name, s.phase
            );
        }
        for t in &d.transitions {
            for from in &t.from {
                let _ = writeln!(
                    out,
                    "    \"{from}\" -> \"{}\" [label=\"{}\"];",
                    t.to, t.name
                );
            }
        }
        out.push_str("}\n");
        out
    }
}

fn validate(d: &LifecycleDefinition) -> Result<HashMap<String, usize>, LifecycleError> {
    let lifecycle = || d.name.clone();
    if d.version == 0 {
        return Err(LifecycleError::ZeroVersion(lifecycle()));
    }
    let mut index = HashMap::new();
    for (i, s) in d.statuses.iter().enumerate() {
        if s.name.trim().is_empty() {
            return Err(LifecycleError::EmptyName {
                lifecycle: lifecycle(),
                what: "status",
            });
        }
        if index.insert(s.name.clone(), i).is_some() {
            return Err(LifecycleError::DuplicateStatus {
                lifecycle: lifecycle(),
                status: s.name.clone(),
            });
        }
    }
    let phase = |name: &str| index.get(name).map(|&i| d.statuses[i].phase);
    match phase(&d.initial) {
        None => {
            return Err(LifecycleError::BadInitial {
                lifecycle: lifecycle(),
                status: d.initial.clone(),
                problem: "is not defined",
            });
        }
        Some(p) if p != Phase::New => {
            return Err(LifecycleError::BadInitial {
                lifecycle: lifecycle(),
                status: d.initial.clone(),
                problem: "is not in the new phase",
            });
        }
        Some(_) => {}
    }
    let mut names = BTreeSet::new();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &d.transitions {
        if t.name.trim().is_empty() {
            return Err(LifecycleError::EmptyName {
                lifecycle: lifecycle(),
                what: "transition",
            });
        }
        if !names.insert(t.name.as_str()) {
            return Err(LifecycleError::DuplicateTransition {
                lifecycle: lifecycle(),
                transition: t.name.clone(),
            });
        }
        let not_for = |what: String| LifecycleError::NotForRecordType {
            lifecycle: lifecycle(),
            transition: t.name.clone(),
            what,
            record_type: d.record_type,
        };
        if t.trigger.requests_only() && d.record_type != RecordType::ServiceRequest {
            return Err(not_for(format!("trigger {}", t.trigger)));
        }
        if let Some(g) = t.guards.iter().find(|g| !g.fits(d.record_type)) {
            return Err(not_for(format!("guard {g:?}")));
        }
        let to = phase(&t.to).ok_or_else(|| LifecycleError::UnknownStatus {
            lifecycle: lifecycle(),
            transition: t.name.clone(),
            status: t.to.clone(),
        })?;
        for from in &t.from {
            let from_phase = phase(from).ok_or_else(|| LifecycleError::UnknownStatus {
                lifecycle: lifecycle(),
                transition: t.name.clone(),
                status: from.clone(),
            })?;
            if !t.trigger.allows(from_phase, to) {
                return Err(LifecycleError::TriggerPhaseMismatch {
                    lifecycle: lifecycle(),
                    transition: t.name.clone(),
                    trigger: t.trigger,
                    from: from_phase,
                    to,
                });
            }
            edges.entry(from.as_str()).or_default().push(t.to.as_str());
        }
    }
    // Reachability from the initial status.
    let reached = reach(&d.initial, &edges, |_| true);
    if let Some(s) = d
        .statuses
        .iter()
        .find(|s| !reached.contains(s.name.as_str()))
    {
        return Err(LifecycleError::Unreachable {
            lifecycle: lifecycle(),
            status: s.name.clone(),
        });
    }
    // Every status can reach a closed or cancelled one.
    for s in &d.statuses {
        let from_here = reach(&s.name, &edges, |_| true);
        let closes = from_here
            .iter()
            .any(|n| phase(n).is_some_and(Phase::is_final));
        if !closes {
            return Err(LifecycleError::CannotReachClosing {
                lifecycle: lifecycle(),
                status: s.name.clone(),
            });
        }
    }
    // Nothing reaches a closed status without passing a resolved one.
    if !requires_resolution(d.record_type) {
        return Ok(index);
    }
    let unresolved = reach(&d.initial, &edges, |n| phase(n) != Some(Phase::Resolved));
    if let Some(s) = d
        .statuses
        .iter()
        .find(|s| s.phase == Phase::Closed && unresolved.contains(s.name.as_str()))
    {
        return Err(LifecycleError::ClosedWithoutResolution {
            lifecycle: lifecycle(),
            status: s.name.clone(),
        });
    }
    Ok(index)
}

/// Whether records of this type must pass a resolved status before closing.
fn requires_resolution(record_type: RecordType) -> bool {
    match record_type {
        RecordType::Incident | RecordType::ServiceRequest => true,
    }
}

/// Statuses reachable from `start` (itself included), walking only through statuses `through`
/// accepts (the start and the statuses reached are always included).
fn reach<'a>(
    start: &'a str,
    edges: &BTreeMap<&'a str, Vec<&'a str>>,
    through: impl Fn(&str) -> bool,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        if at != start && !through(at) {
            continue;
        }
        for &next in edges.get(at).into_iter().flatten() {
            if seen.insert(next) {
                queue.push_back(next);
            }
        }
    }
    seen
}

/// The lifecycles a desk knows, by name and version.
#[derive(Debug, Clone, Default)]
pub struct LifecycleRegistry {
    lifecycles: BTreeMap<DefinitionRef, Arc<Lifecycle>>,
}

impl LifecycleRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a lifecycle (replacing one of the same name and version).
    pub fn with(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycles
            .insert(lifecycle.reference(), Arc::new(lifecycle));
        self
    }

    /// The lifecycle of that name and version.
    pub fn get(&self, reference: &DefinitionRef) -> Option<&Arc<Lifecycle>> {
        self.lifecycles.get(reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident() -> LifecycleDefinition {
        Lifecycle::default_incident().definition().clone()
    }

    #[test]
    fn shipped_lifecycles_are_valid_and_round_trip_through_json() {
        for l in [
            Lifecycle::default_incident(),
            Lifecycle::default_service_request(),
        ] {
            let json = serde_json::to_string(&l).unwrap();
            assert_eq!(Lifecycle::from_json(&json).unwrap(), l);
        }
    }

    #[test]
    fn invalid_definitions_name_what_is_wrong() {
        let mut d = incident();
        d.transitions[0].to = "doing".into();
        assert_eq!(
            Lifecycle::new(d).unwrap_err().to_string(),
            "lifecycle incident: transition \"start\" names unknown status \"doing\""
        );

        let mut d = incident();
        d.statuses.push(Status {
            name: "limbo".into(),
            phase: Phase::Active,
        });
        assert!(
            matches!(Lifecycle::new(d), Err(LifecycleError::Unreachable { status, .. }) if status == "limbo")
        );

        let mut d = incident();
        d.statuses.push(Status {
            name: "in_progress".into(),
            phase: Phase::Active,
        });
        assert!(matches!(
            Lifecycle::new(d),
            Err(LifecycleError::DuplicateStatus { .. })
        ));

        let mut d = incident();
        let dup = d.transitions[1].clone();
        d.transitions.push(dup);
        assert!(
            matches!(Lifecycle::new(d), Err(LifecycleError::DuplicateTransition { transition, .. }) if transition == "hold")
        );

        // A trap: a pending status with no way out.
        let mut d = incident();
        d.statuses.push(Status {
            name: "awaiting_vendor".into(),
            phase: Phase::Pending,
        });
        d.transitions.push(Transition {
            name: "to_vendor".into(),
            trigger: Trigger::Hold,
            from: vec!["in_progress".into()],
            to: "awaiting_vendor".into(),
            requires: vec![],
            guards: vec![],
        });
        assert!(
            matches!(Lifecycle::new(d), Err(LifecycleError::CannotReachClosing { status, .. }) if status == "awaiting_vendor")
        );

        // Closing straight from work skips resolution.
        let mut d = incident();
        d.transitions.push(Transition {
            name: "shortcut".into(),
            trigger: Trigger::Close,
            from: vec!["on_hold".into()],
            to: "closed".into(),
            requires: vec![],
            guards: vec![],
        });
        assert_eq!(
            Lifecycle::new(d).unwrap_err().to_string(),
            "lifecycle incident: closed status \"closed\" can be reached without passing a resolved status"
        );

        // A trigger that does not fit the phases it joins.
        let mut d = incident();
        d.transitions[2].trigger = Trigger::Reopen;
        assert!(
            matches!(Lifecycle::new(d), Err(LifecycleError::TriggerPhaseMismatch { transition, .. }) if transition == "resume")
        );

        let mut d = incident();
        d.initial = "in_progress".into();
        assert!(matches!(
            Lifecycle::new(d),
            Err(LifecycleError::BadInitial { .. })
        ));

        let mut d = incident();
        d.transitions[0].guards.push(Guard::Approved);
        assert!(matches!(
            Lifecycle::new(d),
            Err(LifecycleError::NotForRecordType { .. })
        ));

        assert!(matches!(
            Lifecycle::from_toml("name = 3"),
            Err(LifecycleError::Parse(_))
        ));
    }

    #[test]
    fn exports_name_every_status_and_transition() {
        let l = Lifecycle::default_service_request();
        let mermaid = l.to_mermaid();
        let dot = l.to_dot();
        for s in l.statuses() {
            assert!(mermaid.contains(&s.name) && dot.contains(&format!("\"{}\"", s.name)));
        }
        assert!(mermaid.contains("awaiting_approval --> in_fulfilment: approve"));
        assert!(dot.contains("\"fulfilled\" -> \"closed\" [label=\"close\"];"));
    }
}
