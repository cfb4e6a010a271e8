//! Seals: what the per-stream hash chain cannot see. A deleted whole stream, a truncated log
//! tail, events moved to other positions or swapped across streams all leave every stream's
//! chain intact; a seal records, at chosen moments, enough about the whole log to show them.
//!
//! A seal is an event (type [`SEAL_EVENT_TYPE`]) in the reserved stream [`seal_stream`]
//! (category [`SEAL_CATEGORY`]; no other stream may use it), so seals are chained to each
//! other by that stream's own hash chain. Its payload ([`Seal`]) says:
//!
//! | field | meaning |
//! |---|---|
//! | `covers` | the log position it covers: every other event at or before it is covered |
//! | `events` | how many events (seals excluded) the log holds up to `covers` |
//! | `streams` | how many streams (the seal stream excluded) have an event up to `covers` |
//! | `log` | the log digest at `covers` |
//! | `heads` | the heads digest at `covers` |
//!
//! Both digests are SHA-256, written as 64 lowercase hex digits, computed over covered events
//! (seals excluded) in log order, so an auditor can recompute them:
//! - **log digest**: starts as 32 zero bytes; for each event,
//!   `log = SHA-256(log || commit || sequence || hash)`, with the position's two parts as
//!   8-byte big-endian integers and the event's 32-byte hash. It fixes which event sits at
//!   which position.
//! - **heads digest**: starts as 32 zero bytes; at each seal,
//!   `heads = SHA-256(heads || for each stream whose last event changed since the previous
//!   seal, in the byte order of its name: name length (4-byte big-endian) || name || version
//!   (8-byte big-endian) || hash of its last event)`. It fixes every stream's head, and so
//!   every stream's whole chain.
//!
//! The latest seal's event hash is what to hand to an auditor or a timestamping service:
//! [`verify_against`] later proves that the log still holds that seal, that it checks out and
//! that the log extends it. What a seal cannot show: changes after the latest seal (seal
//! often, and publish the hash), and a rewrite of the whole log, seals included, by someone
//! who can recompute every hash (publish the hash outside the operator's reach).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chain::{ChainVerifier, EventHash, UndecodableRow, VerifyReport};
use crate::event::{Actor, EventType, RecordedEvent};
use crate::store::{AppendError, EventStore, LogFilter, StoreError};
use crate::stream::{Position, StreamId, Version};

/// The reserved category of the seal stream.
pub const SEAL_CATEGORY: &str = "smsys_seal";

/// The type of seal events.
pub const SEAL_EVENT_TYPE: &str = "smsys_seal.sealed";

/// The stream seals are recorded in: `smsys_seal-log`.
#[allow(clippy::expect_used, reason = "a constant, valid stream id")]
pub fn seal_stream() -> StreamId {
    "smsys_seal-log".parse().expect("a valid stream id")
}

#[allow(clippy::expect_used, reason = "constant, valid names")]
fn seal_names() -> (EventType, Actor) {
    (
        EventType::new(SEAL_EVENT_TYPE).expect("a valid event type"),
        Actor::new("system:sealer").expect("a valid actor"),
    )
}

/// What a seal says about the log up to a position (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// The position covered: every event at or before it.
    pub covers: Position,
    /// Events up to `covers`, seals excluded.
    pub events: u64,
    /// Streams with an event up to `covers`, the seal stream excluded.
    pub streams: u64,
    /// The log digest at `covers`.
    pub log: EventHash,
    /// The heads digest at `covers`.
    pub heads: EventHash,
}

/// A seal as recorded: its content and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSeal {
    /// What it says.
    pub seal: Seal,
    /// Its version in the seal stream (the first seal is 1).
    pub version: Version,
    /// Its own position in the log.
    pub position: Position,
    /// Its event hash: what to publish.
    pub hash: EventHash,
}

/// A seal that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealFailure {
    /// The seal's version in the seal stream.
    pub version: Version,
    /// The position it covers (`None` when its payload is unreadable).
    pub covers: Option<Position>,
    /// What differs, expected (the seal's word) against found (the log's).
    pub what: String,
}

