//! The store conformance suite: one set of cases, written once against [`EventStore`], that
//! every backend runs, including third-party ones.
//!
//! Implement [`Harness`] for your store and call [`conformance_suite!`](crate::conformance_suite)
//! in a test file; it expands to one `#[test]` per case, so a failure names its case:
//!
//! ```no_run
//! use smsys_store::MemoryEventStore;
//! use smsys_store::testkit::Harness;
//!
//! struct Memory;
//!
//! #[async_trait::async_trait]
//! impl Harness for Memory {
//!     type Store = MemoryEventStore;
//!     async fn create(&self) -> MemoryEventStore {
//!         MemoryEventStore::new()
//!     }
//! }
//!
//! smsys_store::conformance_suite!(Memory);
//! ```
//!
//! The suite needs no async runtime from the caller: each case runs on its own multi-threaded
//! tokio runtime. The number of generated operation sequences of the model test is read from
//! `SMSYS_PROPTEST_CASES` (default 24).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "the conformance suite reports broken guarantees by panicking, as tests do"
)]

use std::future::Future;

use async_trait::async_trait;
use serde_json::Value;
use smsys_core::{EventStore, StreamId, Version};

pub mod cases;
mod fixture;
mod model;

pub use fixture::{Fixture, event, event_with_id};

/// How the suite gets fresh stores of a backend.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// The store type under test.
    type Store: EventStore + 'static;

    /// A fresh, empty store.
    async fn create(&self) -> Self::Store;

    /// Replaces the stored payload of one event behind the store's back (as an attacker with
    /// access to its storage would), without touching its hash. Return `false` when the backend
    /// cannot do that; the tamper case then checks a tampered copy only.
    async fn tamper_payload(
        &self,
        _store: &Self::Store,
        _stream: &StreamId,
        _version: Version,
        _payload: Value,
    ) -> bool {
        false
    }

    /// Releases what `create` set up (e.g. drops a test schema). Called after each case that
    /// passed.
    async fn teardown(&self, _store: Self::Store) {}
}

/// Runs one case of the suite on a fresh multi-threaded runtime: what the generated tests call.
pub fn run_case<H, F, Fut>(harness: H, case: F)
where
    H: Harness,
    F: FnOnce(H) -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("the test runtime starts");
    runtime.block_on(case(harness));
}

/// Expands to one `#[test]` per conformance case for the [`Harness`] value given.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@cases $harness;
            round_trip_keeps_data_and_metadata,
            expected_version_any,
            expected_version_no_stream,
            expected_version_stream_exists,
            expected_version_exact,
            conflict_writes_nothing,
            concurrent_appenders_one_winner_per_version,
            multi_event_append_is_atomic,
            positions_strictly_increase,
            read_ranges_limits_and_backwards,
            unknown_and_empty_streams,
            read_all_filters,
            idempotent_retry_returns_original_result,
            event_id_reuse_is_refused,
            bad_appends_are_refused,
            subscription_from_start_sees_everything_once,
            subscription_from_checkpoint_resumes,
            subscription_sees_concurrent_appends_exactly_once,
            hash_chain_verifies,
            tampered_payload_is_found,
            model_test
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::run_case($harness, |h| async move {
                    $crate::testkit::cases::$case(&h).await;
                });
            }
        )*
    };
}
