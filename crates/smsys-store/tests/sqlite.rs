//! The SQLite store: the conformance and read-side suites on temp files, crash tests that
//! SIGKILL a child process mid-append and mid-index-batch, corruption and foreign files,
//! durability modes, snapshots, reopening, the record index beside the log, and the
//! configuration graph suite (`sqlite/ci_graph.rs`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests report failures by panicking"
)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use smsys_core::records::{RecordIndexStore, RecordQuery, RecordRow};
use smsys_core::{
    AppendError, ChainFault, ChainVerifier, CheckpointStore, EventStore, ExpectedVersion,
    LogFilter, Position, Projection, ProjectionError, ProjectionRunner, RecordedEvent, Snapshot,
    SnapshotStore, StoreError, StreamId, Version,
};
use smsys_store::testkit::records::{ci, record_row};
use smsys_store::testkit::{Fixture, Harness, ReadSideHarness, event};
use smsys_store::{
    CheckpointName, Durability, OpenError, SqliteEventStore, SqliteOptions, SqliteRecordIndex,
};
use tempfile::TempDir;

#[path = "sqlite/ci_graph.rs"]
mod ci_graph;
#[path = "sqlite/migration.rs"]
mod migration;

/// Fresh stores on temp files; the directories live as long as the harness.
#[derive(Default)]
struct Sqlite {
    dirs: Mutex<Vec<TempDir>>,
}

#[async_trait::async_trait]
impl Harness for Sqlite {
    type Store = SqliteEventStore;

    async fn create(&self) -> SqliteEventStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteEventStore::open(dir.path().join("store.db"))
            .await
            .expect("a new store opens");
        self.dirs.lock().unwrap().push(dir);
        store
    }

    async fn tamper_payload(
        &self,
        store: &SqliteEventStore,
        stream: &StreamId,
        version: Version,
        payload: serde_json::Value,
    ) -> bool {
        let conn = rusqlite::Connection::open(store.path()).expect("raw connection");
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let changed = conn
            .execute(
                "UPDATE events SET payload = ?1 WHERE version = ?2
                 AND stream_id = (SELECT stream_id FROM streams WHERE name = ?3)",
                rusqlite::params![payload.to_string(), version.get() as i64, stream.as_str()],
            )
            .expect("raw update");
        changed == 1
    }
}

mod conformance {
    smsys_store::conformance_suite!(super::Sqlite::default());
}

/// Fresh store files for the read-side suite; reopening closes the store and opens its file.
struct SqliteReadSide;

struct SqliteDb {
    store: SqliteEventStore,
    dir: TempDir,
}

#[async_trait::async_trait]
impl ReadSideHarness for SqliteReadSide {
    type Db = SqliteDb;
    type Checkpoints = SqliteEventStore;
    type Index = SqliteRecordIndex;

    async fn create(&self) -> SqliteDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteEventStore::open(dir.path().join("store.db"))
            .await
            .expect("a new store opens");
        SqliteDb { store, dir }
    }

    fn checkpoints(&self, db: &SqliteDb) -> SqliteEventStore {
        db.store.clone()
    }

    fn index(&self, db: &SqliteDb, name: &CheckpointName) -> SqliteRecordIndex {
        db.store.record_index(name.clone())
    }

    fn reopens(&self) -> bool {
        true
    }

    async fn reopen(&self, db: SqliteDb) -> SqliteDb {
        db.store.close().await;
        let store = SqliteEventStore::open(db.dir.path().join("store.db"))
            .await
            .expect("the store reopens");
        SqliteDb { store, dir: db.dir }
    }

    async fn teardown(&self, db: SqliteDb) {
        db.store.close().await;
    }
}

