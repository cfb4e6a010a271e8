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
    Ok(ErasureReport {
        reference,
        streams,
        events,
        recorded_at: event.recorded_at,
        position: event.position,
    })
}

impl<S: EventStore + ?Sized> Protected<S> {
    /// How many events of `stream` hold a field encrypted under its key.
    async fn encrypted_events(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let mut events = self.inner.read_stream(stream, Version::FIRST);
        let mut count = 0;
        while let Some(event) = events.next().await {
            let mut payload = event?.data.payload().clone();
            let mut under_key = false;
            let _: Result<(), ()> = envelope::visit_marked(&mut payload, &mut |pointer, value| {
                under_key |=
                    envelope::parse(value, pointer).is_ok_and(|e| e.key == stream.as_str());
                Ok(())
            });
            count += u64::from(under_key);
        }
        Ok(count)
    }

    /// Erases `subject`: records the erasure in [`erasure_stream`] (the request's reference,
    /// the affected streams and the number of events, nothing of the subject), then deletes
    /// every key registered to the subject. Their fields read as erased from then on, on every
    /// node; projections that copied them must be rebuilt (see the module docs).
    ///
    /// Retry-safe: the same request run again after a failure records the same event (or
    /// finds it) and deletes what is left; run again after it completed, it returns the
    /// recorded report.
    pub async fn erase_subject(
        &self,
        subject: &DataSubject,
        request: &ErasureRequest,
    ) -> Result<ErasureReport, ErasureError> {
        let streams = self.keys.keys_of(subject).await?;
        let mut events = 0;
        for stream in &streams {
            events += self.encrypted_events(stream).await?;
        }
        let id = request.event_id();
        let payload: Value = json!({
            "reference": request.reference.as_str(),
            "streams": streams.iter().map(StreamId::as_str).collect::<Vec<_>>(),
            "events": events,
        });
        let event_type = EventType::new(ERASURE_EVENT_TYPE)
            .unwrap_or_else(|e| unreachable!("a valid event type: {e}"));
        let data = EventData::new(
            event_type,
            1,
            payload,
            Metadata::new(id, request.actor.clone(), request.at),
        )?;
        match self
            .inner
            .append(&erasure_stream(), ExpectedVersion::Any, vec![data])
            .await
        {
            Ok(_) => {}
            Err(AppendError::EventIdReused { .. }) if streams.is_empty() => {}
            Err(AppendError::EventIdReused { .. }) => {
                return Err(ErasureError::ReferenceUsed {
                    reference: request.reference.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let erased = self.keys.erase_subject(subject).await?;
        if erased != streams {
            tracing::warn!(
                reference = %request.reference,
                recorded = streams.len(),
                erased = erased.len(),
                "keys registered while the erasure ran were erased too; run the erasure again under a new reference to record them"
            );
        }
        let recorded =
            self.inner
                .find_event(id)
                .await?
                .ok_or_else(|| ErasureError::Unreadable {
                    event_id: id,
                    what: "not found after it was recorded".to_owned(),
                })?;
        report_of(&recorded)
    }
}
