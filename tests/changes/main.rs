//! Change management (ISO/IEC 20000-1 8.5.1) end to end and as tables and properties.
//!
//! - `flows`: on a store, a normal change from request to review with a refused
//!   self-approval, a blocking conflict resolved by rescheduling and approvals reset by a
//!   revised plan; an emergency change closed only after its retrospective assessment and
//!   review; a failed change remediated and investigated; a standard change from its template.
//! - `matrix`: for each kind, every status of its lifecycle (reached by real commands) x every
//!   change command, accepted or refused, compared to the table written out in the test.
//! - `invariants`: random commands by random actors over the three kinds never implement an
//!   unauthorised change, never close one without its review (and assessment, remediation,
//!   investigation where needed), never count a requester's or implementer's approval, and
//!   count only the approvals given since the last reset.
//!
//! - `reactors`: a successful change's CI updates applied through the CMDB and its known
//!   errors retired, each once over replays.
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
mod matrix;
mod reactors;
