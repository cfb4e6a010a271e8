//! Custom attributes: the fields a product adds to a record type (symptom, location, vendor,
//! ...), checked against the attribute schema of its policy before they are recorded.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::name_id;
use crate::stream::IdError;

name_id!(
    /// The name of a custom attribute: ASCII lowercase letters, digits and `_`, 1 to 64 bytes.
    ///
    /// ```
    /// use smsys_core::records::AttributeName;
    /// assert!(AttributeName::new("vendor").is_ok());
    /// assert!(AttributeName::new("Vendor Name").is_err());
    /// ```
    AttributeName,
    "attribute name",
    64,
    "ASCII lowercase letters, digits and '_'",
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
);

/// The value of a custom attribute, stored as plain JSON (`"text"`, `12`, `1.5`, `true`).
///
/// Numbers are [`serde_json::Number`], which holds no NaN or infinity: whatever is recorded
/// reads back equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// A yes/no flag.
    Flag(bool),
    /// A number.
    Number(serde_json::Number),
    /// Text (also dates and choices, which the schema checks).
    Text(String),
}

impl AttributeValue {
    /// The kind of value, as refusals name it.
    pub fn kind(&self) -> &'static str {
        match self {
            AttributeValue::Flag(_) => "flag",
            AttributeValue::Number(_) => "number",
            AttributeValue::Text(_) => "text",
        }
    }
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> Self {
        AttributeValue::Text(value.to_owned())
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        AttributeValue::Text(value)
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> Self {
        AttributeValue::Flag(value)
    }
}

impl From<i64> for AttributeValue {
    fn from(value: i64) -> Self {
        AttributeValue::Number(value.into())
    }
}

impl fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::Flag(v) => write!(f, "{v}"),
            AttributeValue::Number(v) => write!(f, "{v}"),
            AttributeValue::Text(v) => f.write_str(v),
        }
    }
}

/// A record's custom attributes by name.
pub type Attributes = BTreeMap<AttributeName, AttributeValue>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_as_plain_json() {
        for (value, json) in [
            (AttributeValue::from("acme"), "\"acme\""),
            (AttributeValue::from(12), "12"),
            (AttributeValue::from(true), "true"),
        ] {
            assert_eq!(serde_json::to_string(&value).ok().as_deref(), Some(json));
            assert_eq!(
                serde_json::from_str::<AttributeValue>(json).ok(),
                Some(value)
            );
        }
        let half: AttributeValue =
            serde_json::from_str("1.5").unwrap_or(AttributeValue::Flag(false));
        assert_eq!(half.kind(), "number");
        assert!(serde_json::Number::from_f64(f64::NAN).is_none());
    }
}
