//! Invariants of change management under random commands by random actors (the requester,
//! the implementer, approvers in and out of the groups), over the three kinds, decided in
//! memory and folded event by event. Each event is checked against the state just before it.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::TimeDelta;
use proptest::prelude::*;
use smsys::core::records::change::{ChangeControlEvent, ImplementationOutcome};
use smsys::core::records::{
    Change, ChangeEvent, ChangeKind, Level, PersonId, Phase, RecordEvent, RecordKind, TypedEvent,
};
use smsys::core::{EventSourced, Stamp};
use smsys::processes::RecordCommand;
use smsys::processes::change::{ChangeCommand, ChangePolicy};

use crate::harness::{
    Desk, REQUESTER, assess, id, log_planned, plan, policy, t0, template_plan, window,
};

/// Who may act: the requester, the implementer of the first plan (an emergency approver
/// too), an approver of every group, a CAB member, an emergency approver, an outsider.
const ACTORS: [&str; 6] = ["rita", "ivan", "carl", "dana", "erin", "zoe"];

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::High), Just(Level::Medium), Just(Level::Low)]
}

fn outcome() -> impl Strategy<Value = ImplementationOutcome> {
    prop_oneof![
        Just(ImplementationOutcome::Success),
        Just(ImplementationOutcome::Partial),
        Just(ImplementationOutcome::Failed),
    ]
}

/// Any change command (the log excepted), weighted towards the ones that move a change on.
/// The shared lifecycle migration is not drawn: it maps statuses by phase only, so it can
/// move a change past the guards these properties rely on (a defect reported with them).
fn command() -> impl Strategy<Value = ChangeCommand> {
    use ChangeCommand as C;
    let plans = prop_oneof![
        Just(plan("ivan")),
        Just(plan("carl")),
        Just(template_plan(None)),
        Just(template_plan(Some("erin"))),
    ];
    let groups = prop_oneof![
        Just(None),
        Just(Some(id("cab"))),
        Just(Some(id("ecab"))),
        Just(Some(id("change-managers"))),
    ];
    prop_oneof![
        2 => plans.prop_map(C::Plan),
        2 => (level(), level()).prop_map(|(p, i)| assess(p, i)),
        2 => Just(C::RequestAuthorisation),
        2 => (2..4_i64).prop_map(|d| C::Schedule(window(t0() + TimeDelta::days(d), 2))),
        6 => groups.clone().prop_map(|group| C::Approve { group }),
        1 => groups.prop_map(|group| C::Reject { group, reason: "too risky".into() }),
        2 => Just(C::StartImplementation),
        2 => outcome().prop_map(|outcome| C::RecordImplementation { outcome, notes: "done".into() }),
        2 => Just(C::RecordRemediation { restored: true, notes: "backed out".into() }),
        2 => Just(C::RecordInvestigation { findings: "missing dependency".into() }),
        2 => any::<bool>().prop_map(|successful| C::RecordReview {
            successful,
            findings: "reviewed".into(),
        }),
        1 => Just(C::Revert { reason: "new facts".into() }),
        2 => Just(RecordCommand::Start.into()),
        3 => Just(RecordCommand::Close.into()),
        1 => Just(RecordCommand::Cancel { reason: "not needed".into() }.into()),
    ]
}

fn kind() -> impl Strategy<Value = ChangeKind> {
    prop_oneof![
        Just(ChangeKind::Standard),
        Just(ChangeKind::Normal),
        Just(ChangeKind::Emergency),
    ]
}

/// A step of a random run: a random command by a random actor, or the command that moves
/// the change on along its lifecycle (by a random actor where an approver is needed, CAB
/// members more often), so
/// that the runs get far; a hasty step implements or closes before its time, or revises the
/// plan while approvals are given.
#[derive(Debug, Clone)]
enum Step {
    Any(usize, ChangeCommand),
    Onwards {
        who: usize,
        outcome: ImplementationOutcome,
        level: Level,
        hasty: bool,
    },
}

/// An actor, CAB members (`carl`, `dana`) more often: a quorum of two takes two of them.
fn approver() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 2..4_usize, 2 => 0..ACTORS.len()]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        2 => (0..ACTORS.len(), command()).prop_map(|(who, c)| Step::Any(who, c)),
        3 => (approver(), outcome(), level(), proptest::bool::weighted(0.2)).prop_map(
            |(who, outcome, level, hasty)| Step::Onwards { who, outcome, level, hasty }
        ),
    ];
    proptest::collection::vec(step, 1..40)
}

