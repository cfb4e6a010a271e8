//! Release and deployment management (ISO/IEC 20000-1 8.5.3) end to end.
//!
//! - `reactors`: what a release does to other records through its reactors, each once over
//!   replays and restarts.
//!
//! One binary; `reactor_harness` holds what the reactor tests share.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::result_large_err,
    reason = "tests stop at the first broken expectation and pass refusals on as they are"
)]

mod reactor_harness;
mod reactors;
