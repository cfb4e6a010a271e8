//! The known error catalogue: what other processes consult (8.6.3 "known errors ... published
//! to other processes"). An in-memory read model of the `known_error` category that offers the
//! current published version of every published known error, and finds those matching an
//! incident by configuration item, service or category.
//!
//! Its checkpoint is held in memory with the model: a new catalogue starts empty, without a
//! checkpoint, and a [`ProjectionRunner`](smsys_core::ProjectionRunner) rebuilds it from the
//! start of the log at every start (known errors are few; their streams are short). An event
//! delivered again (at-least-once delivery) changes nothing: each known error keeps the
//! version of the last event of its stream it holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use smsys_core::records::known_error::{KnownErrorContent, KnownErrorVersion};
use smsys_core::records::{
    CiId, Incident, KnownError, KnownErrorEvent, LinkKind, RecordKind, Reference, ServiceId,
};
use smsys_core::{
    EventSourced, LogFilter, Position, Projection, ProjectionError, RecordedEvent, Stamp, StreamId,
    Upcasters, Version,
};

/// What an incident is matched on: its configuration items (affected and linked), its service
/// and its category.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncidentProfile {
    /// Its configuration items.
    pub cis: Vec<CiId>,
    /// Its service.
    pub service: Option<ServiceId>,
    /// Its category.
    pub category: Option<String>,
}

impl IncidentProfile {
    /// The profile of `incident`: its affected CIs, then the CIs linked to it
    /// ([`LinkKind::CONFIGURATION_ITEM`]; a link target that is not a valid CI id is left out),
    /// its service and its category.
    pub fn of(incident: &Incident) -> Self {
        let record = incident.record();
        let mut cis = record.affected_cis().to_vec();
        for ci in linked_cis(record.links()) {
            if !cis.contains(&ci) {
                cis.push(ci);
            }
        }
        Self {
            cis,
            service: record.service().cloned(),
            category: record.category().map(str::to_owned),
        }
    }
}

fn linked_cis(links: &[(LinkKind, String)]) -> impl Iterator<Item = CiId> + '_ {
    links
        .iter()
        .filter(|(kind, _)| *kind == LinkKind::CONFIGURATION_ITEM)
        .filter_map(|(_, target)| target.parse().ok())
}

/// A known error as the catalogue offers it: its current published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedKnownError {
    /// Its reference.
    pub reference: Reference,
    /// The version offered (the latest published).
    pub version: KnownErrorVersion,
    /// When that version was published.
    pub published_at: DateTime<Utc>,
    /// What that version says.
    pub content: KnownErrorContent,
    /// The problem it came from.
    pub problem: Option<Reference>,
    /// The service it was logged for.
    pub service: Option<ServiceId>,
    /// The configuration items linked to it ([`LinkKind::CONFIGURATION_ITEM`]).
    pub linked_cis: Vec<CiId>,
    /// Its category.
    pub category: Option<String>,
}

impl OfferedKnownError {
    /// What it has in common with `profile`, if anything.
    fn matched(&self, profile: &IncidentProfile) -> Option<MatchedOn> {
        let cis: Vec<CiId> = profile
            .cis
            .iter()
            .filter(|ci| self.content.affected_cis.contains(ci) || self.linked_cis.contains(ci))
            .cloned()
            .collect();
        let service = profile.service.as_ref().is_some_and(|s| {
            self.service.as_ref() == Some(s) || self.content.affected_services.contains(s)
        });
        let category = profile
            .category
            .as_ref()
            .is_some_and(|c| self.category.as_ref() == Some(c));
        let on = MatchedOn {
            cis,
            service,
            category,
        };
        on.any().then_some(on)
    }
}

/// What a known error has in common with an incident.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchedOn {
    /// The incident's configuration items the known error affects or is linked to.
    pub cis: Vec<CiId>,
    /// It names the incident's service (the service it was logged for, or an affected one).
    pub service: bool,
    /// It has the incident's category.
    pub category: bool,
}

impl MatchedOn {
    /// Whether a configuration item matched.
    pub fn ci(&self) -> bool {
        !self.cis.is_empty()
    }

