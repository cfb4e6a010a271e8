//! Problem identification from incident trends (ISO/IEC 20000-1 8.6.3): a read model over
//! incidents that proposes problem candidates and answers the recurrence queries of the
//! review of a problem's resolution.
//!
//! [`IncidentTrends`] is a [`Projection`] over the `incident` category. It folds each
//! incident's events into compact facts (reference, logged at, service, configuration items,
//! category, major flag, linked problems, phase) and answers:
//! - [`IncidentTrends::candidates`]: per configuration item, service and category, the
//!   incidents logged in the policy's window that are not cancelled and not linked to a
//!   problem, when they reach the dimension's threshold; and each major incident without a
//!   problem (see [`TrendPolicy`]);
//! - [`IncidentTrends::recurrences`]: incidents like those a problem was about, logged after
//!   its fix (see [`RecurrenceQuery`]).
//!
//! ```
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use std::sync::Arc;
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use smsys_core::records::{Channel, Incident, RecordKind};
//! use smsys_core::{CommandHandler, CommandMeta, Context, EventStore, ProjectionRunner, SequentialIds};
//! use smsys_processes::trend::{IncidentTrends, TrendKey, TrendPolicy};
//! use smsys_processes::{IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord};
//! use smsys_store::MemoryEventStore;
//!
//! let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
//! let desk = CommandHandler::<IncidentManagement>::new(store.clone(), IncidentPolicy::default());
//! let ids = SequentialIds::new(0);
//! let monday = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
//! for n in 1..=3 {
//!     let reference = format!("INC-{n}").parse()?;
//!     let stream = Incident::stream(&reference)?;
//!     let log = IncidentCommand::Log(
//!         LogRecord::new(reference, "ana".parse()?, Channel::Phone, "email".parse()?, "bounces")
//!             .affected_cis(vec!["mx-01".parse()?]),
//!     );
//!     let at = monday + TimeDelta::hours(n);
//!     desk.execute(&stream, &log, &CommandMeta::new("agent:bo".parse()?), &Context::new(at, &ids))
//!         .await?;
//! }
//!
//! let trends = IncidentTrends::new(TrendPolicy::default())?;
//! ProjectionRunner::new(store).catch_up(&trends).await?;
//! let candidates = trends.candidates(monday + TimeDelta::days(1));
//! assert_eq!(candidates.len(), 1, "3 incidents on mx-01; 5 are needed on a service");
//! assert_eq!(candidates[0].key(), &TrendKey::Ci("mx-01".parse()?));
//! assert_eq!(candidates[0].id(), "ci:mx-01");
//! assert_eq!(candidates[0].incidents().len(), 3);
//! // A week later they are out of the window.
//! assert!(trends.candidates(monday + TimeDelta::days(8)).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).map_err(|e| e.to_string())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod candidate;
mod model;
mod policy;

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use smsys_core::records::{Incident, IncidentEvent, Reference};
use smsys_core::{
    EventSourced, LogFilter, Position, Projection, ProjectionError, RecordedEvent, Upcasters,
};

pub use candidate::{IncidentFacts, RecurrenceQuery, TrendCandidate, TrendKey};
pub use policy::{TrendDimension, TrendPolicy, TrendPolicyError};

use model::{Model, is_read};

/// The trends over incidents: a read model in memory, fed by a
/// [`ProjectionRunner`](smsys_core::ProjectionRunner) from the `incident` category.
///
/// Its checkpoint is held in memory with the facts, so a new instance starts empty and is
/// rebuilt from the start of the log (catch up, then follow live); an event at or before its
/// checkpoint changes nothing, so a batch delivered again is harmless. A batch is applied
/// whole or not at all: its events are decoded (through the incident upcasters) before any
/// is folded. Only the events it reads are decoded (`logged`, `classified`, `transitioned`,
/// `linked`, `unlinked` and the major-incident events); an event of an incident whose
/// `logged` event it never saw is skipped with a warning.
///
/// Facts are a few bytes each, names interned (about 180 bytes an incident, index included,
/// measured by `benches/trend.rs`), kept in the order incidents were logged: a query visits
/// only the incidents logged in its window (and, for candidates, the major incidents). See
/// the [module docs](self) for an example.
#[derive(Debug)]
pub struct IncidentTrends {
    name: String,
    policy: TrendPolicy,
    filter: LogFilter,
    upcasters: Upcasters,
    model: RwLock<Model>,
}

