//! The file format: header checks made before SQLite touches a file, numbered migrations and
//! the pragmas of each connection.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::error;
use super::{Durability, OpenError};

/// `PRAGMA application_id` of an smsys store: "SMSY" in ASCII.
pub(crate) const APPLICATION_ID: i32 = 0x534d_5359;

/// Numbered migrations: entry `i` takes the schema from version `i` to `i + 1`. Shipped entries
/// are never edited; a change is a new entry.
const MIGRATIONS: &[&str] = &[
    // 1: streams (written once per stream; a stream's head is its last event, so an append
    // touches no stream row), events, snapshots.
    "CREATE TABLE streams (
        stream_id INTEGER PRIMARY KEY,
        name      TEXT    NOT NULL UNIQUE,
        category  TEXT    NOT NULL
    ) STRICT;
    CREATE TABLE events (
        position       INTEGER PRIMARY KEY,
        stream_id      INTEGER NOT NULL REFERENCES streams (stream_id),
        version        INTEGER NOT NULL CHECK (version >= 1),
        event_id       BLOB    NOT NULL UNIQUE,
        event_type     TEXT    NOT NULL,
        schema_version INTEGER NOT NULL,
        payload        TEXT    NOT NULL,
        actor          TEXT    NOT NULL,
        occurred_at    INTEGER NOT NULL,
        correlation_id BLOB,
        causation_id   BLOB,
        tenant         TEXT,
        extensions     TEXT,
        recorded_at    INTEGER NOT NULL,
        previous_hash  BLOB,
        hash           BLOB    NOT NULL,
        UNIQUE (stream_id, version)
    ) STRICT;
    CREATE TABLE snapshots (
        stream         TEXT    PRIMARY KEY,
        version        INTEGER NOT NULL,
        schema_version INTEGER NOT NULL,
        state          TEXT    NOT NULL
    ) STRICT;",
    // 2: the read side. Named checkpoints; the record index, one row per (index name, stream)
    // with a column for every filter and order (instants in microseconds; a missing priority
    // is 6 and a missing due instant i64::MAX, so both sort last) and the whole row as JSON,
    // read back exactly; the configuration items of each row. An index's checkpoint is the
    // checkpoint row under its name, written in the transaction that writes its rows. Each
    // order has an index, and so have the queue views (a group's or a person's records by due
    // instant or priority), which otherwise scan an order's index for their few rows.
    r#"CREATE TABLE checkpoints (
        name     TEXT    PRIMARY KEY,
        "commit" INTEGER NOT NULL CHECK ("commit" >= 0),
        sequence INTEGER NOT NULL CHECK (sequence >= 0)
    ) STRICT;
    CREATE TABLE record_index (
        index_name  TEXT    NOT NULL,
        stream      TEXT    NOT NULL,
        record_type TEXT    NOT NULL,
        status      TEXT    NOT NULL,
        phase       TEXT    NOT NULL,
        priority    INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 6),
        service     TEXT    NOT NULL,
        grp         TEXT,
        person      TEXT,
        summary     TEXT    NOT NULL,
        logged_at   INTEGER NOT NULL,
        due         INTEGER NOT NULL,
        breached    INTEGER NOT NULL CHECK (breached IN (0, 1)),
        row         TEXT    NOT NULL,
        UNIQUE (index_name, stream)
    ) STRICT;
    CREATE INDEX record_index_logged ON record_index (index_name, logged_at, stream);
    CREATE INDEX record_index_priority ON record_index (index_name, priority, logged_at, stream);
    CREATE INDEX record_index_due ON record_index (index_name, due, stream);
    CREATE INDEX record_index_group_due ON record_index (index_name, grp, due, stream);
    CREATE INDEX record_index_group_priority
        ON record_index (index_name, grp, priority, logged_at, stream);
    CREATE INDEX record_index_person_due ON record_index (index_name, person, due, stream);
    CREATE INDEX record_index_person_priority
        ON record_index (index_name, person, priority, logged_at, stream);
    CREATE TABLE record_index_ci (
        index_name TEXT NOT NULL,
        stream     TEXT NOT NULL,
        ci         TEXT NOT NULL,
        PRIMARY KEY (index_name, stream, ci)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX record_index_ci_by_ci ON record_index_ci (index_name, ci);"#,
    // 3: append boundaries, for the retry rule (`smsys_core::AppendSpan`): `append_len` is the
    // number of events of the append on its first event and 0 on the others; NULL on events
    // written before this migration (unknown: their retries keep the lenient rule). A filter
    // kept with each checkpoint (text; NULL when none was kept).
    r#"ALTER TABLE events ADD COLUMN append_len INTEGER CHECK (append_len >= 0);
    ALTER TABLE checkpoints ADD COLUMN "filter" TEXT;"#,
    // 4: the configuration graph. One row per (graph name, CI): the whole row as JSON and the
    // columns queries select on (type and status NULL until the CI is registered); one edge
    // per (graph name, source, relationship, target), indexed from both ends for walks. A
    // graph's checkpoint is the checkpoint row under its name, written with its rows.
    "CREATE TABLE ci_rows (
        graph_name TEXT NOT NULL,
        ci         TEXT NOT NULL,
        ci_type    TEXT,
        name       TEXT NOT NULL,
        status     TEXT,
        row        TEXT NOT NULL,
        UNIQUE (graph_name, ci)
    ) STRICT;
    CREATE INDEX ci_rows_type ON ci_rows (graph_name, ci_type, ci);
    CREATE TABLE ci_edges (
        graph_name   TEXT NOT NULL,
        source       TEXT NOT NULL,
        relationship TEXT NOT NULL,
        target       TEXT NOT NULL,
        PRIMARY KEY (graph_name, source, relationship, target)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX ci_edges_to ON ci_edges (graph_name, target, relationship, source);",
];

