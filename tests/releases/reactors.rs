//! What a release does to other records, through its reactors, each run twice (two nodes on
//! fresh checkpoints) unless said otherwise: incidents in a release's early-life window
//! correlated on both records, across a restart too; the plan's CI updates applied once the
//! release is deployed; a rolled-back deployment raising an incident and a problem linked
//! both ways; a closed release reviewing and closing its changes and retiring its known
//! errors. Each once.

use std::sync::Arc;

use chrono::TimeDelta;
use smsys::core::records::change::{ImplementationOutcome, PlannedCiUpdate};
use smsys::core::records::release::DeploymentOutcome;
use smsys::core::records::{
    Change, ChangeKind, Channel, CiId, ConfigurationItem, KnownError, LinkKind, Phase, Problem,
    RecordKind, ReleaseKind,
};
use smsys::core::{CheckpointStore, CommandHandler, Reacting, Reactor};
use smsys::processes::change::{ChangeCommand, LogChange};
use smsys::processes::configuration::CmdbPolicy;
use smsys::processes::known_error::{KnownErrorCommand, LogKnownError};
use smsys::processes::release::reactors::{
    EarlyLifeCorrelation, FailedDeployments, ReleaseCiUpdates, ReleaseClosure,
};
use smsys::processes::release::{FailurePolicy, LogRelease, ReleaseCommand, ReleaseKinds};
use smsys::processes::{IncidentPolicy, KnownErrorPolicy, LogRecord, ProblemPolicy, RecordCommand};
use smsys::store::{MemoryEventStore, SqliteEventStore};

use crate::reactor_harness::{
    Estate, REQUESTER, SERVICE, id, links_of, react, react_with, reactor_actor, t0,
};

/// An estate on a fresh in-memory store under the reference release policy.
fn estate() -> Estate {
    Estate::on(
        Arc::new(MemoryEventStore::new()),
        ReleaseKinds::reference(),
        1,
        t0(),
    )
}

/// The early-life correlation of `e`'s store, on handlers of its own.
fn correlation(e: &Estate) -> EarlyLifeCorrelation {
    EarlyLifeCorrelation::new(
        CommandHandler::new(e.store.clone(), e.releases.services().clone()),
        CommandHandler::new(e.store.clone(), IncidentPolicy::default()),
        reactor_actor(),
    )
}

/// The releases `incident` links to.
async fn releases_of(e: &Estate, incident: &str) -> Vec<String> {
    let state = e.incident_state(incident).await;
    links_of(state.record().links(), &LinkKind::RELEASE)
}

#[tokio::test]
async fn incidents_in_the_early_life_window_are_correlated_on_both_records_once() {
    let mut e = estate();
    for ci in ["mx-01", "db-01"] {
        e.register(ci).await;
    }
    // Logged before the deployment, on the release's CI: not correlated.
    e.incident("INC-0", &["mx-01"], "web").await;
    let deployed = e.deploy("REL-1", &["mx-01"], Vec::new()).await;
    e.incident("INC-1", &["mx-01"], "web").await; // its CI
    e.incident("INC-2", &["db-01"], SERVICE).await; // its service
    e.incident("INC-3", &["db-01"], "web").await; // neither
    e.incident("INC-5", &["db-01"], "web").await; // neither, until linked to its CI
    e.link_ci("INC-5", "mx-01").await;
    // The window is 3 days: an incident after it is not correlated.
    e.clock.now = deployed + TimeDelta::days(3) + TimeDelta::hours(1);
    e.incident("INC-4", &["mx-01"], SERVICE).await;

    for _ in 0..2 {
        react(&e.store, correlation(&e)).await;
    }

    let release = e.release_state("REL-1").await;
    let correlated: Vec<(&str, Vec<&str>, Option<&str>)> = release
        .correlations()
        .iter()
        .map(|c| {
            (
                c.incident.as_str(),
                c.cis.iter().map(|ci| ci.as_str()).collect(),
                c.service.as_ref().map(|s| s.as_str()),
            )
        })
        .collect();
    assert_eq!(
        correlated,
        vec![
            ("INC-1", vec!["mx-01"], None),
            ("INC-2", vec![], Some(SERVICE)),
            ("INC-5", vec!["mx-01"], None),
        ]
    );
    for incident in ["INC-1", "INC-2", "INC-5"] {
        assert_eq!(releases_of(&e, incident).await, vec!["REL-1"], "{incident}");
    }
    for incident in ["INC-0", "INC-3", "INC-4"] {
        assert!(releases_of(&e, incident).await.is_empty(), "{incident}");
    }
    // Twice over the log, two nodes: each correlation and each link recorded once.
    assert_eq!(e.count("release.incident_correlated").await, 3);
    assert_eq!(
        e.count("incident.linked").await,
        4,
        "INC-5's CI link and 3 release links"
    );
}

