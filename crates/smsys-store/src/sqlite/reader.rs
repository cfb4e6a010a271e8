//! The pool of read-only connections, and the paged reads that use it. Every read runs on
//! tokio's blocking pool, so no query blocks the async runtime; a semaphore bounds how many
//! run at once.
//!
//! A forward read ([`Pages`]) asks for its next page as soon as it has the current one, so the
//! next page is queried on the blocking pool while the caller decodes and consumes this one:
//! at most two pages are held, one read connection is used at a time.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;
use rusqlite::Connection;
use smsys_core::{BackendError, LogFilter, Position, RecordedEvent, StoreError, StreamId, Version};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::error::{self, BACKEND};
use super::page::{Page, StreamNames, Streams};
use super::rows;
use super::schema;

pub(crate) struct ReadPool {
    path: PathBuf,
    size: u32,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, size: usize) -> Self {
        let size = u32::try_from(size.clamp(1, 1024)).unwrap_or(1);
        Self {
            path,
            size,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size as usize)),
        }
    }

    /// Runs `read` on a pooled connection, off the async runtime.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let closed = || StoreError::Closed { backend: BACKEND };
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = match pool.take() {
                Some(conn) => conn,
                None => {
                    schema::open_reader(&pool.path).map_err(|e| error::store("open reader", e))?
                }
            };
            let result = read(&conn);
            if !pool.permits.is_closed() {
                pool.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(BackendError::new(BACKEND, "read", false, e)))?
    }

    fn take(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Waits for the reads under way, refuses further reads and closes the connections.
    pub(crate) async fn close(&self) {
        if let Ok(all) = self.permits.acquire_many(self.size).await {
            all.forget();
        }
        self.permits.close();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Where a forward paged read continues.
#[derive(Clone)]
pub(crate) enum Cursor {
    /// The log after `after` that passes `filter`.
    Log {
        after: Position,
        filter: Arc<LogFilter>,
    },
    /// The events of `stream` from version `from` on.
    Stream { stream: StreamId, from: Version },
}

impl Cursor {
    /// Copies the rows of the page that starts here into `page`.
    fn read(&self, conn: &Connection, limit: usize, page: &mut Page) -> Result<(), StoreError> {
        match self {
            Cursor::Log { after, filter } => rows::log_page(conn, *after, filter, limit, page),
            Cursor::Stream { stream, from } => rows::stream_page(
                conn,
                stream,
                (*from).max(Version::FIRST),
                false,
                limit,
                page,
            ),
        }
    }

    /// Where the page after `page` starts; `None` when its last row's place is unreadable
    /// (decoding that row reports why, and the read ends there).
    fn after(self, page: &Page) -> Option<Self> {
        let (position, version) = page.last_place()?;
        Some(match self {
            Cursor::Log { filter, .. } => Cursor::Log {
                after: Position::from_sequence(u64::try_from(position).ok()?),
                filter,
            },
            Cursor::Stream { stream, .. } => Cursor::Stream {
                stream,
                from: Version::new(u64::try_from(version).ok()?).next(),
            },
        })
    }
}

/// Where a read's events get their stream ids: the stream read, or its names in the log.
enum Source {
    Stream(StreamId),
    Log(StreamNames),
}

/// A page as a fetch returns it: where it started and its rows.
struct Fetched {
    cursor: Cursor,
    page: Page,
}

enum Next {
    /// Nothing asked yet: the read starts when first polled.
    Start(Cursor),
    /// The next page is being read.
    Fetching(JoinHandle<Result<Fetched, StoreError>>),
    /// The end was reached, or a read failed and was reported.
    Done,
}

/// A forward read in pages of `limit` events. The read connection's thread only copies each
/// page's rows out of SQLite; the caller's task decodes them one by one as it consumes them
/// (see the `page` module), while the next page is read. A page shorter than `limit` is the
/// last; a failed page or a row that does not decode is reported and ends the read. Two pages
/// take turns, so a long read allocates their buffers once.
pub(crate) struct Pages {
    pool: Arc<ReadPool>,
    limit: usize,
    source: Source,
    page: Page,
    next: Next,
}

impl Pages {
    pub(crate) fn new(pool: Arc<ReadPool>, cursor: Cursor, limit: usize) -> Self {
        let source = match &cursor {
            Cursor::Stream { stream, .. } => Source::Stream(stream.clone()),
            Cursor::Log { .. } => Source::Log(StreamNames::new(StreamNames::FOR_READ)),
        };
        Self {
            pool,
            limit: limit.max(1),
            source,
            page: Page::default(),
            next: Next::Start(cursor),
        }
    }

    /// Starts reading the page at `cursor` into `page` on the blocking pool.
    fn fetch(&self, cursor: Cursor, page: Page) -> JoinHandle<Result<Fetched, StoreError>> {
        let pool = Arc::clone(&self.pool);
        let limit = self.limit;
        tokio::spawn(async move {
            pool.run(move |conn| {
                let mut page = page;
                cursor.read(conn, limit, &mut page)?;
                Ok(Fetched { cursor, page })
            })
            .await
        })
    }
}

impl Stream for Pages {
    type Item = Result<RecordedEvent, StoreError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let streams = match &mut this.source {
                Source::Stream(stream) => Streams::Known(stream),
                Source::Log(names) => Streams::Named(names),
            };
            match this.page.next_event(streams) {
                Some(Ok(event)) => return Poll::Ready(Some(Ok(event))),
                Some(Err(e)) => {
                    // A page being read for later is dropped; it finishes on its own.
                    this.next = Next::Done;
                    this.page = Page::default();
                    return Poll::Ready(Some(Err(e)));
                }
                None => {}
            }
            match std::mem::replace(&mut this.next, Next::Done) {
                Next::Done => return Poll::Ready(None),
                Next::Start(cursor) => {
                    this.next = Next::Fetching(this.fetch(cursor, Page::default()));
                }
                Next::Fetching(mut fetching) => {
                    let Fetched { cursor, page } = match Pin::new(&mut fetching).poll(cx) {
                        Poll::Pending => {
                            this.next = Next::Fetching(fetching);
                            return Poll::Pending;
                        }
                        Poll::Ready(Ok(Ok(fetched))) => fetched,
                        Poll::Ready(Ok(Err(e))) => return Poll::Ready(Some(Err(e))),
                        Poll::Ready(Err(e)) => {
                            return Poll::Ready(Some(Err(StoreError::Backend(BackendError::new(
                                BACKEND, "read", false, e,
                            )))));
                        }
                    };
                    // The page just consumed takes the page after this one.
                    let consumed = std::mem::replace(&mut this.page, page);
                    if this.page.rows() >= this.limit
                        && let Some(cursor) = cursor.after(&this.page)
                    {
                        this.next = Next::Fetching(this.fetch(cursor, consumed));
                    }
                }
            }
        }
    }
}
