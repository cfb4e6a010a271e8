//! On a store, through the command handlers: a major release from plan to closure (a failed
//! deployment rolled back to its baseline, a second attempt on a new one), an emergency
//! release whose early life is waived, a rejected release, and the refusals on the way, each
//! naming its rule and leaving the stream untouched.

use std::sync::Arc;

use chrono::TimeDelta;
use smsys::core::records::change::{ChangePlan, ChangeWindow};
use smsys::core::records::release::DeploymentOutcome;
use smsys::core::records::{
    AttributeValue, CiId, LinkKind, Phase, RecordKind, Relationship, ReleaseKind,
};
use smsys::core::records::{Change, ChangeKind, Channel, PersonId, Reference};
use smsys::core::{Actor, CommandHandler, CommandMeta, Context, ProjectionRunner, SequentialIds};
use smsys::processes::change::{
    ChangeCommand, ChangeManagement, ChangePolicy, ChangeSchedule, LogChange,
};
use smsys::processes::configuration::CiCommand;
use smsys::processes::lifecycle::Guard;
use smsys::processes::release::{
    BaselineError, ReleaseCommand, ReleaseKinds, ReleasePolicy, ReleaseRule,
};
use smsys::processes::{CmdbGraph, LogRecord, RecordCommand, RefusalReason};

use crate::harness::{
    Authorisations, Board, DEPLOYER, Desk, OPERATOR, OUTSIDER, REQUESTER, approvals,
    early_life_days, id, log_planned, release_cis,
};

type C = ReleaseCommand;

/// `app-01` (an application running on `srv-01`) and `srv-01` (a server), registered through
/// the CMDB, and the graph caught up.
async fn configuration(b: &mut Board) {
    let register = |ci: &str, ci_type: &str, attribute: &str, value: &str| CiCommand::Register {
        id: id(ci),
        ci_type: id(ci_type),
        name: ci.into(),
        description: String::new(),
        attributes: [(id(attribute), AttributeValue::from(value))]
            .into_iter()
            .collect(),
        change: Some(id("CHG-0")),
    };
    b.ci("srv-01", register("srv-01", "server", "os", "debian 12"))
        .await;
    b.ci(
        "app-01",
        register("app-01", "application", "version", "2.4"),
    )
    .await;
    let runs_on = CiCommand::AddRelationship {
        relationship: Relationship::RUNS_ON,
        target: id("srv-01"),
        change: Some(id("CHG-0")),
    };
    b.ci("app-01", runs_on).await;
    assert!(b.sync().await.is_some(), "the graph folded the CIs");
}

/// A board whose baselines come from a configuration graph and whose change authorisations
/// are set by the test.
async fn board() -> (Board, Arc<CmdbGraph>, Arc<Authorisations>) {
    let graph = Arc::new(CmdbGraph::new());
    let changes = Arc::new(Authorisations::default());
    let policy = ReleasePolicy::default()
        .with_approvals(approvals())
        .with_baselines(graph.clone())
        .with_changes(changes.clone());
    let mut b = Board::new(graph.clone(), policy);
    configuration(&mut b).await;
    (b, graph, changes)
}

fn criteria(kind: ReleaseKind) -> Vec<String> {
    let kinds = smsys::processes::release::ReleaseKinds::reference();
    let requires = kinds.get(kind).expect("a policy");
    requires.criteria.iter().map(|c| c.name.clone()).collect()
}

fn verify(criterion: &str, passed: bool) -> ReleaseCommand {
    C::VerifyCriterion {
        criterion: criterion.into(),
        passed,
        evidence: "run 42".into(),
    }
}

fn deploy(environment: &str, outcome: DeploymentOutcome) -> ReleaseCommand {
    C::RecordDeployment {
        environment: environment.into(),
        outcome,
        notes: "done".into(),
    }
}

/// Release `name` of `kind` logged, built, every criterion verified and accepted.
async fn accepted(b: &mut Board, name: &str, kind: ReleaseKind) {
    b.run_as(REQUESTER, name, log_planned(name, kind)).await;
    let build = C::RecordBuild {
        build: "2.5.0".into(),
        notes: String::new(),
    };
    b.run_as(REQUESTER, name, build).await;
    for criterion in criteria(kind) {
        b.run_as(REQUESTER, name, verify(&criterion, true)).await;
    }
    let release = b.run_as(REQUESTER, name, C::Accept).await;
    assert_eq!(release.record().status(), Some("accepted"));
}

