//! Importing history: records' histories recorded as facts through the batched append, with
//! provenance, idempotent when run again, a refused record reported without stopping the
//! others, and the imported records usable at once by commands and the record index.

#![allow(
    clippy::expect_used,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use smsys::core::import::{
    HistoryImport, ImportFailure, ImportProgress, RecordHistory, SOURCE_ROW, SOURCE_SYSTEM,
};
use smsys::core::records::{IncidentEvent, Phase, RecordIndexStore, RecordQuery};
use smsys::core::{
    Actor, AppendError, CommandHandler, CommandMeta, Context, EventStore, ExpectedVersion,
    LogFilter, Position, ProjectionRunner, RecordedEvent, SequentialIds, Version, verify_events,
};
use smsys::processes::index::RecordIndexer;
use smsys::processes::sla::SlaEngine;
use smsys::processes::{IncidentManagement, IncidentPolicy, RecordCommand};
use smsys::store::testkit::history::desk_history;
use smsys::store::testkit::{Fixture, event};
use smsys::store::{MemoryEventStore, SqliteEventStore};

async fn log(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, LogFilter::all())
        .map(|e| e.expect("reads"))
        .collect()
        .await
}

fn total_events(histories: &[RecordHistory<IncidentEvent>]) -> usize {
    histories.iter().map(|h| h.events().len()).sum()
}

async fn import_round_trip(store: Arc<dyn EventStore>) {
    let histories = desk_history(300, 7);
    let events = total_events(&histories);
    // One record already holds other events: its import is refused, the others go in.
    let taken = histories[17].stream().clone();
    store
        .append(
            &taken,
            ExpectedVersion::NoStream,
            vec![event("incident.logged", serde_json::json!({}))],
        )
        .await
        .expect("setup append");
    let seen = Arc::new(Mutex::new(Vec::<ImportProgress>::new()));
    let progress = Arc::clone(&seen);
    let import = HistoryImport::new(Arc::clone(&store), "servicenow")
        .expect("valid source")
        .with_batch_events(250)
        .with_progress(move |p| progress.lock().expect("not poisoned").push(p));
    let report = import.run(histories.clone()).await.expect("runs");
    assert_eq!(report.records, 299, "all but the taken record");
    assert_eq!(report.events, events - histories[17].events().len());
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].stream, taken);
    assert!(
        matches!(
            report.refused[0].failure,
            ImportFailure::Append(AppendError::Conflict { .. })
        ),
        "{}",
        report.refused[0].failure
    );
    let seen = seen.lock().expect("not poisoned").clone();
    assert!(seen.len() > 5, "progress after every batch: {}", seen.len());
    assert!(
        seen.windows(2)
            .all(|p| p[0].events < p[1].events && p[0].records < p[1].records),
        "progress only grows"
    );
    let last = seen.last().expect("progress reported");
    assert_eq!((last.records, last.events), (300, events));

    let stored = log(&*store).await;
    assert_eq!(stored.len(), 1 + report.events);
    assert_eq!(
        report.last_position,
        stored.last().map(|e| e.position),
        "the report names the end of the import"
    );
    let first = histories[0].stream();
    let record: Vec<_> = stored.iter().filter(|e| &e.stream == first).collect();
    assert_eq!(record.len(), histories[0].events().len());
    for (n, (stored, past)) in record.iter().zip(histories[0].events()).enumerate() {
        let meta = stored.data.metadata();
        assert_eq!(stored.version, Version::new(n as u64 + 1));
        assert_eq!(meta.occurred_at(), past.occurred_at, "the source's instant");
        assert_eq!(meta.actor(), &past.actor, "the source's actor");
        assert_eq!(meta.extensions()[SOURCE_SYSTEM], "servicenow");
        assert_eq!(meta.extensions()[SOURCE_ROW], past.source_row.as_str());
    }
    let report = verify_events(store.read_all(Position::START, LogFilter::all()))
        .await
        .expect("reads");
    assert!(report.is_intact(), "{:?}", report.first_break);

    // Running the same import again (after a crash, say) writes nothing new.
    let again = HistoryImport::new(Arc::clone(&store), "servicenow")
        .expect("valid source")
        .run(histories.clone())
        .await
        .expect("runs");
    assert_eq!(again.records, 299, "recognised as already recorded");
    assert_eq!(again.refused.len(), 1);
    assert_eq!(
        log(&*store).await.len(),
        stored.len(),
        "nothing written twice"
    );

    // Imported records are records: commands work on them, the index lists them.
    let open = histories
        .iter()
        .find(|h| {
            h.stream() != &taken
                && matches!(
                    h.events().last().map(|e| &e.event),
                    Some(IncidentEvent::Record(
                        smsys::core::records::RecordEvent::Noted { .. }
                    ))
                )
        })
        .expect("an incident left open");
    let handler =
        CommandHandler::<IncidentManagement>::new(Arc::clone(&store), IncidentPolicy::default());
    let ids = SequentialIds::new(1 << 40);
    let ctx = Context::new(Fixture::occurred_at(), &ids);
    let done = handler
        .execute(
            open.stream(),
            &RecordCommand::AddNote {
                kind: smsys::core::records::NoteKind::WorkNote,
                text: "picked up after the migration".into(),
            }
            .into(),
            &CommandMeta::new(Actor::new("agent:ana").expect("valid")),
            &ctx,
        )
        .await
        .expect("a command on an imported record");
    assert_eq!(
        done.append.expect("recorded").version,
        Version::new(open.events().len() as u64 + 1),
        "after its imported events"
    );
}

