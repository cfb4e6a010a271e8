//! The configuration graph in the store's own tables: one row per configuration item (its
//! current fold, with its outgoing relationships), kept by a projection and queried, impact
//! walks included, without folding the log.
//!
//! The rows and the walk are part of the persisted contract; the stores implement
//! [`CiGraphStore`] (memory, SQLite, PostgreSQL), writing a batch of rows, their edges and the
//! checkpoint in one transaction; `smsys-processes` folds the rows from the log.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{EventSourced, Stamp};
use crate::records::attribute::Attributes;
use crate::records::configuration_item::{CiEvent, ConfigurationItem, LastChange};
use crate::records::ids::{CiId, CiType, Relationship};
use crate::store::{LogFilter, StoreError};
use crate::stream::{IdError, Position, StreamId, Version};

/// One configuration item as the graph store keeps it: the current fold of its stream
/// ([`ConfigurationItem`], folded by its own `evolve`, so the row cannot drift from the
/// aggregate) and the stream version it reflects.
///
/// A row exists from a CI's first event; it is *registered* once its registration is
/// folded. Only registered rows are typed, listed by type and reached by walks; the
/// relationships of every row are edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiRow {
    stream: StreamId,
    id: CiId,
    item: ConfigurationItem,
    version: Version,
}

impl CiRow {
    /// The empty row of the CI `id` (no event folded, version 0). Refused when `id` names no
    /// stream ([`ConfigurationItem::stream`]).
    pub fn new(id: CiId) -> Result<Self, IdError> {
        Ok(Self {
            stream: ConfigurationItem::stream(&id)?,
            id,
            item: ConfigurationItem::default(),
            version: Version::new(0),
        })
    }

    /// Folds the event at `version` of the CI's stream, recorded with `stamp`, exactly as
    /// [`ConfigurationItem`]'s `evolve` does. Idempotent by version: an event at or below the
    /// row's version changes nothing (a batch delivered again). Returns whether it folded.
    /// Events are folded in stream order; the row does not check for gaps.
    pub fn apply(&mut self, event: &CiEvent, version: Version, stamp: Stamp<'_>) -> bool {
        if version <= self.version {
            return false;
        }
        self.item.evolve(event, stamp);
        self.version = version;
        true
    }

    /// The CI's stream.
    pub fn stream(&self) -> &StreamId {
        &self.stream
    }
    /// The CI's id (its stream's entity id).
    pub fn id(&self) -> &CiId {
        &self.id
    }
    /// The whole fold.
    pub fn item(&self) -> &ConfigurationItem {
        &self.item
    }
    /// Whether its registration is folded.
    pub fn is_registered(&self) -> bool {
        self.item.is_registered()
    }
    /// Its type, once registered.
    pub fn ci_type(&self) -> Option<&CiType> {
        self.item.ci_type()
    }
    /// Its name.
    pub fn name(&self) -> &str {
        self.item.name()
    }
    /// Its description.
    pub fn description(&self) -> &str {
        self.item.description()
    }
    /// Its status, once registered.
    pub fn status(&self) -> Option<&str> {
        self.item.status()
    }
    /// Its attributes.
    pub fn attributes(&self) -> &Attributes {
        self.item.attributes()
    }
    /// Its outgoing relationships (`self -[relationship]-> target`), by type then target.
    pub fn relationships(&self) -> &BTreeSet<(Relationship, CiId)> {
        self.item.relationships()
    }
    /// When it was registered.
    pub fn registered_at(&self) -> Option<DateTime<Utc>> {
        self.item.registered_at()
    }
    /// Who changed it last, when, under which change.
    pub fn last_change(&self) -> Option<&LastChange> {
        self.item.last_change()
    }
    /// The stream version it reflects (0: no event folded).
    pub fn version(&self) -> Version {
        self.version
    }
}

/// Which way a walk follows a relationship type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From a CI to the CIs whose edges point at it (`x -[r]-> ci`: `x` is reached), its
    /// dependents: where impact goes when `ci` fails and `r` carries it from target to source.
    Upstream,
    /// Along a CI's own edges (`ci -[r]-> z`: `z` is reached).
    Downstream,
    /// Both ways.
    Both,
}

impl Direction {
    /// Whether it follows edges towards their source.
    pub fn upstream(self) -> bool {
        matches!(self, Direction::Upstream | Direction::Both)
    }

    /// Whether it follows edges towards their target.
    pub fn downstream(self) -> bool {
        matches!(self, Direction::Downstream | Direction::Both)
    }
}

