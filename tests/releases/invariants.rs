//! Invariants of release management under random commands by random actors at random times
//! (the requester, the deployer, approvers in and out of the groups, an operator, an
//! outsider), over the three kinds, decided in memory and folded event by event. Each event is
//! checked against the state just before it and a model kept from the events.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use smsys::core::records::release::{DeploymentOutcome, ReleaseControlEvent};
use smsys::core::records::{
    LinkKind, PersonId, Phase, RecordEvent, RecordKind, Release, ReleaseEvent, ReleaseKind,
    TypedEvent,
};
use smsys::core::{EventSourced, Stamp};
use smsys::processes::RecordCommand;
use smsys::processes::release::{ReleaseCommand, ReleasePolicy};

use crate::harness::{Authorisations, DEPLOYER, Desk, REQUESTER, id, log_planned, policy};

/// Who may act: the requester, the deployer, CAB members, an emergency approver, an
/// operator, an outsider.
const ACTORS: [&str; 7] = ["rita", "dave", "carl", "dana", "erin", "otto", "zoe"];

fn outcome() -> impl Strategy<Value = DeploymentOutcome> {
    prop_oneof![
        3 => Just(DeploymentOutcome::Success),
        1 => Just(DeploymentOutcome::Failed),
    ]
}

fn environment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("test".to_owned()),
        Just("staging".to_owned()),
        Just("production".to_owned()),
    ]
}

/// Any release command (the log excepted).
fn command() -> impl Strategy<Value = ReleaseCommand> {
    use ReleaseCommand as C;
    let criteria = prop_oneof![
        Just("functional_tests"),
        Just("regression_tests"),
        Just("smoke_tests"),
        Just("operational_readiness"),
        Just("user_acceptance"),
    ];
    let groups = prop_oneof![
        Just(None),
        Just(Some(id("cab"))),
        Just(Some(id("ecab"))),
        Just(Some(id("change-managers"))),
    ];
    prop_oneof![
        1 => Just(C::RecordBuild { build: "2.5.0".into(), notes: String::new() }),
        2 => (criteria, proptest::bool::weighted(0.8)).prop_map(|(c, passed)| C::VerifyCriterion {
            criterion: c.into(),
            passed,
            evidence: "run".into(),
        }),
        2 => Just(C::Accept),
        4 => groups.clone().prop_map(|group| C::Approve { group }),
        1 => groups.prop_map(|group| C::Reject { group, reason: "no".into() }),
        2 => Just(C::TakeBaseline),
        2 => Just(C::StartDeployment),
        3 => (environment(), outcome()).prop_map(|(environment, outcome)| C::RecordDeployment {
            environment,
            outcome,
            notes: "done".into(),
        }),
        2 => Just(C::RollBack { restored: true, notes: "back".into() }),
        2 => (1..4_u32).prop_map(|n| C::CorrelateIncident {
            incident: id(&format!("INC-{n}")),
            cis: vec![id("app-01")],
            service: None,
        }),
        1 => Just(C::WaiveEarlyLife { reason: "signed off".into() }),
        2 => any::<bool>().prop_map(|successful| C::RecordEarlyLifeReview {
            successful,
            findings: "reviewed".into(),
        }),
        1 => (1..3_u32).prop_map(|n| RecordCommand::Link {
            kind: LinkKind::CHANGE,
            target: format!("CHG-{n}"),
        }.into()),
        1 => (1..3_u32).prop_map(|n| RecordCommand::Unlink {
            kind: LinkKind::CHANGE,
            target: format!("CHG-{n}"),
        }.into()),
        2 => Just(RecordCommand::Close.into()),
        1 => Just(RecordCommand::Cancel { reason: "not needed".into() }.into()),
    ]
}

fn kind() -> impl Strategy<Value = ReleaseKind> {
    prop_oneof![
        Just(ReleaseKind::Major),
        Just(ReleaseKind::Minor),
        Just(ReleaseKind::Emergency),
    ]
}

