//! The record index model test: random batches, queries, reads and clears give the same
//! answers on the index under test as on [`MemoryRecordIndex`], the reference semantics.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use smsys_core::records::{
    Phase, RecordIndexStore, RecordOrder, RecordQuery, RecordRow, RecordType,
};
use smsys_core::{Position, Version};

use super::read_side::{ReadSideHarness, all_pages};
use super::records::{at, ci, group, person, priority, record_row, service, timer};
use crate::{CheckpointName, MemoryRecordIndex};

const STATUSES: [&str; 5] = ["new", "in_progress", "on_hold", "resolved", "closed"];
const SERVICES: [&str; 3] = ["email", "vpn", "print"];
const GROUPS: [&str; 3] = ["net", "desk", "apps"];
const PERSONS: [&str; 2] = ["ana", "bo"];
const CIS: [&str; 4] = ["mx-01", "mx-02", "prn-1", "db"];
const SUMMARIES: [&str; 8] = [
    "Mail DOWN",
    "mail down 100%",
    "printer_jam",
    "VPN slow",
    "Ünïcode mail",
    "a%b_c",
    "",
    "MaIl relay",
];
const NEEDLES: [&str; 9] = ["mail", "MAIL", "%", "_", "a%b", "", "ün", "Ün", "down 1"];
const ORDERS: [RecordOrder; 4] = [
    RecordOrder::LoggedDesc,
    RecordOrder::LoggedAsc,
    RecordOrder::Priority,
    RecordOrder::Due,
];

/// An instant around the suite's epoch, sometimes below the microsecond.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (-4i64..9, select(vec![0i64, 1, 999, 1_000]))
        .prop_map(|(m, ns)| at(m) + TimeDelta::nanoseconds(ns))
}

fn row() -> impl Strategy<Value = RecordRow> {
    let who = (
        0usize..10,
        any::<bool>(),
        select(STATUSES.to_vec()),
        select(Phase::ALL.to_vec()),
        proptest::option::of(1u8..=5),
        select(SERVICES.to_vec()),
        proptest::option::of(select(GROUPS.to_vec())),
        proptest::option::of(select(PERSONS.to_vec())),
    );
    let what = (
        select(SUMMARIES.to_vec()),
        proptest::collection::vec(select(CIS.to_vec()), 0..3),
        instant(),
        proptest::collection::vec((proptest::option::of(instant()), any::<bool>()), 0..3),
        1u64..20,
    );
    (who, what).prop_map(
        |(
            (entity, request, status, phase, p, svc, grp, pers),
            (summary, cis, logged_at, timers, version),
        )| {
            let mut row = record_row(&format!("M{entity}"));
            if request {
                row.stream = format!("request-M{entity}").parse().expect("valid stream");
                row.record_type = RecordType::new("service_request").expect("valid type");
            }
            row.status = status.to_owned();
            row.phase = phase;
            row.priority = p.map(priority);
            row.service = service(svc);
            row.group = grp.map(group);
            row.person = pers.map(person);
            row.summary = summary.to_owned();
            row.affected_cis = cis.into_iter().map(ci).collect();
            row.logged_at = logged_at;
            row.timers = timers.into_iter().map(|(due, b)| timer(due, b)).collect();
            row.version = Version::new(version);
            row
        },
    )
}

/// A list filter: usually absent.
fn list<T: Clone + std::fmt::Debug + 'static>(
    values: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Vec<T>> {
    prop_oneof![3 => Just(Vec::new()), 1 => proptest::collection::vec(values, 1..3)]
}

/// An optional filter: usually absent.
fn maybe<T: Clone + std::fmt::Debug + 'static>(
    value: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::weighted(0.25, value)
}

fn query() -> impl Strategy<Value = RecordQuery> {
    let lists = (
        list(select(vec!["incident", "service_request"])),
        list(select(STATUSES.to_vec())),
        list(select(Phase::ALL.to_vec())),
        list(1u8..=5),
        list(select(vec!["net", "desk", "apps", "none-such"])),
        list(select(PERSONS.to_vec())),
        list(select(SERVICES.to_vec())),
    );
    let others = (
        maybe(select(vec!["mx-01", "mx-02", "prn-1", "db", "zz"])),
        maybe(any::<bool>()),
        maybe(instant()),
        maybe(select(NEEDLES.to_vec())),
        maybe(instant()),
        maybe(instant()),
        select(ORDERS.to_vec()),
        select(vec![0usize, 1, 3, 7, 1_000, 2_000]),
    );
    (lists, others).prop_map(
        |(
            (types, statuses, phases, priorities, groups, persons, services),
            (c, breached, due_by, text, from, until, order, limit),
        )| RecordQuery {
            record_types: types
                .into_iter()
                .map(|t| RecordType::new(t).expect("valid type"))
                .collect(),
            statuses: statuses.into_iter().map(str::to_owned).collect(),
            phases,
            priorities: priorities.into_iter().map(priority).collect(),
            groups: groups.into_iter().map(group).collect(),
            persons: persons.into_iter().map(person).collect(),
            services: services.into_iter().map(service).collect(),
            ci: c.map(ci),
            breached,
            due_by,
            text: text.map(str::to_owned),
            logged_from: from,
            logged_until: until,
            order,
            after: None,
            limit,
        },
    )
}

