//! Incident rules: the walk through the default lifecycle with the reasons of refusals, major
//! incidents, and lifecycle migration.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use smsys_core::records::{
    DefinitionRef, Level, NoteKind, Phase, Priority, RecordEvent, TypedEvent,
};
use smsys_processes::incident::IncidentRule;
use smsys_processes::lifecycle::{Guard, Requirement, Trigger};
use smsys_processes::{
    IncidentCommand, IncidentPolicy, RecordCommand, RefusalReason, RequestManagement,
};

use crate::harness::{Incidents, Kind, id};

pub(crate) fn assign() -> RecordCommand {
    RecordCommand::Assign {
        group: id("desk"),
        person: None,
    }
}

pub(crate) fn classify() -> RecordCommand {
    RecordCommand::Classify {
        category: "mail".into(),
        subcategory: None,
    }
}

pub(crate) fn prioritise(impact: Level, urgency: Level) -> RecordCommand {
    RecordCommand::Prioritise { impact, urgency }
}

pub(crate) fn resolve() -> RecordCommand {
    RecordCommand::Resolve {
        code: "fixed".into(),
        notes: "restarted".into(),
    }
}

/// Given an incident logged under `policy`, assigned (so in progress under the default
/// lifecycle), classified and prioritised P3: ready to resolve.
pub(crate) fn in_progress(policy: IncidentPolicy) -> Incidents {
    let mut d = Incidents::logged_under(policy);
    d.ok(assign());
    d.ok(classify());
    d.ok(prioritise(Level::Medium, Level::Medium));
    d
}

fn reopen() -> RecordCommand {
    RecordCommand::Reopen {
        reason: "again".into(),
    }
}

#[test]
fn an_incident_walks_its_lifecycle_and_refusals_say_why() {
    let mut d = Incidents::logged();
    assert_eq!(d.record().status(), Some("new"));
    assert_eq!(
        d.refused(resolve()),
        RefusalReason::NoTransition {
            lifecycle: d.record().lifecycle().cloned().expect("logged"),
            trigger: Trigger::RESOLVE
        }
    );
    assert_eq!(
        d.ok(assign()),
        vec!["assigned", "transitioned"],
        "assigning starts work"
    );
    assert_eq!(d.record().status(), Some("in_progress"));
    let refusal = d.run(resolve()).expect_err("no category yet");
    assert_eq!(
        refusal.to_string(),
        "incident R-1 (status in_progress): resolve refused: the transition requires category, which is missing"
    );
    d.ok(classify());
    assert_eq!(
        d.refused(resolve()),
        RefusalReason::Missing(Requirement::Priority),
        "the default lifecycle requires a priority to resolve"
    );
    d.ok(prioritise(Level::Medium, Level::High));
    assert_eq!(d.record().priority().map(Priority::get), Some(2));
    assert_eq!(
        d.refused(RecordCommand::Hold {
            reason: " ".into(),
            status: None
        }),
        RefusalReason::MissingInput("hold reason")
    );
    d.ok(RecordCommand::Hold {
        reason: "awaiting caller".into(),
        status: None,
    });
    assert_eq!(d.record().phase(), Some(Phase::Pending));
    assert_eq!(d.record().hold_reason(), Some("awaiting caller"));
    assert_eq!(
        d.ok(RecordCommand::AddNote {
            kind: NoteKind::CallerUpdate,
            text: "tried again".into()
        }),
        vec!["noted", "transitioned"],
        "a caller update resumes work"
    );
    assert_eq!(d.record().phase(), Some(Phase::Active));
    assert_eq!(d.record().hold_reason(), None);
    assert_eq!(
        d.refused(RecordCommand::Resolve {
            code: "fixed".into(),
            notes: " ".into()
        }),
        RefusalReason::Missing(Requirement::ResolutionNotes)
    );
    assert_eq!(
        d.refused(RecordCommand::Resolve {
            code: String::new(),
            notes: "restarted".into()
        }),
        RefusalReason::Missing(Requirement::ResolutionCode)
    );
    d.ok(resolve());
    d.ok(reopen());
    assert_eq!(
        d.record().resolution(),
        None,
        "reopening drops the resolution"
    );
    d.ok(resolve());
    assert_eq!(d.record().reopen_count(), 1);
    assert!(matches!(
        d.refused(RecordCommand::AutoClose),
        RefusalReason::AutoCloseTooEarly { .. }
    ));
    d.now += TimeDelta::days(3);
    d.ok(RecordCommand::AutoClose);
    assert_eq!(d.record().phase(), Some(Phase::Closed));
    assert_eq!(d.record().closed_at(), Some(d.now));
    assert_eq!(
        d.refused(RecordCommand::AddNote {
            kind: NoteKind::Comment,
            text: "late".into()
        }),
        RefusalReason::Final(Phase::Closed)
    );
}

