//! Problem identification from incident trends (8.6.3): incidents logged, classified, linked,
//! cancelled and flagged major through the command handler on the in-memory store, read back
//! by `IncidentTrends` through the projection runner; a property test against a brute-force
//! model of the rules.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::StreamExt;
use proptest::prelude::*;
use smsys_core::records::{Channel, CiId, Incident, Level, LinkKind, Phase, RecordKind, Reference};
use smsys_core::{
    CommandError, CommandHandler, CommandMeta, Context, EventStore, LogFilter, Position,
    Projection, ProjectionRunner, RecordedEvent, SequentialIds,
};
use smsys_processes::trend::{
    IncidentTrends, RecurrenceQuery, TrendCandidate, TrendDimension, TrendKey, TrendPolicy,
    TrendPolicyError,
};
use smsys_processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, RecordCommand,
};
use smsys_store::MemoryEventStore;

// ---- given: a service desk on the in-memory store ----

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid")
}

fn hours(n: i64) -> DateTime<Utc> {
    t0() + TimeDelta::hours(n)
}

fn r(text: &str) -> Reference {
    text.parse().expect("a valid reference")
}

fn ci(text: &str) -> CiId {
    text.parse().expect("a valid ci")
}

fn refs(texts: &[&str]) -> Vec<Reference> {
    texts.iter().map(|t| r(t)).collect()
}

struct Desk {
    store: Arc<MemoryEventStore>,
    handler: CommandHandler<IncidentManagement>,
    ids: SequentialIds,
}

impl Desk {
    fn new() -> Self {
        let store = Arc::new(MemoryEventStore::new());
        let dyn_store: Arc<dyn EventStore> = store.clone();
        Self {
            handler: CommandHandler::new(dyn_store, IncidentPolicy::default()),
            store,
            ids: SequentialIds::new(0),
        }
    }

    /// Runs `command` on incident `reference` at `at`; it must be recorded.
    async fn run(&self, reference: &str, command: impl Into<IncidentCommand>, at: DateTime<Utc>) {
        let stream = Incident::stream(&r(reference)).expect("a stream");
        let command = command.into();
        let meta = CommandMeta::new("agent:bo".parse().expect("an actor"));
        match self
            .handler
            .execute(&stream, &command, &meta, &Context::new(at, &self.ids))
            .await
        {
            Ok(executed) => assert!(!executed.events.is_empty(), "{command:?} recorded nothing"),
            Err(CommandError::Rejected(refusal)) => panic!("{command:?} refused: {refusal}"),
            Err(other) => panic!("{command:?} failed: {other}"),
        }
    }

    /// Logs `reference` at `at` on `service` with `cis` affected.
    async fn log(&self, reference: &str, at: DateTime<Utc>, service: &str, cis: &[&str]) {
        let record = LogRecord::new(
            r(reference),
            "ana".parse().expect("a person"),
            Channel::Phone,
            service.parse().expect("a service"),
            "something is wrong",
        )
        .affected_cis(cis.iter().map(|c| ci(c)).collect());
        self.run(reference, IncidentCommand::Log(record), at).await;
    }

    async fn classify(&self, reference: &str, category: &str, at: DateTime<Utc>) {
        let command = RecordCommand::Classify {
            category: category.into(),
            subcategory: None,
        };
        self.run(reference, command, at).await;
    }

    async fn link(&self, reference: &str, kind: LinkKind, target: &str, at: DateTime<Utc>) {
        let target = target.into();
        self.run(reference, RecordCommand::Link { kind, target }, at)
            .await;
    }

    async fn unlink(&self, reference: &str, kind: LinkKind, target: &str, at: DateTime<Utc>) {
        let target = target.into();
        self.run(reference, RecordCommand::Unlink { kind, target }, at)
            .await;
    }

    async fn cancel(&self, reference: &str, at: DateTime<Utc>) {
        let reason = "a duplicate".into();
        self.run(reference, RecordCommand::Cancel { reason }, at)
            .await;
    }

    async fn flag_major(&self, reference: &str, at: DateTime<Utc>) {
        let reason = "all mail down".into();
        self.run(reference, IncidentCommand::FlagMajor { reason }, at)
            .await;
    }