/// What a walk of the graph follows ([`CiGraphStore::walk`]): relationship types and the way
/// each is followed (types not listed are not followed), how deep, and which CIs stop it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GraphWalk {
    /// The relationship types followed, and which way.
    pub follow: BTreeMap<Relationship, Direction>,
    /// The greatest distance reached (`None`: no bound). `Some(0)` reaches nothing.
    pub max_depth: Option<u32>,
    /// A status whose CIs (other than the origin) are neither reached nor passed through,
    /// e.g. `retired`.
    pub skip_status: Option<String>,
}

impl GraphWalk {
    /// A walk that follows nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also follows `relationship` in `direction` (replacing a direction given before).
    pub fn follow(mut self, relationship: Relationship, direction: Direction) -> Self {
        self.follow.insert(relationship, direction);
        self
    }

    /// Reaches CIs at most `depth` relationships away.
    pub fn max_depth(mut self, depth: u32) -> Self {
        self.max_depth = Some(depth);
        self
    }

    /// Neither reaches nor passes through CIs in `status` (other than the origin).
    pub fn skip_status(mut self, status: impl Into<String>) -> Self {
        self.skip_status = Some(status.into());
        self
    }

    /// The relationship types followed upstream, sorted.
    pub fn upstream(&self) -> Vec<&Relationship> {
        self.follow
            .iter()
            .filter(|(_, d)| d.upstream())
            .map(|(r, _)| r)
            .collect()
    }

    /// The relationship types followed downstream, sorted.
    pub fn downstream(&self) -> Vec<&Relationship> {
        self.follow
            .iter()
            .filter(|(_, d)| d.downstream())
            .map(|(r, _)| r)
            .collect()
    }
}

