//! Crypto-shredding end to end on SQLite: incidents logged and worked through the command
//! handler on the `Protected` decorator, the log sealed, the caller erased; the chain and the
//! seal still verify, the incident still loads (with placeholders), the erasure is recorded,
//! and the record index, rebuilt, no longer holds the caller or the summary.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests stop at the first broken expectation"
)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use smsys::core::personal::DataSubject;
use smsys::core::records::{
    Channel, ERASED_PERSON, ERASED_TEXT, Incident, NoteKind, RecordIndexStore, RecordKind,
    personal_data,
};
use smsys::core::seal::{Sealer, verify_sealed};
use smsys::core::{
    Actor, CommandHandler, CommandMeta, Context, EventStore, ProjectionRunner, SequentialIds,
    StreamId, Version,
};
use smsys::processes::index::RecordIndexer;
use smsys::processes::sla::SlaEngine;
use smsys::processes::{
    IncidentCommand, IncidentManagement, IncidentPolicy, LogRecord, RecordCommand,
};
use smsys::store::privacy::{ErasureRequest, Protected, SqliteKeyStore, erasure_stream};
use smsys::store::{CheckpointName, MemoryRecordIndex, SqliteEventStore};

const SUMMARY: &str = "laptop stolen from the car of ana";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0)
        .single()
        .expect("valid")
}

fn stream(n: u32) -> StreamId {
    Incident::stream(&format!("INC-{n}").parse().expect("valid")).expect("valid")
}

#[tokio::test]
async fn erasure_keeps_the_chain_and_seals_and_empties_the_rebuilt_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = Arc::new(
        SqliteEventStore::open(dir.path().join("log.db"))
            .await
            .expect("opens"),
    );
    let keys = Arc::new(
        SqliteKeyStore::open(dir.path().join("keys.db"))
            .await
            .expect("opens"),
    );
    let store = Arc::new(Protected::new(inner.clone(), keys, personal_data()));
    let handler =
        CommandHandler::<IncidentManagement>::new(store.clone(), IncidentPolicy::default());
    let ids = SequentialIds::new(1);
    let meta = CommandMeta::new(Actor::new("agent:bo").expect("valid"));
    for (n, caller) in [(1, "ana"), (2, "ana"), (3, "cy")] {
        let log = LogRecord::new(
            format!("INC-{n}").parse().expect("valid"),
            caller.parse().expect("valid"),
            Channel::Phone,
            "email".parse().expect("valid"),
            SUMMARY,
        )
        .description("called from home");
        let ctx = Context::new(t0(), &ids);
        handler
            .execute(&stream(n), &IncidentCommand::Log(log), &meta, &ctx)
            .await
            .expect("logged");
        let note = RecordCommand::AddNote {
            kind: NoteKind::WorkNote,
            text: "rang ana back".into(),
        };
        handler
            .execute(&stream(n), &note.into(), &meta, &ctx)
            .await
            .expect("noted");
    }
    let index: Arc<dyn RecordIndexStore> = Arc::new(MemoryRecordIndex::new(
        CheckpointName::new("record_index.v1").expect("valid"),
    ));
    let engine = Arc::new(SlaEngine::reference());
    let runner = ProjectionRunner::new(store.clone());
    let indexer = RecordIndexer::new(store.clone(), index.clone(), engine.clone());
    runner.catch_up(&indexer).await.expect("indexed");
    let row = index
        .row(&stream(1))
        .await
        .expect("reads")
        .expect("indexed");
    assert_eq!(row.summary, SUMMARY);
    assert_eq!(row.caller.as_str(), "ana");

    // Seal the log (the inner store: seals cover what is stored), then erase.
    Sealer::new(inner.clone())
        .seal()
        .await
        .expect("seals")
        .expect("a seal");
    let subject = DataSubject::new("ana").expect("valid");
    let request = ErasureRequest::new(
        "REQ-90".parse().expect("valid"),
        Actor::new("dpo").expect("valid"),
        t0(),
    );
    let report = store
        .erase_subject(&subject, &request)
        .await
        .expect("erased");
    assert_eq!(report.streams, vec![stream(1), stream(2)]);
    assert_eq!(report.events, 4);

    // Chain and seal intact.
    let verified = verify_sealed(&*inner).await.expect("verifies");
    assert!(verified.is_intact(), "{verified:?}");
    assert!(inner.verify().await.expect("verifies").is_intact());

    // The incident still decodes and loads, with placeholders.
    let loaded = handler.load(&stream(1)).await.expect("loads");
    let record = loaded.state.record();
    assert_eq!(record.summary(), ERASED_TEXT);
    assert_eq!(record.caller().map(|c| c.as_str()), Some(ERASED_PERSON));
    assert_eq!(loaded.version, Some(Version::new(2)));
    let untouched = handler.load(&stream(3)).await.expect("loads");
    assert_eq!(untouched.state.record().summary(), SUMMARY);

    // The erasure is recorded, without the subject.
    let recorded = inner
        .read_stream(&erasure_stream(), Version::FIRST)
        .next()
        .await
        .expect("one")
        .expect("reads");
    assert!(!recorded.data.payload().to_string().contains("ana"));

    // The index still holds the copy until it is rebuilt: clear, then catch up from the start.
    assert_eq!(
        index
            .row(&stream(1))
            .await
            .expect("reads")
            .expect("row")
            .summary,
        SUMMARY
    );
    index.clear().await.expect("cleared");
    let rebuilt = RecordIndexer::new(store.clone(), index.clone(), engine);
    runner.catch_up(&rebuilt).await.expect("rebuilt");
    for n in [1, 2] {
        let row = index
            .row(&stream(n))
            .await
            .expect("reads")
            .expect("indexed");
        assert_eq!(row.summary, ERASED_TEXT);
        assert_eq!(row.caller.as_str(), ERASED_PERSON);
    }
    assert_eq!(
        index
            .row(&stream(3))
            .await
            .expect("reads")
            .expect("indexed")
            .summary,
        SUMMARY
    );
}