    /// Takes a classified incident to resolved.
    async fn resolve(&self, reference: &str, at: DateTime<Utc>) {
        let prioritise = RecordCommand::Prioritise {
            impact: Level::Low,
            urgency: Level::Low,
        };
        self.run(reference, prioritise, at).await;
        let assign = RecordCommand::Assign {
            group: "desk".parse().expect("a group"),
            person: None,
        };
        self.run(reference, assign, at).await;
        let resolve = RecordCommand::Resolve {
            code: "fixed".into(),
            notes: "restarted".into(),
        };
        self.run(reference, resolve, at).await;
    }

    /// Takes a classified incident to closed (reviewing it first when it is major).
    async fn close(&self, reference: &str, major: bool, at: DateTime<Utc>) {
        self.resolve(reference, at).await;
        if major {
            let findings = "one mx".into();
            self.run(
                reference,
                IncidentCommand::RecordMajorReview { findings },
                at,
            )
            .await;
        }
        self.run(reference, RecordCommand::Close, at).await;
    }

    /// Trends under `policy`, caught up with everything recorded.
    async fn trends(&self, policy: TrendPolicy) -> IncidentTrends {
        let trends = IncidentTrends::new(policy).expect("a valid policy");
        self.catch_up(&trends).await;
        trends
    }

    async fn catch_up(&self, trends: &IncidentTrends) {
        ProjectionRunner::new(self.store.clone())
            .with_batch_size(7)
            .catch_up(trends)
            .await
            .expect("caught up");
    }
}

/// A policy with only the given thresholds on, a 7-day window, majors off.
fn only(ci: Option<u32>, service: Option<u32>, category: Option<u32>) -> TrendPolicy {
    TrendPolicy {
        window_days: 7,
        ci,
        service,
        category,
        major_without_problem: false,
    }
}

/// (id, incidents) of each candidate, in order.
fn summary(candidates: &[TrendCandidate]) -> Vec<(String, Vec<String>)> {
    candidates
        .iter()
        .map(|c| {
            let incidents = c
                .incidents()
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect();
            (c.id(), incidents)
        })
        .collect()
}

fn expected(rows: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    rows.iter()
        .map(|(id, incidents)| {
            let incidents = incidents.iter().map(|s| (*s).to_owned()).collect();
            ((*id).to_owned(), incidents)
        })
        .collect()
}

// ---- when / then ----

#[tokio::test]
async fn candidates_per_dimension_in_a_stable_order() {
    let desk = Desk::new();
    // mx-01: 3 incidents; mx-02: 2; db-01: 3 (one of them also on mx-01).
    desk.log("INC-1", hours(1), "email", &["mx-01"]).await;
    desk.log("INC-2", hours(3), "email", &["mx-01", "db-01"])
        .await;
    desk.log("INC-3", hours(2), "email", &["mx-01"]).await;
    desk.log("INC-4", hours(4), "email", &["mx-02"]).await;
    desk.log("INC-5", hours(5), "crm", &["mx-02", "db-01"])
        .await;
    desk.log("INC-6", hours(6), "crm", &["db-01"]).await;
    for (reference, category) in [("INC-1", "mail"), ("INC-4", "mail"), ("INC-6", "db")] {
        desk.classify(reference, category, hours(7)).await;
    }
    let trends = desk.trends(only(Some(3), Some(4), Some(2))).await;
    assert_eq!(trends.len(), 6);
    let candidates = trends.candidates(hours(8));
    assert_eq!(
        summary(&candidates),
        expected(&[
            // Equal counts: by key (db-01 before mx-01); incidents by logged at.
            ("ci:db-01", &["INC-2", "INC-5", "INC-6"]),
            ("ci:mx-01", &["INC-1", "INC-3", "INC-2"]),
            ("service:email", &["INC-1", "INC-3", "INC-2", "INC-4"]),
            ("category:mail", &["INC-1", "INC-4"]),
        ])
    );
    let mx = &candidates[1];
    assert_eq!(mx.key(), &TrendKey::Ci(ci("mx-01")));
    assert_eq!(mx.key().dimension(), TrendDimension::Ci);
    assert_eq!((mx.first(), mx.last()), (hours(1), hours(3)));
    // Descending count first: with a lower CI threshold, mx-02 (2) follows db-01 and mx-01 (3).
    let trends = desk.trends(only(Some(2), None, None)).await;
    let ids: Vec<String> = trends
        .candidates(hours(8))
        .iter()
        .map(TrendCandidate::id)
        .collect();
    assert_eq!(ids, ["ci:db-01", "ci:mx-01", "ci:mx-02"]);
}

