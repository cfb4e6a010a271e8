//! What `decide` consults for every record type: the lifecycles, the priority matrix, the
//! auto-close period and the attribute schema.

use chrono::TimeDelta;
use smsys_core::records::DefinitionRef;

use crate::attribute::AttributeSchema;
use crate::lifecycle::{Lifecycle, LifecycleRegistry};
use crate::priority::PriorityMatrix;

/// The data every record type's rules consult. Each record type's policy holds one.
#[derive(Debug, Clone)]
pub struct RecordPolicy {
    /// Every lifecycle version records may follow.
    pub lifecycles: LifecycleRegistry,
    /// The lifecycle new records are logged under.
    pub lifecycle: DefinitionRef,
    /// Impact x urgency -> priority.
    pub matrix: PriorityMatrix,
    /// How long after resolution a record may be closed automatically.
    pub auto_close_after: TimeDelta,
    /// The custom attributes records may carry.
    pub attributes: AttributeSchema,
}

impl RecordPolicy {
    /// New records follow `lifecycle`; the reference matrix, auto-close after 3 days, no
    /// custom attributes.
    pub fn new(lifecycle: Lifecycle) -> Self {
        Self {
            lifecycle: lifecycle.reference(),
            lifecycles: LifecycleRegistry::new().with(lifecycle),
            matrix: PriorityMatrix::reference(),
            auto_close_after: TimeDelta::days(3),
            attributes: AttributeSchema::default(),
        }
    }

    /// Adds a lifecycle version records may follow (or be migrated to); new records keep the
    /// current one.
    pub fn with_lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycles = self.lifecycles.with(lifecycle);
        self
    }

    /// Adds `lifecycle` and logs new records under it.
    pub fn logging_under(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle.reference();
        self.with_lifecycle(lifecycle)
    }

    /// Sets the attribute schema.
    pub fn with_attributes(mut self, attributes: AttributeSchema) -> Self {
        self.attributes = attributes;
        self
    }
}
