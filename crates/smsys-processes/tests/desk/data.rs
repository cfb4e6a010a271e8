//! Rules that are data now: each product variation of a lifecycle is tried against the default,
//! so each test fails if the data stops making the difference. Also custom attributes, the
//! assignment and link commands, and who logged and resolved a record.

use smsys_core::records::{AttributeValue, Level, LinkKind, NoteKind, Phase};
use smsys_processes::attribute::{AttributeError, AttributeKind, AttributeSchema, AttributeSpec};
use smsys_processes::incident::IncidentRule;
use smsys_processes::lifecycle::{
    LifecycleDefinition, LifecycleError, Requirement, Transition, Trigger,
};
use smsys_processes::{
    IncidentManagement, IncidentPolicy, LogRecord, RecordCommand, RefusalReason, RequestManagement,
};

use crate::harness::{Desk, Incidents, Kind, actor, attribute, edited, id, log_input, t0};
use crate::incident::{assign, classify, in_progress, prioritise, resolve};

/// A copy of the transition named `like`, renamed `name` and changed by `change`, added.
fn add_transition_like(
    d: &mut LifecycleDefinition,
    like: &str,
    name: &str,
    change: impl FnOnce(&mut Transition),
) {
    let mut t = d
        .transitions
        .iter()
        .find(|t| t.name == like)
        .cloned()
        .expect("the default lifecycle has it");
    t.name = name.into();
    change(&mut t);
    d.transitions.push(t);
}

/// The test policy of `K`, logging new records under `product`: its default lifecycle, renamed
/// and changed by `edit`.
fn product<K: Kind>(edit: impl FnOnce(&mut LifecycleDefinition)) -> K::Policy {
    let lifecycle = edited::<K>(&K::default_lifecycle(), |d| {
        d.name = "product".into();
        edit(d);
    })
    .expect("a valid product lifecycle");
    let mut policy = K::policy();
    let record = K::record_policy_mut(&mut policy);
    *record = record.clone().logging_under(lifecycle);
    policy
}

/// The incident test policy under a product lifecycle where the transition `like` is also
/// taken from `from` (as a transition named `name`).
fn also_from(like: &str, name: &str, from: &str) -> IncidentPolicy {
    product::<IncidentManagement>(|d| {
        add_transition_like(d, like, name, |t| t.from = vec![from.into()]);
    })
}

fn hold(reason: &str) -> RecordCommand {
    RecordCommand::Hold {
        reason: reason.into(),
        status: None,
    }
}

fn note(kind: NoteKind) -> RecordCommand {
    RecordCommand::AddNote {
        kind,
        text: "after the fact".into(),
    }
}

fn no_transition(d: &Incidents, trigger: Trigger) -> RefusalReason<IncidentRule> {
    RefusalReason::NoTransition {
        lifecycle: d.record().lifecycle().cloned().expect("logged"),
        trigger,
    }
}

#[test]
fn a_product_lifecycle_may_resolve_straight_from_new() {
    let quick = also_from("resolve", "quick_resolve", "new");
    for (policy, resolves) in [(IncidentManagement::policy(), false), (quick, true)] {
        let mut d = Incidents::logged_under(policy);
        d.ok(classify());
        d.ok(prioritise(Level::Low, Level::Low));
        if resolves {
            assert_eq!(d.ok(resolve()), vec!["transitioned"]);
            assert_eq!(d.record().status(), Some("resolved"));
            d.ok(RecordCommand::Close);
            assert_eq!(d.record().phase(), Some(Phase::Closed));
        } else {
            assert_eq!(d.refused(resolve()), no_transition(&d, Trigger::RESOLVE));
            assert_eq!(d.record().status(), Some("new"));
        }
    }
}

