//! In a cluster: the calls of a lost node (issue 13, item 5; docs/architecture.md, "Cluster: a
//! node's loss"). When a node's heartbeat stops, exactly one survivor reclaims it
//! (`SharedAdmission::lost_nodes` hands its id here); that survivor closes the node's journaled
//! calls as a restart closes its own (`monitor::recovery::lost`: CDRs `node_lost`, recordings
//! repaired when the folder is shared) and sends the peers a BYE (CANCEL, final 500) from its
//! own interfaces (`b2bua::restart`).
//!
//! A node silent in Redis is not always dead: after Redis itself was away (or restarted empty)
//! every node is silent until its next beat, and the first one back reclaims the others. So a
//! node is only *suspected* when it is reclaimed or found not live; its calls are closed once it
//! has stayed not live for `grace` (two heartbeats and a second) during which this node itself
//! stayed live. A node that was only cut off with everyone else rejoins within a heartbeat of
//! Redis's return, and its calls are left alone.
//!
//! The safety net: every `SWEEP` each node looks for journaled calls of nodes that are not live
//! (a hand-off lost to a survivor's own crash or a database outage, keys that expired before
//! anyone reclaimed them), last journaled more than `node_timeout` ago, and suspects them the
//! same way. The journal's claims make each call closed once whichever node gets there first, a
//! node restarting under the same id included.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio::time::Instant;

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

/// A node whose calls are closed unless it is seen live again.
#[derive(Debug, Clone, Copy)]
struct Suspect {
    /// Since when this node has watched it, live itself.
    since: Instant,
    /// This node's count of shared-state losses then: one more means it was not live throughout.
    downs: u64,
    /// Its calls journaled up to this moment are the lost ones.
    journaled_before: DateTime<Utc>,
}

impl NodeLoss {
    /// Start the task (after the interfaces are read: the peers' answers come back on them).
    /// `None` when the lost nodes are already read elsewhere.
    pub(super) fn spawn(self, shutdown: Shutdown) -> Option<JoinHandle<()>> {
        let lost = self.shared.lost_nodes()?;
        Some(tokio::spawn(self.run(lost, shutdown)))
    }

    /// How long a suspect must stay not live while this node is: every live node beats (and
    /// rejoins) within a heartbeat of Redis answering again.
    fn grace(&self) -> Duration {
        self.shared.options().heartbeat * 2 + Duration::from_secs(1)
    }

    fn downs(&self) -> u64 {
        self.shared.counters().went_down.load(Ordering::Relaxed)
    }

    async fn run(self, mut lost: UnboundedReceiver<String>, mut shutdown: Shutdown) {
        let heartbeat = self.shared.options().heartbeat;
        // The first sweep once this node has beaten a few times (its own view of who is live).
        let first = Instant::now() + heartbeat * 2;
        let mut sweep = tokio::time::interval_at(first, SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut check = tokio::time::interval(heartbeat);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut suspects: HashMap<Option<String>, Suspect> = HashMap::new();
        loop {
            tokio::select! {
                Some(node) = lost.recv() => {
                    tracing::warn!(node = %node, grace_ms = self.grace().as_millis() as u64,
                        "node lost: its calls are closed unless it comes back");
                    self.suspect(&mut suspects, Some(node), chrono::Duration::zero());
                }
                _ = sweep.tick() => self.sweep(&mut suspects).await,
                _ = check.tick(), if !suspects.is_empty() => {
                    self.confirm(&mut suspects, &shutdown).await;
                }
                _ = shutdown.recv() => break,
            }
        }
    }

    /// Watch `node` from now on (its calls journaled more than `older_than` ago).
    fn suspect(
        &self,
        suspects: &mut HashMap<Option<String>, Suspect>,
        node: Option<String>,
        older_than: chrono::Duration,
    ) {
        let downs = self.downs();
        let now = Utc::now();
        suspects.entry(node).or_insert_with(|| Suspect {
            since: Instant::now(),
            downs,
            journaled_before: now.checked_sub_signed(older_than).unwrap_or(now),
        });
    }

    /// Close the calls of the suspects that stayed not live for the grace while this node
    /// was live; forget those seen live again.
    async fn confirm(&self, suspects: &mut HashMap<Option<String>, Suspect>, shutdown: &Shutdown) {
        if !self.shared.is_up() {
            return;
        }
        let (now, grace, downs) = (Instant::now(), self.grace(), self.downs());
        let mut due = Vec::new();
        for (node, s) in suspects.iter_mut() {
            if s.downs != downs {
                // This node was not live meanwhile: that proves nothing; watch again.
                s.since = now;
                s.downs = downs;
            } else if now.duration_since(s.since) >= grace {
                due.push(node.clone());
            }
        }
        if due.is_empty() {
            return;
        }
        let Ok(live) = self.shared.live_nodes().await else {
            return;
        };
        for node in due {
            let Some(s) = suspects.remove(&node) else {
                continue;
            };
            if node.as_ref().is_some_and(|n| live.contains(n)) {
                tracing::info!(node = node.as_deref().unwrap_or(""),
                    "a node found lost is live again (it was only cut off): its calls are left alone");
                continue;
            }
            self.close(node.as_deref(), s.journaled_before, shutdown)
                .await;
        }
    }

    /// Close the calls `node` journaled up to `journaled_before`, then end their dialogs
    /// (waited for: one run at a time).
    async fn close(
        &self,
        node: Option<&str>,
        journaled_before: DateTime<Utc>,
        shutdown: &Shutdown,
    ) {
        let lost = LostNode {
            node,
            closer: self.shared.node_id(),
            journaled_before,
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

    /// Suspect the nodes that have journaled calls and are not live. Nothing is done unless
    /// this node is live itself (it may be the one cut off: then the others are not dead).
    async fn sweep(&self, suspects: &mut HashMap<Option<String>, Suspect>) {
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
                self.suspect(suspects, node, older_than);
            }
        }
    }
}
