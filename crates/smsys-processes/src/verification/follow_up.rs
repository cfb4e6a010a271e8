//! What a verification's discrepancies open: an incident per discrepancy of the kinds the
//! policy names, exactly once.

use async_trait::async_trait;
use smsys_core::records::{
    Channel, CmdbVerification, Discrepancy, Incident, PersonId, RecordKind, Reference, ServiceId,
    VerificationEvent,
};
use smsys_core::{
    Actor, AppendError, CausationId, CommandError, CommandHandler, CommandMeta, Context,
    DerivedIds, DomainEvent, EventId, LogFilter, ProjectionError, Reactor, RecordedEvent, StreamId,
};

use crate::incident::{IncidentCommand, IncidentManagement};
use crate::record::LogRecord;

/// The kinds of discrepancy, as a policy names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiscrepancyKind {
    /// Discovered but not recorded.
    NotRecorded,
    /// Recorded but not discovered.
    NotDiscovered,
    /// Recorded under another type.
    TypeDiffers,
    /// Recorded in another status.
    StatusDiffers,
    /// An attribute differs.
    AttributeDiffers,
}

impl DiscrepancyKind {
    /// The kind of `discrepancy`.
    pub fn of(discrepancy: &Discrepancy) -> Self {
        match discrepancy {
            Discrepancy::NotRecorded { .. } => DiscrepancyKind::NotRecorded,
            Discrepancy::NotDiscovered => DiscrepancyKind::NotDiscovered,
            Discrepancy::TypeDiffers { .. } => DiscrepancyKind::TypeDiffers,
            Discrepancy::StatusDiffers { .. } => DiscrepancyKind::StatusDiffers,
            Discrepancy::AttributeDiffers { .. } => DiscrepancyKind::AttributeDiffers,
        }
    }
}

/// Which discrepancies open an incident, and how it is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscrepancyPolicy {
    /// The kinds that open an incident (an unrecorded server may be a rogue host; an
    /// undiscovered one may be down).
    pub open_incident_for: Vec<DiscrepancyKind>,
    /// The incidents' service (e.g. the CMDB's own).
    pub service: ServiceId,
    /// Who the incidents are logged for (e.g. the configuration manager).
    pub caller: PersonId,
    /// The incidents' references: `<prefix>-<verification>-<n>`, `n` the discrepancy's
    /// place in the verification's stream (with a digest of the verification in its place
    /// when the whole would be too long for a reference).
    pub reference_prefix: String,
}

/// Opens an incident for each discrepancy of the kinds [`DiscrepancyPolicy`] names, on the CI
/// concerned, with ids and a reference derived from the discrepancy's event: a replay, a
/// restart or a second node opens nothing twice.
pub struct DiscrepancyIncidents {
    name: String,
    actor: Actor,
    policy: DiscrepancyPolicy,
    incidents: CommandHandler<IncidentManagement>,
}

impl std::fmt::Debug for DiscrepancyIncidents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscrepancyIncidents")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DiscrepancyIncidents {
    /// Opens incidents through `incidents` as `actor`, per `policy`, under the name
    /// `discrepancy-incidents`.
    pub fn new(
        incidents: CommandHandler<IncidentManagement>,
        actor: Actor,
        policy: DiscrepancyPolicy,
    ) -> Self {
        Self {
            name: "discrepancy-incidents".into(),
            actor,
            policy,
            incidents,
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The incident for the discrepancy `event`: `<prefix>-<verification>-<n>`, or, when that
    /// is too long for a reference, `<prefix>-<16 hex digits derived from the
    /// verification>-<n>`; `None` when the prefix itself makes no valid reference.
    fn reference_for(&self, event: &RecordedEvent) -> Option<(Reference, StreamId)> {
        let prefix = &self.policy.reference_prefix;
        let full = format!("{prefix}-{}-{}", event.stream.entity_id(), event.version);
        let short = || {
            let digest = EventId::derived(event.stream.as_str())
                .as_uuid()
                .simple()
                .to_string();
            let digest = digest.get(..16).unwrap_or(&digest).to_owned();
            format!("{prefix}-{digest}-{}", event.version)
        };
        let reference = full
            .parse::<Reference>()
            .or_else(|_| short().parse::<Reference>())
            .ok()?;
        let stream = Incident::stream(&reference).ok()?;
        Some((reference, stream))
    }
}

fn summary(ci: &str, discrepancy: &Discrepancy) -> String {
    match discrepancy {
        Discrepancy::NotRecorded { discovered_type } => {
            format!("{discovered_type} {ci} found but not in the CMDB")
        }
        Discrepancy::NotDiscovered => format!("{ci} is in the CMDB but was not found"),
        Discrepancy::TypeDiffers {
            recorded,
            discovered,
        } => format!("{ci} is recorded as {recorded}, found as {discovered}"),
        Discrepancy::StatusDiffers {
            recorded,
            discovered,
        } => format!("{ci} is recorded {recorded}, found {discovered}"),
        Discrepancy::AttributeDiffers { name, .. } => {
            format!("{ci}: {name} differs from the CMDB")
        }
    }
}

#[async_trait]
impl Reactor for DiscrepancyIncidents {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<CmdbVerification>()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if !event
            .data
            .event_type()
            .as_str()
            .ends_with(".discrepancy_found")
        {
            return Ok(());
        }
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
            ProjectionError::event(&self.name, event, e)
        };
        let decoded =
            VerificationEvent::from_payload(event.data.event_type(), event.data.payload().clone())
                .map_err(|e| failed(Box::new(e)))?;
        let VerificationEvent::DiscrepancyFound { ci, discrepancy } = decoded else {
            return Ok(());
        };
        if !self
            .policy
            .open_incident_for
            .contains(&DiscrepancyKind::of(&discrepancy))
        {
            return Ok(());
        }
        let Some((reference, stream)) = self.reference_for(event) else {
            tracing::warn!(
                reactor = %self.name,
                prefix = %self.policy.reference_prefix,
                "discrepancy incident not opened: the prefix makes no valid incident reference"
            );
            return Ok(());
        };
        let log = LogRecord::new(
            reference,
            self.policy.caller.clone(),
            Channel::Monitoring,
            self.policy.service.clone(),
            summary(ci.as_str(), &discrepancy),
        )
        .description(format!(
            "CMDB verification {} found: {}",
            event.stream.entity_id(),
            serde_json::to_string(&discrepancy).unwrap_or_default()
        ))
        .affected_cis(vec![ci]);
        let ids = DerivedIds::new(event.event_id(), "discrepancy-incident");
        let ctx = Context::new(event.data.metadata().occurred_at(), &ids);
        let mut meta = CommandMeta::new(self.actor.clone());
        if let Ok(cause) = CausationId::from_uuid(event.event_id().as_uuid()) {
            meta = meta.with_causation(cause);
        }
        let command = IncidentCommand::Log(log);
        match self.incidents.execute(&stream, &command, &meta, &ctx).await {
            Ok(_) | Err(CommandError::Append(AppendError::EventIdReused { .. })) => Ok(()),
            Err(CommandError::Rejected(refusal)) => {
                tracing::info!(reactor = %self.name, %stream, "discrepancy incident not opened: {refusal}");
                Ok(())
            }
            Err(error) => Err(failed(Box::new(error))),
        }
    }
}
