//! Shared admission state for a cluster of gateway nodes, in Redis (or Valkey), changed only by
//! atomic Lua scripts, so that a cap of 30 is 30 across the cluster, never 30 per node.
//!
//! What is shared (see docs/architecture.md, "Cluster: shared admission state"):
//! - **Concurrency leases** per trunk and per line (caller ID): each lease belongs to the node
//!   that took it (`{p}:node:<id>:leases`), with the node's load counts beside it
//!   (`{p}:node:<id>:load`). A cap is checked against the sum over the *live* nodes, so a node
//!   that stops heartbeating stops holding slots at `node_timeout`, and a survivor's
//!   `reclaim_dead_nodes` deletes its keys. Releases are idempotent by lease id.
//! - **The call-rate bucket** per trunk, refilled from Redis's clock (`TIME`), not a node's.
//! - **The per-callee windows** per trunk and number (admission times, newest first).
//!
//! One `admit` script checks all of them and takes them all, or nothing, and says which limit
//! refused (`Limit`), which the policy maps to its `RefusalReason` (throttled caps are passed
//! in). While Redis is unreachable, or this node's heartbeat has lapsed, `admit` answers at once
//! with the configured `Fallback` (refuse, or local caps ÷ live nodes) instead of waiting.
//!
//! A node keeps a registry of its live leases; the worker task (`spawn`) beats, retries
//! releases, reclaims dead nodes, and reconciles Redis with the registry (also when the node
//! rejoins after a lapse, or after Redis lost its data): leases held = calls alive.

mod admit;
pub mod bus;
mod direct;
mod error;
mod keys;
pub mod leader;
mod lease;
mod ops;
mod scripts;
pub mod shared_db;
mod status;
mod worker;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use admit::{CalleeCheck, Limit, RateLimit, Refused, SharedCaps, SharedRequest};
pub use error::ClusterError;
pub use lease::SharedLease;
pub use ops::{Beat, Reclaimed, Reconciled, SharedLoad};
pub use status::{ClusterCounters, ClusterStatus, Fallback};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::{Notify, RwLock};

use crate::config::{ClusterConfig, OnSharedStateDown};
use direct::Direct;
use keys::Keys;
use lease::Held;
use scripts::Scripts;

/// Longest wait for Redis to connect or to answer one script: an admission waits no longer.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a node's leases are reconciled with its live calls when nothing asks sooner.
pub const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// How a node takes part in the cluster: `[cluster]`, plus the bounds the code sets.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub node_id: String,
    pub redis_url: String,
    pub heartbeat: Duration,
    pub node_timeout: Duration,
    pub on_down: OnSharedStateDown,
    pub key_prefix: String,
    pub op_timeout: Duration,
    pub reconcile_every: Duration,
}

impl ClusterOptions {
    pub fn from_config(c: &ClusterConfig) -> ClusterOptions {
        ClusterOptions {
            node_id: c.node_id.clone(),
            redis_url: c.redis_url.clone(),
            heartbeat: Duration::from_secs(c.heartbeat_secs),
            node_timeout: Duration::from_secs(c.node_timeout_secs),
            on_down: c.on_shared_state_down,
            key_prefix: c.key_prefix.clone(),
            op_timeout: DEFAULT_OP_TIMEOUT,
            reconcile_every: DEFAULT_RECONCILE_EVERY,
        }
    }

    /// How long a node's keys outlive its last beat: well past the timeout, so a survivor still
    /// finds (and reports) a dead node's leases; after it, nothing of the node is left.
    fn keys_ttl(&self) -> Duration {
        (self.node_timeout * 10).max(Duration::from_secs(60))
    }
}

/// A node's handle on the shared admission state. Clone freely (one node, one state).
#[derive(Clone)]
pub struct SharedAdmission {
    core: Arc<Core>,
    releases: UnboundedSender<String>,
    /// Taken by `spawn`: the worker is the one reader of released lease ids.
    worker_rx: Arc<Mutex<Option<UnboundedReceiver<String>>>>,
    /// Taken by `lost_nodes`: the ids of the dead nodes this node reclaimed.
    lost_rx: Arc<Mutex<Option<UnboundedReceiver<String>>>>,
}

/// What the handle, its leases and its worker share.
struct Core {
    opts: ClusterOptions,
    keys: Keys,
    scripts: Scripts,
    client: redis::Client,
    /// The worker's connection (beats, releases, reconciliation, reclaim), multiplexed.
    conn: Mutex<ConnectionManager>,
    /// Admission's own connections (`direct.rs`); `None` for a TLS or Unix socket URL, whose
    /// admissions go through `conn`.
    direct: Option<Direct>,
    /// This node's live leases: what it reports to reconciliation as its calls.
    registry: Mutex<HashMap<String, Held>>,
    /// Admissions hold it shared while their lease is taken in Redis and entered in the
    /// registry, releases while their script runs; reconciliation holds it exclusively, so it
    /// never sees a lease in Redis before the registry, nor puts back one released meanwhile.
    gate: RwLock<()>,
    /// Whether admissions go to Redis (false: answered by the fallback at once).
    up: AtomicBool,
    live_nodes: AtomicU32,
    reconcile_due: AtomicBool,
    /// Scripts loaded once; a server that lost them gets them again on `NOSCRIPT`.
    scripts_loaded: AtomicBool,
    /// Lease ids are `<incarnation>.<seq>`: unique across restarts under the same node id.
    incarnation: u64,
    seq: AtomicU64,
    /// An admission that found the node down asks the worker to beat now.
    wake: Notify,
    counters: ClusterCounters,
    last_error: Mutex<Option<String>>,
    /// Each dead node this node reclaims is handed on here (to close its journaled calls).
    lost: UnboundedSender<String>,
}

