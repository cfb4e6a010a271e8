//! The read-side suite: named checkpoints ([`CheckpointStore`]) and the record index
//! ([`RecordIndexStore`]), written once and run by every backend.
//!
//! # Running it for a backend
//!
//! 1. Implement [`ReadSideHarness`]: a fresh database per case (`create`), its checkpoint
//!    store (`checkpoints`) and the record index of a given name in it (`index`; two calls
//!    with one name give handles to the same index, other names are other indexes in the
//!    same database); `reopens` and `reopen` when what is saved outlives the handle;
//!    `teardown` for what `create` set up.
//! 2. Call [`read_side_suite!`](crate::read_side_suite) in a test file: it expands to one
//!    `#[test]` per case (each on its own runtime, see
//!    [`run_read_side_case`](super::run_read_side_case)). Or call the `pub async fn`s of this
//!    module yourself; each takes the harness and creates what it needs.
//!
//! ```no_run
//! use smsys_store::testkit::MemoryReadSide;
//! smsys_store::read_side_suite!(MemoryReadSide);
//! ```
//!
//! # What the cases hold a backend to, beyond the traits' documentation
//!
//! - A name [`CheckpointName::new`] refuses is refused by `load_checkpoint` and
//!   `save_checkpoint` with a [`StoreError::Backend`] that is not transient and whose source
//!   is the [`CheckpointNameError`] (use [`CheckpointNameError::into_store_error`]).
//! - A query whose cursor belongs to another order, or carries a key no store made, is
//!   refused the same way with a [`CursorError`] as the source.
//! - Queries agree exactly with [`MemoryRecordIndex`]: the rows of every page and their
//!   order, whether a next page exists, counts. Cursors are only compared by what they
//!   select, so a backend may encode its keys its own way. Instants compare at whole
//!   microseconds.
//! - One query sees one state of the index: the rows of an applied batch appear together,
//!   with its checkpoint or after it; what `apply` wrote is read back once it returns.
//! - `clear` and `apply` on one index name leave every other name alone.
//!
//! The number of generated cases of the model test is read from `SMSYS_PROPTEST_CASES`
//! (default 24).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use smsys_core::records::{
    Cursor, Phase, RecordIndexStore, RecordOrder, RecordQuery, RecordRow, RecordType,
};
use smsys_core::{CheckpointStore, Position, StoreError, Version};

pub use super::filters::{checkpoint_bound_to_its_filter, index_bound_to_its_filter};
use super::records::{
    at, ci, epoch, group, paused_timer, person, priority, record_row, service, timer,
};
use crate::{
    CheckpointName, CheckpointNameError, CursorError, MemoryEventStore, MemoryRecordIndex,
};

pub use super::index_model::index_model_test;

/// How the read-side suite gets fresh databases of a backend, and the checkpoint store and
/// record indexes in them.
#[async_trait]
pub trait ReadSideHarness: Send + Sync + 'static {
    /// A database: what checkpoints and indexes live in (an SQLite file, a PostgreSQL
    /// schema, ...).
    type Db: Send + Sync + 'static;
    /// The checkpoint store of a database.
    type Checkpoints: CheckpointStore + 'static;
    /// A record index in a database.
    type Index: RecordIndexStore + 'static;

    /// A fresh, empty database.
    async fn create(&self) -> Self::Db;

    /// The checkpoint store of `db`.
    fn checkpoints(&self, db: &Self::Db) -> Self::Checkpoints;

    /// The record index named `name` in `db`: the same index for the same name.
    fn index(&self, db: &Self::Db, name: &CheckpointName) -> Self::Index;

    /// Whether [`reopen`](Self::reopen) gives the saved state back (a durable backend).
    fn reopens(&self) -> bool {
        false
    }

    /// Closes `db` and opens it again. Called only when [`reopens`](Self::reopens) is true.
    async fn reopen(&self, db: Self::Db) -> Self::Db {
        db
    }

    /// Releases what `create` set up. Called after each case that passed.
    async fn teardown(&self, _db: Self::Db) {}
}

/// The read-side harness of the memory backend: a [`MemoryEventStore`] for checkpoints and
/// one [`MemoryRecordIndex`] per name.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryReadSide;

/// A database of [`MemoryReadSide`].
#[derive(Debug, Default)]
pub struct MemoryDb {
    store: MemoryEventStore,
    indexes: Mutex<HashMap<CheckpointName, MemoryRecordIndex>>,
}

#[async_trait]
impl ReadSideHarness for MemoryReadSide {
    type Db = MemoryDb;
    type Checkpoints = MemoryEventStore;
    type Index = MemoryRecordIndex;

    async fn create(&self) -> MemoryDb {
        MemoryDb::default()
    }

    fn checkpoints(&self, db: &MemoryDb) -> MemoryEventStore {
        db.store.clone()
    }

    fn index(&self, db: &MemoryDb, name: &CheckpointName) -> MemoryRecordIndex {
        db.indexes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.clone())
            .or_insert_with(|| MemoryRecordIndex::new(name.clone()))
            .clone()
    }
}

