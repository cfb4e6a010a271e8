//! Importing history from another tool: records' past events, recorded as facts through the
//! store's batched append, with their provenance.
//!
//! History is not replayed as commands: it did happen, even where today's rules would refuse
//! it, so each record's events are appended as they are, typed like the events commands record
//! (projections, SLA timers and reports read them alike). Every event carries where it came
//! from in its metadata extensions, [`SOURCE_SYSTEM`] and [`SOURCE_ROW`], and an id derived
//! from them ([`EventId::derived`]), so running the same import again after a crash or a
//! timeout is a retry the store recognises, never a duplicate.
//!
//! ```
//! # use std::sync::Arc;
//! # use smsys_core::*;
//! # use smsys_core::import::*;
//! # async fn demo<E: DomainEvent>(store: Arc<dyn EventStore>, logged: E, resolved: E)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! let at = chrono::DateTime::UNIX_EPOCH;
//! let agent = Actor::new("agent:ana")?;
//! let history = RecordHistory::new("incident-INC-1".parse()?)
//!     .with(HistoricalEvent::new(logged, agent.clone(), at, "row 1"))
//!     .with(HistoricalEvent::new(resolved, agent, at, "row 2"));
//! let report = HistoryImport::new(store, "servicenow")?
//!     .run(vec![history])
//!     .await?;
//! assert!(report.refused.is_empty());
//! # Ok(()) }
//! ```

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::aggregate::DomainEvent;
use crate::event::{Actor, EventData, EventId, Metadata, TenantId};
use crate::store::{AppendError, EventStore, StoreError, StreamAppend};
use crate::stream::{ExpectedVersion, IdError, Position, StreamId, Version};

/// Metadata extension naming the system an imported event came from.
pub const SOURCE_SYSTEM: &str = "source.system";
/// Metadata extension naming the row (or record) of the source an imported event came from.
pub const SOURCE_ROW: &str = "source.row";

/// Events appended per store batch unless told otherwise.
pub const DEFAULT_BATCH_EVENTS: usize = 10_000;

/// One event of a record's past: what happened, who did it, when, and the source row that
/// says so.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoricalEvent<E> {
    /// The event.
    pub event: E,
    /// Who did it, as the source records it.
    pub actor: Actor,
    /// When it happened, as the source records it.
    pub occurred_at: DateTime<Utc>,
    /// The source row it comes from (a row may give several events).
    pub source_row: String,
}

impl<E> HistoricalEvent<E> {
    /// `event`, done by `actor` at `occurred_at`, read from `source_row`.
    pub fn new(
        event: E,
        actor: Actor,
        occurred_at: DateTime<Utc>,
        source_row: impl Into<String>,
    ) -> Self {
        Self {
            event,
            actor,
            occurred_at,
            source_row: source_row.into(),
        }
    }
}

/// The history of one record: its stream and its events, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordHistory<E> {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<HistoricalEvent<E>>,
}

impl<E> RecordHistory<E> {
    /// The history of a record new to the store.
    pub fn new(stream: StreamId) -> Self {
        Self {
            stream,
            expected: ExpectedVersion::NoStream,
            events: Vec::new(),
        }
    }

    /// The rest of a history whose first part is stored up to `version`.
    pub fn continuing(mut self, version: Version) -> Self {
        self.expected = ExpectedVersion::Exact(version);
        self
    }

    /// Adds the next event.
    pub fn with(mut self, event: HistoricalEvent<E>) -> Self {
        self.events.push(event);
        self
    }

    /// Adds the next event.
    pub fn push(&mut self, event: HistoricalEvent<E>) {
        self.events.push(event);
    }

    /// The record's stream.
    pub fn stream(&self) -> &StreamId {
        &self.stream
    }

    /// The events, oldest first.
    pub fn events(&self) -> &[HistoricalEvent<E>] {
        &self.events
    }
}

/// How far an import has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportProgress {
    /// Records handled so far (recorded or refused).
    pub records: usize,
    /// Events handled so far.
    pub events: usize,
    /// Records in the import.
    pub total_records: usize,
    /// Events in the import.
    pub total_events: usize,
}

