//! The conflict search of the change schedule, over its indexes (the rules are in
//! `ChangeSchedule`'s docs).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::SecondsFormat;
use smsys_core::records::change::ChangeWindow;
use smsys_core::records::{CiId, Relationship};

use super::{Book, ChangeSchedule};
use crate::change::conflict::{Conflict, ConflictKind, ScheduleRequest};
use crate::change::windows::{Via, WindowBinding, WindowKind};

/// `2026-11-07T22:00:00Z to 2026-11-08T02:00:00Z`.
fn span(window: &ChangeWindow) -> String {
    format!(
        "{} to {}",
        window.start.to_rfc3339_opts(SecondsFormat::Secs, true),
        window.end.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

pub(super) fn conflicts(
    schedule: &ChangeSchedule,
    book: &Book,
    request: &ScheduleRequest<'_>,
) -> Vec<Conflict> {
    let window = request.window;
    let (from, to) = (window.start, window.end);
    let own = book.by_reference.get(request.change).copied();
    let asked: BTreeSet<&CiId> = request.cis.iter().collect();
    let mut out = Vec::new();

    // Same CI: one per other change and shared CI.
    let mut sharing = HashSet::new();
    for ci in &asked {
        for (slot, other) in book.overlapping(book.by_ci.get(*ci), from, to) {
            if Some(slot) == own {
                continue;
            }
            sharing.insert(slot);
            out.push(Conflict {
                kind: ConflictKind::SameCi,
                detail: format!(
                    "{} also changes {ci} in {}, overlapping {}",
                    other.reference,
                    span(&other.window),
                    span(window)
                ),
                with: Some(other.reference.clone()),
                ci: Some((*ci).clone()),
            });
        }
    }

    // Related CIs: one per other change (not sharing a CI) and related CI it changes.
    for (ci, (hops, origin)) in related(schedule, &asked) {
        for (slot, other) in book.overlapping(book.by_ci.get(&ci), from, to) {
            if Some(slot) == own || sharing.contains(&slot) {
                continue;
            }
            let unit = if hops == 1 { "hop" } else { "hops" };
            out.push(Conflict {
                kind: ConflictKind::RelatedCi,
                detail: format!(
                    "{} changes {ci}, {hops} {unit} from {origin}, in {}, overlapping {}",
                    other.reference,
                    span(&other.window),
                    span(window)
                ),
                with: Some(other.reference.clone()),
                ci: Some(ci.clone()),
            });
        }
    }

    // The implementer: one per other change they implement.
    if let Some(person) = request.implementer {
        for (slot, other) in book.overlapping(book.by_implementer.get(person), from, to) {
            if Some(slot) == own {
                continue;
            }
            out.push(Conflict {
                kind: ConflictKind::AssigneeBooked,
                detail: format!(
                    "{person} implements {} in {}, overlapping {}",
                    other.reference,
                    span(&other.window),
                    span(window)
                ),
                with: Some(other.reference.clone()),
                ci: None,
            });
        }
    }

    calendar_conflicts(schedule, &asked, window, &mut out);
    out.sort_by(|a, b| {
        (a.kind, &a.with, &a.ci, &a.detail).cmp(&(b.kind, &b.with, &b.ci, &b.detail))
    });
    out
}

/// Freeze and maintenance conflicts: global bindings once, the others per CI.
fn calendar_conflicts(
    schedule: &ChangeSchedule,
    asked: &BTreeSet<&CiId>,
    window: &ChangeWindow,
    out: &mut Vec<Conflict>,
) {
    let calendars = &schedule.calendars;
    let check = |kind: WindowKind, binding: &WindowBinding| match kind {
        WindowKind::Freeze => binding.overlaps(window),
        WindowKind::Maintenance => !binding.contains(window),
    };
    let conflict = |kind: WindowKind, binding: &WindowBinding, whom: String, ci: Option<CiId>| {
        let calendar = binding.calendar();
        let (kind, what) = match kind {
            WindowKind::Freeze => (ConflictKind::Freeze, "falls in the freeze"),
            WindowKind::Maintenance => (
                ConflictKind::OutsideMaintenance,
                "is not wholly inside the maintenance window",
            ),
        };
        Conflict {
            kind,
            detail: format!(
                "{} {what} {} (calendar {} v{}) of {whom}",
                span(window),
                binding.name(),
                calendar.name(),
                calendar.version()
            ),
            with: None,
            ci,
        }
    };
    for kind in [WindowKind::Freeze, WindowKind::Maintenance] {
        for binding in calendars.global(kind) {
            if check(kind, binding) {
                out.push(conflict(kind, binding, "every CI".to_owned(), None));
            }
        }
    }
    let services = calendars.binds_services();
    for ci in asked {
        let supported: Vec<CiId> = if services {
            let mut s = schedule.graph.impact(ci).services().to_vec();
            s.insert(0, (*ci).clone());
            s
        } else {
            Vec::new()
        };
        for kind in [WindowKind::Freeze, WindowKind::Maintenance] {
            for (binding, via) in calendars.applying(kind, ci, &supported) {
                if !check(kind, binding) {
                    continue;
                }
                let whom = match via {
                    Via::Ci => format!("{ci}"),
                    Via::Service(service) if &service == *ci => format!("service {service}"),
                    Via::Service(service) => format!("service {service}, which {ci} supports"),
                };
                out.push(conflict(kind, binding, whom, Some((*ci).clone())));
            }
        }
    }
}

/// The CIs within the rule's hops of an asked CI, either way, not asked themselves: each
/// with its distance and the asked CI it was first reached from (a breadth-first search from
/// all asked CIs at once, in id order; each CI visited once).
fn related(schedule: &ChangeSchedule, asked: &BTreeSet<&CiId>) -> Vec<(CiId, (u32, CiId))> {
    let rule = &schedule.related;
    if rule.hops == 0 || asked.is_empty() {
        return Vec::new();
    }
    let graph = &schedule.graph;
    let default;
    let carries: &BTreeSet<Relationship> = match &rule.relationships {
        Some(set) => set,
        None => {
            default = graph.rules().propagation.keys().cloned().collect();
            &default
        }
    };
    let mut seen: HashMap<CiId, (u32, CiId)> = asked
        .iter()
        .map(|ci| ((*ci).clone(), (0, (*ci).clone())))
        .collect();
    let mut frontier: Vec<(CiId, CiId)> = asked
        .iter()
        .map(|ci| ((*ci).clone(), (*ci).clone()))
        .collect();
    let mut found = Vec::new();
    for hop in 1..=rule.hops {
        let mut next = Vec::new();
        for (ci, origin) in &frontier {
            let out = graph.relationships(ci);
            let inc = graph.relationships_to(ci);
            for (relationship, other) in out.into_iter().chain(inc) {
                if !carries.contains(&relationship) || seen.contains_key(&other) {
                    continue;
                }
                seen.insert(other.clone(), (hop, origin.clone()));
                found.push((other.clone(), (hop, origin.clone())));
                next.push((other, origin.clone()));
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    found
}
