//! The personal data of the shipped record types ([`personal_data`]), field by field.
//!
//! Personal (encrypted, erased with the record's caller):
//! - `logged`: `caller` (the data subject; erased reads `"erased"`, a valid [`PersonId`]),
//!   `summary` and `description` (free text the caller gave), `attributes` (custom fields a
//!   product defines, which may hold anything; erased reads `{}`);
//! - free text that may quote or describe the caller: `priority_overridden.reason`,
//!   `unassigned.reason`, `noted.text` (work notes, comments, caller updates),
//!   `escalated.reason`, `transitioned.detail.reason` (hold, reopen, cancellation) and
//!   `transitioned.detail.notes` (resolution notes), `attribute_set.value`;
//! - incidents: `major_flagged.reason`, `management_informed.summary`,
//!   `major_reviewed.findings`;
//! - requests: `approval_rejected.reason`, `task_added.description`;
//! - problems: `root_cause_recorded.cause`, `workaround_recorded.text`,
//!   `risk_accepted.reason`;
//! - known errors (the caller is the author): `logged.symptom`, `logged.root_cause` and
//!   `logged.workaround`, `content_revised.symptom`, `.root_cause`, `.workaround` and
//!   `.reason`, `retired.reason` (free text, as a problem's root cause and workaround are);
//! - changes (the caller is the requester): free text, `approval_rejected.reason`,
//!   `implemented.notes`, `remediation_executed.notes`, `failure_investigated.findings`,
//!   `reviewed.findings`;
//! - nonconformities (the caller is who raised it): `corrected.correction`,
//!   `cause_analysed.cause`, `action_implemented.notes`, `effectiveness_reviewed.findings`.
//!
//! Not personal data of the subject, kept in plaintext: the reference, lifecycle, statuses and
//! phases, channel, service, affected CIs, groups, categories, impact, urgency and priority,
//! resolution codes, link targets (record and CI ids), attribute names, SLA timers and every
//! instant, catalogue items and fulfilment instruction references, a root cause's method and
//! contributing CIs, whether a workaround is published, and the problem a duplicate names; a
//! known error's problem, affected CIs and services, version numbers and the known error
//! superseding it; a change's kind, template, planned CIs and CI updates, its implementation,
//! remediation and test plans, its assessment (risk, conditions, impact), its window and
//! conflicts, outcomes; a nonconformity's source (kind, record, timer, audit), a cause
//! analysis's method, and its corrective actions (organisational measures, with their owners
//! and due dates: the audit trail 10.1 asks for).
//! Staff named by a record (`assigned.person`, `escalated.escalation.to_manager`,
//! `major_manager_assigned.manager`, `approval_requested.approvers`, `approval_given.approver`,
//! `approval_rejected.approver`, `management_informed.audience`, and a change's
//! `planned.implementer` and `authorised.approvers`) are the audit trail of who acted (8.6.1
//! and 8.5.1 require it: segregation of duties is checked on it) and are not erased with a
//! caller; a product that treats them as personal data adds them to its policy. Event metadata (actor, tenant, extensions) is never
//! encrypted: do not use a caller's identity as the actor of their own updates if it must be
//! erasable.
//!
//! [`PersonId`]: crate::records::PersonId

use serde_json::{Value, json};

use crate::personal::{FieldPointer, PersonalData, PersonalDataError};
use crate::records::kind::event_type;

/// What erased free text reads as.
pub const ERASED_TEXT: &str = "[erased]";
/// What an erased person reads as (a valid [`PersonId`](crate::records::PersonId)).
pub const ERASED_PERSON: &str = "erased";

fn add(
    policy: PersonalData,
    category: &str,
    name: &str,
    fields: &[(&str, Value)],
) -> Result<PersonalData, PersonalDataError> {
    fields.iter().try_fold(policy, |policy, (pointer, erased)| {
        policy.with_field(
            event_type(category, name),
            FieldPointer::new(*pointer)?,
            erased.clone(),
        )
    })
}

