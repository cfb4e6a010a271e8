//! Compliance evidence: the clause map as data and the evidence pack an auditor samples,
//! computed from the log.
//!
//! - [`ClauseMap`]: for each clause of ISO/IEC 20000-1 (8.2.6, 8.3.3, 8.5.1, 8.5.3, 8.6.1,
//!   8.6.2, 8.6.3, 8.7.1, 9.4, 10.1), its activities and the event types that evidence each,
//!   loaded from TOML ([`ClauseMap::reference`] is the shipped map) and extended by products
//!   with their own events;
//! - [`ChangeEvidence`] (8.5.1) and [`ReleaseEvidence`] (8.5.3): completeness figures over the
//!   records logged in a [`Period`], each a [`Figure`] with the records that fall short and
//!   why. Both are pure functions of folded states; [`Estate::fold_from`] folds those states
//!   from a store, and [`EvidencePack::from_store`] does both.
//!
//! # The JSON pack
//!
//! [`EvidencePack`] serialises (serde) as:
//!
//! ```text
//! {
//!   "period": { "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z" },
//!   "changes": {
//!     "clause": "8.5.1",
//!     "changes": 12,                      // changes logged in the period
//!     "assessed": Figure,                 // normal and emergency changes assessed
//!     "authorised_by_other": Figure,      // authorised or implemented normal and emergency
//!                                         // changes, authorised by others than the requester
//!     "remediation_plan": Figure,         // changes with a remediation plan
//!     "reviewed": Figure,                 // implemented changes reviewed
//!     "failed_remediated": Figure,        // failed changes remediated
//!     "failed_investigated": Figure,      // failed changes investigated
//!     "emergency_share": Figure           // emergency changes among all (no shortfalls)
//!   },
//!   "releases": {
//!     "clause": "8.5.3",
//!     "releases": 4,                      // releases logged in the period
//!     "deployed_with_acceptance": Figure, // deployed releases whose criteria are met
//!     "deployed_with_approval": Figure,   // deployed releases approved
//!     "deployed_with_baseline": Figure,   // deployed releases, each deployment on a baseline
//!     "early_life_reviewed": Figure,      // releases in or past early life, reviewed
//!     "rollbacks_per_release": Figure     // rollbacks / releases; shortfalls: not restored
//!   }
//! }
//! ```
//!
//! where a `Figure` is
//!
//! ```text
//! { "name": "assessed", "description": "...", "numerator": 9, "denominator": 10,
//!   "percent": 90.0,                      // null when the denominator is 0
//!   "shortfalls": [ { "record": "CHG-7", "why": "not assessed" } ] }
//! ```
//!
//! Shortfalls are sorted by record, then reason. A record belongs to a period when it was
//! logged in it (`[start, end)`); events that occurred at or after the end are not read, so a
//! pack describes the records as they stood when the period ended.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use smsys_core::records::Change;
//! use smsys_processes::evidence::{ChangeEvidence, Period};
//!
//! let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
//! let end = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
//! let period = Period::new(start, end)?;
//! let none: Vec<Change> = Vec::new();
//! let evidence = ChangeEvidence::from_states(none.iter(), period);
//! assert_eq!(evidence.assessed.denominator, 0);
//! assert_eq!(evidence.assessed.percent, None);
//! let json = serde_json::to_value(&evidence)?;
//! assert_eq!(json["clause"], "8.5.1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod changes;
mod clause_map;
mod fold;
mod releases;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use smsys_core::records::Reference;
use smsys_core::{EventStore, ReadFailure, StoreError, StreamId, Version};

pub use changes::ChangeEvidence;
pub use clause_map::{
    Activity, ActivityId, Clause, ClauseId, ClauseMap, ClauseMapError, Evidenced,
};
pub use fold::Estate;
pub use releases::ReleaseEvidence;

/// The period evidence covers: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Period {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Period {
    /// The period from `start` (inclusive) to `end` (exclusive); `end` must come after `start`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, EvidenceError> {
        if end <= start {
            return Err(EvidenceError::EmptyPeriod { start, end });
        }
        Ok(Self { start, end })
    }

    /// Its start (inclusive).
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Its end (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// Whether `instant` falls in it.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }
}

/// A record that falls short of a figure, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shortfall {
    /// The record.
    pub record: Reference,
    /// Why it falls short.
    pub why: String,
}

