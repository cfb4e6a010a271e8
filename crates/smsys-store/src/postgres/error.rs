//! The one place where driver errors become smsys errors, by SQLSTATE constants.

use deadpool_postgres::{HookError, PoolError};
use smsys_core::{BackendError, StoreError};
use tokio_postgres::error::SqlState;

use super::schema::{EVENT_ID_KEY, STREAM_VERSION_KEY, STREAMS_KEY};

pub(crate) const BACKEND: &str = "postgres";

/// Why a [`PgEventStore`](super::PgEventStore) could not be configured or opened.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The schema name is not a plain lowercase identifier.
    #[error(
        "schema name {name:?} is not accepted: use 1 to {max} lowercase ASCII letters, digits and '_', starting with a letter, not starting with 'pg_'"
    )]
    InvalidSchemaName {
        /// The refused name.
        name: String,
        /// The longest name accepted.
        max: usize,
    },
    /// The connection string could not be parsed.
    #[error("the connection string is not valid")]
    InvalidConnectionString(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The pool size must be at least one.
    #[error("the pool size must be at least 1")]
    ZeroPoolSize,
    /// The connection pool could not be built.
    #[error("the connection pool could not be built")]
    Pool(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database holds a schema version this library does not know: a newer release wrote
    /// it.
    #[error("schema {schema} is at migration {found}, newer than the {known} this release knows")]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The highest migration recorded in the database.
        found: i32,
        /// The highest migration this release knows.
        known: i32,
    },
    /// The database hands out transaction ids at or below ones already stored (a dump restored
    /// into a new cluster, a logical-replication move): new events would sort before old ones
    /// and subscribers past them would never see them, so the store refuses to open.
    #[error(
        "schema {schema} holds events of transaction {newest_stored}, but this database's next transaction id is {next}: the log order would break (was the database restored into a new cluster?)"
    )]
    TransactionIdsBehind {
        /// The schema.
        schema: String,
        /// The newest transaction id stored.
        newest_stored: i64,
        /// The database's next transaction id.
        next: i64,
    },
    /// The database failed while connecting or migrating.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`read_all`](smsys_core::EventStore::read_all) failed: a transaction older than the
/// newest committed event stayed open longer than the
/// [`read_barrier_timeout`](super::PgEventStoreBuilder::read_barrier_timeout), so the log could
/// not be read up to everything committed before the call. The source of a transient
/// [`BackendError`]; read again later, once the transaction has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "transaction {gate} (or a later one, older than committed events) stayed open for {waited:?}: the log cannot be read up to the newest committed event yet"
)]
pub struct LogHeldBack {
    /// The id of the oldest transaction still open in the cluster when reading gave up.
    pub gate: u64,
    /// How long reading waited for it.
    pub waited: std::time::Duration,
}

/// How a driver error is to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Another event already carries one of the appended event ids.
    EventIdTaken,
    /// Another writer created the stream or took the version first.
    StreamRace,
    /// Retrying the same call may succeed (lost connection, shutdown, deadlock, overload).
    Transient,
    /// Anything else.
    Permanent,
}

/// SQLSTATE classes whose errors are worth retrying as a whole.
const TRANSIENT_CLASSES: [&str; 4] = [
    "08", // connection exception
    "40", // transaction rollback: serialization failure, deadlock, statement completion unknown
    "53", // insufficient resources: disk full, out of memory, too many connections
    "57", // operator intervention: admin shutdown (pg_terminate_backend), crash, cannot connect now
];

/// Individual SQLSTATEs worth retrying, outside [`TRANSIENT_CLASSES`].
const TRANSIENT_STATES: [SqlState; 2] = [
    SqlState::LOCK_NOT_AVAILABLE,
    // A write reached a server that is (now) read-only: a standby, or a primary demoted by a
    // failover; the pool reconnects to the new primary.
    SqlState::READ_ONLY_SQL_TRANSACTION,
];

/// SQLSTATEs of class `40` that say something about the request, not about other sessions.
const PERMANENT_ROLLBACKS: [SqlState; 1] = [SqlState::T_R_INTEGRITY_CONSTRAINT_VIOLATION];

/// Where an error without SQLSTATE came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// The connection is gone or failed on I/O (a lost connection, a timeout).
    Lost,
    /// Anything else: a value that did not encode or decode, a protocol violation, a wrong
    /// row count. Running the same call again fails the same way.
    Other,
}

/// Classifies an error from its SQLSTATE, the constraint it names, and, for errors without
/// SQLSTATE, whether the connection is lost.
pub(crate) fn classify(code: Option<&SqlState>, constraint: Option<&str>, link: Link) -> Class {
    match code {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => match constraint {
            Some(EVENT_ID_KEY) => Class::EventIdTaken,
            Some(STREAMS_KEY) | Some(STREAM_VERSION_KEY) => Class::StreamRace,
            Some(_) | None => Class::Permanent,
        },
        Some(code) if PERMANENT_ROLLBACKS.contains(code) => Class::Permanent,
        Some(code) if TRANSIENT_STATES.contains(code) => Class::Transient,
        Some(code) if TRANSIENT_CLASSES.iter().any(|c| code.code().starts_with(c)) => {
            Class::Transient
        }
        Some(_) => Class::Permanent,
        None => match link {
            Link::Lost => Class::Transient,
            // A decode failure retried is the same decode failure: a subscriber must stop on
            // it, not spin.
            Link::Other => Class::Permanent,
        },
    }
}

