//! The record index and checkpoints on PostgreSQL: names, versions side by side, atomic
//! batches, a projection under terminated connections, and queries against a reference.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;
use smsys_core::records::{
    CiId, Cursor, GroupId, PersonId, Phase, Priority, RecordIndexStore, RecordOrder, RecordQuery,
    RecordRow, RecordType, Reference, ServiceId, TimerRow,
};
use smsys_core::{
    CheckpointStore, EventStore, ExpectedVersion, Position, Projection, ProjectionError,
    ProjectionRunner, RecordedEvent, StoreError, StreamId, Version,
};
use smsys_store::postgres::PgRecordIndex;
use smsys_store::testkit::event;
use smsys_store::{CheckpointName, CheckpointNameError, CursorError, MemoryRecordIndex};

use super::{database_url, drop_schema, fresh_schema, open, raw, read_all};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0)
        .single()
        .expect("a valid instant")
}

fn name(name: &str) -> CheckpointName {
    CheckpointName::new(name).expect("valid checkpoint name")
}

/// A row for `stream` (`category-REF`), with every optional part empty.
fn row(stream: &str) -> RecordRow {
    let stream: StreamId = stream.parse().expect("valid stream");
    RecordRow {
        record_type: RecordType::new(stream.category_str()).expect("valid record type"),
        reference: Reference::new(stream.entity_id()).expect("valid reference"),
        stream,
        status: "new".to_owned(),
        phase: Phase::New,
        priority: None,
        service: ServiceId::new("email").expect("valid"),
        group: None,
        person: None,
        caller: PersonId::new("caller").expect("valid"),
        summary: "printer".to_owned(),
        affected_cis: Vec::new(),
        logged_at: t0(),
        resolved_at: None,
        closed_at: None,
        reopen_count: 0,
        major: false,
        timers: Vec::new(),
        version: Version::FIRST,
    }
}

fn ci(name: &str) -> CiId {
    CiId::new(name).expect("valid ci")
}

/// The backend error's source, which says why a request was refused.
fn refusal<E: std::error::Error + Clone + 'static>(error: StoreError) -> E {
    match error {
        StoreError::Backend(e) => {
            assert!(!e.is_transient(), "a refusal is not transient: {e}");
            std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<E>())
                .cloned()
                .unwrap_or_else(|| panic!("unexpected source of {e}"))
        }
        other @ (StoreError::Corrupt { .. }
        | StoreError::Closed { .. }
        | StoreError::CheckpointFilter(_)) => {
            panic!("expected a backend refusal, got {other}")
        }
    }
}

/// Every row of an index, read through queries of 1,000 rows.
async fn all_rows(index: &PgRecordIndex) -> Result<Vec<RecordRow>, StoreError> {
    let mut query = RecordQuery {
        order: RecordOrder::LoggedAsc,
        limit: 1_000,
        ..RecordQuery::new()
    };
    let mut rows = Vec::new();
    loop {
        let page = index.query(&query).await?;
        rows.extend(page.rows);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(rows),
        }
    }
}

/// `CheckpointStore` on the checkpoints table: names checked, rebuilds may go back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_checkpoint_store_keeps_named_positions() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 2).await;
    let checkpoints: &dyn CheckpointStore = &store;
    assert_eq!(
        checkpoints.load_checkpoint("mailer").await.expect("loads"),
        None
    );
    checkpoints
        .save_checkpoint("mailer", Position::new(9, 12))
        .await
        .expect("saves");
    checkpoints
        .save_checkpoint("report/v2 (eu) é", Position::new(1, 1))
        .await
        .expect("saves");
    checkpoints
        .save_checkpoint("mailer", Position::new(3, 4))
        .await
        .expect("an earlier position replaces a later one: a rebuild");
    assert_eq!(
        checkpoints.load_checkpoint("mailer").await.expect("loads"),
        Some(Position::new(3, 4))
    );
    assert_eq!(
        store.load_checkpoint(&name("mailer")).await.expect("loads"),
        Some(Position::new(3, 4)),
        "the same table as the named checkpoints of subscribers"
    );
    for (bad, expected) in [
        ("", CheckpointNameError::Empty),
        (
            "a\nb",
            CheckpointNameError::ControlCharacter {
                name: "a\nb".to_owned(),
            },
        ),
    ] {
        let e = checkpoints
            .save_checkpoint(bad, Position::new(1, 1))
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("save checkpoint"), "{e}");
        assert_eq!(refusal::<CheckpointNameError>(e), expected);
        let e = checkpoints.load_checkpoint(bad).await.expect_err("refused");
        assert_eq!(refusal::<CheckpointNameError>(e), expected);
    }
    let long = "x".repeat(smsys_store::MAX_CHECKPOINT_NAME_LEN + 1);
    assert!(matches!(
        refusal::<CheckpointNameError>(
            checkpoints
                .load_checkpoint(&long)
                .await
                .expect_err("refused")
        ),
        CheckpointNameError::TooLong { .. }
    ));
    drop(store);
    drop_schema(&url, &schema).await;
}

