//! The record index projection: one row per record of every type the SLA engine follows,
//! with the state of its SLA timers, kept in a [`RecordIndexStore`] next to the log.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn smsys_core::EventStore>,
//! #     rows: std::sync::Arc<dyn smsys_core::records::RecordIndexStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use smsys_core::ProjectionRunner;
//! use smsys_core::records::RecordQuery;
//! use smsys_processes::index::RecordIndexer;
//! use smsys_processes::sla::SlaEngine;
//!
//! let indexer = RecordIndexer::new(store.clone(), rows.clone(), Arc::new(SlaEngine::reference()));
//! ProjectionRunner::new(store).catch_up(&indexer).await?;
//! let open = rows.query(&RecordQuery::open()).await?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use smsys_core::records::{
    CommonEvent, Phase, RecordEvent, RecordIndexStore, RecordRow, RecordType, TimerRow,
    TransitionDetail,
};
use smsys_core::{
    Category, EventStore, LogFilter, Position, Projection, ProjectionError, RecordedEvent,
    StreamId, Version,
};

use crate::sla::{BREACH_BP, History, SlaEngine};

/// The name of the own event that marks a record major (incidents'): the index reads it
/// without knowing the record type.
const MAJOR_FLAGGED: &str = "major_flagged";

/// Keeps the record index: folds each record's shared events into its row, derives its SLA
/// timers from its history, and writes the rows of a batch with the checkpoint in one call of
/// the index store (one transaction on SQLite and PostgreSQL).
///
/// Idempotent by stream version: an event at or below a row's version changes nothing, so a
/// batch delivered again after a crash leaves the rows as they were. The histories of open
/// records are kept in memory (closed and cancelled records drop theirs); after a restart a
/// record's history is read from the store the first time one of its events arrives.
pub struct RecordIndexer {
    store: Arc<dyn EventStore>,
    index: Arc<dyn RecordIndexStore>,
    engine: Arc<SlaEngine>,
    histories: Mutex<HashMap<StreamId, History>>,
}

impl std::fmt::Debug for RecordIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordIndexer")
            .field("index", &self.index.name())
            .finish_non_exhaustive()
    }
}

/// A row being built from a batch, with the record's history so far.
struct Building {
    row: Option<RecordRow>,
    history: History,
}

impl RecordIndexer {
    /// An indexer reading `store`, writing `index`, deriving timers with `engine` (whose
    /// record types it indexes).
    pub fn new(
        store: Arc<dyn EventStore>,
        index: Arc<dyn RecordIndexStore>,
        engine: Arc<SlaEngine>,
    ) -> Self {
        Self {
            store,
            index,
            engine,
            histories: Mutex::new(HashMap::new()),
        }
    }

    /// The index it writes.
    pub fn index(&self) -> &Arc<dyn RecordIndexStore> {
        &self.index
    }

    fn take_history(&self, stream: &StreamId) -> Option<History> {
        self.histories
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(stream)
    }

    fn keep_history(&self, stream: StreamId, history: History) {
        self.histories
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(stream, history);
    }

    /// The history of a record up to `version`, read from the store.
    async fn read_history(
        &self,
        stream: &StreamId,
        version: Version,
    ) -> Result<History, ProjectionError> {
        let mut history = History::new();
        let mut events = self.store.read_stream(stream, Version::FIRST);
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| ProjectionError::store(self.index.name(), e))?;
            if event.version > version {
                break;
            }
            if let Some(common) = self.read(&event)? {
                history.push((event.data.metadata().occurred_at(), common));
            }
        }
        Ok(history)
    }

    fn read(&self, event: &RecordedEvent) -> Result<Option<CommonEvent>, ProjectionError> {
        self.engine
            .read_event(
                &event.stream,
                event.data.event_type(),
                event.data.schema_version(),
                event.data.payload().clone(),
            )
            .map_err(|e| ProjectionError::event(self.index.name(), event, e))
    }

    /// The rows of the batch's records, read in one request.
    async fn rows_of(
        &self,
        events: &[RecordedEvent],
    ) -> Result<HashMap<StreamId, Option<RecordRow>>, ProjectionError> {
        let mut streams: Vec<StreamId> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in events {
            if self.engine.record_type_of(&e.stream).is_some() && seen.insert(&e.stream) {
                streams.push(e.stream.clone());
            }
        }
        let rows = self
            .index
            .rows(&streams)
            .await
            .map_err(|e| ProjectionError::store(self.index.name(), e))?;
        Ok(streams.into_iter().zip(rows).collect())
    }

    async fn start(
        &self,
        event: &RecordedEvent,
        row: Option<RecordRow>,
    ) -> Result<Building, ProjectionError> {
        let history = match (&row, self.take_history(&event.stream)) {
            (_, Some(history)) => history,
            (Some(row), None) => self.read_history(&event.stream, row.version).await?,
            (None, None) => History::new(),
        };
        Ok(Building { row, history })
    }

    fn timers(&self, row: &RecordRow, history: &History) -> Vec<TimerRow> {
        timer_rows(&self.engine, &row.record_type, history)
    }
}

/// The latest cycle of each SLA timer of a record with `history`, as the index keeps it.
pub fn timer_rows(
    engine: &SlaEngine,
    record_type: &RecordType,
    history: &History,
) -> Vec<TimerRow> {
    let mut latest: BTreeMap<String, TimerRow> = BTreeMap::new();
    for timer in engine.timers(record_type, history) {
        let cal = engine.calendar_for(&timer);
        let timer_row = TimerRow {
            timer: timer.timer().to_owned(),
            cycle: timer.cycle(),
            running: timer.is_running() && !timer.is_paused(),
            paused: timer.is_paused(),
            due: cal.and_then(|c| timer.is_running().then(|| timer.due(c)).flatten()),
            next_threshold: cal.and_then(|c| timer.next_due(c)),
            breached: timer.recorded().contains(&BREACH_BP),
        };
        latest.insert(timer_row.timer.clone(), timer_row);
    }
    latest.into_values().collect()
}

