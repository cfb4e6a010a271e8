//! The record index in memory: the reference semantics of every [`RecordIndexStore`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use smsys_core::records::{RecordIndexStore, RecordPage, RecordQuery, RecordRow};
use smsys_core::{LogFilter, Position, StoreError, StreamId};

use crate::checkpoint::{Binding, CheckpointName, check_binding, filter_text};
use crate::record_index::{Keys, compare, cursor_key, descending, matches, page};

const BACKEND: &str = "memory";

#[derive(Debug, Default)]
struct State {
    /// Each row with the values queries compare.
    rows: BTreeMap<StreamId, (RecordRow, Keys)>,
    checkpoint: Option<Position>,
    /// The filter the index is bound to, as kept beside a checkpoint.
    filter: Option<String>,
}

/// A record index held in memory: for tests, examples, and as the reference semantics the
/// SQLite and PostgreSQL indexes are checked against.
///
/// A query selects the rows every given filter holds for (an empty list: any value):
/// - `text`: the summary contains it, ASCII letters compared case-insensitively;
/// - `ci`: the affected configuration items contain it;
/// - `breached`: some timer has a recorded breach (`true`) or none has (`false`);
/// - `due_by`: some timer is due at or before it;
/// - `logged_from` (inclusive) and `logged_until` (exclusive) bound `logged_at`;
/// - a list of priorities, groups or persons never selects a row without one.
///
/// Orders, each ending with the stream id: `LoggedDesc` (logged at, stream descending),
/// `LoggedAsc` (both ascending), `Priority` (priority 1 first, none last; then logged at and
/// stream ascending), `Due` (earliest due first, none last; then stream). Instants are
/// compared at whole microseconds, the precision every store keeps. A page holds
/// [`RecordQuery::page_size`] rows and the cursor of its last row when more follow; the next
/// page starts strictly after it, so pages never overlap or skip a row, even among ties.
///
/// Cloning gives another handle to the same index.
///
/// ```
/// # use smsys_core::records::{RecordIndexStore, RecordQuery};
/// # use smsys_store::{CheckpointName, MemoryRecordIndex};
/// # futures::executor::block_on(async {
/// let index = MemoryRecordIndex::new(CheckpointName::new("record_index.v1")?);
/// assert_eq!(index.checkpoint().await?, None);
/// assert!(index.query(&RecordQuery::open()).await?.rows.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct MemoryRecordIndex {
    name: CheckpointName,
    state: Arc<Mutex<State>>,
}

impl MemoryRecordIndex {
    /// An empty index named `name`.
    pub fn new(name: CheckpointName) -> Self {
        Self {
            name,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The lock is never held across code that can panic halfway through a change.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl RecordIndexStore for MemoryRecordIndex {
    fn name(&self) -> &str {
        self.name.as_str()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, StoreError> {
        Ok(self.state().checkpoint)
    }

    async fn checkpoint_for(&self, filter: &LogFilter) -> Result<Option<Position>, StoreError> {
        let mut state = self.state();
        if check_binding(&self.name, state.filter.as_deref(), filter)? == Binding::Unbound {
            state.filter = Some(filter_text(filter));
        }
        Ok(state.checkpoint)
    }

    async fn row(&self, stream: &StreamId) -> Result<Option<RecordRow>, StoreError> {
        Ok(self.state().rows.get(stream).map(|(row, _)| row.clone()))
    }

    async fn apply(&self, rows: Vec<RecordRow>, checkpoint: Position) -> Result<(), StoreError> {
        let mut state = self.state();
        for row in rows {
            let keys = Keys::of(&row);
            state.rows.insert(row.stream.clone(), (row, keys));
        }
        state.checkpoint = Some(checkpoint);
        Ok(())
    }

    async fn query(&self, query: &RecordQuery) -> Result<RecordPage, StoreError> {
        let after = cursor_key(query).map_err(|e| e.into_store_error(BACKEND))?;
        let order = query.order;
        let descending = descending(order);
        let state = self.state();
        let mut found: Vec<_> = state
            .rows
            .values()
            .filter(|(row, keys)| matches(row, *keys, query))
            .map(|(row, keys)| (keys.sort_key(order), row))
            .filter(|(key, row)| {
                after.is_none_or(|(after, cursor)| {
                    compare((*key, &row.stream), (after, &cursor.stream), descending).is_gt()
                })
            })
            .collect();
        // Only the page and the row after it are sorted.
        let wanted = query.page_size() + 1;
        let by_order = |a: &(_, &RecordRow), b: &(_, &RecordRow)| {
            compare((a.0, &a.1.stream), (b.0, &b.1.stream), descending)
        };
        if found.len() > wanted {
            found.select_nth_unstable_by(wanted, by_order);
            found.truncate(wanted);
        }
        found.sort_unstable_by(by_order);
        let rows = found.into_iter().map(|(_, row)| row.clone()).collect();
        drop(state);
        Ok(page(rows, query))
    }

    async fn count(&self, query: &RecordQuery) -> Result<u64, StoreError> {
        let state = self.state();
        Ok(state
            .rows
            .values()
            .filter(|(row, keys)| matches(row, *keys, query))
            .count() as u64)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let mut state = self.state();
        state.rows.clear();
        state.checkpoint = None;
        state.filter = None;
        Ok(())
    }
}
