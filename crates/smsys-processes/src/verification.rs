//! CMDB verification at planned intervals (ISO/IEC 20000-1 8.2.6): a discovered inventory (the
//! CIs and attributes a product's discovery or scan supplies) compared with the CIs recorded,
//! and the result recorded as a verification's events: each discrepancy, and the accuracy.
//! [`DiscrepancyIncidents`] opens an incident, [`DiscrepancyChanges`] a change, for the
//! discrepancies their policies name.
//!
//! ```
//! use smsys_core::records::configuration_item::CiRegistered;
//! use smsys_core::records::{CiEvent, ConfigurationItem, Discrepancy};
//! use smsys_core::{EventSourced, Stamp};
//! use smsys_processes::verification::{DiscoveredCi, Inventory, compare};
//!
//! let mut srv = ConfigurationItem::default();
//! srv.evolve(
//!     &CiEvent::Registered(CiRegistered {
//!         id: "srv-01".parse()?,
//!         ci_type: "server".parse()?,
//!         name: "srv-01".into(),
//!         description: String::new(),
//!         status: "live".into(),
//!         attributes: [("ram_gb".parse()?, "32".into())].into_iter().collect(),
//!         change: None,
//!     }),
//!     Stamp::new(None, chrono::DateTime::UNIX_EPOCH),
//! );
//! let found = DiscoveredCi::new("srv-01".parse()?, "server".parse()?)
//!     .attribute("ram_gb".parse()?, "64");
//! let inventory = Inventory::new("nightly scan", vec![found])?;
//! let comparison = compare(&inventory, [&srv]);
//! assert_eq!(comparison.checked, 1);
//! assert_eq!(comparison.matching, 0);
//! assert!(matches!(
//!     &comparison.discrepancies[0].1,
//!     Discrepancy::AttributeDiffers { .. }
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod follow_up;

pub use follow_up::{
    DiscrepancyChangePolicy, DiscrepancyChanges, DiscrepancyIncidents, DiscrepancyKind,
    DiscrepancyPolicy,
};

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, CiId, CiType, CmdbVerification, ConfigurationItem,
    Discrepancy, Reference, VerificationEvent,
};
use smsys_core::{Aggregate, Context};

/// The status a CI leaves the estate in: a retired CI is not expected to be discovered (the
/// reference CI types' final status).
pub const RETIRED: &str = "retired";

/// The status reported for a retired CI that discovery found without saying its status.
pub const DISCOVERED: &str = "discovered";

/// One CI as discovery found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredCi {
    /// Its id, as the CMDB knows it.
    pub id: CiId,
    /// Its type.
    pub ci_type: CiType,
    /// Its status, when discovery can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The attributes discovery reports: only these are compared.
    #[serde(default)]
    pub attributes: Attributes,
}

impl DiscoveredCi {
    /// A CI of `ci_type` found as `id`, with no status or attribute reported.
    pub fn new(id: CiId, ci_type: CiType) -> Self {
        Self {
            id,
            ci_type,
            status: None,
            attributes: Attributes::new(),
        }
    }

    /// With the status discovery found.
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// With an attribute discovery found.
    pub fn attribute(mut self, name: AttributeName, value: impl Into<AttributeValue>) -> Self {
        self.attributes.insert(name, value.into());
        self
    }
}

/// Why an inventory is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// The same CI twice.
    #[error("inventory {source_name}: CI {ci} is listed twice")]
    Duplicate {
        /// The inventory's source.
        source_name: String,
        /// The CI.
        ci: CiId,
    },
    /// No source named.
    #[error("an inventory names its source")]
    NoSource,
}

/// A discovered inventory: where it came from, the CI types it covers, the CIs found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    source: String,
    scope: Vec<CiType>,
    items: BTreeMap<CiId, DiscoveredCi>,
}

impl Inventory {
    /// An inventory from `source` covering every CI type; each CI listed once.
    pub fn new(
        source: impl Into<String>,
        items: Vec<DiscoveredCi>,
    ) -> Result<Self, InventoryError> {
        let source = source.into();
        if source.trim().is_empty() {
            return Err(InventoryError::NoSource);
        }
        let mut by_id = BTreeMap::new();
        for item in items {
            if by_id.contains_key(&item.id) {
                return Err(InventoryError::Duplicate {
                    source_name: source,
                    ci: item.id,
                });
            }
            by_id.insert(item.id.clone(), item);
        }
        Ok(Self {
            source,
            scope: Vec::new(),
            items: by_id,
        })
    }

    /// Covering only the CI types of `scope` (a scan of servers does not see services): CIs
    /// of other types are neither expected nor counted.
    pub fn covering(mut self, scope: Vec<CiType>) -> Self {
        self.scope = scope;
        self.scope.sort();
        self.scope.dedup();
        self
    }

    /// The source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// How many CIs it holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn covers(&self, ci_type: &CiType) -> bool {
        self.scope.is_empty() || self.scope.contains(ci_type)
    }
}

/// What comparing an inventory with the CMDB found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The inventory's source.
    pub source: String,
    /// The CI types covered (empty: all).
    pub scope: Vec<CiType>,
    /// How many CIs the inventory held.
    pub discovered: u32,
    /// Each discrepancy, by CI then kind.
    pub discrepancies: Vec<(CiId, Discrepancy)>,
    /// CIs checked: recorded (in scope, not retired), discovered, or both.
    pub checked: u32,
    /// CIs with no discrepancy.
    pub matching: u32,
}