/// The tables each migration creates (entry `i` for migration `i + 1`): a file whose header
/// claims a schema version must hold the tables of every migration up to it.
const TABLES: &[&[&str]] = &[
    &["streams", "events", "snapshots"],
    &["checkpoints", "record_index", "record_index_ci"],
    &[],
    &["ci_rows", "ci_edges"],
];

/// Refuses a file whose header claims `schema_version` but that lacks a table of it (a
/// database of another application that took the store's application id), before anything
/// is written to it.
fn missing_tables(conn: &Connection, schema_version: u32, path: &Path) -> Result<(), OpenError> {
    let mut stmt = conn
        .prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1")
        .map_err(|e| open_error(path, e))?;
    for table in TABLES
        .iter()
        .take(schema_version as usize)
        .flat_map(|t| t.iter())
    {
        let found: i64 = stmt
            .query_row([table], |r| r.get(0))
            .map_err(|e| open_error(path, e))?;
        if found == 0 {
            return Err(OpenError::NotAStore {
                path: path.to_owned(),
                why: format!("schema version {schema_version} but no table {table}"),
            });
        }
    }
    Ok(())
}

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Page cache of the writer connection, in KiB (as `PRAGMA cache_size` takes it: negative).
/// SQLite allocates it as pages are used.
const WRITER_CACHE_KIB: i64 = -65_536;

/// Page cache of each read connection, in KiB (negative, as above).
const READER_CACHE_KIB: i64 = -16_384;

/// What the file on disk is, judged from its header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// No file, or an empty one: a new store is created.
    Nothing,
    /// An smsys store at this schema version (possibly stale in WAL mode; checked again).
    Store { schema_version: u32 },
}

