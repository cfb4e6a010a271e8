//! Incidents (ISO/IEC 20000-1 8.6.1) and service requests (8.6.2) as aggregates whose status
//! rules come from a [`Lifecycle`] loaded as data.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use smsys_core::{
    Aggregate, Channel, Context, DefinitionRef, Escalation, Level, LinkKind, NoteKind, Phase,
    Priority, RecordEvent, RecordType, TransitionDetail, TypedRecordEvent,
};

use crate::lifecycle::{Guard, Lifecycle, LifecycleRegistry, Requirement, Trigger};
use crate::priority::PriorityMatrix;

/// Which record type an aggregate is.
pub trait RecordKind: Clone + fmt::Debug + PartialEq + Default + Send + Sync + 'static {
    /// The record type.
    const TYPE: RecordType;
}

/// Marker for incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IncidentKind;
impl RecordKind for IncidentKind {
    const TYPE: RecordType = RecordType::Incident;
}

/// Marker for service requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestKind;
impl RecordKind for RequestKind {
    const TYPE: RecordType = RecordType::ServiceRequest;
}

/// An incident record.
pub type Incident = Record<IncidentKind>;
/// A service request record.
pub type ServiceRequest = Record<RequestKind>;

/// When an incident is flagged major automatically: the first rule that matches flags it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MajorRule {
    /// Services the rule applies to (empty: every service).
    pub services: Vec<String>,
    /// The rule matches at this priority or higher (numerically lower or equal).
    pub priority_at_or_above: Priority,
}

/// How the desk behaves: the lifecycles in force and the rules around them. `decide` consults
/// it; it is data, versioned where records must say which version applied.
#[derive(Debug, Clone)]
pub struct DeskPolicy {
    /// Every lifecycle version records may follow.
    pub lifecycles: LifecycleRegistry,
    /// The lifecycle new incidents are opened under.
    pub incident_lifecycle: DefinitionRef,
    /// The lifecycle new service requests are opened under.
    pub request_lifecycle: DefinitionRef,
    /// Impact x urgency -> priority.
    pub matrix: PriorityMatrix,
    /// When an incident becomes major automatically.
    pub major_rules: Vec<MajorRule>,
    /// How long after resolution a record may be closed automatically.
    pub auto_close_after: TimeDelta,
    /// Catalogue items whose requests must be approved before fulfilment starts or completes.
    pub approval_required: BTreeSet<String>,
}

impl Default for DeskPolicy {
    /// The reference lifecycles and matrix; P1 incidents are major; auto-close after 3 days.
    fn default() -> Self {
        let incident = Lifecycle::default_incident();
        let request = Lifecycle::default_service_request();
        Self {
            incident_lifecycle: incident.reference(),
            request_lifecycle: request.reference(),
            lifecycles: LifecycleRegistry::new().with(incident).with(request),
            matrix: PriorityMatrix::reference(),
            major_rules: vec![MajorRule {
                services: Vec::new(),
                priority_at_or_above: Priority::new(1)
                    .unwrap_or_else(|_| unreachable!("1 is valid")),
            }],
            auto_close_after: TimeDelta::days(3),
            approval_required: BTreeSet::new(),
        }
    }
}

impl DeskPolicy {
    fn lifecycle_for(&self, record_type: RecordType) -> &DefinitionRef {
        match record_type {
            RecordType::Incident => &self.incident_lifecycle,
            RecordType::ServiceRequest => &self.request_lifecycle,
        }
    }
}

