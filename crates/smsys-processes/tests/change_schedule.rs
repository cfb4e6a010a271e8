//! The change schedule (8.5.1): change and CI events appended to the in-memory store, folded
//! by `ChangeSchedule` and `CmdbGraph` through the projection runner; every conflict kind
//! found and not found; what is planned on a service; a property test of the indexed
//! detector against a brute-force scan.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests stop at the first broken expectation"
)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use smsys_core::records::change::{
    ChangeControlEvent, ChangeLogged, ChangePlan, ChangeWindow, ImplementationOutcome,
};
use smsys_core::records::configuration_item::CiRegistered;
use smsys_core::records::{
    Change, ChangeEvent, ChangeKind, Channel, CiEvent, CiId, CiType, ConfigurationItem,
    DefinitionRef, Logged, Phase, RecordEvent, RecordKind, Reference, Relationship,
    TransitionDetail, TypedEvent,
};
use smsys_core::{
    Actor, DomainEvent, EventData, EventId, EventStore, ExpectedVersion, Metadata,
    ProjectionRunner, StreamId,
};
use smsys_processes::CmdbGraph;
use smsys_processes::change::{
    ChangeCalendars, ChangeSchedule, Conflict, ConflictDetector, ConflictKind, ScheduleRequest,
};
use smsys_store::MemoryEventStore;

// ---- given: changes and CIs on the in-memory store ----

fn h(hours: i64) -> DateTime<Utc> {
    // Monday 2026-11-02 00:00 UTC.
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).single().unwrap() + TimeDelta::hours(hours)
}

fn window(from: i64, to: i64) -> ChangeWindow {
    ChangeWindow {
        start: h(from),
        end: h(to),
        time_zone: "UTC".into(),
    }
}

fn ci(text: &str) -> CiId {
    text.parse().unwrap()
}

fn chg(text: &str) -> Reference {
    text.parse().unwrap()
}

struct Desk {
    store: Arc<MemoryEventStore>,
    next: u128,
}

impl Desk {
    fn new() -> Self {
        Self {
            store: Arc::new(MemoryEventStore::new()),
            next: 0,
        }
    }

    async fn append<E: DomainEvent>(&mut self, stream: StreamId, event: &E) {
        self.next += 1;
        let meta = Metadata::new(
            EventId::from_uuid(uuid::Uuid::from_u128(self.next)).unwrap(),
            Actor::new("agent:1").unwrap(),
            h(-100) + TimeDelta::minutes(i64::try_from(self.next).unwrap()),
        );
        let data = EventData::new(
            event.event_type(),
            event.schema_version(),
            event.to_payload().unwrap(),
            meta,
        )
        .unwrap();
        self.store
            .append(&stream, ExpectedVersion::Any, vec![data])
            .await
            .unwrap();
    }

    async fn change(&mut self, reference: &str, event: ChangeEvent) {
        self.append(Change::stream(&chg(reference)).unwrap(), &event)
            .await;
    }

    async fn ci_event(&mut self, id: &str, event: CiEvent) {
        self.append(ConfigurationItem::stream(&ci(id)).unwrap(), &event)
            .await;
    }

    async fn register(&mut self, id: &str, ci_type: &str) {
        let event = CiEvent::Registered(CiRegistered {
            id: ci(id),
            ci_type: CiType::new(ci_type).unwrap(),
            name: id.to_owned(),
            description: String::new(),
            status: "live".into(),
            attributes: BTreeMap::new(),
            change: None,
        });
        self.ci_event(id, event).await;
    }

    async fn link(&mut self, source: &str, relationship: Relationship, target: &str) {
        let event = CiEvent::RelationshipAdded {
            relationship,
            target: ci(target),
            change: None,
        };
        self.ci_event(source, event).await;
    }

