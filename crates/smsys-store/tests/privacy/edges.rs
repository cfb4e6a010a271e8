//! The edges of erasure: erased records never re-keyed, records logged before the decorator,
//! keys registered by refused appends, and erasures retried after their keys failed to go.

use super::*;
use smsys_core::{AppendError, StoreError};
use smsys_store::privacy::{ErasureError, PrivacyError};

/// The refusal of an append to an erased record.
pub(crate) fn assert_refused_as_erased<T: std::fmt::Debug>(refused: &Result<T, AppendError>) {
    let source = match refused {
        Err(AppendError::Store(StoreError::Backend(b))) => std::error::Error::source(b),
        other => panic!("{other:?}"),
    };
    assert!(
        source
            .and_then(|s| s.downcast_ref::<PrivacyError>())
            .is_some_and(|e| matches!(e, PrivacyError::Erased { .. })),
        "{refused:?}"
    );
}

fn request(reference: &str) -> ErasureRequest {
    ErasureRequest::new(reference.parse().unwrap(), Actor::new("dpo").unwrap(), at())
}

fn subject(name: &str) -> DataSubject {
    DataSubject::new(name).unwrap()
}

async fn payloads<S: EventStore + ?Sized>(store: &S, of: &StreamId) -> Vec<Value> {
    store
        .read_stream(of, Version::FIRST)
        .map(|e| e.expect("reads").data.payload().clone())
        .collect()
        .await
}