fn wrong_stage(reason: &RefusalReason<ReleaseRule>, stage: &str) -> bool {
    matches!(reason, RefusalReason::Rule(ReleaseRule::WrongStage { stage: s, .. }) if s == stage)
}

#[tokio::test]
async fn a_major_release_from_plan_to_closure_through_a_rollback() {
    let (mut b, graph, _) = board().await;
    let r = "REL-1";
    b.run_as(REQUESTER, r, log_planned(r, ReleaseKind::Major))
        .await;
    let empty_build = C::RecordBuild {
        build: " ".into(),
        notes: String::new(),
    };
    let reason = b.refused(REQUESTER, r, empty_build).await;
    assert_eq!(reason, RefusalReason::MissingInput("build identifier"));
    let early = b
        .refused(REQUESTER, r, verify("functional_tests", true))
        .await;
    assert!(wrong_stage(&early, "planned"), "{early:?}");
    let build = C::RecordBuild {
        build: "2.5.0".into(),
        notes: "mail 2.5".into(),
    };
    let release = b.run_as(REQUESTER, r, build).await;
    assert_eq!(release.record().status(), Some("built"));
    assert_eq!(release.build(), Some(("2.5.0", "mail 2.5")));

    // Acceptance: every criterion, the latest verification of each counting.
    let unmet = b.refused(REQUESTER, r, C::Accept).await;
    let all = criteria(ReleaseKind::Major).join(", ");
    assert_eq!(unmet, RefusalReason::Rule(ReleaseRule::CriteriaNotMet(all)));
    let unknown = b.refused(REQUESTER, r, verify("vibes", true)).await;
    assert!(
        matches!(&unknown, RefusalReason::Rule(ReleaseRule::UnknownCriterion { criterion, known })
            if criterion == "vibes" && known.contains("user_acceptance")),
        "{unknown:?}"
    );
    let no_evidence = C::VerifyCriterion {
        criterion: "functional_tests".into(),
        passed: true,
        evidence: String::new(),
    };
    let reason = b.refused(REQUESTER, r, no_evidence).await;
    assert_eq!(reason, RefusalReason::MissingInput("evidence"));
    b.run_as(REQUESTER, r, verify("functional_tests", true))
        .await;
    b.run_as(REQUESTER, r, verify("user_acceptance", false))
        .await;
    b.run_as(REQUESTER, r, verify("operational_readiness", true))
        .await;
    let unmet = b.refused(REQUESTER, r, C::Accept).await;
    let expected = ReleaseRule::CriteriaNotMet("user_acceptance".into());
    assert_eq!(unmet, RefusalReason::Rule(expected));
    let release = b
        .run_as(REQUESTER, r, verify("user_acceptance", true))
        .await;
    assert!(release.criteria_met());
    assert_eq!(
        release
            .verification("user_acceptance")
            .map(|v| v.by.as_ref().map(|a| a.as_str().to_owned())),
        Some(Some(REQUESTER.to_owned()))
    );
    let release = b.run_as(REQUESTER, r, C::Accept).await;
    assert_eq!(release.record().status(), Some("accepted"));

    // Approval: a quorum of two CAB members, neither the requester nor the deployer.
    let approve = || C::Approve { group: None };
    let duty = |role: &'static str, who: &str| {
        RefusalReason::Rule(ReleaseRule::SegregationOfDuties {
            approver: id(who),
            role,
        })
    };
    let reason = b.refused(REQUESTER, r, approve()).await;
    assert_eq!(reason, duty("requester", REQUESTER));
    let reason = b.refused(DEPLOYER, r, approve()).await;
    assert_eq!(reason, duty("deployer", DEPLOYER));
    let reject = C::Reject {
        group: None,
        reason: "mine".into(),
    };
    let reason = b.refused(DEPLOYER, r, reject).await;
    assert_eq!(reason, duty("deployer", DEPLOYER));
    for outsider in [OUTSIDER, "erin"] {
        let reason = b.refused(outsider, r, approve()).await;
        let expected = ReleaseRule::NotAnApprover {
            approver: id(outsider),
            rule: "cab".into(),
            group: None,
        };
        assert_eq!(reason, RefusalReason::Rule(expected));
    }
    let other_group = C::Approve {
        group: Some(id("ecab")),
    };
    let reason = b.refused("carl", r, other_group).await;
    assert!(
        matches!(&reason, RefusalReason::Rule(ReleaseRule::NotAnApprover { group: Some(g), .. }) if g.as_str() == "ecab"),
        "{reason:?}"
    );
    let release = b.run_as("carl", r, approve()).await;
    assert_eq!(release.record().status(), Some("accepted"), "one of two");
    assert!(release.authorisation().is_none());
    let reason = b.refused("carl", r, approve()).await;
    assert_eq!(
        reason,
        RefusalReason::Rule(ReleaseRule::AlreadyApproved(id("carl")))
    );
    let early = b.refused(OPERATOR, r, C::StartDeployment).await;
    assert!(wrong_stage(&early, "accepted"), "{early:?}");
    let release = b.run_as("dana", r, approve()).await;
    assert_eq!(release.record().status(), Some("approved"));
    let authorisation = release.authorisation().expect("authorised");
    assert_eq!(authorisation.rule, "cab");
    let approvers: Vec<PersonId> = vec![id("carl"), id("dana")];
    assert_eq!(authorisation.approvers, approvers);

    // The baseline: every CI as the graph holds it, with the graph's position and a hash.
    let early = b.refused(OPERATOR, r, C::StartDeployment).await;
    assert!(wrong_stage(&early, "approved"), "{early:?}");
    let release = b.run_as(REQUESTER, r, C::TakeBaseline).await;
    assert_eq!(release.record().status(), Some("baselined"));
    assert_eq!(release.attempt(), 1);
    let first = release.baseline().cloned().expect("a current baseline");
    assert!(first.is_intact());
    assert_eq!(first.hash.len(), 64);
    assert_eq!(Some(first.as_of), graph.position());
    let covered: Vec<CiId> = first.cis.iter().map(|c| c.id.clone()).collect();
    assert_eq!(covered, release.cis());
    assert_eq!(covered, release_cis());
    let srv = first.ci(&id("srv-01")).expect("the server");
    assert_eq!(srv.ci_type.as_str(), "server");
    assert_eq!(
        srv.attributes.get(&id("os")),
        Some(&AttributeValue::from("debian 12"))
    );
    let app = first.ci(&id("app-01")).expect("the application");
    assert_eq!(
        app.relationships,
        vec![(Relationship::RUNS_ON, id("srv-01"))]
    );
    assert_eq!(app.status, graph.ci(&id("app-01")).expect("held").status);
    let same = b.refused(REQUESTER, r, C::TakeBaseline).await;
    assert_eq!(same, RefusalReason::Unchanged, "nothing changed since");

    // Deployment: an approver may not deploy; the environments in order.
    let reason = b.refused("carl", r, C::StartDeployment).await;
    assert_eq!(
        reason,
        RefusalReason::Rule(ReleaseRule::ApproverDeploys(id("carl")))
    );
    let release = b.run_as(OPERATOR, r, C::StartDeployment).await;
    assert_eq!(release.record().status(), Some("deploying"));
    let skipped = b
        .refused(OPERATOR, r, deploy("staging", DeploymentOutcome::Success))
        .await;
    let expected = ReleaseRule::WrongEnvironment {
        expected: "test".into(),
        given: "staging".into(),
    };
    assert_eq!(skipped, RefusalReason::Rule(expected));
    let reason = b
        .refused("dana", r, deploy("test", DeploymentOutcome::Success))
        .await;
    assert_eq!(
        reason,
        RefusalReason::Rule(ReleaseRule::ApproverDeploys(id("dana")))
    );
    b.run_as(OPERATOR, r, deploy("test", DeploymentOutcome::Success))
        .await;
    b.run_as(OPERATOR, r, deploy("staging", DeploymentOutcome::Success))
        .await;
    let again = b
        .refused(OPERATOR, r, deploy("staging", DeploymentOutcome::Success))
        .await;
    assert!(
        matches!(&again, RefusalReason::Rule(ReleaseRule::WrongEnvironment { expected, .. }) if expected == "production"),
        "{again:?}"
    );
    let release = b
        .run_as(OPERATOR, r, deploy("production", DeploymentOutcome::Failed))
        .await;
    assert_eq!(release.record().status(), Some("failed"));
    assert_eq!(
        release.failed_deployment().map(|d| d.environment.as_str()),
        Some("production")
    );

    // The rollback names the baseline it returns to; a new attempt needs a new baseline.
    let reason = b.refused(REQUESTER, r, C::TakeBaseline).await;
    assert!(wrong_stage(&reason, "failed"), "{reason:?}");
    let cancel = RecordCommand::Cancel {
        reason: "give up".into(),
    };
    let reason = b.refused(REQUESTER, r, cancel.into()).await;
    assert!(
        matches!(reason, RefusalReason::NoTransition { .. }),
        "{reason:?}"
    );
    let no_notes = C::RollBack {
        restored: true,
        notes: String::new(),
    };
    let reason = b.refused(OPERATOR, r, no_notes).await;
    assert_eq!(reason, RefusalReason::MissingInput("rollback notes"));
    let roll_back = C::RollBack {
        restored: true,
        notes: "switched back to blue".into(),
    };
    let release = b.run_as(OPERATOR, r, roll_back).await;
    assert_eq!(release.record().status(), Some("rolled_back"));
    let rollback = release.rollbacks().last().expect("rolled back");
    assert_eq!(rollback.baseline, first.hash);
    assert_eq!(rollback.environment, "production");
    assert!(release.baseline().is_none(), "the rollback used it up");
    assert!(release.failed_deployment().is_none());
    let reason = b.refused(OPERATOR, r, C::StartDeployment).await;
    assert!(wrong_stage(&reason, "rolled_back"), "{reason:?}");

    // The server was patched meanwhile: the new baseline records it.
    let patch = CiCommand::UpdateAttributes {
        set: [(id("os"), AttributeValue::from("debian 13"))]
            .into_iter()
            .collect(),
        removed: Vec::new(),
        change: Some(id("CHG-0")),
    };
    b.ci("srv-01", patch).await;
    b.sync().await;
    let release = b.run_as(REQUESTER, r, C::TakeBaseline).await;
    assert_eq!(release.attempt(), 2);
    assert_eq!(release.baselines().len(), 2);
    let second = release.baseline().cloned().expect("current");
    assert!(second.is_intact());
    assert_ne!(second.hash, first.hash);
    assert!(second.as_of > first.as_of);
    let srv = second.ci(&id("srv-01")).expect("the server");
    assert_eq!(
        srv.attributes.get(&id("os")),
        Some(&AttributeValue::from("debian 13"))
    );
    assert!(
        release.failed_deployment().is_none(),
        "the failure belongs to the first attempt, rolled back"
    );
    assert!(release.deployed_in_attempt().is_empty());

    // The second attempt starts again from the first environment and succeeds.
    b.run_as(OPERATOR, r, C::StartDeployment).await;
    let reason = b
        .refused(
            OPERATOR,
            r,
            deploy("production", DeploymentOutcome::Success),
        )
        .await;
    assert!(
        matches!(&reason, RefusalReason::Rule(ReleaseRule::WrongEnvironment { expected, .. }) if expected == "test"),
        "{reason:?}"
    );
    for environment in ["test", "staging"] {
        b.run_as(OPERATOR, r, deploy(environment, DeploymentOutcome::Success))
            .await;
    }
    let release = b
        .run_as(
            OPERATOR,
            r,
            deploy("production", DeploymentOutcome::Success),
        )
        .await;
    let deployed_at = b.now();
    assert_eq!(release.record().status(), Some("early_life"));
    assert_eq!(release.record().phase(), Some(Phase::Resolved));
    assert_eq!(
        release.deployed_in_attempt(),
        ["test", "staging", "production"]
    );
    let attempts: Vec<u32> = release.deployments().iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, [1, 1, 1, 2, 2, 2]);
    let days = TimeDelta::days(early_life_days(ReleaseKind::Major));
    assert_eq!(
        release.early_life(),
        Some((deployed_at, deployed_at + days))
    );

    // Early life: incidents inside the window; the review once it ended; then closure.
    let correlate = |incident: &str| C::CorrelateIncident {
        incident: id(incident),
        cis: vec![id("srv-01")],
        service: None,
    };
    let release = b.run_as("smsys", r, correlate("INC-1")).await;
    assert!(release.correlated(&id("INC-1")));
    let again = b.refused("smsys", r, correlate("INC-1")).await;
    assert_eq!(again, RefusalReason::Unchanged);
    let review = || C::RecordEarlyLifeReview {
        successful: true,
        findings: "one minor incident".into(),
    };
    let open = b.refused(REQUESTER, r, review()).await;
    assert!(
        matches!(open, RefusalReason::Rule(ReleaseRule::EarlyLifeOpen(_))),
        "{open:?}"
    );
    let close = || C::from(RecordCommand::Close);
    let reason = b.refused(REQUESTER, r, close()).await;
    assert_eq!(
        reason,
        RefusalReason::GuardFailed(Guard::EARLY_LIFE_REVIEWED)
    );
    let no_reason = C::WaiveEarlyLife {
        reason: "  ".into(),
    };
    let reason = b.refused(REQUESTER, r, no_reason).await;
    assert_eq!(reason, RefusalReason::MissingInput("reason to waive"));

    b.advance(days);
    let late = b.refused("smsys", r, correlate("INC-2")).await;
    assert!(
        matches!(
            late,
            RefusalReason::Rule(ReleaseRule::OutsideEarlyLife { .. })
        ),
        "{late:?}"
    );
    let release = b.run_as(REQUESTER, r, review()).await;
    let reviewed = release.review().expect("reviewed");
    let incidents: Vec<Reference> = vec![id("INC-1")];
    assert_eq!(reviewed.incidents, incidents);
    assert_eq!(reviewed.successful, Some(true));
    let again = b.refused(REQUESTER, r, review()).await;
    assert_eq!(
        again,
        RefusalReason::Rule(ReleaseRule::EarlyLifeDone("reviewed"))
    );
    let release = b.run_as(REQUESTER, r, close()).await;
    assert_eq!(release.record().phase(), Some(Phase::Closed));
    let after = b.refused(REQUESTER, r, C::TakeBaseline).await;
    assert_eq!(after, RefusalReason::Final(Phase::Closed));
}

