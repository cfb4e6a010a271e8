//! On a store, through the command handler: a normal change from request to review, approvals
//! reset by a revised plan, an emergency change closed after its retrospective assessment and
//! review with a failure remediated, a standard change from its template.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use smsys::core::records::change::ImplementationOutcome;
use smsys::core::records::{ChangeKind, Channel, Level, Phase, RecordKind};
use smsys::processes::change::{
    AssessChange, ChangeCommand, ChangePolicy, Conflict, ConflictDetector, ConflictKind, LogChange,
    ScheduleRequest,
};
use smsys::processes::{LogRecord, RecordCommand};

use crate::harness::{Board, approvals, assessment, id, log, plan, t0, templates, window};

/// A detector that reports a freeze for every window starting before `freeze_until`.
#[derive(Debug)]
struct FreezeUntil(Mutex<DateTime<Utc>>);

impl ConflictDetector for FreezeUntil {
    fn conflicts(&self, request: &ScheduleRequest<'_>) -> Vec<Conflict> {
        let until = *self.0.lock().unwrap();
        if request.window.start < until {
            vec![Conflict {
                kind: ConflictKind::Freeze,
                detail: format!("year-end freeze until {until}"),
                with: None,
                ci: request.cis.first().cloned(),
            }]
        } else {
            vec![Conflict {
                kind: ConflictKind::SameCi,
                detail: "CHG-9 on the same CI".into(),
                with: Some(id("CHG-9")),
                ci: request.cis.first().cloned(),
            }]
        }
    }
}

#[tokio::test]
async fn a_normal_change_from_request_to_review() {
    let freeze_until = t0() + TimeDelta::days(10);
    let detector = Arc::new(FreezeUntil(Mutex::new(freeze_until)));
    let policy = ChangePolicy::default()
        .with_approvals(approvals())
        .with_conflicts(detector);
    let mut b = Board::new(policy);
    b.run_as(
        "rita",
        "CHG-1",
        ChangeCommand::log(log("CHG-1", ChangeKind::Normal)),
    )
    .await;
    let refused = b
        .try_as("rita", "CHG-1", ChangeCommand::RequestAuthorisation)
        .await;
    assert!(refused.is_err(), "not from new");
    b.run_as("rita", "CHG-1", RecordCommand::Start.into()).await;
    b.run_as("rita", "CHG-1", ChangeCommand::Plan(plan("ivan")))
        .await;
    let refused = b.try_as("rita", "CHG-1", assessment()).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("lead time")),
        "assessed once a window gives its lead time: {refused:?}"
    );
    let refused = b
        .try_as("rita", "CHG-1", ChangeCommand::RequestAuthorisation)
        .await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("guard")),
        "{refused:?}"
    );

    // In the freeze: refused, naming the freeze; after it: scheduled with a warning.
    let frozen = b
        .try_as(
            "rita",
            "CHG-1",
            ChangeCommand::Schedule(window(t0() + TimeDelta::days(5), 2)),
        )
        .await;
    assert!(
        frozen.as_ref().is_err_and(|e| e.contains("freeze")),
        "{frozen:?}"
    );
    b.run_as(
        "rita",
        "CHG-1",
        ChangeCommand::Schedule(window(freeze_until + TimeDelta::days(1), 2)),
    )
    .await;
    assert_eq!(b.state("CHG-1").await.warnings().len(), 1);
    b.run_as("rita", "CHG-1", assessment()).await;
    b.run_as("rita", "CHG-1", ChangeCommand::RequestAuthorisation)
        .await;

    // The requester may not approve; a non-member may not either.
    let own = b
        .try_as("rita", "CHG-1", ChangeCommand::Approve { group: None })
        .await;
    assert!(
        own.as_ref().is_err_and(|e| e.contains("requester")),
        "{own:?}"
    );
    let implementer = b
        .try_as("ivan", "CHG-1", ChangeCommand::Approve { group: None })
        .await;
    assert!(
        implementer
            .as_ref()
            .is_err_and(|e| e.contains("implementer")),
        "{implementer:?}"
    );
    let outsider = b
        .try_as("zoe", "CHG-1", ChangeCommand::Approve { group: None })
        .await;
    assert!(
        outsider.as_ref().is_err_and(|e| e.contains("not a member")),
        "{outsider:?}"
    );

    // A revised plan before the quorum resets nothing given yet; carl authorises.
    b.run_as("carl", "CHG-1", ChangeCommand::Approve { group: None })
        .await;
    let change = b.state("CHG-1").await;
    assert_eq!(change.record().status(), Some("scheduled"));
    let authorisation = change.authorisation().expect("authorised");
    assert_eq!(authorisation.rule, "change_manager");

    b.run_as("ivan", "CHG-1", ChangeCommand::StartImplementation)
        .await;
    b.run_as(
        "ivan",
        "CHG-1",
        ChangeCommand::RecordImplementation {
            outcome: ImplementationOutcome::Success,
            notes: "patched".into(),
        },
    )
    .await;
    let early = b.try_as("rita", "CHG-1", RecordCommand::Close.into()).await;
    assert!(
        early.as_ref().is_err_and(|e| e.contains("reviewed")),
        "{early:?}"
    );
    b.run_as(
        "rita",
        "CHG-1",
        ChangeCommand::RecordReview {
            successful: true,
            findings: "no incidents".into(),
        },
    )
    .await;
    b.run_as("rita", "CHG-1", RecordCommand::Close.into()).await;
    assert_eq!(b.state("CHG-1").await.record().phase(), Some(Phase::Closed));
}

