//! The status x command matrix of each record type: the shared commands plus the type's own,
//! tried on a record in every status of the default lifecycle, compared to a checked-in
//! expectation (`tests/expect/*_matrix.txt`; regenerate with `SMSYS_BLESS=1`, review the diff).

use std::collections::BTreeMap;
use std::fmt::{Debug, Write as _};

use chrono::TimeDelta;
use smsys_core::records::{
    DefinitionRef, Escalation, Level, LinkKind, NoteKind, Phase, Priority, RecordEvent, RecordKind,
    TransitionDetail, TypedEvent,
};
use smsys_core::{Context, SequentialIds};
use smsys_processes::{
    IncidentManagement, KnownErrorManagement, ProblemManagement, RecordCommand, RefusalReason,
    RequestManagement,
};

use crate::harness::{Desk, Kind, actor, attribute, id, log_input, t0};

/// A command of the matrix: the log command, a shared one or one of the type's own.
pub(crate) enum Sample<C> {
    Log,
    Shared(RecordCommand),
    Own(C),
}

/// One of each shared command (two notes kinds and both escalations).
fn shared_commands() -> Vec<RecordCommand> {
    use RecordCommand as C;
    vec![
        C::Classify {
            category: "network".into(),
            subcategory: Some("smtp".into()),
        },
        C::Prioritise {
            impact: Level::High,
            urgency: Level::Low,
        },
        C::OverridePriority {
            priority: Priority::new(2).expect("valid"),
            reason: "vip caller".into(),
        },
        C::Assign {
            group: id("network"),
            person: Some(id("bob")),
        },
        C::Unassign {
            reason: "wrong group".into(),
        },
        C::Start,
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
            kind: NoteKind::Comment,
            text: "we are on it".into(),
        },
        C::AddNote {
            kind: NoteKind::CallerUpdate,
            text: "still failing".into(),
        },
        C::Escalate {
            escalation: Escalation::Functional {
                to_group: id("network-l2"),
            },
            reason: "needs l2".into(),
        },
        C::Escalate {
            escalation: Escalation::Hierarchical {
                to_manager: Some(id("erin")),
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
            kind: LinkKind::PROBLEM,
            target: "PRB-1".into(),
        },
        C::Unlink {
            kind: LinkKind::PROBLEM,
            target: "PRB-0".into(),
        },
        C::SetAttribute {
            name: attribute("vendor"),
            value: "globex".into(),
        },
        C::RemoveAttribute {
            name: attribute("vendor"),
        },
        C::MigrateLifecycle {
            to: DefinitionRef {
                name: String::new(),
                version: 2,
            },
            mapping: BTreeMap::new(),
        },
    ]
}

/// The log command, every shared command, then the type's own.
pub(crate) fn samples<K: Kind>() -> Vec<Sample<K::Command>> {
    std::iter::once(Sample::Log)
        .chain(shared_commands().into_iter().map(Sample::Shared))
        .chain(K::own_commands().into_iter().map(Sample::Own))
        .collect()
}

impl<C: Clone> Sample<C> {
    /// The command for `state`: a migration maps the record's own lifecycle and status to
    /// version 2 of that lifecycle; the type adapts its own commands.
    pub(crate) fn command<K>(&self, state: &K::Record) -> K::Command
    where
        K: Kind<Command = C>,
    {
        match self {
            Sample::Log => K::log(log_input()),
            Sample::Shared(RecordCommand::MigrateLifecycle { .. }) => {
                let record = state.record();
                let from = record.lifecycle().expect("logged");
                let status = record.status().expect("logged").to_owned();
                RecordCommand::MigrateLifecycle {
                    to: DefinitionRef {
                        name: from.name.clone(),
                        version: 2,
                    },
                    mapping: BTreeMap::from([(status.clone(), status)]),
                }
                .into()
            }
            Sample::Shared(command) => command.clone().into(),
            Sample::Own(command) => K::adapt(command, state),
        }
    }

