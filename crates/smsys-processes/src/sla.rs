//! SLA timers (ISO/IEC 20000-1 8.3.3): definitions as versioned data, timers derived from a
//! record's history, exact recompute and what-if, a scheduler projection, exactly-once firing,
//! and attainment reports.
//!
//! A timer's truth is the record's history plus the definition version it bound to. Elapsed,
//! remaining, percent, due instant and overrun are pure functions of the timer's running
//! segments, the calendar and `now`, in whole seconds.

mod definition;
mod driver;
mod engine;
mod fire;
mod report;
mod scheduler;
mod timer;

pub use definition::{
    AppliesTo, BREACH_BP, Condition, DeadlineKind, OnPriorityChange, OnReopen, Sla, SlaDefinition,
    SlaError, SlaRegistry, SlaSelection, Target,
};
pub use driver::{
    FireReport, Recorded, SlaDriver, SlaDriverError, TimerKey, load_history, record_sla_events,
};
pub use engine::{History, SlaEngine};
pub use fire::{SLA_ACTOR, due_events};
pub use report::{Attainment, Breach, Period, ReportKey, SlaReport};
pub use scheduler::SlaScheduler;
pub use timer::{Binding, Timer, TimerEnd, derive_timers};
