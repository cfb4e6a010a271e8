//! Change risk (ISO/IEC 20000-1 8.5.1): probability of failure x impact from a versioned
//! matrix held as data, raised one level by each risk condition that holds, and the criteria
//! that make a change major-impact.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use smsys_core::records::Level;
use smsys_core::records::change::{ChangeKind, RiskCondition, RiskLevel};

use super::impact::ImpactFindings;

/// Probability x impact -> risk, versioned like the priority matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskMatrix {
    version: u32,
    /// `cells[probability rank - 1][impact rank - 1]`, highest first.
    cells: [[RiskLevel; 3]; 3],
}

impl RiskMatrix {
    /// The reference matrix, version 1 (probability down, impact across, high first):
    /// `high: very_high high moderate`, `medium: high moderate low`, `low: moderate low low`.
    pub fn reference() -> Self {
        use RiskLevel::{High, Low, Moderate, VeryHigh};
        Self {
            version: 1,
            cells: [
                [VeryHigh, High, Moderate],
                [High, Moderate, Low],
                [Moderate, Low, Low],
            ],
        }
    }

    /// A custom matrix; `cells[probability][impact]`, highest first.
    pub fn new(version: u32, cells: [[RiskLevel; 3]; 3]) -> Self {
        Self { version, cells }
    }

    /// Its version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The risk of a change whose failure has `probability` and `impact`.
    pub fn risk(&self, probability: Level, impact: Level) -> RiskLevel {
        let rank = |l: Level| usize::from(l.rank() - 1);
        self.cells[rank(probability)][rank(impact)]
    }
}

/// The names of the shipped risk conditions.
pub mod condition {
    /// Less lead time than the policy asks for the change's kind.
    pub const INSUFFICIENT_LEAD_TIME: &str = "insufficient_lead_time";
    /// A critical service is affected.
    pub const CRITICAL_SERVICE: &str = "critical_service";
    /// A changed CI is in maintenance already.
    pub const CI_IN_MAINTENANCE: &str = "ci_in_maintenance";
}

/// The risk policy: the matrix, the conditions that raise a risk, and what makes a change
/// major-impact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskPolicy {
    /// Probability x impact -> risk.
    pub matrix: RiskMatrix,
    /// The lead time a normal change needs between assessment and its planned start.
    pub normal_lead_time: TimeDelta,
    /// From this risk on, a change is major-impact.
    pub major_from: RiskLevel,
    /// A change affecting at least this many services is major-impact.
    pub major_services: Option<usize>,
}

impl Default for RiskPolicy {
    /// The reference matrix, three days' lead time, major from high risk or five services.
    fn default() -> Self {
        Self {
            matrix: RiskMatrix::reference(),
            normal_lead_time: TimeDelta::days(3),
            major_from: RiskLevel::High,
            major_services: Some(5),
        }
    }
}

/// What a risk is assessed from.
#[derive(Debug, Clone, Copy)]
pub struct RiskInput<'a> {
    /// The change's kind.
    pub kind: ChangeKind,
    /// The probability of failure.
    pub probability: Level,
    /// The impact if it fails.
    pub impact: Level,
    /// The time from the assessment to the planned start, when a start is planned.
    pub lead_time: Option<TimeDelta>,
    /// What the configuration information says.
    pub findings: &'a ImpactFindings,
}

/// The assessed risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskVerdict {
    /// The matrix's risk.
    pub base: RiskLevel,
    /// After the conditions.
    pub risk: RiskLevel,
    /// The conditions that held, each raising the risk one level.
    pub conditions: Vec<RiskCondition>,
    /// Whether the change is major-impact.
    pub major: bool,
}

impl RiskPolicy {
    /// The risk of a change: the matrix's, raised one level by each condition that holds
    /// (a normal change planned with less than [`RiskPolicy::normal_lead_time`]; a critical
    /// service affected; a changed CI in maintenance).
    pub fn assess(&self, input: &RiskInput<'_>) -> RiskVerdict {
        let base = self.matrix.risk(input.probability, input.impact);
        let mut conditions = Vec::new();
        if input.kind == ChangeKind::Normal
            && let Some(lead) = input.lead_time
            && lead < self.normal_lead_time
        {
            conditions.push(RiskCondition {
                name: condition::INSUFFICIENT_LEAD_TIME.to_owned(),
                detail: format!(
                    "{} hour(s) before the planned start; the policy asks for {}",
                    lead.num_hours(),
                    self.normal_lead_time.num_hours()
                ),
            });
        }
        let findings = input.findings;
        if !findings.critical_services.is_empty() {
            conditions.push(RiskCondition {
                name: condition::CRITICAL_SERVICE.to_owned(),
                detail: format!(
                    "critical service(s) affected: {}",
                    join(&findings.critical_services)
                ),
            });
        }
        if !findings.in_maintenance.is_empty() {
            conditions.push(RiskCondition {
                name: condition::CI_IN_MAINTENANCE.to_owned(),
                detail: format!("in maintenance already: {}", join(&findings.in_maintenance)),
            });
        }
        let risk = conditions.iter().fold(base, |risk, _| risk.raised());
        let services = findings.analysis.services.len();
        let major = risk >= self.major_from || self.major_services.is_some_and(|n| services >= n);
        RiskVerdict {
            base,
            risk,
            conditions,
            major,
        }
    }
}

fn join(ids: &[smsys_core::records::CiId]) -> String {
    ids.iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
