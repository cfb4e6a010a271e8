//! The record index: one row per record of every type, what a ticket list shows and filters
//! on, kept by a projection and queried without replaying anything.
//!
//! The rows and their query are part of the persisted contract; the stores implement
//! [`RecordIndexStore`] (memory, SQLite, PostgreSQL), writing a batch of rows and the
//! checkpoint in one transaction; `smsys-processes` computes the rows (including SLA timer
//! state) from the log.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::records::ids::{CiId, GroupId, PersonId, RecordType, Reference, ServiceId};
use crate::records::phase::{Phase, Priority};
use crate::store::{LogFilter, StoreError};
use crate::stream::{Position, StreamId, Version};

/// The state of one SLA timer cycle of a record, as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerRow {
    /// The timer's name (e.g. `resolution`).
    pub timer: String,
    /// Its cycle.
    pub cycle: u32,
    /// Whether it is counting (not stopped or cancelled, not paused).
    pub running: bool,
    /// Whether it is paused.
    pub paused: bool,
    /// When it reaches 100 % if nothing else happens (`None`: stopped, cancelled, or no
    /// target).
    pub due: Option<DateTime<Utc>>,
    /// When its next unrecorded threshold (a warning or the breach) is reached, if it runs.
    pub next_threshold: Option<DateTime<Utc>>,
    /// Whether a breach is recorded.
    pub breached: bool,
}

/// One record, as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRow {
    /// The record's stream.
    pub stream: StreamId,
    /// Its record type.
    pub record_type: RecordType,
    /// Its reference.
    pub reference: Reference,
    /// Its status.
    pub status: String,
    /// The phase of its status.
    pub phase: Phase,
    /// Its priority.
    pub priority: Option<Priority>,
    /// Its service.
    pub service: ServiceId,
    /// Its assignment group.
    pub group: Option<GroupId>,
    /// Its assignee.
    pub person: Option<PersonId>,
    /// Who reported it.
    pub caller: PersonId,
    /// Short description.
    pub summary: String,
    /// Affected configuration items.
    pub affected_cis: Vec<CiId>,
    /// When it was logged.
    pub logged_at: DateTime<Utc>,
    /// When it was (last) resolved, while resolved or closed after a resolution.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was closed or cancelled.
    pub closed_at: Option<DateTime<Utc>>,
    /// How many times it was reopened.
    pub reopen_count: u32,
    /// Whether it is a major incident.
    pub major: bool,
    /// Its SLA timers, the latest cycle of each.
    pub timers: Vec<TimerRow>,
    /// The stream version the row reflects: applying an event at or below it changes nothing.
    pub version: Version,
}

impl RecordRow {
    /// The earliest instant one of its running timers reaches 100 %.
    pub fn earliest_due(&self) -> Option<DateTime<Utc>> {
        self.timers.iter().filter_map(|t| t.due).min()
    }

    /// Whether a breach is recorded on any timer.
    pub fn breached(&self) -> bool {
        self.timers.iter().any(|t| t.breached)
    }
}

/// The order of a query's rows. Every order ends with the stream id, so pages never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordOrder {
    /// Newest logged first.
    #[default]
    LoggedDesc,
    /// Oldest logged first.
    LoggedAsc,
    /// Highest priority (1) first, then oldest logged; records without priority last.
    Priority,
    /// Earliest due first; records without a running timer last.
    Due,
}

/// Where the next page starts: the last row of the previous page, as the order sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The order the cursor belongs to.
    pub order: RecordOrder,
    /// The last row's sort key, encoded by the store.
    pub key: String,
    /// The last row's stream.
    pub stream: StreamId,
}

