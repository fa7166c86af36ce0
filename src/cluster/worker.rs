//! The node's worker task: releases of ended calls (retried while Redis is unreachable), the
//! heartbeat (rejoining when needed), the reclaim of dead nodes and the periodic reconciliation.
//! On shutdown it keeps beating while calls drain, then leaves the cluster once none is left.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::status::ClusterCounters;
use super::{lock, Core, SharedAdmission};
use crate::shutdown::Shutdown;

/// Releases kept for retry while Redis is unreachable. Beyond it the oldest is dropped (and
/// counted): the reconciliation after Redis is back removes whatever it left behind.
const MAX_PENDING_RELEASES: usize = 100_000;
/// The least time between two beats asked for by admissions that found the state down.
const MIN_WAKE_GAP: Duration = Duration::from_millis(250);
/// Releases sent in one script at most: a script stays short (Redis runs nothing else
/// meanwhile), and under load one round trip frees many slots.
const RELEASE_BATCH: usize = 256;
/// How long a release waits for others to go with it in one script.
const RELEASE_LINGER: Duration = Duration::from_millis(10);

impl SharedAdmission {
    /// Start the node's worker (once: `None` if it runs already). It stops after `shutdown`
    /// once the node holds no lease any more (or every handle and lease is gone), leaving the
    /// cluster as it goes.
    pub fn spawn(&self, shutdown: Shutdown) -> Option<JoinHandle<()>> {
        let rx = lock(&self.worker_rx).take()?;
        let core = Arc::clone(&self.core);
        Some(tokio::spawn(run(core, rx, shutdown)))
    }
}

async fn run(core: Arc<Core>, mut rx: UnboundedReceiver<String>, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(core.opts.heartbeat);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pending = VecDeque::new();
    let mut last_beat: Option<Instant> = None;
    let mut last_reconcile = Instant::now();
    let mut stopping = false;
    loop {
        tokio::select! {
            id = rx.recv() => match id {
                Some(id) => {
                    // Let the calls ending about now join it: a script per ended call was a
                    // round trip per call (a write, a wake-up, a read on the node; a script on
                    // Redis), most of the cluster's extra CPU per call at a few hundred calls a
                    // second (bench/README.md, session 16). The lease stays held that much
                    // longer: never more than the cap, a slot free a moment later.
                    tokio::time::sleep(RELEASE_LINGER).await;
                    // Every release queued meanwhile goes in the same script.
                    let mut batch = vec![id];
                    while batch.len() < RELEASE_BATCH {
                        match rx.try_recv() {
                            Ok(id) => batch.push(id),
                            Err(_) => break,
                        }
                    }
                    release(&core, batch, &mut pending).await;
                }
                None => break,
            },
            _ = tick.tick() => {
                last_beat = Some(Instant::now());
                beat(&core, &mut pending, &mut last_reconcile).await;
            }
            _ = core.wake.notified() => {
                if last_beat.is_none_or(|t| t.elapsed() >= MIN_WAKE_GAP) {
                    last_beat = Some(Instant::now());
                    beat(&core, &mut pending, &mut last_reconcile).await;
                }
            }
            _ = shutdown.recv(), if !stopping => {
                stopping = true;
                let leases = lock(&core.registry).len();
                tracing::info!(node = %core.opts.node_id, leases, "cluster worker: stopping once no call holds a lease");
            }
        }
        if stopping && rx.is_empty() && pending.is_empty() && lock(&core.registry).is_empty() {
            break;
        }
    }
    let mut last: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    while !last.is_empty() {
        let rest = last.split_off(last.len().min(RELEASE_BATCH));
        release(&core, last, &mut pending).await;
        last = rest;
    }
    if let Err(e) = core.leave().await {
        tracing::warn!(node = %core.opts.node_id, error = %e, "could not leave the cluster: peers reclaim this node after node_timeout");
    }
}

/// Release ended calls' leases now, or keep them for retry while Redis is unreachable.
async fn release(core: &Core, ids: Vec<String>, pending: &mut VecDeque<String>) {
    if core.up.load(Ordering::Relaxed) {
        match core.release_batch(&ids).await {
            Ok(_) => return,
            Err(e) => core.mark_down(&e),
        }
    }
    for id in ids {
        keep(core, id, pending);
    }
}

fn keep(core: &Core, id: String, pending: &mut VecDeque<String>) {
    ClusterCounters::add(&core.counters.releases_retried, 1);
    pending.push_back(id);
    if pending.len() > MAX_PENDING_RELEASES {
        pending.pop_front();
        ClusterCounters::add(&core.counters.releases_dropped, 1);
        core.reconcile_due.store(true, Ordering::Relaxed);
    }
}

/// One beat, then (the node live) the releases kept for retry, the reclaim of dead nodes and
/// a reconciliation when due.
async fn beat(core: &Core, pending: &mut VecDeque<String>, last_reconcile: &mut Instant) {
    // Once per node (EVALSHA reloads a script a restarted server lost).
    if core.load_scripts().await.is_err() {
        ClusterCounters::add(&core.counters.heartbeat_failures, 1);
        core.renew_connection();
        return;
    }
    match core.heartbeat().await {
        Ok(beat) if beat.rejoined => {
            // Redis now holds exactly the live leases: every kept release is done.
            pending.clear();
            *last_reconcile = Instant::now();
        }
        Ok(_) => {}
        Err(_) => {
            // A manager stuck on a failed connect is replaced; the next beat tries afresh.
            core.renew_connection();
            return;
        }
    }
    // Admission's own connections: the stale ones closed, one kept open (bounded as a script).
    if let Some(direct) = &core.direct {
        let warm = tokio::time::timeout(core.opts.op_timeout, direct.trim_and_warm()).await;
        if let Ok(Err(e)) = warm {
            tracing::debug!(node = %core.opts.node_id, error = %e, "opening an admission connection failed");
        }
    }
    while !pending.is_empty() {
        let n = pending.len().min(RELEASE_BATCH);
        let batch: Vec<&String> = pending.range(..n).collect();
        if let Err(e) = core.release_batch(&batch).await {
            core.mark_down(&e);
            return;
        }
        pending.drain(..n);
    }
    if let Err(e) = core.reclaim().await {
        tracing::warn!(node = %core.opts.node_id, error = %e, "reclaiming dead nodes failed");
    }
    let due = core.reconcile_due.load(Ordering::Relaxed)
        || last_reconcile.elapsed() >= core.opts.reconcile_every;
    if due {
        match core.sync(false).await {
            Ok(_) => *last_reconcile = Instant::now(),
            Err(e) => {
                tracing::warn!(node = %core.opts.node_id, error = %e, "reconciling leases failed")
            }
        }
    }
}
