//! Stream identity, per-stream versions, global log positions and expected versions.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Longest category name accepted, in bytes.
pub const MAX_CATEGORY_LEN: usize = 64;
/// Longest entity id accepted, in bytes.
pub const MAX_ENTITY_ID_LEN: usize = 128;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier was empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which identifier (e.g. "stream category").
        kind: &'static str,
    },
    /// The identifier was longer than allowed.
    #[error("{kind} is {len} bytes long, at most {max} are allowed")]
    TooLong {
        /// Which identifier.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The identifier contained a character outside its allowed set.
    #[error("{kind} {value:?} contains {ch:?}; allowed are {allowed}")]
    InvalidChar {
        /// Which identifier.
        kind: &'static str,
        /// The refused value.
        value: String,
        /// The first offending character.
        ch: char,
        /// The allowed set, in words.
        allowed: &'static str,
    },
    /// A stream id without the `-` that separates category and entity id.
    #[error("stream id {0:?} has no '-' between category and entity id")]
    MissingSeparator(String),
    /// A nil UUID where a real identifier is required.
    #[error("{kind} must not be the nil uuid")]
    NilUuid {
        /// Which identifier.
        kind: &'static str,
    },
}

pub(crate) fn validate(
    kind: &'static str,
    value: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > max {
        return Err(IdError::TooLong {
            kind,
            len: value.len(),
            max,
        });
    }
    if let Some(ch) = value.chars().find(|c| !ok(*c)) {
        return Err(IdError::InvalidChar {
            kind,
            value: value.to_owned(),
            ch,
            allowed,
        });
    }
    Ok(())
}

/// The kind of record a stream holds, e.g. `incident` or `change`.
///
/// ASCII letters, digits and `_`, 1 to [`MAX_CATEGORY_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    /// Validates and wraps a category name.
    ///
    /// ```
    /// use smsys_core::Category;
    /// assert!(Category::new("incident").is_ok());
    /// assert!(Category::new("in-cident").is_err());
    /// ```
    pub fn new(name: impl Into<String>) -> Result<Self, IdError> {
        let name = name.into();
        validate(
            "stream category",
            &name,
            MAX_CATEGORY_LEN,
            "ASCII letters, digits and '_'",
            |c| c.is_ascii_alphanumeric() || c == '_',
        )?;
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Category {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Category> for String {
    fn from(value: Category) -> Self {
        value.0
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// Identifies one event stream: a [`Category`] and an entity id, written `category-entity`.
///
/// The entity id takes ASCII letters, digits and `_ - . :`, 1 to [`MAX_ENTITY_ID_LEN`] bytes.
/// The first `-` of the written form separates the two parts.
///
/// ```
/// use smsys_core::StreamId;
/// let id: StreamId = "incident-INC-0042".parse()?;
/// assert_eq!(id.category().as_str(), "incident");
/// assert_eq!(id.entity_id(), "INC-0042");
/// assert_eq!(id.to_string(), "incident-INC-0042");
/// # Ok::<(), smsys_core::IdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId {
    // Shared: every recorded event of a stream carries its id, and cloning it is a count bump.
    full: Arc<str>,
    split: usize,
}

impl StreamId {
    /// Builds a stream id from a category and an entity id.
    pub fn new(category: &Category, entity_id: &str) -> Result<Self, IdError> {
        validate(
            "entity id",
            entity_id,
            MAX_ENTITY_ID_LEN,
            "ASCII letters, digits and '_', '-', '.', ':'",
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'),
        )?;
        Ok(Self {
            full: format!("{}-{}", category.as_str(), entity_id).into(),
            split: category.as_str().len(),
        })
    }

    /// The category part.
    pub fn category(&self) -> Category {
        Category(self.full[..self.split].to_owned())
    }

    /// The category part, borrowed.
    pub fn category_str(&self) -> &str {
        &self.full[..self.split]
    }

    /// The entity id part.
    pub fn entity_id(&self) -> &str {
        &self.full[self.split + 1..]
    }

    /// The written form, `category-entity`.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl FromStr for StreamId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (category, entity) = s
            .split_once('-')
            .ok_or_else(|| IdError::MissingSeparator(s.to_owned()))?;
        Self::new(&Category::new(category)?, entity)
    }
}

impl TryFrom<String> for StreamId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.full.to_string()
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.full)
    }
}

/// The version of a stream: the number of events in it once a given event is appended.
///
/// The first event of a stream has version 1; a stream that does not exist has no version.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    /// Version of the first event of a stream.
    pub const FIRST: Version = Version(1);

    /// Wraps a raw version number.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version after this one (saturating: no stream gets near `u64::MAX` events, and a
    /// caller-supplied version must never overflow).
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The place of an event in the store's global log.
///
/// Positions are ordered first by `commit`, then by `sequence`, and strictly increase along the
/// log in the order every reader and subscription sees. Embedded stores (memory, SQLite) commit
/// one transaction at a time, so they leave `commit` at 0 and number events densely from 1 in
/// `sequence`. The PostgreSQL store, where concurrent transactions commit out of sequence order,
/// puts the writing transaction's id in `commit`, so that the order is the commit order.
///
/// A position is a checkpoint: reading the log "after" a position resumes right behind it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Position {
    commit: u64,
    sequence: u64,
}

