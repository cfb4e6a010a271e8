//! Problem rules: the reference lifecycle, root cause before the fix, workarounds at any time,
//! accepted risk and duplicates as resolutions with their own codes, and what a reopen undoes.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use smsys_core::records::{
    CiId, Phase, RecordEvent, RecordKind, Reference, TransitionDetail, TypedEvent,
};
use smsys_processes::lifecycle::{Guard, Trigger};
use smsys_processes::problem::{
    ProblemDirectory, ProblemResolution, ProblemRule, ProblemStanding, default_lifecycle,
};
use smsys_processes::{
    ProblemCommand, ProblemManagement, ProblemPolicy, RecordCommand, RecordRules, RefusalReason,
};

use crate::harness::{Problems, edited, id, t0};
use crate::incident::assign;

fn root_cause() -> ProblemCommand {
    ProblemCommand::RecordRootCause {
        cause: "mx queue fills on retries".into(),
        method: "five whys".into(),
        contributing_cis: vec![id("mx-01")],
    }
}

fn accept_risk() -> ProblemCommand {
    ProblemCommand::AcceptRisk {
        reason: "mx replaced next quarter".into(),
    }
}

fn fix() -> RecordCommand {
    RecordCommand::Resolve {
        code: ProblemResolution::FixApplied.as_str().into(),
        notes: "retry limit lowered".into(),
    }
}

/// Given problem `R-1` assigned (so assessed) and in root-cause analysis.
fn analysing() -> Problems {
    let mut d = Problems::logged();
    assert_eq!(d.ok(assign()), ["assigned", "transitioned"]);
    assert_eq!(d.record().status(), Some("assess"));
    d.ok(ProblemCommand::Analyse);
    assert_eq!(d.record().status(), Some("root_cause_analysis"));
    d
}

#[test]
fn the_reference_lifecycle_maps_every_status_to_its_phase() {
    let lifecycle = default_lifecycle();
    let phases: Vec<(&str, Phase)> = lifecycle
        .statuses()
        .iter()
        .map(|s| (s.name.as_str(), s.phase))
        .collect();
    assert_eq!(
        phases,
        [
            ("new", Phase::New),
            ("assess", Phase::Active),
            ("root_cause_analysis", Phase::Active),
            ("fix_in_progress", Phase::Active),
            ("resolved", Phase::Resolved),
            ("closed", Phase::Closed),
            ("cancelled", Phase::Cancelled),
        ]
    );
    assert_eq!(
        lifecycle.record_type(),
        &smsys_core::records::Problem::RECORD_TYPE
    );
    // A product may not close a problem straight from analysis: nothing closes unresolved.
    let shortcut = edited::<ProblemManagement>(&lifecycle, |d| {
        d.transitions.push(smsys_processes::lifecycle::Transition {
            name: "shortcut".into(),
            trigger: Trigger::CLOSE,
            from: vec!["root_cause_analysis".into()],
            to: "closed".into(),
            requires: Vec::new(),
            guards: vec![Guard::RESOLUTION_OR_RISK_ACCEPTED],
        });
    });
    assert!(shortcut.is_err(), "{shortcut:?}");
    let vocabulary = ProblemManagement::vocabulary();
    assert!(vocabulary.has_guard(&Guard::DUPLICATE_NAMED));
    assert!(vocabulary.trigger(&Trigger::ACCEPT_RISK).is_some());
}

#[test]
fn a_fix_starts_only_once_the_root_cause_is_recorded() {
    let mut d = analysing();
    assert_eq!(
        d.refused(ProblemCommand::StartFix),
        RefusalReason::GuardFailed(Guard::ROOT_CAUSE_RECORDED)
    );
    assert_eq!(d.ok(root_cause()), ["root_cause_recorded"]);
    assert_eq!(d.refused(root_cause()), RefusalReason::Unchanged);
    let cause = d.state.root_cause().expect("recorded");
    assert_eq!(cause.method, "five whys");
    assert_eq!(cause.contributing_cis, vec![id::<CiId>("mx-01")]);
    assert_eq!(d.ok(ProblemCommand::StartFix), ["transitioned"]);
    assert_eq!(d.record().status(), Some("fix_in_progress"));
    // The fix did not hold: analyse again.
    d.ok(ProblemCommand::Analyse);
    assert_eq!(d.record().status(), Some("root_cause_analysis"));
    d.ok(ProblemCommand::StartFix);
    d.ok(fix());
    let resolution = d.record().resolution().expect("resolved");
    assert_eq!(resolution.code, "fix_applied");
    let resolved_at = resolution.at;
    // A fix closes only once a review found it held.
    assert_eq!(
        d.refused(RecordCommand::Close),
        RefusalReason::GuardFailed(Guard::FIX_REVIEWED)
    );
    d.now = resolved_at + TimeDelta::days(30);
    assert_eq!(
        d.ok(review(resolved_at, d.now, &[])),
        ["effectiveness_reviewed"]
    );
    d.ok(RecordCommand::Close);
    assert_eq!(d.record().phase(), Some(Phase::Closed));
    assert_eq!(d.replayed(), d.state);
}

