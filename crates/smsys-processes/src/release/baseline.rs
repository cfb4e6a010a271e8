//! Where a release reads what it does not hold: the baseline of its CIs (from the
//! configuration graph) and the authorisation of its changes (from the change schedule).

use smsys_core::records::release::{Baseline, BaselineCi};
use smsys_core::records::{ChangeKind, CiId, Phase, RecordKind, Reference};

use crate::CmdbGraph;
use crate::change::ChangeSchedule;

/// Why no baseline could be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    /// The configuration graph has folded no event yet.
    #[error("the configuration graph has not been read yet")]
    NotReady,
    /// CIs the graph does not hold.
    #[error("the configuration graph holds no CI {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    UnknownCis(Vec<CiId>),
    /// The baseline given leaves out CIs of the release.
    #[error("the baseline does not record CI {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Incomplete(Vec<CiId>),
    /// The baseline given carries a hash that is not the hash of the state it records.
    #[error("the baseline's hash {recorded} is not the hash of the state it records ({computed})")]
    NotIntact {
        /// The hash it carries.
        recorded: String,
        /// The hash of its state.
        computed: String,
    },
    /// The source failed.
    #[error("{0}")]
    Source(String),
}

/// Where a release's baseline is read: the exact state of CIs as of one log position.
pub trait BaselineSource: Send + Sync {
    /// A baseline of `cis` (each with its attributes, status and outgoing relationships), as
    /// of one position, or why there is none. Every CI must be known.
    fn baseline(&self, cis: &[CiId]) -> Result<Baseline, BaselineError>;
}

impl BaselineSource for CmdbGraph {
    /// The graph as folded so far, the CIs read under one lock, so every CI stands as of the
    /// same position.
    fn baseline(&self, cis: &[CiId]) -> Result<Baseline, BaselineError> {
        let (position, found) = self.cis_as_folded(cis).ok_or(BaselineError::NotReady)?;
        let mut missing = Vec::new();
        let mut recorded = Vec::with_capacity(cis.len());
        for (id, found) in cis.iter().zip(found) {
            match found {
                Some((node, relationships)) => recorded.push(BaselineCi {
                    relationships,
                    id: node.id,
                    ci_type: node.ci_type,
                    name: node.name,
                    status: node.status,
                    attributes: node.attributes,
                }),
                None => missing.push(id.clone()),
            }
        }
        if missing.is_empty() {
            Ok(Baseline::new(position, recorded))
        } else {
            Err(BaselineError::UnknownCis(missing))
        }
    }
}

/// Where a release reads whether the changes in its scope are authorised.
pub trait ChangeAuthorisations: Send + Sync {
    /// Whether change `reference` is authorised: `None` when it is not known.
    fn authorised(&self, reference: &Reference) -> Option<bool>;
}

impl ChangeAuthorisations for ChangeSchedule {
    /// As the schedule has folded the change: authorised (a standard change is
    /// pre-authorised by its template), and not cancelled or rejected since (an implemented
    /// or closed change stays authorised).
    fn authorised(&self, reference: &Reference) -> Option<bool> {
        let change = self.change(reference)?;
        let cancelled = change.record().phase() == Some(Phase::Cancelled);
        let authorised =
            change.kind() == Some(ChangeKind::Standard) || change.authorisation().is_some();
        Some(authorised && !cancelled)
    }
}
