//! The clause map as data: which event types evidence which activity of which clause.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use smsys_core::EventSourced;
use smsys_core::EventType;
use smsys_core::records::{
    Change, CiEvent, CmdbVerification, ConfigurationItem, Incident, KnownError, Nonconformity,
    OwnEvents, Problem, RecordEvent, RecordKind, Release, ServiceRequest, VerificationEvent,
};

const REFERENCE: &str = include_str!("clause_map.toml");

/// A clause of ISO/IEC 20000-1, e.g. `8.5.1`: numbers separated by dots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClauseId(String);

impl ClauseId {
    /// The clause `text`, if it is numbers separated by dots (at most 16 characters).
    pub fn new(text: impl Into<String>) -> Result<Self, ClauseMapError> {
        let text = text.into();
        let valid = !text.is_empty()
            && text.len() <= 16
            && text
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        if valid {
            Ok(Self(text))
        } else {
            Err(ClauseMapError::InvalidClause(text))
        }
    }

    /// The clause as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClauseId {
    type Error = ClauseMapError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::new(text)
    }
}

impl From<ClauseId> for String {
    fn from(id: ClauseId) -> Self {
        id.0
    }
}

impl fmt::Display for ClauseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An activity of a clause, e.g. `assessed`: lowercase ASCII letters, digits and `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActivityId(String);

impl ActivityId {
    /// The activity `text`, if it is snake_case (at most 64 characters).
    pub fn new(text: impl Into<String>) -> Result<Self, ClauseMapError> {
        let text = text.into();
        let valid = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(text))
        } else {
            Err(ClauseMapError::InvalidActivity(text))
        }
    }

    /// The activity as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ActivityId {
    type Error = ClauseMapError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::new(text)
    }
}

impl From<ActivityId> for String {
    fn from(id: ActivityId) -> Self {
        id.0
    }
}

impl fmt::Display for ActivityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a clause map was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClauseMapError {
    /// The text is not a clause map (syntax, a missing or unknown field, a bad identifier).
    #[error("clause map: {0}")]
    Parse(String),
    /// A clause that is not numbers separated by dots.
    #[error("{0:?} is not a clause (numbers separated by dots, e.g. 8.5.1)")]
    InvalidClause(String),
    /// An activity that is not snake_case.
    #[error("{0:?} is not an activity name (lowercase letters, digits and _)")]
    InvalidActivity(String),
    /// A clause named twice.
    #[error("clause {0} is mapped twice")]
    DuplicateClause(ClauseId),
    /// An activity named twice in one clause.
    #[error("clause {clause}: activity {activity} is mapped twice")]
    DuplicateActivity {
        /// The clause.
        clause: ClauseId,
        /// The activity.
        activity: ActivityId,
    },
    /// An activity no event evidences.
    #[error("clause {clause}: activity {activity} names no event")]
    NoEvents {
        /// The clause.
        clause: ClauseId,
        /// The activity.
        activity: ActivityId,
    },
    /// An event type that is not `<category>.<name>`.
    #[error(
        "clause {clause}: activity {activity}: {event_type:?} is not an event type <category>.<name>"
    )]
    InvalidEventType {
        /// The clause.
        clause: ClauseId,
        /// The activity.
        activity: ActivityId,
        /// The text given.
        event_type: String,
    },
}

/// An activity of a clause and the event types that evidence it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    /// Its name within the clause.
    pub id: ActivityId,
    /// What the standard asks.
    pub description: String,
    /// The event types that evidence it, `<category>.<name>`.
    pub events: Vec<EventType>,
}

/// A clause, its title and its activities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    /// The clause.
    pub id: ClauseId,
    /// Its title.
    pub title: String,
    /// Its activities.
    #[serde(rename = "activity")]
    pub activities: Vec<Activity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClauseFile {
    #[serde(rename = "clause")]
    clauses: Vec<Clause>,
}

/// One activity a given event type evidences: the clause and the activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidenced<'a> {
    /// The clause.
    pub clause: &'a Clause,
    /// The activity.
    pub activity: &'a Activity,
}

/// Which event types evidence which activity of which clause, loaded from TOML.
///
/// The reference map ([`ClauseMap::reference`]) covers 8.2.6, 8.3.3, 8.5.1, 8.5.3, 8.6.1,
/// 8.6.2, 8.6.3, 8.7.1, 9.4 and 10.1 with the events of the shipped record types; a product
/// adds its own events with [`ClauseMap::extend`].
///
/// ```
/// use smsys_core::EventType;
/// use smsys_processes::evidence::ClauseMap;
///
/// let mut map = ClauseMap::reference();
/// let assessed = EventType::new("change.assessed")?;
/// let found: Vec<String> = map
///     .activities_for(&assessed)
///     .map(|e| format!("{} {}", e.clause.id, e.activity.id))
///     .collect();
/// assert_eq!(found, ["8.5.1 assessed"]);
///
/// // A product evidences 8.5.1 assessment with an event of its own too.
/// let product = ClauseMap::from_toml(r#"
///     [[clause]]
///     id = "8.5.1"
///     title = "Change management"
///     [[clause.activity]]
///     id = "assessed"
///     description = "a security review of the change"
///     events = ["secops.change_reviewed"]
/// "#)?;
/// map.extend(product);
/// let review = EventType::new("secops.change_reviewed")?;
/// assert_eq!(map.activities_for(&review).count(), 1);
/// assert_eq!(map.unshipped(), [&review]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClauseMap {
    clauses: Vec<Clause>,
}