fn review(from: DateTime<Utc>, to: DateTime<Utc>, recurrences: &[&str]) -> ProblemCommand {
    ProblemCommand::RecordReview {
        from,
        to,
        recurrences: recurrences.iter().map(|r| id(r)).collect(),
    }
}

/// Given problem `R-1` resolved by a fix at `d.now`.
fn fixed() -> Problems {
    let mut d = analysing();
    d.ok(root_cause());
    d.ok(ProblemCommand::StartFix);
    d.ok(fix());
    d
}

#[test]
fn a_review_window_fits_the_fix_and_now() {
    let mut d = fixed();
    let at = d.record().resolution().expect("resolved").at;
    d.now = at + TimeDelta::days(30);
    let window = |why: &'static str, from, to| {
        RefusalReason::Rule(ProblemRule::ReviewWindow { from, to, why })
    };
    let early = at - TimeDelta::seconds(1);
    assert_eq!(
        d.refused(review(early, d.now, &[])),
        window("does not start at the resolution", early, d.now)
    );
    let late = at + TimeDelta::seconds(1);
    assert_eq!(
        d.refused(review(late, d.now, &[])),
        window("does not start at the resolution", late, d.now)
    );
    assert_eq!(d.refused(review(at, at, &[])), window("is empty", at, at));
    let short = at + d.policy.review.window - TimeDelta::seconds(1);
    assert_eq!(
        d.refused(review(at, short, &[])),
        window("is shorter than the policy's review window", at, short)
    );
    let later = d.now + TimeDelta::seconds(1);
    assert_eq!(
        d.refused(review(at, later, &[])),
        window("ends in the future", at, later)
    );
    assert_eq!(d.state.reviews(), 0);
}

#[test]
fn a_fix_that_did_not_hold_is_reopened_with_the_evidence() {
    let mut d = fixed();
    let at = d.record().resolution().expect("resolved").at;
    assert_eq!(
        d.refused(ProblemCommand::ReopenIneffective),
        RefusalReason::Rule(ProblemRule::NoIneffectiveReview)
    );
    d.now = at + TimeDelta::days(30);
    // Duplicates in the evidence count once.
    d.ok(review(at, d.now, &["INC-9", "INC-7", "INC-9"]));
    let review_done = d.state.review().expect("reviewed").clone();
    assert!(!review_done.effective);
    // One review per fix: a second one (say from a reviewer that had not seen the first) is
    // refused.
    assert_eq!(
        d.refused(review(at, d.now, &[])),
        RefusalReason::Rule(ProblemRule::AlreadyReviewed(at))
    );
    assert_eq!(
        review_done.recurrences,
        vec![id::<Reference>("INC-7"), id("INC-9")]
    );
    assert_eq!(review_done.resolved_at, at);
    assert_eq!(
        d.refused(RecordCommand::Close),
        RefusalReason::GuardFailed(Guard::FIX_REVIEWED)
    );
    assert_eq!(d.ok(ProblemCommand::ReopenIneffective), ["transitioned"]);
    assert_eq!(d.record().status(), Some("root_cause_analysis"));
    assert_eq!(d.record().reopen_count(), 1);
    assert!(
        d.state.review().is_none(),
        "the review belonged to the undone fix"
    );
    assert_eq!(d.state.reviews(), 1);
    let Some(TypedEvent::Record(RecordEvent::Transitioned {
        detail: TransitionDetail::Reopen { reason, .. },
        ..
    })) = d.events.last().map(|r| &r.event)
    else {
        panic!("a reopen was recorded");
    };
    assert!(
        reason.contains("2 incident(s)") && reason.contains("INC-7, INC-9"),
        "{reason}"
    );
    // The next fix needs its own review: the old one does not count.
    d.ok(ProblemCommand::StartFix);
    d.ok(fix());
    assert_eq!(
        d.refused(RecordCommand::Close),
        RefusalReason::GuardFailed(Guard::FIX_REVIEWED)
    );
    assert_eq!(d.replayed(), d.state);
}