fn name(text: &str) -> CheckpointName {
    CheckpointName::new(text).expect("suite names are valid")
}

fn seq(n: u64) -> Position {
    Position::from_sequence(n)
}

/// Whether `error` is a permanent backend error caused by an `E`.
fn refused_by<E: StdError + 'static>(error: &StoreError) -> bool {
    let permanent = matches!(error, StoreError::Backend(b) if !b.is_transient());
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<E>() {
            return permanent;
        }
        cause = e.source();
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/// A saved checkpoint is loaded back as saved.
pub async fn checkpoint_round_trip<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let checkpoints = h.checkpoints(&db);
    for (n, position) in [
        ("a", seq(1)),
        ("b", Position::new(7, 3)),
        ("c", Position::START),
        ("d", Position::new(i64::MAX as u64, i64::MAX as u64)),
    ] {
        checkpoints
            .save_checkpoint(n, position)
            .await
            .unwrap_or_else(|e| panic!("saving {position} under {n}: {e}"));
        assert_eq!(
            checkpoints.load_checkpoint(n).await.expect("loads"),
            Some(position),
            "checkpoint {n} round-trips"
        );
    }
    h.teardown(db).await;
}

/// A name nothing was saved under has no checkpoint.
pub async fn checkpoint_unknown_is_none<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let checkpoints = h.checkpoints(&db);
    assert_eq!(
        checkpoints
            .load_checkpoint("never-saved")
            .await
            .expect("loads"),
        None
    );
    checkpoints
        .save_checkpoint("saved", seq(4))
        .await
        .expect("saves");
    assert_eq!(
        checkpoints.load_checkpoint("Saved").await.expect("loads"),
        None,
        "names are case-sensitive"
    );
    h.teardown(db).await;
}

/// Saving again replaces the checkpoint, also with an earlier position (a rebuild).
pub async fn checkpoint_overwrite_also_earlier<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let checkpoints = h.checkpoints(&db);
    for position in [
        seq(10),
        seq(25),
        seq(3),
        Position::START,
        Position::new(2, 1),
    ] {
        checkpoints
            .save_checkpoint("projection", position)
            .await
            .expect("saves");
        assert_eq!(
            checkpoints
                .load_checkpoint("projection")
                .await
                .expect("loads"),
            Some(position),
            "the last saved checkpoint wins"
        );
    }
    h.teardown(db).await;
}

/// Checkpoints of different names do not affect each other.
pub async fn checkpoint_names_are_independent<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let checkpoints = h.checkpoints(&db);
    let names = ["mail-notifier", "mail-notifier.v2", "reports (eu) é", "x"];
    for (i, n) in names.iter().enumerate() {
        checkpoints
            .save_checkpoint(n, seq(i as u64 + 1))
            .await
            .expect("saves");
    }
    checkpoints
        .save_checkpoint("mail-notifier", seq(99))
        .await
        .expect("saves");
    for (i, n) in names.iter().enumerate().skip(1) {
        assert_eq!(
            checkpoints.load_checkpoint(n).await.expect("loads"),
            Some(seq(i as u64 + 1)),
            "{n} untouched by another name"
        );
    }
    assert_eq!(
        checkpoints
            .load_checkpoint("mail-notifier")
            .await
            .expect("loads"),
        Some(seq(99))
    );
    h.teardown(db).await;
}

/// Saved checkpoints survive closing and reopening (when the harness can reopen).
pub async fn checkpoint_survives_reopen<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    if !h.reopens() {
        h.teardown(db).await;
        return;
    }
    let checkpoints = h.checkpoints(&db);
    checkpoints
        .save_checkpoint("kept", Position::new(3, 9))
        .await
        .expect("saves");
    checkpoints
        .save_checkpoint("moved", seq(50))
        .await
        .expect("saves");
    checkpoints
        .save_checkpoint("moved", seq(5))
        .await
        .expect("saves");
    drop(checkpoints);
    let db = h.reopen(db).await;
    let checkpoints = h.checkpoints(&db);
    assert_eq!(
        checkpoints.load_checkpoint("kept").await.expect("loads"),
        Some(Position::new(3, 9))
    );
    assert_eq!(
        checkpoints.load_checkpoint("moved").await.expect("loads"),
        Some(seq(5))
    );
    h.teardown(db).await;
}

/// Empty, overlong and control-character names are refused with a [`CheckpointNameError`].
pub async fn checkpoint_bad_names_refused<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let checkpoints = h.checkpoints(&db);
    let long = "x".repeat(crate::MAX_CHECKPOINT_NAME_LEN + 1);
    for bad in ["", "a\nb", "tab\tname", "nul\0", long.as_str()] {
        match checkpoints.save_checkpoint(bad, seq(1)).await {
            Err(e) => assert!(
                refused_by::<CheckpointNameError>(&e),
                "saving under {bad:?}: a permanent error caused by the name, got {e:?}"
            ),
            Ok(()) => panic!("saving under {bad:?} must be refused"),
        }
        match checkpoints.load_checkpoint(bad).await {
            Err(e) => assert!(
                refused_by::<CheckpointNameError>(&e),
                "loading {bad:?}: a permanent error caused by the name, got {e:?}"
            ),
            Ok(found) => panic!("loading {bad:?} must be refused, got {found:?}"),
        }
    }
    let longest = "y".repeat(crate::MAX_CHECKPOINT_NAME_LEN);
    checkpoints
        .save_checkpoint(&longest, seq(2))
        .await
        .expect("the longest name is accepted");
    assert_eq!(
        checkpoints.load_checkpoint(&longest).await.expect("loads"),
        Some(seq(2))
    );
    h.teardown(db).await;
}