/// The edges of erasure, on streams 10 to 14 of a store `scenario` ran on (or any other).
pub(crate) async fn erasure_edges<S: EventStore + 'static>(inner: Arc<S>, keys: Arc<dyn KeyStore>) {
    let store = Protected::new(inner.clone(), keys.clone(), personal_data());

    // An erased record is never given a new key, not even by an append naming a subject that
    // the inner store then refuses: its fields keep reading as placeholders.
    let erased = stream(10);
    store
        .append(
            &erased,
            ExpectedVersion::NoStream,
            vec![logged(101, "ana-10"), noted(102)],
        )
        .await
        .unwrap();
    store
        .erase_subject(&subject("ana-10"), &request("DSR-10"))
        .await
        .unwrap();
    let refused = store
        .append(&erased, ExpectedVersion::NoStream, vec![logged(103, "eve")])
        .await;
    assert_refused_as_erased(&refused);
    let refused = store
        .append(&erased, ExpectedVersion::Any, vec![logged(104, "eve")])
        .await;
    assert_refused_as_erased(&refused);
    let batch = store
        .append_batch(vec![StreamAppend::new(
            erased.clone(),
            ExpectedVersion::Any,
            vec![logged(105, "eve")],
        )])
        .await;
    assert_refused_as_erased(&batch[0]);
    assert_eq!(keys.key(&erased).await.unwrap(), Some(KeyState::Erased));
    assert_eq!(
        keys.key_for(&erased, &subject("eve")).await.unwrap(),
        KeyState::Erased
    );
    assert!(keys.keys_of(&subject("eve")).await.unwrap().is_empty());
    let read = payloads(&store, &erased).await;
    assert_eq!(read[0]["caller"], "erased");
    assert_eq!(read[1]["text"], "[erased]");

    // A record logged before the decorator: its plaintext is counted, not erased, and the
    // record is not re-keyed afterwards.
    let legacy = stream(11);
    inner
        .append(
            &legacy,
            ExpectedVersion::NoStream,
            vec![logged(111, "ana-11")],
        )
        .await
        .unwrap();
    store
        .append(&legacy, ExpectedVersion::Any, vec![noted(112)])
        .await
        .unwrap();
    let report = store
        .erase_subject(&subject("ana-11"), &request("DSR-11"))
        .await
        .unwrap();
    assert_eq!(report.streams, vec![legacy.clone()]);
    assert_eq!((report.events, report.plaintext_events), (1, 1));
    let read = payloads(&store, &legacy).await;
    assert_eq!(
        read[0]["caller"], "ana-11",
        "plaintext cannot be erased by keys"
    );
    assert_eq!(read[1]["text"], "[erased]");
    let refused = store
        .append(&legacy, ExpectedVersion::Any, vec![noted(113)])
        .await;
    assert_refused_as_erased(&refused);
    assert_eq!(payloads(&store, &legacy).await.len(), 2);

    // A refused append does not keep the record's key registered to its own subject: the
    // key goes to the subject of the append that recorded the record's first event.
    let raced = stream(12);
    let lost = store
        .append(
            &raced,
            ExpectedVersion::Exact(Version::new(3)),
            vec![logged(121, "mallory")],
        )
        .await;
    assert!(
        matches!(lost, Err(AppendError::Conflict { .. })),
        "{lost:?}"
    );
    store
        .append(
            &raced,
            ExpectedVersion::NoStream,
            vec![logged(122, "ana-12")],
        )
        .await
        .unwrap();
    assert!(keys.keys_of(&subject("mallory")).await.unwrap().is_empty());
    let report = store
        .erase_subject(&subject("ana-12"), &request("DSR-12"))
        .await
        .unwrap();
    assert_eq!(report.streams, vec![raced.clone()]);
    assert_eq!(payloads(&store, &raced).await[0]["caller"], "erased");

    // An erasure recorded but whose keys were not erased completes when run again, even
    // after the record got more events.
    let retried = stream(13);
    store
        .append(
            &retried,
            ExpectedVersion::NoStream,
            vec![logged(131, "ana-13")],
        )
        .await
        .unwrap();
    let failing = Protected::new(
        inner.clone(),
        Arc::new(FailingErase(keys.clone())),
        personal_data(),
    );
    let failed = failing
        .erase_subject(&subject("ana-13"), &request("DSR-13"))
        .await;
    assert!(matches!(failed, Err(ErasureError::Store(_))), "{failed:?}");
    store
        .append(&retried, ExpectedVersion::Any, vec![noted(132)])
        .await
        .unwrap();
    let report = store
        .erase_subject(&subject("ana-13"), &request("DSR-13"))
        .await
        .expect("the retry completes");
    assert_eq!(
        (report.streams.clone(), report.events),
        (vec![retried.clone()], 1)
    );
    assert_eq!(keys.key(&retried).await.unwrap(), Some(KeyState::Erased));
    assert!(
        payloads(&store, &retried)
            .await
            .iter()
            .all(|p| p["caller"] != "ana-13")
    );
    assert_eq!(payloads(&store, &retried).await[1]["text"], "[erased]");

    // The reference of a recorded erasure is refused for a subject it did not record.
    store
        .append(
            &stream(14),
            ExpectedVersion::NoStream,
            vec![logged(141, "bo-14")],
        )
        .await
        .unwrap();
    let reused = store
        .erase_subject(&subject("bo-14"), &request("DSR-13"))
        .await;
    assert!(
        matches!(reused, Err(ErasureError::ReferenceUsed { .. })),
        "{reused:?}"
    );
    assert!(matches!(
        keys.key(&stream(14)).await.unwrap(),
        Some(KeyState::Live(_))
    ));
    let report = verify_sealed(&*inner).await.expect("verifies");
    assert!(report.is_intact(), "{report:?}");
}

/// A key store whose erasures fail (a key store that went away mid-erasure).
struct FailingErase(Arc<dyn KeyStore>);

#[async_trait::async_trait]
impl KeyStore for FailingErase {
    async fn key_for(
        &self,
        key_id: &StreamId,
        subject: &DataSubject,
    ) -> Result<KeyState, StoreError> {
        self.0.key_for(key_id, subject).await
    }
    async fn key(&self, key_id: &StreamId) -> Result<Option<KeyState>, StoreError> {
        self.0.key(key_id).await
    }
    async fn register(&self, key_id: &StreamId, subject: &DataSubject) -> Result<bool, StoreError> {
        self.0.register(key_id, subject).await
    }
    async fn keys_of(&self, subject: &DataSubject) -> Result<Vec<StreamId>, StoreError> {
        self.0.keys_of(subject).await
    }
    async fn erase(&self, _: &DataSubject, _: &[StreamId]) -> Result<Vec<StreamId>, StoreError> {
        Err(StoreError::Closed { backend: "test" })
    }
}
