//! Links visible on both records.

use std::error::Error as StdError;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use smsys_core::records::{
    CommonEvent, LinkKind, RecordEvent, RecordKind, Reference, upcasters_for,
};
use smsys_core::{
    Actor, Aggregate, Category, CommandHandler, EventSourced, EventStore, LogFilter, Position,
    ProjectionError, Reactor, RecordedEvent, StreamId, Version,
};

use super::{Ran, failed, run, skipped};
use crate::record::RecordCommand;

/// One record type a [`LinkMirror`] links on: the category of its streams, the link kind by
/// which other records name it, and how to run a link command on one of its records.
/// [`RecordSide`] is the implementation for any record type's command handler.
#[async_trait]
pub trait LinkSide: Send + Sync {
    /// The stream category of its records.
    fn category(&self) -> &str;

    /// The link kind by which other records name its records.
    fn kind(&self) -> &LinkKind;

    /// Runs `command` (a link or an unlink) on its record `reference` in reaction to
    /// `trigger`, with ids derived from the trigger and `purpose`, `actor` acting: `None` once
    /// recorded (now or before), `Some(why)` when the record refused it.
    async fn run(
        &self,
        reference: &Reference,
        command: RecordCommand,
        trigger: &RecordedEvent,
        purpose: &str,
        actor: &Actor,
    ) -> Result<Option<String>, Box<dyn StdError + Send + Sync>>;
}

/// The [`LinkSide`] of the records decided by `A`, through its command handler.
pub struct RecordSide<A: Aggregate> {
    handler: CommandHandler<A>,
    kind: LinkKind,
    aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate> std::fmt::Debug for RecordSide<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSide")
            .field("category", &A::State::CATEGORY)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> RecordSide<A> {
    /// The records `handler` decides, named by other records with `kind` (e.g.
    /// [`LinkKind::INCIDENT`] for incidents).
    pub fn new(handler: CommandHandler<A>, kind: LinkKind) -> Self {
        Self {
            handler,
            kind,
            aggregate: PhantomData,
        }
    }
}

#[async_trait]
impl<A> LinkSide for RecordSide<A>
where
    A: Aggregate + 'static,
    A::State: RecordKind,
    A::Command: From<RecordCommand> + Sync,
    A::Services: Sync,
{
    fn category(&self) -> &str {
        A::State::CATEGORY
    }

    fn kind(&self) -> &LinkKind {
        &self.kind
    }

    async fn run(
        &self,
        reference: &Reference,
        command: RecordCommand,
        trigger: &RecordedEvent,
        purpose: &str,
        actor: &Actor,
    ) -> Result<Option<String>, Box<dyn StdError + Send + Sync>> {
        let stream = A::State::stream(reference)?;
        let command = A::Command::from(command);
        let cause = (trigger, trigger.event_id());
        match run(&self.handler, &stream, &command, cause, purpose, actor).await {
            Ok(Ran::Done) => Ok(None),
            Ok(Ran::Refused(why)) => Ok(Some(why)),
            Err(error) => Err(Box::new(error)),
        }
    }
}

/// Mirrors links between the record types it is given, so a link is visible on both
/// records: when a record of one side links (or unlinks) a record of another side, the other
/// record gets the link back (or loses it), naming the first with its side's kind.
///
/// The two records of a pair may be edited concurrently, on either side. Whatever the order
/// the mirror sees them in, the pair ends as the latest decision about it in the log says:
/// reacting to a link or unlink, the mirror reads both records' streams, takes the last link
/// or unlink of the pair recorded by anyone but itself, and brings each record that differs
/// into line. Events the mirror recorded are never mirrored back. A record that refuses (it
/// is closed, or was never logged) is skipped and logged through `tracing`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use smsys_core::records::LinkKind;
/// use smsys_core::{Actor, CommandHandler, Reacting};
/// use smsys_processes::problem::reactors::{LinkMirror, RecordSide};
/// use smsys_processes::{IncidentManagement, IncidentPolicy, ProblemManagement, ProblemPolicy};
/// use smsys_store::MemoryEventStore;
///
/// let store = Arc::new(MemoryEventStore::new());
/// let mirror = LinkMirror::new(store.clone(), Actor::new("smsys.link-mirror")?)
///     .with_side(Arc::new(RecordSide::new(
///         CommandHandler::<IncidentManagement>::new(store.clone(), IncidentPolicy::default()),
///         LinkKind::INCIDENT,
///     )))
///     .with_side(Arc::new(RecordSide::new(
///         CommandHandler::<ProblemManagement>::new(store.clone(), ProblemPolicy::default()),
///         LinkKind::PROBLEM,
///     )));
/// // Run it with its checkpoint kept in the store.
/// let reacting = Reacting::new(mirror, store.clone());
/// smsys_core::ProjectionRunner::new(store).catch_up(&reacting).await?;
/// # Ok(())
/// # }
/// ```
pub struct LinkMirror {
    name: String,
    actor: Actor,
    store: Arc<dyn EventStore>,
    sides: Vec<Arc<dyn LinkSide>>,
}

impl std::fmt::Debug for LinkMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let categories: Vec<&str> = self.sides.iter().map(|s| s.category()).collect();
        f.debug_struct("LinkMirror")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("sides", &categories)
            .finish_non_exhaustive()
    }
}

/// One end of a linked pair: a record, and how it names the other.
struct End<'a> {
    side: &'a Arc<dyn LinkSide>,
    stream: StreamId,
    reference: Reference,
}

/// What one record's stream says about the pair: whether it links the other end now, and
/// the last link or unlink of the pair recorded by someone other than the mirror.
#[derive(Default)]
struct Said {
    linked: bool,
    decided: Option<(Position, bool)>,
}

