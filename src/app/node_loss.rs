//! In a cluster: the calls of a lost node (issue 13, item 5; docs/architecture.md, "Cluster: a
//! node's loss"). When a node's heartbeat stops, exactly one survivor reclaims it
//! (`SharedAdmission::lost_nodes` hands its id here); that survivor closes the node's journaled
//! calls as a restart closes its own (`monitor::recovery::lost`: CDRs `node_lost`, recordings
//! repaired when the folder is shared) and sends the peers a BYE (CANCEL, final 500) from its
//! own interfaces (`b2bua::restart`).
//!
//! The safety net: every `SWEEP` each node looks for journaled calls of nodes that are not live
//! (a hand-off lost to a survivor's own crash or a database outage, keys that expired before
//! anyone reclaimed them) last journaled more than `node_timeout` ago, and closes them the same
//! way. The journal's claims make each call closed once whichever node gets there first, a
//! node restarting under the same id included.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;

use crate::b2bua::B2bua;
use crate::cluster::SharedAdmission;
use crate::monitor::cdr_writer::CdrSink;
use crate::monitor::recovery::lost::{close_lost_node_calls, LostNode};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// How often a node looks for journaled calls of nodes that are not live.
const SWEEP: Duration = Duration::from_secs(30);

/// What the task needs.
pub(super) struct NodeLoss {
    pub shared: SharedAdmission,
    pub store: Store,
    pub cdrs: CdrSink,
    pub b2bua: B2bua,
    /// `[recording] dir` (absolute): where a lost node's recordings are looked for.
    pub recordings: PathBuf,
}

impl NodeLoss {
    /// Start the task (after the interfaces are read: the peers' answers come back on them).
    /// `None` when the lost nodes are already read elsewhere.
    pub(super) fn spawn(self, shutdown: Shutdown) -> Option<JoinHandle<()>> {
        let lost = self.shared.lost_nodes()?;
        Some(tokio::spawn(self.run(lost, shutdown)))
    }

    async fn run(
        self,
        mut lost: tokio::sync::mpsc::UnboundedReceiver<String>,
        mut shutdown: Shutdown,
    ) {
        // The first sweep once this node has beaten a few times (its own view of who is live).
        let heartbeat = self.shared.options().heartbeat;
        let first = tokio::time::Instant::now() + heartbeat * 2;
        let mut sweep = tokio::time::interval_at(first, SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(node) = lost.recv() => {
                    self.close(Some(&node), chrono::Duration::zero(), &shutdown).await;
                }
                _ = sweep.tick() => self.sweep(&shutdown).await,
                _ = shutdown.recv() => break,
            }
        }
    }

    /// Close the calls `node` journaled more than `older_than` ago, then end their dialogs
    /// (waited for: one run at a time).
    async fn close(&self, node: Option<&str>, older_than: chrono::Duration, shutdown: &Shutdown) {
        let lost = LostNode {
            node,
            closer: self.shared.node_id(),
            journaled_before: Utc::now() - older_than,
        };
        let calls = close_lost_node_calls(&self.store, &self.cdrs, &self.recordings, lost).await;
        if calls.is_empty() {
            return;
        }
        let report = self
            .b2bua
            .end_interrupted_dialogs(calls, shutdown.clone())
            .await;
        if let Ok(report) = report {
            tracing::info!(
                node = node.unwrap_or(""),
                byes = report.byes,
                cancels = report.cancels,
                final_responses = report.final_responses,
                answered = report.answered,
                timed_out = report.timed_out,
                "a lost node's dialogs ended"
            );
        }
    }

    /// Journaled calls of nodes that are not live. Nothing is done unless this node is live
    /// itself (it may be the one cut off: then the others are not dead).
    async fn sweep(&self, shutdown: &Shutdown) {
        let own = self.shared.node_id();
        let live = match self.shared.live_nodes().await {
            Ok(live) if live.iter().any(|n| n == own) => live,
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "sweep of lost nodes' calls skipped: shared state unreachable");
                return;
            }
        };
        let nodes = match self.store.journaled_nodes().await {
            Ok(nodes) => nodes,
            Err(e) => {
                tracing::warn!(error = %e, "sweep of lost nodes' calls skipped: journal unreadable");
                return;
            }
        };
        let timeout = self.shared.options().node_timeout;
        let older_than = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        for node in nodes {
            // This node's own rows are its live calls (its last run's were claimed at start);
            // rows without a node come from a single node or from before nodes were named.
            let gone = match node.as_deref() {
                Some(n) => n != own && !live.iter().any(|l| l == n),
                None => true,
            };
            if gone {
                self.close(node.as_deref(), older_than, shutdown).await;
            }
        }
    }
}
