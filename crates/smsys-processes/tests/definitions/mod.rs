//! The SLA definition the SLA tests share: starts when logged, stops when resolved, pauses on
//! hold, warnings at 50 % and 75 %, on the 24x7 calendar.

use chrono::{TimeZone, Utc};
use smsys_core::records::{Phase, Priority};
use smsys_processes::sla::{
    AppliesTo, Condition, DeadlineKind, OnPriorityChange, OnReopen, SlaDefinition, Target,
};

pub(crate) fn p(n: u8) -> Priority {
    Priority::new(n).expect("valid")
}

pub(crate) fn definition(timer: &str, targets: &[(Option<u8>, u32)]) -> SlaDefinition {
    SlaDefinition {
        name: format!("{timer}-sla"),
        version: 1,
        effective_from: Utc
            .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .expect("valid"),
        timer: timer.into(),
        applies_to: AppliesTo::default(),
        start: vec![Condition::Logged],
        stop: vec![Condition::Entered(Phase::Resolved)],
        cancel: vec![Condition::Entered(Phase::Cancelled)],
        pause_in: vec![Phase::Pending],
        targets: targets
            .iter()
            .map(|(pr, minutes)| Target {
                priority: pr.map(p),
                minutes: *minutes,
            })
            .collect(),
        calendar: "24x7".into(),
        warnings: vec![50.0, 75.0],
        on_priority_change: OnPriorityChange::KeepElapsed,
        on_reopen: OnReopen::Resume,
        deadline: DeadlineKind::Pausable,
    }
}