/// The command that moves `change` on, and who runs it: the requester, the implementer, or
/// `approver` for an approval.
fn onwards(
    change: &Change,
    approver: &'static str,
    outcome: ImplementationOutcome,
    level: Level,
    hasty: bool,
) -> (&'static str, ChangeCommand) {
    use ChangeCommand as C;
    let kind = change.kind();
    let failed = change
        .implementation()
        .is_some_and(|i| i.outcome == ImplementationOutcome::Failed);
    let schedule = C::Schedule(window(t0() + TimeDelta::days(2), 2));
    let command = match change.record().status().unwrap_or("new") {
        // Mid-approval, a hasty step makes one who approved already the implementer.
        "authorise" if hasty && level != Level::High => {
            let given = change.approvals().first().map(|a| a.approver.to_string());
            C::Plan(plan(given.as_deref().unwrap_or(approver)))
        }
        "new" | "assess" | "authorise" if hasty => C::StartImplementation,
        "failed" | "remediated" | "review" if hasty => RecordCommand::Close.into(),
        "new" if kind == Some(ChangeKind::Normal) => RecordCommand::Start.into(),
        "new" | "assess" if change.window().is_none() => schedule,
        "assess" if change.assessment().is_none() => assess(level, level),
        "new" | "assess" => C::RequestAuthorisation,
        "authorise" => return (approver, C::Approve { group: None }),
        "scheduled" => C::StartImplementation,
        "implement" => C::RecordImplementation {
            outcome,
            notes: "done".into(),
        },
        "failed" => C::RecordRemediation {
            restored: true,
            notes: "backed out".into(),
        },
        _ if change.review().is_none() => C::RecordReview {
            successful: !failed,
            findings: "reviewed".into(),
        },
        _ if failed && change.investigation().is_none() => C::RecordInvestigation {
            findings: "missing dependency".into(),
        },
        _ if kind == Some(ChangeKind::Emergency) && change.assessment().is_none() => {
            assess(level, level)
        }
        _ => RecordCommand::Close.into(),
    };
    (REQUESTER, command)
}

/// What the test keeps beside the state: the approvals given since the last reset, as the
/// events say.
#[derive(Default)]
struct Model {
    approvals: Vec<PersonId>,
}

fn member(policy: &ChangePolicy, group: &smsys::core::records::GroupId, who: &PersonId) -> bool {
    policy
        .approvals
        .groups
        .get(group)
        .is_some_and(|members| members.contains(who))
}

/// Checks `event`, about to be folded into `before`: the invariants of change management.
fn check(
    before: &Change,
    event: &ChangeEvent,
    policy: &ChangePolicy,
    model: &mut Model,
) -> Result<(), TestCaseError> {
    let kind = before.kind();
    let caller = before.record().caller().cloned();
    let implementer = before.plan().and_then(|p| p.implementer.clone());
    match event {
        TypedEvent::Own(ChangeControlEvent::Implemented { .. }) => match kind {
            Some(ChangeKind::Standard) => {
                prop_assert!(
                    before.template().is_some(),
                    "a standard change without a pin"
                );
            }
            Some(ChangeKind::Normal | ChangeKind::Emergency) | None => {
                prop_assert!(before.authorisation().is_some(), "implemented unauthorised");
            }
        },
        TypedEvent::Own(ChangeControlEvent::ApprovalGiven { approver, group }) => {
            prop_assert_ne!(Some(approver), caller.as_ref(), "the requester approved");
            prop_assert_ne!(
                Some(approver),
                implementer.as_ref(),
                "the implementer approved"
            );
            prop_assert!(member(policy, group, approver), "{approver} not in {group}");
            model.approvals.push(approver.clone());
        }
        TypedEvent::Own(ChangeControlEvent::ApprovalsReset { .. }) => model.approvals.clear(),
        TypedEvent::Own(ChangeControlEvent::Authorised { rule, approvers }) => {
            let applies = policy.approvals.rules.iter().find(|r| &r.name == rule);
            let applies = applies.ok_or_else(|| TestCaseError::fail(format!("rule {rule}")))?;
            prop_assert!(
                applies
                    .kinds
                    .contains(&kind.unwrap_or(ChangeKind::Standard))
            );
            let distinct: BTreeSet<&PersonId> = approvers.iter().collect();
            prop_assert_eq!(distinct.len(), approvers.len(), "approvers counted twice");
            prop_assert!(approvers.len() >= applies.quorum as usize, "below quorum");
            for approver in approvers {
                prop_assert!(applies.groups.iter().any(|g| member(policy, g, approver)));
                prop_assert_ne!(Some(approver), caller.as_ref(), "the requester counted");
                prop_assert_ne!(
                    Some(approver),
                    implementer.as_ref(),
                    "the implementer counted"
                );
                prop_assert!(
                    model.approvals.contains(approver),
                    "{approver} counted, but approved before the last reset"
                );
            }
        }
        TypedEvent::Record(RecordEvent::Transitioned {
            phase: Phase::Closed,
            ..
        }) => {
            prop_assert!(before.review().is_some(), "closed without a review");
            if kind == Some(ChangeKind::Emergency) {
                prop_assert!(before.assessment().is_some(), "emergency closed unassessed");
            }
            let failed = before
                .implementation()
                .is_some_and(|i| i.outcome == ImplementationOutcome::Failed);
            if failed {
                prop_assert!(before.remediation().is_some(), "failed, not remediated");
                prop_assert!(before.investigation().is_some(), "failed, not investigated");
            }
        }
        TypedEvent::Logged(_) | TypedEvent::Record(_) | TypedEvent::Own(_) => {}
    }
    Ok(())
}