impl fmt::Display for SealFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.covers {
            Some(covers) => write!(
                f,
                "seal {} (covering position {covers}): {}",
                self.version, self.what
            ),
            None => write!(f, "seal {}: {}", self.version, self.what),
        }
    }
}

/// Why sealing failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The log does not hold up to its existing seals or chain: no new seal goes on top.
    #[error(
        "the log does not verify, so it is not sealed: {0} (verify_sealed lists every problem; \
         a seal goes on top of a sound log only)"
    )]
    Broken(String),
    /// Another sealer recorded a seal meanwhile; seal again.
    #[error("another seal was recorded meanwhile; call seal again")]
    Raced,
    /// The append of the seal failed.
    #[error(transparent)]
    Append(AppendError),
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn zero() -> EventHash {
    EventHash::from_bytes([0; 32])
}

fn is_seal(event: &RecordedEvent) -> bool {
    event.stream.category_str() == SEAL_CATEGORY
}

/// The digests of a log walked in order, seals excluded.
#[derive(Debug, Default)]
struct Digests {
    events: u64,
    heads_seen: HashSet<StreamId>,
    changed: BTreeMap<StreamId, (Version, EventHash)>,
    log: Option<EventHash>,
    heads: Option<EventHash>,
    last: Option<Position>,
}

impl Digests {
    fn add(&mut self, event: &RecordedEvent) {
        let mut hasher = Sha256::new();
        hasher.update(self.log.unwrap_or_else(zero).as_bytes());
        hasher.update(event.position.commit().to_be_bytes());
        hasher.update(event.position.sequence().to_be_bytes());
        hasher.update(event.hash.as_bytes());
        self.log = Some(EventHash::from_bytes(hasher.finalize().into()));
        self.events += 1;
        if !self.heads_seen.contains(&event.stream) {
            self.heads_seen.insert(event.stream.clone());
        }
        self.changed
            .insert(event.stream.clone(), (event.version, event.hash));
        self.last = Some(event.position);
    }

