//! Commands per second through the command handler: a whole incident lifecycle (7 commands),
//! a whole problem lifecycle (9 commands: log, assess, analyse, root cause, workaround, fix,
//! resolve, effectiveness review, close) and a whole normal change lifecycle (10 commands:
//! log with a plan, start, schedule, assess, request authorisation, approve, implement,
//! record the implementation, review, close) and a whole release lifecycle (13 commands: log
//! with a plan, build, two criteria verified, accept, approve, baseline of its CI from the
//! configuration graph, start deployment, test and production deployed, early life waived,
//! reviewed, close) per record, on one task and on 8 concurrent tasks with distinct records,
//! on SQLite and in memory.
//!
//! `cargo bench --bench desk`; CI runs each once with `cargo bench -- --test`.

#![allow(
    clippy::expect_used,
    reason = "a benchmark stops at the first broken setup step"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use smsys::core::records::change::{ChangePlan, ChangeWindow, ImplementationOutcome};
use smsys::core::records::release::{DeploymentOutcome, ReleasePlan};
use smsys::core::records::{ChangeKind, Channel, ConfigurationItem, Level, NoteKind, ReleaseKind};
use smsys::core::{
    Actor, Aggregate, CommandHandler, CommandMeta, Context, EventSourced, EventStore,
    ProjectionRunner, SequentialIds, StreamId,
};
use smsys::processes::change::{
    ApprovalPolicy, AssessChange, ChangeCommand, ChangeManagement, ChangePolicy, LogChange,
};
use smsys::processes::release::{LogRelease, ReleaseCommand, ReleaseManagement, ReleasePolicy};
use smsys::processes::{
    CiCommand, CiManagement, CmdbGraph, CmdbPolicy, IncidentCommand, IncidentManagement,
    IncidentPolicy, LogRecord, ProblemCommand, ProblemManagement, ProblemPolicy, RecordCommand,
};
use smsys::store::{MemoryEventStore, SqliteEventStore};

/// An incident's lifecycle: each command runs at the record's start.
fn incident_lifecycle(n: u64, _: DateTime<Utc>) -> Vec<(IncidentCommand, TimeDelta)> {
    let log = LogRecord::new(
        format!("INC-{n}").parse().expect("valid"),
        "user1".parse().expect("valid"),
        Channel::Email,
        "email".parse().expect("valid"),
        "mail bounces",
    )
    .description("since this morning")
    .affected_cis(vec!["mx-01".parse().expect("valid")]);
    let commands: [IncidentCommand; 7] = [
        IncidentCommand::Log(log),
        RecordCommand::Classify {
            category: "mail".into(),
            subcategory: None,
        }
        .into(),
        RecordCommand::Prioritise {
            impact: Level::Medium,
            urgency: Level::Medium,
        }
        .into(),
        RecordCommand::Assign {
            group: "messaging".parse().expect("valid"),
            person: Some("eng1".parse().expect("valid")),
        }
        .into(),
        RecordCommand::AddNote {
            kind: NoteKind::WorkNote,
            text: "restarted the relay".into(),
        }
        .into(),
        RecordCommand::Resolve {
            code: "fixed".into(),
            notes: "relay restarted".into(),
        }
        .into(),
        RecordCommand::Close.into(),
    ];
    commands.map(|c| (c, TimeDelta::zero())).into()
}

