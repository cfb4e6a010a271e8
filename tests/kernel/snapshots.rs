//! Snapshots are trusted only when they fit: taken under the same state type and upcasters,
//! and after an event the stream still holds at that version. Anything else is replayed.

use std::num::NonZeroU64;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use smsys::core::{
    Aggregate, CommandHandler, Context, EventSourced, EventStore, ExpectedVersion, SequentialIds,
    SnapshotPolicy, SnapshotStore, Stamp, Upcasters, Version,
};
use smsys::store::testkit::event;
use smsys::store::{MemoryEventStore, MemorySnapshotStore};

use super::ticket::{OPENED, Ticket, TicketCommand, TicketDesk, TicketEvent, TicketRejection};
use super::{at, meta, stream};

fn every(n: u64) -> SnapshotPolicy {
    SnapshotPolicy::Every(NonZeroU64::new(n).expect("non-zero"))
}

/// The step lifting `ticket.opened` v1 to v2, filling the channel with `channel`.
fn lift_to(channel: &'static str, revision: u32) -> Upcasters {
    Upcasters::new().register_revision(OPENED, 1, revision, move |mut payload: Value| {
        payload["channel"] = Value::from(channel);
        Ok(payload)
    })
}

#[tokio::test]
async fn a_fixed_upcaster_is_not_undone_by_an_old_snapshot() {
    let store = Arc::new(MemoryEventStore::new());
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let s = stream("up");
    store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![event(OPENED, json!({ "title": "VPN drops" }))],
        )
        .await
        .expect("a version 1 event");
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(9), &ids);
    let handler = |upcasters: Upcasters| {
        CommandHandler::<TicketDesk>::new(store.clone(), ())
            .with_snapshots(snapshots.clone(), every(1))
            .with_upcasters(upcasters)
    };
    let wrong = handler(lift_to("wrong", 1));
    wrong
        .execute(&s, &TicketCommand::Comment("one".into()), &meta(), &ctx)
        .await
        .expect("comments");
    let kept = snapshots.load_snapshot(&s).await.expect("reads");
    assert_eq!(kept.map(|k| k.version), Some(Version::new(2)), "a snapshot");

    // Same step revision: the snapshot is trusted (it was taken under the same upcasters).
    let same = handler(lift_to("also wrong", 1))
        .load(&s)
        .await
        .expect("loads");
    assert_eq!(
        same.state.channel.as_deref(),
        Some("wrong"),
        "the snapshot is used"
    );

    // The fixed step, with its revision raised: the stream is replayed through it.
    let fixed = handler(lift_to("phone", 2));
    let loaded = fixed.load(&s).await.expect("loads");
    assert_eq!(loaded.state.channel.as_deref(), Some("phone"));
    let done = fixed
        .execute(&s, &TicketCommand::Comment("two".into()), &meta(), &ctx)
        .await
        .expect("comments");
    assert_eq!(done.state.channel.as_deref(), Some("phone"));
}

#[tokio::test]
async fn a_snapshot_ahead_of_a_restored_stream_is_replayed_past() {
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let s = stream("restored");
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(9), &ids);
    let first = Arc::new(MemoryEventStore::new());
    let handler = CommandHandler::<TicketDesk>::new(first.clone(), ())
        .with_snapshots(snapshots.clone(), every(5));
    handler
        .execute(&s, &super::open(), &meta(), &ctx)
        .await
        .expect("opens");
    for n in 0..4 {
        handler
            .execute(&s, &TicketCommand::Comment(format!("c{n}")), &meta(), &ctx)
            .await
            .expect("comments");
    }
    assert_eq!(
        snapshots
            .load_snapshot(&s)
            .await
            .expect("reads")
            .map(|k| k.version),
        Some(Version::new(5))
    );

    // The event store comes back from an older backup: three events; the snapshots do not.
    let restored = Arc::new(MemoryEventStore::new());
    let kept: Vec<_> = {
        use futures::StreamExt;
        first
            .read_stream(&s, Version::FIRST)
            .take(3)
            .map(|e| e.expect("reads").data)
            .collect()
            .await
    };
    restored
        .append(&s, ExpectedVersion::NoStream, kept)
        .await
        .expect("restores");
    let handler = CommandHandler::<TicketDesk>::new(restored.clone(), ())
        .with_snapshots(snapshots.clone(), every(5))
        .with_max_attempts(1);
    let loaded = handler.load(&s).await.expect("loads");
    assert_eq!(loaded.version, Some(Version::new(3)));
    assert_eq!(
        loaded.state.comments,
        vec!["c0".to_owned(), "c1".to_owned()]
    );
    let done = handler
        .execute(&s, &TicketCommand::Comment("after".into()), &meta(), &ctx)
        .await
        .expect("the command works on the restored stream, first time");
    assert_eq!(done.append.map(|a| a.version), Some(Version::new(4)));
}

/// Another state of the same category, whose snapshot form the ticket's would also decode
/// into: it counts the events it saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Tally {
    title: Option<String>,
    events: u64,
}

impl EventSourced for Tally {
    const CATEGORY: &'static str = "ticket";
    type Event = TicketEvent;
    fn evolve(&mut self, event: &TicketEvent, _: Stamp<'_>) {
        if let TicketEvent::Opened(o) = event {
            self.title = Some(o.title.clone());
        }
        self.events += 1;
    }
}

struct Tallies;

impl Aggregate for Tallies {
    type State = Tally;
    type Services = ();
    type Command = ();
    type Rejection = TicketRejection;
    fn decide(
        _: &Tally,
        _: &(),
        _: &(),
        _: &Context<'_>,
    ) -> Result<Vec<TicketEvent>, TicketRejection> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn states_sharing_a_category_never_read_each_others_snapshots() {
    let store = Arc::new(MemoryEventStore::new());
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let s = stream("shared");
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(9), &ids);
    let tickets = CommandHandler::<TicketDesk>::new(store.clone(), ())
        .with_snapshots(snapshots.clone(), every(2));
    tickets
        .execute(&s, &super::open(), &meta(), &ctx)
        .await
        .expect("opens");
    tickets
        .execute(&s, &TicketCommand::Comment("x".into()), &meta(), &ctx)
        .await
        .expect("comments");
    assert!(snapshots.load_snapshot(&s).await.expect("reads").is_some());
    let tallies = CommandHandler::<Tallies>::new(store.clone(), ())
        .with_snapshots(snapshots.clone(), SnapshotPolicy::Never);
    let loaded = tallies.load(&s).await.expect("loads");
    assert_eq!(
        loaded.state,
        Tally {
            title: Some("VPN drops".into()),
            events: 2
        },
        "replayed, not read from the ticket's snapshot"
    );
    let _: Ticket = tickets.load(&s).await.expect("loads").state;
}
