//! Which node runs the cluster's monitor (its rules and enforcement ladder): the holder of a
//! Redis lease, `{prefix}:monitor:leader` = `<node id> <incarnation>`.
//!
//! - **Taking it**: `SET key me NX PX ttl`, tried every `renew_every` by each node that does not
//!   hold it, so a dead leader's lease is taken within `ttl + renew_every`.
//! - **Keeping it**: renewed every `renew_every` by a compare-and-renew script (`PEXPIRE` only
//!   while the value is still ours). A leader that cannot renew (Redis unreachable) keeps leading
//!   only while the lease it last renewed is surely still its own: until `sent + ttl − margin`
//!   by its own clock, where `sent` is when the last successful renewal was sent (the server
//!   extended it later than that) and `margin` a quarter of the ttl for clocks that run at
//!   slightly different rates. After that another node may hold it, so it steps down.
//! - **Giving it up** on a clean shutdown: the node says it no longer leads, waits (bounded)
//!   for its monitor to acknowledge that it has stopped (so two nodes never judge the same CDRs),
//!   then deletes the key by compare-and-delete, and another node takes over at its next try.
//!
//! The node's monitor follows `Leadership::watch`: `(epoch, leading)`, and acknowledges each
//! epoch it has acted on (`RoleWatch::acknowledge`).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{connection, ClusterError, ClusterOptions};
use crate::shutdown::Shutdown;

/// How long a clean shutdown waits for the monitor to stop leading before it releases anyway.
const STEP_DOWN_WAIT: Duration = Duration::from_secs(2);

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The lease's timing.
#[derive(Debug, Clone)]
pub struct LeaderOptions {
    /// The lease's life: a dead leader's lease is taken over within `ttl + renew_every`.
    pub ttl: Duration,
    /// How often the leader renews and the others try to take it.
    pub renew_every: Duration,
}

impl LeaderOptions {
    /// From `[cluster]`: the lease lives `node_timeout` (a node silent that long is dead for
    /// admission too) and is renewed every heartbeat.
    pub fn from_cluster(opts: &ClusterOptions) -> LeaderOptions {
        LeaderOptions {
            ttl: opts.node_timeout,
            renew_every: opts.heartbeat.min(opts.node_timeout / 3),
        }
    }

    fn margin(&self) -> Duration {
        self.ttl / 4
    }
}

/// The key of a cluster's monitor lease.
pub fn leader_key(prefix: &str) -> String {
    format!("{{{prefix}}}:monitor:leader")
}

/// The node id in a lease's value (`<node id> <incarnation>`).
pub fn holder_of(value: &str) -> &str {
    value.split(' ').next().unwrap_or("")
}

/// A node's role as the lease says: the epoch counts changes, so an acknowledgement names the
/// change it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Role {
    pub epoch: u64,
    pub leading: bool,
}

/// What the monitor holds: the role, and where it acknowledges the role it acts on.
#[derive(Debug, Clone)]
pub struct RoleWatch {
    pub role: watch::Receiver<Role>,
    ack: Arc<watch::Sender<u64>>,
}

impl RoleWatch {
    /// The monitor acts on `epoch` now (when it stopped leading: it will judge nothing more).
    pub fn acknowledge(&self, epoch: u64) {
        self.ack.send_if_modified(|v| {
            let newer = epoch > *v;
            if newer {
                *v = epoch;
            }
            newer
        });
    }
}

/// A node's candidacy for the monitor lease. `spawn` starts the task that takes, renews and
/// releases it.
pub struct Leadership {
    key: String,
    value: String,
    node_id: String,
    opts: LeaderOptions,
    op_timeout: Duration,
    conn: ConnectionManager,
    role: watch::Sender<Role>,
    ack: Arc<watch::Sender<u64>>,
}

impl Leadership {
    pub fn new(cluster: &ClusterOptions, opts: LeaderOptions) -> Result<Leadership, ClusterError> {
        let client = redis::Client::open(cluster.redis_url.as_str()).map_err(ClusterError::Url)?;
        let (role, _) = watch::channel(Role::default());
        let (ack, _) = watch::channel(0);
        Ok(Leadership {
            key: leader_key(&cluster.key_prefix),
            value: format!("{} {:016x}", cluster.node_id, rand::random::<u64>()),
            node_id: cluster.node_id.clone(),
            opts,
            op_timeout: cluster.op_timeout,
            conn: connection(&client, cluster.op_timeout)?,
            role,
            ack: Arc::new(ack),
        })
    }