#[tokio::test]
async fn a_revised_plan_resets_the_approvals_given() {
    let policy = ChangePolicy::default().with_approvals(approvals());
    let mut b = Board::new(policy);
    b.run_as(
        "rita",
        "CHG-2",
        ChangeCommand::log(log("CHG-2", ChangeKind::Normal).plan(plan("ivan"))),
    )
    .await;
    b.run_as("rita", "CHG-2", RecordCommand::Start.into()).await;
    b.run_as(
        "rita",
        "CHG-2",
        ChangeCommand::Schedule(window(t0() + TimeDelta::days(20), 1)),
    )
    .await;
    // High probability and impact: major, so two CAB members are needed.
    b.run_as(
        "rita",
        "CHG-2",
        ChangeCommand::Assess(AssessChange {
            probability: Level::High,
            impact: Level::High,
            benefit: String::new(),
            cost: String::new(),
            feasibility: String::new(),
        }),
    )
    .await;
    b.run_as("rita", "CHG-2", ChangeCommand::RequestAuthorisation)
        .await;
    b.run_as("carl", "CHG-2", ChangeCommand::Approve { group: None })
        .await;
    let again = b
        .try_as("carl", "CHG-2", ChangeCommand::Approve { group: None })
        .await;
    assert!(
        again.as_ref().is_err_and(|e| e.contains("already")),
        "{again:?}"
    );
    assert_eq!(b.state("CHG-2").await.approvals().len(), 1);
    let mut revised = plan("ivan");
    revised.implementation = "apply the patch in two steps".into();
    // A normal change awaiting authorisation is not replanned in place: it goes back through
    // assessment, and the approvals given no longer count.
    let in_place = b
        .try_as("rita", "CHG-2", ChangeCommand::Plan(revised.clone()))
        .await;
    assert!(
        in_place
            .as_ref()
            .is_err_and(|e| e.contains("stage authorise")),
        "{in_place:?}"
    );
    b.run_as(
        "rita",
        "CHG-2",
        ChangeCommand::Revert {
            reason: "the patch goes in two steps".into(),
        },
    )
    .await;
    let change = b.state("CHG-2").await;
    assert!(change.approvals().is_empty(), "reset by the revert");
    assert_eq!(change.resets(), 1);
    b.run_as("rita", "CHG-2", RecordCommand::Start.into()).await;
    b.run_as("rita", "CHG-2", ChangeCommand::Plan(revised))
        .await;
    let stale = b
        .try_as("rita", "CHG-2", ChangeCommand::RequestAuthorisation)
        .await;
    assert!(
        stale.as_ref().is_err_and(|e| e.contains("assessed")),
        "the assessment was of the first plan: {stale:?}"
    );
    b.run_as(
        "rita",
        "CHG-2",
        ChangeCommand::Assess(AssessChange {
            probability: Level::High,
            impact: Level::High,
            benefit: String::new(),
            cost: String::new(),
            feasibility: String::new(),
        }),
    )
    .await;
    b.run_as("rita", "CHG-2", ChangeCommand::RequestAuthorisation)
        .await;
    b.run_as("carl", "CHG-2", ChangeCommand::Approve { group: None })
        .await;
    assert_eq!(b.state("CHG-2").await.record().status(), Some("authorise"));
    b.run_as("dana", "CHG-2", ChangeCommand::Approve { group: None })
        .await;
    let change = b.state("CHG-2").await;
    assert_eq!(change.record().status(), Some("scheduled"));
    assert_eq!(change.authorisation().expect("authorised").rule, "cab");
}

