//! Personal data that can be erased without breaking the hash chain (crypto-shredding).
//!
//! [`Protected`] wraps any [`EventStore`]: on every append it encrypts the fields a
//! [`PersonalData`] policy names (`smsys_core::records::personal_data` for the shipped record
//! types) with the data key of the record's stream, so the inner store, its hash chain and its
//! seals only ever see ciphertext; on every read (stream and log reads, subscriptions,
//! `find_event`) it decrypts them again. [`Protected::erase_subject`] deletes the keys of a
//! data subject (the caller of every record they logged): their fields then read as the
//! policy's placeholders, forever, while `verify` of the inner store still holds, since the
//! chain hashes the unchanged ciphertext. The erasure itself is recorded in the reserved
//! stream `smsys_erasure-log`, without the subject.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use chrono::{TimeZone, Utc};
//! use futures::StreamExt;
//! use smsys_core::personal::DataSubject;
//! use smsys_core::records::{personal_data, Reference};
//! use smsys_core::{Actor, EventData, EventId, EventStore, EventType, ExpectedVersion, Metadata, Version};
//! use smsys_store::MemoryEventStore;
//! use smsys_store::privacy::{ErasureRequest, MemoryKeyStore, Protected};
//!
//! let inner = Arc::new(MemoryEventStore::new());
//! let store = Protected::new(inner.clone(), Arc::new(MemoryKeyStore::new()), personal_data());
//! let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
//! let stream = "incident-INC-1".parse()?;
//! let note = EventData::new(
//!     EventType::new("incident.logged")?,
//!     2,
//!     serde_json::json!({"caller": "ana", "summary": "my laptop was stolen"}),
//!     Metadata::new(EventId::from_uuid(uuid::Uuid::from_u128(1))?, Actor::new("agent:bo")?, at),
//! )?;
//! store.append(&stream, ExpectedVersion::NoStream, vec![note]).await?;
//!
//! // The decorator reads the plaintext; the inner store holds ciphertext only.
//! let read = store.read_stream(&stream, Version::FIRST).next().await.unwrap()?;
//! assert_eq!(read.data.payload()["summary"], "my laptop was stolen");
//! let stored = inner.read_stream(&stream, Version::FIRST).next().await.unwrap()?;
//! assert!(!stored.data.payload().to_string().contains("stolen"));
//!
//! let report = store
//!     .erase_subject(&DataSubject::new("ana")?, &ErasureRequest::new("DSR-1".parse()?, Actor::new("dpo")?, at))
//!     .await?;
//! assert_eq!(report.events, 1);
//! let read = store.read_stream(&stream, Version::FIRST).next().await.unwrap()?;
//! assert_eq!(read.data.payload()["summary"], "[erased]");
//! # Ok(()) }
//! ```
//!
//! # Keys
//!
//! One 256-bit data key per record stream (key id = stream id), drawn from the operating
//! system's random number generator and registered to the data subject named by the stream's
//! first event carrying one (a record's `logged` event names its caller; the policy says which
//! field). An append to a stream without a key whose events name no subject takes the subject
//! from the stream's first stored event if that is plaintext (a record logged before the
//! decorator was installed); otherwise it is refused (`PrivacyError::NoSubject`), as is an
//! append to a stream whose key was erased (`PrivacyError::Erased`). Keys live in a
//! [`KeyStore`], never in the log.
//!
//! # Encrypted field format, version 1
//!
//! Each personal field present in a payload is replaced by
//! `{"$personal": {"v": 1, "key": "<key id>", "ct": "<base64>"}}`, where:
//! - the plaintext is the field's JSON value, serialised compactly (serde_json);
//! - the cipher is AES-256-GCM-SIV (RFC 8452) under the key registered as `<key id>`;
//! - `binding` = the ASCII bytes `smsys/personal/v1`, one zero byte, the event id's 16 UUID
//!   bytes, and the field's JSON pointer (RFC 6901, as named by the policy) in UTF-8;
//! - the nonce is the first 12 bytes of SHA-256(`binding`), and the associated data is
//!   `binding` itself, so a ciphertext opens only as the field of the event it was made for;
//! - `ct` is the ciphertext with its 16-byte tag appended, in standard padded base64.
//!
//! The nonce is deterministic so that a retried append stores byte-identical events (the
//! store answers a retry with the original result only if the events are equal); GCM-SIV is
//! nonce-misuse resistant, so the same key, nonce and plaintext reveal only that equality.
//! The chain's canonical encoding treats the envelope as ordinary JSON. Payloads that already
//! hold an object with a `$personal` member are refused at append (`PrivacyError::Reserved`),
//! so every such object a reader finds is an envelope. Readers decrypt every envelope they
//! find (whatever the policy says today); one whose key is erased reads as the policy's
//! `erased` value for that field (`null` if the policy no longer names it).
//!
//! # What still holds plaintext
//!
//! - Snapshots: [`Protected::snapshots`] offers none (a snapshot is a copy of the state with
//!   its personal fields in plaintext); give a command handler another snapshot place only if
//!   it is erased with the subject.
//! - Projections that copy personal fields (the record index's caller and summary): rebuild
//!   them after an erasure (clear, then catch up from the start through the decorator), or
//!   refresh the streams the [`ErasureReport`] names.
//! - Event metadata (actor, extensions) is never encrypted.
//! - Command handler caches hold decoded states in memory until evicted.
//!
//! Verify and seal the inner store ([`Protected::inner`]): events read through the decorator
//! carry the hash of their stored (encrypted) form.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;
use smsys_core::personal::{DataSubject, PersonalData, PersonalDataError};
use smsys_core::{
    AppendError, AppendResult, BackendError, EventData, EventId, EventStore, EventStream,
    ExpectedVersion, LogFilter, Position, RecordedEvent, SnapshotStore, StoreError, StreamAppend,
    StreamId, Version, check_append_shape,
};