impl ClauseMap {
    /// The shipped map (`evidence/clause_map.toml`).
    pub fn reference() -> Self {
        Self::from_toml(REFERENCE)
            .unwrap_or_else(|e| unreachable!("the shipped clause map is valid: {e}"))
    }

    /// A map from TOML: `[[clause]]` tables (`id`, `title`) each with `[[clause.activity]]`
    /// tables (`id`, `description`, `events`). Unknown fields, clauses or activities named
    /// twice, activities without events and malformed event types are refused.
    pub fn from_toml(text: &str) -> Result<Self, ClauseMapError> {
        let file: ClauseFile =
            toml::from_str(text).map_err(|e| ClauseMapError::Parse(e.to_string()))?;
        Self::new(file.clauses)
    }

    /// A map of `clauses`, checked as [`ClauseMap::from_toml`] checks them.
    pub fn new(clauses: Vec<Clause>) -> Result<Self, ClauseMapError> {
        let mut seen = BTreeSet::new();
        for clause in &clauses {
            if !seen.insert(&clause.id) {
                return Err(ClauseMapError::DuplicateClause(clause.id.clone()));
            }
            let mut activities = BTreeSet::new();
            for activity in &clause.activities {
                if !activities.insert(&activity.id) {
                    return Err(ClauseMapError::DuplicateActivity {
                        clause: clause.id.clone(),
                        activity: activity.id.clone(),
                    });
                }
                if activity.events.is_empty() {
                    return Err(ClauseMapError::NoEvents {
                        clause: clause.id.clone(),
                        activity: activity.id.clone(),
                    });
                }
                if let Some(bad) = activity.events.iter().find(|e| !well_formed(e)) {
                    return Err(ClauseMapError::InvalidEventType {
                        clause: clause.id.clone(),
                        activity: activity.id.clone(),
                        event_type: bad.as_str().to_owned(),
                    });
                }
            }
        }
        Ok(Self { clauses })
    }