#[tokio::test]
async fn an_emergency_release_reviewed_early_under_a_waiver() {
    let (mut b, _, _) = board().await;
    let r = "REL-2";
    accepted(&mut b, r, ReleaseKind::Emergency).await;
    b.run_as("erin", r, C::Approve { group: None }).await;
    b.run_as(REQUESTER, r, C::TakeBaseline).await;
    b.run_as(DEPLOYER, r, C::StartDeployment).await;
    let release = b
        .run_as(
            DEPLOYER,
            r,
            deploy("production", DeploymentOutcome::Success),
        )
        .await;
    let (from, until) = release.early_life().expect("opened");
    let days = TimeDelta::days(early_life_days(ReleaseKind::Emergency));
    assert_eq!(until - from, days);
    b.advance(TimeDelta::hours(2));
    let waive = C::WaiveEarlyLife {
        reason: "the fix is verified; the service owner signs off".into(),
    };
    let release = b.run_as(REQUESTER, r, waive.clone()).await;
    let waiver = release.waiver().expect("waived");
    assert_eq!(waiver.successful, None);
    let again = b.refused(REQUESTER, r, waive).await;
    assert_eq!(
        again,
        RefusalReason::Rule(ReleaseRule::EarlyLifeDone("waived"))
    );
    let correlate = C::CorrelateIncident {
        incident: id("INC-3"),
        cis: Vec::new(),
        service: Some(id("email")),
    };
    let reason = b.refused("smsys", r, correlate).await;
    assert_eq!(
        reason,
        RefusalReason::Rule(ReleaseRule::EarlyLifeDone("waived")),
        "the window is over once waived, and the refusal says so"
    );
    let review = C::RecordEarlyLifeReview {
        successful: true,
        findings: "no incident".into(),
    };
    b.run_as(REQUESTER, r, review).await;
    let release = b.run_as(REQUESTER, r, RecordCommand::Close.into()).await;
    assert!(b.now() < until, "closed inside the waived window");
    assert_eq!(release.record().status(), Some("closed"));
}

