//! Release and deployment management (ISO/IEC 20000-1 8.5.3) end to end and as tables and
//! properties.
//!
//! - `flows`: on a store, a major release from plan to closure: acceptance, approval by a
//!   quorum with the segregation of duties, a baseline read from the configuration graph,
//!   deployment environment by environment, a failure rolled back to its baseline, a second
//!   attempt on a new baseline, early life, its review and closure; a release whose changes
//!   are not authorised does not deploy.
//! - `scope`: a release deploys only while the changes it delivers are authorised.
//! - `baselines`: a baseline must come from a source, be intact and cover every CI.
//! - `matrix`: every stage of the reference lifecycle (reached by real commands) x every
//!   release command, accepted or refused, compared to the table written out in the test.
//! - `invariants`: random commands by random actors at random times never deploy without an
//!   authorisation and a current intact baseline, deploy in the environments' order within an
//!   attempt, never close without the early-life review nor review an open window unwaived,
//!   correlate only inside the window, and replay to the same state.
//! - `reactors`: what a release does to other records through its reactors, each once over
//!   replays and restarts.
//!
//! One binary; `harness` and `reactor_harness` hold what they share.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::result_large_err,
    reason = "tests stop at the first broken expectation and pass refusals on as they are"
)]

mod baselines;
mod flows;
mod harness;
mod invariants;
mod matrix;
mod reactor_harness;
mod reactors;
mod scope;