/// Every lock here guards data changed in single statements: a poisoned one is still valid.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for SharedAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedAdmission")
            .field("node_id", &self.core.opts.node_id)
            .field("up", &self.is_up())
            .finish()
    }
}

impl SharedAdmission {
    /// A handle on the cluster's state; no I/O yet (the first beat connects). Must be called
    /// inside a Tokio runtime. Start the worker with `spawn`; `join` waits for the first beat.
    pub fn new(opts: ClusterOptions) -> Result<SharedAdmission, ClusterError> {
        let client = redis::Client::open(opts.redis_url.as_str()).map_err(ClusterError::Url)?;
        let conn = connection(&client, opts.op_timeout)?;
        let direct = Direct::of(&client);
        let (releases, rx) = mpsc::unbounded_channel();
        let (lost, lost_rx) = mpsc::unbounded_channel();
        let core = Core {
            keys: Keys::new(&opts.key_prefix, &opts.node_id),
            scripts: Scripts::new(),
            client,
            conn: Mutex::new(conn),
            direct,
            registry: Mutex::new(HashMap::new()),
            gate: RwLock::new(()),
            up: AtomicBool::new(false),
            live_nodes: AtomicU32::new(1),
            reconcile_due: AtomicBool::new(false),
            scripts_loaded: AtomicBool::new(false),
            incarnation: rand::random(),
            seq: AtomicU64::new(0),
            wake: Notify::new(),
            counters: ClusterCounters::default(),
            last_error: Mutex::new(None),
            lost,
            opts,
        };
        Ok(SharedAdmission {
            core: Arc::new(core),
            releases,
            worker_rx: Arc::new(Mutex::new(Some(rx))),
            lost_rx: Arc::new(Mutex::new(Some(lost_rx))),
        })
    }

    /// The ids of the dead nodes this node reclaims from now on, each exactly once across the
    /// cluster (the reclaim script deletes a node as it reports it): the one reader closes
    /// their journaled calls (issue 13: a node's loss). Once: `None` after the first call.
    pub fn lost_nodes(&self) -> Option<UnboundedReceiver<String>> {
        lock(&self.lost_rx).take()
    }

    pub fn node_id(&self) -> &str {
        &self.core.opts.node_id
    }

    pub fn options(&self) -> &ClusterOptions {
        &self.core.opts
    }

    /// Whether admissions are taken against the shared state right now.
    pub fn is_up(&self) -> bool {
        self.core.up.load(Ordering::Relaxed)
    }

    /// The answer admission applies while the shared state is down.
    pub fn fallback(&self) -> Fallback {
        Fallback::of(
            self.core.opts.on_down,
            self.core.live_nodes.load(Ordering::Relaxed),
        )
    }

    pub fn counters(&self) -> &ClusterCounters {
        &self.core.counters
    }

    /// Leases this node's calls hold, per trunk (its side of the cluster-wide reconciliation).
    pub fn held_per_trunk(&self) -> HashMap<String, u32> {
        let mut out = HashMap::new();
        for held in lock(&self.core.registry).values() {
            *out.entry(held.trunk.clone()).or_insert(0) += 1;
        }
        out
    }

    pub fn status(&self) -> ClusterStatus {
        let up = self.is_up();
        ClusterStatus {
            node_id: self.core.opts.node_id.clone(),
            state: if up { "up" } else { "down" },
            live_nodes: self.core.live_nodes.load(Ordering::Relaxed),
            leases_held: lock(&self.core.registry).len(),
            on_shared_state_down: self.core.opts.on_down.as_str(),
            error: if up {
                None
            } else {
                lock(&self.core.last_error).clone()
            },
        }
    }
}

/// A lazy connection manager: connects on first use, reconnects after I/O errors; each attempt
/// and each answer bounded by `timeout`, one retry (the worker's beats retry beyond that).
fn connection(
    client: &redis::Client,
    timeout: Duration,
) -> Result<ConnectionManager, ClusterError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(timeout);
    Ok(ConnectionManager::new_lazy_with_config(
        client.clone(),
        config,
    )?)
}

impl Core {
    fn conn(&self) -> ConnectionManager {
        lock(&self.conn).clone()
    }

    /// A fresh connection manager, for when the old one may be stuck on a failed connect.
    fn renew_connection(&self) {
        if let Ok(conn) = connection(&self.client, self.opts.op_timeout) {
            *lock(&self.conn) = conn;
        }
    }

    fn next_lease_id(&self) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}.{seq:x}", self.incarnation)
    }

    /// Take a lease out of the registry (its call ended): no reconciliation puts it back.
    fn forget(&self, id: &str) {
        lock(&self.registry).remove(id);
    }

    fn fallback(&self) -> Fallback {
        Fallback::of(self.opts.on_down, self.live_nodes.load(Ordering::Relaxed))
    }

    /// The shared state became unreachable (or this node not live): log it once, count it.
    fn mark_down(&self, error: &ClusterError) {
        *lock(&self.last_error) = Some(error.to_string());
        // Whatever broke may have broken them too: the next admissions connect afresh.
        if let Some(direct) = &self.direct {
            direct.clear();
        }
        if self.up.swap(false, Ordering::Relaxed) {
            ClusterCounters::add(&self.counters.went_down, 1);
            tracing::error!(
                node = %self.opts.node_id,
                error = %error,
                on_shared_state_down = self.opts.on_down.as_str(),
                "shared admission state unavailable: admissions follow on_shared_state_down"
            );
        }
        self.wake.notify_one();
    }

    fn mark_up(&self, live_nodes: u32) {
        self.live_nodes.store(live_nodes.max(1), Ordering::Relaxed);
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!(
                node = %self.opts.node_id,
                live_nodes,
                "shared admission state available: admissions use it again"
            );
        }
    }
}
