//! The verifier: walks events in order and names those whose hash, link, version or position
//! does not hold.

use std::collections::HashMap;
use std::fmt;

use futures::{Stream, StreamExt};

use super::{EventHash, event_hash};
use crate::event::RecordedEvent;
use crate::store::StoreError;
use crate::stream::{Position, StreamId, Version};

/// What is wrong with the first event that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainFault {
    /// The stored hash is not the hash of the stored content: the event was altered.
    HashMismatch {
        /// The hash the store holds.
        stored: EventHash,
        /// The hash of the content as it is now.
        computed: EventHash,
    },
    /// The event's link does not name the previous event of its stream: an event before it
    /// was removed, replaced or reordered.
    BrokenLink {
        /// Hash of the previous event actually found (`None` at the stream's start).
        expected: Option<EventHash>,
        /// The link the event holds.
        found: Option<EventHash>,
    },
    /// The stream's versions do not run 1, 2, 3, ... without gaps.
    VersionGap {
        /// The version that should come next.
        expected: Version,
        /// The version found.
        found: Version,
    },
    /// The log's positions do not strictly increase.
    PositionOutOfOrder {
        /// The position before.
        previous: Position,
        /// The position found.
        found: Position,
    },
}

impl fmt::Display for ChainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainFault::HashMismatch { stored, computed } => write!(
                f,
                "content altered: stored hash {stored}, content hashes to {computed}"
            ),
            ChainFault::BrokenLink { expected, found } => write!(
                f,
                "broken link: previous event hashes to {}, event links to {}",
                opt_hash(expected.as_ref()),
                opt_hash(found.as_ref())
            ),
            ChainFault::VersionGap { expected, found } => {
                write!(f, "version gap: expected version {expected}, found {found}")
            }
            ChainFault::PositionOutOfOrder { previous, found } => write!(
                f,
                "position {found} does not follow position {previous} in the log"
            ),
        }
    }
}

fn opt_hash(h: Option<&EventHash>) -> String {
    h.map_or_else(|| "nothing (stream start)".to_owned(), EventHash::to_string)
}

/// The first event at which the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {version} of stream {stream} (position {position}, id {event_id}): {fault}")]
pub struct ChainBreak {
    /// Its stream.
    pub stream: StreamId,
    /// Its version.
    pub version: Version,
    /// Its position.
    pub position: Position,
    /// Its event id.
    pub event_id: crate::event::EventId,
    /// What is wrong.
    pub fault: ChainFault,
}

/// Checks events one at a time, in log order (or one stream in version order).
///
/// Memory grows with the number of streams (one head per stream), not with the events.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    heads: HashMap<StreamId, (Version, EventHash)>,
    last_position: Option<Position>,
    events: u64,
}

impl ChainVerifier {
    /// A verifier that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event.
    pub fn check(&mut self, event: &RecordedEvent) -> Result<(), Box<ChainBreak>> {
        let fail = |fault| {
            Box::new(ChainBreak {
                stream: event.stream.clone(),
                version: event.version,
                position: event.position,
                event_id: event.event_id(),
                fault,
            })
        };
        if let Some(previous) = self.last_position
            && event.position <= previous
        {
            return Err(fail(ChainFault::PositionOutOfOrder {
                previous,
                found: event.position,
            }));
        }
        let head = self.heads.get(&event.stream);
        let expected_version = head.map_or(Version::FIRST, |(v, _)| v.next());
        if event.version != expected_version {
            return Err(fail(ChainFault::VersionGap {
                expected: expected_version,
                found: event.version,
            }));
        }
        let expected_link = head.map(|(_, h)| *h);
        if event.previous_hash != expected_link {
            return Err(fail(ChainFault::BrokenLink {
                expected: expected_link,
                found: event.previous_hash,
            }));
        }
        let computed = event_hash(
            event.previous_hash.as_ref(),
            &event.stream,
            event.version,
            &event.data,
            event.recorded_at,
        );
        if computed != event.hash {
            return Err(fail(ChainFault::HashMismatch {
                stored: event.hash,
                computed,
            }));
        }
        self.heads
            .insert(event.stream.clone(), (event.version, event.hash));
        self.last_position = Some(event.position);
        self.events += 1;
        Ok(())
    }

