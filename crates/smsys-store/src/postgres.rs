//! The PostgreSQL store: many application nodes on one database, no event ever skipped.
//!
//! # Log order and delivery without gaps
//!
//! Every event carries the id of the transaction that wrote it (`pg_current_xact_id()`, the
//! 64-bit `xid8`) and a `bigserial` sequence number; its [`Position`] is `(tx_id, seq)` and
//! the log is read in that order. Sequence numbers are taken at insert but become visible at
//! commit, so "everything after the last position seen" would skip a slow transaction that
//! holds a lower number. Instead, log reads deliver only events whose `tx_id` is below
//! `pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still running when the
//! read's snapshot was taken: every transaction below it has ended, every later one gets a
//! higher id, so the delivered prefix of the log is final; nothing can ever be inserted
//! before it. A checkpoint is a position, and resuming after it never skips.
//!
//! The cost: delivery waits for the oldest open transaction of the whole PostgreSQL cluster,
//! also one that never touches this store (a long report, a forgotten `BEGIN` in psql, a
//! prepared two-phase transaction). [`PgEventStore::horizon`] shows how many committed events
//! wait behind it. Keep transactions short on a database that hosts an event store.
//!
//! Within one stream the log order is the version order: see the `append` module for why the
//! stream lock is an advisory lock.
//!
//! # Isolation
//!
//! Every pooled connection is set to READ COMMITTED when it is opened, and every transaction
//! of the store begins `ISOLATION LEVEL READ COMMITTED`: the append design relies on it (see
//! `append`), and a server, database or role whose default is REPEATABLE READ or
//! SERIALIZABLE does not change what the store does.
//!
//! # Batches
//!
//! [`append_batch`](EventStore::append_batch) writes up to 5,000 events of up to 500 streams
//! per transaction in two round trips, each part checked and written as its own append would
//! be: see the `batch` module. Each part is atomic; a larger batch is split at part boundaries
//! into several transactions, committed in order.
//!
//! # Reads
//!
//! Events are read from columns (the metadata too, see `schema`): only the payload is JSON,
//! and rows are decoded as they arrive. Stream reads and
//! [`stream_version`](EventStore::stream_version) see every committed append. [`read_all`](EventStore::read_all) first waits (up to
//! [`read_barrier_timeout`](PgEventStoreBuilder::read_barrier_timeout)) until every
//! transaction that could precede an already committed event has ended, so it includes
//! everything committed before the call; if one stays open longer, it fails (transiently,
//! with [`LogHeldBack`]) rather than return a log that silently ends early. Subscriptions are woken by local commits, by
//! `LISTEN/NOTIFY` from other nodes, and by a short re-poll while events are held back.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::StreamExt;
use smsys_core::{
    AppendError, AppendResult, BackendError, EventData, EventId, EventStore, EventStream,
    ExpectedVersion, LogFilter, Position, RecordedEvent, SnapshotStore, StoreError, StreamAppend,
    StreamId, TenantId, Version,
};
use tokio::task::AbortHandle;

use crate::paging::{PagedStore, log_pages, stream_pages, subscription};

mod append;
mod batch;
mod checkpoint;
mod ci_graph;
mod config;
mod error;
mod keys;
mod pool;
mod queries;
mod record_index;
mod rows;
mod schema;
mod snapshot;
mod tenants;
mod wakeup;

pub use crate::checkpoint::{CheckpointName, MAX_CHECKPOINT_NAME_LEN};
pub use ci_graph::PgCiGraph;
pub use config::{MAX_SCHEMA_NAME_LEN, PgEventStoreBuilder, SchemaName};
pub use error::{LogHeldBack, PgError};
pub use keys::PgKeyStore;
pub use record_index::PgRecordIndex;
pub use tenants::{PgTenants, PgTenantsBuilder};

use error::pool_error;
use queries::Queries;
use rows::{AFTER_EVENT_COLUMNS, Decoder, TX_ID_COLUMN, column, unsigned};
use wakeup::Wake;

/// An event store on PostgreSQL. Cloning gives another handle to the same store (same pool);
/// separate application nodes each open their own.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use futures::StreamExt;
/// use smsys_core::{EventStore, LogFilter, Position};
/// use smsys_store::postgres::{CheckpointName, PgEventStore};
///
/// let store = PgEventStore::builder("host=127.0.0.1 user=postgres dbname=app")
///     .schema("smsys")?
///     .connect()
///     .await?;
/// let name = CheckpointName::new("mail-notifier")?;
/// let from = store.load_checkpoint(&name).await?.unwrap_or(Position::START);
/// let mut events = store.subscribe(from, LogFilter::all());
/// while let Some(event) = events.next().await {
///     let event = event?;
///     // ... handle it idempotently, then:
///     store.save_checkpoint(&name, event.position).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    schema: SchemaName,
    queries: Queries,
    lock_prefix: String,
    heads: append::Heads,
    gates: append::Gates,
    wake: Arc<Wake>,
    read_barrier_timeout: Duration,
    held_back_poll: Duration,
    /// The tenant whose row-level security policy every table of the schema gets, when the
    /// store is a tenant's with row-level security on.
    secured_for: Option<TenantId>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for PgEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.inner.pool.status();
        f.debug_struct("PgEventStore")
            .field("schema", &self.inner.schema)
            .field("pool_size", &status.max_size)
            .field("pool_available", &status.available)
            .finish()
    }
}