/// The personal fields every record type of `category` shares: those of its `logged` event
/// (with `caller` as the data subject) and of the shared [`RecordEvent`]s.
///
/// [`RecordEvent`]: crate::records::RecordEvent
pub fn shared_personal_data(category: &str) -> Result<PersonalData, PersonalDataError> {
    let text = || json!(ERASED_TEXT);
    let policy = PersonalData::new().with_subject(
        event_type(category, "logged"),
        FieldPointer::new("/caller")?,
    );
    let policy = add(
        policy,
        category,
        "logged",
        &[
            ("/caller", json!(ERASED_PERSON)),
            ("/summary", text()),
            ("/description", text()),
            ("/attributes", json!({})),
        ],
    )?;
    let policy = add(
        policy,
        category,
        "priority_overridden",
        &[("/reason", text())],
    )?;
    let policy = add(policy, category, "unassigned", &[("/reason", text())])?;
    let policy = add(policy, category, "noted", &[("/text", text())])?;
    let policy = add(policy, category, "escalated", &[("/reason", text())])?;
    let policy = add(
        policy,
        category,
        "transitioned",
        &[("/detail/reason", text()), ("/detail/notes", text())],
    )?;
    add(policy, category, "attribute_set", &[("/value", text())])
}

/// The personal data of the shipped record types, incidents, service requests, problems,
/// known errors, changes, releases and nonconformities (see the [module docs](self) for what is and is not personal). A
/// product extends it with [`PersonalData::merge`].
///
/// ```
/// use smsys_core::EventType;
/// use smsys_core::records::personal_data;
/// let policy = personal_data();
/// let logged = EventType::new("incident.logged")?;
/// assert!(policy.field(&logged, "/summary").is_some());
/// assert!(policy.field(&logged, "/service").is_none());
/// # Ok::<(), smsys_core::IdError>(())
/// ```
pub fn personal_data() -> PersonalData {
    shipped().unwrap_or_else(|e| unreachable!("the shipped personal data policy is valid: {e}"))
}

