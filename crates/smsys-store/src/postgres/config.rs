//! Configuration: connection string, schema name, pool size and timings.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use smsys_core::TenantId;

use super::PgEventStore;
use super::error::PgError;

/// Longest schema name accepted, in bytes (the LISTEN channel adds a prefix, and PostgreSQL
/// identifiers end at 63 bytes).
pub const MAX_SCHEMA_NAME_LEN: usize = 48;

/// The PostgreSQL schema holding a store's tables: 1 to [`MAX_SCHEMA_NAME_LEN`] lowercase
/// ASCII letters, digits and `_`, starting with a letter and not with `pg_`.
///
/// ```
/// use smsys_store::postgres::SchemaName;
/// assert!(SchemaName::new("smsys").is_ok());
/// assert!(SchemaName::new("Robert'); DROP TABLE students;--").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

impl SchemaName {
    /// Validates a schema name.
    pub fn new(name: impl Into<String>) -> Result<Self, PgError> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= MAX_SCHEMA_NAME_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with("pg_");
        if valid {
            Ok(Self(name))
        } else {
            Err(PgError::InvalidSchemaName {
                name,
                max: MAX_SCHEMA_NAME_LEN,
            })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name quoted as an SQL identifier (safe by construction, quoted all the same).
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The LISTEN/NOTIFY channel of the store in this schema.
    pub(crate) fn channel(&self) -> String {
        format!("smsys_events_{}", self.0)
    }
}

impl Default for SchemaName {
    fn default() -> Self {
        Self("smsys".to_owned())
    }
}

impl FromStr for SchemaName {
    type Err = PgError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds a [`PgEventStore`]: connection string, schema, pool size and timings.
///
/// ```no_run
/// # async fn open() -> Result<(), smsys_store::postgres::PgError> {
/// use smsys_store::postgres::PgEventStore;
/// let store = PgEventStore::builder("host=127.0.0.1 user=postgres dbname=app")
///     .schema("smsys")?
///     .pool_size(16)
///     .connect()
///     .await?;
/// # drop(store); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PgEventStoreBuilder {
    pub(crate) connection: String,
    pub(crate) schema: SchemaName,
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) held_back_poll: Duration,
    pub(crate) read_barrier_timeout: Duration,
    pub(crate) session_tenant: Option<TenantId>,
    /// Whether every table of the schema gets row-level security for `session_tenant` (set by
    /// `PgTenants`; see `tenants::secure`).
    pub(crate) row_security: bool,
}

impl PgEventStoreBuilder {
    /// A builder for the database at `connection`, a libpq-style key/value string
    /// (`host=... user=... dbname=...`) or a `postgresql://` URL. TLS is not supported yet:
    /// connect over a local socket, a private network or a TLS-terminating proxy.
    pub fn new(connection: impl Into<String>) -> Self {
        Self {
            connection: connection.into(),
            schema: SchemaName::default(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            held_back_poll: Duration::from_millis(20),
            read_barrier_timeout: Duration::from_secs(10),
            session_tenant: None,
            row_security: false,
        }
    }

    /// The schema holding the store's tables (default `smsys`); created and migrated on
    /// connect.
    pub fn schema(mut self, name: &str) -> Result<Self, PgError> {
        self.schema = SchemaName::new(name)?;
        Ok(self)
    }

    /// The schema holding the store's tables, already validated.
    pub fn schema_name(mut self, name: SchemaName) -> Self {
        self.schema = name;
        self
    }

    /// Most connections the pool keeps (default 16). The store holds one more for LISTEN.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// How long opening a connection or waiting for a free one may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How often subscriptions look again while committed events wait behind an older open
    /// transaction, which ends without a notification (default 20 ms, at least 1 ms).
    pub fn held_back_poll(mut self, interval: Duration) -> Self {
        self.held_back_poll = interval.max(Duration::from_millis(1));
        self
    }

    /// How long [`read_all`](smsys_core::EventStore::read_all) waits for transactions older
    /// than the newest committed event to end, so that it includes everything committed
    /// before the call (default 10 s). After that it fails with a transient error whose
    /// source is a [`LogHeldBack`](super::LogHeldBack), never returning a log that ends early
    /// without saying so.
    pub fn read_barrier_timeout(mut self, timeout: Duration) -> Self {
        self.read_barrier_timeout = timeout;
        self
    }

    /// Sets the session setting `smsys.tenant` to `tenant` on every pooled connection when it
    /// is opened, for row-level security policies that admit a tenant's rows only to
    /// connections naming it (`PgTenants` sets this for each tenant's store).
    pub fn session_tenant(mut self, tenant: TenantId) -> Self {
        self.session_tenant = Some(tenant);
        self
    }

    /// Connects, creates and migrates the schema, and starts the notification tasks (it must
    /// run inside a tokio runtime).
    pub async fn connect(self) -> Result<PgEventStore, PgError> {
        PgEventStore::open(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["smsys", "t_1", "a", &"x".repeat(MAX_SCHEMA_NAME_LEN)] {
            assert!(SchemaName::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "_x",
            "Smsys",
            "a-b",
            "a b",
            "a\"b",
            "pg_catalog",
            "é",
            &"x".repeat(MAX_SCHEMA_NAME_LEN + 1),
        ] {
            assert!(
                matches!(SchemaName::new(bad), Err(PgError::InvalidSchemaName { .. })),
                "{bad}"
            );
        }
        let s = SchemaName::new("abc").unwrap_or_default();
        assert_eq!(s.quoted(), "\"abc\"");
        assert!(s.channel().len() <= 63);
    }
}