#[test]
fn a_product_lifecycle_may_change_the_hold_reason_while_on_hold() {
    let rehold = also_from("hold", "change_hold", "on_hold");
    for (policy, changes) in [(IncidentManagement::policy(), false), (rehold, true)] {
        let mut d = in_progress(policy);
        d.ok(hold("awaiting caller"));
        if changes {
            assert_eq!(d.ok(hold("awaiting vendor")), vec!["transitioned"]);
            assert_eq!(d.record().hold_reason(), Some("awaiting vendor"));
        } else {
            assert_eq!(
                d.refused(hold("awaiting vendor")),
                no_transition(&d, Trigger::HOLD)
            );
            assert_eq!(d.record().hold_reason(), Some("awaiting caller"));
        }
        assert_eq!(d.record().status(), Some("on_hold"));
    }
}

#[test]
fn notes_after_closure_are_a_lifecycle_rule() {
    let late_notes = product::<IncidentManagement>(|d| d.rules.notes_after_closure = true);
    for (policy, accepted) in [(IncidentManagement::policy(), false), (late_notes, true)] {
        let mut d = in_progress(policy);
        d.ok(resolve());
        d.ok(RecordCommand::Close);
        for kind in [NoteKind::WorkNote, NoteKind::Comment] {
            if accepted {
                assert_eq!(d.ok(note(kind)), vec!["noted"]);
            } else {
                assert_eq!(d.refused(note(kind)), RefusalReason::Final(Phase::Closed));
            }
        }
        assert_eq!(d.record().notes(), if accepted { 2 } else { 0 });
        assert_eq!(
            d.refused(note(NoteKind::CallerUpdate)),
            RefusalReason::Final(Phase::Closed),
            "a caller update asks for work, which a closed record does not take"
        );
        assert_eq!(d.refused(classify()), RefusalReason::Final(Phase::Closed));
        assert_eq!(d.record().phase(), Some(Phase::Closed));
    }
}

#[test]
fn whether_assignment_starts_work_is_a_lifecycle_rule() {
    let manual = product::<IncidentManagement>(|d| d.rules.assignment_starts_work = false);
    let mut d = Incidents::logged_under(manual);
    assert_eq!(d.ok(assign()), vec!["assigned"]);
    assert_eq!(d.record().status(), Some("new"));
    assert_eq!(d.record().group(), Some(&id("desk")));
    // Work then starts when someone says so.
    assert_eq!(d.ok(RecordCommand::Start), vec!["transitioned"]);
    assert_eq!(d.record().status(), Some("in_progress"));

    let mut default = Incidents::logged();
    assert_eq!(default.ok(assign()), vec!["assigned", "transitioned"]);
    assert_eq!(default.record().status(), Some("in_progress"));
}

#[test]
fn closing_without_resolution_must_be_declared_by_the_lifecycle() {
    let close_from_new = |d: &mut LifecycleDefinition| {
        add_transition_like(d, "close", "close_unresolved", |t| {
            t.from = vec!["new".into()];
            t.guards.clear();
        });
    };
    let refused =
        edited::<IncidentManagement>(&IncidentManagement::default_lifecycle(), close_from_new);
    assert!(
        matches!(
            refused,
            Err(LifecycleError::ClosedWithoutResolution { ref status, .. }) if status == "closed"
        ),
        "{refused:?}"
    );

    let lenient = product::<IncidentManagement>(|d| {
        close_from_new(d);
        d.rules.closing_requires_resolution = false;
    });
    let mut d = Incidents::logged_under(lenient);
    assert_eq!(d.ok(RecordCommand::Close), vec!["transitioned"]);
    assert_eq!(d.record().phase(), Some(Phase::Closed));
    assert_eq!(d.record().resolution(), None);

    let mut default = Incidents::logged();
    assert_eq!(
        default.refused(RecordCommand::Close),
        no_transition(&default, Trigger::CLOSE)
    );
}