/// What can be asked of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordCommand {
    /// Record it.
    Log {
        /// A human reference, e.g. `INC-0042`.
        reference: String,
        /// Who reported it.
        caller: String,
        /// How.
        channel: Channel,
        /// The affected or requested service.
        service: String,
        /// Affected configuration items.
        affected_cis: Vec<String>,
        /// Short description.
        summary: String,
        /// Full description.
        description: String,
        /// Requests: the catalogue item (required for requests).
        catalogue_item: Option<String>,
        /// Requests: the fulfilment instructions to follow.
        fulfilment_instructions: Option<String>,
    },
    /// Classify.
    Classify {
        /// The category.
        category: String,
    },
    /// Set impact and urgency; the priority follows from the matrix.
    Prioritise {
        /// Impact.
        impact: Level,
        /// Urgency.
        urgency: Level,
    },
    /// Set the priority by hand.
    OverridePriority {
        /// The priority.
        priority: Priority,
        /// Why.
        reason: String,
    },
    /// Assign or reassign. Assigning a new record also starts work when the lifecycle allows.
    Assign {
        /// The group.
        group: String,
        /// The person.
        person: Option<String>,
    },
    /// Put on hold.
    Hold {
        /// Why.
        reason: String,
        /// Which pending status, when the lifecycle offers several.
        status: Option<String>,
    },
    /// Resume work.
    Resume,
    /// Add a note. A caller update on a record on hold returns it to work.
    AddNote {
        /// Which kind.
        kind: NoteKind,
        /// The text.
        text: String,
    },
    /// Escalate. A functional escalation also reassigns to the group.
    Escalate {
        /// Where.
        escalation: Escalation,
        /// Why.
        reason: String,
    },
    /// Resolve (requests: fulfil).
    Resolve {
        /// Resolution code.
        code: String,
        /// What was done.
        notes: String,
    },
    /// Reopen a resolved record.
    Reopen {
        /// Why.
        reason: String,
    },
    /// Close a resolved record (the caller confirmed).
    Close,
    /// Close a resolved record once the auto-close period has passed.
    AutoClose,
    /// Cancel an open record.
    Cancel {
        /// Why (duplicate of ..., not an incident, ...).
        reason: String,
    },
    /// Link to a problem, change, configuration item or parent incident.
    Link {
        /// What kind.
        kind: LinkKind,
        /// Its id.
        target: String,
    },
    /// Flag an incident as major by hand.
    FlagMajor {
        /// Why.
        reason: String,
    },
    /// Name the one person responsible for a major incident.
    AssignMajorManager {
        /// Who.
        manager: String,
    },
    /// Record that top management was informed about a major incident.
    InformManagement {
        /// Who.
        audience: String,
        /// What.
        summary: String,
    },
    /// Record the review a major incident needs after resolution.
    RecordMajorReview {
        /// What it found.
        findings: String,
    },
    /// Ask approval of a request.
    RequestApproval {
        /// Who may approve.
        approvers: Vec<String>,
        /// How many approvals are needed.
        quorum: u32,
    },
    /// Approve a request.
    Approve {
        /// Who.
        approver: String,
    },
    /// Reject a request.
    Reject {
        /// Who.
        approver: String,
        /// Why.
        reason: String,
    },
    /// Add a fulfilment task to a request.
    AddTask {
        /// Its id within the request.
        task: String,
        /// What is to be done.
        description: String,
    },
    /// Finish a fulfilment task.
    FinishTask {
        /// Its id.
        task: String,
    },
    /// Move the record to another lifecycle version with an explicit status mapping.
    MigrateLifecycle {
        /// The lifecycle to move to.
        to: DefinitionRef,
        /// Old status -> new status; must map the record's current status to one of the same
        /// phase.
        mapping: BTreeMap<String, String>,
    },
}

impl RecordCommand {
    /// The command's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            RecordCommand::Log { .. } => "log",
            RecordCommand::Classify { .. } => "classify",
            RecordCommand::Prioritise { .. } => "prioritise",
            RecordCommand::OverridePriority { .. } => "override priority",
            RecordCommand::Assign { .. } => "assign",
            RecordCommand::Hold { .. } => "hold",
            RecordCommand::Resume => "resume",
            RecordCommand::AddNote { .. } => "add note",
            RecordCommand::Escalate { .. } => "escalate",
            RecordCommand::Resolve { .. } => "resolve",
            RecordCommand::Reopen { .. } => "reopen",
            RecordCommand::Close => "close",
            RecordCommand::AutoClose => "auto-close",
            RecordCommand::Cancel { .. } => "cancel",
            RecordCommand::Link { .. } => "link",
            RecordCommand::FlagMajor { .. } => "flag major",
            RecordCommand::AssignMajorManager { .. } => "assign major-incident manager",
            RecordCommand::InformManagement { .. } => "inform management",
            RecordCommand::RecordMajorReview { .. } => "record major-incident review",
            RecordCommand::RequestApproval { .. } => "request approval",
            RecordCommand::Approve { .. } => "approve",
            RecordCommand::Reject { .. } => "reject",
            RecordCommand::AddTask { .. } => "add task",
            RecordCommand::FinishTask { .. } => "finish task",
            RecordCommand::MigrateLifecycle { .. } => "migrate lifecycle",
        }
    }
}

