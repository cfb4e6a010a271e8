//! What a successful change does to other records, as [`Reactor`]s: each runs commands on
//! other records in reaction to the change's `implemented` event, exactly once.
//!
//! - [`CiUpdates`]: the CI updates of the change's plan are applied through the CMDB's
//!   commands, each naming the change, so the configuration records are updated after the
//!   change and every CI event is traceable to it (8.2.6, 8.5.1);
//! - [`KnownErrorRetirement`]: the known errors the change is linked to are retired, naming
//!   the change as their fix.
//!
//! Run each with [`Reacting`](smsys_core::Reacting) and a durable checkpoint store. Delivery
//! is at least once; every command takes its ids from the `implemented` event and a purpose
//! naming the target, and its instant from the event, so a replay, a restart or a second node
//! appends nothing new. A command the target refuses (a CI retired meanwhile, a known error
//! retired already) is logged through `tracing` and skipped.

use async_trait::async_trait;
use smsys_core::records::change::{ChangeControlEvent, ImplementationOutcome, PlannedCiUpdate};
use smsys_core::records::{
    Change, ChangeEvent, ConfigurationItem, KnownError, LinkKind, RecordKind, Reference, TypedEvent,
};
use smsys_core::{
    Actor, CommandHandler, DomainEvent, EventSourced, LogFilter, ProjectionError, Reactor,
    RecordedEvent,
};

use crate::configuration::{CiCommand, CiManagement};
use crate::known_error::{KnownErrorCommand, KnownErrorManagement};
use crate::reacting::{AsOf, failed, linked, react_on, state_as_of};

const IMPLEMENTED: &str = "implemented";

/// The change as of its successful `implemented` event, or `None` for any other event.
async fn succeeded(
    reactor: &str,
    store: &dyn smsys_core::EventStore,
    event: &RecordedEvent,
) -> Result<Option<(Change, Reference)>, ProjectionError> {
    if !event.data.event_type().as_str().ends_with(".implemented") {
        return Ok(None);
    }
    let decoded: ChangeEvent = <Change as EventSourced>::Event::upcasters()
        .decode(
            event.data.event_type(),
            event.data.schema_version(),
            event.data.payload().clone(),
        )
        .map_err(|e| failed(reactor, event, e))?;
    let TypedEvent::Own(ChangeControlEvent::Implemented { outcome, .. }) = decoded else {
        return Ok(None);
    };
    if outcome == ImplementationOutcome::Failed {
        return Ok(None);
    }
    let read: AsOf<Change> = state_as_of(store, &event.stream, event.version, IMPLEMENTED, false)
        .await
        .map_err(|e| failed(reactor, event, e))?;
    let change = read.then;
    let reference = change
        .record()
        .reference()
        .cloned()
        .ok_or_else(|| failed(reactor, event, "the change is not logged"))?;
    Ok(Some((change, reference)))
}

/// Applies `updates` through the CMDB in reaction to `event`, for `reactor` acting as
/// `actor`: per update, its attributes set and removed, then its status, each command naming
/// `reference` (the change or release that makes the update) and taking its ids from `event`
/// and `<purpose>/<reference>/<n>/<ci>/<step>`, so a second delivery appends nothing new. A
/// status change gives `reason`. A refusal is logged and skipped.
pub(crate) async fn apply_ci_updates(
    cis: &CommandHandler<CiManagement>,
    who: (&str, &Actor),
    event: &RecordedEvent,
    updates: &[PlannedCiUpdate],
    (reference, purpose, reason): (&Reference, &str, &str),
) -> Result<(), ProjectionError> {
    for (n, update) in updates.iter().enumerate() {
        let Ok(stream) = ConfigurationItem::stream(&update.ci) else {
            continue;
        };
        let purpose = |step: &str| format!("{purpose}/{reference}/{n}/{}/{step}", update.ci);
        if !update.set.is_empty() || !update.removed.is_empty() {
            let command = CiCommand::UpdateAttributes {
                set: update.set.clone(),
                removed: update.removed.clone(),
                change: Some(reference.clone()),
            };
            react_on(cis, who, &stream, &command, event, &purpose("attributes")).await?;
        }
        if let Some(status) = &update.status {
            let command = CiCommand::ChangeStatus {
                to: status.clone(),
                reason: reason.to_owned(),
                change: Some(reference.clone()),
            };
            react_on(cis, who, &stream, &command, event, &purpose("status")).await?;
        }
    }
    Ok(())
}

/// Applies a successful change's planned CI updates through the CMDB: attributes set and
/// removed, then the status, each command naming the change.
pub struct CiUpdates {
    name: String,
    actor: Actor,
    cis: CommandHandler<CiManagement>,
}

impl std::fmt::Debug for CiUpdates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CiUpdates")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl CiUpdates {
    /// Updates through `cis` (whose store holds the changes too) as `actor`, under the name
    /// `change-ci-updates`.
    pub fn new(cis: CommandHandler<CiManagement>, actor: Actor) -> Self {
        Self {
            name: "change-ci-updates".into(),
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
impl Reactor for CiUpdates {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<Change>()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let store = self.cis.store().as_ref();
        let Some((change, reference)) = succeeded(&self.name, store, event).await? else {
            return Ok(());
        };
        let updates = change.plan().map_or(&[][..], |p| p.ci_updates.as_slice());
        let who = (self.name.as_str(), &self.actor);
        let reason = format!("implemented by change {reference}");
        let cause = (&reference, "change-ci-update", reason.as_str());
        apply_ci_updates(&self.cis, who, event, updates, cause).await
    }
}

/// Retires the known errors a successful change is linked to, naming the change as the fix.
pub struct KnownErrorRetirement {
    name: String,
    actor: Actor,
    known_errors: CommandHandler<KnownErrorManagement>,
}

impl std::fmt::Debug for KnownErrorRetirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownErrorRetirement")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl KnownErrorRetirement {
    /// Retires through `known_errors` (whose store holds the changes too) as `actor`, under
    /// the name `change-known-error-retirement`.
    pub fn new(known_errors: CommandHandler<KnownErrorManagement>, actor: Actor) -> Self {
        Self {
            name: "change-known-error-retirement".into(),
            actor,
            known_errors,
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

#[async_trait]
impl Reactor for KnownErrorRetirement {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<Change>()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let store = self.known_errors.store().as_ref();
        let Some((change, reference)) = succeeded(&self.name, store, event).await? else {
            return Ok(());
        };
        let who = (self.name.as_str(), &self.actor);
        for known_error in linked(change.record(), &LinkKind::KNOWN_ERROR) {
            let Ok(stream) = KnownError::stream(&known_error) else {
                continue;
            };
            let command = KnownErrorCommand::Retire {
                reason: format!("fixed by change {reference}"),
                superseded_by: None,
            };
            let purpose = format!("change-fix/{known_error}");
            react_on(&self.known_errors, who, &stream, &command, event, &purpose).await?;
        }
        Ok(())
    }
}