#[test]
fn resolution_notes_are_required_only_where_the_lifecycle_says_so() {
    let no_notes = product::<IncidentManagement>(|d| {
        for t in d
            .transitions
            .iter_mut()
            .filter(|t| t.trigger == Trigger::RESOLVE)
        {
            t.requires.retain(|r| *r != Requirement::ResolutionNotes);
        }
    });
    let without_notes = RecordCommand::Resolve {
        code: "fixed".into(),
        notes: String::new(),
    };
    let mut d = in_progress(no_notes);
    d.ok(without_notes.clone());
    let resolution = d.record().resolution().expect("resolved");
    assert_eq!(
        (resolution.code.as_str(), resolution.notes.as_str()),
        ("fixed", "")
    );

    let mut default = in_progress(IncidentManagement::policy());
    assert_eq!(
        default.refused(without_notes),
        RefusalReason::Missing(Requirement::ResolutionNotes)
    );
}

// ---- custom attributes ----------------------------------------------------------------------

/// `vendor` (acme or globex), `site` (text, required at logging), `units` (a number).
fn schema() -> AttributeSchema {
    AttributeSchema::default()
        .with(
            attribute("vendor"),
            AttributeSpec::choice(["acme", "globex"]),
        )
        .with(
            attribute("site"),
            AttributeSpec::new(AttributeKind::Text).required_at_log(),
        )
        .with(
            attribute("units"),
            AttributeSpec::new(AttributeKind::Number),
        )
}

fn set(name: &str, value: impl Into<AttributeValue>) -> RecordCommand {
    RecordCommand::SetAttribute {
        name: attribute(name),
        value: value.into(),
    }
}

fn remove(name: &str) -> RecordCommand {
    RecordCommand::RemoveAttribute {
        name: attribute(name),
    }
}

fn log_with(attributes: &[(&str, AttributeValue)]) -> LogRecord {
    attributes.iter().fold(log_input(), |input, (name, value)| {
        input.attribute(attribute(name), value.clone())
    })
}

/// The schema is checked at logging and on every change, for any record type.
fn attributes_are_checked_against_the_schema<K: Kind>() {
    let mut policy = K::policy();
    let record = K::record_policy_mut(&mut policy);
    *record = record.clone().with_attributes(schema());
    let mut d = Desk::<K>::with_policy(policy);
    let site = ("site", AttributeValue::from("berlin"));

    assert_eq!(
        d.refused(K::log(log_input())),
        RefusalReason::Attribute(AttributeError::Required(attribute("site")))
    );
    let unknown = d
        .run(K::log(log_with(&[site.clone(), ("colour", "red".into())])))
        .expect_err("not in the schema");
    assert_eq!(
        unknown.reason,
        RefusalReason::Attribute(AttributeError::Unknown(attribute("colour")))
    );
    assert!(
        unknown
            .to_string()
            .ends_with("log refused: attribute colour is not in the attribute schema"),
        "{unknown}"
    );
    assert_eq!(
        d.refused(K::log(log_with(&[site.clone(), ("units", "ten".into())]))),
        RefusalReason::Attribute(AttributeError::WrongKind {
            name: attribute("units"),
            expected: "a number",
            found: "\"ten\"".into(),
        })
    );
    d.ok(K::log(log_with(&[site, ("units", 3.into())])));
    assert_eq!(
        d.record().attribute(&attribute("site")),
        Some(&AttributeValue::from("berlin"))
    );
    assert_eq!(d.record().attribute(&attribute("units")), Some(&3.into()));

    let choice = d.run(set("vendor", "initech")).expect_err("not a choice");
    assert_eq!(
        choice.reason.to_string(),
        "attribute vendor takes one of its choices, not \"initech\""
    );
    assert_eq!(
        d.refused(set("units", true)),
        RefusalReason::Attribute(AttributeError::WrongKind {
            name: attribute("units"),
            expected: "a number",
            found: "flag".into(),
        })
    );
    assert_eq!(
        d.refused(set("colour", "red")),
        RefusalReason::Attribute(AttributeError::Unknown(attribute("colour")))
    );
    assert_eq!(d.ok(set("vendor", "acme")), vec!["attribute_set"]);
    assert_eq!(d.refused(set("vendor", "acme")), RefusalReason::Unchanged);
    assert_eq!(d.ok(set("vendor", "globex")), vec!["attribute_set"]);
    assert_eq!(
        d.record().attribute(&attribute("vendor")),
        Some(&AttributeValue::from("globex"))
    );
    assert_eq!(d.ok(remove("vendor")), vec!["attribute_removed"]);
    assert_eq!(d.record().attribute(&attribute("vendor")), None);
    assert_eq!(d.refused(remove("vendor")), RefusalReason::Unchanged);
    assert_eq!(d.replayed(), d.state, "attributes replay");
}

