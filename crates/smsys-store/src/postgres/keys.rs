//! Data keys in a table of the store's schema, `data_keys`: never part of the hash chain (no
//! event row refers to it), so a dump that leaves the table out (`pg_dump
//! --exclude-table=<schema>.data_keys`) reads as erased.
//!
//! An erased key keeps its row, as the record that it was erased (no key is ever created again
//! under its id): an update replaces its key bytes and subject by empty ones (no key is empty,
//! no subject is empty).
//!
//! PostgreSQL has no secure delete: the row version an update replaced stays in its page until
//! vacuum prunes it, and even then its bytes stay in the page's free space until something
//! overwrites them; the write-ahead log (and any WAL archive or base backup) keeps the key as
//! it was inserted until it is recycled. Erasure therefore runs `VACUUM FULL` of the table right
//! after the update: the table is rewritten into a new file without the old row versions (it
//! holds an exclusive lock meanwhile, so key reads wait for the rewrite of a table of about a
//! hundred bytes per record). A transaction that started before the erasure and still runs
//! can see the old row version, which no vacuum removes until it ends: then the key bytes stay
//! until the next `VACUUM FULL` (keep transactions short). What the file system keeps of the old file is beyond PostgreSQL;
//! an operator who must bound how long key bytes can survive keeps WAL archives and base
//! backups no longer than that bound. Against a live database administrator, keys in the same
//! database protect nothing: keep them in a key management service behind the same
//! [`KeyStore`] trait.

use async_trait::async_trait;
use deadpool_postgres::Pool;
use smsys_core::personal::DataSubject;
use smsys_core::{StoreError, StreamId};

use super::error::{corrupt, pool_error, store_error};
use super::pool::{query, release_after};
use super::{PgEventStore, SchemaName};
use crate::privacy::{DataKey, KeyState, KeyStore};

/// A [`KeyStore`] in the PostgreSQL store's schema; see the module docs for what erasure
/// removes and what the operator must do.
#[derive(Clone)]
pub struct PgKeyStore {
    pool: Pool,
    schema: SchemaName,
}

impl std::fmt::Debug for PgKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgKeyStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PgKeyStore {
    /// The key store of `store`'s schema (sharing its connection pool), its table created if
    /// missing.
    pub async fn open(store: &PgEventStore) -> Result<Self, StoreError> {
        let keys = Self {
            pool: store.inner.pool.clone(),
            schema: store.inner.schema.clone(),
        };
        let schema = keys.schema.quoted();
        let lock = format!("smsys data_keys {}", keys.schema.as_str());
        let sql = format!(
            "SELECT pg_advisory_xact_lock(hashtext('{lock}'));
             CREATE TABLE IF NOT EXISTS {schema}.data_keys (
                 key_id text PRIMARY KEY,
                 subject text NOT NULL,
                 key bytea NOT NULL
             );
             CREATE INDEX IF NOT EXISTS data_keys_subject ON {schema}.data_keys (subject);"
        );
        // In one transaction with the row-level security of a tenant's schema.
        store.create_tables("create data key table", &sql).await?;
        Ok(keys)
    }

    async fn batch(&self, operation: &'static str, sql: &str) -> Result<(), StoreError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| pool_error(operation, e))?;
        if let Err(error) = client.batch_execute(sql).await {
            release_after(client, &error);
            return Err(store_error(operation, error));
        }
        Ok(())
    }

    fn table(&self) -> String {
        format!("{}.data_keys", self.schema.quoted())
    }
}

fn stream_ids(rows: &[tokio_postgres::Row]) -> Result<Vec<StreamId>, StoreError> {
    let mut ids = rows
        .iter()
        .map(|row| {
            let id: String = row
                .try_get(0)
                .map_err(|e| corrupt(format!("data key id: {e}")))?;
            id.parse()
                .map_err(|e| corrupt(format!("data key id {id:?}: {e}")))
        })
        .collect::<Result<Vec<StreamId>, StoreError>>()?;
    ids.sort();
    Ok(ids)
}

fn key_bytes(row: &tokio_postgres::Row, column: usize) -> Result<Vec<u8>, StoreError> {
    row.try_get(column)
        .map_err(|e| corrupt(format!("data key: {e}")))
}

