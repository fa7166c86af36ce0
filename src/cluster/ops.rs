//! The node's other operations on the shared state: beat (and rejoin), reconcile, reclaim dead
//! nodes, release one lease, read a trunk's load, leave. Each is one script, bounded by
//! `op_timeout`; the worker runs them on its schedule and they are public for tests and tools.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use redis::{FromRedisValue, ScriptInvocation};

use super::admit::millis;
use super::lease::{Held, SharedLease};
use super::status::ClusterCounters;
use super::{lock, ClusterError, Core, SharedAdmission};

/// Nodes reclaimed by one call at most (the rest at the next beat): a script stays short.
const RECLAIM_BATCH: u32 = 16;

/// What one beat found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// The node was not live (first join, a lapse, or Redis lost its data) and rejoined with its
    /// live leases.
    pub rejoined: bool,
    pub live_nodes: u32,
}

/// What a reconciliation changed in Redis to match the node's live leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Live leases Redis did not have (put back).
    pub added: u64,
    /// Leases Redis held that no live call has (taken away).
    pub removed: u64,
    /// The node's leases per trunk, as now in Redis.
    pub held: HashMap<String, u32>,
}

/// A dead node whose leases a survivor reclaimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    pub node: String,
    pub leases: u64,
}

/// A trunk's load across the live nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedLoad {
    pub active: u32,
    /// Calls per line; no zero entries.
    pub per_number: BTreeMap<String, u32>,
}

impl SharedAdmission {
    /// Load the scripts and beat: the node is live (rejoined with its live leases if needed).
    pub async fn join(&self) -> Result<Beat, ClusterError> {
        self.core.load_scripts().await?;
        self.core.heartbeat().await
    }

    /// One beat; a node that is not live rejoins with its live leases in the same step.
    pub async fn heartbeat(&self) -> Result<Beat, ClusterError> {
        self.core.heartbeat().await
    }

    /// Make this node's leases in Redis exactly its live leases (the drift repaired).
    pub async fn reconcile(&self) -> Result<Reconciled, ClusterError> {
        self.core.sync(false).await
    }

    /// Reclaim the nodes silent past `node_timeout`: their keys deleted, their ids returned (for
    /// closing their journaled calls). Only a live node reclaims.
    pub async fn reclaim_dead_nodes(&self) -> Result<Vec<Reclaimed>, ClusterError> {
        self.core.reclaim().await
    }

    /// The ids of the live nodes (beat younger than `node_timeout`, by Redis's clock): the
    /// sweep of journaled calls closes those of nodes not among them.
    pub async fn live_nodes(&self) -> Result<Vec<String>, ClusterError> {
        let mut inv = self.core.scripts.live.prepare_invoke();
        inv.key(&self.core.keys.nodes)
            .arg(millis(self.core.opts.node_timeout));
        self.core.run(&inv).await
    }

    /// A trunk's load across the live nodes.
    pub async fn load(&self, trunk: &str) -> Result<SharedLoad, ClusterError> {
        let k = &self.core.keys;
        let mut inv = self.core.scripts.load.prepare_invoke();
        inv.key(&k.nodes)
            .arg(&k.base)
            .arg(millis(self.core.opts.node_timeout))
            .arg(trunk);
        let flat: Vec<String> = self.core.run(&inv).await?;
        let mut it = flat.into_iter();
        let mut load = SharedLoad {
            active: parse(it.next())?,
            per_number: BTreeMap::new(),
        };
        while let Some(line) = it.next() {
            let n = parse(it.next())?;
            if n > 0 {
                load.per_number.insert(line, n);
            }
        }
        Ok(load)
    }

    /// Release one lease of this node by id: `true` if it was held, `false` if not (already
    /// released or reclaimed): a second release changes nothing.
    pub async fn release_lease(&self, id: &str) -> Result<bool, ClusterError> {
        self.core.release(id).await
    }

    /// Leave the cluster now (a stop with no call left): the peers need not wait for the
    /// timeout. Returns the leases Redis still held for the node.
    pub async fn leave(&self) -> Result<u64, ClusterError> {
        self.core.leave().await
    }

    /// A lease for a call admitted without the shared state (by the local fallback): counted
    /// in Redis by the next reconciliation, even beyond a cap (the call is running).
    pub fn adopt(&self, trunk: &str, line: &str) -> SharedLease {
        let core = &self.core;
        let id = core.next_lease_id();
        let held = Held {
            trunk: trunk.to_string(),
            line: line.to_string(),
        };
        lock(&core.registry).insert(id.clone(), held.clone());
        core.reconcile_due.store(true, Ordering::Relaxed);
        SharedLease::new(core, &self.releases, id, held, (0, 0))
    }
}

