//! Effectiveness reviews of problem fixes (8.6.3): after a fix, do matching incidents stop?

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use smsys_core::records::{CiId, LinkKind, Phase, Problem, RecordKind, Reference};
use smsys_core::{
    Actor, AppendError, CommandError, CommandHandler, CommandMeta, Context, DerivedIds, EventId,
    StreamId,
};

use super::{ProblemBoard, ProblemCommand, ProblemManagement, ProblemRefusal};
use crate::trend::{IncidentTrends, RecurrenceQuery};

/// How fixes are reviewed: the window after a resolution over which recurring incidents are
/// counted, and how many may recur for the fix to count as effective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// The window after the resolution (30 days by default).
    pub window: Duration,
    /// How many matching incidents may recur in the window for the fix to hold (0 by default).
    pub tolerated_recurrences: u32,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        Self {
            window: Duration::days(30),
            tolerated_recurrences: 0,
        }
    }
}

/// A review that is due: a problem resolved by a fix whose window has passed and that has no
/// review of that fix yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReview {
    /// The problem.
    pub problem: Reference,
    /// Its stream.
    pub stream: StreamId,
    /// When it was resolved (the window starts there, excluded).
    pub resolved_at: DateTime<Utc>,
    /// The window's end, included.
    pub until: DateTime<Utc>,
    /// The incidents that count as recurrences: on the problem's CIs (its affected CIs,
    /// linked CIs and the root cause's contributing CIs), or, when it names none, in its
    /// category on its service.
    pub query: RecurrenceQuery,
}

/// What one review came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// Recorded (now or before, by this node or another).
    Recorded {
        /// The problem.
        problem: Reference,
        /// The incidents that recurred.
        recurrences: Vec<Reference>,
    },
    /// The problem refused it (it moved on since the board last saw it).
    Refused {
        /// The problem.
        problem: Reference,
        /// Why.
        why: String,
    },
}

/// A review that could not be recorded (the store failed): run the reviewer again.
#[derive(Debug, thiserror::Error)]
#[error("effectiveness review of problem {problem}: {source}")]
pub struct ReviewError {
    /// The problem.
    pub problem: Reference,
    /// What failed.
    #[source]
    pub source: CommandError<ProblemRefusal>,
}

/// Reviews the effectiveness of problem fixes at planned intervals: run it periodically (say
/// daily) after catching its [`ProblemBoard`] and [`IncidentTrends`] up with the log. Each
/// problem resolved by a fix is reviewed once its review window (the [`ReviewPolicy`] of the
/// problem handler's policy) has passed: the incidents matching it that were logged in the
/// window are recorded on it ([`ProblemCommand::RecordReview`]), with ids derived from the
/// problem and its resolution, so two nodes or a rerun record it once.
#[derive(Debug)]
pub struct EffectivenessReviewer {
    board: Arc<ProblemBoard>,
    trends: Arc<IncidentTrends>,
    actor: Actor,
}

impl EffectivenessReviewer {
    /// Reviews the problems of `board` against the incidents of `trends`, recording as
    /// `actor`.
    pub fn new(board: Arc<ProblemBoard>, trends: Arc<IncidentTrends>, actor: Actor) -> Self {
        Self {
            board,
            trends,
            actor,
        }
    }

    /// The reviews due at `now` under `policy`, by problem reference.
    pub fn due(&self, policy: &ReviewPolicy, now: DateTime<Utc>) -> Vec<DueReview> {
        let mut due: Vec<DueReview> = self
            .board
            .problems()
            .into_iter()
            .filter_map(|(stream, problem)| due_one(policy.window, stream, &problem, now))
            .collect();
        due.sort_by(|a, b| a.problem.cmp(&b.problem));
        due
    }
}

/// The review of `problem` due at `now` after `window`, if any.
fn due_one(
    window: Duration,
    stream: StreamId,
    problem: &Problem,
    now: DateTime<Utc>,
) -> Option<DueReview> {
    let record = problem.record();
    if record.phase() != Some(Phase::Resolved) {
        return None;
    }
    let resolved_at = super::fixed_at(problem)?;
    if problem
        .review()
        .is_some_and(|r| r.resolved_at == resolved_at)
    {
        return None;
    }
    let until = resolved_at.checked_add_signed(window)?;
    if until > now {
        return None;
    }
    let mut cis: Vec<CiId> = record.affected_cis().to_vec();
    cis.extend(
        record
            .links()
            .iter()
            .filter(|(kind, _)| *kind == LinkKind::CONFIGURATION_ITEM)
            .filter_map(|(_, target)| target.parse().ok()),
    );
    if let Some(cause) = problem.root_cause() {
        cis.extend(cause.contributing_cis.iter().cloned());
    }
    cis.sort();
    cis.dedup();
    let query = if cis.is_empty() {
        RecurrenceQuery::on(
            record.service().cloned(),
            record.category().map(str::to_owned),
            resolved_at,
            until,
        )
    } else {
        RecurrenceQuery::on_cis(cis, resolved_at, until)
    };
    Some(DueReview {
        problem: record.reference()?.clone(),
        stream,
        resolved_at,
        until,
        query,
    })
}

impl EffectivenessReviewer {
    /// Records every review due at `now` through `problems` (under its policy's
    /// [`ReviewPolicy`]). A store failure stops it with the problem it was reviewing; the
    /// reviews recorded before stay recorded, and running it again records the rest.
    pub async fn run(
        &self,
        problems: &CommandHandler<ProblemManagement>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReviewOutcome>, ReviewError> {
        let mut outcomes = Vec::new();
        for due in self.due(&problems.services().review, now) {
            let recurrences = self.trends.recurrences(&due.query);
            let command = ProblemCommand::RecordReview {
                from: due.resolved_at,
                to: due.until,
                recurrences: recurrences.clone(),
            };
            let seed = format!(
                "effectiveness-review/{}/{}",
                due.stream,
                due.resolved_at.to_rfc3339()
            );
            let ids = DerivedIds::new(EventId::derived(&seed), "review");
            let ctx = Context::new(now, &ids);
            let meta = CommandMeta::new(self.actor.clone());
            let problem = due.problem.clone();
            match problems.execute(&due.stream, &command, &meta, &ctx).await {
                Ok(_) => outcomes.push(ReviewOutcome::Recorded {
                    problem,
                    recurrences,
                }),
                // Recorded before, by this node or another: report what is stored.
                Err(CommandError::Append(AppendError::EventIdReused { .. })) => {
                    let stored = problems.load(&due.stream).await.map_err(|e| ReviewError {
                        problem: problem.clone(),
                        source: CommandError::Load(e),
                    })?;
                    let recurrences = stored
                        .state
                        .review()
                        .filter(|r| r.resolved_at == due.resolved_at)
                        .map_or(recurrences, |r| r.recurrences.clone());
                    outcomes.push(ReviewOutcome::Recorded {
                        problem,
                        recurrences,
                    });
                }
                Err(CommandError::Rejected(refusal)) => {
                    tracing::info!(%problem, "effectiveness review refused: {refusal}");
                    outcomes.push(ReviewOutcome::Refused {
                        problem,
                        why: refusal.to_string(),
                    });
                }
                Err(source) => return Err(ReviewError { problem, source }),
            }
        }
        Ok(outcomes)
    }
}
