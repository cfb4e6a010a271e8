//! Problem management across records: the cross-record policies run as reactors (links
//! visible on both records whatever the order of concurrent edits, workarounds noted on linked
//! open incidents, incidents awaiting a fixed problem followed up), and effectiveness reviews
//! measured from the incident trends; each exactly once across replays and nodes.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use smsys::core::records::{
    Channel, Incident, Level, LinkKind, NoteKind, Phase, Problem, RecordKind, Reference,
};
use smsys::core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, LogFilter, Position, ProjectionRunner,
    Reacting, Reactor, SequentialIds,
};
use smsys::processes::problem::reactors::{
    FixFollowUp, LinkMirror, OnFix, RecordSide, WorkaroundNotices,
};
use smsys::processes::problem::{
    EffectivenessReviewer, ProblemBoard, ProblemResolution, ReviewOutcome,
};
use smsys::processes::trend::{IncidentTrends, TrendPolicy};
use smsys::processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, ProblemCommand,
    ProblemManagement, ProblemPolicy, RecordCommand,
};
use smsys::store::{MemoryEventStore, SqliteEventStore};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .expect("valid")
}

fn reference(text: &str) -> Reference {
    text.parse().expect("valid")
}

/// A desk on one store: handlers for incidents and problems, an agent acting.
struct Desk {
    store: Arc<dyn EventStore>,
    incidents: CommandHandler<IncidentManagement>,
    problems: CommandHandler<ProblemManagement>,
    ids: SequentialIds,
    now: DateTime<Utc>,
}

