//! The pool of read-only connections. Every read runs on tokio's blocking pool, so no query
//! blocks the async runtime; a semaphore bounds how many run at once.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use smsys_core::{BackendError, StoreError};
use tokio::sync::Semaphore;

use super::error::{self, BACKEND};
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
