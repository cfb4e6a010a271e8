//! The figures recomputed from the raw events, read as JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;
use smsys_core::{EventStore, LogFilter, Position};
use smsys_processes::evidence::{Figure, Period, percent};

/// A figure as recomputed: name, numerator, denominator, shortfalls `(record, why)`.
pub(crate) type Expected = (String, u64, u64, Vec<(String, String)>);

fn figure(
    name: &str,
    numerator: u64,
    denominator: u64,
    mut shortfalls: Vec<(String, String)>,
) -> Expected {
    shortfalls.sort();
    (name.to_owned(), numerator, denominator, shortfalls)
}

pub(crate) fn actual(figure: &Figure) -> Expected {
    assert_eq!(
        figure.percent,
        percent(figure.numerator, figure.denominator),
        "{}",
        figure.name
    );
    let expected_percent = (figure.denominator > 0)
        .then(|| figure.numerator as f64 * 100.0 / figure.denominator as f64);
    assert_eq!(figure.percent, expected_percent, "{}", figure.name);
    let shortfalls = figure
        .shortfalls
        .iter()
        .map(|s| (s.record.as_str().to_owned(), s.why.clone()))
        .collect();
    (
        figure.name.clone(),
        figure.numerator,
        figure.denominator,
        shortfalls,
    )
}

/// One change as its raw events tell it.
#[derive(Debug, Default)]
pub(crate) struct RawChange {
    reference: String,
    kind: String,
    caller: String,
    logged_at: Option<DateTime<Utc>>,
    assessed: bool,
    remediation: Option<String>,
    authorised: Option<Vec<String>>,
    outcome: Option<String>,
    remediated: bool,
    investigated: bool,
    reviewed: bool,
}

/// One release as its raw events tell it.
#[derive(Debug, Default)]
pub(crate) struct RawRelease {
    reference: String,
    logged_at: Option<DateTime<Utc>>,
    criteria: Vec<String>,
    verified: BTreeMap<String, bool>,
    authorised: bool,
    baselines: u32,
    /// Environment and the number of baselines taken before it.
    deployments: Vec<(String, u32)>,
    /// Environment and whether restored.
    rollbacks: Vec<(String, bool)>,
    early_life: bool,
    waived: bool,
    reviewed: bool,
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_owned()
}

