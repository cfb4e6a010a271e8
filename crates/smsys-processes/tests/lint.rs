//! The lifecycle lint: the shipped definitions pass; customised copies of them that skip an
//! activity ISO/IEC 20000-1 requires are flagged with the clause and rule they break.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests stop at the first broken expectation"
)]

use smsys_core::records::{ChangeKind, DefinitionRef, RecordType};
use smsys_processes::change::{ChangeManagement, ChangePolicy};
use smsys_processes::lifecycle::LifecycleDefinition;
use smsys_processes::lint::{self, Checked, Finding};
use smsys_processes::sla::SlaDefinition;
use smsys_processes::{
    IncidentManagement, IncidentPolicy, Lifecycle, LifecycleError, ProblemManagement, RecordRules,
    ReleaseManagement, RequestManagement,
};

const INCIDENT: &str = include_str!("../src/incident/lifecycle.toml");
const REQUEST: &str = include_str!("../src/request/lifecycle.toml");
const PROBLEM: &str = include_str!("../src/problem/lifecycle.toml");
const NORMAL: &str = include_str!("../src/change/normal.toml");
const STANDARD: &str = include_str!("../src/change/standard.toml");
const RELEASE: &str = include_str!("../src/release/lifecycle.toml");
const SLAS: &str = include_str!("../sla/desk.sla.toml");

/// `shipped` with the line `old` replaced by `new` (which may hold several lines).
fn edit(shipped: &str, old: &str, new: &str) -> String {
    assert!(shipped.contains(old), "the shipped definition has {old:?}");
    shipped.replacen(old, new, 1)
}

fn finding(
    clause: &str,
    record_type: &str,
    lifecycle: &str,
    rule: &'static str,
    message: &str,
) -> Finding {
    Finding {
        clause: clause.to_owned(),
        checked: Checked::Lifecycle,
        record_type: Some(RecordType::new(record_type).unwrap()),
        definition: DefinitionRef {
            name: lifecycle.to_owned(),
            version: 1,
        },
        rule,
        message: message.to_owned(),
    }
}

#[test]
fn shipped_lifecycles_and_policies_pass_cleanly() {
    assert_eq!(lint::check_defaults(), vec![]);
    for lifecycle in [
        smsys_processes::incident::default_lifecycle(),
        smsys_processes::request::default_lifecycle(),
        smsys_processes::problem::default_lifecycle(),
        smsys_processes::known_error::default_lifecycle(),
        smsys_processes::release::default_lifecycle(),
        smsys_processes::change::default_lifecycle(ChangeKind::Standard),
        smsys_processes::change::default_lifecycle(ChangeKind::Normal),
        smsys_processes::change::default_lifecycle(ChangeKind::Emergency),
    ] {
        assert_eq!(
            lint::check_lifecycle(&lifecycle),
            vec![],
            "{}",
            lifecycle.reference()
        );
    }
    assert_eq!(lint::check_change_policy(&ChangePolicy::default()), vec![]);
    assert_eq!(
        lint::check_record_policy(&IncidentPolicy::default().record),
        vec![]
    );
}

#[test]
fn normal_change_implemented_before_authorisation_is_flagged() {
    let text = edit(
        NORMAL,
        r#"  { name = "implement", trigger = "implement", from = ["scheduled"], to = "implement", guards = ["authorised", "window_planned"] },"#,
        r#"  { name = "implement", trigger = "implement", from = ["scheduled"], to = "implement", guards = ["authorised", "window_planned"] },
  { name = "implement_now", trigger = "implement", from = ["assess"], to = "implement", guards = ["planned", "assessed", "window_planned"] },"#,
    );
    let custom = Lifecycle::from_toml(&text, &ChangeManagement::vocabulary()).unwrap();
    let expected = vec![finding(
        "8.5.1",
        "change",
        "change_normal",
        "change.implement_before_authorisation",
        "authorisation is skipped on the way to status \"implement\" (stage implement): \
         new -> assess -> implement passes no transition guarded by authorised; \
         guard a transition on every such path with authorised",
    )];
    assert_eq!(
        lint::check_change_lifecycle(&custom, ChangeKind::Normal),
        expected
    );
    // Without its kind, a pinned template would do instead: the message says so.
    let without_kind = lint::check_lifecycle(&custom);
    assert_eq!(without_kind.len(), 1);
    assert_eq!(
        without_kind[0].rule,
        "change.implement_before_authorisation"
    );
    assert!(
        without_kind[0]
            .message
            .contains("guarded by authorised or template_pinned")
    );
}