#[tokio::test]
async fn a_live_reactor_follows_windows_opening_and_waived() {
    let mut e = estate();
    e.register("mx-01").await;
    let checkpoints = Arc::new(MemoryEventStore::new());
    let live = Reacting::new(correlation(&e), checkpoints);
    e.incident("INC-1", &["mx-01"], SERVICE).await;
    react_with(&e.store, &live).await; // remembers no window

    e.deploy("REL-1", &["mx-01"], Vec::new()).await;
    react_with(&e.store, &live).await; // folds the window opening
    e.incident("INC-2", &["mx-01"], SERVICE).await;
    react_with(&e.store, &live).await;
    let waive = ReleaseCommand::WaiveEarlyLife {
        reason: "stable after a day".into(),
    };
    e.release(REQUESTER, "REL-1", waive).await;
    e.incident("INC-3", &["mx-01"], SERVICE).await;
    react_with(&e.store, &live).await;

    let release = e.release_state("REL-1").await;
    let correlated: Vec<&str> = release
        .correlations()
        .iter()
        .map(|c| c.incident.as_str())
        .collect();
    assert_eq!(correlated, vec!["INC-2"]);
    assert!(releases_of(&e, "INC-1").await.is_empty());
    assert_eq!(releases_of(&e, "INC-2").await, vec!["REL-1"]);
    assert!(releases_of(&e, "INC-3").await.is_empty(), "waived");
}

#[tokio::test]
async fn a_restarted_reactor_rebuilds_the_windows_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("releases.sqlite");
    let start;
    {
        let store = Arc::new(SqliteEventStore::open(&path).await.expect("opens"));
        let mut e = Estate::on(store.clone(), ReleaseKinds::reference(), 1, t0());
        e.register("mx-01").await;
        start = e.deploy("REL-1", &["mx-01"], Vec::new()).await;
        let reacting = Reacting::new(correlation(&e), store.clone());
        react_with(&e.store, &reacting).await;
        assert!(e.release_state("REL-1").await.correlations().is_empty());
    }

    // A new process: the store reopened, the reactor new, its checkpoint where it stopped.
    let store = Arc::new(SqliteEventStore::open(&path).await.expect("reopens"));
    let mut e = Estate::on(
        store.clone(),
        ReleaseKinds::reference(),
        1_000_000,
        start + TimeDelta::hours(5),
    );
    let reactor = correlation(&e);
    let saved = store
        .load_checkpoint_for(reactor.name(), &reactor.filter())
        .await
        .expect("reads");
    assert!(saved.is_some(), "the first run saved its checkpoint");
    e.incident("INC-1", &["mx-01"], "web").await;
    e.incident("INC-2", &["db-01"], "web").await;
    let reacting = Reacting::new(reactor, store.clone());
    react_with(&e.store, &reacting).await;
    react_with(&e.store, &Reacting::new(correlation(&e), store.clone())).await;

    let release = e.release_state("REL-1").await;
    let correlated: Vec<&str> = release
        .correlations()
        .iter()
        .map(|c| c.incident.as_str())
        .collect();
    assert_eq!(correlated, vec!["INC-1"]);
    assert_eq!(releases_of(&e, "INC-1").await, vec!["REL-1"]);
    assert!(releases_of(&e, "INC-2").await.is_empty());
    assert_eq!(e.count("release.incident_correlated").await, 1);
}