/// A step of a random run, after the clock moved on by `hours`: a random command by a random
/// actor, or the command that moves the release on (a hasty one skips a step).
#[derive(Debug, Clone)]
enum Step {
    Any(u32, usize, ReleaseCommand),
    Onwards {
        hours: u32,
        who: usize,
        outcome: DeploymentOutcome,
        hasty: bool,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let hours = prop_oneof![3 => Just(0_u32), 1 => 1..96_u32];
    let step = prop_oneof![
        2 => (hours.clone(), 0..ACTORS.len(), command()).prop_map(|(h, who, c)| Step::Any(h, who, c)),
        5 => (hours, 0..ACTORS.len(), outcome(), proptest::bool::weighted(0.15)).prop_map(
            |(hours, who, outcome, hasty)| Step::Onwards { hours, who, outcome, hasty }
        ),
    ];
    proptest::collection::vec(step, 1..60)
}

/// The command that moves `release` on, and who runs it.
fn onwards(
    release: &Release,
    now: DateTime<Utc>,
    who: &'static str,
    outcome: DeploymentOutcome,
    hasty: bool,
) -> (&'static str, ReleaseCommand) {
    use ReleaseCommand as C;
    let unmet = release
        .criteria()
        .iter()
        .find(|c| !release.verification(&c.name).is_some_and(|v| v.passed));
    let next = release
        .next_environment()
        .unwrap_or("production")
        .to_owned();
    let command = match release.record().status().unwrap_or("planned") {
        "planned" | "approved" | "rolled_back" if hasty => C::StartDeployment,
        "planned" => C::RecordBuild {
            build: "2.5.0".into(),
            notes: String::new(),
        },
        "built" => match unmet {
            Some(c) if !hasty => C::VerifyCriterion {
                criterion: c.name.clone(),
                passed: true,
                evidence: "run".into(),
            },
            _ => C::Accept,
        },
        "accepted" => return (who, C::Approve { group: None }),
        "approved" | "rolled_back" => C::TakeBaseline,
        "baselined" => return (if hasty { who } else { "otto" }, C::StartDeployment),
        "deploying" => {
            let environment = if hasty { "production".into() } else { next };
            let deployed = C::RecordDeployment {
                environment,
                outcome,
                notes: "done".into(),
            };
            return (if hasty { who } else { "otto" }, deployed);
        }
        "failed" if hasty => C::TakeBaseline,
        "failed" => C::RollBack {
            restored: true,
            notes: "back".into(),
        },
        "early_life" if release.review().is_some() => RecordCommand::Close.into(),
        "early_life" => {
            let ended = release.early_life().is_some_and(|(_, until)| now >= until);
            if hasty || ended || release.waiver().is_some() {
                C::RecordEarlyLifeReview {
                    successful: true,
                    findings: "reviewed".into(),
                }
            } else {
                let n = release.correlations().len() + 1;
                return (
                    "smsys",
                    C::CorrelateIncident {
                        incident: id(&format!("INC-{n}")),
                        cis: Vec::new(),
                        service: Some(id("email")),
                    },
                );
            }
        }
        _ => RecordCommand::Close.into(),
    };
    (REQUESTER, command)
}

/// What the test keeps beside the state, from the events alone.
#[derive(Default)]
struct Model {
    /// The index of the latest baseline and the latest rollback.
    baseline_at: Option<usize>,
    rollback_at: Option<usize>,
    /// The environments deployed successfully since the latest baseline.
    deployed: Vec<String>,
    /// Whether the early-life window was waived, and reviewed.
    waived: bool,
    reviewed: bool,
}

fn member(policy: &ReleasePolicy, group: &smsys::core::records::GroupId, who: &PersonId) -> bool {
    let groups = &policy.approvals.groups;
    groups.get(group).is_some_and(|m| m.contains(who))
}

/// Whether every change linked to `release` is authorised, as the policy's source says.
fn changes_authorised(release: &Release, policy: &ReleasePolicy) -> bool {
    let source = policy.changes.as_ref().expect("a source");
    release
        .record()
        .links()
        .iter()
        .filter(|(k, _)| *k == LinkKind::CHANGE)
        .all(|(_, change)| source.authorised(&id(change)) == Some(true))
}

/// Checks `event` (the `index`th of the run), about to be folded into `before` at `now`, run
/// by `who`: the invariants of release management.
fn check(
    before: &Release,
    event: &ReleaseEvent,
    (index, who, now): (usize, &str, DateTime<Utc>),
    policy: &ReleasePolicy,
    model: &mut Model,
) -> Result<(), TestCaseError> {
    use ReleaseControlEvent as E;
    let requester = before.record().caller().cloned();
    let deployer = before.plan().and_then(|p| p.deployer.clone());
    let approvers: Vec<PersonId> = before
        .authorisation()
        .map(|a| a.approvers.clone())
        .unwrap_or_default();
    let actor: PersonId = id(who);
    match event {
        TypedEvent::Own(E::Deployed {
            environment,
            outcome,
            ..
        }) => {
            prop_assert!(before.authorisation().is_some(), "deployed unauthorised");
            let baseline = before.baseline();
            prop_assert!(
                baseline.is_some_and(|b| b.is_intact()),
                "no intact baseline"
            );
            prop_assert!(
                model.baseline_at > model.rollback_at,
                "deployed on a baseline taken before the last rollback"
            );
            prop_assert_eq!(before.record().status(), Some("deploying"));
            let expected = before.environments().get(model.deployed.len());
            prop_assert_eq!(Some(environment), expected, "out of order");
            prop_assert!(!approvers.contains(&actor), "{} approved and deployed", who);
            if *outcome == DeploymentOutcome::Success {
                prop_assert!(changes_authorised(before, policy), "a change unauthorised");
                model.deployed.push(environment.clone());
            }
        }
        TypedEvent::Own(E::BaselineTaken(baseline)) => {
            prop_assert!(baseline.is_intact());
            let covered: Vec<_> = baseline.cis.iter().map(|c| c.id.clone()).collect();
            prop_assert_eq!(covered, before.cis(), "the baseline covers every CI");
            model.baseline_at = Some(index);
            model.deployed.clear();
        }
        TypedEvent::Own(E::RolledBack { baseline, .. }) => {
            let current = before.baseline().map(|b| b.hash.as_str());
            prop_assert_eq!(Some(baseline.as_str()), current, "rolled back to another");
            model.rollback_at = Some(index);
        }
        TypedEvent::Own(E::ApprovalGiven { approver, group }) => {
            prop_assert_ne!(Some(approver), requester.as_ref(), "the requester approved");
            prop_assert_ne!(Some(approver), deployer.as_ref(), "the deployer approved");
            prop_assert!(
                member(policy, group, approver),
                "{} not in {}",
                approver,
                group
            );
        }
        TypedEvent::Own(E::Authorised { rule, approvers }) => {
            let applies = policy.approvals.rules.iter().find(|r| &r.name == rule);
            let applies = applies.ok_or_else(|| TestCaseError::fail(format!("rule {rule}")))?;
            let distinct: BTreeSet<&PersonId> = approvers.iter().collect();
            prop_assert_eq!(distinct.len(), approvers.len(), "counted twice");
            prop_assert!(approvers.len() >= applies.quorum as usize, "below quorum");
            for approver in approvers {
                prop_assert_ne!(Some(approver), requester.as_ref());
                prop_assert_ne!(Some(approver), deployer.as_ref());
            }
        }
        TypedEvent::Own(E::EarlyLifeStarted { until }) => {
            prop_assert_eq!(&model.deployed, &before.environments().to_vec());
            let days = policy
                .kinds
                .get(before.kind().expect("kind"))
                .expect("policy");
            prop_assert_eq!(before.early_life_days(), days.early_life_days);
            prop_assert_eq!(*until, now + days.early_life());
        }
        TypedEvent::Own(E::IncidentCorrelated { cis, service, .. }) => {
            let ours = before.cis();
            prop_assert!(
                cis.iter().all(|ci| ours.contains(ci)),
                "a CI not the release's"
            );
            let services = before.services();
            prop_assert!(service.as_ref().is_none_or(|s| services.contains(s)));
            prop_assert!(!cis.is_empty() || service.is_some(), "names nothing");
            let (from, until) = before.early_life().expect("a window");
            prop_assert!(from <= now && now < until, "correlated outside the window");
            prop_assert!(
                !model.waived && !model.reviewed,
                "correlated after the window"
            );
        }
        TypedEvent::Own(E::EarlyLifeWaived { reason }) => {
            prop_assert!(!reason.trim().is_empty());
            let (_, until) = before.early_life().expect("a window");
            prop_assert!(now < until, "waived a window that had ended");
            model.waived = true;
        }
        TypedEvent::Own(E::EarlyLifeReviewed { .. }) => {
            let (_, until) = before.early_life().expect("a window");
            prop_assert!(now >= until || model.waived, "reviewed early, unwaived");
            model.reviewed = true;
        }
        TypedEvent::Record(RecordEvent::Transitioned { to, phase, .. }) => {
            if *phase == Phase::Closed {
                prop_assert!(model.reviewed, "closed without the early-life review");
            }
            if to == "deploying" {
                prop_assert!(before.baseline().is_some_and(|b| b.is_intact()));
                prop_assert!(changes_authorised(before, policy), "a change unauthorised");
                prop_assert!(!approvers.contains(&actor), "an approver deploys");
            }
        }
        TypedEvent::Logged(_) | TypedEvent::Record(_) | TypedEvent::Own(_) => {}
    }
    Ok(())
}

/// How far the random runs got, to know the properties were exercised.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    deployed: usize,
    rolled_back: usize,
    correlated: usize,
    closed: usize,
}

