//! Command handling: load (from the cache, else from a snapshot when present, then the
//! stream), decide, append with the expected version; on a conflict read the newer events and
//! decide again, a bounded number of times.

use std::error::Error as StdError;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::Arc;

use futures::StreamExt;

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, EventOf, EventSourced, Stamp};
use crate::context::Context;
use crate::event::{
    Actor, CausationId, CommandId, CorrelationId, EventData, EventDataError, EventId, Metadata,
    TenantId,
};
use crate::snapshot::{SnapshotPolicy, SnapshotStore};
use crate::store::{AppendError, AppendResult, EventStore, StoreError};
use crate::stream::{ExpectedVersion, StreamId, Version};
use crate::upcast::{UpcastError, Upcasters};

mod cache;
mod rerun;
mod snapshots;

use cache::{AggregateCache, Entry};

/// Who issues a command, and in answer to what: copied into the metadata of every event the
/// command records.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandMeta {
    actor: Actor,
    command_id: Option<CommandId>,
    correlation_id: Option<CorrelationId>,
    causation_id: Option<CausationId>,
    tenant: Option<TenantId>,
}

impl CommandMeta {
    /// A command issued by `actor`.
    pub fn new(actor: Actor) -> Self {
        Self {
            actor,
            command_id: None,
            correlation_id: None,
            causation_id: None,
            tenant: None,
        }
    }
    /// Identifies this carrying-out of the command, so that running it again is safe: the ids
    /// of the events it records derive from `id` ([`CommandId::event_id`]). Running a command
    /// again with the same id after any failure (a lost answer, a timeout, a crash) records it
    /// at most once, and when it was recorded returns the original result. Without an id the
    /// handler draws one per [`CommandHandler::execute`] call, which makes its own retries
    /// safe but not a second call.
    pub fn with_command_id(mut self, id: CommandId) -> Self {
        self.command_id = Some(id);
        self
    }
    /// The command id given, if any.
    pub fn command_id(&self) -> Option<CommandId> {
        self.command_id
    }
    /// Sets the correlation id.
    pub fn with_correlation(mut self, id: CorrelationId) -> Self {
        self.correlation_id = Some(id);
        self
    }
    /// Sets the causation id (the triggering command or event).
    pub fn with_causation(mut self, id: CausationId) -> Self {
        self.causation_id = Some(id);
        self
    }
    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }
    /// The actor.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

/// Why an aggregate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The stream belongs to another category than the aggregate's.
    #[error("stream {stream} is not of category {expected}")]
    WrongCategory {
        /// The stream.
        stream: StreamId,
        /// The aggregate's category.
        expected: &'static str,
    },
    /// A recorded event could not be upcast.
    #[error("event {version} of {stream}: {source}")]
    Upcast {
        /// The stream.
        stream: StreamId,
        /// The event's version.
        version: Version,
        /// What failed.
        #[source]
        source: UpcastError,
    },
    /// A recorded event could not be decoded.
    #[error("event {version} of {stream}: {source}")]
    Decode {
        /// The stream.
        stream: StreamId,
        /// The event's version.
        version: Version,
        /// What failed.
        #[source]
        source: DecodeError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<R: StdError + 'static> {
    /// The aggregate refused the command: a business rule said no.
    #[error("command refused: {0}")]
    Rejected(#[source] R),
    /// Other writers kept changing the stream; gave up after `attempts` tries.
    #[error("stream {stream} kept changing under the command; gave up after {attempts} attempts")]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// How many times the command was decided.
        attempts: u32,
    },
    /// The aggregate could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An event the aggregate decided could not be encoded.
    #[error("cannot encode event {event_type}: {reason}")]
    Encode {
        /// Its type.
        event_type: String,
        /// What failed.
        reason: String,
    },
    /// The append failed for a reason other than a conflict.
    #[error(transparent)]
    Append(AppendError),
    /// The store kept failing transiently, so whether the command was recorded is unknown.
    /// Run it again with the same `command` id
    /// ([`CommandMeta::with_command_id`]): it is recorded at most once.
    #[error(
        "command {command}: outcome unknown after {attempts} attempts ({source}); run it again \
         with CommandMeta::with_command_id({command}): it is recorded at most once"
    )]
    OutcomeUnknown {
        /// The command's id.
        command: CommandId,
        /// How many times the append was tried.
        attempts: u32,
        /// The last failure.
        #[source]
        source: AppendError,
    },
}