/// Two versions of the index side by side; rows read back exactly (nanoseconds, NUL,
/// non-ASCII); a later row replaces an earlier one with its configuration items; `clear`
/// empties one name only; cursors of another order or made up are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_record_index_versions_live_side_by_side() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 4).await;
    let v1 = store.record_index(name("record_index.v1"));
    let v2 = store.record_index(name("record_index.v2"));
    assert_eq!(v1.name(), "record_index.v1");
    assert_eq!(v1.checkpoint().await.expect("reads"), None);

    let mut odd = row("incident-INC-1");
    odd.summary = "Nul \0 byte, Straße, \u{212A}elvin, 100% _done_ \\".to_owned();
    odd.status = "on\0hold \u{1}0".to_owned();
    odd.logged_at = t0() + TimeDelta::nanoseconds(123_456_789);
    odd.affected_cis = vec![ci("mx-01"), ci("db 1"), ci("mx-01")];
    odd.priority = Some(Priority::new(2).expect("valid"));
    odd.group = Some(GroupId::new("réseau").expect("valid"));
    odd.timers = vec![TimerRow {
        timer: "resolution".to_owned(),
        cycle: 2,
        running: true,
        paused: false,
        due: Some(t0() + TimeDelta::nanoseconds(1)),
        next_threshold: None,
        breached: true,
    }];
    let plain = row("request-REQ-7");
    v1.apply(vec![odd.clone(), plain.clone()], Position::new(10, 1))
        .await
        .expect("applies");
    v2.apply(vec![plain.clone()], Position::new(5, 5))
        .await
        .expect("applies");

    assert_eq!(v1.row(&odd.stream).await.expect("reads"), Some(odd.clone()));
    assert_eq!(v2.row(&odd.stream).await.expect("reads"), None);
    assert_eq!(
        v1.checkpoint().await.expect("reads"),
        Some(Position::new(10, 1))
    );
    assert_eq!(
        v2.checkpoint().await.expect("reads"),
        Some(Position::new(5, 5))
    );
    let by = |f: fn(&mut RecordQuery)| {
        let mut q = RecordQuery::new();
        f(&mut q);
        q
    };
    let hits = |q: RecordQuery| {
        let v1 = v1.clone();
        async move {
            v1.query(&q)
                .await
                .expect("queries")
                .rows
                .into_iter()
                .map(|r| r.stream.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        hits(by(|q| q.ci = Some(ci("db 1")))).await,
        ["incident-INC-1"]
    );
    assert_eq!(
        hits(by(|q| q.statuses = vec!["on\0hold \u{1}0".to_owned()])).await,
        ["incident-INC-1"]
    );
    assert!(
        hits(by(|q| q.statuses = vec!["on\u{1}0hold \u{1}0".to_owned()]))
            .await
            .is_empty()
    );
    for (text, found) in [
        ("\0", true),
        ("STRASSE", false),
        ("straße", true),
        ("kelvin", false),
        ("\u{212A}ELVIN", true),
        ("100%", true),
        ("0%_", false),
        ("_DONE_ \\", true),
        ("", true),
    ] {
        let q = RecordQuery {
            text: Some(text.to_owned()),
            record_types: vec![RecordType::new("incident").expect("valid")],
            ..RecordQuery::new()
        };
        assert_eq!(hits(q).await.len(), usize::from(found), "text {text:?}");
    }

    // A later row replaces the stream's row, its configuration items too; in one batch the
    // last row of a stream wins.
    let mut later = odd.clone();
    later.affected_cis = vec![ci("mx-02")];
    later.version = Version::new(3);
    let mut latest = later.clone();
    latest.version = Version::new(4);
    v1.apply(vec![later, latest.clone()], Position::new(11, 1))
        .await
        .expect("applies");
    assert_eq!(v1.row(&odd.stream).await.expect("reads"), Some(latest));
    assert!(hits(by(|q| q.ci = Some(ci("mx-01")))).await.is_empty());
    assert_eq!(
        hits(by(|q| q.ci = Some(ci("mx-02")))).await,
        ["incident-INC-1"]
    );
    assert_eq!(v1.count(&RecordQuery::new()).await.expect("counts"), 2);

    // Cursors: of another order, or not made by a store.
    let page = v1
        .query(&RecordQuery {
            limit: 1,
            ..RecordQuery::new()
        })
        .await
        .expect("queries");
    let cursor = page.next.expect("a second page");
    let other = RecordQuery {
        order: RecordOrder::Priority,
        after: Some(cursor.clone()),
        ..RecordQuery::new()
    };
    let e = v1.query(&other).await.expect_err("refused");
    assert!(e.to_string().contains("query"), "{e}");
    assert!(matches!(
        refusal::<CursorError>(e),
        CursorError::OtherOrder { .. }
    ));
    let made_up = RecordQuery {
        after: Some(Cursor {
            key: "soon".to_owned(),
            ..cursor
        }),
        ..RecordQuery::new()
    };
    assert!(matches!(
        refusal::<CursorError>(v1.query(&made_up).await.expect_err("refused")),
        CursorError::BadKey { .. }
    ));

    v1.clear().await.expect("clears");
    assert_eq!(v1.checkpoint().await.expect("reads"), None);
    assert_eq!(v1.count(&RecordQuery::new()).await.expect("counts"), 0);
    assert_eq!(
        raw(&url)
            .await
            .query_one(
                &format!("SELECT count(*) FROM \"{schema}\".record_index_cis"),
                &[]
            )
            .await
            .expect("counts")
            .get::<_, i64>(0),
        0,
        "the configuration items went with their rows"
    );
    assert_eq!(v2.row(&plain.stream).await.expect("reads"), Some(plain));
    assert_eq!(
        v2.checkpoint().await.expect("reads"),
        Some(Position::new(5, 5))
    );
    drop(store);
    drop_schema(&url, &schema).await;
}

/// A batch whose statement fails after some of its rows were written (a trigger refuses one
/// configuration item, or the checkpoint) leaves rows, items and checkpoint as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_record_index_batch_is_atomic_when_it_fails_midway() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 2).await;
    let index = store.record_index(name("record_index.v1"));
    let before: Vec<RecordRow> = (0..20)
        .map(|i| {
            let mut r = row(&format!("incident-INC-{i:02}"));
            r.affected_cis = vec![ci("mx-01")];
            r
        })
        .collect();
    index
        .apply(before.clone(), Position::new(7, 7))
        .await
        .expect("applies");
    raw(&url)
        .await
        .batch_execute(&format!(
            r#"CREATE FUNCTION "{schema}".refuse_ci() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.ci = 'boom' THEN RAISE EXCEPTION 'refused configuration item'; END IF;
                 RETURN NEW;
               END $$;
               CREATE FUNCTION "{schema}".refuse_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.seq = 666 THEN RAISE EXCEPTION 'refused checkpoint'; END IF;
                 RETURN NEW;
               END $$;
               CREATE TRIGGER refuse AFTER INSERT ON "{schema}".record_index_cis
                 FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse_ci();
               CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON "{schema}".checkpoints
                 FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse_checkpoint();"#
        ))
        .await
        .expect("triggers");

    // Changed rows for old streams, new rows, and one refused item among them.
    let batch = |boom: &str| -> Vec<RecordRow> {
        (10..40)
            .map(|i| {
                let mut r = row(&format!("incident-INC-{i:02}"));
                r.status = "changed".to_owned();
                r.affected_cis = vec![ci("mx-02")];
                if i == 30 {
                    r.affected_cis.push(ci(boom));
                }
                r
            })
            .collect()
    };
    let check_unchanged = || async {
        assert_eq!(
            index.checkpoint().await.expect("reads"),
            Some(Position::new(7, 7))
        );
        assert_eq!(all_rows(&index).await.expect("reads"), before);
        let q = RecordQuery {
            ci: Some(ci("mx-01")),
            limit: 1_000,
            ..RecordQuery::new()
        };
        assert_eq!(index.count(&q).await.expect("counts"), 20);
        let q = RecordQuery {
            ci: Some(ci("mx-02")),
            ..RecordQuery::new()
        };
        assert_eq!(index.count(&q).await.expect("counts"), 0);
    };
    for (rows, checkpoint, what) in [
        (
            batch("boom"),
            Position::new(8, 1),
            "refused configuration item",
        ),
        (batch("fine"), Position::new(8, 666), "refused checkpoint"),
    ] {
        let e = index.apply(rows, checkpoint).await.expect_err("fails");
        let StoreError::Backend(e) = e else {
            panic!("a backend error: {e}")
        };
        assert!(!e.is_transient(), "{e}");
        let mut chain = Vec::new();
        let mut cause: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cause {
            chain.push(c.to_string());
            cause = c.source();
        }
        assert!(chain.iter().any(|s| s.contains(what)), "{chain:?}");
        check_unchanged().await;
    }
    index
        .apply(batch("fine"), Position::new(8, 2))
        .await
        .expect("a batch without refusals applies");
    assert_eq!(index.count(&RecordQuery::new()).await.expect("counts"), 40);
    drop(store);
    drop_schema(&url, &schema).await;
}

