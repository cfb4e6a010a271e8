//! Incidents correlated with the releases in their early-life window.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use smsys_core::records::{
    CiId, Incident, IncidentEvent, LinkKind, RecordEvent, RecordKind, Reference, Release,
    ServiceId, TypedEvent,
};
use smsys_core::{
    Actor, CommandHandler, DomainEvent, EventSourced, LogFilter, Position, ProjectionError,
    Reactor, RecordedEvent, Stamp, StreamId,
};

use super::{event_name, release_as_of};
use crate::incident::{IncidentCommand, IncidentManagement};
use crate::reacting::{AsOf, Ran, failed, react_on, run, skipped, state_as_of};
use crate::record::RecordCommand;
use crate::release::{ReleaseCommand, ReleaseManagement};

/// A release in its early-life window, as the reactor remembers it.
#[derive(Debug, Clone)]
struct Window {
    reference: Reference,
    stream: StreamId,
    /// The log position of its `early_life_started` event.
    opened: Position,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    cis: Vec<CiId>,
    services: Vec<ServiceId>,
}

impl Window {
    /// The window of `release` (of `stream`) opened at `opened`, if it is open: started, not
    /// waived, not reviewed.
    fn of(release: &Release, stream: &StreamId, opened: Position) -> Option<Self> {
        let (from, until) = release.early_life()?;
        if release.waiver().is_some() || release.review().is_some() {
            return None;
        }
        Some(Self {
            reference: release.record().reference()?.clone(),
            stream: stream.clone(),
            opened,
            from,
            until,
            cis: release.cis(),
            services: release.services(),
        })
    }

    /// Whether it was open at `position`, at the instant `at`.
    fn open_at(&self, position: Position, at: DateTime<Utc>) -> bool {
        self.opened < position && self.from <= at && at < self.until
    }
}

/// The releases in early life, as of the last release event folded.
#[derive(Debug, Default)]
struct Memory {
    /// The position of the last release event folded.
    seen: Position,
    windows: BTreeMap<StreamId, Window>,
}

/// What an incident event says about the incident, for correlation.
struct Incidence {
    reference: Reference,
    /// The CIs that trigger a correlation: all its CIs when logged, the new one when linked.
    triggers: Vec<CiId>,
    /// Every CI it names (affected, and linked as configuration items).
    cis: Vec<CiId>,
    /// Its service, when the event is its logging (a later CI link correlates by the CI).
    service: Option<ServiceId>,
    /// Its service, to report on a correlation.
    reported_service: Option<ServiceId>,
}

/// Correlates incidents with the releases in their early-life window: when an incident is
/// logged, or linked to a configuration item (kind `configuration_item`), every release
/// whose early-life window is open at the event's instant (`occurred_at`) and after its log
/// position (started, not waived, not reviewed) and whose CIs include one of the incident's
/// (when logged; the new CI when linked) or whose services include the incident's (when
/// logged) gets [`ReleaseCommand::CorrelateIncident`], naming the release's CIs and service
/// the incident names, and the incident gets a link to the release (kind `release`).
///
/// It follows both the `incident` and the `release` categories and keeps in memory the
/// releases in early life, updated from the release events delivered to it; on the first
/// event a new or restarted instance is delivered, it reads the `release` category once up
/// to (not including) that event to rebuild them.
///
/// Exactly once: both commands take their ids from the incident's event and a purpose naming
/// the release (`early-life-correlation/<release>`, `early-life-link/<release>`), and their
/// instant from the event. A second delivery derives the same ids, or is refused by a release
/// that correlates the incident already (the link is then still made, once) or by an
/// incident linked already; refusals are logged and skipped.
pub struct EarlyLifeCorrelation {
    name: String,
    actor: Actor,
    releases: CommandHandler<ReleaseManagement>,
    incidents: CommandHandler<IncidentManagement>,
    memory: Mutex<Option<Memory>>,
}