    /// Every clause, in the order given.
    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }

    /// The clause `id`, if mapped.
    pub fn clause(&self, id: &str) -> Option<&Clause> {
        self.clauses.iter().find(|c| c.id.as_str() == id)
    }

    /// Adds `other`: its new clauses after these, its new activities after a clause's own, its
    /// events added to an activity of the same name (each event type once per activity). This
    /// map's titles and descriptions are kept.
    pub fn extend(&mut self, other: ClauseMap) {
        for clause in other.clauses {
            let Some(mine) = self.clauses.iter_mut().find(|c| c.id == clause.id) else {
                self.clauses.push(clause);
                continue;
            };
            for activity in clause.activities {
                match mine.activities.iter_mut().find(|a| a.id == activity.id) {
                    Some(own) => {
                        for event in activity.events {
                            if !own.events.contains(&event) {
                                own.events.push(event);
                            }
                        }
                    }
                    None => mine.activities.push(activity),
                }
            }
        }
    }

    /// The activities `event_type` evidences, clause by clause.
    pub fn activities_for<'a>(
        &'a self,
        event_type: &'a EventType,
    ) -> impl Iterator<Item = Evidenced<'a>> + 'a {
        self.clauses.iter().flat_map(move |clause| {
            clause
                .activities
                .iter()
                .filter(move |a| a.events.contains(event_type))
                .map(move |activity| Evidenced { clause, activity })
        })
    }

    /// Every event type the map names, sorted, each once.
    pub fn event_types(&self) -> BTreeSet<&EventType> {
        self.clauses
            .iter()
            .flat_map(|c| &c.activities)
            .flat_map(|a| &a.events)
            .collect()
    }

    /// The event types the map names that no shipped stream type records (a product's own,
    /// or a misspelling), sorted.
    pub fn unshipped(&self) -> Vec<&EventType> {
        let shipped = shipped_event_types();
        self.event_types()
            .into_iter()
            .filter(|e| !shipped.contains(e.as_str()))
            .collect()
    }
}

fn well_formed(event_type: &EventType) -> bool {
    event_type
        .as_str()
        .split_once('.')
        .is_some_and(|(category, name)| {
            !category.is_empty() && !name.is_empty() && !name.contains('.')
        })
}

/// The names of the events of record type `K`: `logged`, the shared ones, its own.
fn record_events<K: RecordKind>() -> impl Iterator<Item = String> {
    std::iter::once("logged")
        .chain(RecordEvent::NAMES.iter().copied())
        .chain(K::Own::NAMES.iter().copied())
        .map(|name| format!("{}.{name}", K::CATEGORY))
}