/// A deliberately non-idempotent projection: each event adds one to its record's
/// `reopen_count`, read from the index itself. An event applied twice, or a batch whose rows
/// were kept without its checkpoint, shows as a wrong count.
struct Counting {
    index: PgRecordIndex,
}

#[async_trait]
impl Projection for Counting {
    fn name(&self) -> &str {
        self.index.name()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        self.index
            .checkpoint()
            .await
            .map_err(|e| ProjectionError::store(self.name(), e))
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let mut rows: BTreeMap<StreamId, RecordRow> = BTreeMap::new();
        for e in events {
            let current = match rows.remove(&e.stream) {
                Some(r) => Some(r),
                None => self
                    .index
                    .row(&e.stream)
                    .await
                    .map_err(|err| ProjectionError::store(self.name(), err))?,
            };
            let mut r = current.unwrap_or_else(|| row(e.stream.as_str()));
            r.reopen_count += 1;
            r.version = e.version;
            r.summary = format!("{} events", r.reopen_count);
            r.affected_cis = vec![ci(&format!("ci-{}", r.reopen_count % 3))];
            rows.insert(e.stream.clone(), r);
        }
        self.index
            .apply(rows.into_values().collect(), checkpoint)
            .await
            .map_err(|e| ProjectionError::store(self.name(), e))
    }
}

