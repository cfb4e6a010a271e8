//! Lifecycles as data: statuses mapped to engine-known phases, and named transitions.
//!
//! Products rename and add statuses ("Awaiting vendor", "Waiting for CAB"); the engine still
//! knows what each status means through its [`Phase`](smsys_core::records::Phase), and which command takes a transition
//! through its [`Trigger`]. Each record type brings its [`Vocabulary`] (its triggers, the
//! phases each may join, its guards); a definition is validated against it before use, and a
//! record remembers the lifecycle version it was opened under. What a product may change
//! lives here as data: which statuses a hold, resolve, reopen or cancel may start from, which
//! fields each transition requires, and the [`LifecycleRules`] (whether assignment starts work,
//! whether notes are accepted after closure, whether closing requires a resolution).

mod definition;
mod validate;
mod vocabulary;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use smsys_core::records::{DefinitionRef, RecordType};

pub use definition::{LifecycleBuilder, LifecycleDefinition, LifecycleRules, Status, Transition};
pub use validate::LifecycleError;
use validate::validate;
pub use vocabulary::{
    Guard, Requirement, StageRule, Trigger, TriggerRule, Vocabulary, desk_triggers,
};

/// A validated lifecycle.
///
/// ```
/// let incident = smsys_processes::incident::default_lifecycle();
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

impl Lifecycle {
    /// Validates a definition against the vocabulary of its record type.
    pub fn new(
        definition: LifecycleDefinition,
        vocabulary: &Vocabulary,
    ) -> Result<Self, LifecycleError> {
        let index = validate(&definition, vocabulary)?;
        Ok(Self { definition, index })
    }

    /// Reads and validates a TOML definition.
    pub fn from_toml(text: &str, vocabulary: &Vocabulary) -> Result<Self, LifecycleError> {
        let definition: LifecycleDefinition =
            toml::from_str(text).map_err(|e| LifecycleError::Parse(e.to_string()))?;
        Self::new(definition, vocabulary)
    }

    /// Reads and validates a JSON definition.
    pub fn from_json(text: &str, vocabulary: &Vocabulary) -> Result<Self, LifecycleError> {
        let definition: LifecycleDefinition =
            serde_json::from_str(text).map_err(|e| LifecycleError::Parse(e.to_string()))?;
        Self::new(definition, vocabulary)
    }

