//! The folded facts of every incident, compact: repeated names (services, configuration
//! items, categories, problems) are interned once and incidents hold their numbers.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, Utc};
use smsys_core::records::incident::MajorIncidentEvent;
use smsys_core::records::{
    CiId, IncidentEvent, LinkKind, Phase, RecordEvent, Reference, ServiceId, TypedEvent,
};
use smsys_core::{Position, StreamId};

/// The number of an interned name.
pub(crate) type Sym = u32;

/// Names interned once: each kept twice (in the map and the list), however many incidents
/// name it.
#[derive(Debug)]
pub(crate) struct Symbols<T> {
    numbers: HashMap<T, Sym>,
    values: Vec<T>,
}

impl<T> Default for Symbols<T> {
    fn default() -> Self {
        Self {
            numbers: HashMap::new(),
            values: Vec::new(),
        }
    }
}

impl<T: Clone + Eq + Hash> Symbols<T> {
    /// The number of `value`, interning it the first time.
    pub(crate) fn intern(&mut self, value: &T) -> Sym {
        if let Some(n) = self.numbers.get(value) {
            return *n;
        }
        // More than 4 billion distinct names would not fit in memory anyway.
        let n = Sym::try_from(self.values.len()).unwrap_or(Sym::MAX);
        self.values.push(value.clone());
        self.numbers.insert(value.clone(), n);
        n
    }

    /// The number of `value`, if it was ever interned.
    pub(crate) fn find(&self, value: &T) -> Option<Sym> {
        self.numbers.get(value).copied()
    }

    /// The value of number `n`.
    pub(crate) fn get(&self, n: Sym) -> Option<&T> {
        self.values.get(n as usize)
    }

    /// How many names.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// What the trends know of one incident.
#[derive(Debug)]
pub(crate) struct Fact {
    pub(crate) reference: Reference,
    pub(crate) logged_at: DateTime<Utc>,
    pub(crate) service: Sym,
    pub(crate) category: Option<Sym>,
    /// Affected at logging, plus linked, minus unlinked; sorted, without repeats.
    pub(crate) cis: Box<[Sym]>,
    /// Linked problems, minus unlinked; sorted, without repeats.
    pub(crate) problems: Box<[Sym]>,
    pub(crate) phase: Phase,
    pub(crate) major: bool,
}

impl Fact {
    /// Whether the incident is evidence of a trend at all: not cancelled.
    pub(crate) fn counts(&self) -> bool {
        self.phase != Phase::Cancelled
    }

