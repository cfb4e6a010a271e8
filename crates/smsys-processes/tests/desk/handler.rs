//! Records through the command handler on the in-memory store: the handler sets the actor
//! (from the command's metadata) and the stream, which the rules on identities and on
//! references rely on.

use std::sync::Arc;

use smsys_core::records::{RecordKind, ServiceRequest, TypedEvent};
use smsys_core::{
    CommandError, CommandHandler, CommandMeta, Context, EventStore, Loaded, SequentialIds, StreamId,
};
use smsys_processes::request::RequestRule;
use smsys_processes::{IncidentManagement, RefusalReason, RequestCommand, RequestManagement};
use smsys_store::MemoryEventStore;

use crate::harness::{Kind, actor, id, log_input, t0};

/// A command handler for `K` under its test policy, on a new in-memory store.
struct Service<K: Kind> {
    store: Arc<MemoryEventStore>,
    handler: CommandHandler<K>,
    ids: SequentialIds,
}

impl<K: Kind> Service<K> {
    fn new() -> Self {
        let store = Arc::new(MemoryEventStore::new());
        let dyn_store: Arc<dyn EventStore> = store.clone();
        Self {
            handler: CommandHandler::new(dyn_store, K::policy()),
            store,
            ids: SequentialIds::new(0),
        }
    }

    /// Runs `command` on `stream` as `who`: the names of the events recorded, or the refusal.
    async fn execute(
        &self,
        stream: &StreamId,
        command: impl Into<K::Command>,
        who: &str,
    ) -> Result<Vec<&'static str>, RefusalReason<K::Rule>> {
        let ctx = Context::new(t0(), &self.ids);
        let meta = CommandMeta::new(actor(who));
        match self
            .handler
            .execute(stream, &command.into(), &meta, &ctx)
            .await
        {
            Ok(executed) => Ok(executed.events.iter().map(TypedEvent::name).collect()),
            Err(CommandError::Rejected(refusal)) => Err(refusal.reason),
            Err(other) => panic!("the command failed: {other}"),
        }
    }

    /// The record of `stream` as loaded from the store.
    async fn load(&self, stream: &StreamId) -> Loaded<K::Record> {
        self.handler.load(stream).await.expect("loads")
    }
}

#[tokio::test]
async fn the_handler_approves_as_the_acting_person() {
    let desk = Service::<RequestManagement>::new();
    let stream = ServiceRequest::stream(&id("R-1")).expect("a stream");
    let run = |command: RequestCommand, who: &'static str| desk.execute(&stream, command, who);
    run(RequestManagement::log(log_input()), "frank")
        .await
        .expect("logged");
    run(
        RequestCommand::RequestApproval {
            approvers: vec![id("carol"), id("dave")],
            quorum: 1,
        },
        "frank",
    )
    .await
    .expect("asked");
    assert_eq!(
        run(RequestCommand::Approve, "frank").await,
        Err(RefusalReason::Rule(RequestRule::SelfApproval(
            "frank".into()
        ))),
        "the loaded record remembers who logged it"
    );
    let written = desk.store.len();
    assert_eq!(
        run(RequestCommand::Approve, "carol").await,
        Ok(vec!["approval_given", "approved", "transitioned"])
    );
    assert_eq!(desk.store.len(), written + 3);

    let loaded = desk.load(&stream).await.state;
    assert_eq!(loaded.record().status(), Some("in_fulfilment"));
    assert_eq!(loaded.record().logged_by(), Some(&actor("frank")));
    assert_eq!(
        loaded.approval().map(|a| a.given.clone()),
        Some(vec![id("carol")])
    );
}

/// A log command naming record `R-2` run on the stream of `R-1` is refused and writes nothing.
async fn a_log_on_another_stream_is_refused<K: Kind>() {
    let desk = Service::<K>::new();
    let stream = K::Record::stream(&id("R-1")).expect("a stream");
    let mut other = log_input();
    other.reference = id("R-2");
    assert_eq!(
        desk.execute(&stream, K::log(other), "frank").await,
        Err(RefusalReason::WrongStream {
            reference: id("R-2"),
            expected: K::Record::stream(&id("R-2")).expect("a stream"),
            actual: stream.clone(),
        })
    );
    assert!(desk.store.is_empty(), "nothing was written");
    assert_eq!(desk.load(&stream).await.version, None);
    assert_eq!(
        desk.execute(&stream, K::log(log_input()), "frank").await,
        Ok(vec!["logged"]),
        "the matching reference is logged"
    );
}

#[tokio::test]
async fn an_incident_log_on_another_stream_is_refused() {
    a_log_on_another_stream_is_refused::<IncidentManagement>().await;
}

#[tokio::test]
async fn a_request_log_on_another_stream_is_refused() {
    a_log_on_another_stream_is_refused::<RequestManagement>().await;
}