    /// The behaviour rules.
    pub fn rules(&self) -> &LifecycleRules {
        &self.definition.rules
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
    pub fn record_type(&self) -> &RecordType {
        &self.definition.record_type
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

    /// The stage of status `name`, for record types with stages.
    pub fn stage(&self, name: &str) -> Option<&str> {
        self.status(name).and_then(|s| s.stage.as_deref())
    }

    /// The statuses, in definition order.
    pub fn statuses(&self) -> &[Status] {
        &self.definition.statuses
    }

    /// The transitions leaving `from` with `trigger`, in definition order.
    pub fn transitions_from<'a>(
        &'a self,
        from: &'a str,
        trigger: &'a Trigger,
    ) -> impl Iterator<Item = &'a Transition> + 'a {
        self.definition
            .transitions
            .iter()
            .filter(move |t| &t.trigger == trigger && t.from.iter().any(|f| f == from))
    }

    /// Mermaid `stateDiagram-v2` text of the lifecycle.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        let _ = writeln!(out, "    [*] --> {}", self.definition.initial);
        for s in &self.definition.statuses {
            match &s.stage {
                Some(stage) => writeln!(out, "    {}: {} ({stage}, {})", s.name, s.name, s.phase),
                None => writeln!(out, "    {}: {} ({})", s.name, s.name, s.phase),
            }
            .unwrap_or(());
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
    use crate::incident::IncidentManagement;
    use crate::record::RecordRules;
    use smsys_core::records::Phase;

    fn incident() -> LifecycleDefinition {
        crate::incident::default_lifecycle().definition().clone()
    }

    fn vocabulary() -> Vocabulary {
        IncidentManagement::vocabulary()
    }

    #[test]
    fn shipped_lifecycles_are_valid_and_round_trip_through_json() {
        for (l, v) in [
            (
                crate::incident::default_lifecycle(),
                IncidentManagement::vocabulary(),
            ),
            (
                crate::request::default_lifecycle(),
                crate::request::RequestManagement::vocabulary(),
            ),
            (
                crate::problem::default_lifecycle(),
                crate::problem::ProblemManagement::vocabulary(),
            ),
        ] {
            let json = serde_json::to_string(&l).unwrap();
            assert_eq!(Lifecycle::from_json(&json, &v).unwrap(), l);
        }
    }

    #[test]
    fn invalid_definitions_name_what_is_wrong() {
        let mut d = incident();
        d.transitions[0].to = "doing".into();
        assert_eq!(
            Lifecycle::new(d, &vocabulary()).unwrap_err().to_string(),
            "lifecycle incident: transition \"start\" names unknown status \"doing\""
        );

        let mut d = incident();
        d.statuses.push(Status {
            name: "limbo".into(),
            phase: Phase::Active,
            stage: None,
        });
        assert!(
            matches!(Lifecycle::new(d, &vocabulary()), Err(LifecycleError::Unreachable { status, .. }) if status == "limbo")
        );

        let mut d = incident();
        d.statuses.push(Status {
            name: "in_progress".into(),
            phase: Phase::Active,
            stage: None,
        });
        assert!(matches!(
            Lifecycle::new(d, &vocabulary()),
            Err(LifecycleError::DuplicateStatus { .. })
        ));

        let mut d = incident();
        let dup = d.transitions[1].clone();
        d.transitions.push(dup);
        assert!(
            matches!(Lifecycle::new(d, &vocabulary()), Err(LifecycleError::DuplicateTransition { transition, .. }) if transition == "hold")
        );

        // A trap: a pending status with no way out.
        let mut d = incident();
        d.statuses.push(Status {
            name: "awaiting_vendor".into(),
            phase: Phase::Pending,
            stage: None,
        });
        d.transitions.push(Transition {
            name: "to_vendor".into(),
            trigger: Trigger::HOLD,
            from: vec!["in_progress".into()],
            to: "awaiting_vendor".into(),
            requires: vec![],
            guards: vec![],
        });
        assert!(
            matches!(Lifecycle::new(d, &vocabulary()), Err(LifecycleError::CannotReachClosing { status, .. }) if status == "awaiting_vendor")
        );

        // Closing straight from work skips resolution.
        let mut d = incident();
        d.transitions.push(Transition {
            name: "shortcut".into(),
            trigger: Trigger::CLOSE,
            from: vec!["on_hold".into()],
            to: "closed".into(),
            requires: vec![],
            guards: vec![],
        });
        assert_eq!(
            Lifecycle::new(d, &vocabulary()).unwrap_err().to_string(),
            "lifecycle incident: closed status \"closed\" can be reached without passing a resolved status"
        );

        // A trigger that does not fit the phases it joins.
        let mut d = incident();
        d.transitions[2].trigger = Trigger::REOPEN;
        assert!(
            matches!(Lifecycle::new(d, &vocabulary()), Err(LifecycleError::TriggerPhaseMismatch { transition, .. }) if transition == "resume")
        );

        let mut d = incident();
        d.initial = "in_progress".into();
        assert!(matches!(
            Lifecycle::new(d, &vocabulary()),
            Err(LifecycleError::BadInitial { .. })
        ));

        let mut d = incident();
        d.transitions[0].guards.push(Guard::from_static("approved"));
        assert!(matches!(
            Lifecycle::new(d, &vocabulary()),
            Err(LifecycleError::NotForRecordType { .. })
        ));

        assert!(matches!(
            Lifecycle::from_toml("name = 3", &vocabulary()),
            Err(LifecycleError::Parse(_))
        ));
    }

    #[test]
    fn exports_name_every_status_and_transition() {
        let l = crate::request::default_lifecycle();
        let mermaid = l.to_mermaid();
        let dot = l.to_dot();
        for s in l.statuses() {
            assert!(mermaid.contains(&s.name) && dot.contains(&format!("\"{}\"", s.name)));
        }
        assert!(mermaid.contains("awaiting_approval --> in_fulfilment: approve"));
        assert!(dot.contains("\"fulfilled\" -> \"closed\" [label=\"close\"];"));
    }
}
