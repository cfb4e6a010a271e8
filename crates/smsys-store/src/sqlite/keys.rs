//! Data keys in a SQLite file of their own, beside the store's: never part of the hash chain,
//! and left out of a copy of the store's file (a backup or export without the key file reads
//! as erased).
//!
//! An erased key keeps its row, as the record that it was erased (no key is ever created again
//! under its id): its key bytes and subject are replaced by empty ones (no key is empty, no
//! subject is empty). Erasure overwrites what it replaces: `secure_delete` is on, so freed
//! space is zeroed, and the write-ahead log, which still holds the pages as they were written, is checkpointed and
//! truncated right after the delete. What the file system or the disk keeps of blocks SQLite
//! overwrote or truncated (copy-on-write file systems, SSD wear levelling, snapshots, backups
//! of the key file) is beyond SQLite: keep the key file on encrypted storage and out of
//! long-lived backups.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use smsys_core::personal::DataSubject;
use smsys_core::{StoreError, StreamId};

use super::error::{BACKEND, corrupt, store};
use crate::privacy::{DataKey, KeyState, KeyStore};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS data_keys (
    key_id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    key BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS data_keys_subject ON data_keys (subject);
";

/// A [`KeyStore`] in its own SQLite file (WAL, `synchronous = FULL`, `secure_delete`); see
/// the module docs for what erasure overwrites.
#[derive(Debug, Clone)]
pub struct SqliteKeyStore {
    path: PathBuf,
    connection: Arc<Mutex<Connection>>,
}

impl SqliteKeyStore {
    /// Opens (or creates) the key file at `path`.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let at = path.clone();
        let connection = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
            let connection = Connection::open(&at)?;
            connection.pragma_update(None, "secure_delete", "ON")?;
            let _mode: String =
                connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            connection.pragma_update(None, "synchronous", "FULL")?;
            connection.busy_timeout(std::time::Duration::from_secs(5))?;
            connection.execute_batch(SCHEMA)?;
            Ok(connection)
        })
        .await
        .map_err(|_| StoreError::Closed { backend: BACKEND })?
        .map_err(|e| store("open key store", e))?;
        Ok(Self {
            path,
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut connection)
        })
        .await
        .map_err(|_| StoreError::Closed { backend: BACKEND })?
        .map_err(|e| store(operation, e))
    }
}

fn stream_ids(ids: Vec<String>) -> Result<Vec<StreamId>, StoreError> {
    ids.into_iter()
        .map(|id| {
            id.parse()
                .map_err(|e| corrupt(format!("data key id {id:?}: {e}")))
        })
        .collect()
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn key_for(
        &self,
        key_id: &StreamId,
        subject: &DataSubject,
    ) -> Result<KeyState, StoreError> {
        let (id, subject) = (key_id.to_string(), subject.to_string());
        let fresh = DataKey::generate();
        let stored = self
            .run("create data key", move |c| {
                // One statement: the row inserted, or the one kept (live or erased).
                c.query_row(
                    "INSERT INTO data_keys (key_id, subject, key) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key_id) DO UPDATE SET key = key RETURNING key",
                    params![id, subject, fresh.bytes().as_slice()],
                    |row| row.get::<_, Vec<u8>>(0),
                )
            })
            .await?;
        KeyState::stored(key_id.as_str(), &stored)
    }

    async fn key(&self, key_id: &StreamId) -> Result<Option<KeyState>, StoreError> {
        let id = key_id.to_string();
        let stored = self
            .run("read data key", move |c| {
                c.query_row(
                    "SELECT key FROM data_keys WHERE key_id = ?1",
                    [&id],
                    |row| row.get::<_, Vec<u8>>(0),
                )
                .optional()
            })
            .await?;
        stored
            .map(|b| KeyState::stored(key_id.as_str(), &b))
            .transpose()
    }

    async fn keys(&self, key_ids: &[StreamId]) -> Result<Vec<Option<KeyState>>, StoreError> {
        let ids: Vec<String> = key_ids.iter().map(ToString::to_string).collect();
        let stored = self
            .run("read data keys", move |c| {
                let mut select = c.prepare_cached("SELECT key FROM data_keys WHERE key_id = ?1")?;
                ids.iter()
                    .map(|id| {
                        select
                            .query_row([id], |row| row.get::<_, Vec<u8>>(0))
                            .optional()
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        key_ids
            .iter()
            .zip(stored)
            .map(|(id, bytes)| bytes.map(|b| KeyState::stored(id.as_str(), &b)).transpose())
            .collect()
    }

    async fn register(&self, key_id: &StreamId, subject: &DataSubject) -> Result<bool, StoreError> {
        let (id, subject) = (key_id.to_string(), subject.to_string());
        let changed = self
            .run("register data key", move |c| {
                c.execute(
                    "UPDATE data_keys SET subject = ?2 WHERE key_id = ?1 AND length(key) > 0",
                    params![id, subject],
                )
            })
            .await?;
        Ok(changed > 0)
    }

    async fn keys_of(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError> {
        let subject = subject.to_string();
        let ids = self
            .run("list data keys", move |c| {
                let mut statement = c.prepare(
                    "SELECT key_id FROM data_keys WHERE subject = ?1 AND length(key) > 0
                     ORDER BY key_id",
                )?;
                let ids = statement.query_map([&subject], |row| row.get::<_, String>(0))?;
                ids.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        stream_ids(ids)
    }

    async fn erase(
        &self,
        subject: &DataSubject,
        key_ids: &[StreamId],
    ) -> Result<Vec<StreamId>, StoreError> {
        let subject = subject.to_string();
        let wanted: Vec<String> = key_ids.iter().map(ToString::to_string).collect();
        let (ids, busy) = self
            .run("erase data keys", move |c| {
                let tx = c.transaction()?;
                let mut ids = Vec::new();
                {
                    // The key bytes are replaced by none: `secure_delete` zeroes the old cell.
                    let mut erase = tx.prepare(
                        "UPDATE data_keys SET key = x'', subject = ''
                         WHERE key_id = ?1 AND subject = ?2 AND length(key) > 0
                         RETURNING key_id",
                    )?;
                    for id in &wanted {
                        if let Some(id) = erase
                            .query_row([id, &subject], |row| row.get::<_, String>(0))
                            .optional()?
                        {
                            ids.push(id);
                        }
                    }
                }
                tx.commit()?;
                if ids.is_empty() {
                    return Ok((ids, false));
                }
                // The WAL still holds the erased keys' pages as written: copy the zeroed
                // pages into the file and truncate the WAL.
                let busy: i64 =
                    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
                Ok((ids, busy != 0))
            })
            .await?;
        if busy {
            tracing::warn!(
                path = %self.path.display(),
                "key store checkpoint after erasure was blocked by a reader: erased keys stay in the write-ahead log until the next checkpoint"
            );
        }
        let mut ids = stream_ids(ids)?;
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}
