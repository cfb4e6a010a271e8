//! Every problem's state in memory, followed from the log: what the duplicate check and the
//! effectiveness reviews consult.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use smsys_core::records::{Phase, Problem, RecordKind, Reference};
use smsys_core::{
    DomainEvent, EventSourced, LogFilter, Position, Projection, ProjectionError, RecordedEvent,
    Stamp, StreamId, Upcasters, Version,
};

/// Where a problem stands, as a directory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemStanding {
    /// Its phase.
    pub phase: Phase,
    /// The problem it was marked the duplicate of, while it stands resolved that way.
    pub duplicate_of: Option<Reference>,
}

impl ProblemStanding {
    /// Whether it is open (new, active or pending): what a duplicate may name.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::New | Phase::Active | Phase::Pending)
    }
}

/// Looks problems up by reference, synchronously (problem management's `decide` is pure and
/// consults it through [`ProblemPolicy::directory`](super::ProblemPolicy::directory)).
pub trait ProblemDirectory: Send + Sync + std::fmt::Debug {
    /// Where the problem `reference` stands, if known.
    fn standing(&self, reference: &Reference) -> Option<ProblemStanding>;
}

#[derive(Debug, Default)]
struct Board {
    problems: HashMap<StreamId, (Problem, Version)>,
    by_reference: HashMap<Reference, StreamId>,
    checkpoint: Option<Position>,
}

/// Every problem's state, kept in memory from the log (a [`Projection`] over the `problem`
/// category). Its checkpoint is in memory too: a new board is built from the start of the
/// log, which a [`ProjectionRunner`](smsys_core::ProjectionRunner) does on its first catch-up.
/// Events at or before a problem's held version are skipped, so a batch delivered again
/// changes nothing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use smsys_core::ProjectionRunner;
/// use smsys_processes::problem::{ProblemBoard, ProblemDirectory};
/// use smsys_store::MemoryEventStore;
///
/// let store = Arc::new(MemoryEventStore::new());
/// let board = Arc::new(ProblemBoard::new("problems"));
/// ProjectionRunner::new(store).catch_up(board.as_ref()).await?;
/// assert!(board.standing(&"PRB-1".parse()?).is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ProblemBoard {
    name: String,
    upcasters: Upcasters,
    board: RwLock<Board>,
}

impl ProblemBoard {
    /// An empty board named `name` (the projection's name), reading problem events through
    /// their shipped upcasters.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            upcasters: <Problem as EventSourced>::Event::upcasters(),
            board: RwLock::new(Board::default()),
        }
    }

    /// Reads problem events through `upcasters` (the shipped ones and a product's own).
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// The problem `reference`, as of the board's checkpoint.
    pub fn get(&self, reference: &Reference) -> Option<Problem> {
        let board = self.board.read().unwrap_or_else(PoisonError::into_inner);
        let stream = board.by_reference.get(reference)?;
        board.problems.get(stream).map(|(p, _)| p.clone())
    }

    /// Every problem with its stream, in no particular order.
    pub fn problems(&self) -> Vec<(StreamId, Problem)> {
        let board = self.board.read().unwrap_or_else(PoisonError::into_inner);
        board
            .problems
            .iter()
            .map(|(s, (p, _))| (s.clone(), p.clone()))
            .collect()
    }

    /// How many problems it holds.
    pub fn len(&self) -> usize {
        let board = self.board.read().unwrap_or_else(PoisonError::into_inner);
        board.problems.len()
    }

    /// Whether it holds no problem.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ProblemDirectory for ProblemBoard {
    fn standing(&self, reference: &Reference) -> Option<ProblemStanding> {
        let board = self.board.read().unwrap_or_else(PoisonError::into_inner);
        let stream = board.by_reference.get(reference)?;
        let (problem, _) = board.problems.get(stream)?;
        Some(ProblemStanding {
            phase: problem.record().phase()?,
            duplicate_of: problem.duplicate_of().cloned(),
        })
    }
}

#[async_trait]
impl Projection for ProblemBoard {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> LogFilter {
        crate::stream_filter::<Problem>()
    }

    async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        let board = self.board.read().unwrap_or_else(PoisonError::into_inner);
        Ok(board.checkpoint)
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let decoded = crate::decode_batch::<Problem>(&self.name, &self.upcasters, events)?;
        let mut board = self.board.write().unwrap_or_else(PoisonError::into_inner);
        for (event, typed) in decoded {
            let entry = board
                .problems
                .entry(event.stream.clone())
                .or_insert_with(|| (Problem::default(), Version::FIRST));
            let held = entry.0.record().is_logged();
            if held && event.version <= entry.1 {
                continue;
            }
            entry.0.evolve(&typed, Stamp::of(event.data.metadata()));
            entry.1 = event.version;
            let reference = entry.0.record().reference().cloned();
            if let Some(reference) = reference {
                board.by_reference.insert(reference, event.stream.clone());
            }
        }
        board.checkpoint = Some(checkpoint);
        Ok(())
    }
}