impl Desk {
    fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            incidents: CommandHandler::new(store.clone(), IncidentPolicy::default()),
            problems: CommandHandler::new(store.clone(), ProblemPolicy::default()),
            store,
            ids: SequentialIds::new(1),
            now: t0(),
        }
    }

    fn meta(&self) -> CommandMeta {
        CommandMeta::new(Actor::new("agent.ana").expect("valid"))
    }

    /// Runs `command` on incident `name` a minute later; the refusal as text.
    async fn try_incident(&mut self, name: &str, command: IncidentCommand) -> Result<(), String> {
        self.now += TimeDelta::minutes(1);
        let stream = Incident::stream(&reference(name)).expect("valid");
        let ctx = Context::new(self.now, &self.ids);
        let meta = self.meta();
        let run = self.incidents.execute(&stream, &command, &meta, &ctx);
        run.await.map(|_| ()).map_err(|e| format!("{name}: {e}"))
    }

    /// Runs `command` on problem `name` a minute later; the refusal as text.
    async fn try_problem(&mut self, name: &str, command: ProblemCommand) -> Result<(), String> {
        self.now += TimeDelta::minutes(1);
        let stream = Problem::stream(&reference(name)).expect("valid");
        let ctx = Context::new(self.now, &self.ids);
        let meta = self.meta();
        let run = self.problems.execute(&stream, &command, &meta, &ctx);
        run.await.map(|_| ()).map_err(|e| format!("{name}: {e}"))
    }

    async fn incident(&mut self, name: &str, command: IncidentCommand) {
        self.try_incident(name, command)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    async fn problem(&mut self, name: &str, command: ProblemCommand) {
        self.try_problem(name, command)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Logs incident `name`, classified, prioritised, assigned (so in progress).
    async fn log_incident(&mut self, name: &str) {
        self.log_incident_on(name, &[]).await;
    }

    /// Logs incident `name` on `cis`, classified, prioritised, assigned (so in progress).
    async fn log_incident_on(&mut self, name: &str, cis: &[&str]) {
        let log = LogRecord::new(
            reference(name),
            "caller".parse().expect("valid"),
            Channel::Phone,
            "email".parse().expect("valid"),
            "mail bounces",
        )
        .affected_cis(cis.iter().map(|c| c.parse().expect("valid")).collect());
        self.incident(name, IncidentCommand::Log(log)).await;
        for command in [
            RecordCommand::Classify {
                category: "mail".into(),
                subcategory: None,
            },
            RecordCommand::Prioritise {
                impact: Level::Medium,
                urgency: Level::Medium,
            },
            RecordCommand::Assign {
                group: "desk".parse().expect("valid"),
                person: None,
            },
        ] {
            self.incident(name, command.into()).await;
        }
    }

    /// Logs problem `name` and assigns it (so in assessment).
    async fn log_problem(&mut self, name: &str) {
        let log = LogRecord::new(
            reference(name),
            "ana".parse().expect("valid"),
            Channel::Monitoring,
            "email".parse().expect("valid"),
            "recurring bounces",
        );
        self.problem(name, ProblemCommand::Log(log)).await;
        let assign = RecordCommand::Assign {
            group: "problems".parse().expect("valid"),
            person: None,
        };
        self.problem(name, assign.into()).await;
    }

    async fn incident_state(&self, name: &str) -> Incident {
        let stream = Incident::stream(&reference(name)).expect("valid");
        self.incidents.load(&stream).await.expect("loads").state
    }

    async fn problem_state(&self, name: &str) -> Problem {
        let stream = Problem::stream(&reference(name)).expect("valid");
        self.problems.load(&stream).await.expect("loads").state
    }

    async fn events(&self) -> usize {
        let mut all = self.store.read_all(Position::START, LogFilter::all());
        let mut n = 0;
        while let Some(e) = futures::StreamExt::next(&mut all).await {
            e.expect("reads");
            n += 1;
        }
        n
    }

    fn mirror(&self) -> LinkMirror {
        LinkMirror::new(
            self.store.clone(),
            Actor::new("smsys.link-mirror").expect("valid"),
        )
        .with_side(Arc::new(RecordSide::new(
            CommandHandler::<IncidentManagement>::new(
                self.store.clone(),
                IncidentPolicy::default(),
            ),
            LinkKind::INCIDENT,
        )))
        .with_side(Arc::new(RecordSide::new(
            CommandHandler::<ProblemManagement>::new(self.store.clone(), ProblemPolicy::default()),
            LinkKind::PROBLEM,
        )))
    }

    fn notices(&self) -> WorkaroundNotices {
        WorkaroundNotices::new(
            CommandHandler::new(self.store.clone(), IncidentPolicy::default()),
            Actor::new("smsys.workarounds").expect("valid"),
        )
    }

    fn follow_up(&self, on_fix: OnFix) -> FixFollowUp {
        FixFollowUp::new(
            CommandHandler::new(self.store.clone(), IncidentPolicy::default()),
            Actor::new("smsys.fix-follow-up").expect("valid"),
            on_fix,
        )
    }

    /// Catches `reactor` up with checkpoints in memory (a node that remembers nothing).
    async fn react(&self, reactor: impl Reactor) {
        let reacting = Reacting::new(reactor, Arc::new(MemoryEventStore::new()));
        ProjectionRunner::new(self.store.clone())
            .with_batch_size(7)
            .catch_up(&reacting)
            .await
            .expect("reacts");
    }

    /// Every reactor, in turn, until nothing new is recorded.
    async fn settle(&self, on_fix: &OnFix) {
        let mut before = usize::MAX;
        loop {
            let now = self.events().await;
            if now == before {
                return;
            }
            before = now;
            self.react(self.mirror()).await;
            self.react(self.notices()).await;
            self.react(self.follow_up(on_fix.clone())).await;
        }
    }
}

fn links(state: &smsys::core::records::RecordState, kind: &LinkKind) -> Vec<String> {
    let mut out: Vec<String> = state
        .links()
        .iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, t)| t.clone())
        .collect();
    out.sort();
    out
}

fn link(kind: LinkKind, target: &str) -> RecordCommand {
    RecordCommand::Link {
        kind,
        target: target.into(),
    }
}

fn unlink(kind: LinkKind, target: &str) -> RecordCommand {
    RecordCommand::Unlink {
        kind,
        target: target.into(),
    }
}

fn hold() -> RecordCommand {
    RecordCommand::Hold {
        reason: "awaiting problem".into(),
        status: None,
    }
}

/// How many work notes an incident holds that start with `prefix`.
async fn notes_from(store: &Arc<dyn EventStore>, name: &str, prefix: &str) -> usize {
    let stream = Incident::stream(&reference(name)).expect("valid");
    let mut events = store.read_stream(&stream, smsys::core::Version::FIRST);
    let mut n = 0;
    while let Some(e) = futures::StreamExt::next(&mut events).await {
        let e = e.expect("reads");
        if e.data.event_type().as_str() == "incident.noted" {
            let text = e.data.payload()["text"].as_str().unwrap_or_default();
            let kind = &e.data.payload()["kind"];
            if text.starts_with(prefix) && *kind == serde_json::json!(NoteKind::WorkNote) {
                n += 1;
            }
        }
    }
    n
}

