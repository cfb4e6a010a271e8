//! A record type defined entirely in this file: an improvement suggestion with its own events,
//! state, commands, stages, guard and lifecycle, plugged into the record framework without
//! editing any module of the library, and run through the command handler on SQLite.
//!
//! The type: a suggestion is submitted (stage `submitted`), evaluated (`evaluate`), put to a
//! vote (`vote`, a pending phase), accepted once two people other than its author voted for it
//! (`accepted`), then implemented (`implemented`) or declined.

#![allow(
    clippy::expect_used,
    clippy::wildcard_enum_match_arm,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use smsys::core::records::{
    Channel, Logged, OwnEvents, PersonId, Phase, RecordEvent, RecordKind, RecordState, RecordType,
    TransitionDetail, TypedEvent,
};
use smsys::core::{
    Actor, Aggregate, CommandError, CommandHandler, CommandMeta, Context, EventSourced, EventStore,
    SequentialIds, Stamp, Version,
};
use smsys::processes::lifecycle::{
    Guard, Lifecycle, LifecycleBuilder, LifecycleError, StageRule, Trigger, TriggerRule,
    Vocabulary, desk_triggers,
};
use smsys::processes::record::{
    Decision, LogRecord, RecordCommand, RecordPolicy, RecordRules, Refusal, RefusalReason,
    decide_shared, log_record, refuse, transition,
};
use smsys::processes::sla::{SlaEngine, load_history};
use smsys::store::SqliteEventStore;

// ---- the persisted contract: events and state ----

/// The suggestion's own events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
enum SuggestionEvent {
    Voted { by: PersonId, up: bool },
}

impl OwnEvents for SuggestionEvent {
    const NAMES: &'static [&'static str] = &["voted"];
    fn name(&self) -> &'static str {
        match self {
            SuggestionEvent::Voted { .. } => "voted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct Suggestion {
    record: RecordState,
    votes_for: Vec<PersonId>,
    votes_against: Vec<PersonId>,
}

impl RecordKind for Suggestion {
    const RECORD_TYPE: RecordType = RecordType::from_static("suggestion");
    type Logged = Logged;
    type Own = SuggestionEvent;
    fn record(&self) -> &RecordState {
        &self.record
    }
}

impl EventSourced for Suggestion {
    const CATEGORY: &'static str = "suggestion";
    type Event = TypedEvent<Suggestion>;
    fn evolve(&mut self, event: &Self::Event, stamp: Stamp<'_>) {
        match event {
            TypedEvent::Logged(logged) => self.record.log(logged, stamp),
            TypedEvent::Record(e) => self.record.apply(e, stamp),
            TypedEvent::Own(SuggestionEvent::Voted { by, up }) => {
                let votes = if *up {
                    &mut self.votes_for
                } else {
                    &mut self.votes_against
                };
                votes.push(by.clone());
            }
        }
    }
}

// ---- the rules: commands, vocabulary, lifecycle, decide ----

const CALL_VOTE: Trigger = Trigger::from_static("call_vote");
const ACCEPT: Trigger = Trigger::from_static("accept");
const ENOUGH_VOTES: Guard = Guard::from_static("enough_votes");

#[derive(Debug, Clone, PartialEq)]
enum SuggestionCommand {
    Log(LogRecord),
    Record(RecordCommand),
    CallVote,
    /// The acting person votes.
    Vote {
        up: bool,
    },
    Accept,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SuggestionRule {
    #[error("{0} wrote the suggestion and may not vote on it")]
    OwnSuggestion(String),
    #[error("{0} already voted")]
    AlreadyVoted(String),
}

struct Suggestions;

impl RecordRules for Suggestions {
    type Record = Suggestion;
    type Policy = RecordPolicy;
    type Rule = SuggestionRule;

    fn vocabulary() -> Vocabulary {
        let mut triggers = desk_triggers();
        triggers.extend([
            TriggerRule {
                trigger: CALL_VOTE,
                from: &[Phase::Active],
                to: &[Phase::Pending],
            },
            TriggerRule {
                trigger: ACCEPT,
                from: &[Phase::Pending],
                to: &[Phase::Resolved],
            },
        ]);
        Vocabulary {
            record_type: Suggestion::RECORD_TYPE,
            triggers,
            guards: vec![Guard::RESOLUTION_RECORDED, ENOUGH_VOTES],
            stages: vec![
                StageRule {
                    name: "submitted",
                    phase: Phase::New,
                },
                StageRule {
                    name: "evaluate",
                    phase: Phase::Active,
                },
                StageRule {
                    name: "vote",
                    phase: Phase::Pending,
                },
                StageRule {
                    name: "accepted",
                    phase: Phase::Resolved,
                },
                StageRule {
                    name: "implemented",
                    phase: Phase::Closed,
                },
                StageRule {
                    name: "declined",
                    phase: Phase::Cancelled,
                },
            ],
        }
    }

    fn record_policy(policy: &RecordPolicy) -> &RecordPolicy {
        policy
    }