mod envelope;
mod erasure;
mod keys;

#[cfg(feature = "postgres")]
pub use crate::postgres::PgKeyStore;
#[cfg(feature = "sqlite")]
pub use crate::sqlite::SqliteKeyStore;
pub use erasure::{
    ERASURE_CATEGORY, ERASURE_EVENT_TYPE, ErasureError, ErasureReport, ErasureRequest,
    erasure_stream,
};
pub use keys::{DataKey, KEY_LEN, KeyStore, MemoryKeyStore};

/// The backend name of refusals the decorator reports as [`BackendError`]s.
pub const BACKEND: &str = "privacy";

/// Why the decorator refused an append (reported as a permanent [`StoreError::Backend`] of
/// backend [`BACKEND`], with this error as its source).
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The stream has no data key and nothing names the data subject to register one to.
    #[error(
        "append to {stream}: it holds personal data but no data subject is known (log the record first)"
    )]
    NoSubject {
        /// The stream.
        stream: StreamId,
    },
    /// The stream's key was erased: nothing personal can be recorded in it again.
    #[error("append to {stream}: its data subject was erased")]
    Erased {
        /// The stream.
        stream: StreamId,
    },
    /// A payload already holds an object with a `$personal` member, which readers would take
    /// for an encrypted field.
    #[error("append to {stream}: event {event_id} holds a $personal member at {pointer}")]
    Reserved {
        /// The stream.
        stream: StreamId,
        /// The event.
        event_id: EventId,
        /// Where.
        pointer: String,
    },
    /// The subject field holds no valid subject.
    #[error("append to {stream}: {source}")]
    Subject {
        /// The stream.
        stream: StreamId,
        /// What is wrong.
        source: PersonalDataError,
    },
}

/// An [`EventStore`] that keeps personal fields encrypted in the store it wraps; see the
/// [module docs](self).
pub struct Protected<S: EventStore + ?Sized> {
    inner: Arc<S>,
    keys: Arc<dyn KeyStore>,
    policy: Arc<PersonalData>,
}

impl<S: EventStore + ?Sized> std::fmt::Debug for Protected<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protected").finish_non_exhaustive()
    }
}

impl<S: EventStore + ?Sized> Clone for Protected<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            keys: self.keys.clone(),
            policy: self.policy.clone(),
        }
    }
}

/// The keys one read has looked up, by key id (`None`: erased).
#[derive(Default)]
struct KeyCache(HashMap<String, Option<DataKey>>);

