//! Seals on a real store: recorded incrementally, verified, proved against a published hash.

use std::sync::Arc;

use serde_json::json;
use smsys_core::seal::{SealError, Sealer, verify_against, verify_sealed};
use smsys_core::{EventHash, EventStore, ExpectedVersion};

use super::Harness;
use super::fixture::{Fixture, event};

async fn fill<S: EventStore + ?Sized>(store: &S, round: usize, streams: usize) {
    for s in 0..streams {
        let stream = Fixture::stream(&format!("s{s}"));
        let events = (0..=s % 3)
            .map(|n| event("test.sealed", json!({ "round": round, "n": n })))
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .expect("appends");
    }
}

/// A sealer records a seal, then another covering only what came after (nothing new: no
/// seal); a second sealer starting from nothing checks the seals so far and continues the
/// chain; the log verifies with every seal; the first seal's published hash is proved; a hash
/// no seal has is reported.
pub async fn seals_record_and_verify<H: Harness>(h: &H) {
    let store: Arc<H::Store> = Arc::new(h.create().await);
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let mut sealer = Sealer::new(Arc::clone(&dyn_store));
    fill(&*store, 1, 5).await;
    let first = sealer.seal().await.expect("seals").expect("a first seal");
    assert_eq!(first.seal.events, 9, "5 streams of 1, 2, 3, 1, 2 events");
    assert_eq!(first.seal.streams, 5);
    assert!(
        sealer.seal().await.expect("seals").is_none(),
        "nothing new, no seal"
    );
    fill(&*store, 2, 7).await;
    let second = sealer.seal().await.expect("seals").expect("a second seal");
    assert_eq!(second.seal.events, 9 + 13);
    assert_eq!(second.seal.streams, 7);
    assert!(second.seal.covers > first.seal.covers);

    fill(&*store, 3, 2).await;
    let mut fresh = Sealer::new(Arc::clone(&dyn_store));
    let third = fresh
        .seal()
        .await
        .expect("a fresh sealer checks the seals so far and seals")
        .expect("a third seal");
    assert_eq!(third.version.get(), 3);
    assert_eq!(third.seal.events, 22 + 3);

    let report = verify_sealed(&*dyn_store).await.expect("verifies");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.seals, 3);
    assert_eq!(
        report.latest_seal.as_ref().map(|l| l.hash),
        Some(third.hash)
    );
    let proved = verify_against(&*dyn_store, first.hash)
        .await
        .expect("verifies");
    assert!(
        proved.is_intact(),
        "the log extends the first seal: {proved:?}"
    );
    let unknown = verify_against(&*dyn_store, EventHash::from_bytes([7; 32]))
        .await
        .expect("verifies");
    assert!(!unknown.is_intact(), "a hash no seal has is reported");

    // The first sealer still believes the seal stream is at version 2: it is told it raced.
    fill(&*store, 4, 1).await;
    assert!(matches!(sealer.seal().await, Err(SealError::Raced)));
    assert!(
        sealer
            .seal()
            .await
            .expect("seals again after a race")
            .is_some(),
        "after a race the sealer walks the log again and seals"
    );
    drop(sealer);
    drop(fresh);
    drop(dyn_store);
    let Ok(store) = Arc::try_unwrap(store) else {
        panic!("the case holds the only handle");
    };
    h.teardown(store).await;
}
