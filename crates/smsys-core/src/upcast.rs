//! Upcasters: lift payloads of old schema versions to the current one on read.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::aggregate::{DecodeError, DomainEvent};
use crate::command::LoadError;
use crate::event::EventType;
use crate::stream::{StreamId, Version};

type Step = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

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

/// Why a stored event could not be read as a typed one.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    /// No upcaster could lift it.
    #[error(transparent)]
    Upcast(UpcastError),
    /// It does not decode at its current schema.
    #[error(transparent)]
    Decode(DecodeError),
}

impl ReadFailure {
    /// The failure as a [`LoadError`] of event `version` of `stream`.
    pub fn at(self, stream: &StreamId, version: Version) -> LoadError {
        let stream = stream.clone();
        match self {
            ReadFailure::Upcast(source) => LoadError::Upcast {
                stream,
                version,
                source,
            },
            ReadFailure::Decode(source) => LoadError::Decode {
                stream,
                version,
                source,
            },
        }
    }
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
#[derive(Default, Clone)]
pub struct Upcasters {
    /// Event type -> from version -> (revision, step): looked up by `&str`, without allocating.
    steps: HashMap<String, HashMap<u32, (u32, Step)>>,
}

impl Upcasters {
    /// No upcasters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step that lifts `event_type` payloads from `from_version` to
    /// `from_version + 1`. The step returns a reason when the payload cannot be lifted.
    pub fn register<F>(self, event_type: &str, from_version: u32, step: F) -> Self
    where
        F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.register_revision(event_type, from_version, 1, step)
    }

    /// Like [`Self::register`], for the `revision`-th version of the step's code (the first is
    /// 1). A step that was wrong and is fixed gets a higher revision: states a
    /// [`CommandHandler`](crate::CommandHandler) saved as snapshots under another set of steps
    /// and revisions ([`Self::fingerprint`]) are then replayed instead of trusted.
    pub fn register_revision<F>(
        mut self,
        event_type: &str,
        from_version: u32,
        revision: u32,
        step: F,
    ) -> Self
    where
        F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.steps
            .entry(event_type.to_owned())
            .or_default()
            .insert(from_version, (revision, Arc::new(step)));
        self
    }

    /// Names the set of steps: `type@from#revision` of every step, sorted, comma-separated
    /// (empty when there is none). Two sets with the same fingerprint lift payloads alike,
    /// as far as their revisions say.
    pub fn fingerprint(&self) -> String {
        let mut keys: Vec<String> = self
            .steps
            .iter()
            .flat_map(|(t, steps)| {
                steps
                    .iter()
                    .map(move |(from, (revision, _))| format!("{t}@{from}#{revision}"))
            })
            .collect();
        keys.sort();
        keys.join(",")
    }

    /// Lifts a payload through every registered step; returns the version reached and the
    /// payload at that version.
    pub fn upcast(
        &self,
        event_type: &EventType,
        mut version: u32,
        mut payload: Value,
    ) -> Result<(u32, Value), UpcastError> {
        let Some(steps) = self.steps.get(event_type.as_str()) else {
            return Ok((version, payload));
        };
        while let Some((_, step)) = steps.get(&version) {
            payload = step(payload).map_err(|reason| UpcastError {
                event_type: event_type.clone(),
                from_version: version,
                reason,
            })?;
            version += 1;
        }
        Ok((version, payload))
    }

    /// Reads a stored payload as a typed event: lifts it through the registered steps, then
    /// decodes it. The one path by which every reader (command handler, SLA driver, reports)
    /// turns stored events into typed ones.
    pub fn decode<E: DomainEvent>(
        &self,
        event_type: &EventType,
        schema_version: u32,
        payload: Value,
    ) -> Result<E, ReadFailure> {
        let (_, payload) = self
            .upcast(event_type, schema_version, payload)
            .map_err(ReadFailure::Upcast)?;
        E::from_payload(event_type, payload).map_err(ReadFailure::Decode)
    }

    /// Adds every step of `other` (a step of `other` replaces one of the same type and version).
    pub fn merge(mut self, other: Upcasters) -> Self {
        for (event_type, steps) in other.steps {
            self.steps.entry(event_type).or_default().extend(steps);
        }
        self
    }

    /// Whether no step is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self
            .steps
            .iter()
            .flat_map(|(t, steps)| steps.keys().map(move |v| (t, v)))
            .collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}