/// Classifies a driver error.
pub(crate) fn class_of(error: &tokio_postgres::Error) -> Class {
    classify(
        error.code(),
        error.as_db_error().and_then(|db| db.constraint()),
        link_of(error),
    )
}

/// Whether a driver error without SQLSTATE means the connection is lost: closed, or an I/O
/// error somewhere in its sources (reading, writing, connecting, timing out).
fn link_of(error: &tokio_postgres::Error) -> Link {
    if error.is_closed() {
        return Link::Lost;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return Link::Lost;
        }
        source = cause.source();
    }
    Link::Other
}

/// Whether the server gave up on the transaction because of other transactions (a deadlock,
/// a serialization failure), not because of anything about this one: running it again may
/// succeed.
pub(crate) fn is_contention(error: &tokio_postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| CONTENTION_STATES.contains(code))
}

/// SQLSTATEs of [`is_contention`].
const CONTENTION_STATES: [SqlState; 2] = [
    SqlState::T_R_SERIALIZATION_FAILURE,
    SqlState::T_R_DEADLOCK_DETECTED,
];

/// A driver error as a [`StoreError`].
pub(crate) fn store_error(operation: &'static str, error: tokio_postgres::Error) -> StoreError {
    let transient = class_of(&error) == Class::Transient;
    tracing::debug!(operation, transient, %error, "postgres error");
    StoreError::Backend(BackendError::new(BACKEND, operation, transient, error))
}

/// A pool error as a [`StoreError`].
pub(crate) fn pool_error(operation: &'static str, error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => store_error(operation, error),
        PoolError::Closed => StoreError::Closed { backend: BACKEND },
        PoolError::Timeout(_) => {
            StoreError::Backend(BackendError::new(BACKEND, operation, true, error))
        }
        // Setting up a new connection failed: classed like any statement.
        PoolError::PostCreateHook(HookError::Backend(error)) => store_error(operation, error),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(HookError::Message(_)) => {
            StoreError::Backend(BackendError::new(BACKEND, operation, false, error))
        }
    }
}

/// Stored data that does not decode.
pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violations_are_told_apart_by_constraint() {
        let unique = Some(&SqlState::UNIQUE_VIOLATION);
        assert_eq!(
            classify(unique, Some(EVENT_ID_KEY), Link::Other),
            Class::EventIdTaken
        );
        assert_eq!(
            classify(unique, Some(STREAMS_KEY), Link::Other),
            Class::StreamRace
        );
        assert_eq!(
            classify(unique, Some(STREAM_VERSION_KEY), Link::Other),
            Class::StreamRace
        );
        assert_eq!(
            classify(unique, Some("other"), Link::Other),
            Class::Permanent
        );
        assert_eq!(classify(unique, None, Link::Other), Class::Permanent);
    }

    #[test]
    fn lost_connections_and_contention_are_transient() {
        for code in [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::DISK_FULL,
            SqlState::OUT_OF_MEMORY,
            SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::QUERY_CANCELED,
            // After a failover the old primary (or a standby) refuses writes until the pool
            // reaches the new primary.
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ] {
            assert_eq!(
                classify(Some(&code), None, Link::Other),
                Class::Transient,
                "{code:?}"
            );
        }
        assert_eq!(classify(None, None, Link::Lost), Class::Transient);
    }

    #[test]
    fn refusals_of_the_request_are_permanent() {
        for code in [
            SqlState::SYNTAX_ERROR,
            SqlState::UNDEFINED_TABLE,
            SqlState::CHECK_VIOLATION,
            SqlState::INSUFFICIENT_PRIVILEGE,
            SqlState::INVALID_TEXT_REPRESENTATION,
            SqlState::T_R_INTEGRITY_CONSTRAINT_VIOLATION,
            SqlState::IN_FAILED_SQL_TRANSACTION,
        ] {
            assert_eq!(
                classify(Some(&code), None, Link::Other),
                Class::Permanent,
                "{code:?}"
            );
        }
    }

    /// A value that does not decode (no SQLSTATE, the connection fine) fails again when
    /// retried: a subscriber must stop on it instead of spinning.
    #[test]
    fn errors_without_sqlstate_are_transient_only_when_the_connection_is_lost() {
        assert_eq!(classify(None, None, Link::Other), Class::Permanent);
        assert_eq!(classify(None, None, Link::Lost), Class::Transient);
    }

    #[test]
    fn contention_is_transient() {
        for code in [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ] {
            assert!(CONTENTION_STATES.contains(&code), "{code:?}");
            assert_eq!(classify(Some(&code), None, Link::Other), Class::Transient);
        }
    }
}