fn shipped() -> Result<PersonalData, PersonalDataError> {
    let text = || json!(ERASED_TEXT);
    let incident = shared_personal_data("incident")?;
    let incident = add(
        incident,
        "incident",
        "major_flagged",
        &[("/reason", text())],
    )?;
    let incident = add(
        incident,
        "incident",
        "management_informed",
        &[("/summary", text())],
    )?;
    let incident = add(
        incident,
        "incident",
        "major_reviewed",
        &[("/findings", text())],
    )?;
    let request = shared_personal_data("request")?;
    let request = add(
        request,
        "request",
        "approval_rejected",
        &[("/reason", text())],
    )?;
    let request = add(
        request,
        "request",
        "task_added",
        &[("/description", text())],
    )?;
    let problem = shared_personal_data("problem")?;
    let problem = add(
        problem,
        "problem",
        "root_cause_recorded",
        &[("/cause", text())],
    )?;
    let problem = add(
        problem,
        "problem",
        "workaround_recorded",
        &[("/text", text())],
    )?;
    let problem = add(problem, "problem", "risk_accepted", &[("/reason", text())])?;
    let known_error = shared_personal_data("known_error")?;
    let known_error = add(
        known_error,
        "known_error",
        "logged",
        &[
            ("/symptom", text()),
            ("/root_cause", text()),
            ("/workaround", text()),
        ],
    )?;
    let known_error = add(
        known_error,
        "known_error",
        "content_revised",
        &[
            ("/symptom", text()),
            ("/root_cause", text()),
            ("/workaround", text()),
            ("/reason", text()),
        ],
    )?;
    let known_error = add(
        known_error,
        "known_error",
        "retired",
        &[("/reason", text())],
    )?;
    let change = shared_personal_data("change")?;
    let change = add(
        change,
        "change",
        "approval_rejected",
        &[("/reason", text())],
    )?;
    let change = add(change, "change", "implemented", &[("/notes", text())])?;
    let change = add(
        change,
        "change",
        "remediation_executed",
        &[("/notes", text())],
    )?;
    let change = add(
        change,
        "change",
        "failure_investigated",
        &[("/findings", text())],
    )?;
    let change = add(change, "change", "reviewed", &[("/findings", text())])?;
    let release = shared_personal_data("release")?;
    let release = add(
        release,
        "release",
        "approval_rejected",
        &[("/reason", text())],
    )?;
    let release = add(
        release,
        "release",
        "criterion_verified",
        &[("/evidence", text())],
    )?;
    let release = add(release, "release", "deployed", &[("/notes", text())])?;
    let release = add(release, "release", "rolled_back", &[("/notes", text())])?;
    let release = add(
        release,
        "release",
        "early_life_waived",
        &[("/reason", text())],
    )?;
    let release = add(
        release,
        "release",
        "early_life_reviewed",
        &[("/findings", text())],
    )?;
    let nonconformity = shared_personal_data("nonconformity")?;
    let nonconformity = add(
        nonconformity,
        "nonconformity",
        "corrected",
        &[("/correction", text())],
    )?;
    let nonconformity = add(
        nonconformity,
        "nonconformity",
        "cause_analysed",
        &[("/cause", text())],
    )?;
    let nonconformity = add(
        nonconformity,
        "nonconformity",
        "action_implemented",
        &[("/notes", text())],
    )?;
    let nonconformity = add(
        nonconformity,
        "nonconformity",
        "effectiveness_reviewed",
        &[("/findings", text())],
    )?;
    incident
        .merge(request)?
        .merge(problem)?
        .merge(known_error)?
        .merge(change)?
        .merge(release)?
        .merge(nonconformity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::DomainEvent;
    use crate::records::{
        ChangeEvent, Incident, KnownErrorEvent, ProblemEvent, RequestEvent, TypedEvent,
    };

    /// Every erased placeholder still decodes: a payload with each personal field replaced by
    /// its placeholder reads as the typed event.
    #[test]
    fn erased_payloads_still_decode() {
        let policy = personal_data();
        let samples = [
            (
                "incident.logged",
                json!({"reference": "INC-1", "lifecycle": {"name": "incident", "version": 1},
                "status": "new", "caller": "ana", "channel": "phone", "service": "email",
                "affected_cis": [], "summary": "s", "description": "d", "attributes": {"vendor": "x"}}),
            ),
            (
                "incident.noted",
                json!({"kind": "comment", "text": "call me on 555"}),
            ),
            (
                "incident.transitioned",
                json!({"transition": "resolve", "from": "a", "to": "b",
                "phase": "resolved", "detail": {"kind": "resolution", "code": "fixed", "notes": "n"},
                "at": "2026-01-01T00:00:00Z"}),
            ),
            (
                "incident.attribute_set",
                json!({"name": "vendor", "value": 3}),
            ),
            ("incident.major_reviewed", json!({"findings": "f"})),
        ];
        for (name, mut payload) in samples {
            let ty = crate::EventType::new(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(policy.holds_personal(&ty, &payload), "{name}");
            for field in policy.fields(&ty) {
                if let Some(value) = payload.pointer_mut(field.pointer.as_str()) {
                    *value = field.erased.clone();
                }
            }
            let decoded = TypedEvent::<Incident>::from_payload(&ty, payload);
            assert!(decoded.is_ok(), "{name}: {decoded:?}");
        }
        let ty = crate::EventType::new("request.task_added").unwrap_or_else(|e| panic!("{e}"));
        let payload = json!({"task": "t1", "description": ERASED_TEXT});
        assert!(RequestEvent::from_payload(&ty, payload).is_ok());
        let problem = [
            (
                "problem.root_cause_recorded",
                json!({"cause": "c", "method": "five whys", "contributing_cis": ["mx-01"]}),
                "/cause",
            ),
            (
                "problem.workaround_recorded",
                json!({"text": "restart", "published": true}),
                "/text",
            ),
            ("problem.risk_accepted", json!({"reason": "r"}), "/reason"),
        ];
        for (name, mut payload, pointer) in problem {
            let ty = crate::EventType::new(name).unwrap_or_else(|e| panic!("{e}"));
            let fields = policy.fields(&ty);
            assert_eq!(fields.len(), 1, "{name}");
            assert_eq!(fields[0].pointer.as_str(), pointer, "{name}");
            if let Some(value) = payload.pointer_mut(pointer) {
                *value = fields[0].erased.clone();
            }
            assert!(ProblemEvent::from_payload(&ty, payload).is_ok(), "{name}");
        }
        let marked =
            crate::EventType::new("problem.marked_duplicate").unwrap_or_else(|e| panic!("{e}"));
        assert!(policy.fields(&marked).is_empty());
        let known_error = [
            (
                "known_error.logged",
                json!({"reference": "KE-1", "lifecycle": {"name": "known_error", "version": 1},
                "status": "draft", "caller": "ana", "channel": "portal", "service": "email",
                "affected_cis": ["mx-01"], "summary": "s", "description": "d",
                "problem": "PRB-1", "symptom": "bounces", "root_cause": "queue",
                "workaround": "flush", "affected_services": ["smtp"]}),
            ),
            (
                "known_error.content_revised",
                json!({"symptom": "bounces", "root_cause": "queue", "workaround": "flush",
                "affected_cis": ["mx-01"], "affected_services": [], "reason": "r"}),
            ),
            (
                "known_error.retired",
                json!({"reason": "fixed", "superseded_by": "KE-2"}),
            ),
        ];
        for (name, mut payload) in known_error {
            let ty = crate::EventType::new(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(policy.holds_personal(&ty, &payload), "{name}");
            for field in policy.fields(&ty) {
                if let Some(value) = payload.pointer_mut(field.pointer.as_str()) {
                    *value = field.erased.clone();
                }
            }
            let decoded = KnownErrorEvent::from_payload(&ty, payload);
            assert!(decoded.is_ok(), "{name}: {decoded:?}");
        }
        let published =
            crate::EventType::new("known_error.published").unwrap_or_else(|e| panic!("{e}"));
        assert!(policy.fields(&published).is_empty());
        let logged = crate::EventType::new("known_error.logged").unwrap_or_else(|e| panic!("{e}"));
        for pointer in [
            "/problem",
            "/affected_services",
            "/affected_cis",
            "/service",
        ] {
            assert!(policy.field(&logged, pointer).is_none(), "{pointer}");
        }
    }

    /// A change's personal fields: each erased payload still decodes as a change event, the
    /// persons read as a valid person, and what is not personal stays out of the policy.
    #[test]
    fn a_changes_personal_fields_erase_to_payloads_that_decode() {
        let policy = personal_data();
        let logged = crate::EventType::new("change.logged").unwrap_or_else(|e| panic!("{e}"));
        let subject = policy.subject_of(&logged, &json!({"caller": "ana"}));
        assert_eq!(
            subject.map(|s| s.map(|s| s.as_str().to_owned())),
            Ok(Some("ana".to_owned())),
            "the requester is the data subject"
        );
        let samples = [
            (
                "change.logged",
                json!({"reference": "CHG-1", "lifecycle": {"name": "change_normal", "version": 1},
                "status": "new", "caller": "ana", "channel": "portal", "service": "email",
                "affected_cis": ["mx-01"], "summary": "s", "description": "d", "kind": "normal"}),
                vec!["/caller", "/summary", "/description"],
            ),
            (
                "change.approval_rejected",
                json!({"approver": "carol", "group": "cab", "reason": "ask dave"}),
                vec!["/reason"],
            ),
            (
                "change.implemented",
                json!({"outcome": "failed", "notes": "n"}),
                vec!["/notes"],
            ),
            (
                "change.remediation_executed",
                json!({"restored": true, "notes": "n"}),
                vec!["/notes"],
            ),
            (
                "change.failure_investigated",
                json!({"findings": "f"}),
                vec!["/findings"],
            ),
            (
                "change.reviewed",
                json!({"successful": false, "findings": "f"}),
                vec!["/findings"],
            ),
        ];
        for (name, mut payload, pointers) in samples {
            let ty = crate::EventType::new(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(policy.holds_personal(&ty, &payload), "{name}");
            for pointer in pointers {
                assert!(policy.field(&ty, pointer).is_some(), "{name} {pointer}");
            }
            for field in policy.fields(&ty) {
                if let Some(value) = payload.pointer_mut(field.pointer.as_str()) {
                    *value = field.erased.clone();
                }
            }
            let decoded = ChangeEvent::from_payload(&ty, payload);
            assert!(decoded.is_ok(), "{name}: {decoded:?}");
        }
        let planned = crate::EventType::new("change.planned").unwrap_or_else(|e| panic!("{e}"));
        for pointer in [
            "/cis",
            "/implementation",
            "/remediation",
            "/ci_updates",
            "/implementer",
        ] {
            assert!(policy.field(&planned, pointer).is_none(), "{pointer}");
        }
        let rejected =
            crate::EventType::new("change.approval_rejected").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            policy.field(&rejected, "/approver").is_none(),
            "staff stay the audit trail"
        );
        for name in [
            "change.assessed",
            "change.authorised",
            "change.scheduled",
            "change.approval_given",
            "change.planned",
        ] {
            let ty = crate::EventType::new(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(policy.fields(&ty).is_empty(), "{name}");
        }
    }

    /// A nonconformity's free text erases to payloads that decode; its source, method and
    /// actions stay.
    #[test]
    fn a_nonconformitys_personal_fields_erase_to_payloads_that_decode() {
        use crate::records::NonconformityEvent;
        let policy = personal_data();
        let samples = [
            ("nonconformity.corrected", json!({"correction": "c"})),
            (
                "nonconformity.cause_analysed",
                json!({"cause": "c", "method": "five whys"}),
            ),
            ("nonconformity.action_implemented", json!({"notes": "n"})),
            (
                "nonconformity.effectiveness_reviewed",
                json!({"effective": false, "findings": "f"}),
            ),
        ];
        for (name, mut payload) in samples {
            let ty = crate::EventType::new(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(policy.holds_personal(&ty, &payload), "{name}");
            for field in policy.fields(&ty) {
                if let Some(value) = payload.pointer_mut(field.pointer.as_str()) {
                    *value = field.erased.clone();
                }
            }
            let decoded = NonconformityEvent::from_payload(&ty, payload);
            assert!(decoded.is_ok(), "{name}: {decoded:?}");
        }
        let analysed =
            crate::EventType::new("nonconformity.cause_analysed").unwrap_or_else(|e| panic!("{e}"));
        assert!(policy.field(&analysed, "/method").is_none());
        let planned =
            crate::EventType::new("nonconformity.action_planned").unwrap_or_else(|e| panic!("{e}"));
        assert!(policy.fields(&planned).is_empty());
        let logged =
            crate::EventType::new("nonconformity.logged").unwrap_or_else(|e| panic!("{e}"));
        assert!(policy.field(&logged, "/source").is_none());
        assert!(policy.field(&logged, "/summary").is_some());
    }

    #[test]
    fn ids_of_services_groups_and_cis_are_not_personal() {
        let policy = personal_data();
        let logged = crate::EventType::new("request.logged").unwrap_or_else(|e| panic!("{e}"));
        for pointer in ["/reference", "/service", "/affected_cis", "/catalogue_item"] {
            assert!(policy.field(&logged, pointer).is_none(), "{pointer}");
        }
        let assigned = crate::EventType::new("incident.assigned").unwrap_or_else(|e| panic!("{e}"));
        assert!(policy.fields(&assigned).is_empty());
    }
}
