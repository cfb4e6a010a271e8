//! Personal data in event payloads, as a policy held as data: for each event type, which
//! fields of its payload are personal, what an erased field reads as, and which field names
//! the person the record is about (the data subject).
//!
//! The kernel only describes; a store decorator (`smsys_store::privacy`) encrypts the fields
//! the policy names before they reach the log, so that erasing a key (crypto-shredding) makes
//! them unreadable while the hash chain, which covers the ciphertext, still verifies.
//!
//! Fields are named by JSON pointers (RFC 6901) into the payload, e.g. `/summary` or
//! `/detail/notes`. A pointer that does not resolve in a given payload (an optional field
//! left out, another variant of a tagged enum) names nothing there. Pointers of one event
//! type must not nest (`/detail` and `/detail/notes`): each names a whole value. Array
//! elements are named by index only; name the whole array to cover all of them.
//!
//! An erased field reads as its `erased` value, which must still decode into the typed event
//! (`"[erased]"` for free text; for a validated id, a value its validation accepts).
//!
//! The policy is serde data (JSON or TOML), so a product extends the shipped one
//! (`smsys_core::records::personal_data`) with its own record types and fields:
//!
//! ```
//! use smsys_core::personal::{DataSubject, PersonalData};
//! use smsys_core::EventType;
//!
//! let policy: PersonalData = serde_json::from_value(serde_json::json!({
//!     "problem.logged": {
//!         "subject": "/reporter",
//!         "fields": [
//!             {"pointer": "/reporter", "erased": "erased"},
//!             {"pointer": "/summary", "erased": "[erased]"}
//!         ]
//!     }
//! }))?;
//! let logged = EventType::new("problem.logged")?;
//! assert_eq!(policy.fields(&logged).len(), 2);
//! let payload = serde_json::json!({"reporter": "ana", "summary": "disk full"});
//! assert_eq!(policy.subject_of(&logged, &payload)?, Some(DataSubject::new("ana")?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{EventType, name_id};
use crate::stream::IdError;

/// Longest data subject accepted, in bytes.
pub const MAX_SUBJECT_LEN: usize = 256;

name_id!(
    /// The person personal data is about (a record's caller), as the product identifies them:
    /// the unit of erasure. Printable characters, no control characters.
    DataSubject,
    "data subject",
    MAX_SUBJECT_LEN,
    "printable characters",
    |c: char| !c.is_control()
);

/// A JSON pointer (RFC 6901) to one field of a payload: `/` followed by reference tokens,
/// e.g. `/detail/notes`. The whole payload (the empty pointer) cannot be named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldPointer(String);

impl FieldPointer {
    /// Validates a pointer: it starts with `/`, and `~` is only used as `~0` or `~1`.
    pub fn new(pointer: impl Into<String>) -> Result<Self, PersonalDataError> {
        let pointer = pointer.into();
        let bad = |why: &'static str| PersonalDataError::Pointer {
            pointer: pointer.clone(),
            why,
        };
        if !pointer.starts_with('/') {
            return Err(bad("a field pointer starts with '/'"));
        }
        let mut chars = pointer.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(bad("'~' must be followed by '0' or '1'"));
            }
        }
        Ok(Self(pointer))
    }

    /// The pointer text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether one of the two pointers names a value inside the other's (or the same).
    fn nests_with(&self, other: &FieldPointer) -> bool {
        let within = |outer: &str, inner: &str| {
            inner == outer
                || inner
                    .strip_prefix(outer)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        within(&self.0, &other.0) || within(&other.0, &self.0)
    }
}

impl TryFrom<String> for FieldPointer {
    type Error = PersonalDataError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<FieldPointer> for String {
    fn from(value: FieldPointer) -> Self {
        value.0
    }
}

impl fmt::Display for FieldPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One personal field of an event type: where it is and what it reads as once erased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonalField {
    /// Where the field is in the payload.
    pub pointer: FieldPointer,
    /// What the field reads as once its key is erased: a value that still decodes into the
    /// typed event.
    pub erased: Value,
}

/// The personal fields of one event type, and the field naming its data subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonalFields {
    /// The field whose (string) value names the data subject, read from the plaintext when the
    /// event is appended (a record's logged event names its caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<FieldPointer>,
    /// The personal fields.
    #[serde(default)]
    pub fields: Vec<PersonalField>,
}

/// Why a personal data policy or a subject field was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PersonalDataError {
    /// A field pointer is not a JSON pointer to a field.
    #[error("field pointer {pointer:?} is invalid: {why}")]
    Pointer {
        /// The pointer.
        pointer: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Two pointers of one event type name the same value or one inside the other.
    #[error("personal fields {first} and {second} of {event_type} overlap: name each value once")]
    Overlap {
        /// The event type.
        event_type: EventType,
        /// One pointer.
        first: FieldPointer,
        /// The other.
        second: FieldPointer,
    },
    /// The subject field of an event holds something other than a valid subject. Only where
    /// and what kind of problem: the value itself is personal data and never reported.
    #[error("subject field {pointer} of {event_type} does not name a data subject: {problem}")]
    Subject {
        /// The event type.
        event_type: EventType,
        /// The subject field.
        pointer: FieldPointer,
        /// What is wrong with its value.
        problem: SubjectProblem,
    },
}