/// The CI updates reactor of `e`'s store.
fn ci_updates(e: &Estate) -> ReleaseCiUpdates {
    ReleaseCiUpdates::new(
        CommandHandler::new(e.store.clone(), CmdbPolicy::reference()),
        reactor_actor(),
    )
}

#[tokio::test]
async fn a_deployed_release_updates_its_cis_once() {
    let mut e = estate();
    e.register("mx-01").await;
    let update = PlannedCiUpdate {
        ci: id("mx-01"),
        set: [(id("os"), "debian 13".into())].into_iter().collect(),
        removed: Vec::new(),
        status: None,
    };
    // Ready but not deployed: nothing is applied.
    e.ready("REL-2", &["mx-01"], vec![update]).await;
    react(&e.store, ci_updates(&e)).await;
    assert_eq!(e.count("configuration_item.attributes_updated").await, 0);

    e.deployed("REL-2", DeploymentOutcome::Success).await;
    for _ in 0..2 {
        react(&e.store, ci_updates(&e)).await;
    }
    let mx = ConfigurationItem::stream(&id("mx-01")).expect("valid");
    let server = e.cis.load(&mx).await.expect("loads").state;
    assert_eq!(server.attribute(&id("os")), Some(&"debian 13".into()));
    let last = server.last_change().expect("changed");
    assert_eq!(last.change.as_ref().map(|c| c.as_str()), Some("REL-2"));
    assert_eq!(e.count("configuration_item.attributes_updated").await, 1);
}

/// The failure reactor of `e`'s store.
fn failures(e: &Estate) -> FailedDeployments {
    FailedDeployments::new(
        CommandHandler::new(e.store.clone(), e.releases.services().clone()),
        CommandHandler::new(e.store.clone(), IncidentPolicy::default()),
        CommandHandler::new(e.store.clone(), ProblemPolicy::default()),
        reactor_actor(),
    )
}

#[tokio::test]
async fn a_rolled_back_deployment_raises_an_incident_and_a_problem_linked_both_ways_once() {
    let mut kinds = ReleaseKinds::reference();
    kinds.on_failure = FailurePolicy {
        incident: true,
        problem: true,
    };
    let mut e = Estate::on(Arc::new(MemoryEventStore::new()), kinds, 1, t0());
    e.register("mx-01").await;
    e.fail("REL-3", &["mx-01"]).await;
    for _ in 0..2 {
        react(&e.store, failures(&e)).await;
    }

    let release = e.release_state("REL-3").await;
    let incidents = links_of(release.record().links(), &LinkKind::INCIDENT);
    let problems = links_of(release.record().links(), &LinkKind::PROBLEM);
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(incidents[0].starts_with("INC-REL-3-"), "{incidents:?}");
    assert!(problems[0].starts_with("PRB-REL-3-"), "{problems:?}");

    let incident = e.incident_state(&incidents[0]).await;
    let problem_stream = Problem::stream(&id(&problems[0])).expect("valid");
    let problem = e.problems.load(&problem_stream).await.expect("loads").state;
    for record in [incident.record(), problem.record()] {
        assert_eq!(links_of(record.links(), &LinkKind::RELEASE), vec!["REL-3"]);
        assert_eq!(record.service().map(|s| s.as_str()), Some(SERVICE));
        assert_eq!(record.affected_cis(), &[id::<CiId, _>("mx-01")]);
        assert_eq!(record.caller().map(|c| c.as_str()), Some(REQUESTER));
        assert!(record.summary().contains("REL-3"), "{}", record.summary());
    }
    assert_eq!(e.count("incident.logged").await, 1);
    assert_eq!(e.count("problem.logged").await, 1);
    assert_eq!(e.count("release.linked").await, 2);
    assert_eq!(e.count("incident.linked").await, 1);
    assert_eq!(e.count("problem.linked").await, 1);
}