mod read_side {
    smsys_store::read_side_suite!(super::SqliteReadSide);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

async fn all(store: &SqliteEventStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reads"))
        .collect()
        .await
}

// ---------------------------------------------------------------------------------------------
// Crash safety

const CRASH_CHILD: &str = "SMSYS_SQLITE_CRASH_CHILD";
const CRASH_WRITERS: usize = 4;
const EVENTS_PER_APPEND: usize = 3;

/// Not a test on its own: the child process of `killed_writer_loses_no_acknowledged_append`.
/// Without the environment variable it returns at once.
#[test]
fn crash_child_appends_until_killed() {
    let Ok(path) = std::env::var(CRASH_CHILD) else {
        return;
    };
    let durability = match std::env::var("SMSYS_SQLITE_CRASH_DURABILITY").as_deref() {
        Ok("normal") => Durability::Normal,
        _ => Durability::Full,
    };
    runtime().block_on(async move {
        let store = SqliteOptions::new(path)
            .durability(durability)
            .open()
            .await
            .expect("child opens the store");
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for writer in 0..CRASH_WRITERS {
            let store = store.clone();
            let out = Arc::clone(&out);
            tasks.push(tokio::spawn(async move {
                let stream = Fixture::stream_in("crash", &format!("w{writer}"));
                let mut version = store.stream_version(&stream).await.unwrap();
                loop {
                    let append = version.map_or(0, |v| v.get()) / EVENTS_PER_APPEND as u64;
                    let events: Vec<_> = (0..EVENTS_PER_APPEND)
                        .map(|part| event("crash.tick", json!({"append": append, "part": part})))
                        .collect();
                    let ids: Vec<String> =
                        events.iter().map(|e| e.event_id().to_string()).collect();
                    let expected =
                        version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                    let written = store.append(&stream, expected, events).await.unwrap();
                    version = Some(written.version);
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ack {stream} {} {}", written.version, ids.join(",")).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        // The writers append until the parent kills this process.
        futures::future::join_all(tasks).await;
    });
}

struct Ack {
    stream: StreamId,
    last_version: u64,
    ids: Vec<String>,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    Some(Ack {
        stream: parts.next()?.parse().ok()?,
        last_version: parts.next()?.parse().ok()?,
        ids: parts.next()?.split(',').map(str::to_owned).collect(),
    })
}

/// Small xorshift generator: kill moments need no cryptographic quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn killed_writer_loses_no_acknowledged_append() {
    const ROUNDS: usize = 24;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let runtime = runtime();
    let mut acked: Vec<Ack> = Vec::new();
    let mut verifier = ChainVerifier::new();
    let mut checked_to = Position::START;
    let mut heads: HashMap<StreamId, u64> = HashMap::new();
    let mut places: HashMap<(StreamId, u64), String> = HashMap::new();
    let started = Instant::now();
    for round in 0..ROUNDS {
        let durability = if round % 2 == 0 { "full" } else { "normal" };
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_appends_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD, &path)
            .env("SMSYS_SQLITE_CRASH_DURABILITY", durability)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| parse_ack(&l))
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(20 + rng.below(350)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child was killed, not finished"
        );
        let new_acks = lines.join().unwrap();
        acked.extend(new_acks);

        runtime.block_on(async {
            let store = SqliteEventStore::open(&path)
                .await
                .unwrap_or_else(|e| panic!("round {round}: reopening after SIGKILL: {e}"));
            // Check what committed since the last round, carrying the chain verifier over:
            // the new events must link onto the heads verified before the kill.
            let mut new_events = store.read_all(checked_to, LogFilter::all());
            while let Some(e) = new_events.next().await {
                let e = e.unwrap_or_else(|err| panic!("round {round}: read: {err}"));
                if let Err(broken) = verifier.check(&e) {
                    panic!("round {round}: chain broken: {broken}");
                }
                assert_eq!(
                    e.position.sequence(),
                    checked_to.sequence() + 1,
                    "round {round}: positions dense from 1"
                );
                // No append is half-present: each event sits at its part of its append.
                let part = e.data.payload()["part"].as_u64().unwrap();
                let append = e.data.payload()["append"].as_u64().unwrap();
                assert_eq!(
                    e.version.get() - 1,
                    append * EVENTS_PER_APPEND as u64 + part,
                    "round {round}: {} v{} out of its append",
                    e.stream,
                    e.version
                );
                checked_to = e.position;
                heads.insert(e.stream.clone(), e.version.get());
                places.insert(
                    (e.stream.clone(), e.version.get()),
                    e.event_id().to_string(),
                );
            }
            drop(new_events);
            for (stream, last) in &heads {
                assert_eq!(
                    last % EVENTS_PER_APPEND as u64,
                    0,
                    "round {round}: {stream} ends in a half-written append"
                );
                assert_eq!(
                    store.stream_version(stream).await.unwrap(),
                    Some(Version::new(*last)),
                    "round {round}: {stream} lost no tail"
                );
            }
            for ack in &acked {
                let first = ack.last_version + 1 - ack.ids.len() as u64;
                for (i, id) in ack.ids.iter().enumerate() {
                    let place = (ack.stream.clone(), first + i as u64);
                    let found = places.get(&place).unwrap_or_else(|| {
                        panic!("round {round}: acknowledged {place:?} is missing")
                    });
                    assert_eq!(found, id, "round {round}: {place:?}");
                }
            }
            if round + 1 == ROUNDS {
                let report = store.verify().await.unwrap();
                assert!(report.is_intact(), "{:?}", report.first_break);
                assert_eq!(
                    report.events_checked,
                    checked_to.sequence(),
                    "whole file verified"
                );
            }
            store.close().await;
        });
    }
    assert!(
        acked.len() >= ROUNDS,
        "the children acknowledged only {} appends",
        acked.len()
    );
    eprintln!(
        "crash test: {ROUNDS} kills, {} acknowledged appends, {:?}",
        acked.len(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Corruption and foreign files

fn flip_unique(path: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    let hits: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "the needle is stored exactly once");
    bytes[hits[0]] ^= 0x20; // 'n' -> 'N': still valid JSON, other content
    std::fs::write(path, bytes).unwrap();
}

async fn filled(path: &Path, streams: &[&str], per_stream: usize) -> SqliteEventStore {
    let store = SqliteEventStore::open(path).await.unwrap();
    for v in 0..per_stream {
        for s in streams {
            let stream = Fixture::stream(s);
            store
                .append(
                    &stream,
                    ExpectedVersion::Any,
                    vec![event("t", json!({"note": format!("needle-{s}-{}", v + 1)}))],
                )
                .await
                .unwrap();
        }
    }
    store
}

#[test]
fn flipped_payload_byte_is_reported_at_that_event() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = filled(&path, &["a", "b", "c"], 5).await;
        assert!(store.verify().await.unwrap().is_intact());
        store.close().await;
        assert!(
            !dir.path().join("store.db-wal").exists(),
            "closing checkpoints"
        );

        flip_unique(&path, b"needle-b-3");
        let store = SqliteEventStore::open(&path).await.unwrap();
        let report = store.verify().await.unwrap();
        let broken = report.first_break.expect("the flipped byte is found");
        assert_eq!(broken.stream, Fixture::stream("b"));
        assert_eq!(broken.version, Version::new(3));
        assert!(
            matches!(broken.fault, ChainFault::HashMismatch { .. }),
            "{broken}"
        );
        // Log order a1 b1 c1 a2 b2 c2 a3 | b3: the walk goes on, every other event holds.
        assert_eq!(report.events_checked, 14);
        assert_eq!(report.breaks.len(), 1, "only the altered event is named");
        assert_eq!(broken.position, Position::from_sequence(8));
    });
}

#[test]
fn garbage_foreign_and_newer_files_are_refused_untouched() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let untouched = |path: &Path, before: &[u8]| {
            assert_eq!(
                std::fs::read(path).unwrap(),
                before,
                "file left byte-for-byte"
            );
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            assert!(!PathBuf::from(wal).exists(), "no WAL created beside it");
        };

        let garbage = dir.path().join("garbage.db");
        let bytes: Vec<u8> = (0..10_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&garbage, &bytes).unwrap();
        let r = SqliteEventStore::open(&garbage).await;
        assert!(matches!(r, Err(OpenError::NotAStore { .. })), "{r:?}");
        untouched(&garbage, &bytes);

        let short = dir.path().join("short.db");
        std::fs::write(&short, b"SQLite format 3\0").unwrap();
        let r = SqliteEventStore::open(&short).await;
        assert!(matches!(r, Err(OpenError::NotAStore { .. })), "{r:?}");
        untouched(&short, b"SQLite format 3\0");

        let foreign = dir.path().join("foreign.db");
        rusqlite::Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
            .unwrap();
        let before = std::fs::read(&foreign).unwrap();
        let r = SqliteEventStore::open(&foreign).await;
        assert!(matches!(r, Err(OpenError::NotAStore { .. })), "{r:?}");
        untouched(&foreign, &before);

        let newer = dir.path().join("newer.db");
        filled(&newer, &["a"], 3).await.close().await;
        rusqlite::Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let before = std::fs::read(&newer).unwrap();
        let r = SqliteEventStore::open(&newer).await;
        // Whatever this release supports, it is older than 99 and named in the refusal.
        assert!(
            matches!(
                r,
                Err(OpenError::SchemaTooNew {
                    found: 99,
                    supported
                }) if (1..99).contains(&supported)
            ),
            "{r:?}"
        );
        untouched(&newer, &before);

        // A newer release migrated and crashed: the newer schema version is only in the WAL.
        let crashed = dir.path().join("crashed.db");
        filled(&crashed, &["a"], 3).await.close().await;
        {
            let raw = rusqlite::Connection::open(&crashed).unwrap();
            raw.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )
            .unwrap();
            raw.pragma_update(None, "journal_mode", "WAL").unwrap();
            raw.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
            raw.pragma_update(None, "user_version", 99).unwrap();
        }
        let mut wal = crashed.as_os_str().to_owned();
        wal.push("-wal");
        let main_before = std::fs::read(&crashed).unwrap();
        let wal_before = std::fs::read(&wal).expect("the newer version waits in the WAL");
        let r = SqliteEventStore::open(&crashed).await;
        assert!(
            matches!(r, Err(OpenError::SchemaTooNew { found: 99, .. })),
            "{r:?}"
        );
        assert_eq!(
            std::fs::read(&crashed).unwrap(),
            main_before,
            "the main file is untouched"
        );
        assert_eq!(
            std::fs::read(&wal).unwrap(),
            wal_before,
            "the WAL is not checkpointed away"
        );
    });
}

