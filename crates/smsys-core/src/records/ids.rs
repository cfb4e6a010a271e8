//! Identifiers a record names: its reference, services, configuration items, groups, people,
//! and the kinds of record and link. Each is validated once, when it is made.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::name_id;
use crate::stream::{IdError, MAX_ENTITY_ID_LEN, validate};

/// Longest name (group, person, service, configuration item) accepted, in bytes.
pub const MAX_NAME_ID_LEN: usize = 256;

fn printable(c: char) -> bool {
    !c.is_control()
}

name_id!(
    /// A record's human reference, e.g. `INC-0042`: also the entity id of its stream, so it
    /// takes ASCII letters, digits and `_ - . :`, 1 to 128 bytes.
    ///
    /// ```
    /// use smsys_core::records::Reference;
    /// assert!(Reference::new("INC-0042").is_ok());
    /// assert!(Reference::new("INC 42").is_err());
    /// ```
    Reference,
    "record reference",
    MAX_ENTITY_ID_LEN,
    "ASCII letters, digits and '_', '-', '.', ':'",
    |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
);

name_id!(
    /// A support group, e.g. `network-l2`. Any text without control characters, not blank,
    /// at most [`MAX_NAME_ID_LEN`] bytes.
    GroupId,
    "group",
    MAX_NAME_ID_LEN,
    "characters other than control characters",
    printable
);

name_id!(
    /// A person (caller, assignee, approver, manager), as the product identifies them; the
    /// same text as the [`Actor`](crate::Actor) they act as, so rules compare identities.
    PersonId,
    "person",
    MAX_NAME_ID_LEN,
    "characters other than control characters",
    printable
);

name_id!(
    /// A service of the catalogue, e.g. `email`.
    ServiceId,
    "service",
    MAX_NAME_ID_LEN,
    "characters other than control characters",
    printable
);

name_id!(
    /// A configuration item, e.g. `mx-01`.
    CiId,
    "configuration item",
    MAX_NAME_ID_LEN,
    "characters other than control characters",
    printable
);

impl From<&crate::event::Actor> for PersonId {
    /// The person an actor acts as: the same text. Actors and people share their rules (not
    /// blank, no control characters, at most 256 bytes), so every actor is a valid person id.
    fn from(actor: &crate::event::Actor) -> Self {
        Self(actor.as_str().to_owned())
    }
}

macro_rules! static_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Cow<'static, str>);

        impl $name {
            /// Validates a name: ASCII lowercase letters, digits and `_`, 1 to 64 bytes.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate($kind, &value, 64, "ASCII lowercase letters, digits and '_'", |c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
                })?;
                Ok(Self(Cow::Owned(value)))
            }

            /// A name known at compile time, checked like [`Self::new`]: in a `const` an invalid
            /// name does not compile.
            ///
            /// # Panics
            ///
            /// When the name is invalid (outside a `const`); use [`Self::new`] for names read
            /// at run time.
            pub const fn from_static(value: &'static str) -> Self {
                let bytes = value.as_bytes();
                assert!(
                    !bytes.is_empty() && bytes.len() <= 64,
                    concat!("a ", $kind, " has 1 to 64 bytes")
                );
                let mut i = 0;
                while i < bytes.len() {
                    let c = bytes[i];
                    assert!(
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_',
                        concat!("a ", $kind, " takes ASCII lowercase letters, digits and '_'")
                    );
                    i += 1;
                }
                Self(Cow::Borrowed(value))
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0.into_owned()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

static_name!(
    /// The name of a record type in lifecycles, SLA definitions and reports, e.g. `incident`
    /// or `service_request`. Each record type declares its own; none is listed centrally.
    RecordType,
    "record type"
);

static_name!(
    /// What a link points to, e.g. `problem`, `change`, `configuration_item`: the kinds are
    /// open, so a new record type brings its own.
    LinkKind,
    "link kind"
);

impl LinkKind {
    /// A problem record.
    pub const PROBLEM: LinkKind = LinkKind::from_static("problem");
    /// A change record.
    pub const CHANGE: LinkKind = LinkKind::from_static("change");
    /// A configuration item.
    pub const CONFIGURATION_ITEM: LinkKind = LinkKind::from_static("configuration_item");
    /// The parent incident (for child incidents).
    pub const PARENT_INCIDENT: LinkKind = LinkKind::from_static("parent_incident");
    /// An incident record (from a problem, a known error or a change).
    pub const INCIDENT: LinkKind = LinkKind::from_static("incident");
    /// A known error record.
    pub const KNOWN_ERROR: LinkKind = LinkKind::from_static("known_error");
    /// A release record.
    pub const RELEASE: LinkKind = LinkKind::from_static("release");
    /// A nonconformity record (from the record or change it was raised from).
    pub const NONCONFORMITY: LinkKind = LinkKind::from_static("nonconformity");
}

static_name!(
    /// A type of configuration item, e.g. `server`, `application`, `service`: the types and
    /// their rules are policy data.
    CiType,
    "CI type"
);

static_name!(
    /// A type of relationship between two CIs, read from the CI that records it to its target:
    /// `app depends_on db`, `app runs_on srv`. The four below ship; products add their own.
    Relationship,
    "relationship type"
);

impl Relationship {
    /// The source needs the target to work.
    pub const DEPENDS_ON: Relationship = Relationship::from_static("depends_on");
    /// The source runs on the target (software on a host).
    pub const RUNS_ON: Relationship = Relationship::from_static("runs_on");
    /// The source is connected to the target (network).
    pub const CONNECTS_TO: Relationship = Relationship::from_static("connects_to");
    /// The source is a part of the target (a disk of a server, a server of a cluster).
    pub const PART_OF: Relationship = Relationship::from_static("part_of");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_refuse_blank_control_and_overlong_text() {
        assert!(GroupId::new("network l2").is_ok());
        assert!(matches!(GroupId::new("  "), Err(IdError::Empty { .. })));
        assert!(PersonId::new("a\nb").is_err());
        assert!(ServiceId::new("x".repeat(MAX_NAME_ID_LEN + 1)).is_err());
        assert!(Reference::new("INC/1").is_err());
        assert!(RecordType::new("Incident").is_err());
        assert_eq!(LinkKind::new("problem").ok(), Some(LinkKind::PROBLEM));
    }

    #[test]
    fn static_names_are_checked_like_names_read_at_run_time() {
        assert_eq!(LinkKind::from_static("known_error").as_str(), "known_error");
        // An invalid name would be stored and never read back: it does not get that far.
        let text = String::from("Known-Error");
        let leaked: &'static str = Box::leak(text.into_boxed_str());
        assert!(std::panic::catch_unwind(|| LinkKind::from_static(leaked)).is_err());
    }

    #[test]
    fn identifiers_serialise_as_plain_strings_and_validate_on_read() {
        let json = serde_json::to_string(&CiId::new("mx-01").ok()).ok();
        assert_eq!(json.as_deref(), Some("\"mx-01\""));
        assert!(serde_json::from_str::<GroupId>("\"\"").is_err());
        assert_eq!(
            serde_json::from_str::<LinkKind>("\"change\"").ok(),
            Some(LinkKind::CHANGE)
        );
    }
}
