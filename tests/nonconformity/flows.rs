//! A nonconformity from raising to closure, on a store and on a desk, and what is refused on
//! the way.

use std::sync::Arc;

use smsys::core::records::{Nonconformity, NonconformitySource, RecordKind};
use smsys::core::{Actor, CommandHandler, CommandMeta, Context, SequentialIds};
use smsys::processes::nonconformity::{
    LogNonconformity, NonconformityCommand as C, NonconformityManagement, NonconformityPolicy,
    NonconformityRule,
};
use smsys::processes::{RecordCommand, RefusalReason};
use smsys::store::MemoryEventStore;

use crate::harness::{Desk, OWNER, QUALITY, action, command, due, id, log, record, t0};

fn rule_of(refused: &smsys::processes::nonconformity::NonconformityRefusal) -> NonconformityRule {
    if let RefusalReason::Rule(rule) = &refused.reason {
        rule.clone()
    } else {
        panic!("expected a nonconformity rule, got {:?}", refused.reason)
    }
}

#[tokio::test]
async fn a_nonconformity_closes_on_a_store_after_an_effective_review() {
    let handler = CommandHandler::<NonconformityManagement>::new(
        Arc::new(MemoryEventStore::new()),
        NonconformityPolicy::default(),
    );
    let stream = Nonconformity::stream(&id("NC-0001")).expect("stream");
    let ids = SequentialIds::new(1);
    let ctx = Context::new(t0(), &ids);
    let run = |who: &'static str, command: C| {
        let handler = &handler;
        let stream = &stream;
        let ctx = &ctx;
        async move {
            let meta = CommandMeta::new(Actor::new(who).expect("valid"));
            handler.execute(stream, &command, &meta, ctx).await
        }
    };
    run(QUALITY, log("NC-0001")).await.expect("raised");
    for name in ["correct", "analyse", "plan"] {
        run(QUALITY, command(name)).await.expect(name);
    }
    run(OWNER, command("implement")).await.expect("implemented");
    run(QUALITY, command("effective")).await.expect("reviewed");
    run(QUALITY, RecordCommand::Close.into())
        .await
        .expect("closed");
    let nc = handler.load(&stream).await.expect("loads").state;
    assert_eq!(nc.record().status(), Some("closed"));
    assert_eq!(
        nc.source(),
        Some(&NonconformitySource::FailedChange {
            change: id("CHG-0007")
        })
    );
    assert_eq!(
        nc.implementations()[0].by.as_ref().map(Actor::as_str),
        Some(OWNER)
    );
    assert_eq!(
        nc.reviews()[0].by.as_ref().map(Actor::as_str),
        Some(QUALITY)
    );
}

#[test]
fn an_ineffective_review_returns_to_cause_analysis_and_keeps_the_first_round() {
    let mut desk = Desk::raised("NC-0001");
    desk.walk(
        QUALITY,
        &["correct", "analyse", "plan", "implement", "ineffective"],
    );
    assert_eq!(desk.status(), "corrected");
    assert_eq!(desk.state.round(), 2);
    let refused = desk.run(QUALITY, &RecordCommand::Close.into()).unwrap_err();
    assert_eq!(rule_of(&refused), NonconformityRule::NotEffective);
    let second = C::AnalyseCause {
        cause: "the alert went to an unread mailbox".into(),
        method: "fishbone".into(),
    };
    desk.run(QUALITY, &second).expect("analysed again");
    desk.walk(QUALITY, &["plan", "implement", "effective", "close"]);
    assert_eq!(desk.status(), "closed");
    let nc = &desk.state;
    let causes: Vec<(&str, u32)> = nc
        .analyses()
        .iter()
        .map(|a| (a.what.cause.as_str(), a.round))
        .collect();
    assert_eq!(
        causes,
        [
            ("no capacity alert", 1),
            ("the alert went to an unread mailbox", 2)
        ]
    );
    assert_eq!((nc.plans().len(), nc.implementations().len()), (2, 2));
    let verdicts: Vec<bool> = nc.reviews().iter().map(|r| r.what.effective).collect();
    assert_eq!(verdicts, [false, true]);
    assert_eq!(nc.corrections().len(), 1);
    assert_eq!(desk.replayed(), desk.state);
}

