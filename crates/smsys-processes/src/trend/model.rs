//! The folded facts of every incident, compact: repeated names (services, configuration
//! items, categories, problems) are interned once and incidents hold their numbers.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use smsys_core::records::incident::MajorIncidentEvent;
use smsys_core::records::{
    CiId, IncidentEvent, LinkKind, Phase, RecordEvent, Reference, ServiceId, TypedEvent,
};
use smsys_core::{Position, StreamId};

pub(crate) use crate::intern::{Sym, Symbols};

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
    /// Every fact's (logged at in whole microseconds, index), ordered by logged at, then
    /// reference: queries visit only their window, in the order they answer in. The instant
    /// is kept inline so that ordering rarely looks at the facts.
    order: Vec<(i64, u32)>,
    /// Facts logged since the last [`Model::settle`], not yet in `order`.
    pending: Vec<u32>,
    /// The indexes of the major incidents.
    pub(crate) majors: Vec<u32>,
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
            let i = match self.streams.get(stream.entity_id()) {
                // Logged again (never by the shipped rules): the incident starts over.
                Some(&i) => {
                    self.order.retain(|(_, j)| *j != i);
                    self.pending.retain(|j| *j != i);
                    self.majors.retain(|j| *j != i);
                    if let Some(slot) = self.facts.get_mut(i as usize) {
                        *slot = fact;
                    }
                    i
                }
                None => {
                    let i = u32::try_from(self.facts.len()).unwrap_or(u32::MAX);
                    self.facts.push(fact);
                    self.streams.insert(stream.entity_id().into(), i);
                    i
                }
            };
            self.pending.push(i);
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
                | MajorIncidentEvent::MajorReviewed { .. } => {
                    if !fact.major {
                        fact.major = true;
                        self.majors.push(i);
                    }
                }
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

    /// How facts `a` and `b` are ordered: by logged at, then reference.
    fn cmp(&self, a: (i64, u32), b: (i64, u32)) -> Ordering {
        a.0.cmp(&b.0).then_with(|| {
            let key = |i: u32| {
                self.facts
                    .get(i as usize)
                    .map(|f| (f.logged_at, &f.reference))
            };
            key(a.1).cmp(&key(b.1))
        })
    }

    /// Whether every fact is in the order.
    pub(crate) fn is_settled(&self) -> bool {
        self.pending.is_empty()
    }

    /// Puts the facts logged since the last call in their place in the order: sorted among
    /// themselves, then appended when they follow every fact held (incidents mostly arrive
    /// in the order they were logged), or merged. Called before a query when facts were
    /// folded since the last one, so a log out of order costs a pass over the order per
    /// query, not per incident.
    pub(crate) fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending: Vec<(i64, u32)> = std::mem::take(&mut self.pending)
            .into_iter()
            .filter_map(|i| {
                let f = self.facts.get(i as usize)?;
                Some((f.logged_at.timestamp_micros(), i))
            })
            .collect();
        pending.sort_unstable_by(|a, b| self.cmp(*a, *b));
        let follows = match (self.order.last(), pending.first()) {
            (Some(last), Some(first)) => self.cmp(*last, *first).is_le(),
            (None, _) | (_, None) => true,
        };
        if follows {
            self.order.extend(pending);
            return;
        }
        let mut merged = Vec::with_capacity(self.order.len() + pending.len());
        let (mut held, mut new) = (self.order.iter().peekable(), pending.iter().peekable());
        loop {
            let next = match (held.peek(), new.peek()) {
                (Some(a), Some(b)) if self.cmp(**a, **b).is_le() => held.next(),
                (Some(_), Some(_)) | (None, Some(_)) => new.next(),
                (Some(_), None) => held.next(),
                (None, None) => break,
            };
            merged.extend(next.copied());
        }
        self.order = merged;
    }

    /// The indexes of the facts logged in `(from, to]`, in order.
    pub(crate) fn logged_in(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = u32> + '_ {
        let after = |t: DateTime<Utc>| {
            let micros = t.timestamp_micros();
            self.order.partition_point(|(m, i)| {
                *m < micros
                    || (*m == micros
                        && self
                            .facts
                            .get(*i as usize)
                            .is_some_and(|f| f.logged_at <= t))
            })
        };
        let (start, end) = (after(from), after(to));
        self.order
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|(_, i)| *i)
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