impl std::fmt::Debug for EarlyLifeCorrelation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let windows = self
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|m| m.windows.len());
        f.debug_struct("EarlyLifeCorrelation")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("windows", &windows)
            .finish_non_exhaustive()
    }
}

impl EarlyLifeCorrelation {
    /// Correlates through `releases` and links through `incidents` (one store holds both) as
    /// `actor`, under the name `early-life-correlation`.
    pub fn new(
        releases: CommandHandler<ReleaseManagement>,
        incidents: CommandHandler<IncidentManagement>,
        actor: Actor,
    ) -> Self {
        Self {
            name: "early-life-correlation".into(),
            actor,
            releases,
            incidents,
            memory: Mutex::new(None),
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The releases in early life as of the log before `event`, read from the `release`
    /// category.
    async fn rebuild(&self, event: &RecordedEvent) -> Result<Memory, ProjectionError> {
        let store = self.releases.store();
        let upcasters = <Release as EventSourced>::Event::upcasters();
        let mut releases: BTreeMap<StreamId, (Release, Position)> = BTreeMap::new();
        let mut seen = Position::START;
        let mut events = store.read_all(Position::START, crate::stream_filter::<Release>());
        while let Some(recorded) = futures::StreamExt::next(&mut events).await {
            let recorded = recorded.map_err(|e| ProjectionError::store(&self.name, e))?;
            if recorded.position >= event.position {
                break;
            }
            let decoded = upcasters
                .decode(
                    recorded.data.event_type(),
                    recorded.data.schema_version(),
                    recorded.data.payload().clone(),
                )
                .map_err(|e| failed(&self.name, event, format!("{}: {e}", recorded.stream)))?;
            let (release, opened) = releases.entry(recorded.stream.clone()).or_default();
            release.evolve(&decoded, Stamp::of(recorded.data.metadata()));
            if event_name(&recorded) == "early_life_started" {
                *opened = recorded.position;
            }
            seen = recorded.position;
        }
        let windows = releases
            .into_iter()
            .filter_map(|(stream, (release, opened))| {
                Window::of(&release, &stream, opened).map(|w| (stream, w))
            })
            .collect();
        tracing::debug!(reactor = %self.name, %seen, "early-life windows rebuilt");
        Ok(Memory { seen, windows })
    }

    /// Folds the release event `event` into the memory.
    async fn fold_release(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let opened = match event_name(event) {
            "early_life_started" => {
                let store = self.releases.store().as_ref();
                let (release, _) = release_as_of(&self.name, store, event).await?;
                Window::of(&release, &event.stream, event.position)
            }
            "early_life_waived" | "early_life_reviewed" => None,
            _ => return Ok(()),
        };
        let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(memory) = memory.as_mut().filter(|m| m.seen < event.position) else {
            return Ok(());
        };
        memory.seen = event.position;
        match opened {
            Some(window) => memory.windows.insert(event.stream.clone(), window),
            None => memory.windows.remove(&event.stream),
        };
        Ok(())
    }

    /// What the incident event `event` says, if it may correlate: a logging, or a link to a
    /// configuration item.
    async fn incidence(&self, event: &RecordedEvent) -> Result<Option<Incidence>, ProjectionError> {
        let name = event_name(event);
        if name != "logged" && name != "linked" {
            return Ok(None);
        }
        let decoded: IncidentEvent = <Incident as EventSourced>::Event::upcasters()
            .decode(
                event.data.event_type(),
                event.data.schema_version(),
                event.data.payload().clone(),
            )
            .map_err(|e| failed(&self.name, event, e))?;
        match decoded {
            TypedEvent::Logged(logged) => Ok(Some(Incidence {
                reference: logged.reference,
                triggers: logged.affected_cis.clone(),
                cis: logged.affected_cis,
                service: Some(logged.service.clone()),
                reported_service: Some(logged.service),
            })),
            TypedEvent::Record(RecordEvent::Linked { kind, target })
                if kind == LinkKind::CONFIGURATION_ITEM =>
            {
                let Ok(ci) = target.parse::<CiId>() else {
                    return Ok(None);
                };
                let store = self.incidents.store().as_ref();
                let read: AsOf<Incident> =
                    state_as_of(store, &event.stream, event.version, "", false)
                        .await
                        .map_err(|e| failed(&self.name, event, e))?;
                let record = read.then.record().clone();
                let Some(reference) = record.reference().cloned() else {
                    return Ok(None);
                };
                let mut cis = record.affected_cis().to_vec();
                cis.extend(
                    record
                        .links()
                        .iter()
                        .filter(|(k, _)| *k == LinkKind::CONFIGURATION_ITEM)
                        .filter_map(|(_, target)| target.parse::<CiId>().ok()),
                );
                Ok(Some(Incidence {
                    reference,
                    triggers: vec![ci],
                    cis,
                    service: None,
                    reported_service: record.service().cloned(),
                }))
            }
            TypedEvent::Record(_) | TypedEvent::Own(_) => Ok(None),
        }
    }

    /// Correlates the incident of `event` with the release of `window`, on both records.
    async fn correlate(
        &self,
        window: &Window,
        incidence: &Incidence,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let mut cis: Vec<CiId> = incidence
            .cis
            .iter()
            .filter(|c| window.cis.contains(c))
            .cloned()
            .collect();
        cis.sort_unstable();
        cis.dedup();
        let service = incidence
            .reported_service
            .clone()
            .filter(|s| window.services.contains(s));
        let command = ReleaseCommand::CorrelateIncident {
            incident: incidence.reference.clone(),
            cis,
            service,
        };
        let release = &window.reference;
        let purpose = format!("early-life-correlation/{release}");
        let cause = (event, event.event_id());
        let ran = run(
            &self.releases,
            &window.stream,
            &command,
            cause,
            &purpose,
            &self.actor,
        )
        .await
        .map_err(|e| failed(&self.name, event, e))?;
        if let Ran::Refused(why) = ran {
            let now = self
                .releases
                .load(&window.stream)
                .await
                .map_err(|e| failed(&self.name, event, e))?;
            if !now.state.correlated(&incidence.reference) {
                skipped(&self.name, &window.stream, event, &why);
                return Ok(());
            }
        }
        let link = IncidentCommand::Record(RecordCommand::Link {
            kind: LinkKind::RELEASE,
            target: release.to_string(),
        });
        let purpose = format!("early-life-link/{release}");
        let who = (self.name.as_str(), &self.actor);
        react_on(&self.incidents, who, &event.stream, &link, event, &purpose).await?;
        Ok(())
    }
}

#[async_trait]
impl Reactor for EarlyLifeCorrelation {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        let mut filter = crate::stream_filter::<Incident>();
        for category in crate::stream_filter::<Release>().categories() {
            filter = filter.category(category.clone());
        }
        filter
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let empty = self
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none();
        if empty {
            let rebuilt = self.rebuild(event).await?;
            self.memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(rebuilt);
        }
        if event.stream.category_str() == Release::CATEGORY {
            return self.fold_release(event).await;
        }
        if event.stream.category_str() != Incident::CATEGORY {
            return Ok(());
        }
        let Some(incidence) = self.incidence(event).await? else {
            return Ok(());
        };
        let at = event.data.metadata().occurred_at();
        let windows: Vec<Window> = self
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|m| {
                m.windows
                    .values()
                    .filter(|w| w.open_at(event.position, at))
                    .filter(|w| {
                        incidence.triggers.iter().any(|c| w.cis.contains(c))
                            || incidence
                                .service
                                .as_ref()
                                .is_some_and(|s| w.services.contains(s))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for window in &windows {
            self.correlate(window, &incidence, event).await?;
        }
        Ok(())
    }
}