impl IncidentTrends {
    /// The name the trends run under by default.
    pub const DEFAULT_NAME: &'static str = "incident_trends.v1";

    /// Empty trends under `policy`, once it is valid.
    pub fn new(policy: TrendPolicy) -> Result<Self, TrendPolicyError> {
        policy.validate()?;
        Ok(Self {
            name: Self::DEFAULT_NAME.to_owned(),
            policy,
            filter: crate::stream_filter::<Incident>(),
            upcasters: <Incident as smsys_core::records::RecordKind>::upcasters(),
            model: RwLock::new(Model::default()),
        })
    }

    /// Under another projection name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The policy.
    pub fn policy(&self) -> &TrendPolicy {
        &self.policy
    }

    fn read(&self) -> RwLockReadGuard<'_, Model> {
        self.model.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Model> {
        self.model.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `query` on the model with every fact in order (putting the facts folded since
    /// the last query in their place first, under the write lock).
    fn settled<T>(&self, query: impl FnOnce(&Model) -> T) -> T {
        {
            let model = self.read();
            if model.is_settled() {
                return query(&model);
            }
        }
        let mut model = self.write();
        model.settle();
        query(&model)
    }

    /// The problem candidates as of `as_of`, in a stable order: by dimension (configuration
    /// item, service, category, major incident), then by descending number of incidents,
    /// then by key.
    ///
    /// For each dimension the policy enables, each key with at least the threshold of
    /// incidents logged in `(as_of - window, as_of]` that are not cancelled and not linked to
    /// a problem. With `major_without_problem`, each major incident logged at or before
    /// `as_of` that is not cancelled, not linked to a problem, and either logged in the
    /// window or not yet closed.
    pub fn candidates(&self, as_of: DateTime<Utc>) -> Vec<TrendCandidate> {
        self.settled(|model| model.candidates(&self.policy, as_of))
    }

    /// The incidents `query` finds, ordered by the instant they were logged, then by
    /// reference (the rule is on [`RecurrenceQuery`]).
    pub fn recurrences(&self, query: &RecurrenceQuery) -> Vec<Reference> {
        self.settled(|model| model.recurrences(query))
    }

    /// The folded facts of the incident `reference`, if it was logged.
    pub fn facts(&self, reference: &Reference) -> Option<IncidentFacts> {
        let model = self.read();
        let i = *model.streams.get(reference.as_str())?;
        model.facts_of(model.facts.get(i as usize)?)
    }

    /// How many incidents it holds.
    pub fn len(&self) -> usize {
        self.read().facts.len()
    }

    /// Whether it holds no incident.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The event of `event` as the trends read it: `None` for events they do not read.
    fn decode(&self, event: &RecordedEvent) -> Result<Option<IncidentEvent>, ProjectionError> {
        let event_type = event.data.event_type();
        let Some((category, name)) = event_type.as_str().split_once('.') else {
            return Ok(None);
        };
        if category != Incident::CATEGORY || !is_read(name) {
            return Ok(None);
        }
        self.upcasters
            .decode(
                event_type,
                event.data.schema_version(),
                event.data.payload().clone(),
            )
            .map(Some)
            .map_err(|e| ProjectionError::event(&self.name, event, e))
    }
}

#[async_trait]
impl Projection for IncidentTrends {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        self.filter.clone()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        Ok(self.read().checkpoint)
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let held = self.read().checkpoint;
        let mut decoded = Vec::new();
        for event in events {
            if held.is_some_and(|h| event.position <= h) {
                continue;
            }
            if let Some(typed) = self.decode(event)? {
                decoded.push((event, typed));
            }
        }
        let mut model = self.write();
        let held = model.checkpoint;
        for (event, typed) in &decoded {
            if held.is_some_and(|h| event.position <= h) {
                continue;
            }
            let at = event.data.metadata().occurred_at();
            if !model.fold(&event.stream, at, typed) {
                tracing::warn!(projection = %self.name, stream = %event.stream,
                    version = %event.version, "incident event before its logged event skipped");
            }
        }
        model.checkpoint = Some(held.map_or(checkpoint, |h| h.max(checkpoint)));
        Ok(())
    }
}
