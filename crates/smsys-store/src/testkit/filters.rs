//! Cases of the read-side suite: a checkpoint, and a record index, serve the filter they are
//! bound to only, so a reader that changed its filter is refused rather than resumed past
//! events it never read.

use smsys_core::records::RecordIndexStore;
use smsys_core::{Category, CheckpointStore, LogFilter, Position, StoreError};

use super::read_side::ReadSideHarness;
use super::records::record_row;
use crate::CheckpointName;

fn incidents() -> LogFilter {
    LogFilter::all().category(Category::new("incident").expect("valid category"))
}

fn incidents_and_requests() -> LogFilter {
    incidents().category(Category::new("request").expect("valid category"))
}

/// Asserts `result` is the refusal of checkpoint `name`, kept for `kept`, asked for with
/// `requested`.
fn assert_refused(
    result: Result<Option<Position>, StoreError>,
    name: &str,
    kept: &LogFilter,
    requested: &LogFilter,
) {
    match result {
        Err(StoreError::CheckpointFilter(mismatch)) => {
            assert_eq!(mismatch.name, name);
            assert_eq!(mismatch.kept, kept.canonical());
            assert_eq!(mismatch.requested, requested.canonical());
        }
        other => panic!("expected checkpoint {name} refused for another filter, got {other:?}"),
    }
}

/// A checkpoint is bound to the filter of the first reader that asks for it with one;
/// another filter is refused, changing nothing; a checkpoint saved before any binding is
/// bound by its first filtered load; the binding is durable.
pub async fn checkpoint_bound_to_its_filter<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let checkpoints = h.checkpoints(&db);
    let (narrow, wide) = (incidents(), incidents_and_requests());
    assert_eq!(
        checkpoints
            .load_checkpoint_for("notifier", &narrow)
            .await
            .expect("loads"),
        None
    );
    checkpoints
        .save_checkpoint("notifier", Position::new(0, 7))
        .await
        .expect("saves");
    let repeated = narrow
        .clone()
        .category(Category::new("incident").expect("valid"));
    assert_eq!(
        checkpoints
            .load_checkpoint_for("notifier", &repeated)
            .await
            .expect("the same filter, written otherwise"),
        Some(Position::new(0, 7))
    );
    assert_refused(
        checkpoints.load_checkpoint_for("notifier", &wide).await,
        "notifier",
        &narrow,
        &wide,
    );
    assert_refused(
        checkpoints
            .load_checkpoint_for("notifier", &LogFilter::all())
            .await,
        "notifier",
        &narrow,
        &LogFilter::all(),
    );
    assert_eq!(
        checkpoints
            .load_checkpoint("notifier")
            .await
            .expect("loads"),
        Some(Position::new(0, 7)),
        "a refusal changes nothing"
    );
    checkpoints
        .save_checkpoint("earlier", Position::new(0, 3))
        .await
        .expect("saves");
    assert_eq!(
        checkpoints
            .load_checkpoint_for("earlier", &wide)
            .await
            .expect("binds"),
        Some(Position::new(0, 3))
    );
    assert_refused(
        checkpoints.load_checkpoint_for("earlier", &narrow).await,
        "earlier",
        &wide,
        &narrow,
    );
    if !h.reopens() {
        h.teardown(db).await;
        return;
    }
    drop(checkpoints);
    let db = h.reopen(db).await;
    let checkpoints = h.checkpoints(&db);
    assert_refused(
        checkpoints.load_checkpoint_for("notifier", &wide).await,
        "notifier",
        &narrow,
        &wide,
    );
    assert_eq!(
        checkpoints
            .load_checkpoint_for("notifier", &narrow)
            .await
            .expect("loads"),
        Some(Position::new(0, 7))
    );
    h.teardown(db).await;
}

/// A record index is bound to the filter of its indexer; clearing it removes the binding
/// with the rows, and an index of another name is bound on its own.
pub async fn index_bound_to_its_filter<H: ReadSideHarness>(h: &H) {
    let db = h.create().await;
    let name = CheckpointName::new("record_index.filtered").expect("valid name");
    let index = h.index(&db, &name);
    let (narrow, wide) = (incidents(), incidents_and_requests());
    assert_eq!(index.checkpoint_for(&narrow).await.expect("binds"), None);
    index
        .apply(vec![record_row("INC-1")], Position::new(0, 4))
        .await
        .expect("applies");
    assert_eq!(
        index.checkpoint_for(&narrow).await.expect("loads"),
        Some(Position::new(0, 4))
    );
    assert_refused(
        index.checkpoint_for(&wide).await,
        "record_index.filtered",
        &narrow,
        &wide,
    );
    let other = h.index(
        &db,
        &CheckpointName::new("record_index.other").expect("valid"),
    );
    assert_eq!(other.checkpoint_for(&wide).await.expect("binds"), None);
    index.clear().await.expect("clears");
    assert_eq!(index.checkpoint_for(&wide).await.expect("binds anew"), None);
    assert_refused(
        index.checkpoint_for(&narrow).await,
        "record_index.filtered",
        &wide,
        &narrow,
    );
    h.teardown(db).await;
}
