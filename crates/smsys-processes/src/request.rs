//! Service request management (ISO/IEC 20000-1 8.6.2): the shared record rules plus approval
//! (segregation of duties on identities) and fulfilment tasks, under a lifecycle held as data
//! (`request/lifecycle.toml` by default).

use std::collections::BTreeSet;

use smsys_core::records::request::{FulfilmentEvent, RequestLogged};
use smsys_core::records::{
    PersonId, RecordKind, RequestEvent, ServiceRequest, TransitionDetail, TypedEvent,
};
use smsys_core::{Aggregate, Context};

use crate::lifecycle::{Guard, Lifecycle, Trigger, TriggerRule, Vocabulary, desk_triggers};
use crate::record::{
    Decision, LogRecord, RecordCommand, RecordPolicy, RecordRules, Refusal, RefusalReason,
    decide_shared, log_record, refuse, transition,
};

const DEFAULT_LIFECYCLE: &str = include_str!("request/lifecycle.toml");

/// The reference service request lifecycle (`request/lifecycle.toml`).
pub fn default_lifecycle() -> Lifecycle {
    Lifecycle::from_toml(DEFAULT_LIFECYCLE, &RequestManagement::vocabulary())
        .unwrap_or_else(|e| unreachable!("the shipped request lifecycle is valid: {e}"))
}

impl Trigger {
    /// Approval is asked (requests): into a pending status.
    pub const REQUEST_APPROVAL: Trigger = Trigger::from_static("request_approval");
    /// Approval reached (requests): pending to active or new.
    pub const APPROVE: Trigger = Trigger::from_static("approve");
    /// Approval refused (requests): into a cancelled status.
    pub const REJECT: Trigger = Trigger::from_static("reject");
}

impl Guard {
    /// Every fulfilment task has finished (requests).
    pub const ALL_TASKS_FINISHED: Guard = Guard::from_static("all_tasks_finished");
    /// The request is approved (requests).
    pub const APPROVED: Guard = Guard::from_static("approved");
}

/// What service request management consults.
#[derive(Debug, Clone)]
pub struct RequestPolicy {
    /// Lifecycles, matrix, auto-close, attributes.
    pub record: RecordPolicy,
    /// Catalogue items whose requests must be approved before fulfilment starts or completes.
    pub approval_required: BTreeSet<String>,
}

impl Default for RequestPolicy {
    /// The reference lifecycle and matrix; no catalogue item needs approval.
    fn default() -> Self {
        Self {
            record: RecordPolicy::new(default_lifecycle()),
            approval_required: BTreeSet::new(),
        }
    }
}

/// What can be asked of a service request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestCommand {
    /// Record it.
    Log {
        /// What every record is logged with.
        record: LogRecord,
        /// The catalogue item requested (required).
        catalogue_item: String,
        /// The fulfilment instructions to follow (a reference).
        fulfilment_instructions: Option<String>,
    },
    /// A command every record accepts.
    Record(RecordCommand),
    /// Ask approval of `approvers`; `quorum` of them must approve.
    RequestApproval {
        /// Who may approve.
        approvers: Vec<PersonId>,
        /// How many approvals are needed.
        quorum: u32,
    },
    /// The acting person approves. Identities are compared as text: the command's actor is the
    /// person id approvers, callers and the person who logged the request are named by.
    Approve,
    /// The acting person rejects.
    Reject {
        /// Why.
        reason: String,
    },
    /// Add a fulfilment task.
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
}

impl From<RecordCommand> for RequestCommand {
    fn from(command: RecordCommand) -> Self {
        RequestCommand::Record(command)
    }
}

impl RequestCommand {
    /// The command's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            RequestCommand::Log { .. } => "log",
            RequestCommand::Record(c) => c.name(),
            RequestCommand::RequestApproval { .. } => "request approval",
            RequestCommand::Approve => "approve",
            RequestCommand::Reject { .. } => "reject",
            RequestCommand::AddTask { .. } => "add task",
            RequestCommand::FinishTask { .. } => "finish task",
        }
    }
}

/// Why service request management refuses beyond the shared reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestRule {
    /// The requester (or whoever logged the request) may not approve or reject it.
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
    /// Approval was already requested.
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
}