    /// Whether it was logged in `(from, to]`.
    pub(crate) fn logged_in(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        from < self.logged_at && self.logged_at <= to
    }
}

/// Every incident's facts and the names they share.
#[derive(Debug, Default)]
pub(crate) struct Model {
    pub(crate) facts: Vec<Fact>,
    /// The fact of each incident stream, by the stream's entity id (its reference).
    pub(crate) streams: HashMap<Box<str>, u32>,
    pub(crate) services: Symbols<ServiceId>,
    pub(crate) cis: Symbols<CiId>,
    pub(crate) categories: Symbols<String>,
    pub(crate) problems: Symbols<String>,
    pub(crate) checkpoint: Option<Position>,
}

/// `set` with `n` in it, sorted.
fn with(set: &[Sym], n: Sym) -> Box<[Sym]> {
    match set.binary_search(&n) {
        Ok(_) => set.into(),
        Err(at) => {
            let mut v = Vec::with_capacity(set.len() + 1);
            v.extend_from_slice(&set[..at]);
            v.push(n);
            v.extend_from_slice(&set[at..]);
            v.into_boxed_slice()
        }
    }
}

/// `set` without `n`.
fn without(set: &[Sym], n: Sym) -> Box<[Sym]> {
    set.iter().copied().filter(|m| *m != n).collect()
}

impl Model {
    /// Folds one decoded event of `stream`, at `at` (its occurred-at). Total: an event of an
    /// incident whose logged event was never seen changes nothing and is reported as `false`.
    pub(crate) fn fold(
        &mut self,
        stream: &StreamId,
        at: DateTime<Utc>,
        event: &IncidentEvent,
    ) -> bool {
        if let TypedEvent::Logged(logged) = event {
            let service = self.services.intern(&logged.service);
            let mut cis: Vec<Sym> = logged
                .affected_cis
                .iter()
                .map(|ci| self.cis.intern(ci))
                .collect();
            cis.sort_unstable();
            cis.dedup();
            let fact = Fact {
                reference: logged.reference.clone(),
                logged_at: at,
                service,
                category: None,
                cis: cis.into_boxed_slice(),
                problems: Box::default(),
                phase: Phase::New,
                major: false,
            };
            match self.streams.get(stream.entity_id()) {
                Some(&i) => {
                    if let Some(slot) = self.facts.get_mut(i as usize) {
                        *slot = fact;
                    }
                }
                None => {
                    let i = u32::try_from(self.facts.len()).unwrap_or(u32::MAX);
                    self.facts.push(fact);
                    self.streams.insert(stream.entity_id().into(), i);
                }
            }
            return true;
        }
        let Some(&i) = self.streams.get(stream.entity_id()) else {
            return false;
        };
        let Some(fact) = self.facts.get_mut(i as usize) else {
            return false;
        };
        match event {
            TypedEvent::Logged(_) => {}
            TypedEvent::Own(own) => match own {
                // Any step of the major-incident procedure makes it major, as the incident's
                // own state reads it (`Incident::is_major`).
                MajorIncidentEvent::MajorFlagged { .. }
                | MajorIncidentEvent::MajorManagerAssigned { .. }
                | MajorIncidentEvent::ManagementInformed { .. }
                | MajorIncidentEvent::MajorReviewed { .. } => fact.major = true,
            },
            TypedEvent::Record(record) => match record {
                RecordEvent::Classified { category, .. } => {
                    fact.category = Some(self.categories.intern(category));
                }
                RecordEvent::Transitioned { phase, .. } => fact.phase = *phase,
                RecordEvent::Linked { kind, target } => {
                    if *kind == LinkKind::CONFIGURATION_ITEM {
                        if let Ok(ci) = target.parse::<CiId>() {
                            fact.cis = with(&fact.cis, self.cis.intern(&ci));
                        }
                    } else if *kind == LinkKind::PROBLEM {
                        fact.problems = with(&fact.problems, self.problems.intern(target));
                    }
                }
                RecordEvent::Unlinked { kind, target } => {
                    if *kind == LinkKind::CONFIGURATION_ITEM {
                        if let Some(n) = target
                            .parse::<CiId>()
                            .ok()
                            .and_then(|ci| self.cis.find(&ci))
                        {
                            fact.cis = without(&fact.cis, n);
                        }
                    } else if *kind == LinkKind::PROBLEM
                        && let Some(n) = self.problems.find(target)
                    {
                        fact.problems = without(&fact.problems, n);
                    }
                }
                RecordEvent::Prioritised { .. }
                | RecordEvent::PriorityOverridden { .. }
                | RecordEvent::Assigned { .. }
                | RecordEvent::Unassigned { .. }
                | RecordEvent::Noted { .. }
                | RecordEvent::Escalated { .. }
                | RecordEvent::AttributeSet { .. }
                | RecordEvent::AttributeRemoved { .. }
                | RecordEvent::SlaThresholdReached { .. }
                | RecordEvent::SlaBreached { .. }
                | RecordEvent::LifecycleMigrated { .. } => {}
            },
        }
        true
    }
}

/// Whether the trends read events named `name` (after `incident.`): the others are neither
/// decoded nor folded.
pub(crate) fn is_read(name: &str) -> bool {
    matches!(
        name,
        "logged" | "classified" | "transitioned" | "linked" | "unlinked"
    ) || <MajorIncidentEvent as smsys_core::records::OwnEvents>::NAMES.contains(&name)
}