/// An aggregate state read from its stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The stream version it reflects (`None`: no such stream).
    pub version: Option<Version>,
}

/// What a carried-out command did.
pub struct Executed<A: Aggregate> {
    /// The state after the command.
    pub state: A::State,
    /// The events recorded (empty when the command changed nothing).
    pub events: Vec<EventOf<A>>,
    /// Where they were recorded (`None` when nothing was).
    pub append: Option<AppendResult>,
    /// How many times the command was decided (more than 1 after conflicts).
    pub attempts: u32,
}

impl<A: Aggregate> std::fmt::Debug for Executed<A>
where
    A::State: std::fmt::Debug,
    EventOf<A>: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executed")
            .field("state", &self.state)
            .field("events", &self.events)
            .field("append", &self.append)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// Runs commands against aggregates of type `A` on an [`EventStore`].
///
/// ```
/// # use smsys_core::*;
/// # fn demo<A: Aggregate>(store: std::sync::Arc<dyn EventStore>) where A::Services: Default {
/// let handler = CommandHandler::<A>::new(store, A::Services::default()).with_max_attempts(5);
/// # }
/// ```
pub struct CommandHandler<A: Aggregate> {
    store: Arc<dyn EventStore>,
    services: A::Services,
    snapshots: Option<Arc<dyn SnapshotStore>>,
    policy: SnapshotPolicy,
    upcasters: Upcasters,
    max_attempts: u32,
    cache: Option<AggregateCache<A::State>>,
    aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate> CommandHandler<A> {
    /// A handler on `store` without a cache, trying a command at most 3 times; `decide`
    /// consults `services`. Snapshots are taken automatically into the store's own snapshot
    /// table when it has one ([`EventStore::snapshots`]), under
    /// [`SnapshotPolicy::DEFAULT`]: long streams load from a snapshot, short ones never get one.
    /// `decide` consults `services`.
    pub fn new(store: Arc<dyn EventStore>, services: A::Services) -> Self {
        Self {
            store,
            services,
            snapshots: None,
            policy: SnapshotPolicy::DEFAULT,
            upcasters: EventOf::<A>::upcasters(),
            max_attempts: 3,
            cache: None,
            aggregate: PhantomData,
        }
    }

    /// Loads from and saves snapshots to `snapshots` (instead of the store's own) under
    /// `policy`.
    pub fn with_snapshots(
        mut self,
        snapshots: Arc<dyn SnapshotStore>,
        policy: SnapshotPolicy,
    ) -> Self {
        self.snapshots = Some(snapshots);
        self.policy = policy;
        self
    }

    /// When to take snapshots ([`SnapshotPolicy::Never`]: never, and never load one from the
    /// store's own table).
    pub fn with_snapshot_policy(mut self, policy: SnapshotPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Lifts old event schema versions with `upcasters` on read too, beside the event type's
    /// own ([`DomainEvent::upcasters`]) and those given before; a step for the same event type
    /// and version replaces the earlier one.
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = std::mem::take(&mut self.upcasters).merge(upcasters);
        self
    }

    /// Keeps the state and version of up to `capacity` recently used aggregates in memory,
    /// evicting the least recently used; 0 (the default) keeps none.
    ///
    /// A command on a cached aggregate reads nothing from the store: it is decided on the
    /// cached state and appended with the cached version as the exact expected version. The
    /// store's version check stays the arbiter, so handlers on several nodes may write the
    /// same streams: a stale entry costs one conflict and a read of the newer events only.
    /// The cache holds only states that are stored (an entry is updated after its append
    /// succeeded), so [`Executed::state`] and [`Self::load`] always agree.
    ///
    /// ```
    /// # use smsys_core::*;
    /// # fn demo<A: Aggregate>(store: std::sync::Arc<dyn EventStore>) where A::Services: Default {
    /// let handler = CommandHandler::<A>::new(store, A::Services::default()).with_cache(10_000);
    /// # }
    /// ```
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = NonZeroUsize::new(capacity).map(AggregateCache::new);
        self
    }

