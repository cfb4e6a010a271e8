//! The lifecycle lint: a product's customised lifecycles, policies and SLA definitions checked
//! against the activities ISO/IEC 20000-1 requires, each finding naming the clause it touches.
//!
//! Validation ([`Lifecycle::new`]) refuses what cannot work; the lint reports what works but
//! would not satisfy an auditor: a change that can be implemented before it is authorised, a
//! release that can deploy without a baseline, an incident that can never be closed. Most
//! rules are *gates*, held as data: no status of a stage or phase may be reached from the
//! initial status (or from a failure) without passing a transition that carries the guard or
//! requirement recording the activity. The search removes those transitions and looks for a
//! path that still arrives; the finding shows the shortest one.
//!
//! | rule | clause |
//! |---|---|
//! | `lifecycle.unreachable_status`, `lifecycle.no_closed_status`, `lifecycle.dead_end` | the record type's process |
//! | `incident.resolve_without_classification`, `incident.resolve_without_priority`, `incident.close_without_resolution`, `incident.close_without_major_review` | 8.6.1 |
//! | `request.fulfil_without_approval`, `request.close_without_resolution` | 8.6.2 |
//! | `problem.close_without_root_cause_or_accepted_risk`, `problem.close_without_fix_review`, `known_error.publish_without_content` | 8.6.3 |
//! | `change.implement_before_authorisation`, `change.implement_without_template`, `change.implement_without_assessment`, `change.implement_without_plan`, `change.close_without_review`, `change.close_without_assessment`, `change.failure_without_remediation`, `change.failure_not_investigated`, `change.failure_not_recordable`, `policy.lifecycle_missing` | 8.5.1 |
//! | `release.accept_without_criteria`, `release.deploy_without_acceptance`, `release.deploy_without_approval`, `release.deploy_without_baseline`, `release.close_without_early_life_review` | 8.5.3 |
//! | `nonconformity.review_without_implemented_action`, `nonconformity.close_without_effectiveness_review` | 10.1 |
//! | `sla.no_targets`, `sla.zero_target`, `sla.no_stop` | 8.3.3 |
//!
//! The structural rules take the clause of the record type's process (8.6.1 for incidents,
//! ...; 8.1 for record types smsys does not ship).
//!
//! ```
//! use smsys_core::records::ChangeKind;
//! use smsys_processes::change::{self, ChangeManagement};
//! use smsys_processes::{Lifecycle, RecordRules, lint};
//!
//! // The shipped lifecycles pass.
//! assert!(lint::check_defaults().is_empty());
//!
//! // A normal change whose implementation no longer waits for its authorisation.
//! let shipped = change::default_lifecycle(ChangeKind::Normal);
//! let mut definition = shipped.definition().clone();
//! for t in &mut definition.transitions {
//!     t.guards.retain(|g| g.as_str() != "authorised");
//! }
//! let custom = Lifecycle::new(definition, &ChangeManagement::vocabulary())?;
//! let findings = lint::check_change_lifecycle(&custom, ChangeKind::Normal);
//! assert_eq!(findings.len(), 1);
//! assert_eq!(findings[0].clause, "8.5.1");
//! assert_eq!(findings[0].rule, "change.implement_before_authorisation");
//! # Ok::<(), smsys_processes::LifecycleError>(())
//! ```

mod graph;
mod rules;

use std::fmt;

use serde::Serialize;
use smsys_core::records::{ChangeKind, DefinitionRef, RecordType};

use crate::change::ChangePolicy;
use crate::lifecycle::{Lifecycle, LifecycleDefinition};
use crate::record::RecordPolicy;
use crate::sla::SlaDefinition;
use graph::Graph;
use rules::Broken;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checked {
    /// A lifecycle (or a policy's choice of one).
    Lifecycle,
    /// An SLA definition.
    Sla,
}

/// A way a lifecycle, policy or SLA definition falls short of ISO/IEC 20000-1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The clause it touches (e.g. `8.5.1`).
    pub clause: String,
    /// What was checked.
    pub checked: Checked,
    /// The record type of the lifecycle (absent for SLA definitions).
    pub record_type: Option<RecordType>,
    /// The lifecycle or SLA definition, by name and version.
    pub definition: DefinitionRef,
    /// The rule broken: a stable id such as `change.implement_before_authorisation`.
    pub rule: &'static str,
    /// What is wrong and what to change.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} [{}]: {}",
            self.clause, self.definition, self.rule, self.message
        )
    }
}

fn lifecycle_findings(definition: &LifecycleDefinition, broken: Vec<Broken>) -> Vec<Finding> {
    broken
        .into_iter()
        .map(|b| Finding {
            clause: b.clause.to_owned(),
            checked: Checked::Lifecycle,
            record_type: Some(definition.record_type.clone()),
            definition: DefinitionRef {
                name: definition.name.clone(),
                version: definition.version,
            },
            rule: b.rule,
            message: b.message,
        })
        .collect()
}

fn check(definition: &LifecycleDefinition, kind: Option<ChangeKind>) -> Vec<Finding> {
    let graph = Graph::new(definition);
    let mut broken = rules::structure(&graph, rules::process_clause(&definition.record_type));
    broken.extend(rules::process(&graph, kind));
    lifecycle_findings(definition, broken)
}

