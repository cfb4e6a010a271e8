//! The evidence pack of changes (8.5.1) and releases (8.5.3): a small estate built through
//! the real command handlers on the in-memory store, some records compliant and some short of
//! what the lifecycle still allows; every figure, shortfalls included, recomputed from the raw
//! events read as JSON, without the `Change` and `Release` state types.
//!
//! - `estate`: the estate and the period it is evidenced for;
//! - `raw`: the figures recomputed from the raw events.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests stop at the first broken expectation"
)]

mod estate;
mod raw;

use chrono::TimeDelta;
use smsys_processes::evidence::{EvidencePack, Figure, Period};

use estate::{estate, t0};
use raw::{Expected, actual, change_figures, raw, release_figures};

#[tokio::test]
async fn every_figure_of_the_pack_is_recomputed_from_the_raw_events() {
    let (e, period) = estate().await;
    let pack = EvidencePack::from_store(e.store().as_ref(), period)
        .await
        .expect("the pack");
    let (changes, releases) = raw(e.store().as_ref(), period).await;
    assert_eq!(pack.changes.changes, changes.len() as u64);
    assert_eq!(pack.releases.releases, releases.len() as u64);
    let computed: Vec<Expected> = pack.changes.figures().into_iter().map(actual).collect();
    assert_eq!(computed, change_figures(&changes));
    let computed: Vec<Expected> = pack.releases.figures().into_iter().map(actual).collect();
    assert_eq!(computed, release_figures(&releases));
}

#[tokio::test]
async fn the_pack_names_the_records_that_fall_short() {
    let (e, period) = estate().await;
    let pack = EvidencePack::from_store(e.store().as_ref(), period)
        .await
        .expect("the pack");
    let c = &pack.changes;
    assert_eq!(c.changes, 6, "CHG-0 was logged before the period");
    let records = |f: &Figure| -> Vec<String> {
        f.shortfalls
            .iter()
            .map(|s| format!("{} {}", s.record, s.why))
            .collect()
    };
    assert_eq!((c.assessed.numerator, c.assessed.denominator), (2, 5));
    assert_eq!(
        records(&c.assessed),
        [
            "CHG-3 not assessed",
            "CHG-4 not assessed",
            "CHG-6 not assessed"
        ]
    );
    assert_eq!(
        (
            c.authorised_by_other.numerator,
            c.authorised_by_other.denominator
        ),
        (4, 4)
    );
    assert_eq!(records(&c.remediation_plan), ["CHG-6 no plan"]);
    assert_eq!(
        records(&c.reviewed),
        [
            "CHG-2 implemented (success), not reviewed",
            "CHG-3 implemented (failed), not reviewed",
            "CHG-4 implemented (failed), not reviewed",
        ]
    );
    assert_eq!(
        records(&c.failed_remediated),
        ["CHG-4 failed, remediation not executed"]
    );
    assert_eq!(c.failed_investigated.numerator, 0);
    assert_eq!(c.failed_investigated.denominator, 2);
    assert_eq!(
        (c.emergency_share.numerator, c.emergency_share.denominator),
        (2, 6)
    );

    let r = &pack.releases;
    assert_eq!(r.releases, 4);
    assert_eq!(r.deployed_with_baseline.denominator, 3);
    assert_eq!(r.deployed_with_baseline.percent, Some(100.0));
    assert_eq!(
        records(&r.early_life_reviewed),
        [
            "REL-2 in early life, not reviewed",
            "REL-3 early life waived, not reviewed",
        ],
        "REL-2's review came after the period"
    );
    assert_eq!(
        records(&r.rollbacks_per_release),
        ["REL-3 rolled back in production without restoring the service"]
    );
    assert_eq!(r.rollbacks_per_release.percent, Some(25.0));

    let json = serde_json::to_value(&pack).expect("encodes");
    assert_eq!(json["changes"]["clause"], "8.5.1");
    assert_eq!(json["releases"]["clause"], "8.5.3");
    assert_eq!(json["period"]["start"], serde_json::json!(period.start()));
    assert_eq!(
        json["changes"]["assessed"]["shortfalls"][0]["record"],
        "CHG-3"
    );
    assert_eq!(
        json["releases"]["early_life_reviewed"]["percent"],
        100.0 / 3.0
    );
}

#[tokio::test]
async fn an_empty_period_is_refused_and_a_later_one_sees_no_record() {
    assert!(Period::new(t0(), t0()).is_err());
    let (e, period) = estate().await;
    let later = Period::new(
        period.end() + TimeDelta::days(30),
        period.end() + TimeDelta::days(60),
    )
    .unwrap();
    let pack = EvidencePack::from_store(e.store().as_ref(), later)
        .await
        .expect("the pack");
    assert_eq!(pack.changes.changes, 0);
    assert_eq!(pack.releases.releases, 0);
    assert!(pack.changes.figures().iter().all(|f| f.percent.is_none()));
}
