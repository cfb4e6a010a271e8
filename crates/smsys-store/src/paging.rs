//! Paged reads and catch-up subscriptions, written once for every backend.
//!
//! A backend answers page queries ([`PagedStore`]); these functions turn them into lazily
//! fetched [`EventStream`]s with bounded memory, and into live subscriptions woken by a
//! [`tokio::sync::watch`] channel the backend bumps after each commit.

use std::collections::VecDeque;

use async_trait::async_trait;
use futures::StreamExt;
use smsys_core::{EventStream, LogFilter, Position, RecordedEvent, StoreError, StreamId, Version};
use tokio::sync::watch;

/// Events fetched per page by the streams of this module.
pub const PAGE_SIZE: usize = 512;

/// Page queries a backend answers. Third-party backends can implement it to reuse
/// [`stream_pages`], [`log_pages`] and [`subscription`].
#[async_trait]
pub trait PagedStore: Send + Sync {
    /// Up to `limit` events of `stream`, starting at version `from` (inclusive), ascending, or
    /// descending when `backwards`.
    async fn stream_page(
        &self,
        stream: &StreamId,
        from: Version,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of the log after `after` that pass `filter`, in log order. Fewer
    /// than `limit` means the end of the log (as far as it may be delivered) was reached.
    async fn log_page(
        &self,
        after: Position,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
}

struct StreamCursor<'a, S: ?Sized> {
    store: &'a S,
    stream: StreamId,
    next: Option<Version>,
    buffer: VecDeque<RecordedEvent>,
}

/// A stream's events from `from`, forwards or backwards (`from: None` = newest), page by page.
pub fn stream_pages<'a, S: PagedStore + ?Sized>(
    store: &'a S,
    stream: StreamId,
    from: Option<Version>,
    backwards: bool,
) -> EventStream<'a> {
    let next = match (from, backwards) {
        (Some(v), _) => Some(v),
        (None, false) => Some(Version::FIRST),
        (None, true) => Some(Version::new(u64::MAX)),
    };
    let cursor = StreamCursor {
        store,
        stream,
        next,
        buffer: VecDeque::new(),
    };
    futures::stream::unfold(cursor, move |mut c| async move {
        loop {
            if let Some(event) = c.buffer.pop_front() {
                return Some((Ok(event), c));
            }
            // Backwards, version 0 is the end; forwards, reading from 0 reads from the first.
            let from = match c.next? {
                v if backwards && v.get() == 0 => return None,
                v if !backwards => v.max(Version::FIRST),
                v => v,
            };
            match c
                .store
                .stream_page(&c.stream, from, backwards, PAGE_SIZE)
                .await
            {
                Ok(page) => {
                    let last = page.last().map(|e| e.version);
                    c.next = match last {
                        Some(_) if page.len() < PAGE_SIZE => None,
                        Some(v) if backwards => Some(Version::new(v.get() - 1)),
                        Some(v) => Some(v.next()),
                        None => None,
                    };
                    c.buffer.extend(page);
                }
                Err(error) => {
                    c.next = None;
                    return Some((Err(error), c));
                }
            }
        }
    })
    .boxed()
}

struct LogCursor<'a, S: ?Sized> {
    store: &'a S,
    after: Position,
    filter: LogFilter,
    live: Option<watch::Receiver<u64>>,
    buffer: VecDeque<RecordedEvent>,
    at_end: bool,
    failed: bool,
}

fn log_cursor<'a, S: PagedStore + ?Sized>(
    store: &'a S,
    after: Position,
    filter: LogFilter,
    live: Option<watch::Receiver<u64>>,
) -> EventStream<'a> {
    let cursor = LogCursor {
        store,
        after,
        filter,
        live,
        buffer: VecDeque::new(),
        at_end: false,
        failed: false,
    };
    futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(event) = c.buffer.pop_front() {
                c.after = event.position;
                return Some((Ok(event), c));
            }
            if c.failed {
                return None;
            }
            if c.at_end {
                // The store is gone when the sender is dropped: the subscription ends then.
                c.live.as_mut()?.changed().await.ok()?;
            }
            if let Some(rx) = c.live.as_mut() {
                // Mark the current commit as seen before reading, so a commit that lands
                // during the read wakes the next wait instead of being missed.
                rx.borrow_and_update();
            }
            match c.store.log_page(c.after, &c.filter, PAGE_SIZE).await {
                Ok(page) => {
                    c.at_end = page.len() < PAGE_SIZE;
                    c.buffer.extend(page);
                }
                Err(error) => {
                    // A failed read ends the stream after reporting the error; the subscriber
                    // resumes from its last checkpoint.
                    c.failed = true;
                    return Some((Err(error), c));
                }
            }
        }
    })
    .boxed()
}

/// The log after `after` (exclusive) that passes `filter`, page by page, up to its end as
/// it is while being read.
pub fn log_pages<'a, S: PagedStore + ?Sized>(
    store: &'a S,
    after: Position,
    filter: LogFilter,
) -> EventStream<'a> {
    log_cursor(store, after, filter, None)
}

/// A catch-up subscription: the log after `after`, then each commit as `commits` announces
/// it. The backend sends on the channel's sender after every commit (any value, e.g. a
/// counter); the subscription ends when the sender is dropped.
///
/// It never skips an event as long as [`PagedStore::log_page`] only returns events that can no
/// longer be preceded by a later commit (true for stores that commit one transaction at a time;
/// the PostgreSQL store gates by transaction id to make it true).
pub fn subscription<'a, S: PagedStore + ?Sized>(
    store: &'a S,
    after: Position,
    filter: LogFilter,
    commits: watch::Receiver<u64>,
) -> EventStream<'a> {
    log_cursor(store, after, filter, Some(commits))
}
