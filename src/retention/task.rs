//! The gateway's daily purge: a task that runs [`purge`](super::purge) a minute after the start
//! and then every 24 hours, until the shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::b2bua::Registry;
use crate::config::RetentionConfig;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The first run, after the start (the gateway is busy starting before).
pub const FIRST_RUN_AFTER: Duration = Duration::from_secs(60);
/// Then once a day.
pub const EVERY: Duration = Duration::from_secs(24 * 3600);

pub fn spawn(
    store: Store,
    recordings_dir: PathBuf,
    retention: RetentionConfig,
    registry: Arc<Registry>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = FIRST_RUN_AFTER;
        loop {
            tokio::select! {
                _ = shutdown.recv() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = EVERY;
            let is_running = |id: &str| registry.is_running(id);
            let run = super::purge(
                &store,
                &recordings_dir,
                &retention,
                chrono::Utc::now(),
                &is_running,
            );
            // A stop in the middle of a run ends it between two statements: each batch is
            // its own transaction, and a file deleted but not yet marked is logged as
            // already missing by the next run.
            tokio::select! {
                _ = shutdown.recv() => break,
                done = run => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "retention purge failed; next run in 24 h");
                    }
                }
            }
        }
        tracing::debug!("retention task stopped");
    })
}