/// Runs `steps` on a release of `kind`, checking every event decided.
fn run(kind: ReleaseKind, steps: &[Step]) -> Result<Reach, TestCaseError> {
    let changes = Arc::new(Authorisations::default());
    changes.set("CHG-1", true);
    changes.set("CHG-2", false);
    let policy = Arc::new(policy().with_changes(changes));
    let mut desk = Desk::new(policy.clone());
    let mut model = Model::default();
    let mut reach = Reach::default();
    desk.ok(REQUESTER, &log_planned("REL-1", kind));
    prop_assert_eq!(
        desk.state.plan().and_then(|p| p.deployer.clone()),
        Some(id(DEPLOYER))
    );
    for step in steps {
        let (hours, (who, command)) = match step {
            Step::Any(hours, who, command) => (*hours, (ACTORS[*who], command.clone())),
            Step::Onwards {
                hours,
                who,
                outcome,
                hasty,
            } => {
                let now = desk.now + TimeDelta::hours(i64::from(*hours));
                let next = onwards(&desk.state, now, ACTORS[*who], *outcome, *hasty);
                (*hours, next)
            }
        };
        desk.now += TimeDelta::hours(i64::from(hours));
        let before = desk.state.clone();
        let decided = desk.decide(who, &command);
        let Ok(events) = decided else {
            // A refused command records nothing, and is refused again on the same state.
            prop_assert_eq!(&desk.state, &before);
            prop_assert_eq!(desk.decide(who, &command).err(), decided.err());
            continue;
        };
        prop_assert!(!events.is_empty(), "an accepted command records");
        let mut state = before;
        for event in &events {
            let index = desk.events.len();
            check(&state, event, (index, who, desk.now), &policy, &mut model)?;
            reach.deployed += usize::from(matches!(
                event,
                TypedEvent::Own(ReleaseControlEvent::Deployed { .. })
            ));
            reach.rolled_back += usize::from(matches!(
                event,
                TypedEvent::Own(ReleaseControlEvent::RolledBack { .. })
            ));
            reach.correlated += usize::from(matches!(
                event,
                TypedEvent::Own(ReleaseControlEvent::IncidentCorrelated { .. })
            ));
            state.evolve(event, Stamp::new(None, desk.now));
        }
        reach.closed += usize::from(state.record().phase() == Some(Phase::Closed));
        desk.run(who, &command)
            .map_err(|r| TestCaseError::fail(format!("decided twice differently: {r}")))?;
    }
    prop_assert_eq!(
        desk.replayed(),
        desk.state,
        "the stored events fold into the state"
    );
    Ok(reach)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// No deployment without an authorisation and a current intact baseline taken after the
    /// last rollback; deployments follow the environments' order within an attempt; no
    /// closure without the early-life review, no review of an open window unwaived, no
    /// correlation outside the window; no requester's or deployer's approval, no approver
    /// deploys; a refused command records nothing; the events replay into the state.
    #[test]
    fn release_control_holds_under_random_commands(kind in kind(), steps in steps()) {
        run(kind, &steps)?;
    }
}

/// The random runs deploy, roll back, correlate and close often enough for the properties
/// above to mean something.
#[test]
fn random_runs_reach_the_end_of_the_lifecycle() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config::default());
    let mut total = Reach::default();
    for kind in ReleaseKind::ALL {
        for _ in 0..24 {
            let steps = steps().new_tree(&mut runner).expect("a value").current();
            let reach = run(kind, &steps).expect("the invariants hold");
            total.deployed += reach.deployed;
            total.rolled_back += reach.rolled_back;
            total.correlated += reach.correlated;
            total.closed += reach.closed;
        }
    }
    assert!(total.deployed >= 40, "{total:?}");
    assert!(total.rolled_back >= 8, "{total:?}");
    assert!(total.correlated >= 30, "{total:?}");
    assert!(total.closed >= 8, "{total:?}");
}