#[test]
fn standard_change_rules_are_not_normal_change_rules() {
    let standard = Lifecycle::from_toml(STANDARD, &ChangeManagement::vocabulary()).unwrap();
    assert_eq!(
        lint::check_change_lifecycle(&standard, ChangeKind::Standard),
        vec![]
    );
    let as_normal: Vec<_> = lint::check_change_lifecycle(&standard, ChangeKind::Normal)
        .into_iter()
        .map(|f| (f.clause, f.rule))
        .collect();
    assert_eq!(
        as_normal,
        vec![
            ("8.5.1".to_owned(), "change.implement_before_authorisation"),
            ("8.5.1".to_owned(), "change.implement_without_assessment"),
        ]
    );

    let text = edit(
        STANDARD,
        r#"guards = ["template_pinned", "planned", "window_planned"]"#,
        r#"guards = ["planned", "window_planned"]"#,
    );
    let text = edit(
        &text,
        r#"guards = ["template_pinned", "window_planned"]"#,
        r#"guards = ["window_planned"]"#,
    );
    let custom = Lifecycle::from_toml(&text, &ChangeManagement::vocabulary()).unwrap();
    let rules: Vec<_> = lint::check_change_lifecycle(&custom, ChangeKind::Standard)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec!["change.implement_without_template"]);
}

#[test]
fn failed_change_closed_without_remediation_is_flagged() {
    let text = edit(
        NORMAL,
        r#"  { name = "revert","#,
        r#"  { name = "abandon", trigger = "close", from = ["failed"], to = "closed", guards = ["reviewed", "failure_investigated"] },
  { name = "revert","#,
    );
    let custom = Lifecycle::from_toml(&text, &ChangeManagement::vocabulary()).unwrap();
    assert_eq!(
        lint::check_change_lifecycle(&custom, ChangeKind::Normal),
        vec![finding(
            "8.5.1",
            "change",
            "change_normal",
            "change.failure_without_remediation",
            "the executed remediation plan is skipped on the way to status \"closed\" (phase closed): \
             failed -> closed passes no transition guarded by remediation_executed; \
             guard a transition on every such path with remediation_executed",
        )]
    );

    // A change that cannot fail cannot record its remediation either.
    let text = edit(
        NORMAL,
        r#"  { name = "fail", trigger = "fail", from = ["implement"], to = "failed", guards = ["implementation_failed"] },"#,
        r#"  { name = "fail", trigger = "fail", from = ["scheduled"], to = "failed", guards = ["implementation_failed"] },"#,
    );
    let custom = Lifecycle::from_toml(&text, &ChangeManagement::vocabulary()).unwrap();
    let rules: Vec<_> = lint::check_change_lifecycle(&custom, ChangeKind::Normal)
        .into_iter()
        .map(|f| (f.clause, f.rule))
        .collect();
    assert_eq!(
        rules,
        vec![("8.5.1".to_owned(), "change.failure_not_recordable")]
    );
}

#[test]
fn release_deployed_without_baseline_is_flagged() {
    let text = edit(
        RELEASE,
        r#"{ name = "deploy", trigger = "deploy", from = ["baselined"], to = "deploying", guards = ["authorised", "baseline_taken"] },"#,
        r#"{ name = "deploy", trigger = "deploy", from = ["approved", "baselined"], to = "deploying", guards = ["authorised"] },"#,
    );
    let custom = Lifecycle::from_toml(&text, &ReleaseManagement::vocabulary()).unwrap();
    assert_eq!(
        lint::check_lifecycle(&custom),
        vec![finding(
            "8.5.3",
            "release",
            "release",
            "release.deploy_without_baseline",
            "a baseline of the affected CIs is skipped on the way to status \"deploying\" (stage deploying): \
             planned -> built -> accepted -> approved -> deploying passes no transition guarded by baseline_taken; \
             guard a transition on every such path with baseline_taken",
        )]
    );

    // A second attempt straight after a rollback deploys without a new baseline.
    let text = edit(
        RELEASE,
        r#"  { name = "close","#,
        r#"  { name = "retry", trigger = "deploy", from = ["rolled_back"], to = "deploying", guards = ["authorised"] },
  { name = "close","#,
    );
    let custom = Lifecycle::from_toml(&text, &ReleaseManagement::vocabulary()).unwrap();
    let found = lint::check_lifecycle(&custom);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].clause.as_str(), found[0].rule),
        ("8.5.3", "release.deploy_without_baseline")
    );
    assert!(found[0].message.contains("rolled_back -> deploying passes"));

    // Acceptance without verified criteria, closure without the early-life review.
    let text = edit(RELEASE, r#"guards = ["criteria_met"]"#, r#"guards = []"#);
    let text = edit(
        &text,
        r#"guards = ["early_life_reviewed"]"#,
        r#"guards = []"#,
    );
    let custom = Lifecycle::from_toml(&text, &ReleaseManagement::vocabulary()).unwrap();
    let rules: Vec<_> = lint::check_lifecycle(&custom)
        .into_iter()
        .map(|f| (f.clause, f.rule))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("8.5.3".to_owned(), "release.accept_without_criteria"),
            ("8.5.3".to_owned(), "release.deploy_without_acceptance"),
            (
                "8.5.3".to_owned(),
                "release.close_without_early_life_review"
            ),
        ]
    );
}

