//! What assessing a change reads from the configuration information: the services and
//! customers its CIs affect, which of those services are critical, which of its CIs are in
//! maintenance.
//!
//! [`GraphImpact`] reads them from the CMDB graph ([`CmdbGraph`]) and the catalogue fields of
//! its service CIs ([`CatalogueFields`]), under [`ImpactMarkers`] (what marks a service
//! critical and a CI in maintenance).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smsys_core::records::change::ImpactAnalysis;
use smsys_core::records::{AttributeName, CiId};

use crate::catalogue::CatalogueFields;
use crate::cmdb_graph::{CmdbGraph, GraphSnapshot, ImpactRules};

/// The impact of changing some CIs, as the configuration information gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImpactFindings {
    /// What is recorded on the change.
    pub analysis: ImpactAnalysis,
    /// The affected services marked critical.
    pub critical_services: Vec<CiId>,
    /// The changed CIs that are in maintenance now.
    pub in_maintenance: Vec<CiId>,
}

/// Where an assessment reads a change's impact from; `decide` asks it through
/// [`ChangePolicy::impact`](super::ChangePolicy::impact).
pub trait ImpactSource: Send + Sync + fmt::Debug {
    /// The impact of changing `cis`.
    fn analyse(&self, cis: &[CiId]) -> ImpactFindings;
}

/// What marks a service critical and a CI in maintenance, as data a product can change
/// (serde; a field left out keeps its default).
///
/// By default a service is critical when its `criticality` attribute (a choice of the
/// reference `service` type, `configuration/types.toml`) is `critical`, and a CI is in
/// maintenance in status `maintenance` (of the reference CI lifecycle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpactMarkers {
    /// The attribute of a service that says how critical it is.
    pub critical_attribute: AttributeName,
    /// The values of [`ImpactMarkers::critical_attribute`] that mark a service critical
    /// (compared with the value as text: `true` for a flag, `1` for a number).
    pub critical_values: Vec<String>,
    /// The statuses of a CI in maintenance.
    pub maintenance_statuses: Vec<String>,
}

impl Default for ImpactMarkers {
    fn default() -> Self {
        Self {
            critical_attribute: AttributeName::new("criticality")
                .unwrap_or_else(|e| unreachable!("a valid attribute name: {e}")),
            critical_values: vec!["critical".to_owned()],
            maintenance_statuses: vec!["maintenance".to_owned()],
        }
    }
}

/// The impact of a change read from the CMDB graph: the union of the impact of each changed
/// CI under the impact rules (the changed CIs count as affected), the affected services (the
/// CIs of the rules' service type, changed ones included), their customers (the catalogue's
/// customers field, sorted, without repeats), the graph position it was read at, the
/// critical services among them and the changed CIs in maintenance ([`ImpactMarkers`]).
///
/// Everything is read from one frozen copy of the graph ([`CmdbGraph::current`]), so the
/// findings hold at the position they name. An id the graph does not know as a registered CI
/// is counted nowhere.
///
/// ```
/// use std::sync::Arc;
/// use smsys_processes::CmdbGraph;
/// use smsys_processes::change::{GraphImpact, ImpactSource};
///
/// let impact = GraphImpact::new(Arc::new(CmdbGraph::new()));
/// let findings = impact.analyse(&["srv-01".parse()?]);
/// assert_eq!(findings.analysis.affected_cis, 0, "an empty graph knows no CI");
/// assert_eq!(findings.analysis.as_of, None);
/// # Ok::<(), smsys_core::IdError>(())
/// ```
#[derive(Debug, Clone)]
pub struct GraphImpact {
    graph: Arc<CmdbGraph>,
    rules: Option<ImpactRules>,
    fields: CatalogueFields,
    markers: ImpactMarkers,
}

impl GraphImpact {
    /// Reads `graph` under its own impact rules, the default catalogue fields and markers.
    pub fn new(graph: Arc<CmdbGraph>) -> Self {
        Self {
            graph,
            rules: None,
            fields: CatalogueFields::default(),
            markers: ImpactMarkers::default(),
        }
    }

