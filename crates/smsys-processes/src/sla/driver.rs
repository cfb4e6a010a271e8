//! The async driver that follows the store and fires due timers, exactly once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures::{FutureExt, StreamExt};
use smsys_core::records::{CommonEvent, RecordEvent, RecordIndexStore, RecordQuery, RecordType};
use smsys_core::{
    AppendError, Category, EventId, EventStore, ExpectedVersion, LogFilter, Position, ReadFailure,
    StoreError, StreamId, Version,
};

use super::engine::{History, SlaEngine};
use super::fire::due_events;
use super::scheduler::SlaScheduler;
use super::timer::Timer;
use crate::clock::Clock;

/// Why the driver stopped or a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SlaDriverError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Appending an SLA event failed.
    #[error("recording sla events on {stream}: {source}")]
    Append {
        /// The record.
        stream: StreamId,
        /// What failed.
        #[source]
        source: AppendError,
    },
    /// A record event could not be read.
    #[error("event {version} of {stream}: {source}")]
    Decode {
        /// The record.
        stream: StreamId,
        /// The event.
        version: Version,
        /// What failed.
        #[source]
        source: ReadFailure,
    },
    /// The stream is not of a record type the engine follows.
    #[error("{0} is not a stream of a record type the sla engine follows")]
    NotARecord(StreamId),
}

/// Reads a record's history from the store: its shared events, through the upcasters of its
/// category (the one decode path of record events), and the version read.
pub async fn load_history(
    store: &dyn EventStore,
    engine: &SlaEngine,
    stream: &StreamId,
) -> Result<(RecordType, History, Option<Version>), SlaDriverError> {
    let read = read_record(store, engine, stream).await?;
    Ok((read.record_type, read.history, read.version))
}

/// A record as the driver reads it.
struct ReadRecord {
    record_type: RecordType,
    history: History,
    version: Option<Version>,
    /// The ids of the SLA events recorded in the stream.
    sla_ids: HashSet<EventId>,
}

async fn read_record(
    store: &dyn EventStore,
    engine: &SlaEngine,
    stream: &StreamId,
) -> Result<ReadRecord, SlaDriverError> {
    let followed = engine
        .record_types
        .get(stream.category_str())
        .ok_or_else(|| SlaDriverError::NotARecord(stream.clone()))?;
    let record_type = followed.record_type.clone();
    let upcasters = &followed.upcasters;
    let mut history = Vec::new();
    let mut sla_ids = HashSet::new();
    let mut last = None;
    let mut events = store.read_stream(stream, Version::FIRST);
    while let Some(recorded) = events.next().await {
        let recorded = recorded?;
        let at = recorded.data.metadata().occurred_at();
        let version = recorded.version;
        let id = recorded.event_id();
        last = Some(version);
        let (event_type, schema_version, payload, _) = recorded.data.into_parts();
        let event = CommonEvent::read(
            upcasters,
            followed.own,
            &event_type,
            schema_version,
            payload,
        )
        .map_err(|source| SlaDriverError::Decode {
            stream: stream.clone(),
            version,
            source,
        })?;
        if let Some(CommonEvent::Record(
            RecordEvent::SlaThresholdReached { .. } | RecordEvent::SlaBreached { .. },
        )) = &event
        {
            sla_ids.insert(id);
        }
        history.extend(event.map(|e| (at, e)));
    }
    Ok(ReadRecord {
        record_type,
        history,
        version: last,
        sla_ids,
    })
}

/// How far [`record_sla_events`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Events newly written (an event another node had recorded already counts 0; one that
    /// another node records at the very same place between this call's version check and its
    /// append comes back as a retry and counts on both nodes: the store cannot tell them apart).
    pub new: usize,
    /// Whether every event was recorded; `false` when the record changed since its history was
    /// read, and the events must be derived again from the new history.
    pub complete: bool,
}