#[tokio::test]
async fn a_rejected_release_is_final() {
    let (mut b, _, _) = board().await;
    let r = "REL-3";
    accepted(&mut b, r, ReleaseKind::Minor).await;
    let no_reason = C::Reject {
        group: None,
        reason: String::new(),
    };
    let reason = b.refused("carl", r, no_reason).await;
    assert_eq!(reason, RefusalReason::MissingInput("rejection reason"));
    let reject = C::Reject {
        group: None,
        reason: "no rollback rehearsal".into(),
    };
    let release = b.run_as("carl", r, reject).await;
    assert_eq!(release.record().status(), Some("rejected"));
    assert_eq!(release.record().phase(), Some(Phase::Cancelled));
    let rejection = release.rejection().expect("rejected");
    assert_eq!(rejection.approver, id::<PersonId, _>("carl"));
    let reason = b.refused("dana", r, C::Approve { group: None }).await;
    assert_eq!(reason, RefusalReason::Final(Phase::Cancelled));
}

#[tokio::test]
async fn a_baseline_needs_a_source_that_knows_every_ci() {
    // No source configured.
    let mut b = Board::new(
        Arc::new(CmdbGraph::new()),
        ReleasePolicy::default().with_approvals(approvals()),
    );
    accepted(&mut b, "REL-4", ReleaseKind::Emergency).await;
    b.run_as("erin", "REL-4", C::Approve { group: None }).await;
    let reason = b.refused(REQUESTER, "REL-4", C::TakeBaseline).await;
    assert_eq!(reason, RefusalReason::Rule(ReleaseRule::NoBaselineSource));

    // A graph that has read nothing yet, then one that lacks a CI.
    let graph = Arc::new(CmdbGraph::new());
    let policy = ReleasePolicy::default()
        .with_approvals(approvals())
        .with_baselines(graph.clone());
    let mut b = Board::new(graph, policy);
    accepted(&mut b, "REL-5", ReleaseKind::Emergency).await;
    b.run_as("erin", "REL-5", C::Approve { group: None }).await;
    let reason = b.refused(REQUESTER, "REL-5", C::TakeBaseline).await;
    let expected = ReleaseRule::Baseline(BaselineError::NotReady);
    assert_eq!(reason, RefusalReason::Rule(expected));
    let server = CiCommand::Register {
        id: id("srv-01"),
        ci_type: id("server"),
        name: "srv-01".into(),
        description: String::new(),
        attributes: Default::default(),
        change: Some(id("CHG-0")),
    };
    b.ci("srv-01", server).await;
    b.sync().await;
    let reason = b.refused(REQUESTER, "REL-5", C::TakeBaseline).await;
    let expected = ReleaseRule::Baseline(BaselineError::UnknownCis(vec![id("app-01")]));
    assert_eq!(reason, RefusalReason::Rule(expected));
    let message = smsys::processes::release::ReleaseRule::Baseline(BaselineError::UnknownCis(
        vec![id("app-01")],
    ))
    .to_string();
    assert!(message.contains("app-01"), "{message}");

    // A release with no CI at all.
    let mut b = Board::new(Arc::new(CmdbGraph::new()), crate::harness::policy());
    let mut bare = crate::harness::plan(DEPLOYER);
    bare.cis.clear();
    let record = LogRecord::new(
        id("REL-6"),
        id(REQUESTER),
        Channel::Portal,
        id("email"),
        "docs",
    );
    let log = smsys::processes::release::LogRelease::new(record, ReleaseKind::Emergency).plan(bare);
    b.run_as(REQUESTER, "REL-6", C::log(log)).await;
    b.run_as(
        REQUESTER,
        "REL-6",
        C::RecordBuild {
            build: "1".into(),
            notes: String::new(),
        },
    )
    .await;
    b.run_as(REQUESTER, "REL-6", verify("smoke_tests", true))
        .await;
    b.run_as(REQUESTER, "REL-6", C::Accept).await;
    b.run_as("erin", "REL-6", C::Approve { group: None }).await;
    let reason = b.refused(REQUESTER, "REL-6", C::TakeBaseline).await;
    assert_eq!(reason, RefusalReason::Rule(ReleaseRule::NothingToBaseline));
}

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

#[test]
fn an_early_life_too_long_to_add_never_ends_and_does_not_panic() {
    let mut kinds = ReleaseKinds::reference();
    if let Some(emergency) = kinds.kinds.get_mut(&ReleaseKind::Emergency) {
        emergency.early_life_days = u32::MAX;
    }
    let mut desk = Desk::new(Arc::new(crate::harness::policy().with_kinds(kinds)));
    desk.ok(REQUESTER, &log_planned("REL-12", ReleaseKind::Emergency));
    let build = C::RecordBuild {
        build: "1".into(),
        notes: String::new(),
    };
    desk.ok(REQUESTER, &build);
    desk.ok(REQUESTER, &verify("smoke_tests", true));
    desk.ok(REQUESTER, &C::Accept);
    desk.ok("erin", &C::Approve { group: None });
    desk.ok(REQUESTER, &C::TakeBaseline);
    desk.ok(OPERATOR, &C::StartDeployment);
    desk.ok(OPERATOR, &deploy("production", DeploymentOutcome::Success));
    let (_, until) = desk.state.early_life().expect("opened");
    assert_eq!(until, chrono::DateTime::<chrono::Utc>::MAX_UTC);
}