#[test]
fn the_review_tolerates_what_the_policy_says() {
    let mut d = fixed();
    d.policy.review.tolerated_recurrences = 1;
    let at = d.record().resolution().expect("resolved").at;
    d.now = at + TimeDelta::days(30);
    d.ok(review(at, d.now, &["INC-7"]));
    assert!(d.state.review().is_some_and(|r| r.effective));
    d.ok(RecordCommand::Close);
}

#[test]
fn only_a_fix_is_reviewed() {
    let mut d = analysing();
    d.ok(accept_risk());
    let at = d.record().resolution().expect("resolved").at;
    d.now = at + TimeDelta::days(30);
    assert!(matches!(
        d.refused(review(at, d.now, &[])),
        RefusalReason::Rule(ProblemRule::NoFixToReview(why)) if why.contains("risk_accepted")
    ));
    // An accepted risk has no fix to review: it closes.
    d.ok(RecordCommand::Close);
    let mut open = analysing();
    assert!(matches!(
        open.refused(review(t0(), t0(), &[])),
        RefusalReason::Rule(ProblemRule::NoFixToReview(_))
    ));
}

/// A directory of problems for the duplicate check.
#[derive(Debug, Default)]
struct Directory(HashMap<Reference, ProblemStanding>);

impl ProblemDirectory for Directory {
    fn standing(&self, reference: &Reference) -> Option<ProblemStanding> {
        self.0.get(reference).cloned()
    }
}

#[test]
fn with_a_directory_a_duplicate_names_an_open_problem() {
    let standing = |phase, duplicate_of: Option<&str>| ProblemStanding {
        phase,
        duplicate_of: duplicate_of.map(id),
    };
    let directory = Directory(HashMap::from([
        (id("PRB-1"), standing(Phase::Active, None)),
        (id("PRB-2"), standing(Phase::Closed, None)),
        (id("PRB-3"), standing(Phase::Resolved, Some("PRB-1"))),
        (id("PRB-4"), standing(Phase::Pending, None)),
    ]));
    let mut d = Problems::logged();
    d.policy = ProblemPolicy::default().with_directory(Arc::new(directory));
    d.ok(assign());
    assert_eq!(
        d.refused(ProblemCommand::MarkDuplicate { of: id("PRB-9") }),
        RefusalReason::Rule(ProblemRule::UnknownSurvivor(id("PRB-9")))
    );
    for (of, phase) in [("PRB-2", Phase::Closed), ("PRB-3", Phase::Resolved)] {
        assert_eq!(
            d.refused(ProblemCommand::MarkDuplicate { of: id(of) }),
            RefusalReason::Rule(ProblemRule::SurvivorNotOpen { of: id(of), phase })
        );
    }
    d.ok(ProblemCommand::MarkDuplicate { of: id("PRB-4") });
    assert_eq!(d.state.duplicate_of(), Some(&id("PRB-4")));
}

#[test]
fn a_workaround_may_be_recorded_before_the_root_cause() {
    let mut d = Problems::logged();
    assert_eq!(
        d.refused(ProblemCommand::RecordWorkaround {
            text: " ".into(),
            published: false,
        }),
        RefusalReason::MissingInput("workaround")
    );
    d.ok(ProblemCommand::RecordWorkaround {
        text: "flush the queue".into(),
        published: false,
    });
    d.ok(ProblemCommand::RecordWorkaround {
        text: "flush the queue".into(),
        published: true,
    });
    let workaround = d.state.workaround().expect("recorded");
    assert!(workaround.published);
    assert!(d.state.root_cause().is_none());
}

