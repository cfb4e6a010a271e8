//! The one place rusqlite errors become smsys errors, decided by SQLite's primary result codes.

use rusqlite::ffi;
use smsys_core::{BackendError, StoreError};

pub(crate) const BACKEND: &str = "sqlite";

/// What a failed SQLite call means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Busy or locked by another connection: retrying may succeed.
    Transient,
    /// The file is damaged or is not a database.
    Corrupt,
    /// Anything else (I/O, full disk, misuse, ...).
    Failure,
}

/// Classifies an error by its primary result code (`extended_code & 0xff`). A stored value
/// that does not convert to the type read (a text that is not UTF-8, a real where an integer
/// is stored, an integer out of range) is damage too: retrying cannot help.
pub(crate) fn kind(error: &rusqlite::Error) -> Kind {
    if matches!(
        error,
        rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::Utf8Error(..)
    ) {
        return Kind::Corrupt;
    }
    let Some(code) = error.sqlite_error().map(|e| e.extended_code & 0xff) else {
        return Kind::Failure;
    };
    match code {
        ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED => Kind::Transient,
        ffi::SQLITE_CORRUPT | ffi::SQLITE_NOTADB => Kind::Corrupt,
        _ => Kind::Failure,
    }
}

/// Whether an insert collided with a UNIQUE index (for an append: an event id already stored).
pub(crate) fn is_unique_violation(error: &rusqlite::Error) -> bool {
    error
        .sqlite_error()
        .is_some_and(|e| e.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// A backend error for `operation`.
pub(crate) fn backend(operation: &'static str, error: rusqlite::Error) -> BackendError {
    let transient = kind(&error) == Kind::Transient;
    BackendError::new(BACKEND, operation, transient, error)
}

/// A store error for `operation`: damaged files become [`StoreError::Corrupt`].
pub(crate) fn store(operation: &'static str, error: rusqlite::Error) -> StoreError {
    match kind(&error) {
        Kind::Corrupt => StoreError::Corrupt {
            what: format!("sqlite {operation}: {error}"),
        },
        Kind::Transient | Kind::Failure => StoreError::Backend(backend(operation, error)),
    }
}

/// Stored data that does not decode.
pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_locked_are_transient() {
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_BUSY_SNAPSHOT,
        ] {
            assert_eq!(kind(&failure(code)), Kind::Transient, "code {code}");
            assert!(backend("append", failure(code)).is_transient());
        }
    }

    #[test]
    fn damaged_files_are_corrupt() {
        for code in [
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_NOTADB,
            ffi::SQLITE_CORRUPT_INDEX,
        ] {
            assert!(matches!(
                store("read", failure(code)),
                StoreError::Corrupt { .. }
            ));
        }
    }

    /// A stored value that does not convert (a text column holding bytes that are not UTF-8,
    /// a real where an integer belongs, an integer out of range) is damage, never transient.
    #[test]
    fn unconvertible_stored_values_are_corrupt() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let errors = || {
            [
                conn.query_row("SELECT CAST(X'C328' AS TEXT)", [], |r| {
                    r.get::<_, String>(0)
                })
                .map(drop),
                conn.query_row("SELECT 2.5", [], |r| r.get::<_, i64>(0))
                    .map(drop),
                conn.query_row("SELECT -1", [], |r| r.get::<_, u32>(0))
                    .map(drop),
            ]
            .map(Result::unwrap_err)
        };
        for (e, again) in errors().into_iter().zip(errors()) {
            assert_eq!(kind(&e), Kind::Corrupt, "{e:?}");
            assert!(!backend("read", e).is_transient());
            assert!(matches!(store("read", again), StoreError::Corrupt { .. }));
        }
    }

    #[test]
    fn other_failures_are_permanent_backend_errors() {
        for code in [ffi::SQLITE_IOERR, ffi::SQLITE_FULL, ffi::SQLITE_CONSTRAINT] {
            let StoreError::Backend(e) = store("append", failure(code)) else {
                panic!("code {code} is a backend failure");
            };
            assert!(!e.is_transient());
            assert_eq!(e.backend(), "sqlite");
            assert_eq!(e.operation(), "append");
        }
        assert_eq!(kind(&rusqlite::Error::QueryReturnedNoRows), Kind::Failure);
    }

    #[test]
    fn only_unique_violations_are_duplicates() {
        assert!(is_unique_violation(&failure(ffi::SQLITE_CONSTRAINT_UNIQUE)));
        assert!(!is_unique_violation(&failure(ffi::SQLITE_CONSTRAINT_CHECK)));
        assert!(!is_unique_violation(&failure(ffi::SQLITE_CONSTRAINT)));
        assert!(!is_unique_violation(&rusqlite::Error::QueryReturnedNoRows));
    }
}