    /// The seal of what was added so far, covering `covers`; starts the next heads round.
    fn seal(&mut self, covers: Position) -> Seal {
        let mut hasher = Sha256::new();
        hasher.update(self.heads.unwrap_or_else(zero).as_bytes());
        for (stream, (version, hash)) in std::mem::take(&mut self.changed) {
            let name = stream.as_str().as_bytes();
            hasher.update(u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
            hasher.update(name);
            hasher.update(version.get().to_be_bytes());
            hasher.update(hash.as_bytes());
        }
        let heads = EventHash::from_bytes(hasher.finalize().into());
        self.heads = Some(heads);
        Seal {
            covers,
            events: self.events,
            streams: self.heads_seen.len() as u64,
            log: self.log.unwrap_or_else(zero),
            heads,
        }
    }
}

fn decode_seal(event: &RecordedEvent) -> Result<Seal, String> {
    if event.event_type().as_str() != SEAL_EVENT_TYPE {
        return Err(format!(
            "event type {} in the seal stream",
            event.event_type()
        ));
    }
    serde_json::from_value(event.data.payload().clone())
        .map_err(|e| format!("unreadable seal payload: {e}"))
}

/// Compares what a seal says with what the log holds, naming every difference.
fn compare(seal: &Seal, found: &Seal) -> Option<String> {
    let mut diffs = Vec::new();
    if seal.events != found.events {
        diffs.push(format!(
            "{} events expected, {} found",
            seal.events, found.events
        ));
    }
    if seal.streams != found.streams {
        diffs.push(format!(
            "{} streams expected, {} found",
            seal.streams, found.streams
        ));
    }
    if seal.log != found.log {
        diffs.push(format!(
            "log digest {} expected, {} found (an event was removed, added, changed or moved)",
            seal.log, found.log
        ));
    }
    if seal.heads != found.heads {
        diffs.push(format!(
            "heads digest {} expected, {} found (a stream's last event differs)",
            seal.heads, found.heads
        ));
    }
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

/// A walk of the log that checks every seal at the position it covers.
struct Walk {
    digests: Digests,
    /// Seals not yet reached, oldest first, with their version.
    pending: VecDeque<(Version, Seal)>,
    failures: Vec<SealFailure>,
    /// The last seal's covered position, so a seal that does not move forward is named.
    last_covers: Option<Position>,
}

impl Walk {
    fn new(seals: Vec<(Version, Result<Seal, String>)>) -> Self {
        let mut failures = Vec::new();
        let mut pending = VecDeque::new();
        for (version, seal) in seals {
            match seal {
                Ok(seal) => pending.push_back((version, seal)),
                Err(what) => failures.push(SealFailure {
                    version,
                    covers: None,
                    what,
                }),
            }
        }
        Self {
            digests: Digests::default(),
            pending,
            failures,
            last_covers: None,
        }
    }

    /// Checks the seals that cover positions before `next` (the whole log when `None`).
    fn reach(&mut self, next: Option<Position>) {
        while let Some((version, seal)) = self.pending.front() {
            if next.is_some_and(|next| next <= seal.covers) {
                break;
            }
            let (version, seal) = (*version, seal.clone());
            self.pending.pop_front();
            if self.last_covers.is_some_and(|last| seal.covers <= last) {
                self.failures.push(SealFailure {
                    version,
                    covers: Some(seal.covers),
                    what: "covers no position after the seal before it".into(),
                });
                continue;
            }
            self.last_covers = Some(seal.covers);
            let found = self.digests.seal(seal.covers);
            // Each later seal is checked against what this one states, so a difference is
            // named at the first seal it reaches, not at every seal after it.
            self.digests.log = Some(seal.log);
            self.digests.heads = Some(seal.heads);
            let mut what = compare(&seal, &found);
            if next.is_none() && self.digests.last.is_none_or(|last| last < seal.covers) {
                let end = self
                    .digests
                    .last
                    .map_or_else(|| "before any event".to_owned(), |p| format!("at {p}"));
                what = Some(format!(
                    "the log ends {end}, before the position the seal covers{}",
                    what.map_or_else(String::new, |w| format!("; {w}"))
                ));
            }
            if let Some(what) = what {
                self.failures.push(SealFailure {
                    version,
                    covers: Some(seal.covers),
                    what,
                });
            }
        }
    }

    fn add(&mut self, event: &RecordedEvent) {
        self.reach(Some(event.position));
        if !is_seal(event) {
            self.digests.add(event);
        }
    }
}

async fn recorded_seals(
    store: &dyn EventStore,
) -> Result<(Vec<(Version, Result<Seal, String>)>, Option<RecordedSeal>), StoreError> {
    let mut seals = Vec::new();
    let mut latest = None;
    let mut events = store.read_stream(&seal_stream(), Version::FIRST);
    while let Some(event) = events.next().await {
        let event = event?;
        let seal = decode_seal(&event);
        if let Ok(seal) = &seal {
            latest = Some(RecordedSeal {
                seal: seal.clone(),
                version: event.version,
                position: event.position,
                hash: event.hash,
            });
        }
        seals.push((event.version, seal));
    }
    Ok((seals, latest))
}

/// Walks the whole log: every stream's hash chain (as [`crate::verify_events`], but going on
/// after a break: each event is judged on its own) and every seal, each at the position it
/// covers. Reports every event and every seal that does not hold (`events_checked` counts
/// the events that do); the report's `latest_seal` is the seal to publish.
///
/// ```
/// # use std::sync::Arc;
/// # use smsys_core::seal::{Sealer, verify_sealed};
/// # async fn demo(store: Arc<dyn smsys_core::EventStore>) -> Result<(), Box<dyn std::error::Error>> {
/// let sealed = Sealer::new(Arc::clone(&store)).seal().await?;
/// let report = verify_sealed(&*store).await?;
/// assert!(report.is_intact());
/// # Ok(()) }
/// ```
pub async fn verify_sealed(store: &dyn EventStore) -> Result<VerifyReport, StoreError> {
    Ok(walk_log(store, &[]).await?.report)
}

/// Like [`verify_sealed`], for a store that lists the events it cannot decode (`undecodable`,
/// in log order): where reading the log fails with [`StoreError::Corrupt`], the walk goes on
/// after the next listed event instead of failing, and the report lists them all
/// ([`VerifyReport::undecodable`]). The stream of a skipped event then breaks at its next
/// event, and a seal covering it does not hold. A seal event among them leaves the seals
/// unread: that is a seal failure. Any other failure still ends the walk.
pub async fn verify_sealed_past(
    store: &dyn EventStore,
    undecodable: Vec<UndecodableRow>,
) -> Result<VerifyReport, StoreError> {
    let mut report = walk_log(store, &undecodable).await?.report;
    report.undecodable = undecodable;
    Ok(report)
}

/// Like [`verify_sealed`], and also proves that the log still holds the seal whose event hash
/// is `published` (handed to an auditor earlier), so the log extends what was published.
pub async fn verify_against(
    store: &dyn EventStore,
    published: EventHash,
) -> Result<VerifyReport, StoreError> {
    let Walked {
        mut report,
        seal_hashes,
        ..
    } = walk_log(store, &[]).await?;
    if !seal_hashes.contains(&published) {
        report.seal_failures.push(SealFailure {
            version: Version::FIRST,
            covers: None,
            what: format!(
                "no seal has the published hash {published}: the log does not extend it \
                 (it was cut before that seal, or rewritten)"
            ),
        });
    }
    Ok(report)
}

/// A whole log walked: the report, the digests at its end, where it ended, and the hash of
/// every seal event met on the way.
struct Walked {
    report: VerifyReport,
    digests: Digests,
    after: Position,
    seal_hashes: HashSet<EventHash>,
}

/// Walks the whole log once: every stream's chain (going on after a break) and every seal at
/// the position it covers. What [`verify_sealed`], [`verify_against`] and a new [`Sealer`]
/// share. The walk resumes after each event of `skip` (see [`verify_sealed_past`]).
async fn walk_log(store: &dyn EventStore, skip: &[UndecodableRow]) -> Result<Walked, StoreError> {
    let mut unread_seals = None;
    let (seals, latest) = match recorded_seals(store).await {
        Ok(seals) => seals,
        Err(StoreError::Corrupt { what }) if !skip.is_empty() => {
            unread_seals = Some(SealFailure {
                version: Version::FIRST,
                covers: None,
                what: format!("the seal stream does not read: {what}"),
            });
            (Vec::new(), None)
        }
        Err(other) => return Err(other),
    };
    let count = seals.len() as u64;
    let mut walk = Walk::new(seals);
    let mut chain = ChainVerifier::new();
    let mut breaks = Vec::new();
    let mut seal_hashes = HashSet::new();
    let mut after = Position::START;
    let mut read = Position::START;
    let mut log = store.read_all(Position::START, LogFilter::all());
    while let Some(event) = log.next().await {
        let event = match event {
            Ok(event) => event,
            Err(StoreError::Corrupt { what }) => {
                // The first listed event after the last one read is the one that failed.
                let Some(row) = skip.iter().find(|row| row.position > read) else {
                    return Err(StoreError::Corrupt { what });
                };
                tracing::warn!(%row, "event does not decode");
                read = row.position;
                drop(log);
                log = store.read_all(read, LogFilter::all());
                continue;
            }
            Err(other) => return Err(other),
        };
        read = event.position;
        if let Err(broken) = chain.check(&event) {
            tracing::warn!(%broken, "hash chain does not hold");
            breaks.push(*broken);
            chain.resume_after(&event);
        }
        if is_seal(&event) {
            seal_hashes.insert(event.hash);
        }
        walk.add(&event);
        after = event.position;
    }
    drop(log);
    walk.reach(None);
    walk.failures.extend(unread_seals);
    for failure in &walk.failures {
        tracing::warn!(%failure, "seal does not hold");
    }
    Ok(Walked {
        report: VerifyReport {
            events_checked: chain.events_checked(),
            streams: chain.streams_seen(),
            first_break: breaks.first().cloned(),
            breaks,
            seals: count,
            latest_seal: latest,
            seal_failures: walk.failures,
            undecodable: Vec::new(),
        },
        digests: walk.digests,
        after,
        seal_hashes,
    })
}

mod sealer;

pub use sealer::Sealer;