    /// Logs a change with `logged_cis`, plans it on `cis` with `implementer` (no plan when
    /// `cis` is `None`) and schedules it in `w`.
    async fn scheduled(
        &mut self,
        reference: &str,
        cis: Option<&[&str]>,
        implementer: Option<&str>,
        w: ChangeWindow,
    ) {
        self.logged(reference, &["logged-ci"]).await;
        if let Some(cis) = cis {
            self.plan(reference, cis, implementer).await;
        }
        self.schedule(reference, w).await;
    }

    async fn logged(&mut self, reference: &str, cis: &[&str]) {
        let logged = ChangeLogged {
            record: Logged {
                reference: chg(reference),
                lifecycle: DefinitionRef {
                    name: "change_normal".into(),
                    version: 1,
                },
                status: "new".into(),
                caller: "rita".parse().unwrap(),
                channel: Channel::Portal,
                service: "payroll".parse().unwrap(),
                affected_cis: cis.iter().map(|c| ci(c)).collect(),
                summary: "a change".into(),
                description: String::new(),
                attributes: BTreeMap::new(),
            },
            kind: ChangeKind::Normal,
            template: None,
        };
        self.change(reference, TypedEvent::Logged(logged)).await;
    }

    async fn plan(&mut self, reference: &str, cis: &[&str], implementer: Option<&str>) {
        let plan = ChangePlan {
            cis: cis.iter().map(|c| ci(c)).collect(),
            implementation: "do it".into(),
            remediation: "undo it".into(),
            test_plan: String::new(),
            implementer: implementer.map(|p| p.parse().unwrap()),
            ci_updates: Vec::new(),
        };
        let event = TypedEvent::Own(ChangeControlEvent::Planned(plan));
        self.change(reference, event).await;
    }

    async fn schedule(&mut self, reference: &str, w: ChangeWindow) {
        let event = ChangeControlEvent::Scheduled {
            window: w,
            warnings: Vec::new(),
        };
        self.change(reference, TypedEvent::Own(event)).await;
    }

    async fn moved(&mut self, reference: &str, to: &str, phase: Phase) {
        let event = RecordEvent::Transitioned {
            transition: to.into(),
            from: "scheduled".into(),
            to: to.into(),
            phase,
            detail: TransitionDetail::Plain,
            at: h(-1),
        };
        self.change(reference, TypedEvent::Record(event)).await;
    }

    async fn implemented(&mut self, reference: &str, outcome: ImplementationOutcome) {
        let event = ChangeControlEvent::Implemented {
            outcome,
            notes: String::new(),
        };
        self.change(reference, TypedEvent::Own(event)).await;
    }

    async fn graph(&self) -> Arc<CmdbGraph> {
        let graph = Arc::new(CmdbGraph::new());
        ProjectionRunner::new(self.store.clone())
            .catch_up(graph.as_ref())
            .await
            .unwrap();
        graph
    }

    async fn schedule_with(&self, hops: u32, calendars: ChangeCalendars) -> ChangeSchedule {
        let schedule = ChangeSchedule::new("change_schedule", self.graph().await)
            .with_related_hops(hops)
            .with_calendars(calendars);
        ProjectionRunner::new(self.store.clone())
            .with_batch_size(2)
            .catch_up(&schedule)
            .await
            .unwrap();
        schedule
    }

    async fn board(&self) -> ChangeSchedule {
        self.schedule_with(1, ChangeCalendars::new()).await
    }
}

// ---- when: a window is asked ----

fn ask(
    schedule: &ChangeSchedule,
    change: &str,
    cis: &[&str],
    implementer: Option<&str>,
    w: &ChangeWindow,
) -> Vec<Conflict> {
    let change = chg(change);
    let cis: Vec<CiId> = cis.iter().map(|c| ci(c)).collect();
    let person = implementer.map(|p| p.parse().unwrap());
    schedule.conflicts(&ScheduleRequest {
        change: &change,
        window: w,
        cis: &cis,
        implementer: person.as_ref(),
    })
}

// ---- then ----