    /// Whether anything matched.
    pub fn any(&self) -> bool {
        self.ci() || self.service || self.category
    }
}

/// A published known error matching an incident, and what matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownErrorMatch {
    /// Its reference.
    pub reference: Reference,
    /// The version offered.
    pub version: KnownErrorVersion,
    /// What users observe.
    pub symptom: String,
    /// What to do.
    pub workaround: Option<String>,
    /// The root cause, when known.
    pub root_cause: Option<String>,
    /// The problem it came from.
    pub problem: Option<Reference>,
    /// What matched.
    pub matched: MatchedOn,
}

/// One known error as the catalogue holds it: its state and the version of the last event of
/// its stream applied.
#[derive(Debug, Clone)]
struct Held {
    version: Option<Version>,
    state: KnownError,
}

impl Held {
    /// The current published version, while published (never a draft, a retired or a
    /// discarded known error).
    fn offered(&self) -> Option<OfferedKnownError> {
        let state = &self.state;
        let record = state.record();
        if state.retired().is_some() || record.phase().is_none_or(|p| p.is_final()) {
            return None;
        }
        let published = state.published()?;
        Some(OfferedKnownError {
            reference: record.reference()?.clone(),
            version: published.version,
            published_at: published.at,
            content: published.content.clone(),
            problem: state.problem().cloned(),
            service: record.service().cloned(),
            linked_cis: linked_cis(record.links()).collect(),
            category: record.category().map(str::to_owned),
        })
    }
}

#[derive(Debug, Default)]
struct Model {
    held: HashMap<StreamId, Held>,
    checkpoint: Option<Position>,
}

/// The known error catalogue: an in-memory [`Projection`] of the `known_error` category that
/// offers the current published version of each published known error. Drafts, retired and
/// discarded known errors are never offered; a revision replaces the offered content.
///
/// Its checkpoint lives in memory with it: it is rebuilt from the log at every start (see the
/// [module docs](self)).
#[derive(Debug)]
pub struct KnownErrorCatalogue {
    name: String,
    upcasters: Upcasters,
    model: RwLock<Model>,
}

impl Default for KnownErrorCatalogue {
    fn default() -> Self {
        Self::new()
    }
}

impl KnownErrorCatalogue {
    /// The name it is fed under, unless [`KnownErrorCatalogue::named`].
    pub const NAME: &'static str = "known_error_catalogue";

    /// An empty catalogue, without a checkpoint.
    pub fn new() -> Self {
        Self::named(Self::NAME)
    }

