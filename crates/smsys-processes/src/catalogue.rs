//! The service catalogue (ISO/IEC 20000-1 8.2.4): the services (CIs of the service type) with
//! their owner, customers, hours, the SLAs and OLAs that apply to them and the CIs they
//! depend on, read from the configuration items. The SLA engine takes each service's SLAs from
//! it ([`SlaEngine::with_selection`](crate::sla::SlaEngine::with_selection)).
//!
//! ```
//! use smsys_core::records::configuration_item::CiRegistered;
//! use smsys_core::records::{CiEvent, ConfigurationItem, Relationship};
//! use smsys_core::{EventSourced, Stamp};
//! use smsys_processes::catalogue::ServiceCatalogue;
//! use smsys_processes::sla::SlaSelection;
//!
//! let at = chrono::DateTime::UNIX_EPOCH;
//! let mut email = ConfigurationItem::default();
//! email.evolve(
//!     &CiEvent::Registered(CiRegistered {
//!         id: "email".parse()?,
//!         ci_type: "service".parse()?,
//!         name: "E-mail".into(),
//!         description: String::new(),
//!         status: "live".into(),
//!         attributes: [
//!             ("owner".parse()?, "it-ops".into()),
//!             ("sla".parse()?, "gold-response, gold-resolution".into()),
//!         ]
//!         .into_iter()
//!         .collect(),
//!         change: None,
//!     }),
//!     Stamp::new(None, at),
//! );
//! email.evolve(
//!     &CiEvent::RelationshipAdded {
//!         relationship: Relationship::DEPENDS_ON,
//!         target: "mail-app".parse()?,
//!         change: None,
//!     },
//!     Stamp::new(None, at),
//! );
//! let catalogue = ServiceCatalogue::from_cis([&email]);
//! let entry = catalogue.get("email").expect("a service");
//! assert_eq!(entry.owner.as_deref(), Some("it-ops"));
//! assert_eq!(entry.depends_on.len(), 1);
//! assert_eq!(
//!     catalogue.slas_for("email", at),
//!     Some(vec!["gold-response".to_owned(), "gold-resolution".to_owned()])
//! );
//! assert_eq!(catalogue.slas_for("web", at), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use smsys_core::records::{
    AttributeName, AttributeValue, Attributes, CiId, CiType, ConfigurationItem, Relationship,
};

use crate::cmdb_graph::CmdbGraph;
use crate::sla::SlaSelection;

/// Which CIs are services and which of their attributes hold the catalogue's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueFields {
    /// The CI type of services (`service`).
    pub service_type: CiType,
    /// The owner (`owner`).
    pub owner: String,
    /// The customers, comma-separated (`customers`).
    pub customers: String,
    /// The service hours (`hours`).
    pub hours: String,
    /// The SLA definitions' names, comma-separated (`sla`).
    pub sla: String,
    /// The OLA definitions' names, comma-separated (`ola`).
    pub ola: String,
    /// The status of CIs no longer in the catalogue (`retired`).
    pub retired: String,
}

impl Default for CatalogueFields {
    fn default() -> Self {
        Self {
            service_type: CiType::from_static("service"),
            owner: "owner".into(),
            customers: "customers".into(),
            hours: "hours".into(),
            sla: "sla".into(),
            ola: "ola".into(),
            retired: "retired".into(),
        }
    }
}

/// One service of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The service (its CI id, the service id records name).
    pub service: CiId,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: String,
    /// Its owner.
    pub owner: Option<String>,
    /// Its customers.
    pub customers: Vec<String>,
    /// Its hours.
    pub hours: Option<String>,
    /// The SLA definitions that apply to it.
    pub slas: Vec<String>,
    /// The OLA definitions that apply to it.
    pub olas: Vec<String>,
    /// The CIs it relates to directly (what it depends on, runs on, is part of), by type.
    pub depends_on: Vec<(Relationship, CiId)>,
}

/// The service catalogue: every service CI that is not retired, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceCatalogue {
    services: BTreeMap<String, ServiceEntry>,
}

fn text(ci: &ConfigurationItem, name: &str) -> Option<String> {
    let name = AttributeName::new(name).ok()?;
    ci.attribute(&name).map(AttributeValue::to_string)
}

fn list(ci: &ConfigurationItem, name: &str) -> Vec<String> {
    text(ci, name).map(|t| split_list(&t)).unwrap_or_default()
}