/// A refused request command.
pub type RequestRefusal = Refusal<RequestRule>;

/// Service request management: `decide` for [`ServiceRequest`]s.
#[derive(Debug, Clone, Copy)]
pub struct RequestManagement;

fn awaits_required_approval(state: &ServiceRequest, policy: &RequestPolicy) -> bool {
    state
        .catalogue_item()
        .is_some_and(|item| policy.approval_required.contains(item))
        && !state.approval().is_some_and(|a| a.approved)
}

impl RecordRules for RequestManagement {
    type Record = ServiceRequest;
    type Policy = RequestPolicy;
    type Rule = RequestRule;

    fn vocabulary() -> Vocabulary {
        use smsys_core::records::Phase::{Active, Cancelled, New, Pending};
        let mut triggers = desk_triggers();
        triggers.extend([
            TriggerRule {
                trigger: Trigger::REQUEST_APPROVAL,
                from: &[New, Active],
                to: &[Pending],
            },
            TriggerRule {
                trigger: Trigger::APPROVE,
                from: &[Pending],
                to: &[New, Active],
            },
            TriggerRule {
                trigger: Trigger::REJECT,
                from: &[Pending],
                to: &[Cancelled],
            },
        ]);
        Vocabulary {
            record_type: ServiceRequest::RECORD_TYPE,
            triggers,
            guards: vec![
                Guard::RESOLUTION_RECORDED,
                Guard::ALL_TASKS_FINISHED,
                Guard::APPROVED,
            ],
            stages: Vec::new(),
        }
    }

    fn record_policy(policy: &RequestPolicy) -> &RecordPolicy {
        &policy.record
    }

    fn guard_holds(record: &ServiceRequest, guard: &Guard) -> bool {
        if *guard == Guard::ALL_TASKS_FINISHED {
            record.tasks().values().all(|done| *done)
        } else if *guard == Guard::APPROVED {
            record.approval().is_some_and(|a| a.approved)
        } else {
            false
        }
    }

    fn before_transition(
        record: &ServiceRequest,
        trigger: &Trigger,
        policy: &RequestPolicy,
    ) -> Result<(), RefusalReason<RequestRule>> {
        if (*trigger == Trigger::START || *trigger == Trigger::RESOLVE)
            && awaits_required_approval(record, policy)
        {
            return Err(RefusalReason::GuardFailed(Guard::APPROVED));
        }
        Ok(())
    }
}

/// The pending approval `approver` may act on.
fn pending_approval<'a>(
    state: &'a ServiceRequest,
    approver: &PersonId,
) -> Result<&'a smsys_core::records::request::Approval, RefusalReason<RequestRule>> {
    let rule = RefusalReason::Rule;
    let approval = state
        .approval()
        .filter(|a| !a.approved && a.rejected_by.is_none())
        .ok_or(rule(RequestRule::NoApprovalPending))?;
    let record = state.record();
    let requested_by = record.caller() == Some(approver)
        || record.logged_by().map(PersonId::from).as_ref() == Some(approver);
    if requested_by {
        return Err(rule(RequestRule::SelfApproval(approver.to_string())));
    }
    if !approval.approvers.contains(approver) {
        return Err(rule(RequestRule::NotAnApprover(approver.to_string())));
    }
    if approval.given.contains(approver) {
        return Err(rule(RequestRule::AlreadyApproved(approver.to_string())));
    }
    Ok(approval)
}