    fn guard_holds(record: &Suggestion, guard: &Guard) -> bool {
        *guard == ENOUGH_VOTES && record.votes_for.len() >= 2
    }
}

fn lifecycle() -> Result<Lifecycle, LifecycleError> {
    LifecycleBuilder::new("suggestion", 1, Suggestions::vocabulary())
        .staged("submitted", "submitted")
        .staged("evaluating", "evaluate")
        .staged("voting", "vote")
        .staged("accepted", "accepted")
        .staged("implemented", "implemented")
        .staged("declined", "declined")
        .transition("start", Trigger::START, &["submitted"], "evaluating")
        .transition("call_vote", CALL_VOTE, &["evaluating"], "voting")
        .transition("accept", ACCEPT, &["voting"], "accepted")
        .guard(ENOUGH_VOTES)
        .transition("close", Trigger::CLOSE, &["accepted"], "implemented")
        .guard(Guard::RESOLUTION_RECORDED)
        .transition(
            "decline",
            Trigger::CANCEL,
            &["submitted", "evaluating", "voting"],
            "declined",
        )
        .build()
}

impl Aggregate for Suggestions {
    type State = Suggestion;
    type Services = RecordPolicy;
    type Command = SuggestionCommand;
    type Rejection = Refusal<SuggestionRule>;

    fn decide(
        state: &Suggestion,
        command: &SuggestionCommand,
        policy: &RecordPolicy,
        ctx: &Context<'_>,
    ) -> Result<Vec<TypedEvent<Suggestion>>, Refusal<SuggestionRule>> {
        let name = match command {
            SuggestionCommand::Log(_) => "log",
            SuggestionCommand::Record(c) => c.name(),
            SuggestionCommand::CallVote => "call vote",
            SuggestionCommand::Vote { .. } => "vote",
            SuggestionCommand::Accept => "accept",
        };
        let step = |trigger: &Trigger, detail| {
            transition::<Self>(state, policy, trigger, None, detail, ctx.now())
                .map(|e| vec![TypedEvent::Record(e)])
        };
        let decided = match command {
            SuggestionCommand::Log(input) => {
                log_record::<Self>(state, input, policy, ctx).map(|l| vec![TypedEvent::Logged(l)])
            }
            SuggestionCommand::Record(c) => decide_shared::<Self>(state, c, policy, ctx),
            SuggestionCommand::CallVote => step(&CALL_VOTE, TransitionDetail::Plain),
            SuggestionCommand::Accept => step(
                &ACCEPT,
                TransitionDetail::Resolution {
                    code: "accepted".into(),
                    notes: "enough votes".into(),
                },
            ),
            SuggestionCommand::Vote { up } => vote(state, *up, ctx),
        };
        decided.map_err(|reason| refuse::<Self>(state, name, reason))
    }
}

fn vote(
    state: &Suggestion,
    up: bool,
    ctx: &Context<'_>,
) -> Result<Vec<TypedEvent<Suggestion>>, RefusalReason<SuggestionRule>> {
    let actor = ctx.actor().ok_or(RefusalReason::NoActor)?;
    if state.record().phase() != Some(Phase::Pending) {
        return Err(RefusalReason::Unchanged);
    }
    if state.record().logged_by() == Some(actor) {
        return Err(RefusalReason::Rule(SuggestionRule::OwnSuggestion(
            actor.to_string(),
        )));
    }
    let by = PersonId::new(actor.as_str()).map_err(|_| RefusalReason::NoActor)?;
    if state.votes_for.contains(&by) || state.votes_against.contains(&by) {
        return Err(RefusalReason::Rule(SuggestionRule::AlreadyVoted(
            actor.to_string(),
        )));
    }
    let mut d = Decision::new(state, ctx);
    d.push(TypedEvent::Own(SuggestionEvent::Voted { by, up }));
    Ok(d.into_events())
}

// ---- the test ----

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, minute, 0)
        .single()
        .expect("valid")
}

struct Desk {
    handler: CommandHandler<Suggestions>,
    ids: SequentialIds,
    stream: smsys::core::StreamId,
    minute: u32,
}

impl Desk {
    async fn run(
        &mut self,
        actor: &str,
        command: SuggestionCommand,
    ) -> Result<Suggestion, CommandError<Refusal<SuggestionRule>>> {
        self.minute += 1;
        let ctx = Context::new(at(self.minute), &self.ids);
        let meta = CommandMeta::new(Actor::new(actor).expect("valid actor"));
        self.handler
            .execute(&self.stream, &command, &meta, &ctx)
            .await
            .map(|done| done.state)
    }
}