    /// Under other impact rules than the graph's.
    pub fn with_rules(mut self, rules: ImpactRules) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Reading the customers from other catalogue fields.
    pub fn with_fields(mut self, fields: CatalogueFields) -> Self {
        self.fields = fields;
        self
    }

    /// Under other markers of critical services and CIs in maintenance.
    pub fn with_markers(mut self, markers: ImpactMarkers) -> Self {
        self.markers = markers;
        self
    }

    /// The markers.
    pub fn markers(&self) -> &ImpactMarkers {
        &self.markers
    }

    /// The impact of changing `cis` on the graph as it stood in `snapshot` (one taken with
    /// [`CmdbGraph::as_of`] answers for a past position).
    pub fn analyse_in(&self, snapshot: &GraphSnapshot, cis: &[CiId]) -> ImpactFindings {
        let rules = self.rules.as_ref().unwrap_or_else(|| self.graph.rules());
        let changed: BTreeSet<&CiId> = cis.iter().collect();
        let mut affected: BTreeSet<CiId> = BTreeSet::new();
        let mut services: BTreeSet<CiId> = BTreeSet::new();
        let mut in_maintenance = Vec::new();
        for &id in &changed {
            let Some(node) = snapshot.ci(id) else {
                continue;
            };
            if self.markers.maintenance_statuses.contains(&node.status) {
                in_maintenance.push(id.clone());
            }
            if node.ci_type == rules.service_type {
                services.insert(id.clone());
            }
            affected.insert(id.clone());
            let impact = snapshot.impact_with(id, rules);
            affected.extend(impact.affected().iter().map(|a| a.id.clone()));
            services.extend(impact.services().iter().cloned());
        }
        let mut customers = BTreeSet::new();
        let mut critical_services = Vec::new();
        for service in &services {
            let Some(node) = snapshot.ci(service) else {
                continue;
            };
            customers.extend(self.fields.customers_in(&node.attributes));
            let critical = node
                .attributes
                .get(&self.markers.critical_attribute)
                .is_some_and(|v| self.markers.critical_values.contains(&v.to_string()));
            if critical {
                critical_services.push(service.clone());
            }
        }
        ImpactFindings {
            analysis: ImpactAnalysis {
                services: services.into_iter().collect(),
                customers: customers.into_iter().collect(),
                affected_cis: u32::try_from(affected.len()).unwrap_or(u32::MAX),
                as_of: Some(snapshot.position()),
            },
            critical_services,
            in_maintenance,
        }
    }
}