fn decide_own(
    state: &ServiceRequest,
    command: &RequestCommand,
    policy: &RequestPolicy,
    ctx: &Context<'_>,
) -> Result<Vec<RequestEvent>, RefusalReason<RequestRule>> {
    use RefusalReason as R;
    let phase = state.record().phase().ok_or(R::NotLogged)?;
    if phase.is_final() {
        return Err(R::Final(phase));
    }
    let mut d = Decision::new(state, ctx);
    let step = |state: &ServiceRequest, trigger: &Trigger, detail| {
        transition::<RequestManagement>(state, policy, trigger, None, detail, ctx.now())
    };
    let actor = || ctx.actor().map(PersonId::from).ok_or(R::NoActor);
    match command {
        RequestCommand::RequestApproval { approvers, quorum } => {
            if state.approval().is_some() {
                return Err(R::Rule(RequestRule::ApprovalAlreadyRequested));
            }
            // Each approver counts once, whatever the list repeats.
            let mut distinct: Vec<PersonId> = Vec::new();
            for approver in approvers {
                if !distinct.contains(approver) {
                    distinct.push(approver.clone());
                }
            }
            if distinct.is_empty() {
                return Err(R::MissingInput("approvers"));
            }
            if *quorum == 0 || *quorum as usize > distinct.len() {
                return Err(R::Rule(RequestRule::InvalidQuorum {
                    quorum: *quorum,
                    approvers: distinct.len(),
                }));
            }
            d.push(TypedEvent::Own(FulfilmentEvent::ApprovalRequested {
                approvers: distinct,
                quorum: *quorum,
            }));
            let moved = step(
                d.state(),
                &Trigger::REQUEST_APPROVAL,
                TransitionDetail::Plain,
            )?;
            d.push(moved);
        }
        RequestCommand::Approve => {
            let approver = actor()?;
            let approval = pending_approval(state, &approver)?;
            let reached = approval.given.len() + 1 >= approval.quorum as usize;
            d.push(TypedEvent::Own(FulfilmentEvent::ApprovalGiven { approver }));
            if reached {
                d.push(TypedEvent::Own(FulfilmentEvent::Approved));
                let moved = step(d.state(), &Trigger::APPROVE, TransitionDetail::Plain)?;
                d.push(moved);
            }
        }
        RequestCommand::Reject { reason } => {
            let approver = actor()?;
            pending_approval(state, &approver)?;
            crate::record::required(reason, "rejection reason")?;
            let detail = TransitionDetail::Cancellation {
                reason: format!("rejected by {approver}: {reason}"),
            };
            d.push(TypedEvent::Own(FulfilmentEvent::ApprovalRejected {
                approver,
                reason: reason.clone(),
            }));
            let moved = step(d.state(), &Trigger::REJECT, detail)?;
            d.push(moved);
        }
        RequestCommand::AddTask { task, description } => {
            crate::record::required(task, "task id")?;
            crate::record::required(description, "task description")?;
            if state.tasks().contains_key(task) {
                return Err(R::Rule(RequestRule::DuplicateTask(task.clone())));
            }
            d.push(TypedEvent::Own(FulfilmentEvent::TaskAdded {
                task: task.clone(),
                description: description.clone(),
            }));
        }
        RequestCommand::FinishTask { task } => {
            match state.tasks().get(task) {
                None => return Err(R::Rule(RequestRule::UnknownTask(task.clone()))),
                Some(true) => return Err(R::Rule(RequestRule::TaskAlreadyFinished(task.clone()))),
                Some(false) => {}
            }
            d.push(TypedEvent::Own(FulfilmentEvent::TaskFinished {
                task: task.clone(),
            }));
        }
        RequestCommand::Log { .. } | RequestCommand::Record(_) => {}
    }
    Ok(d.into_events())
}

impl Aggregate for RequestManagement {
    type State = ServiceRequest;
    type Services = RequestPolicy;
    type Command = RequestCommand;
    type Rejection = RequestRefusal;

    fn decide(
        state: &ServiceRequest,
        command: &RequestCommand,
        policy: &RequestPolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<RequestEvent>, RequestRefusal> {
        let decided = match command {
            RequestCommand::Log {
                record,
                catalogue_item,
                fulfilment_instructions,
            } => log_record::<Self>(state, record, policy, ctx)
                .and_then(|logged| {
                    crate::record::required(catalogue_item, "catalogue item").map(|()| logged)
                })
                .map(|logged| {
                    vec![TypedEvent::Logged(RequestLogged {
                        record: logged,
                        catalogue_item: Some(catalogue_item.clone()),
                        fulfilment_instructions: fulfilment_instructions.clone(),
                    })]
                }),
            RequestCommand::Record(c) => decide_shared::<Self>(state, c, policy, ctx),
            RequestCommand::RequestApproval { .. }
            | RequestCommand::Approve
            | RequestCommand::Reject { .. }
            | RequestCommand::AddTask { .. }
            | RequestCommand::FinishTask { .. } => decide_own(state, command, policy, ctx),
        };
        decided.map_err(|reason| refuse::<Self>(state, command.name(), reason))
    }
}
