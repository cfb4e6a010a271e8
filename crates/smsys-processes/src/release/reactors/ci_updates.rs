//! The CI updates a deployed release makes.

use async_trait::async_trait;
use smsys_core::records::Release;
use smsys_core::records::release::ReleaseControlEvent;
use smsys_core::{Actor, CommandHandler, LogFilter, ProjectionError, Reactor, RecordedEvent};

use super::{own_event, release_as_of};
use crate::change::reactors::apply_ci_updates;
use crate::configuration::CiManagement;

/// Applies a deployed release's planned CI updates through the CMDB when its last
/// environment is deployed (its `early_life_started` event): per update, attributes set and
/// removed, then the status, each command naming the release.
///
/// Exactly once: each command takes its ids from the `early_life_started` event and a
/// purpose naming the release, the update's place in the plan, its CI and the step
/// (`release-ci-update/<release>/<n>/<ci>/<step>`), and its instant from the event; a second
/// delivery derives the same ids, so the store records nothing new, and a CI already updated
/// refuses the repeat, which is logged and skipped. The same code applies a change's updates
/// ([`CiUpdates`](crate::change::reactors::CiUpdates)).
pub struct ReleaseCiUpdates {
    name: String,
    actor: Actor,
    cis: CommandHandler<CiManagement>,
}

impl std::fmt::Debug for ReleaseCiUpdates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseCiUpdates")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl ReleaseCiUpdates {
    /// Updates through `cis` (whose store holds the releases too) as `actor`, under the name
    /// `release-ci-updates`.
    pub fn new(cis: CommandHandler<CiManagement>, actor: Actor) -> Self {
        Self {
            name: "release-ci-updates".into(),
            actor,
            cis,
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

#[async_trait]
impl Reactor for ReleaseCiUpdates {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<Release>()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let Some(ReleaseControlEvent::EarlyLifeStarted { .. }) =
            own_event(&self.name, event, "early_life_started")?
        else {
            return Ok(());
        };
        let store = self.cis.store().as_ref();
        let (release, reference) = release_as_of(&self.name, store, event).await?;
        let updates = release.plan().map_or(&[][..], |p| p.ci_updates.as_slice());
        let who = (self.name.as_str(), &self.actor);
        let reason = format!("deployed by release {reference}");
        let cause = (&reference, "release-ci-update", reason.as_str());
        apply_ci_updates(&self.cis, who, event, updates, cause).await
    }
}
