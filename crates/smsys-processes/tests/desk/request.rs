//! Service request rules: approval by identity (segregation of duties), quorum, rejection,
//! catalogue items that need approval, and fulfilment tasks.

use smsys_core::records::{PersonId, Phase};
use smsys_processes::lifecycle::Guard;
use smsys_processes::request::RequestRule;
use smsys_processes::{RecordCommand, RefusalReason, RequestCommand, RequestManagement};

use crate::harness::{Kind, Requests, id, log_input};
use crate::incident::{assign, resolve};

fn ask_approval(approvers: &[&str], quorum: u32) -> RequestCommand {
    RequestCommand::RequestApproval {
        approvers: approvers.iter().map(|a| id(a)).collect(),
        quorum,
    }
}

fn add_task(task: &str) -> RequestCommand {
    RequestCommand::AddTask {
        task: task.into(),
        description: format!("do {task}"),
    }
}

fn finish_task(task: &str) -> RequestCommand {
    RequestCommand::FinishTask { task: task.into() }
}

fn rule(rule: RequestRule) -> RefusalReason<RequestRule> {
    RefusalReason::Rule(rule)
}

#[test]
fn a_request_is_logged_with_its_catalogue_item() {
    let mut d = Requests::new();
    assert_eq!(
        d.refused(RequestCommand::Log {
            record: log_input(),
            catalogue_item: " ".into(),
            fulfilment_instructions: None,
        }),
        RefusalReason::MissingInput("catalogue item")
    );
    d.ok(RequestCommand::Log {
        record: log_input(),
        catalogue_item: "new-mailbox".into(),
        fulfilment_instructions: Some("KB-12".into()),
    });
    assert_eq!(d.state.catalogue_item(), Some("new-mailbox"));
    assert_eq!(d.state.fulfilment_instructions(), Some("KB-12"));
    assert_eq!(
        d.refused(RequestManagement::log(log_input())),
        RefusalReason::AlreadyLogged
    );
}

#[test]
fn approval_is_refused_to_the_caller_to_whoever_logged_it_and_to_non_approvers() {
    // ana called, frank logged it.
    let mut d = Requests::logged();
    assert_eq!(
        d.refused(ask_approval(&["carol"], 2)),
        rule(RequestRule::InvalidQuorum {
            quorum: 2,
            approvers: 1
        })
    );
    assert_eq!(
        d.refused(ask_approval(&["carol"], 0)),
        rule(RequestRule::InvalidQuorum {
            quorum: 0,
            approvers: 1
        })
    );
    assert_eq!(
        d.refused(ask_approval(&[], 1)),
        RefusalReason::MissingInput("approvers")
    );
    // An approver named twice counts once: a quorum of two needs two people.
    assert_eq!(
        d.refused(ask_approval(&["carol", "carol"], 2)),
        rule(RequestRule::InvalidQuorum {
            quorum: 2,
            approvers: 1
        })
    );
    assert_eq!(
        d.refused(RequestCommand::Approve),
        rule(RequestRule::NoApprovalPending)
    );
    d.ok(ask_approval(&["ana", "frank", "carol", "dave"], 2));
    assert_eq!(d.record().status(), Some("awaiting_approval"));
    assert_eq!(
        d.refused(ask_approval(&["carol"], 1)),
        rule(RequestRule::ApprovalAlreadyRequested)
    );

    assert_eq!(
        d.acting("ana").refused(RequestCommand::Approve),
        rule(RequestRule::SelfApproval("ana".into())),
        "the caller, though listed as an approver"
    );
    assert_eq!(
        d.acting("frank").refused(RequestCommand::Approve),
        rule(RequestRule::SelfApproval("frank".into())),
        "whoever logged it, though listed as an approver"
    );
    assert_eq!(
        d.acting("frank").refused(RequestCommand::Reject {
            reason: "mine".into()
        }),
        rule(RequestRule::SelfApproval("frank".into())),
        "nor reject it"
    );
    assert_eq!(
        d.acting("mallory").refused(RequestCommand::Approve),
        rule(RequestRule::NotAnApprover("mallory".into()))
    );
    d.actor = None;
    assert_eq!(
        d.refused(RequestCommand::Approve),
        RefusalReason::NoActor,
        "approval acts as someone"
    );

    assert_eq!(
        d.acting("carol").ok(RequestCommand::Approve),
        vec!["approval_given"],
        "one of a quorum of two"
    );
    assert_eq!(
        d.refused(RequestCommand::Approve),
        rule(RequestRule::AlreadyApproved("carol".into()))
    );
    assert_eq!(
        d.acting("dave").ok(RequestCommand::Approve),
        vec!["approval_given", "approved", "transitioned"]
    );
    assert_eq!(d.record().status(), Some("in_fulfilment"));
    let approval = d.state.approval().expect("asked");
    assert!(approval.approved);
    assert_eq!(approval.given, [id::<PersonId>("carol"), id("dave")]);
}

