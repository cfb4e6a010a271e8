//! Who authorises a change (ISO/IEC 20000-1 8.5.1): approval rules held as data (which
//! changes each applies to, which groups approve, the quorum of distinct approvers), the
//! groups' members, and segregation of duties (the requester and the implementer never
//! approve). `change/approval.toml` is the reference policy; products name the members.
//!
//! ```
//! use smsys_core::records::ChangeKind;
//! use smsys_processes::change::ApprovalPolicy;
//!
//! let policy = ApprovalPolicy::reference()
//!     .with_members(&"cab".parse()?, ["ana".parse()?, "bo".parse()?])?;
//! let rule = policy.rule_for(ChangeKind::Normal, true).expect("a rule for major changes");
//! assert_eq!((rule.name.as_str(), rule.quorum), ("cab", 2));
//! assert!(policy.rule_for(ChangeKind::Standard, false).is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use smsys_core::records::{ChangeKind, GroupId, PersonId};

const REFERENCE: &str = include_str!("approval.toml");

/// One approval rule: the changes it applies to, who approves, how many approvals it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    /// Its name, recorded on the authorisation.
    pub name: String,
    /// The kinds of change it applies to.
    pub kinds: Vec<ChangeKind>,
    /// Whether it applies to major-impact changes only (`true`), to the others only
    /// (`false`), or to both (absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<bool>,
    /// The groups whose members may approve.
    pub groups: Vec<GroupId>,
    /// How many distinct approvers authorise the change.
    pub quorum: u32,
}

impl ApprovalRule {
    fn applies(&self, kind: ChangeKind, major: bool) -> bool {
        self.kinds.contains(&kind) && self.major.is_none_or(|m| m == major)
    }
}

/// Why an approval policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalPolicyError {
    /// The text is not a policy.
    #[error("approval policy: {0}")]
    Parse(String),
    /// A rule with a quorum of zero.
    #[error("approval rule {0:?} has a quorum of 0")]
    ZeroQuorum(String),
    /// A rule without groups or kinds.
    #[error("approval rule {0:?} names no {1}")]
    Empty(String, &'static str),
    /// A rule names a group the policy does not define.
    #[error("approval rule {rule:?} names group {group:?}, which the policy does not define")]
    UnknownGroup {
        /// The rule.
        rule: String,
        /// The group.
        group: String,
    },
    /// Two rules with one name.
    #[error("two approval rules are named {0:?}")]
    DuplicateRule(String),
}

/// Approval rules and the members of their groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    /// Its version.
    pub version: u32,
    /// The rules, the first matching one applying.
    pub rules: Vec<ApprovalRule>,
    /// The members of each group.
    #[serde(default)]
    pub groups: BTreeMap<GroupId, BTreeSet<PersonId>>,
}

impl ApprovalPolicy {
    /// The reference policy (`change/approval.toml`): normal changes by one change manager,
    /// major-impact normal changes by two members of the change advisory board (`cab`),
    /// emergency changes by one member of the emergency board (`ecab`); groups empty.
    pub fn reference() -> Self {
        Self::from_toml(REFERENCE)
            .unwrap_or_else(|e| unreachable!("the shipped approval policy is valid: {e}"))
    }

    /// A policy from TOML, checked.
    pub fn from_toml(text: &str) -> Result<Self, ApprovalPolicyError> {
        let policy: Self =
            toml::from_str(text).map_err(|e| ApprovalPolicyError::Parse(e.to_string()))?;
        policy.check()
    }

    /// A policy from JSON, checked.
    pub fn from_json(text: &str) -> Result<Self, ApprovalPolicyError> {
        let policy: Self =
            serde_json::from_str(text).map_err(|e| ApprovalPolicyError::Parse(e.to_string()))?;
        policy.check()
    }

