//! Service-desk records: the status x command matrix, invariants under random commands, and
//! the rules around major incidents, approvals, tasks, auto-close and lifecycle migration.

#![allow(
    clippy::expect_used,
    clippy::wildcard_enum_match_arm,
    clippy::needless_pass_by_value,
    reason = "test helpers: stop at the first broken expectation, take commands by value"
)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use smsys_core::{
    Aggregate, Channel, Context, DefinitionRef, Escalation, Level, LinkKind, NoteKind, Phase,
    Priority, RecordEvent, RecordType, SequentialIds, TransitionDetail, TypedRecordEvent,
};
use smsys_processes::lifecycle::LifecycleDefinition;
use smsys_processes::{
    DeskPolicy, Incident, Lifecycle, Record, RecordCommand, RecordKind, RefusalReason,
    ServiceRequest,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid")
}

/// The default policy plus a version 2 of each lifecycle (same statuses), to migrate to.
fn policy() -> DeskPolicy {
    let mut policy = DeskPolicy::default();
    for l in [
        Lifecycle::default_incident(),
        Lifecycle::default_service_request(),
    ] {
        let mut d: LifecycleDefinition = l.definition().clone();
        d.version = 2;
        policy.lifecycles = policy.lifecycles.with(Lifecycle::new(d).expect("valid v2"));
    }
    policy
}

fn log_command(record_type: RecordType) -> RecordCommand {
    RecordCommand::Log {
        reference: "R-1".into(),
        caller: "ana".into(),
        channel: Channel::Email,
        service: "email".into(),
        affected_cis: vec!["mx-01".into()],
        summary: "mail bounces".into(),
        description: "since 08:00".into(),
        catalogue_item: (record_type == RecordType::ServiceRequest).then(|| "new-mailbox".into()),
        fulfilment_instructions: None,
    }
}

fn ev(record_type: RecordType, event: RecordEvent) -> TypedRecordEvent {
    TypedRecordEvent { record_type, event }
}

/// A record of kind `K` in `status`, logged, classified, prioritised P3, assigned, and (for
/// requests) with approval asked and one open task.
fn record_in<K: RecordKind>(status: &str) -> Record<K> {
    let policy = policy();
    let lifecycle_ref = match K::TYPE {
        RecordType::Incident => policy.incident_lifecycle.clone(),
        RecordType::ServiceRequest => policy.request_lifecycle.clone(),
    };
    let lifecycle = policy
        .lifecycles
        .get(&lifecycle_ref)
        .expect("known")
        .clone();
    let phase = lifecycle
        .status(status)
        .expect("a status of the lifecycle")
        .phase;
    let t = K::TYPE;
    let mut events = vec![
        RecordEvent::Logged {
            reference: "R-1".into(),
            lifecycle: lifecycle_ref,
            status: lifecycle.initial().name.clone(),
            caller: "ana".into(),
            channel: Channel::Email,
            service: "email".into(),
            affected_cis: vec![],
            summary: "s".into(),
            description: "d".into(),
            catalogue_item: None,
            fulfilment_instructions: None,
        },
        RecordEvent::Classified {
            category: "mail".into(),
        },
        RecordEvent::Prioritised {
            impact: Level::Medium,
            urgency: Level::Medium,
            priority: Priority::new(3).expect("valid"),
            matrix_version: 1,
        },
        RecordEvent::Assigned {
            group: "desk".into(),
            person: None,
            reassignment: false,
        },
    ];
    if t == RecordType::ServiceRequest {
        events.push(RecordEvent::TaskAdded {
            task: "t0".into(),
            description: "create mailbox".into(),
        });
        if status == "awaiting_approval" {
            events.push(RecordEvent::ApprovalRequested {
                approvers: vec!["carol".into(), "dave".into()],
                quorum: 1,
            });
        }
    }
    let detail = match phase {
        Phase::Pending => TransitionDetail::Hold {
            reason: "waiting".into(),
        },
        Phase::Resolved => TransitionDetail::Resolution {
            code: "fixed".into(),
            notes: "done".into(),
        },
        Phase::Closed => TransitionDetail::Closure { automatic: false },
        Phase::Cancelled => TransitionDetail::Cancellation {
            reason: "duplicate".into(),
        },
        Phase::New | Phase::Active => TransitionDetail::Plain,
    };
    if phase != Phase::New {
        events.push(RecordEvent::Transitioned {
            transition: "setup".into(),
            from: "new".into(),
            to: status.into(),
            phase,
            detail,
            at: t0(),
        });
    }
    let mut record = Record::<K>::default();
    for e in events {
        record.evolve(&ev(t, e));
    }
    record
}

