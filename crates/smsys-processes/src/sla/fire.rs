//! Turning reached thresholds into record events, exactly once.

use chrono::{DateTime, Utc};
use smsys_core::records::RecordEvent;
use smsys_core::{Actor, EventData, EventId, Metadata, StreamId};

use super::definition::BREACH_BP;
use super::timer::Timer;
use crate::calendar::BusinessCalendar;

/// The actor of the events the SLA engine records.
pub const SLA_ACTOR: &str = "smsys.sla";

/// The events that record every threshold of `timers` reached by `now` and not yet recorded.
///
/// Each event's id is derived from (record, timer, cycle, threshold) and its occurred-at is the
/// instant the threshold was reached, not the instant of the check: checking late, twice, on two
/// nodes or during a replay gives the very same events, which the store recognises as a retry.
pub fn due_events<'a>(
    stream: &StreamId,
    timers: &[Timer],
    cal_for: impl Fn(&Timer) -> Option<&'a BusinessCalendar>,
    now: DateTime<Utc>,
) -> Vec<EventData> {
    let mut out = Vec::new();
    for timer in timers {
        let Some(cal) = cal_for(timer) else { continue };
        for (bp, at) in timer.unrecorded_reached(cal, now) {
            let event = if bp == BREACH_BP {
                RecordEvent::SlaBreached {
                    timer: timer.timer().to_owned(),
                    sla: timer.sla().clone(),
                    cycle: timer.cycle(),
                    at,
                }
            } else {
                RecordEvent::SlaThresholdReached {
                    timer: timer.timer().to_owned(),
                    sla: timer.sla().clone(),
                    cycle: timer.cycle(),
                    threshold_bp: bp,
                    at,
                }
            };
            let id = EventId::derived(&format!(
                "sla/{stream}/{}/{}/{bp}",
                timer.timer(),
                timer.cycle()
            ));
            if let Some(data) = to_event_data(stream, &event, id, at) {
                out.push(data);
            }
        }
    }
    out.sort_by_key(|e| e.metadata().occurred_at());
    out
}

fn to_event_data(
    stream: &StreamId,
    event: &RecordEvent,
    id: EventId,
    at: DateTime<Utc>,
) -> Option<EventData> {
    let actor = Actor::new(SLA_ACTOR).ok()?;
    let payload = event.to_payload().ok()?;
    EventData::new(
        event.event_type_in(stream.category_str()),
        event.schema_version(),
        payload,
        Metadata::new(id, actor, at),
    )
    .ok()
}