#[test]
fn incident_attributes_are_checked_against_the_schema() {
    attributes_are_checked_against_the_schema::<IncidentManagement>();
}

#[test]
fn request_attributes_are_checked_against_the_schema() {
    attributes_are_checked_against_the_schema::<RequestManagement>();
}

#[test]
fn a_transition_may_require_a_custom_attribute() {
    let vendor = Requirement::Attribute(attribute("vendor"));
    let mut policy: IncidentPolicy = product::<IncidentManagement>(|d| {
        for t in d
            .transitions
            .iter_mut()
            .filter(|t| t.trigger == Trigger::RESOLVE)
        {
            t.requires.push(Requirement::Attribute(attribute("vendor")));
        }
    });
    policy.record = policy.record.with_attributes(schema());
    let mut d = Incidents::with_policy(policy);
    d.ok(IncidentManagement::log(log_with(&[(
        "site",
        "berlin".into(),
    )])));
    d.ok(assign());
    d.ok(classify());
    d.ok(prioritise(Level::Low, Level::Low));
    let refusal = d.run(resolve()).expect_err("no vendor yet");
    assert_eq!(refusal.reason, RefusalReason::Missing(vendor.clone()));
    assert_eq!(
        refusal.to_string(),
        "incident R-1 (status in_progress): resolve refused: the transition requires attribute vendor, which is missing"
    );
    d.ok(set("vendor", "acme"));
    d.ok(remove("vendor"));
    assert_eq!(d.refused(resolve()), RefusalReason::Missing(vendor));
    d.ok(set("vendor", "globex"));
    d.ok(resolve());
    assert_eq!(d.record().status(), Some("resolved"));
}

// ---- assignment, links, who -------------------------------------------------------------------

#[test]
fn unassigning_clears_group_and_person() {
    let mut d = in_progress(IncidentManagement::policy());
    d.ok(RecordCommand::Assign {
        group: id("network"),
        person: Some(id("bob")),
    });
    assert_eq!(d.record().person(), Some(&id("bob")));
    assert_eq!(
        d.ok(RecordCommand::Unassign {
            reason: "wrong group".into()
        }),
        vec!["unassigned"]
    );
    assert_eq!((d.record().group(), d.record().person()), (None, None));
    assert_eq!(
        d.refused(RecordCommand::Unassign {
            reason: String::new()
        }),
        RefusalReason::Unchanged
    );
    assert_eq!(d.record().status(), Some("in_progress"));
}

#[test]
fn unlinking_removes_one_link() {
    let link = |kind: LinkKind, target: &str| RecordCommand::Link {
        kind,
        target: target.into(),
    };
    let unlink = |kind: LinkKind, target: &str| RecordCommand::Unlink {
        kind,
        target: target.into(),
    };
    let mut d = Incidents::logged();
    d.ok(link(LinkKind::PROBLEM, "PRB-1"));
    d.ok(link(LinkKind::CHANGE, "CHG-7"));
    assert_eq!(
        d.refused(link(LinkKind::PROBLEM, "PRB-1")),
        RefusalReason::Unchanged
    );
    assert_eq!(
        d.refused(unlink(LinkKind::CHANGE, "PRB-1")),
        RefusalReason::Unchanged,
        "a link is its kind and target"
    );
    assert_eq!(d.ok(unlink(LinkKind::PROBLEM, "PRB-1")), vec!["unlinked"]);
    assert_eq!(
        d.record().links(),
        [(LinkKind::CHANGE, "CHG-7".to_owned())].as_slice()
    );
    assert_eq!(
        d.refused(unlink(LinkKind::PROBLEM, "PRB-1")),
        RefusalReason::Unchanged
    );
}