fn sample_commands() -> Vec<RecordCommand> {
    use RecordCommand as C;
    let p2 = Priority::new(2).expect("valid");
    vec![
        log_command(RecordType::Incident),
        C::Classify {
            category: "network".into(),
        },
        C::Prioritise {
            impact: Level::High,
            urgency: Level::Low,
        },
        C::OverridePriority {
            priority: p2,
            reason: "vip caller".into(),
        },
        C::Assign {
            group: "network".into(),
            person: Some("bob".into()),
        },
        C::Hold {
            reason: "awaiting caller".into(),
            status: None,
        },
        C::Resume,
        C::AddNote {
            kind: NoteKind::WorkNote,
            text: "checked logs".into(),
        },
        C::AddNote {
            kind: NoteKind::CallerUpdate,
            text: "still failing".into(),
        },
        C::Escalate {
            escalation: Escalation::Functional {
                to_group: "network-l2".into(),
            },
            reason: "needs l2".into(),
        },
        C::Escalate {
            escalation: Escalation::Hierarchical {
                to_manager: "erin".into(),
            },
            reason: "vip".into(),
        },
        C::Resolve {
            code: "fixed".into(),
            notes: "restarted mx".into(),
        },
        C::Reopen {
            reason: "broken again".into(),
        },
        C::Close,
        C::AutoClose,
        C::Cancel {
            reason: "duplicate of R-0".into(),
        },
        C::Link {
            kind: LinkKind::Problem,
            target: "PRB-1".into(),
        },
        C::FlagMajor {
            reason: "all mail down".into(),
        },
        C::AssignMajorManager {
            manager: "erin".into(),
        },
        C::InformManagement {
            audience: "cio".into(),
            summary: "mail down".into(),
        },
        C::RecordMajorReview {
            findings: "single mx".into(),
        },
        C::RequestApproval {
            approvers: vec!["carol".into(), "dave".into()],
            quorum: 1,
        },
        C::Approve {
            approver: "carol".into(),
        },
        C::Reject {
            approver: "carol".into(),
            reason: "no budget".into(),
        },
        C::AddTask {
            task: "t1".into(),
            description: "licence".into(),
        },
        C::FinishTask { task: "t0".into() },
        C::MigrateLifecycle {
            to: DefinitionRef {
                name: String::new(),
                version: 2,
            },
            mapping: BTreeMap::new(),
        },
    ]
}

/// Fills in the parts of a sample command that depend on the record (type, status).
fn adapt<K: RecordKind>(command: &RecordCommand, record: &Record<K>) -> RecordCommand {
    match command {
        RecordCommand::Log { .. } => log_command(K::TYPE),
        RecordCommand::MigrateLifecycle { .. } => {
            let from = record.lifecycle().expect("logged").clone();
            let status = record.status().expect("logged").to_owned();
            RecordCommand::MigrateLifecycle {
                to: DefinitionRef {
                    name: from.name,
                    version: 2,
                },
                mapping: BTreeMap::from([(status.clone(), status)]),
            }
        }
        other => other.clone(),
    }
}

fn label(command: &RecordCommand) -> String {
    match command {
        RecordCommand::AddNote { kind, .. } => format!("add note ({kind:?})"),
        RecordCommand::Escalate {
            escalation: Escalation::Functional { .. },
            ..
        } => "escalate (functional)".into(),
        RecordCommand::Escalate {
            escalation: Escalation::Hierarchical { .. },
            ..
        } => "escalate (hierarchical)".into(),
        other => other.name().to_owned(),
    }
}