/// What was missing or forbidden.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusalReason {
    /// The record has not been logged.
    #[error("the record has not been logged")]
    NotLogged,
    /// The record is already logged.
    #[error("the record is already logged")]
    AlreadyLogged,
    /// The record is closed or cancelled.
    #[error("the record is {0}, which is final")]
    Final(Phase),
    /// The lifecycle has no such transition from the current status.
    #[error("lifecycle {lifecycle} has no {trigger} transition from this status")]
    NoTransition {
        /// The lifecycle.
        lifecycle: DefinitionRef,
        /// The trigger.
        trigger: Trigger,
    },
    /// Several transitions fit; the command must name the target status.
    #[error(
        "several {trigger} transitions lead from this status (to {candidates:?}); name the target status"
    )]
    AmbiguousTransition {
        /// The trigger.
        trigger: Trigger,
        /// The statuses they lead to.
        candidates: Vec<String>,
    },
    /// A field the transition requires is not set.
    #[error("the {0} is missing")]
    Missing(Requirement),
    /// An input of the command is empty.
    #[error("the {0} is missing")]
    MissingInput(&'static str),
    /// A guard of the transition does not hold.
    #[error("it requires {0}")]
    GuardFailed(Guard),
    /// The command does not exist for this record type.
    #[error("it is not available for {0} records")]
    NotForRecordType(RecordType),
    /// A major-incident command on an incident that is not major.
    #[error("the incident is not a major incident")]
    NotMajor,
    /// Already a major incident.
    #[error("the incident is already a major incident")]
    AlreadyMajor,
    /// The review is recorded once, after resolution.
    #[error("the major-incident review is recorded once, while the incident is resolved")]
    ReviewNotDue,
    /// The requester may not approve their own request.
    #[error("{0} requested it and may not approve or reject it")]
    SelfApproval(String),
    /// The approver is not among those asked.
    #[error("{0} is not an approver of this request")]
    NotAnApprover(String),
    /// The approver already approved.
    #[error("{0} already approved")]
    AlreadyApproved(String),
    /// No approval is pending.
    #[error("no approval is pending")]
    NoApprovalPending,
    /// Approval was already asked.
    #[error("approval was already requested")]
    ApprovalAlreadyRequested,
    /// A quorum outside 1 to the number of approvers.
    #[error("a quorum of {quorum} is impossible with {approvers} approvers")]
    InvalidQuorum {
        /// The quorum asked.
        quorum: u32,
        /// The number of approvers.
        approvers: usize,
    },
    /// No such task.
    #[error("there is no task {0}")]
    UnknownTask(String),
    /// The task exists already.
    #[error("task {0} exists already")]
    DuplicateTask(String),
    /// The task finished already.
    #[error("task {0} has already finished")]
    TaskAlreadyFinished(String),
    /// The auto-close period has not passed.
    #[error("it may be closed automatically only from {due}")]
    AutoCloseTooEarly {
        /// When it may.
        due: DateTime<Utc>,
    },
    /// The lifecycle is unknown to the desk policy.
    #[error("lifecycle {0} is not known to the desk")]
    UnknownLifecycle(DefinitionRef),
    /// A lifecycle of another record type.
    #[error("lifecycle {0} is for other records")]
    LifecycleForOtherType(DefinitionRef),
    /// The record already follows that lifecycle.
    #[error("the record already follows lifecycle {0}")]
    SameLifecycle(DefinitionRef),
    /// The mapping does not say where the current status goes.
    #[error("the status mapping does not map the current status {0:?}")]
    UnmappedStatus(String),
    /// The mapping leads to a status that does not exist, or of another phase.
    #[error(
        "the status mapping leads to {0:?}, which is not a status of the same phase in the new lifecycle"
    )]
    BadMappedStatus(String),
    /// Nothing would change.
    #[error("nothing would change")]
    Unchanged,
}

/// A refused command: which record, in which status, which command, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{record_type} {} (status {}): {command} refused: {reason}",
    record.as_deref().unwrap_or("(not logged)"), status.as_deref().unwrap_or("none"))]
pub struct Refusal {
    /// The record type.
    pub record_type: RecordType,
    /// The record's reference, once logged.
    pub record: Option<String>,
    /// Its status.
    pub status: Option<String>,
    /// The command.
    pub command: &'static str,
    /// Why.
    pub reason: RefusalReason,
}

/// A request's approval.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Approval {
    /// Who may approve.
    pub approvers: Vec<String>,
    /// How many approvals are needed.
    pub quorum: u32,
    /// Who approved.
    pub given: Vec<String>,
    /// Whether the quorum was reached.
    pub approved: bool,
    /// Who rejected, if anyone.
    pub rejected_by: Option<String>,
}

/// The state of a service-desk record, derived from its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Record<K> {
    reference: Option<String>,
    lifecycle: Option<DefinitionRef>,
    status: Option<String>,
    phase: Option<Phase>,
    caller: Option<String>,
    service: Option<String>,
    catalogue_item: Option<String>,
    category: Option<String>,
    impact: Option<Level>,
    urgency: Option<Level>,
    priority: Option<Priority>,
    priority_overridden: bool,
    group: Option<String>,
    person: Option<String>,
    hold_reason: Option<String>,
    resolution: Option<(String, String)>,
    resolved_at: Option<DateTime<Utc>>,
    reopen_count: u32,
    major: bool,
    major_manager: Option<String>,
    management_informed: u32,
    major_reviewed: bool,
    links: Vec<(LinkKind, String)>,
    escalations: u32,
    notes: u32,
    approval: Option<Approval>,
    tasks: BTreeMap<String, bool>,
    #[serde(skip)]
    kind: PhantomData<fn() -> K>,
}

impl<K> Default for Record<K> {
    fn default() -> Self {
        Self {
            reference: None,
            lifecycle: None,
            status: None,
            phase: None,
            caller: None,
            service: None,
            catalogue_item: None,
            category: None,
            impact: None,
            urgency: None,
            priority: None,
            priority_overridden: false,
            group: None,
            person: None,
            hold_reason: None,
            resolution: None,
            resolved_at: None,
            reopen_count: 0,
            major: false,
            major_manager: None,
            management_informed: 0,
            major_reviewed: false,
            links: Vec::new(),
            escalations: 0,
            notes: 0,
            approval: None,
            tasks: BTreeMap::new(),
            kind: PhantomData,
        }
    }
}

