//! Commands through a real `CommandHandler` on the memory store.

use super::*;

#[tokio::test]
async fn commands_run_through_a_command_handler() {
    let store = Arc::new(MemoryEventStore::new());
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let handler = CommandHandler::<CiManagement>::new(dyn_store, CmdbPolicy::reference());
    let ids = SequentialIds::new(0);
    let ctx = Context::new(at(), &ids);
    let meta = CommandMeta::new("cmdb:eve".parse().expect("an actor"));
    let stream: StreamId = ConfigurationItem::stream(&ci("srv-01")).expect("a stream");
    for command in live_server() {
        handler
            .execute(&stream, &command, &meta, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    }
    let refused = handler
        .execute(&stream, &set(&[("os", "linux".into())], None), &meta, &ctx)
        .await
        .expect_err("refused");
    assert!(matches!(
        refused,
        CommandError::Rejected(CiRefusal {
            rule: CiRule::ChangeRequired(_),
            ..
        })
    ));
    let executed = handler
        .execute(
            &stream,
            &set(&[("os", "linux".into())], chg("CHG-7")),
            &meta,
            &ctx,
        )
        .await
        .expect("accepted");
    let last = executed.state.last_change().expect("a last change");
    assert_eq!(last.change, chg("CHG-7"));
    assert_eq!(last.by.as_ref().map(|a| a.as_str()), Some("cmdb:eve"));
    // A registration run on another CI's stream is refused.
    let other = ConfigurationItem::stream(&ci("srv-02")).expect("a stream");
    let wrong = handler
        .execute(
            &other,
            &register("srv-03", "server", chg("CHG-1")),
            &meta,
            &ctx,
        )
        .await
        .expect_err("refused");
    assert!(matches!(
        wrong,
        CommandError::Rejected(CiRefusal {
            rule: CiRule::WrongStream { .. },
            ..
        })
    ));
    let loaded = handler.load(&stream).await.expect("loads");
    assert_eq!(loaded.state, executed.state);
    assert_eq!(loaded.state.status(), Some("live"));
    assert_eq!(loaded.state.attribute(&name("os")), Some(&"linux".into()));
}
