//! Standard change templates (ISO/IEC 20000-1 8.5.1): pre-authorised, low-risk changes
//! described once, versioned, and pinned by each change made from them.
//!
//! ```
//! use smsys_processes::change::{ChangeTemplate, ChangeTemplates};
//!
//! let templates = ChangeTemplates::from_toml(r#"
//! [[templates]]
//! name = "restart-web"
//! version = 2
//! summary = "Restart a web server"
//! implementation = "drain, restart, undrain"
//! remediation = "start the previous binary"
//! "#)?;
//! let current = templates.current("restart-web").expect("a template");
//! assert_eq!(current.version, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};
use smsys_core::records::change::ChangePlan;

/// One version of a standard change template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeTemplate {
    /// Its name.
    pub name: String,
    /// Its version (a new version is a new approval of the template).
    pub version: u32,
    /// What changes made from it do.
    pub summary: String,
    /// How they are implemented.
    pub implementation: String,
    /// How they are backed out.
    pub remediation: String,
    /// How they are verified.
    #[serde(default)]
    pub test_plan: String,
    /// Whether it was withdrawn: no new change may follow it.
    #[serde(default)]
    pub withdrawn: bool,
}

impl ChangeTemplate {
    /// The plan of a change made from it, changing `cis`.
    pub fn plan(&self, cis: Vec<smsys_core::records::CiId>) -> ChangePlan {
        ChangePlan {
            cis,
            implementation: self.implementation.clone(),
            remediation: self.remediation.clone(),
            test_plan: self.test_plan.clone(),
            implementer: None,
            ci_updates: Vec::new(),
        }
    }
}

/// Why a template set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text is not a template set.
    #[error("change templates: {0}")]
    Parse(String),
    /// A template with a blank name, summary, implementation or remediation.
    #[error("change template {name:?} version {version}: {field} is blank")]
    Blank {
        /// The template.
        name: String,
        /// Its version.
        version: u32,
        /// The blank field.
        field: &'static str,
    },
    /// Two templates with one name and version.
    #[error("change template {0:?} version {1} is defined twice")]
    Duplicate(String, u32),
}

/// Every version of every standard change template.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChangeTemplates {
    templates: Vec<ChangeTemplate>,
}

impl ChangeTemplates {
    /// No templates.
    pub fn new() -> Self {
        Self::default()
    }

    /// Templates from TOML (`[[templates]]` tables), checked.
    pub fn from_toml(text: &str) -> Result<Self, TemplateError> {
        let set: Self = toml::from_str(text).map_err(|e| TemplateError::Parse(e.to_string()))?;
        set.templates
            .into_iter()
            .try_fold(Self::new(), |set, t| set.with(t))
    }

    /// Adds a template version, checked.
    pub fn with(mut self, template: ChangeTemplate) -> Result<Self, TemplateError> {
        let blank = |field| TemplateError::Blank {
            name: template.name.clone(),
            version: template.version,
            field,
        };
        for (field, text) in [
            ("name", &template.name),
            ("summary", &template.summary),
            ("implementation", &template.implementation),
            ("remediation", &template.remediation),
        ] {
            if text.trim().is_empty() {
                return Err(blank(field));
            }
        }
        if self.get(&template.name, template.version).is_some() {
            return Err(TemplateError::Duplicate(template.name, template.version));
        }
        self.templates.push(template);
        Ok(self)
    }

    /// One version of a template.
    pub fn get(&self, name: &str, version: u32) -> Option<&ChangeTemplate> {
        self.templates
            .iter()
            .find(|t| t.name == name && t.version == version)
    }

    /// The latest version of a template that is not withdrawn: what a new change follows.
    pub fn current(&self, name: &str) -> Option<&ChangeTemplate> {
        self.templates
            .iter()
            .filter(|t| t.name == name)
            .max_by_key(|t| t.version)
            .filter(|t| !t.withdrawn)
    }
}