// ---------------------------------------------------------------------------------------------
// Record index

/// A row using every field, with instants below the microsecond.
fn rich_row() -> RecordRow {
    let mut row = record_row("RICH-1");
    row.status = "Awaiting vendor — «dringend»".to_owned();
    row.phase = Phase::Pending;
    row.priority = Some(priority(2));
    row.service = service("e-mail (EU)");
    row.group = Some(group("network l2"));
    row.person = Some(person("agent:ana@example.org"));
    row.summary = "Drucker brennt 🔥 \"quoted\" 100% _x_ \\ \u{0} end".to_owned();
    row.affected_cis = vec![ci("mx-01"), ci("mx-02"), ci("mx-01")];
    row.logged_at = epoch() + TimeDelta::nanoseconds(123_456_789);
    row.resolved_at = Some(at(90));
    row.closed_at = Some(at(120) + TimeDelta::nanoseconds(1));
    row.reopen_count = 3;
    row.major = true;
    row.timers = vec![
        timer(Some(at(240) + TimeDelta::nanoseconds(999)), false),
        paused_timer("response"),
    ];
    row.version = Version::new(17);
    row
}

/// An index starts empty; applied rows and the checkpoint read back exactly, one at a time or
/// several at once, also after reopening; an empty batch moves the checkpoint alone.
pub async fn index_apply_and_row<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let index = h.index(&db, &name("record_index.v1"));
    assert_eq!(index.name(), "record_index.v1");
    assert_eq!(index.checkpoint().await.expect("reads"), None);
    let rich = rich_row();
    assert_eq!(index.row(&rich.stream).await.expect("reads"), None);
    let plain = record_row("PLAIN-1");
    index
        .apply(vec![rich.clone(), plain.clone()], seq(12))
        .await
        .expect("applies");
    assert_eq!(index.checkpoint().await.expect("reads"), Some(seq(12)));
    assert_eq!(
        index.row(&rich.stream).await.expect("reads"),
        Some(rich.clone()),
        "the row reads back exactly"
    );
    assert_eq!(
        index.row(&plain.stream).await.expect("reads"),
        Some(plain.clone())
    );
    let missing = record_row("MISSING-1").stream;
    assert_eq!(
        index
            .rows(&[plain.stream.clone(), missing, rich.stream.clone()])
            .await
            .expect("reads"),
        vec![Some(plain.clone()), None, Some(rich.clone())],
        "rows answer in the order asked, none where a record has no row"
    );
    assert_eq!(index.rows(&[]).await.expect("reads"), Vec::new());
    let page = index.query(&RecordQuery::new()).await.expect("queries");
    assert_eq!(page.rows.len(), 2);
    assert!(page.rows.contains(&rich), "a query returns the exact row");
    assert_eq!(page.next, None, "one page");

    index
        .apply(Vec::new(), Position::new(1, 20))
        .await
        .expect("an empty batch applies");
    assert_eq!(
        index.checkpoint().await.expect("reads"),
        Some(Position::new(1, 20))
    );
    assert_eq!(index.count(&RecordQuery::new()).await.expect("counts"), 2);

    let db = if h.reopens() {
        drop(index);
        let db = h.reopen(db).await;
        let index = h.index(&db, &name("record_index.v1"));
        assert_eq!(
            index.checkpoint().await.expect("reads"),
            Some(Position::new(1, 20)),
            "the checkpoint survives reopening"
        );
        assert_eq!(
            index.row(&rich.stream).await.expect("reads"),
            Some(rich),
            "the rows survive reopening"
        );
        db
    } else {
        db
    };
    h.teardown(db).await;
}

