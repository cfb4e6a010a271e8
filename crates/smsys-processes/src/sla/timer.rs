//! Timers derived from a record's history: running segments, then pure functions of the
//! segments, the calendar and `now`.
//!
//! # Order of simultaneous effects
//!
//! Events are applied in stream order. Within one event the effects on timers apply in this
//! order: (1) cancel conditions, (2) stop conditions, (3) a priority change, (4) a pause or
//! resume from the phase change, (5) start conditions and reopen policies. So an event that both
//! stops one cycle and starts another (a reopen under `NewCycle`) first ends the old cycle.
//! A threshold reached at the very instant of an event is reached before it: a stop, pause,
//! cancel or change of target at the due instant comes too late to prevent the breach.
//!
//! # Thresholds are reached on the timer as it stood then
//!
//! Pauses, resumes and stops only shape the future: the running periods before them stay as
//! they were. A change of target (a priority change) or a restart would rewrite the past if
//! thresholds were read off the timer as it stands now: a P2 incident breached at 09:04 and
//! downgraded to P4 at 09:05 would look, to a check at 09:30, as if its thresholds had been
//! reached later or never. So a timer keeps the basis of each earlier stretch (target and
//! running periods up to the change), and each threshold is reached at the first instant at
//! which the timer, as it stood at that instant, reached it ([`Timer::reached_at`]). A check
//! that runs on time, late, every minute or after a restart derives the same instants.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use smsys_core::records::{CommonEvent, DefinitionRef, Phase, Priority, RecordEvent, RecordType};

use crate::calendar::BusinessCalendar;

use super::definition::{BREACH_BP, DeadlineKind, OnPriorityChange, OnReopen, Sla, SlaRegistry};

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerEnd {
    /// A stop condition completed it.
    Stopped,
    /// A cancel condition, or a priority change under `CancelAndRestart`, cancelled it.
    Cancelled,
}

/// What thresholds were reached on before a change of target or a restart at `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Earlier {
    until: DateTime<Utc>,
    target: i64,
    target_since: DateTime<Utc>,
    started_at: DateTime<Utc>,
    segments: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
}

impl Earlier {
    /// The instant `bp` was reached in this stretch (at or before its end), if it was.
    fn reached_at(&self, cal: &BusinessCalendar, bp: u32) -> Option<DateTime<Utc>> {
        counted_at(
            cal,
            self.started_at,
            &self.segments,
            None,
            threshold_seconds(self.target, bp),
        )
        .map(|at| at.max(self.target_since))
        .filter(|at| *at <= self.until)
    }
}

/// Business seconds of `target` that make threshold `bp`, rounded up: a threshold is reached
/// once at least that share has elapsed.
fn threshold_seconds(target: i64, bp: u32) -> i64 {
    (target * i64::from(bp) + 9_999) / 10_000
}

/// The instant at which `seconds` of business time are counted on `segments` (an open last
/// segment runs to `end`, or on without end), if they get there.
fn counted_at(
    cal: &BusinessCalendar,
    started_at: DateTime<Utc>,
    segments: &[(DateTime<Utc>, Option<DateTime<Utc>>)],
    end: Option<DateTime<Utc>>,
    seconds: i64,
) -> Option<DateTime<Utc>> {
    if seconds <= 0 {
        return Some(started_at);
    }
    let mut counted = 0;
    for (from, to) in segments {
        let Some(to) = to.or(end) else {
            return Some(cal.deadline(*from, seconds - counted));
        };
        let here = cal.business_seconds_between(*from, to);
        if counted + here >= seconds {
            return Some(cal.deadline(*from, seconds - counted));
        }
        counted += here;
    }
    None
}