impl Comparison {
    /// The share of checked CIs that match, from 0 to 1 (1 when nothing was checked).
    pub fn accuracy(&self) -> f64 {
        if self.checked == 0 {
            1.0
        } else {
            f64::from(self.matching) / f64::from(self.checked)
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Compares `inventory` with the `recorded` CIs (as of now, or as of any past position a
/// graph gives): discovered but not recorded at all; recorded and expected (of a type the
/// inventory covers, not retired) but not discovered; recorded under another type, or in
/// another status (when discovery reports one; a retired CI that is discovered differs in
/// status whatever discovery reports); and each attribute discovery reports that the CMDB
/// holds with another value or not at all.
pub fn compare<'a>(
    inventory: &Inventory,
    recorded: impl IntoIterator<Item = &'a ConfigurationItem>,
) -> Comparison {
    let all: BTreeMap<&CiId, &ConfigurationItem> = recorded
        .into_iter()
        .filter_map(|ci| Some((ci.id()?, ci)))
        .collect();
    let expected: BTreeMap<&CiId, &ConfigurationItem> = all
        .iter()
        .filter(|(_, ci)| ci.status() != Some(RETIRED))
        .filter(|(_, ci)| ci.ci_type().is_some_and(|t| inventory.covers(t)))
        .map(|(id, ci)| (*id, *ci))
        .collect();
    let mut discrepancies = Vec::new();
    for (id, found) in &inventory.items {
        let Some(ci) = all.get(id) else {
            discrepancies.push((
                id.clone(),
                Discrepancy::NotRecorded {
                    discovered_type: found.ci_type.clone(),
                },
            ));
            continue;
        };
        if let Some(recorded_type) = ci.ci_type().filter(|t| **t != found.ci_type) {
            discrepancies.push((
                id.clone(),
                Discrepancy::TypeDiffers {
                    recorded: recorded_type.clone(),
                    discovered: found.ci_type.clone(),
                },
            ));
        }
        let retired = ci.status() == Some(RETIRED);
        let status_differs = found
            .status
            .as_ref()
            .is_some_and(|s| ci.status() != Some(s.as_str()));
        if retired || status_differs {
            discrepancies.push((
                id.clone(),
                Discrepancy::StatusDiffers {
                    recorded: ci.status().unwrap_or_default().to_owned(),
                    discovered: found
                        .status
                        .clone()
                        .unwrap_or_else(|| DISCOVERED.to_owned()),
                },
            ));
        }
        for (name, value) in &found.attributes {
            let held = ci.attribute(name);
            if held != Some(value) {
                discrepancies.push((
                    id.clone(),
                    Discrepancy::AttributeDiffers {
                        name: name.clone(),
                        recorded: held.cloned(),
                        discovered: Some(value.clone()),
                    },
                ));
            }
        }
    }
    for id in expected.keys() {
        if !inventory.items.contains_key(*id) {
            discrepancies.push(((*id).clone(), Discrepancy::NotDiscovered));
        }
    }
    discrepancies.sort_by(|a, b| a.0.cmp(&b.0));
    let checked: BTreeSet<&CiId> = expected
        .keys()
        .copied()
        .chain(inventory.items.keys())
        .collect();
    let differing: BTreeSet<&CiId> = discrepancies.iter().map(|(id, _)| id).collect();
    Comparison {
        source: inventory.source.clone(),
        scope: inventory.scope.clone(),
        discovered: count(inventory.items.len()),
        checked: count(checked.len()),
        matching: count(checked.len() - differing.len()),
        discrepancies,
    }
}

/// What can be asked of a verification.
#[derive(Debug, Clone, PartialEq)]
pub enum VerificationCommand {
    /// Record a comparison: started, each discrepancy, completed, in one append.
    Record {
        /// The verification's reference (its stream is named after it).
        reference: Reference,
        /// What the comparison found.
        comparison: Comparison,
    },
}

/// Why a verification command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerificationRefusal {
    /// Verifications are recorded once.
    #[error("verification {0} is already recorded")]
    AlreadyRecorded(Reference),
}

/// Records verifications: `decide` for [`CmdbVerification`]s.
#[derive(Debug, Clone, Copy)]
pub struct VerificationManagement;

impl Aggregate for VerificationManagement {
    type State = CmdbVerification;
    type Services = ();
    type Command = VerificationCommand;
    type Rejection = VerificationRefusal;

    fn decide(
        state: &CmdbVerification,
        command: &VerificationCommand,
        (): &(),
        _ctx: &Context<'_>,
    ) -> Result<Vec<VerificationEvent>, VerificationRefusal> {
        let VerificationCommand::Record {
            reference,
            comparison,
        } = command;
        if state.is_started() {
            return Err(VerificationRefusal::AlreadyRecorded(reference.clone()));
        }
        let mut events = vec![VerificationEvent::Started {
            reference: reference.clone(),
            source: comparison.source.clone(),
            scope: comparison.scope.clone(),
            discovered: comparison.discovered,
        }];
        events.extend(comparison.discrepancies.iter().map(|(ci, discrepancy)| {
            VerificationEvent::DiscrepancyFound {
                ci: ci.clone(),
                discrepancy: discrepancy.clone(),
            }
        }));
        events.push(VerificationEvent::Completed {
            checked: comparison.checked,
            matching: comparison.matching,
        });
        Ok(events)
    }
}
