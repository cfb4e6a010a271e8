//! Known errors (ISO/IEC 20000-1 8.6.3) as event streams: category `known_error`, references
//! like `KE-0001`, the shared events, and content revision, publication and retirement events
//! of their own.
//!
//! A known error is published knowledge: a symptom, its root cause when known, a workaround,
//! and the configuration items and services it affects. It is drafted (often from a
//! problem), published as version 1, revised into version 2, 3, ... while published, and
//! retired (possibly superseded by another known error). A draft dropped by the shared cancel
//! is discarded. The state keeps every published version, who published it and when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{EventSourced, Stamp};
use crate::event::Actor;
use crate::records::event::Logged;
use crate::records::ids::{CiId, RecordType, Reference, ServiceId};
use crate::records::kind::{LoggedEvent, OwnEvents, RecordKind, TypedEvent};
use crate::records::state::RecordState;

/// A known error's logged payload: the shared fields (the caller is its author) and its first
/// content, with the problem it came from. Stored at the shared logged schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownErrorLogged {
    /// The shared fields.
    #[serde(flatten)]
    pub record: Logged,
    /// The problem it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Reference>,
    /// What users and the service desk observe.
    pub symptom: String,
    /// The root cause, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    /// What to do until the cause is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workaround: Option<String>,
    /// Services it affects beyond the logged one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected_services: Vec<ServiceId>,
}

impl LoggedEvent for KnownErrorLogged {
    fn logged(&self) -> &Logged {
        &self.record
    }
}

/// A known error's own events: content revisions, publication and retirement. Each at schema
/// version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum PublicationEvent {
    /// The content was revised: while a draft, the draft is edited; once published, this is
    /// the next published version (the version number plus one).
    ContentRevised {
        /// What users and the service desk observe.
        symptom: String,
        /// The root cause, once known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        root_cause: Option<String>,
        /// What to do until the cause is removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workaround: Option<String>,
        /// The configuration items it affects.
        affected_cis: Vec<CiId>,
        /// Services it affects beyond the logged one.
        affected_services: Vec<ServiceId>,
        /// Why it was revised (may be empty for a draft).
        reason: String,
    },
    /// The draft was published: the first publication is version 1.
    Published {
        /// The version published.
        version: KnownErrorVersion,
    },
    /// It was retired: no longer offered to other processes.
    Retired {
        /// Why.
        reason: String,
        /// The known error that replaces it, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        superseded_by: Option<Reference>,
    },
}

impl OwnEvents for PublicationEvent {
    const NAMES: &'static [&'static str] = &["content_revised", "published", "retired"];

    fn name(&self) -> &'static str {
        match self {
            PublicationEvent::ContentRevised { .. } => "content_revised",
            PublicationEvent::Published { .. } => "published",
            PublicationEvent::Retired { .. } => "retired",
        }
    }
}

/// A known error's event (logged, shared or its own).
pub type KnownErrorEvent = TypedEvent<KnownError>;

/// The number of a published version of a known error: 1 for the first publication, one more
/// for each revision while published; 0 while never published.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct KnownErrorVersion(u32);

impl KnownErrorVersion {
    /// Never published.
    pub const NONE: KnownErrorVersion = KnownErrorVersion(0);
    /// The first publication.
    pub const FIRST: KnownErrorVersion = KnownErrorVersion(1);

    /// The version numbered `number`.
    pub const fn new(number: u32) -> Self {
        Self(number)
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The version after this one (saturating at `u32::MAX`).
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl std::fmt::Display for KnownErrorVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// What a known error says: its symptom, root cause, workaround and what it affects.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KnownErrorContent {
    /// What users and the service desk observe.
    pub symptom: String,
    /// The root cause, once known.
    pub root_cause: Option<String>,
    /// What to do until the cause is removed.
    pub workaround: Option<String>,
    /// The configuration items it affects.
    pub affected_cis: Vec<CiId>,
    /// Services it affects beyond the logged one.
    pub affected_services: Vec<ServiceId>,
}

impl KnownErrorContent {
    /// Whether it may be published: a symptom and a workaround are recorded (not blank).
    pub fn is_complete(&self) -> bool {
        let given = |text: &str| !text.trim().is_empty();
        given(&self.symptom) && self.workaround.as_deref().is_some_and(given)
    }
}

/// One published version: its number, its content, when and by whom it was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedVersion {
    /// Its number.
    pub version: KnownErrorVersion,
    /// What it says.
    pub content: KnownErrorContent,
    /// When it was published.
    pub at: DateTime<Utc>,
    /// Who published it.
    pub by: Option<Actor>,
}