#[test]
fn who_logged_and_who_resolved_are_remembered() {
    let mut d = Incidents::logged();
    assert_eq!(d.record().logged_by(), Some(&actor("frank")));
    assert_eq!(d.record().logged_at(), Some(t0()));
    assert_eq!(d.record().caller(), Some(&id("ana")));
    d.ok(assign());
    d.ok(classify());
    d.ok(prioritise(Level::Low, Level::Low));
    d.now += chrono::TimeDelta::hours(2);
    d.acting("gina").ok(resolve());
    let resolution = d.record().resolution().expect("resolved");
    assert_eq!(resolution.by, Some(actor("gina")));
    assert_eq!(resolution.at, d.now);
    assert_eq!(d.record().logged_by(), Some(&actor("frank")), "unchanged");
    assert_eq!(d.replayed(), d.state, "the stamps replay");

    let mut anonymous = Incidents::new();
    anonymous.actor = None;
    anonymous.ok(IncidentManagement::log(log_input()));
    assert_eq!(anonymous.record().logged_by(), None);
}

#[test]
fn holding_a_resolved_record_opens_it_again_and_a_major_incident_needs_a_new_review() {
    let policy = also_from("hold", "hold_resolved", "resolved");
    let mut d = in_progress(policy);
    d.ok(RecordCommand::OverridePriority {
        priority: smsys_core::records::Priority::new(1).expect("valid"),
        reason: "all users".into(),
    });
    d.ok(resolve());
    d.ok(smsys_processes::IncidentCommand::RecordMajorReview {
        findings: "spof".into(),
    });
    assert!(d.state.major().is_some_and(|m| m.reviewed));
    d.ok(hold("vendor confirms the fix"));
    assert_eq!(d.record().phase(), Some(Phase::Pending));
    assert!(
        d.record().resolution().is_none(),
        "open again: no resolution"
    );
    assert!(
        d.state.major().is_some_and(|m| !m.reviewed),
        "a new review is due"
    );
    d.ok(RecordCommand::Resume);
    d.ok(resolve());
    let refused = d.refused(RecordCommand::Close);
    assert!(
        matches!(refused, RefusalReason::GuardFailed(ref g) if g.as_str() == "major_review_done"),
        "{refused:?}"
    );
    assert_eq!(d.replayed(), d.state);
}

#[test]
fn a_close_may_require_the_resolution_code_recorded_before() {
    let policy = product::<IncidentManagement>(|d| {
        let close = d
            .transitions
            .iter_mut()
            .find(|t| t.name == "close")
            .expect("a close transition");
        close.requires.push(Requirement::ResolutionCode);
        let resolve = d
            .transitions
            .iter_mut()
            .find(|t| t.name == "resolve")
            .expect("a resolve transition");
        resolve
            .requires
            .retain(|r| *r != Requirement::ResolutionCode);
    });
    let mut without_code = in_progress(policy.clone());
    without_code.ok(RecordCommand::Resolve {
        code: String::new(),
        notes: "restarted".into(),
    });
    assert_eq!(
        without_code.refused(RecordCommand::Close),
        RefusalReason::Missing(Requirement::ResolutionCode)
    );
    let mut with_code = in_progress(policy);
    with_code.ok(resolve());
    assert_eq!(with_code.ok(RecordCommand::Close), vec!["transitioned"]);
}
