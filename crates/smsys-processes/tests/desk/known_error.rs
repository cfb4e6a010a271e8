//! Known error rules: the reference lifecycle, publication only with a symptom and a
//! workaround, versions across revisions, retirement and supersession, discarded drafts, the
//! refusals named; invariants under random commands, with the catalogue fed the events.

use proptest::prelude::*;
use smsys_core::records::known_error::KnownErrorVersion;
use smsys_core::records::{CiId, KnownError, LinkKind, Phase, RecordKind};
use smsys_processes::known_error::{KnownErrorRule, LogKnownError, default_lifecycle};
use smsys_processes::lifecycle::{Guard, Trigger};
use smsys_processes::{KnownErrorCommand, KnownErrorManagement, RecordCommand, RefusalReason};

use crate::harness::{Kind, KnownErrors, actor, edited, id, log_input, revise};
use crate::invariants::{check_invariants, steps};

mod catalogue;

fn retire(superseded_by: Option<&str>) -> KnownErrorCommand {
    KnownErrorCommand::Retire {
        reason: "fixed by CHG-7".into(),
        superseded_by: superseded_by.map(id),
    }
}

fn numbers(known_error: &KnownError) -> Vec<u32> {
    known_error
        .versions()
        .iter()
        .map(|v| v.version.get())
        .collect()
}

/// Given known error `R-1` published as version 1.
fn published() -> KnownErrors {
    let mut d = KnownErrors::logged();
    assert_eq!(
        d.ok(KnownErrorCommand::Publish),
        ["published", "transitioned"]
    );
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
            ("draft", Phase::New),
            ("published", Phase::Active),
            ("retired", Phase::Closed),
            ("discarded", Phase::Cancelled),
        ]
    );
    assert_eq!(lifecycle.record_type(), &KnownError::RECORD_TYPE);
    // Publishing may not lead anywhere but an active status.
    let bad = edited::<KnownErrorManagement>(&lifecycle, |d| {
        d.transitions.push(smsys_processes::lifecycle::Transition {
            name: "publish_and_retire".into(),
            trigger: Trigger::PUBLISH,
            from: vec!["draft".into()],
            to: "retired".into(),
            requires: Vec::new(),
            guards: vec![Guard::CONTENT_COMPLETE],
        });
    });
    assert!(bad.is_err(), "{bad:?}");
}

#[test]
fn a_draft_is_logged_with_its_author_problem_and_first_content() {
    let d = KnownErrors::logged();
    let record = d.record();
    assert_eq!(record.status(), Some("draft"));
    assert_eq!(record.caller(), Some(&id("ana")), "the author");
    assert_eq!(d.state.problem(), Some(&id("PRB-1")));
    assert_eq!(d.state.content().symptom, "mail bounces with 451");
    assert_eq!(d.state.content().affected_cis, [id::<CiId>("mx-01")]);
    assert_eq!(d.state.version(), KnownErrorVersion::NONE);
    assert!(d.state.versions().is_empty());
}

#[test]
fn a_known_error_is_logged_only_with_a_symptom() {
    let mut d = KnownErrors::new();
    let command = KnownErrorCommand::Log(LogKnownError::new(log_input(), "  "));
    assert_eq!(d.refused(command), RefusalReason::MissingInput("symptom"));
}

#[test]
fn nothing_is_published_without_a_workaround() {
    let mut d = KnownErrors::new();
    d.ok(KnownErrorCommand::Log(
        LogKnownError::new(log_input(), "mail bounces").root_cause("queue"),
    ));
    assert_eq!(
        d.refused(KnownErrorCommand::Publish),
        RefusalReason::GuardFailed(Guard::CONTENT_COMPLETE)
    );
    assert_eq!(d.ok(revise(Some("flush the queue"))), ["content_revised"]);
    assert!(d.state.versions().is_empty(), "a draft edit is no version");
    d.ok(KnownErrorCommand::Publish);
    assert_eq!(d.record().status(), Some("published"));
    assert_eq!(numbers(&d.state), [1]);
    assert_eq!(
        d.state.versions()[0].content.workaround.as_deref(),
        Some("flush the queue")
    );
}

