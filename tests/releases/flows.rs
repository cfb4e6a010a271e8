//! On a store, through the command handlers: a major release from plan to closure (a failed
//! deployment rolled back to its baseline, a second attempt on a new one), an emergency
//! release whose early life is waived, a rejected release, and the refusals on the way, each
//! naming its rule and leaving the stream untouched.

use std::sync::Arc;

use chrono::TimeDelta;
use smsys::core::records::release::DeploymentOutcome;
use smsys::core::records::{AttributeValue, CiId, Phase, RecordKind, Relationship, ReleaseKind};
use smsys::core::records::{PersonId, Reference};
use smsys::processes::configuration::CiCommand;
use smsys::processes::lifecycle::Guard;
use smsys::processes::release::{ReleaseCommand, ReleasePolicy, ReleaseRule};
use smsys::processes::{CmdbGraph, RecordCommand, RefusalReason};

use crate::harness::{
    Authorisations, Board, DEPLOYER, OPERATOR, OUTSIDER, REQUESTER, approvals, early_life_days, id,
    log_planned, release_cis,
};

type C = ReleaseCommand;

/// `app-01` (an application running on `srv-01`) and `srv-01` (a server), registered through
/// the CMDB, and the graph caught up.
pub(crate) async fn configuration(b: &mut Board) {
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
pub(crate) async fn board() -> (Board, Arc<CmdbGraph>, Arc<Authorisations>) {
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

pub(crate) fn criteria(kind: ReleaseKind) -> Vec<String> {
    let kinds = smsys::processes::release::ReleaseKinds::reference();
    let requires = kinds.get(kind).expect("a policy");
    requires.criteria.iter().map(|c| c.name.clone()).collect()
}

pub(crate) fn verify(criterion: &str, passed: bool) -> ReleaseCommand {
    C::VerifyCriterion {
        criterion: criterion.into(),
        passed,
        evidence: "run 42".into(),
    }
}

pub(crate) fn deploy(environment: &str, outcome: DeploymentOutcome) -> ReleaseCommand {
    C::RecordDeployment {
        environment: environment.into(),
        outcome,
        notes: "done".into(),
    }
}

/// Release `name` of `kind` logged, built, every criterion verified and accepted.
pub(crate) async fn accepted(b: &mut Board, name: &str, kind: ReleaseKind) {
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
    assert_eq!(early, RefusalReason::Rule(ReleaseRule::NoBaseline));
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
    assert_eq!(release.returned_to(rollback), Some(&first));
    assert_eq!(rollback.environment, "production");
    assert!(release.baseline().is_none(), "the rollback used it up");
    assert!(release.failed_deployment().is_none());
    let reason = b.refused(OPERATOR, r, C::StartDeployment).await;
    assert_eq!(reason, RefusalReason::Rule(ReleaseRule::NoBaseline));

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
    let waive = C::WaiveEarlyLife {
        reason: "no need".into(),
    };
    let late = b.refused(REQUESTER, r, waive).await;
    assert!(
        matches!(&late, RefusalReason::Rule(ReleaseRule::OutsideEarlyLife { window, .. })
            if window.ends_with(&(deployed_at + days).to_rfc3339())),
        "a window that ended is not waived: {late:?}"
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
    // A correlation records the release's CIs and service the incident names, nothing else.
    let unrelated = |cis: &[&str], service: Option<&str>| C::CorrelateIncident {
        incident: id("INC-4"),
        cis: cis.iter().map(|ci| id(ci)).collect(),
        service: service.map(id),
    };
    for (cis, service, why) in [
        (&[][..], None, "it names no CI or service of the release"),
        (
            &["app-01", "db-09"][..],
            None,
            "CI db-09 is not the release's",
        ),
        (
            &["srv-01"][..],
            Some("payroll"),
            "service payroll is not the release's",
        ),
    ] {
        let reason = b.refused("smsys", r, unrelated(cis, service)).await;
        let expected = ReleaseRule::Unrelated {
            incident: id("INC-4"),
            why: why.into(),
        };
        assert_eq!(reason, RefusalReason::Rule(expected));
    }
    let release = b
        .run_as("smsys", r, unrelated(&["srv-01"], Some("email")))
        .await;
    assert_eq!(release.correlations().len(), 1);
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