fn parse<T: std::str::FromStr>(s: Option<String>) -> Result<T, ClusterError> {
    let s = s.unwrap_or_default();
    s.parse()
        .map_err(|_| ClusterError::Answer(format!("not a count: {s:?}")))
}

impl Core {
    /// One script, bounded by `op_timeout` (the connection's own timeouts bound each step;
    /// this bounds the whole, reconnection and a NOSCRIPT reload included).
    pub(super) async fn run<T: FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, ClusterError> {
        let mut conn = self.conn();
        match tokio::time::timeout(self.opts.op_timeout, inv.invoke_async(&mut conn)).await {
            Ok(answer) => answer.map_err(ClusterError::from),
            Err(_) => Err(ClusterError::Timeout(self.opts.op_timeout)),
        }
    }

    /// An admission's script: on one of admission's own connections (`direct.rs`), or through
    /// the manager when none is free (or the URL is TLS or a Unix socket). Bounded as `run`.
    pub(super) async fn run_admission<T: FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, ClusterError> {
        let Some((direct, taken)) = self.direct.as_ref().and_then(|d| Some((d, d.take()?))) else {
            return self.run(inv).await;
        };
        match tokio::time::timeout(self.opts.op_timeout, direct.invoke(taken, inv)).await {
            Ok(answer) => answer,
            Err(_) => Err(ClusterError::Timeout(self.opts.op_timeout)),
        }
    }