#[test]
fn each_revision_of_a_published_known_error_is_the_next_version() {
    let mut d = published();
    d.acting("erin");
    d.ok(revise(Some("restart mx")));
    d.ok(KnownErrorCommand::Revise {
        symptom: "mail bounces".into(),
        root_cause: None,
        workaround: Some("restart mx".into()),
        affected_cis: Vec::new(),
        affected_services: Vec::new(),
        reason: "wider symptom".into(),
    });
    assert_eq!(numbers(&d.state), [1, 2, 3]);
    assert_eq!(d.state.version(), KnownErrorVersion::new(3));
    let versions = d.state.versions();
    assert_eq!(
        versions[0].content.workaround.as_deref(),
        Some("flush the queue")
    );
    assert_eq!(
        versions[1].content.workaround.as_deref(),
        Some("restart mx")
    );
    assert_eq!(versions[1].by, Some(actor("erin")));
    assert_eq!(versions[0].by, Some(actor("frank")));
    assert_eq!(d.state.content().symptom, "mail bounces");
    assert_eq!(
        d.refused(KnownErrorCommand::Publish),
        RefusalReason::NoTransition {
            lifecycle: KnownErrorManagement::default_lifecycle().reference(),
            trigger: Trigger::PUBLISH,
        },
        "published once"
    );
    assert_eq!(d.replayed(), d.state);
}

#[test]
fn revisions_are_refused_when_unchanged_incomplete_or_unexplained() {
    let mut d = KnownErrors::logged();
    d.ok(revise(Some("restart mx")));
    assert_eq!(
        d.refused(revise(Some("restart mx"))),
        RefusalReason::Unchanged
    );
    d.ok(KnownErrorCommand::Publish);
    assert_eq!(
        d.refused(revise(Some("restart mx"))),
        RefusalReason::Unchanged
    );
    assert_eq!(
        d.refused(revise(None)),
        RefusalReason::Rule(KnownErrorRule::IncompleteRevision("a workaround"))
    );
    let KnownErrorCommand::Revise {
        symptom,
        root_cause,
        affected_cis,
        affected_services,
        ..
    } = revise(None)
    else {
        unreachable!()
    };
    let unexplained = KnownErrorCommand::Revise {
        symptom,
        root_cause,
        workaround: Some("reboot".into()),
        affected_cis,
        affected_services,
        reason: " ".into(),
    };
    assert_eq!(
        d.refused(unexplained),
        RefusalReason::MissingInput("revision reason")
    );
    let mut blank = revise(Some("reboot"));
    if let KnownErrorCommand::Revise { symptom, .. } = &mut blank {
        symptom.clear();
    }
    assert_eq!(d.refused(blank), RefusalReason::MissingInput("symptom"));
    // A draft may lose its workaround: it only cannot be published so.
    let mut draft = KnownErrors::logged();
    assert_eq!(draft.ok(revise(None)), ["content_revised"]);
    assert_eq!(
        draft.refused(KnownErrorCommand::Publish),
        RefusalReason::GuardFailed(Guard::CONTENT_COMPLETE)
    );
}

#[test]
fn a_retired_known_error_names_what_supersedes_it_and_takes_no_revision() {
    let mut d = published();
    assert_eq!(
        d.refused(retire(Some("R-1"))),
        RefusalReason::Rule(KnownErrorRule::SupersededByItself(id("R-1")))
    );
    assert_eq!(
        d.refused(KnownErrorCommand::Retire {
            reason: String::new(),
            superseded_by: None,
        }),
        RefusalReason::MissingInput("retirement reason")
    );
    d.acting("erin");
    assert_eq!(d.ok(retire(Some("KE-9"))), ["retired", "transitioned"]);
    assert_eq!(d.record().status(), Some("retired"));
    assert_eq!(d.record().phase(), Some(Phase::Closed));
    let retired = d.state.retired().expect("retired");
    assert_eq!(retired.superseded_by, Some(id("KE-9")));
    assert_eq!(retired.by, Some(actor("erin")));
    assert_eq!(numbers(&d.state), [1], "its versions stay");
    assert_eq!(
        d.refused(revise(Some("reboot"))),
        RefusalReason::Final(Phase::Closed)
    );
    assert_eq!(
        d.refused(RecordCommand::Classify {
            category: "mail".into(),
            subcategory: None,
        }),
        RefusalReason::Final(Phase::Closed)
    );
}