#[test]
fn a_p1_incident_becomes_major_and_cannot_close_without_its_review() {
    let mut d = Incidents::logged();
    d.ok(assign());
    d.ok(classify());
    assert_eq!(
        d.refused(IncidentCommand::AssignMajorManager {
            manager: id("erin")
        }),
        RefusalReason::Rule(IncidentRule::NotMajor)
    );
    assert_eq!(
        d.ok(prioritise(Level::High, Level::High)),
        vec!["prioritised", "major_flagged"]
    );
    assert!(d.state.is_major());
    assert_eq!(
        d.refused(IncidentCommand::FlagMajor {
            reason: "twice".into()
        }),
        RefusalReason::Rule(IncidentRule::AlreadyMajor)
    );
    d.ok(IncidentCommand::AssignMajorManager {
        manager: id("erin"),
    });
    d.ok(IncidentCommand::InformManagement {
        audience: "cio".into(),
        summary: "all mail down".into(),
    });
    assert_eq!(
        d.refused(IncidentCommand::RecordMajorReview {
            findings: "early".into()
        }),
        RefusalReason::Rule(IncidentRule::ReviewNotDue)
    );
    d.ok(resolve());
    let refusal = d.run(RecordCommand::Close).expect_err("no review yet");
    assert_eq!(
        refusal.reason,
        RefusalReason::GuardFailed(Guard::MAJOR_REVIEW_DONE)
    );
    assert_eq!(
        refusal.to_string(),
        "incident R-1 (status resolved): close refused: guard major_review_done does not hold"
    );
    d.ok(IncidentCommand::RecordMajorReview {
        findings: "single point of failure".into(),
    });
    d.ok(RecordCommand::Close);
    let major = d.state.major().expect("major");
    assert_eq!(major.management_informed, 1);
    assert_eq!(major.manager, Some(id("erin")));
    assert!(major.reviewed);
}

#[test]
fn a_reopened_major_incident_needs_a_new_review_and_never_auto_close_does_not_panic() {
    let mut d = Incidents::logged();
    d.record_policy().auto_close_after = TimeDelta::MAX;
    d.ok(assign());
    d.ok(classify());
    d.ok(prioritise(Level::High, Level::High));
    d.ok(resolve());
    d.ok(IncidentCommand::RecordMajorReview {
        findings: "first".into(),
    });
    d.ok(reopen());
    assert!(
        d.state.major().is_some_and(|m| !m.reviewed),
        "reopening asks for a new review"
    );
    d.ok(resolve());
    assert_eq!(
        d.refused(RecordCommand::Close),
        RefusalReason::GuardFailed(Guard::MAJOR_REVIEW_DONE)
    );
    d.ok(IncidentCommand::RecordMajorReview {
        findings: "after the final resolution".into(),
    });
    d.now += TimeDelta::days(10_000);
    assert!(
        matches!(
            d.refused(RecordCommand::AutoClose),
            RefusalReason::AutoCloseTooEarly { .. }
        ),
        "a period too long to add means never"
    );
    d.ok(RecordCommand::Close);
    assert_eq!(d.record().phase(), Some(Phase::Closed));
}

#[test]
fn migrating_to_a_new_lifecycle_version_is_explicit_and_recorded() {
    let mut d = Incidents::logged();
    let request_lifecycle = RequestManagement::default_lifecycle();
    let other_type = request_lifecycle.reference();
    let record = d.record_policy();
    *record = record.clone().with_lifecycle(request_lifecycle);
    d.ok(assign());
    let v1 = DefinitionRef {
        name: "incident".into(),
        version: 1,
    };
    let v2 = DefinitionRef {
        name: "incident".into(),
        version: 2,
    };
    let migrate = |to: &DefinitionRef, mapping: &[(&str, &str)]| RecordCommand::MigrateLifecycle {
        to: to.clone(),
        mapping: mapping
            .iter()
            .map(|(from, to)| ((*from).to_owned(), (*to).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    };
    assert_eq!(
        d.refused(migrate(&v2, &[])),
        RefusalReason::UnmappedStatus("in_progress".into())
    );
    assert_eq!(
        d.refused(migrate(&v2, &[("in_progress", "on_hold")])),
        RefusalReason::BadMappedStatus("on_hold".into()),
        "a status of another phase"
    );
    assert_eq!(
        d.refused(migrate(&v2, &[("in_progress", "doing")])),
        RefusalReason::BadMappedStatus("doing".into()),
        "no such status"
    );
    let v9 = DefinitionRef {
        name: "incident".into(),
        version: 9,
    };
    assert_eq!(
        d.refused(migrate(&v9, &[("in_progress", "in_progress")])),
        RefusalReason::UnknownLifecycle(v9)
    );
    assert_eq!(
        d.refused(migrate(&v1, &[("in_progress", "in_progress")])),
        RefusalReason::SameLifecycle(v1.clone())
    );
    assert_eq!(
        d.refused(migrate(&other_type, &[("in_progress", "in_fulfilment")])),
        RefusalReason::LifecycleForOtherType(other_type.clone())
    );
    d.ok(migrate(&v2, &[("in_progress", "in_progress")]));
    assert_eq!(d.record().lifecycle(), Some(&v2));
    assert_eq!(d.record().status(), Some("in_progress"));
    assert!(matches!(
        d.events.last().map(|e| &e.event),
        Some(TypedEvent::Record(RecordEvent::LifecycleMigrated { from, .. })) if *from == v1
    ));
}
