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
//! field). The key is created before any ciphertext under it is stored; since an append that
//! is refused, or loses the race for the stream's first version, may have created it for its
//! own subject, the append that records the stream's first event registers the key to its
//! subject once the inner store has recorded it (a retry of that append does it again).
//! An append to a stream without a key whose events name no subject takes the subject
//! from the stream's first stored event if that is plaintext (a record logged before the
//! decorator was installed); otherwise it is refused (`PrivacyError::NoSubject`). Keys live in
//! a [`KeyStore`], never in the log.
//!
//! Erasing a key keeps its id as erased ([`KeyState::Erased`]): a key is never created again
//! under an erased id, and an append holding personal fields to an erased stream is refused
//! (`PrivacyError::Erased`) before anything else is looked at, whatever subject its events
//! name. Appends without personal fields (a status change) are still recorded.
//!
//! # Events written before the decorator
//!
//! Events appended to the inner store before the decorator was installed hold their personal
//! fields in plaintext, and deleting a key cannot erase them: an erased record logged that way
//! still shows its plaintext first event. [`Protected::erase_subject`] counts such events of
//! the streams it erases ([`ErasureReport::plaintext_events`], and warns); an operator must
//! migrate them (re-encrypt, or redact, in a copy of the log) to make them erasable. A record
//! logged before the decorator and never appended to through it has no key, so erasure does
//! not find it at all.
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

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use smsys_core::personal::{DataSubject, PersonalData, PersonalDataError};
use smsys_core::{
    AppendError, AppendResult, BackendError, EventData, EventId, EventStore, EventStream,
    ExpectedVersion, LogFilter, Position, RecordedEvent, SnapshotStore, StoreError, StreamAppend,
    StreamId, Version, check_append_shape,
};

mod envelope;
mod erasure;
mod keys;
mod read;

#[cfg(feature = "postgres")]
pub use crate::postgres::PgKeyStore;
#[cfg(feature = "sqlite")]
pub use crate::sqlite::SqliteKeyStore;
pub use erasure::{
    ERASURE_CATEGORY, ERASURE_EVENT_TYPE, ErasureError, ErasureReport, ErasureRequest,
    erasure_stream,
};
pub use keys::{DataKey, KEY_LEN, KeyState, KeyStore, MemoryKeyStore};

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

