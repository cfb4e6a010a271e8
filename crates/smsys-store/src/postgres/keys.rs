//! Data keys in a table of the store's schema, `data_keys`: never part of the hash chain (no
//! event row refers to it), so a dump that leaves the table out (`pg_dump
//! --exclude-table=<schema>.data_keys`) reads as erased.
//!
//! PostgreSQL has no secure delete: a deleted row stays in its page until vacuum prunes it, and
//! the write-ahead log (and any WAL archive or base backup) keeps the key as it was inserted
//! until it is recycled. Erasure runs a plain `VACUUM` of the table right after the delete, so
//! the rows are pruned at once; an operator who must bound how long key bytes can survive
//! schedules `VACUUM FULL` of the table (it rewrites the file) and keeps WAL archives and base
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
use crate::privacy::{DataKey, KeyStore};

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
            "BEGIN;
             SELECT pg_advisory_xact_lock(hashtext('{lock}'));
             CREATE TABLE IF NOT EXISTS {schema}.data_keys (
                 key_id text PRIMARY KEY,
                 subject text NOT NULL,
                 key bytea NOT NULL
             );
             CREATE INDEX IF NOT EXISTS data_keys_subject ON {schema}.data_keys (subject);
             COMMIT;"
        );
        keys.batch("create data key table", &sql).await?;
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

fn key_of(key_id: &str, bytes: &[u8]) -> Result<DataKey, StoreError> {
    DataKey::from_slice(bytes).ok_or_else(|| {
        corrupt(format!(
            "data key {key_id} is {} bytes long, not 32",
            bytes.len()
        ))
    })
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

fn key_bytes(row: &tokio_postgres::Row) -> Result<Vec<u8>, StoreError> {
    row.try_get(0)
        .map_err(|e| corrupt(format!("data key: {e}")))
}

#[async_trait]
impl KeyStore for PgKeyStore {
    async fn key_for(
        &self,
        key_id: &StreamId,
        subject: &DataSubject,
    ) -> Result<DataKey, StoreError> {
        let fresh = DataKey::generate();
        let table = self.table();
        // The insert sees no row a racing insert committed meanwhile; the select after it does.
        let insert = format!(
            "INSERT INTO {table} (key_id, subject, key) VALUES ($1, $2, $3)
             ON CONFLICT (key_id) DO NOTHING"
        );
        let fresh_bytes: &[u8] = fresh.bytes();
        query(
            &self.pool,
            "create data key",
            &insert,
            &[&key_id.as_str(), &subject.as_str(), &fresh_bytes],
        )
        .await?;
        let select = format!("SELECT key FROM {table} WHERE key_id = $1");
        let rows = query(&self.pool, "read data key", &select, &[&key_id.as_str()]).await?;
        let row = rows
            .first()
            .ok_or_else(|| corrupt(format!("data key {key_id} vanished after its insert")))?;
        key_of(key_id.as_str(), &key_bytes(row)?)
    }

    async fn key(&self, key_id: &StreamId) -> Result<Option<DataKey>, StoreError> {
        let select = format!("SELECT key FROM {} WHERE key_id = $1", self.table());
        let rows = query(&self.pool, "read data key", &select, &[&key_id.as_str()]).await?;
        rows.first()
            .map(|row| key_of(key_id.as_str(), &key_bytes(row)?))
            .transpose()
    }

    async fn keys_of(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError> {
        let select = format!("SELECT key_id FROM {} WHERE subject = $1", self.table());
        let rows = query(&self.pool, "list data keys", &select, &[&subject.as_str()]).await?;
        stream_ids(&rows)
    }

    async fn erase_subject(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError> {
        let delete = format!(
            "DELETE FROM {} WHERE subject = $1 RETURNING key_id",
            self.table()
        );
        let rows = query(&self.pool, "erase data keys", &delete, &[&subject.as_str()]).await?;
        let ids = stream_ids(&rows)?;
        if !ids.is_empty()
            && let Err(error) = self
                .batch("vacuum data keys", &format!("VACUUM {}", self.table()))
                .await
        {
            // The keys are deleted; pruning their rows waits for autovacuum.
            tracing::warn!(%error, "vacuum of the data key table after erasure failed");
        }
        Ok(ids)
    }
}