    /// `SCRIPT LOAD` each script; a failure is the state being down.
    pub(super) async fn load_scripts(&self) -> Result<(), ClusterError> {
        if self.scripts_loaded.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut conn = self.conn();
        for script in self.scripts.all() {
            let loaded = tokio::time::timeout(self.opts.op_timeout, script.load_async(&mut conn));
            let error = match loaded.await {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => ClusterError::from(e),
                Err(_) => ClusterError::Timeout(self.opts.op_timeout),
            };
            self.mark_down(&error);
            return Err(error);
        }
        self.scripts_loaded.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub(super) async fn heartbeat(&self) -> Result<Beat, ClusterError> {
        let answer = self.beat_once().await;
        let c = &self.counters;
        match answer {
            Ok(beat) => {
                ClusterCounters::add(&c.heartbeats, 1);
                self.mark_up(beat.live_nodes);
                Ok(beat)
            }
            Err(e) => {
                ClusterCounters::add(&c.heartbeat_failures, 1);
                self.mark_down(&e);
                Err(e)
            }
        }
    }

    async fn beat_once(&self) -> Result<Beat, ClusterError> {
        let k = &self.keys;
        let mut inv = self.scripts.heartbeat.prepare_invoke();
        inv.key(&k.nodes)
            .key(&k.leases)
            .key(&k.load)
            .arg(&self.opts.node_id)
            .arg(millis(self.opts.node_timeout))
            .arg(millis(self.opts.keys_ttl()));
        let answer: Vec<i64> = self.run(&inv).await?;
        match answer[..] {
            [0, live] => Ok(Beat {
                rejoined: false,
                live_nodes: to_u32(live),
            }),
            [1, _] => {
                let synced = self.sync(true).await?;
                ClusterCounters::add(&self.counters.rejoins, 1);
                let live_nodes = self.live_nodes.load(Ordering::Relaxed);
                tracing::info!(
                    node = %self.opts.node_id,
                    leases = synced.held.values().sum::<u32>(),
                    put_back = synced.added,
                    taken_away = synced.removed,
                    live_nodes,
                    "joined the cluster with this node's live leases"
                );
                Ok(Beat {
                    rejoined: true,
                    live_nodes,
                })
            }
            _ => Err(ClusterError::Answer(format!("heartbeat: {answer:?}"))),
        }
    }

    /// Redis's leases of this node := the registry's. `rejoin` also marks the node live; a
    /// plain reconcile of a node that is not live fails with `NotLive` (it must rejoin).
    pub(super) async fn sync(&self, rejoin: bool) -> Result<Reconciled, ClusterError> {
        let k = &self.keys;
        // Exclusive: no admission is between its script and its registry entry.
        let _gate = self.gate.write().await;
        let snapshot: Vec<(String, Held)> = lock(&self.registry)
            .iter()
            .map(|(id, h)| (id.clone(), h.clone()))
            .collect();
        let mut inv = self.scripts.sync.prepare_invoke();
        inv.key(&k.nodes)
            .key(&k.leases)
            .key(&k.load)
            .arg(&self.opts.node_id)
            .arg(millis(self.opts.node_timeout))
            .arg(millis(self.opts.keys_ttl()))
            .arg(u8::from(rejoin));
        let mut held = HashMap::new();
        for (id, h) in &snapshot {
            inv.arg(id).arg(&h.trunk).arg(&h.line);
            *held.entry(h.trunk.clone()).or_insert(0) += 1;
        }
        let answer: Vec<i64> = self.run(&inv).await?;
        let [added, removed, live] = answer[..] else {
            return Err(ClusterError::Answer(format!("sync: {answer:?}")));
        };
        if added < 0 {
            let e = ClusterError::NotLive(self.opts.node_id.clone());
            self.mark_down(&e);
            return Err(e);
        }
        self.reconcile_due.store(false, Ordering::Relaxed);
        self.live_nodes
            .store(to_u32(live).max(1), Ordering::Relaxed);
        let c = &self.counters;
        let (added, removed) = (added as u64, removed.max(0) as u64);
        ClusterCounters::add(&c.reconcile_added, added);
        ClusterCounters::add(&c.reconcile_removed, removed);
        if !rejoin && added + removed > 0 {
            tracing::warn!(
                node = %self.opts.node_id,
                put_back = added,
                taken_away = removed,
                "shared leases disagreed with this node's live calls: repaired"
            );
        }
        Ok(Reconciled {
            added,
            removed,
            held,
        })
    }

    pub(super) async fn reclaim(&self) -> Result<Vec<Reclaimed>, ClusterError> {
        let k = &self.keys;
        let mut inv = self.scripts.reclaim.prepare_invoke();
        inv.key(&k.nodes)
            .arg(&k.base)
            .arg(&self.opts.node_id)
            .arg(millis(self.opts.node_timeout))
            .arg(RECLAIM_BATCH);
        let flat: Vec<String> = self.run(&inv).await?;
        let mut out = Vec::new();
        let mut it = flat.into_iter();
        while let Some(node) = it.next() {
            let leases: u64 = parse(it.next())?;
            tracing::warn!(
                node = %node,
                leases,
                by = %self.opts.node_id,
                "node lost (heartbeat stopped): its leases reclaimed"
            );
            ClusterCounters::add(&self.counters.nodes_reclaimed, 1);
            ClusterCounters::add(&self.counters.leases_reclaimed, leases);
            // Nobody listening (a tool, a test): the sweep of journaled calls still finds them.
            let _ = self.lost.send(node.clone());
            out.push(Reclaimed { node, leases });
        }
        Ok(out)
    }

    pub(super) async fn release(&self, id: &str) -> Result<bool, ClusterError> {
        Ok(self.release_batch(std::slice::from_ref(&id)).await? == 1)
    }

    /// Release several leases in one script (one round trip); returns how many were held.
    pub(super) async fn release_batch<S: AsRef<str>>(
        &self,
        ids: &[S],
    ) -> Result<u64, ClusterError> {
        // Shared with admissions, exclusive of a reconciliation: one whose snapshot still had
        // these leases (taken before their calls ended) runs first, so it cannot put them back.
        let _gate = self.gate.read().await;
        let k = &self.keys;
        let mut inv = self.scripts.release.prepare_invoke();
        inv.key(&k.leases).key(&k.load);
        for id in ids {
            inv.arg(id.as_ref());
        }
        let released: i64 = self.run(&inv).await?;
        let released = u64::try_from(released.max(0)).unwrap_or(0);
        ClusterCounters::add(&self.counters.releases, released);
        Ok(released)
    }

    pub(super) async fn leave(&self) -> Result<u64, ClusterError> {
        let k = &self.keys;
        let mut inv = self.scripts.leave.prepare_invoke();
        inv.key(&k.nodes)
            .key(&k.leases)
            .key(&k.load)
            .arg(&self.opts.node_id);
        let held: i64 = self.run(&inv).await?;
        self.up.store(false, Ordering::Relaxed);
        tracing::info!(node = %self.opts.node_id, "left the cluster");
        Ok(held.max(0) as u64)
    }
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}
