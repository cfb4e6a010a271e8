//! Every version of the risk matrix, each in force from its effective date, the way SLA
//! definitions are versioned: an assessment reads the matrix in force at its instant and
//! records its version.

use chrono::{DateTime, Utc};

use super::RiskMatrix;
use super::definition::{MatricesText, RiskPolicyError, parse_json, parse_toml};

/// A risk matrix and the instant from which it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatedRiskMatrix {
    /// The matrix.
    pub matrix: RiskMatrix,
    /// Assessments from this instant on read it (until a newer version takes effect).
    pub effective_from: DateTime<Utc>,
}

/// The versions of the risk matrix, by version. A new version must be newer than every other
/// and take effect after them, so that adding one never changes the matrix an assessment
/// already made read.
///
/// Loadable from a `[[matrix]]` list (TOML, [`RiskMatrices::from_toml`]; JSON, `{"matrix":
/// [...]}`), each entry a matrix as in `change/risk.toml` with an `effective_from` instant:
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use smsys_core::records::Level;
/// use smsys_core::records::change::RiskLevel;
/// use smsys_processes::change::RiskMatrices;
///
/// let matrices = RiskMatrices::from_toml(r#"
///     [[matrix]]
///     version = 1
///     effective_from = "2026-01-01T00:00:00Z"
///     high = ["very_high", "high", "moderate"]
///     medium = ["high", "moderate", "low"]
///     low = ["moderate", "low", "low"]
///
///     [[matrix]]
///     version = 2
///     effective_from = "2026-07-01T00:00:00Z"
///     high = ["very_high", "very_high", "high"]
///     medium = ["high", "moderate", "low"]
///     low = ["moderate", "low", "low"]
/// "#)?;
/// let may = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
/// let in_force = matrices.in_force_at(may).map(|m| m.version());
/// assert_eq!(in_force, Some(1));
/// let august = Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).unwrap();
/// let matrix = matrices.in_force_at(august).expect("version 2");
/// assert_eq!(matrix.risk(Level::High, Level::Medium), RiskLevel::VeryHigh);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RiskMatrices {
    /// By ascending version (and so by ascending effective date).
    versions: Vec<DatedRiskMatrix>,
}

impl RiskMatrices {
    /// No version.
    pub fn new() -> Self {
        Self::default()
    }

    /// The reference matrix ([`RiskMatrix::reference`]) in force since the earliest instant.
    pub fn reference() -> Self {
        Self {
            versions: vec![DatedRiskMatrix {
                matrix: RiskMatrix::reference(),
                effective_from: DateTime::<Utc>::MIN_UTC,
            }],
        }
    }

    /// Adds `matrix`, in force from `effective_from`. Refused when its version is 0, is
    /// already held, or is not newer than every other or takes effect no later than them.
    pub fn with(
        mut self,
        matrix: RiskMatrix,
        effective_from: DateTime<Utc>,
    ) -> Result<Self, RiskPolicyError> {
        let version = matrix.version();
        if version == 0 {
            return Err(RiskPolicyError::TooSmall {
                field: "version".to_owned(),
                value: 0,
            });
        }
        if self.get(version).is_some() {
            return Err(RiskPolicyError::DuplicateVersion { version });
        }
        if let Some(latest) = self.versions.last()
            && (latest.matrix.version() > version || latest.effective_from >= effective_from)
        {
            return Err(RiskPolicyError::NotAfterPrevious {
                version,
                previous: latest.matrix.version(),
                previous_from: latest.effective_from,
            });
        }
        self.versions.push(DatedRiskMatrix {
            matrix,
            effective_from,
        });
        Ok(self)
    }

    /// Reads and validates a `[[matrix]]` list in TOML; every entry needs an
    /// `effective_from`.
    pub fn from_toml(text: &str) -> Result<Self, RiskPolicyError> {
        Self::read(parse_toml(text)?)
    }

    /// Reads and validates `{"matrix": [...]}` in JSON.
    pub fn from_json(text: &str) -> Result<Self, RiskPolicyError> {
        Self::read(parse_json(text)?)
    }

    fn read(text: MatricesText) -> Result<Self, RiskPolicyError> {
        text.matrix
            .into_iter()
            .enumerate()
            .try_fold(Self::new(), |matrices, (n, entry)| {
                let at = format!("matrix[{n}]");
                let (matrix, effective_from) = entry.read(&at)?;
                let effective_from = effective_from.ok_or(RiskPolicyError::Missing {
                    field: format!("{at}.effective_from"),
                })?;
                matrices.with(matrix, effective_from)
            })
    }