/// One cycle of one timer of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    timer: String,
    sla: DefinitionRef,
    cycle: u32,
    deadline: DeadlineKind,
    priority: Option<Priority>,
    target: Option<i64>,
    started_at: DateTime<Utc>,
    /// Since when the current target applies: no threshold of it is reached earlier.
    target_since: DateTime<Utc>,
    /// Whether the cycle was stopped by the record entering a resolved phase (only such a
    /// cycle is subject to the reopen policy).
    stopped_by_resolution: bool,
    /// Running periods; the last may be open.
    segments: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    ended: Option<(DateTime<Utc>, TimerEnd)>,
    thresholds: Vec<u32>,
    /// Thresholds (basis points) already recorded in the history.
    recorded: BTreeSet<u32>,
    /// The instant each recorded threshold event gives.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    recorded_at: BTreeMap<u32, DateTime<Utc>>,
    /// The bases of the stretches before each change of target or restart, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    earlier: Vec<Earlier>,
}

impl Timer {
    fn start(
        sla: &Sla,
        cycle: u32,
        at: DateTime<Utc>,
        priority: Option<Priority>,
        paused: bool,
    ) -> Self {
        let fixed = sla.definition().deadline == DeadlineKind::Fixed;
        Self {
            timer: sla.timer().to_owned(),
            sla: sla.reference(),
            cycle,
            deadline: sla.definition().deadline,
            priority,
            target: sla.target_seconds(priority),
            started_at: at,
            target_since: at,
            stopped_by_resolution: false,
            segments: if paused && !fixed {
                Vec::new()
            } else {
                vec![(at, None)]
            },
            ended: None,
            thresholds: sla.thresholds().to_vec(),
            recorded: BTreeSet::new(),
            recorded_at: BTreeMap::new(),
            earlier: Vec::new(),
        }
    }

    /// The timer's name.
    pub fn timer(&self) -> &str {
        &self.timer
    }
    /// The SLA version it bound to.
    pub fn sla(&self) -> &DefinitionRef {
        &self.sla
    }
    /// The cycle (1 for the first).
    pub fn cycle(&self) -> u32 {
        self.cycle
    }
    /// The priority the target is taken from.
    pub fn priority(&self) -> Option<Priority> {
        self.priority
    }
    /// The target in business seconds (`None` until the record has a priority with a target).
    pub fn target(&self) -> Option<i64> {
        self.target
    }
    /// When the cycle started.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }
    /// How and when it ended.
    pub fn ended(&self) -> Option<(DateTime<Utc>, TimerEnd)> {
        self.ended
    }
    /// Whether the clock runs now.
    pub fn is_running(&self) -> bool {
        self.ended.is_none() && self.segments.last().is_some_and(|s| s.1.is_none())
    }
    /// Whether it is paused.
    pub fn is_paused(&self) -> bool {
        self.ended.is_none() && !self.is_running()
    }
    /// Running periods (the last may be open).
    pub fn segments(&self) -> &[(DateTime<Utc>, Option<DateTime<Utc>>)] {
        &self.segments
    }
    /// Thresholds already recorded in the history, in basis points.
    pub fn recorded(&self) -> &BTreeSet<u32> {
        &self.recorded
    }
    /// The instant the recorded event of threshold `bp` gives (the instant it was reached when
    /// it was recorded; a command committed later may have changed the history since).
    pub fn recorded_at(&self, bp: u32) -> Option<DateTime<Utc>> {
        self.recorded_at.get(&bp).copied()
    }
    /// Thresholds of the definition (warnings and the breach), in basis points.
    pub fn thresholds(&self) -> &[u32] {
        &self.thresholds
    }

    /// Takes the target of `priority` from `at` on, keeping the elapsed time. The stretch
    /// before `at` keeps its own basis: what it reached stays reached when it was.
    fn retarget(&mut self, sla: &Sla, priority: Priority, at: DateTime<Utc>) {
        if let Some(target) = self.target {
            self.earlier.push(Earlier {
                until: at,
                target,
                target_since: self.target_since,
                started_at: self.started_at,
                segments: self.segments.clone(),
            });
        }
        self.priority = Some(priority);
        self.target = sla.target_seconds(Some(priority));
        self.target_since = at;
    }

    fn close(&mut self, at: DateTime<Utc>) {
        if let Some(last) = self.segments.last_mut()
            && last.1.is_none()
        {
            last.1 = Some(at.max(last.0));
        }
    }