    /// Decides a command at most `attempts` times (at least once) before reporting a conflict.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The services `decide` consults.
    pub fn services(&self) -> &A::Services {
        &self.services
    }

    /// The store the handler writes to.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Reads the aggregate's state from the store: from the latest usable snapshot, then the
    /// events after it. The cache is neither read nor filled.
    pub async fn load(&self, stream: &StreamId) -> Result<Loaded<A::State>, LoadError> {
        self.load_from_store(stream)
            .await
            .map(|(loaded, _, _)| loaded)
    }

    /// Loads for a command: like [`Self::load`], and when that replayed a long stretch of
    /// events, saves a snapshot so the next load need not.
    async fn load_for_command(
        &self,
        stream: &StreamId,
    ) -> Result<(A::State, Option<Version>), LoadError> {
        let (Loaded { state, version }, snapshot, head) = self.load_from_store(stream).await?;
        if let (Some(version), Some(head)) = (version, head) {
            let replayed = version.get() - snapshot.map_or(0, Version::get);
            if self.policy.is_due_after_replay(replayed) {
                self.save_snapshot(stream, &state, version, head).await;
            }
        }
        Ok((state, version))
    }

    /// The state as stored, the version of the snapshot it started from, and the id of the
    /// stream's last event.
    ///
    /// A snapshot is used only when the stream still holds, at the snapshot's version, the
    /// event it was taken after (a store restored from an older backup may not): otherwise the
    /// stream is replayed from its start.
    async fn load_from_store(
        &self,
        stream: &StreamId,
    ) -> Result<(Loaded<A::State>, Option<Version>, Option<EventId>), LoadError> {
        if stream.category_str() != A::State::CATEGORY {
            return Err(LoadError::WrongCategory {
                stream: stream.clone(),
                expected: A::State::CATEGORY,
            });
        }
        if let Some((state, version, head)) = self.snapshot_state(stream).await {
            let mut events = self.store.read_stream(stream, version);
            let fits = match events.next().await.transpose()? {
                Some(event) => event.version == version && event.event_id() == head,
                None => false,
            };
            if fits {
                let (state, last, last_id) = self.apply(stream, events, state).await?;
                let loaded = Loaded {
                    state,
                    version: last.or(Some(version)),
                };
                return Ok((loaded, Some(version), last_id.or(Some(head))));
            }
            tracing::warn!(%stream, %version,
                "snapshot does not fit the stored stream (restored from another backup?); replaying the stream");
        }
        let events = self.store.read_stream(stream, Version::FIRST);
        let (state, version, head) = self.apply(stream, events, A::State::default()).await?;
        Ok((Loaded { state, version }, None, head))
    }

    /// Applies `events` (of `stream`, in order) to `state`: the state, the last version and
    /// the last event id reached (`None` when there was no event).
    async fn apply(
        &self,
        stream: &StreamId,
        mut events: crate::store::EventStream<'_>,
        mut state: A::State,
    ) -> Result<(A::State, Option<Version>, Option<EventId>), LoadError> {
        let mut last = None;
        while let Some(recorded) = events.next().await {
            let recorded = recorded?;
            let at = recorded.version;
            let id = recorded.event_id();
            let (event_type, schema_version, payload, metadata) = recorded.data.into_parts();
            let event: EventOf<A> = self
                .upcasters
                .decode(&event_type, schema_version, payload)
                .map_err(|failure| failure.at(stream, at))?;
            state.evolve(&event, Stamp::of(&metadata));
            last = Some((at, id));
        }
        Ok((state, last.map(|(v, _)| v), last.map(|(_, id)| id)))
    }

    /// Applies the events of `stream` after `version` to `state`.
    async fn catch_up(
        &self,
        stream: &StreamId,
        state: A::State,
        version: Option<Version>,
    ) -> Result<(A::State, Option<Version>), LoadError> {
        let from = version.map_or(Version::FIRST, Version::next);
        let events = self.store.read_stream(stream, from);
        let (state, last, _) = self.apply(stream, events, state).await?;
        Ok((state, last.or(version)))
    }

    /// Puts a stored state into the cache (when there is one and the stream exists).
    fn keep(&self, stream: &StreamId, state: A::State, version: Option<Version>) {
        if let (Some(cache), Some(version)) = (&self.cache, version) {
            cache.put(stream, Entry { state, version });
        }
    }

