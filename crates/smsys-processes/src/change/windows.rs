//! Freeze (blackout) and maintenance windows as calendar data, bound to CIs, to services or
//! to every CI.
//!
//! See [`ChangeCalendars`] for the rules and the TOML form.

mod definition;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use smsys_core::records::CiId;
use smsys_core::records::change::ChangeWindow;

use crate::{BusinessCalendar, CalendarError};

/// Whether a binding is a freeze or a maintenance window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WindowKind {
    /// A freeze (blackout): no change may overlap its open time.
    Freeze,
    /// A maintenance window: changes must lie inside its open time.
    Maintenance,
}

impl WindowKind {
    /// `freeze` or `maintenance`, as written in the TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Freeze => "freeze",
            WindowKind::Maintenance => "maintenance",
        }
    }
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a binding applies to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WindowScope {
    /// Every CI.
    pub global: bool,
    /// Service CIs: the binding applies to them and to every CI they depend on.
    pub services: BTreeSet<CiId>,
    /// CIs, each alone.
    pub cis: BTreeSet<CiId>,
}

/// How a binding came to apply to a CI.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// The binding names the CI.
    Ci,
    /// The binding names this service, which the CI is or supports.
    Service(CiId),
}

/// Why a set of change calendars was refused. Each names the binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeCalendarsError {
    /// The text is not a list of bindings.
    #[error("change calendars do not parse: {0}")]
    Parse(String),
    /// A binding with an empty name, or a name used twice for one kind.
    #[error("{kind} binding {name:?}: the name is empty or used twice")]
    Name {
        /// Freeze or maintenance.
        kind: WindowKind,
        /// The name.
        name: String,
    },
    /// A binding that names nothing, or is global and names CIs or services too.
    #[error("{kind} binding {name}: give either global = true or some services and cis")]
    Scope {
        /// Freeze or maintenance.
        kind: WindowKind,
        /// The binding.
        name: String,
    },
    /// `from` not before `until`.
    #[error("{kind} binding {name}: from must be before until")]
    Period {
        /// Freeze or maintenance.
        kind: WindowKind,
        /// The binding.
        name: String,
    },
    /// Neither or both of `calendar` and `calendar_file`, or a file without a directory to
    /// read it from ([`ChangeCalendars::from_toml`] reads no file).
    #[error("{kind} binding {name}: {reason}")]
    Source {
        /// Freeze or maintenance.
        kind: WindowKind,
        /// The binding.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A calendar file that could not be read.
    #[error("{kind} binding {name}: cannot read calendar file {}: {reason}", path.display())]
    File {
        /// Freeze or maintenance.
        kind: WindowKind,
        /// The binding.
        name: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// An invalid calendar.
    #[error("{kind} binding {name}: {source}")]
    Calendar {
        /// Freeze or maintenance.
        kind: WindowKind,
        /// The binding.
        name: String,
        /// Why the calendar was refused.
        source: CalendarError,
    },
}

/// A calendar bound to CIs or services as a freeze or maintenance window, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowBinding {
    name: String,
    scope: WindowScope,
    calendar: BusinessCalendar,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl WindowBinding {
    /// A binding named `name` of `calendar` to `scope`, over all time. `None` when the scope
    /// names nothing, or is global and names CIs or services too.
    pub fn new(
        name: impl Into<String>,
        scope: WindowScope,
        calendar: BusinessCalendar,
    ) -> Option<Self> {
        let named = !scope.services.is_empty() || !scope.cis.is_empty();
        (scope.global != named).then(|| Self {
            name: name.into(),
            scope,
            calendar,
            from: None,
            until: None,
        })
    }

    /// Limited to `[from, until)` (either end open with `None`); `None` when `from` is not
    /// before `until`.
    pub fn during(
        mut self,
        from: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Option<Self> {
        if let (Some(f), Some(u)) = (from, until)
            && f >= u
        {
            return None;
        }
        self.from = from;
        self.until = until;
        Some(self)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it applies to.
    pub fn scope(&self) -> &WindowScope {
        &self.scope
    }

    /// Its calendar: the open time is the window.
    pub fn calendar(&self) -> &BusinessCalendar {
        &self.calendar
    }

    /// The period it is limited to.
    pub fn period(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (self.from, self.until)
    }

    /// Whether `window` shares a second of open time, within the period (a freeze's test).
    pub fn overlaps(&self, window: &ChangeWindow) -> bool {
        let start = self.from.map_or(window.start, |f| f.max(window.start));
        let end = self.until.map_or(window.end, |u| u.min(window.end));
        start < end && self.calendar.business_seconds_between(start, end) > 0
    }

    /// Whether `window` lies wholly inside open time, within the period (a maintenance
    /// window's test). Whole seconds: sub-second parts are ignored, as by the calendar.
    pub fn contains(&self, window: &ChangeWindow) -> bool {
        if self.from.is_some_and(|f| window.start < f) || self.until.is_some_and(|u| window.end > u)
        {
            return false;
        }
        let length = window.end.timestamp() - window.start.timestamp();
        length <= 0
            || self
                .calendar
                .business_seconds_between(window.start, window.end)
                == length
    }
}

/// Freeze and maintenance windows by CI, service and globally.
///
/// Each window is a [`BusinessCalendar`] whose *open time* is the window, optionally limited
/// to a period `[from, until)`:
/// - a **maintenance** binding's open time is when its CIs may be changed: a change window
///   fits when it lies wholly inside it (`business_seconds_between(start, end) == end -
///   start`, and inside the period). Every maintenance binding that applies to a CI must hold
///   (a CI under a service's maintenance window and its own is changed only when both allow
///   it); a CI no maintenance binding applies to may be changed at any time.
/// - a **freeze** binding's open time is the freeze: a change window that shares a second of
///   open time (within the period) with it is in the freeze.
///
/// A binding applies to a CI when it is global (every CI), when it names the CI in `cis`, or
/// when it names in `services` a service the CI supports: the CI itself, or a service in the
/// CI's impact on the CMDB graph (the CIs a service depends on, transitively). The scheduler
/// ([`ChangeSchedule`](super::ChangeSchedule)) asks the graph; this type holds the data.
///
/// The TOML form: `[[freeze]]` and `[[maintenance]]` tables, each with a `name` (unique per
/// kind), a scope (`global = true`, or `services` and/or `cis`), an optional period (`from`,
/// `until`: RFC 3339 strings) and its calendar, inline (`calendar = { ... }`, a
/// [`CalendarDefinition`](crate::CalendarDefinition)) or in a file (`calendar_file = "calendars/nights.toml"`, relative
/// to the bindings' file, read by [`ChangeCalendars::load`] only). A calendar needs weekly
/// hours or `always_open`; a dated freeze (a year-end freeze) is an `always_open` calendar
/// limited by `from`/`until`.
///
/// ```
/// use smsys_processes::change::{ChangeCalendars, WindowKind};
///
/// let calendars = ChangeCalendars::from_toml(r#"
///     [[freeze]]
///     name = "year-end"
///     global = true
///     from = "2026-12-20T00:00:00Z"
///     until = "2027-01-04T00:00:00Z"
///     calendar = { name = "year-end", version = 1, time_zone = "UTC", always_open = true }
///
///     [[maintenance]]
///     name = "payroll nights"
///     services = ["payroll"]
///     cis = ["db-7"]
///     calendar = { name = "nights", version = 1, time_zone = "Europe/Paris", weekly = [
///         { day = "sat", intervals = [{ start = "22:00", end = "06:00" }] },
///     ] }
/// "#)?;
/// assert_eq!(calendars.bindings(WindowKind::Freeze).len(), 1);
/// assert_eq!(calendars.bindings(WindowKind::Maintenance)[0].name(), "payroll nights");
/// # Ok::<(), smsys_processes::change::ChangeCalendarsError>(())
/// ```
///
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeCalendars {
    freezes: Vec<WindowBinding>,
    maintenance: Vec<WindowBinding>,
    /// Per kind: binding indices by CI or service named, and the global ones.
    index: [Index; 2],
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Index {
    global: Vec<usize>,
    by_ci: HashMap<CiId, Vec<usize>>,
    by_service: HashMap<CiId, Vec<usize>>,
}

impl ChangeCalendars {
    /// No window: nothing is frozen, every CI may be changed at any time.
    pub fn new() -> Self {
        Self::default()
    }

    /// With `binding` added as a window of `kind`.
    pub fn with(mut self, kind: WindowKind, binding: WindowBinding) -> Self {
        let list = match kind {
            WindowKind::Freeze => &mut self.freezes,
            WindowKind::Maintenance => &mut self.maintenance,
        };
        let at = list.len();
        let index = &mut self.index[slot(kind)];
        if binding.scope.global {
            index.global.push(at);
        }
        for ci in &binding.scope.cis {
            index.by_ci.entry(ci.clone()).or_default().push(at);
        }
        for service in &binding.scope.services {
            index
                .by_service
                .entry(service.clone())
                .or_default()
                .push(at);
        }
        list.push(binding);
        self
    }

    /// Reads the TOML list of bindings (see [`ChangeCalendars`]) with inline calendars;
    /// a `calendar_file` is refused (use [`ChangeCalendars::load`]).
    pub fn from_toml(text: &str) -> Result<Self, ChangeCalendarsError> {
        definition::parse(text, None)
    }

    /// Reads the TOML file at `path`; each `calendar_file` is read relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ChangeCalendarsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ChangeCalendarsError::Parse(format!("cannot read {}: {e}", path.display()))
        })?;
        definition::parse(&text, Some(path.parent().unwrap_or_else(|| Path::new("."))))
    }

    /// The bindings of `kind`, in the order added.
    pub fn bindings(&self, kind: WindowKind) -> &[WindowBinding] {
        match kind {
            WindowKind::Freeze => &self.freezes,
            WindowKind::Maintenance => &self.maintenance,
        }
    }

    /// Whether some binding names a service (the scheduler then asks the graph which
    /// services each CI supports).
    pub fn binds_services(&self) -> bool {
        self.index.iter().any(|i| !i.by_service.is_empty())
    }

    /// The global bindings of `kind` (every CI, and a change naming no CI too).
    pub fn global(&self, kind: WindowKind) -> Vec<&WindowBinding> {
        let list = self.bindings(kind);
        self.index[slot(kind)]
            .global
            .iter()
            .filter_map(|at| list.get(*at))
            .collect()
    }

    /// The bindings of `kind` that name `ci` or one of `services` (the service CIs it is or
    /// supports), each once: the first way found, the CI, then the services in order. The
    /// global ones are not listed ([`ChangeCalendars::global`]).
    pub fn applying<'a>(
        &'a self,
        kind: WindowKind,
        ci: &CiId,
        services: &[CiId],
    ) -> Vec<(&'a WindowBinding, Via)> {
        let index = &self.index[slot(kind)];
        let list = self.bindings(kind);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut push = |at: usize, via: Via| {
            if seen.insert(at)
                && let Some(binding) = list.get(at)
            {
                out.push((binding, via));
            }
        };
        for at in index.by_ci.get(ci).into_iter().flatten() {
            push(*at, Via::Ci);
        }
        for service in services {
            for at in index.by_service.get(service).into_iter().flatten() {
                push(*at, Via::Service(service.clone()));
            }
        }
        out
    }
}

