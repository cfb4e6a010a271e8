//! Writers of the same streams at once: whatever isolation level the server, database or
//! connection defaults to, and however many writers share a stream, an `Any` append succeeds,
//! an exact-version append either succeeds or comes back as a conflict, and every stream's
//! versions are handed out once.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::json;
use smsys_core::{AppendError, EventData, EventId, EventStore, ExpectedVersion, StreamId, Version};
use smsys_store::postgres::PgEventStore;
use smsys_store::testkit::{Fixture, event};

use super::{database_url, drop_schema, fresh_schema, open, raw};

/// Appends `events` once: any failure but a conflict ends the test.
async fn append_once(
    store: &PgEventStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<EventData>,
) -> Result<(), Option<Version>> {
    match store.append(stream, expected, events).await {
        Ok(_) => Ok(()),
        Err(AppendError::Conflict { actual, .. }) => Err(actual),
        Err(other) => panic!("append to {stream} ({expected:?}) failed: {other}"),
    }
}

/// Every stream reads back with versions 1, 2, 3, ... and exactly the `appended` events.
async fn check_streams(store: &PgEventStore, streams: &[StreamId], appended: &HashSet<EventId>) {
    let mut seen = HashSet::new();
    for s in streams {
        let events: Vec<_> = store
            .read_stream(s, Version::FIRST)
            .map(|e| e.expect("the stream reads"))
            .collect()
            .await;
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.version.get(), i as u64 + 1, "{s}: versions are dense");
            assert!(seen.insert(e.event_id()), "{s}: event stored twice");
        }
    }
    assert_eq!(&seen, appended, "every appended event is stored, no other");
}

/// Writers on four nodes append to shared streams, half with `Any`, half deciding on the
/// version they read (a command handler: on a conflict, read again and decide again), on
/// connections whose default isolation is SERIALIZABLE or REPEATABLE READ. No append fails
/// with a transient error, every refused exact-version append is a conflict, nothing is lost
/// or stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_appends_at_any_default_isolation_level() {
    const NODES: usize = 4;
    const WRITERS: usize = 8;
    const APPENDS: usize = 25;
    let Some(url) = database_url() else { return };
    // Quoted in the connection string; the backslash keeps the option's value one word.
    for level in ["serializable", "repeatable\\\\ read"] {
        let store_url = format!("{url} options='-c default_transaction_isolation={level}'");
        let shown: String = raw(&store_url)
            .await
            .query_one("SHOW transaction_isolation", &[])
            .await
            .expect("the setting reads")
            .get(0);
        assert_ne!(shown, "read committed", "the test runs at {level}");

        let schema = fresh_schema();
        // Writers of one node take turns; writers of different nodes meet on the stream lock.
        let mut nodes = Vec::new();
        for _ in 0..NODES {
            nodes.push(Arc::new(open(&store_url, &schema, 2).await));
        }
        let streams: Vec<StreamId> = (0..2)
            .map(|i| Fixture::stream(&format!("iso{i}")))
            .collect();
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let node = Arc::clone(&nodes[w % nodes.len()]);
            let streams = streams.clone();
            writers.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                let mut conflicts = 0;
                for i in 0..APPENDS {
                    let s = &streams[(w + i) % streams.len()];
                    let events = vec![event("iso", json!({ "w": w, "i": i }))];
                    if w % 2 == 0 {
                        append_once(&node, s, ExpectedVersion::Any, events.clone())
                            .await
                            .expect("an Any append never conflicts");
                    } else {
                        loop {
                            let current = node.stream_version(s).await.expect("version reads");
                            let expected =
                                current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                            match append_once(&node, s, expected, events.clone()).await {
                                Ok(()) => break,
                                Err(actual) => {
                                    assert_ne!(actual, current, "a conflict names another version");
                                    conflicts += 1;
                                }
                            }
                        }
                    }
                    ids.extend(events.iter().map(EventData::event_id));
                }
                (ids, conflicts)
            }));
        }
        let mut appended = HashSet::new();
        let mut conflicts = 0;
        for w in writers {
            let (ids, c) = w.await.expect("writer finishes");
            appended.extend(ids);
            conflicts += c;
        }
        assert_eq!(appended.len(), WRITERS * APPENDS);
        check_streams(&nodes[0], &streams, &appended).await;
        eprintln!("at {level}: {conflicts} conflicts decided again");
        drop(nodes);
        drop_schema(&url, &schema).await;
    }
}

/// Ten writers append 250 times each with `Any` to one stream, eight on one node (sharing its
/// remembered head, so they meet on both the one-round-trip and the locked path) and two on
/// another (whose guesses keep going stale): every append succeeds (none gives up because
/// others keep writing), versions are dense, nothing is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_any_appends_to_one_hot_stream_all_succeed() {
    const WRITERS: [usize; 2] = [8, 2];
    const APPENDS: usize = 250;
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let mut nodes = Vec::new();
    for writers in WRITERS {
        nodes.push(Arc::new(open(&url, &schema, writers).await));
    }
    let s = Fixture::stream("hot");
    let mut writers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for w in 0..WRITERS[n] {
            let node = Arc::clone(node);
            let s = s.clone();
            writers.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..APPENDS {
                    let events = vec![event("hot", json!({ "n": n, "w": w, "i": i }))];
                    ids.extend(events.iter().map(EventData::event_id));
                    append_once(&node, &s, ExpectedVersion::Any, events)
                        .await
                        .expect("an Any append never conflicts");
                }
                ids
            }));
        }
    }
    let total: usize = WRITERS.iter().sum::<usize>() * APPENDS;
    let mut appended = HashSet::new();
    for w in writers {
        appended.extend(w.await.expect("writer finishes"));
    }
    assert_eq!(appended.len(), total);
    check_streams(&nodes[0], std::slice::from_ref(&s), &appended).await;
    assert_eq!(
        nodes[1].stream_version(&s).await.expect("reads"),
        Some(Version::new(total as u64))
    );
    drop(nodes);
    drop_schema(&url, &schema).await;
}

/// Every append of a stream writes under the stream's lock, also one on the one-round-trip
/// path (a head this node wrote last): while another session holds the lock, a locked writer
/// could otherwise lose its turn to it between reading the head and writing. The append waits
/// for the lock, then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_round_trip_appends_wait_for_the_stream_lock() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = Arc::new(open(&url, &schema, 2).await);
    let s = Fixture::stream("waits");
    // This node wrote the head: the next append takes the one-round-trip path.
    store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![event("w", json!({"i": 0}))],
        )
        .await
        .expect("append succeeds");
    let holder = raw(&url).await;
    holder.batch_execute("BEGIN").await.expect("begin");
    holder
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&format!("smsys:{schema}:{s}")],
        )
        .await
        .expect("the stream lock is taken");
    let pending = {
        let store = Arc::clone(&store);
        let s = s.clone();
        tokio::spawn(async move {
            store
                .append(&s, ExpectedVersion::Any, vec![event("w", json!({"i": 1}))])
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !pending.is_finished(),
        "the append waits while another session holds its stream"
    );
    holder.batch_execute("COMMIT").await.expect("commit");
    let result = pending
        .await
        .expect("append task")
        .expect("the append succeeds once the lock is free");
    assert_eq!(result.version, Version::new(2));
    drop(store);
    drop_schema(&url, &schema).await;
}