#[test]
fn truncated_and_damaged_files_give_typed_errors() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        filled(&path, &["a", "b"], 400).await.close().await;
        let whole = std::fs::read(&path).unwrap();
        assert!(whole.len() > 8 * 4096, "several pages: {}", whole.len());

        let truncated = dir.path().join("truncated.db");
        std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
        let r = SqliteEventStore::open(&truncated).await;
        assert!(matches!(r, Err(OpenError::Corrupt { .. })), "{r:?}");
        assert_eq!(
            std::fs::read(&truncated).unwrap(),
            &whole[..whole.len() / 2]
        );

        let header_only = dir.path().join("header.db");
        std::fs::write(&header_only, &whole[..60]).unwrap();
        let r = SqliteEventStore::open(&header_only).await;
        assert!(matches!(r, Err(OpenError::NotAStore { .. })), "{r:?}");

        // Pages overwritten with garbage in the middle of the file: opening may succeed, but
        // verifying reports the damage as a typed error, never a panic.
        let damaged = dir.path().join("damaged.db");
        let mut bytes = whole.clone();
        let page = 4096;
        for b in &mut bytes[3 * page..6 * page] {
            *b = 0xA5;
        }
        std::fs::write(&damaged, &bytes).unwrap();
        match SqliteEventStore::open(&damaged).await {
            Err(OpenError::Corrupt { .. } | OpenError::Backend(_)) => {}
            Err(other) => panic!("unexpected open error {other:?}"),
            Ok(store) => {
                match store.verify().await {
                    Err(StoreError::Corrupt { .. }) => {}
                    Ok(report) => assert!(!report.is_intact(), "damage must not verify"),
                    Err(other) => panic!("unexpected verify error {other:?}"),
                }
                store.close().await;
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Durability modes, snapshots, reopening, group commit

#[test]
fn reopening_keeps_data_versions_and_positions_in_both_modes() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let s = Fixture::stream("kept");
        let store = SqliteOptions::new(&path)
            .durability(Durability::Normal)
            .open()
            .await
            .unwrap();
        assert_eq!(store.durability(), Durability::Normal);
        let first = store
            .append(
                &s,
                ExpectedVersion::NoStream,
                vec![event("t", json!({"i": 1})), event("t", json!({"i": 2}))],
            )
            .await
            .unwrap();
        store.close().await;
        let r = store
            .append(&s, ExpectedVersion::Any, vec![event("t", json!({}))])
            .await;
        assert!(
            matches!(r, Err(AppendError::Store(StoreError::Closed { .. }))),
            "a closed store refuses: {r:?}"
        );

        let store = SqliteOptions::new(&path).open().await.unwrap();
        assert_eq!(store.durability(), Durability::Full);
        assert_eq!(
            store.stream_version(&s).await.unwrap(),
            Some(Version::new(2))
        );
        let second = store
            .append(
                &s,
                ExpectedVersion::Exact(Version::new(2)),
                vec![event("t", json!({"i": 3}))],
            )
            .await
            .unwrap();
        assert_eq!(second.positions, vec![Position::from_sequence(3)]);
        assert_eq!(first.positions.len(), 2);
        let events = all(&store).await;
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[2].previous_hash,
            Some(events[1].hash),
            "the chain continues"
        );
        assert!(store.verify().await.unwrap().is_intact());
    });
}

#[test]
fn snapshots_keep_the_newest_and_survive_reopening() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let s = Fixture::stream("snap");
        let snap = |v: u64| Snapshot {
            stream: s.clone(),
            version: Version::new(v),
            schema_version: 2,
            state: json!({"at": v, "ratio": 0.1, "text": "é\n"}),
        };
        let store = SqliteEventStore::open(&path).await.unwrap();
        assert_eq!(store.load_snapshot(&s).await.unwrap(), None);
        store.save_snapshot(snap(5)).await.unwrap();
        store.save_snapshot(snap(3)).await.unwrap();
        assert_eq!(
            store.load_snapshot(&s).await.unwrap(),
            Some(snap(5)),
            "older one ignored"
        );
        store.save_snapshot(snap(7)).await.unwrap();
        store.close().await;
        let store = SqliteEventStore::open(&path).await.unwrap();
        assert_eq!(store.load_snapshot(&s).await.unwrap(), Some(snap(7)));
    });
}