fn found(conflicts: &[Conflict]) -> Vec<(ConflictKind, String, String)> {
    conflicts
        .iter()
        .map(|c| {
            (
                c.kind,
                c.with.as_ref().map(ToString::to_string).unwrap_or_default(),
                c.ci.as_ref().map(ToString::to_string).unwrap_or_default(),
            )
        })
        .collect()
}

fn one(kind: ConflictKind, with: &str, on: &str) -> Vec<(ConflictKind, String, String)> {
    vec![(kind, with.to_owned(), on.to_owned())]
}

#[tokio::test]
async fn same_ci_is_found_in_overlapping_windows_only() {
    let mut desk = Desk::new();
    desk.scheduled("CHG-1", Some(&["db-1"]), None, window(10, 12))
        .await;
    let schedule = desk.board().await;
    let hit = ask(&schedule, "CHG-2", &["db-1"], None, &window(11, 13));
    assert_eq!(found(&hit), one(ConflictKind::SameCi, "CHG-1", "db-1"));
    assert_eq!(
        hit[0].detail,
        "CHG-1 also changes db-1 in 2026-11-02T10:00:00Z to 2026-11-02T12:00:00Z, \
         overlapping 2026-11-02T11:00:00Z to 2026-11-02T13:00:00Z"
    );
    // Touching windows, another CI, itself: nothing.
    assert!(ask(&schedule, "CHG-2", &["db-1"], None, &window(12, 14)).is_empty());
    assert!(ask(&schedule, "CHG-2", &["db-1"], None, &window(8, 10)).is_empty());
    assert!(ask(&schedule, "CHG-2", &["db-2"], None, &window(10, 12)).is_empty());
    assert!(ask(&schedule, "CHG-1", &["db-1"], None, &window(10, 12)).is_empty());
}

#[tokio::test]
async fn the_logged_cis_count_until_a_plan_names_some() {
    let mut desk = Desk::new();
    desk.scheduled("CHG-1", None, None, window(10, 12)).await;
    let schedule = desk.board().await;
    let hit = ask(&schedule, "CHG-2", &["logged-ci"], None, &window(10, 12));
    assert_eq!(found(&hit), one(ConflictKind::SameCi, "CHG-1", "logged-ci"));
    desk.plan("CHG-1", &["db-1"], None).await;
    let schedule = desk.board().await;
    assert!(ask(&schedule, "CHG-2", &["logged-ci"], None, &window(10, 12)).is_empty());
    assert_eq!(schedule.get(&chg("CHG-1")).unwrap().cis, [ci("db-1")]);
}

#[tokio::test]
async fn closed_cancelled_and_implemented_changes_free_their_slot() {
    let mut desk = Desk::new();
    for (n, reference) in ["CHG-1", "CHG-2", "CHG-3", "CHG-4"].iter().enumerate() {
        let implementer = format!("p{n}");
        desk.scheduled(
            reference,
            Some(&["db-1"]),
            Some(&implementer),
            window(10, 12),
        )
        .await;
    }
    let schedule = desk.board().await;
    assert_eq!(
        ask(&schedule, "CHG-9", &["db-1"], None, &window(10, 12)).len(),
        4
    );
    desk.moved("CHG-1", "cancelled", Phase::Cancelled).await;
    desk.moved("CHG-2", "closed", Phase::Closed).await;
    desk.implemented("CHG-3", ImplementationOutcome::Failed)
        .await;
    // Caught up from where it stood: the same schedule, moved on.
    ProjectionRunner::new(desk.store.clone())
        .catch_up(&schedule)
        .await
        .unwrap();
    let hit = ask(&schedule, "CHG-9", &["db-1"], Some("p2"), &window(10, 12));
    assert_eq!(found(&hit), one(ConflictKind::SameCi, "CHG-4", "db-1"));
    assert_eq!(schedule.len(), 1);
    assert!(schedule.get(&chg("CHG-1")).is_none());
}