#[tokio::test]
async fn the_window_excludes_its_start_and_includes_as_of() {
    let desk = Desk::new();
    desk.log("INC-1", hours(0), "email", &["mx-01"]).await;
    desk.log("INC-2", hours(10), "email", &["mx-01"]).await;
    let trends = desk.trends(only(Some(2), None, None)).await;
    let week = TimeDelta::days(7);
    assert_eq!(trends.candidates(hours(10)).len(), 1, "logged at as_of: in");
    assert!(
        trends
            .candidates(hours(10) - TimeDelta::seconds(1))
            .is_empty(),
        "logged after as_of: out"
    );
    assert_eq!(
        trends
            .candidates(hours(0) + week - TimeDelta::seconds(1))
            .len(),
        1
    );
    assert!(
        trends.candidates(hours(0) + week).is_empty(),
        "logged exactly at as_of - window: out"
    );
}

#[tokio::test]
async fn disabled_dimensions_propose_nothing() {
    let desk = Desk::new();
    for n in 1..=6 {
        desk.log(&format!("INC-{n}"), hours(n), "email", &["mx-01"])
            .await;
        desk.classify(&format!("INC-{n}"), "mail", hours(n)).await;
    }
    let all = desk.trends(only(Some(2), Some(2), Some(2))).await;
    assert_eq!(all.candidates(hours(7)).len(), 3);
    let none = desk.trends(only(None, None, None)).await;
    assert!(none.candidates(hours(7)).is_empty());
    let service = desk.trends(only(None, Some(6), None)).await;
    let ids: Vec<String> = service
        .candidates(hours(7))
        .iter()
        .map(TrendCandidate::id)
        .collect();
    assert_eq!(ids, ["service:email"]);
    let high = desk.trends(only(None, Some(7), None)).await;
    assert!(
        high.candidates(hours(7)).is_empty(),
        "6 incidents, 7 needed"
    );
}

#[tokio::test]
async fn cancelled_incidents_are_no_evidence() {
    let desk = Desk::new();
    for n in 1..=3 {
        desk.log(&format!("INC-{n}"), hours(n), "email", &["mx-01"])
            .await;
    }
    let trends = desk.trends(only(Some(3), None, None)).await;
    assert_eq!(trends.candidates(hours(4)).len(), 1);
    desk.cancel("INC-2", hours(4)).await;
    desk.catch_up(&trends).await;
    assert!(trends.candidates(hours(4)).is_empty());
    assert_eq!(
        trends.facts(&r("INC-2")).map(|f| f.phase),
        Some(Phase::Cancelled)
    );
    let recurring = trends.recurrences(&RecurrenceQuery::on_cis(
        vec![ci("mx-01")],
        hours(0),
        hours(4),
    ));
    assert_eq!(recurring, refs(&["INC-1", "INC-3"]));
}

