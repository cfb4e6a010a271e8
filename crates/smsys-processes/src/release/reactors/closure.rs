//! What closing a release does to the changes and known errors it delivered.

use async_trait::async_trait;
use smsys_core::records::{Change, KnownError, LinkKind, RecordKind, Reference, Release};
use smsys_core::{Actor, CommandHandler, LogFilter, ProjectionError, Reactor, RecordedEvent};

use super::{event_name, release_as_of};
use crate::change::{ChangeCommand, ChangeManagement};
use crate::known_error::{KnownErrorCommand, KnownErrorManagement};
use crate::reacting::{failed, linked, react_on, skipped};
use crate::record::{RecordCommand, current_stage};
use crate::release::{ReleasePolicy, stage};

/// When a release moves into a status of stage `closed` (its `transitioned` event, the
/// release read as of it), does what the release policy's
/// [`ClosurePolicy`](crate::release::ClosurePolicy) (`kinds.closure`) says:
///
/// - `review_changes`: each change the release links (kind `change`) that is in stage
///   `review` gets the release's early-life review as its review (`successful` its verdict,
///   findings `early-life review of release REL-…: <findings>`) unless it was reviewed
///   already, and is closed;
/// - `retire_known_errors`: each known error the release links is retired, naming the
///   release as its fix.
///
/// Exactly once: every command takes its ids from the `transitioned` event and a purpose
/// naming its target, and its instant from the event. A second delivery derives the same
/// ids; a change closed since is no longer in stage `review` and is left alone; a known error
/// retired already refuses the repeat, which is logged and skipped.
pub struct ReleaseClosure {
    name: String,
    actor: Actor,
    policy: ReleasePolicy,
    changes: CommandHandler<ChangeManagement>,
    known_errors: CommandHandler<KnownErrorManagement>,
}

impl std::fmt::Debug for ReleaseClosure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseClosure")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("closure", &self.policy.kinds.closure)
            .finish_non_exhaustive()
    }
}

impl ReleaseClosure {
    /// Reviews and closes through `changes` and retires through `known_errors` (one store
    /// holds them and the releases) as `actor`, as `policy` (the releases' policy: their
    /// lifecycles and what a closure does) says, under the name `release-closure`.
    pub fn new(
        changes: CommandHandler<ChangeManagement>,
        known_errors: CommandHandler<KnownErrorManagement>,
        policy: ReleasePolicy,
        actor: Actor,
    ) -> Self {
        Self {
            name: "release-closure".into(),
            actor,
            policy,
            changes,
            known_errors,
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Reviews and closes the changes `release` delivered that await review.
    async fn review_changes(
        &self,
        (release, reference): (&Release, &Reference),
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let who = (self.name.as_str(), &self.actor);
        let Some((successful, findings)) = release
            .review()
            .and_then(|r| r.successful.map(|s| (s, r.findings.as_str())))
        else {
            skipped(&self.name, &event.stream, event, "no early-life review");
            return Ok(());
        };
        let change_policy = &self.changes.services().record;
        for change in linked(release.record(), &LinkKind::CHANGE) {
            let Ok(stream) = Change::stream(&change) else {
                continue;
            };
            let loaded = self
                .changes
                .load(&stream)
                .await
                .map_err(|e| failed(&self.name, event, e))?;
            let state = loaded.state;
            if current_stage(state.record(), change_policy) != Some(crate::change::stage::REVIEW) {
                skipped(
                    &self.name,
                    &stream,
                    event,
                    "the change is not awaiting review",
                );
                continue;
            }
            if state.review().is_none() {
                let review = ChangeCommand::RecordReview {
                    successful,
                    findings: format!("early-life review of release {reference}: {findings}"),
                };
                let purpose = format!("release-review/{change}");
                if !react_on(&self.changes, who, &stream, &review, event, &purpose).await? {
                    continue;
                }
            }
            let close = ChangeCommand::Record(RecordCommand::Close);
            let purpose = format!("release-close/{change}");
            react_on(&self.changes, who, &stream, &close, event, &purpose).await?;
        }
        Ok(())
    }

    /// Retires the known errors `release` delivered.
    async fn retire_known_errors(
        &self,
        (release, reference): (&Release, &Reference),
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let who = (self.name.as_str(), &self.actor);
        for known_error in linked(release.record(), &LinkKind::KNOWN_ERROR) {
            let Ok(stream) = KnownError::stream(&known_error) else {
                continue;
            };
            let command = KnownErrorCommand::Retire {
                reason: format!("fixed by release {reference}"),
                superseded_by: None,
            };
            let purpose = format!("release-fix/{known_error}");
            react_on(&self.known_errors, who, &stream, &command, event, &purpose).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Reactor for ReleaseClosure {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<Release>()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let closure = self.policy.kinds.closure;
        if event_name(event) != "transitioned"
            || !(closure.review_changes || closure.retire_known_errors)
        {
            return Ok(());
        }
        let store = self.changes.store().as_ref();
        let (release, reference) = release_as_of(&self.name, store, event).await?;
        if current_stage(release.record(), &self.policy.record) != Some(stage::CLOSED) {
            return Ok(());
        }
        let of = (&release, &reference);
        if closure.review_changes {
            self.review_changes(of, event).await?;
        }
        if closure.retire_known_errors {
            self.retire_known_errors(of, event).await?;
        }
        Ok(())
    }
}