#[tokio::test]
async fn rescheduling_replaces_the_old_window() {
    let mut desk = Desk::new();
    desk.scheduled("CHG-1", Some(&["db-1"]), Some("ana"), window(10, 12))
        .await;
    desk.schedule("CHG-1", window(20, 22)).await;
    let schedule = desk.board().await;
    assert!(ask(&schedule, "CHG-2", &["db-1"], Some("ana"), &window(10, 12)).is_empty());
    let hit = ask(&schedule, "CHG-2", &["db-1"], Some("ana"), &window(21, 23));
    assert_eq!(
        found(&hit),
        [
            (ConflictKind::SameCi, "CHG-1".into(), "db-1".into()),
            (ConflictKind::AssigneeBooked, "CHG-1".into(), String::new()),
        ]
    );
    assert_eq!(schedule.planned_between(h(0), h(100)).len(), 1);
}

#[tokio::test]
async fn the_implementer_is_booked_once_per_other_change() {
    let mut desk = Desk::new();
    desk.scheduled("CHG-1", Some(&["a"]), Some("ana"), window(10, 12))
        .await;
    desk.scheduled("CHG-2", Some(&["b"]), Some("ben"), window(10, 12))
        .await;
    let schedule = desk.board().await;
    let hit = ask(&schedule, "CHG-3", &["c"], Some("ana"), &window(11, 12));
    assert_eq!(found(&hit), one(ConflictKind::AssigneeBooked, "CHG-1", ""));
    assert!(
        hit[0]
            .detail
            .starts_with("ana implements CHG-1 in 2026-11-02T10:00:00Z")
    );
    assert!(ask(&schedule, "CHG-3", &["c"], Some("ana"), &window(12, 13)).is_empty());
    assert!(ask(&schedule, "CHG-3", &["c"], Some("cid"), &window(10, 12)).is_empty());
    assert!(ask(&schedule, "CHG-1", &["c"], Some("ana"), &window(10, 12)).is_empty());
}

/// app -depends_on-> db -runs_on-> srv -part_of-> rack -connects_to-> app (a cycle);
/// other -backs_up-> db (carries no impact); svc -depends_on-> app.
async fn cmdb(desk: &mut Desk) {
    for (id, t) in [
        ("app", "application"),
        ("db", "database"),
        ("srv", "server"),
        ("rack", "site"),
        ("other", "server"),
        ("svc", "service"),
        ("lone", "server"),
    ] {
        desk.register(id, t).await;
    }
    desk.link("app", Relationship::DEPENDS_ON, "db").await;
    desk.link("db", Relationship::RUNS_ON, "srv").await;
    desk.link("srv", Relationship::PART_OF, "rack").await;
    desk.link("rack", Relationship::CONNECTS_TO, "app").await;
    desk.link("other", Relationship::new("backs_up").unwrap(), "db")
        .await;
    desk.link("svc", Relationship::DEPENDS_ON, "app").await;
}