/// What is wrong with the value of a subject field (the value itself is never reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubjectProblem {
    /// The field holds something other than a string.
    #[error("it is not a string")]
    NotAString,
    /// The string is empty.
    #[error("it is empty")]
    Empty,
    /// The string is longer than [`MAX_SUBJECT_LEN`] bytes.
    #[error("it is longer than {MAX_SUBJECT_LEN} bytes")]
    TooLong,
    /// The string holds a control character.
    #[error("it holds a control character")]
    InvalidChar,
}

impl SubjectProblem {
    /// The kind of problem a refused [`DataSubject`] had, without its value.
    fn of(error: &IdError) -> Self {
        match error {
            IdError::Empty { .. } => Self::Empty,
            IdError::TooLong { .. } => Self::TooLong,
            IdError::InvalidChar { .. }
            | IdError::MissingSeparator(_)
            | IdError::NilUuid { .. } => Self::InvalidChar,
        }
    }
}

/// Which fields of which event types are personal data; see the [module docs](self).
/// Serialised as a map from event type to [`PersonalFields`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<EventType, PersonalFields>",
    into = "BTreeMap<EventType, PersonalFields>"
)]
pub struct PersonalData {
    event_types: BTreeMap<EventType, PersonalFields>,
}

impl TryFrom<BTreeMap<EventType, PersonalFields>> for PersonalData {
    type Error = PersonalDataError;
    fn try_from(event_types: BTreeMap<EventType, PersonalFields>) -> Result<Self, Self::Error> {
        for (event_type, fields) in &event_types {
            check_overlaps(event_type, &fields.fields)?;
        }
        Ok(Self { event_types })
    }
}

impl From<PersonalData> for BTreeMap<EventType, PersonalFields> {
    fn from(value: PersonalData) -> Self {
        value.event_types
    }
}

fn check_overlaps(
    event_type: &EventType,
    fields: &[PersonalField],
) -> Result<(), PersonalDataError> {
    for (i, a) in fields.iter().enumerate() {
        if let Some(b) = fields[i + 1..]
            .iter()
            .find(|b| a.pointer.nests_with(&b.pointer))
        {
            return Err(PersonalDataError::Overlap {
                event_type: event_type.clone(),
                first: a.pointer.clone(),
                second: b.pointer.clone(),
            });
        }
    }
    Ok(())
}

impl PersonalData {
    /// A policy naming nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a personal field of `event_type`, read as `erased` once erased. Refuses a pointer
    /// that overlaps one already named for the type.
    pub fn with_field(
        mut self,
        event_type: EventType,
        pointer: FieldPointer,
        erased: Value,
    ) -> Result<Self, PersonalDataError> {
        let entry = self.event_types.entry(event_type);
        let named = entry.key().clone();
        let fields = entry.or_default();
        fields.fields.push(PersonalField { pointer, erased });
        check_overlaps(&named, &fields.fields)?;
        Ok(self)
    }

    /// Names the field of `event_type` that names the data subject.
    pub fn with_subject(mut self, event_type: EventType, pointer: FieldPointer) -> Self {
        self.event_types.entry(event_type).or_default().subject = Some(pointer);
        self
    }

    /// This policy with every event type of `other` added (a type named by both gets the
    /// fields of both, and `other`'s subject when it names one).
    pub fn merge(mut self, other: PersonalData) -> Result<Self, PersonalDataError> {
        for (event_type, fields) in other.event_types {
            let entry = self.event_types.entry(event_type.clone()).or_default();
            entry.fields.extend(fields.fields);
            if fields.subject.is_some() {
                entry.subject = fields.subject;
            }
            check_overlaps(&event_type, &entry.fields)?;
        }
        Ok(self)
    }

    /// The personal fields of `event_type` (none when the type holds no personal data).
    pub fn fields(&self, event_type: &EventType) -> &[PersonalField] {
        self.event_types
            .get(event_type)
            .map_or(&[], |f| f.fields.as_slice())
    }

    /// The personal field of `event_type` at `pointer`, if the policy names it.
    pub fn field(&self, event_type: &EventType, pointer: &str) -> Option<&PersonalField> {
        self.fields(event_type)
            .iter()
            .find(|f| f.pointer.as_str() == pointer)
    }

    /// Every event type named, with its fields.
    pub fn event_types(&self) -> impl Iterator<Item = (&EventType, &PersonalFields)> {
        self.event_types.iter()
    }

