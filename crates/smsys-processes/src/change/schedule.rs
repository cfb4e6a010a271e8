//! The change schedule: every scheduled change's window, CIs and implementer in memory,
//! followed from the log, indexed for conflict detection and "what is planned" queries.
//!
//! See [`ChangeSchedule`] for the rules.

mod detect;
mod timeline;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use smsys_core::records::change::ChangeWindow;
use smsys_core::records::{
    Change, CiId, PersonId, Phase, RecordKind, Reference, Relationship, TypedEvent,
};
use smsys_core::{
    DomainEvent, EventSourced, LogFilter, Position, Projection, ProjectionError, RecordedEvent,
    Stamp, StreamId, Upcasters, Version,
};

use super::conflict::{Conflict, ConflictDetector, ScheduleRequest};
use super::windows::ChangeCalendars;
use crate::CmdbGraph;
use timeline::Timeline;

/// A change on the schedule: its window, CIs, implementer and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    /// The change.
    pub reference: Reference,
    /// Its window.
    pub window: ChangeWindow,
    /// The CIs it changes (its plan's, else the affected CIs it was logged with), sorted.
    pub cis: Vec<CiId>,
    /// Who implements it.
    pub implementer: Option<PersonId>,
    /// Its status.
    pub status: Option<String>,
    /// Its phase.
    pub phase: Option<Phase>,
}

impl PlannedChange {
    /// The change's booking, while it is on the schedule.
    fn of(change: &Change) -> Option<Self> {
        let record = change.record();
        let window = change.window()?;
        if change.implementation().is_some() || record.phase().is_some_and(Phase::is_final) {
            return None;
        }
        let plan = change.plan();
        let mut cis = match plan {
            Some(plan) if !plan.cis.is_empty() => plan.cis.clone(),
            Some(_) | None => record.affected_cis().to_vec(),
        };
        cis.sort_unstable();
        cis.dedup();
        Some(Self {
            reference: record.reference()?.clone(),
            window: window.clone(),
            cis,
            implementer: plan.and_then(|p| p.implementer.clone()),
            status: record.status().map(str::to_owned),
            phase: record.phase(),
        })
    }

    fn overlaps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.window.start < to && from < self.window.end
    }
}

struct Entry {
    change: Change,
    version: Version,
    booked: Option<PlannedChange>,
}

/// The schedule's state: changes by slot, the indexes over their bookings.
#[derive(Default)]
struct Book {
    entries: Vec<Entry>,
    by_stream: HashMap<StreamId, u32>,
    by_reference: HashMap<Reference, u32>,
    by_ci: HashMap<CiId, Timeline>,
    by_implementer: HashMap<PersonId, Timeline>,
    all: Timeline,
    checkpoint: Option<Position>,
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Book")
            .field("changes", &self.entries.len())
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

impl Book {
    fn booking(&self, slot: u32) -> Option<&PlannedChange> {
        self.entries.get(slot as usize)?.booked.as_ref()
    }

    /// The bookings of `timeline` overlapping `[from, to)`.
    fn overlapping<'a>(
        &'a self,
        timeline: Option<&'a Timeline>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = (u32, &'a PlannedChange)> + 'a {
        timeline
            .into_iter()
            .flat_map(move |t| t.candidates(from, to))
            .filter_map(move |(_, slot)| Some((slot, self.booking(slot)?)))
            .filter(move |(_, b)| b.overlaps(from, to))
    }

    fn index(&mut self, slot: u32, booking: &PlannedChange) {
        let (start, end) = (booking.window.start, booking.window.end);
        for ci in &booking.cis {
            self.by_ci
                .entry(ci.clone())
                .or_default()
                .insert(start, end, slot);
        }
        if let Some(person) = &booking.implementer {
            self.by_implementer
                .entry(person.clone())
                .or_default()
                .insert(start, end, slot);
        }
        self.all.insert(start, end, slot);
    }

    fn unindex(&mut self, slot: u32, booking: &PlannedChange) {
        let start = booking.window.start;
        for ci in &booking.cis {
            if let Some(t) = self.by_ci.get_mut(ci) {
                t.remove(start, slot);
                if t.is_empty() {
                    self.by_ci.remove(ci);
                }
            }
        }
        if let Some(person) = &booking.implementer
            && let Some(t) = self.by_implementer.get_mut(person)
        {
            t.remove(start, slot);
            if t.is_empty() {
                self.by_implementer.remove(person);
            }
        }
        self.all.remove(start, slot);
    }

    /// Folds one event into its change and moves its booking in the indexes.
    fn fold(&mut self, event: &RecordedEvent, typed: &<Change as EventSourced>::Event) {
        let slot = match self.by_stream.get(&event.stream) {
            Some(slot) => *slot,
            None => {
                let Ok(slot) = u32::try_from(self.entries.len()) else {
                    tracing::warn!(stream = %event.stream, "change schedule full: event ignored");
                    return;
                };
                self.entries.push(Entry {
                    change: Change::default(),
                    version: Version::FIRST,
                    booked: None,
                });
                self.by_stream.insert(event.stream.clone(), slot);
                slot
            }
        };
        let Some(entry) = self.entries.get_mut(slot as usize) else {
            return;
        };
        if entry.change.record().is_logged() && event.version <= entry.version {
            return;
        }
        entry.change.evolve(typed, Stamp::of(event.data.metadata()));
        entry.version = event.version;
        if matches!(typed, TypedEvent::Logged(_))
            && let Some(reference) = entry.change.record().reference()
        {
            self.by_reference.insert(reference.clone(), slot);
        }
        let booked = PlannedChange::of(&entry.change);
        if booked == entry.booked {
            return;
        }
        let old = std::mem::replace(&mut entry.booked, booked.clone());
        if let Some(old) = old {
            self.unindex(slot, &old);
        }
        if let Some(new) = booked {
            self.index(slot, &new);
        }
    }
}