/// A retirement: why, what supersedes it, who retired it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    /// Why.
    pub reason: String,
    /// The known error that replaces it, if any.
    pub superseded_by: Option<Reference>,
    /// Who retired it.
    pub by: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The state of a known error, derived from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KnownError {
    record: RecordState,
    problem: Option<Reference>,
    content: KnownErrorContent,
    versions: Vec<PublishedVersion>,
    retired: Option<Retirement>,
}

impl KnownError {
    /// The current content: the draft's before publication, the latest version's after.
    pub fn content(&self) -> &KnownErrorContent {
        &self.content
    }
    /// The latest published version's number ([`KnownErrorVersion::NONE`] while never
    /// published).
    pub fn version(&self) -> KnownErrorVersion {
        self.versions
            .last()
            .map_or(KnownErrorVersion::NONE, |v| v.version)
    }
    /// Every published version, oldest first.
    pub fn versions(&self) -> &[PublishedVersion] {
        &self.versions
    }
    /// The latest published version, once published.
    pub fn published(&self) -> Option<&PublishedVersion> {
        self.versions.last()
    }
    /// The problem it came from.
    pub fn problem(&self) -> Option<&Reference> {
        self.problem.as_ref()
    }
    /// The retirement, once retired.
    pub fn retired(&self) -> Option<&Retirement> {
        self.retired.as_ref()
    }
}

impl RecordKind for KnownError {
    const RECORD_TYPE: RecordType = RecordType::from_static("known_error");
    type Logged = KnownErrorLogged;
    type Own = PublicationEvent;

    fn record(&self) -> &RecordState {
        &self.record
    }
}

impl EventSourced for KnownError {
    const CATEGORY: &'static str = "known_error";
    const SNAPSHOT_VERSION: u32 = 1;
    type Event = KnownErrorEvent;

    fn evolve(&mut self, event: &KnownErrorEvent, stamp: Stamp<'_>) {
        match event {
            TypedEvent::Logged(logged) => {
                self.record.log(&logged.record, stamp);
                self.problem.clone_from(&logged.problem);
                self.content = KnownErrorContent {
                    symptom: logged.symptom.clone(),
                    root_cause: logged.root_cause.clone(),
                    workaround: logged.workaround.clone(),
                    affected_cis: logged.record.affected_cis.clone(),
                    affected_services: logged.affected_services.clone(),
                };
            }
            TypedEvent::Record(e) => self.record.apply(e, stamp),
            TypedEvent::Own(e) => self.apply_own(e, stamp),
        }
    }
}

impl KnownError {
    fn apply_own(&mut self, event: &PublicationEvent, stamp: Stamp<'_>) {
        match event {
            PublicationEvent::ContentRevised {
                symptom,
                root_cause,
                workaround,
                affected_cis,
                affected_services,
                reason: _,
            } => {
                self.content = KnownErrorContent {
                    symptom: symptom.clone(),
                    root_cause: root_cause.clone(),
                    workaround: workaround.clone(),
                    affected_cis: affected_cis.clone(),
                    affected_services: affected_services.clone(),
                };
                // Once published, a revision is the next published version.
                if !self.versions.is_empty() {
                    self.push_version(self.version().next(), stamp);
                }
            }
            PublicationEvent::Published { version } => self.push_version(*version, stamp),
            PublicationEvent::Retired {
                reason,
                superseded_by,
            } => {
                self.retired = Some(Retirement {
                    reason: reason.clone(),
                    superseded_by: superseded_by.clone(),
                    by: stamp.actor().cloned(),
                    at: stamp.at(),
                });
            }
        }
    }

    fn push_version(&mut self, version: KnownErrorVersion, stamp: Stamp<'_>) {
        self.versions.push(PublishedVersion {
            version,
            content: self.content.clone(),
            at: stamp.at(),
            by: stamp.actor().cloned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_event_names_are_distinct_from_the_shared_ones() {
        assert_eq!(KnownErrorEvent::name_clash(), None);
    }

    #[test]
    fn versions_count_from_one() {
        assert_eq!(KnownErrorVersion::NONE.next(), KnownErrorVersion::FIRST);
        assert_eq!(KnownErrorVersion::FIRST.next().get(), 2);
        assert_eq!(KnownErrorVersion::new(3).to_string(), "v3");
        assert_eq!(KnownError::default().version(), KnownErrorVersion::NONE);
    }

    #[test]
    fn content_is_complete_with_a_symptom_and_a_workaround() {
        let mut content = KnownErrorContent {
            symptom: "bounces".into(),
            ..KnownErrorContent::default()
        };
        assert!(!content.is_complete());
        content.workaround = Some("  ".into());
        assert!(!content.is_complete());
        content.workaround = Some("flush the queue".into());
        assert!(content.is_complete());
        content.symptom = String::new();
        assert!(!content.is_complete());
    }
}