/// Appends SLA events derived by [`due_events`] from a history read at version `read`, one at a
/// time, each expecting the record exactly as it was read plus the events before it.
///
/// Expecting the exact version is what keeps a breach from being recorded after a command that
/// prevented it (a resolution committed between the read and the append): the append conflicts,
/// and the caller derives again. Appending one event at a time makes each idempotent alone: an
/// event another node recorded at the same place comes back as a retry.
///
/// An event whose derived id is already recorded anywhere else in the same stream (another
/// node recorded it after a command committed in between, so at another place, or recorded it
/// with other content) is done too: the store refuses the id as reused, and this returns
/// `complete: false` so that the caller derives again from the history that now holds it
/// (where it counts as recorded), instead of failing. Only an id recorded in *another* stream
/// is an error.
pub async fn record_sla_events(
    store: &dyn EventStore,
    stream: &StreamId,
    read: Option<Version>,
    events: Vec<smsys_core::EventData>,
) -> Result<Recorded, SlaDriverError> {
    let mut expected = read;
    let mut new = 0;
    for event in events {
        let current = store.stream_version(stream).await?;
        let expectation = expected.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        match store.append(stream, expectation, vec![event]).await {
            Ok(result) => {
                if current == expected {
                    new += 1;
                }
                expected = Some(result.version);
            }
            Err(AppendError::Conflict { .. }) => {
                return Ok(Recorded {
                    new,
                    complete: false,
                });
            }
            Err(AppendError::EventIdReused {
                recorded_stream, ..
            }) if recorded_stream == *stream => {
                return Ok(Recorded {
                    new,
                    complete: false,
                });
            }
            Err(source) => {
                return Err(SlaDriverError::Append {
                    stream: stream.clone(),
                    source,
                });
            }
        }
    }
    Ok(Recorded {
        new,
        complete: true,
    })
}

/// How many times a record's SLA events are derived again after it changed under the driver.
const REDERIVE: usize = 8;

/// Key of one timer cycle in the scheduler.
pub type TimerKey = (StreamId, String, u32);

/// What one firing pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FireReport {
    /// Records looked at.
    pub records: usize,
    /// Threshold and breach events appended (a retry of an already recorded one counts 0).
    pub appended: usize,
}

/// Keeps the scheduler projection of every timer of the records in a store and appends
/// threshold and breach events as they fall due, exactly once.
///
/// # What it records, and when
///
/// Each threshold event records the instant the threshold was reached, as the record's
/// history gives it ([`Timer::reached_at`]: each instant judged on the timer as it stood then,
/// so a later priority change does not move or erase what was reached before it), and its id
/// is derived from (record, timer, cycle, threshold). A driver that checks on time, late,
/// twice, every minute, after a restart, or beside another driver on another node therefore
/// records the same events, once: an event whose id is already in the stream, wherever
/// another node put it, counts as done, and a record that changed under an append is derived
/// again ([`record_sla_events`]).
///
/// # The settle delay: commands stamped before they commit
///
/// A command is stamped with the instant it was decided ([`smsys_core::Context`]), and
/// commits a little later. A resolution stamped 09:05:24 that commits after a breach due at
/// 09:05:25 was recorded would come too late, although it happened in time. The driver
/// therefore records a threshold reached at `t` only once its clock reads `t + settle`
/// ([`SlaDriver::DEFAULT_SETTLE`], [`SlaDriver::with_settle`]): a command stamped before `t`
/// that commits within the delay is in the history when the threshold is judged, and prevents
/// it if it should. The rule, in full:
///
/// - a command counts for a threshold if it is in the stream before the threshold event (it
///   committed before the driver recorded it), whatever its stamp says;
/// - a threshold event once recorded stands: a command committed later, even one stamped
///   earlier, does not retract it (there is no correction event; a recorded breach stays a
///   breach in reports, while the timer's own instants follow the history);
/// - so, as long as every command commits within `settle` of its stamp, on-time, late,
///   repeated and restarted checks record exactly the same events; a command that commits
///   later than that may find the breach recorded by an on-time driver and not by a late one.
///
/// The delay postpones every threshold event by `settle` (never its recorded instant). Set it
/// above the longest time a command may take from its stamp to its commit (retries included).
pub struct SlaDriver {
    store: Arc<dyn EventStore>,
    engine: Arc<SlaEngine>,
    scheduler: SlaScheduler<TimerKey>,
    keys: HashMap<StreamId, Vec<TimerKey>>,
    settle: TimeDelta,
    index: Option<Arc<dyn RecordIndexStore>>,
}

