//! Answering a command run again: the result of its first run, found by its event ids.

use futures::StreamExt;

use super::{CommandHandler, Executed, LoadError};
use crate::aggregate::Aggregate;
use crate::event::CommandId;
use crate::store::AppendResult;
use crate::stream::{StreamId, Version};

impl<A: Aggregate> CommandHandler<A> {
    /// The result of an earlier run of `command` on `stream`, if its events are recorded there:
    /// the events from `first` (found by the first event's id when not given) that carry the
    /// command's event ids, and the state right after them.
    pub(super) async fn original(
        &self,
        stream: &StreamId,
        command: CommandId,
        first: Option<Version>,
        attempts: u32,
    ) -> Result<Option<Executed<A>>, LoadError> {
        let first = match first {
            Some(first) => first,
            None => match self.store.find_event(command.event_id(0)).await? {
                Some(found) if &found.stream == stream => found.version,
                _ => return Ok(None),
            },
        };
        let mut recorded = Vec::new();
        let mut events = self.store.read_stream(stream, first);
        while let Some(event) = events.next().await {
            let event = event?;
            if event.event_id() != command.event_id(recorded.len()) {
                break;
            }
            recorded.push(event);
        }
        drop(events);
        let Some(last) = recorded.last() else {
            return Ok(None);
        };
        let version = last.version;
        let positions = recorded.iter().map(|e| e.position).collect();
        let mut typed = Vec::with_capacity(recorded.len());
        for event in recorded {
            let at = event.version;
            let (event_type, schema_version, payload, _) = event.data.into_parts();
            typed.push(
                self.upcasters
                    .decode(&event_type, schema_version, payload)
                    .map_err(|failure| failure.at(stream, at))?,
            );
        }
        let state = self.state_at(stream, version).await?;
        tracing::info!(%stream, %command, %version, "command already recorded; returning its result");
        Ok(Some(Executed {
            state,
            events: typed,
            append: Some(AppendResult { version, positions }),
            attempts,
        }))
    }

    /// The state of `stream` as of `version`, replayed from its start.
    async fn state_at(&self, stream: &StreamId, version: Version) -> Result<A::State, LoadError> {
        let events = self
            .store
            .read_stream(stream, Version::FIRST)
            .take_while(move |e| {
                futures::future::ready(e.as_ref().map_or(true, |e| e.version <= version))
            })
            .boxed();
        let (state, _, _) = self.apply(stream, events, A::State::default()).await?;
        Ok(state)
    }
}
