//! Scans a log of one million events from a SQLite store and reports the peak memory of the
//! scan: the log is read page by page, so memory stays bounded whatever its length.
//!
//! ```text
//! cargo run --release --example sqlite_scan [events]
//! ```
//!
//! Fills a temporary store (1,000 streams, appends of 500 events, `Durability::Normal`),
//! resets the kernel's peak-RSS counter (`/proc/self/clear_refs`, Linux), scans the whole log
//! with `read_all`, and prints the scan rate and `VmHWM` (peak resident set) before and after.

use std::error::Error;
use std::io::Write;
use std::time::Instant;

use futures::StreamExt;
use serde_json::json;
use smsys_core::{EventStore, ExpectedVersion, LogFilter, Position, StreamId};
use smsys_store::testkit::event;
use smsys_store::{Durability, SqliteOptions};

const STREAMS: u64 = 1_000;
const APPEND: u64 = 500;

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown (no /proc)".to_owned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let total: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    let mut out = std::io::stdout().lock();
    let dir = tempfile::tempdir()?;
    let store = SqliteOptions::new(dir.path().join("scan.db"))
        .durability(Durability::Normal)
        .open()
        .await?;

    let started = Instant::now();
    let mut written = 0u64;
    while written < total {
        let s: StreamId = format!("scan-s{}", (written / APPEND) % STREAMS).parse()?;
        let n = APPEND.min(total - written);
        let batch = (0..n)
            .map(|i| {
                event(
                    "scan.ticked",
                    json!({"n": written + i, "note": "a ticket event"}),
                )
            })
            .collect();
        store.append(&s, ExpectedVersion::Any, batch).await?;
        written += n;
    }
    let fill = started.elapsed();
    let size = std::fs::metadata(dir.path().join("scan.db"))?.len();
    writeln!(
        out,
        "filled {written} events in {fill:.2?} ({:.0} events/s), file {} MB, VmHWM after fill {}",
        written as f64 / fill.as_secs_f64(),
        size / 1_000_000,
        vm_hwm()
    )?;

    // Reset the peak-RSS counter so VmHWM measures the scan alone (Linux >= 4.0).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = vm_hwm();
    let started = Instant::now();
    let mut events = store.read_all(Position::START, LogFilter::all());
    let (mut count, mut last) = (0u64, Position::START);
    while let Some(e) = events.next().await {
        let e = e?;
        assert!(e.position > last, "log order");
        last = e.position;
        count += 1;
    }
    drop(events);
    let scan = started.elapsed();
    assert_eq!(count, written, "the scan saw every event");
    writeln!(
        out,
        "scanned {count} events in {scan:.2?} ({:.0} events/s); VmHWM {} at scan start{}, {} after the scan",
        count as f64 / scan.as_secs_f64(),
        before,
        if reset {
            " (peak reset)"
        } else {
            " (peak not resettable)"
        },
        vm_hwm()
    )?;
    store.close().await;
    Ok(())
}
