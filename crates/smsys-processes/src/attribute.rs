//! The custom attributes a product adds to a record type: a typed schema in the policy, so an
//! unknown or ill-typed attribute is refused with a reason before it is recorded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smsys_core::records::{AttributeName, AttributeValue, Attributes};

/// The kind of value an attribute takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKind {
    /// Free text.
    Text,
    /// A number.
    Number,
    /// Yes or no.
    Flag,
    /// A calendar date, written `YYYY-MM-DD`.
    Date,
    /// One of the allowed texts.
    Choice,
}

impl AttributeKind {
    fn as_str(self) -> &'static str {
        match self {
            AttributeKind::Text => "text",
            AttributeKind::Number => "a number",
            AttributeKind::Flag => "a flag",
            AttributeKind::Date => "a date (YYYY-MM-DD)",
            AttributeKind::Choice => "one of its choices",
        }
    }
}

/// One attribute of the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeSpec {
    /// The kind of value.
    pub kind: AttributeKind,
    /// For choices: the allowed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
    /// Whether a record must be logged with it (for a configuration item: registered with
    /// it; `required_at_registration` is read as the same field).
    #[serde(default, alias = "required_at_registration")]
    pub required_at_log: bool,
}

impl AttributeSpec {
    /// An attribute of `kind`, optional at logging.
    pub fn new(kind: AttributeKind) -> Self {
        Self {
            kind,
            allowed: Vec::new(),
            required_at_log: false,
        }
    }

    /// A choice among `allowed`.
    pub fn choice<S: Into<String>>(allowed: impl IntoIterator<Item = S>) -> Self {
        Self {
            kind: AttributeKind::Choice,
            allowed: allowed.into_iter().map(Into::into).collect(),
            required_at_log: false,
        }
    }

    /// Required when a record is logged.
    pub fn required_at_log(mut self) -> Self {
        self.required_at_log = true;
        self
    }
}

/// Why an attribute was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// The schema has no such attribute.
    #[error("attribute {0} is not in the attribute schema")]
    Unknown(AttributeName),
    /// A value of another kind.
    #[error("attribute {name} takes {expected}, not {found}")]
    WrongKind {
        /// The attribute.
        name: AttributeName,
        /// What it takes.
        expected: &'static str,
        /// What was given.
        found: String,
    },
    /// An attribute required from logging on was not given, or is being removed.
    #[error("attribute {0} is required from the moment the record is logged")]
    Required(AttributeName),
}

/// The custom attributes of a record type, by name (TOML/JSON: a table of specs).
///
/// ```
/// use smsys_core::records::{AttributeName, AttributeValue};
/// use smsys_processes::attribute::{AttributeKind, AttributeSchema, AttributeSpec};
/// let vendor = AttributeName::new("vendor")?;
/// let schema = AttributeSchema::default()
///     .with(vendor.clone(), AttributeSpec::choice(["acme", "globex"]));
/// assert!(schema.check(&vendor, &AttributeValue::from("acme")).is_ok());
/// assert_eq!(
///     schema.check(&vendor, &AttributeValue::from("initech")).unwrap_err().to_string(),
///     "attribute vendor takes one of its choices, not \"initech\""
/// );
/// # Ok::<(), smsys_core::IdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttributeSchema {
    attributes: BTreeMap<AttributeName, AttributeSpec>,
}

impl AttributeSchema {
    /// Adds (or replaces) an attribute.
    pub fn with(mut self, name: AttributeName, spec: AttributeSpec) -> Self {
        self.attributes.insert(name, spec);
        self
    }

    /// The spec of `name`.
    pub fn get(&self, name: &AttributeName) -> Option<&AttributeSpec> {
        self.attributes.get(name)
    }

    /// Every attribute and its spec, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&AttributeName, &AttributeSpec)> {
        self.attributes.iter()
    }

    /// Checks one value.
    pub fn check(
        &self,
        name: &AttributeName,
        value: &AttributeValue,
    ) -> Result<(), AttributeError> {
        let spec = self
            .attributes
            .get(name)
            .ok_or_else(|| AttributeError::Unknown(name.clone()))?;
        let fits = match (spec.kind, value) {
            (AttributeKind::Text, AttributeValue::Text(_))
            | (AttributeKind::Number, AttributeValue::Number(_))
            | (AttributeKind::Flag, AttributeValue::Flag(_)) => true,
            (AttributeKind::Date, AttributeValue::Text(text)) => {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
            }
            (AttributeKind::Choice, AttributeValue::Text(text)) => spec.allowed.contains(text),
            (
                AttributeKind::Text
                | AttributeKind::Number
                | AttributeKind::Flag
                | AttributeKind::Date
                | AttributeKind::Choice,
                AttributeValue::Text(_) | AttributeValue::Number(_) | AttributeValue::Flag(_),
            ) => false,
        };
        if fits {
            Ok(())
        } else {
            Err(AttributeError::WrongKind {
                name: name.clone(),
                expected: spec.kind.as_str(),
                found: match value {
                    AttributeValue::Text(text) => format!("{text:?}"),
                    AttributeValue::Number(_) | AttributeValue::Flag(_) => value.kind().into(),
                },
            })
        }
    }

    /// Checks the attributes a record is logged with: each must fit, and every attribute
    /// required at logging must be there.
    pub fn check_log(&self, attributes: &Attributes) -> Result<(), AttributeError> {
        for (name, value) in attributes {
            self.check(name, value)?;
        }
        match self
            .attributes
            .iter()
            .find(|(name, spec)| spec.required_at_log && !attributes.contains_key(*name))
        {
            Some((name, _)) => Err(AttributeError::Required(name.clone())),
            None => Ok(()),
        }
    }
}
