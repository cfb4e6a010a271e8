//! Erasing a data subject: their keys deleted, the erasure recorded without them.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use smsys_core::personal::DataSubject;
use smsys_core::records::Reference;
use smsys_core::{
    Actor, AppendError, EventData, EventDataError, EventId, EventStore, EventType, ExpectedVersion,
    Metadata, Position, StoreError, StreamId, Version,
};

use super::{Protected, envelope};

/// The reserved category of the erasure log.
pub const ERASURE_CATEGORY: &str = "smsys_erasure";
/// The type of an erasure event.
pub const ERASURE_EVENT_TYPE: &str = "smsys_erasure.erased";

/// The reserved stream erasures are recorded in, `smsys_erasure-log`.
pub fn erasure_stream() -> StreamId {
    StreamId::new(
        &smsys_core::Category::new(ERASURE_CATEGORY)
            .unwrap_or_else(|e| unreachable!("a valid category: {e}")),
        "log",
    )
    .unwrap_or_else(|e| unreachable!("a valid stream id: {e}"))
}

/// An erasure to carry out: its own reference (e.g. the record of the data subject's
/// request), who carries it out, and when. The erasure event's id derives from the reference,
/// so the same request run again is recognised.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasureRequest {
    reference: Reference,
    actor: Actor,
    at: DateTime<Utc>,
}

impl ErasureRequest {
    /// An erasure under `reference` by `actor` at `at` (the caller's instant).
    pub fn new(reference: Reference, actor: Actor, at: DateTime<Utc>) -> Self {
        Self {
            reference,
            actor,
            at,
        }
    }

    /// The erasure event's id.
    pub fn event_id(&self) -> EventId {
        EventId::derived(&format!("smsys/erasure/{}", self.reference))
    }
}

/// What an erasure did, as recorded in the erasure log.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasureReport {
    /// The erasure request's reference.
    pub reference: Reference,
    /// The streams whose keys were erased (their records' personal fields now read as erased).
    pub streams: Vec<StreamId>,
    /// How many events held fields encrypted under those keys.
    pub events: u64,
    /// How many events of those streams hold personal fields in plaintext (written before the
    /// decorator was installed, or in a field the policy named only later): deleting keys
    /// does not erase them; an operator must migrate (re-encrypt or redact) them. `0` in
    /// erasures recorded before this was counted.
    pub plaintext_events: u64,
    /// When the erasure was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Where the erasure event is in the log.
    pub position: Position,
}

