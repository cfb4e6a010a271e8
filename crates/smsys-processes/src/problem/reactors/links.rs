//! Links visible on both records.

use std::error::Error as StdError;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use smsys_core::records::{
    CommonEvent, LinkKind, RecordEvent, RecordKind, Reference, upcasters_for,
};
use smsys_core::{
    Actor, Aggregate, Category, CommandHandler, EventSourced, LogFilter, ProjectionError, Reactor,
    RecordedEvent,
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
        match run(&self.handler, &stream, &command, trigger, purpose, actor).await {
            Ok(Ran::Done) => Ok(None),
            Ok(Ran::Refused(why)) => Ok(Some(why)),
            Err(error) => Err(Box::new(error)),
        }
    }
}

/// Mirrors links between the record types it is given, so a link is visible on both
/// records: when a record of one side links (or unlinks) a record of another side, the other
/// record gets the link back, naming the first with its side's kind.
///
/// Events the mirror itself recorded (its actor) are not mirrored back, so a link made on
/// either record and later removed on either stays removed on both.
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
/// let mirror = LinkMirror::new(Actor::new("smsys.link-mirror")?)
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
    sides: Vec<Arc<dyn LinkSide>>,
}

impl std::fmt::Debug for LinkMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let categories: Vec<&str> = self.sides.iter().map(|s| s.category()).collect();
        f.debug_struct("LinkMirror")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("sides", &categories)
            .finish()
    }
}

impl LinkMirror {
    /// A mirror named `link-mirror`, recording as `actor`, with no side yet.
    pub fn new(actor: Actor) -> Self {
        Self {
            name: "link-mirror".into(),
            actor,
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
        let (kind, target, link) = match decoded {
            Some(CommonEvent::Record(RecordEvent::Linked { kind, target })) => (kind, target, true),
            Some(CommonEvent::Record(RecordEvent::Unlinked { kind, target })) => {
                (kind, target, false)
            }
            _ => return Ok(()),
        };
        let Some(side) = self.side_of_kind(&kind) else {
            return Ok(());
        };
        let (Ok(from), Ok(to)) = (
            event.stream.entity_id().parse::<Reference>(),
            target.parse::<Reference>(),
        ) else {
            skipped(&self.name, &event.stream, event, "not a record reference");
            return Ok(());
        };
        let back = if link {
            RecordCommand::Link {
                kind: source.kind().clone(),
                target: from.to_string(),
            }
        } else {
            RecordCommand::Unlink {
                kind: source.kind().clone(),
                target: from.to_string(),
            }
        };
        let purpose = format!("{}/{}/{to}", self.name, side.category());
        match side.run(&to, back, event, &purpose, &self.actor).await {
            Ok(None) => Ok(()),
            Ok(Some(why)) => {
                skipped(&self.name, &event.stream, event, &why);
                Ok(())
            }
            Err(error) => Err(failed(&self.name, event, error)),
        }
    }
}