#[test]
fn a_draft_may_be_retired_or_discarded_but_a_published_one_is_not_discarded() {
    let mut d = KnownErrors::logged();
    d.ok(retire(None));
    assert_eq!(d.record().status(), Some("retired"));
    assert_eq!(d.state.version(), KnownErrorVersion::NONE);

    let mut d = KnownErrors::logged();
    let cancel = || RecordCommand::Cancel {
        reason: "never confirmed".into(),
    };
    assert_eq!(d.ok(cancel()), ["transitioned"]);
    assert_eq!(d.record().status(), Some("discarded"));
    assert_eq!(d.record().phase(), Some(Phase::Cancelled));
    assert_eq!(
        d.refused(KnownErrorCommand::Publish),
        RefusalReason::Final(Phase::Cancelled)
    );

    let mut d = published();
    assert!(matches!(
        d.refused(cancel()),
        RefusalReason::NoTransition { .. }
    ));
}

#[test]
fn shared_commands_classify_link_and_assign_without_moving_it() {
    let mut d = KnownErrors::logged();
    assert_eq!(
        d.ok(RecordCommand::Assign {
            group: id("problem-mgmt"),
            person: None,
        }),
        ["assigned"],
        "assignment starts nothing"
    );
    d.ok(RecordCommand::Classify {
        category: "mail".into(),
        subcategory: None,
    });
    d.ok(RecordCommand::Link {
        kind: LinkKind::CONFIGURATION_ITEM,
        target: "mx-02".into(),
    });
    d.ok(RecordCommand::Link {
        kind: LinkKind::INCIDENT,
        target: "INC-7".into(),
    });
    assert_eq!(d.record().status(), Some("draft"));
    assert_eq!(d.record().category(), Some("mail"));
    assert_eq!(d.record().links().len(), 2);
    for refused in [
        RecordCommand::Start,
        RecordCommand::Resolve {
            code: "fixed".into(),
            notes: "n".into(),
        },
        RecordCommand::Close,
    ] {
        assert!(matches!(
            d.refused(refused),
            RefusalReason::NoTransition { .. }
        ));
    }
}

#[test]
fn refusals_name_the_known_error_its_status_and_the_command() {
    let mut d = published();
    let refusal = d.run(retire(Some("R-1"))).expect_err("refused");
    assert_eq!(
        refusal.to_string(),
        "known error R-1 (status published): retire refused: a known error cannot be superseded by itself (R-1)"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Under random commands: versions are 1, 2, ... with no gap, the version grows by at most
    /// one per command and only while published (or by the publication), the content of the
    /// latest version is the current content, and a retired known error keeps its versions.
    /// The catalogue fed the events one at a time offers the known error exactly while it is
    /// published and not retired, with its latest version's content.
    #[test]
    fn known_error_invariants_hold(steps in steps::<KnownErrorManagement>()) {
        let last = std::cell::Cell::new((KnownErrorVersion::NONE, Some(Phase::New)));
        let d = check_invariants::<KnownErrorManagement>(steps, |known_error| {
            let (before, phase_before) = last.get();
            let now = known_error.version();
            prop_assert!(now == before || now == before.next(), "{before} -> {now}");
            if now != before {
                prop_assert!(
                    matches!(phase_before, Some(Phase::New | Phase::Active)),
                    "a version made outside draft or published"
                );
            }
            let numbers = numbers(known_error);
            let expected: Vec<u32> = (1..=now.get()).collect();
            prop_assert_eq!(numbers, expected);
            if let Some(latest) = known_error.published() {
                prop_assert!(latest.content.is_complete());
                prop_assert_eq!(&latest.content, known_error.content());
            }
            last.set((now, known_error.record().phase()));
            Ok(())
        })?;
        catalogue::offers_exactly_the_published(&d)?;
    }
}