    fn open(&mut self, at: DateTime<Utc>) {
        if !self.is_running() {
            self.segments.push((at, None));
        }
    }

    fn end(&mut self, at: DateTime<Utc>, how: TimerEnd) {
        self.close(at);
        self.ended = Some((at, how));
    }

    /// Business seconds counted by `now`.
    pub fn elapsed(&self, cal: &BusinessCalendar, now: DateTime<Utc>) -> i64 {
        let stop = self.ended.map_or(now, |(at, _)| at.min(now));
        self.segments
            .iter()
            .map(|(from, to)| cal.business_seconds_between(*from, to.unwrap_or(stop).min(stop)))
            .sum()
    }

    /// Elapsed business seconds counting paused time too (from start to end or `now`).
    pub fn elapsed_with_pauses(&self, cal: &BusinessCalendar, now: DateTime<Utc>) -> i64 {
        let stop = self.ended.map_or(now, |(at, _)| at.min(now));
        cal.business_seconds_between(self.started_at, stop)
    }

    /// Elapsed share of the target in basis points (floor: 99.995 % is 9999, not a breach).
    pub fn percent_bp(&self, cal: &BusinessCalendar, now: DateTime<Utc>) -> Option<u64> {
        let target = self.target?;
        let elapsed = u64::try_from(self.elapsed(cal, now)).unwrap_or(0);
        Some(elapsed.saturating_mul(10_000) / target.unsigned_abs().max(1))
    }

    /// Business seconds left to the target (negative once overrun).
    pub fn remaining(&self, cal: &BusinessCalendar, now: DateTime<Utc>) -> Option<i64> {
        Some(self.target? - self.elapsed(cal, now))
    }

    /// Business seconds past the target (0 while within it).
    pub fn overrun(&self, cal: &BusinessCalendar, now: DateTime<Utc>) -> i64 {
        self.remaining(cal, now).map_or(0, |r| (-r).max(0))
    }

    /// The instant at which `seconds` of business time are counted, if the history (as it
    /// stands) gets there: `None` while paused short of it, or when it ended short of it.
    pub fn instant_at(&self, cal: &BusinessCalendar, seconds: i64) -> Option<DateTime<Utc>> {
        counted_at(
            cal,
            self.started_at,
            &self.segments,
            self.ended.map(|(at, _)| at),
            seconds,
        )
    }

    /// The instant at which a threshold (basis points of the target) is reached under the
    /// current target (the one in force since the last priority change). What a stretch under
    /// an earlier target reached is [`Timer::reached_at`].
    pub fn threshold_instant(&self, cal: &BusinessCalendar, bp: u32) -> Option<DateTime<Utc>> {
        let target = self.target?;
        // A lowered target is not reached before it applies: a change to a shorter target that
        // is already overrun is reached at the change, not back-dated.
        self.instant_at(cal, threshold_seconds(target, bp))
            .map(|at| at.max(self.target_since))
    }

    /// The instant the history first reached threshold `bp`, each instant judged on the timer
    /// as it stood then: under the target and running periods in force before a later priority
    /// change or restart, then under the current ones, never after the cycle ended. `None`
    /// while the history does not get there. This is the instant a threshold event records.
    pub fn reached_at(&self, cal: &BusinessCalendar, bp: u32) -> Option<DateTime<Utc>> {
        self.earlier
            .iter()
            .find_map(|earlier| earlier.reached_at(cal, bp))
            .or_else(|| {
                self.threshold_instant(cal, bp)
                    .filter(|at| self.ended.is_none_or(|(end, _)| *at <= end))
            })
    }

    /// The due instant (100 % of the target).
    pub fn due(&self, cal: &BusinessCalendar) -> Option<DateTime<Utc>> {
        self.threshold_instant(cal, BREACH_BP)
    }

    /// Thresholds reached by `now` and not yet recorded, with the instant each was reached
    /// ([`Timer::reached_at`]).
    pub fn unrecorded_reached(
        &self,
        cal: &BusinessCalendar,
        now: DateTime<Utc>,
    ) -> Vec<(u32, DateTime<Utc>)> {
        self.thresholds
            .iter()
            .filter(|bp| !self.recorded.contains(bp))
            .filter_map(|&bp| self.reached_at(cal, bp).map(|at| (bp, at)))
            .filter(|(_, at)| *at <= now)
            .collect()
    }

