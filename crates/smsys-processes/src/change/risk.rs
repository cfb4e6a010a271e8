//! Change risk (ISO/IEC 20000-1 8.5.1): probability of failure x impact from a versioned
//! matrix held as data, raised one level by each risk condition that holds, and the criteria
//! that make a change major-impact.
//!
//! The policy is data: [`RiskPolicy::from_toml`] / [`RiskPolicy::from_json`] read it, the
//! shipped default is `change/risk.toml` ([`RiskPolicy::REFERENCE_TOML`]); the versions of
//! the matrix and their effective dates are kept in [`RiskMatrices`].

mod definition;
mod matrices;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use smsys_core::records::Level;
use smsys_core::records::change::{ChangeKind, RiskCondition, RiskLevel};

use super::impact::ImpactFindings;

pub use definition::RiskPolicyError;
pub use matrices::{DatedRiskMatrix, RiskMatrices};

use definition::{PolicyText, parse_json, parse_toml};

const REFERENCE: &str = include_str!("risk.toml");

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
    /// The shipped policy, `change/risk.toml`: the reference matrix, three days' lead time,
    /// major from high risk or five services.
    fn default() -> Self {
        Self::from_toml(REFERENCE)
            .unwrap_or_else(|e| unreachable!("the shipped risk policy is valid: {e}"))
    }
}

impl RiskPolicy {
    /// The text of the shipped policy (`change/risk.toml`), for products that start from it.
    pub const REFERENCE_TOML: &'static str = REFERENCE;

    /// Reads and validates a policy in TOML (the format of `change/risk.toml`); a refusal
    /// names the bad field.
    ///
    /// ```
    /// use smsys_processes::change::{RiskPolicy, RiskPolicyError};
    /// let text = RiskPolicy::REFERENCE_TOML.replace("major_from = \"high\"", "major_from = \"severe\"");
    /// let refused = RiskPolicy::from_toml(&text);
    /// assert!(matches!(refused, Err(RiskPolicyError::UnknownRisk { ref field, .. }) if field == "major_from"));
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, RiskPolicyError> {
        parse_toml::<PolicyText>(text)?.read()
    }

    /// Reads and validates a policy in JSON (the fields of `change/risk.toml`).
    pub fn from_json(text: &str) -> Result<Self, RiskPolicyError> {
        parse_json::<PolicyText>(text)?.read()
    }

    /// The same policy with the matrix in force at `at` among `matrices` (unchanged when
    /// none is).
    pub fn in_force_at(&self, matrices: &RiskMatrices, at: DateTime<Utc>) -> Self {
        let mut policy = self.clone();
        if let Some(matrix) = matrices.in_force_at(at) {
            policy.matrix = matrix.clone();
        }
        policy
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use smsys_core::records::CiId;
    use smsys_core::records::change::ImpactAnalysis;

    use super::*;

    fn ids(ids: &[&str]) -> Vec<CiId> {
        ids.iter().filter_map(|id| CiId::new(*id).ok()).collect()
    }

    fn findings(services: usize, critical: &[&str], maintenance: &[&str]) -> ImpactFindings {
        let services = (0..services)
            .filter_map(|n| CiId::new(format!("svc-{n}")).ok())
            .collect();
        ImpactFindings {
            analysis: ImpactAnalysis {
                services,
                ..ImpactAnalysis::default()
            },
            critical_services: ids(critical),
            in_maintenance: ids(maintenance),
        }
    }

    fn input(
        kind: ChangeKind,
        lead_hours: Option<i64>,
        findings: &ImpactFindings,
    ) -> RiskInput<'_> {
        RiskInput {
            kind,
            probability: Level::Low,
            impact: Level::Medium,
            lead_time: lead_hours.map(TimeDelta::hours),
            findings,
        }
    }

