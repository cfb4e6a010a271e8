//! The retry rule every backend applies: an append whose event ids are already recorded is
//! either a retry of one whole earlier append (answered with that append's result) or a reuse
//! of ids ([`AppendError::EventIdReused`]).

use crate::event::{EventData, RecordedEvent};
use crate::stream::{ExpectedVersion, StreamId, Version};

use super::{AppendError, AppendResult};

/// Where a recorded event stands in the append that recorded it: what tells a retry of a whole
/// earlier append from a part of one ([`resolve_append_retry`]).
///
/// Stores keep it beside each event as one count ([`AppendSpan::from_count`],
/// [`AppendSpan::count`]): the number of events of the append on its first event, 0 on its
/// other events, nothing on events recorded before the store kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppendSpan {
    /// The first event of an append of `len` events.
    First {
        /// How many events the append recorded.
        len: u64,
    },
    /// An event after the first of its append.
    Later,
    /// Not known: the event was recorded before its store kept append boundaries. The retry
    /// rule is then the lenient one of [`resolve_retry`].
    Unknown,
}

impl AppendSpan {
    /// The span of event `index` (from 0) of an append of `len` events.
    pub fn of(index: usize, len: usize) -> Self {
        if index == 0 {
            AppendSpan::First { len: len as u64 }
        } else {
            AppendSpan::Later
        }
    }

    /// The span as a store keeps it: the append's length on its first event, 0 on the others,
    /// `None` when unknown.
    pub fn from_count(count: Option<u64>) -> Self {
        match count {
            None => AppendSpan::Unknown,
            Some(0) => AppendSpan::Later,
            Some(len) => AppendSpan::First { len },
        }
    }

    /// The count a store keeps for this span (the inverse of [`AppendSpan::from_count`]).
    pub fn count(self) -> Option<u64> {
        match self {
            AppendSpan::First { len } => Some(len),
            AppendSpan::Later => Some(0),
            AppendSpan::Unknown => None,
        }
    }
}

/// Recognises a retried append. `recorded[i]` is the stored event carrying the id of
/// `events[i]`, if there is one; `first` is what the store recorded about the append of the
/// event carrying the id of `events[0]` (ignored when that id is not recorded).
///
/// Returns `Ok(None)` when none of the ids is stored (a new append), `Ok(Some(result))` when
/// the events are exactly one whole earlier append (the original append: its result is
/// returned and nothing is written), and [`AppendError::EventIdReused`], naming a recorded
/// event, otherwise. Exactly one whole append means: every id is stored, with the same content,
/// in `stream`, at consecutive versions from the append's first event on, at a place `expected`
/// allows, and the append recorded as many events as `events` holds ([`AppendSpan::First`]
/// with that length on the first). A part of an earlier append (`[a, b]` or `[b, c]` after
/// `[a, b, c]`) is refused: its "original result" would be one the store never gave. Each part
/// of a batched append is an append of its own. Every backend decides retries through this
/// one rule.
///
/// With [`AppendSpan::Unknown`] (events recorded before the store kept append boundaries) the
/// length cannot be checked, and the rule is the lenient one of [`resolve_retry`].
pub fn resolve_append_retry(
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[EventData],
    recorded: &[Option<&RecordedEvent>],
    first: AppendSpan,
) -> Result<Option<AppendResult>, AppendError> {
    let Some(&start) = recorded.iter().flatten().next() else {
        return Ok(None);
    };
    // Names a recorded event: one of the ids, with the place it is recorded at.
    let reused = |at: &RecordedEvent| AppendError::EventIdReused {
        stream: stream.clone(),
        event_id: at.event_id(),
        recorded_stream: at.stream.clone(),
        recorded_version: at.version,
    };
    let from = start.version;
    for (i, (event, found)) in events.iter().zip(recorded).enumerate() {
        let Some(found) = found else {
            return Err(reused(start));
        };
        let same_place = &found.stream == stream && found.version.get() == from.get() + i as u64;
        if !same_place || &found.data != event {
            return Err(reused(found));
        }
    }
    if recorded.len() != events.len() || !expected.accepts_place(from) {
        return Err(reused(start));
    }
    let whole = match first {
        AppendSpan::First { len } => len == events.len() as u64,
        AppendSpan::Later => false,
        AppendSpan::Unknown => true,
    };
    if !whole {
        return Err(reused(start));
    }
    let positions = recorded.iter().flatten().map(|e| e.position).collect();
    let version = Version::new(from.get() + events.len() as u64 - 1);
    Ok(Some(AppendResult { version, positions }))
}