    /// The matrix in force at `at`: the newest version taking effect at or before it.
    pub fn in_force_at(&self, at: DateTime<Utc>) -> Option<&RiskMatrix> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.effective_from <= at)
            .map(|v| &v.matrix)
    }

    /// Version `version`.
    pub fn get(&self, version: u32) -> Option<&RiskMatrix> {
        self.versions
            .iter()
            .find(|v| v.matrix.version() == version)
            .map(|v| &v.matrix)
    }

    /// Every version with its effective date, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &DatedRiskMatrix> {
        self.versions.iter()
    }

    /// How many versions it holds.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use smsys_core::records::change::RiskLevel;

    use super::*;

    fn at(month: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn matrix(version: u32) -> RiskMatrix {
        RiskMatrix::new(version, [[RiskLevel::Low; 3]; 3])
    }

    #[test]
    fn the_version_in_force_is_the_newest_taking_effect_by_then() -> Result<(), RiskPolicyError> {
        let matrices = RiskMatrices::new()
            .with(matrix(1), at(1))?
            .with(matrix(2), at(4))?
            .with(matrix(5), at(9))?;
        let version = |month| matrices.in_force_at(at(month)).map(RiskMatrix::version);
        assert_eq!(version(1), Some(1), "from its effective instant on");
        assert_eq!(version(3), Some(1));
        assert_eq!(version(4), Some(2));
        assert_eq!(version(12), Some(5));
        let before = at(1) - chrono::TimeDelta::seconds(1);
        assert_eq!(matrices.in_force_at(before), None);
        assert_eq!(matrices.get(2).map(RiskMatrix::version), Some(2));
        assert_eq!(matrices.get(3), None);
        assert_eq!(matrices.len(), 3);
        let reference = RiskMatrices::reference();
        assert_eq!(reference.in_force_at(at(1)), Some(&RiskMatrix::reference()));
        Ok(())
    }

    #[test]
    fn versions_must_come_in_order() {
        let one = RiskMatrices::new().with(matrix(1), at(6));
        assert_eq!(
            one.and_then(|m| m.with(matrix(1), at(9))),
            Err(RiskPolicyError::DuplicateVersion { version: 1 })
        );
        let not_after = RiskMatrices::new()
            .with(matrix(1), at(6))
            .and_then(|m| m.with(matrix(2), at(6)));
        assert_eq!(
            not_after,
            Err(RiskPolicyError::NotAfterPrevious {
                version: 2,
                previous: 1,
                previous_from: at(6)
            })
        );
        let older = RiskMatrices::new()
            .with(matrix(3), at(6))
            .and_then(|m| m.with(matrix(2), at(9)));
        assert!(matches!(
            older,
            Err(RiskPolicyError::NotAfterPrevious { .. })
        ));
        assert!(matches!(
            RiskMatrices::new().with(matrix(0), at(1)),
            Err(RiskPolicyError::TooSmall { .. })
        ));
    }

    #[test]
    fn a_list_names_the_entry_that_is_wrong() {
        let json = r#"{"matrix": [
            {"version": 1, "effective_from": "2026-01-01T00:00:00Z",
             "high": ["high", "high", "high"], "medium": ["low", "low", "low"],
             "low": ["low", "low", "low"]},
            {"version": 2,
             "high": ["high", "high", "high"], "medium": ["low", "low", "low"],
             "low": ["low", "low", "low"]}
        ]}"#;
        assert_eq!(
            RiskMatrices::from_json(json),
            Err(RiskPolicyError::Missing {
                field: "matrix[1].effective_from".into()
            })
        );
        let toml = "[[matrix]]\nversion = 1\neffective_from = '2026-01-01T00:00:00Z'\n\
                    high = ['low', 'low', 'low']\nmedium = ['low', 'low']\nlow = ['low', 'low', 'low']";
        let refused = RiskMatrices::from_toml(toml);
        assert_eq!(
            refused,
            Err(RiskPolicyError::RowLength {
                field: "matrix[0].medium".into(),
                found: 2
            })
        );
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err("risk policy: matrix[0].medium has 2 risk(s), it needs 3 (impact high, medium, low)".into())
        );
        assert_eq!(RiskMatrices::from_toml(""), Ok(RiskMatrices::new()));
    }
}