    /// Like [`Self::keep`], copying the state only when there is a cache.
    fn keep_copy(&self, stream: &StreamId, state: &A::State, version: Option<Version>) {
        if self.cache.is_some() {
            self.keep(stream, state.clone(), version);
        }
    }

    /// How many aggregates the cache holds (0 without a cache).
    pub fn cached(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }

    /// Forgets the cached state of `stream`, if any: the next command on it reads the store.
    pub fn forget(&self, stream: &StreamId) {
        if let Some(cache) = &self.cache {
            cache.forget(stream);
        }
    }

    /// Carries out `command` on the aggregate of `stream`.
    ///
    /// With a cache ([`Self::with_cache`]) the command is decided on the cached state when
    /// there is one, else on the state read from the store; either way it is appended with the
    /// exact version that state reflects. On a conflict only the events after that version
    /// are read, and the command is decided again, at most the configured number of times. A
    /// refusal or a decision to record nothing, which no append arbitrates, is answered only
    /// after the events following the cached version (usually none) have been read.
    pub async fn execute(
        &self,
        stream: &StreamId,
        command: &A::Command,
        meta: &CommandMeta,
        ctx: &Context<'_>,
    ) -> Result<Executed<A>, CommandError<A::Rejection>> {
        let ctx = ctx.with_actor(meta.actor()).with_stream(stream);
        let ctx = &ctx;
        let supplied = meta.command_id;
        let id = match supplied {
            Some(id) => id,
            None => draw_command_id(ctx),
        };
        let mut known = self
            .cache
            .as_ref()
            .and_then(|cache| cache.take(stream))
            .map(|entry| (entry.state, Some(entry.version)));
        // A cached state not yet compared with the store in this command.
        let mut unconfirmed = known.is_some();
        let mut attempt = 1;
        loop {
            let (mut state, mut version) = match known.take() {
                Some(known) => known,
                None => {
                    unconfirmed = false;
                    self.load_for_command(stream).await?
                }
            };
            let decision = A::decide(&state, command, &self.services, ctx);
            // A refusal or a no-op is answered without an append, so the store's version check
            // cannot arbitrate it: a cached state must first be confirmed current (a read that
            // is empty unless another writer moved the stream).
            let appends = matches!(&decision, Ok(events) if !events.is_empty());
            if unconfirmed && !appends {
                unconfirmed = false;
                let before = version;
                (state, version) = self.catch_up(stream, state, version).await?;
                if version != before {
                    tracing::debug!(%stream, "cached state was stale; deciding again");
                    known = Some((state, version));
                    continue;
                }
            }
            // A command run again may be refused, or change nothing, because its first run
            // was recorded: answer with that run's result.
            if !appends
                && supplied.is_some()
                && let Some(original) = self.original(stream, id, None, attempt).await?
            {
                self.keep(stream, state, version);
                return Ok(original);
            }
            let events = match decision {
                Ok(events) => events,
                Err(rejection) => {
                    self.keep(stream, state, version);
                    return Err(CommandError::Rejected(rejection));
                }
            };
            if events.is_empty() {
                self.keep_copy(stream, &state, version);
                return Ok(Executed {
                    state,
                    events,
                    append: None,
                    attempts: attempt,
                });
            }
            let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            let outcome = loop {
                // Encoding is deterministic (ids from the command id, the context's instant), so
                // a retry after an unknown outcome appends exactly the same events, which the
                // store recognises when the first try was recorded.
                let data = match encode_all(&events, id, meta, ctx) {
                    Ok(data) => data,
                    Err(error) => {
                        self.keep(stream, state, version);
                        return Err(error);
                    }
                };
                match self.store.append(stream, expected, data).await {
                    Err(AppendError::Store(error))
                        if is_transient(&error) && attempt < self.max_attempts =>
                    {
                        tracing::debug!(%stream, command = %id, attempt, %error,
                            "append outcome unknown; appending the same events again");
                        attempt += 1;
                    }
                    outcome => break outcome,
                }
            };
            match outcome {
                Ok(append) => {
                    for event in &events {
                        state.evolve(event, ctx.stamp());
                    }
                    let head = id.event_id(events.len() - 1);
                    self.maybe_snapshot(stream, &state, version, append.version, head)
                        .await;
                    self.keep_copy(stream, &state, Some(append.version));
                    return Ok(Executed {
                        state,
                        events,
                        append: Some(append),
                        attempts: attempt,
                    });
                }
                Err(AppendError::Conflict { actual, .. }) => {
                    unconfirmed = false;
                    // A stream behind the state (restored from an older backup, say) cannot be
                    // caught up: read it again from scratch.
                    let caught = if actual < version {
                        tracing::warn!(%stream, ?actual, ?version, "stored stream is behind the state held; reading it again");
                        None
                    } else {
                        tracing::debug!(%stream, attempt, "conflict; reading the new events and deciding again");
                        Some(self.catch_up(stream, state, version).await?)
                    };
                    if attempt >= self.max_attempts {
                        if let Some((state, version)) = caught {
                            self.keep(stream, state, version);
                        }
                        return Err(CommandError::Conflict {
                            stream: stream.clone(),
                            attempts: attempt,
                        });
                    }
                    attempt += 1;
                    known = caught;
                }
                Err(AppendError::EventIdReused {
                    event_id,
                    recorded_stream,
                    recorded_version,
                    stream: appended,
                }) if supplied.is_some() && &recorded_stream == stream => {
                    // The command's events are already recorded: it ran before. Its first
                    // event is found by id (the rerun may have decided other events).
                    let first = (event_id == id.event_id(0)).then_some(recorded_version);
                    if let Some(original) = self.original(stream, id, first, attempt).await? {
                        self.forget(stream);
                        return Ok(original);
                    }
                    self.keep(stream, state, version);
                    return Err(CommandError::Append(AppendError::EventIdReused {
                        stream: appended,
                        event_id,
                        recorded_stream,
                        recorded_version,
                    }));
                }
                Err(AppendError::Store(error)) if is_transient(&error) => {
                    // Recorded or not, the state before the command is stored, and a stale
                    // cache entry only costs a conflict.
                    self.keep(stream, state, version);
                    return Err(CommandError::OutcomeUnknown {
                        command: id,
                        attempts: attempt,
                        source: AppendError::Store(error),
                    });
                }
                Err(error) => {
                    self.keep(stream, state, version);
                    return Err(CommandError::Append(error));
                }
            }
        }
    }
}

