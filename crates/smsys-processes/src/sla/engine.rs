//! The SLA engine: definitions, the calendars they name, and the record types whose streams
//! they follow; exact recompute and what-if from a record's history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use smsys_core::records::{
    CommonEvent, Incident, OwnEvents, RecordKind, RecordType, ServiceRequest,
};
use smsys_core::{ReadFailure, StreamId, Upcasters};

use super::definition::{Sla, SlaError, SlaRegistry};
use super::report::{Period, SlaReport};
use super::timer::{Binding, Timer, derive_timers};
use crate::calendar::BusinessCalendar;

/// A record's history as timers read it: `(occurred at, event)` in stream order.
pub type History = Vec<(DateTime<Utc>, CommonEvent)>;

/// A record type the engine follows: its name, its own event names (which timers skip) and
/// its upcasters.
#[derive(Clone, Debug)]
pub(super) struct Followed {
    pub(super) record_type: RecordType,
    pub(super) own: &'static [&'static str],
    pub(super) upcasters: Upcasters,
}

/// SLA definitions, the calendars they name, and the record types whose streams they follow.
#[derive(Clone)]
pub struct SlaEngine {
    slas: SlaRegistry,
    calendars: BTreeMap<String, BusinessCalendar>,
    pub(super) record_types: BTreeMap<String, Followed>,
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
    /// timers for incidents, service requests and problems on the office calendar (Mon-Fri,
    /// Berlin, with holidays), and a 24x7 calendar for products' own definitions. It follows
    /// problems too.
    pub fn reference() -> Self {
        Self::from_toml(&[OFFICE_CALENDAR, ALWAYS_CALENDAR], DESK_SLAS)
            .unwrap_or_else(|e| unreachable!("the shipped sla definitions are valid: {e}"))
            .with_record_type::<smsys_core::records::Problem>()
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

    /// Reads one stored event of a stream as timers see it, through its record type's
    /// upcasters: `Ok(None)` for an event of the type's own, or on a stream of a record type
    /// the engine does not follow.
    pub fn read_event(
        &self,
        stream: &StreamId,
        event_type: &smsys_core::EventType,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Result<Option<CommonEvent>, ReadFailure> {
        match self.record_types.get(stream.category_str()) {
            Some(followed) => CommonEvent::read(
                &followed.upcasters,
                followed.own,
                event_type,
                schema_version,
                payload,
            ),
            None => Ok(None),
        }
    }

    /// Adds a calendar, known by its name (a later one of the same name replaces it).
    pub fn with_calendar(mut self, calendar: BusinessCalendar) -> Self {
        self.calendars.insert(calendar.name().to_owned(), calendar);
        self
    }

    /// Takes each service's SLAs from `selection` (typically the
    /// [`ServiceCatalogue`](crate::catalogue::ServiceCatalogue)) instead of the definitions'
    /// `applies_to.services`, for the services it knows.
    pub fn with_selection(mut self, selection: std::sync::Arc<dyn super::SlaSelection>) -> Self {
        self.slas = self.slas.with_selection(selection);
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

    /// The record's timers under the definitions they bound to: exact, from history alone, or,
    /// with a selection ([`Self::with_selection`]), from history and what the selection
    /// answers for each cycle's start (a [`GraphCatalogue`](crate::catalogue::GraphCatalogue)
    /// answers as of that instant, so a recompute gives the same timers; a
    /// [`ServiceCatalogue`](crate::catalogue::ServiceCatalogue) answers what it holds now).
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