impl LinkMirror {
    /// A mirror named `link-mirror`, reading `store` and recording as `actor`, with no side
    /// yet.
    pub fn new(store: Arc<dyn EventStore>, actor: Actor) -> Self {
        Self {
            name: "link-mirror".into(),
            actor,
            store,
            sides: Vec::new(),
        }
    }

    /// Its checkpoint's name (a mirror given other sides takes a new name).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Mirrors links to and from the records of `side` too.
    pub fn with_side(mut self, side: Arc<dyn LinkSide>) -> Self {
        self.sides.push(side);
        self
    }

    fn side_of_category(&self, category: &str) -> Option<&Arc<dyn LinkSide>> {
        self.sides.iter().find(|s| s.category() == category)
    }

    fn side_of_kind(&self, kind: &LinkKind) -> Option<&Arc<dyn LinkSide>> {
        self.sides.iter().find(|s| s.kind() == kind)
    }

    /// What `end`'s stream says about its link to `other`.
    async fn said(
        &self,
        end: &End<'_>,
        other: &End<'_>,
        trigger: &RecordedEvent,
    ) -> Result<Said, ProjectionError> {
        let upcasters = upcasters_for(end.side.category());
        let mut said = Said::default();
        let mut events = self.store.read_stream(&end.stream, Version::FIRST);
        while let Some(recorded) = futures::StreamExt::next(&mut events).await {
            let recorded = recorded.map_err(|e| ProjectionError::store(&self.name, e))?;
            let event_type = recorded.data.event_type();
            let linked = match event_type.as_str().rsplit_once('.') {
                Some((_, "linked")) => true,
                Some((_, "unlinked")) => false,
                _ => continue,
            };
            let decoded = CommonEvent::read(
                &upcasters,
                &[],
                event_type,
                recorded.data.schema_version(),
                recorded.data.payload().clone(),
            )
            .map_err(|e| failed(&self.name, trigger, format!("{}: {e}", end.stream)))?;
            let Some(CommonEvent::Record(
                RecordEvent::Linked { kind, target } | RecordEvent::Unlinked { kind, target },
            )) = decoded
            else {
                continue;
            };
            if kind != *other.side.kind() || target != other.reference.as_str() {
                continue;
            }
            said.linked = linked;
            if recorded.data.metadata().actor() != &self.actor {
                said.decided = Some((recorded.position, linked));
            }
        }
        Ok(said)
    }

    /// Brings `end` into line with `decision` about its link to `other`.
    async fn align(
        &self,
        end: &End<'_>,
        other: &End<'_>,
        decision: bool,
        trigger: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let command = if decision {
            RecordCommand::Link {
                kind: other.side.kind().clone(),
                target: other.reference.to_string(),
            }
        } else {
            RecordCommand::Unlink {
                kind: other.side.kind().clone(),
                target: other.reference.to_string(),
            }
        };
        let purpose = format!("link-mirror/{}", end.stream);
        match end
            .side
            .run(&end.reference, command, trigger, &purpose, &self.actor)
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(why)) => {
                skipped(&self.name, &end.stream, trigger, &why);
                Ok(())
            }
            Err(error) => Err(failed(&self.name, trigger, error)),
        }
    }
}

#[async_trait]
impl Reactor for LinkMirror {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        self.sides
            .iter()
            .filter_map(|s| Category::new(s.category()).ok())
            .fold(LogFilter::all(), LogFilter::category)
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let event_type = event.data.event_type();
        let name = event_type.as_str().rsplit_once('.').map(|(_, n)| n);
        if !matches!(name, Some("linked" | "unlinked"))
            || event.data.metadata().actor() == &self.actor
        {
            return Ok(());
        }
        let Some(source) = self.side_of_category(event.stream.category_str()) else {
            return Ok(());
        };
        let decoded = CommonEvent::read(
            &upcasters_for(event.stream.category_str()),
            &[],
            event_type,
            event.data.schema_version(),
            event.data.payload().clone(),
        )
        .map_err(|e| failed(&self.name, event, e))?;
        let Some(CommonEvent::Record(
            RecordEvent::Linked { kind, target } | RecordEvent::Unlinked { kind, target },
        )) = decoded
        else {
            return Ok(());
        };
        let Some(side) = self.side_of_kind(&kind) else {
            return Ok(());
        };
        let ends = (
            event.stream.entity_id().parse::<Reference>(),
            target.parse::<Reference>(),
        );
        let (Ok(from), Ok(to)) = ends else {
            skipped(&self.name, &event.stream, event, "not a record reference");
            return Ok(());
        };
        let Ok(to_stream) =
            Category::new(side.category()).and_then(|c| StreamId::new(&c, to.as_str()))
        else {
            skipped(&self.name, &event.stream, event, "not a record reference");
            return Ok(());
        };
        let here = End {
            side: source,
            stream: event.stream.clone(),
            reference: from,
        };
        let there = End {
            side,
            stream: to_stream,
            reference: to,
        };
        let said_here = self.said(&here, &there, event).await?;
        let said_there = self.said(&there, &here, event).await?;
        // The latest decision about the pair, on either record.
        let decision = match (said_here.decided, said_there.decided) {
            (Some((a, here)), Some((b, there))) => {
                if a >= b {
                    here
                } else {
                    there
                }
            }
            (Some((_, v)), None) | (None, Some((_, v))) => v,
            (None, None) => return Ok(()),
        };
        if said_here.linked != decision {
            self.align(&here, &there, decision, event).await?;
        }
        if said_there.linked != decision {
            self.align(&there, &here, decision, event).await?;
        }
        Ok(())
    }
}
