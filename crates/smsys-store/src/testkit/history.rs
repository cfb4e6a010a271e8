//! Synthetic service desk history, shaped like a real incident export (about 5.6 events per
//! incident, a quarter resolved straight from new, some held, reopened or left open), for
//! import tests and benchmarks.

use chrono::{DateTime, TimeDelta};
use smsys_core::import::{HistoricalEvent, RecordHistory};
use smsys_core::records::{
    Channel, DefinitionRef, GroupId, IncidentEvent, Level, Logged, NoteKind, PersonId, Phase,
    Priority, RecordEvent, Reference, ServiceId, TransitionDetail,
};
use smsys_core::{Actor, StreamId};

use super::records::epoch;

/// A small deterministic generator (SplitMix64): the same seed gives the same history.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const GROUPS: [&str; 6] = [
    "service-desk",
    "network",
    "database",
    "desktop",
    "applications",
    "security",
];
const SERVICES: [&str; 5] = ["email", "erp", "vpn", "intranet", "payroll"];
const CATEGORIES: [&str; 4] = ["software", "hardware", "network", "access"];

fn transition(
    name: &str,
    from: &str,
    to: &str,
    phase: Phase,
    detail: TransitionDetail,
    at: DateTime<chrono::Utc>,
) -> RecordEvent {
    RecordEvent::Transitioned {
        transition: name.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
        phase,
        detail,
        at,
    }
}

/// The move into `resolved` from `from`, with a resolution code and no notes.
fn resolution(from: &str, at: DateTime<chrono::Utc>) -> IncidentEvent {
    transition(
        "resolve",
        from,
        "resolved",
        Phase::Resolved,
        TransitionDetail::Resolution {
            code: "fixed".into(),
            notes: String::new(),
        },
        at,
    )
    .into()
}

/// The histories of `records` incidents (streams `incident-INC-<n>`), each row of the
/// source named `row <n>.<k>`, following the reference incident lifecycle's statuses.
pub fn desk_history(records: usize, seed: u64) -> Vec<RecordHistory<IncidentEvent>> {
    let mut mix = Mix(seed);
    (0..records).map(|n| incident(n, &mut mix)).collect()
}

fn incident(n: usize, mix: &mut Mix) -> RecordHistory<IncidentEvent> {
    let reference = format!("INC-{n:07}");
    let stream: StreamId = format!("incident-{reference}")
        .parse()
        .expect("generated stream ids are valid");
    let mut at = epoch() + TimeDelta::minutes(n as i64 * 7);
    let agent = Actor::new(format!("agent:{}", mix.below(40))).expect("valid actor");
    let mut history = RecordHistory::new(stream);
    let mut row = 0;
    let mut push = |history: &mut RecordHistory<IncidentEvent>,
                    event: IncidentEvent,
                    at: DateTime<chrono::Utc>| {
        row += 1;
        history.push(HistoricalEvent::new(
            event,
            agent.clone(),
            at,
            format!("row {n}.{row}"),
        ));
    };
    let logged = Logged {
        reference: Reference::new(reference.as_str()).expect("valid reference"),
        lifecycle: DefinitionRef {
            name: "incident".into(),
            version: 1,
        },
        status: "new".into(),
        caller: PersonId::new(format!("caller-{}", mix.below(5000))).expect("valid person"),
        channel: Channel::Phone,
        service: ServiceId::new(SERVICES[mix.below(5) as usize]).expect("valid service"),
        affected_cis: Vec::new(),
        summary: format!("Incident {n}: mail does not arrive"),
        description: "Reported by phone; several users affected.".into(),
        attributes: Default::default(),
    };
    push(&mut history, IncidentEvent::Logged(logged), at);
    let levels = [Level::High, Level::Medium, Level::Low];
    let (impact, urgency) = (levels[mix.below(3) as usize], levels[mix.below(3) as usize]);
    if mix.below(10) < 6 {
        push(
            &mut history,
            RecordEvent::Prioritised {
                impact,
                urgency,
                priority: Priority::new(2 + mix.below(3) as u8).expect("valid priority"),
                matrix_version: 1,
            }
            .into(),
            at,
        );
    }
    at += TimeDelta::minutes(3);
    let group = GroupId::new(GROUPS[mix.below(6) as usize]).expect("valid group");
    push(
        &mut history,
        RecordEvent::Assigned {
            group,
            person: None,
            reassignment: false,
        }
        .into(),
        at,
    );
    let fate = mix.below(100);
    if fate < 25 {
        // Resolved straight from new, then closed.
        at += TimeDelta::minutes(40);
        push(&mut history, resolution("new", at), at);
    } else if fate < 80 {
        at += TimeDelta::minutes(10);
        push(
            &mut history,
            RecordEvent::Classified {
                category: CATEGORIES[mix.below(4) as usize].into(),
                subcategory: None,
            }
            .into(),
            at,
        );
        push(
            &mut history,
            transition(
                "start",
                "new",
                "in_progress",
                Phase::Active,
                TransitionDetail::Plain,
                at,
            )
            .into(),
            at,
        );
        if mix.below(4) == 0 {
            at += TimeDelta::minutes(30);
            push(
                &mut history,
                RecordEvent::Noted {
                    kind: NoteKind::WorkNote,
                    text: "Waiting for the vendor.".into(),
                }
                .into(),
                at,
            );
        }
        at += TimeDelta::hours(2);
        push(&mut history, resolution("in_progress", at), at);
    } else {
        // Still open.
        at += TimeDelta::minutes(10);
        push(
            &mut history,
            RecordEvent::Noted {
                kind: NoteKind::Comment,
                text: "We are looking into it.".into(),
            }
            .into(),
            at,
        );
        return history;
    }
    at += TimeDelta::days(3);
    push(
        &mut history,
        transition(
            "close",
            "resolved",
            "closed",
            Phase::Closed,
            TransitionDetail::Closure { automatic: true },
            at,
        )
        .into(),
        at,
    );
    history
}
