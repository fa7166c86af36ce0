//! In a cluster: the trunks another node changed, applied on this node. The database holds the
//! trunks; a change made through any node is announced on the change bus, and this task reloads
//! them (`TrunkBook::reload`) on each notice, on `Resync` (after every (re)subscription: notices
//! may have been lost), and every `RECHECK` as a safety net (a notice that could not be
//! published).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::TrunkBook;
use crate::cluster::bus::{Change, ChangeBus, Notice};
use crate::shutdown::Shutdown;

/// The periodic re-read of the trunks, whatever the bus says.
pub const RECHECK: Duration = Duration::from_secs(10);

/// Starts the task; it stops at `shutdown`.
pub fn spawn(bus: &ChangeBus, book: Arc<TrunkBook>, shutdown: Shutdown) -> JoinHandle<()> {
    let rx = bus.subscribe();
    tokio::spawn(run(rx, book, shutdown))
}

async fn run(
    mut rx: tokio::sync::broadcast::Receiver<Notice>,
    book: Arc<TrunkBook>,
    mut shutdown: Shutdown,
) {
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck.tick().await;
    loop {
        let why = tokio::select! {
            notice = rx.recv() => match notice {
                Ok(Notice::Changed { change: Change::Trunks, by }) => format!("notice from {by}"),
                Ok(Notice::Changed { .. }) => continue,
                Ok(Notice::Resync) => "resync".to_string(),
                Err(RecvError::Lagged(_)) => "notices lost".to_string(),
                Err(RecvError::Closed) => break,
            },
            _ = recheck.tick() => "periodic re-check".to_string(),
            _ = shutdown.recv() => break,
        };
        match book.reload().await {
            Ok(true) => tracing::info!(why = %why, "trunks changed by another node applied"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(why = %why, error = %e, "cannot reload the trunks from the database; the trunks in force stay")
            }
        }
    }
}