async fn a_problem_with_its_incidents(store: Arc<dyn EventStore>, on_fix: OnFix) -> Desk {
    let mut d = Desk::new(store);
    for name in ["INC-1", "INC-2", "INC-3", "INC-4"] {
        d.log_incident(name).await;
    }
    d.log_problem("PRB-1").await;
    // Linked from either side.
    d.incident("INC-1", link(LinkKind::PROBLEM, "PRB-1").into())
        .await;
    d.problem("PRB-1", link(LinkKind::INCIDENT, "INC-2").into())
        .await;
    d.problem("PRB-1", link(LinkKind::INCIDENT, "INC-3").into())
        .await;
    d.settle(&on_fix).await;
    d
}

async fn the_policies_hold(store: Arc<dyn EventStore>) {
    let mut d = a_problem_with_its_incidents(store, OnFix::Resume).await;
    // Visible on both records.
    let problem = d.problem_state("PRB-1").await;
    assert_eq!(
        links(problem.record(), &LinkKind::INCIDENT),
        ["INC-1", "INC-2", "INC-3"]
    );
    for name in ["INC-1", "INC-2", "INC-3"] {
        let incident = d.incident_state(name).await;
        assert_eq!(
            links(incident.record(), &LinkKind::PROBLEM),
            ["PRB-1"],
            "{name}"
        );
    }
    assert!(links(d.incident_state("INC-4").await.record(), &LinkKind::PROBLEM).is_empty());

    // Unlinked on one side: gone from both.
    d.incident("INC-3", unlink(LinkKind::PROBLEM, "PRB-1").into())
        .await;
    d.settle(&OnFix::Resume).await;
    assert_eq!(
        links(d.problem_state("PRB-1").await.record(), &LinkKind::INCIDENT),
        ["INC-1", "INC-2"]
    );
    assert!(links(d.incident_state("INC-3").await.record(), &LinkKind::PROBLEM).is_empty());

    // A published workaround reaches the linked open incidents, once; an unpublished one
    // reaches nobody; a resolved incident gets no note.
    d.incident("INC-2", hold().into()).await;
    d.incident("INC-1", hold().into()).await;
    d.problem(
        "PRB-1",
        ProblemCommand::RecordWorkaround {
            text: "restart the relay".into(),
            published: false,
        },
    )
    .await;
    d.settle(&OnFix::Resume).await;
    assert_eq!(notes_from(&d.store, "INC-1", "Workaround").await, 0);
    d.problem(
        "PRB-1",
        ProblemCommand::RecordWorkaround {
            text: "flush the mail queue".into(),
            published: true,
        },
    )
    .await;
    d.settle(&OnFix::Resume).await;
    for (name, notes) in [("INC-1", 1), ("INC-2", 1), ("INC-3", 0), ("INC-4", 0)] {
        assert_eq!(
            notes_from(&d.store, name, "Workaround from problem PRB-1: flush").await,
            notes,
            "{name}"
        );
    }
    // An incident linked later gets the workaround too, from either side.
    d.incident("INC-4", link(LinkKind::PROBLEM, "PRB-1").into())
        .await;
    d.settle(&OnFix::Resume).await;
    assert_eq!(notes_from(&d.store, "INC-4", "Workaround").await, 1);

    // Unlinked and linked again: the same workaround is not noted again; nor by the reactor
    // run under a new name.
    d.incident("INC-4", unlink(LinkKind::PROBLEM, "PRB-1").into())
        .await;
    d.settle(&OnFix::Resume).await;
    d.incident("INC-4", link(LinkKind::PROBLEM, "PRB-1").into())
        .await;
    d.settle(&OnFix::Resume).await;
    d.react(d.notices().named("workaround-notices.v2")).await;
    d.react(d.follow_up(OnFix::Resume).named("fix-follow-up.v2"))
        .await;
    assert_eq!(notes_from(&d.store, "INC-4", "Workaround").await, 1);

    // Replays on fresh nodes record nothing new.
    let before = d.events().await;
    d.settle(&OnFix::Resume).await;
    d.react(d.mirror()).await;
    d.react(d.notices()).await;
    d.react(d.follow_up(OnFix::Resume)).await;
    assert_eq!(d.events().await, before);

    // The fix resumes the incidents on hold awaiting it, with a note; INC-4 was in progress.
    d.problem("PRB-1", ProblemCommand::Analyse).await;
    d.problem(
        "PRB-1",
        ProblemCommand::RecordRootCause {
            cause: "relay queue fills".into(),
            method: "five whys".into(),
            contributing_cis: Vec::new(),
        },
    )
    .await;
    d.problem("PRB-1", ProblemCommand::StartFix).await;
    d.problem(
        "PRB-1",
        RecordCommand::Resolve {
            code: ProblemResolution::FixApplied.as_str().into(),
            notes: "relay queue enlarged".into(),
        }
        .into(),
    )
    .await;
    d.settle(&OnFix::Resume).await;
    for name in ["INC-1", "INC-2", "INC-4"] {
        let incident = d.incident_state(name).await;
        assert_eq!(incident.record().phase(), Some(Phase::Active), "{name}");
    }
    assert_eq!(
        notes_from(
            &d.store,
            "INC-1",
            "Problem PRB-1 was resolved (fix_applied)"
        )
        .await,
        1
    );
    assert_eq!(
        notes_from(&d.store, "INC-4", "Problem PRB-1 was resolved").await,
        0
    );
    let before = d.events().await;
    d.settle(&OnFix::Resume).await;
    d.react(d.follow_up(OnFix::Resume)).await;
    assert_eq!(d.events().await, before);
}