impl ImpactSource for GraphImpact {
    /// The impact of changing `cis` on the graph as it stands, at the position it has folded
    /// up to; before the graph's first batch, nothing is known (no position, nothing
    /// affected).
    fn analyse(&self, cis: &[CiId]) -> ImpactFindings {
        match self.graph.current() {
            Some(snapshot) => self.analyse_in(&snapshot, cis),
            None => ImpactFindings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use smsys_core::records::configuration_item::CiRegistered;
    use smsys_core::records::{
        AttributeValue, Attributes, CiEvent, CiType, ConfigurationItem, Relationship,
    };
    use smsys_core::{
        Actor, DomainEvent, EventData, EventId, EventStore, ExpectedVersion, Metadata, Position,
        ProjectionRunner,
    };
    use smsys_store::MemoryEventStore;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn ci(id: &str) -> CiId {
        CiId::new(id).unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    fn cis(ids: &[&str]) -> Vec<CiId> {
        ids.iter().map(|id| ci(id)).collect()
    }

    /// A CMDB on the in-memory store.
    struct Estate {
        store: Arc<MemoryEventStore>,
        next: u128,
    }

    impl Estate {
        fn new() -> Self {
            Self {
                store: Arc::new(MemoryEventStore::new()),
                next: 0,
            }
        }

        async fn record(
            &mut self,
            id: &str,
            event: CiEvent,
        ) -> Result<Position, Box<dyn std::error::Error>> {
            self.next += 1;
            let at = Utc
                .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
                .single()
                .ok_or("instant")?;
            let meta = Metadata::new(
                EventId::from_uuid(uuid::Uuid::from_u128(self.next))?,
                Actor::new("cmdb")?,
                at,
            );
            let data = EventData::new(event.event_type(), 1, event.to_payload()?, meta)?;
            let appended = self
                .store
                .append(
                    &ConfigurationItem::stream(&ci(id))?,
                    ExpectedVersion::Any,
                    vec![data],
                )
                .await?;
            Ok(*appended.positions.last().ok_or("a position")?)
        }

        async fn register(
            &mut self,
            id: &str,
            ci_type: &str,
            status: &str,
            attributes: &[(&str, &str)],
        ) -> TestResult {
            let attributes: Attributes = attributes
                .iter()
                .map(|(n, v)| Ok((AttributeName::new(*n)?, AttributeValue::from(*v))))
                .collect::<Result<BTreeMap<_, _>, smsys_core::IdError>>()?;
            let event = CiEvent::Registered(CiRegistered {
                id: ci(id),
                ci_type: CiType::new(ci_type)?,
                name: id.to_owned(),
                description: String::new(),
                status: status.to_owned(),
                attributes,
                change: None,
            });
            self.record(id, event).await?;
            Ok(())
        }

        async fn link(
            &mut self,
            source: &str,
            relationship: Relationship,
            target: &str,
        ) -> Result<Position, Box<dyn std::error::Error>> {
            let event = CiEvent::RelationshipAdded {
                relationship,
                target: ci(target),
                change: None,
            };
            self.record(source, event).await
        }

        async fn graph(&self) -> Result<Arc<CmdbGraph>, Box<dyn std::error::Error>> {
            let graph = Arc::new(CmdbGraph::new());
            ProjectionRunner::new(self.store.clone())
                .catch_up(graph.as_ref())
                .await?;
            Ok(graph)
        }
    }

    /// Two services on two stacks (service -> application -> server -> switch); the two
    /// switches connect to each other (a cycle); `email` is critical, `srv-02` is in
    /// maintenance. Returns the position of the last event.
    async fn estate() -> Result<(Estate, Position), Box<dyn std::error::Error>> {
        let mut e = Estate::new();
        let email = [
            ("owner", "ops"),
            ("customers", "globex, acme"),
            ("criticality", "critical"),
        ];
        e.register("email", "service", "live", &email).await?;
        let web = [
            ("owner", "web"),
            ("customers", "acme,initech"),
            ("criticality", "high"),
        ];
        e.register("web", "service", "live", &web).await?;
        e.register("mail-app", "application", "live", &[]).await?;
        e.register("web-app", "application", "live", &[]).await?;
        e.register("srv-01", "server", "live", &[]).await?;
        e.register("srv-02", "server", "maintenance", &[]).await?;
        e.register("sw-01", "network_device", "live", &[]).await?;
        e.register("sw-02", "network_device", "live", &[]).await?;
        e.link("email", Relationship::DEPENDS_ON, "mail-app")
            .await?;
        e.link("web", Relationship::DEPENDS_ON, "web-app").await?;
        e.link("mail-app", Relationship::RUNS_ON, "srv-01").await?;
        e.link("web-app", Relationship::RUNS_ON, "srv-02").await?;
        e.link("srv-01", Relationship::CONNECTS_TO, "sw-01").await?;
        e.link("srv-02", Relationship::CONNECTS_TO, "sw-02").await?;
        e.link("sw-01", Relationship::CONNECTS_TO, "sw-02").await?;
        let last = e.link("sw-02", Relationship::CONNECTS_TO, "sw-01").await?;
        Ok((e, last))
    }

    #[tokio::test]
    async fn a_switch_in_a_cycle_affects_both_stacks_and_their_customers() -> TestResult {
        let (estate, last) = estate().await?;
        let impact = GraphImpact::new(estate.graph().await?);
        let findings = impact.analyse(&cis(&["sw-01"]));
        let analysis = &findings.analysis;
        assert_eq!(analysis.services, cis(&["email", "web"]));
        assert_eq!(analysis.customers, ["acme", "globex", "initech"]);
        assert_eq!(
            analysis.affected_cis, 8,
            "the switch, the other switch, both servers, applications and services"
        );
        assert_eq!(analysis.as_of, Some(last));
        assert_eq!(findings.critical_services, cis(&["email"]));
        assert!(findings.in_maintenance.is_empty(), "sw-01 is live");
        Ok(())
    }

    #[tokio::test]
    async fn impacts_are_united_and_the_changed_cis_count() -> TestResult {
        let (estate, _) = estate().await?;
        let impact = GraphImpact::new(estate.graph().await?);
        let findings = impact.analyse(&cis(&["mail-app", "srv-01", "mail-app"]));
        assert_eq!(findings.analysis.services, cis(&["email"]));
        assert_eq!(findings.analysis.customers, ["acme", "globex"]);
        assert_eq!(findings.analysis.affected_cis, 3, "srv-01, mail-app, email");
        let service = impact.analyse(&cis(&["web"]));
        assert_eq!(
            service.analysis.services,
            cis(&["web"]),
            "a changed service"
        );
        assert_eq!(service.analysis.affected_cis, 1);
        assert!(service.critical_services.is_empty(), "high is not critical");
        Ok(())
    }

    #[tokio::test]
    async fn a_changed_ci_in_maintenance_is_found_and_unknown_ids_count_nowhere() -> TestResult {
        let (estate, _) = estate().await?;
        let impact = GraphImpact::new(estate.graph().await?);
        let findings = impact.analyse(&cis(&["ghost", "srv-02", "web-app"]));
        assert_eq!(findings.in_maintenance, cis(&["srv-02"]));
        assert_eq!(findings.analysis.services, cis(&["web"]));
        assert_eq!(findings.analysis.affected_cis, 3, "srv-02, web-app, web");
        let ghost = impact.analyse(&cis(&["ghost"]));
        assert_eq!(ghost.analysis.affected_cis, 0);
        assert!(ghost.analysis.services.is_empty());
        assert!(
            ghost.analysis.as_of.is_some(),
            "the graph's position all the same"
        );
        Ok(())
    }

    #[tokio::test]
    async fn markers_are_configurable() -> TestResult {
        let (estate, _) = estate().await?;
        let markers = ImpactMarkers {
            critical_attribute: AttributeName::new("criticality")?,
            critical_values: vec!["high".into(), "critical".into()],
            maintenance_statuses: vec!["live".into()],
        };
        let impact = GraphImpact::new(estate.graph().await?).with_markers(markers);
        let findings = impact.analyse(&cis(&["sw-02", "srv-02"]));
        assert_eq!(findings.critical_services, cis(&["email", "web"]));
        assert_eq!(findings.in_maintenance, cis(&["sw-02"]));
        let text = r#"{"critical_values": ["high"]}"#;
        let read: ImpactMarkers = serde_json::from_str(text)?;
        assert_eq!(read.critical_attribute.as_str(), "criticality");
        assert_eq!(read.maintenance_statuses, ["maintenance"]);
        Ok(())
    }

    #[tokio::test]
    async fn a_past_snapshot_answers_for_its_position() -> TestResult {
        let (mut estate, before) = estate().await?;
        estate
            .link("email", Relationship::DEPENDS_ON, "web-app")
            .await?;
        let graph = estate.graph().await?;
        let impact = GraphImpact::new(graph.clone());
        let now = impact.analyse(&cis(&["web-app"]));
        assert_eq!(now.analysis.services, cis(&["email", "web"]));
        let then = impact.analyse_in(&graph.as_of(before), &cis(&["web-app"]));
        assert_eq!(then.analysis.services, cis(&["web"]));
        assert_eq!(then.analysis.as_of, Some(before));
        Ok(())
    }

    #[test]
    fn an_empty_graph_finds_nothing() {
        let impact = GraphImpact::new(Arc::new(CmdbGraph::new()));
        assert_eq!(impact.analyse(&cis(&["srv-01"])), ImpactFindings::default());
    }
}