/// Which relationships make CIs related, and how far.
#[derive(Debug, Clone)]
struct RelatedRule {
    hops: u32,
    relationships: Option<BTreeSet<Relationship>>,
}

/// The change schedule: an in-memory [`Projection`] over the `change` category (its
/// checkpoint in memory: a new schedule is rebuilt from the start of the log) and the
/// [`ConflictDetector`] scheduling consults.
///
/// A change is *on the schedule* (books its CIs and its implementer) from its `scheduled`
/// event (a later one replaces the window) until its phase becomes final (closed, cancelled)
/// or its implementation ends (`implemented`, whatever the outcome). Its CIs are those of
/// its plan, or, before it has a plan naming any, the affected CIs it was logged with.
///
/// Conflicts of a window asked for a change, each against the other
/// changes on the schedule (a change never conflicts with itself) in a window sharing an
/// instant with it (windows are half-open: touching windows do not overlap):
/// - `same_ci`: one per other change and CI both change;
/// - `related_ci`: one per other change and CI it changes within `hops` relationships of
///   one of the asked CIs, either way (CIs they depend on and CIs depending on them), along
///   the relationship types that carry impact under the graph's rules (or those set with
///   [`ChangeSchedule::with_related_relationships`]); a change already reported as `same_ci`
///   is not reported again; 0 hops disables it. Each CI is visited once, so cycles end;
/// - `assignee_booked`: one per other change the same implementer implements;
/// - `freeze`: one per freeze binding ([`ChangeCalendars`]) and CI it applies to whose open
///   time the window shares (a global freeze once, without a CI);
/// - `outside_maintenance`: one per maintenance binding and CI it applies to that does not
///   hold the whole window (a global one once, without a CI).
///
/// The conflicts come sorted by kind (in the order above), then other change, CI and detail.
/// Each detail names the other change (or the binding and its calendar), the CI and both
/// windows, e.g. `CHG-1 also changes db-1 in 2026-11-02T10:00:00Z to 2026-11-02T12:00:00Z,
/// overlapping 2026-11-02T11:00:00Z to 2026-11-02T13:00:00Z`.
///
/// Service-bound windows apply to the CIs a service depends on: a CI whose impact on the
/// graph reaches the service, and the service CI itself.
///
/// The index: per CI, per implementer and overall, the bookings sorted by start with the
/// longest length held; a check visits the asked CIs' and their related CIs' bookings only.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use chrono::{TimeZone, Utc};
/// use smsys_core::ProjectionRunner;
/// use smsys_core::records::change::ChangeWindow;
/// use smsys_processes::CmdbGraph;
/// use smsys_processes::change::{ChangeSchedule, ConflictDetector, ScheduleRequest};
/// use smsys_store::MemoryEventStore;
///
/// let store = Arc::new(MemoryEventStore::new());
/// let schedule = ChangeSchedule::new("change_schedule", Arc::new(CmdbGraph::new()))
///     .with_related_hops(2);
/// ProjectionRunner::new(store).catch_up(&schedule).await?;
/// let window = ChangeWindow {
///     start: Utc.with_ymd_and_hms(2026, 11, 7, 22, 0, 0).unwrap(),
///     end: Utc.with_ymd_and_hms(2026, 11, 8, 2, 0, 0).unwrap(),
///     time_zone: "Europe/Paris".into(),
/// };
/// let cis = ["db-1".parse()?];
/// let change = "CHG-1".parse()?;
/// let request = ScheduleRequest { change: &change, window: &window, cis: &cis, implementer: None };
/// assert!(schedule.conflicts(&request).is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ChangeSchedule {
    name: String,
    upcasters: Upcasters,
    graph: Arc<CmdbGraph>,
    calendars: ChangeCalendars,
    related: RelatedRule,
    book: RwLock<Book>,
}

