//! SLA definitions: versioned, effective-dated data, validated before use.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use smsys_core::records::{CommonEvent, DefinitionRef, Phase, Priority, RecordEvent, RecordType};

/// Basis points of a target: 10,000 is 100 %, the breach.
pub const BREACH_BP: u32 = 10_000;

/// An event pattern that starts, stops or cancels a timer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The record was logged.
    Logged,
    /// The record was assigned (or reassigned).
    Assigned,
    /// The record was assigned to this support group (an OLA starts).
    AssignedTo(String),
    /// The record was assigned to another group than this one (that group's OLA stops).
    AssignedAwayFrom(String),
    /// The record entered a status of this phase.
    Entered(Phase),
    /// The record left a status of this phase.
    Left(Phase),
}

impl Condition {
    /// Whether `event` (with the phase before it) satisfies the condition.
    pub fn matches(&self, event: &CommonEvent, phase_before: Option<Phase>) -> bool {
        let event = match (self, event) {
            (Condition::Logged, CommonEvent::Logged(_)) => return true,
            (_, CommonEvent::Logged(_)) => return false,
            (_, CommonEvent::Record(e)) => e,
        };
        match (self, event) {
            (Condition::Assigned, RecordEvent::Assigned { .. }) => true,
            (Condition::AssignedTo(g), RecordEvent::Assigned { group, .. }) => group.as_str() == g,
            (Condition::AssignedAwayFrom(g), RecordEvent::Assigned { group, .. }) => {
                group.as_str() != g
            }
            // Clearing the assignment takes the record away from every group.
            (Condition::AssignedAwayFrom(_), RecordEvent::Unassigned { .. }) => true,
            (Condition::Entered(p), RecordEvent::Transitioned { phase, .. }) => {
                phase == p && phase_before != Some(*p)
            }
            (Condition::Left(p), RecordEvent::Transitioned { phase, .. }) => {
                phase_before == Some(*p) && phase != p
            }
            (
                Condition::Logged
                | Condition::Assigned
                | Condition::AssignedTo(_)
                | Condition::AssignedAwayFrom(_)
                | Condition::Entered(_)
                | Condition::Left(_),
                _,
            ) => false,
        }
    }

    /// Whether nothing can happen after this condition holds (it marks a final phase).
    fn is_terminal(&self) -> bool {
        match self {
            Condition::Entered(p) | Condition::Left(p) => p.is_final(),
            Condition::Logged
            | Condition::Assigned
            | Condition::AssignedTo(_)
            | Condition::AssignedAwayFrom(_) => false,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Logged => f.write_str("logged"),
            Condition::Assigned => f.write_str("assigned"),
            Condition::AssignedTo(g) => write!(f, "assigned to {g}"),
            Condition::AssignedAwayFrom(g) => write!(f, "assigned away from {g}"),
            Condition::Entered(p) => write!(f, "entered {p}"),
            Condition::Left(p) => write!(f, "left {p}"),
        }
    }
}

/// What a priority change does to a running timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPriorityChange {
    /// Keep the elapsed time; switch to the new priority's target.
    #[default]
    KeepElapsed,
    /// Cancel the current cycle and start a new one, from zero, at the change.
    CancelAndRestart,
    /// Keep the cycle (thresholds already reached stay reached, at the instants they were)
    /// but count from zero again, from the change, against the new target.
    RestartFromNow,
}

/// What a reopen does to a cycle that the record's resolution stopped (cycles stopped by
/// anything else are left alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnReopen {
    /// Nothing: the timer stays stopped (e.g. a response timer).
    #[default]
    Ignore,
    /// The stopped cycle resumes from its accumulated value; time spent resolved is not counted.
    Resume,
    /// A new cycle starts from zero.
    NewCycle,
}

/// Whether pauses move the due instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// Paused time does not count: pauses move the due instant.
    #[default]
    Pausable,
    /// A negotiated deadline: pauses do not move it.
    Fixed,
}

/// Which records a definition applies to (an empty list: all).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AppliesTo {
    /// Record types.
    #[serde(default)]
    pub record_types: Vec<RecordType>,
    /// Services.
    #[serde(default)]
    pub services: Vec<String>,
}

