//! A record's view for display: its current state, its SLA timers as of an instant, and its
//! history as typed entries, in one call.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use smsys_core::records::{DefinitionRef, RecordKind, TypedEvent};
use smsys_core::{Actor, DomainEvent, EventStore, LoadError, Position, Stamp, StreamId, Version};

use crate::sla::{BREACH_BP, History, SlaEngine};

/// One SLA timer cycle of a record as of an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerView {
    /// The timer's name.
    pub timer: String,
    /// Its cycle.
    pub cycle: u32,
    /// The SLA version it bound to.
    pub sla: DefinitionRef,
    /// Whether it is counting.
    pub running: bool,
    /// Whether it is paused.
    pub paused: bool,
    /// Business seconds elapsed (paused time not counted).
    pub elapsed: i64,
    /// Its target in business seconds, if it has one.
    pub target: Option<i64>,
    /// Elapsed against the target, in basis points (10,000 = 100 %), floored.
    pub percent_bp: Option<u64>,
    /// When it reaches 100 % if it keeps running.
    pub due: Option<DateTime<Utc>>,
    /// Whether it is breached (recorded, or past 100 % as of the view's instant).
    pub breached: bool,
}

/// One event of a record's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry<K: RecordKind> {
    /// Its version in the record's stream.
    pub version: Version,
    /// Its position in the log.
    pub position: Position,
    /// When it occurred.
    pub at: DateTime<Utc>,
    /// Who recorded it.
    pub actor: Actor,
    /// The event.
    pub event: TypedEvent<K>,
}

/// A record for display: state, timers and history.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordView<K: RecordKind> {
    /// The current state.
    pub state: K,
    /// The version it reflects (`None`: no such record).
    pub version: Option<Version>,
    /// Its SLA timers, every cycle, as of the view's instant.
    pub timers: Vec<TimerView>,
    /// Every event, oldest first.
    pub history: Vec<HistoryEntry<K>>,
}

impl<K: RecordKind> RecordView<K> {
    /// Reads the record of `stream` (through its type's upcasters) and derives its timers
    /// with `engine` as of `now`.
    ///
    /// ```no_run
    /// # async fn demo(store: &dyn smsys_core::EventStore) -> Result<(), Box<dyn std::error::Error>> {
    /// use smsys_core::records::{Incident, RecordKind};
    /// use smsys_processes::sla::SlaEngine;
    /// use smsys_processes::view::RecordView;
    ///
    /// let stream = Incident::stream(&"INC-7".parse()?)?;
    /// let now = chrono::DateTime::UNIX_EPOCH;
    /// let view = RecordView::<Incident>::load(store, &SlaEngine::reference(), &stream, now).await?;
    /// for t in &view.timers {
    ///     println!("{} {:?} % due {:?}", t.timer, t.percent_bp.map(|bp| bp / 100), t.due);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn load(
        store: &dyn EventStore,
        engine: &SlaEngine,
        stream: &StreamId,
        now: DateTime<Utc>,
    ) -> Result<Self, LoadError> {
        if stream.category_str() != K::CATEGORY {
            return Err(LoadError::WrongCategory {
                stream: stream.clone(),
                expected: K::CATEGORY,
            });
        }
        let upcasters = TypedEvent::<K>::upcasters();
        let mut state = K::default();
        let mut version = None;
        let mut history = Vec::new();
        let mut common = History::new();
        let mut events = store.read_stream(stream, Version::FIRST);
        while let Some(recorded) = events.next().await {
            let recorded = recorded?;
            let (position, at) = (recorded.position, recorded.version);
            let (event_type, schema_version, payload, metadata) = recorded.data.into_parts();
            let event: TypedEvent<K> = upcasters
                .decode(&event_type, schema_version, payload)
                .map_err(|failure| failure.at(stream, at))?;
            state.evolve(&event, Stamp::of(&metadata));
            version = Some(at);
            if let Some(c) = event.clone().into_common() {
                common.push((metadata.occurred_at(), c));
            }
            history.push(HistoryEntry {
                version: at,
                position,
                at: metadata.occurred_at(),
                actor: metadata.actor().clone(),
                event,
            });
        }
        let timers = engine
            .timers(&K::RECORD_TYPE, &common)
            .into_iter()
            .map(|t| {
                let cal = engine.calendar_for(&t);
                let percent_bp = cal.and_then(|c| t.percent_bp(c, now));
                TimerView {
                    timer: t.timer().to_owned(),
                    cycle: t.cycle(),
                    sla: t.sla().clone(),
                    running: t.is_running() && !t.is_paused(),
                    paused: t.is_paused(),
                    elapsed: cal.map_or(0, |c| t.elapsed(c, now)),
                    target: t.target(),
                    percent_bp,
                    due: cal.and_then(|c| t.is_running().then(|| t.due(c)).flatten()),
                    breached: t.recorded().contains(&BREACH_BP)
                        || cal
                            .and_then(|c| t.reached_at(c, BREACH_BP))
                            .is_some_and(|at| at <= now),
                }
            })
            .collect();
        Ok(Self {
            state,
            version,
            timers,
            history,
        })
    }
}