fn reason_name(reason: &RefusalReason) -> String {
    let debug = format!("{reason:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn matrix<K: RecordKind>() -> String {
    let policy = policy();
    let ids = SequentialIds::new(0);
    let ctx = Context::new(t0() + TimeDelta::days(10), &ids);
    let lifecycle = match K::TYPE {
        RecordType::Incident => Lifecycle::default_incident(),
        RecordType::ServiceRequest => Lifecycle::default_service_request(),
    };
    let mut out = format!(
        "# {} lifecycle: status x command -> recorded events or refusal\n",
        K::TYPE
    );
    for status in lifecycle.statuses() {
        let record = record_in::<K>(&status.name);
        for command in sample_commands() {
            let command = adapt(&command, &record);
            let outcome = match record.decide(&command, &policy, &ctx) {
                Ok(events) => events
                    .iter()
                    .map(|e| e.event.name())
                    .collect::<Vec<_>>()
                    .join(" + "),
                Err(refusal) => format!("refused: {}", reason_name(&refusal.reason)),
            };
            out.push_str(&format!(
                "{:<18} {:<30} {}\n",
                status.name,
                label(&command),
                outcome
            ));
        }
    }
    out
}

fn check_expectation(name: &str, actual: &str) {
    let path = format!("{}/tests/expect/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("SMSYS_BLESS").is_some() {
        std::fs::write(&path, actual).expect("writes the expectation");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .find(|(e, a)| e != a)
            .map(|(e, a)| format!("expected: {e}\n  actual: {a}"))
            .unwrap_or_else(|| "the line counts differ".into());
        panic!(
            "{path} no longer matches the rules ({first}).\nIf the change is intended, rerun with SMSYS_BLESS=1 and review the diff."
        );
    }
}

#[test]
fn incident_status_command_matrix_matches_the_checked_in_expectation() {
    check_expectation(
        "incident_matrix.txt",
        &matrix::<smsys_processes::IncidentKind>(),
    );
}

#[test]
fn request_status_command_matrix_matches_the_checked_in_expectation() {
    check_expectation(
        "request_matrix.txt",
        &matrix::<smsys_processes::RequestKind>(),
    );
}

// ---- rules ----------------------------------------------------------------------------------

struct Desk<K: RecordKind> {
    record: Record<K>,
    events: Vec<TypedRecordEvent>,
    policy: DeskPolicy,
    ids: SequentialIds,
    now: DateTime<Utc>,
}

impl<K: RecordKind> Desk<K> {
    fn new() -> Self {
        Self {
            record: Record::default(),
            events: Vec::new(),
            policy: policy(),
            ids: SequentialIds::new(0),
            now: t0(),
        }
    }
    fn run(
        &mut self,
        command: RecordCommand,
    ) -> Result<Vec<&'static str>, smsys_processes::Refusal> {
        let ctx = Context::new(self.now, &self.ids);
        let events = self.record.decide(&command, &self.policy, &ctx)?;
        let names = events.iter().map(|e| e.event.name()).collect();
        for e in events {
            self.record.evolve(&e);
            self.events.push(e);
        }
        Ok(names)
    }
    fn ok(&mut self, command: RecordCommand) -> Vec<&'static str> {
        let name = command.name();
        self.run(command)
            .unwrap_or_else(|r| panic!("{name} should be accepted: {r}"))
    }
    fn refused(&mut self, command: RecordCommand) -> RefusalReason {
        self.run(command).expect_err("should be refused").reason
    }
}

fn resolve() -> RecordCommand {
    RecordCommand::Resolve {
        code: "fixed".into(),
        notes: "restarted".into(),
    }
}