#[tokio::test]
async fn an_emergency_change_closes_after_its_retrospective_review_and_a_failure_is_remediated() {
    let policy = ChangePolicy::default().with_approvals(approvals());
    let mut b = Board::new(policy);
    b.run_as(
        "rita",
        "CHG-3",
        ChangeCommand::log(log("CHG-3", ChangeKind::Emergency).plan(plan("ivan"))),
    )
    .await;
    b.run_as(
        "rita",
        "CHG-3",
        ChangeCommand::Schedule(window(t0() + TimeDelta::hours(1), 1)),
    )
    .await;
    b.run_as("rita", "CHG-3", ChangeCommand::RequestAuthorisation)
        .await;
    b.run_as("erin", "CHG-3", ChangeCommand::Approve { group: None })
        .await;
    b.run_as("ivan", "CHG-3", ChangeCommand::StartImplementation)
        .await;
    b.run_as(
        "ivan",
        "CHG-3",
        ChangeCommand::RecordImplementation {
            outcome: ImplementationOutcome::Failed,
            notes: "service did not start".into(),
        },
    )
    .await;
    assert_eq!(b.state("CHG-3").await.record().status(), Some("failed"));
    b.run_as(
        "ivan",
        "CHG-3",
        ChangeCommand::RecordRemediation {
            restored: true,
            notes: "previous package reinstalled".into(),
        },
    )
    .await;
    b.run_as(
        "rita",
        "CHG-3",
        ChangeCommand::RecordReview {
            successful: false,
            findings: "backed out".into(),
        },
    )
    .await;
    let closing = b.try_as("rita", "CHG-3", RecordCommand::Close.into()).await;
    assert!(
        closing.as_ref().is_err_and(|e| e.contains("assessed")),
        "{closing:?}"
    );
    b.run_as("rita", "CHG-3", assessment()).await;
    let closing = b.try_as("rita", "CHG-3", RecordCommand::Close.into()).await;
    assert!(
        closing
            .as_ref()
            .is_err_and(|e| e.contains("failure_investigated")),
        "{closing:?}"
    );
    b.run_as(
        "rita",
        "CHG-3",
        ChangeCommand::RecordInvestigation {
            findings: "a dependency was missing".into(),
        },
    )
    .await;
    b.run_as("rita", "CHG-3", RecordCommand::Close.into()).await;
    assert_eq!(b.state("CHG-3").await.record().phase(), Some(Phase::Closed));
}