/// The changes and releases of the log, read as JSON, as of the end of `period`.
pub(crate) async fn raw(
    store: &dyn EventStore,
    period: Period,
) -> (BTreeMap<String, RawChange>, BTreeMap<String, RawRelease>) {
    let mut changes: BTreeMap<String, RawChange> = BTreeMap::new();
    let mut releases: BTreeMap<String, RawRelease> = BTreeMap::new();
    let mut log = store.read_all(Position::START, LogFilter::all());
    while let Some(event) = log.next().await {
        let json = serde_json::to_value(event.expect("reads")).expect("encodes");
        let stream = text(&json["stream"]);
        let data = &json["data"];
        let occurred: DateTime<Utc> =
            serde_json::from_value(data["metadata"]["occurred_at"].clone()).expect("an instant");
        if occurred >= period.end() {
            continue;
        }
        let p = &data["payload"];
        let (category, name) = text(&data["event_type"])
            .split_once('.')
            .map(|(c, n)| (c.to_owned(), n.to_owned()))
            .expect("<category>.<name>");
        match category.as_str() {
            "change" => {
                let c = changes.entry(stream).or_default();
                match name.as_str() {
                    "logged" => {
                        c.reference = text(&p["reference"]);
                        c.kind = text(&p["kind"]);
                        c.caller = text(&p["caller"]);
                        c.logged_at = Some(occurred);
                    }
                    "planned" => c.remediation = Some(text(&p["remediation"])),
                    "assessed" => c.assessed = true,
                    "authorised" => {
                        let approvers = p["approvers"].as_array().expect("a list");
                        c.authorised = Some(approvers.iter().map(text).collect());
                    }
                    "approvals_reset" => c.authorised = None,
                    "implemented" => c.outcome = Some(text(&p["outcome"])),
                    "remediation_executed" => c.remediated = true,
                    "failure_investigated" => c.investigated = true,
                    "reviewed" => c.reviewed = true,
                    _ => {}
                }
            }
            "release" => {
                let r = releases.entry(stream).or_default();
                match name.as_str() {
                    "logged" => {
                        r.reference = text(&p["reference"]);
                        r.logged_at = Some(occurred);
                        let criteria = p["criteria"].as_array().expect("a list");
                        r.criteria = criteria.iter().map(|c| text(&c["name"])).collect();
                    }
                    "criterion_verified" => {
                        let passed = p["passed"].as_bool().expect("a bool");
                        r.verified.insert(text(&p["criterion"]), passed);
                    }
                    "authorised" => r.authorised = true,
                    "baseline_taken" => r.baselines += 1,
                    "deployed" => r.deployments.push((text(&p["environment"]), r.baselines)),
                    "rolled_back" => {
                        let restored = p["restored"].as_bool().expect("a bool");
                        r.rollbacks.push((text(&p["environment"]), restored));
                    }
                    "early_life_started" => r.early_life = true,
                    "early_life_waived" => r.waived = true,
                    "early_life_reviewed" => r.reviewed = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let logged_in = |at: Option<DateTime<Utc>>| at.is_some_and(|at| period.contains(at));
    changes.retain(|_, c| logged_in(c.logged_at));
    releases.retain(|_, r| logged_in(r.logged_at));
    (changes, releases)
}

/// The 8.5.1 figures, recomputed.
pub(crate) fn change_figures(changes: &BTreeMap<String, RawChange>) -> Vec<Expected> {
    let all: Vec<&RawChange> = changes.values().collect();
    let count = |items: &[&RawChange]| items.len() as u64;
    let short = |items: &[&RawChange], why: &dyn Fn(&RawChange) -> Option<String>| {
        items
            .iter()
            .filter_map(|c| why(c).map(|w| (c.reference.clone(), w)))
            .collect::<Vec<_>>()
    };
    let tally = |name: &str, items: Vec<&RawChange>, why: &dyn Fn(&RawChange) -> Option<String>| {
        let shortfalls = short(&items, why);
        figure(
            name,
            count(&items) - shortfalls.len() as u64,
            count(&items),
            shortfalls,
        )
    };
    let controlled: Vec<&RawChange> = all
        .iter()
        .copied()
        .filter(|c| c.kind != "standard")
        .collect();
    let authorised: Vec<&RawChange> = controlled
        .iter()
        .copied()
        .filter(|c| c.authorised.is_some() || c.outcome.is_some())
        .collect();
    let implemented: Vec<&RawChange> = all
        .iter()
        .copied()
        .filter(|c| c.outcome.is_some())
        .collect();
    let failed: Vec<&RawChange> = all
        .iter()
        .copied()
        .filter(|c| c.outcome.as_deref() == Some("failed"))
        .collect();
    let emergency = all.iter().filter(|c| c.kind == "emergency").count() as u64;
    vec![
        tally("assessed", controlled.clone(), &|c| {
            (!c.assessed).then(|| "not assessed".to_owned())
        }),
        tally(
            "authorised_by_other",
            authorised,
            &|c| match &c.authorised {
                None => Some("implemented without an authorisation in force".to_owned()),
                Some(a) if a.is_empty() => Some("authorised with no approver named".to_owned()),
                Some(a) if a.contains(&c.caller) => {
                    Some(format!("authorised by the requester {}", c.caller))
                }
                Some(_) => None,
            },
        ),
        tally("remediation_plan", all.clone(), &|c| match &c.remediation {
            None => Some("no plan".to_owned()),
            Some(r) if r.trim().is_empty() => Some("the plan has no remediation".to_owned()),
            Some(_) => None,
        }),
        tally("reviewed", implemented, &|c| {
            (!c.reviewed).then(|| {
                format!(
                    "implemented ({}), not reviewed",
                    c.outcome.as_deref().unwrap_or("")
                )
            })
        }),
        tally("failed_remediated", failed.clone(), &|c| {
            (!c.remediated).then(|| "failed, remediation not executed".to_owned())
        }),
        tally("failed_investigated", failed, &|c| {
            (!c.investigated).then(|| "failed, not investigated".to_owned())
        }),
        figure("emergency_share", emergency, count(&all), Vec::new()),
    ]
}

/// The 8.5.3 figures, recomputed.
pub(crate) fn release_figures(releases: &BTreeMap<String, RawRelease>) -> Vec<Expected> {
    let all: Vec<&RawRelease> = releases.values().collect();
    let tally = |name: &str, items: &[&RawRelease], why: &dyn Fn(&RawRelease) -> Option<String>| {
        let shortfalls: Vec<(String, String)> = items
            .iter()
            .filter_map(|r| why(r).map(|w| (r.reference.clone(), w)))
            .collect();
        let n = items.len() as u64;
        figure(name, n - shortfalls.len() as u64, n, shortfalls)
    };
    let deployed: Vec<&RawRelease> = all
        .iter()
        .copied()
        .filter(|r| !r.deployments.is_empty())
        .collect();
    let early: Vec<&RawRelease> = all.iter().copied().filter(|r| r.early_life).collect();
    let rollbacks: u64 = all.iter().map(|r| r.rollbacks.len() as u64).sum();
    let not_restored = all
        .iter()
        .flat_map(|r| {
            r.rollbacks
                .iter()
                .filter(|(_, restored)| !restored)
                .map(|(env, _)| {
                    (
                        r.reference.clone(),
                        format!("rolled back in {env} without restoring the service"),
                    )
                })
        })
        .collect();
    vec![
        tally("deployed_with_acceptance", &deployed, &|r| {
            let unmet: Vec<&str> = r
                .criteria
                .iter()
                .filter(|c| r.verified.get(*c) != Some(&true))
                .map(String::as_str)
                .collect();
            (!unmet.is_empty())
                .then(|| format!("deployed with criteria not met: {}", unmet.join(", ")))
        }),
        tally("deployed_with_approval", &deployed, &|r| {
            (!r.authorised).then(|| "deployed without approval".to_owned())
        }),
        tally("deployed_with_baseline", &deployed, &|r| {
            r.deployments
                .iter()
                .find(|(_, baselines)| *baselines == 0)
                .map(|(env, _)| format!("deployed to {env} without a baseline"))
        }),
        tally(
            "early_life_reviewed",
            &early,
            &|r| match (r.reviewed, r.waived) {
                (true, _) => None,
                (false, true) => Some("early life waived, not reviewed".to_owned()),
                (false, false) => Some("in early life, not reviewed".to_owned()),
            },
        ),
        figure(
            "rollbacks_per_release",
            rollbacks,
            all.len() as u64,
            not_restored,
        ),
    ]
}
