//! The model test: random operation sequences give the same results on a store and on a
//! trivial model of the contract.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use smsys_core::{
    AppendError, EventData, EventId, EventStore, ExpectedVersion, LogFilter, Position, Version,
};

use super::Harness;
use super::fixture::{Fixture, event};

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: usize,
        expected: ExpectedKind,
        count: usize,
    },
    /// Repeat an earlier append with the same events and expectation (a client retry).
    Retry { which: usize },
}

#[derive(Debug, Clone, Copy)]
enum ExpectedKind {
    Any,
    NoStream,
    StreamExists,
    Exact(u64),
}

impl ExpectedKind {
    fn to_expected(self) -> ExpectedVersion {
        match self {
            ExpectedKind::Any => ExpectedVersion::Any,
            ExpectedKind::NoStream => ExpectedVersion::NoStream,
            ExpectedKind::StreamExists => ExpectedVersion::StreamExists,
            ExpectedKind::Exact(v) => ExpectedVersion::Exact(Version::new(v)),
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let expected = prop_oneof![
        Just(ExpectedKind::Any),
        Just(ExpectedKind::NoStream),
        Just(ExpectedKind::StreamExists),
        (0u64..6).prop_map(ExpectedKind::Exact),
    ];
    prop_oneof![
        4 => (0usize..3, expected, 1usize..4)
            .prop_map(|(stream, expected, count)| Op::Append { stream, expected, count }),
        1 => any::<usize>().prop_map(|which| Op::Retry { which }),
    ]
}

/// What an append came to, in terms both the store and the model can state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Appended { version: u64, count: usize },
    Conflict { actual: Option<u64> },
}

#[derive(Default)]
struct Model {
    /// Event ids per stream, in version order.
    streams: HashMap<usize, Vec<EventId>>,
    /// (stream, event id) in log order.
    log: Vec<(usize, EventId)>,
    /// Where each stored id's append landed: (stream, first version, count).
    appended: HashMap<EventId, (usize, u64, usize)>,
}

impl Model {
    fn append(&mut self, stream: usize, expected: ExpectedVersion, batch: &[EventData]) -> Outcome {
        if let Some(&(s, first, count)) = self.appended.get(&batch[0].event_id()) {
            // Only retries reuse ids, always with their original stream and events.
            assert_eq!(s, stream);
            return Outcome::Appended {
                version: first + count as u64 - 1,
                count,
            };
        }
        let current = self.streams.get(&stream).map(|ids| ids.len() as u64);
        if !expected.accepts(current.map(Version::new)) {
            return Outcome::Conflict { actual: current };
        }
        let ids = self.streams.entry(stream).or_default();
        let first = ids.len() as u64 + 1;
        for e in batch {
            ids.push(e.event_id());
            self.log.push((stream, e.event_id()));
            self.appended
                .insert(e.event_id(), (stream, first, batch.len()));
        }
        Outcome::Appended {
            version: first + batch.len() as u64 - 1,
            count: batch.len(),
        }
    }
}

async fn run_ops<H: Harness>(h: &H, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = Arc::new(h.create().await);
    let mut model = Model::default();
    let mut history: Vec<(usize, ExpectedVersion, Vec<EventData>)> = Vec::new();
    for op in ops {
        let (stream, expected, batch) = match op {
            Op::Append {
                stream,
                expected,
                count,
            } => {
                let batch = (0..count)
                    .map(|n| event("modelled", json!({ "n": n })))
                    .collect();
                (stream, expected.to_expected(), batch)
            }
            Op::Retry { which } if !history.is_empty() => history[which % history.len()].clone(),
            Op::Retry { .. } => continue,
        };
        let want = model.append(stream, expected, &batch);
        let id = Fixture::stream(&format!("m{stream}"));
        let got = match store.append(&id, expected, batch.clone()).await {
            Ok(r) => {
                prop_assert_eq!(r.positions.len(), batch.len());
                Outcome::Appended {
                    version: r.version.get(),
                    count: r.positions.len(),
                }
            }
            Err(AppendError::Conflict { actual, .. }) => Outcome::Conflict {
                actual: actual.map(Version::get),
            },
            Err(other) => return Err(TestCaseError::fail(format!("unexpected error: {other}"))),
        };
        prop_assert_eq!(&got, &want, "append to {} under {}", id, expected);
        history.push((stream, expected, batch));
    }
    let log: Vec<_> = store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.map(|e| (e.stream.to_string(), e.event_id())))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let want: Vec<_> = model
        .log
        .iter()
        .map(|(s, id)| (format!("test-m{s}"), *id))
        .collect();
    prop_assert_eq!(log, want, "the log matches the model");
    for (stream, ids) in &model.streams {
        let id = Fixture::stream(&format!("m{stream}"));
        let version = store
            .stream_version(&id)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(version, Some(Version::new(ids.len() as u64)));
    }
    if let Ok(store) = Arc::try_unwrap(store) {
        h.teardown(store).await;
    }
    Ok(())
}

/// Random sequences of appends (every expected-version variant, batches, retries) give the same
/// outcomes on the store as on the model, and the same log.
pub async fn model_test<H: Harness>(h: &H) {
    let cases = std::env::var("SMSYS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config {
            cases,
            ..Config::default()
        });
        let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
            handle.block_on(run_ops(h, ops))
        });
        if let Err(failure) = result {
            panic!("store and model disagree: {failure}");
        }
    });
}
