//! Upcasters: lift payloads of old schema versions to the current one on read.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::event::EventType;

type Step = Box<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

/// A payload that no upcaster could lift.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot upcast {event_type} from schema version {from_version}: {reason}")]
pub struct UpcastError {
    /// The event type.
    pub event_type: EventType,
    /// The version the failing step started from.
    pub from_version: u32,
    /// What the step said.
    pub reason: String,
}

/// A registry of single-step upcasters, `(type, v) -> v + 1`, applied in a chain on read.
///
/// ```
/// use serde_json::json;
/// use smsys_core::{EventType, Upcasters};
/// let upcasters = Upcasters::new().register("incident.logged", 1, |mut p| {
///     p["channel"] = json!("unknown"); // v2 added a required channel
///     Ok(p)
/// });
/// let t = EventType::new("incident.logged")?;
/// let (version, payload) = upcasters.upcast(&t, 1, json!({"summary": "x"}))?;
/// assert_eq!(version, 2);
/// assert_eq!(payload["channel"], "unknown");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Upcasters {
    steps: HashMap<(String, u32), Step>,
}

impl Upcasters {
    /// No upcasters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step that lifts `event_type` payloads from `from_version` to
    /// `from_version + 1`. The step returns a reason when the payload cannot be lifted.
    pub fn register<F>(mut self, event_type: &str, from_version: u32, step: F) -> Self
    where
        F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.steps
            .insert((event_type.to_owned(), from_version), Box::new(step));
        self
    }

    /// Lifts a payload through every registered step; returns the version reached and the
    /// payload at that version.
    pub fn upcast(
        &self,
        event_type: &EventType,
        mut version: u32,
        mut payload: Value,
    ) -> Result<(u32, Value), UpcastError> {
        while let Some(step) = self.steps.get(&(event_type.as_str().to_owned(), version)) {
            payload = step(payload).map_err(|reason| UpcastError {
                event_type: event_type.clone(),
                from_version: version,
                reason,
            })?;
            version += 1;
        }
        Ok((version, payload))
    }

    /// Whether no step is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.steps.keys().collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}