#[derive(Debug, Clone)]
enum Op {
    /// Apply a batch to index 0 or 1.
    Apply(bool, Vec<RecordRow>),
    /// Query index 0 or 1.
    Query(bool, Box<RecordQuery>),
    /// Read one row of index 0 or 1.
    Row(bool, usize, bool),
    /// Clear index 0 or 1.
    Clear(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), proptest::collection::vec(row(), 0..12))
            .prop_map(|(which, rows)| Op::Apply(which, rows)),
        4 => (any::<bool>(), query()).prop_map(|(which, q)| Op::Query(which, Box::new(q))),
        1 => (any::<bool>(), 0usize..10, any::<bool>())
            .prop_map(|(which, n, request)| Op::Row(which, n, request)),
        1 => any::<bool>().prop_map(Op::Clear),
    ]
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

async fn run_ops<H: ReadSideHarness>(h: &H, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let db = h.create().await;
    let names = [
        CheckpointName::new("model").map_err(fail)?,
        CheckpointName::new("model.other").map_err(fail)?,
    ];
    let subject = [h.index(&db, &names[0]), h.index(&db, &names[1])];
    let model = [
        MemoryRecordIndex::new(names[0].clone()),
        MemoryRecordIndex::new(names[1].clone()),
    ];
    let mut position = 0;
    for op in ops {
        match op {
            Op::Apply(which, rows) => {
                let i = usize::from(which);
                position += 1;
                let checkpoint = Position::from_sequence(position);
                model[i]
                    .apply(rows.clone(), checkpoint)
                    .await
                    .map_err(fail)?;
                subject[i].apply(rows, checkpoint).await.map_err(fail)?;
            }
            Op::Query(which, query) => {
                let i = usize::from(which);
                let want = model[i].query(&query).await.map_err(fail)?;
                let got = subject[i].query(&query).await.map_err(fail)?;
                prop_assert_eq!(&got.rows, &want.rows, "first page of {:?}", query);
                prop_assert_eq!(
                    got.next.is_some(),
                    want.next.is_some(),
                    "next of {:?}",
                    query
                );
                let want_all = all_pages(&model[i], &query).await;
                let got_all = all_pages(&subject[i], &query).await;
                prop_assert_eq!(got_all, want_all, "every page of {:?}", query);
                prop_assert_eq!(
                    subject[i].count(&query).await.map_err(fail)?,
                    model[i].count(&query).await.map_err(fail)?,
                    "count of {:?}",
                    query
                );
            }
            Op::Row(which, n, request) => {
                let i = usize::from(which);
                let category = if request { "request" } else { "incident" };
                let stream = format!("{category}-M{n}").parse().map_err(fail)?;
                prop_assert_eq!(
                    subject[i].row(&stream).await.map_err(fail)?,
                    model[i].row(&stream).await.map_err(fail)?
                );
            }
            Op::Clear(which) => {
                let i = usize::from(which);
                model[i].clear().await.map_err(fail)?;
                subject[i].clear().await.map_err(fail)?;
            }
        }
        for i in 0..2 {
            prop_assert_eq!(
                subject[i].checkpoint().await.map_err(fail)?,
                model[i].checkpoint().await.map_err(fail)?,
                "checkpoint of index {}",
                i
            );
        }
    }
    for i in 0..2 {
        let everything = RecordQuery {
            limit: 1_000,
            ..RecordQuery::new()
        };
        prop_assert_eq!(
            all_pages(&subject[i], &everything).await,
            all_pages(&model[i], &everything).await,
            "final rows of index {}",
            i
        );
    }
    drop(subject);
    h.teardown(db).await;
    Ok(())
}

/// Random sequences of batches (streams replaced, ties on every key, instants below the
/// microsecond), queries (every filter, order and page size, paged to the end), row reads
/// and clears on two indexes side by side give the same answers on the index under test as
/// on [`MemoryRecordIndex`].
pub async fn index_model_test<H: ReadSideHarness>(h: &H) {
    let cases = std::env::var("SMSYS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config {
            cases,
            ..Config::default()
        });
        let result = runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
            handle.block_on(run_ops(h, ops))
        });
        if let Err(failure) = result {
            panic!("the record index and the memory index disagree: {failure}");
        }
    });
}
