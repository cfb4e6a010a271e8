//! The risk policy and risk matrices as written (TOML or JSON), and their validation: every
//! refusal names the field that is wrong.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use smsys_core::records::change::RiskLevel;

use super::{RiskMatrix, RiskPolicy};

/// Why a risk policy or a set of risk matrices was refused. Each names the bad field by its
/// path in the text: `major_from`, `matrix.medium`, `matrix[1].low[2]` (entries of a
/// `[[matrix]]` list and values of a row counted from 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskPolicyError {
    /// The text does not parse (bad TOML or JSON, an unknown field, a wrong type).
    #[error("risk policy does not parse: {0}")]
    Parse(String),
    /// A required field is missing.
    #[error("risk policy: {field} is missing")]
    Missing {
        /// The field.
        field: String,
    },
    /// A value that names no risk level.
    #[error("risk policy: {field} is {value:?}, not a risk level (low, moderate, high, very_high)")]
    UnknownRisk {
        /// The field.
        field: String,
        /// The value given.
        value: String,
    },
    /// A matrix row without exactly one risk per impact.
    #[error("risk policy: {field} has {found} risk(s), it needs 3 (impact high, medium, low)")]
    RowLength {
        /// The row.
        field: String,
        /// How many it has.
        found: usize,
    },
    /// A value out of its range.
    #[error("risk policy: {field} is {value}, it must be at least 1")]
    TooSmall {
        /// The field.
        field: String,
        /// The value given.
        value: u64,
    },
    /// A field given where it has no meaning.
    #[error("risk policy: {field} is not allowed here: {reason}")]
    NotAllowed {
        /// The field.
        field: String,
        /// Why.
        reason: &'static str,
    },
    /// Two matrices with one version.
    #[error("risk matrices: version {version} is given twice")]
    DuplicateVersion {
        /// The version.
        version: u32,
    },
    /// A version that is not the newest or does not take effect after the newest.
    #[error(
        "risk matrices: version {version} must be newer than version {previous} and take effect after it ({previous_from})"
    )]
    NotAfterPrevious {
        /// The version added.
        version: u32,
        /// The newest version before it.
        previous: u32,
        /// When that version took effect.
        previous_from: DateTime<Utc>,
    },
}

/// A matrix as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MatrixText {
    version: Option<u32>,
    effective_from: Option<DateTime<Utc>>,
    high: Option<Vec<String>>,
    medium: Option<Vec<String>>,
    low: Option<Vec<String>>,
}

/// A policy as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyText {
    normal_lead_time_hours: Option<u32>,
    major_from: Option<String>,
    major_services: Option<u64>,
    matrix: Option<MatrixText>,
}

/// Dated matrices as written: a `[[matrix]]` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MatricesText {
    #[serde(default)]
    pub(super) matrix: Vec<MatrixText>,
}

pub(super) fn parse_toml<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, RiskPolicyError> {
    toml::from_str(text).map_err(|e| RiskPolicyError::Parse(e.to_string()))
}

pub(super) fn parse_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, RiskPolicyError> {
    serde_json::from_str(text).map_err(|e| RiskPolicyError::Parse(e.to_string()))
}

fn required<T>(value: Option<T>, field: impl Into<String>) -> Result<T, RiskPolicyError> {
    value.ok_or_else(|| RiskPolicyError::Missing {
        field: field.into(),
    })
}

fn risk(value: &str, field: String) -> Result<RiskLevel, RiskPolicyError> {
    RiskLevel::ALL
        .into_iter()
        .find(|level| level.as_str() == value)
        .ok_or_else(|| RiskPolicyError::UnknownRisk {
            field,
            value: value.to_owned(),
        })
}

fn row(values: Option<Vec<String>>, field: String) -> Result<[RiskLevel; 3], RiskPolicyError> {
    let values = required(values, field.clone())?;
    let [high, medium, low] = values.as_slice() else {
        return Err(RiskPolicyError::RowLength {
            found: values.len(),
            field,
        });
    };
    Ok([
        risk(high, format!("{field}[0]"))?,
        risk(medium, format!("{field}[1]"))?,
        risk(low, format!("{field}[2]"))?,
    ])
}

impl MatrixText {
    /// The matrix and its effective date, named `at` in errors (`matrix`, `matrix[1]`).
    pub(super) fn read(
        self,
        at: &str,
    ) -> Result<(RiskMatrix, Option<DateTime<Utc>>), RiskPolicyError> {
        let version = required(self.version, format!("{at}.version"))?;
        if version == 0 {
            return Err(RiskPolicyError::TooSmall {
                field: format!("{at}.version"),
                value: 0,
            });
        }
        let cells = [
            row(self.high, format!("{at}.high"))?,
            row(self.medium, format!("{at}.medium"))?,
            row(self.low, format!("{at}.low"))?,
        ];
        Ok((RiskMatrix::new(version, cells), self.effective_from))
    }
}

impl PolicyText {
    /// The policy, validated.
    pub(super) fn read(self) -> Result<RiskPolicy, RiskPolicyError> {
        let (matrix, effective_from) = required(self.matrix, "matrix")?.read("matrix")?;
        if effective_from.is_some() {
            return Err(RiskPolicyError::NotAllowed {
                field: "matrix.effective_from".to_owned(),
                reason: "a policy holds one matrix; dated versions belong in risk matrices",
            });
        }
        let hours = required(self.normal_lead_time_hours, "normal_lead_time_hours")?;
        let major_from = required(self.major_from, "major_from")?;
        let major_from = risk(&major_from, "major_from".to_owned())?;
        let major_services = match self.major_services {
            Some(0) => {
                return Err(RiskPolicyError::TooSmall {
                    field: "major_services".to_owned(),
                    value: 0,
                });
            }
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            None => None,
        };
        Ok(RiskPolicy {
            matrix,
            normal_lead_time: TimeDelta::hours(i64::from(hours)),
            major_from,
            major_services,
        })
    }
}
