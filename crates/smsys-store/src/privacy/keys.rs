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

/// What a key store holds for a key id that was ever given a key: the key, or the record that
/// it was erased.
///
/// An erased key is never created again under the same id: fields encrypted under it read as
/// erased forever, and nothing can be encrypted under its id again (a new key would make the
/// old fields unreadable, not erased, and would bring the record back to life).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The key, registered to a data subject.
    Live(DataKey),
    /// The key was erased with its data subject; only the key id is kept.
    Erased,
}

impl KeyState {
    /// What a key store's row holds: the key's bytes, or none (empty) once it was erased.
    /// Any other length is a damaged row, reported naming the key id.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn stored(key_id: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.is_empty() {
            return Ok(KeyState::Erased);
        }
        DataKey::from_slice(bytes)
            .map(KeyState::Live)
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("data key {key_id} is {} bytes long, not 32", bytes.len()),
            })
    }

    /// The key, unless it was erased.
    pub fn live(&self) -> Option<&DataKey> {
        match self {
            Self::Live(key) => Some(key),
            Self::Erased => None,
        }
    }

    /// The key, unless it was erased.
    pub fn into_live(self) -> Option<DataKey> {
        match self {
            Self::Live(key) => Some(key),
            Self::Erased => None,
        }
    }

    /// Whether the key was erased.
    pub fn is_erased(&self) -> bool {
        matches!(self, Self::Erased)
    }
}

/// Where data keys live, outside the log (never part of the hash chain): one key per key id
/// (a record's stream id), registered to a data subject.
///
/// Erasing a subject's keys deletes their bytes and unregisters them, but keeps the key ids as
/// erased ([`KeyState::Erased`]): what those keys encrypted can never be read again, and no key
/// is ever created again under an erased id. Implementations: [`MemoryKeyStore`],
/// `SqliteKeyStore` (feature `sqlite`), `PgKeyStore` (feature `postgres`). A store kept by a
/// key management service implements the same trait.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The key of `key_id`, created (and registered to `subject`) if none was ever created.
    /// Two callers racing get the same key. A key that exists keeps its registration (see
    /// [`Self::register`]); an erased key stays erased: the answer is then
    /// [`KeyState::Erased`] and nothing is created.
    async fn key_for(
        &self,
        key_id: &StreamId,
        subject: &DataSubject,
    ) -> Result<KeyState, StoreError>;

    /// What is kept for `key_id`: `None` if no key was ever created for it.
    async fn key(&self, key_id: &StreamId) -> Result<Option<KeyState>, StoreError>;

    /// What is kept for each of `key_ids`, in their order (as [`Self::key`] answers): what a
    /// reader needs for a page of events. Stores answer in one request; the default asks
    /// [`Self::key`] for each.
    async fn keys(&self, key_ids: &[StreamId]) -> Result<Vec<Option<KeyState>>, StoreError> {
        let mut keys = Vec::with_capacity(key_ids.len());
        for key_id in key_ids {
            keys.push(self.key(key_id).await?);
        }
        Ok(keys)
    }

    /// Registers the live key of `key_id` to `subject`, whoever it was registered to: the
    /// decorator calls it once the append that recorded a stream's first event succeeded,
    /// since a refused or losing append may have created the key for another subject. Returns
    /// whether the key is now registered to `subject`; `false` (and nothing changed) when
    /// there is no live key (never created, or erased).
    async fn register(&self, key_id: &StreamId, subject: &DataSubject) -> Result<bool, StoreError>;

    /// The ids of the live keys registered to `subject`, sorted.
    async fn keys_of(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError>;

    /// Erases those of `key_ids` whose live key is registered to `subject`, as durably as the
    /// store can (see each implementation): their bytes and their registration are deleted,
    /// their ids kept as [`KeyState::Erased`]. Returns the ids erased, sorted; ids erased
    /// before, never created or registered to another subject are left as they are.
    async fn erase(
        &self,
        subject: &DataSubject,
        key_ids: &[StreamId],
    ) -> Result<Vec<StreamId>, StoreError>;
}