#[test]
fn a_conflict_in_a_batch_fails_none_of_its_neighbours() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open(dir.path().join("store.db"))
            .await
            .unwrap();
        let shared = Fixture::stream("shared");
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                let (stream, expected) = if i % 2 == 0 {
                    (
                        Fixture::stream(&format!("own{i}")),
                        ExpectedVersion::NoStream,
                    )
                } else {
                    (shared, ExpectedVersion::NoStream)
                };
                (
                    i,
                    store
                        .append(&stream, expected, vec![event("t", json!({"i": i}))])
                        .await,
                )
            }));
        }
        let mut winners = 0;
        for task in tasks {
            let (i, result) = task.await.unwrap();
            match (i % 2, result) {
                (0, r) => assert!(r.is_ok(), "own stream {i}: {r:?}"),
                (_, Ok(_)) => winners += 1,
                (_, Err(e)) => assert!(e.is_conflict(), "{e}"),
            }
        }
        assert_eq!(winners, 1, "one writer wins the shared stream");
        let events = all(&store).await;
        assert_eq!(events.len(), 101);
        let positions: Vec<u64> = events.iter().map(|e| e.position.sequence()).collect();
        assert_eq!(
            positions,
            (1..=101).collect::<Vec<_>>(),
            "dense, in commit order"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Read side: checkpoints and the record index in the store's file

fn index_name(name: &str) -> CheckpointName {
    CheckpointName::new(name).unwrap()
}

/// A row of the crash test for `stream`: nothing applied yet.
fn counted_row(stream: &StreamId) -> RecordRow {
    let mut row = record_row(stream.entity_id());
    row.stream = stream.clone();
    row.version = Version::new(0);
    row
}

/// A projection that is not idempotent: each event adds one to its row's `reopen_count`, so an
/// event applied twice (or a batch half kept) shows. Only the transaction that writes rows and
/// checkpoint together keeps it exact across crashes.
struct Counting {
    index: SqliteRecordIndex,
}

#[async_trait::async_trait]
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
        let failed = |e| ProjectionError::store(self.name(), e);
        let mut rows: BTreeMap<StreamId, RecordRow> = BTreeMap::new();
        for event in events {
            let mut row = match rows.remove(&event.stream) {
                Some(row) => row,
                None => self
                    .index
                    .row(&event.stream)
                    .await
                    .map_err(failed)?
                    .unwrap_or_else(|| counted_row(&event.stream)),
            };
            row.reopen_count += 1;
            row.version = event.version;
            row.summary = format!("through {}", event.position);
            rows.insert(event.stream.clone(), row);
        }
        self.index
            .apply(rows.into_values().collect(), checkpoint)
            .await
            .map_err(failed)
    }
}

const INDEX_CRASH_CHILD: &str = "SMSYS_SQLITE_INDEX_CRASH_CHILD";
const INDEX_CRASH_STREAMS: u64 = 8;

/// Not a test on its own: the child process of `killed_indexer_keeps_rows_and_checkpoint_exact`.
/// Without the environment variable it returns at once.
#[test]
fn index_crash_child_applies_until_killed() {
    let Ok(path) = std::env::var(INDEX_CRASH_CHILD) else {
        return;
    };
    let durability = match std::env::var("SMSYS_SQLITE_CRASH_DURABILITY").as_deref() {
        Ok("normal") => Durability::Normal,
        _ => Durability::Full,
    };
    let seed: u64 = std::env::var("SMSYS_SQLITE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        | 1;
    runtime().block_on(async move {
        let store = SqliteOptions::new(path)
            .durability(durability)
            .open()
            .await
            .expect("child opens the store");
        let appender = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut rng = Rng(seed);
                loop {
                    let stream = Fixture::stream_in(
                        "incident",
                        &format!("K{}", rng.below(INDEX_CRASH_STREAMS)),
                    );
                    let events = (0..=rng.below(3))
                        .map(|part| event("crash.tick", json!({ "part": part })))
                        .collect();
                    store
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .unwrap();
                }
            })
        };
        let projection = Counting {
            index: store.record_index(index_name("crash.v1")),
        };
        let runner = ProjectionRunner::new(Arc::new(store.clone()))
            .with_batch_size(1 + (seed % 40) as usize);
        runner
            .run(&projection, futures::future::pending())
            .await
            .unwrap();
        appender.await.unwrap();
    });
}

/// What the index must hold when its checkpoint is `checkpoint`: each stream's event count up
/// to it.
fn expected_counts(
    events: &[RecordedEvent],
    checkpoint: Option<Position>,
) -> BTreeMap<StreamId, u64> {
    let mut counts = BTreeMap::new();
    for e in events {
        if checkpoint.is_some_and(|c| e.position <= c) {
            *counts.entry(e.stream.clone()).or_default() += 1;
        }
    }
    counts
}

async fn assert_index_matches(
    index: &SqliteRecordIndex,
    events: &[RecordedEvent],
    context: &str,
) -> Option<Position> {
    let checkpoint = index.checkpoint().await.unwrap();
    let counts = expected_counts(events, checkpoint);
    for n in 0..INDEX_CRASH_STREAMS {
        let stream = Fixture::stream_in("incident", &format!("K{n}"));
        let row = index.row(&stream).await.unwrap();
        match counts.get(&stream) {
            Some(&count) => {
                let row = row.unwrap_or_else(|| panic!("{context}: {stream} lost its row"));
                assert_eq!(
                    (row.version.get(), u64::from(row.reopen_count)),
                    (count, count),
                    "{context}: {stream} holds exactly its {count} events up to {checkpoint:?}"
                );
            }
            None => assert_eq!(
                row, None,
                "{context}: {stream} has no event up to {checkpoint:?}"
            ),
        }
    }
    assert_eq!(
        index.count(&RecordQuery::new()).await.unwrap(),
        counts.len() as u64,
        "{context}: one row per stream with events"
    );
    checkpoint
}

#[test]
fn killed_indexer_keeps_rows_and_checkpoint_exact() {
    const ROUNDS: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let runtime = runtime();
    let started = Instant::now();
    let mut checkpoints = Vec::new();
    for round in 0..ROUNDS {
        let durability = if round % 2 == 0 { "full" } else { "normal" };
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "index_crash_child_applies_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(INDEX_CRASH_CHILD, &path)
            .env("SMSYS_SQLITE_CRASH_DURABILITY", durability)
            .env("SMSYS_SQLITE_CRASH_SEED", rng.below(u64::MAX).to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(60 + rng.below(300)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child was killed, not finished"
        );
        runtime.block_on(async {
            let store = SqliteEventStore::open(&path)
                .await
                .unwrap_or_else(|e| panic!("round {round}: reopening after SIGKILL: {e}"));
            let events = all(&store).await;
            let index = store.record_index(index_name("crash.v1"));
            let checkpoint = assert_index_matches(&index, &events, &format!("round {round}")).await;
            checkpoints.push(checkpoint);
            if round + 1 == ROUNDS {
                // Caught up by another run, the index holds every event exactly once.
                let projection = Counting { index };
                let reached = ProjectionRunner::new(Arc::new(store.clone()))
                    .catch_up(&projection)
                    .await
                    .unwrap();
                assert_eq!(reached, events.last().map(|e| e.position));
                assert_index_matches(&projection.index, &events, "caught up").await;
                assert!(store.verify().await.unwrap().is_intact());
            }
            store.close().await;
        });
    }
    let moved = checkpoints.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        moved >= ROUNDS / 2,
        "the children applied batches in most rounds: {checkpoints:?}"
    );
    eprintln!(
        "index crash test: {ROUNDS} kills, checkpoints {checkpoints:?}, {:?}",
        started.elapsed()
    );
}