/// Lints a lifecycle against the rules of its record type's process. A change lifecycle is
/// checked without its kind: its implementation must pass authorisation or a pinned template
/// ([`check_change_lifecycle`] applies the kind's own rules).
pub fn check_lifecycle(lifecycle: &Lifecycle) -> Vec<Finding> {
    check(lifecycle.definition(), None)
}

/// Lints a definition that may not have been validated (e.g. one [`Lifecycle::new`] refused
/// as unreachable or stuck), so the product sees every finding with its clause at once. The
/// definition is walked as written; a transition naming an unknown status leads nowhere.
pub fn check_definition(definition: &LifecycleDefinition) -> Vec<Finding> {
    check(definition, None)
}

/// Lints a change lifecycle for changes of `kind`: a standard change is implemented from its
/// pinned template, a normal one after assessment and authorisation, an emergency one after
/// an expedited authorisation and closed after its retrospective assessment.
pub fn check_change_lifecycle(lifecycle: &Lifecycle, kind: ChangeKind) -> Vec<Finding> {
    check(lifecycle.definition(), Some(kind))
}

fn missing(record_type: Option<RecordType>, reference: &DefinitionRef, clause: &str) -> Finding {
    Finding {
        clause: clause.to_owned(),
        checked: Checked::Lifecycle,
        record_type,
        definition: reference.clone(),
        rule: "policy.lifecycle_missing",
        message: format!(
            "the policy logs new records under lifecycle {reference}, which its registry does not hold; add it to the registry"
        ),
    }
}

/// Lints the lifecycle a record policy logs new records under.
pub fn check_record_policy(policy: &RecordPolicy) -> Vec<Finding> {
    match policy.lifecycles.get(&policy.lifecycle) {
        Some(lifecycle) => check_lifecycle(lifecycle),
        None => vec![missing(None, &policy.lifecycle, "8.1")],
    }
}

/// Lints the lifecycle a change policy logs each kind of change under, with that kind's
/// rules.
pub fn check_change_policy(policy: &ChangePolicy) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (&kind, reference) in &policy.lifecycles {
        match policy.record.lifecycles.get(reference) {
            Some(lifecycle) => findings.extend(check_change_lifecycle(lifecycle, kind)),
            None => findings.push(missing(
                Some(<smsys_core::records::Change as smsys_core::records::RecordKind>::RECORD_TYPE),
                reference,
                "8.5.1",
            )),
        }
    }
    findings
}

/// Lints an SLA definition (8.3.3): it must have targets, none of zero minutes, and a
/// condition that stops its timer (without one, no cycle is ever measured against a target).
pub fn check_sla(definition: &SlaDefinition) -> Vec<Finding> {
    let finding = |rule: &'static str, message: String| Finding {
        clause: "8.3.3".to_owned(),
        checked: Checked::Sla,
        record_type: None,
        definition: DefinitionRef {
            name: definition.name.clone(),
            version: definition.version,
        },
        rule,
        message,
    };
    let mut findings = Vec::new();
    if definition.targets.is_empty() {
        findings.push(finding(
            "sla.no_targets",
            format!(
                "timer {:?} has no service level target; add a target per priority or a default one",
                definition.timer
            ),
        ));
    }
    if definition.targets.iter().any(|t| t.minutes == 0) {
        findings.push(finding(
            "sla.zero_target",
            format!(
                "timer {:?} has a target of 0 minutes, which every record breaches; give it the agreed time",
                definition.timer
            ),
        ));
    }
    if definition.stop.is_empty() {
        findings.push(finding(
            "sla.no_stop",
            format!(
                "timer {:?} has no stop condition, so no cycle completes against its target; add the event that meets it",
                definition.timer
            ),
        ));
    }
    findings
}

/// Every lifecycle smsys ships, changes with their kind.
fn shipped() -> Vec<(Lifecycle, Option<ChangeKind>)> {
    let mut all = vec![
        (crate::incident::default_lifecycle(), None),
        (crate::request::default_lifecycle(), None),
        (crate::problem::default_lifecycle(), None),
        (crate::known_error::default_lifecycle(), None),
        (crate::release::default_lifecycle(), None),
        (crate::nonconformity::default_lifecycle(), None),
    ];
    for kind in ChangeKind::ALL {
        all.push((crate::change::default_lifecycle(kind), Some(kind)));
    }
    all
}

/// The SLA definitions smsys ships (`sla/desk.sla.toml`).
fn shipped_slas() -> Vec<SlaDefinition> {
    #[derive(serde::Deserialize)]
    struct SlaFile {
        sla: Vec<SlaDefinition>,
    }
    toml::from_str::<SlaFile>(include_str!("../sla/desk.sla.toml"))
        .map(|file| file.sla)
        .unwrap_or_else(|e| unreachable!("the shipped sla definitions parse: {e}"))
}

/// Lints every lifecycle smsys ships (incident, service request, problem, known error, the
/// three change kinds, release, nonconformity) and its reference SLA definitions: empty, as the reference
/// definitions meet every rule.
pub fn check_defaults() -> Vec<Finding> {
    let lifecycles = shipped()
        .into_iter()
        .flat_map(|(lifecycle, kind)| check(lifecycle.definition(), kind));
    let slas = shipped_slas().into_iter().flat_map(|sla| check_sla(&sla));
    lifecycles.chain(slas).collect()
}