    /// Takes an event whose check failed as its stream's head all the same, so the walk goes
    /// on and each later event is judged on its own: an altered event is reported once, not
    /// again at every event after it.
    pub fn resume_after(&mut self, event: &RecordedEvent) {
        self.heads
            .insert(event.stream.clone(), (event.version, event.hash));
        self.last_position = Some(
            self.last_position
                .map_or(event.position, |p| p.max(event.position)),
        );
    }

    /// Events checked and found sound so far.
    pub fn events_checked(&self) -> u64 {
        self.events
    }

    /// Streams seen so far.
    pub fn streams_seen(&self) -> usize {
        self.heads.len()
    }

    /// The head (last version and hash) of every stream seen: the material of a seal.
    pub fn heads(&self) -> impl Iterator<Item = (&StreamId, Version, EventHash)> {
        self.heads.iter().map(|(s, (v, h))| (s, *v, *h))
    }
}

/// A stored event too damaged to be read (a value of the wrong type, text that is not UTF-8,
/// an id or name its type refuses): the walk went on past it. Its stream's chain then breaks
/// at its next event, and a seal covering it does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UndecodableRow {
    /// Where it is stored in the log.
    pub position: Position,
    /// What is wrong: the store's words, naming the column, and the stream and version when
    /// they are readable.
    pub what: String,
}

impl UndecodableRow {
    /// The event stored at `position`, which does not decode because of `what`.
    pub fn new(position: Position, what: impl Into<String>) -> Self {
        Self {
            position,
            what: what.into(),
        }
    }
}

impl fmt::Display for UndecodableRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event at position {} does not decode: {}",
            self.position, self.what
        )
    }
}

/// The outcome of walking a stream or a log. Built by the verifiers only (new findings may
/// be added as fields).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Events found sound before the first break (all of them when there is none).
    pub events_checked: u64,
    /// Streams seen.
    pub streams: usize,
    /// The first event whose hash, version or link does not hold.
    pub first_break: Option<ChainBreak>,
    /// Every event that does not hold, in log order, when the walk went on after the first
    /// (stores' `verify`, [`crate::seal::verify_sealed`]); [`verify_events`] stops at the first
    /// and leaves this empty.
    pub breaks: Vec<ChainBreak>,
    /// Seals checked ([`crate::seal`]; 0 when the walk did not check seals).
    pub seals: u64,
    /// The latest seal found.
    pub latest_seal: Option<crate::seal::RecordedSeal>,
    /// Every seal that does not hold, each naming what it expected and what the log holds.
    pub seal_failures: Vec<crate::seal::SealFailure>,
    /// Every stored event too damaged to be read, in log order, when the store lists them
    /// and walks on ([`crate::seal::verify_sealed_past`]); otherwise such an event ends the
    /// walk with [`StoreError::Corrupt`].
    pub undecodable: Vec<UndecodableRow>,
}

impl VerifyReport {
    /// Whether everything checked holds: no chain break, no seal failure, no undecodable
    /// event.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none() && self.seal_failures.is_empty() && self.undecodable.is_empty()
    }
}

/// Walks events in order (a whole log from its start, or a whole stream from version 1) and
/// reports the first one that does not hold. Stops at the first break.
///
/// ```
/// # use smsys_core::{verify_events, RecordedEvent};
/// # futures::executor::block_on(async {
/// let none: Vec<Result<RecordedEvent, smsys_core::StoreError>> = Vec::new();
/// let report = verify_events(futures::stream::iter(none)).await?;
/// assert!(report.is_intact());
/// # Ok::<(), smsys_core::StoreError>(()) }).unwrap();
/// ```
pub async fn verify_events<S>(events: S) -> Result<VerifyReport, StoreError>
where
    S: Stream<Item = Result<RecordedEvent, StoreError>>,
{
    let mut verifier = ChainVerifier::new();
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        if let Err(broken) = verifier.check(&event?) {
            tracing::warn!(%broken, "hash chain does not hold");
            return Ok(VerifyReport {
                events_checked: verifier.events_checked(),
                streams: verifier.streams_seen(),
                first_break: Some(*broken),
                breaks: Vec::new(),
                seals: 0,
                latest_seal: None,
                seal_failures: Vec::new(),
                undecodable: Vec::new(),
            });
        }
    }
    Ok(VerifyReport {
        events_checked: verifier.events_checked(),
        streams: verifier.streams_seen(),
        first_break: None,
        breaks: Vec::new(),
        seals: 0,
        latest_seal: None,
        seal_failures: Vec::new(),
        undecodable: Vec::new(),
    })
}