/// Most keys one read keeps at once (a long subscription forgets them all past this).
const MAX_CACHED_KEYS: usize = 1024;

fn refusal(error: PrivacyError) -> AppendError {
    AppendError::Store(StoreError::Backend(BackendError::new(
        BACKEND, "append", false, error,
    )))
}

impl<S: EventStore + ?Sized> Protected<S> {
    /// Wraps `inner`, encrypting what `policy` names with keys kept in `keys`.
    pub fn new(inner: Arc<S>, keys: Arc<dyn KeyStore>, policy: PersonalData) -> Self {
        Self {
            inner,
            keys,
            policy: Arc::new(policy),
        }
    }

    /// The wrapped store, holding ciphertext: verify and seal it.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// The key store.
    pub fn keys(&self) -> &Arc<dyn KeyStore> {
        &self.keys
    }

    /// The policy.
    pub fn policy(&self) -> &PersonalData {
        &self.policy
    }

    /// The data subject of `stream` when it has no key yet: named by `events`, or by the
    /// stream's first stored event if that is plaintext.
    async fn subject(
        &self,
        stream: &StreamId,
        events: &[EventData],
    ) -> Result<DataSubject, AppendError> {
        let named = |event_type, payload: &Value| {
            self.policy
                .subject_of(event_type, payload)
                .map_err(|source| {
                    refusal(PrivacyError::Subject {
                        stream: stream.clone(),
                        source,
                    })
                })
        };
        for event in events {
            if let Some(subject) = named(event.event_type(), event.payload())? {
                return Ok(subject);
            }
        }
        let first = self.inner.read_stream(stream, Version::FIRST).next().await;
        if let Some(first) = first {
            let first = first?;
            let mut marked = false;
            let mut payload = first.data.payload().clone();
            let _: Result<(), ()> = envelope::visit_marked(&mut payload, &mut |_, _| {
                marked = true;
                Ok(())
            });
            if marked {
                // Encrypted under a key that is gone: the stream's subject was erased.
                return Err(refusal(PrivacyError::Erased {
                    stream: stream.clone(),
                }));
            }
            if let Some(subject) = named(first.event_type(), first.data.payload())? {
                return Ok(subject);
            }
        }
        Err(refusal(PrivacyError::NoSubject {
            stream: stream.clone(),
        }))
    }

    /// `events` with their personal fields encrypted (after the append's own shape checks).
    async fn protect(
        &self,
        stream: &StreamId,
        events: Vec<EventData>,
    ) -> Result<Vec<EventData>, AppendError> {
        check_append_shape(stream, &events)?;
        for event in &events {
            let mut payload = event.payload().clone();
            let reserved =
                envelope::visit_marked(&mut payload, &mut |pointer, _| Err(pointer.to_owned()));
            if let Err(pointer) = reserved {
                return Err(refusal(PrivacyError::Reserved {
                    stream: stream.clone(),
                    event_id: event.event_id(),
                    pointer,
                }));
            }
        }
        let personal = |e: &EventData| self.policy.holds_personal(e.event_type(), e.payload());
        if !events.iter().any(personal) {
            return Ok(events);
        }
        let key = match self.keys.key(stream).await? {
            Some(key) => key,
            None => {
                let subject = self.subject(stream, &events).await?;
                self.keys.key_for(stream, &subject).await?
            }
        };
        Ok(events
            .into_iter()
            .map(|event| {
                let (event_type, schema_version, mut payload, metadata) = event.into_parts();
                for field in self.policy.fields(&event_type) {
                    let pointer = field.pointer.as_str();
                    if let Some(value) = payload.pointer_mut(pointer) {
                        *value = envelope::seal(&key, stream, metadata.event_id(), pointer, value);
                    }
                }
                EventData::stored(event_type, schema_version, payload, metadata)
            })
            .collect())
    }