/// One figure an auditor samples: how many records of those concerned meet it, and the ones
/// that do not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Its stable name, e.g. `assessed`.
    pub name: String,
    /// What it counts.
    pub description: String,
    /// The records that meet it (for a share or a rate, the records or events counted).
    pub numerator: u64,
    /// The records concerned.
    pub denominator: u64,
    /// `100 * numerator / denominator`, `None` when no record is concerned.
    pub percent: Option<f64>,
    /// The records that fall short, sorted by record then reason.
    pub shortfalls: Vec<Shortfall>,
}

impl Figure {
    /// A figure of `numerator` out of `denominator` with `shortfalls` (sorted here).
    pub fn new(
        name: &str,
        description: &str,
        numerator: u64,
        denominator: u64,
        mut shortfalls: Vec<Shortfall>,
    ) -> Self {
        shortfalls.sort();
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            numerator,
            denominator,
            percent: percent(numerator, denominator),
            shortfalls,
        }
    }
}

/// `100 * numerator / denominator`, `None` for a zero denominator.
pub fn percent(numerator: u64, denominator: u64) -> Option<f64> {
    // Counts of records stay far below 2^52: the conversion is exact.
    #[allow(
        clippy::cast_precision_loss,
        reason = "record counts are far below 2^52"
    )]
    let ratio = (denominator > 0).then(|| numerator as f64 * 100.0 / denominator as f64);
    ratio
}

/// A completeness figure counted record by record.
struct Tally {
    name: &'static str,
    description: &'static str,
    met: u64,
    concerned: u64,
    shortfalls: Vec<Shortfall>,
}

impl Tally {
    fn new(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            met: 0,
            concerned: 0,
            shortfalls: Vec::new(),
        }
    }

    /// Counts `record` as concerned: met when `shortfall` is `None`.
    fn sample(&mut self, record: &Reference, shortfall: Option<String>) {
        self.concerned += 1;
        match shortfall {
            None => self.met += 1,
            Some(why) => self.shortfalls.push(Shortfall {
                record: record.clone(),
                why,
            }),
        }
    }

    fn figure(self) -> Figure {
        Figure::new(
            self.name,
            self.description,
            self.met,
            self.concerned,
            self.shortfalls,
        )
    }
}

/// Why evidence could not be read from a store.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// A period whose end does not come after its start.
    #[error("period from {start} to {end} is empty")]
    EmptyPeriod {
        /// Its start.
        start: DateTime<Utc>,
        /// Its end.
        end: DateTime<Utc>,
    },
    /// The store failed.
    #[error("evidence: reading the log: {0}")]
    Store(#[from] StoreError),
    /// A stored event could not be read as its type's event.
    #[error("evidence: {stream} version {version}: {source}")]
    Decode {
        /// The stream.
        stream: StreamId,
        /// The event's version.
        version: Version,
        /// What failed.
        source: ReadFailure,
    },
}

/// The evidence pack for a period: changes (8.5.1) and releases (8.5.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidencePack {
    /// The period.
    pub period: Period,
    /// The evidence of change management.
    pub changes: ChangeEvidence,
    /// The evidence of release and deployment management.
    pub releases: ReleaseEvidence,
}

impl EvidencePack {
    /// The pack of `estate` for `period`.
    pub fn from_estate(estate: &Estate, period: Period) -> Self {
        Self {
            period,
            changes: ChangeEvidence::from_states(estate.changes(), period),
            releases: ReleaseEvidence::from_states(estate.releases(), period),
        }
    }