    fn label<K: Kind<Command = C>>(&self) -> String {
        match self {
            Sample::Log => "log".into(),
            Sample::Shared(RecordCommand::AddNote { kind, .. }) => format!("add note ({kind:?})"),
            Sample::Shared(RecordCommand::Escalate { escalation, .. }) => match escalation {
                Escalation::Functional { .. } => "escalate (functional)".into(),
                Escalation::Hierarchical { .. } => "escalate (hierarchical)".into(),
            },
            Sample::Shared(command) => command.name().into(),
            Sample::Own(command) => K::label(command),
        }
    }
}

/// A record of type `K` in `status` of its default lifecycle: logged with `vendor = acme`,
/// classified, prioritised P3, assigned, linked to problem PRB-0, with the type's own set-up
/// events (requests: an open task, and approval asked when awaiting it).
fn record_in<K: Kind>(status: &str) -> K::Record {
    let mut desk = Desk::<K>::new();
    desk.ok(K::log(log_input().attribute(attribute("vendor"), "acme")));
    let phase = K::default_lifecycle()
        .status(status)
        .expect("a status of the lifecycle")
        .phase;
    let mut events: Vec<TypedEvent<K::Record>> = vec![
        RecordEvent::Classified {
            category: "mail".into(),
            subcategory: None,
        }
        .into(),
        RecordEvent::Prioritised {
            impact: Level::Medium,
            urgency: Level::Medium,
            priority: Priority::new(3).expect("valid"),
            matrix_version: 1,
        }
        .into(),
        RecordEvent::Assigned {
            group: id("desk"),
            person: None,
            reassignment: false,
        }
        .into(),
        RecordEvent::Linked {
            kind: LinkKind::PROBLEM,
            target: "PRB-0".into(),
        }
        .into(),
    ];
    events.extend(K::own_setup(status).into_iter().map(TypedEvent::Own));
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
        events.push(
            RecordEvent::Transitioned {
                transition: "setup".into(),
                from: "new".into(),
                to: status.into(),
                phase,
                detail,
                at: t0(),
            }
            .into(),
        );
    }
    desk.given(events);
    desk.state
}

/// The variant name of a refusal reason (of the type's own rule, for `Rule`).
fn reason_name<R: Debug>(reason: &RefusalReason<R>) -> String {
    let debug = if let RefusalReason::Rule(rule) = reason {
        format!("{rule:?}")
    } else {
        format!("{reason:?}")
    };
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Every status x command of `K`'s default lifecycle, decided ten days after set-up by
/// `carol` (an approver of the requests awaiting approval).
fn matrix<K: Kind>() -> String {
    let policy = K::policy();
    let ids = SequentialIds::new(0);
    let carol = actor("carol");
    let ctx = Context::new(t0() + TimeDelta::days(10), &ids).with_actor(&carol);
    let record_type = K::Record::RECORD_TYPE.as_str().replace('_', " ");
    let mut out =
        format!("# {record_type} lifecycle: status x command -> recorded events or refusal\n");
    for status in K::default_lifecycle().statuses() {
        let record = record_in::<K>(&status.name);
        for sample in samples::<K>() {
            let command = sample.command::<K>(&record);
            let outcome = match K::decide(&record, &command, &policy, &ctx) {
                Ok(events) => events
                    .iter()
                    .map(TypedEvent::name)
                    .collect::<Vec<_>>()
                    .join(" + "),
                Err(refusal) => format!("refused: {}", reason_name(&refusal.reason)),
            };
            let _ = writeln!(
                out,
                "{:<18} {:<30} {}",
                status.name,
                sample.label::<K>(),
                outcome
            );
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
    check_expectation("incident_matrix.txt", &matrix::<IncidentManagement>());
}

#[test]
fn request_status_command_matrix_matches_the_checked_in_expectation() {
    check_expectation("request_matrix.txt", &matrix::<RequestManagement>());
}

#[test]
fn problem_status_command_matrix_matches_the_checked_in_expectation() {
    check_expectation("problem_matrix.txt", &matrix::<ProblemManagement>());
}

#[test]
fn known_error_status_command_matrix_matches_the_checked_in_expectation() {
    check_expectation("known_error_matrix.txt", &matrix::<KnownErrorManagement>());
}