#[tokio::test]
async fn incidents_linked_to_a_problem_drop_out_until_unlinked() {
    let desk = Desk::new();
    for n in 1..=4 {
        desk.log(&format!("INC-{n}"), hours(n), "email", &["mx-01"])
            .await;
    }
    let trends = desk.trends(only(Some(3), None, None)).await;
    let before = trends.candidates(hours(5));
    assert_eq!(before[0].incidents().len(), 4);
    desk.link("INC-1", LinkKind::PROBLEM, "PRB-1", hours(5))
        .await;
    desk.link("INC-2", LinkKind::PROBLEM, "PRB-1", hours(5))
        .await;
    // A link of another kind changes nothing.
    desk.link("INC-3", LinkKind::CHANGE, "CHG-1", hours(5))
        .await;
    desk.catch_up(&trends).await;
    assert!(trends.candidates(hours(5)).is_empty(), "2 left, 3 needed");
    assert_eq!(
        trends.facts(&r("INC-1")).map(|f| f.problems),
        Some(vec!["PRB-1".to_owned()])
    );
    desk.unlink("INC-2", LinkKind::PROBLEM, "PRB-1", hours(6))
        .await;
    desk.catch_up(&trends).await;
    assert_eq!(
        summary(&trends.candidates(hours(6))),
        expected(&[("ci:mx-01", &["INC-2", "INC-3", "INC-4"])])
    );
}

#[tokio::test]
async fn linked_and_unlinked_configuration_items_count() {
    let desk = Desk::new();
    desk.log("INC-1", hours(1), "email", &[]).await;
    desk.log("INC-2", hours(2), "email", &["mx-01"]).await;
    desk.log("INC-3", hours(3), "email", &["mx-01"]).await;
    let trends = desk.trends(only(Some(3), None, None)).await;
    assert!(trends.candidates(hours(4)).is_empty());
    desk.link("INC-1", LinkKind::CONFIGURATION_ITEM, "mx-01", hours(4))
        .await;
    desk.catch_up(&trends).await;
    assert_eq!(trends.candidates(hours(4)).len(), 1);
    // A CI linked, then unlinked, leaves the incident even if it was affected at logging.
    desk.link("INC-3", LinkKind::CONFIGURATION_ITEM, "mx-01", hours(5))
        .await;
    desk.unlink("INC-3", LinkKind::CONFIGURATION_ITEM, "mx-01", hours(5))
        .await;
    desk.catch_up(&trends).await;
    assert!(trends.candidates(hours(5)).is_empty());
    assert_eq!(trends.facts(&r("INC-3")).map(|f| f.cis), Some(vec![]));
    assert_eq!(
        trends.facts(&r("INC-1")).map(|f| f.cis),
        Some(vec![ci("mx-01")])
    );
}

#[tokio::test]
async fn major_incidents_without_a_problem_are_candidates() {
    let desk = Desk::new();
    desk.log("INC-1", hours(0), "email", &["mx-01"]).await;
    desk.flag_major("INC-1", hours(0)).await;
    desk.log("INC-2", hours(1), "email", &["mx-02"]).await;
    desk.flag_major("INC-2", hours(1)).await;
    desk.classify("INC-2", "mail", hours(1)).await;
    desk.close("INC-2", true, hours(2)).await;
    desk.log("INC-3", hours(2), "crm", &[]).await;
    desk.flag_major("INC-3", hours(2)).await;
    desk.log("INC-4", hours(3), "crm", &[]).await;
    let policy = TrendPolicy {
        major_without_problem: true,
        ..only(None, None, None)
    };
    let trends = desk.trends(policy.clone()).await;
    assert_eq!(
        summary(&trends.candidates(hours(4))),
        expected(&[
            ("major:INC-1", &["INC-1"]),
            ("major:INC-2", &["INC-2"]),
            ("major:INC-3", &["INC-3"]),
        ])
    );
    // Ten days on: the closed one left with the window, the open ones stay.
    let later = hours(24 * 10);
    let ids: Vec<String> = trends
        .candidates(later)
        .iter()
        .map(TrendCandidate::id)
        .collect();
    assert_eq!(ids, ["major:INC-1", "major:INC-3"]);
    assert!(trends.candidates(hours(-1)).is_empty(), "not yet logged");
    desk.link("INC-3", LinkKind::PROBLEM, "PRB-9", hours(5))
        .await;
    desk.cancel("INC-1", hours(5)).await;
    desk.catch_up(&trends).await;
    assert!(trends.candidates(later).is_empty());
    let off = desk.trends(only(None, None, None)).await;
    assert!(off.candidates(hours(4)).is_empty(), "majors off");
    let facts = trends.facts(&r("INC-2")).expect("logged");
    assert!(facts.major);
    assert_eq!(facts.phase, Phase::Closed);
    assert_eq!(facts.category.as_deref(), Some("mail"));
    assert!(!trends.facts(&r("INC-4")).expect("logged").major);
}