#[test]
fn incident_lifecycle_without_a_closed_status_is_flagged() {
    let text = edit(
        INCIDENT,
        "  { name = \"closed\", phase = \"closed\" },\n",
        "",
    );
    let text = edit(
        &text,
        r#"  { name = "close", trigger = "close", from = ["resolved"], to = "closed", guards = ["resolution_recorded", "major_review_done"] },"#,
        "",
    );
    let custom = Lifecycle::from_toml(&text, &IncidentManagement::vocabulary()).unwrap();
    assert_eq!(
        lint::check_lifecycle(&custom),
        vec![finding(
            "8.6.1",
            "incident",
            "incident",
            "lifecycle.no_closed_status",
            "no status of phase closed can be reached from the initial status \"new\", so no record \
             is ever closed once its work is done; add a closed status and a transition into it",
        )]
    );
}

#[test]
fn incident_resolved_unclassified_or_closed_without_review_is_flagged() {
    let text = edit(
        INCIDENT,
        r#"requires = ["category", "priority", "resolution_code", "resolution_notes"]"#,
        r#"requires = ["priority", "resolution_code", "resolution_notes"]"#,
    );
    let text = edit(
        &text,
        r#"guards = ["resolution_recorded", "major_review_done"]"#,
        r#"guards = ["resolution_recorded"]"#,
    );
    let custom = Lifecycle::from_toml(&text, &IncidentManagement::vocabulary()).unwrap();
    let found = lint::check_lifecycle(&custom);
    let rules: Vec<_> = found.iter().map(|f| (f.clause.as_str(), f.rule)).collect();
    assert_eq!(
        rules,
        vec![
            ("8.6.1", "incident.resolve_without_classification"),
            ("8.6.1", "incident.close_without_major_review"),
        ]
    );
    assert_eq!(
        found[0].message,
        "classification is skipped on the way to status \"resolved\" (phase resolved): \
         new -> in_progress -> resolved passes no transition requiring category; \
         require category on a transition on every such path"
    );
}

#[test]
fn unreachable_status_and_dead_end_are_flagged_before_validation() {
    let statuses = "  { name = \"cancelled\", phase = \"cancelled\" },\n";
    let text = edit(
        INCIDENT,
        statuses,
        &format!("{statuses}  {{ name = \"limbo\", phase = \"active\" }},\n"),
    );
    let text = edit(
        &text,
        "transitions = [\n",
        "transitions = [\n  { name = \"drop\", trigger = \"cancel\", from = [\"limbo\"], to = \"cancelled\" },\n",
    );
    // Validation refuses it with the first problem; the lint reports each with its clause.
    assert!(matches!(
        Lifecycle::from_toml(&text, &IncidentManagement::vocabulary()),
        Err(LifecycleError::Unreachable { status, .. }) if status == "limbo"
    ));
    let definition: LifecycleDefinition = toml::from_str(&text).unwrap();
    assert_eq!(
        lint::check_definition(&definition),
        vec![finding(
            "8.6.1",
            "incident",
            "incident",
            "lifecycle.unreachable_status",
            "status \"limbo\" cannot be reached from the initial status \"new\"; add a transition into it or remove it",
        )]
    );

    let text = edit(
        INCIDENT,
        statuses,
        &format!("{statuses}  {{ name = \"awaiting_vendor\", phase = \"pending\" }},\n"),
    );
    let text = edit(
        &text,
        "transitions = [\n",
        "transitions = [\n  { name = \"to_vendor\", trigger = \"hold\", from = [\"in_progress\"], to = \"awaiting_vendor\" },\n",
    );
    let definition: LifecycleDefinition = toml::from_str(&text).unwrap();
    assert_eq!(
        lint::check_definition(&definition),
        vec![finding(
            "8.6.1",
            "incident",
            "incident",
            "lifecycle.dead_end",
            "from status \"awaiting_vendor\" no closed or cancelled status can be reached; add a transition out of it",
        )]
    );
}