#[tokio::test]
async fn under_the_reference_policy_a_rollback_raises_an_incident_only() {
    let mut e = estate();
    e.register("mx-01").await;
    e.fail("REL-3", &["mx-01"]).await;
    react(&e.store, failures(&e)).await;
    let release = e.release_state("REL-3").await;
    assert_eq!(
        links_of(release.record().links(), &LinkKind::INCIDENT).len(),
        1
    );
    assert!(links_of(release.record().links(), &LinkKind::PROBLEM).is_empty());
    assert_eq!(e.count("problem.logged").await, 0);
    // A deployment that succeeds raises nothing.
    e.deploy("REL-4", &["mx-01"], Vec::new()).await;
    react(&e.store, failures(&e)).await;
    assert_eq!(e.count("incident.logged").await, 1);
}

/// Takes normal change `name` on `mx-01` to its review: planned, assessed, authorised by
/// `carl`, implemented by `ivan`.
async fn implemented_change(e: &mut Estate, name: &str) {
    let stream = Change::stream(&id(name)).expect("valid");
    let record = LogRecord::new(
        id(name),
        id(REQUESTER),
        Channel::Portal,
        id(SERVICE),
        "patch the relay",
    )
    .affected_cis(vec![id("mx-01")]);
    let plan = smsys::core::records::change::ChangePlan {
        cis: vec![id("mx-01")],
        implementation: "apply the patch".into(),
        remediation: "reinstall".into(),
        test_plan: "send a mail".into(),
        implementer: Some(id("ivan")),
        ci_updates: Vec::new(),
    };
    let window = smsys::core::records::change::ChangeWindow {
        start: t0() + TimeDelta::days(20),
        end: t0() + TimeDelta::days(20) + TimeDelta::hours(2),
        time_zone: "Europe/Paris".into(),
    };
    let assess = smsys::processes::change::AssessChange {
        probability: smsys::core::records::Level::Low,
        impact: smsys::core::records::Level::Medium,
        benefit: "fixes the relay".into(),
        cost: "1 hour".into(),
        feasibility: "routine".into(),
    };
    let steps: Vec<(&str, ChangeCommand)> = vec![
        (
            REQUESTER,
            ChangeCommand::log(LogChange::new(record, ChangeKind::Normal).plan(plan)),
        ),
        (REQUESTER, RecordCommand::Start.into()),
        (REQUESTER, ChangeCommand::Schedule(window)),
        (REQUESTER, ChangeCommand::Assess(assess)),
        (REQUESTER, ChangeCommand::RequestAuthorisation),
        ("carl", ChangeCommand::Approve { group: None }),
        ("ivan", ChangeCommand::StartImplementation),
        (
            "ivan",
            ChangeCommand::RecordImplementation {
                outcome: ImplementationOutcome::Success,
                notes: "patched".into(),
            },
        ),
    ];
    for (who, command) in steps {
        let what = command.name();
        e.clock
            .run(&e.changes, who, &stream, command)
            .await
            .unwrap_or_else(|err| panic!("{what} on {name}: {err}"));
    }
}

/// The closure reactor of `e`'s store.
fn closure(e: &Estate) -> ReleaseClosure {
    ReleaseClosure::new(
        CommandHandler::new(e.store.clone(), e.changes.services().clone()),
        CommandHandler::new(e.store.clone(), KnownErrorPolicy::default()),
        e.releases.services().clone(),
        reactor_actor(),
    )
}