#[tokio::test]
async fn a_candidate_gives_the_links_of_its_problem() {
    let desk = Desk::new();
    desk.log("INC-1", hours(1), "email", &["mx-01"]).await;
    desk.log("INC-2", hours(2), "email", &["mx-01"]).await;
    let trends = desk.trends(only(Some(2), Some(2), None)).await;
    let candidates = trends.candidates(hours(3));
    let link = |kind: LinkKind, target: &str| RecordCommand::Link {
        kind,
        target: target.into(),
    };
    assert_eq!(
        candidates[0].problem_links(),
        [
            link(LinkKind::INCIDENT, "INC-1"),
            link(LinkKind::INCIDENT, "INC-2"),
            link(LinkKind::CONFIGURATION_ITEM, "mx-01"),
        ]
    );
    assert_eq!(candidates[1].id(), "service:email");
    assert_eq!(
        candidates[1].problem_links(),
        [
            link(LinkKind::INCIDENT, "INC-1"),
            link(LinkKind::INCIDENT, "INC-2")
        ]
    );
}

#[tokio::test]
async fn recurrences_by_cis_or_by_service_and_category() {
    let desk = Desk::new();
    desk.log("INC-1", hours(1), "email", &["mx-01"]).await;
    desk.log("INC-2", hours(2), "email", &["mx-02"]).await;
    desk.log("INC-3", hours(3), "crm", &["db-01", "mx-01"])
        .await;
    desk.log("INC-4", hours(4), "email", &[]).await;
    desk.classify("INC-2", "mail", hours(5)).await;
    desk.classify("INC-4", "mail", hours(5)).await;
    desk.classify("INC-3", "mail", hours(5)).await;
    desk.link("INC-3", LinkKind::PROBLEM, "PRB-1", hours(5))
        .await;
    let trends = desk.trends(TrendPolicy::default()).await;
    let cis = |cis: &[&str], from, to| {
        let cis = cis.iter().map(|c| ci(c)).collect();
        trends.recurrences(&RecurrenceQuery::on_cis(cis, from, to))
    };
    assert_eq!(
        cis(&["mx-01"], hours(0), hours(9)),
        refs(&["INC-1", "INC-3"]),
        "linked ones count"
    );
    assert_eq!(
        cis(&["mx-01", "mx-02"], hours(1), hours(3)),
        refs(&["INC-2", "INC-3"]),
        "(from, to]"
    );
    assert!(cis(&["nope"], hours(0), hours(9)).is_empty());
    let on = |service: Option<&str>, category: Option<&str>| {
        let service = service.map(|s| s.parse().expect("a service"));
        let query = RecurrenceQuery::on(service, category.map(Into::into), hours(0), hours(9));
        trends.recurrences(&query)
    };
    assert_eq!(on(Some("email"), None), refs(&["INC-1", "INC-2", "INC-4"]));
    assert_eq!(on(None, Some("mail")), refs(&["INC-2", "INC-3", "INC-4"]));
    assert_eq!(on(Some("email"), Some("mail")), refs(&["INC-2", "INC-4"]));
    assert!(on(None, None).is_empty(), "nothing to match on");
    assert!(on(Some("nope"), Some("mail")).is_empty());
    let excluding = RecurrenceQuery::on(None, Some("mail".into()), hours(0), hours(9))
        .excluding(refs(&["INC-2"]));
    assert_eq!(trends.recurrences(&excluding), refs(&["INC-3", "INC-4"]));
    // CIs given: service and category are ignored.
    let mut both = RecurrenceQuery::on_cis(vec![ci("mx-02")], hours(0), hours(9));
    both.service = Some("crm".parse().expect("a service"));
    assert_eq!(trends.recurrences(&both), refs(&["INC-2"]));
}

