//! Change management end to end on a store: a normal change from request to review with a
//! refused self-approval, a blocking conflict resolved by rescheduling and approvals reset by a
//! revised plan; an emergency change closed only after its retrospective assessment and
//! review; a failed change remediated and investigated; a standard change from its template.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use smsys::core::records::change::{ChangePlan, ChangeWindow, ImplementationOutcome};
use smsys::core::records::{Change, ChangeKind, Channel, Level, Phase, RecordKind, Reference};
use smsys::core::{Actor, CommandHandler, CommandMeta, Context, EventStore, SequentialIds};
use smsys::processes::change::{
    ApprovalPolicy, AssessChange, ChangeCommand, ChangeManagement, ChangePolicy, ChangeTemplate,
    ChangeTemplates, Conflict, ConflictDetector, ConflictKind, LogChange, ScheduleRequest,
};
use smsys::processes::{LogRecord, RecordCommand};
use smsys::store::MemoryEventStore;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .expect("valid")
}

fn id<T: std::str::FromStr<Err = E>, E: std::fmt::Debug>(text: &str) -> T {
    text.parse().expect("valid")
}

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

struct Board {
    changes: CommandHandler<ChangeManagement>,
    ids: SequentialIds,
    now: DateTime<Utc>,
}

impl Board {
    fn new(policy: ChangePolicy) -> Self {
        let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
        Self {
            changes: CommandHandler::new(store, policy),
            ids: SequentialIds::new(1),
            now: t0(),
        }
    }

    async fn try_as(
        &mut self,
        who: &str,
        name: &str,
        command: ChangeCommand,
    ) -> Result<(), String> {
        self.now += TimeDelta::minutes(1);
        let stream = Change::stream(&id::<Reference, _>(name)).expect("valid");
        let ctx = Context::new(self.now, &self.ids);
        let meta = CommandMeta::new(Actor::new(who).expect("valid"));
        let run = self.changes.execute(&stream, &command, &meta, &ctx);
        run.await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn run_as(&mut self, who: &str, name: &str, command: ChangeCommand) {
        let what = command.name();
        self.try_as(who, name, command)
            .await
            .unwrap_or_else(|e| panic!("{what} on {name}: {e}"));
    }

    async fn state(&self, name: &str) -> Change {
        let stream = Change::stream(&id::<Reference, _>(name)).expect("valid");
        self.changes.load(&stream).await.expect("loads").state
    }
}

fn log(name: &str, kind: ChangeKind) -> LogChange {
    LogChange::new(
        LogRecord::new(
            id(name),
            id("rita"),
            Channel::Portal,
            id("email"),
            "patch the mail server",
        )
        .affected_cis(vec![id("mx-01")]),
        kind,
    )
}

fn plan(implementer: &str) -> ChangePlan {
    ChangePlan {
        cis: vec![id("mx-01")],
        implementation: "apply the patch, restart".into(),
        remediation: "reinstall the previous package".into(),
        test_plan: "send a test mail".into(),
        implementer: Some(id(implementer)),
        ci_updates: Vec::new(),
    }
}

fn window(start: DateTime<Utc>, hours: i64) -> ChangeWindow {
    ChangeWindow {
        start,
        end: start + TimeDelta::hours(hours),
        time_zone: "Europe/Paris".into(),
    }
}

fn assessment() -> ChangeCommand {
    ChangeCommand::Assess(AssessChange {
        probability: Level::Low,
        impact: Level::Medium,
        benefit: "closes CVE-2026-1".into(),
        cost: "2 hours".into(),
        feasibility: "routine".into(),
    })
}

fn approvals() -> ApprovalPolicy {
    ApprovalPolicy::reference()
        .with_members(&id("change-managers"), [id("rita"), id("carl")])
        .and_then(|p| p.with_members(&id("cab"), [id("carl"), id("dana")]))
        .and_then(|p| p.with_members(&id("ecab"), [id("erin"), id("ivan")]))
        .expect("groups exist")
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
    b.run_as("rita", "CHG-1", assessment()).await;
    let refused = b
        .try_as("rita", "CHG-1", ChangeCommand::RequestAuthorisation)
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("window_planned")),
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
    b.run_as(
        "rita",
        "CHG-2",
        ChangeCommand::Schedule(window(t0() + TimeDelta::days(20), 1)),
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
    b.run_as("rita", "CHG-2", ChangeCommand::Plan(revised))
        .await;
    let change = b.state("CHG-2").await;
    assert!(change.approvals().is_empty(), "reset by the revised plan");
    assert_eq!(change.resets(), 1);
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
    let template = |version, implementation: &str| ChangeTemplate {
        name: "restart-mx".into(),
        version,
        summary: "Restart a mail server".into(),
        implementation: implementation.into(),
        remediation: "start the previous binary".into(),
        test_plan: String::new(),
        withdrawn: false,
    };
    let templates = ChangeTemplates::new()
        .with(template(1, "restart"))
        .and_then(|t| t.with(template(2, "drain, restart, undrain")))
        .expect("valid");
    let policy = ChangePolicy::default().with_templates(templates);
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