    /// The earliest instant at which a threshold not yet recorded is reached, as the history
    /// stands: what a scheduler indexes.
    pub fn next_due(&self, cal: &BusinessCalendar) -> Option<DateTime<Utc>> {
        self.thresholds
            .iter()
            .filter(|bp| !self.recorded.contains(bp))
            .filter_map(|&bp| self.reached_at(cal, bp))
            .min()
    }
}

/// Which definitions timers bind to.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'a> {
    /// The version of each definition in effect when a cycle starts (the exact recompute).
    InEffect(&'a SlaRegistry),
    /// Only this definition, whatever its dates: a what-if under another version.
    Only(&'a Sla),
}

impl Binding<'_> {
    fn candidates(&self, at: DateTime<Utc>) -> Vec<&Sla> {
        match self {
            Binding::InEffect(registry) => registry.in_effect(at).collect(),
            Binding::Only(sla) => vec![*sla],
        }
    }

    fn get(&self, reference: &DefinitionRef) -> Option<&Sla> {
        match self {
            Binding::InEffect(registry) => registry.get(reference),
            Binding::Only(sla) => (sla.reference() == *reference).then_some(*sla),
        }
    }

    /// Whether `sla` applies to the record (under the registry's selection, if any).
    fn applies(
        &self,
        sla: &Sla,
        record_type: &RecordType,
        service: &str,
        at: DateTime<Utc>,
    ) -> bool {
        match self {
            Binding::InEffect(registry) => registry.applies(sla, record_type, service, at),
            Binding::Only(_) => sla.applies_to(record_type, service),
        }
    }
}