#[tokio::test]
async fn events_delivered_again_change_nothing_and_a_new_instance_rebuilds() {
    let desk = Desk::new();
    for n in 1..=3 {
        desk.log(&format!("INC-{n}"), hours(n), "email", &["mx-01"])
            .await;
    }
    let trends = desk.trends(only(Some(3), None, None)).await;
    let events: Vec<RecordedEvent> = desk
        .store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("read"))
        .collect()
        .await;
    let last = events.last().expect("events").position;
    // The whole log again.
    trends.apply(&events, last).await.expect("applied");
    assert_eq!(trends.len(), 3);
    assert_eq!(trends.checkpoint().await.expect("held"), Some(last));
    assert_eq!(trends.candidates(hours(4)).len(), 1);
    assert_eq!(trends.name(), IncidentTrends::DEFAULT_NAME);
    let renamed = IncidentTrends::new(TrendPolicy::default())
        .expect("valid")
        .with_name("trends.v2");
    assert_eq!(renamed.name(), "trends.v2");
    assert!(renamed.is_empty());
    desk.catch_up(&renamed).await;
    assert_eq!(renamed.len(), 3);
    assert_eq!(renamed.facts(&r("INC-9")), None);
}

#[test]
fn invalid_policies_are_refused_naming_the_field() {
    let zero = TrendPolicy {
        window_days: 0,
        ..TrendPolicy::default()
    };
    assert_eq!(
        IncidentTrends::new(zero).err(),
        Some(TrendPolicyError::Window)
    );
    let one = TrendPolicy {
        category: Some(1),
        ..TrendPolicy::default()
    };
    let refused = IncidentTrends::new(one).err();
    assert_eq!(
        refused,
        Some(TrendPolicyError::Threshold {
            dimension: TrendDimension::Category,
            value: 1
        })
    );
    assert!(refused.is_some_and(|e| e.to_string().contains("category")));
    let parsed = TrendPolicy::from_toml("window_days = 3\nci = 2\nmajor_without_problem = true");
    assert_eq!(
        parsed,
        Ok(TrendPolicy {
            window_days: 3,
            ci: Some(2),
            service: None,
            category: None,
            major_without_problem: true,
        })
    );
    assert!(matches!(
        TrendPolicy::from_toml("ci = \"three\""),
        Err(TrendPolicyError::Parse(_))
    ));
}

// ---- the rules against a brute-force model ----

const CIS: [&str; 4] = ["ci-a", "ci-b", "ci-c", "ci-d"];
const SERVICES: [&str; 3] = ["crm", "email", "web"];
const CATEGORIES: [&str; 3] = ["db", "mail", "net"];

/// One random incident.
#[derive(Debug, Clone)]
struct Spec {
    minute: i64,
    service: usize,
    affected: BTreeSet<usize>,
    /// A CI linked, and whether it is unlinked afterwards.
    linked_ci: Option<(usize, bool)>,
    category: Option<usize>,
    major: bool,
    /// A problem linked, and whether it is unlinked afterwards.
    problem: Option<(usize, bool)>,
    ending: Ending,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    Open,
    Cancelled,
    Resolved,
    Closed,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..(20 * 24 * 60i64),
        0..SERVICES.len(),
        proptest::collection::btree_set(0..CIS.len(), 0..3),
        proptest::option::of((0..CIS.len(), any::<bool>())),
        proptest::option::of(0..CATEGORIES.len()),
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.3, (0..2usize, any::<bool>())),
        prop_oneof![
            6 => Just(Ending::Open),
            1 => Just(Ending::Cancelled),
            1 => Just(Ending::Resolved),
            2 => Just(Ending::Closed)
        ],
    )
        .prop_map(
            |(minute, service, affected, linked_ci, category, major, problem, ending)| Spec {
                minute,
                service,
                affected,
                linked_ci,
                // Resolving requires a category.
                category: if matches!(ending, Ending::Resolved | Ending::Closed) {
                    category.or(Some(0))
                } else {
                    category
                },
                major,
                problem,
                ending,
            },
        )
}

fn minute(n: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(n)
}

fn reference(i: usize) -> String {
    format!("INC-{i}")
}