impl Position {
    /// The position before the first event: reading after it reads the whole log.
    pub const START: Position = Position {
        commit: 0,
        sequence: 0,
    };

    /// A position from its two parts.
    pub const fn new(commit: u64, sequence: u64) -> Self {
        Self { commit, sequence }
    }

    /// A position of a store that numbers its log densely (`commit` 0).
    pub const fn from_sequence(sequence: u64) -> Self {
        Self {
            commit: 0,
            sequence,
        }
    }

    /// The commit part (0 in embedded stores).
    pub const fn commit(self) -> u64 {
        self.commit
    }

    /// The sequence part.
    pub const fn sequence(self) -> u64 {
        self.sequence
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.commit == 0 {
            write!(f, "{}", self.sequence)
        } else {
            write!(f, "{}:{}", self.commit, self.sequence)
        }
    }
}

/// What the writer believes about a stream's version when appending (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream's state.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must exist, at any version.
    StreamExists,
    /// The stream must be at exactly this version.
    Exact(Version),
}

impl ExpectedVersion {
    /// Whether a stream whose current version is `current` (`None` when it does not exist)
    /// satisfies this expectation.
    pub fn accepts(self, current: Option<Version>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::StreamExists => current.is_some(),
            ExpectedVersion::Exact(v) => current == Some(v),
        }
    }

    /// Whether an append whose first event landed at `first` could have been made under this
    /// expectation: used to recognise a retried append.
    pub fn accepts_place(self, first: Version) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => first == Version::FIRST,
            ExpectedVersion::StreamExists => first > Version::FIRST,
            ExpectedVersion::Exact(v) => v.get().checked_add(1) == Some(first.get()),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_round_trips_through_text() {
        let id: StreamId = "change-CHG-1.2:3".parse().unwrap();
        assert_eq!(id.category_str(), "change");
        assert_eq!(id.entity_id(), "CHG-1.2:3");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"change-CHG-1.2:3\"");
        assert_eq!(serde_json::from_str::<StreamId>(&json).unwrap(), id);
    }

    #[test]
    fn bad_stream_ids_say_what_is_wrong() {
        assert_eq!(
            "incident".parse::<StreamId>(),
            Err(IdError::MissingSeparator("incident".into()))
        );
        assert_eq!(
            "-x".parse::<StreamId>(),
            Err(IdError::Empty {
                kind: "stream category"
            })
        );
        assert_eq!(
            "incident-".parse::<StreamId>(),
            Err(IdError::Empty { kind: "entity id" })
        );
        assert!(matches!(
            "incident-a b".parse::<StreamId>(),
            Err(IdError::InvalidChar { ch: ' ', .. })
        ));
        let long = format!("incident-{}", "x".repeat(MAX_ENTITY_ID_LEN + 1));
        assert!(matches!(
            long.parse::<StreamId>(),
            Err(IdError::TooLong { len: 129, .. })
        ));
        assert!(serde_json::from_str::<StreamId>("\"no_separator\"").is_err());
    }

    #[test]
    fn positions_order_by_commit_then_sequence() {
        assert!(Position::new(5, 1) > Position::new(4, 9));
        assert!(Position::from_sequence(2) > Position::from_sequence(1));
        assert!(Position::START < Position::from_sequence(1));
        assert_eq!(Position::new(7, 3).to_string(), "7:3");
        assert_eq!(Position::from_sequence(3).to_string(), "3");
    }

    #[test]
    fn expected_version_acceptance() {
        let v2 = Some(Version::new(2));
        assert!(ExpectedVersion::Any.accepts(None));
        assert!(ExpectedVersion::NoStream.accepts(None));
        assert!(!ExpectedVersion::NoStream.accepts(v2));
        assert!(ExpectedVersion::StreamExists.accepts(v2));
        assert!(!ExpectedVersion::StreamExists.accepts(None));
        assert!(ExpectedVersion::Exact(Version::new(2)).accepts(v2));
        assert!(!ExpectedVersion::Exact(Version::new(1)).accepts(v2));
        assert!(ExpectedVersion::Exact(Version::new(2)).accepts_place(Version::new(3)));
        assert!(!ExpectedVersion::NoStream.accepts_place(Version::new(2)));
        // A caller-supplied version at the end of the range never overflows.
        assert!(!ExpectedVersion::Exact(Version::new(u64::MAX)).accepts_place(Version::new(0)));
        assert_eq!(Version::new(u64::MAX).next(), Version::new(u64::MAX));
    }
}