/// A row replaces the row of its stream, configuration items included; in one batch the
/// later row of a stream wins.
pub async fn index_replaces_by_stream<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let index = h.index(&db, &name("idx"));
    let mut first = record_row("R-1");
    first.group = Some(group("net"));
    first.affected_cis = vec![ci("old-a"), ci("old-b")];
    let other = record_row("R-2");
    index
        .apply(vec![first.clone(), other.clone()], seq(1))
        .await
        .expect("applies");
    let mut second = first.clone();
    second.group = Some(group("desk"));
    second.affected_cis = vec![ci("new")];
    second.version = Version::new(2);
    index
        .apply(vec![second.clone()], seq(2))
        .await
        .expect("applies");
    assert_eq!(index.row(&first.stream).await.expect("reads"), Some(second));
    assert_eq!(index.row(&other.stream).await.expect("reads"), Some(other));
    let count = |q: RecordQuery| {
        let index = &index;
        async move { index.count(&q).await.expect("counts") }
    };
    assert_eq!(count(RecordQuery::new()).await, 2, "replaced, not added");
    let by_ci = |c: &str| RecordQuery {
        ci: Some(ci(c)),
        ..RecordQuery::new()
    };
    assert_eq!(count(by_ci("old-a")).await, 0, "old items are gone");
    assert_eq!(count(by_ci("new")).await, 1);
    let by_group = |g: &str| RecordQuery {
        groups: vec![group(g)],
        ..RecordQuery::new()
    };
    assert_eq!(count(by_group("net")).await, 0);
    assert_eq!(count(by_group("desk")).await, 1);

    let mut third = first.clone();
    third.summary = "third".to_owned();
    third.affected_cis = vec![ci("third")];
    third.version = Version::new(3);
    let mut fourth = third.clone();
    fourth.summary = "fourth".to_owned();
    fourth.affected_cis = vec![ci("fourth")];
    fourth.version = Version::new(4);
    index
        .apply(vec![third, fourth.clone()], seq(3))
        .await
        .expect("applies");
    assert_eq!(
        index.row(&first.stream).await.expect("reads"),
        Some(fourth),
        "the later row of a batch wins"
    );
    assert_eq!(count(by_ci("third")).await, 0);
    assert_eq!(count(by_ci("fourth")).await, 1);
    h.teardown(db).await;
}

/// Rows and checkpoint are written together: a query sees every row of a batch or none, and
/// the checkpoints read around it bracket the batch it saw.
pub async fn index_apply_is_atomic<H: ReadSideHarness>(h: &H) {
    const ROWS: usize = 20;
    const BATCHES: u64 = 40;
    let db = h.create().await;
    let index = Arc::new(h.index(&db, &name("atomic")));
    let batch = |k: u64| -> Vec<RecordRow> {
        (0..ROWS)
            .map(|i| {
                let mut row = record_row(&format!("A-{i:02}"));
                row.version = Version::new(k);
                row.summary = format!("batch {k}");
                row
            })
            .collect()
    };
    let writer = {
        let index = Arc::clone(&index);
        tokio::spawn(async move {
            for k in 1..=BATCHES {
                index.apply(batch(k), seq(k)).await.expect("applies");
                // What apply wrote is read back once it returns.
                assert_eq!(index.checkpoint().await.expect("reads"), Some(seq(k)));
                let row = index
                    .row(&record_row("A-07").stream)
                    .await
                    .expect("reads")
                    .expect("present");
                assert_eq!(row.version, Version::new(k));
            }
        })
    };
    let query = RecordQuery {
        order: RecordOrder::LoggedAsc,
        limit: 1_000,
        ..RecordQuery::new()
    };
    let mut seen = 0;
    loop {
        let done = writer.is_finished();
        let before = index.checkpoint().await.expect("reads");
        let page = index.query(&query).await.expect("queries");
        let after = index.checkpoint().await.expect("reads");
        if let Some(first) = page.rows.first() {
            assert_eq!(page.rows.len(), ROWS, "every row of the batch or none");
            let k = first.version.get();
            assert!(
                page.rows
                    .iter()
                    .all(|r| r.version.get() == k && r.summary == format!("batch {k}")),
                "one query sees one batch"
            );
            let before = before.map_or(0, Position::sequence);
            let after = after.map_or(0, Position::sequence);
            assert!(
                before <= k && k <= after,
                "batch {k} seen between checkpoints {before} and {after}"
            );
            seen += 1;
        }
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    writer.await.expect("the writer finished");
    assert!(seen > 0);
    assert_eq!(index.checkpoint().await.expect("reads"), Some(seq(BATCHES)));
    drop(index);
    h.teardown(db).await;
}

/// The rows of the filter case: a to e.
fn filter_rows() -> Vec<RecordRow> {
    let mut a = record_row("A");
    a.status = "new".into();
    a.phase = Phase::New;
    a.priority = Some(priority(1));
    a.group = Some(group("net"));
    a.person = Some(person("ana"));
    a.summary = "Mail DOWN for 100% of users".into();
    a.affected_cis = vec![ci("mx-01"), ci("mx-02")];
    a.logged_at = at(0);
    a.timers = vec![timer(Some(at(60)), false)];

    let mut b = record_row("B");
    b.status = "in_progress".into();
    b.phase = Phase::Active;
    b.priority = Some(priority(2));
    b.group = Some(group("net"));
    b.person = Some(person("bo"));
    b.summary = "printer_jam on floor 2".into();
    b.affected_cis = vec![ci("prn-1")];
    b.logged_at = at(10);
    b.timers = vec![timer(Some(at(30)), true)];

    let mut c = record_row("C");
    c.stream = "request-C".parse().expect("valid stream");
    c.record_type = RecordType::new("service_request").expect("valid type");
    c.status = "on_hold".into();
    c.phase = Phase::Pending;
    c.service = service("vpn");
    c.group = Some(group("desk"));
    c.summary = "VPN access".into();
    c.logged_at = at(20);

    let mut d = record_row("D");
    d.status = "resolved".into();
    d.phase = Phase::Resolved;
    d.priority = Some(priority(3));
    d.service = service("vpn");
    d.summary = "mail relay slow".into();
    d.affected_cis = vec![ci("mx-01")];
    d.logged_at = at(30);
    d.timers = vec![timer(None, true)];

    let mut e = record_row("E");
    e.status = "closed".into();
    e.phase = Phase::Closed;
    e.priority = Some(priority(5));
    e.group = Some(group("desk"));
    e.person = Some(person("ana"));
    e.summary = "A_B 50% done".into();
    e.affected_cis = vec![ci("mx-01"), ci("mx-01")];
    e.logged_at = at(40);
    e.timers = vec![timer(Some(at(5)), false), timer(Some(at(200)), true)];
    vec![a, b, c, d, e]
}

/// The references of the rows a query selects, sorted.
async fn selected<I: RecordIndexStore + ?Sized>(index: &I, query: &RecordQuery) -> String {
    let rows = all_pages(index, query).await;
    let count = index.count(query).await.expect("counts");
    assert_eq!(
        count,
        rows.len() as u64,
        "count agrees with the rows of {query:?}"
    );
    let mut refs: Vec<&str> = rows.iter().map(|r| r.reference.as_str()).collect();
    refs.sort_unstable();
    refs.concat()
}

/// Every page of `query` from the first, checked for the paging contract.
pub(crate) async fn all_pages<I: RecordIndexStore + ?Sized>(
    index: &I,
    query: &RecordQuery,
) -> Vec<RecordRow> {
    let mut query = query.clone();
    query.after = None;
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let page = index
            .query(&query)
            .await
            .unwrap_or_else(|e| panic!("query {query:?}: {e}"));
        assert!(
            page.rows.len() <= query.page_size(),
            "a page holds at most its size"
        );
        if query.after.is_some() {
            assert!(
                !page.rows.is_empty(),
                "a cursor never leads to an empty page"
            );
        }
        out.extend(page.rows);
        match page.next {
            Some(next) => {
                assert_eq!(
                    next.order, query.order,
                    "the cursor names the query's order"
                );
                assert_eq!(
                    out.len() % query.page_size(),
                    0,
                    "every page before the last is full"
                );
                query.after = Some(next);
            }
            None => return out,
        }
    }
    panic!("paging did not end");
}

