//! The read side: events opened a page at a time, the keys of a page fetched in one request.

use std::collections::HashMap;

use futures::StreamExt;
use serde_json::Value;
use smsys_core::{EventData, EventStore, EventStream, RecordedEvent, StoreError, StreamId};

use super::{DataKey, KeyState, Protected, envelope};

/// The keys one read has looked up, by key id (`None`: erased, or never created).
#[derive(Default)]
pub(super) struct KeyCache(HashMap<String, Option<DataKey>>);

/// Most keys one read keeps at once (a long subscription forgets them all past this).
const MAX_CACHED_KEYS: usize = 1024;

/// Most events a read opens at once (those it has ready), fetching their keys in one request.
const PAGE: usize = 256;

impl<S: EventStore + ?Sized> Protected<S> {
    /// `event` with its encrypted fields opened (or read as erased).
    pub(super) async fn open(
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
            cache.0.insert(key_id, key.and_then(KeyState::into_live));
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

    /// Fetches, in one request, the keys the events of a page name that `cache` lacks.
    async fn warm(&self, cache: &mut KeyCache, page: &[Result<RecordedEvent, StoreError>]) {
        let mut named = Vec::new();
        for event in page.iter().flatten() {
            envelope::key_ids(event.data.payload(), &mut named);
        }
        let mut missing: Vec<StreamId> = named
            .into_iter()
            .filter(|id| !cache.0.contains_key(*id))
            .filter_map(|id| id.parse().ok())
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return;
        }
        if cache.0.len() + missing.len() > MAX_CACHED_KEYS {
            cache.0.clear();
        }
        // A failure leaves the cache cold: opening each event asks again, and reports it.
        if let Ok(keys) = self.keys.keys(&missing).await {
            for (id, key) in missing.into_iter().zip(keys) {
                cache
                    .0
                    .insert(id.to_string(), key.and_then(KeyState::into_live));
            }
        }
    }

    /// `events` opened, a page at a time (the events a read has ready): the keys a page names
    /// are fetched in one request, then each event is opened in order. Keys are kept for one
    /// page only, so an erasure holds from the next page of every running read and
    /// subscription on.
    pub(super) fn opened<'a>(&'a self, events: EventStream<'a>) -> EventStream<'a> {
        futures::stream::unfold(events.ready_chunks(PAGE), move |mut pages| async move {
            let page = pages.next().await?;
            let mut cache = KeyCache::default();
            self.warm(&mut cache, &page).await;
            let mut opened = Vec::with_capacity(page.len());
            for event in page {
                opened.push(match event {
                    Ok(event) => self.open(&mut cache, event).await,
                    Err(e) => Err(e),
                });
            }
            Some((futures::stream::iter(opened), pages))
        })
        .flatten()
        .boxed()
    }
}