impl<K> Record<K> {
    /// The human reference.
    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }
    /// The lifecycle followed.
    pub fn lifecycle(&self) -> Option<&DefinitionRef> {
        self.lifecycle.as_ref()
    }
    /// The current status.
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }
    /// The phase of the current status.
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }
    /// The service.
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }
    /// The catalogue item requested (service requests).
    pub fn catalogue_item(&self) -> Option<&str> {
        self.catalogue_item.as_deref()
    }
    /// The category.
    pub fn category(&self) -> Option<&str> {
        self.category.as_deref()
    }
    /// The priority.
    pub fn priority(&self) -> Option<Priority> {
        self.priority
    }
    /// Whether the priority was set by hand.
    pub fn priority_overridden(&self) -> bool {
        self.priority_overridden
    }
    /// Assignment group and person.
    pub fn assignment(&self) -> (Option<&str>, Option<&str>) {
        (self.group.as_deref(), self.person.as_deref())
    }
    /// Why it is on hold, while pending.
    pub fn hold_reason(&self) -> Option<&str> {
        self.hold_reason.as_deref()
    }
    /// Resolution code and notes, once resolved.
    pub fn resolution(&self) -> Option<(&str, &str)> {
        self.resolution
            .as_ref()
            .map(|(c, n)| (c.as_str(), n.as_str()))
    }
    /// When it was last resolved.
    pub fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.resolved_at
    }
    /// How many times it was reopened.
    pub fn reopen_count(&self) -> u32 {
        self.reopen_count
    }
    /// Whether it is a major incident.
    pub fn is_major(&self) -> bool {
        self.major
    }
    /// The major-incident manager.
    pub fn major_manager(&self) -> Option<&str> {
        self.major_manager.as_deref()
    }
    /// How many times management was informed.
    pub fn management_informed(&self) -> u32 {
        self.management_informed
    }
    /// Whether the major-incident review is recorded.
    pub fn major_reviewed(&self) -> bool {
        self.major_reviewed
    }
    /// Links.
    pub fn links(&self) -> &[(LinkKind, String)] {
        &self.links
    }
    /// Number of escalations.
    pub fn escalations(&self) -> u32 {
        self.escalations
    }
    /// Number of notes.
    pub fn notes(&self) -> u32 {
        self.notes
    }
    /// The approval, if one was asked.
    pub fn approval(&self) -> Option<&Approval> {
        self.approval.as_ref()
    }
    /// Fulfilment tasks and whether each finished.
    pub fn tasks(&self) -> &BTreeMap<String, bool> {
        &self.tasks
    }
}

fn required(text: &str, what: &'static str) -> Result<(), RefusalReason> {
    if text.trim().is_empty() {
        Err(RefusalReason::MissingInput(what))
    } else {
        Ok(())
    }
}

impl<K: RecordKind> Record<K> {
    fn has(&self, requirement: Requirement) -> bool {
        match requirement {
            Requirement::Category => self.category.is_some(),
            Requirement::Priority => self.priority.is_some(),
            Requirement::AssignmentGroup => self.group.is_some(),
            Requirement::Assignee => self.person.is_some(),
        }
    }

    fn holds(&self, guard: Guard) -> bool {
        match guard {
            Guard::ResolutionRecorded => self.resolution.is_some(),
            Guard::AllTasksFinished => self.tasks.values().all(|done| *done),
            Guard::Approved => self.approval.as_ref().is_some_and(|a| a.approved),
            Guard::MajorReviewDone => !self.major || self.major_reviewed,
        }
    }

    /// The transition `trigger` takes from the current status (optionally to `target`), checked
    /// against its requirements and guards.
    fn transition(
        &self,
        policy: &DeskPolicy,
        trigger: Trigger,
        target: Option<&str>,
        detail: TransitionDetail,
        at: DateTime<Utc>,
    ) -> Result<RecordEvent, RefusalReason> {
        let (Some(reference), Some(status)) = (&self.lifecycle, &self.status) else {
            return Err(RefusalReason::NotLogged);
        };
        if matches!(trigger, Trigger::Start | Trigger::Resolve)
            && self.awaits_required_approval(policy)
        {
            return Err(RefusalReason::GuardFailed(Guard::Approved));
        }
        let lifecycle = policy
            .lifecycles
            .get(reference)
            .ok_or_else(|| RefusalReason::UnknownLifecycle(reference.clone()))?;
        let candidates: Vec<_> = lifecycle
            .transitions_from(status, trigger)
            .filter(|t| target.is_none_or(|to| t.to == to))
            .collect();
        let transition = match candidates.as_slice() {
            [] => {
                return Err(RefusalReason::NoTransition {
                    lifecycle: reference.clone(),
                    trigger,
                });
            }
            [one] => *one,
            many => {
                return Err(RefusalReason::AmbiguousTransition {
                    trigger,
                    candidates: many.iter().map(|t| t.to.clone()).collect(),
                });
            }
        };
        if let Some(missing) = transition.requires.iter().find(|r| !self.has(**r)) {
            return Err(RefusalReason::Missing(*missing));
        }
        if let Some(failed) = transition.guards.iter().find(|g| !self.holds(**g)) {
            return Err(RefusalReason::GuardFailed(*failed));
        }
        let phase = lifecycle
            .status(&transition.to)
            .map(|s| s.phase)
            .ok_or_else(|| RefusalReason::BadMappedStatus(transition.to.clone()))?;
        Ok(RecordEvent::Transitioned {
            transition: transition.name.clone(),
            from: status.clone(),
            to: transition.to.clone(),
            phase,
            detail,
            at,
        })
    }

    fn major_rule_matches(&self, policy: &DeskPolicy, priority: Priority) -> Option<String> {
        if K::TYPE != RecordType::Incident || self.major {
            return None;
        }
        let service = self.service.as_deref().unwrap_or_default();
        policy
            .major_rules
            .iter()
            .find(|r| {
                priority <= r.priority_at_or_above
                    && (r.services.is_empty() || r.services.iter().any(|s| s == service))
            })
            .map(|r| {
                format!(
                    "priority {priority} meets the major-incident criterion ({} or higher)",
                    r.priority_at_or_above
                )
            })
    }

