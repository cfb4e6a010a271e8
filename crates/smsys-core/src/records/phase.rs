//! What the engine knows of every status (its phase), of priorities, and of versioned
//! definitions.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The engine-known meaning of a status, whatever a product names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Recorded, not yet worked on.
    New,
    /// Being worked on.
    Active,
    /// Waiting on someone else; SLA clocks may pause.
    Pending,
    /// Resolved (or fulfilled), awaiting confirmation.
    Resolved,
    /// Closed: final.
    Closed,
    /// Cancelled: final.
    Cancelled,
}

impl Phase {
    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 6] = [
        Phase::New,
        Phase::Active,
        Phase::Pending,
        Phase::Resolved,
        Phase::Closed,
        Phase::Cancelled,
    ];

    /// Whether work is still to be done: new, active or pending.
    pub const fn is_open(self) -> bool {
        matches!(self, Phase::New | Phase::Active | Phase::Pending)
    }

    /// Whether nothing can follow (closed or cancelled).
    pub const fn is_final(self) -> bool {
        matches!(self, Phase::Closed | Phase::Cancelled)
    }

    /// The name used in definitions and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::Active => "active",
            Phase::Pending => "pending",
            Phase::Resolved => "resolved",
            Phase::Closed => "closed",
            Phase::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A versioned definition (a lifecycle, an SLA, a calendar) by name and version: what a record
/// says it followed, so that editing a definition never silently rewrites history.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DefinitionRef {
    /// The lifecycle's name.
    pub name: String,
    /// Its version.
    pub version: u32,
}

impl fmt::Display for DefinitionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.name, self.version)
    }
}

/// Impact or urgency on the reference 1 (high) to 3 (low) scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 1.
    High,
    /// 2.
    Medium,
    /// 3.
    Low,
}

impl Level {
    /// Every level, highest first.
    pub const ALL: [Level; 3] = [Level::High, Level::Medium, Level::Low];

    /// 1, 2 or 3.
    pub const fn rank(self) -> u8 {
        match self {
            Level::High => 1,
            Level::Medium => 2,
            Level::Low => 3,
        }
    }
}

/// A priority, 1 (highest) to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Priority(u8);

/// A priority outside 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("priority must be 1 (highest) to 5, found {0}")]
pub struct PriorityError(pub u8);

impl Priority {
    /// Validates a priority.
    pub const fn new(value: u8) -> Result<Self, PriorityError> {
        if value >= 1 && value <= 5 {
            Ok(Self(value))
        } else {
            Err(PriorityError(value))
        }
    }

    /// 1 to 5.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Priority {
    type Error = PriorityError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Priority> for u8 {
    fn from(value: Priority) -> Self {
        value.0
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}
