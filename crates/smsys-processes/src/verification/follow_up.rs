//! What a verification's discrepancies open: an incident ([`DiscrepancyIncidents`]) or a
//! normal change to correct the CMDB or the estate ([`DiscrepancyChanges`]) per discrepancy
//! of the kinds each policy names, exactly once.

use async_trait::async_trait;
use smsys_core::records::{
    Change, ChangeKind, Channel, CiId, CmdbVerification, Discrepancy, Incident, PersonId,
    Reference, ServiceId, VerificationEvent,
};
use smsys_core::{
    Actor, AppendError, CausationId, CommandError, CommandHandler, CommandMeta, Context,
    DerivedIds, DomainEvent, LogFilter, ProjectionError, Reactor, RecordedEvent, StreamId,
};

use crate::change::{ChangeCommand, ChangeManagement, LogChange};
use crate::incident::{IncidentCommand, IncidentManagement};
use crate::reacting::reference_for;
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
}

/// The discrepancy `event` records, if it records one of `kinds`.
fn discrepancy_in(
    reactor: &str,
    event: &RecordedEvent,
    kinds: &[DiscrepancyKind],
) -> Result<Option<(CiId, Discrepancy)>, ProjectionError> {
    if !event
        .data
        .event_type()
        .as_str()
        .ends_with(".discrepancy_found")
    {
        return Ok(None);
    }
    let decoded =
        VerificationEvent::from_payload(event.data.event_type(), event.data.payload().clone())
            .map_err(|e| ProjectionError::event(reactor, event, e))?;
    let VerificationEvent::DiscrepancyFound { ci, discrepancy } = decoded else {
        return Ok(None);
    };
    Ok(kinds
        .contains(&DiscrepancyKind::of(&discrepancy))
        .then_some((ci, discrepancy)))
}

/// The record of a discrepancy: on its CI, summarised, the verification and the discrepancy
/// in its description.
fn record_of(
    (reference, caller, service): (Reference, &PersonId, &ServiceId),
    event: &RecordedEvent,
    ci: CiId,
    discrepancy: &Discrepancy,
) -> LogRecord {
    LogRecord::new(
        reference,
        caller.clone(),
        Channel::Monitoring,
        service.clone(),
        summary(ci.as_str(), discrepancy),
    )
    .description(format!(
        "CMDB verification {} found: {}",
        event.stream.entity_id(),
        serde_json::to_string(discrepancy).unwrap_or_default()
    ))
    .affected_cis(vec![ci])
}

/// Runs `command` in reaction to `event`, ids derived from it and `purpose`; a refusal is
/// logged and skipped.
async fn open<A: smsys_core::Aggregate>(
    (reactor, actor): (&str, &Actor),
    handler: &CommandHandler<A>,
    stream: &StreamId,
    command: &A::Command,
    (event, purpose): (&RecordedEvent, &str),
) -> Result<(), ProjectionError>
where
    A::Rejection: std::fmt::Display,
{
    let ids = DerivedIds::new(event.event_id(), purpose);
    let ctx = Context::new(event.data.metadata().occurred_at(), &ids);
    let mut meta = CommandMeta::new(actor.clone());
    if let Ok(cause) = CausationId::from_uuid(event.event_id().as_uuid()) {
        meta = meta.with_causation(cause);
    }
    match handler.execute(stream, command, &meta, &ctx).await {
        Ok(_) | Err(CommandError::Append(AppendError::EventIdReused { .. })) => Ok(()),
        Err(CommandError::Rejected(refusal)) => {
            tracing::info!(reactor, %stream, "{purpose} not opened: {refusal}");
            Ok(())
        }
        Err(error) => Err(ProjectionError::event(reactor, event, error)),
    }
}

fn unusable_prefix(reactor: &str, prefix: &str) {
    tracing::warn!(
        reactor,
        prefix,
        "discrepancy record not opened: the prefix makes no valid reference"
    );
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
        let kinds = &self.policy.open_incident_for;
        let Some((ci, discrepancy)) = discrepancy_in(&self.name, event, kinds)? else {
            return Ok(());
        };
        let prefix = &self.policy.reference_prefix;
        let Some((reference, stream)) = reference_for::<Incident>(prefix, event) else {
            unusable_prefix(&self.name, prefix);
            return Ok(());
        };
        let who = (reference, &self.policy.caller, &self.policy.service);
        let command = IncidentCommand::Log(record_of(who, event, ci, &discrepancy));
        let reactor = (self.name.as_str(), &self.actor);
        let cause = (event, "discrepancy-incident");
        open(reactor, &self.incidents, &stream, &command, cause).await
    }
}

/// Which discrepancies open a change, and how it is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscrepancyChangePolicy {
    /// The kinds that open a change (an attribute or a status that differs is corrected by a
    /// change to the record or to the estate).
    pub open_change_for: Vec<DiscrepancyKind>,
    /// The changes' service (e.g. the CMDB's own).
    pub service: ServiceId,
    /// Who requests them (e.g. the configuration manager).
    pub requester: PersonId,
    /// The changes' references: `<prefix>-<verification>-<n>`, as for the incidents of
    /// [`DiscrepancyPolicy::reference_prefix`].
    pub reference_prefix: String,
}

/// Opens a normal change for each discrepancy of the kinds [`DiscrepancyChangePolicy`] names,
/// on the CI concerned, with ids and a reference derived from the discrepancy's event: a
/// replay, a restart or a second node opens nothing twice. The change is logged without a
/// plan: whoever takes it decides whether the record or the estate is corrected.
pub struct DiscrepancyChanges {
    name: String,
    actor: Actor,
    policy: DiscrepancyChangePolicy,
    changes: CommandHandler<ChangeManagement>,
}

impl std::fmt::Debug for DiscrepancyChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscrepancyChanges")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DiscrepancyChanges {
    /// Opens changes through `changes` as `actor`, per `policy`, under the name
    /// `discrepancy-changes`.
    pub fn new(
        changes: CommandHandler<ChangeManagement>,
        actor: Actor,
        policy: DiscrepancyChangePolicy,
    ) -> Self {
        Self {
            name: "discrepancy-changes".into(),
            actor,
            policy,
            changes,
        }
    }

    /// Its checkpoint's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

#[async_trait]
impl Reactor for DiscrepancyChanges {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<CmdbVerification>()
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let kinds = &self.policy.open_change_for;
        let Some((ci, discrepancy)) = discrepancy_in(&self.name, event, kinds)? else {
            return Ok(());
        };
        let prefix = &self.policy.reference_prefix;
        let Some((reference, stream)) = reference_for::<Change>(prefix, event) else {
            unusable_prefix(&self.name, prefix);
            return Ok(());
        };
        let who = (reference, &self.policy.requester, &self.policy.service);
        let record = record_of(who, event, ci, &discrepancy);
        let command = ChangeCommand::log(LogChange::new(record, ChangeKind::Normal));
        let reactor = (self.name.as_str(), &self.actor);
        let cause = (event, "discrepancy-change");
        open(reactor, &self.changes, &stream, &command, cause).await
    }
}