#[test]
fn a_failed_index_batch_keeps_neither_rows_nor_checkpoint() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteEventStore::open(&path).await.unwrap();
        let index = store.record_index(index_name("atomic"));
        let kept = record_row("KEPT");
        index
            .apply(vec![kept.clone()], Position::from_sequence(1))
            .await
            .unwrap();
        // A trigger behind the store's back makes one row of a batch fail halfway through.
        {
            let raw = rusqlite::Connection::open(&path).unwrap();
            raw.busy_timeout(Duration::from_secs(10)).unwrap();
            raw.execute_batch(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON record_index
                 WHEN NEW.stream = 'incident-POISON'
                 BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
            )
            .unwrap();
        }
        let mut changed = kept.clone();
        changed.summary = "changed".into();
        changed.affected_cis = vec![ci("new-ci")];
        let batch = vec![changed, record_row("FRESH"), record_row("POISON")];
        // Appends sent at the same time share the writer's transaction: the failed batch must
        // not take them down.
        let stream = Fixture::stream("beside");
        let (applied, appended) = tokio::join!(
            index.apply(batch, Position::from_sequence(2)),
            store.append(
                &stream,
                ExpectedVersion::NoStream,
                vec![event("t", json!({}))]
            ),
        );
        let StoreError::Backend(e) = applied.unwrap_err() else {
            panic!("a backend failure");
        };
        assert_eq!(e.operation(), "apply record index rows");
        appended.unwrap();
        assert_eq!(
            index.checkpoint().await.unwrap(),
            Some(Position::from_sequence(1))
        );
        assert_eq!(index.row(&kept.stream).await.unwrap(), Some(kept));
        assert_eq!(
            index.row(&record_row("FRESH").stream).await.unwrap(),
            None,
            "nothing of the failed batch is kept"
        );
        let by_ci = RecordQuery {
            ci: Some(ci("new-ci")),
            ..RecordQuery::new()
        };
        assert_eq!(index.count(&by_ci).await.unwrap(), 0);
        assert_eq!(
            store.stream_version(&stream).await.unwrap(),
            Some(Version::FIRST)
        );
        // The next batch goes through.
        index
            .apply(vec![record_row("FRESH")], Position::from_sequence(3))
            .await
            .unwrap();
        assert_eq!(index.count(&RecordQuery::new()).await.unwrap(), 2);
    });
}

#[test]
fn an_index_checkpoint_is_the_named_checkpoint_of_its_index() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open(dir.path().join("store.db"))
            .await
            .unwrap();
        let index = store.record_index(index_name("record_index.v1"));
        index
            .apply(vec![record_row("A")], Position::from_sequence(4))
            .await
            .unwrap();
        assert_eq!(
            store.load_checkpoint("record_index.v1").await.unwrap(),
            Some(Position::from_sequence(4))
        );
        // Moving it back is how a rebuild starts over from an earlier point.
        store
            .save_checkpoint("record_index.v1", Position::START)
            .await
            .unwrap();
        assert_eq!(index.checkpoint().await.unwrap(), Some(Position::START));
        let r = store
            .save_checkpoint("beyond", Position::from_sequence(u64::MAX))
            .await;
        assert!(
            matches!(&r, Err(StoreError::Backend(e)) if !e.is_transient()),
            "a position sqlite cannot keep is refused: {r:?}"
        );
        let r = index
            .apply(vec![record_row("B")], Position::new(u64::MAX, 1))
            .await;
        assert!(r.is_err(), "{r:?}");
        assert_eq!(index.row(&record_row("B").stream).await.unwrap(), None);
    });
}

#[test]
fn index_writes_and_appends_from_many_tasks_and_two_handles_all_complete() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteEventStore::open(&path).await.unwrap();
        // A second handle has its own writer thread: the two meet on SQLite's lock.
        let other = SqliteEventStore::open(&path).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..100u64 {
            let (store, other) = (store.clone(), other.clone());
            tasks.push(tokio::spawn(async move {
                let handle = if i % 2 == 0 { &store } else { &other };
                let stream = Fixture::stream(&format!("s{i}"));
                handle
                    .append(
                        &stream,
                        ExpectedVersion::NoStream,
                        vec![event("t", json!({}))],
                    )
                    .await
                    .unwrap();
                let index = handle.record_index(index_name(&format!("idx{}", i % 3)));
                index
                    .apply(
                        vec![record_row(&format!("R{i}"))],
                        Position::from_sequence(i),
                    )
                    .await
                    .unwrap();
                handle
                    .save_checkpoint(&format!("cp{i}"), Position::from_sequence(i))
                    .await
                    .unwrap();
            }));
        }
        tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(tasks))
            .await
            .expect("nothing wedges")
            .into_iter()
            .for_each(|r| r.unwrap());
        assert_eq!(all(&store).await.len(), 100);
        let mut rows = 0;
        for n in 0..3 {
            rows += store
                .record_index(index_name(&format!("idx{n}")))
                .count(&RecordQuery::new())
                .await
                .unwrap();
        }
        assert_eq!(rows, 100);
        assert_eq!(
            other.load_checkpoint("cp42").await.unwrap(),
            Some(Position::from_sequence(42))
        );
        other.close().await;
        store.close().await;
    });
}

// ---------------------------------------------------------------------------------------------
// Interrupted creations and hot journals: opened and working, or refused untouched

const PAGE: usize = 4096;
const SMSY: [u8; 4] = *b"SMSY";

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// The file, its rollback journal and its write-ahead log, as they are on disk.
fn on_disk(path: &Path) -> [Option<Vec<u8>>; 3] {
    ["", "-journal", "-wal"].map(|suffix| std::fs::read(beside(path, suffix)).ok())
}

/// A rollback journal as SQLite writes it: a header (magic, record count, checksum nonce, the
/// database's page count before the transaction, sector and page size) padded to a sector,
/// then each original page with its number and checksum.
fn journal(pages_before: u32, records: &[(u32, &[u8])], count: u32) -> Vec<u8> {
    let nonce: u32 = 0x1234_5678;
    let mut j = vec![0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    for field in [count, nonce, pages_before, 512, PAGE as u32] {
        j.extend_from_slice(&field.to_be_bytes());
    }
    j.resize(512, 0);
    for (page, data) in records {
        assert_eq!(data.len(), PAGE);
        j.extend_from_slice(&page.to_be_bytes());
        j.extend_from_slice(data);
        let mut checksum = nonce;
        // SQLite's sum: every 200th byte, from the page's 200th-last down to above the first.
        for i in (1..=PAGE - 200).rev().step_by(200) {
            checksum = checksum.wrapping_add(u32::from(data[i]));
        }
        j.extend_from_slice(&checksum.to_be_bytes());
    }
    j
}

fn set_be32(bytes: &mut [u8], at: usize, value: [u8; 4]) {
    bytes[at..at + 4].copy_from_slice(&value);
}

/// A store holding three events, in rollback-journal mode (as a creation leaves it before
/// the switch to WAL).
async fn store_image(dir: &Path) -> Vec<u8> {
    let path = dir.join("image.db");
    filled(&path, &["a"], 3).await.close().await;
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    drop(raw);
    std::fs::read(&path).unwrap()
}

/// A database of another application.
fn foreign_image(dir: &Path) -> Vec<u8> {
    let path = dir.join("foreign-image.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "CREATE TABLE notes (body TEXT);
         INSERT INTO notes SELECT 'note ' || value FROM generate_series(1, 200);",
    )
    .or_else(|_| {
        raw.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
             INSERT INTO notes SELECT 'note ' || i FROM n;",
        )
    })
    .unwrap();
    drop(raw);
    std::fs::read(&path).unwrap()
}