    /// Whether the policy names nothing.
    pub fn is_empty(&self) -> bool {
        self.event_types
            .values()
            .all(|f| f.fields.is_empty() && f.subject.is_none())
    }

    /// Whether any personal field of `event_type` is present in `payload`.
    pub fn holds_personal(&self, event_type: &EventType, payload: &Value) -> bool {
        self.fields(event_type)
            .iter()
            .any(|f| payload.pointer(f.pointer.as_str()).is_some())
    }

    /// The data subject `payload` (of an event of `event_type`) names: `None` when the type
    /// has no subject field or the payload leaves it out; refused when the field holds
    /// anything but a valid [`DataSubject`].
    pub fn subject_of(
        &self,
        event_type: &EventType,
        payload: &Value,
    ) -> Result<Option<DataSubject>, PersonalDataError> {
        let Some(pointer) = self
            .event_types
            .get(event_type)
            .and_then(|f| f.subject.as_ref())
        else {
            return Ok(None);
        };
        let Some(value) = payload.pointer(pointer.as_str()) else {
            return Ok(None);
        };
        let refuse = |problem| PersonalDataError::Subject {
            event_type: event_type.clone(),
            pointer: pointer.clone(),
            problem,
        };
        let text = value
            .as_str()
            .ok_or_else(|| refuse(SubjectProblem::NotAString))?;
        DataSubject::new(text)
            .map(Some)
            .map_err(|e: IdError| refuse(SubjectProblem::of(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name: &str) -> EventType {
        EventType::new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ptr(p: &str) -> FieldPointer {
        FieldPointer::new(p).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn pointers_name_fields_only() {
        assert!(FieldPointer::new("/summary").is_ok());
        assert!(FieldPointer::new("/a~1b/c~0").is_ok());
        for bad in ["", "summary", "/a~2", "/a~"] {
            assert!(FieldPointer::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlapping_fields_are_refused_in_code_and_in_data() {
        let policy = PersonalData::new()
            .with_field(ty("x.y"), ptr("/detail"), Value::Null)
            .and_then(|p| p.with_field(ty("x.y"), ptr("/detail/notes"), Value::Null));
        assert!(matches!(policy, Err(PersonalDataError::Overlap { .. })));
        let sibling = PersonalData::new()
            .with_field(ty("x.y"), ptr("/detail"), Value::Null)
            .and_then(|p| p.with_field(ty("x.y"), ptr("/details"), Value::Null));
        assert!(sibling.is_ok());
        let json = serde_json::json!({"x.y": {"fields": [
            {"pointer": "/a", "erased": null}, {"pointer": "/a/b", "erased": null}]}});
        assert!(serde_json::from_value::<PersonalData>(json).is_err());
    }

    #[test]
    fn subjects_are_read_from_their_field() {
        let policy = PersonalData::new().with_subject(ty("x.logged"), ptr("/caller"));
        let named = serde_json::json!({"caller": "ana"});
        assert_eq!(
            policy.subject_of(&ty("x.logged"), &named),
            Ok(Some(
                DataSubject::new("ana").unwrap_or_else(|e| panic!("{e}"))
            ))
        );
        assert_eq!(policy.subject_of(&ty("x.noted"), &named), Ok(None));
        assert_eq!(
            policy.subject_of(&ty("x.logged"), &serde_json::json!({})),
            Ok(None)
        );
        let number = serde_json::json!({"caller": 7});
        assert!(matches!(
            policy.subject_of(&ty("x.logged"), &number),
            Err(PersonalDataError::Subject {
                problem: SubjectProblem::NotAString,
                ..
            })
        ));
    }

    #[test]
    fn refused_subjects_are_not_quoted() {
        let policy = PersonalData::new().with_subject(ty("x.logged"), ptr("/caller"));
        for (value, problem) in [
            (serde_json::json!(5550100), SubjectProblem::NotAString),
            (
                serde_json::json!({"phone": "555-0100"}),
                SubjectProblem::NotAString,
            ),
            (
                serde_json::json!("ana\n555-0100"),
                SubjectProblem::InvalidChar,
            ),
            (
                serde_json::json!("555-0100".repeat(40)),
                SubjectProblem::TooLong,
            ),
            (serde_json::json!(""), SubjectProblem::Empty),
        ] {
            let payload = serde_json::json!({ "caller": value });
            let error = policy.subject_of(&ty("x.logged"), &payload);
            let Err(error) = error else {
                panic!("accepted {payload}")
            };
            assert!(
                matches!(&error, PersonalDataError::Subject { problem: p, .. } if *p == problem),
                "{error:?}"
            );
            let (shown, debug) = (error.to_string(), format!("{error:?}"));
            assert!(
                !shown.contains("555") && !debug.contains("555"),
                "{shown} {debug}"
            );
            assert!(shown.contains("/caller"), "{shown}");
        }
    }
}
