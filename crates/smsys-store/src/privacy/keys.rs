//! Data keys, one per record stream, each registered to the data subject it belongs to, and
//! the [`KeyStore`] that keeps them outside the log.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use aes_gcm_siv::Aes256GcmSiv;
use aes_gcm_siv::aead::{KeyInit, OsRng};
use async_trait::async_trait;
use smsys_core::personal::DataSubject;
use smsys_core::{StoreError, StreamId};

/// Length of a data key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// A 256-bit data key. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self(Aes256GcmSiv::generate_key(&mut OsRng).into())
    }

    /// A key with the given bytes (as a key store reads it back).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A key from stored bytes: `None` unless there are exactly [`KEY_LEN`] of them.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; KEY_LEN]>::try_from(bytes).ok().map(Self)
    }

    /// The key's bytes.
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Where data keys live, outside the log (never part of the hash chain): one key per key id
/// (a record's stream id), registered to a data subject.
///
/// Erasing a subject deletes every key registered to it; what those keys encrypted can never
/// be read again. Implementations: [`MemoryKeyStore`], `SqliteKeyStore` (feature `sqlite`),
/// `PgKeyStore` (feature `postgres`). A store kept by a key management service implements the
/// same trait.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The key of `key_id`, created (and registered to `subject`) if there is none yet. Two
    /// callers racing get the same key. A key that exists stays registered to the subject it
    /// was created for.
    async fn key_for(
        &self,
        key_id: &StreamId,
        subject: &DataSubject,
    ) -> Result<DataKey, StoreError>;

    /// The key of `key_id`: `None` if none was created or it was erased.
    async fn key(&self, key_id: &StreamId) -> Result<Option<DataKey>, StoreError>;

    /// The ids of the keys registered to `subject`, sorted.
    async fn keys_of(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError>;

    /// Deletes every key registered to `subject`, as durably as the store can (see each
    /// implementation); returns their ids, sorted.
    async fn erase_subject(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError>;
}

/// Keys in memory: for tests and for a store that lives no longer than the process.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<StreamId, (DataSubject, DataKey)>>,
}

impl MemoryKeyStore {
    /// An empty key store.
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, (DataSubject, DataKey)>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn key_for(
        &self,
        key_id: &StreamId,
        subject: &DataSubject,
    ) -> Result<DataKey, StoreError> {
        let mut keys = self.keys();
        let (_, key) = keys
            .entry(key_id.clone())
            .or_insert_with(|| (subject.clone(), DataKey::generate()));
        Ok(key.clone())
    }

    async fn key(&self, key_id: &StreamId) -> Result<Option<DataKey>, StoreError> {
        Ok(self.keys().get(key_id).map(|(_, key)| key.clone()))
    }

    async fn keys_of(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError> {
        let mut ids: Vec<StreamId> = self
            .keys()
            .iter()
            .filter(|(_, (s, _))| s == subject)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn erase_subject(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError> {
        let mut keys = self.keys();
        let mut erased: Vec<StreamId> = keys
            .iter()
            .filter(|(_, (s, _))| s == subject)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &erased {
            keys.remove(id);
        }
        erased.sort();
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ_and_do_not_print() {
        let (a, b) = (DataKey::generate(), DataKey::generate());
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "DataKey(..)");
        assert_eq!(DataKey::from_slice(a.bytes()), Some(a));
        assert_eq!(DataKey::from_slice(&[0; 31]), None);
    }
}