/// Every event type a shipped stream type records.
pub(crate) fn shipped_event_types() -> BTreeSet<String> {
    let mut all: BTreeSet<String> = BTreeSet::new();
    all.extend(record_events::<Incident>());
    all.extend(record_events::<ServiceRequest>());
    all.extend(record_events::<Problem>());
    all.extend(record_events::<KnownError>());
    all.extend(record_events::<Change>());
    all.extend(record_events::<Release>());
    all.extend(record_events::<Nonconformity>());
    let ci = ConfigurationItem::CATEGORY;
    all.extend(CiEvent::NAMES.iter().map(|n| format!("{ci}.{n}")));
    let verification = CmdbVerification::CATEGORY;
    all.extend(
        VerificationEvent::NAMES
            .iter()
            .map(|n| format!("{verification}.{n}")),
    );
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> EventType {
        EventType::new(text).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn the_reference_map_covers_the_clauses_an_auditor_samples() {
        let map = ClauseMap::reference();
        for clause in [
            "8.2.6", "8.3.3", "8.5.1", "8.5.3", "8.6.1", "8.6.2", "8.6.3", "8.7.1", "9.4", "10.1",
        ] {
            let found = map.clause(clause);
            assert!(
                found.is_some_and(|c| !c.activities.is_empty()),
                "{clause} is mapped"
            );
        }
    }

    #[test]
    fn every_event_the_reference_map_names_is_a_shipped_event() {
        let map = ClauseMap::reference();
        assert_eq!(map.unshipped(), Vec::<&EventType>::new());
        let shipped = shipped_event_types();
        for name in [
            "change.assessed",
            "change.authorised",
            "release.baseline_taken",
        ] {
            assert!(shipped.contains(name), "{name}");
        }
        assert!(shipped.contains("incident.sla_breached"));
        assert!(shipped.contains("configuration_item.registered"));
        assert!(shipped.contains("cmdb_verification.completed"));
        assert!(!shipped.contains("change.baseline_taken"));
    }

    #[test]
    fn an_event_finds_every_activity_it_evidences() {
        let map = ClauseMap::reference();
        let baseline = event("release.baseline_taken");
        let mut found: Vec<(&str, &str)> = map
            .activities_for(&baseline)
            .map(|e| (e.clause.id.as_str(), e.activity.id.as_str()))
            .collect();
        found.sort_unstable();
        assert_eq!(
            found,
            [("8.2.6", "baseline_recorded"), ("8.5.3", "baselined")]
        );
        assert_eq!(map.activities_for(&event("change.nothing")).count(), 0);
    }

    #[test]
    fn unknown_fields_and_bad_names_are_refused() {
        let unknown = ClauseMap::from_toml(
            "[[clause]]\nid = \"8.5.1\"\ntitle = \"x\"\nscope = \"all\"\nactivity = []\n",
        );
        assert!(
            matches!(&unknown, Err(ClauseMapError::Parse(e)) if e.contains("scope")),
            "{unknown:?}"
        );
        let clause =
            ClauseMap::from_toml("[[clause]]\nid = \"8.x\"\ntitle = \"x\"\nactivity = []\n");
        assert!(matches!(clause, Err(ClauseMapError::Parse(e)) if e.contains("8.x")));
        let activity = "[[clause]]\nid = \"8.5.1\"\ntitle = \"x\"\n[[clause.activity]]\n";
        let bad = format!(
            "{activity}id = \"Assess\"\ndescription = \"\"\nevents = [\"change.assessed\"]\n"
        );
        assert!(matches!(
            ClauseMap::from_toml(&bad),
            Err(ClauseMapError::Parse(_))
        ));
        let no_dot = format!("{activity}id = \"a\"\ndescription = \"\"\nevents = [\"assessed\"]\n");
        assert!(matches!(
            ClauseMap::from_toml(&no_dot),
            Err(ClauseMapError::InvalidEventType { event_type, .. }) if event_type == "assessed"
        ));
        let empty = format!("{activity}id = \"a\"\ndescription = \"\"\nevents = []\n");
        assert!(matches!(
            ClauseMap::from_toml(&empty),
            Err(ClauseMapError::NoEvents { .. })
        ));
        let twice = format!("{activity}id = \"a\"\ndescription = \"\"\nevents = [\"c.d\"]\n");
        let twice = format!("{twice}{twice}");
        assert!(matches!(
            ClauseMap::from_toml(&twice),
            Err(ClauseMapError::DuplicateClause(c)) if c.as_str() == "8.5.1"
        ));
        assert!(ClauseMap::from_toml("not toml").is_err());
    }

    #[test]
    fn extending_merges_clauses_and_activities() {
        let mut map = ClauseMap::reference();
        let clauses = map.clauses().len();
        let product = ClauseMap::from_toml(
            r#"
            [[clause]]
            id = "8.5.1"
            title = "ignored"
            [[clause.activity]]
            id = "assessed"
            description = "ignored"
            events = ["change.assessed", "secops.reviewed"]
            [[clause.activity]]
            id = "security_checked"
            description = "a security check"
            events = ["secops.checked"]
            [[clause]]
            id = "7.5"
            title = "Documented information"
            [[clause.activity]]
            id = "protected"
            description = "records protected against alteration"
            events = ["audit.chain_verified"]
            "#,
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        map.extend(product);
        assert_eq!(map.clauses().len(), clauses + 1);
        let change = map.clause("8.5.1").unwrap_or_else(|| unreachable!());
        assert_eq!(change.title, "Change management");
        let assessed = change
            .activities
            .iter()
            .find(|a| a.id.as_str() == "assessed");
        assert_eq!(
            assessed.map(|a| a.events.clone()),
            Some(vec![event("change.assessed"), event("secops.reviewed")])
        );
        assert_eq!(map.activities_for(&event("secops.checked")).count(), 1);
        let unshipped: Vec<&str> = map.unshipped().iter().map(|e| e.as_str()).collect();
        assert_eq!(
            unshipped,
            ["audit.chain_verified", "secops.checked", "secops.reviewed"]
        );
    }
}