    fn check(self) -> Result<Self, ApprovalPolicyError> {
        let mut names = BTreeSet::new();
        for rule in &self.rules {
            if !names.insert(rule.name.as_str()) {
                return Err(ApprovalPolicyError::DuplicateRule(rule.name.clone()));
            }
            if rule.quorum == 0 {
                return Err(ApprovalPolicyError::ZeroQuorum(rule.name.clone()));
            }
            if rule.kinds.is_empty() {
                return Err(ApprovalPolicyError::Empty(rule.name.clone(), "kinds"));
            }
            if rule.groups.is_empty() {
                return Err(ApprovalPolicyError::Empty(rule.name.clone(), "groups"));
            }
            if let Some(group) = rule.groups.iter().find(|g| !self.groups.contains_key(*g)) {
                return Err(ApprovalPolicyError::UnknownGroup {
                    rule: rule.name.clone(),
                    group: group.to_string(),
                });
            }
        }
        Ok(self)
    }

    /// Adds `members` to `group` (which a rule must name).
    pub fn with_members(
        mut self,
        group: &GroupId,
        members: impl IntoIterator<Item = PersonId>,
    ) -> Result<Self, ApprovalPolicyError> {
        match self.groups.get_mut(group) {
            Some(existing) => existing.extend(members),
            None => {
                return Err(ApprovalPolicyError::UnknownGroup {
                    rule: "(members)".into(),
                    group: group.to_string(),
                });
            }
        }
        Ok(self)
    }

    /// The rule that applies to a change of `kind`, major-impact or not.
    pub fn rule_for(&self, kind: ChangeKind, major: bool) -> Option<&ApprovalRule> {
        self.rules.iter().find(|r| r.applies(kind, major))
    }

    /// The group of `rule` that `person` approves for: `asked` if they are a member of it and
    /// the rule names it, else the first of the rule's groups they belong to.
    pub fn group_of(
        &self,
        rule: &ApprovalRule,
        person: &PersonId,
        asked: Option<&GroupId>,
    ) -> Option<GroupId> {
        let member = |g: &GroupId| self.groups.get(g).is_some_and(|m| m.contains(person));
        match asked {
            Some(group) => (rule.groups.contains(group) && member(group)).then(|| group.clone()),
            None => rule.groups.iter().find(|g| member(g)).cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_policy_loads_and_matches_by_kind_and_impact() {
        let policy = ApprovalPolicy::reference();
        let name = |kind, major| policy.rule_for(kind, major).map(|r| r.name.clone());
        assert_eq!(
            name(ChangeKind::Normal, false).as_deref(),
            Some("change_manager")
        );
        assert_eq!(name(ChangeKind::Normal, true).as_deref(), Some("cab"));
        assert_eq!(name(ChangeKind::Emergency, true).as_deref(), Some("ecab"));
        assert_eq!(name(ChangeKind::Standard, false), None);
    }

    #[test]
    fn bad_policies_are_refused_with_what_is_wrong() -> Result<(), Box<dyn std::error::Error>> {
        let zero = "version = 1\n[[rules]]\nname = \"x\"\nkinds = [\"normal\"]\ngroups = [\"g\"]\nquorum = 0\n[groups]\ng = []\n";
        assert_eq!(
            ApprovalPolicy::from_toml(zero),
            Err(ApprovalPolicyError::ZeroQuorum("x".into()))
        );
        let unknown = zero
            .replace("quorum = 0", "quorum = 1")
            .replace("g = []", "h = []");
        assert!(matches!(
            ApprovalPolicy::from_toml(&unknown),
            Err(ApprovalPolicyError::UnknownGroup { group, .. }) if group == "g"
        ));
        assert!(matches!(
            ApprovalPolicy::from_toml("version = \"one\""),
            Err(ApprovalPolicyError::Parse(_))
        ));
        assert!(
            ApprovalPolicy::reference()
                .with_members(&"nobody".parse()?, [])
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn an_approver_approves_for_a_group_they_belong_to() -> Result<(), Box<dyn std::error::Error>> {
        let ana: PersonId = "ana".parse()?;
        let policy = ApprovalPolicy::reference().with_members(&"cab".parse()?, [ana.clone()])?;
        let cab = policy
            .rule_for(ChangeKind::Normal, true)
            .ok_or("no cab rule")?;
        assert_eq!(policy.group_of(cab, &ana, None), Some("cab".parse()?));
        assert_eq!(policy.group_of(cab, &"bo".parse()?, None), None);
        assert_eq!(policy.group_of(cab, &ana, Some(&"ecab".parse()?)), None);
        Ok(())
    }
}
