//! What a rolled-back deployment raises: an incident and/or a problem, linked with the
//! release both ways.

use async_trait::async_trait;
use smsys_core::records::release::ReleaseControlEvent;
use smsys_core::records::{Channel, LinkKind, RecordKind, Reference, Release};
use smsys_core::{
    Actor, Aggregate, CommandHandler, EventSourced, LogFilter, ProjectionError, Reactor,
    RecordedEvent,
};

use super::{logged, own_event, release_as_of};
use crate::incident::{IncidentCommand, IncidentManagement};
use crate::problem::{ProblemCommand, ProblemManagement};
use crate::reacting::{react_on, reference_for, skipped};
use crate::record::{LogRecord, RecordCommand};
use crate::release::{ReleaseCommand, ReleaseManagement};

/// The prefix of the incidents a rolled-back deployment raises, by default.
const INCIDENT_PREFIX: &str = "INC";
/// The prefix of the problems a rolled-back deployment raises, by default.
const PROBLEM_PREFIX: &str = "PRB";

/// What one kind of raised record takes: its references' prefix, the link kind by which the
/// release names it, and its log command.
struct Raise<'a, C> {
    prefix: &'a str,
    kind: LinkKind,
    log: fn(LogRecord) -> C,
}

/// Raises an incident and/or a problem for a rolled-back deployment (a release's
/// `rolled_back` event), as the release policy's [`FailurePolicy`](crate::release::FailurePolicy)
/// (`kinds.on_failure` of the releases' handler's policy) says: on the release's service and
/// CIs, logged for its requester, linked to the release (kind `release`), and linked from the
/// release (kind `incident` or `problem`).
///
/// Exactly once: the new record's reference is derived from the `rolled_back` event
/// (`<prefix>-<release>-<version>`, as the CMDB verification's follow-ups derive theirs,
/// e.g. `INC-REL-0007-23`), and every command takes its ids from that event and a purpose
/// naming its target, and its instant from the event. A second delivery finds the record
/// logged and the links recorded (the same ids, or a refusal that is logged and skipped).
/// The links are made only once the new record exists.
pub struct FailedDeployments {
    name: String,
    actor: Actor,
    releases: CommandHandler<ReleaseManagement>,
    incidents: CommandHandler<IncidentManagement>,
    problems: CommandHandler<ProblemManagement>,
    prefixes: (String, String),
}

impl std::fmt::Debug for FailedDeployments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailedDeployments")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("on_failure", &self.releases.services().kinds.on_failure)
            .field("prefixes", &self.prefixes)
            .finish_non_exhaustive()
    }
}

impl FailedDeployments {
    /// Raises records through `incidents` and `problems` and links them from the releases of
    /// `releases` (whose policy says what a failure raises; one store holds them all) as
    /// `actor`, under the name `failed-deployments`, with references prefixed `INC` and `PRB`.
    pub fn new(
        releases: CommandHandler<ReleaseManagement>,
        incidents: CommandHandler<IncidentManagement>,
        problems: CommandHandler<ProblemManagement>,
        actor: Actor,
    ) -> Self {
        Self {
            name: "failed-deployments".into(),
            actor,
            releases,
            incidents,
            problems,
            prefixes: (INCIDENT_PREFIX.into(), PROBLEM_PREFIX.into()),
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The prefixes of the incidents' and the problems' references.
    pub fn with_prefixes(
        mut self,
        incident: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        self.prefixes = (incident.into(), problem.into());
        self
    }

    /// Logs the record of type `A` for the rollback `event` through `handler` and links it
    /// with the release both ways.
    async fn raise<A>(
        &self,
        handler: &CommandHandler<A>,
        Raise { prefix, kind, log }: Raise<'_, A::Command>,
        (release, reference): (&Release, &Reference),
        event: &RecordedEvent,
        environment: &str,
    ) -> Result<(), ProjectionError>
    where
        A: Aggregate,
        A::State: RecordKind,
        A::Command: From<RecordCommand>,
        A::Rejection: std::fmt::Display,
    {
        let Some((raised, stream)) = reference_for::<A::State>(prefix, event) else {
            let why = format!("the prefix {prefix:?} makes no valid reference");
            skipped(&self.name, &event.stream, event, &why);
            return Ok(());
        };
        let record = release.record();
        let (Some(caller), Some(service)) = (record.caller(), record.service()) else {
            skipped(
                &self.name,
                &stream,
                event,
                "the release names no requester or service",
            );
            return Ok(());
        };
        let who = (self.name.as_str(), &self.actor);
        let logged_as = LogRecord::new(
            raised.clone(),
            caller.clone(),
            Channel::Monitoring,
            service.clone(),
            format!(
                "deployment of release {reference} to {environment} failed and was rolled back"
            ),
        )
        .description(format!(
            "raised by the rollback of release {reference} ({}): {}",
            record.summary(),
            release.rollbacks().last().map_or("", |r| r.notes.as_str())
        ))
        .affected_cis(release.cis());
        let category = A::State::CATEGORY;
        let command = log(logged_as);
        let purpose = format!("failed-deployment/{category}");
        react_on(handler, who, &stream, &command, event, &purpose).await?;
        if !logged(&self.name, handler, &stream, event).await? {
            return Ok(());
        }
        let link = RecordCommand::Link {
            kind: LinkKind::RELEASE,
            target: reference.to_string(),
        };
        let purpose = format!("failed-deployment-link/{raised}");
        react_on(handler, who, &stream, &link.into(), event, &purpose).await?;
        let back = ReleaseCommand::Record(RecordCommand::Link {
            kind,
            target: raised.to_string(),
        });
        let purpose = format!("failed-deployment-link/{reference}/{raised}");
        react_on(&self.releases, who, &event.stream, &back, event, &purpose).await?;
        Ok(())
    }
}

#[async_trait]
impl Reactor for FailedDeployments {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<Release>()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let Some(ReleaseControlEvent::RolledBack { environment, .. }) =
            own_event(&self.name, event, "rolled_back")?
        else {
            return Ok(());
        };
        let on_failure = self.releases.services().kinds.on_failure;
        if !on_failure.incident && !on_failure.problem {
            return Ok(());
        }
        let store = self.releases.store().as_ref();
        let (release, reference) = release_as_of(&self.name, store, event).await?;
        let of = (&release, &reference);
        if on_failure.incident {
            let side = Raise {
                prefix: self.prefixes.0.as_str(),
                kind: LinkKind::INCIDENT,
                log: IncidentCommand::Log,
            };
            self.raise(&self.incidents, side, of, event, &environment)
                .await?;
        }
        if on_failure.problem {
            let side = Raise {
                prefix: self.prefixes.1.as_str(),
                kind: LinkKind::PROBLEM,
                log: ProblemCommand::Log,
            };
            self.raise(&self.problems, side, of, event, &environment)
                .await?;
        }
        Ok(())
    }
}
