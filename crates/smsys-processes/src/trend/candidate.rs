//! What the trends answer: problem candidates, recurrences, one incident's facts.

use std::fmt;

use chrono::{DateTime, Utc};
use smsys_core::records::{CiId, LinkKind, Phase, Reference, ServiceId};

use crate::record::RecordCommand;
use crate::trend::model::{Fact, Model, Sym, Symbols};
use crate::trend::policy::{TrendDimension, TrendPolicy};

/// What a candidate groups its incidents by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrendKey {
    /// Incidents on one configuration item.
    Ci(CiId),
    /// Incidents on one service.
    Service(ServiceId),
    /// Incidents in one category.
    Category(String),
    /// One major incident without a linked problem.
    MajorIncident(Reference),
}

impl TrendKey {
    /// Its dimension.
    pub fn dimension(&self) -> TrendDimension {
        match self {
            TrendKey::Ci(_) => TrendDimension::Ci,
            TrendKey::Service(_) => TrendDimension::Service,
            TrendKey::Category(_) => TrendDimension::Category,
            TrendKey::MajorIncident(_) => TrendDimension::MajorIncident,
        }
    }

    fn value(&self) -> &str {
        match self {
            TrendKey::Ci(ci) => ci.as_str(),
            TrendKey::Service(service) => service.as_str(),
            TrendKey::Category(category) => category,
            TrendKey::MajorIncident(reference) => reference.as_str(),
        }
    }
}

impl fmt::Display for TrendKey {
    /// `<dimension>:<value>`, e.g. `ci:mx-01`, `major:INC-7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dimension(), self.value())
    }
}

/// A proposed problem: incidents that share a configuration item, a service or a category
/// within the window, or one major incident, none of them linked to a problem yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendCandidate {
    key: TrendKey,
    incidents: Vec<Reference>,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl TrendCandidate {
    /// What its incidents share.
    pub fn key(&self) -> &TrendKey {
        &self.key
    }

    /// Its incidents, ordered by the instant they were logged, then by reference.
    pub fn incidents(&self) -> &[Reference] {
        &self.incidents
    }

    /// When the first of them was logged.
    pub fn first(&self) -> DateTime<Utc> {
        self.first
    }

    /// When the last of them was logged.
    pub fn last(&self) -> DateTime<Utc> {
        self.last
    }

    /// A stable id: the key as text, e.g. `ci:mx-01`, `service:email`, `category:network`,
    /// `major:INC-7`. The same trend gets the same id at every `as_of`, so a caller can tell
    /// a candidate it already acted on.
    pub fn id(&self) -> String {
        self.key.to_string()
    }

    /// The links a problem created from this candidate records: one
    /// [`LinkKind::INCIDENT`] link per incident and, for a configuration item's trend, a
    /// [`LinkKind::CONFIGURATION_ITEM`] link to it. Once an incident records the link back
    /// (`problem`), it leaves later candidates.
    pub fn problem_links(&self) -> Vec<RecordCommand> {
        let mut links: Vec<RecordCommand> = self
            .incidents
            .iter()
            .map(|reference| RecordCommand::Link {
                kind: LinkKind::INCIDENT,
                target: reference.as_str().to_owned(),
            })
            .collect();
        if let TrendKey::Ci(ci) = &self.key {
            links.push(RecordCommand::Link {
                kind: LinkKind::CONFIGURATION_ITEM,
                target: ci.as_str().to_owned(),
            });
        }
        links
    }
}

/// Which incidents recurred after a fix: asked by the review of a problem's resolution.
///
/// The rule: every incident logged in `(from, to]`, not cancelled, not in `excluding`, that
/// - names one of `cis` (affected at logging or linked, and not unlinked), when `cis` is not
///   empty (service and category are then ignored);
/// - otherwise, is in `category` and on `service`, whichever of the two are given (both
///   given: both must match);
/// - when neither CIs, nor service, nor category are given: none.
///
/// Incidents linked to a problem count too: a recurrence is a recurrence whoever handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurrenceQuery {
    /// Configuration items the problem was about.
    pub cis: Vec<CiId>,
    /// The service, used when `cis` is empty.
    pub service: Option<ServiceId>,
    /// The category, used when `cis` is empty.
    pub category: Option<String>,
    /// After this instant (excluded).
    pub from: DateTime<Utc>,
    /// Up to this instant (included).
    pub to: DateTime<Utc>,
    /// Incidents not to count (those the problem was raised from).
    pub excluding: Vec<Reference>,
}