/// How an open of a damaged or interrupted file ended.
#[derive(Debug)]
enum Outcome {
    /// It opened, and appends, reads and verify work; the events found before the probe.
    Opened(usize),
    /// It was refused and every byte of the file, its journal and its log is as it was.
    Refused(OpenError),
}

/// Opens `path` (with a deadline): either the store works, or the refusal left the file, its
/// journal and its write-ahead log byte-for-byte as they were.
async fn opens_or_untouched(path: &Path) -> Outcome {
    let before = on_disk(path);
    let opened = tokio::time::timeout(Duration::from_secs(30), SqliteEventStore::open(path))
        .await
        .expect("opening does not hang");
    match opened {
        Ok(store) => {
            let found = all(&store).await.len();
            let probe = Fixture::stream("probe");
            store
                .append(&probe, ExpectedVersion::Any, vec![event("t", json!({}))])
                .await
                .expect("an opened store appends");
            assert_eq!(all(&store).await.len(), found + 1);
            assert!(store.verify().await.unwrap().is_intact());
            store.close().await;
            Outcome::Opened(found)
        }
        Err(e) => {
            let after = on_disk(path);
            for (i, suffix) in ["", "-journal", "-wal"].iter().enumerate() {
                assert!(
                    before[i] == after[i],
                    "{e}: {}{suffix} changed by a refused open",
                    path.display()
                );
            }
            Outcome::Refused(e)
        }
    }
}

/// Writes `db` (and `journal` and `wal` beside it when given) as a fresh file.
fn lay_out(path: &Path, db: Option<&[u8]>, journal: Option<&[u8]>, wal: Option<&[u8]>) {
    for (suffix, bytes) in [("", db), ("-journal", journal), ("-wal", wal)] {
        let at = beside(path, suffix);
        let _ = std::fs::remove_file(&at);
        if let Some(bytes) = bytes {
            std::fs::write(&at, bytes).unwrap();
        }
    }
}

/// Interrupted creations at several points (every prefix of the file, its header written or
/// not, with and without the creation's journal, synced or not), an interrupted switch to
/// WAL mode, and hot journals whose rollback would make the file foreign or too new: each
/// either opens and works, or is refused with the file, journal and log untouched.
#[test]
fn interrupted_creations_open_or_are_refused_untouched() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let image = store_image(dir.path()).await;
        let pages = u32::try_from(image.len() / PAGE).unwrap();
        assert!(pages >= 3, "several pages: {pages}");
        let path = dir.path().join("store.db");

        // A creation: its journal records that the file held no page before.
        let creation = journal(0, &[], 0);
        let unsynced = journal(0, &[], u32::MAX);
        let mut prefixes = vec![0, 50, 100, PAGE, PAGE + 1_000, 2 * PAGE];
        prefixes.extend([image.len() / 2, image.len() - 1, image.len()]);
        for len in prefixes {
            let db = &image[..len];
            for j in [None, Some(&creation), Some(&unsynced)] {
                lay_out(&path, Some(db), j.map(Vec::as_slice), None);
                let outcome = opens_or_untouched(&path).await;
                let case = format!("{len} bytes, journal {}", j.is_some());
                match (len, j, &outcome) {
                    // No header: nothing says whose file it is.
                    (1..100, _, Outcome::Refused(OpenError::NotAStore { .. })) => {}
                    // With the creation's journal, the creation is undone and done again.
                    (0, _, Outcome::Opened(0)) | (100.., Some(_), Outcome::Opened(0)) => {}
                    (n, None, Outcome::Opened(3)) if n == image.len() => {}
                    (100.., None, Outcome::Refused(OpenError::Corrupt { .. })) => {}
                    _ => panic!("{case}: {outcome:?}"),
                }
            }
        }

        // The switch to WAL mode interrupted: page 1 says WAL, the journal holds it as it was.
        let mut switched = image.clone();
        switched[18] = 2;
        switched[19] = 2;
        let switch = journal(pages, &[(1, &image[..PAGE])], 1);
        lay_out(&path, Some(&switched), Some(&switch), None);
        let outcome = opens_or_untouched(&path).await;
        assert!(matches!(outcome, Outcome::Opened(3)), "{outcome:?}");
        // ... and its file cut short: what the rollback leaves is damaged, refused untouched.
        lay_out(&path, Some(&switched[..PAGE]), Some(&switch), None);
        let outcome = opens_or_untouched(&path).await;
        assert!(matches!(outcome, Outcome::Refused(_)), "{outcome:?}");

        // A store whose interrupted transaction lowered the schema version: the rollback
        // gives a newer schema back.
        let mut newer = image.clone();
        set_be32(&mut newer, 60, 99u32.to_be_bytes());
        lay_out(
            &path,
            Some(&image),
            Some(&journal(pages, &[(1, &newer[..PAGE])], 1)),
            None,
        );
        let outcome = opens_or_untouched(&path).await;
        assert!(
            matches!(
                outcome,
                Outcome::Refused(OpenError::SchemaTooNew { found: 99, .. })
            ),
            "{outcome:?}"
        );
    });
}