#[async_trait]
impl KeyStore for PgKeyStore {
    async fn key_for(
        &self,
        key_id: &StreamId,
        subject: &DataSubject,
    ) -> Result<KeyState, StoreError> {
        let fresh = DataKey::generate();
        let table = self.table();
        // One statement: the row inserted, or the one kept (live or erased), which the no-op
        // update locks and returns, a racing insert's included.
        let upsert = format!(
            "INSERT INTO {table} AS k (key_id, subject, key) VALUES ($1, $2, $3)
             ON CONFLICT (key_id) DO UPDATE SET key = k.key RETURNING key"
        );
        let fresh_bytes: &[u8] = fresh.bytes();
        let rows = query(
            &self.pool,
            "create data key",
            &upsert,
            &[&key_id.as_str(), &subject.as_str(), &fresh_bytes],
        )
        .await?;
        let row = rows
            .first()
            .ok_or_else(|| corrupt(format!("data key {key_id}: the upsert returned no row")))?;
        KeyState::stored(key_id.as_str(), &key_bytes(row, 0)?)
    }

    async fn key(&self, key_id: &StreamId) -> Result<Option<KeyState>, StoreError> {
        let select = format!("SELECT key FROM {} WHERE key_id = $1", self.table());
        let rows = query(&self.pool, "read data key", &select, &[&key_id.as_str()]).await?;
        rows.first()
            .map(|row| KeyState::stored(key_id.as_str(), &key_bytes(row, 0)?))
            .transpose()
    }

    async fn keys(&self, key_ids: &[StreamId]) -> Result<Vec<Option<KeyState>>, StoreError> {
        let select = format!(
            "SELECT key_id, key FROM {} WHERE key_id = ANY($1)",
            self.table()
        );
        let ids: Vec<&str> = key_ids.iter().map(StreamId::as_str).collect();
        let rows = query(&self.pool, "read data keys", &select, &[&ids]).await?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: String = row
                .try_get(0)
                .map_err(|e| corrupt(format!("a data key id: {e}")))?;
            let key = KeyState::stored(&id, &key_bytes(row, 1)?)?;
            found.insert(id, key);
        }
        Ok(key_ids
            .iter()
            .map(|id| found.get(id.as_str()).cloned())
            .collect())
    }

    async fn register(&self, key_id: &StreamId, subject: &DataSubject) -> Result<bool, StoreError> {
        let update = format!(
            "UPDATE {} SET subject = $2 WHERE key_id = $1 AND octet_length(key) > 0
             RETURNING key_id",
            self.table()
        );
        let rows = query(
            &self.pool,
            "register data key",
            &update,
            &[&key_id.as_str(), &subject.as_str()],
        )
        .await?;
        Ok(!rows.is_empty())
    }

    async fn keys_of(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError> {
        let select = format!(
            "SELECT key_id FROM {} WHERE subject = $1 AND octet_length(key) > 0",
            self.table()
        );
        let rows = query(&self.pool, "list data keys", &select, &[&subject.as_str()]).await?;
        stream_ids(&rows)
    }

    async fn erase(
        &self,
        subject: &DataSubject,
        key_ids: &[StreamId],
    ) -> Result<Vec<StreamId>, StoreError> {
        let update = format!(
            "UPDATE {} SET key = ''::bytea, subject = ''
             WHERE key_id = ANY($2) AND subject = $1 AND octet_length(key) > 0
             RETURNING key_id",
            self.table()
        );
        let ids: Vec<&str> = key_ids.iter().map(StreamId::as_str).collect();
        let rows = query(
            &self.pool,
            "erase data keys",
            &update,
            &[&subject.as_str(), &ids],
        )
        .await?;
        let ids = stream_ids(&rows)?;
        if !ids.is_empty()
            && let Err(error) = self
                .batch("vacuum data keys", &format!("VACUUM FULL {}", self.table()))
                .await
        {
            // The keys are erased; their bytes stay in the table's pages until it is rewritten.
            tracing::warn!(%error, "vacuum full of the data key table after erasure failed: erased key bytes stay on disk until the table is rewritten");
        }
        Ok(ids)
    }
}
