//! Waking subscriptions: after local commits, on NOTIFY from other nodes, and by re-polling
//! while committed events wait behind an older open transaction.
//!
//! Two background tasks per store:
//! - the *listener* holds its own connection with `LISTEN` and bumps the commit channel on
//!   every notification; while events are held back by the delivery gate it also bumps it
//!   every `held_back_poll`, because a foreign transaction that ends sends no notification;
//!   after a lost connection it reconnects and bumps once, so nothing missed meanwhile stays
//!   unseen;
//! - the *announcer* sends one `NOTIFY` for the local commits of about a millisecond, from a
//!   transaction with `synchronous_commit = off`. Appends do not notify inside their own
//!   transaction: PostgreSQL serialises the commits of notifying transactions on one lock,
//!   which would serialise every append's WAL flush.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

/// Shared between the store, its page queries and its tasks.
#[derive(Debug)]
pub(crate) struct Wake {
    /// Bumped whenever subscriptions should look again.
    commits: watch::Sender<u64>,
    /// Bumped after each local commit, for the announcer.
    local: watch::Sender<u64>,
    /// Set by a page query that saw committed events beyond the gate.
    held_back: AtomicBool,
}

impl Wake {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            commits: watch::channel(0).0,
            local: watch::channel(0).0,
            held_back: AtomicBool::new(false),
        })
    }

    /// Subscriptions look again.
    pub(crate) fn bump(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A local append committed: wake local subscriptions now, other nodes via NOTIFY.
    pub(crate) fn committed(&self) {
        self.bump();
        self.local.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A page query saw events held back by the gate.
    pub(crate) fn saw_held_back(&self) {
        self.held_back.store(true, Ordering::Relaxed);
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}

/// How long the announcer gathers local commits into one notification.
const GATHER: Duration = Duration::from_millis(1);

/// How long to wait before reconnecting the listener or resending a notification.
const RETRY: Duration = Duration::from_millis(200);

/// How often subscriptions look again whatever happens: a LISTEN connection that died without
/// a reset (a failover, a dropped NAT entry) is only noticed by TCP keepalive, hours later, and
/// idle subscribers must not wait that long for other nodes' commits.
const SAFETY_POLL: Duration = Duration::from_secs(2);

/// The listener task: runs until aborted.
pub(crate) async fn listen(
    config: tokio_postgres::Config,
    channel: String,
    wake: Arc<Wake>,
    held_back_poll: Duration,
) {
    let mut ticker = tokio::time::interval(held_back_poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match listen_once(&config, &channel, &wake, &mut ticker).await {
            Ok(()) => tracing::warn!(%channel, "listen connection closed, reconnecting"),
            Err(error) => {
                tracing::warn!(%channel, %error, "listen connection failed, reconnecting")
            }
        }
        // Not listening: keep subscriptions looking until the connection is back.
        wake.bump();
        tokio::time::sleep(RETRY).await;
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    wake: &Wake,
    ticker: &mut tokio::time::Interval,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let listen = format!("LISTEN \"{channel}\"");
    let mut listening = pin!(client.batch_execute(&listen));
    let mut ready = false;
    let mut safety = tokio::time::interval(SAFETY_POLL);
    safety.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = safety.tick() => wake.bump(),
            done = &mut listening, if !ready => {
                done?;
                ready = true;
                tracing::debug!(%channel, "listening");
                // Whatever committed before LISTEN took effect was not announced to us.
                wake.bump();
            }
            message = poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(_))) => wake.bump(),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
            _ = ticker.tick(), if ready => {
                if wake.held_back.swap(false, Ordering::Relaxed) {
                    wake.bump();
                }
            }
        }
    }
}

/// The announcer task: one NOTIFY per burst of local commits; ends when the store is gone.
pub(crate) async fn announce(pool: Pool, channel: String, wake: Arc<Wake>) {
    let mut local = wake.local.subscribe();
    drop(wake);
    let sql = format!("BEGIN; SET LOCAL synchronous_commit = off; NOTIFY \"{channel}\"; COMMIT;");
    while local.changed().await.is_ok() {
        // Gather the commits of the next moment into the same notification: a NOTIFY is a
        // transaction of its own, worth sharing between appends.
        tokio::time::sleep(GATHER).await;
        local.borrow_and_update();
        loop {
            let sent = match pool.get().await {
                Ok(client) => match client.batch_execute(&sql).await {
                    Ok(()) => Ok(()),
                    Err(error) => {
                        // The transaction may be left open: never give this connection back.
                        drop(deadpool_postgres::Object::take(client));
                        Err(error.to_string())
                    }
                },
                Err(error) => Err(error.to_string()),
            };
            match sent {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%channel, %error, "could not announce commits, retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}