#[test]
fn request_fulfilled_without_approval_is_flagged() {
    let text = edit(
        REQUEST,
        r#"to = "in_fulfilment", guards = ["approved"] }"#,
        r#"to = "in_fulfilment" }"#,
    );
    let custom = Lifecycle::from_toml(&text, &RequestManagement::vocabulary()).unwrap();
    assert_eq!(
        lint::check_lifecycle(&custom),
        vec![finding(
            "8.6.2",
            "service_request",
            "service_request",
            "request.fulfil_without_approval",
            "approval is skipped on the way to status \"fulfilled\" (phase resolved): \
             awaiting_approval -> in_fulfilment -> fulfilled passes no transition guarded by approved; \
             guard a transition on every such path with approved",
        )]
    );
}

#[test]
fn problem_closed_without_root_cause_or_accepted_risk_is_flagged() {
    let text = edit(
        PROBLEM,
        r#"guards = ["resolution_or_risk_accepted", "fix_reviewed"]"#,
        r#"guards = ["fix_reviewed"]"#,
    );
    let custom = Lifecycle::from_toml(&text, &ProblemManagement::vocabulary()).unwrap();
    let found = lint::check_lifecycle(&custom);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].clause.as_str(), found[0].rule),
        ("8.6.3", "problem.close_without_root_cause_or_accepted_risk")
    );
    assert!(
        found[0]
            .message
            .contains("new -> assess -> resolved -> closed")
    );
}

#[test]
fn slas_without_targets_are_flagged() {
    #[derive(serde::Deserialize)]
    struct SlaFile {
        sla: Vec<SlaDefinition>,
    }
    let shipped: SlaFile = toml::from_str(SLAS).unwrap();
    for sla in &shipped.sla {
        assert_eq!(lint::check_sla(sla), vec![]);
    }
    let mut sla = shipped.sla[0].clone();
    sla.targets.clear();
    sla.stop.clear();
    let found = lint::check_sla(&sla);
    assert_eq!(
        found,
        vec![
            Finding {
                clause: "8.3.3".into(),
                checked: Checked::Sla,
                record_type: None,
                definition: DefinitionRef {
                    name: "desk-response".into(),
                    version: 1
                },
                rule: "sla.no_targets",
                message: "timer \"response\" has no service level target; add a target per priority or a default one".into(),
            },
            Finding {
                clause: "8.3.3".into(),
                checked: Checked::Sla,
                record_type: None,
                definition: DefinitionRef {
                    name: "desk-response".into(),
                    version: 1
                },
                rule: "sla.no_stop",
                message: "timer \"response\" has no stop condition, so no cycle completes against its target; add the event that meets it".into(),
            },
        ]
    );
    let json = serde_json::to_value(&found[0]).unwrap();
    assert_eq!(json["checked"], "sla");
    assert_eq!(json["rule"], "sla.no_targets");
    assert_eq!(
        found[0].to_string(),
        "8.3.3 desk-response v1 [sla.no_targets]: timer \"response\" has no service level target; add a target per priority or a default one"
    );
}

#[test]
fn emergency_change_closed_without_retrospective_assessment_is_flagged() {
    const EMERGENCY: &str = include_str!("../src/change/emergency.toml");
    let text = edit(
        EMERGENCY,
        r#"guards = ["reviewed", "assessed", "failure_investigated"]"#,
        r#"guards = ["reviewed", "failure_investigated"]"#,
    );
    let custom = Lifecycle::from_toml(&text, &ChangeManagement::vocabulary()).unwrap();
    let found = lint::check_change_lifecycle(&custom, ChangeKind::Emergency);
    let rules: Vec<_> = found.iter().map(|f| (f.clause.as_str(), f.rule)).collect();
    assert_eq!(rules, vec![("8.5.1", "change.close_without_assessment")]);
    assert!(found[0].message.starts_with(
        "the retrospective assessment is skipped on the way to status \"closed\" (phase closed): \
         new -> authorise -> scheduled -> implement -> review -> closed"
    ));
}