/// The target for one priority (or for all, when `priority` is absent), in business minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The priority (absent: every priority without its own target).
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Business minutes.
    pub minutes: u32,
}

/// An SLA definition as written (serde), before validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaDefinition {
    /// The definition's name (e.g. `desk-standard`).
    pub name: String,
    /// Its version.
    pub version: u32,
    /// Timers starting from this instant bind to this version.
    pub effective_from: DateTime<Utc>,
    /// The timer it defines (e.g. `response`, `resolution`, `ola:network`).
    pub timer: String,
    /// Which records.
    #[serde(default)]
    pub applies_to: AppliesTo,
    /// Conditions that start a cycle.
    pub start: Vec<Condition>,
    /// Conditions that stop (complete) it.
    pub stop: Vec<Condition>,
    /// Conditions that cancel it.
    #[serde(default)]
    pub cancel: Vec<Condition>,
    /// Phases in which the clock pauses.
    #[serde(default)]
    pub pause_in: Vec<Phase>,
    /// Targets per priority.
    pub targets: Vec<Target>,
    /// The business calendar's name.
    pub calendar: String,
    /// Warning thresholds in percent of the target, in (0, 100]; the breach at 100 % is implied.
    #[serde(default)]
    pub warnings: Vec<f64>,
    /// What a priority change does.
    #[serde(default)]
    pub on_priority_change: OnPriorityChange,
    /// What a reopen does.
    #[serde(default)]
    pub on_reopen: OnReopen,
    /// Pausable target or fixed deadline.
    #[serde(default)]
    pub deadline: DeadlineKind,
}

/// Why an SLA definition was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SlaError {
    /// Version 0.
    #[error("sla {0}: versions start at 1")]
    ZeroVersion(String),
    /// The timer name is empty.
    #[error("sla {0}: the timer name is empty")]
    EmptyTimer(String),
    /// No start or no stop condition.
    #[error("sla {sla}: it has no {which} condition")]
    MissingCondition {
        /// The definition.
        sla: String,
        /// "start" or "stop".
        which: &'static str,
    },
    /// Start and stop can never both hold.
    #[error("sla {sla}: start and stop conditions can never both hold: {reason}")]
    NeverStops {
        /// The definition.
        sla: String,
        /// Why.
        reason: String,
    },
    /// A threshold outside (0, 100].
    #[error("sla {sla}: warning threshold {percent} % is outside (0, 100]")]
    ThresholdOutOfRange {
        /// The definition.
        sla: String,
        /// The threshold.
        percent: f64,
    },
    /// No target, or a zero target.
    #[error("sla {sla}: {problem}")]
    BadTarget {
        /// The definition.
        sla: String,
        /// What is wrong.
        problem: String,
    },
    /// The calendar is unknown.
    #[error("sla {sla}: unknown calendar {calendar:?}")]
    UnknownCalendar {
        /// The definition.
        sla: String,
        /// The calendar named.
        calendar: String,
    },
    /// A version whose effective date is not after the previous version's.
    #[error(
        "sla {sla}: version {version} must be newer than version {previous} and take effect after it ({previous_from})"
    )]
    NotAfterPrevious {
        /// The definition.
        sla: String,
        /// The new version.
        version: u32,
        /// The previous version.
        previous: u32,
        /// When the previous version took effect.
        previous_from: DateTime<Utc>,
    },
    /// A definitions file that does not parse.
    #[error("sla definitions do not parse: {0}")]
    Parse(String),
    /// A calendar that does not validate.
    #[error(transparent)]
    Calendar(#[from] crate::calendar::CalendarError),
    /// The same name and version twice.
    #[error("sla {sla}: version {version} is registered already")]
    DuplicateVersion {
        /// The definition.
        sla: String,
        /// The version.
        version: u32,
    },
}

/// A validated SLA definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(into = "SlaDefinition")]
pub struct Sla {
    definition: SlaDefinition,
    /// Warning thresholds and the breach, ascending, in basis points.
    thresholds: Vec<u32>,
    targets: BTreeMap<Option<Priority>, i64>,
}