/// How far the random runs got, to know the properties were exercised.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    pub(crate) implemented: usize,
    pub(crate) authorised: usize,
    pub(crate) closed: usize,
}

/// Runs `steps` on a change of `kind`, checking every event decided.
fn run(kind: ChangeKind, steps: &[Step]) -> Result<Reach, TestCaseError> {
    let policy = Arc::new(policy());
    let mut desk = Desk::new(policy.clone());
    let mut model = Model::default();
    let mut reach = Reach::default();
    desk.ok(REQUESTER, &log_planned("CHG-1", kind));
    for step in steps {
        let (who, command) = match step {
            Step::Any(who, command) => (ACTORS[*who], command.clone()),
            Step::Onwards {
                who,
                outcome,
                level,
                hasty,
            } => onwards(&desk.state, ACTORS[*who], *outcome, *level, *hasty),
        };
        let command = &command;
        let before = desk.state.clone();
        let decided = desk.decide(who, command);
        let Ok(events) = decided else {
            // A refused command records nothing, and is refused again on the same state.
            prop_assert_eq!(&desk.state, &before);
            prop_assert_eq!(desk.decide(who, command).err(), decided.err());
            continue;
        };
        let mut state = before;
        for event in &events {
            check(&state, event, &policy, &mut model)?;
            reach.implemented += usize::from(matches!(
                event,
                TypedEvent::Own(ChangeControlEvent::Implemented { .. })
            ));
            reach.authorised += usize::from(matches!(
                event,
                TypedEvent::Own(ChangeControlEvent::Authorised { .. })
            ));
            state.evolve(event, Stamp::new(None, desk.now));
        }
        reach.closed += usize::from(state.record().phase() == Some(Phase::Closed));
        desk.run(who, command)
            .map_err(|r| TestCaseError::fail(format!("decided twice differently: {r}")))?;
        let counted: Vec<&PersonId> = desk.state.approvals().iter().map(|a| &a.approver).collect();
        prop_assert_eq!(counted, model.approvals.iter().collect::<Vec<_>>());
    }
    prop_assert_eq!(
        desk.replayed(),
        desk.state,
        "the stored events fold into the state"
    );
    Ok(reach)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// No change is implemented unauthorised (or, standard, without its template), none
    /// closes without its review (an emergency one without its assessment, a failed one
    /// without remediation and investigation), no requester's or implementer's approval
    /// counts, an authorisation counts the quorum of members given since the last reset,
    /// and a refused command records nothing.
    #[test]
    fn change_control_holds_under_random_commands(kind in kind(), steps in steps()) {
        run(kind, &steps)?;
    }
}

/// The random runs reach authorisation, implementation and closure often enough for the
/// properties above to mean something.
#[test]
fn random_runs_reach_the_end_of_the_lifecycles() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config::default());
    let mut total = Reach::default();
    for kind in ChangeKind::ALL {
        for _ in 0..32 {
            let steps = steps().new_tree(&mut runner).expect("a value").current();
            let reach = run(kind, &steps).expect("the invariants hold");
            total.implemented += reach.implemented;
            total.authorised += reach.authorised;
            total.closed += reach.closed;
        }
    }
    assert!(total.authorised >= 8, "{total:?}");
    assert!(total.implemented >= 12, "{total:?}");
    assert!(total.closed >= 10, "{total:?}");
}