/// The lifecycle's commands, each with how long after the log it runs (the review needs its
/// window behind it).
fn problem_lifecycle(n: u64, resolved: DateTime<Utc>) -> Vec<(ProblemCommand, TimeDelta)> {
    let log = LogRecord::new(
        format!("PRB-{n}").parse().expect("valid"),
        "pat".parse().expect("valid"),
        Channel::Monitoring,
        "email".parse().expect("valid"),
        "relay drops mail",
    )
    .affected_cis(vec!["mx-01".parse().expect("valid")]);
    let now = TimeDelta::zero();
    let later = TimeDelta::days(31);
    vec![
        (ProblemCommand::Log(log), now),
        (
            RecordCommand::Assign {
                group: "problems".parse().expect("valid"),
                person: None,
            }
            .into(),
            now,
        ),
        (ProblemCommand::Analyse, now),
        (
            ProblemCommand::RecordRootCause {
                cause: "queue runner stalls".into(),
                method: "five whys".into(),
                contributing_cis: vec!["mx-01".parse().expect("valid")],
            },
            now,
        ),
        (
            ProblemCommand::RecordWorkaround {
                text: "restart the runner".into(),
                published: true,
            },
            now,
        ),
        (ProblemCommand::StartFix, now),
        (
            RecordCommand::Resolve {
                code: "fix_applied".into(),
                notes: "limit raised".into(),
            }
            .into(),
            now,
        ),
        (
            ProblemCommand::RecordReview {
                from: resolved,
                to: resolved + TimeDelta::days(30),
                recurrences: Vec::new(),
            },
            later,
        ),
        (RecordCommand::Close.into(), later),
    ]
}

/// A normal change from request to closure: requested by rita, run by the bench's actor,
/// approved by carl, implemented by ivan.
fn change_lifecycle(n: u64, now: DateTime<Utc>) -> Vec<(ChangeCommand, TimeDelta)> {
    let log = LogRecord::new(
        format!("CHG-{n}").parse().expect("valid"),
        "rita".parse().expect("valid"),
        Channel::Portal,
        "email".parse().expect("valid"),
        "patch the relay",
    )
    .affected_cis(vec!["mx-01".parse().expect("valid")]);
    let plan = ChangePlan {
        cis: vec!["mx-01".parse().expect("valid")],
        implementation: "apply the patch".into(),
        remediation: "reinstall the previous package".into(),
        test_plan: "send a test mail".into(),
        implementer: Some("ivan".parse().expect("valid")),
        ci_updates: Vec::new(),
    };
    let start = now + TimeDelta::days(10);
    let window = ChangeWindow {
        start,
        end: start + TimeDelta::hours(2),
        time_zone: "Europe/Paris".into(),
    };
    let now = TimeDelta::zero();
    vec![
        (
            ChangeCommand::log(LogChange::new(log, ChangeKind::Normal).plan(plan)),
            now,
        ),
        (RecordCommand::Start.into(), now),
        (ChangeCommand::Schedule(window), now),
        (
            ChangeCommand::Assess(AssessChange {
                probability: Level::Low,
                impact: Level::Low,
                benefit: "closes a CVE".into(),
                cost: "1 hour".into(),
                feasibility: "routine".into(),
            }),
            now,
        ),
        (ChangeCommand::RequestAuthorisation, now),
        (ChangeCommand::Approve { group: None }, now),
        (ChangeCommand::StartImplementation, now),
        (
            ChangeCommand::RecordImplementation {
                outcome: ImplementationOutcome::Success,
                notes: "patched".into(),
            },
            now,
        ),
        (
            ChangeCommand::RecordReview {
                successful: true,
                findings: "no incidents".into(),
            },
            now,
        ),
        (RecordCommand::Close.into(), now),
    ]
}

/// A minor release from plan to closure: requested by rita, verified and run by the bench's
/// actor, approved by carl, deployed by ivan, its early life waived.
fn release_lifecycle(n: u64, _: DateTime<Utc>) -> Vec<(ReleaseCommand, TimeDelta)> {
    let log = LogRecord::new(
        format!("REL-{n}").parse().expect("valid"),
        "rita".parse().expect("valid"),
        Channel::Portal,
        "email".parse().expect("valid"),
        "relay 2.1",
    )
    .affected_cis(vec!["mx-01".parse().expect("valid")]);
    let plan = ReleasePlan {
        cis: vec!["mx-01".parse().expect("valid")],
        deployment: "rolling restart".into(),
        rollback: "reinstall 2.0".into(),
        deployer: Some("ivan".parse().expect("valid")),
        ..ReleasePlan::default()
    };
    let verify = |criterion: &str| ReleaseCommand::VerifyCriterion {
        criterion: criterion.into(),
        passed: true,
        evidence: "run 42".into(),
    };
    let deploy = |environment: &str| ReleaseCommand::RecordDeployment {
        environment: environment.into(),
        outcome: DeploymentOutcome::Success,
        notes: "deployed".into(),
    };
    let now = TimeDelta::zero();
    vec![
        (
            ReleaseCommand::log(LogRelease::new(log, ReleaseKind::Minor).plan(plan)),
            now,
        ),
        (
            ReleaseCommand::RecordBuild {
                build: "2.1.0".into(),
                notes: String::new(),
            },
            now,
        ),
        (verify("regression_tests"), now),
        (verify("operational_readiness"), now),
        (ReleaseCommand::Accept, now),
        (ReleaseCommand::Approve { group: None }, now),
        (ReleaseCommand::TakeBaseline, now),
        (ReleaseCommand::StartDeployment, now),
        (deploy("test"), now),
        (deploy("production"), now),
        (
            ReleaseCommand::WaiveEarlyLife {
                reason: "bench".into(),
            },
            now,
        ),
        (
            ReleaseCommand::RecordEarlyLifeReview {
                successful: true,
                findings: "no incidents".into(),
            },
            now,
        ),
        (RecordCommand::Close.into(), now),
    ]
}

