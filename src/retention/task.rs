//! The gateway's daily purge: a task that runs [`purge`](super::purge) a minute after the start
//! and then every 24 hours, until the shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::RetentionConfig;
use crate::model::LiveCalls;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The first run, after the start (the gateway is busy starting before).
pub const FIRST_RUN_AFTER: Duration = Duration::from_secs(60);
/// Then once a day.
pub const EVERY: Duration = Duration::from_secs(24 * 3600);

/// The daily purge of node `node` (`[cluster] node_id`, `None` on a single node: see
/// `purge_on`).
pub fn spawn(
    store: Store,
    recordings_dir: PathBuf,
    node: Option<String>,
    retention: RetentionConfig,
    calls: Arc<dyn LiveCalls>,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    spawn_after(
        FIRST_RUN_AFTER,
        store,
        recordings_dir,
        node,
        retention,
        calls,
        shutdown,
    )
}

/// As [`spawn`], with the first run after `first`.
pub fn spawn_after(
    first: Duration,
    store: Store,
    recordings_dir: PathBuf,
    node: Option<String>,
    retention: RetentionConfig,
    calls: Arc<dyn LiveCalls>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = first;
        loop {
            tokio::select! {
                _ = shutdown.recv() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = EVERY;
            let is_running = |id: &str| calls.is_running(id);
            let run = super::purge_on(
                &store,
                &recordings_dir,
                node.as_deref(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample_cdr;
    use crate::model::RecordingInfo;

    /// No call is running.
    struct NoCalls;

    impl LiveCalls for NoCalls {
        fn live_calls(&self) -> Vec<crate::model::LiveCallView> {
            Vec::new()
        }
        fn calls_per_trunk(&self) -> std::collections::HashMap<String, u32> {
            Default::default()
        }
        fn hang_up(&self, _: &str, _: Option<&str>, _: crate::model::EndReason) -> usize {
            0
        }
        fn is_running(&self, _: &str) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn runs_then_stops_with_the_shutdown() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let mut old = sample_cdr("old");
        let shift = chrono::Duration::days(400);
        old.attempt.invite_at = chrono::Utc::now() - shift;
        old.outcome.end_at = old.attempt.invite_at;
        (old.attempt.ringing_at, old.attempt.answer_at) = (None, None);
        old.recording = Some(RecordingInfo::failed("no disk"));
        let mut fresh = sample_cdr("fresh");
        fresh.attempt.invite_at = chrono::Utc::now();
        store.insert_cdrs(&[old, fresh]).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = spawn_after(
            Duration::ZERO,
            store.clone(),
            dir.path().to_path_buf(),
            None,
            RetentionConfig::default(),
            Arc::new(NoCalls),
            shutdown,
        );
        // Bounded wait for the first run's work.
        let mut left = 500;
        while store.get_cdr("old").await.unwrap().is_some() {
            left -= 1;
            assert!(left > 0, "the first run did not happen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(store.get_cdr("fresh").await.unwrap().is_some());
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("stops with the shutdown")
            .unwrap();
    }
}