/// Each filter selects exactly the rows it describes; empty lists select any.
pub async fn index_filters<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let index = h.index(&db, &name("filters"));
    index.apply(filter_rows(), seq(5)).await.expect("applies");
    let q = RecordQuery::new;
    let cases: Vec<(&str, RecordQuery, &str)> = vec![
        ("nothing", q(), "ABCDE"),
        (
            "empty lists",
            RecordQuery {
                record_types: vec![],
                groups: vec![],
                ..q()
            },
            "ABCDE",
        ),
        (
            "record type",
            RecordQuery {
                record_types: vec![RecordType::new("service_request").expect("valid")],
                ..q()
            },
            "C",
        ),
        (
            "statuses",
            RecordQuery {
                statuses: vec!["new".into(), "closed".into()],
                ..q()
            },
            "AE",
        ),
        (
            "phases",
            RecordQuery {
                phases: vec![Phase::Active, Phase::Pending],
                ..q()
            },
            "BC",
        ),
        ("open", RecordQuery::open(), "ABC"),
        (
            "priorities",
            RecordQuery {
                priorities: vec![priority(1), priority(3)],
                ..q()
            },
            "AD",
        ),
        (
            "one priority",
            RecordQuery {
                priorities: vec![priority(5)],
                ..q()
            },
            "E",
        ),
        (
            "groups",
            RecordQuery {
                groups: vec![group("desk")],
                ..q()
            },
            "CE",
        ),
        (
            "persons",
            RecordQuery {
                persons: vec![person("ana"), person("nobody")],
                ..q()
            },
            "AE",
        ),
        (
            "services",
            RecordQuery {
                services: vec![service("vpn")],
                ..q()
            },
            "CD",
        ),
        (
            "ci",
            RecordQuery {
                ci: Some(ci("mx-01")),
                ..q()
            },
            "ADE",
        ),
        (
            "ci of one",
            RecordQuery {
                ci: Some(ci("prn-1")),
                ..q()
            },
            "B",
        ),
        (
            "unknown ci",
            RecordQuery {
                ci: Some(ci("mx-0")),
                ..q()
            },
            "",
        ),
        (
            "breached",
            RecordQuery {
                breached: Some(true),
                ..q()
            },
            "BDE",
        ),
        (
            "not breached",
            RecordQuery {
                breached: Some(false),
                ..q()
            },
            "AC",
        ),
        (
            "due by, inclusive",
            RecordQuery {
                due_by: Some(at(30)),
                ..q()
            },
            "BE",
        ),
        (
            "due by, just before",
            RecordQuery {
                due_by: Some(at(30) - TimeDelta::microseconds(1)),
                ..q()
            },
            "E",
        ),
        (
            "due by, later",
            RecordQuery {
                due_by: Some(at(60)),
                ..q()
            },
            "ABE",
        ),
        (
            "due by, before all",
            RecordQuery {
                due_by: Some(at(-100)),
                ..q()
            },
            "",
        ),
        (
            "text",
            RecordQuery {
                text: Some("mail".into()),
                ..q()
            },
            "AD",
        ),
        (
            "text, other case",
            RecordQuery {
                text: Some("MAIL d".into()),
                ..q()
            },
            "A",
        ),
        (
            "text, percent is no wildcard",
            RecordQuery {
                text: Some("%".into()),
                ..q()
            },
            "AE",
        ),
        (
            "text, underscore is no wildcard",
            RecordQuery {
                text: Some("a_b".into()),
                ..q()
            },
            "E",
        ),
        (
            "text, no match",
            RecordQuery {
                text: Some("m_il".into()),
                ..q()
            },
            "",
        ),
        (
            "text, empty",
            RecordQuery {
                text: Some(String::new()),
                ..q()
            },
            "ABCDE",
        ),
        (
            "logged from, inclusive",
            RecordQuery {
                logged_from: Some(at(20)),
                ..q()
            },
            "CDE",
        ),
        (
            "logged until, exclusive",
            RecordQuery {
                logged_until: Some(at(20)),
                ..q()
            },
            "AB",
        ),
        (
            "logged between",
            RecordQuery {
                logged_from: Some(at(10)),
                logged_until: Some(at(30)),
                ..q()
            },
            "BC",
        ),
        (
            "all together",
            RecordQuery {
                groups: vec![group("net")],
                phases: vec![Phase::New, Phase::Active],
                priorities: vec![priority(1), priority(2)],
                breached: Some(false),
                ..q()
            },
            "A",
        ),
    ];
    for (what, query, want) in cases {
        for order in [
            RecordOrder::LoggedDesc,
            RecordOrder::LoggedAsc,
            RecordOrder::Priority,
            RecordOrder::Due,
        ] {
            for limit in [1, 0] {
                let query = RecordQuery {
                    order,
                    limit,
                    ..query.clone()
                };
                assert_eq!(
                    selected(&index, &query).await,
                    want,
                    "filter {what}, {order:?}, limit {limit}"
                );
            }
        }
    }
    h.teardown(db).await;
}