/// A configuration graph holding `mx-01`, the CI the bench's releases baseline.
fn graph(rt: &tokio::runtime::Runtime) -> Arc<CmdbGraph> {
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let cis = CommandHandler::<CiManagement>::new(store.clone(), CmdbPolicy::reference());
    let register = CiCommand::Register {
        id: "mx-01".parse().expect("valid"),
        ci_type: "server".parse().expect("valid"),
        name: "mx-01".into(),
        description: String::new(),
        attributes: Default::default(),
        change: Some("CHG-1".parse().expect("valid")),
    };
    let stream = ConfigurationItem::stream(&"mx-01".parse().expect("valid")).expect("valid");
    let ids = SequentialIds::new(1);
    let ctx = Context::new(DateTime::UNIX_EPOCH, &ids);
    let meta = CommandMeta::new(Actor::new("cmdb").expect("valid"));
    let graph = Arc::new(CmdbGraph::new());
    rt.block_on(async {
        cis.execute(&stream, &register, &meta, &ctx)
            .await
            .expect("registered");
        ProjectionRunner::new(store)
            .catch_up(graph.as_ref())
            .await
            .expect("caught up");
    });
    graph
}

/// A record type's lifecycle: its commands, each with how long after the start it runs.
type Lifecycle<A> = fn(u64, DateTime<Utc>) -> Vec<(<A as Aggregate>::Command, TimeDelta)>;

struct Bench<A: Aggregate> {
    handler: CommandHandler<A>,
    lifecycle: Lifecycle<A>,
    prefix: &'static str,
    ids: SequentialIds,
    next: AtomicU64,
    meta: CommandMeta,
    /// Who runs a command, where it is not the bench's actor (a change's approver and
    /// implementer are neither its requester nor each other).
    actor_of: fn(&A::Command) -> Option<&'static str>,
    now: DateTime<Utc>,
}