#[tokio::test]
async fn related_cis_are_found_within_the_hops_either_way() {
    let mut desk = Desk::new();
    cmdb(&mut desk).await;
    desk.scheduled("CHG-1", Some(&["srv"]), None, window(10, 12))
        .await;
    desk.scheduled("CHG-2", Some(&["other"]), None, window(10, 12))
        .await;
    desk.scheduled("CHG-3", Some(&["svc"]), None, window(10, 12))
        .await;
    let w = window(11, 12);
    // db -> srv is one hop (db depends on it); srv -> db the other way.
    let one_hop = desk.schedule_with(1, ChangeCalendars::new()).await;
    let hit = ask(&one_hop, "CHG-9", &["db"], None, &w);
    assert_eq!(found(&hit), one(ConflictKind::RelatedCi, "CHG-1", "srv"));
    assert_eq!(
        hit[0].detail,
        "CHG-1 changes srv, 1 hop from db, in 2026-11-02T10:00:00Z to 2026-11-02T12:00:00Z, \
         overlapping 2026-11-02T11:00:00Z to 2026-11-02T12:00:00Z"
    );
    // From rack, srv is one hop away; svc is two (rack -> app -> svc), backwards.
    assert_eq!(
        found(&ask(&one_hop, "CHG-9", &["rack"], None, &w)),
        one(ConflictKind::RelatedCi, "CHG-1", "srv")
    );
    let two_hops = desk.schedule_with(2, ChangeCalendars::new()).await;
    let hit = ask(&two_hops, "CHG-9", &["rack"], None, &w);
    assert_eq!(
        found(&hit),
        [
            (ConflictKind::RelatedCi, "CHG-1".into(), "srv".into()),
            (ConflictKind::RelatedCi, "CHG-3".into(), "svc".into()),
        ]
    );
    // backs_up carries no impact: `other` is never related; 0 hops disables the search; a
    // CI the graph does not know has no relatives; touching windows do not overlap.
    let far = desk.schedule_with(50, ChangeCalendars::new()).await;
    let hit = ask(&far, "CHG-9", &["db"], None, &w);
    assert!(
        found(&hit).iter().all(|(_, with, _)| with != "CHG-2"),
        "{hit:?}"
    );
    let none = desk.schedule_with(0, ChangeCalendars::new()).await;
    assert!(ask(&none, "CHG-9", &["db"], None, &w).is_empty());
    assert!(ask(&far, "CHG-9", &["unknown"], None, &w).is_empty());
    assert!(ask(&far, "CHG-9", &["db"], None, &window(12, 13)).is_empty());
}

#[tokio::test]
async fn cycles_terminate_and_shared_cis_are_not_reported_as_related() {
    let mut desk = Desk::new();
    cmdb(&mut desk).await;
    desk.scheduled("CHG-1", Some(&["app", "srv"]), None, window(10, 12))
        .await;
    let schedule = desk.schedule_with(u32::MAX, ChangeCalendars::new()).await;
    let hit = ask(&schedule, "CHG-9", &["app", "rack"], None, &window(10, 11));
    assert_eq!(found(&hit), one(ConflictKind::SameCi, "CHG-1", "app"));
    let hit = ask(&schedule, "CHG-9", &["lone"], None, &window(10, 11));
    assert!(hit.is_empty());
}

const CALENDARS: &str = r#"
    [[freeze]]
    name = "month end"
    services = ["svc"]
    from = "2026-11-30T00:00:00Z"
    calendar = { name = "always", version = 1, time_zone = "UTC", always_open = true }

    [[freeze]]
    name = "everything"
    global = true
    from = "2026-12-20T00:00:00Z"
    until = "2027-01-04T00:00:00Z"
    calendar = { name = "always", version = 1, time_zone = "UTC", always_open = true }

    [[maintenance]]
    name = "srv nights"
    cis = ["srv"]
    calendar = { name = "nights", version = 2, time_zone = "UTC", weekly = [
        { day = "mon", intervals = [{ start = "20:00", end = "04:00" }] },
    ] }

    [[maintenance]]
    name = "svc evenings"
    services = ["svc"]
    calendar = { name = "evenings", version = 1, time_zone = "UTC", weekly = [
        { day = "mon", intervals = [{ start = "18:00", end = "23:00" }] },
    ] }
"#;

