//! What can be asked of a nonconformity, and what raising one takes.

use smsys_core::records::NonconformitySource;
use smsys_core::records::nonconformity::CorrectiveAction;

use crate::record::{LogRecord, RecordCommand};

/// What raising a nonconformity takes.
#[derive(Debug, Clone, PartialEq)]
pub struct LogNonconformity {
    /// The shared fields (the caller is who raised it; the summary says what requirement was
    /// not met).
    pub record: LogRecord,
    /// Where it comes from.
    pub source: NonconformitySource,
}

impl LogNonconformity {
    /// A nonconformity from `source`.
    pub fn new(record: LogRecord, source: NonconformitySource) -> Self {
        Self { record, source }
    }
}

/// What can be asked of a nonconformity.
#[derive(Debug, Clone, PartialEq)]
pub enum NonconformityCommand {
    /// Raise it.
    Log(Box<LogNonconformity>),
    /// A command every record accepts (links, notes, assignment; close once found effective;
    /// cancel with a reason).
    Record(RecordCommand),
    /// Record the immediate correction (while raised).
    Correct {
        /// What was done to contain it and its consequences (required).
        correction: String,
    },
    /// Record the analysis of its cause (once corrected, or after an ineffective review).
    AnalyseCause {
        /// The cause found (required).
        cause: String,
        /// How it was found (required), e.g. `five whys`.
        method: String,
    },
    /// Plan the corrective actions that remove the cause (once analysed).
    PlanActions {
        /// The actions, each with an owner and a due date (at least one; none due before
        /// today).
        actions: Vec<CorrectiveAction>,
    },
    /// Record that the planned actions were implemented (once planned).
    ImplementActions {
        /// What was done (required).
        notes: String,
    },
    /// Review the effectiveness of the implemented actions: effective, it may close;
    /// ineffective, its cause is analysed again. Under the reference policy the reviewer is
    /// none of the actions' owners.
    ReviewEffectiveness {
        /// Whether the actions removed the cause.
        effective: bool,
        /// What the review found (required).
        findings: String,
    },
}

impl From<RecordCommand> for NonconformityCommand {
    fn from(command: RecordCommand) -> Self {
        NonconformityCommand::Record(command)
    }
}

impl NonconformityCommand {
    /// Raise a nonconformity.
    pub fn log(input: LogNonconformity) -> Self {
        NonconformityCommand::Log(Box::new(input))
    }

    /// The command's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            NonconformityCommand::Log(_) => "log",
            NonconformityCommand::Record(c) => c.name(),
            NonconformityCommand::Correct { .. } => "correct",
            NonconformityCommand::AnalyseCause { .. } => "analyse cause",
            NonconformityCommand::PlanActions { .. } => "plan actions",
            NonconformityCommand::ImplementActions { .. } => "implement actions",
            NonconformityCommand::ReviewEffectiveness { .. } => "review effectiveness",
        }
    }
}