/// The rows the counting projection holds after the events up to `checkpoint`.
fn expected_counts(
    log: &[RecordedEvent],
    checkpoint: Option<Position>,
) -> BTreeMap<String, (u32, Version)> {
    let mut counts = BTreeMap::new();
    for e in log
        .iter()
        .filter(|e| checkpoint.is_some_and(|c| e.position <= c))
    {
        let entry = counts
            .entry(e.stream.to_string())
            .or_insert((0, Version::FIRST));
        entry.0 += 1;
        entry.1 = e.version;
    }
    counts
}

/// Rows and checkpoint as stored, read again until the reads get through.
async fn stored_state(
    index: &PgRecordIndex,
) -> (Option<Position>, BTreeMap<String, (u32, Version)>) {
    for _ in 0..1_000 {
        let Ok(checkpoint) = index.checkpoint().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let Ok(rows) = all_rows(index).await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let Ok(again) = index.checkpoint().await else {
            continue;
        };
        assert_eq!(
            checkpoint, again,
            "nothing writes while the state is checked"
        );
        let rows = rows
            .into_iter()
            .map(|r| {
                assert_eq!(r.summary, format!("{} events", r.reopen_count));
                (r.stream.to_string(), (r.reopen_count, r.version))
            })
            .collect();
        return (checkpoint, rows);
    }
    panic!("the index cannot be read");
}

