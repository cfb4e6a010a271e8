//! What assessing a change reads from the configuration information: the services and
//! customers its CIs affect, which of those services are critical, which of its CIs are in
//! maintenance.

use std::fmt;

use smsys_core::records::CiId;
use smsys_core::records::change::ImpactAnalysis;

/// The impact of changing some CIs, as the configuration information gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImpactFindings {
    /// What is recorded on the change.
    pub analysis: ImpactAnalysis,
    /// The affected services marked critical.
    pub critical_services: Vec<CiId>,
    /// The changed CIs that are in maintenance now.
    pub in_maintenance: Vec<CiId>,
}

/// Where an assessment reads a change's impact from; `decide` asks it through
/// [`ChangePolicy::impact`](super::ChangePolicy::impact).
pub trait ImpactSource: Send + Sync + fmt::Debug {
    /// The impact of changing `cis`.
    fn analyse(&self, cis: &[CiId]) -> ImpactFindings;
}