fn rule_of(error: CommandError<Refusal<SuggestionRule>>) -> RefusalReason<SuggestionRule> {
    match error {
        CommandError::Rejected(refusal) => refusal.reason,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[test]
fn the_toy_record_type_validates_its_stages() {
    let lifecycle = lifecycle().expect("the toy lifecycle is valid");
    assert_eq!(lifecycle.stage("voting"), Some("vote"));
    // A stage mapped to another phase than the status's is refused.
    let mut definition = lifecycle.definition().clone();
    definition.statuses[2].phase = Phase::Active;
    let error = Lifecycle::new(definition, &Suggestions::vocabulary()).expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("its stage \"vote\" maps to phase pending"),
        "{error}"
    );
    // A status without a stage, where the type has stages, is refused.
    let mut definition = lifecycle.definition().clone();
    definition.statuses[0].stage = None;
    assert!(Lifecycle::new(definition, &Suggestions::vocabulary()).is_err());
    assert_eq!(TypedEvent::<Suggestion>::name_clash(), None);
}

#[tokio::test]
async fn a_record_type_defined_in_a_test_runs_through_the_command_handler_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(
        SqliteEventStore::open(dir.path().join("toy.db"))
            .await
            .expect("store opens"),
    );
    let policy = RecordPolicy::new(lifecycle().expect("valid"));
    let reference = "SUG-1".parse().expect("valid reference");
    let stream = Suggestion::stream(&reference).expect("valid stream");
    let mut desk = Desk {
        handler: CommandHandler::new(store.clone(), policy),
        ids: SequentialIds::new(1_764_000_000_000),
        stream,
        minute: 0,
    };

    let log = LogRecord::new(
        reference,
        "ana".parse().expect("valid"),
        Channel::Portal,
        "service-desk".parse().expect("valid"),
        "a self-service password reset",
    );
    let s = desk
        .run("ana", SuggestionCommand::Log(log))
        .await
        .expect("logged");
    assert_eq!(s.record().status(), Some("submitted"));
    let group = RecordCommand::Assign {
        group: "improvement-board".parse().expect("valid"),
        person: None,
    };
    let s = desk
        .run("bo", SuggestionCommand::Record(group))
        .await
        .expect("assigned");
    assert_eq!(
        s.record().status(),
        Some("evaluating"),
        "assignment starts work"
    );
    desk.run("bo", SuggestionCommand::CallVote)
        .await
        .expect("vote called");

    // Its own rules: the author may not vote; nobody votes twice; two votes accept it.
    let own = rule_of(
        desk.run("ana", SuggestionCommand::Vote { up: true })
            .await
            .expect_err("own suggestion"),
    );
    assert_eq!(
        own,
        RefusalReason::Rule(SuggestionRule::OwnSuggestion("ana".into()))
    );
    desk.run("bo", SuggestionCommand::Vote { up: true })
        .await
        .expect("bo votes");
    let too_early = rule_of(
        desk.run("bo", SuggestionCommand::Accept)
            .await
            .expect_err("one vote"),
    );
    assert_eq!(too_early, RefusalReason::GuardFailed(ENOUGH_VOTES));
    let twice = rule_of(
        desk.run("bo", SuggestionCommand::Vote { up: false })
            .await
            .expect_err("twice"),
    );
    assert_eq!(
        twice,
        RefusalReason::Rule(SuggestionRule::AlreadyVoted("bo".into()))
    );
    desk.run("cy", SuggestionCommand::Vote { up: true })
        .await
        .expect("cy votes");
    let s = desk
        .run("bo", SuggestionCommand::Accept)
        .await
        .expect("accepted");
    assert_eq!(s.record().phase(), Some(Phase::Resolved));
    assert_eq!(
        s.record()
            .resolution()
            .and_then(|r| r.by.as_ref())
            .map(Actor::as_str),
        Some("bo")
    );
    let s = desk
        .run("bo", SuggestionCommand::Record(RecordCommand::Close))
        .await
        .expect("implemented");
    assert_eq!(s.record().status(), Some("implemented"));
    assert_eq!(s.votes_for.len(), 2);

    // What was stored: its own names, read back by a fresh load, the chain intact.
    let mut names = Vec::new();
    let mut events = store.read_stream(&desk.stream, Version::FIRST);
    while let Some(e) = events.next().await {
        names.push(e.expect("readable").data.event_type().as_str().to_owned());
    }
    assert_eq!(
        names,
        [
            "suggestion.logged",
            "suggestion.assigned",
            "suggestion.transitioned",
            "suggestion.transitioned",
            "suggestion.voted",
            "suggestion.voted",
            "suggestion.transitioned",
            "suggestion.transitioned",
        ]
    );
    let loaded = desk.handler.load(&desk.stream).await.expect("loads");
    assert_eq!(loaded.state, s);
    assert!(store.verify().await.expect("verifies").is_intact());

    // Shared readers understand the new type without knowing it: its history as SLA timers
    // read it holds the logged event and every shared event, and none of its own.
    let engine = SlaEngine::new().with_record_type::<Suggestion>();
    let (record_type, history, read) = load_history(&*store, &engine, &desk.stream)
        .await
        .expect("history");
    assert_eq!(record_type, Suggestion::RECORD_TYPE);
    assert_eq!(history.len(), 6);
    assert_eq!(read, Some(Version::new(8)));
    assert!(matches!(
        history.last().map(|(_, e)| e),
        Some(smsys::core::records::CommonEvent::Record(
            RecordEvent::Transitioned {
                phase: Phase::Closed,
                ..
            }
        ))
    ));
}