/// A foreign database with a hot journal is refused untouched, whether its header is foreign
/// or an interrupted transaction wrote "SMSY" into it (the rollback makes it foreign again).
#[test]
fn a_foreign_database_with_a_hot_journal_is_refused_untouched() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let foreign = foreign_image(dir.path());
        let pages = u32::try_from(foreign.len() / PAGE).unwrap();
        let path = dir.path().join("store.db");
        let restore_page_1 = journal(pages, &[(1, &foreign[..PAGE])], 1);

        let mut claimed = foreign.clone();
        set_be32(&mut claimed, 68, SMSY);
        set_be32(&mut claimed, 60, 2u32.to_be_bytes());
        let mut edited = foreign.clone();
        edited[2 * PAGE - 10] ^= 0xff;
        for db in [&foreign, &edited, &claimed] {
            for j in [Some(&restore_page_1), Some(&journal(0, &[], 0)), None] {
                lay_out(&path, Some(db), j.map(Vec::as_slice), None);
                let outcome = opens_or_untouched(&path).await;
                match (&outcome, j) {
                    (Outcome::Refused(OpenError::NotAStore { .. }), _) => {}
                    // "SMSY" in the header and a creation journal: an interrupted creation of
                    // a store, undone and done again (the journal says the file held nothing).
                    (Outcome::Opened(0), Some(j))
                        if std::ptr::eq(db, &claimed) && j[16..20] == [0; 4] => {}
                    _ => panic!("{outcome:?}"),
                }
            }
        }

        // A write-ahead log beside an empty or missing file: SQLite would read it as the
        // database; it is refused, not merged into a new store.
        let wal_source = dir.path().join("wal-source.db");
        {
            let raw = rusqlite::Connection::open(&wal_source).unwrap();
            raw.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )
            .unwrap();
            raw.pragma_update(None, "journal_mode", "WAL").unwrap();
            raw.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
            raw.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
                .unwrap();
        }
        let wal = std::fs::read(beside(&wal_source, "-wal")).unwrap();
        assert!(!wal.is_empty());
        for db in [Some(&[][..]), None] {
            lay_out(&path, db, None, Some(&wal));
            let outcome = opens_or_untouched(&path).await;
            assert!(
                matches!(outcome, Outcome::Refused(OpenError::NotAStore { .. })),
                "{outcome:?}"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Files that are not regular files

/// A FIFO, a directory, and a FIFO in place of the write-ahead log are refused at once with
/// a typed error naming the path and what it is (opening a FIFO would wait for a writer).
#[test]
fn fifos_and_directories_are_refused_at_once() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.db");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let directory = dir.path().join("dir.db");
    std::fs::create_dir(&directory).unwrap();
    let with_fifo_wal = dir.path().join("store.db");
    rt.block_on(async {
        filled(&with_fifo_wal, &["a"], 1).await.close().await;
    });
    let made = Command::new("mkfifo")
        .arg(beside(&with_fifo_wal, "-wal"))
        .status()
        .unwrap();
    assert!(made.success());

    let results: Vec<_> = [
        (fifo, "FIFO"),
        (directory, "directory"),
        (with_fifo_wal, "wal is not a regular file but a FIFO"),
    ]
    .into_iter()
    .map(|(path, says)| {
        let opened = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                SqliteEventStore::open(path.clone()),
            )
            .await
        });
        (path, says, opened)
    })
    .collect();
    // A regression blocks a thread of the blocking pool in `open`: leave it behind.
    rt.shutdown_background();
    for (path, says, opened) in results {
        match opened {
            Ok(Err(e @ OpenError::NotAStore { .. })) => {
                let message = e.to_string();
                assert!(message.contains(&path.display().to_string()), "{message}");
                assert!(message.contains(says), "{message}");
            }
            Ok(other) => panic!("{}: {other:?}", path.display()),
            Err(_) => panic!("{}: opening hangs", path.display()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged rows: every read path reports them as corrupt, naming where

/// A store of streams a, b, c with three events each, every metadata field set: stream b's
/// second event is at position 5.
async fn rich(path: &Path) -> SqliteEventStore {
    let store = SqliteEventStore::open(path).await.unwrap();
    for _ in 0..3 {
        for s in ["a", "b", "c"] {
            store
                .append(
                    &Fixture::stream(s),
                    ExpectedVersion::Any,
                    vec![Fixture::rich_event()],
                )
                .await
                .unwrap();
        }
    }
    store
}

async fn first_error(events: smsys_core::EventStream<'_>) -> StoreError {
    let mut events = events;
    let deadline = Duration::from_secs(10);
    loop {
        match tokio::time::timeout(deadline, events.next()).await {
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => {
                // The read ends at the damage; a subscription does not retry it forever.
                let after = tokio::time::timeout(deadline, events.next()).await;
                assert!(matches!(after, Ok(None)), "the read ends after {e}");
                return e;
            }
            Ok(None) => panic!("the read ended without reporting the damage"),
            Err(_) => panic!("the read neither reports the damage nor ends"),
        }
    }
}

fn corrupt_saying(e: StoreError, says: &[&str]) {
    let StoreError::Corrupt { what } = e else {
        panic!("expected a corrupt row, got {e:?}");
    };
    for s in says {
        assert!(what.contains(s), "{what:?} does not say {s:?}");
    }
}

/// Bytes that are not UTF-8 in each text column of the events table, and in a stream's
/// name: reading the stream forwards and backwards, the log (filtered or not) and a
/// subscription all report a corrupt row naming its position, its stream and version when
/// readable, and the column; none retries. Verify lists such an event (a stream's name, which
/// it checks first, is a corrupt row).
#[test]
fn text_that_is_not_utf8_is_a_corrupt_row_on_every_read_path() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        for column in ["event_type", "payload", "actor", "tenant", "extensions"] {
            let path = dir.path().join(format!("{column}.db"));
            rich(&path).await.close().await;
            let raw = rusqlite::Connection::open(&path).unwrap();
            let changed = raw
                .execute(
                    &format!(
                        "UPDATE events SET {column} = CAST(X'61FF62' AS TEXT) WHERE position = 5"
                    ),
                    [],
                )
                .unwrap();
            assert_eq!(changed, 1);
            drop(raw);
            let store = SqliteEventStore::open(&path).await.unwrap();
            let name = format!("events.{column}");
            let says = [
                "position 5",
                "stream test-b",
                "version 2",
                &name,
                "not UTF-8",
            ];
            let b = Fixture::stream("b");
            corrupt_saying(
                first_error(store.read_stream(&b, Version::FIRST)).await,
                &says,
            );
            corrupt_saying(
                first_error(store.read_stream_backwards(&b, None)).await,
                &says,
            );
            corrupt_saying(
                first_error(store.read_all(Position::START, LogFilter::all())).await,
                &says,
            );
            let category = LogFilter::all().category(Fixture::stream("b").category());
            corrupt_saying(
                first_error(store.read_all(Position::START, category.clone())).await,
                &says,
            );
            corrupt_saying(
                first_error(store.subscribe(Position::START, category)).await,
                &says,
            );
            corrupt_saying(
                first_error(store.subscribe(Position::START, LogFilter::all())).await,
                &says,
            );
            // Verify lists it and walks on.
            let report = store.verify().await.unwrap();
            assert!(!report.is_intact());
            let [row] = &report.undecodable[..] else {
                panic!("one undecodable row: {report:?}");
            };
            assert_eq!(row.position, Position::new(0, 5));
            for s in says {
                assert!(row.what.contains(s), "{row} does not say {s:?}");
            }
            store.close().await;
        }

        // A stream's name: its events in the log are unreadable from the first (position 2).
        let path = dir.path().join("name.db");
        rich(&path).await.close().await;
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute(
            "UPDATE streams SET name = CAST(X'746573742D62FF' AS TEXT) WHERE name = 'test-b'",
            [],
        )
        .unwrap();
        drop(raw);
        let store = SqliteEventStore::open(&path).await.unwrap();
        let says = ["position 2", "version 1", "streams.name", "not UTF-8"];
        corrupt_saying(
            first_error(store.read_all(Position::START, LogFilter::all())).await,
            &says,
        );
        corrupt_saying(
            first_error(store.subscribe(Position::START, LogFilter::all())).await,
            &says,
        );
        corrupt_saying(
            store.verify().await.unwrap_err(),
            &["streams.name", "not UTF-8"],
        );
        store.close().await;

        // A snapshot's state: corrupt too, not a backend failure.
        let path = dir.path().join("snapshot.db");
        let store = rich(&path).await;
        let b = Fixture::stream("b");
        store
            .save_snapshot(Snapshot {
                stream: b.clone(),
                version: Version::new(3),
                schema_version: 1,
                state: json!({"n": 1}),
            })
            .await
            .unwrap();
        store.close().await;
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute("UPDATE snapshots SET state = CAST(X'7BFF7D' AS TEXT)", [])
            .unwrap();
        drop(raw);
        let store = SqliteEventStore::open(&path).await.unwrap();
        corrupt_saying(
            store.load_snapshot(&b).await.unwrap_err(),
            &["load snapshot"],
        );
        store.close().await;
    });
}