    fn names(verdict: &RiskVerdict) -> Vec<&str> {
        verdict.conditions.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn the_shipped_policy_holds_the_reference_values() {
        let policy = RiskPolicy::default();
        assert_eq!(
            policy,
            RiskPolicy {
                matrix: RiskMatrix::reference(),
                normal_lead_time: TimeDelta::days(3),
                major_from: RiskLevel::High,
                major_services: Some(5),
            }
        );
        use RiskLevel::{High, Low, Moderate, VeryHigh};
        let expected = [
            [VeryHigh, High, Moderate],
            [High, Moderate, Low],
            [Moderate, Low, Low],
        ];
        for (p, row) in Level::ALL.into_iter().zip(expected) {
            for (i, risk) in Level::ALL.into_iter().zip(row) {
                assert_eq!(policy.matrix.risk(p, i), risk, "{p:?} x {i:?}");
            }
        }
        assert_eq!(policy.matrix.version(), 1);
    }

    #[test]
    fn the_matrix_alone_when_no_condition_holds() {
        let policy = RiskPolicy::default();
        let none = findings(1, &[], &[]);
        let verdict = policy.assess(&input(ChangeKind::Normal, Some(72), &none));
        assert_eq!(verdict.base, RiskLevel::Low);
        assert_eq!(verdict.risk, RiskLevel::Low);
        assert!(
            verdict.conditions.is_empty(),
            "exactly the lead time is enough"
        );
        assert!(!verdict.major);
    }

    #[test]
    fn a_short_lead_time_raises_a_normal_change_only() {
        let policy = RiskPolicy::default();
        let none = findings(0, &[], &[]);
        let verdict = policy.assess(&input(ChangeKind::Normal, Some(71), &none));
        assert_eq!(names(&verdict), [condition::INSUFFICIENT_LEAD_TIME]);
        assert_eq!(verdict.risk, RiskLevel::Moderate);
        assert!(verdict.conditions[0].detail.contains("71 hour(s)"));
        for kind in [ChangeKind::Standard, ChangeKind::Emergency] {
            let verdict = policy.assess(&input(kind, Some(1), &none));
            assert!(verdict.conditions.is_empty(), "{kind}");
        }
        let unplanned = policy.assess(&input(ChangeKind::Normal, None, &none));
        assert!(
            unplanned.conditions.is_empty(),
            "no planned start, no lead time"
        );
    }

    #[test]
    fn a_critical_service_raises_the_risk() {
        let critical = findings(1, &["svc-0"], &[]);
        let verdict = RiskPolicy::default().assess(&input(ChangeKind::Standard, None, &critical));
        assert_eq!(names(&verdict), [condition::CRITICAL_SERVICE]);
        assert_eq!(verdict.risk, RiskLevel::Moderate);
        assert!(verdict.conditions[0].detail.contains("svc-0"));
    }

    #[test]
    fn a_ci_in_maintenance_raises_the_risk() {
        let maintenance = findings(0, &[], &["srv-01", "srv-02"]);
        let verdict =
            RiskPolicy::default().assess(&input(ChangeKind::Emergency, None, &maintenance));
        assert_eq!(names(&verdict), [condition::CI_IN_MAINTENANCE]);
        assert_eq!(verdict.risk, RiskLevel::Moderate);
        assert!(verdict.conditions[0].detail.contains("srv-01, srv-02"));
    }

    #[test]
    fn every_condition_raises_once_and_the_highest_stays() {
        let all = findings(1, &["svc-0"], &["srv-01"]);
        let policy = RiskPolicy::default();
        let verdict = policy.assess(&input(ChangeKind::Normal, Some(2), &all));
        assert_eq!(verdict.conditions.len(), 3);
        assert_eq!(verdict.risk, RiskLevel::VeryHigh, "low raised three times");
        assert!(verdict.major, "by risk");
        let high = RiskInput {
            probability: Level::High,
            impact: Level::High,
            ..input(ChangeKind::Normal, Some(2), &all)
        };
        assert_eq!(policy.assess(&high).risk, RiskLevel::VeryHigh);
    }

    #[test]
    fn major_by_risk_and_by_number_of_services() {
        let policy = RiskPolicy::default();
        let four = findings(4, &[], &[]);
        let high = RiskInput {
            probability: Level::Medium,
            impact: Level::High,
            ..input(ChangeKind::Normal, None, &four)
        };
        let verdict = policy.assess(&high);
        assert_eq!(verdict.risk, RiskLevel::High);
        assert!(verdict.major, "from high risk");
        let moderate = policy.assess(&input(ChangeKind::Normal, None, &four));
        assert!(!moderate.major, "low risk, four services");
        let five = findings(5, &[], &[]);
        assert!(
            policy.assess(&input(ChangeKind::Normal, None, &five)).major,
            "five services"
        );
        let off = RiskPolicy {
            major_services: None,
            ..RiskPolicy::default()
        };
        let many = findings(50, &[], &[]);
        assert!(!off.assess(&input(ChangeKind::Normal, None, &many)).major);
        let raised = findings(0, &["svc-0"], &["srv-01"]);
        let by_conditions = RiskInput {
            probability: Level::Medium,
            impact: Level::Low,
            ..input(ChangeKind::Standard, None, &raised)
        };
        let verdict = policy.assess(&by_conditions);
        assert_eq!(
            (verdict.base, verdict.risk),
            (RiskLevel::Low, RiskLevel::High)
        );
        assert!(verdict.major, "the raised risk counts, not the base");
    }

    #[test]
    fn policies_read_from_toml_and_json() -> Result<(), RiskPolicyError> {
        assert_eq!(
            RiskPolicy::from_toml(RiskPolicy::REFERENCE_TOML)?,
            RiskPolicy::default()
        );
        let json = r#"{"normal_lead_time_hours": 24, "major_from": "very_high",
            "matrix": {"version": 2, "high": ["high", "high", "high"],
            "medium": ["moderate", "moderate", "moderate"], "low": ["low", "low", "low"]}}"#;
        let policy = RiskPolicy::from_json(json)?;
        assert_eq!(policy.normal_lead_time, TimeDelta::hours(24));
        assert_eq!(policy.major_from, RiskLevel::VeryHigh);
        assert_eq!(policy.major_services, None, "left out: off");
        assert_eq!(policy.matrix.version(), 2);
        assert_eq!(
            policy.matrix.risk(Level::Medium, Level::Low),
            RiskLevel::Moderate
        );
        Ok(())
    }

