//! A release's scope: it deploys only while every change it delivers is authorised, as the
//! policy's change authorisations (set by the test, or a change schedule fed by the log) say;
//! without a source, only a release without changes deploys.

use std::sync::Arc;

use chrono::TimeDelta;
use smsys::core::records::change::{ChangePlan, ChangeWindow};
use smsys::core::records::release::DeploymentOutcome;
use smsys::core::records::{Change, ChangeKind, Channel};
use smsys::core::records::{LinkKind, RecordKind, ReleaseKind};
use smsys::core::{Actor, CommandHandler, CommandMeta, Context, ProjectionRunner, SequentialIds};
use smsys::processes::change::{
    ChangeCommand, ChangeManagement, ChangePolicy, ChangeSchedule, LogChange,
};
use smsys::processes::release::{ReleaseCommand, ReleasePolicy, ReleaseRule};
use smsys::processes::{CmdbGraph, LogRecord, RecordCommand, RefusalReason};

use crate::flows::{accepted, board, configuration, deploy};
use crate::harness::{Board, OPERATOR, REQUESTER, approvals, id};

type C = ReleaseCommand;

/// Release `name` approved and baselined, linked to `changes`.
async fn baselined(b: &mut Board, name: &str, changes: &[&str]) {
    accepted(b, name, ReleaseKind::Emergency).await;
    for change in changes {
        let link = RecordCommand::Link {
            kind: LinkKind::CHANGE,
            target: (*change).into(),
        };
        b.run_as(REQUESTER, name, link.into()).await;
    }
    b.run_as("erin", name, C::Approve { group: None }).await;
    b.run_as(REQUESTER, name, C::TakeBaseline).await;
}

fn not_authorised(change: &str, why: &'static str) -> RefusalReason<ReleaseRule> {
    RefusalReason::Rule(ReleaseRule::ChangeNotAuthorised {
        change: id(change),
        why,
    })
}

#[tokio::test]
async fn a_release_deploys_only_while_its_changes_are_authorised() {
    let (mut b, _, changes) = board().await;
    let r = "REL-7";
    baselined(&mut b, r, &["CHG-1"]).await;
    let reason = b.refused(OPERATOR, r, C::StartDeployment).await;
    assert_eq!(reason, not_authorised("CHG-1", "unknown"));
    changes.set("CHG-1", false);
    let reason = b.refused(OPERATOR, r, C::StartDeployment).await;
    assert_eq!(reason, not_authorised("CHG-1", "not authorised"));
    let message = smsys::processes::release::ReleaseRule::ChangeNotAuthorised {
        change: id("CHG-1"),
        why: "not authorised",
    }
    .to_string();
    assert!(message.contains("CHG-1") && message.contains("not authorised"));
    changes.set("CHG-1", true);
    b.run_as(OPERATOR, r, C::StartDeployment).await;

    // A change linked mid-deployment, not authorised: no successful deployment records.
    let link = RecordCommand::Link {
        kind: LinkKind::CHANGE,
        target: "CHG-2".into(),
    };
    b.run_as(REQUESTER, r, link.into()).await;
    changes.set("CHG-2", false);
    let reason = b
        .refused(
            OPERATOR,
            r,
            deploy("production", DeploymentOutcome::Success),
        )
        .await;
    assert_eq!(reason, not_authorised("CHG-2", "not authorised"));
    changes.set("CHG-2", true);
    let release = b
        .run_as(
            OPERATOR,
            r,
            deploy("production", DeploymentOutcome::Success),
        )
        .await;
    assert_eq!(release.record().status(), Some("early_life"));
}

#[tokio::test]
async fn without_change_authorisations_only_a_release_without_changes_deploys() {
    let graph = Arc::new(CmdbGraph::new());
    let policy = ReleasePolicy::default()
        .with_approvals(approvals())
        .with_baselines(graph.clone());
    let mut b = Board::new(graph, policy);
    configuration(&mut b).await;
    baselined(&mut b, "REL-8", &["CHG-1"]).await;
    let reason = b.refused(OPERATOR, "REL-8", C::StartDeployment).await;
    let why = "unchecked (no change authorisations configured)";
    assert_eq!(reason, not_authorised("CHG-1", why));
    baselined(&mut b, "REL-9", &[]).await;
    let release = b.run_as(OPERATOR, "REL-9", C::StartDeployment).await;
    assert_eq!(release.record().status(), Some("deploying"));
}