/// The retry rule for events whose append boundaries are not known
/// ([`AppendSpan::Unknown`]): [`resolve_append_retry`] without the length check.
///
/// Returns `Ok(None)` when none of the ids is stored, `Ok(Some(result))` when all of them are
/// stored, with the same content, as one consecutive run of `stream` at a place `expected`
/// allows, and [`AppendError::EventIdReused`] otherwise. Such a run may be a part of an earlier
/// append, answered with a result that append never had: stores that keep append boundaries
/// use [`resolve_append_retry`], and this rule remains for events recorded before they did.
pub fn resolve_retry(
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[EventData],
    recorded: &[Option<&RecordedEvent>],
) -> Result<Option<AppendResult>, AppendError> {
    resolve_append_retry(stream, expected, events, recorded, AppendSpan::Unknown)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;
    use crate::event::{Actor, EventId, EventType, Metadata};
    use crate::stream::Position;

    fn event(n: u128) -> EventData {
        let meta = Metadata::new(
            EventId::from_uuid(uuid::Uuid::from_u128(n)).unwrap(),
            Actor::new("tester").unwrap(),
            chrono::DateTime::UNIX_EPOCH,
        );
        EventData::new(EventType::new("t").unwrap(), 1, serde_json::json!({}), meta).unwrap()
    }

    /// `[a, b, c]` recorded as versions 1 to 3 of `s`, with their spans.
    fn recorded(s: &StreamId) -> Vec<(RecordedEvent, AppendSpan)> {
        let mut previous = None;
        (0..3)
            .map(|i| {
                let e = RecordedEvent::record(
                    s.clone(),
                    Version::new(i as u64 + 1),
                    Position::from_sequence(i as u64 + 1),
                    event(i as u128 + 1),
                    chrono::DateTime::UNIX_EPOCH,
                    previous,
                );
                previous = Some(e.hash);
                (e, AppendSpan::of(i, 3))
            })
            .collect()
    }

    /// Resolves a retry of the events numbered `ids` against `[a, b, c]`.
    fn retry(ids: &[u128], known: bool) -> Result<Option<AppendResult>, AppendError> {
        let s: StreamId = "test-s".parse().unwrap();
        let log = recorded(&s);
        let events: Vec<EventData> = ids.iter().map(|&n| event(n)).collect();
        let found: Vec<Option<&(RecordedEvent, AppendSpan)>> = events
            .iter()
            .map(|e| log.iter().find(|(r, _)| r.event_id() == e.event_id()))
            .collect();
        let first = match found.first() {
            Some(Some((_, span))) if known => *span,
            _ => AppendSpan::Unknown,
        };
        let refs: Vec<Option<&RecordedEvent>> = found.iter().map(|f| f.map(|(r, _)| r)).collect();
        resolve_append_retry(&s, ExpectedVersion::Any, &events, &refs, first)
    }

    fn refused_naming(result: Result<Option<AppendResult>, AppendError>, id: u128) {
        match result {
            Err(AppendError::EventIdReused { event_id, .. }) => {
                assert_eq!(event_id.as_uuid(), uuid::Uuid::from_u128(id));
            }
            other => panic!("expected EventIdReused naming {id}, got {other:?}"),
        }
    }

    #[test]
    fn only_a_whole_append_is_a_retry() {
        let whole = retry(&[1, 2, 3], true).unwrap().expect("a retry");
        assert_eq!(whole.version, Version::new(3));
        assert_eq!(whole.positions.len(), 3);
        refused_naming(retry(&[1, 2], true), 1);
        refused_naming(retry(&[2, 3], true), 2);
        refused_naming(retry(&[2], true), 2);
        refused_naming(retry(&[1, 2, 3, 4], true), 1);
        assert_eq!(retry(&[4, 5], true).unwrap(), None, "new ids");
    }

    #[test]
    fn unknown_boundaries_keep_the_lenient_rule() {
        let part = retry(&[1, 2], false).unwrap().expect("lenient");
        assert_eq!(part.version, Version::new(2));
        assert!(retry(&[2, 3], false).unwrap().is_some());
        refused_naming(retry(&[1, 2, 3, 4], false), 1);
        refused_naming(retry(&[1, 3], false), 3);
    }

    #[test]
    fn spans_round_trip_through_their_count() {
        for span in [
            AppendSpan::First { len: 1 },
            AppendSpan::First { len: 7 },
            AppendSpan::Later,
            AppendSpan::Unknown,
        ] {
            assert_eq!(AppendSpan::from_count(span.count()), span);
        }
        assert_eq!(AppendSpan::of(0, 2), AppendSpan::First { len: 2 });
        assert_eq!(AppendSpan::of(1, 2), AppendSpan::Later);
    }
}