    /// Whether this is a request for a catalogue item the policy says needs approval, and it
    /// is not approved yet.
    fn awaits_required_approval(&self, policy: &DeskPolicy) -> bool {
        K::TYPE == RecordType::ServiceRequest
            && self
                .catalogue_item
                .as_ref()
                .is_some_and(|item| policy.approval_required.contains(item))
            && !self.holds(Guard::Approved)
    }

    fn incidents_only(&self) -> Result<(), RefusalReason> {
        if K::TYPE == RecordType::Incident {
            Ok(())
        } else {
            Err(RefusalReason::NotForRecordType(K::TYPE))
        }
    }

    fn requests_only(&self) -> Result<(), RefusalReason> {
        if K::TYPE == RecordType::ServiceRequest {
            Ok(())
        } else {
            Err(RefusalReason::NotForRecordType(K::TYPE))
        }
    }

    fn pending_approval(&self, approver: &str) -> Result<&Approval, RefusalReason> {
        self.requests_only()?;
        let approval = self
            .approval
            .as_ref()
            .filter(|a| !a.approved && a.rejected_by.is_none())
            .ok_or(RefusalReason::NoApprovalPending)?;
        if self.caller.as_deref() == Some(approver) {
            return Err(RefusalReason::SelfApproval(approver.to_owned()));
        }
        if !approval.approvers.iter().any(|a| a == approver) {
            return Err(RefusalReason::NotAnApprover(approver.to_owned()));
        }
        if approval.given.iter().any(|a| a == approver) {
            return Err(RefusalReason::AlreadyApproved(approver.to_owned()));
        }
        Ok(approval)
    }