/// What a [`MemoryKeyStore`] keeps per key id.
#[derive(Debug)]
enum Entry {
    Live(DataSubject, DataKey),
    Erased,
}

impl Entry {
    fn state(&self) -> KeyState {
        match self {
            Self::Live(_, key) => KeyState::Live(key.clone()),
            Self::Erased => KeyState::Erased,
        }
    }
}

/// Keys in memory: for tests and for a store that lives no longer than the process.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<StreamId, Entry>>,
}

impl MemoryKeyStore {
    /// An empty key store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Entry>> {
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
    ) -> Result<KeyState, StoreError> {
        let mut keys = self.entries();
        let entry = keys
            .entry(key_id.clone())
            .or_insert_with(|| Entry::Live(subject.clone(), DataKey::generate()));
        Ok(entry.state())
    }

    async fn key(&self, key_id: &StreamId) -> Result<Option<KeyState>, StoreError> {
        Ok(self.entries().get(key_id).map(Entry::state))
    }

    async fn keys(&self, key_ids: &[StreamId]) -> Result<Vec<Option<KeyState>>, StoreError> {
        let keys = self.entries();
        Ok(key_ids
            .iter()
            .map(|id| keys.get(id).map(Entry::state))
            .collect())
    }

    async fn register(&self, key_id: &StreamId, subject: &DataSubject) -> Result<bool, StoreError> {
        match self.entries().get_mut(key_id) {
            Some(Entry::Live(registered, _)) => {
                subject.clone_into(registered);
                Ok(true)
            }
            Some(Entry::Erased) | None => Ok(false),
        }
    }

    async fn keys_of(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError> {
        let mut ids: Vec<StreamId> = self
            .entries()
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::Live(s, _) if s == subject))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn erase(
        &self,
        subject: &DataSubject,
        key_ids: &[StreamId],
    ) -> Result<Vec<StreamId>, StoreError> {
        let mut keys = self.entries();
        let mut erased = Vec::new();
        for id in key_ids {
            if let Some(entry) = keys.get_mut(id)
                && matches!(entry, Entry::Live(s, _) if s == subject)
            {
                *entry = Entry::Erased;
                erased.push(id.clone());
            }
        }
        erased.sort();
        erased.dedup();
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

    fn id(s: &str) -> StreamId {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn subject(s: &str) -> DataSubject {
        DataSubject::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn erased_keys_are_kept_as_erased_and_never_created_again() {
        let keys = MemoryKeyStore::new();
        let (ana, bo) = (subject("ana"), subject("bo"));
        let live = keys.key_for(&id("incident-1"), &ana).await.ok();
        assert!(live.as_ref().and_then(KeyState::live).is_some());
        assert_eq!(keys.key_for(&id("incident-1"), &bo).await.ok(), live);
        assert!(keys.register(&id("incident-1"), &bo).await.unwrap_or(false));
        assert_eq!(keys.keys_of(&ana).await.ok(), Some(vec![]));
        let erased = keys.erase(&ana, &[id("incident-1")]).await.ok();
        assert_eq!(erased, Some(vec![]), "registered to bo now");
        let erased = keys
            .erase(&bo, &[id("incident-1"), id("incident-2")])
            .await
            .ok();
        assert_eq!(erased, Some(vec![id("incident-1")]));
        assert_eq!(
            keys.key(&id("incident-1")).await.ok(),
            Some(Some(KeyState::Erased))
        );
        assert_eq!(keys.key(&id("incident-2")).await.ok(), Some(None));
        let again = keys.key_for(&id("incident-1"), &ana).await.ok();
        assert_eq!(again, Some(KeyState::Erased));
        assert!(!keys.register(&id("incident-1"), &ana).await.unwrap_or(true));
        assert_eq!(keys.keys_of(&bo).await.ok(), Some(vec![]));
    }
}