/// A query on the record index: every filter given must hold (an empty list: any).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordQuery {
    /// Record types.
    pub record_types: Vec<RecordType>,
    /// Statuses.
    pub statuses: Vec<String>,
    /// Phases.
    pub phases: Vec<Phase>,
    /// Priorities.
    pub priorities: Vec<Priority>,
    /// Assignment groups.
    pub groups: Vec<GroupId>,
    /// Assignees.
    pub persons: Vec<PersonId>,
    /// Services.
    pub services: Vec<ServiceId>,
    /// Records affecting this configuration item.
    pub ci: Option<CiId>,
    /// Records with (true) or without (false) a recorded breach.
    pub breached: Option<bool>,
    /// Records with a timer due at or before this instant (overdue as of it).
    pub due_by: Option<DateTime<Utc>>,
    /// Text the summary contains (case-insensitive, ASCII).
    pub text: Option<String>,
    /// Logged at or after.
    pub logged_from: Option<DateTime<Utc>>,
    /// Logged before.
    pub logged_until: Option<DateTime<Utc>>,
    /// The order.
    pub order: RecordOrder,
    /// Continue after this cursor (from the previous page).
    pub after: Option<Cursor>,
    /// Rows per page (1 to 1,000; 50 when 0).
    pub limit: usize,
}

impl RecordQuery {
    /// Every record, newest first, 50 a page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Open records (new, active, pending) only.
    pub fn open() -> Self {
        Self {
            phases: vec![Phase::New, Phase::Active, Phase::Pending],
            ..Self::default()
        }
    }

    /// The rows per page the store uses: `limit` clamped to 1..=1000, 50 when 0.
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => 50,
            n => n.min(1_000),
        }
    }
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPage {
    /// The rows, in the query's order.
    pub rows: Vec<RecordRow>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Where the record index lives. Stores implement it next to the log, so a batch of rows and
/// the checkpoint are written in one transaction.
#[async_trait]
pub trait RecordIndexStore: Send + Sync {
    /// The index's name (e.g. `record_index.v1`): several versions may live side by side
    /// while a new one is rebuilt.
    fn name(&self) -> &str;

    /// The position of the last event whose effect the index holds.
    async fn checkpoint(&self) -> Result<Option<Position>, StoreError>;

    /// The checkpoint, for an indexer reading the events `filter` accepts: binds the index to
    /// `filter` on the first call, and refuses another filter later with
    /// [`StoreError::CheckpointFilter`] (an index built for incidents and requests would
    /// otherwise never hold the problems logged before its checkpoint). [`Self::clear`]
    /// removes the binding with the rows. The stores of this workspace keep the binding (as
    /// [`CheckpointStore::load_checkpoint_for`](crate::CheckpointStore::load_checkpoint_for)
    /// does); the default keeps none and does not check.
    async fn checkpoint_for(&self, filter: &LogFilter) -> Result<Option<Position>, StoreError> {
        let _ = filter;
        self.checkpoint().await
    }

    /// The row of one record.
    async fn row(&self, stream: &StreamId) -> Result<Option<RecordRow>, StoreError>;

    /// The rows of several records, in the order of `streams` (`None` where a record has no
    /// row). Stores answer in one round trip; the default asks [`Self::row`] for each.
    async fn rows(&self, streams: &[StreamId]) -> Result<Vec<Option<RecordRow>>, StoreError> {
        let mut rows = Vec::with_capacity(streams.len());
        for stream in streams {
            rows.push(self.row(stream).await?);
        }
        Ok(rows)
    }

    /// Replaces the rows of their streams and saves `checkpoint`, all or nothing.
    async fn apply(&self, rows: Vec<RecordRow>, checkpoint: Position) -> Result<(), StoreError>;

    /// One page of records matching `query`.
    async fn query(&self, query: &RecordQuery) -> Result<RecordPage, StoreError>;

    /// How many records match `query` (its order, cursor and limit ignored).
    async fn count(&self, query: &RecordQuery) -> Result<u64, StoreError>;

    /// Removes every row and the checkpoint: the index is rebuilt from the start.
    async fn clear(&self) -> Result<(), StoreError>;
}