    #[test]
    fn a_refusal_names_the_bad_field() {
        let edit = |from: &str, to: &str| {
            let text = RiskPolicy::REFERENCE_TOML.replace(from, to);
            assert_ne!(text, RiskPolicy::REFERENCE_TOML, "{from}");
            RiskPolicy::from_toml(&text)
        };
        let missing_row = edit("medium = [\"high\",      \"moderate\", \"low\"]", "");
        assert_eq!(
            missing_row,
            Err(RiskPolicyError::Missing {
                field: "matrix.medium".into()
            })
        );
        assert_eq!(
            missing_row.map_err(|e| e.to_string()),
            Err("risk policy: matrix.medium is missing".into())
        );
        assert_eq!(
            edit("\"moderate\", \"low\"]", "\"moderate\", \"lo\"]"),
            Err(RiskPolicyError::UnknownRisk {
                field: "matrix.medium[2]".into(),
                value: "lo".into()
            })
        );
        assert_eq!(
            edit("\"low\",      \"low\"]", "\"low\"]"),
            Err(RiskPolicyError::RowLength {
                field: "matrix.low".into(),
                found: 2
            })
        );
        assert_eq!(
            edit("major_services = 5", "major_services = 0"),
            Err(RiskPolicyError::TooSmall {
                field: "major_services".into(),
                value: 0
            })
        );
        assert_eq!(
            edit("version = 1", "version = 0"),
            Err(RiskPolicyError::TooSmall {
                field: "matrix.version".into(),
                value: 0
            })
        );
        assert_eq!(
            edit("normal_lead_time_hours = 72", ""),
            Err(RiskPolicyError::Missing {
                field: "normal_lead_time_hours".into()
            })
        );
        assert!(matches!(
            edit(
                "version = 1",
                "version = 1\neffective_from = \"2026-01-01T00:00:00Z\""
            ),
            Err(RiskPolicyError::NotAllowed { .. })
        ));
        let unknown = edit("major_services", "major_service").map_err(|e| e.to_string());
        assert!(
            unknown.as_ref().is_err_and(|e| e.contains("major_service")),
            "{unknown:?}"
        );
        assert!(matches!(
            edit("normal_lead_time_hours = 72", "normal_lead_time_hours = -1"),
            Err(RiskPolicyError::Parse(_))
        ));
        assert!(matches!(
            RiskPolicy::from_json("[]"),
            Err(RiskPolicyError::Parse(_))
        ));
    }

