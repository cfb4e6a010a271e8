//! Service-desk records (incidents, service requests, problems and known errors) under the record framework:
//! the status x command matrix of each type, invariants under random commands, the rules of
//! each type (major incidents, approvals, tasks, root causes, accepted risks, duplicates), the
//! rules that are lifecycle or policy data, custom attributes, and commands run through the
//! command handler on the in-memory store.
//!
//! One binary; the record types share one harness (`harness.rs`), each test module reads
//! as given / when / then on it.

#![allow(
    clippy::expect_used,
    clippy::needless_pass_by_value,
    clippy::result_large_err,
    reason = "test helpers: stop at the first broken expectation, take commands by value, \
              pass on the deciders' refusals as they are"
)]

mod harness;

mod data;
mod handler;
mod incident;
mod invariants;
mod known_error;
mod matrix;
mod problem;
mod request;