#[test]
fn accepting_the_risk_resolves_with_its_own_code_and_allows_closure() {
    let mut d = analysing();
    assert_eq!(
        d.refused(ProblemCommand::AcceptRisk { reason: "".into() }),
        RefusalReason::MissingInput("risk acceptance reason")
    );
    assert_eq!(d.ok(accept_risk()), ["risk_accepted", "transitioned"]);
    assert_eq!(d.record().phase(), Some(Phase::Resolved));
    assert_eq!(
        d.record().resolution().map(|r| r.code.as_str()),
        Some("risk_accepted")
    );
    let risk = d.state.accepted_risk().expect("accepted");
    assert_eq!(risk.reason, "mx replaced next quarter");
    assert_eq!(risk.by.as_ref().map(|a| a.as_str()), Some("frank"));
    d.ok(RecordCommand::Close);
    assert_eq!(d.record().phase(), Some(Phase::Closed));
    assert!(matches!(d.refused(accept_risk()), RefusalReason::Final(_)));
}

#[test]
fn the_risk_is_accepted_only_from_analysis() {
    let mut d = Problems::logged();
    d.ok(assign());
    assert!(matches!(
        d.refused(accept_risk()),
        RefusalReason::NoTransition { trigger, .. } if trigger == Trigger::ACCEPT_RISK
    ));
    assert!(d.state.accepted_risk().is_none());
}

#[test]
fn a_duplicate_names_another_problem_and_resolves_as_duplicate() {
    let mut d = Problems::logged();
    d.ok(assign());
    assert_eq!(
        d.refused(ProblemCommand::MarkDuplicate { of: id("R-1") }),
        RefusalReason::Rule(ProblemRule::DuplicateOfItself(id("R-1")))
    );
    assert_eq!(
        d.ok(ProblemCommand::MarkDuplicate { of: id("PRB-9") }),
        ["marked_duplicate", "transitioned"]
    );
    assert_eq!(d.state.duplicate_of(), Some(&id("PRB-9")));
    let resolution = d.record().resolution().expect("resolved");
    assert_eq!(resolution.code, "duplicate");
    assert_eq!(resolution.notes, "duplicate of PRB-9");
    d.ok(RecordCommand::Close);
    assert_eq!(d.replayed(), d.state);
}

#[test]
fn a_new_problem_is_not_marked_duplicate_before_assessment() {
    let mut d = Problems::logged();
    assert!(matches!(
        d.refused(ProblemCommand::MarkDuplicate { of: id("PRB-9") }),
        RefusalReason::NoTransition { .. }
    ));
}

#[test]
fn a_resolve_never_records_the_codes_of_the_other_endings() {
    let mut d = analysing();
    d.ok(root_cause());
    d.ok(ProblemCommand::StartFix);
    for reserved in ["risk_accepted", "duplicate", "cancelled"] {
        let resolve = RecordCommand::Resolve {
            code: reserved.into(),
            notes: "n".into(),
        };
        assert!(
            matches!(
                d.refused(resolve),
                RefusalReason::Rule(ProblemRule::ReservedCode(code)) if code == reserved
            ),
            "{reserved}"
        );
    }
    d.ok(RecordCommand::Resolve {
        code: "vendor_patch".into(),
        notes: "patched".into(),
    });
}

#[test]
fn a_reopen_undoes_the_accepted_risk_and_keeps_the_analysis() {
    let mut d = analysing();
    d.ok(root_cause());
    d.ok(accept_risk());
    d.ok(RecordCommand::Reopen {
        reason: "outages grew".into(),
    });
    assert_eq!(d.record().status(), Some("root_cause_analysis"));
    assert!(d.state.accepted_risk().is_none());
    assert!(d.record().resolution().is_none());
    assert!(d.state.root_cause().is_some());
    assert_eq!(
        d.refused(RecordCommand::Close),
        RefusalReason::NoTransition {
            lifecycle: d.record().lifecycle().expect("logged").clone(),
            trigger: Trigger::CLOSE,
        }
    );
    assert_eq!(d.replayed(), d.state);
}

#[test]
fn a_problem_is_cancelled_from_assessment() {
    let mut d = Problems::logged();
    d.ok(assign());
    d.ok(RecordCommand::Cancel {
        reason: "not a problem".into(),
    });
    assert_eq!(d.record().phase(), Some(Phase::Cancelled));
    assert!(matches!(
        d.refused(ProblemCommand::Analyse),
        RefusalReason::Final(Phase::Cancelled)
    ));
}