impl SlaDriver {
    /// The settle delay of a new driver: 5 seconds.
    pub const DEFAULT_SETTLE: TimeDelta = TimeDelta::seconds(5);

    /// A driver over `store`, with the default settle delay.
    pub fn new(store: Arc<dyn EventStore>, engine: Arc<SlaEngine>) -> Self {
        Self {
            store,
            engine,
            scheduler: SlaScheduler::new(),
            keys: HashMap::new(),
            settle: Self::DEFAULT_SETTLE,
            index: None,
        }
    }

    /// Starts from the record index instead of the whole log: [`SlaDriver::run`] seeds the
    /// scheduler from the timers of the open records the index holds, then follows the log
    /// from the index's checkpoint. Keep the index caught up (a
    /// [`RecordIndexer`](crate::index::RecordIndexer) running beside the driver).
    pub fn with_index(mut self, index: Arc<dyn RecordIndexStore>) -> Self {
        self.index = Some(index);
        self
    }

    /// Seeds the scheduler from the index's open records; returns the position the index
    /// holds, after which the log must be followed.
    pub async fn seed_from_index(
        &mut self,
        index: &dyn RecordIndexStore,
    ) -> Result<Position, SlaDriverError> {
        let checkpoint = index.checkpoint().await?.unwrap_or(Position::START);
        let mut query = RecordQuery {
            limit: 1_000,
            ..RecordQuery::open()
        };
        loop {
            let page = index.query(&query).await?;
            for row in &page.rows {
                let mut keys = Vec::new();
                for t in &row.timers {
                    if let Some(due) = t.next_threshold {
                        let key = (row.stream.clone(), t.timer.clone(), t.cycle);
                        self.scheduler.set(key.clone(), Some(due));
                        keys.push(key);
                    }
                }
                self.keys.insert(row.stream.clone(), keys);
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => return Ok(checkpoint),
            }
        }
    }

    /// With another settle delay (negative delays count as zero): a threshold reached at `t`
    /// is recorded once the clock reads `t + settle`.
    pub fn with_settle(mut self, settle: TimeDelta) -> Self {
        self.settle = settle.max(TimeDelta::zero());
        self
    }

    /// The settle delay.
    pub fn settle(&self) -> TimeDelta {
        self.settle
    }

    /// The scheduler projection: each timer's next threshold instant (without the settle
    /// delay; the driver fires it `settle` later).
    pub fn scheduler(&self) -> &SlaScheduler<TimerKey> {
        &self.scheduler
    }

    /// The latest threshold instant that a check at `now` records.
    fn horizon(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_sub_signed(self.settle).unwrap_or(now)
    }

    /// Re-reads one record and re-indexes its timers.
    pub async fn track(&mut self, stream: &StreamId) -> Result<Vec<Timer>, SlaDriverError> {
        let loaded = load_history(&*self.store, &self.engine, stream).await;
        // Whatever happens, the record's old timers leave the index: an unreadable record must
        // not stay due (and be retried at once, forever).
        for key in self.keys.remove(stream).unwrap_or_default() {
            self.scheduler.set(key, None);
        }
        let (record_type, history, _) = match loaded {
            Ok(loaded) => loaded,
            // One unreadable record must not stop the timers of all the others.
            Err(error @ (SlaDriverError::Decode { .. } | SlaDriverError::NotARecord(_))) => {
                tracing::warn!(%stream, %error, "record skipped by the sla driver");
                return Ok(Vec::new());
            }
            Err(other) => return Err(other),
        };
        let timers = self.engine.timers(&record_type, &history);
        let mut keys = Vec::new();
        for t in &timers {
            let due = self.engine.calendar_for(t).and_then(|cal| t.next_due(cal));
            let key = (stream.clone(), t.timer().to_owned(), t.cycle());
            self.scheduler.set(key.clone(), due);
            if due.is_some() {
                keys.push(key);
            }
        }
        self.keys.insert(stream.clone(), keys);
        Ok(timers)
    }