/// A projection into the record index runs while every backend of its store is terminated
/// again and again: after each failure, and at the end, the rows hold exactly the events up
/// to the checkpoint, none lost and none applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_fault_record_index_projection_survives_terminated_connections() {
    const STREAMS: usize = 60;
    const EVENTS: usize = 900;
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let app = format!("smsys_index_{}", uuid::Uuid::now_v7().simple());
    let store = Arc::new(open(&format!("{url} application_name={app}"), &schema, 4).await);

    // The log, written before the faults: events spread over the streams in a mixed order.
    let mut versions = vec![0_u64; STREAMS];
    for i in 0..EVENTS {
        let s = (i * 7 + i / 13) % STREAMS;
        let stream: StreamId = format!("incident-INC-{s:03}").parse().expect("valid");
        let expected = match versions[s] {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(Version::new(v)),
        };
        store
            .append(&stream, expected, vec![event("counted", json!({ "i": i }))])
            .await
            .expect("appends");
        versions[s] += 1;
    }
    let log = read_all(&store).await;
    assert_eq!(log.len(), EVENTS);

    let admin = raw(&url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = Arc::clone(&stop);
        let app = app.clone();
        tokio::spawn(async move {
            let mut killed = 0_i64;
            let mut round = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                tokio::time::sleep(Duration::from_millis(10 + (round * 7) % 30)).await;
                let row = admin
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&app],
                    )
                    .await
                    .expect("terminating works");
                killed += row.get::<_, i64>(0);
            }
            killed
        })
    };

    let index = store.record_index(name("record_index.v1"));
    let projection = Counting {
        index: index.clone(),
    };
    let store_dyn: Arc<dyn EventStore> = store.clone();
    let runner = ProjectionRunner::new(store_dyn).with_batch_size(5);
    let failures = AtomicUsize::new(0);
    let mut last = None;
    for _ in 0..10_000 {
        match runner.catch_up(&projection).await {
            Ok(reached) if reached == log.last().map(|e| e.position) => {
                last = reached;
                break;
            }
            Ok(reached) => panic!("caught up to {reached:?} short of the log's end"),
            Err(error) => {
                failures.fetch_add(1, Ordering::Relaxed);
                tracing_error(&error);
                let (checkpoint, rows) = stored_state(&index).await;
                assert_eq!(
                    rows,
                    expected_counts(&log, checkpoint),
                    "rows agree with the checkpoint {checkpoint:?} after a failure"
                );
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let killed = killer.await.expect("killer finishes");
    assert!(last.is_some(), "the projection caught up");
    assert!(killed > 0, "connections were terminated");
    let failures = failures.load(Ordering::Relaxed);
    assert!(failures > 0, "the projection was interrupted");
    let (checkpoint, rows) = stored_state(&index).await;
    assert_eq!(checkpoint, last);
    assert_eq!(rows, expected_counts(&log, checkpoint));
    assert_eq!(rows.len(), STREAMS);
    assert_eq!(
        rows.values().map(|(n, _)| *n as usize).sum::<usize>(),
        EVENTS,
        "every event counted once"
    );
    eprintln!(
        "record index fault test: {killed} backends terminated, {failures} interrupted catch-ups"
    );
    drop(index);
    drop(projection);
    drop(store);
    drop_schema(&url, &schema).await;
}

fn tracing_error(error: &ProjectionError) {
    // Only transient failures are expected: lost connections.
    if let ProjectionError::Store {
        source: StoreError::Backend(e),
        ..
    } = error
    {
        assert!(e.is_transient(), "unexpected failure: {error}");
    } else {
        panic!("unexpected failure: {error}");
    }
}

/// A small deterministic generator (xorshift).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const STATUSES: [&str; 6] = [
    "new",
    "In Progress",
    "on hold",
    "resolved",
    "x\0y",
    "x\u{1}0y",
];
const SERVICES: [&str; 3] = ["email", "erp", "vpn"];
const GROUPS: [&str; 4] = ["net", "desk", "apps", "dba"];
const PERSONS: [&str; 3] = ["ann", "bob", "cé"];
const CIS: [&str; 4] = ["mx-01", "mx-02", "db-1", "ci %_"];
const SUMMARIES: [&str; 12] = [
    "Printer ON fire",
    "printer jam",
    "VPN down 100%",
    "under_score",
    "back\\slash",
    "Straße ÄÖÜ",
    "\u{212A}elvin sign",
    "nul\0byte",
    "",
    "ıstanbul",
    "İSTANBUL",
    "Mail to Bob",
];

/// A few thousand rows with many ties (instants on a coarse grid, some a few nanoseconds
/// apart), every optional part sometimes missing, stream ids whose byte order differs from a
/// natural-language collation.
fn generated_rows(n: usize) -> Vec<RecordRow> {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let prefixes = ["A", "b", "Z", "_", "-", ".", ":", "0", "a"];
    (0..n)
        .map(|i| {
            let category = if g.chance(70) { "incident" } else { "request" };
            let stream = format!("{category}-{}{i}", g.pick(&prefixes));
            let mut r = row(&stream);
            r.status = g.pick(&STATUSES).to_owned();
            r.phase = g.pick(&Phase::ALL);
            r.priority = g
                .chance(80)
                .then(|| Priority::new(g.below(5) as u8 + 1).expect("valid"));
            r.service = ServiceId::new(g.pick(&SERVICES)).expect("valid");
            r.group = g
                .chance(85)
                .then(|| GroupId::new(g.pick(&GROUPS)).expect("valid"));
            r.person = g
                .chance(60)
                .then(|| PersonId::new(g.pick(&PERSONS)).expect("valid"));
            r.summary = format!("{} #{}", g.pick(&SUMMARIES), g.below(3));
            r.affected_cis = (0..g.below(4)).map(|_| ci(g.pick(&CIS))).collect();
            let nanos = if g.chance(10) {
                g.below(2_000) as i64
            } else {
                0
            };
            r.logged_at =
                t0() + TimeDelta::minutes(g.below(150) as i64) + TimeDelta::nanoseconds(nanos);
            r.timers = (0..g.below(3))
                .map(|t| TimerRow {
                    timer: format!("t{t}"),
                    cycle: 1,
                    running: true,
                    paused: false,
                    due: g
                        .chance(75)
                        .then(|| t0() + TimeDelta::minutes(g.below(200) as i64)),
                    next_threshold: None,
                    breached: g.chance(20),
                })
                .collect();
            r.version = Version::new(g.below(9) as u64 + 1);
            r
        })
        .collect()
}

/// The reference, written from the contract alone: instants at whole microseconds, ASCII
/// case folding, orders ending with the stream.
fn reference(rows: &[RecordRow], q: &RecordQuery) -> Vec<RecordRow> {
    fn us(t: DateTime<Utc>) -> i64 {
        t.timestamp_micros()
    }
    fn any<T: PartialEq>(list: &[T], value: Option<&T>) -> bool {
        list.is_empty() || value.is_some_and(|v| list.contains(v))
    }
    let due = |r: &RecordRow| r.timers.iter().filter_map(|t| t.due.map(us)).min();
    let mut selected: Vec<RecordRow> = rows
        .iter()
        .filter(|r| {
            any(&q.record_types, Some(&r.record_type))
                && any(&q.statuses, Some(&r.status))
                && any(&q.phases, Some(&r.phase))
                && any(&q.priorities, r.priority.as_ref())
                && any(&q.groups, r.group.as_ref())
                && any(&q.persons, r.person.as_ref())
                && any(&q.services, Some(&r.service))
                && q.ci.as_ref().is_none_or(|c| r.affected_cis.contains(c))
                && q.breached
                    .is_none_or(|b| r.timers.iter().any(|t| t.breached) == b)
                && q.due_by
                    .is_none_or(|by| due(r).is_some_and(|d| d <= us(by)))
                && q.text.as_ref().is_none_or(|t| {
                    r.summary
                        .to_ascii_lowercase()
                        .contains(&t.to_ascii_lowercase())
                })
                && q.logged_from.is_none_or(|f| us(r.logged_at) >= us(f))
                && q.logged_until.is_none_or(|u| us(r.logged_at) < us(u))
        })
        .cloned()
        .collect();
    selected.sort_by(|a, b| match q.order {
        RecordOrder::LoggedDesc => (us(b.logged_at), &b.stream).cmp(&(us(a.logged_at), &a.stream)),
        RecordOrder::LoggedAsc => (us(a.logged_at), &a.stream).cmp(&(us(b.logged_at), &b.stream)),
        RecordOrder::Priority => {
            let key = |r: &RecordRow| (r.priority.map_or(6, |p| p.get()), us(r.logged_at));
            (key(a), &a.stream).cmp(&(key(b), &b.stream))
        }
        RecordOrder::Due => {
            let key = |r: &RecordRow| due(r).unwrap_or(i64::MAX);
            (key(a), &a.stream).cmp(&(key(b), &b.stream))
        }
    });
    selected
}

fn queries() -> Vec<RecordQuery> {
    let q = RecordQuery::new;
    let at = |m: i64, ns: i64| Some(t0() + TimeDelta::minutes(m) + TimeDelta::nanoseconds(ns));
    let group = |g: &str| GroupId::new(g).expect("valid");
    let text = |t: &str| Some(t.to_owned());
    vec![
        q(),
        RecordQuery::open(),
        RecordQuery {
            record_types: vec![RecordType::new("request").expect("valid")],
            ..q()
        },
        RecordQuery {
            statuses: vec!["In Progress".to_owned(), "x\0y".to_owned()],
            ..q()
        },
        RecordQuery {
            statuses: vec!["x\u{1}0y".to_owned()],
            ..q()
        },
        RecordQuery {
            phases: vec![Phase::Resolved, Phase::Cancelled],
            ..q()
        },
        RecordQuery {
            priorities: vec![
                Priority::new(1).expect("valid"),
                Priority::new(4).expect("valid"),
            ],
            ..q()
        },
        RecordQuery {
            groups: vec![group("net")],
            ..q()
        },
        RecordQuery {
            persons: vec![PersonId::new("cé").expect("valid")],
            services: vec![ServiceId::new("vpn").expect("valid")],
            ..q()
        },
        RecordQuery {
            ci: Some(ci("ci %_")),
            ..q()
        },
        RecordQuery {
            breached: Some(true),
            ..q()
        },
        RecordQuery {
            breached: Some(false),
            due_by: at(80, 500),
            ..q()
        },
        RecordQuery {
            due_by: at(0, 0),
            ..q()
        },
        RecordQuery {
            text: text("PRINTER"),
            ..q()
        },
        RecordQuery {
            text: text("%"),
            ..q()
        },
        RecordQuery {
            text: text("_"),
            ..q()
        },
        RecordQuery {
            text: text("\\"),
            ..q()
        },
        RecordQuery {
            text: text("K"),
            ..q()
        },
        RecordQuery {
            text: text("äö"),
            ..q()
        },
        RecordQuery {
            text: text("ÄÖ"),
            ..q()
        },
        RecordQuery {
            text: text("\0"),
            ..q()
        },
        RecordQuery {
            text: text("i̇stanbul"),
            ..q()
        },
        RecordQuery {
            text: text(""),
            phases: vec![Phase::New],
            ..q()
        },
        RecordQuery {
            logged_from: at(20, 1),
            logged_until: at(60, 999),
            ..q()
        },
        RecordQuery {
            logged_from: at(30, 0),
            logged_until: at(30, 1_000),
            ..q()
        },
        RecordQuery {
            groups: vec![group("desk"), group("dba")],
            priorities: vec![Priority::new(2).expect("valid")],
            phases: vec![Phase::New, Phase::Active, Phase::Pending],
            ..q()
        },
        RecordQuery {
            ci: Some(ci("mx-01")),
            text: text("mail"),
            breached: Some(false),
            ..q()
        },
        RecordQuery {
            services: vec![ServiceId::new("email").expect("valid")],
            due_by: at(150, 0),
            logged_until: at(100, 0),
            persons: vec![
                PersonId::new("ann").expect("valid"),
                PersonId::new("bob").expect("valid"),
            ],
            ..q()
        },
    ]
}

/// Every query in every order, paged by 1, 7 and 50 rows, gives the reference's rows: no
/// overlap or gap among ties; pages and cursors equal the memory index's (every page of 50,
/// the first pages of the others: the memory index sorts all rows for each page); counts
/// agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_record_index_queries_agree_with_the_reference() {
    const ROWS: usize = 3_000;
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = open(&url, &schema, 8).await;
    let index = store.record_index(name("record_index.v1"));
    let memory = MemoryRecordIndex::new(name("record_index.v1"));
    let rows = generated_rows(ROWS);
    for chunk in rows.chunks(500) {
        index
            .apply(chunk.to_vec(), Position::new(1, 1))
            .await
            .expect("applies");
        memory
            .apply(chunk.to_vec(), Position::new(1, 1))
            .await
            .expect("applies");
    }
    // A second index name with other rows must not leak into the first one's answers.
    store
        .record_index(name("record_index.v0"))
        .apply(generated_rows(50), Position::new(1, 1))
        .await
        .expect("applies");

    let index = Arc::new(index);
    let memory = Arc::new(memory);
    let rows = Arc::new(rows);
    let mut checks = Vec::new();
    let mut seen_ties = false;
    for (number, query) in queries().into_iter().enumerate() {
        for order in [
            RecordOrder::LoggedDesc,
            RecordOrder::LoggedAsc,
            RecordOrder::Priority,
            RecordOrder::Due,
        ] {
            let query = RecordQuery {
                order,
                ..query.clone()
            };
            let expected = reference(&rows, &query);
            if order == RecordOrder::LoggedAsc
                && expected
                    .windows(2)
                    .any(|w| w[0].logged_at.timestamp_micros() == w[1].logged_at.timestamp_micros())
            {
                seen_ties = true;
            }
            let (index, memory) = (Arc::clone(&index), Arc::clone(&memory));
            checks.push(tokio::spawn(async move {
                let count = index.count(&query).await.expect("counts");
                assert_eq!(count, expected.len() as u64, "count of query {number}");
                for size in [1_usize, 7, 50] {
                    // Pages of one or seven rows are followed for a while, pages of fifty
                    // to the end.
                    let pages = if size == 50 { usize::MAX } else { 25 };
                    let mut q = RecordQuery {
                        limit: size,
                        ..query.clone()
                    };
                    let mut got = Vec::new();
                    let mut complete = false;
                    for n in 0..pages {
                        let page = index.query(&q).await.expect("queries");
                        if size == 50 || n < 3 {
                            assert_eq!(
                                page,
                                memory.query(&q).await.expect("queries"),
                                "query {number}, {order:?}, page {n} of {size}: the memory index agrees"
                            );
                        }
                        assert!(page.rows.len() <= size);
                        got.extend(page.rows);
                        match page.next {
                            Some(next) => q.after = Some(next),
                            None => {
                                complete = true;
                                break;
                            }
                        }
                    }
                    if complete {
                        assert_eq!(
                            got.len(),
                            expected.len(),
                            "query {number}, {order:?}, by {size}"
                        );
                    }
                    assert!(
                        got == expected[..got.len()],
                        "query {number}, {order:?}, pages of {size}: rows differ from the reference"
                    );
                }
                expected.len()
            }));
        }
    }
    let mut total = 0;
    let mut empty = 0;
    for check in checks {
        let n = check.await.expect("check passes");
        total += n;
        empty += usize::from(n == 0);
    }
    assert!(seen_ties, "the rows hold ties");
    assert!(total > 10_000, "the queries select rows: {total}");
    assert!(empty <= 4 * 2, "few queries select nothing: {empty}");
    assert_eq!(
        index
            .count(&RecordQuery {
                limit: 1,
                order: RecordOrder::Due,
                ..RecordQuery::new()
            })
            .await
            .expect("counts"),
        ROWS as u64,
        "count ignores order and limit"
    );
    drop(index);
    drop(store);
    drop_schema(&url, &schema).await;
}