async fn record(desk: &Desk, i: usize, s: &Spec) {
    let name = reference(i);
    let at = minute(s.minute);
    let affected: Vec<&str> = s.affected.iter().map(|c| CIS[*c]).collect();
    desk.log(&name, at, SERVICES[s.service], &affected).await;
    if let Some(c) = s.category {
        desk.classify(&name, CATEGORIES[c], at).await;
    }
    if s.major {
        desk.flag_major(&name, at).await;
    }
    if let Some((c, unlinked)) = s.linked_ci {
        desk.link(&name, LinkKind::CONFIGURATION_ITEM, CIS[c], at)
            .await;
        if unlinked {
            desk.unlink(&name, LinkKind::CONFIGURATION_ITEM, CIS[c], at)
                .await;
        }
    }
    if let Some((p, unlinked)) = s.problem {
        let problem = format!("PRB-{p}");
        desk.link(&name, LinkKind::PROBLEM, &problem, at).await;
        if unlinked {
            desk.unlink(&name, LinkKind::PROBLEM, &problem, at).await;
        }
    }
    match s.ending {
        Ending::Open => {}
        Ending::Cancelled => desk.cancel(&name, at).await,
        Ending::Resolved => desk.resolve(&name, at).await,
        Ending::Closed => desk.close(&name, s.major, at).await,
    }
}

/// The CIs of an incident by the rule: affected plus linked, minus unlinked.
fn cis_of(s: &Spec) -> BTreeSet<&'static str> {
    let mut cis: BTreeSet<&str> = s.affected.iter().map(|c| CIS[*c]).collect();
    match s.linked_ci {
        Some((c, false)) => {
            cis.insert(CIS[c]);
        }
        Some((c, true)) => {
            cis.remove(CIS[c]);
        }
        None => {}
    }
    cis
}

fn has_problem(s: &Spec) -> bool {
    matches!(s.problem, Some((_, false)))
}

/// The keys of an incident in one dimension.
type KeysOf = dyn Fn(&Spec) -> BTreeSet<&'static str>;

/// Candidates by brute force: (id, incidents in order, first, last).
type Row = (String, Vec<String>, DateTime<Utc>, DateTime<Utc>);

fn model_candidates(specs: &[Spec], policy: &TrendPolicy, as_of: DateTime<Utc>) -> Vec<Row> {
    let from = as_of - policy.window();
    let row = |id: String, mut members: Vec<usize>| -> Row {
        members.sort_by_key(|i| (minute(specs[*i].minute), reference(*i)));
        let first = minute(specs[members[0]].minute);
        let last = minute(specs[members[members.len() - 1]].minute);
        (
            id,
            members.iter().map(|i| reference(*i)).collect(),
            first,
            last,
        )
    };
    let evidence = |s: &Spec| {
        let at = minute(s.minute);
        s.ending != Ending::Cancelled && !has_problem(s) && from < at && at <= as_of
    };
    let mut out = Vec::new();
    let dimensions: [(&str, Option<u32>, &KeysOf); 3] = [
        ("ci", policy.ci, &cis_of),
        ("service", policy.service, &|s: &Spec| {
            BTreeSet::from([SERVICES[s.service]])
        }),
        ("category", policy.category, &|s: &Spec| {
            s.category.map(|c| CATEGORIES[c]).into_iter().collect()
        }),
    ];
    for (dimension, threshold, keys) in dimensions {
        let Some(threshold) = threshold else { continue };
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, s) in specs.iter().enumerate().filter(|(_, s)| evidence(s)) {
            for key in keys(s) {
                groups.entry(key).or_default().push(i);
            }
        }
        let mut found: Vec<Row> = groups
            .into_iter()
            .filter(|(_, members)| members.len() >= threshold as usize)
            .map(|(key, members)| row(format!("{dimension}:{key}"), members))
            .collect();
        // Stable sort: keys came in order.
        found.sort_by_key(|r| std::cmp::Reverse(r.1.len()));
        out.extend(found);
    }
    if policy.major_without_problem {
        let mut majors: Vec<Row> = specs
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                let at = minute(s.minute);
                s.major
                    && s.ending != Ending::Cancelled
                    && !has_problem(s)
                    && at <= as_of
                    && (at > from || matches!(s.ending, Ending::Open | Ending::Resolved))
            })
            .map(|(i, _)| row(format!("major:{}", reference(i)), vec![i]))
            .collect();
        majors.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(majors);
    }
    out
}