/// Why an erasure failed. Unless said otherwise, run it again with the same request: it
/// completes what is left.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// The store or the key store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The erasure event could not be recorded.
    #[error("the erasure could not be recorded: {0}")]
    Append(#[from] AppendError),
    /// The erasure event could not be built.
    #[error("the erasure event is invalid: {0}")]
    Event(#[from] EventDataError),
    /// The reference was used by an erasure of other keys: give this one its own.
    #[error("erasure reference {reference} was already used for other records")]
    ReferenceUsed {
        /// The reference.
        reference: Reference,
    },
    /// A recorded erasure event could not be read back.
    #[error("recorded erasure {event_id} is unreadable: {what}")]
    Unreadable {
        /// The event.
        event_id: EventId,
        /// What is wrong.
        what: String,
    },
}

fn report_of(event: &smsys_core::RecordedEvent) -> Result<ErasureReport, ErasureError> {
    let unreadable = |what: &str| ErasureError::Unreadable {
        event_id: event.event_id(),
        what: what.to_owned(),
    };
    if event.event_type().as_str() != ERASURE_EVENT_TYPE {
        return Err(unreadable("not an erasure event"));
    }
    let payload = event.data.payload();
    let reference = payload["reference"]
        .as_str()
        .and_then(|r| Reference::new(r).ok())
        .ok_or_else(|| unreadable("no reference"))?;
    let streams = payload["streams"]
        .as_array()
        .ok_or_else(|| unreadable("no streams"))?
        .iter()
        .map(|s| s.as_str().and_then(|s| s.parse().ok()))
        .collect::<Option<Vec<StreamId>>>()
        .ok_or_else(|| unreadable("a stream id is invalid"))?;
    let events = payload["events"]
        .as_u64()
        .ok_or_else(|| unreadable("no event count"))?;
    let plaintext_events = match payload.get("plaintext_events") {
        None => 0,
        Some(count) => count
            .as_u64()
            .ok_or_else(|| unreadable("the plaintext event count is invalid"))?,
    };
    Ok(ErasureReport {
        reference,
        streams,
        events,
        plaintext_events,
        recorded_at: event.recorded_at,
        position: event.position,
    })
}

/// What an erasure counts in one stream.
#[derive(Default)]
struct Counts {
    /// Events holding a field encrypted under the stream's key.
    encrypted: u64,
    /// Events holding a personal field in plaintext.
    plaintext: u64,
}

impl<S: EventStore + ?Sized> Protected<S> {
    /// How many events of `stream` hold a field encrypted under its key, and how many hold a
    /// field the policy names in plaintext.
    async fn count(&self, stream: &StreamId, counts: &mut Counts) -> Result<(), StoreError> {
        let mut events = self.inner.read_stream(stream, Version::FIRST);
        while let Some(event) = events.next().await {
            let event = event?;
            let mut payload = event.data.payload().clone();
            let mut under_key = false;
            let _: Result<(), ()> = envelope::visit_marked(&mut payload, &mut |pointer, value| {
                under_key |=
                    envelope::parse(value, pointer).is_ok_and(|e| e.key == stream.as_str());
                Ok(())
            });
            let plaintext = self.policy.fields(event.event_type()).iter().any(|field| {
                payload
                    .pointer(field.pointer.as_str())
                    .is_some_and(|value| !envelope::is_marked(value))
            });
            counts.encrypted += u64::from(under_key);
            counts.plaintext += u64::from(plaintext);
        }
        Ok(())
    }

    /// Erases `subject`: records the erasure in [`erasure_stream`] (the request's reference,
    /// the affected streams, the number of events encrypted under their keys and the number
    /// holding personal fields in plaintext; nothing of the subject), then erases every key
    /// registered to the subject that it recorded. Their fields read as erased from then on,
    /// on every node; projections that copied them must be rebuilt (see the module docs).
    ///
    /// Events written before the decorator was installed hold their personal fields in
    /// plaintext, which deleting a key cannot erase: the report counts those of the erased
    /// streams (`plaintext_events`, with a warning), and an operator must migrate them. A
    /// record logged before the decorator and never appended to through it has no key at all,
    /// so the key store cannot find it for its subject.
    ///
    /// Retry-safe: once the erasure event is recorded, the same request run again (after a
    /// failure, or after it completed) erases what is left of the keys it recorded, whatever
    /// was appended since, and returns the recorded report. Records of the subject whose keys
    /// it did not record (logged since) are left, with a warning: erase them under a new
    /// reference. A reference recorded for other records than any the subject has is refused
    /// ([`ErasureError::ReferenceUsed`]).
    pub async fn erase_subject(
        &self,
        subject: &DataSubject,
        request: &ErasureRequest,
    ) -> Result<ErasureReport, ErasureError> {
        let id = request.event_id();
        if let Some(recorded) = self.inner.find_event(id).await? {
            return self.complete(subject, request, &recorded, true).await;
        }
        let streams = self.keys.keys_of(subject).await?;
        let mut counts = Counts::default();
        for stream in &streams {
            self.count(stream, &mut counts).await?;
        }
        let payload: Value = json!({
            "reference": request.reference.as_str(),
            "streams": streams.iter().map(StreamId::as_str).collect::<Vec<_>>(),
            "events": counts.encrypted,
            "plaintext_events": counts.plaintext,
        });
        let event_type = EventType::new(ERASURE_EVENT_TYPE)
            .unwrap_or_else(|e| unreachable!("a valid event type: {e}"));
        let data = EventData::new(
            event_type,
            1,
            payload,
            Metadata::new(id, request.actor.clone(), request.at),
        )?;
        let retry = match self
            .inner
            .append(&erasure_stream(), ExpectedVersion::Any, vec![data])
            .await
        {
            Ok(_) => false,
            // Recorded meanwhile, by a run of the same request (or under the same reference).
            Err(AppendError::EventIdReused { .. }) => true,
            Err(e) => return Err(e.into()),
        };
        let recorded =
            self.inner
                .find_event(id)
                .await?
                .ok_or_else(|| ErasureError::Unreadable {
                    event_id: id,
                    what: "not found after it was recorded".to_owned(),
                })?;
        self.complete(subject, request, &recorded, retry).await
    }

    /// Erases the keys of `subject` that the `recorded` erasure names, and returns its report.
    async fn complete(
        &self,
        subject: &DataSubject,
        request: &ErasureRequest,
        recorded: &smsys_core::RecordedEvent,
        retry: bool,
    ) -> Result<ErasureReport, ErasureError> {
        let report = report_of(recorded)?;
        let (covered, left): (Vec<StreamId>, Vec<StreamId>) = self
            .keys
            .keys_of(subject)
            .await?
            .into_iter()
            .partition(|stream| report.streams.contains(stream));
        if retry && covered.is_empty() && !left.is_empty() {
            return Err(ErasureError::ReferenceUsed {
                reference: request.reference.clone(),
            });
        }
        if !covered.is_empty() {
            self.keys.erase(subject, &covered).await?;
        }
        if !left.is_empty() {
            tracing::warn!(
                reference = %request.reference,
                records = left.len(),
                "the data subject has records this erasure did not record (logged since it was recorded): erase them under a new reference"
            );
        }
        if report.plaintext_events > 0 {
            tracing::warn!(
                reference = %request.reference,
                plaintext_events = report.plaintext_events,
                "events of the erased records were written before the privacy decorator and hold personal fields in plaintext: deleting keys does not erase them; migrate them"
            );
        }
        Ok(report)
    }
}
