//! The cross-record policies of problem management, as [`Reactor`](smsys_core::Reactor)s:
//! each runs commands on other records in reaction to an event, exactly once.
//!
//! - [`LinkMirror`]: a link between two records is visible on both: an incident linked to a
//!   problem gets the problem's link back, and the other way round (and likewise for every
//!   pair of record types given to it: known errors, changes);
//! - [`WorkaroundNotices`]: a published workaround is noted on every open incident linked to
//!   the problem, including incidents linked after it was published;
//! - [`FixFollowUp`]: a problem resolved by a fix resumes, resolves or notes (per [`OnFix`])
//!   the incidents on hold awaiting it.
//!
//! Run each with [`Reacting`](smsys_core::Reacting) and a durable checkpoint store. Delivery
//! is at least once; every command a reactor runs takes its ids from the triggering event
//! ([`DerivedIds`](smsys_core::DerivedIds)) and its instant from the trigger's, so a replay, a restart or a second
//! node appends nothing new. A command the target record refuses (it is closed, not logged,
//! already linked) is logged through `tracing` and skipped: a policy never stalls on one
//! record. A failure to load or to store stops the reactor before the event, to be retried.

mod follow_up;
mod links;

pub use follow_up::{FixFollowUp, OnFix, WorkaroundNotices};
pub use links::{LinkMirror, LinkSide, RecordSide};

use crate::reacting::{AsOf, Ran, failed, linked, run, skipped, state_as_of};