    /// Appends the events of every threshold reached at least the settle delay before `now`.
    /// Safe to run late, twice, or on several nodes at once: event ids are derived, so the
    /// store keeps one copy.
    pub async fn fire_due(&mut self, now: DateTime<Utc>) -> Result<FireReport, SlaDriverError> {
        let horizon = self.horizon(now);
        let due: BTreeSet<StreamId> = self
            .scheduler
            .due(horizon)
            .map(|(k, _)| k.0.clone())
            .collect();
        let mut report = FireReport::default();
        for stream in due {
            report.records += 1;
            match self.fire_record(&stream, now).await {
                Ok(n) => report.appended += n,
                Err(error @ SlaDriverError::Decode { .. }) => {
                    tracing::warn!(%stream, %error, "record skipped by the sla driver");
                }
                Err(other) => return Err(other),
            }
            self.track(&stream).await?;
        }
        Ok(report)
    }

    /// Appends the events of one record's thresholds reached at least the settle delay before
    /// `now`; returns how many were new. Events already in the stream (recorded by another
    /// node, wherever) are skipped, and the events are derived again whenever the record
    /// changed under an append.
    pub async fn fire_record(
        &self,
        stream: &StreamId,
        now: DateTime<Utc>,
    ) -> Result<usize, SlaDriverError> {
        let horizon = self.horizon(now);
        let mut new = 0;
        for _ in 0..REDERIVE {
            let read = read_record(&*self.store, &self.engine, stream).await?;
            let timers = self.engine.timers(&read.record_type, &read.history);
            let mut events = due_events(stream, &timers, |t| self.engine.calendar_for(t), horizon);
            events.retain(|e| !read.sla_ids.contains(&e.event_id()));
            if events.is_empty() {
                return Ok(new);
            }
            let recorded = record_sla_events(&*self.store, stream, read.version, events).await?;
            new += recorded.new;
            if recorded.complete {
                return Ok(new);
            }
        }
        tracing::warn!(%stream, "record kept changing; its sla events wait for the next pass");
        Ok(new)
    }

    /// Reads the log from its start to index every record's timers, then follows it live,
    /// keeps the scheduler current and fires what falls due (the settle delay after each
    /// threshold instant), until `shutdown` completes.
    /// Returns the last position seen.
    pub async fn run(
        &mut self,
        clock: &dyn Clock,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<Position, SlaDriverError> {
        // The scheduler is a projection. With a record index it is seeded from the index's open
        // records and the log is followed from the index's checkpoint; without one it is
        // rebuilt from the whole log, so a restarted driver knows the timers of quiet records.
        let after = match self.index.clone() {
            Some(index) => self.seed_from_index(&*index).await?,
            None => Position::START,
        };
        let store = Arc::clone(&self.store);
        let categories = self
            .engine
            .categories()
            .filter_map(|c| Category::new(c).ok())
            .fold(LogFilter::all(), LogFilter::category);
        let mut events = store.subscribe(after, categories);
        let mut checkpoint = after;
        let mut shutdown = std::pin::pin!(shutdown.fuse());
        loop {
            let wake = match self.scheduler.next_instant() {
                Some(at) => clock
                    .sleep_until(at.checked_add_signed(self.settle).unwrap_or(at))
                    .boxed(),
                None => futures::future::pending().boxed(),
            };
            futures::select! {
                () = shutdown => return Ok(checkpoint),
                () = wake.fuse() => {
                    let fired = self.fire_due(clock.now()).await?;
                    tracing::debug!(?fired, "sla timers fired");
                }
                next = events.next().fuse() => {
                    let Some(first) = next else { return Ok(checkpoint) };
                    // Take whatever else is ready, and re-read each record once.
                    let mut dirty = BTreeSet::new();
                    let mut batch = vec![first];
                    while let Some(Some(more)) = events.next().now_or_never() {
                        batch.push(more);
                        if batch.len() >= 1024 {
                            break;
                        }
                    }
                    for event in batch {
                        let event = event?;
                        checkpoint = event.position;
                        dirty.insert(event.stream);
                    }
                    for stream in dirty {
                        self.track(&stream).await?;
                    }
                    self.fire_due(clock.now()).await?;
                }
            }
        }
    }
}
