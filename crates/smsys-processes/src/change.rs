//! Change management (ISO/IEC 20000-1 8.5.1): standard, normal and emergency changes, each
//! kind under its own lifecycle held as data, assessed for risk and impact from the
//! configuration information, authorised under approval policies with segregation of duties,
//! scheduled against the other changes, freeze and maintenance windows, implemented,
//! remediated when they fail, and reviewed.

mod conflict;
mod impact;
mod risk;
mod schedule;
mod windows;

use std::sync::Arc;

pub use conflict::{Conflict, ConflictDetector, ConflictKind, ConflictPolicy, ScheduleRequest};
pub use impact::{ImpactFindings, ImpactSource};
pub use risk::{RiskInput, RiskMatrix, RiskPolicy, RiskVerdict, condition};
pub use schedule::{ChangeSchedule, PlannedChange};
pub use windows::{
    ChangeCalendars, ChangeCalendarsError, Via, WindowBinding, WindowKind, WindowScope,
};

/// What change management consults.
#[derive(Debug, Clone, Default)]
pub struct ChangePolicy {
    /// The risk matrix, the conditions that raise a risk and the major-impact criteria.
    pub risk: RiskPolicy,
    /// Which conflicts block scheduling.
    pub conflict_policy: ConflictPolicy,
    /// Where an assessment reads the impact of a change on services and customers; without
    /// one, an assessment records the changed CIs only.
    pub impact: Option<Arc<dyn ImpactSource>>,
    /// Where scheduling looks for conflicts; without one, none are found.
    pub conflicts: Option<Arc<dyn ConflictDetector>>,
}