#[tokio::test]
async fn problem_policies_hold_on_the_memory_store() {
    the_policies_hold(Arc::new(MemoryEventStore::new())).await;
}

#[tokio::test]
async fn problem_policies_hold_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteEventStore::open(dir.path().join("log.db"))
        .await
        .expect("opens");
    the_policies_hold(Arc::new(store)).await;
}

async fn fixed(on_fix: OnFix) -> Desk {
    let mut d =
        a_problem_with_its_incidents(Arc::new(MemoryEventStore::new()), on_fix.clone()).await;
    d.incident("INC-1", hold().into()).await;
    d.problem("PRB-1", ProblemCommand::Analyse).await;
    d.problem(
        "PRB-1",
        ProblemCommand::RecordRootCause {
            cause: "relay".into(),
            method: "logs".into(),
            contributing_cis: Vec::new(),
        },
    )
    .await;
    d.problem("PRB-1", ProblemCommand::StartFix).await;
    d.problem(
        "PRB-1",
        RecordCommand::Resolve {
            code: "vendor_patch".into(),
            notes: "patched".into(),
        }
        .into(),
    )
    .await;
    d.settle(&on_fix).await;
    d
}

#[tokio::test]
async fn a_fix_may_resolve_or_only_offer_per_policy() {
    let d = fixed(OnFix::Resolve {
        code: "solved_by_problem".into(),
    })
    .await;
    let incident = d.incident_state("INC-1").await;
    assert_eq!(incident.record().phase(), Some(Phase::Resolved));
    assert_eq!(
        incident.record().resolution().map(|r| r.code.as_str()),
        Some("solved_by_problem")
    );
    // Not on hold: left alone.
    assert_eq!(
        d.incident_state("INC-2").await.record().phase(),
        Some(Phase::Active)
    );

    let d = fixed(OnFix::Offer).await;
    assert_eq!(
        d.incident_state("INC-1").await.record().phase(),
        Some(Phase::Pending)
    );
    assert_eq!(
        notes_from(
            &d.store,
            "INC-1",
            "Problem PRB-1 was resolved (vendor_patch): patched. This incident can be resolved."
        )
        .await,
        1
    );
}

#[tokio::test]
async fn accepting_the_risk_follows_up_no_incident() {
    let mut d =
        a_problem_with_its_incidents(Arc::new(MemoryEventStore::new()), OnFix::Resume).await;
    d.incident("INC-1", hold().into()).await;
    d.problem("PRB-1", ProblemCommand::Analyse).await;
    d.problem(
        "PRB-1",
        ProblemCommand::AcceptRisk {
            reason: "relay replaced next quarter".into(),
        },
    )
    .await;
    d.settle(&OnFix::Resume).await;
    assert_eq!(
        d.incident_state("INC-1").await.record().phase(),
        Some(Phase::Pending)
    );
}