#[test]
fn closure_needs_an_effective_review_and_the_review_needs_the_action_implemented() {
    let mut desk = Desk::raised("NC-0001");
    desk.walk(QUALITY, &["correct", "analyse", "plan"]);
    let refused = desk.run(QUALITY, &command("effective")).unwrap_err();
    assert_eq!(rule_of(&refused), NonconformityRule::ActionNotImplemented);
    assert!(refused.to_string().contains("not implemented"), "{refused}");
    let refused = desk.run(QUALITY, &RecordCommand::Close.into()).unwrap_err();
    assert_eq!(rule_of(&refused), NonconformityRule::NotEffective);
    assert!(refused.to_string().contains("before closing"), "{refused}");
    assert_eq!(desk.status(), "action_planned");
}

#[test]
fn an_action_owner_does_not_review_its_effectiveness_unless_the_policy_allows() {
    let mut desk = Desk::raised("NC-0001");
    desk.walk(QUALITY, &["correct", "analyse", "plan", "implement"]);
    let refused = desk.run(OWNER, &command("effective")).unwrap_err();
    assert_eq!(
        rule_of(&refused),
        NonconformityRule::ReviewerOwnsAction(id(OWNER))
    );
    assert!(refused.to_string().contains("olga owns"), "{refused}");

    let policy = NonconformityPolicy {
        segregate_review: false,
        ..NonconformityPolicy::default()
    };
    let mut desk = Desk::with(policy);
    desk.run(QUALITY, &log("NC-0002")).expect("raised");
    desk.walk(QUALITY, &["correct", "analyse", "plan", "implement"]);
    desk.run(OWNER, &command("effective"))
        .expect("reviewed by the owner");
}

#[test]
fn a_plan_names_actions_not_yet_due() {
    let mut desk = Desk::raised("NC-0001");
    desk.walk(QUALITY, &["correct", "analyse"]);
    let empty = C::PlanActions {
        actions: Vec::new(),
    };
    let refused = desk.run(QUALITY, &empty).unwrap_err();
    assert_eq!(rule_of(&refused), NonconformityRule::NoActions);
    let mut late = action(OWNER);
    late.due = due(-1);
    let refused = desk
        .run(
            QUALITY,
            &C::PlanActions {
                actions: vec![late],
            },
        )
        .unwrap_err();
    assert!(
        matches!(rule_of(&refused), NonconformityRule::DueInThePast { .. }),
        "{refused}"
    );
    let mut today = action(OWNER);
    today.due = due(0);
    desk.run(
        QUALITY,
        &C::PlanActions {
            actions: vec![today],
        },
    )
    .expect("due today is allowed");
}

#[test]
fn cancellation_needs_a_reason_and_ends_before_the_actions_are_implemented() {
    let mut desk = Desk::raised("NC-0001");
    let blank = RecordCommand::Cancel { reason: " ".into() };
    assert!(desk.run(QUALITY, &blank.into()).is_err());
    desk.walk(QUALITY, &["correct", "cancel"]);
    assert_eq!(desk.status(), "cancelled");
    assert!(desk.run(QUALITY, &command("analyse")).is_err());

    let mut desk = Desk::raised("NC-0002");
    desk.walk(QUALITY, &["correct", "analyse", "plan", "implement"]);
    assert!(desk.run(QUALITY, &command("cancel")).is_err());
}

#[test]
fn sources_are_recorded_and_a_nonconformity_is_not_its_own_source() {
    let mut desk = Desk::new();
    let audit = NonconformitySource::AuditFinding { audit: " ".into() };
    let blank = C::log(LogNonconformity::new(record("NC-0001"), audit));
    assert!(matches!(
        desk.run(QUALITY, &blank).unwrap_err().reason,
        RefusalReason::MissingInput(_)
    ));
    let own = NonconformitySource::Complaint {
        record: Some(id("NC-0001")),
    };
    let refused = desk
        .run(
            QUALITY,
            &C::log(LogNonconformity::new(record("NC-0001"), own)),
        )
        .unwrap_err();
    assert_eq!(
        rule_of(&refused),
        NonconformityRule::OwnSource(id("NC-0001"))
    );
    let audit = NonconformitySource::AuditFinding {
        audit: "internal audit 2026-Q4, finding 3".into(),
    };
    desk.run(
        QUALITY,
        &C::log(LogNonconformity::new(record("NC-0001"), audit.clone())),
    )
    .expect("raised");
    assert_eq!(desk.state.source(), Some(&audit));
    assert_eq!(desk.status(), "raised");
}
