//! Nonconformity and corrective action (ISO/IEC 20000-1 10.1) end to end and as tables and
//! properties.
//!
//! - `flows`: on a store and on a desk, a nonconformity from raising to closure: correction,
//!   cause analysis, corrective actions with owners and due dates, their implementation, an
//!   ineffective review that sends it back to analysis (the first round kept), an effective
//!   review by someone who owns no action, closure; what is refused and why.
//! - `matrix`: every stage of the reference lifecycle (reached by real commands) x every
//!   nonconformity command, accepted or refused, compared to the table written out in the
//!   test.
//! - `invariants`: random commands by random actors never close without an effective review
//!   after implemented actions, never review before the actions are implemented, never let
//!   an action's owner review, keep every earlier step, and replay to the same state.
//! - `reactors`: a breached SLA target and a failed change raise one nonconformity each,
//!   linked to its source, once over two runs; none when the policy says no.
//! - `lint`: the reference lifecycle passes the lint; one that closes without an effective
//!   review, or reviews before implementation, is flagged under 10.1.
//!
//! One binary; `harness` holds what they share.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::result_large_err,
    reason = "tests stop at the first broken expectation and pass refusals on as they are"
)]

mod flows;
mod harness;
mod invariants;
mod lint;
mod matrix;
mod reactors;
