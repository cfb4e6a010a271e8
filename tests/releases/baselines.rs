//! Baselines: none without a source that knows every CI; none that is not intact or leaves a
//! CI out; a stored baseline that no longer verifies stops the deployment; and an early life
//! too long to add never ends instead of panicking.

use std::sync::Arc;

use smsys::core::records::Channel;
use smsys::core::records::TypedEvent;
use smsys::core::records::release::DeploymentOutcome;
use smsys::core::records::release::{Baseline, ReleaseControlEvent};
use smsys::core::records::{CiId, ReleaseKind};
use smsys::core::{EventSourced, Stamp};
use smsys::processes::configuration::CiCommand;
use smsys::processes::lifecycle::Guard;
use smsys::processes::release::{
    BaselineError, BaselineSource, ReleaseCommand, ReleaseKinds, ReleasePolicy, ReleaseRule,
};
use smsys::processes::{CmdbGraph, LogRecord, RefusalReason};

use crate::flows::{accepted, deploy, verify};
use crate::harness::{
    Board, DEPLOYER, Desk, FixedBaselines, OPERATOR, REQUESTER, approvals, id, log_planned,
};

type C = ReleaseCommand;

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

/// Baselines of [`FixedBaselines`] spoiled: their hash altered after it was computed, or the
/// last CI left out.
#[derive(Debug)]
struct SpoiledBaselines {
    tampered: bool,
}

impl BaselineSource for SpoiledBaselines {
    fn baseline(&self, cis: &[CiId]) -> Result<Baseline, BaselineError> {
        let mut baseline = FixedBaselines.baseline(cis)?;
        if self.tampered {
            baseline.hash = "0".repeat(64);
        } else {
            baseline.cis.pop();
            baseline = Baseline::new(baseline.as_of, baseline.cis);
        }
        Ok(baseline)
    }
}

/// An emergency release approved on a desk under `policy`.
fn approved(policy: ReleasePolicy) -> Desk {
    let mut desk = Desk::new(Arc::new(policy));
    desk.ok(REQUESTER, &log_planned("REL-13", ReleaseKind::Emergency));
    let build = C::RecordBuild {
        build: "1".into(),
        notes: String::new(),
    };
    desk.ok(REQUESTER, &build);
    desk.ok(REQUESTER, &verify("smoke_tests", true));
    desk.ok(REQUESTER, &C::Accept);
    desk.ok("erin", &C::Approve { group: None });
    desk
}

#[test]
fn a_baseline_that_is_not_intact_or_leaves_out_a_ci_is_refused() {
    let reason = |tampered| {
        let source = Arc::new(SpoiledBaselines { tampered });
        let desk = approved(crate::harness::policy().with_baselines(source));
        let refused = desk
            .decide(REQUESTER, &C::TakeBaseline)
            .expect_err("refused");
        refused.reason
    };
    let tampered = reason(true);
    assert!(
        matches!(&tampered, RefusalReason::Rule(ReleaseRule::Baseline(BaselineError::NotIntact { recorded, computed }))
            if *recorded == "0".repeat(64) && computed.len() == 64),
        "{tampered:?}"
    );
    let expected = BaselineError::Incomplete(vec![id("srv-01")]);
    assert_eq!(
        reason(false),
        RefusalReason::Rule(ReleaseRule::Baseline(expected))
    );
}

#[test]
fn a_stored_baseline_that_no_longer_verifies_stops_the_deployment() {
    let mut desk = approved(crate::harness::policy());
    desk.ok(REQUESTER, &C::TakeBaseline);
    let mut tampered = desk.state.baseline().cloned().expect("taken");
    tampered.cis[0].status = "retired".into();
    let event = TypedEvent::Own(ReleaseControlEvent::BaselineTaken(tampered));
    desk.state.evolve(&event, Stamp::new(None, desk.now));
    let refused = desk
        .decide(OPERATOR, &C::StartDeployment)
        .expect_err("refused");
    assert_eq!(
        refused.reason,
        RefusalReason::GuardFailed(Guard::BASELINE_TAKEN)
    );
}