#[test]
fn an_incident_walks_its_lifecycle_and_refusals_say_why() {
    let mut d = Desk::<smsys_processes::IncidentKind>::new();
    d.ok(log_command(RecordType::Incident));
    assert_eq!(d.record.status(), Some("new"));
    let reason = d.refused(resolve());
    assert_eq!(
        reason,
        RefusalReason::NoTransition {
            lifecycle: d.policy.incident_lifecycle.clone(),
            trigger: smsys_processes::lifecycle::Trigger::Resolve
        }
    );
    assert_eq!(
        d.ok(RecordCommand::Assign {
            group: "desk".into(),
            person: None
        }),
        vec!["assigned", "transitioned"],
        "assigning starts work"
    );
    assert_eq!(d.record.status(), Some("in_progress"));
    let refusal = d.run(resolve()).expect_err("no category yet");
    assert_eq!(
        refusal.to_string(),
        "incident R-1 (status in_progress): resolve refused: the category is missing"
    );
    d.ok(RecordCommand::Classify {
        category: "mail".into(),
    });
    d.ok(RecordCommand::Prioritise {
        impact: Level::Medium,
        urgency: Level::High,
    });
    assert_eq!(d.record.priority().map(Priority::get), Some(2));
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
    assert_eq!(d.record.phase(), Some(Phase::Pending));
    assert_eq!(
        d.ok(RecordCommand::AddNote {
            kind: NoteKind::CallerUpdate,
            text: "tried again".into()
        }),
        vec!["noted", "transitioned"],
        "a caller update resumes work"
    );
    assert_eq!(d.record.phase(), Some(Phase::Active));
    assert_eq!(
        d.refused(RecordCommand::Resolve {
            code: "fixed".into(),
            notes: String::new()
        }),
        RefusalReason::MissingInput("resolution notes")
    );
    d.ok(resolve());
    d.ok(RecordCommand::Reopen {
        reason: "again".into(),
    });
    d.ok(resolve());
    assert_eq!(d.record.reopen_count(), 1);
    assert!(matches!(
        d.refused(RecordCommand::AutoClose),
        RefusalReason::AutoCloseTooEarly { .. }
    ));
    d.now += TimeDelta::days(3);
    d.ok(RecordCommand::AutoClose);
    assert_eq!(d.record.phase(), Some(Phase::Closed));
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
    let mut d = Desk::<smsys_processes::IncidentKind>::new();
    d.ok(log_command(RecordType::Incident));
    d.ok(RecordCommand::Assign {
        group: "desk".into(),
        person: None,
    });
    d.ok(RecordCommand::Classify {
        category: "mail".into(),
    });
    assert_eq!(
        d.refused(RecordCommand::AssignMajorManager {
            manager: "erin".into()
        }),
        RefusalReason::NotMajor
    );
    assert_eq!(
        d.ok(RecordCommand::Prioritise {
            impact: Level::High,
            urgency: Level::High
        }),
        vec!["prioritised", "major_flagged"]
    );
    assert!(d.record.is_major());
    d.ok(RecordCommand::AssignMajorManager {
        manager: "erin".into(),
    });
    d.ok(RecordCommand::InformManagement {
        audience: "cio".into(),
        summary: "all mail down".into(),
    });
    assert_eq!(
        d.refused(RecordCommand::RecordMajorReview {
            findings: "early".into()
        }),
        RefusalReason::ReviewNotDue
    );
    d.ok(resolve());
    assert_eq!(
        d.refused(RecordCommand::Close),
        RefusalReason::GuardFailed(smsys_processes::lifecycle::Guard::MajorReviewDone)
    );
    d.ok(RecordCommand::RecordMajorReview {
        findings: "single point of failure".into(),
    });
    d.ok(RecordCommand::Close);
    assert_eq!(d.record.management_informed(), 1);
}

