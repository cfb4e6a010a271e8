//! The trend policy: the window and the threshold of each dimension, held as data.

use std::fmt;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// What problem identification looks at in incident data (ISO/IEC 20000-1 8.6.3): how far
/// back, and how many incidents on one configuration item, service or category make a trend.
///
/// Loadable from TOML ([`TrendPolicy::from_toml`]), where a field left out is off (a threshold
/// left out disables its dimension, TOML having no null; `major_without_problem` is false) or,
/// for `window_days`, 7. [`TrendPolicy::default`] is the policy with every dimension on.
///
/// ```
/// use smsys_processes::TrendPolicy;
/// let policy = TrendPolicy::from_toml(
///     "window_days = 14\nci = 4\ncategory = 10\nmajor_without_problem = false",
/// )?;
/// assert_eq!(policy.window(), chrono::TimeDelta::days(14));
/// assert_eq!(policy.service, None, "no service threshold: the dimension is off");
/// # Ok::<(), smsys_processes::trend::TrendPolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendPolicy {
    /// The window, in days: incidents logged in `(as_of - window, as_of]` count. At least 1.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// Incidents on one configuration item that make a trend (at least 2; `None`: off).
    #[serde(default)]
    pub ci: Option<u32>,
    /// Incidents on one service that make a trend (at least 2; `None`: off).
    #[serde(default)]
    pub service: Option<u32>,
    /// Incidents in one category that make a trend (at least 2; `None`: off).
    #[serde(default)]
    pub category: Option<u32>,
    /// Whether every major incident without a linked problem is a candidate on its own.
    #[serde(default)]
    pub major_without_problem: bool,
}

fn default_window_days() -> u32 {
    TrendPolicy::DEFAULT_WINDOW_DAYS
}

impl Default for TrendPolicy {
    /// A 7-day window; 3 incidents on one configuration item, 5 on one service, 5 in one
    /// category; major incidents without a problem proposed.
    fn default() -> Self {
        Self {
            window_days: Self::DEFAULT_WINDOW_DAYS,
            ci: Some(3),
            service: Some(5),
            category: Some(5),
            major_without_problem: true,
        }
    }
}

impl TrendPolicy {
    /// The window of the default policy, in days.
    pub const DEFAULT_WINDOW_DAYS: u32 = 7;
    /// The smallest threshold: one incident is not a trend.
    pub const MIN_THRESHOLD: u32 = 2;

    /// Reads a policy from TOML and validates it. Fields left out are off (thresholds and
    /// `major_without_problem`) or 7 days (`window_days`).
    pub fn from_toml(text: &str) -> Result<Self, TrendPolicyError> {
        let policy: Self =
            toml::from_str(text).map_err(|e| TrendPolicyError::Parse(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the window (at least a day) and each threshold given (at least
    /// [`Self::MIN_THRESHOLD`]); the first bad field is named.
    pub fn validate(&self) -> Result<(), TrendPolicyError> {
        if self.window_days == 0 {
            return Err(TrendPolicyError::Window);
        }
        for dimension in TrendDimension::COUNTED {
            if let Some(value) = self.threshold(dimension)
                && value < Self::MIN_THRESHOLD
            {
                return Err(TrendPolicyError::Threshold { dimension, value });
            }
        }
        Ok(())
    }

    /// The window as a duration.
    pub fn window(&self) -> TimeDelta {
        TimeDelta::days(i64::from(self.window_days))
    }

    /// The threshold of a counted dimension (`None`: off; always `None` for
    /// [`TrendDimension::MajorIncident`], which counts nothing).
    pub fn threshold(&self, dimension: TrendDimension) -> Option<u32> {
        match dimension {
            TrendDimension::Ci => self.ci,
            TrendDimension::Service => self.service,
            TrendDimension::Category => self.category,
            TrendDimension::MajorIncident => None,
        }
    }
}

/// Why a trend policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrendPolicyError {
    /// The text is not a trend policy (bad TOML, an unknown field, a wrong type).
    #[error("trend policy: {0}")]
    Parse(String),
    /// `window_days` is 0.
    #[error("trend policy: window_days must be at least 1")]
    Window,
    /// A threshold is below [`TrendPolicy::MIN_THRESHOLD`].
    #[error("trend policy: threshold {dimension} is {value}, it must be at least 2")]
    Threshold {
        /// The field (`ci`, `service` or `category`).
        dimension: TrendDimension,
        /// The value given.
        value: u32,
    },
}

/// What a trend is grouped by. Candidates are ordered by dimension in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendDimension {
    /// Incidents on one configuration item.
    Ci,
    /// Incidents on one service.
    Service,
    /// Incidents in one category.
    Category,
    /// One major incident without a linked problem.
    MajorIncident,
}

impl TrendDimension {
    /// The dimensions counted against a threshold.
    pub const COUNTED: [TrendDimension; 3] = [
        TrendDimension::Ci,
        TrendDimension::Service,
        TrendDimension::Category,
    ];

    /// The name in policies and candidate ids: `ci`, `service`, `category`, `major`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TrendDimension::Ci => "ci",
            TrendDimension::Service => "service",
            TrendDimension::Category => "category",
            TrendDimension::MajorIncident => "major",
        }
    }
}

impl fmt::Display for TrendDimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid_and_an_empty_file_turns_dimensions_off() {
        assert_eq!(TrendPolicy::default().validate(), Ok(()));
        let empty = TrendPolicy::from_toml("");
        assert_eq!(
            empty,
            Ok(TrendPolicy {
                window_days: 7,
                ci: None,
                service: None,
                category: None,
                major_without_problem: false,
            })
        );
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(
            TrendPolicy::from_toml("window_days = 0"),
            Err(TrendPolicyError::Window)
        );
        let low = TrendPolicy::from_toml("ci = 3\nservice = 1");
        assert_eq!(
            low,
            Err(TrendPolicyError::Threshold {
                dimension: TrendDimension::Service,
                value: 1
            })
        );
        assert_eq!(
            low.map_err(|e| e.to_string()),
            Err("trend policy: threshold service is 1, it must be at least 2".into())
        );
        let unknown = TrendPolicy::from_toml("windows = 3").map_err(|e| e.to_string());
        assert!(
            unknown.as_ref().is_err_and(|e| e.contains("windows")),
            "{unknown:?}"
        );
        assert!(matches!(
            TrendPolicy::from_toml("ci = -1"),
            Err(TrendPolicyError::Parse(_))
        ));
    }
}