impl<A: Aggregate> Bench<A> {
    /// `ids_at`: the millisecond its ids are drawn at, one per record type, so the benches
    /// share a store without colliding.
    fn new(
        handler: CommandHandler<A>,
        lifecycle: Lifecycle<A>,
        prefix: &'static str,
        ids_at: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            handler,
            lifecycle,
            prefix,
            ids: SequentialIds::new(ids_at),
            next: AtomicU64::new(0),
            meta: CommandMeta::new(Actor::new("bench").expect("valid")),
            actor_of: |_| None,
            now: DateTime::UNIX_EPOCH + TimeDelta::days(20_000),
        })
    }

    /// Runs the commands `actor_of` names as those actors.
    fn acting(self: Arc<Self>, actor_of: fn(&A::Command) -> Option<&'static str>) -> Arc<Self> {
        let mut bench = Arc::try_unwrap(self).unwrap_or_else(|_| unreachable!("not shared yet"));
        bench.actor_of = actor_of;
        Arc::new(bench)
    }

    fn meta_for(&self, command: &A::Command) -> CommandMeta {
        match (self.actor_of)(command) {
            Some(actor) => CommandMeta::new(Actor::new(actor).expect("valid")),
            None => self.meta.clone(),
        }
    }

    async fn one_record(&self) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let category = <A::State as EventSourced>::CATEGORY;
        let stream: StreamId = format!("{category}-{}-{n}", self.prefix)
            .parse()
            .expect("valid");
        for (command, after) in (self.lifecycle)(n, self.now) {
            let ctx = Context::new(self.now + after, &self.ids);
            let done = self
                .handler
                .execute(&stream, &command, &self.meta_for(&command), &ctx)
                .await
                .expect("accepted");
            assert!(done.append.is_some(), "every command records events");
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Benches one lifecycle of `bench` on one task and on 8 tasks.
fn lifecycles<A>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    bench: &Arc<Bench<A>>,
) where
    A: Aggregate + 'static,
    A::Command: Send + Sync,
    A::Services: Send + Sync,
{
    let commands = (bench.lifecycle)(0, bench.now).len() as u64;
    group.throughput(Throughput::Elements(commands));
    group.bench_function(format!("{name}_lifecycle_1_task"), |b| {
        b.to_async(rt).iter(|| bench.one_record());
    });
    group.throughput(Throughput::Elements(8 * commands));
    group.bench_function(format!("{name}_lifecycle_8_tasks"), |b| {
        b.to_async(rt).iter(|| async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let bench = Arc::clone(bench);
                    tokio::spawn(async move { bench.one_record().await })
                })
                .collect();
            for task in tasks {
                task.await.expect("task finishes");
            }
        });
    });
}

fn commands(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite: Arc<dyn EventStore> = Arc::new(
        rt.block_on(SqliteEventStore::open(dir.path().join("desk.sqlite")))
            .expect("opens"),
    );
    let memory: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let graph = graph(&rt);
    for (name, store) in [("sqlite", sqlite), ("memory", memory)] {
        let mut group = c.benchmark_group(format!("desk/{name}"));
        let incidents = CommandHandler::new(store.clone(), IncidentPolicy::default());
        let incidents = Bench::<IncidentManagement>::new(
            incidents,
            incident_lifecycle,
            "INC",
            1_790_000_000_000,
        );
        lifecycles(&mut group, &rt, "incident", &incidents);
        let problems = CommandHandler::new(store.clone(), ProblemPolicy::default());
        let problems =
            Bench::<ProblemManagement>::new(problems, problem_lifecycle, "PRB", 1_790_000_000_001);
        lifecycles(&mut group, &rt, "problem", &problems);
        let approvals = ApprovalPolicy::reference()
            .with_members(
                &"change-managers".parse().expect("valid"),
                ["carl".parse().expect("valid")],
            )
            .expect("the group exists");
        let changes = CommandHandler::new(
            store.clone(),
            ChangePolicy::default().with_approvals(approvals.clone()),
        );
        let changes =
            Bench::<ChangeManagement>::new(changes, change_lifecycle, "CHG", 1_790_000_000_002)
                .acting(|command| {
                    if matches!(command, ChangeCommand::Approve { .. }) {
                        Some("carl")
                    } else if matches!(
                        command,
                        ChangeCommand::StartImplementation
                            | ChangeCommand::RecordImplementation { .. }
                    ) {
                        Some("ivan")
                    } else {
                        None
                    }
                });
        lifecycles(&mut group, &rt, "change", &changes);
        let releases = ReleasePolicy::default()
            .with_approvals(approvals)
            .with_baselines(graph.clone());
        let releases = CommandHandler::new(store, releases);
        let releases =
            Bench::<ReleaseManagement>::new(releases, release_lifecycle, "REL", 1_790_000_000_003)
                .acting(|command| {
                    if matches!(command, ReleaseCommand::Approve { .. }) {
                        Some("carl")
                    } else if matches!(
                        command,
                        ReleaseCommand::StartDeployment | ReleaseCommand::RecordDeployment { .. }
                    ) {
                        Some("ivan")
                    } else {
                        None
                    }
                });
        lifecycles(&mut group, &rt, "release", &releases);
        group.finish();
    }
}

criterion_group!(benches, commands);
criterion_main!(benches);