#[tokio::test]
async fn a_closed_release_reviews_and_closes_its_changes_and_retires_its_known_errors_once() {
    let mut e = estate();
    e.register("mx-01").await;
    implemented_change(&mut e, "CHG-1").await;
    // A change not yet implemented is left alone.
    let chg2 = Change::stream(&id("CHG-2")).expect("valid");
    let record = LogRecord::new(
        id("CHG-2"),
        id(REQUESTER),
        Channel::Portal,
        id(SERVICE),
        "later",
    );
    let log = ChangeCommand::log(LogChange::new(record, ChangeKind::Normal));
    e.clock
        .run(&e.changes, REQUESTER, &chg2, log)
        .await
        .expect("logged");
    let ke = KnownError::stream(&id("KE-1")).expect("valid");
    let record = LogRecord::new(
        id("KE-1"),
        id(REQUESTER),
        Channel::Portal,
        id(SERVICE),
        "relay drops mail",
    );
    let log_ke =
        KnownErrorCommand::Log(LogKnownError::new(record, "mail dropped").workaround("resend"));
    e.clock
        .run(&e.known_errors, REQUESTER, &ke, log_ke)
        .await
        .expect("logged");
    e.clock
        .run(&e.known_errors, REQUESTER, &ke, KnownErrorCommand::Publish)
        .await
        .expect("published");

    let record = LogRecord::new(
        id("REL-5"),
        id(REQUESTER),
        Channel::Portal,
        id(SERVICE),
        "deliver the relay fix",
    )
    .affected_cis(vec![id("mx-01")]);
    let plan = smsys::core::records::release::ReleasePlan {
        cis: vec![id("mx-01")],
        services: Vec::new(),
        deployment: "roll out".into(),
        rollback: "reinstall".into(),
        deployer: Some(id("dave")),
        ci_updates: Vec::new(),
    };
    let log = LogRelease::new(record, ReleaseKind::Emergency).plan(plan);
    e.release(REQUESTER, "REL-5", ReleaseCommand::log(log))
        .await;
    for (kind, target) in [
        (LinkKind::CHANGE, "CHG-1"),
        (LinkKind::CHANGE, "CHG-2"),
        (LinkKind::KNOWN_ERROR, "KE-1"),
    ] {
        let link = RecordCommand::Link {
            kind,
            target: target.into(),
        };
        e.release(REQUESTER, "REL-5", link.into()).await;
    }
    e.ready_logged("REL-5").await;
    let deployed = e.clock.now;
    e.deployed("REL-5", DeploymentOutcome::Success).await;

    // In early life: nothing is reviewed yet.
    react(&e.store, closure(&e)).await;
    assert_eq!(e.count("change.reviewed").await, 0);

    e.clock.now = deployed + TimeDelta::days(4);
    let review = ReleaseCommand::RecordEarlyLifeReview {
        successful: true,
        findings: "no incidents in early life".into(),
    };
    e.release(REQUESTER, "REL-5", review).await;
    e.release(REQUESTER, "REL-5", RecordCommand::Close.into())
        .await;
    assert_eq!(
        e.release_state("REL-5").await.record().phase(),
        Some(Phase::Closed)
    );
    for _ in 0..2 {
        react(&e.store, closure(&e)).await;
    }

    let chg1 = Change::stream(&id("CHG-1")).expect("valid");
    let change = e.changes.load(&chg1).await.expect("loads").state;
    let reviewed = change.review().expect("reviewed");
    assert!(reviewed.successful);
    assert_eq!(
        reviewed.findings,
        "early-life review of release REL-5: no incidents in early life"
    );
    assert_eq!(change.record().phase(), Some(Phase::Closed));
    let later = e.changes.load(&chg2).await.expect("loads").state;
    assert!(later.review().is_none());
    assert_eq!(later.record().phase(), Some(Phase::New));
    let known_error = e.known_errors.load(&ke).await.expect("loads").state;
    let retired = known_error.retired().expect("retired");
    assert_eq!(retired.reason, "fixed by release REL-5");
    assert_eq!(e.count("change.reviewed").await, 1);
    assert_eq!(e.count("known_error.retired").await, 1);
}

/// Every reactor prints its name and what it is configured with.
#[test]
fn the_reactors_show_their_names() {
    let e = estate();
    let shown = [
        format!("{:?}", correlation(&e)),
        format!("{:?}", failures(&e).named("failures-2")),
    ];
    assert!(shown[0].contains("early-life-correlation"), "{}", shown[0]);
    assert!(shown[1].contains("failures-2"), "{}", shown[1]);
}
