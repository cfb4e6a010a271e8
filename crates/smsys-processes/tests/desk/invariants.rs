//! Invariants of every record type under random command sequences, each command run by a
//! randomly picked actor (the caller, the agent who logged, approvers, a stranger).

use chrono::TimeDelta;
use proptest::prelude::*;
use smsys_core::records::Problem;
use smsys_core::records::{Phase, RecordEvent, RecordKind, TransitionDetail, TypedEvent};
use smsys_processes::{IncidentManagement, ProblemManagement, RequestManagement};

use crate::harness::{Desk, Kind};
use crate::matrix::{Sample, samples};

/// `ana` called, `frank` logged, `carol` and `dave` approve, `mallory` is nobody.
const ACTORS: [&str; 5] = ["ana", "frank", "carol", "dave", "mallory"];

/// Which sample command, run by which actor, how many hours after the previous one.
type Step = (usize, usize, u8);

/// How often a sample is drawn: the commands that move a record on often, those that end it
/// early (cancel, reject) rarely, so that many runs get as far as resolution and closure.
fn weight<K: Kind>(sample: &Sample<K::Command>) -> usize {
    let name = match sample {
        Sample::Log => "log",
        Sample::Shared(command) => command.name(),
        Sample::Own(command) => K::command_name(command),
    };
    match name {
        "cancel" | "reject" | "retire" => 1,
        "assign"
        | "classify"
        | "prioritise"
        | "resolve"
        | "reopen"
        | "close"
        | "auto-close"
        | "request approval"
        | "approve"
        | "finish task"
        | "record major-incident review"
        | "analyse"
        | "start fix"
        | "record root cause"
        | "publish"
        | "revise" => 6,
        _ => 3,
    }
}

pub(crate) fn steps<K: Kind>() -> impl Strategy<Value = Vec<Step>> {
    let pool: Vec<usize> = samples::<K>()
        .iter()
        .enumerate()
        .flat_map(|(i, sample)| std::iter::repeat_n(i, weight::<K>(sample)))
        .collect();
    proptest::collection::vec(
        (proptest::sample::select(pool), 0..ACTORS.len(), 0u8..48),
        1..60,
    )
}

/// Checks the invariants every record type keeps, and after each step `own` (the type's own);
/// gives back the desk for checks on its whole history.
pub(crate) fn check_invariants<K: Kind>(
    steps: Vec<Step>,
    own: impl Fn(&K::Record) -> Result<(), TestCaseError>,
) -> Result<Desk<K>, TestCaseError> {
    let samples = samples::<K>();
    let mut d = Desk::<K>::logged();
    let mut reopens = 0;
    for (sample, who, hours) in steps {
        d.now += TimeDelta::hours(i64::from(hours));
        d.acting(ACTORS[who]);
        let before = d.state.clone();
        let recorded = d.events.len();
        let command = samples[sample].command::<K>(&d.state);
        match d.run(command) {
            Ok(_) => {
                prop_assert!(
                    !before.record().phase().is_some_and(Phase::is_final),
                    "a final record accepted a command"
                );
                for new in &d.events[recorded..] {
                    let TypedEvent::Record(RecordEvent::Transitioned { phase, detail, .. }) =
                        &new.event
                    else {
                        continue;
                    };
                    if *phase == Phase::Closed && !K::CLOSES_UNRESOLVED {
                        prop_assert_eq!(
                            before.record().phase(),
                            Some(Phase::Resolved),
                            "closed without being resolved"
                        );
                        prop_assert!(before.record().resolution().is_some());
                    }
                    if matches!(detail, TransitionDetail::Reopen { .. }) {
                        reopens += 1;
                    }
                }
            }
            Err(_) => {
                prop_assert_eq!(&d.state, &before, "a refusal changed the record");
                prop_assert_eq!(d.events.len(), recorded, "a refusal recorded events");
            }
        }
        let record = d.record();
        prop_assert_eq!(record.reopen_count(), reopens);
        let lifecycle = K::record_policy(&d.policy)
            .lifecycles
            .get(record.lifecycle().expect("logged"))
            .expect("a known lifecycle");
        let status_phase = lifecycle
            .status(record.status().expect("logged"))
            .map(|s| s.phase);
        prop_assert_eq!(
            status_phase,
            record.phase(),
            "the phase is the current status's phase"
        );
        own(&d.state)?;
    }
    prop_assert_eq!(&d.replayed(), &d.state, "replay reproduces the state");
    Ok(d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incident_invariants_hold(steps in steps::<IncidentManagement>()) {
        check_invariants::<IncidentManagement>(steps, |_| Ok(()))?;
    }

    #[test]
    fn request_invariants_hold(steps in steps::<RequestManagement>()) {
        check_invariants::<RequestManagement>(steps, |_| Ok(()))?;
    }

    #[test]
    fn problem_invariants_hold(steps in steps::<ProblemManagement>()) {
        check_invariants::<ProblemManagement>(steps, problem_invariants)?;
    }
}

/// A closed problem has a resolution code or an accepted risk; a duplicate names another
/// problem than itself, and only while it is resolved or closed as one.
fn problem_invariants(problem: &Problem) -> Result<(), TestCaseError> {
    let record = problem.record();
    if record.phase() == Some(Phase::Closed) {
        let code = record
            .resolution()
            .is_some_and(|r| !r.code.trim().is_empty());
        prop_assert!(
            code || problem.accepted_risk().is_some(),
            "closed without a resolution code or an accepted risk"
        );
    }
    if let Some(of) = problem.duplicate_of() {
        prop_assert_ne!(Some(of), record.reference(), "a duplicate of itself");
        prop_assert!(
            matches!(record.phase(), Some(Phase::Resolved | Phase::Closed)),
            "marked duplicate but not resolved"
        );
        prop_assert_eq!(
            record.resolution().map(|r| r.code.as_str()),
            Some("duplicate")
        );
    }
    if problem.accepted_risk().is_some() {
        prop_assert_eq!(
            record.resolution().map(|r| r.code.as_str()),
            Some("risk_accepted")
        );
    }
    Ok(())
}
