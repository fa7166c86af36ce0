//! `Gateway::shutdown`: the orderly stop. Admission stops first, live calls get the drain
//! timeout to end by themselves, the rest are ended with BYE; only then do the sockets, the API
//! and the purge stop, the recorders close their files and the last CDRs are written.

use std::time::Duration;

use super::Gateway;
use crate::b2bua::Registry;
use crate::model::EndReason;

/// How long a stop waits for the database to take the last CDRs.
const CDR_FLUSH_LIMIT: Duration = Duration::from_secs(60);
/// How long a stop waits for the cluster worker's last releases and its leave.
const CLUSTER_LEAVE_LIMIT: Duration = Duration::from_secs(5);

impl Gateway {
    /// Stop admitting, let live calls end for up to the drain timeout, end the rest with BYE,
    /// stop the sockets and write every CDR.
    pub async fn shutdown(self) {
        let drain = self.drain_timeout;
        self.shutdown_with_drain(drain).await
    }

    pub async fn shutdown_with_drain(self, drain: Duration) {
        self.b2bua.stop_admitting();
        let registry = self.b2bua.registry().clone();
        tracing::info!(
            live_calls = registry.len(),
            drain_secs = drain.as_secs(),
            "draining"
        );
        wait_until_empty(&registry, drain).await;
        if !registry.is_empty() {
            tracing::info!(
                live_calls = registry.len(),
                "drain timeout: ending live calls"
            );
            registry.hangup_all(EndReason::Shutdown);
            // Calls end at once; a few wait for a CANCEL's final response (bounded by 64·T1).
            wait_until_empty(&registry, self.layer.timers().timeout()).await;
        }
        // The carriers' bindings are removed (Expires: 0) while the interfaces still answer.
        if let Some(registrations) = self.registrations {
            registrations.stop().await;
        }
        // Give BYEs a moment on the wire before the sockets close.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.trigger.trigger();
        // The API stops with the sockets (it stayed up while calls drained).
        if let Some(http) = self.http {
            http.join().await;
        }
        // The purge stops between two statements once triggered.
        if let Some(retention) = self.retention {
            if tokio::time::timeout(CDR_FLUSH_LIMIT, retention)
                .await
                .is_err()
            {
                tracing::error!("retention purge did not stop in time");
            }
        }
        // A seal stops between two statements once triggered (a final seal is one insert).
        if let Some(manifests) = self.manifests {
            if tokio::time::timeout(CDR_FLUSH_LIMIT, manifests)
                .await
                .is_err()
            {
                tracing::error!("manifest seal did not stop in time");
            }
        }
        drop(self.b2bua);
        // The sweeper hands over the last traces once triggered; the writer stores them.
        if let Some(traced) = self.sip_traces {
            let _ = traced.sweeper.await;
            traced.traces.close();
            if tokio::time::timeout(CDR_FLUSH_LIMIT, traced.writer)
                .await
                .is_err()
            {
                tracing::error!("SIP traces not stored before the stop limit");
            }
        }
        // Every call has released its lease: the worker leaves the cluster and stops.
        if let Some(worker) = self.cluster.and_then(|c| c.worker) {
            if tokio::time::timeout(CLUSTER_LEAVE_LIMIT, worker)
                .await
                .is_err()
            {
                tracing::error!("cluster worker did not stop in time: the peers reclaim this node after node_timeout");
            }
        }
        // Every call has finished its recording by now (their tasks are gone).
        let pool = self.recordings.clone();
        let _ = tokio::task::spawn_blocking(move || pool.shutdown_blocking()).await;
        // The writer retries a failing database forever; a stop must not hang forever on it.
        match tokio::time::timeout(CDR_FLUSH_LIMIT, self.writer.close()).await {
            Ok(Ok(stats)) => tracing::info!(written = stats.written, "CDRs flushed"),
            Ok(Err(e)) => tracing::error!(error = %e, "CDR writer failed"),
            Err(_) => tracing::error!(
                unwritten = self.cdrs.stats().queued,
                "database unavailable: CDRs not flushed before the stop limit"
            ),
        }
        // The writer has handed the monitor every stored CDR; it stops once it has seen them.
        if tokio::time::timeout(CDR_FLUSH_LIMIT, self.monitor_task.join())
            .await
            .is_err()
        {
            tracing::error!("monitor did not stop in time");
        }
        // The monitor lease is handed over once the monitor judges no more.
        if let Some(sync) = self.cluster_sync {
            sync.join().await;
        }
        tracing::info!("trunkguard stopped");
    }
}

async fn wait_until_empty(registry: &Registry, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while !registry.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