fn draw_command_id(ctx: &Context<'_>) -> CommandId {
    CommandId::from_uuid(ctx.new_uuid()).unwrap_or_else(|_| {
        let name = format!("{:?}/{}", ctx.stream(), ctx.now().timestamp_micros());
        CommandId::derived(&name)
    })
}

fn is_transient(error: &StoreError) -> bool {
    matches!(error, StoreError::Backend(b) if b.is_transient())
}

fn encode_all<E: DomainEvent, R: StdError + 'static>(
    events: &[E],
    command: CommandId,
    meta: &CommandMeta,
    ctx: &Context<'_>,
) -> Result<Vec<EventData>, CommandError<R>> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| encode(e, command, i, meta, ctx))
        .collect()
}

fn encode<E: DomainEvent, R: StdError + 'static>(
    event: &E,
    command: CommandId,
    index: usize,
    meta: &CommandMeta,
    ctx: &Context<'_>,
) -> Result<EventData, CommandError<R>> {
    let event_type = event.event_type();
    let fail = |reason: String| CommandError::Encode {
        event_type: event_type.to_string(),
        reason,
    };
    let payload = event.to_payload().map_err(|e| fail(e.to_string()))?;
    let mut metadata = Metadata::new(command.event_id(index), meta.actor.clone(), ctx.now());
    if let Some(id) = meta.correlation_id {
        metadata = metadata.with_correlation(id);
    }
    if let Some(id) = meta.causation_id {
        metadata = metadata.with_causation(id);
    }
    if let Some(tenant) = &meta.tenant {
        metadata = metadata.with_tenant(tenant.clone());
    }
    EventData::new(
        event_type.clone(),
        event.schema_version(),
        payload,
        metadata,
    )
    .map_err(|e: EventDataError| fail(e.to_string()))
}