#[tokio::test]
async fn freezes_and_maintenance_windows_apply_by_ci_service_and_globally() {
    let mut desk = Desk::new();
    cmdb(&mut desk).await;
    let calendars = ChangeCalendars::from_toml(CALENDARS).unwrap();
    let schedule = desk.schedule_with(0, calendars).await;
    // Monday 20:00-23:00: inside both maintenance windows of srv (its own, and svc's,
    // which depends on it through app and db), in no freeze.
    assert!(ask(&schedule, "CHG-9", &["srv"], None, &window(20, 23)).is_empty());
    // Monday 19:00-21:00: outside srv's own window; svc's still holds it.
    let hit = ask(&schedule, "CHG-9", &["srv"], None, &window(19, 21));
    assert_eq!(
        found(&hit),
        one(ConflictKind::OutsideMaintenance, "", "srv")
    );
    assert_eq!(
        hit[0].detail,
        "2026-11-02T19:00:00Z to 2026-11-02T21:00:00Z is not wholly inside the maintenance \
         window srv nights (calendar nights v2) of srv"
    );
    // Monday 22:00-02:00: outside svc's window, through the graph.
    let hit = ask(&schedule, "CHG-9", &["srv"], None, &window(22, 26));
    assert_eq!(
        found(&hit),
        one(ConflictKind::OutsideMaintenance, "", "srv")
    );
    assert!(
        hit[0]
            .detail
            .ends_with("of service svc, which srv supports"),
        "{hit:?}"
    );
    // `lone` supports no service and has no window of its own: any time.
    assert!(ask(&schedule, "CHG-9", &["lone"], None, &window(30, 31)).is_empty());
    // The month-end freeze of svc from 2026-11-30 (hour 672), on svc itself and on what it
    // depends on; touching its start is not in it.
    let hit = ask(
        &schedule,
        "CHG-9",
        &["svc", "lone"],
        None,
        &window(671, 673),
    );
    assert_eq!(
        found(&hit),
        [
            (
                ConflictKind::OutsideMaintenance,
                String::new(),
                "svc".into()
            ),
            (ConflictKind::Freeze, String::new(), "svc".into()),
        ]
    );
    assert!(hit[1].detail.ends_with("of service svc"), "{hit:?}");
    let hit = ask(&schedule, "CHG-9", &["lone"], None, &window(670, 672));
    assert!(hit.is_empty());
    // The global freeze: once, without a CI, even for a change naming no CI.
    let xmas = 48 * 24;
    let hit = ask(&schedule, "CHG-9", &[], None, &window(xmas, xmas + 1));
    assert_eq!(found(&hit), one(ConflictKind::Freeze, "", ""));
    assert!(
        hit[0]
            .detail
            .ends_with("falls in the freeze everything (calendar always v1) of every CI")
    );
}

#[tokio::test]
async fn planned_on_a_service_is_what_changes_it_or_what_it_depends_on() {
    let mut desk = Desk::new();
    cmdb(&mut desk).await;
    desk.scheduled("CHG-1", Some(&["srv"]), None, window(10, 12))
        .await;
    desk.scheduled("CHG-2", Some(&["other"]), None, window(10, 12))
        .await;
    desk.scheduled("CHG-3", Some(&["svc"]), None, window(5, 6))
        .await;
    desk.scheduled("CHG-4", Some(&["db"]), None, window(30, 31))
        .await;
    let schedule = desk.board().await;
    let refs = |planned: Vec<smsys_processes::change::PlannedChange>| -> Vec<String> {
        planned.iter().map(|p| p.reference.to_string()).collect()
    };
    assert_eq!(
        refs(schedule.planned_on_service(&ci("svc"), h(0), h(24))),
        ["CHG-3", "CHG-1"]
    );
    assert_eq!(
        refs(schedule.planned_on_service(&ci("svc"), h(6), h(30))),
        ["CHG-1"]
    );
    assert!(
        schedule
            .planned_on_service(&ci("lone"), h(0), h(100))
            .is_empty()
    );
    assert_eq!(
        refs(schedule.planned_between(h(0), h(100))),
        ["CHG-3", "CHG-1", "CHG-2", "CHG-4"]
    );
    let planned = schedule.get(&chg("CHG-4")).unwrap();
    assert_eq!(planned.window, window(30, 31));
    assert_eq!(planned.status.as_deref(), Some("new"));
}

#[path = "change_schedule/property.rs"]
mod property;