    #[test]
    fn a_policy_takes_the_matrix_in_force() -> Result<(), RiskPolicyError> {
        let july = DateTime::<Utc>::from_timestamp(1_782_864_000, 0).unwrap_or_default();
        let stricter = RiskMatrix::new(2, [[RiskLevel::VeryHigh; 3]; 3]);
        let matrices = RiskMatrices::reference().with(stricter.clone(), july)?;
        let policy = RiskPolicy::default();
        let before = july - TimeDelta::days(1);
        assert_eq!(
            policy.in_force_at(&matrices, before).matrix,
            RiskMatrix::reference()
        );
        assert_eq!(policy.in_force_at(&matrices, july).matrix, stricter);
        assert_eq!(policy.in_force_at(&RiskMatrices::new(), july), policy);
        Ok(())
    }

    fn any_risk() -> impl Strategy<Value = RiskLevel> {
        prop::sample::select(RiskLevel::ALL.to_vec())
    }

    fn any_level() -> impl Strategy<Value = Level> {
        prop::sample::select(Level::ALL.to_vec())
    }

    prop_compose! {
        fn any_policy()(
            cells in prop::array::uniform3(prop::array::uniform3(any_risk())),
            lead in 0i64..200,
            major_from in any_risk(),
            major_services in prop::option::of(1usize..10),
        ) -> RiskPolicy {
            RiskPolicy {
                matrix: RiskMatrix::new(1, cells),
                normal_lead_time: TimeDelta::hours(lead),
                major_from,
                major_services,
            }
        }
    }

    proptest! {
        /// The verdict's risk is the matrix's, raised once per condition that held, never below
        /// it; the conditions are exactly those that hold.
        #[test]
        fn the_risk_is_the_base_raised_once_per_condition(
            policy in any_policy(),
            kind in prop::sample::select(ChangeKind::ALL.to_vec()),
            probability in any_level(),
            impact in any_level(),
            lead in prop::option::of(-48i64..300),
            services in 0usize..12,
            critical in any::<bool>(),
            maintenance in any::<bool>(),
        ) {
            let findings = findings(
                services,
                if critical { &["svc-0"] } else { &[] },
                if maintenance { &["srv-01"] } else { &[] },
            );
            let input = RiskInput {
                kind,
                probability,
                impact,
                lead_time: lead.map(TimeDelta::hours),
                findings: &findings,
            };
            let verdict = policy.assess(&input);
            prop_assert_eq!(verdict.base, policy.matrix.risk(probability, impact));
            let raised = verdict.conditions.iter().fold(verdict.base, |r, _| r.raised());
            prop_assert_eq!(verdict.risk, raised);
            prop_assert!(verdict.risk >= verdict.base);
            let short = kind == ChangeKind::Normal
                && lead.is_some_and(|h| TimeDelta::hours(h) < policy.normal_lead_time);
            let expected = usize::from(short) + usize::from(critical) + usize::from(maintenance);
            prop_assert_eq!(verdict.conditions.len(), expected);
            let major = verdict.risk >= policy.major_from
                || policy.major_services.is_some_and(|n| services >= n);
            prop_assert_eq!(verdict.major, major);
        }
    }
}