fn slot(kind: WindowKind) -> usize {
    match kind {
        WindowKind::Freeze => 0,
        WindowKind::Maintenance => 1,
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "tests stop at the first broken expectation"
    )]

    use chrono::TimeZone;

    use super::*;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).single().unwrap()
    }

    fn window(from: DateTime<Utc>, to: DateTime<Utc>) -> ChangeWindow {
        ChangeWindow {
            start: from,
            end: to,
            time_zone: "UTC".into(),
        }
    }

    const NIGHTS: &str = r#"
        [[maintenance]]
        name = "nights"
        cis = ["db-1"]
        calendar = { name = "nights", version = 1, time_zone = "UTC", always_open = false, weekly = [
            { day = "mon", intervals = [{ start = "22:00", end = "04:00" }] },
        ] }

        [[freeze]]
        name = "week 46"
        global = true
        from = "2026-11-09T00:00:00Z"
        until = "2026-11-16T00:00:00Z"
        calendar = { name = "always", version = 1, time_zone = "UTC", always_open = true }
    "#;

    #[test]
    fn maintenance_holds_only_windows_wholly_inside_open_time() {
        let calendars = ChangeCalendars::from_toml(NIGHTS).unwrap();
        let nights = &calendars.bindings(WindowKind::Maintenance)[0];
        // Monday 2026-11-02 22:00 to Tuesday 04:00.
        assert!(nights.contains(&window(at(2, 22), at(3, 4))));
        assert!(nights.contains(&window(at(2, 23), at(3, 1))));
        assert!(!nights.contains(&window(at(2, 21), at(2, 23))));
        assert!(!nights.contains(&window(at(3, 3), at(3, 5))));
    }

    #[test]
    fn freezes_hold_their_period_and_touching_windows_do_not_overlap() {
        let calendars = ChangeCalendars::from_toml(NIGHTS).unwrap();
        let freeze = &calendars.bindings(WindowKind::Freeze)[0];
        assert!(freeze.overlaps(&window(at(8, 23), at(9, 1))));
        assert!(!freeze.overlaps(&window(at(8, 22), at(9, 0))));
        assert!(!freeze.overlaps(&window(at(16, 0), at(16, 2))));
        assert!(freeze.overlaps(&window(at(1, 0), at(30, 0))));
    }

    #[test]
    fn bindings_apply_globally_by_ci_and_by_service() {
        let always = BusinessCalendar::always_open();
        let ci = |s: &str| s.parse::<CiId>().unwrap();
        let scope = WindowScope {
            services: [ci("payroll")].into(),
            ..WindowScope::default()
        };
        let calendars = ChangeCalendars::from_toml(NIGHTS).unwrap().with(
            WindowKind::Freeze,
            WindowBinding::new("payroll close", scope, always).unwrap(),
        );
        let freezes = calendars.applying(WindowKind::Freeze, &ci("db-1"), &[ci("payroll")]);
        let vias: Vec<_> = freezes.iter().map(|(b, v)| (b.name(), v.clone())).collect();
        assert_eq!(vias, [("payroll close", Via::Service(ci("payroll")))]);
        let global: Vec<_> = calendars
            .global(WindowKind::Freeze)
            .iter()
            .map(|b| b.name())
            .collect();
        assert_eq!(global, ["week 46"]);
        assert!(calendars.binds_services());
        let maintenance = calendars.applying(WindowKind::Maintenance, &ci("db-2"), &[]);
        assert!(maintenance.is_empty());
    }
}