/// The items of a comma-separated attribute, trimmed, empty ones left out.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl CatalogueFields {
    /// The customers `attributes` (a service CI's) name under [`CatalogueFields::customers`],
    /// as the catalogue reads them.
    pub fn customers_in(&self, attributes: &Attributes) -> Vec<String> {
        AttributeName::new(self.customers.as_str())
            .ok()
            .and_then(|name| attributes.get(&name))
            .map(|value| split_list(&value.to_string()))
            .unwrap_or_default()
    }
}

impl ServiceCatalogue {
    /// The catalogue of the service CIs among `cis`, with the default fields.
    pub fn from_cis<'a>(cis: impl IntoIterator<Item = &'a ConfigurationItem>) -> Self {
        Self::with_fields(cis, &CatalogueFields::default())
    }

    /// The catalogue of the service CIs among `cis`, reading `fields`.
    pub fn with_fields<'a>(
        cis: impl IntoIterator<Item = &'a ConfigurationItem>,
        fields: &CatalogueFields,
    ) -> Self {
        let services = cis
            .into_iter()
            .filter(|ci| ci.ci_type() == Some(&fields.service_type))
            .filter(|ci| ci.status() != Some(fields.retired.as_str()))
            .filter_map(|ci| {
                let id = ci.id()?.clone();
                let entry = ServiceEntry {
                    name: ci.name().to_owned(),
                    status: ci.status().unwrap_or_default().to_owned(),
                    owner: text(ci, &fields.owner),
                    customers: list(ci, &fields.customers),
                    hours: text(ci, &fields.hours),
                    slas: list(ci, &fields.sla),
                    olas: list(ci, &fields.ola),
                    depends_on: ci.relationships().iter().cloned().collect(),
                    service: id,
                };
                Some((entry.service.to_string(), entry))
            })
            .collect();
        Self { services }
    }

    /// The service `service`, if catalogued.
    pub fn get(&self, service: &str) -> Option<&ServiceEntry> {
        self.services.get(service)
    }

    /// Every service, by id.
    pub fn services(&self) -> impl Iterator<Item = &ServiceEntry> {
        self.services.values()
    }

    /// How many services it holds.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

/// The SLAs and OLAs the catalogue names for a service, whatever the instant: the catalogue
/// is the one built, so an SLA engine recomputing old timers under it binds them to today's
/// catalogue. [`GraphCatalogue`] answers as of each timer's start instead.
impl SlaSelection for ServiceCatalogue {
    fn slas_for(&self, service: &str, _at: DateTime<Utc>) -> Option<Vec<String>> {
        let entry = self.services.get(service)?;
        Some(entry.slas.iter().chain(&entry.olas).cloned().collect())
    }
}

/// The catalogue as the CMDB graph held it at each instant: a timer starting at `at` binds to
/// the SLAs and OLAs the service named then ([`CmdbGraph::ci_as_of_instant`]), so recomputing
/// an old record's timers after the catalogue changed gives the same timers.
#[derive(Debug, Clone)]
pub struct GraphCatalogue {
    graph: std::sync::Arc<CmdbGraph>,
    fields: CatalogueFields,
}

impl GraphCatalogue {
    /// The catalogue of `graph`, with the default fields.
    pub fn new(graph: std::sync::Arc<CmdbGraph>) -> Self {
        Self {
            graph,
            fields: CatalogueFields::default(),
        }
    }

    /// Reading `fields`.
    pub fn with_fields(mut self, fields: CatalogueFields) -> Self {
        self.fields = fields;
        self
    }

    /// The catalogue as it stood at `at`.
    pub fn as_of(&self, at: DateTime<Utc>) -> ServiceCatalogue {
        let services: Vec<ConfigurationItem> = self
            .graph
            .as_of_instant(at)
            .map(|snapshot| {
                snapshot
                    .cis_of_type(&self.fields.service_type)
                    .into_iter()
                    .filter_map(|id| self.graph.ci_as_of(&id, snapshot.position()))
                    .collect()
            })
            .unwrap_or_default();
        ServiceCatalogue::with_fields(services.iter(), &self.fields)
    }
}

impl SlaSelection for GraphCatalogue {
    fn slas_for(&self, service: &str, at: DateTime<Utc>) -> Option<Vec<String>> {
        let id = CiId::new(service).ok()?;
        let ci = self.graph.ci_as_of_instant(&id, at)?;
        ServiceCatalogue::with_fields([&ci], &self.fields).slas_for(service, at)
    }
}