#[tokio::test]
async fn two_nodes_reacting_at_once_record_each_effect_once() {
    let mut d = Desk::new(Arc::new(MemoryEventStore::new()));
    for n in 0..6 {
        d.log_incident(&format!("INC-{n}")).await;
    }
    d.log_problem("PRB-1").await;
    for n in 0..6 {
        d.incident(&format!("INC-{n}"), link(LinkKind::PROBLEM, "PRB-1").into())
            .await;
    }
    d.problem(
        "PRB-1",
        ProblemCommand::RecordWorkaround {
            text: "flush".into(),
            published: true,
        },
    )
    .await;
    for _ in 0..3 {
        tokio::join!(
            d.react(d.mirror()),
            d.react(d.mirror()),
            d.react(d.notices()),
            d.react(d.notices()),
        );
    }
    d.settle(&OnFix::Resume).await;
    for n in 0..6 {
        let name = format!("INC-{n}");
        assert_eq!(notes_from(&d.store, &name, "Workaround").await, 1, "{name}");
    }
    assert_eq!(
        links(d.problem_state("PRB-1").await.record(), &LinkKind::INCIDENT).len(),
        6
    );
}

/// One edit of the links between incidents INC-0..2 and problems PRB-0..1, on either side.
#[derive(Debug, Clone)]
struct Edit {
    incident: usize,
    problem: usize,
    link: bool,
    on_incident: bool,
    /// Whether the mirror catches up after it.
    react: bool,
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(
        (
            0..3usize,
            0..2usize,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(incident, problem, link, on_incident, react)| Edit {
                incident,
                problem,
                link,
                on_incident,
                react,
            }),
        1..24,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the order of edits on either side and whenever the mirror runs, once it has
    /// caught up both records of every pair agree, and they say what the last edit of the pair
    /// that was recorded said.
    #[test]
    fn linked_records_agree_once_the_mirror_caught_up(edits in edits()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let mut d = Desk::new(Arc::new(MemoryEventStore::new()));
            for n in 0..3 {
                d.log_incident(&format!("INC-{n}")).await;
            }
            for n in 0..2 {
                d.log_problem(&format!("PRB-{n}")).await;
            }
            let mut last: std::collections::HashMap<(usize, usize), bool> = Default::default();
            for edit in &edits {
                let (i, p) = (format!("INC-{}", edit.incident), format!("PRB-{}", edit.problem));
                let before = d.events().await;
                match (edit.on_incident, edit.link) {
                    (true, true) => { let _ = d.try_incident(&i, link(LinkKind::PROBLEM, &p).into()).await; }
                    (true, false) => { let _ = d.try_incident(&i, unlink(LinkKind::PROBLEM, &p).into()).await; }
                    (false, true) => { let _ = d.try_problem(&p, link(LinkKind::INCIDENT, &i).into()).await; }
                    (false, false) => { let _ = d.try_problem(&p, unlink(LinkKind::INCIDENT, &i).into()).await; }
                }
                if d.events().await > before {
                    last.insert((edit.incident, edit.problem), edit.link);
                }
                if edit.react {
                    d.react(d.mirror()).await;
                }
            }
            d.react(d.mirror()).await;
            for i in 0..3 {
                let incident = d.incident_state(&format!("INC-{i}")).await;
                for p in 0..2 {
                    let problem = d.problem_state(&format!("PRB-{p}")).await;
                    let on_incident = links(incident.record(), &LinkKind::PROBLEM).contains(&format!("PRB-{p}"));
                    let on_problem = links(problem.record(), &LinkKind::INCIDENT).contains(&format!("INC-{i}"));
                    prop_assert_eq!(on_incident, on_problem, "INC-{} / PRB-{}", i, p);
                    prop_assert_eq!(on_incident, last.get(&(i, p)).copied().unwrap_or(false), "INC-{} / PRB-{}", i, p);
                }
            }
            Ok(())
        })?;
    }
}

/// The trends and the board caught up with the log.
async fn caught_up(d: &Desk) -> (Arc<IncidentTrends>, Arc<ProblemBoard>) {
    let trends = Arc::new(IncidentTrends::new(TrendPolicy::default()).expect("valid"));
    let board = Arc::new(ProblemBoard::new("problems"));
    let runner = ProjectionRunner::new(d.store.clone());
    runner.catch_up(trends.as_ref()).await.expect("trends");
    runner.catch_up(board.as_ref()).await.expect("board");
    (trends, board)
}