#[tokio::test]
async fn an_import_on_memory_is_recorded_once_with_provenance() {
    import_round_trip(Arc::new(MemoryEventStore::new())).await;
}

#[tokio::test]
async fn an_import_on_sqlite_is_recorded_once_with_provenance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteEventStore::open(dir.path().join("import.sqlite"))
        .await
        .expect("opens");
    import_round_trip(Arc::new(store)).await;
}

#[tokio::test]
async fn the_record_index_lists_an_imported_desk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteEventStore::open(dir.path().join("desk.sqlite"))
        .await
        .expect("opens");
    let rows: Arc<dyn RecordIndexStore> =
        Arc::new(sqlite.record_index("records".parse().expect("valid")));
    let store: Arc<dyn EventStore> = Arc::new(sqlite);
    let histories = desk_history(1_000, 11);
    let report = HistoryImport::new(Arc::clone(&store), "servicenow")
        .expect("valid source")
        .run(histories.clone())
        .await
        .expect("runs");
    assert_eq!(report.records, 1_000);
    let indexer = RecordIndexer::new(
        Arc::clone(&store),
        Arc::clone(&rows),
        Arc::new(SlaEngine::reference()),
    );
    let reached = ProjectionRunner::new(Arc::clone(&store))
        .catch_up(&indexer)
        .await
        .expect("catches up");
    assert_eq!(reached, report.last_position);
    let all = rows.count(&RecordQuery::new()).await.expect("counts");
    assert_eq!(all, 1_000, "every imported incident has a row");
    let open = rows.count(&RecordQuery::open()).await.expect("counts");
    let expected_open = histories
        .iter()
        .filter(|h| {
            !h.events().iter().any(|e| {
                matches!(&e.event, IncidentEvent::Record(smsys::core::records::RecordEvent::Transitioned { phase, .. }) if !phase.is_open())
            })
        })
        .count();
    assert_eq!(
        open as usize, expected_open,
        "open rows are the unresolved incidents"
    );
    assert!(expected_open > 100 && expected_open < 1_000);
    let closed = RecordQuery {
        phases: vec![Phase::Closed],
        ..RecordQuery::new()
    };
    let closed = rows.count(&closed).await.expect("counts");
    assert!(closed > 500, "most imported incidents are closed: {closed}");
}

#[tokio::test]
async fn a_history_in_two_parts_continues_and_reruns_and_reports_its_end() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let mut histories = desk_history(2, 3);
    let whole = histories.remove(0);
    let stream = whole.stream().clone();
    // Both parts name the same source row: one row of the source may give several events.
    let part = |events: &[smsys::core::import::HistoricalEvent<IncidentEvent>], at: Option<u64>| {
        let mut part = RecordHistory::new(stream.clone());
        if let Some(version) = at {
            part = part.continuing(Version::new(version));
        }
        for past in events {
            let mut past = past.clone();
            past.source_row = "the only row".into();
            part.push(past);
        }
        part
    };
    let split = 2;
    let first = part(&whole.events()[..split], None);
    let rest = part(&whole.events()[split..], Some(split as u64));
    let seen = Arc::new(Mutex::new(Vec::<ImportProgress>::new()));
    let progress = Arc::clone(&seen);
    let import = HistoryImport::new(Arc::clone(&store), "servicenow")
        .expect("valid source")
        .with_batch_events(1)
        .with_progress(move |p| progress.lock().expect("not poisoned").push(p));
    let empty = RecordHistory::new(histories[0].stream().clone());
    let report = import
        .run(vec![first.clone(), rest.clone(), empty.clone()])
        .await
        .expect("runs");
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert_eq!(report.events, whole.events().len());
    assert_eq!(
        store.stream_version(&stream).await.expect("reads"),
        Some(Version::new(whole.events().len() as u64))
    );
    let last = *seen.lock().expect("not poisoned").last().expect("reported");
    assert_eq!(
        last.records, 3,
        "the trailing empty record is in the last report"
    );
    assert_eq!(last.total_records, 3);

    let again = import.run(vec![first, rest]).await.expect("runs");
    assert!(
        again.refused.is_empty(),
        "a rerun is a retry: {:?}",
        again.refused
    );
    assert_eq!(log(&*store).await.len(), whole.events().len());

    // The same history under another source's name is another import: its ids differ, so the
    // store refuses it for the version it expects, not for a reused id.
    let other = HistoryImport::new(Arc::clone(&store), "jira")
        .expect("valid source")
        .run(vec![whole])
        .await
        .expect("runs");
    assert!(
        matches!(
            other.refused[0].failure,
            ImportFailure::Append(AppendError::Conflict { .. })
        ),
        "{}",
        other.refused[0].failure
    );
}