    /// The role as it changes (not leading until the lease is taken).
    pub fn watch(&self) -> RoleWatch {
        RoleWatch {
            role: self.role.subscribe(),
            ack: Arc::clone(&self.ack),
        }
    }

    /// Takes part until `shutdown`, then gives the lease up (when held). Aborting the task (a
    /// crash) leaves the lease to expire: another node takes over within `ttl + renew_every`.
    pub fn spawn(self, shutdown: Shutdown) -> JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    async fn run(mut self, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.opts.renew_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // While leading: until when the lease is surely ours.
        let mut valid_until: Option<Instant> = None;
        loop {
            let deadline = valid_until.map(|v| v - self.opts.margin());
            tokio::select! {
                _ = tick.tick() => {
                    valid_until = self.round(valid_until).await;
                }
                _ = sleep_until(deadline) => {
                    tracing::error!(node = %self.node_id, "monitor lease not renewed in time: no longer the monitor leader");
                    valid_until = None;
                    self.set_leading(false);
                }
                _ = shutdown.recv() => break,
            }
        }
        if valid_until.is_some() {
            let epoch = self.set_leading(false);
            self.await_step_down(epoch).await;
            self.release().await;
        }
    }

    /// One round: renew (leading) or try to take the lease. Returns the new `valid_until`.
    async fn round(&mut self, valid_until: Option<Instant>) -> Option<Instant> {
        let sent = Instant::now();
        let leading = valid_until.is_some();
        let answer = if leading {
            self.renew().await.map(|n| n == 1)
        } else {
            self.take().await
        };
        match (leading, answer) {
            (_, Ok(true)) => {
                if !leading {
                    tracing::info!(node = %self.node_id, "took the monitor lease: this node runs the cluster's monitor");
                    self.set_leading(true);
                }
                Some(sent + self.opts.ttl)
            }
            (true, Ok(false)) => {
                tracing::error!(node = %self.node_id, "the monitor lease is another node's: no longer the monitor leader");
                self.set_leading(false);
                None
            }
            (false, Ok(false)) => None,
            (true, Err(e)) => {
                tracing::warn!(node = %self.node_id, error = %e, "cannot renew the monitor lease; leading while it surely lasts");
                valid_until
            }
            (false, Err(e)) => {
                tracing::debug!(node = %self.node_id, error = %e, "cannot try the monitor lease");
                None
            }
        }
    }

    async fn take(&self) -> Result<bool, ClusterError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&self.key)
            .arg(&self.value)
            .arg("NX")
            .arg("PX")
            .arg(millis(self.opts.ttl));
        let set: Option<String> = self
            .bounded(cmd.query_async(&mut self.conn.clone()))
            .await?;
        Ok(set.is_some())
    }

    async fn renew(&self) -> Result<i64, ClusterError> {
        let script = Script::new(RENEW);
        let mut inv = script.key(&self.key);
        inv.arg(&self.value).arg(millis(self.opts.ttl));
        let mut conn = self.conn.clone();
        self.bounded(inv.invoke_async(&mut conn)).await
    }

    async fn release(&self) {
        let script = Script::new(RELEASE);
        let mut inv = script.key(&self.key);
        inv.arg(&self.value);
        let mut conn = self.conn.clone();
        match self.bounded(inv.invoke_async::<i64>(&mut conn)).await {
            Ok(_) => tracing::info!(node = %self.node_id, "monitor lease released"),
            Err(e) => {
                tracing::warn!(node = %self.node_id, error = %e, "cannot release the monitor lease; it expires by itself")
            }
        }
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.op_timeout, fut).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ClusterError::Timeout(self.op_timeout)),
        }
    }

    /// Publishes the new role; returns its epoch.
    fn set_leading(&self, leading: bool) -> u64 {
        let mut epoch = 0;
        self.role.send_modify(|r| {
            r.epoch += 1;
            r.leading = leading;
            epoch = r.epoch;
        });
        epoch
    }

    /// Waits until the monitor has acknowledged `epoch` (it stopped judging), bounded; at once
    /// when nobody follows the role.
    async fn await_step_down(&self, epoch: u64) {
        if self.role.receiver_count() == 0 {
            return;
        }
        let mut ack = self.ack.subscribe();
        let waited = tokio::time::timeout(STEP_DOWN_WAIT, ack.wait_for(|v| *v >= epoch)).await;
        if waited.is_err() {
            tracing::warn!(node = %self.node_id, "the monitor did not confirm it stopped leading; releasing the lease anyway");
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