/// The rows of the order case: ties on every key, and instants within one microsecond.
fn order_rows() -> Vec<RecordRow> {
    let row = |r: &str, logged: i64, p: Option<u8>, due: Option<i64>| {
        let mut row = record_row(r);
        row.logged_at = at(logged);
        row.priority = p.map(priority);
        row.timers = vec![timer(due.map(at), false)];
        row
    };
    let mut o6 = row("O6", 10, Some(2), None);
    // Logged within the same microsecond as O3 and O4: a tie.
    o6.logged_at += TimeDelta::nanoseconds(1);
    let mut o5 = row("O5", -5, None, Some(50));
    // Two timers: the earliest due counts.
    o5.timers.push(timer(Some(at(400)), false));
    // In an order that is none of the expected ones.
    vec![
        row("O3", 10, None, None),
        row("O1", 0, Some(2), Some(50)),
        o6,
        row("O4", 10, Some(1), Some(20)),
        o5,
        row("O2", 0, Some(2), Some(50)),
    ]
}

/// Each order sorts as documented, ties broken by stream, on pages of every size.
pub async fn index_orders_with_ties<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let index = h.index(&db, &name("orders"));
    index.apply(order_rows(), seq(6)).await.expect("applies");
    for (order, want) in [
        (RecordOrder::LoggedAsc, "O5 O1 O2 O3 O4 O6"),
        (RecordOrder::LoggedDesc, "O6 O4 O3 O2 O1 O5"),
        (RecordOrder::Priority, "O4 O1 O2 O6 O5 O3"),
        (RecordOrder::Due, "O4 O1 O2 O5 O3 O6"),
    ] {
        for limit in [1, 2, 4, 6, 7, 0] {
            let query = RecordQuery {
                order,
                limit,
                ..RecordQuery::new()
            };
            let got: Vec<String> = all_pages(&index, &query)
                .await
                .iter()
                .map(|r| r.reference.to_string())
                .collect();
            assert_eq!(got.join(" "), want, "{order:?}, pages of {limit}");
        }
    }
    assert_eq!(
        RecordQuery::new().order,
        RecordOrder::LoggedDesc,
        "newest first by default"
    );
    h.teardown(db).await;
}