/// Reads the 100-byte SQLite header without opening the file with SQLite, so that a file
/// that is refused is left byte-for-byte untouched. Anything but a regular file (a directory,
/// a FIFO, a socket, a device), at the path or as its journal or write-ahead log, is refused
/// before it is opened (opening a FIFO would wait for a writer forever).
/// The file `path` names: the target when `path` is a symbolic link (as SQLite resolves it,
/// keeping the journal and the write-ahead log beside the target), else `path` itself.
pub(crate) fn resolve_link(path: &Path) -> std::path::PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
        }
        _ => path.to_owned(),
    }
}

pub(crate) fn inspect(path: &Path) -> Result<Found, OpenError> {
    inspect_as(path, path)
}

/// [`inspect`] of `file`, errors naming `named` (a rehearsal's copy names the real file).
fn inspect_as(file: &Path, named: &Path) -> Result<Found, OpenError> {
    let io = |source| OpenError::Io {
        path: named.to_owned(),
        source,
    };
    let not_a_store = |why: String| OpenError::NotAStore {
        path: named.to_owned(),
        why,
    };
    let mut len = None;
    for (suffix, at) in [
        ("", file.to_owned()),
        ("-journal", beside(file, "-journal")),
        ("-wal", wal_path(file)),
    ] {
        match std::fs::metadata(&at) {
            Ok(meta) if meta.is_file() => {
                if suffix.is_empty() {
                    len = Some(meta.len());
                }
            }
            Ok(meta) => {
                let what = non_regular(&meta.file_type());
                return Err(not_a_store(if suffix.is_empty() {
                    format!("not a regular file but {what}")
                } else {
                    format!("its {} is not a regular file but {what}", &suffix[1..])
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    if len.unwrap_or(0) == 0 {
        // SQLite would read a write-ahead log beside an empty file as the database's content:
        // a log left without its database (or of another one) is not a new store.
        if std::fs::metadata(wal_path(file)).is_ok_and(|m| m.len() > 0) {
            return Err(not_a_store(
                "the file is empty or missing but a write-ahead log is beside it".to_owned(),
            ));
        }
        return Ok(Found::Nothing);
    }
    let len = len.unwrap_or(0);
    let mut file_handle = match std::fs::File::open(file) {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(io(e)),
    };
    let mut header = [0u8; 100];
    let read = read_up_to(&mut file_handle, &mut header).map_err(io)?;
    let not_a_store = |why: &str| not_a_store(why.to_owned());
    let path = named;
    if read < header.len() || &header[..16] != b"SQLite format 3\0" {
        return Err(not_a_store("no SQLite header"));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    if be32(68) != APPLICATION_ID as u32 {
        return Err(not_a_store("SQLite database of another application"));
    }
    let schema_version = be32(60);
    if schema_version > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            found: schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    // Page size 1 means 65536. The in-header page count is valid when the change counter
    // matches "version valid for"; with no WAL beside it, the file must hold every page.
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(be32(28));
    let counted = pages != 0 && be32(24) == be32(92);
    // A rollback journal beside the file (a creation or migration interrupted before WAL mode)
    // is rolled back by SQLite on open, which restores the pages the header counts.
    let journal = beside(file, "-journal").exists();
    if counted && !wal_path(file).exists() && !journal && len < pages * page_size {
        return Err(OpenError::Corrupt {
            path: path.to_owned(),
            what: format!("file is {len} bytes, its header counts {pages} pages of {page_size}"),
        });
    }
    Ok(Found::Store { schema_version })
}

/// What a path that is not a regular file is, for an error message.
fn non_regular(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_char_device() {
            return "a character device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn wal_path(path: &Path) -> std::path::PathBuf {
    beside(path, "-wal")
}

fn beside(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Whether the database holds no schema at all.
fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) = 0 FROM sqlite_schema", [], |r| r.get(0))
}

fn open_error(path: &Path, e: rusqlite::Error) -> OpenError {
    match error::kind(&e) {
        error::Kind::Corrupt => OpenError::Corrupt {
            path: path.to_owned(),
            what: e.to_string(),
        },
        error::Kind::Transient | error::Kind::Failure => {
            OpenError::Backend(error::backend("open", e))
        }
    }
}

/// Opens the writer connection: creates or migrates the schema, WAL mode, the durability.
///
/// A hot rollback journal beside the file (a creation, a migration or the switch to WAL mode
/// interrupted) is rolled back by SQLite as soon as it reads the file, before anything can be
/// checked: what the file becomes then is judged first on a copy (see [`rehearse`]), so that
/// a file that would be refused after the rollback is refused before it, untouched.
pub(crate) fn open_writer(path: &Path, durability: Durability) -> Result<Connection, OpenError> {
    let found = inspect(path)?;
    if found != Found::Nothing && hot_journal(path)? {
        rehearse(path, durability)?;
    }
    open_found(path, path, found, durability)
}

/// Whether a rollback journal SQLite would play back is beside `path`: one that exists and
/// does not start with a zero byte (SQLite's own test; a zeroed header is an ended one).
fn hot_journal(path: &Path) -> Result<bool, OpenError> {
    let journal = beside(path, "-journal");
    let mut file = match std::fs::File::open(&journal) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(OpenError::Io {
                path: journal,
                source,
            });
        }
    };
    let mut first = [0u8; 1];
    let read = read_up_to(&mut file, &mut first).map_err(|source| OpenError::Io {
        path: journal.clone(),
        source,
    })?;
    Ok(read == 1 && first[0] != 0)
}

/// Opens a copy of the file and its journal (and write-ahead log, if any) in a scratch
/// directory exactly as the real open would, rollback, header check, migrations and all; an
/// error names the real file, which is left untouched. Files with a hot rollback journal are
/// small (a store leaves rollback-journal mode right after its creation), so the copy is cheap.
fn rehearse(path: &Path, durability: Durability) -> Result<(), OpenError> {
    let scratch = Scratch::new()?;
    let copy = scratch.dir.join("store.db");
    for suffix in ["", "-journal", "-wal"] {
        let from = beside(path, suffix);
        match std::fs::copy(&from, beside(&copy, suffix)) {
            Ok(_) => {}
            Err(e) if !suffix.is_empty() && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(OpenError::Io { path: from, source }),
        }
    }
    // Let SQLite play the journal back on the copy, then judge what it left as a file found
    // on disk: its header, its length.
    Connection::open_with_flags(
        &copy,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())))
    .map_err(|e| open_error(path, e))?;
    let found = inspect_as(&copy, path)?;
    let conn = open_found(&copy, path, found, durability)?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| open_error(path, e))?;
    if problems.iter().any(|line| line != "ok") {
        return Err(OpenError::Corrupt {
            path: path.to_owned(),
            what: format!(
                "after rolling back its journal: sqlite quick_check: {}",
                problems.join("; ")
            ),
        });
    }
    tracing::info!(
        path = %path.display(),
        "a hot rollback journal is beside the store; rolling it back"
    );
    Ok(())
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct Scratch {
    dir: std::path::PathBuf,
}

impl Scratch {
    fn new() -> Result<Self, OpenError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let base = std::env::temp_dir();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        loop {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = base.join(format!(
                "smsys-rehearsal-{}-{stamp}-{n}",
                std::process::id()
            ));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Self { dir }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1_000 => {}
                Err(source) => return Err(OpenError::Io { path: dir, source }),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove a scratch directory");
        }
    }
}

/// Opens `file`, found on disk as `found`, as the writer connection; errors name `named`.
fn open_found(
    file: &Path,
    named: &Path,
    found: Found,
    durability: Durability,
) -> Result<Connection, OpenError> {
    let path = named;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let fail = |e| open_error(path, e);
    let mut conn = Connection::open_with_flags(file, flags).map_err(fail)?;
    // Until the file is accepted, closing the connection must not checkpoint a WAL beside it
    // into the main file: a refused file is left exactly as it was.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    let (application_id, schema_version): (i32, i64) = conn
        .query_row(
            "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(fail)?;
    // A negative user_version is nothing smsys writes: treat it as too new.
    let schema_version = u32::try_from(schema_version).unwrap_or(u32::MAX);
    // A store whose creation was interrupted (a killed process) is a header that claims the
    // store and a hot rollback journal: opening rolled the creation back to an empty file,
    // which is created again. (A foreign database never gets here: its header is refused.)
    let rolled_back = matches!(found, Found::Store { .. })
        && application_id == 0
        && schema_version == 0
        && is_empty(&conn).map_err(fail)?;
    let new =
        rolled_back || (found == Found::Nothing && application_id == 0 && schema_version == 0);
    if rolled_back {
        tracing::info!(
            path = %path.display(),
            "the interrupted creation of the store was rolled back; creating it again"
        );
    }
    if !new && application_id != APPLICATION_ID {
        return Err(OpenError::NotAStore {
            path: path.to_owned(),
            why: "SQLite database of another application".to_owned(),
        });
    }
    if schema_version > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            found: schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    if !new {
        missing_tables(&conn, schema_version, path)?;
    }
    if schema_version < SCHEMA_VERSION {
        // A new store is created in rollback-journal mode, so the application id reaches the
        // main file's header at once (the header check above reads it there).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        for (from, migration) in MIGRATIONS.iter().enumerate().skip(schema_version as usize) {
            tracing::info!(path = %path.display(), to = from + 1, "migrating smsys sqlite schema");
            tx.execute_batch(migration).map_err(fail)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(fail)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
        .map_err(fail)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Backend(smsys_core::BackendError::new(
            error::BACKEND,
            "open",
            false,
            format!("WAL mode refused, journal mode is {mode}"),
        )));
    }
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(fail)?;
    // A batch of index rows touches pages all over the index's b-trees: a page cache too small
    // for them spills dirty pages to the WAL before the commit (and writes them again at it),
    // and the savepoint of each write copies pages into a statement journal, kept in memory.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
        .map_err(fail)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(fail)?;
    stable_plans(&conn).map_err(fail)?;
    Ok(conn)
}

/// Keeps each cached statement's query plan: without this, the bundled SQLite (built with
/// STAT4) re-prepares a statement whenever a new value is bound to a parameter its plan looked
/// at, which cost more than half of the writer's time.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Opens a read-only connection of the read pool.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
    stable_plans(&conn)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_refuses_garbage_and_foreign_databases() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.db");
        assert_eq!(inspect(&missing).unwrap(), Found::Nothing);

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"hello, not a database").unwrap();
        assert!(matches!(
            inspect(&garbage),
            Err(OpenError::NotAStore { .. })
        ));

        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        assert!(matches!(
            inspect(&foreign),
            Err(OpenError::NotAStore { .. })
        ));
    }

    #[test]
    fn every_migration_names_its_tables() {
        assert_eq!(TABLES.len(), MIGRATIONS.len());
        for (migration, tables) in MIGRATIONS.iter().zip(TABLES) {
            for table in *tables {
                assert!(
                    migration.contains(&format!("CREATE TABLE {table} ")),
                    "{table}"
                );
            }
        }
    }

    #[test]
    fn migrations_create_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let conn = open_writer(&path, Durability::Full).unwrap();
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(conn);
        assert_eq!(
            inspect(&path).unwrap(),
            Found::Store {
                schema_version: SCHEMA_VERSION
            }
        );
        // Opening again migrates nothing and keeps the data.
        drop(open_writer(&path, Durability::Normal).unwrap());
    }

    #[test]
    fn a_version_1_file_gains_the_read_side_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO streams (name, category) VALUES ('incident-1', 'incident')",
                [],
            )
            .unwrap();
        }
        assert_eq!(inspect(&path).unwrap(), Found::Store { schema_version: 1 });
        let conn = open_writer(&path, Durability::Full).unwrap();
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let streams: i64 = conn
            .query_row("SELECT count(*) FROM streams", [], |r| r.get(0))
            .unwrap();
        assert_eq!(streams, 1, "the data is kept");
        for table in ["checkpoints", "record_index", "record_index_ci"] {
            let found: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(found, 1, "{table} created");
        }
    }
}