/// Derives every timer cycle of one record from its history: `(instant, event)` in stream order.
pub fn derive_timers(
    record_type: &RecordType,
    history: &[(DateTime<Utc>, CommonEvent)],
    binding: Binding<'_>,
) -> Vec<Timer> {
    let mut timers: Vec<Timer> = Vec::new();
    let mut phase: Option<Phase> = None;
    let mut priority: Option<Priority> = None;
    let mut service = String::new();
    for (at, event) in history {
        let at = *at;
        let before = phase;
        let mut after = before;
        if let CommonEvent::Record(RecordEvent::Transitioned { phase, .. }) = event {
            after = Some(*phase);
        }
        if let CommonEvent::Logged(logged) = event {
            after = Some(Phase::New);
            service = logged.service.as_str().to_owned();
        }
        if let CommonEvent::Record(RecordEvent::SlaThresholdReached {
            timer,
            cycle,
            threshold_bp,
            at: reached,
            ..
        }) = event
        {
            mark(&mut timers, timer, *cycle, *threshold_bp, *reached);
        }
        if let CommonEvent::Record(RecordEvent::SlaBreached {
            timer,
            cycle,
            at: reached,
            ..
        }) = event
        {
            mark(&mut timers, timer, *cycle, BREACH_BP, *reached);
        }
        let mut new_priority = None;
        if let CommonEvent::Record(
            RecordEvent::Prioritised { priority, .. }
            | RecordEvent::PriorityOverridden { priority, .. },
        ) = event
        {
            new_priority = Some(*priority);
        }
        let mut restarts: Vec<DefinitionRef> = Vec::new();
        for t in timers.iter_mut().filter(|t| t.ended.is_none()) {
            let Some(sla) = binding.get(&t.sla) else {
                continue;
            };
            let def = sla.definition();
            // (1) cancel, (2) stop
            if def.cancel.iter().any(|c| c.matches(event, before)) {
                t.end(at, TimerEnd::Cancelled);
                continue;
            }
            if def.stop.iter().any(|c| c.matches(event, before)) {
                t.end(at, TimerEnd::Stopped);
                t.stopped_by_resolution = after == Some(Phase::Resolved) && before != after;
                continue;
            }
            // (3) a priority change
            if let Some(p) = new_priority.filter(|p| Some(*p) != t.priority) {
                if t.priority.is_none() || t.target.is_none() {
                    t.retarget(sla, p, at);
                } else {
                    match def.on_priority_change {
                        OnPriorityChange::KeepElapsed => t.retarget(sla, p, at),
                        OnPriorityChange::CancelAndRestart => {
                            t.end(at, TimerEnd::Cancelled);
                            restarts.push(t.sla.clone());
                            continue;
                        }
                        OnPriorityChange::RestartFromNow => {
                            // Same cycle (thresholds already reached stay reached, when they
                            // were), counted from zero again from the change.
                            t.retarget(sla, p, at);
                            t.started_at = at;
                            let running = t.is_running() || t.deadline == DeadlineKind::Fixed;
                            t.segments = if running {
                                vec![(at, None)]
                            } else {
                                Vec::new()
                            };
                        }
                    }
                }
            }
            // (4) pause or resume
            if t.deadline == DeadlineKind::Pausable
                && let (Some(before), Some(after)) = (before, after)
            {
                match (sla.pauses_in(before), sla.pauses_in(after)) {
                    (false, true) => t.close(at),
                    (true, false) => t.open(at),
                    (true, true) | (false, false) => {}
                }
            }
        }
        if let Some(p) = new_priority {
            priority = Some(p);
        }
        let paused_now = |sla: &Sla| after.is_some_and(|p| sla.pauses_in(p));
        for reference in restarts {
            if let Some(sla) = binding.get(&reference) {
                let cycle = next_cycle(&timers, sla.timer());
                timers.push(Timer::start(sla, cycle, at, priority, paused_now(sla)));
            }
        }
        // (5) reopen policies, then start conditions
        if Sla::is_reopen(before, after) {
            let names: BTreeSet<String> = timers.iter().map(|t| t.timer.clone()).collect();
            for name in names {
                let Some(last) = timers.iter().rposition(|t| t.timer == name) else {
                    continue;
                };
                if timers[last].ended.map(|(_, how)| how) != Some(TimerEnd::Stopped)
                    || !timers[last].stopped_by_resolution
                {
                    continue;
                }
                let Some(sla) = binding.get(&timers[last].sla) else {
                    continue;
                };
                match sla.definition().on_reopen {
                    OnReopen::Ignore => {}
                    OnReopen::Resume => {
                        let t = &mut timers[last];
                        t.ended = None;
                        t.stopped_by_resolution = false;
                        // A priority changed while the cycle was stopped applies from now.
                        if let Some(p) = priority.filter(|p| Some(*p) != t.priority) {
                            t.retarget(sla, p, at);
                        }
                        if t.deadline == DeadlineKind::Fixed || !paused_now(sla) {
                            t.segments.push((at, None));
                        }
                    }
                    OnReopen::NewCycle => {
                        let cycle = next_cycle(&timers, &name);
                        timers.push(Timer::start(sla, cycle, at, priority, paused_now(sla)));
                    }
                }
            }
        }
        for sla in binding.candidates(at) {
            let active = timers
                .iter()
                .any(|t| t.timer == sla.timer() && t.ended.is_none());
            let starts = sla
                .definition()
                .start
                .iter()
                .any(|c| c.matches(event, before));
            if starts && !active && binding.applies(sla, record_type, &service, at) {
                let cycle = next_cycle(&timers, sla.timer());
                timers.push(Timer::start(sla, cycle, at, priority, paused_now(sla)));
            }
        }
        phase = after;
    }
    timers
}

fn next_cycle(timers: &[Timer], name: &str) -> u32 {
    timers
        .iter()
        .filter(|t| t.timer == name)
        .map(|t| t.cycle)
        .max()
        .unwrap_or(0)
        + 1
}

fn mark(timers: &mut [Timer], name: &str, cycle: u32, bp: u32, at: DateTime<Utc>) {
    if let Some(t) = timers
        .iter_mut()
        .find(|t| t.timer == name && t.cycle == cycle)
    {
        t.recorded.insert(bp);
        t.recorded_at.entry(bp).or_insert(at);
    }
}