    /// The pack for `period` of the changes and releases in `store`.
    pub async fn from_store(store: &dyn EventStore, period: Period) -> Result<Self, EvidenceError> {
        let estate = Estate::fold_from(store, period).await?;
        Ok(Self::from_estate(&estate, period))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};
    use smsys_core::records::change::{ChangeControlEvent, ChangeLogged, ImplementationOutcome};
    use smsys_core::records::release::{
        AcceptanceCriterion, DeploymentOutcome, ReleaseControlEvent, ReleaseLogged,
    };
    use smsys_core::records::{
        Change, ChangeKind, Channel, DefinitionRef, Logged, Release, ReleaseKind, TypedEvent,
    };
    use smsys_core::{Actor, EventSourced, Stamp};

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
            .single()
            .unwrap_or_else(|| unreachable!())
    }

    fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
        text.parse().unwrap_or_else(|e| unreachable!("{e:?}"))
    }

    fn period() -> Period {
        Period::new(at() - TimeDelta::days(1), at() + TimeDelta::days(1))
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn logged(reference: &str) -> Logged {
        Logged {
            reference: id(reference),
            lifecycle: DefinitionRef {
                name: "imported".into(),
                version: 1,
            },
            status: "new".into(),
            caller: id("rita"),
            channel: Channel::Portal,
            service: id("email"),
            affected_cis: Vec::new(),
            summary: "imported".into(),
            description: String::new(),
            attributes: Default::default(),
        }
    }

    fn fold<S: EventSourced + Default>(events: &[S::Event]) -> S {
        let actor = Actor::new("import").unwrap_or_else(|e| unreachable!("{e}"));
        let mut state = S::default();
        for event in events {
            state.evolve(event, Stamp::new(Some(&actor), at()));
        }
        state
    }

    // Imported or migrated logs may hold what the shipped lifecycles refuse: the figures
    // still name them.
    #[test]
    fn a_change_authorised_by_its_requester_or_implemented_unauthorised_falls_short() {
        let log = |reference: &str| {
            TypedEvent::Logged(ChangeLogged {
                record: logged(reference),
                kind: ChangeKind::Normal,
                template: None,
            })
        };
        let authorised = |who: &[&str]| {
            TypedEvent::Own(ChangeControlEvent::Authorised {
                rule: "change_manager".into(),
                approvers: who.iter().map(|w| id(w)).collect(),
            })
        };
        let implemented = TypedEvent::Own(ChangeControlEvent::Implemented {
            outcome: ImplementationOutcome::Success,
            notes: String::new(),
        });
        let reset = TypedEvent::Own(ChangeControlEvent::ApprovalsReset {
            reason: "replanned".into(),
        });
        let changes: Vec<Change> = vec![
            fold(&[log("CHG-1"), authorised(&["carl", "rita"])]),
            fold(&[log("CHG-2"), authorised(&["carl"]), reset, implemented]),
            fold(&[log("CHG-3"), authorised(&[])]),
            fold(&[log("CHG-4"), authorised(&["carl"])]),
        ];
        let evidence = ChangeEvidence::from_states(&changes, period());
        let figure = &evidence.authorised_by_other;
        assert_eq!((figure.numerator, figure.denominator), (1, 4));
        let why: Vec<String> = figure
            .shortfalls
            .iter()
            .map(|s| format!("{} {}", s.record, s.why))
            .collect();
        assert_eq!(
            why,
            [
                "CHG-1 authorised by the requester rita",
                "CHG-2 implemented without an authorisation in force",
                "CHG-3 authorised with no approver named",
            ]
        );
    }

    #[test]
    fn a_release_deployed_without_baseline_acceptance_or_approval_falls_short() {
        let log = TypedEvent::Logged(ReleaseLogged {
            record: logged("REL-1"),
            kind: ReleaseKind::Minor,
            criteria: vec![
                AcceptanceCriterion {
                    name: "tests".into(),
                    description: String::new(),
                },
                AcceptanceCriterion {
                    name: "sign_off".into(),
                    description: String::new(),
                },
            ],
            environments: vec!["production".into()],
            early_life_days: 3,
        });
        let verified = TypedEvent::Own(ReleaseControlEvent::CriterionVerified {
            criterion: "tests".into(),
            passed: true,
            evidence: "run 1".into(),
        });
        let deployed = TypedEvent::Own(ReleaseControlEvent::Deployed {
            environment: "production".into(),
            outcome: DeploymentOutcome::Success,
            notes: String::new(),
        });
        let release: Release = fold(&[log, verified, deployed]);
        let evidence = ReleaseEvidence::from_states([&release], period());
        let why = |figure: &Figure| -> Vec<String> {
            figure.shortfalls.iter().map(|s| s.why.clone()).collect()
        };
        assert_eq!(
            why(&evidence.deployed_with_acceptance),
            ["deployed with criteria not met: sign_off"]
        );
        assert_eq!(
            why(&evidence.deployed_with_approval),
            ["deployed without approval"]
        );
        assert_eq!(
            why(&evidence.deployed_with_baseline),
            ["deployed to production without a baseline"]
        );
        assert_eq!(evidence.early_life_reviewed.denominator, 0);
    }
}