/// Where delivery stands: what subscribers can get now and what waits for the oldest open
/// transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHorizon {
    /// The id of the oldest transaction still open in the cluster: events of transactions
    /// from this id on are not delivered yet.
    pub gate: u64,
    /// The newest event that can be delivered now ([`Position::START`] when none). A
    /// subscriber whose checkpoint is here is fully caught up.
    pub deliverable: Position,
    /// Events committed but held back because an older transaction is still open.
    pub held_back: u64,
}

impl PgEventStore {
    /// Checks what the hash does not cover, then the hash chain of every event in log order
    /// and every seal ([`smsys_core::seal`]).
    ///
    /// Uncovered columns readers rely on: each event's `category` (log filters select by it)
    /// must be the one its stream's name gives, and each stream row (the head appends check
    /// against) must name its last event's version and hash. A mismatch is a
    /// [`StoreError::Corrupt`] naming the event or the stream. The report then names every
    /// event whose hash, link, version or position does not hold and every seal that does not.
    /// Fails (transiently) rather than report on part of the log when the log is held back by
    /// a transaction that does not end.
    pub async fn verify(&self) -> Result<smsys_core::VerifyReport, StoreError> {
        let s = self.inner.schema.quoted();
        let checks = [
            (
                "verify categories",
                format!(
                    "SELECT format('event at position %s:%s (stream %s, version %s): category %L, \
                     its stream name gives %L', tx_id, seq, stream_id, version, category, \
                     split_part(stream_id, '-', 1)) \
                     FROM {s}.events WHERE category <> split_part(stream_id, '-', 1) \
                     ORDER BY tx_id, seq LIMIT 1"
                ),
            ),
            (
                "verify stream heads",
                format!(
                    "SELECT format('stream %s: its row says version %s, its last event is %s', \
                     s.stream_id, s.version, coalesce(e.version::text, 'missing')) \
                     FROM {s}.streams s LEFT JOIN LATERAL ( \
                       SELECT version, hash FROM {s}.events x \
                       WHERE x.stream_id = s.stream_id ORDER BY version DESC LIMIT 1) e ON true \
                     WHERE e.version IS DISTINCT FROM s.version OR e.hash IS DISTINCT FROM s.head_hash \
                     ORDER BY s.stream_id LIMIT 1"
                ),
            ),
        ];
        for (operation, sql) in checks {
            let rows = pool::query(&self.inner.pool, operation, &sql, &[]).await?;
            if let Some(row) = rows.first() {
                let what: String = column(row, 0)?;
                return Err(error::corrupt(what));
            }
        }
        smsys_core::seal::verify_sealed(self).await
    }

    /// A builder for a store on the database at `connection` (see [`PgEventStoreBuilder::new`]).
    pub fn builder(connection: impl Into<String>) -> PgEventStoreBuilder {
        PgEventStoreBuilder::new(connection)
    }

    /// Connects to `connection` with the default settings and schema `smsys`.
    pub async fn connect(connection: &str) -> Result<Self, PgError> {
        Self::builder(connection).connect().await
    }

