//! Change calendars as written (TOML): the bindings, their scope, period and calendar
//! (inline or in a file), validated into [`ChangeCalendars`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use smsys_core::records::CiId;

use super::{ChangeCalendars, ChangeCalendarsError, WindowBinding, WindowKind, WindowScope};
use crate::{BusinessCalendar, CalendarDefinition, CalendarError};

pub(super) fn parse(
    text: &str,
    base: Option<&Path>,
) -> Result<ChangeCalendars, ChangeCalendarsError> {
    let file: BindingsFile =
        toml::from_str(text).map_err(|e| ChangeCalendarsError::Parse(e.to_string()))?;
    let mut out = ChangeCalendars::new();
    for (kind, written) in file
        .freeze
        .into_iter()
        .map(|b| (WindowKind::Freeze, b))
        .chain(
            file.maintenance
                .into_iter()
                .map(|b| (WindowKind::Maintenance, b)),
        )
    {
        let name = written.name.clone();
        let taken = out.bindings(kind).iter().any(|b| b.name == name);
        if name.is_empty() || taken {
            return Err(ChangeCalendarsError::Name { kind, name });
        }
        let binding = written.validate(kind, base)?;
        out = out.with(kind, binding);
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingsFile {
    #[serde(default)]
    freeze: Vec<WrittenBinding>,
    #[serde(default)]
    maintenance: Vec<WrittenBinding>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenBinding {
    name: String,
    #[serde(default)]
    global: bool,
    #[serde(default)]
    services: BTreeSet<CiId>,
    #[serde(default)]
    cis: BTreeSet<CiId>,
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    until: Option<DateTime<Utc>>,
    #[serde(default)]
    calendar: Option<CalendarDefinition>,
    #[serde(default)]
    calendar_file: Option<PathBuf>,
}

impl WrittenBinding {
    fn validate(
        self,
        kind: WindowKind,
        base: Option<&Path>,
    ) -> Result<WindowBinding, ChangeCalendarsError> {
        let name = self.name;
        let source = |reason: &str| ChangeCalendarsError::Source {
            kind,
            name: name.clone(),
            reason: reason.to_owned(),
        };
        let definition = match (self.calendar, self.calendar_file, base) {
            (Some(definition), None, _) => definition,
            (None, Some(file), Some(base)) => {
                let path = base.join(file);
                let text =
                    std::fs::read_to_string(&path).map_err(|e| ChangeCalendarsError::File {
                        kind,
                        name: name.clone(),
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                toml::from_str(&text).map_err(|e| ChangeCalendarsError::Calendar {
                    kind,
                    name: name.clone(),
                    source: CalendarError::Parse(format!("{}: {e}", path.display())),
                })?
            }
            (None, Some(_), None) => {
                return Err(source(
                    "calendar_file needs ChangeCalendars::load (from_toml reads no file)",
                ));
            }
            (None, None, _) | (Some(_), Some(_), _) => {
                return Err(source("give exactly one of calendar and calendar_file"));
            }
        };
        let calendar =
            BusinessCalendar::new(definition).map_err(|e| ChangeCalendarsError::Calendar {
                kind,
                name: name.clone(),
                source: e,
            })?;
        let scope = WindowScope {
            global: self.global,
            services: self.services,
            cis: self.cis,
        };
        WindowBinding::new(name.clone(), scope, calendar)
            .ok_or_else(|| ChangeCalendarsError::Scope {
                kind,
                name: name.clone(),
            })?
            .during(self.from, self.until)
            .ok_or(ChangeCalendarsError::Period { kind, name })
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "tests stop at the first broken expectation"
    )]

    use super::*;

    #[test]
    fn calendar_files_are_read_beside_the_bindings() {
        let dir = std::env::temp_dir().join(format!("smsys-windows-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("calendars")).unwrap();
        std::fs::write(
            dir.join("calendars/always.toml"),
            "name = \"always\"\nversion = 3\ntime_zone = \"UTC\"\nalways_open = true\n",
        )
        .unwrap();
        let bindings =
            "[[freeze]]\nname = \"f\"\nglobal = true\ncalendar_file = \"calendars/always.toml\"\n";
        std::fs::write(dir.join("windows.toml"), bindings).unwrap();
        std::fs::write(
            dir.join("missing.toml"),
            bindings.replace("always.toml", "nope.toml"),
        )
        .unwrap();
        let loaded = ChangeCalendars::load(&dir.join("windows.toml"));
        let missing = ChangeCalendars::load(&dir.join("missing.toml"));
        std::fs::remove_dir_all(&dir).unwrap();
        let loaded = loaded.unwrap();
        assert_eq!(
            loaded.bindings(WindowKind::Freeze)[0].calendar().version(),
            3
        );
        assert!(matches!(missing, Err(ChangeCalendarsError::File { .. })));
    }

    #[test]
    fn refusals_name_the_binding() {
        let scope_less = r#"
            [[freeze]]
            name = "x"
            calendar = { name = "a", version = 1, time_zone = "UTC", always_open = true }
        "#;
        assert!(matches!(
            ChangeCalendars::from_toml(scope_less),
            Err(ChangeCalendarsError::Scope { .. })
        ));
        let file = r#"
            [[freeze]]
            name = "x"
            global = true
            calendar_file = "x.toml"
        "#;
        let err = ChangeCalendars::from_toml(file).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("freeze binding x: calendar_file"),
            "{err}"
        );
        let backwards = r#"
            [[freeze]]
            name = "x"
            global = true
            from = "2026-11-09T00:00:00Z"
            until = "2026-11-09T00:00:00Z"
            calendar = { name = "a", version = 1, time_zone = "UTC", always_open = true }
        "#;
        assert!(matches!(
            ChangeCalendars::from_toml(backwards),
            Err(ChangeCalendarsError::Period { .. })
        ));
        let bad_zone = r#"
            [[maintenance]]
            name = "m"
            cis = ["db-1"]
            calendar = { name = "a", version = 1, time_zone = "Mars/Olympus", always_open = true }
        "#;
        let err = ChangeCalendars::from_toml(bad_zone).unwrap_err();
        assert!(err.to_string().contains("maintenance binding m"), "{err}");
    }
}