/// An append ready for the inner store: its events, personal fields encrypted, and the data
/// subject they name (registered to the stream's key once the append records its first event).
struct Sealed {
    events: Vec<EventData>,
    subject: Option<DataSubject>,
}

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

    /// The data subject the first of `events` naming one names.
    fn named_subject(
        &self,
        stream: &StreamId,
        events: &[EventData],
    ) -> Result<Option<DataSubject>, AppendError> {
        for event in events {
            let named = self
                .policy
                .subject_of(event.event_type(), event.payload())
                .map_err(|source| {
                    refusal(PrivacyError::Subject {
                        stream: stream.clone(),
                        source,
                    })
                })?;
            if named.is_some() {
                return Ok(named);
            }
        }
        Ok(None)
    }

    /// The data subject of `stream`, which has no key yet and whose new events name none: the
    /// one its first stored event names if that is plaintext (a record logged before the
    /// decorator was installed). A first event holding encrypted fields means the key was
    /// erased by a key store that kept no record of it: refused as erased.
    async fn stored_subject(&self, stream: &StreamId) -> Result<DataSubject, AppendError> {
        let first = self.inner.read_stream(stream, Version::FIRST).next().await;
        if let Some(first) = first {
            let first = first?;
            if envelope::holds_envelope(first.data.payload()) {
                return Err(refusal(PrivacyError::Erased {
                    stream: stream.clone(),
                }));
            }
            let named = self
                .policy
                .subject_of(first.event_type(), first.data.payload())
                .map_err(|source| {
                    refusal(PrivacyError::Subject {
                        stream: stream.clone(),
                        source,
                    })
                })?;
            if let Some(subject) = named {
                return Ok(subject);
            }
        }
        Err(refusal(PrivacyError::NoSubject {
            stream: stream.clone(),
        }))
    }

    /// `events` with their personal fields encrypted (after the append's own shape checks),
    /// and the subject they name. An append to a stream whose key was erased is refused
    /// before anything else is looked at; a stream without a key gets one before any
    /// ciphertext under it is stored.
    async fn protect(
        &self,
        stream: &StreamId,
        events: Vec<EventData>,
    ) -> Result<Sealed, AppendError> {
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
            return Ok(Sealed {
                events,
                subject: None,
            });
        }
        let erased = || {
            refusal(PrivacyError::Erased {
                stream: stream.clone(),
            })
        };
        let kept = self.keys.key(stream).await?;
        if kept.as_ref().is_some_and(KeyState::is_erased) {
            return Err(erased());
        }
        let named = self.named_subject(stream, &events)?;
        let state = match kept {
            Some(state) => state,
            None => {
                let subject = match &named {
                    Some(subject) => subject.clone(),
                    None => self.stored_subject(stream).await?,
                };
                self.keys.key_for(stream, &subject).await?
            }
        };
        let KeyState::Live(key) = state else {
            // Erased while this append ran.
            return Err(erased());
        };
        let events = events
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
            .collect();
        Ok(Sealed {
            events,
            subject: named,
        })
    }

    /// After the inner store recorded an append of `subject`'s events: if it recorded the
    /// stream's first event, the stream's key is registered to `subject`, whoever created it
    /// (a refused append or one that lost the race for the stream's first version may have
    /// created it for its own subject). A retry of the append, answered with the original
    /// result, registers again: so a crash between the append and this leaves the key
    /// registered to the subject it was created for until the append is retried.
    async fn settle(
        &self,
        stream: &StreamId,
        subject: Option<&DataSubject>,
        result: AppendResult,
    ) -> Result<AppendResult, AppendError> {
        if let Some(subject) = subject
            && result.first_version() == Version::FIRST
        {
            // `false`: erased since, which nothing undoes.
            self.keys.register(stream, subject).await?;
        }
        Ok(result)
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
        let Sealed { events, subject } = self.protect(stream, events).await?;
        let result = self.inner.append(stream, expected, events).await?;
        self.settle(stream, subject.as_ref(), result).await
    }

    async fn append_batch(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Vec<Result<AppendResult, AppendError>> {
        let mut results: Vec<Option<Result<AppendResult, AppendError>>> =
            Vec::with_capacity(appends.len());
        let mut protected = Vec::with_capacity(appends.len());
        let mut subjects = Vec::with_capacity(appends.len());
        for part in appends {
            match self.protect(&part.stream, part.events).await {
                Ok(Sealed { events, subject }) => {
                    subjects.push((part.stream.clone(), subject));
                    protected.push(StreamAppend::new(part.stream, part.expected, events));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let mut inner = self.inner.append_batch(protected).await.into_iter();
        let mut subjects = subjects.into_iter();
        let mut answered = Vec::with_capacity(results.len());
        for result in results {
            answered.push(match result {
                Some(refused) => refused,
                None => match (inner.next(), subjects.next()) {
                    (Some(Ok(result)), Some((stream, subject))) => {
                        self.settle(&stream, subject.as_ref(), result).await
                    }
                    (Some(Err(e)), _) => Err(e),
                    (None, _) | (Some(Ok(_)), None) => {
                        Err(AppendError::Store(StoreError::Corrupt {
                            what: "the inner store answered fewer parts than it was given".into(),
                        }))
                    }
                },
            });
        }
        answered
    }

    async fn find_event(&self, id: EventId) -> Result<Option<RecordedEvent>, StoreError> {
        match self.inner.find_event(id).await? {
            Some(event) => self
                .open(&mut read::KeyCache::default(), event)
                .await
                .map(Some),
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