/// Events too damaged to decode do not end verify: it lists each (position, column, stream
/// and version), walks past them, and reports what follows from skipping them: the next
/// event of the same stream breaks, and the seal covering them does not hold.
#[test]
fn verify_lists_every_undecodable_event_and_walks_past_them() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = rich(&path).await;
        let shared: Arc<dyn EventStore> = Arc::new(store.clone());
        smsys_core::seal::Sealer::new(shared)
            .seal()
            .await
            .unwrap()
            .unwrap();
        store.close().await;
        // Positions: a1 b1 c1 a2 b2 c2 a3 b3 c3, then the seal. b1's payload and a3's (a's
        // last) actor are damaged, and c2's schema version is a text.
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(
            "UPDATE events SET payload = CAST(X'7BFF7D' AS TEXT) WHERE position = 2;
             UPDATE events SET actor = CAST(X'61FF62' AS TEXT) WHERE position = 7;",
        )
        .unwrap();
        let strict = raw.execute(
            "UPDATE events SET schema_version = 'one' WHERE position = 6",
            [],
        );
        drop(raw);
        let store = SqliteEventStore::open(&path).await.unwrap();
        let report = store.verify().await.unwrap();
        assert!(!report.is_intact());
        let mut expected = vec![
            (
                2,
                vec!["position 2", "stream test-b", "version 1", "events.payload"],
            ),
            (
                7,
                vec!["position 7", "stream test-a", "version 3", "events.actor"],
            ),
        ];
        if strict.is_ok() {
            // A STRICT table refuses it; were it stored, it would be listed too.
            expected.insert(1, (6, vec!["position 6", "events.schema_version"]));
        }
        let listed: Vec<u64> = report
            .undecodable
            .iter()
            .map(|row| row.position.sequence())
            .collect();
        assert_eq!(
            listed,
            expected.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            "{report:?}"
        );
        for (row, (_, says)) in report.undecodable.iter().zip(&expected) {
            for s in says {
                assert!(row.what.contains(s), "{row} does not say {s:?}");
            }
        }
        // b2 follows a skipped event; nothing else breaks (a3 was a's last).
        let broken: Vec<(u64, String)> = report
            .breaks
            .iter()
            .map(|b| (b.position.sequence(), b.stream.to_string()))
            .collect();
        assert_eq!(broken[0], (5, "test-b".to_owned()), "{report:?}");
        assert!(
            broken.iter().all(|(_, s)| s != "test-a"),
            "a's events before its damaged last one hold: {report:?}"
        );
        assert!(!report.seal_failures.is_empty(), "the seal covers them");
        store.close().await;
    });
}

// ---------------------------------------------------------------------------------------------
// Verify: what the hash chain does not cover

/// Runs `edit` on a closed store of streams a, b, c (three events each, in log order a b c)
/// and returns what verify says.
async fn verify_after(
    dir: &Path,
    name: &str,
    edit: &str,
) -> Result<smsys_core::VerifyReport, StoreError> {
    let path = dir.join(format!("{name}.db"));
    let store = filled(&path, &["a", "b", "c"], 3).await;
    assert!(store.verify().await.unwrap().is_intact());
    store.close().await;
    let raw = rusqlite::Connection::open(&path).unwrap();
    assert!(raw.execute(edit, []).unwrap() >= 1, "{edit}");
    drop(raw);
    let store = SqliteEventStore::open(&path).await.unwrap();
    let verified = store.verify().await;
    store.close().await;
    verified
}

/// A stream's stored category (which log filters select by) edited, an event deleted where
/// the chain cannot see it (a stream's last, not at the log's end), and a position renumbered:
/// verify reports each, naming the stream or the first missing position.
#[test]
fn verify_finds_edited_categories_and_missing_positions() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // Positions: a1 b1 c1 a2 b2 c2 a3 b3 c3; a's last event is at 7.
        let cases: [(&str, &str, &[&str]); 4] = [
            (
                "category",
                "UPDATE streams SET category = 'other' WHERE name = 'test-b'",
                &["test-b", "category", "other"],
            ),
            (
                "deleted",
                "DELETE FROM events WHERE position = 7",
                &["position 7 is missing"],
            ),
            (
                "renumbered",
                "UPDATE events SET position = 100 WHERE position = 4",
                &["position 4 is missing"],
            ),
            (
                "first",
                "UPDATE events SET position = 50 WHERE position = 1",
                &["position 1 is missing"],
            ),
        ];
        for (name, edit, says) in cases {
            let found = verify_after(dir.path(), name, edit).await;
            corrupt_saying(found.unwrap_err(), says);
        }
    });
}