impl From<Sla> for SlaDefinition {
    fn from(value: Sla) -> Self {
        value.definition
    }
}

impl<'de> Deserialize<'de> for Sla {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Sla::new(SlaDefinition::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Sla {
    /// Validates a definition.
    pub fn new(definition: SlaDefinition) -> Result<Self, SlaError> {
        let sla = || definition.name.clone();
        if definition.version == 0 {
            return Err(SlaError::ZeroVersion(sla()));
        }
        if definition.timer.trim().is_empty() {
            return Err(SlaError::EmptyTimer(sla()));
        }
        for (which, list) in [("start", &definition.start), ("stop", &definition.stop)] {
            if list.is_empty() {
                return Err(SlaError::MissingCondition { sla: sla(), which });
            }
        }
        let never = |reason: String| Err(SlaError::NeverStops { sla: sla(), reason });
        if let Some(c) = definition
            .start
            .iter()
            .find(|c| definition.stop.contains(c))
        {
            return never(format!("{c} both starts and stops the timer"));
        }
        if definition.start.iter().all(|c| c.is_terminal()) {
            return never(
                "it starts only when the record is final, after which nothing happens".into(),
            );
        }
        if definition.stop.iter().all(|c| *c == Condition::Logged) {
            return never(
                "it stops only when the record is logged, which happens once, first".into(),
            );
        }
        let mut thresholds = Vec::new();
        for &percent in &definition.warnings {
            if !(percent > 0.0 && percent <= 100.0) {
                return Err(SlaError::ThresholdOutOfRange {
                    sla: sla(),
                    percent,
                });
            }
            // Whole basis points: 87.5 % is 8750.
            let bp = (percent * 100.0).round() as u32;
            thresholds.push(bp.clamp(1, BREACH_BP));
        }
        thresholds.push(BREACH_BP);
        thresholds.sort_unstable();
        thresholds.dedup();
        if definition.targets.is_empty() {
            return Err(SlaError::BadTarget {
                sla: sla(),
                problem: "it has no target".into(),
            });
        }
        let mut targets = BTreeMap::new();
        for t in &definition.targets {
            if t.minutes == 0 {
                return Err(SlaError::BadTarget {
                    sla: sla(),
                    problem: "a target of 0 minutes".into(),
                });
            }
            if targets
                .insert(t.priority, i64::from(t.minutes) * 60)
                .is_some()
            {
                let which = t.priority.map_or("the default".into(), |p| p.to_string());
                return Err(SlaError::BadTarget {
                    sla: sla(),
                    problem: format!("two targets for {which}"),
                });
            }
        }
        Ok(Self {
            definition,
            thresholds,
            targets,
        })
    }

    /// The definition.
    pub fn definition(&self) -> &SlaDefinition {
        &self.definition
    }

    /// Name and version.
    pub fn reference(&self) -> DefinitionRef {
        DefinitionRef {
            name: self.definition.name.clone(),
            version: self.definition.version,
        }
    }

    /// The timer's name.
    pub fn timer(&self) -> &str {
        &self.definition.timer
    }

    /// Warning thresholds and the breach (10,000), ascending, in basis points.
    pub fn thresholds(&self) -> &[u32] {
        &self.thresholds
    }

    /// The target in business seconds for `priority` (its own, else the default).
    pub fn target_seconds(&self, priority: Option<Priority>) -> Option<i64> {
        priority
            .and_then(|p| self.targets.get(&Some(p)))
            .or_else(|| self.targets.get(&None))
            .copied()
    }

    /// Whether the definition applies to a record of `record_type` for `service`.
    pub fn applies_to(&self, record_type: &RecordType, service: &str) -> bool {
        let a = &self.definition.applies_to;
        (a.record_types.is_empty() || a.record_types.contains(record_type))
            && (a.services.is_empty() || a.services.iter().any(|s| s == service))
    }

    /// Whether the clock pauses in `phase`.
    pub fn pauses_in(&self, phase: Phase) -> bool {
        self.definition.pause_in.contains(&phase)
    }

    /// Whether a record moved from a resolved status back to an open one: a reopen, whatever
    /// the transition is called (a lifecycle may hold a resolved record, too).
    pub(crate) fn is_reopen(before: Option<Phase>, after: Option<Phase>) -> bool {
        before == Some(Phase::Resolved)
            && after.is_some_and(|p| matches!(p, Phase::New | Phase::Active | Phase::Pending))
    }
}

/// Which SLAs apply to a service, when something other than the definitions' own
/// `applies_to.services` says so: the service catalogue
/// ([`ServiceCatalogue`](crate::catalogue::ServiceCatalogue)) names each service's SLAs and
/// OLAs.
pub trait SlaSelection: Send + Sync + std::fmt::Debug {
    /// The names of the SLA definitions that apply to `service` for a timer starting at `at`,
    /// or `None` when this selection does not know the service (the definitions' own
    /// `applies_to.services` then decide).
    fn slas_for(&self, service: &str, at: DateTime<Utc>) -> Option<Vec<String>>;
}

/// Every version of every SLA definition a desk knows, and optionally the selection that
/// names the SLAs of each service.
#[derive(Debug, Clone, Default)]
pub struct SlaRegistry {
    by_name: BTreeMap<String, Vec<Sla>>,
    selection: Option<std::sync::Arc<dyn SlaSelection>>,
}

impl SlaRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a version. Versions of a name must take effect in version order, so that adding
    /// one never changes which version an already started timer bound to.
    pub fn with(mut self, sla: Sla) -> Result<Self, SlaError> {
        let versions = self.by_name.entry(sla.definition.name.clone()).or_default();
        if versions
            .iter()
            .any(|v| v.definition.version == sla.definition.version)
        {
            return Err(SlaError::DuplicateVersion {
                sla: sla.definition.name.clone(),
                version: sla.definition.version,
            });
        }
        // A new version must be the newest and take effect after every version before it, so
        // that adding it never changes the version an already started timer bound to.
        if let Some(latest) = versions.iter().max_by_key(|v| v.definition.version)
            && (latest.definition.version > sla.definition.version
                || latest.definition.effective_from >= sla.definition.effective_from)
        {
            return Err(SlaError::NotAfterPrevious {
                sla: sla.definition.name.clone(),
                version: sla.definition.version,
                previous: latest.definition.version,
                previous_from: latest.definition.effective_from,
            });
        }
        versions.push(sla);
        versions.sort_by_key(|v| v.definition.version);
        Ok(self)
    }

    /// The version of each definition in effect at `at`.
    pub fn in_effect(&self, at: DateTime<Utc>) -> impl Iterator<Item = &Sla> {
        self.by_name.values().filter_map(move |versions| {
            versions
                .iter()
                .rev()
                .find(|v| v.definition.effective_from <= at)
        })
    }

    /// A definition by name and version.
    pub fn get(&self, reference: &DefinitionRef) -> Option<&Sla> {
        self.by_name
            .get(&reference.name)?
            .iter()
            .find(|v| v.definition.version == reference.version)
    }

    /// The names of the definitions.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Takes the SLAs of each service `selection` knows from it, instead of the definitions'
    /// `applies_to.services` (their record types still apply).
    pub fn with_selection(mut self, selection: std::sync::Arc<dyn SlaSelection>) -> Self {
        self.selection = Some(selection);
        self
    }

    /// Whether `sla` applies to a record of `record_type` for `service`, for a timer starting
    /// at `at`: by the selection when it knows the service, else by the definition.
    pub fn applies(
        &self,
        sla: &Sla,
        record_type: &RecordType,
        service: &str,
        at: DateTime<Utc>,
    ) -> bool {
        match self
            .selection
            .as_ref()
            .and_then(|s| s.slas_for(service, at))
        {
            Some(names) => {
                let types = &sla.definition.applies_to.record_types;
                (types.is_empty() || types.contains(record_type))
                    && names.contains(&sla.definition.name)
            }
            None => sla.applies_to(record_type, service),
        }
    }
}