#[tokio::test]
async fn a_fix_is_reviewed_once_its_window_passed_and_reopened_when_it_did_not_hold() {
    let mut d = Desk::new(Arc::new(MemoryEventStore::new()));
    for n in 0..3 {
        d.log_incident_on(&format!("INC-{n}"), &["mx-01"]).await;
    }
    d.log_problem("PRB-1").await;
    d.problem("PRB-1", ProblemCommand::Analyse).await;
    d.problem(
        "PRB-1",
        ProblemCommand::RecordRootCause {
            cause: "relay queue fills".into(),
            method: "five whys".into(),
            contributing_cis: vec!["mx-01".parse().expect("valid")],
        },
    )
    .await;
    d.problem("PRB-1", ProblemCommand::StartFix).await;
    let fix = RecordCommand::Resolve {
        code: ProblemResolution::FixApplied.as_str().into(),
        notes: "queue enlarged".into(),
    };
    d.problem("PRB-1", fix.clone().into()).await;
    let fixed_at = d.now;
    let window = ProblemPolicy::default().review.window;
    let reviewer = |trends, board| {
        EffectivenessReviewer::new(board, trends, Actor::new("smsys.reviewer").expect("valid"))
    };

    // A recurrence on the CI, and an incident elsewhere, after the fix.
    d.now = fixed_at + TimeDelta::days(5);
    d.log_incident_on("INC-7", &["mx-01"]).await;
    d.log_incident_on("INC-8", &["web-01"]).await;
    let (trends, board) = caught_up(&d).await;
    let early = reviewer(trends.clone(), board.clone());
    assert!(
        early
            .due(
                &ProblemPolicy::default().review,
                fixed_at + window - TimeDelta::seconds(1)
            )
            .is_empty()
    );
    assert!(
        early
            .run(&d.problems, fixed_at + TimeDelta::days(29))
            .await
            .expect("runs")
            .is_empty()
    );

    let now = fixed_at + window + TimeDelta::hours(1);
    let outcomes = early.run(&d.problems, now).await.expect("runs");
    assert_eq!(
        outcomes,
        [ReviewOutcome::Recorded {
            problem: reference("PRB-1"),
            recurrences: vec![reference("INC-7")],
        }]
    );
    let review = d
        .problem_state("PRB-1")
        .await
        .review()
        .cloned()
        .expect("reviewed");
    assert!(!review.effective);
    assert_eq!((review.from, review.to), (fixed_at, fixed_at + window));
    // A second node whose board has not seen the review yet, and a rerun: nothing new.
    let before = d.events().await;
    let other = reviewer(trends.clone(), board.clone());
    other.run(&d.problems, now).await.expect("runs");
    let (trends, board) = caught_up(&d).await;
    assert!(
        reviewer(trends, board)
            .run(&d.problems, now)
            .await
            .expect("runs")
            .is_empty()
    );
    assert_eq!(d.events().await, before);

    // It did not hold: reopened with the evidence, fixed again, reviewed clean, closed.
    d.now = now;
    d.problem("PRB-1", ProblemCommand::ReopenIneffective).await;
    d.problem("PRB-1", ProblemCommand::StartFix).await;
    d.problem("PRB-1", fix.into()).await;
    let refixed_at = d.now;
    let (trends, board) = caught_up(&d).await;
    let later = refixed_at + window;
    let outcomes = reviewer(trends, board)
        .run(&d.problems, later)
        .await
        .expect("runs");
    assert_eq!(
        outcomes,
        [ReviewOutcome::Recorded {
            problem: reference("PRB-1"),
            recurrences: Vec::new(),
        }]
    );
    let problem = d.problem_state("PRB-1").await;
    assert!(
        problem
            .review()
            .is_some_and(|r| r.effective && r.resolved_at == refixed_at)
    );
    assert_eq!(problem.reviews(), 2);
    d.now = later;
    d.problem("PRB-1", RecordCommand::Close.into()).await;
    assert_eq!(
        d.problem_state("PRB-1").await.record().phase(),
        Some(Phase::Closed)
    );
}

