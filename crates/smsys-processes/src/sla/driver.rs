//! The SLA engine (definitions and calendars) and the async driver that fires due timers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use smsys_core::records::{
    CommonEvent, Incident, OwnEvents, RecordKind, RecordType, ServiceRequest,
};
use smsys_core::{
    AppendError, Category, EventStore, ExpectedVersion, LogFilter, Position, ReadFailure,
    StoreError, StreamId, Upcasters, Version,
};

use super::definition::{Sla, SlaError, SlaRegistry};
use super::fire::due_events;
use super::report::{Period, SlaReport};
use super::scheduler::SlaScheduler;
use super::timer::{Binding, Timer, derive_timers};
use crate::calendar::BusinessCalendar;
use crate::clock::Clock;

/// A record's history as timers read it: `(occurred at, event)` in stream order.
pub type History = Vec<(DateTime<Utc>, CommonEvent)>;

/// A record type the engine follows: its name, its own event names (which timers skip) and
/// its upcasters.
#[derive(Clone, Debug)]
struct Followed {
    record_type: RecordType,
    own: &'static [&'static str],
    upcasters: Upcasters,
}

/// SLA definitions, the calendars they name, and the record types whose streams they follow.
#[derive(Clone)]
pub struct SlaEngine {
    slas: SlaRegistry,
    calendars: BTreeMap<String, BusinessCalendar>,
    record_types: BTreeMap<String, Followed>,
}

impl Default for SlaEngine {
    /// No definitions; follows incidents and service requests.
    fn default() -> Self {
        Self {
            slas: SlaRegistry::default(),
            calendars: BTreeMap::new(),
            record_types: BTreeMap::new(),
        }
        .with_record_type::<Incident>()
        .with_record_type::<ServiceRequest>()
    }
}

impl std::fmt::Debug for SlaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlaEngine")
            .field("slas", &self.slas)
            .field("calendars", &self.calendars.keys().collect::<Vec<_>>())
            .field("record_types", &self.record_types)
            .finish()
    }
}

const OFFICE_CALENDAR: &str = include_str!("../../sla/office.calendar.toml");
const ALWAYS_CALENDAR: &str = include_str!("../../sla/always.calendar.toml");
const DESK_SLAS: &str = include_str!("../../sla/desk.sla.toml");

/// A file of SLA definitions: `[[sla]]` tables.
#[derive(serde::Deserialize)]
struct SlaFile {
    sla: Vec<super::definition::SlaDefinition>,
}

impl SlaEngine {
    /// An engine with no definitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine from TOML texts: calendars (one per text), then a file of `[[sla]]` tables.
    pub fn from_toml(calendars: &[&str], slas: &str) -> Result<Self, SlaError> {
        let mut engine = calendars.iter().try_fold(Self::new(), |engine, text| {
            Ok::<_, SlaError>(engine.with_calendar(BusinessCalendar::from_toml(text)?))
        })?;
        let file: SlaFile = toml::from_str(slas).map_err(|e| SlaError::Parse(e.to_string()))?;
        for definition in file.sla {
            engine = engine.with_sla(Sla::new(definition)?)?;
        }
        Ok(engine)
    }

    /// The reference desk SLAs (`crates/smsys-processes/sla/`): response and resolution
    /// timers for incidents and service requests on the office calendar (Mon-Fri, Berlin,
    /// with holidays), and a 24x7 calendar for products' own definitions.
    pub fn reference() -> Self {
        Self::from_toml(&[OFFICE_CALENDAR, ALWAYS_CALENDAR], DESK_SLAS)
            .unwrap_or_else(|e| unreachable!("the shipped sla definitions are valid: {e}"))
    }

    /// Follows the streams of record type `K` too (incidents and service requests are
    /// followed by default).
    pub fn with_record_type<K: RecordKind>(mut self) -> Self {
        let followed = Followed {
            record_type: K::RECORD_TYPE,
            own: <K::Own as OwnEvents>::NAMES,
            upcasters: <K as RecordKind>::upcasters(),
        };
        self.record_types.insert(K::CATEGORY.to_owned(), followed);
        self
    }

    /// Lifts older schema versions of record type `K`'s events with `upcasters` too, beside
    /// its own: give the engine the upcasters its command handlers are given, so both read the
    /// same stream alike. Follows `K` if it did not yet.
    pub fn with_upcasters<K: RecordKind>(mut self, upcasters: Upcasters) -> Self {
        if !self.record_types.contains_key(K::CATEGORY) {
            self = self.with_record_type::<K>();
        }
        if let Some(followed) = self.record_types.get_mut(K::CATEGORY) {
            followed.upcasters = std::mem::take(&mut followed.upcasters).merge(upcasters);
        }
        self
    }

    /// The record type of `stream`, if it is one the engine follows.
    pub fn record_type_of(&self, stream: &StreamId) -> Option<&RecordType> {
        self.record_types
            .get(stream.category_str())
            .map(|f| &f.record_type)
    }

    /// The stream categories the engine follows.
    pub fn categories(&self) -> impl Iterator<Item = &str> {
        self.record_types.keys().map(String::as_str)
    }