impl RecurrenceQuery {
    /// Incidents on any of `cis` logged in `(from, to]`.
    pub fn on_cis(cis: Vec<CiId>, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            cis,
            service: None,
            category: None,
            from,
            to,
            excluding: Vec::new(),
        }
    }

    /// Incidents with `category` and/or on `service`, logged in `(from, to]`.
    pub fn on(
        service: Option<ServiceId>,
        category: Option<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Self {
        Self {
            cis: Vec::new(),
            service,
            category,
            from,
            to,
            excluding: Vec::new(),
        }
    }

    /// Without the incidents of `references`.
    pub fn excluding(mut self, references: Vec<Reference>) -> Self {
        self.excluding = references;
        self
    }
}

/// One incident as the trends fold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentFacts {
    /// Its reference.
    pub reference: Reference,
    /// When it was logged (the logged event's occurred-at).
    pub logged_at: DateTime<Utc>,
    /// Its service.
    pub service: ServiceId,
    /// Its configuration items: affected at logging, plus linked, minus unlinked; sorted.
    pub cis: Vec<CiId>,
    /// Its category, once classified.
    pub category: Option<String>,
    /// Whether it is a major incident.
    pub major: bool,
    /// The problems it is linked to (link targets), sorted.
    pub problems: Vec<String>,
    /// Its phase.
    pub phase: Phase,
}

fn values<T: Clone + Eq + std::hash::Hash>(symbols: &Symbols<T>, set: &[Sym]) -> Vec<T> {
    set.iter()
        .filter_map(|n| symbols.get(*n))
        .cloned()
        .collect()
}

impl Model {
    pub(crate) fn facts_of(&self, fact: &Fact) -> Option<IncidentFacts> {
        let mut cis = values(&self.cis, &fact.cis);
        cis.sort();
        let mut problems = values(&self.problems, &fact.problems);
        problems.sort();
        Some(IncidentFacts {
            reference: fact.reference.clone(),
            logged_at: fact.logged_at,
            service: self.services.get(fact.service)?.clone(),
            cis,
            category: fact.category.and_then(|c| self.categories.get(c)).cloned(),
            major: fact.major,
            problems,
            phase: fact.phase,
        })
    }

    /// The candidates of `policy` as of `as_of`.
    pub(crate) fn candidates(
        &self,
        policy: &TrendPolicy,
        as_of: DateTime<Utc>,
    ) -> Vec<TrendCandidate> {
        let from = as_of
            .checked_sub_signed(policy.window())
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        // The incidents each key gathers, by the key's number.
        let mut by_ci: Vec<Vec<u32>> = bucket(policy.ci, self.cis.len());
        let mut by_service: Vec<Vec<u32>> = bucket(policy.service, self.services.len());
        let mut by_category: Vec<Vec<u32>> = bucket(policy.category, self.categories.len());
        for i in self.logged_in(from, as_of) {
            let Some(fact) = self.facts.get(i as usize) else {
                continue;
            };
            if !fact.counts() || !fact.problems.is_empty() {
                continue;
            }
            for ci in &fact.cis {
                push(&mut by_ci, *ci, i);
            }
            push(&mut by_service, fact.service, i);
            if let Some(category) = fact.category {
                push(&mut by_category, category, i);
            }
        }
        let majors: &[u32] = if policy.major_without_problem {
            &self.majors
        } else {
            &[]
        };
        let majors = majors.iter().copied().filter(|i| {
            self.facts.get(*i as usize).is_some_and(|fact| {
                fact.counts()
                    && fact.problems.is_empty()
                    && fact.logged_at <= as_of
                    && (fact.logged_at > from || !fact.phase.is_final())
            })
        });
        let mut out = Vec::new();
        self.gather(&mut out, by_ci, policy.ci, |n| {
            self.cis.get(n).cloned().map(TrendKey::Ci)
        });
        self.gather(&mut out, by_service, policy.service, |n| {
            self.services.get(n).cloned().map(TrendKey::Service)
        });
        self.gather(&mut out, by_category, policy.category, |n| {
            self.categories.get(n).cloned().map(TrendKey::Category)
        });
        let mut major: Vec<TrendCandidate> = majors
            .filter_map(|i| {
                let fact = self.facts.get(i as usize)?;
                self.candidate(TrendKey::MajorIncident(fact.reference.clone()), &[i])
            })
            .collect();
        major.sort_by(|a, b| a.key.cmp(&b.key));
        out.extend(major);
        out
    }