impl ChangeSchedule {
    /// How many relationships away a change on another CI is related by default.
    pub const DEFAULT_RELATED_HOPS: u32 = 1;

    /// An empty schedule named `name` (the projection's name) over `graph`, without freeze
    /// or maintenance windows, relating CIs one hop apart, reading change events through
    /// their shipped upcasters.
    pub fn new(name: impl Into<String>, graph: Arc<CmdbGraph>) -> Self {
        Self {
            name: name.into(),
            upcasters: <Change as EventSourced>::Event::upcasters(),
            graph,
            calendars: ChangeCalendars::new(),
            related: RelatedRule {
                hops: Self::DEFAULT_RELATED_HOPS,
                relationships: None,
            },
            book: RwLock::new(Book::default()),
        }
    }

    /// With these freeze and maintenance windows.
    pub fn with_calendars(mut self, calendars: ChangeCalendars) -> Self {
        self.calendars = calendars;
        self
    }

    /// Changes on CIs up to `hops` relationships away are `related_ci` conflicts (0: none).
    pub fn with_related_hops(mut self, hops: u32) -> Self {
        self.related.hops = hops;
        self
    }

    /// Relates CIs along these relationship types (by default those that carry impact
    /// under the graph's rules), either way.
    pub fn with_related_relationships(mut self, relationships: BTreeSet<Relationship>) -> Self {
        self.related.relationships = Some(relationships);
        self
    }

    /// Reads change events through `upcasters` (the shipped ones and a product's own).
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// The freeze and maintenance windows.
    pub fn calendars(&self) -> &ChangeCalendars {
        &self.calendars
    }

    fn read(&self) -> RwLockReadGuard<'_, Book> {
        self.book.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The change `reference`, while it is on the schedule.
    pub fn get(&self, reference: &Reference) -> Option<PlannedChange> {
        let book = self.read();
        book.booking(*book.by_reference.get(reference)?).cloned()
    }

    /// The change `reference` as the schedule has folded it, on the schedule or not.
    pub fn change(&self, reference: &Reference) -> Option<Change> {
        let book = self.read();
        let slot = usize::try_from(*book.by_reference.get(reference)?).ok()?;
        let entry = book.entries.get(slot)?;
        Some(entry.change.clone())
    }

    /// How many changes are on the schedule.
    pub fn len(&self) -> usize {
        self.read()
            .entries
            .iter()
            .filter(|e| e.booked.is_some())
            .count()
    }

    /// Whether no change is on the schedule.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The changes on the schedule whose window overlaps `[from, to)`, by start, then
    /// reference.
    pub fn planned_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<PlannedChange> {
        let book = self.read();
        let mut out: Vec<PlannedChange> = book
            .overlapping(Some(&book.all), from, to)
            .map(|(_, b)| b.clone())
            .collect();
        sort(&mut out);
        out
    }

    /// The changes on the schedule, overlapping `[from, to)`, that change `service` or a CI
    /// it depends on (one whose impact on the graph reaches it), by start, then reference.
    pub fn planned_on_service(
        &self,
        service: &CiId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<PlannedChange> {
        let mut supports: HashMap<CiId, bool> = HashMap::new();
        let mut out = self.planned_between(from, to);
        out.retain(|change| {
            change.cis.iter().any(|ci| {
                ci == service
                    || *supports.entry(ci.clone()).or_insert_with(|| {
                        self.graph
                            .impact(ci)
                            .services()
                            .binary_search(service)
                            .is_ok()
                    })
            })
        });
        out
    }
}

fn sort(changes: &mut [PlannedChange]) {
    changes.sort_by(|a, b| {
        (a.window.start, &a.reference, a.window.end).cmp(&(
            b.window.start,
            &b.reference,
            b.window.end,
        ))
    });
}

impl ConflictDetector for ChangeSchedule {
    fn conflicts(&self, request: &ScheduleRequest<'_>) -> Vec<Conflict> {
        detect::conflicts(self, &self.read(), request)
    }
}

#[async_trait]
impl Projection for ChangeSchedule {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<Change>()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        Ok(self.read().checkpoint)
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let decoded = crate::decode_batch::<Change>(&self.name, &self.upcasters, events)?;
        let mut book = self.book.write().unwrap_or_else(PoisonError::into_inner);
        for (event, typed) in decoded {
            book.fold(event, &typed);
        }
        book.checkpoint = Some(checkpoint);
        Ok(())
    }
}