#[cfg(test)]
mod interrupted {
    use super::*;

    /// What a process killed while creating a store leaves: every page of the new store
    /// written (the header says "SMSY") and the creation's hot rollback journal beside it,
    /// whose rollback empties the file (it held no page before). Opening creates the store
    /// again instead of refusing the file as foreign.
    #[test]
    fn an_interrupted_creation_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            let conn = Connection::open(&path).unwrap();
            let tx = conn.unchecked_transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0]).unwrap();
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .unwrap();
            tx.pragma_update(None, "user_version", 1).unwrap();
            tx.execute(
                "INSERT INTO streams (name, category) VALUES ('test-a', 'test')",
                [],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        // A journal header: magic, no page records, nonce, original size 0 pages, sector
        // size 512, page size 4096; padded to one sector.
        let mut journal = vec![0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
        for field in [0u32, 0x1234_5678, 0, 512, 4096] {
            journal.extend_from_slice(&field.to_be_bytes());
        }
        journal.resize(512, 0);
        std::fs::write(beside(&path, "-journal"), journal).unwrap();
        assert_eq!(inspect(&path).unwrap(), Found::Store { schema_version: 1 });

        let conn = open_writer(&path, Durability::Full).unwrap();
        let (application_id, version): (i32, u32) = conn
            .query_row(
                "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((application_id, version), (APPLICATION_ID, SCHEMA_VERSION));
        let streams: i64 = conn
            .query_row("SELECT count(*) FROM streams", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            streams, 0,
            "the interrupted creation wrote nothing that stays"
        );
    }
}

#[cfg(test)]
mod through_a_link {
    use super::*;

    /// A foreign database whose header was made to claim the store, with a hot journal whose
    /// rollback would restore the foreign header.
    fn foreign_behind_a_journal(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
        let path = dir.join("store.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA page_size = 4096; CREATE TABLE foreign_t (x INTEGER);")
                .unwrap();
        }
        let original = std::fs::read(&path).unwrap();
        let pages = (original.len() / 4096) as u32;
        let page1 = original[..4096].to_vec();
        let mut claimed = original;
        claimed[68..72].copy_from_slice(&(APPLICATION_ID as u32).to_be_bytes());
        std::fs::write(&path, &claimed).unwrap();
        let nonce: u32 = 0x1234_5678;
        let mut journal = vec![0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
        for field in [1u32, nonce, pages, 512, 4096] {
            journal.extend_from_slice(&field.to_be_bytes());
        }
        journal.resize(512, 0);
        journal.extend_from_slice(&1u32.to_be_bytes());
        journal.extend_from_slice(&page1);
        let mut checksum = nonce;
        let mut i: i64 = 4096 - 200;
        while i > 0 {
            checksum = checksum.wrapping_add(u32::from(page1[i as usize]));
            i -= 200;
        }
        journal.extend_from_slice(&checksum.to_be_bytes());
        std::fs::write(beside(&path, "-journal"), journal).unwrap();
        (path, claimed)
    }

    #[test]
    fn a_refused_file_opened_through_a_link_is_left_untouched() {
        for through_link in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (path, before) = foreign_behind_a_journal(dir.path());
            let named = if through_link {
                let link = dir.path().join("link.db");
                std::os::unix::fs::symlink(&path, &link).unwrap();
                link
            } else {
                path.clone()
            };
            let opened = open_writer(&resolve_link(&named), Durability::Full);
            assert!(
                matches!(opened, Err(OpenError::NotAStore { .. })),
                "link {through_link}: refused"
            );
            assert!(
                std::fs::read(&path).unwrap() == before,
                "link {through_link}: the refused file is untouched"
            );
        }
    }
}