#[tokio::test]
async fn a_standard_change_pins_its_template_and_needs_no_approval() {
    let policy = ChangePolicy::default().with_templates(templates());
    let mut b = Board::new(policy);
    let record = LogRecord::new(
        id("CHG-4"),
        id("rita"),
        Channel::Portal,
        id("email"),
        "restart",
    )
    .affected_cis(vec![id("mx-01")]);
    let refused = b
        .try_as(
            "rita",
            "CHG-4",
            ChangeCommand::log(LogChange::new(record.clone(), ChangeKind::Standard)),
        )
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("must follow a template")),
        "{refused:?}"
    );
    b.run_as(
        "rita",
        "CHG-4",
        ChangeCommand::log(LogChange::standard(record, "restart-mx")),
    )
    .await;
    let change = b.state("CHG-4").await;
    assert_eq!(change.template().map(|t| t.version), Some(2));
    assert_eq!(
        change.plan().map(|p| p.implementation.as_str()),
        Some("drain, restart, undrain")
    );
    let mut deviating = change.plan().cloned().expect("planned");
    deviating.remediation = "hope".into();
    let refused = b
        .try_as("rita", "CHG-4", ChangeCommand::Plan(deviating))
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("keeps its template")),
        "{refused:?}"
    );
    b.run_as(
        "rita",
        "CHG-4",
        ChangeCommand::Schedule(window(t0() + TimeDelta::days(1), 1)),
    )
    .await;
    assert_eq!(b.state("CHG-4").await.record().status(), Some("scheduled"));
    let approve = b
        .try_as("carl", "CHG-4", ChangeCommand::Approve { group: None })
        .await;
    assert!(approve.is_err(), "a standard change is not approved");
    b.run_as("rita", "CHG-4", ChangeCommand::StartImplementation)
        .await;
    assert_eq!(b.state("CHG-4").await.record().status(), Some("implement"));
}

#[tokio::test]
async fn a_change_neither_migrates_past_its_rules_nor_is_implemented_by_an_approver() {
    use smsys::core::records::DefinitionRef;
    let mut b = Board::new(ChangePolicy::default().with_approvals(approvals()));
    b.run_as(
        "rita",
        "CHG-6",
        ChangeCommand::log(log("CHG-6", ChangeKind::Normal).plan(plan("ivan"))),
    )
    .await;
    b.run_as("rita", "CHG-6", RecordCommand::Start.into()).await;
    let migrate = |name: &str, from: &str, to: &str| {
        ChangeCommand::from(RecordCommand::MigrateLifecycle {
            to: DefinitionRef {
                name: name.into(),
                version: 1,
            },
            mapping: [(from.to_owned(), to.to_owned())].into_iter().collect(),
        })
    };
    // Into the standard lifecycle's implementation, skipping assessment and authorisation.
    let skip = b
        .try_as(
            "rita",
            "CHG-6",
            migrate("change_standard", "assess", "implement"),
        )
        .await;
    assert!(
        skip.as_ref()
            .is_err_and(|e| e.contains("another lifecycle")),
        "{skip:?}"
    );
    assert_eq!(b.state("CHG-6").await.record().status(), Some("assess"));

    b.run_as(
        "rita",
        "CHG-6",
        ChangeCommand::Schedule(window(t0() + TimeDelta::days(20), 1)),
    )
    .await;
    b.run_as("rita", "CHG-6", assessment()).await;
    b.run_as("rita", "CHG-6", ChangeCommand::RequestAuthorisation)
        .await;
    b.run_as("carl", "CHG-6", ChangeCommand::Approve { group: None })
        .await;
    let own = b
        .try_as("carl", "CHG-6", ChangeCommand::StartImplementation)
        .await;
    assert!(
        own.as_ref()
            .is_err_and(|e| e.contains("approved this change")),
        "{own:?}"
    );
    b.run_as("ivan", "CHG-6", ChangeCommand::StartImplementation)
        .await;
    assert_eq!(b.state("CHG-6").await.record().status(), Some("implement"));
}