/// Why one record's history was not recorded. Nothing of that record was written, except
/// after a transient store failure ([`crate::BackendError::is_transient`]), where the outcome
/// is unknown until the import is run again.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    /// An event could not be turned into stored form.
    #[error("source row {source_row}: {reason}")]
    Encode {
        /// The row the event came from.
        source_row: String,
        /// What failed.
        reason: String,
    },
    /// The store refused the append (e.g. the record already holds other events).
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// A record whose history was not recorded, and why.
#[derive(Debug)]
pub struct RefusedRecord {
    /// The record's stream.
    pub stream: StreamId,
    /// Why.
    pub failure: ImportFailure,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Records whose history is stored (including those an earlier run had already stored).
    pub records: usize,
    /// Their events.
    pub events: usize,
    /// The records that were not recorded.
    pub refused: Vec<RefusedRecord>,
    /// The log position of the last event stored, if any: a read side that catches up to it
    /// has seen the whole import.
    pub last_position: Option<Position>,
}

/// Why an import could not start.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source system's name is not usable as metadata.
    #[error("source system name: {0}")]
    Source(#[from] IdError),
}

type Progress = Arc<dyn Fn(ImportProgress) + Send + Sync>;

/// Records histories into a store in large batches ([`EventStore::append_batch`]): each
/// record all or nothing, a refused record reported without stopping the others.
pub struct HistoryImport {
    store: Arc<dyn EventStore>,
    source: String,
    tenant: Option<TenantId>,
    batch_events: usize,
    progress: Option<Progress>,
}

impl std::fmt::Debug for HistoryImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryImport")
            .field("source", &self.source)
            .field("tenant", &self.tenant)
            .field("batch_events", &self.batch_events)
            .finish_non_exhaustive()
    }
}

impl HistoryImport {
    /// An import into `store` of history from the system named `source` (e.g. `servicenow`).
    pub fn new(store: Arc<dyn EventStore>, source: impl Into<String>) -> Result<Self, ImportError> {
        let source = source.into();
        // The name goes into every event's metadata: check it as such once, here.
        Actor::new(source.as_str())?;
        Ok(Self {
            store,
            source,
            tenant: None,
            batch_events: DEFAULT_BATCH_EVENTS,
            progress: None,
        })
    }

    /// Marks every imported event as belonging to `tenant`.
    pub fn with_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Appends about `events` events per store batch (at least one record per batch).
    pub fn with_batch_events(mut self, events: usize) -> Self {
        self.batch_events = events.max(1);
        self
    }

