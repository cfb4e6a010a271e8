//! The in-memory store against the conformance suite.

use smsys_store::MemoryEventStore;
use smsys_store::testkit::Harness;

struct Memory;

#[async_trait::async_trait]
impl Harness for Memory {
    type Store = MemoryEventStore;

    async fn create(&self) -> MemoryEventStore {
        MemoryEventStore::new()
    }

    async fn tamper_payload(
        &self,
        store: &MemoryEventStore,
        stream: &smsys_core::StreamId,
        version: smsys_core::Version,
        payload: serde_json::Value,
    ) -> bool {
        store.tamper_payload(stream, version, payload)
    }
}

mod memory {
    smsys_store::conformance_suite!(super::Memory);
}

mod memory_read_side {
    smsys_store::read_side_suite!(smsys_store::testkit::MemoryReadSide);
}

mod memory_ci_graph {
    smsys_store::ci_graph_suite!(smsys_store::testkit::ci_graph::MemoryCiGraphs);
}