#[tokio::test]
async fn the_board_refuses_a_duplicate_of_a_problem_that_is_not_open() {
    let mut d = Desk::new(Arc::new(MemoryEventStore::new()));
    for name in ["PRB-1", "PRB-2", "PRB-3"] {
        d.log_problem(name).await;
    }
    d.problem(
        "PRB-2",
        RecordCommand::Cancel {
            reason: "not a problem".into(),
        }
        .into(),
    )
    .await;
    let (_, board) = caught_up(&d).await;
    let policy = ProblemPolicy::default().with_directory(board.clone());
    let checked = CommandHandler::<ProblemManagement>::new(d.store.clone(), policy);
    let stream = Problem::stream(&reference("PRB-3")).expect("valid");
    let ctx = Context::new(d.now, &d.ids);
    let refused = checked
        .execute(
            &stream,
            &ProblemCommand::MarkDuplicate {
                of: reference("PRB-2"),
            },
            &d.meta(),
            &ctx,
        )
        .await;
    let message = refused
        .map(|_| ())
        .expect_err("PRB-2 is cancelled")
        .to_string();
    assert!(
        message.contains("PRB-2 is cancelled, not open"),
        "{message}"
    );
    checked
        .execute(
            &stream,
            &ProblemCommand::MarkDuplicate {
                of: reference("PRB-1"),
            },
            &d.meta(),
            &ctx,
        )
        .await
        .expect("PRB-1 is open");
    assert_eq!(board.len(), 3);
}

/// One step on problems PRB-0..3.
#[derive(Debug, Clone)]
enum Step {
    Assign(usize),
    Analyse(usize),
    Duplicate(usize, usize),
    Cancel(usize),
    AcceptRisk(usize),
    Close(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let p = 0..4usize;
    proptest::collection::vec(
        prop_oneof![
            p.clone().prop_map(Step::Assign),
            p.clone().prop_map(Step::Analyse),
            (p.clone(), p.clone()).prop_map(|(a, b)| Step::Duplicate(a, b)),
            p.clone().prop_map(Step::Cancel),
            p.clone().prop_map(Step::AcceptRisk),
            p.prop_map(Step::Close),
        ],
        1..30,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// With the board as the directory, every duplicate recorded names a problem that was
    /// open (new, active or pending) when it was recorded, and never itself.
    #[test]
    fn a_duplicate_names_a_live_problem(steps in steps()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let mut d = Desk::new(Arc::new(MemoryEventStore::new()));
            for n in 0..4 {
                let log = LogRecord::new(
                    reference(&format!("PRB-{n}")),
                    "ana".parse().expect("valid"),
                    Channel::Monitoring,
                    "email".parse().expect("valid"),
                    "recurring bounces",
                );
                d.problem(&format!("PRB-{n}"), ProblemCommand::Log(log)).await;
            }
            let board = Arc::new(ProblemBoard::new("problems"));
            let runner = ProjectionRunner::new(d.store.clone());
            d.problems = CommandHandler::new(
                d.store.clone(),
                ProblemPolicy::default().with_directory(board.clone()),
            );
            for step in &steps {
                runner.catch_up(board.as_ref()).await.expect("board");
                let (target, command) = match step {
                    Step::Assign(p) => (*p, RecordCommand::Assign {
                        group: "problems".parse().expect("valid"),
                        person: None,
                    }.into()),
                    Step::Analyse(p) => (*p, ProblemCommand::Analyse),
                    Step::Duplicate(p, of) => (*p, ProblemCommand::MarkDuplicate {
                        of: reference(&format!("PRB-{of}")),
                    }),
                    Step::Cancel(p) => (*p, RecordCommand::Cancel { reason: "no".into() }.into()),
                    Step::AcceptRisk(p) => (*p, ProblemCommand::AcceptRisk { reason: "ok".into() }),
                    Step::Close(p) => (*p, RecordCommand::Close.into()),
                };
                let name = format!("PRB-{target}");
                let before = d.events().await;
                let _ = d.try_problem(&name, command).await;
                let recorded = d.events().await > before;
                if let (Step::Duplicate(p, of), true) = (step, recorded) {
                    prop_assert_ne!(p, of);
                    let survivor = board
                        .get(&reference(&format!("PRB-{of}")))
                        .and_then(|s| s.record().phase());
                    prop_assert!(
                        matches!(survivor, Some(Phase::New | Phase::Active | Phase::Pending)),
                        "PRB-{} duplicated PRB-{} in {:?}", p, of, survivor
                    );
                }
            }
            // The board agrees with every problem's stream.
            runner.catch_up(board.as_ref()).await.expect("board");
            for n in 0..4 {
                let name = format!("PRB-{n}");
                prop_assert_eq!(board.get(&reference(&name)), Some(d.problem_state(&name).await));
            }
            Ok(())
        })?;
    }
}