    /// Adds a calendar, known by its name (a later one of the same name replaces it).
    pub fn with_calendar(mut self, calendar: BusinessCalendar) -> Self {
        self.calendars.insert(calendar.name().to_owned(), calendar);
        self
    }

    /// Adds an SLA version; its calendar must be known.
    pub fn with_sla(mut self, sla: Sla) -> Result<Self, SlaError> {
        if !self.calendars.contains_key(&sla.definition().calendar) {
            return Err(SlaError::UnknownCalendar {
                sla: sla.definition().name.clone(),
                calendar: sla.definition().calendar.clone(),
            });
        }
        self.slas = self.slas.with(sla)?;
        Ok(self)
    }

    /// The definitions.
    pub fn slas(&self) -> &SlaRegistry {
        &self.slas
    }

    /// The calendar a timer counts on.
    pub fn calendar_for(&self, timer: &Timer) -> Option<&BusinessCalendar> {
        let sla = self.slas.get(timer.sla())?;
        self.calendars.get(&sla.definition().calendar)
    }

    /// The record's timers under the definitions they bound to: exact, from history alone.
    pub fn timers(
        &self,
        record_type: &RecordType,
        history: &[(DateTime<Utc>, CommonEvent)],
    ) -> Vec<Timer> {
        derive_timers(record_type, history, Binding::InEffect(&self.slas))
    }

    /// The record's timers had `sla` applied instead (what-if): nothing is written.
    pub fn what_if(
        &self,
        record_type: &RecordType,
        history: &[(DateTime<Utc>, CommonEvent)],
        sla: &Sla,
    ) -> Vec<Timer> {
        derive_timers(record_type, history, Binding::Only(sla))
    }

    /// Adds a record's timers to a report.
    pub fn report_into(
        &self,
        report: &mut SlaReport,
        stream: &StreamId,
        service: &str,
        timers: &[Timer],
        now: DateTime<Utc>,
        period: Period,
    ) {
        report.add(
            stream,
            service,
            timers,
            |t| self.calendar_for(t),
            now,
            period,
        );
    }
}

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
    let followed = engine
        .record_types
        .get(stream.category_str())
        .ok_or_else(|| SlaDriverError::NotARecord(stream.clone()))?;
    let record_type = followed.record_type.clone();
    let upcasters = &followed.upcasters;
    let mut history = Vec::new();
    let mut last = None;
    let mut events = store.read_stream(stream, Version::FIRST);
    while let Some(recorded) = events.next().await {
        let recorded = recorded?;
        let at = recorded.data.metadata().occurred_at();
        let version = recorded.version;
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
        history.extend(event.map(|e| (at, e)));
    }
    Ok((record_type, history, last))
}

/// How far [`record_sla_events`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Events newly written (an event another node had recorded already counts 0).
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
pub struct SlaDriver {
    store: Arc<dyn EventStore>,
    engine: Arc<SlaEngine>,
    scheduler: SlaScheduler<TimerKey>,
    keys: HashMap<StreamId, Vec<TimerKey>>,
}

impl SlaDriver {
    /// A driver over `store`.
    pub fn new(store: Arc<dyn EventStore>, engine: Arc<SlaEngine>) -> Self {
        Self {
            store,
            engine,
            scheduler: SlaScheduler::new(),
            keys: HashMap::new(),
        }
    }

    /// The scheduler projection.
    pub fn scheduler(&self) -> &SlaScheduler<TimerKey> {
        &self.scheduler
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

    /// Appends the events of every threshold due at `now`. Safe to run late, twice, or on
    /// several nodes at once: event ids are derived, so the store keeps one copy.
    pub async fn fire_due(&mut self, now: DateTime<Utc>) -> Result<FireReport, SlaDriverError> {
        let due: BTreeSet<StreamId> = self.scheduler.due(now).map(|(k, _)| k.0.clone()).collect();
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

    /// Appends the due events of one record; returns how many were new.
    pub async fn fire_record(
        &self,
        stream: &StreamId,
        now: DateTime<Utc>,
    ) -> Result<usize, SlaDriverError> {
        let mut new = 0;
        for _ in 0..REDERIVE {
            let (record_type, history, read) =
                load_history(&*self.store, &self.engine, stream).await?;
            let timers = self.engine.timers(&record_type, &history);
            let events = due_events(stream, &timers, |t| self.engine.calendar_for(t), now);
            if events.is_empty() {
                return Ok(new);
            }
            let recorded = record_sla_events(&*self.store, stream, read, events).await?;
            new += recorded.new;
            if recorded.complete {
                return Ok(new);
            }
        }
        tracing::warn!(%stream, "record kept changing; its sla events wait for the next pass");
        Ok(new)
    }

    /// Reads the log from its start to index every record's timers, then follows it live,
    /// keeps the scheduler current and fires what falls due, until `shutdown` completes.
    /// Returns the last position seen.
    pub async fn run(
        &mut self,
        clock: &dyn Clock,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<Position, SlaDriverError> {
        // The scheduler is a projection: rebuilt from the whole log at every start, so a
        // restarted driver knows the timers of quiet records too.
        let after = Position::START;
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
                Some(at) => clock.sleep_until(at).boxed(),
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