/// Runs `command` on change `name` as `who` at `now`; it must be accepted.
async fn change_as(
    (changes, ids): (&CommandHandler<ChangeManagement>, &SequentialIds),
    who: &str,
    name: &str,
    command: ChangeCommand,
    now: chrono::DateTime<chrono::Utc>,
) {
    let stream = Change::stream(&id(name)).expect("valid");
    let meta = CommandMeta::new(Actor::new(who).expect("valid"));
    changes
        .execute(&stream, &command, &meta, &Context::new(now, ids))
        .await
        .unwrap_or_else(|e| panic!("{} on {name}: {e}", command.name()));
}

#[tokio::test]
async fn a_change_schedule_fed_by_the_log_says_whether_the_changes_are_authorised() {
    let graph = Arc::new(CmdbGraph::new());
    let schedule = Arc::new(ChangeSchedule::new("change_schedule", graph.clone()));
    let policy = ReleasePolicy::default()
        .with_approvals(approvals())
        .with_baselines(graph.clone())
        .with_changes(schedule.clone());
    let mut b = Board::new(graph, policy);
    configuration(&mut b).await;
    let runner = ProjectionRunner::new(b.store().clone());
    let handler = CommandHandler::<ChangeManagement>::new(
        b.store().clone(),
        ChangePolicy::default().with_approvals(approvals()),
    );
    let ids = SequentialIds::new(500);
    let changes = (&handler, &ids);
    let r = "REL-10";
    baselined(&mut b, r, &["CHG-7"]).await;
    runner.catch_up(&*schedule).await.expect("folds");
    let reason = b.refused(OPERATOR, r, C::StartDeployment).await;
    assert_eq!(reason, not_authorised("CHG-7", "unknown"));

    let plan = ChangePlan {
        cis: vec![id("app-01")],
        implementation: "upgrade".into(),
        remediation: "downgrade".into(),
        test_plan: String::new(),
        implementer: Some(id("ivan")),
        ci_updates: Vec::new(),
    };
    let record = LogRecord::new(
        id("CHG-7"),
        id(REQUESTER),
        Channel::Portal,
        id("email"),
        "upgrade mail",
    );
    let log = ChangeCommand::log(LogChange::new(record, ChangeKind::Emergency).plan(plan));
    change_as(changes, REQUESTER, "CHG-7", log, b.now()).await;
    runner.catch_up(&*schedule).await.expect("folds");
    let reason = b.refused(OPERATOR, r, C::StartDeployment).await;
    assert_eq!(reason, not_authorised("CHG-7", "not authorised"));

    let window = ChangeWindow {
        start: b.now() + TimeDelta::hours(1),
        end: b.now() + TimeDelta::hours(2),
        time_zone: "Europe/Paris".into(),
    };
    change_as(
        changes,
        REQUESTER,
        "CHG-7",
        ChangeCommand::Schedule(window),
        b.now(),
    )
    .await;
    let ask = ChangeCommand::RequestAuthorisation;
    change_as(changes, REQUESTER, "CHG-7", ask, b.now()).await;
    let approve = ChangeCommand::Approve { group: None };
    change_as(changes, "erin", "CHG-7", approve, b.now()).await;
    runner.catch_up(&*schedule).await.expect("folds");
    let release = b.run_as(OPERATOR, r, C::StartDeployment).await;
    assert_eq!(release.record().status(), Some("deploying"));
}

#[tokio::test]
async fn a_change_link_that_names_no_change_blocks_the_deployment() {
    let (mut b, _, _) = board().await;
    let r = "REL-11";
    baselined(&mut b, r, &["CHG 7"]).await;
    let reason = b.refused(OPERATOR, r, C::StartDeployment).await;
    let expected = ReleaseRule::NotAChange("CHG 7".into());
    assert_eq!(reason, RefusalReason::Rule(expected));
    let unlink = RecordCommand::Unlink {
        kind: LinkKind::CHANGE,
        target: "CHG 7".into(),
    };
    b.run_as(REQUESTER, r, unlink.into()).await;
    b.run_as(OPERATOR, r, C::StartDeployment).await;
}