    async fn open(options: PgEventStoreBuilder) -> Result<Self, PgError> {
        if options.pool_size == 0 {
            return Err(PgError::ZeroPoolSize);
        }
        let mut config = tokio_postgres::Config::from_str(&options.connection)
            .map_err(|e| PgError::InvalidConnectionString(Box::new(e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("smsys");
        }
        let manager = Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .post_create(pool::read_committed(options.session_tenant.clone()))
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| PgError::Pool(Box::new(e)))?;
        let secured_for = options
            .session_tenant
            .clone()
            .filter(|_| options.row_security);
        {
            let mut client = pool.get().await.map_err(|e| pool_error("connect", e))?;
            let client: &mut tokio_postgres::Client = &mut client;
            schema::migrate(client, &options.schema, secured_for.as_ref()).await?;
            schema::check_transaction_ids(client, &options.schema).await?;
        }
        let schema = options.schema;
        let wake = Wake::new();
        let channel = schema.channel();
        let listener = tokio::spawn(wakeup::listen(
            config,
            channel.clone(),
            Arc::clone(&wake),
            options.held_back_poll,
        ));
        let announcer = tokio::spawn(wakeup::announce(pool.clone(), channel, Arc::clone(&wake)));
        tracing::info!(schema = %schema, pool_size = options.pool_size, "postgres event store open");
        Ok(Self {
            inner: Arc::new(Inner {
                queries: Queries::new(&schema),
                lock_prefix: format!("smsys:{schema}:"),
                heads: append::Heads::default(),
                gates: append::Gates::default(),
                schema,
                pool,
                wake,
                read_barrier_timeout: options.read_barrier_timeout,
                held_back_poll: options.held_back_poll,
                secured_for,
                tasks: vec![listener.abort_handle(), announcer.abort_handle()],
            }),
        })
    }

    /// The schema holding this store's tables.
    pub fn schema(&self) -> &SchemaName {
        &self.inner.schema
    }

    /// Runs `sql`, statements creating tables in the store's schema (no `BEGIN` or `COMMIT`),
    /// in one transaction that for a tenant's store also gives every table of the schema
    /// row-level security ([`tenants::secure`]), so no table of a tenant's schema is committed
    /// without it. Whatever creates tables in the store's schema outside the migrations (the
    /// key store's `data_keys`) goes through here.
    pub(crate) async fn create_tables(
        &self,
        operation: &'static str,
        sql: &str,
    ) -> Result<(), StoreError> {
        let mut client = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| pool_error(operation, e))?;
        let created = async {
            let tx = client.transaction().await?;
            tx.batch_execute(sql).await?;
            if let Some(tenant) = &self.inner.secured_for {
                tenants::secure(&tx, tenant, &self.inner.schema).await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(error) = created {
            pool::release_after(client, &error);
            return Err(error::store_error(operation, error));
        }
        Ok(())
    }

    /// Where delivery stands: the newest deliverable position and how many committed events
    /// wait behind the oldest open transaction. A subscriber's lag is the part of the log
    /// between its checkpoint and [`LogHorizon::deliverable`].
    pub async fn horizon(&self) -> Result<LogHorizon, StoreError> {
        let rows = pool::query(
            &self.inner.pool,
            "horizon",
            &self.inner.queries.horizon,
            &[],
        )
        .await?;
        let row = rows.first().ok_or(StoreError::Corrupt {
            what: "the horizon query returned no row".to_owned(),
        })?;
        let gate: i64 = column(row, 0)?;
        let tx_id: Option<i64> = column(row, 1)?;
        let seq: Option<i64> = column(row, 2)?;
        let held_back: i64 = column(row, 3)?;
        let deliverable = match (tx_id, seq) {
            (Some(t), Some(s)) => {
                Position::new(unsigned(t, "transaction id")?, unsigned(s, "sequence")?)
            }
            _ => Position::START,
        };
        Ok(LogHorizon {
            gate: unsigned(gate, "snapshot xmin")?,
            deliverable,
            held_back: unsigned(held_back, "count")?,
        })
    }

    /// Waits until every transaction that could still add events before the newest
    /// committed one has ended; after [`PgEventStoreBuilder::read_barrier_timeout`], fails
    /// with [`LogHeldBack`].
    async fn log_barrier(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            // A connection per look: waiting must not hold one of the pool's.
            let rows = pool::query(
                &self.inner.pool,
                "read all",
                &self.inner.queries.log_barrier,
                &[],
            )
            .await?;
            let row = rows.first().ok_or(StoreError::Corrupt {
                what: "the barrier query returned no row".to_owned(),
            })?;
            let newest: Option<i64> = column(row, 0)?;
            let gate: i64 = column(row, 1)?;
            match newest {
                Some(newest) if gate <= newest => {}
                Some(_) | None => return Ok(()),
            }
            let waited = started.elapsed();
            if waited >= self.inner.read_barrier_timeout {
                // Reading on would end the log early without saying so (an audit would call
                // a part of the log intact): fail, transiently.
                let held_back = LogHeldBack {
                    gate: unsigned(gate, "snapshot xmin")?,
                    waited,
                };
                tracing::warn!(schema = %self.inner.schema, %held_back, "read all gives up");
                return Err(StoreError::Backend(BackendError::new(
                    error::BACKEND,
                    "read all",
                    true,
                    held_back,
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.inner.held_back_poll);
        }
    }
}

#[async_trait]
impl EventStore for PgEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        let appender = append::Appender {
            pool: &self.inner.pool,
            queries: &self.inner.queries,
            lock_prefix: &self.inner.lock_prefix,
            heads: &self.inner.heads,
            gates: &self.inner.gates,
        };
        let result = appender.append(stream, expected, &events).await?;
        self.inner.wake.committed();
        Ok(result)
    }

    /// Writes the batch in one transaction per chunk of up to 5,000 events, 500 streams and
    /// 16 MiB of payload, two round trips each: see the `batch` module. Each part is atomic;
    /// a batch beyond one chunk is not (nor does the contract ask it to be).
    async fn append_batch(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Vec<Result<AppendResult, AppendError>> {
        let appender = append::Appender {
            pool: &self.inner.pool,
            queries: &self.inner.queries,
            lock_prefix: &self.inner.lock_prefix,
            heads: &self.inner.heads,
            gates: &self.inner.gates,
        };
        let wake = &self.inner.wake;
        appender.append_batch(appends, &|| wake.committed()).await
    }

    fn read_stream(&self, stream: &StreamId, from: Version) -> EventStream<'_> {
        stream_pages(self, stream.clone(), Some(from), false)
    }

    fn read_stream_backwards(&self, stream: &StreamId, from: Option<Version>) -> EventStream<'_> {
        stream_pages(self, stream.clone(), from, true)
    }

    /// Reads the log after `after`, including every event committed before the call: it first
    /// waits until every transaction that could still add an event before the newest
    /// committed one has ended (see the store's docs on the delivery gate).
    ///
    /// # Errors
    ///
    /// If such a transaction stays open longer than
    /// [`read_barrier_timeout`](PgEventStoreBuilder::read_barrier_timeout), the stream yields
    /// one transient [`StoreError::Backend`] (its source a [`LogHeldBack`]) and nothing
    /// else: never a shorter log that looks complete. Read again later; a subscription waits
    /// instead.
    fn read_all(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        futures::stream::once(self.log_barrier())
            .flat_map(move |ready| match ready {
                Ok(()) => log_pages(self, after, filter.clone()),
                Err(error) => futures::stream::once(async { Err(error) }).boxed(),
            })
            .boxed()
    }

    fn snapshots(&self) -> Option<&dyn SnapshotStore> {
        Some(self)
    }

    async fn find_event(&self, id: EventId) -> Result<Option<RecordedEvent>, StoreError> {
        let ids = vec![id.as_uuid()];
        let rows = pool::query(
            &self.inner.pool,
            "find event",
            &self.inner.queries.events_by_id,
            &[&ids],
        )
        .await?;
        Ok(rows::decode_all(&rows)?.into_iter().next())
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        let rows = pool::query(
            &self.inner.pool,
            "stream version",
            &self.inner.queries.stream_version,
            &[&stream.as_str()],
        )
        .await?;
        rows.first()
            .map(|row| {
                let v: i64 = column(row, 0)?;
                Ok(Version::new(unsigned(v, "stream version")?))
            })
            .transpose()
    }

    fn subscribe(&self, after: Position, filter: LogFilter) -> EventStream<'_> {
        subscription(self, after, filter, self.inner.wake.subscribe())
    }
}

