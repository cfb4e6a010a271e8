//! A retry is exactly one whole earlier append: the store keeps where each append starts and
//! how long it is, and refuses a part of an earlier append (or more than it) as a reuse of ids,
//! through `append` and through `append_batch`, whose parts are appends of their own.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::json;
use smsys_core::{
    AppendError, AppendResult, EventData, EventStore, ExpectedVersion, LogFilter, Position,
    StreamAppend, StreamId, Version,
};

use super::Harness;
use super::fixture::{Fixture, event};

async fn log_len<S: EventStore + ?Sized>(store: &S) -> usize {
    store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reading succeeds"))
        .count()
        .await
}

/// Three events `[a, b, c]` and a fourth, new one.
fn abcd(tag: &str) -> [EventData; 4] {
    ["a", "b", "c", "d"].map(|name| event("boundary.t", json!({ "tag": tag, "name": name })))
}

/// The retries that are not one whole append of `abc` (recorded as versions 1 to 3 of
/// `stream`): `[a, b]`, `[b, c]`, `[b]`, `[a, b, c, d]`.
fn partial(abcd: &[EventData; 4]) -> Vec<(&'static str, Vec<EventData>)> {
    let [a, b, c, d] = abcd.clone();
    vec![
        ("[a, b]", vec![a.clone(), b.clone()]),
        ("[b, c]", vec![b.clone(), c.clone()]),
        ("[b]", vec![b.clone()]),
        ("[a, b, c, d]", vec![a, b, c, d]),
    ]
}

/// Checks that `result` is `EventIdReused` naming one of `abc` where it is recorded (version
/// 1 to 3 of `stream`).
fn assert_reused(
    result: Result<AppendResult, AppendError>,
    stream: &StreamId,
    abc: &[EventData],
    what: &str,
) {
    match result {
        Err(AppendError::EventIdReused {
            event_id,
            recorded_stream,
            recorded_version,
            ..
        }) => {
            let at = abc
                .iter()
                .position(|e| e.event_id() == event_id)
                .unwrap_or_else(|| panic!("{what}: names {event_id}, not a recorded id"));
            assert_eq!(&recorded_stream, stream, "{what}: the recorded stream");
            assert_eq!(
                recorded_version,
                Version::new(at as u64 + 1),
                "{what}: where {event_id} is recorded"
            );
        }
        other => panic!("{what}: a part of an earlier append is not a retry, got {other:?}"),
    }
}

/// After `[a, b, c]` was appended in one append, `[a, b]`, `[b, c]`, `[b]` and `[a, b, c, d]`
/// are refused with `EventIdReused` naming a recorded event, under any expectation, and write
/// nothing; the exact `[a, b, c]` returns the original result. The same holds when `[a, b, c]`
/// was one part of a batch and when the retries are parts of a batch (each part on its own,
/// also when two parts together make up the earlier append).
pub async fn retry_is_one_whole_append<H: Harness>(h: &H) {
    let store = Arc::new(h.create().await);

    // Appended with `append`, retried with `append` and as batch parts.
    let s = Fixture::stream("boundary-append");
    let events = abcd("append");
    let abc = events[..3].to_vec();
    let original = store
        .append(&s, ExpectedVersion::NoStream, abc.clone())
        .await
        .expect("[a, b, c] is new");
    let count = log_len(&*store).await;
    for (what, retry) in partial(&events) {
        for expected in [ExpectedVersion::NoStream, ExpectedVersion::Any] {
            let result = store.append(&s, expected, retry.clone()).await;
            assert_reused(result, &s, &abc, &format!("append {what} under {expected}"));
        }
    }
    let parts: Vec<StreamAppend> = partial(&events)
        .into_iter()
        .map(|(_, retry)| StreamAppend::new(s.clone(), ExpectedVersion::Any, retry))
        .collect();
    for (result, (what, _)) in store
        .append_batch(parts)
        .await
        .into_iter()
        .zip(partial(&events))
    {
        assert_reused(result, &s, &abc, &format!("batch part {what}"));
    }
    assert_eq!(
        log_len(&*store).await,
        count,
        "refused retries write nothing"
    );
    let again = store
        .append(&s, ExpectedVersion::NoStream, abc.clone())
        .await
        .expect("the exact retry is recognised");
    assert_eq!(
        again, original,
        "the exact retry returns the original result"
    );
    let batch = store
        .append_batch(vec![StreamAppend::new(
            s.clone(),
            ExpectedVersion::Any,
            abc.clone(),
        )])
        .await;
    match &batch[..] {
        [Ok(result)] => assert_eq!(result, &original, "as a batch part too"),
        other => panic!("the exact retry as a batch part: {other:?}"),
    }

    // Appended as a part of a batch (after another part), retried the same ways.
    let t = Fixture::stream("boundary-batch");
    let events = abcd("batch");
    let abc = events[..3].to_vec();
    let before = StreamAppend::new(
        Fixture::stream("boundary-before"),
        ExpectedVersion::NoStream,
        abcd("before")[..2].to_vec(),
    );
    let first = store
        .append_batch(vec![
            before,
            StreamAppend::new(t.clone(), ExpectedVersion::NoStream, abc.clone()),
        ])
        .await;
    let original = match &first[..] {
        [Ok(_), Ok(result)] => result.clone(),
        other => panic!("both parts are new: {other:?}"),
    };
    let count = log_len(&*store).await;
    for (what, retry) in partial(&events) {
        let result = store.append(&t, ExpectedVersion::Any, retry.clone()).await;
        assert_reused(result, &t, &abc, &format!("append {what} of a batch part"));
        let mut results = store
            .append_batch(vec![StreamAppend::new(
                t.clone(),
                ExpectedVersion::Any,
                retry,
            )])
            .await;
        assert_eq!(results.len(), 1);
        assert_reused(
            results.remove(0),
            &t,
            &abc,
            &format!("batch part {what} of a batch part"),
        );
    }
    // Two parts that together make up the earlier part are not a retry of it.
    let split = store
        .append_batch(vec![
            StreamAppend::new(t.clone(), ExpectedVersion::NoStream, abc[..2].to_vec()),
            StreamAppend::new(
                t.clone(),
                ExpectedVersion::Exact(Version::new(2)),
                abc[2..].to_vec(),
            ),
        ])
        .await;
    assert_eq!(split.len(), 2);
    for (result, what) in split.into_iter().zip(["[a, b]", "[c]"]) {
        assert_reused(result, &t, &abc, &format!("split part {what}"));
    }
    assert_eq!(
        log_len(&*store).await,
        count,
        "refused retries write nothing"
    );
    let again = store
        .append_batch(vec![StreamAppend::new(
            t.clone(),
            ExpectedVersion::NoStream,
            abc.clone(),
        )])
        .await;
    match &again[..] {
        [Ok(result)] => assert_eq!(result, &original, "the exact retry of a batch part"),
        other => panic!("the exact retry of a batch part: {other:?}"),
    }
    let single = store
        .append(&t, ExpectedVersion::Any, abc)
        .await
        .expect("the exact retry of a batch part with append");
    assert_eq!(single, original);
    assert_eq!(log_len(&*store).await, count, "retries write nothing");

    let Ok(store) = Arc::try_unwrap(store) else {
        panic!("the case holds the only handle");
    };
    h.teardown(store).await;
}