/// Where the configuration graph lives. Stores implement it next to the log, so a batch of
/// rows, their edges and the checkpoint are written in one transaction, and many nodes share
/// one graph without each folding the log. One indexer writes a graph of a given name (as one
/// writes a record index): the stores do not compare a row's version with the stored one, so
/// two indexers of one name racing could put an older row back until the next replay; the
/// others only read.
///
/// Semantics every store keeps (the memory store is the reference):
/// - a row is keyed by its CI id; its edges are its [`CiRow::relationships`], replaced with it;
/// - only registered rows are typed ([`Self::cis_of_type`]) and reached by walks; an id only
///   named as a relationship's target is no CI;
/// - reads of one call see one state: a batch's rows and edges appear together.
///
/// ```no_run
/// # async fn demo(graph: &dyn smsys_core::records::CiGraphStore) -> Result<(), Box<dyn std::error::Error>> {
/// use smsys_core::records::{CiId, Direction, GraphWalk, Relationship};
///
/// // Every CI that depends on the server, transitively, at most three relationships away.
/// let walk = GraphWalk::new()
///     .follow(Relationship::RUNS_ON, Direction::Upstream)
///     .follow(Relationship::DEPENDS_ON, Direction::Upstream)
///     .max_depth(3)
///     .skip_status("retired");
/// for (ci, distance) in graph.walk(&CiId::new("srv-01")?, &walk).await? {
///     println!("{ci} at {distance}");
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait CiGraphStore: Send + Sync {
    /// The graph's name (e.g. `ci_graph.v1`), which is also its checkpoint's: several
    /// versions may live side by side while a new one is rebuilt.
    fn name(&self) -> &str;

    /// The position of the last event whose effect the graph holds.
    async fn checkpoint(&self) -> Result<Option<Position>, StoreError>;

    /// The checkpoint, for an indexer reading the events `filter` accepts: binds the graph to
    /// `filter` on the first call, and refuses another filter later with
    /// [`StoreError::CheckpointFilter`], exactly as
    /// [`RecordIndexStore::checkpoint_for`](crate::records::RecordIndexStore::checkpoint_for)
    /// does. [`Self::clear`] removes the binding with the rows. The default keeps none and
    /// does not check.
    async fn checkpoint_for(&self, filter: &LogFilter) -> Result<Option<Position>, StoreError> {
        let _ = filter;
        self.checkpoint().await
    }

    /// The row of one CI.
    async fn ci(&self, id: &CiId) -> Result<Option<CiRow>, StoreError>;

    /// The rows of several CIs, in the order of `ids` (`None` where a CI has no row). Stores
    /// answer in one round trip; the default asks [`Self::ci`] for each.
    async fn cis(&self, ids: &[CiId]) -> Result<Vec<Option<CiRow>>, StoreError> {
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            rows.push(self.ci(id).await?);
        }
        Ok(rows)
    }

    /// Replaces the row of each CI (a later row of the same CI in `rows` wins) and its edges
    /// (a relationship the new row no longer holds is gone), and saves `checkpoint`, all or
    /// nothing.
    async fn apply(&self, rows: Vec<CiRow>, checkpoint: Position) -> Result<(), StoreError>;

    /// The registered CIs of `ci_type`, sorted by id.
    async fn cis_of_type(&self, ci_type: &CiType) -> Result<Vec<CiId>, StoreError>;

    /// The edges pointing at `id` (`source -[relationship]-> id`), as (relationship, source),
    /// sorted; from every row, registered or not.
    async fn relationships_to(&self, id: &CiId) -> Result<Vec<(Relationship, CiId)>, StoreError>;

    /// Every CI reached from `origin` along `walk`, each once with its distance (the fewest
    /// relationships between), sorted by distance then id; `origin` itself is not listed.
    /// A CI is reached when it is registered, not in `walk.skip_status`, and linked to a CI
    /// reached before (or the origin) by a relationship type `walk` follows in the way it
    /// follows it. An origin without a registered row reaches nothing. Exact and terminating
    /// on cyclic graphs: each CI is visited once.
    async fn walk(&self, origin: &CiId, walk: &GraphWalk) -> Result<Vec<(CiId, u32)>, StoreError>;

    /// How many rows the graph holds (registered or not).
    async fn count(&self) -> Result<u64, StoreError>;

    /// Removes every row, every edge and the checkpoint (with its binding): the graph is
    /// rebuilt from the start.
    async fn clear(&self) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Actor;
    use crate::records::configuration_item::CiRegistered;

    fn ci(id: &str) -> CiId {
        CiId::new(id).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn registered(id: &str) -> CiEvent {
        CiEvent::Registered(CiRegistered {
            id: ci(id),
            ci_type: CiType::from_static("server"),
            name: id.into(),
            description: String::new(),
            status: "live".into(),
            attributes: Attributes::new(),
            change: None,
        })
    }

    #[test]
    fn a_row_folds_like_the_aggregate_and_ignores_what_it_holds() {
        let actor = Actor::new("cmdb").unwrap_or_else(|e| unreachable!("{e}"));
        let stamp = Stamp::new(Some(&actor), DateTime::UNIX_EPOCH);
        let events = [
            registered("srv-01"),
            CiEvent::RelationshipAdded {
                relationship: Relationship::RUNS_ON,
                target: ci("host-1"),
                change: None,
            },
            CiEvent::StatusChanged {
                from: "live".into(),
                to: "retired".into(),
                reason: String::new(),
                change: None,
            },
        ];
        let mut row = CiRow::new(ci("srv-01")).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(!row.is_registered());
        let mut item = ConfigurationItem::default();
        for (n, event) in (1..).zip(&events) {
            assert!(row.apply(event, Version::new(n), stamp));
            item.evolve(event, stamp);
        }
        assert_eq!(row.item(), &item);
        assert_eq!(row.version(), Version::new(3));
        assert_eq!(row.status(), Some("retired"));
        assert_eq!(row.stream().as_str(), "configuration_item-srv-01");
        // Delivered again: nothing changes.
        let before = row.clone();
        assert!(!row.apply(&registered("srv-01"), Version::new(1), stamp));
        assert!(!row.apply(&events[1], Version::new(3), stamp));
        assert_eq!(row, before);
        let json = serde_json::to_string(&row).unwrap_or_default();
        assert_eq!(serde_json::from_str::<CiRow>(&json).ok(), Some(row));
        assert!(CiRow::new(ci("srv 01")).is_err(), "names a stream");
    }

    #[test]
    fn a_walk_lists_the_types_it_follows_each_way() {
        let walk = GraphWalk::new()
            .follow(Relationship::RUNS_ON, Direction::Upstream)
            .follow(Relationship::CONNECTS_TO, Direction::Both)
            .follow(Relationship::PART_OF, Direction::Downstream)
            .max_depth(2);
        assert_eq!(
            walk.upstream(),
            [&Relationship::CONNECTS_TO, &Relationship::RUNS_ON]
        );
        assert_eq!(
            walk.downstream(),
            [&Relationship::CONNECTS_TO, &Relationship::PART_OF]
        );
        assert_eq!(walk.max_depth, Some(2));
    }
}