/// The paging rows: many ties on every key.
fn paging_rows(n: usize) -> Vec<RecordRow> {
    (0..n)
        .map(|i| {
            let mut row = record_row(&format!("P{:04}", (i * 7_919) % n));
            row.logged_at = at((i % 17) as i64);
            row.priority = match i % 6 {
                0 => None,
                p => Some(priority(p as u8)),
            };
            let due = (i % 5 != 0).then(|| at((i % 11) as i64));
            row.timers = vec![timer(due, i % 3 == 0)];
            row.phase = Phase::ALL[i % Phase::ALL.len()];
            row.group = Some(group(["net", "desk", "apps"][i % 3]));
            row
        })
        .collect()
}

/// The documented order, stated independently of the stores' code.
fn documented(a: &RecordRow, b: &RecordRow, order: RecordOrder) -> Ordering {
    let logged = |r: &RecordRow| r.logged_at.timestamp_micros();
    let prio = |r: &RecordRow| r.priority.map_or(u8::MAX, |p| p.get());
    let due = |r: &RecordRow| r.timers.iter().filter_map(|t| t.due).min();
    let due_cmp = match (due(a), due(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    match order {
        RecordOrder::LoggedAsc => logged(a).cmp(&logged(b)).then(a.stream.cmp(&b.stream)),
        RecordOrder::LoggedDesc => logged(b).cmp(&logged(a)).then(b.stream.cmp(&a.stream)),
        RecordOrder::Priority => prio(a)
            .cmp(&prio(b))
            .then(logged(a).cmp(&logged(b)))
            .then(a.stream.cmp(&b.stream)),
        RecordOrder::Due => due_cmp.then(a.stream.cmp(&b.stream)),
    }
}

/// Paging through 1,200 rows with pages of 1, 7 and 50 (also filtered) gives the full ordered
/// result: no row twice, none skipped; limits are clamped; counts ignore order and cursor.
pub async fn index_paging_through_many_rows<H: ReadSideHarness>(h: &H) {
    const N: usize = 1_200;
    let db = h.create().await;
    let index = h.index(&db, &name("paging"));
    let rows = paging_rows(N);
    index
        .apply(rows[..500].to_vec(), seq(1))
        .await
        .expect("applies");
    index
        .apply(rows[500..].to_vec(), seq(2))
        .await
        .expect("applies");
    for order in [
        RecordOrder::LoggedDesc,
        RecordOrder::LoggedAsc,
        RecordOrder::Priority,
        RecordOrder::Due,
    ] {
        let mut want = rows.clone();
        want.sort_by(|a, b| documented(a, b, order));
        for limit in [1, 7, 50] {
            let query = RecordQuery {
                order,
                limit,
                ..RecordQuery::new()
            };
            let got = all_pages(&index, &query).await;
            assert_eq!(got.len(), N, "{order:?}, pages of {limit}: every row once");
            assert!(
                got == want,
                "{order:?}, pages of {limit}: the full ordered result"
            );
        }
        let open = RecordQuery {
            order,
            limit: 7,
            ..RecordQuery::open()
        };
        let want_open: Vec<RecordRow> =
            want.iter().filter(|r| r.phase.is_open()).cloned().collect();
        assert!(
            all_pages(&index, &open).await == want_open,
            "{order:?}: open rows, pages of 7"
        );
        assert_eq!(
            index.count(&open).await.expect("counts"),
            want_open.len() as u64
        );

        // Limits: 0 is 50, above 1,000 is 1,000.
        let page = index
            .query(&RecordQuery {
                order,
                limit: 0,
                ..RecordQuery::new()
            })
            .await
            .expect("queries");
        assert_eq!(page.rows.len(), 50);
        let big = RecordQuery {
            order,
            limit: 5_000,
            ..RecordQuery::new()
        };
        let page = index.query(&big).await.expect("queries");
        assert_eq!(page.rows.len(), 1_000, "clamped to 1,000");
        assert!(page.rows == want[..1_000], "{order:?}: the first 1,000");
        let next = page.next.expect("more follow");
        let rest = index
            .query(&RecordQuery {
                after: Some(next.clone()),
                ..big.clone()
            })
            .await
            .expect("queries");
        assert!(rest.rows == want[1_000..], "{order:?}: the rest");
        assert_eq!(rest.next, None);
        // A count ignores order, cursor and limit.
        assert_eq!(
            index
                .count(&RecordQuery {
                    after: Some(next),
                    limit: 3,
                    ..big
                })
                .await
                .expect("counts"),
            N as u64
        );
    }
    h.teardown(db).await;
}

/// A cursor of another order, or with a key no store made, is refused with a [`CursorError`].
pub async fn index_foreign_cursors_refused<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let index = h.index(&db, &name("cursors"));
    index.apply(order_rows(), seq(1)).await.expect("applies");
    let first = index
        .query(&RecordQuery {
            order: RecordOrder::LoggedAsc,
            limit: 2,
            ..RecordQuery::new()
        })
        .await
        .expect("queries");
    let cursor = first.next.expect("more follow");
    for order in [
        RecordOrder::LoggedDesc,
        RecordOrder::Priority,
        RecordOrder::Due,
    ] {
        match index
            .query(&RecordQuery {
                order,
                after: Some(cursor.clone()),
                ..RecordQuery::new()
            })
            .await
        {
            Err(e) => assert!(
                refused_by::<CursorError>(&e),
                "a {:?} cursor in a {order:?} query: a permanent cursor error, got {e:?}",
                cursor.order
            ),
            Ok(page) => panic!("a {:?} cursor in a {order:?} query: {page:?}", cursor.order),
        }
    }
    for key in ["", "soon", "1:2:3"] {
        let made_up = Cursor {
            order: RecordOrder::Priority,
            key: key.to_owned(),
            stream: cursor.stream.clone(),
        };
        match index
            .query(&RecordQuery {
                order: RecordOrder::Priority,
                after: Some(made_up),
                ..RecordQuery::new()
            })
            .await
        {
            Err(e) => assert!(
                refused_by::<CursorError>(&e),
                "key {key:?}: a permanent cursor error, got {e:?}"
            ),
            Ok(page) => panic!("key {key:?}: {page:?}"),
        }
    }
    h.teardown(db).await;
}

/// Indexes of different names live side by side; clearing one removes its rows and its
/// checkpoint and leaves the others (and other checkpoints) alone.
pub async fn index_clear_leaves_other_names<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let v1 = h.index(&db, &name("record_index.v1"));
    let v2 = h.index(&db, &name("record_index.v2"));
    let checkpoints = h.checkpoints(&db);
    checkpoints
        .save_checkpoint("mail-notifier", seq(77))
        .await
        .expect("saves");
    let mut old = record_row("S-1");
    old.summary = "old version".into();
    old.affected_cis = vec![ci("shared")];
    let mut new = old.clone();
    new.summary = "new version".into();
    v1.apply(vec![old.clone(), record_row("S-2")], seq(5))
        .await
        .expect("applies");
    v2.apply(vec![new.clone()], seq(9)).await.expect("applies");
    assert_eq!(v1.row(&old.stream).await.expect("reads"), Some(old.clone()));
    assert_eq!(v2.row(&old.stream).await.expect("reads"), Some(new.clone()));
    assert_eq!(v1.count(&RecordQuery::new()).await.expect("counts"), 2);
    assert_eq!(v2.count(&RecordQuery::new()).await.expect("counts"), 1);

    v1.clear().await.expect("clears");
    assert_eq!(v1.checkpoint().await.expect("reads"), None);
    assert_eq!(v1.row(&old.stream).await.expect("reads"), None);
    assert_eq!(v1.count(&RecordQuery::new()).await.expect("counts"), 0);
    let by_ci = RecordQuery {
        ci: Some(ci("shared")),
        ..RecordQuery::new()
    };
    assert_eq!(v1.count(&by_ci).await.expect("counts"), 0);
    assert!(
        v1.query(&RecordQuery::new())
            .await
            .expect("queries")
            .rows
            .is_empty()
    );

    assert_eq!(v2.checkpoint().await.expect("reads"), Some(seq(9)));
    assert_eq!(v2.row(&old.stream).await.expect("reads"), Some(new));
    assert_eq!(v2.count(&by_ci).await.expect("counts"), 1);
    assert_eq!(
        checkpoints
            .load_checkpoint("mail-notifier")
            .await
            .expect("loads"),
        Some(seq(77))
    );

    // A cleared index is rebuilt from the start.
    v1.apply(vec![old.clone()], seq(1)).await.expect("applies");
    assert_eq!(v1.checkpoint().await.expect("reads"), Some(seq(1)));
    assert_eq!(v1.row(&old.stream).await.expect("reads"), Some(old));
    h.teardown(db).await;
}