    /// The candidates of one dimension: keys reaching `threshold`, by descending count, then
    /// key.
    fn gather(
        &self,
        out: &mut Vec<TrendCandidate>,
        buckets: Vec<Vec<u32>>,
        threshold: Option<u32>,
        key: impl Fn(Sym) -> Option<TrendKey>,
    ) {
        let Some(threshold) = threshold else {
            return;
        };
        let mut found: Vec<TrendCandidate> = (0u32..)
            .zip(buckets)
            .filter(|(_, incidents)| incidents.len() >= threshold as usize)
            .filter_map(|(n, incidents)| self.candidate(key(n)?, &incidents))
            .collect();
        found.sort_by(|a, b| {
            b.incidents
                .len()
                .cmp(&a.incidents.len())
                .then_with(|| a.key.cmp(&b.key))
        });
        out.extend(found);
    }

    /// A candidate of `incidents`, given in order.
    fn candidate(&self, key: TrendKey, incidents: &[u32]) -> Option<TrendCandidate> {
        let facts: Vec<&Fact> = incidents
            .iter()
            .filter_map(|i| self.facts.get(*i as usize))
            .collect();
        let first = facts.first()?.logged_at;
        let last = facts.last()?.logged_at;
        Some(TrendCandidate {
            key,
            incidents: facts.iter().map(|f| f.reference.clone()).collect(),
            first,
            last,
        })
    }

    /// The incidents `query` finds (see [`RecurrenceQuery`]).
    pub(crate) fn recurrences(&self, query: &RecurrenceQuery) -> Vec<Reference> {
        enum Match {
            Cis(Vec<Sym>),
            Fields(Option<Sym>, Option<Sym>),
        }
        let rule = if query.cis.is_empty() {
            let service = match &query.service {
                Some(s) => match self.services.find(s) {
                    Some(n) => Some(n),
                    None => return Vec::new(),
                },
                None => None,
            };
            let category = match &query.category {
                Some(c) => match self.categories.find(c) {
                    Some(n) => Some(n),
                    None => return Vec::new(),
                },
                None => None,
            };
            if service.is_none() && category.is_none() {
                return Vec::new();
            }
            Match::Fields(service, category)
        } else {
            let mut cis: Vec<Sym> = query.cis.iter().filter_map(|c| self.cis.find(c)).collect();
            cis.sort_unstable();
            Match::Cis(cis)
        };
        self.logged_in(query.from, query.to)
            .filter_map(|i| self.facts.get(i as usize))
            .filter(|f| f.counts())
            .filter(|f| match &rule {
                Match::Cis(cis) => f.cis.iter().any(|c| cis.binary_search(c).is_ok()),
                Match::Fields(service, category) => {
                    service.is_none_or(|s| f.service == s)
                        && category.is_none_or(|c| f.category == Some(c))
                }
            })
            .filter(|f| !query.excluding.contains(&f.reference))
            .map(|f| f.reference.clone())
            .collect()
    }
}

/// One empty bucket per key of an enabled dimension (none for a disabled one).
fn bucket(threshold: Option<u32>, keys: usize) -> Vec<Vec<u32>> {
    if threshold.is_some() {
        vec![Vec::new(); keys]
    } else {
        Vec::new()
    }
}

fn push(buckets: &mut [Vec<u32>], key: Sym, incident: u32) {
    if let Some(b) = buckets.get_mut(key as usize) {
        b.push(incident);
    }
}