#[test]
fn a_reopened_major_incident_needs_a_new_review_and_never_auto_close_does_not_panic() {
    let mut d = Desk::<smsys_processes::IncidentKind>::new();
    d.policy.auto_close_after = TimeDelta::MAX;
    d.ok(log_command(RecordType::Incident));
    d.ok(RecordCommand::Assign {
        group: "desk".into(),
        person: None,
    });
    d.ok(RecordCommand::Classify {
        category: "mail".into(),
    });
    d.ok(RecordCommand::Prioritise {
        impact: Level::High,
        urgency: Level::High,
    });
    d.ok(resolve());
    d.ok(RecordCommand::RecordMajorReview {
        findings: "first".into(),
    });
    d.ok(RecordCommand::Reopen {
        reason: "again".into(),
    });
    d.ok(resolve());
    assert_eq!(
        d.refused(RecordCommand::Close),
        RefusalReason::GuardFailed(smsys_processes::lifecycle::Guard::MajorReviewDone)
    );
    d.ok(RecordCommand::RecordMajorReview {
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
}

#[test]
fn requests_need_approval_from_others_and_finished_tasks() {
    let mut d = Desk::<smsys_processes::RequestKind>::new();
    let mut log = log_command(RecordType::ServiceRequest);
    if let RecordCommand::Log { catalogue_item, .. } = &mut log {
        *catalogue_item = None;
    }
    assert_eq!(
        d.refused(log),
        RefusalReason::MissingInput("catalogue item")
    );
    d.ok(log_command(RecordType::ServiceRequest));
    assert!(matches!(
        d.refused(RecordCommand::RequestApproval {
            approvers: vec!["carol".into()],
            quorum: 2
        }),
        RefusalReason::InvalidQuorum {
            quorum: 2,
            approvers: 1
        }
    ));
    d.ok(RecordCommand::RequestApproval {
        approvers: vec!["ana".into(), "carol".into(), "dave".into()],
        quorum: 2,
    });
    assert_eq!(d.record.status(), Some("awaiting_approval"));
    assert_eq!(
        d.refused(RecordCommand::Approve {
            approver: "ana".into()
        }),
        RefusalReason::SelfApproval("ana".into())
    );
    assert_eq!(
        d.refused(RecordCommand::Approve {
            approver: "mallory".into()
        }),
        RefusalReason::NotAnApprover("mallory".into())
    );
    assert_eq!(
        d.ok(RecordCommand::Approve {
            approver: "carol".into()
        }),
        vec!["approval_given"]
    );
    assert_eq!(
        d.refused(RecordCommand::Approve {
            approver: "carol".into()
        }),
        RefusalReason::AlreadyApproved("carol".into())
    );
    assert_eq!(
        d.ok(RecordCommand::Approve {
            approver: "dave".into()
        }),
        vec!["approval_given", "approved", "transitioned"]
    );
    assert_eq!(d.record.status(), Some("in_fulfilment"));
    d.ok(RecordCommand::AddTask {
        task: "t1".into(),
        description: "create mailbox".into(),
    });
    d.ok(RecordCommand::AddTask {
        task: "t2".into(),
        description: "send credentials".into(),
    });
    d.ok(RecordCommand::FinishTask { task: "t1".into() });
    assert_eq!(
        d.refused(resolve()),
        RefusalReason::GuardFailed(smsys_processes::lifecycle::Guard::AllTasksFinished)
    );
    d.ok(RecordCommand::FinishTask { task: "t2".into() });
    assert_eq!(
        d.refused(RecordCommand::FinishTask { task: "t2".into() }),
        RefusalReason::TaskAlreadyFinished("t2".into())
    );
    d.ok(resolve());
    assert_eq!(d.record.status(), Some("fulfilled"));

    let mut r = Desk::<smsys_processes::RequestKind>::new();
    r.ok(log_command(RecordType::ServiceRequest));
    r.ok(RecordCommand::RequestApproval {
        approvers: vec!["carol".into()],
        quorum: 1,
    });
    r.ok(RecordCommand::Reject {
        approver: "carol".into(),
        reason: "no budget".into(),
    });
    assert_eq!(r.record.status(), Some("rejected"));
    assert_eq!(r.record.phase(), Some(Phase::Cancelled));
}

#[test]
fn catalogue_items_that_need_approval_are_not_fulfilled_without_it() {
    let mut d = Desk::<smsys_processes::RequestKind>::new();
    d.policy.approval_required.insert("new-mailbox".into());
    d.ok(log_command(RecordType::ServiceRequest));
    assert_eq!(
        d.ok(RecordCommand::Assign {
            group: "desk".into(),
            person: None
        }),
        vec!["assigned"],
        "assigning does not start fulfilment"
    );
    assert_eq!(d.record.status(), Some("new"));
    d.ok(RecordCommand::AddTask {
        task: "t1".into(),
        description: "create".into(),
    });
    d.ok(RecordCommand::FinishTask { task: "t1".into() });
    let refusal = d.run(resolve()).expect_err("not approved");
    assert_eq!(
        refusal.reason,
        RefusalReason::GuardFailed(smsys_processes::lifecycle::Guard::Approved)
    );
    assert_eq!(
        refusal.to_string(),
        "service request R-1 (status new): resolve refused: it requires an approval"
    );
    d.ok(RecordCommand::RequestApproval {
        approvers: vec!["carol".into()],
        quorum: 1,
    });
    d.ok(RecordCommand::Approve {
        approver: "carol".into(),
    });
    assert_eq!(d.record.status(), Some("in_fulfilment"));
    d.ok(resolve());

    let mut free = Desk::<smsys_processes::RequestKind>::new();
    free.ok(log_command(RecordType::ServiceRequest));
    assert_eq!(
        free.ok(RecordCommand::Assign {
            group: "desk".into(),
            person: None
        }),
        vec!["assigned", "transitioned"],
        "other items start at once"
    );
}

#[test]
fn migrating_to_a_new_lifecycle_version_is_explicit_and_recorded() {
    let mut d = Desk::<smsys_processes::IncidentKind>::new();
    d.ok(log_command(RecordType::Incident));
    d.ok(RecordCommand::Assign {
        group: "desk".into(),
        person: None,
    });
    let v2 = DefinitionRef {
        name: "incident".into(),
        version: 2,
    };
    let unmapped = RecordCommand::MigrateLifecycle {
        to: v2.clone(),
        mapping: BTreeMap::new(),
    };
    assert_eq!(
        d.refused(unmapped),
        RefusalReason::UnmappedStatus("in_progress".into())
    );
    let wrong_phase = RecordCommand::MigrateLifecycle {
        to: v2.clone(),
        mapping: BTreeMap::from([("in_progress".into(), "on_hold".into())]),
    };
    assert_eq!(
        d.refused(wrong_phase),
        RefusalReason::BadMappedStatus("on_hold".into())
    );
    let unknown = RecordCommand::MigrateLifecycle {
        to: DefinitionRef {
            name: "incident".into(),
            version: 9,
        },
        mapping: BTreeMap::new(),
    };
    assert!(matches!(
        d.refused(unknown),
        RefusalReason::UnknownLifecycle(_)
    ));
    d.ok(RecordCommand::MigrateLifecycle {
        to: v2.clone(),
        mapping: BTreeMap::from([("in_progress".into(), "in_progress".into())]),
    });
    assert_eq!(d.record.lifecycle(), Some(&v2));
    assert!(matches!(
        d.events.last().map(|e| &e.event),
        Some(RecordEvent::LifecycleMigrated { .. })
    ));
}

// ---- invariants under random command sequences -----------------------------------------------

fn command_strategy() -> impl Strategy<Value = RecordCommand> {
    let samples = sample_commands();
    (0..samples.len()).prop_map(move |i| samples[i].clone())
}

fn check_invariants<K: RecordKind>(
    commands: Vec<(RecordCommand, u8)>,
) -> Result<(), TestCaseError> {
    let mut d = Desk::<K>::new();
    d.ok(log_command(K::TYPE));
    let mut reopens = 0;
    for (command, hours) in commands {
        d.now += TimeDelta::hours(i64::from(hours));
        let before = d.record.clone();
        let command = adapt(&command, &d.record);
        match d.run(command) {
            Ok(names) => {
                prop_assert!(
                    !before.phase().is_some_and(Phase::is_final),
                    "a final record accepted a command"
                );
                for e in d.events.iter().rev().take(names.len()) {
                    if let RecordEvent::Transitioned { phase, detail, .. } = &e.event {
                        if *phase == Phase::Closed {
                            prop_assert_eq!(
                                before.phase(),
                                Some(Phase::Resolved),
                                "closed without being resolved"
                            );
                            prop_assert!(before.resolution().is_some());
                        }
                        if matches!(detail, TransitionDetail::Reopen { .. }) {
                            reopens += 1;
                        }
                    }
                }
            }
            Err(_) => prop_assert_eq!(&d.record, &before, "a refusal changed the record"),
        }
        prop_assert_eq!(d.record.reopen_count(), reopens);
        let lifecycle = d
            .policy
            .lifecycles
            .get(d.record.lifecycle().expect("logged"))
            .expect("known");
        let status_phase = lifecycle
            .status(d.record.status().expect("logged"))
            .map(|s| s.phase);
        prop_assert_eq!(
            status_phase,
            d.record.phase(),
            "the phase is the current status's phase"
        );
    }
    let mut replayed = Record::<K>::default();
    for e in &d.events {
        replayed.evolve(e);
    }
    prop_assert_eq!(replayed, d.record, "replay reproduces the state");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incident_invariants_hold(commands in proptest::collection::vec((command_strategy(), 0u8..48), 1..60)) {
        check_invariants::<smsys_processes::IncidentKind>(commands)?;
    }

    #[test]
    fn request_invariants_hold(commands in proptest::collection::vec((command_strategy(), 0u8..48), 1..60)) {
        check_invariants::<smsys_processes::RequestKind>(commands)?;
    }
}

#[test]
fn incident_and_request_aliases_are_the_record_types() {
    assert_eq!(Incident::CATEGORY, "incident");
    assert_eq!(ServiceRequest::CATEGORY, "request");
}