/// A long imported stream gets a snapshot in the store's own table at its first command, and
/// the next cold handler loads from it.
#[tokio::test]
async fn long_streams_get_snapshots_automatically() {
    use smsys::core::import::HistoricalEvent;
    use smsys::core::records::{NoteKind, RecordEvent};
    use smsys::core::{SnapshotPolicy, SnapshotStore};
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteEventStore::open(dir.path().join("long.sqlite"))
        .await
        .expect("opens");
    let store: Arc<dyn EventStore> = Arc::new(sqlite.clone());
    // The generator leaves an incident open with a comment as its last event.
    let open = |h: &RecordHistory<IncidentEvent>| {
        matches!(
            h.events().last().map(|e| &e.event),
            Some(IncidentEvent::Record(RecordEvent::Noted { .. }))
        )
    };
    let mut history = desk_history(50, 5)
        .into_iter()
        .find(open)
        .expect("an open incident");
    let agent = Actor::new("agent:ana").expect("valid");
    for n in 0..150 {
        history.push(HistoricalEvent::new(
            RecordEvent::Noted {
                kind: NoteKind::WorkNote,
                text: format!("note {n}"),
            }
            .into(),
            agent.clone(),
            Fixture::occurred_at(),
            format!("note {n}"),
        ));
    }
    let stream = history.stream().clone();
    let events = history.events().len() as u64;
    let report = HistoryImport::new(Arc::clone(&store), "servicenow")
        .expect("valid source")
        .run(vec![history])
        .await
        .expect("imports");
    assert!(report.refused.is_empty());
    assert_eq!(sqlite.load_snapshot(&stream).await.expect("reads"), None);

    let ids = SequentialIds::new(1 << 40);
    let ctx = Context::new(Fixture::occurred_at(), &ids);
    let note = RecordCommand::AddNote {
        kind: NoteKind::WorkNote,
        text: "after the import".into(),
    }
    .into();
    let agent = CommandMeta::new(Actor::new("agent:ana").expect("valid"));
    let handler =
        CommandHandler::<IncidentManagement>::new(Arc::clone(&store), IncidentPolicy::default());
    handler
        .execute(&stream, &note, &agent, &ctx)
        .await
        .expect("a command on the long stream");
    let snapshot = sqlite
        .load_snapshot(&stream)
        .await
        .expect("reads")
        .expect("the load that replayed the long stream left a snapshot");
    assert_eq!(snapshot.version, Version::new(events));
    let loaded = handler.load(&stream).await.expect("loads");
    let replayed =
        CommandHandler::<IncidentManagement>::new(Arc::clone(&store), IncidentPolicy::default())
            .with_snapshot_policy(SnapshotPolicy::Never)
            .load(&stream)
            .await
            .expect("loads");
    assert_eq!(
        loaded, replayed,
        "the state from the snapshot equals a full replay"
    );
    assert_eq!(loaded.version, Some(Version::new(events + 1)));

    let off = tempfile::tempdir().expect("temp dir");
    let plain = SqliteEventStore::open(off.path().join("off.sqlite"))
        .await
        .expect("opens");
    let plain_store: Arc<dyn EventStore> = Arc::new(plain.clone());
    let mut again = desk_history(50, 5)
        .into_iter()
        .find(open)
        .expect("an open incident");
    for n in 0..150 {
        again.push(HistoricalEvent::new(
            RecordEvent::Noted {
                kind: NoteKind::WorkNote,
                text: format!("note {n}"),
            }
            .into(),
            Actor::new("agent:ana").expect("valid"),
            Fixture::occurred_at(),
            format!("note {n}"),
        ));
    }
    HistoryImport::new(Arc::clone(&plain_store), "servicenow")
        .expect("valid source")
        .run(vec![again])
        .await
        .expect("imports");
    CommandHandler::<IncidentManagement>::new(plain_store, IncidentPolicy::default())
        .with_snapshot_policy(SnapshotPolicy::Never)
        .execute(&stream, &note, &agent, &ctx)
        .await
        .expect("a command");
    assert_eq!(
        plain.load_snapshot(&stream).await.expect("reads"),
        None,
        "no snapshots under SnapshotPolicy::Never"
    );
}