/// Expands to one `#[test]` per read-side case (checkpoints and record index) for the
/// [`ReadSideHarness`] value given.
#[macro_export]
macro_rules! read_side_suite {
    ($harness:expr) => {
        $crate::read_side_suite!(@cases $harness;
            checkpoint_round_trip,
            checkpoint_unknown_is_none,
            checkpoint_overwrite_also_earlier,
            checkpoint_names_are_independent,
            checkpoint_survives_reopen,
            checkpoint_bad_names_refused,
            checkpoint_bound_to_its_filter,
            index_apply_and_row,
            index_replaces_by_stream,
            index_apply_is_atomic,
            index_filters,
            index_orders_with_ties,
            index_paging_through_many_rows,
            index_foreign_cursors_refused,
            index_clear_leaves_other_names,
            index_bound_to_its_filter,
            index_model_test
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::run_read_side_case($harness, |h| async move {
                    $crate::testkit::read_side::$case(&h).await;
                });
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_order_breaks_every_tie() {
        let rows = paging_rows(300);
        for order in [
            RecordOrder::LoggedDesc,
            RecordOrder::LoggedAsc,
            RecordOrder::Priority,
            RecordOrder::Due,
        ] {
            for a in &rows[..30] {
                for b in &rows {
                    assert_eq!(
                        documented(a, b, order) == Ordering::Equal,
                        a.stream == b.stream
                    );
                }
            }
        }
    }
}