/// A limit or version as a `bigint` parameter (saturating: beyond `i64::MAX` nothing exists).
fn param(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl PagedStore for PgEventStore {
    async fn stream_page(
        &self,
        stream: &StreamId,
        from: Version,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = if backwards {
            &self.inner.queries.stream_backwards
        } else {
            &self.inner.queries.stream_forwards
        };
        let mut page = Vec::new();
        let mut decoder = Decoder::default();
        pool::each_row(
            &self.inner.pool,
            "read stream",
            sql,
            &[&stream.as_str(), &param(from.get()), &param(limit as u64)],
            |row| {
                page.push(decoder.decode(row)?);
                Ok(true)
            },
        )
        .await?;
        Ok(page)
    }

    async fn log_page(
        &self,
        after: Position,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let categories: Vec<&str> = filter.categories().iter().map(|c| c.as_str()).collect();
        let types: Vec<&str> = filter.event_types().iter().map(|t| t.as_str()).collect();
        // One row more than asked: a full page must not end at the gate unnoticed.
        let mut page = Vec::new();
        let mut decoder = Decoder::default();
        let wake = &self.inner.wake;
        pool::each_row(
            &self.inner.pool,
            "read log",
            &self.inner.queries.log_page,
            &[
                &param(after.commit()),
                &param(after.sequence()),
                &categories,
                &types,
                &param(limit as u64 + 1),
            ],
            |row| {
                let tx_id: i64 = column(row, TX_ID_COLUMN)?;
                let gate: i64 = column(row, AFTER_EVENT_COLUMNS)?;
                if tx_id >= gate {
                    // Committed, but an older transaction is still open: not deliverable yet.
                    wake.saw_held_back();
                    return Ok(false);
                }
                if page.len() == limit {
                    return Ok(false);
                }
                page.push(decoder.decode(row)?);
                Ok(true)
            },
        )
        .await?;
        Ok(page)
    }
}