/// Applies one event to a row (creating it from the logged event).
fn fold(
    row: &mut Option<RecordRow>,
    event: &RecordedEvent,
    common: Option<&CommonEvent>,
    record_type: &RecordType,
) -> Result<(), &'static str> {
    let at = event.data.metadata().occurred_at();
    if let Some(CommonEvent::Logged(logged)) = common {
        *row = Some(RecordRow {
            stream: event.stream.clone(),
            record_type: record_type.clone(),
            reference: logged.reference.clone(),
            status: logged.status.clone(),
            phase: Phase::New,
            priority: None,
            service: logged.service.clone(),
            group: None,
            person: None,
            caller: logged.caller.clone(),
            summary: logged.summary.clone(),
            affected_cis: logged.affected_cis.clone(),
            logged_at: at,
            resolved_at: None,
            closed_at: None,
            reopen_count: 0,
            major: false,
            timers: Vec::new(),
            version: event.version,
        });
        return Ok(());
    }
    let Some(row) = row.as_mut() else {
        return Err("the record has no logged event before it");
    };
    row.version = event.version;
    let Some(CommonEvent::Record(e)) = common else {
        if event
            .data
            .event_type()
            .as_str()
            .rsplit_once('.')
            .is_some_and(|(_, name)| name == MAJOR_FLAGGED)
        {
            row.major = true;
        }
        return Ok(());
    };
    match e {
        RecordEvent::Prioritised { priority, .. }
        | RecordEvent::PriorityOverridden { priority, .. } => row.priority = Some(*priority),
        RecordEvent::Assigned { group, person, .. } => {
            row.group = Some(group.clone());
            row.person.clone_from(person);
        }
        RecordEvent::Unassigned { .. } => {
            row.group = None;
            row.person = None;
        }
        RecordEvent::Transitioned {
            to, phase, detail, ..
        } => {
            if row.phase == Phase::Resolved && phase.is_open() {
                row.resolved_at = None;
            }
            row.status.clone_from(to);
            row.phase = *phase;
            if phase.is_final() {
                row.closed_at = Some(at);
            }
            match detail {
                TransitionDetail::Resolution { .. } => row.resolved_at = Some(at),
                TransitionDetail::Reopen { count, .. } => row.reopen_count = *count,
                TransitionDetail::Plain
                | TransitionDetail::Hold { .. }
                | TransitionDetail::Resume { .. }
                | TransitionDetail::Closure { .. }
                | TransitionDetail::Cancellation { .. } => {}
            }
        }
        RecordEvent::LifecycleMigrated { to_status, .. } => row.status.clone_from(to_status),
        RecordEvent::Classified { .. }
        | RecordEvent::Noted { .. }
        | RecordEvent::Escalated { .. }
        | RecordEvent::Linked { .. }
        | RecordEvent::Unlinked { .. }
        | RecordEvent::AttributeSet { .. }
        | RecordEvent::AttributeRemoved { .. }
        | RecordEvent::SlaThresholdReached { .. }
        | RecordEvent::SlaBreached { .. } => {}
    }
    Ok(())
}

#[async_trait]
impl Projection for RecordIndexer {
    fn name(&self) -> &str {
        self.index.name()
    }

    fn filter(&self) -> LogFilter {
        self.engine
            .categories()
            .filter_map(|c| Category::new(c).ok())
            .fold(LogFilter::all(), LogFilter::category)
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        self.index
            .checkpoint_for(&self.filter())
            .await
            .map_err(|e| ProjectionError::store(self.index.name(), e))
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let mut rows_read = self.rows_of(events).await?;
        let mut building: HashMap<StreamId, Building> = HashMap::new();
        let mut order: Vec<StreamId> = Vec::new();
        for event in events {
            let Some(record_type) = self.engine.record_type_of(&event.stream).cloned() else {
                continue;
            };
            if !building.contains_key(&event.stream) {
                let row = rows_read.remove(&event.stream).flatten();
                let started = self.start(event, row).await?;
                order.push(event.stream.clone());
                building.insert(event.stream.clone(), started);
            }
            let Some(b) = building.get_mut(&event.stream) else {
                continue;
            };
            if b.row.as_ref().is_some_and(|r| event.version <= r.version) {
                continue; // already held: delivered again after a restart
            }
            let common = self.read(event)?;
            fold(&mut b.row, event, common.as_ref(), &record_type)
                .map_err(|reason| ProjectionError::event(self.index.name(), event, reason))?;
            if let Some(common) = common {
                b.history
                    .push((event.data.metadata().occurred_at(), common));
            }
        }
        let mut rows = Vec::with_capacity(order.len());
        let mut keep = Vec::new();
        for stream in order {
            let Some(Building { row, history }) = building.remove(&stream) else {
                continue;
            };
            let Some(mut row) = row else { continue };
            row.timers = self.timers(&row, &history);
            if !row.phase.is_final() {
                keep.push((stream, history));
            }
            rows.push(row);
        }
        self.index
            .apply(rows, checkpoint)
            .await
            .map_err(|e| ProjectionError::store(self.index.name(), e))?;
        // Only once the rows are written: a failed batch is read again from the store.
        for (stream, history) in keep {
            self.keep_history(stream, history);
        }
        Ok(())
    }
}