    /// An empty catalogue fed under `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            upcasters: KnownError::upcasters(),
            model: RwLock::new(Model::default()),
        }
    }

    /// The published known errors matching `profile`: those sharing one of its configuration
    /// items (affected by the known error, or linked to it), naming its service (logged for
    /// it, or affecting it) or having its category. Strongest first: more shared
    /// configuration items, then a shared service, then the category; ties by reference.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use smsys_core::records::{Channel, Incident, KnownError, RecordKind};
    /// use smsys_core::{Actor, CommandHandler, CommandMeta, Context, EventStore, ProjectionRunner};
    /// use smsys_core::SequentialIds;
    /// use smsys_processes::known_error::catalogue::{IncidentProfile, KnownErrorCatalogue};
    /// use smsys_processes::known_error::{KnownErrorCommand, LogKnownError};
    /// use smsys_processes::{KnownErrorManagement, KnownErrorPolicy, LogRecord};
    /// use smsys_store::MemoryEventStore;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    /// let handler = CommandHandler::<KnownErrorManagement>::new(
    ///     store.clone(), KnownErrorPolicy::default(),
    /// );
    /// let ids = SequentialIds::new(0);
    /// let ctx = Context::new(chrono::DateTime::UNIX_EPOCH, &ids);
    /// let meta = CommandMeta::new(Actor::new("frank")?);
    /// let reference = "KE-0001".parse()?;
    /// let stream = KnownError::stream(&reference)?;
    /// let log = LogKnownError::new(
    ///     LogRecord::new(reference, "ana".parse()?, Channel::Portal, "email".parse()?, "bounces")
    ///         .affected_cis(vec!["mx-01".parse()?]),
    ///     "mail bounces with 451",
    /// )
    /// .workaround("flush the queue");
    /// handler.execute(&stream, &KnownErrorCommand::Log(log), &meta, &ctx).await?;
    /// handler.execute(&stream, &KnownErrorCommand::Publish, &meta, &ctx).await?;
    ///
    /// let catalogue = KnownErrorCatalogue::new();
    /// ProjectionRunner::new(store).catch_up(&catalogue).await?;
    /// let profile = IncidentProfile { cis: vec!["mx-01".parse()?], ..IncidentProfile::default() };
    /// let found = catalogue.matching(&profile);
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].workaround.as_deref(), Some("flush the queue"));
    /// assert!(found[0].matched.ci() && !found[0].matched.service);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn matching(&self, profile: &IncidentProfile) -> Vec<KnownErrorMatch> {
        let model = self.model.read().unwrap_or_else(PoisonError::into_inner);
        let mut found: Vec<KnownErrorMatch> = model
            .held
            .values()
            .filter_map(Held::offered)
            .filter_map(|offered| {
                let matched = offered.matched(profile)?;
                Some(KnownErrorMatch {
                    reference: offered.reference,
                    version: offered.version,
                    symptom: offered.content.symptom,
                    workaround: offered.content.workaround,
                    root_cause: offered.content.root_cause,
                    problem: offered.problem,
                    matched,
                })
            })
            .collect();
        found.sort_by(|a, b| {
            let strength =
                |m: &KnownErrorMatch| (m.matched.cis.len(), m.matched.service, m.matched.category);
            strength(b)
                .cmp(&strength(a))
                .then_with(|| a.reference.cmp(&b.reference))
        });
        found
    }

    /// The known error with `reference`, while it is offered (published, not retired).
    pub fn get(&self, reference: &Reference) -> Option<OfferedKnownError> {
        let stream = KnownError::stream(reference).ok()?;
        let model = self.model.read().unwrap_or_else(PoisonError::into_inner);
        model.held.get(&stream).and_then(Held::offered)
    }

    /// Every offered known error, by reference.
    pub fn offered(&self) -> BTreeMap<Reference, OfferedKnownError> {
        let model = self.model.read().unwrap_or_else(PoisonError::into_inner);
        model
            .held
            .values()
            .filter_map(Held::offered)
            .map(|o| (o.reference.clone(), o))
            .collect()
    }

    /// `event` read as a known error's event, through the type's upcasters.
    fn read(&self, event: &RecordedEvent) -> Result<KnownErrorEvent, ProjectionError> {
        self.upcasters
            .decode(
                event.event_type(),
                event.data.schema_version(),
                event.data.payload().clone(),
            )
            .map_err(|e| ProjectionError::event(&self.name, event, e))
    }
}

#[async_trait]
impl Projection for KnownErrorCatalogue {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<KnownError>()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        let model = self.model.read().unwrap_or_else(PoisonError::into_inner);
        Ok(model.checkpoint)
    }

    /// Applies the whole batch or none of it: the known errors it touches are folded on
    /// copies, which replace the held ones once every event is read.
    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let mut model = self.model.write().unwrap_or_else(PoisonError::into_inner);
        let mut touched: HashMap<StreamId, Held> = HashMap::new();
        for event in events {
            if event.stream.category_str() != KnownError::CATEGORY {
                continue;
            }
            let held = touched.entry(event.stream.clone()).or_insert_with(|| {
                model.held.get(&event.stream).cloned().unwrap_or(Held {
                    version: None,
                    state: KnownError::default(),
                })
            });
            if held.version.is_some_and(|v| event.version <= v) {
                continue; // already held: delivered again
            }
            let typed = self.read(event)?;
            held.state.evolve(&typed, Stamp::of(event.data.metadata()));
            held.version = Some(event.version);
        }
        model.held.extend(touched);
        if model.checkpoint.is_none_or(|held| held < checkpoint) {
            model.checkpoint = Some(checkpoint);
        }
        Ok(())
    }
}
