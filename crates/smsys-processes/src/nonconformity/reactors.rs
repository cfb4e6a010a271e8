//! What raises a nonconformity by itself: a breached SLA target on any record, and a failed
//! change.

use async_trait::async_trait;
use smsys_core::records::change::{ChangeControlEvent, ImplementationOutcome};
use smsys_core::records::{
    Change, Channel, CommonEvent, LinkKind, Logged, Nonconformity, NonconformitySource, PersonId,
    RecordEvent, RecordKind, TypedEvent, upcasters_for,
};
use smsys_core::{
    Actor, CommandHandler, DomainEvent, EventSourced, LogFilter, ProjectionError, Reactor,
    RecordedEvent, Version,
};

use super::{LogNonconformity, NonconformityCommand, NonconformityManagement};
use crate::reacting::{failed, react_on, reference_for, skipped};
use crate::record::{LogRecord, RecordCommand};

/// The prefix of the nonconformities the reactor raises, by default.
const PREFIX: &str = "NC";

/// Raises a nonconformity from an `sla_breached` event of any record (an incident, a service
/// request, ...) and from a change's `implemented` event with outcome `failed`, as the
/// [`RaisingPolicy`](super::RaisingPolicy) of the nonconformities' handler's policy says: on
/// the source's service, raised by the reactor's actor (who is its caller, so no personal data
/// of the source's caller is copied), naming the source in its [`NonconformitySource`] and
/// linked to it (kind `incident`, `request`, ... by the source's category, or `change`).
///
/// Exactly once: the new record's reference is derived from the triggering event
/// (`<prefix>-<source entity>-<version>`, e.g. `NC-INC-0007-12`), and every command takes its
/// ids from that event and a purpose, and its instant from the event. A second delivery finds
/// the nonconformity logged and the link recorded.
pub struct NonconformityRaising {
    name: String,
    actor: Actor,
    nonconformities: CommandHandler<NonconformityManagement>,
    prefix: String,
}

impl std::fmt::Debug for NonconformityRaising {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonconformityRaising")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("raising", &self.nonconformities.services().raising)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl NonconformityRaising {
    /// Raises nonconformities through `nonconformities` (whose policy says which sources
    /// raise; one store holds the sources too) as `actor`, under the name
    /// `nonconformity-raising`, with references prefixed `NC`.
    pub fn new(nonconformities: CommandHandler<NonconformityManagement>, actor: Actor) -> Self {
        Self {
            name: "nonconformity-raising".into(),
            actor,
            nonconformities,
            prefix: PREFIX.into(),
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The prefix of the nonconformities' references.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The source the event stands for, if the policy raises from it.
    fn source_of(&self, event: &RecordedEvent) -> Result<Option<Source>, ProjectionError> {
        let category = event.stream.category_str();
        let name = event.data.event_type().as_str();
        let name = name.rsplit_once('.').map_or(name, |(_, n)| n);
        let raising = self.nonconformities.services().raising;
        if raising.sla_breach && name == "sla_breached" && category != Nonconformity::CATEGORY {
            let read = CommonEvent::read(
                &upcasters_for(category),
                &[],
                event.data.event_type(),
                event.data.schema_version(),
                event.data.payload().clone(),
            )
            .map_err(|e| failed(&self.name, event, e))?;
            if let Some(CommonEvent::Record(RecordEvent::SlaBreached { timer, .. })) = read {
                return Ok(Some(Source::SlaBreach(timer)));
            }
        }
        if raising.failed_change && name == "implemented" && category == Change::CATEGORY {
            let decoded = <Change as EventSourced>::Event::upcasters()
                .decode::<<Change as EventSourced>::Event>(
                    event.data.event_type(),
                    event.data.schema_version(),
                    event.data.payload().clone(),
                )
                .map_err(|e| failed(&self.name, event, e))?;
            if let TypedEvent::Own(ChangeControlEvent::Implemented {
                outcome: ImplementationOutcome::Failed,
                ..
            }) = decoded
            {
                return Ok(Some(Source::FailedChange));
            }
        }
        Ok(None)
    }

    /// The shared fields the source record was logged with.
    async fn source_logged(&self, event: &RecordedEvent) -> Result<Logged, ProjectionError> {
        let store = self.nonconformities.store().as_ref();
        let mut events = store.read_stream(&event.stream, Version::FIRST);
        let first = futures::StreamExt::next(&mut events)
            .await
            .ok_or_else(|| failed(&self.name, event, "the source record is not logged"))?
            .map_err(|e| failed(&self.name, event, e))?;
        let read = CommonEvent::read(
            &upcasters_for(event.stream.category_str()),
            &[],
            first.data.event_type(),
            first.data.schema_version(),
            first.data.payload().clone(),
        )
        .map_err(|e| failed(&self.name, event, e))?;
        match read {
            Some(CommonEvent::Logged(logged)) => Ok(logged),
            Some(CommonEvent::Record(_)) | None => Err(failed(
                &self.name,
                event,
                "the source record's first event is not its logged event",
            )),
        }
    }
}

/// What kind of source an event is.
enum Source {
    SlaBreach(String),
    FailedChange,
}

#[async_trait]
impl Reactor for NonconformityRaising {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        LogFilter::all()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let Some(source) = self.source_of(event)? else {
            return Ok(());
        };
        let Some((raised, stream)) = reference_for::<Nonconformity>(&self.prefix, event) else {
            let why = format!("the prefix {:?} makes no valid reference", self.prefix);
            skipped(&self.name, &event.stream, event, &why);
            return Ok(());
        };
        let logged = self.source_logged(event).await?;
        let from = logged.reference;
        let category = event.stream.category_str();
        let (source, summary, kind) = match source {
            Source::SlaBreach(timer) => (
                NonconformitySource::SlaBreach {
                    record: from.clone(),
                    timer: timer.clone(),
                },
                format!("SLA target {timer} missed on {category} {from}"),
                LinkKind::new(category).map_err(|e| failed(&self.name, event, e))?,
            ),
            Source::FailedChange => (
                NonconformitySource::FailedChange {
                    change: from.clone(),
                },
                format!("change {from} failed"),
                LinkKind::CHANGE,
            ),
        };
        let record = LogRecord::new(
            raised.clone(),
            PersonId::from(&self.actor),
            Channel::Monitoring,
            logged.service,
            summary,
        )
        .affected_cis(logged.affected_cis);
        let command = NonconformityCommand::log(LogNonconformity::new(record, source));
        let who = (self.name.as_str(), &self.actor);
        let handler = &self.nonconformities;
        react_on(
            handler,
            who,
            &stream,
            &command,
            event,
            "nonconformity/raise",
        )
        .await?;
        let loaded = handler
            .load(&stream)
            .await
            .map_err(|e| failed(&self.name, event, e))?;
        if loaded.state.record().reference().is_none() {
            return Ok(());
        }
        let link = NonconformityCommand::Record(RecordCommand::Link {
            kind,
            target: from.to_string(),
        });
        let purpose = format!("nonconformity-link/{raised}");
        react_on(handler, who, &stream, &link, event, &purpose).await?;
        Ok(())
    }
}
