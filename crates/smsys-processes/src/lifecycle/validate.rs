//! Lifecycle validation: every rule a definition must meet before records may follow it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use smsys_core::records::{Phase, RecordType};

use crate::lifecycle::definition::LifecycleDefinition;
use crate::lifecycle::vocabulary::{Trigger, Vocabulary};

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
    /// The definition is for another record type than the vocabulary it is checked against.
    #[error("lifecycle {lifecycle} is for {found} records, not {expected} records")]
    WrongRecordType {
        /// The lifecycle.
        lifecycle: String,
        /// The record type it names.
        found: RecordType,
        /// The record type of the vocabulary.
        expected: RecordType,
    },
    /// A trigger or guard that does not exist for this record type.
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
    /// A status without a stage where the record type has stages, with an unknown stage, or
    /// with a stage of another phase.
    #[error("lifecycle {lifecycle}: status {status:?} {problem}")]
    BadStage {
        /// The lifecycle.
        lifecycle: String,
        /// The status.
        status: String,
        /// What is wrong.
        problem: String,
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

pub(crate) fn validate(
    d: &LifecycleDefinition,
    vocabulary: &Vocabulary,
) -> Result<HashMap<String, usize>, LifecycleError> {
    let lifecycle = || d.name.clone();
    if d.record_type != vocabulary.record_type {
        return Err(LifecycleError::WrongRecordType {
            lifecycle: lifecycle(),
            found: d.record_type.clone(),
            expected: vocabulary.record_type.clone(),
        });
    }
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
        let bad_stage = |problem: String| LifecycleError::BadStage {
            lifecycle: lifecycle(),
            status: s.name.clone(),
            problem,
        };
        match (&s.stage, vocabulary.stages.is_empty()) {
            (None, true) => {}
            (None, false) => return Err(bad_stage("names no stage".into())),
            (Some(stage), true) => {
                return Err(bad_stage(format!(
                    "names stage {stage:?}, but {} records have no stages",
                    d.record_type
                )));
            }
            (Some(stage), false) => match vocabulary.stage(stage) {
                None => return Err(bad_stage(format!("names unknown stage {stage:?}"))),
                Some(rule) if rule.phase != s.phase => {
                    return Err(bad_stage(format!(
                        "is in phase {} but its stage {stage:?} maps to phase {}",
                        s.phase, rule.phase
                    )));
                }
                Some(_) => {}
            },
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
            record_type: d.record_type.clone(),
        };
        let Some(rule) = vocabulary.trigger(&t.trigger) else {
            return Err(not_for(format!("trigger {}", t.trigger)));
        };
        if let Some(g) = t.guards.iter().find(|g| !vocabulary.has_guard(g)) {
            return Err(not_for(format!("guard {g}")));
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
            if !rule.allows(from_phase, to) {
                return Err(LifecycleError::TriggerPhaseMismatch {
                    lifecycle: lifecycle(),
                    transition: t.name.clone(),
                    trigger: t.trigger.clone(),
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
    if !d.rules.closing_requires_resolution {
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