    /// Calls `report` after every batch.
    pub fn with_progress(
        mut self,
        report: impl Fn(ImportProgress) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(report));
        self
    }

    /// Records `records`, in batches. Records the store already holds from an earlier run of
    /// the same import count as recorded; records without events are skipped (and counted in
    /// the progress only).
    ///
    /// Each event's id is derived from the source system's name, the stream and the version
    /// it is recorded at, so a rerun puts the same ids at the same places and the store
    /// recognises it as a retry.
    pub async fn run<E: DomainEvent>(
        &self,
        records: Vec<RecordHistory<E>>,
    ) -> Result<ImportReport, ImportError> {
        let mut progress = ImportProgress {
            records: 0,
            events: 0,
            total_records: records.len(),
            total_events: records.iter().map(|r| r.events.len()).sum(),
        };
        let mut report = ImportReport::default();
        let mut reported = None;
        let mut batch: Vec<StreamAppend> = Vec::new();
        let mut batch_events = 0;
        for record in records {
            if record.events.is_empty() {
                progress.records += 1;
                continue;
            }
            match self.encode(&record) {
                Ok(events) => {
                    batch_events += events.len();
                    batch.push(StreamAppend::new(record.stream, record.expected, events));
                }
                Err(failure) => {
                    progress.records += 1;
                    progress.events += record.events.len();
                    report.refused.push(RefusedRecord {
                        stream: record.stream,
                        failure,
                    });
                }
            }
            if batch_events >= self.batch_events {
                self.flush(std::mem::take(&mut batch), &mut report, &mut progress)
                    .await;
                self.report(progress, &mut reported);
                batch_events = 0;
            }
        }
        if !batch.is_empty() {
            self.flush(batch, &mut report, &mut progress).await;
        }
        self.report(progress, &mut reported);
        tracing::info!(source = %self.source, records = report.records, events = report.events,
            refused = report.refused.len(), "import finished");
        Ok(report)
    }

    async fn flush(
        &self,
        batch: Vec<StreamAppend>,
        report: &mut ImportReport,
        progress: &mut ImportProgress,
    ) {
        let streams: Vec<(StreamId, usize)> = batch
            .iter()
            .map(|a| (a.stream.clone(), a.events.len()))
            .collect();
        let parts = streams.len();
        let mut results = self.store.append_batch(batch).await;
        if results.len() != parts {
            // A store that breaks the one-result-per-part contract: what happened to the parts
            // without a result is unknown, so they are reported as such.
            tracing::error!(
                parts,
                results = results.len(),
                "append_batch answered for a different number of parts"
            );
            results.truncate(parts);
            while results.len() < parts {
                results.push(Err(AppendError::Store(StoreError::Corrupt {
                    what: "the store gave no result for this part of a batch".into(),
                })));
            }
        }
        for ((stream, events), result) in streams.into_iter().zip(results) {
            progress.records += 1;
            progress.events += events;
            match result {
                Ok(written) => {
                    report.records += 1;
                    report.events += events;
                    report.last_position =
                        report.last_position.max(written.positions.last().copied());
                }
                Err(error) => {
                    tracing::warn!(%stream, %error, "imported record refused");
                    report.refused.push(RefusedRecord {
                        stream,
                        failure: ImportFailure::Append(error),
                    });
                }
            }
        }
    }

    /// Tells the progress callback, unless it was told this already.
    fn report(&self, progress: ImportProgress, reported: &mut Option<ImportProgress>) {
        if *reported == Some(progress) {
            return;
        }
        *reported = Some(progress);
        tracing::debug!(
            records = progress.records,
            events = progress.events,
            total = progress.total_records,
            "import progress"
        );
        if let Some(report) = &self.progress {
            report(progress);
        }
    }

    fn encode<E: DomainEvent>(
        &self,
        record: &RecordHistory<E>,
    ) -> Result<Vec<EventData>, ImportFailure> {
        let first = match record.expected {
            ExpectedVersion::Exact(version) => version.get() + 1,
            ExpectedVersion::Any | ExpectedVersion::NoStream | ExpectedVersion::StreamExists => 1,
        };
        record
            .events
            .iter()
            .zip(first..)
            .map(|(past, version)| {
                let fail = |reason: String| ImportFailure::Encode {
                    source_row: past.source_row.clone(),
                    reason,
                };
                // Named by its place (a rerun must put it there anyway) and its source, with
                // each part's length so no two (source, stream) pairs give the same name.
                let id = EventId::derived(&format!(
                    "import/{}:{}/{}:{}/{version}",
                    self.source.len(),
                    self.source,
                    record.stream.as_str().len(),
                    record.stream
                ));
                let mut metadata = Metadata::new(id, past.actor.clone(), past.occurred_at)
                    .with_extension(SOURCE_SYSTEM, Value::String(self.source.clone()))
                    .and_then(|m| {
                        m.with_extension(SOURCE_ROW, Value::String(past.source_row.clone()))
                    })
                    .map_err(|e| fail(e.to_string()))?;
                if let Some(tenant) = &self.tenant {
                    metadata = metadata.with_tenant(tenant.clone());
                }
                let payload = past.event.to_payload().map_err(|e| fail(e.to_string()))?;
                EventData::new(
                    past.event.event_type(),
                    past.event.schema_version(),
                    payload,
                    metadata,
                )
                .map_err(|e| fail(e.to_string()))
            })
            .collect()
    }
}