    /// `event` with its encrypted fields opened (or read as erased).
    async fn open(
        &self,
        cache: &mut KeyCache,
        event: RecordedEvent,
    ) -> Result<RecordedEvent, StoreError> {
        let RecordedEvent {
            stream,
            version,
            position,
            data,
            recorded_at,
            previous_hash,
            hash,
        } = event;
        let (event_type, schema_version, mut payload, metadata) = data.into_parts();
        let corrupt = |what: String| StoreError::Corrupt {
            what: format!(
                "event {} of {stream} (version {version}): {what}",
                metadata.event_id()
            ),
        };
        let mut wanted = Vec::new();
        envelope::visit_marked(&mut payload, &mut |pointer, value| {
            let envelope = envelope::parse(value, pointer)?;
            if !cache.0.contains_key(envelope.key) {
                wanted.push(envelope.key.to_owned());
            }
            Ok(())
        })
        .map_err(|e: envelope::EnvelopeError| corrupt(e.to_string()))?;
        if cache.0.len() + wanted.len() > MAX_CACHED_KEYS {
            cache.0.clear();
        }
        for key_id in wanted {
            let id: StreamId = key_id
                .parse()
                .map_err(|e| corrupt(format!("key id {key_id:?}: {e}")))?;
            let key = self.keys.key(&id).await?;
            cache.0.insert(key_id, key);
        }
        let event_id = metadata.event_id();
        envelope::visit_marked(&mut payload, &mut |pointer, value| {
            let envelope = envelope::parse(value, pointer)?;
            *value = match cache.0.get(envelope.key).and_then(Option::as_ref) {
                Some(key) => envelope::open(&envelope, key, event_id, pointer)?,
                None => self
                    .policy
                    .field(&event_type, pointer)
                    .map_or(Value::Null, |f| f.erased.clone()),
            };
            Ok(())
        })
        .map_err(|e: envelope::EnvelopeError| corrupt(e.to_string()))?;
        Ok(RecordedEvent {
            stream,
            version,
            position,
            data: EventData::stored(event_type, schema_version, payload, metadata),
            recorded_at,
            previous_hash,
            hash,
        })
    }

    fn opened<'a>(&'a self, events: EventStream<'a>) -> EventStream<'a> {
        futures::stream::unfold(
            (events, KeyCache::default()),
            move |(mut events, mut cache)| async move {
                let next = match events.next().await? {
                    Ok(event) => self.open(&mut cache, event).await,
                    Err(e) => Err(e),
                };
                Some((next, (events, cache)))
            },
        )
        .boxed()
    }
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for Protected<S> {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        let events = self.protect(stream, events).await?;
        self.inner.append(stream, expected, events).await
    }

    async fn append_batch(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Vec<Result<AppendResult, AppendError>> {
        let mut results: Vec<Option<Result<AppendResult, AppendError>>> =
            Vec::with_capacity(appends.len());
        let mut protected = Vec::with_capacity(appends.len());
        for part in appends {
            match self.protect(&part.stream, part.events).await {
                Ok(events) => {
                    protected.push(StreamAppend::new(part.stream, part.expected, events));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let mut inner = self.inner.append_batch(protected).await.into_iter();
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    inner.next().unwrap_or_else(|| {
                        Err(AppendError::Store(StoreError::Corrupt {
                            what: "the inner store answered fewer parts than it was given".into(),
                        }))
                    })
                })
            })
            .collect()
    }

    async fn find_event(&self, id: EventId) -> Result<Option<RecordedEvent>, StoreError> {
        match self.inner.find_event(id).await? {
            Some(event) => self.open(&mut KeyCache::default(), event).await.map(Some),
            None => Ok(None),
        }
    }

    /// None: a snapshot would keep the personal fields of a state in plaintext.
    fn snapshots(&self) -> Option<&dyn SnapshotStore> {
        None
    }

    fn read_stream(&self, stream: &StreamId, from: Version) -> EventStream<'_> {
        self.opened(self.inner.read_stream(stream, from))
    }

    fn read_stream_backwards(&self, stream: &StreamId, from: Option<Version>) -> EventStream<'_> {
        self.opened(self.inner.read_stream_backwards(stream, from))
    }

    fn read_all(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        self.opened(self.inner.read_all(after, filter))
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.inner.stream_version(stream).await
    }

    fn subscribe(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        self.opened(self.inner.subscribe(after, filter))
    }
}