    /// The events `command` records, or why not. Events after the first are checked against
    /// the state the earlier ones lead to.
    fn events_for(
        &self,
        command: &RecordCommand,
        policy: &DeskPolicy,
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordEvent>, RefusalReason> {
        use RecordCommand as C;
        if let C::Log {
            reference,
            caller,
            channel,
            service,
            affected_cis,
            summary,
            description,
            catalogue_item,
            fulfilment_instructions,
        } = command
        {
            if self.lifecycle.is_some() {
                return Err(RefusalReason::AlreadyLogged);
            }
            required(reference, "reference")?;
            required(caller, "caller")?;
            required(service, "service")?;
            required(summary, "summary")?;
            if K::TYPE == RecordType::ServiceRequest {
                required(
                    catalogue_item.as_deref().unwrap_or_default(),
                    "catalogue item",
                )?;
            }
            let lifecycle_ref = policy.lifecycle_for(K::TYPE);
            let lifecycle = policy
                .lifecycles
                .get(lifecycle_ref)
                .ok_or_else(|| RefusalReason::UnknownLifecycle(lifecycle_ref.clone()))?;
            return Ok(vec![RecordEvent::Logged {
                reference: reference.clone(),
                lifecycle: lifecycle_ref.clone(),
                status: lifecycle.initial().name.clone(),
                caller: caller.clone(),
                channel: *channel,
                service: service.clone(),
                affected_cis: affected_cis.clone(),
                summary: summary.clone(),
                description: description.clone(),
                catalogue_item: catalogue_item.clone(),
                fulfilment_instructions: fulfilment_instructions.clone(),
            }]);
        }
        let phase = self.phase.ok_or(RefusalReason::NotLogged)?;
        if phase.is_final() {
            return Err(RefusalReason::Final(phase));
        }
        let mut events = Vec::new();
        let mut next = self.clone();
        let push = |event: RecordEvent, next: &mut Self, events: &mut Vec<RecordEvent>| {
            next.apply(&event);
            events.push(event);
        };
        match command {
            C::Log { .. } => unreachable!("handled above"),
            C::Classify { category } => {
                required(category, "category")?;
                if self.category.as_deref() == Some(category.as_str()) {
                    return Err(RefusalReason::Unchanged);
                }
                push(
                    RecordEvent::Classified {
                        category: category.clone(),
                    },
                    &mut next,
                    &mut events,
                );
            }
            C::Prioritise { impact, urgency } => {
                if self.impact == Some(*impact) && self.urgency == Some(*urgency) {
                    return Err(RefusalReason::Unchanged);
                }
                let priority = policy.matrix.priority(*impact, *urgency);
                push(
                    RecordEvent::Prioritised {
                        impact: *impact,
                        urgency: *urgency,
                        priority,
                        matrix_version: policy.matrix.version(),
                    },
                    &mut next,
                    &mut events,
                );
                if let Some(reason) = next.major_rule_matches(policy, priority) {
                    push(RecordEvent::MajorFlagged { reason }, &mut next, &mut events);
                }
            }
            C::OverridePriority { priority, reason } => {
                required(reason, "override reason")?;
                if self.priority == Some(*priority) {
                    return Err(RefusalReason::Unchanged);
                }
                push(
                    RecordEvent::PriorityOverridden {
                        priority: *priority,
                        reason: reason.clone(),
                    },
                    &mut next,
                    &mut events,
                );
                if let Some(reason) = next.major_rule_matches(policy, *priority) {
                    push(RecordEvent::MajorFlagged { reason }, &mut next, &mut events);
                }
            }
            C::Assign { group, person } => {
                required(group, "assignment group")?;
                if self.group.as_deref() == Some(group.as_str()) && self.person == *person {
                    return Err(RefusalReason::Unchanged);
                }
                push(
                    RecordEvent::Assigned {
                        group: group.clone(),
                        person: person.clone(),
                        reassignment: self.group.is_some(),
                    },
                    &mut next,
                    &mut events,
                );
                if phase == Phase::New
                    && let Ok(start) =
                        next.transition(policy, Trigger::Start, None, TransitionDetail::Plain, now)
                {
                    push(start, &mut next, &mut events);
                }
            }
            C::Hold { reason, status } => {
                required(reason, "hold reason")?;
                let detail = TransitionDetail::Hold {
                    reason: reason.clone(),
                };
                push(
                    self.transition(policy, Trigger::Hold, status.as_deref(), detail, now)?,
                    &mut next,
                    &mut events,
                );
            }
            C::Resume => {
                let detail = TransitionDetail::Resume { by_caller: false };
                push(
                    self.transition(policy, Trigger::Resume, None, detail, now)?,
                    &mut next,
                    &mut events,
                );
            }
            C::AddNote { kind, text } => {
                required(text, "note text")?;
                push(
                    RecordEvent::Noted {
                        kind: *kind,
                        text: text.clone(),
                    },
                    &mut next,
                    &mut events,
                );
                if *kind == NoteKind::CallerUpdate
                    && phase == Phase::Pending
                    && let Ok(resume) = next.transition(
                        policy,
                        Trigger::Resume,
                        None,
                        TransitionDetail::Resume { by_caller: true },
                        now,
                    )
                {
                    push(resume, &mut next, &mut events);
                }
            }
            C::Escalate { escalation, reason } => {
                required(reason, "escalation reason")?;
                push(
                    RecordEvent::Escalated {
                        escalation: escalation.clone(),
                        reason: reason.clone(),
                    },
                    &mut next,
                    &mut events,
                );
                if let Escalation::Functional { to_group } = escalation {
                    required(to_group, "group escalated to")?;
                    push(
                        RecordEvent::Assigned {
                            group: to_group.clone(),
                            person: None,
                            reassignment: self.group.is_some(),
                        },
                        &mut next,
                        &mut events,
                    );
                }
            }
            C::Resolve { code, notes } => {
                required(code, "resolution code")?;
                required(notes, "resolution notes")?;
                if K::TYPE == RecordType::ServiceRequest && !self.holds(Guard::AllTasksFinished) {
                    return Err(RefusalReason::GuardFailed(Guard::AllTasksFinished));
                }
                let detail = TransitionDetail::Resolution {
                    code: code.clone(),
                    notes: notes.clone(),
                };
                push(
                    self.transition(policy, Trigger::Resolve, None, detail, now)?,
                    &mut next,
                    &mut events,
                );
            }
            C::Reopen { reason } => {
                required(reason, "reopen reason")?;
                let detail = TransitionDetail::Reopen {
                    reason: reason.clone(),
                    count: self.reopen_count + 1,
                };
                push(
                    self.transition(policy, Trigger::Reopen, None, detail, now)?,
                    &mut next,
                    &mut events,
                );
            }
            C::Close | C::AutoClose => {
                let automatic = matches!(command, C::AutoClose);
                if automatic {
                    // A period too long to add ("never") leaves the record to be closed by hand.
                    let due = self.resolved_at.map(|at| {
                        at.checked_add_signed(policy.auto_close_after)
                            .unwrap_or(DateTime::<Utc>::MAX_UTC)
                    });
                    match due {
                        Some(due) if now < due => {
                            return Err(RefusalReason::AutoCloseTooEarly { due });
                        }
                        Some(_) => {}
                        None => return Err(RefusalReason::GuardFailed(Guard::ResolutionRecorded)),
                    }
                }
                if !self.holds(Guard::MajorReviewDone) {
                    return Err(RefusalReason::GuardFailed(Guard::MajorReviewDone));
                }
                let detail = TransitionDetail::Closure { automatic };
                push(
                    self.transition(policy, Trigger::Close, None, detail, now)?,
                    &mut next,
                    &mut events,
                );
            }
            C::Cancel { reason } => {
                required(reason, "cancellation reason")?;
                let detail = TransitionDetail::Cancellation {
                    reason: reason.clone(),
                };
                push(
                    self.transition(policy, Trigger::Cancel, None, detail, now)?,
                    &mut next,
                    &mut events,
                );
            }
            C::Link { kind, target } => {
                required(target, "link target")?;
                if self.links.iter().any(|(k, t)| k == kind && t == target) {
                    return Err(RefusalReason::Unchanged);
                }
                push(
                    RecordEvent::Linked {
                        kind: *kind,
                        target: target.clone(),
                    },
                    &mut next,
                    &mut events,
                );
            }
            C::FlagMajor { reason } => {
                self.incidents_only()?;
                required(reason, "reason")?;
                if self.major {
                    return Err(RefusalReason::AlreadyMajor);
                }
                push(
                    RecordEvent::MajorFlagged {
                        reason: reason.clone(),
                    },
                    &mut next,
                    &mut events,
                );
            }
            C::AssignMajorManager { manager } => {
                self.incidents_only()?;
                required(manager, "manager")?;
                if !self.major {
                    return Err(RefusalReason::NotMajor);
                }
                if self.major_manager.as_deref() == Some(manager.as_str()) {
                    return Err(RefusalReason::Unchanged);
                }
                push(
                    RecordEvent::MajorManagerAssigned {
                        manager: manager.clone(),
                    },
                    &mut next,
                    &mut events,
                );
            }
            C::InformManagement { audience, summary } => {
                self.incidents_only()?;
                required(audience, "audience")?;
                required(summary, "summary")?;
                if !self.major {
                    return Err(RefusalReason::NotMajor);
                }
                push(
                    RecordEvent::ManagementInformed {
                        audience: audience.clone(),
                        summary: summary.clone(),
                    },
                    &mut next,
                    &mut events,
                );
            }
            C::RecordMajorReview { findings } => {
                self.incidents_only()?;
                required(findings, "review findings")?;
                if !self.major {
                    return Err(RefusalReason::NotMajor);
                }
                if phase != Phase::Resolved || self.major_reviewed {
                    return Err(RefusalReason::ReviewNotDue);
                }
                push(
                    RecordEvent::MajorReviewed {
                        findings: findings.clone(),
                    },
                    &mut next,
                    &mut events,
                );
            }
            C::RequestApproval { approvers, quorum } => {
                self.requests_only()?;
                if self.approval.is_some() {
                    return Err(RefusalReason::ApprovalAlreadyRequested);
                }
                if approvers.is_empty() || approvers.iter().any(|a| a.trim().is_empty()) {
                    return Err(RefusalReason::MissingInput("approvers"));
                }
                if *quorum == 0 || *quorum as usize > approvers.len() {
                    return Err(RefusalReason::InvalidQuorum {
                        quorum: *quorum,
                        approvers: approvers.len(),
                    });
                }
                push(
                    RecordEvent::ApprovalRequested {
                        approvers: approvers.clone(),
                        quorum: *quorum,
                    },
                    &mut next,
                    &mut events,
                );
                let step = next.transition(
                    policy,
                    Trigger::RequestApproval,
                    None,
                    TransitionDetail::Plain,
                    now,
                )?;
                push(step, &mut next, &mut events);
            }
            C::Approve { approver } => {
                let approval = self.pending_approval(approver)?;
                let reached = approval.given.len() + 1 >= approval.quorum as usize;
                push(
                    RecordEvent::ApprovalGiven {
                        approver: approver.clone(),
                    },
                    &mut next,
                    &mut events,
                );
                if reached {
                    push(RecordEvent::Approved, &mut next, &mut events);
                    let step = next.transition(
                        policy,
                        Trigger::Approve,
                        None,
                        TransitionDetail::Plain,
                        now,
                    )?;
                    push(step, &mut next, &mut events);
                }
            }
            C::Reject { approver, reason } => {
                self.pending_approval(approver)?;
                required(reason, "rejection reason")?;
                push(
                    RecordEvent::ApprovalRejected {
                        approver: approver.clone(),
                        reason: reason.clone(),
                    },
                    &mut next,
                    &mut events,
                );
                let detail = TransitionDetail::Cancellation {
                    reason: format!("rejected by {approver}: {reason}"),
                };
                let step = next.transition(policy, Trigger::Reject, None, detail, now)?;
                push(step, &mut next, &mut events);
            }
            C::AddTask { task, description } => {
                self.requests_only()?;
                required(task, "task id")?;
                required(description, "task description")?;
                if self.tasks.contains_key(task) {
                    return Err(RefusalReason::DuplicateTask(task.clone()));
                }
                push(
                    RecordEvent::TaskAdded {
                        task: task.clone(),
                        description: description.clone(),
                    },
                    &mut next,
                    &mut events,
                );
            }
            C::FinishTask { task } => {
                self.requests_only()?;
                match self.tasks.get(task) {
                    None => return Err(RefusalReason::UnknownTask(task.clone())),
                    Some(true) => return Err(RefusalReason::TaskAlreadyFinished(task.clone())),
                    Some(false) => {}
                }
                push(
                    RecordEvent::TaskFinished { task: task.clone() },
                    &mut next,
                    &mut events,
                );
            }
            C::MigrateLifecycle { to, mapping } => {
                let (Some(from), Some(status)) = (&self.lifecycle, &self.status) else {
                    return Err(RefusalReason::NotLogged);
                };
                if from == to {
                    return Err(RefusalReason::SameLifecycle(to.clone()));
                }
                let target = policy
                    .lifecycles
                    .get(to)
                    .ok_or_else(|| RefusalReason::UnknownLifecycle(to.clone()))?;
                if target.record_type() != K::TYPE {
                    return Err(RefusalReason::LifecycleForOtherType(to.clone()));
                }
                let to_status = mapping
                    .get(status)
                    .ok_or_else(|| RefusalReason::UnmappedStatus(status.clone()))?;
                if let Some(bad) = mapping.values().find(|s| target.status(s).is_none()) {
                    return Err(RefusalReason::BadMappedStatus(bad.clone()));
                }
                if target.status(to_status).map(|s| s.phase) != Some(phase) {
                    return Err(RefusalReason::BadMappedStatus(to_status.clone()));
                }
                push(
                    RecordEvent::LifecycleMigrated {
                        from: from.clone(),
                        to: to.clone(),
                        from_status: status.clone(),
                        to_status: to_status.clone(),
                        mapping: mapping.clone(),
                    },
                    &mut next,
                    &mut events,
                );
            }
        }
        Ok(events)
    }

    /// Applies an event. Total: recorded events are facts.
    fn apply(&mut self, event: &RecordEvent) {
        match event {
            RecordEvent::Logged {
                reference,
                lifecycle,
                status,
                caller,
                service,
                catalogue_item,
                ..
            } => {
                self.catalogue_item.clone_from(catalogue_item);
                self.reference = Some(reference.clone());
                self.lifecycle = Some(lifecycle.clone());
                self.status = Some(status.clone());
                self.phase = Some(Phase::New);
                self.caller = Some(caller.clone());
                self.service = Some(service.clone());
            }
            RecordEvent::Classified { category } => self.category = Some(category.clone()),
            RecordEvent::Prioritised {
                impact,
                urgency,
                priority,
                ..
            } => {
                self.impact = Some(*impact);
                self.urgency = Some(*urgency);
                self.priority = Some(*priority);
                self.priority_overridden = false;
            }
            RecordEvent::PriorityOverridden { priority, .. } => {
                self.priority = Some(*priority);
                self.priority_overridden = true;
            }
            RecordEvent::Assigned { group, person, .. } => {
                self.group = Some(group.clone());
                self.person = person.clone();
            }
            RecordEvent::Transitioned {
                to,
                phase,
                detail,
                at,
                ..
            } => {
                self.status = Some(to.clone());
                self.phase = Some(*phase);
                self.hold_reason = None;
                match detail {
                    TransitionDetail::Hold { reason } => self.hold_reason = Some(reason.clone()),
                    TransitionDetail::Resolution { code, notes } => {
                        self.resolution = Some((code.clone(), notes.clone()));
                        self.resolved_at = Some(*at);
                    }
                    TransitionDetail::Reopen { count, .. } => {
                        self.reopen_count = *count;
                        // The review follows the final resolution: a reopened major incident
                        // needs it again.
                        self.major_reviewed = false;
                        self.resolution = None;
                        self.resolved_at = None;
                    }
                    TransitionDetail::Plain
                    | TransitionDetail::Resume { .. }
                    | TransitionDetail::Closure { .. }
                    | TransitionDetail::Cancellation { .. } => {}
                }
            }
            RecordEvent::Noted { .. } => self.notes += 1,
            RecordEvent::Escalated { .. } => self.escalations += 1,
            RecordEvent::Linked { kind, target } => self.links.push((*kind, target.clone())),
            RecordEvent::MajorFlagged { .. } => self.major = true,
            RecordEvent::MajorManagerAssigned { manager } => {
                self.major_manager = Some(manager.clone())
            }
            RecordEvent::ManagementInformed { .. } => self.management_informed += 1,
            RecordEvent::MajorReviewed { .. } => self.major_reviewed = true,
            RecordEvent::ApprovalRequested { approvers, quorum } => {
                self.approval = Some(Approval {
                    approvers: approvers.clone(),
                    quorum: *quorum,
                    ..Approval::default()
                });
            }
            RecordEvent::ApprovalGiven { approver } => {
                if let Some(a) = &mut self.approval {
                    a.given.push(approver.clone());
                }
            }
            RecordEvent::Approved => {
                if let Some(a) = &mut self.approval {
                    a.approved = true;
                }
            }
            RecordEvent::ApprovalRejected { approver, .. } => {
                if let Some(a) = &mut self.approval {
                    a.rejected_by = Some(approver.clone());
                }
            }
            RecordEvent::TaskAdded { task, .. } => {
                self.tasks.insert(task.clone(), false);
            }
            RecordEvent::TaskFinished { task } => {
                self.tasks.insert(task.clone(), true);
            }
            // SLA events are read by the SLA projections, not by the record's own rules.
            RecordEvent::SlaThresholdReached { .. } | RecordEvent::SlaBreached { .. } => {}
            RecordEvent::LifecycleMigrated { to, to_status, .. } => {
                self.lifecycle = Some(to.clone());
                self.status = Some(to_status.clone());
            }
        }
    }
}

impl<K: RecordKind> Aggregate for Record<K> {
    const CATEGORY: &'static str = K::TYPE.category();
    type Services = DeskPolicy;
    type Command = RecordCommand;
    type Event = TypedRecordEvent;
    type Rejection = Refusal;

    fn decide(
        &self,
        command: &RecordCommand,
        policy: &DeskPolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<TypedRecordEvent>, Refusal> {
        let events = self
            .events_for(command, policy, ctx.now())
            .map_err(|reason| Refusal {
                record_type: K::TYPE,
                record: self.reference.clone(),
                status: self.status.clone(),
                command: command.name(),
                reason,
            })?;
        Ok(events
            .into_iter()
            .map(|event| TypedRecordEvent {
                record_type: K::TYPE,
                event,
            })
            .collect())
    }

    fn evolve(&mut self, event: &TypedRecordEvent) {
        self.apply(&event.event);
    }
}

impl<K> fmt::Display for Record<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}]",
            self.reference.as_deref().unwrap_or("(not logged)"),
            self.status.as_deref().unwrap_or("none")
        )
    }
}