#[test]
fn a_rejected_request_is_cancelled() {
    let mut d = Requests::logged();
    d.ok(ask_approval(&["carol"], 1));
    assert_eq!(
        d.acting("carol")
            .refused(RequestCommand::Reject { reason: " ".into() }),
        RefusalReason::MissingInput("rejection reason")
    );
    assert_eq!(
        d.ok(RequestCommand::Reject {
            reason: "no budget".into()
        }),
        vec!["approval_rejected", "transitioned"]
    );
    assert_eq!(d.record().status(), Some("rejected"));
    assert_eq!(d.record().phase(), Some(Phase::Cancelled));
    assert_eq!(
        d.state.approval().and_then(|a| a.rejected_by.clone()),
        Some(id("carol"))
    );
}

#[test]
fn a_request_is_fulfilled_once_every_task_finished() {
    let mut d = Requests::logged();
    d.ok(assign());
    assert_eq!(d.record().status(), Some("in_fulfilment"));
    d.ok(add_task("t1"));
    d.ok(add_task("t2"));
    assert_eq!(
        d.refused(add_task("t1")),
        rule(RequestRule::DuplicateTask("t1".into()))
    );
    assert_eq!(
        d.refused(finish_task("t9")),
        rule(RequestRule::UnknownTask("t9".into()))
    );
    d.ok(finish_task("t1"));
    assert_eq!(
        d.refused(resolve()),
        RefusalReason::GuardFailed(Guard::ALL_TASKS_FINISHED)
    );
    d.ok(finish_task("t2"));
    assert_eq!(
        d.refused(finish_task("t2")),
        rule(RequestRule::TaskAlreadyFinished("t2".into()))
    );
    d.ok(resolve());
    assert_eq!(d.record().status(), Some("fulfilled"));
    assert!(d.state.tasks().values().all(|done| *done));
}

#[test]
fn catalogue_items_that_need_approval_are_not_fulfilled_without_it() {
    let mut policy = RequestManagement::policy();
    policy.approval_required.insert("new-mailbox".into());
    let mut d = Requests::logged_under(policy);
    assert_eq!(
        d.ok(assign()),
        vec!["assigned"],
        "assigning does not start fulfilment"
    );
    assert_eq!(d.record().status(), Some("new"));
    d.ok(add_task("t1"));
    d.ok(finish_task("t1"));
    let refusal = d.run(resolve()).expect_err("not approved");
    assert_eq!(refusal.reason, RefusalReason::GuardFailed(Guard::APPROVED));
    assert_eq!(
        refusal.to_string(),
        "service request R-1 (status new): resolve refused: guard approved does not hold"
    );
    d.ok(ask_approval(&["carol"], 1));
    d.acting("carol").ok(RequestCommand::Approve);
    assert_eq!(d.record().status(), Some("in_fulfilment"));
    d.ok(resolve());
    assert_eq!(d.record().status(), Some("fulfilled"));

    let mut free = Requests::logged();
    assert_eq!(
        free.ok(assign()),
        vec!["assigned", "transitioned"],
        "other items start at once"
    );
    assert_eq!(free.record().status(), Some("in_fulfilment"));
    assert_eq!(
        free.ok(RecordCommand::Cancel {
            reason: "not needed".into()
        }),
        vec!["transitioned"]
    );
}