fn model_recurrences(specs: &[Spec], query: &Query) -> Vec<String> {
    let mut found: Vec<usize> = (0..specs.len())
        .filter(|i| {
            let s = &specs[*i];
            let at = minute(s.minute);
            let matches = if query.cis.is_empty() {
                (query.service.is_some() || query.category.is_some())
                    && query.service.is_none_or(|v| v == s.service)
                    && query.category.is_none_or(|c| Some(c) == s.category)
            } else {
                let cis = cis_of(s);
                query.cis.iter().any(|c| cis.contains(CIS[*c]))
            };
            s.ending != Ending::Cancelled
                && minute(query.from) < at
                && at <= minute(query.to)
                && matches
                && !query.excluding.contains(i)
        })
        .collect();
    found.sort_by_key(|i| (minute(specs[*i].minute), reference(*i)));
    found.into_iter().map(reference).collect()
}

#[derive(Debug, Clone)]
struct Query {
    cis: Vec<usize>,
    service: Option<usize>,
    category: Option<usize>,
    from: i64,
    to: i64,
    excluding: Vec<usize>,
}

fn query() -> impl Strategy<Value = Query> {
    (
        proptest::collection::vec(0..CIS.len(), 0..3),
        proptest::option::of(0..SERVICES.len()),
        proptest::option::of(0..CATEGORIES.len()),
        0..(20 * 24 * 60i64),
        0..(20 * 24 * 60i64),
        proptest::collection::vec(0..16usize, 0..3),
    )
        .prop_map(|(cis, service, category, a, b, excluding)| Query {
            cis,
            service,
            category,
            from: a.min(b),
            to: a.max(b),
            excluding,
        })
}

fn policy() -> impl Strategy<Value = TrendPolicy> {
    let threshold = || proptest::option::of(2..5u32);
    (
        1..10u32,
        threshold(),
        threshold(),
        threshold(),
        any::<bool>(),
    )
        .prop_map(
            |(window_days, ci, service, category, major_without_problem)| TrendPolicy {
                window_days,
                ci,
                service,
                category,
                major_without_problem,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn candidates_and_recurrences_agree_with_a_brute_force_model(
        specs in proptest::collection::vec(spec(), 0..16),
        policy in policy(),
        as_of in 0..(22 * 24 * 60i64),
        queries in proptest::collection::vec(query(), 1..4),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let (candidates, recurrences) = rt.block_on(async {
            let desk = Desk::new();
            for (i, s) in specs.iter().enumerate() {
                record(&desk, i, s).await;
            }
            let trends = desk.trends(policy.clone()).await;
            assert_eq!(trends.len(), specs.len());
            let candidates: Vec<Row> = trends
                .candidates(minute(as_of))
                .iter()
                .map(|c| {
                    let incidents = c.incidents().iter().map(|r| r.as_str().to_owned()).collect();
                    (c.id(), incidents, c.first(), c.last())
                })
                .collect();
            let recurrences: Vec<Vec<String>> = queries
                .iter()
                .map(|q| {
                    let query = RecurrenceQuery {
                        cis: q.cis.iter().map(|c| ci(CIS[*c])).collect(),
                        service: q.service.map(|s| SERVICES[s].parse().expect("a service")),
                        category: q.category.map(|c| CATEGORIES[c].to_owned()),
                        from: minute(q.from),
                        to: minute(q.to),
                        excluding: q.excluding.iter().map(|i| r(&reference(*i))).collect(),
                    };
                    trends.recurrences(&query).iter().map(|r| r.as_str().to_owned()).collect()
                })
                .collect();
            (candidates, recurrences)
        });
        prop_assert_eq!(candidates, model_candidates(&specs, &policy, minute(as_of)));
        for (q, found) in queries.iter().zip(recurrences) {
            prop_assert_eq!(found, model_recurrences(&specs, q), "{:?}", q);
        }
    }
}
