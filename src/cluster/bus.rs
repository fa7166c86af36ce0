//! The change bus: how the nodes of a cluster tell each other that the shared database changed
//! (trunks, enforcement), so that every node applies a change before its next call instead of at
//! its next periodic re-check.
//!
//! A notice is a Redis pub/sub message on `{prefix}:changes`: `tg1 <kind> <node id>`. It carries
//! no data, only "read it again": the database is the truth, and a lost notice costs a delay,
//! never a wrong state. The sending node ignores its own. Messages are bounded (`MAX_MESSAGE`
//! bytes); anything else is ignored and counted.
//!
//! Each node runs one subscriber task (`ChangeBus::spawn`) on its own connection (a subscribed
//! connection can do nothing else). Pub/sub is fire-and-forget: what is published while a node
//! is not subscribed is lost to it, so after every (re)subscription, the first included (it
//! closes the gap between the start-up load and the subscription), the task hands out
//! `Notice::Resync`: "everything may have changed". It reconnects with a backoff (100 ms doubling
//! to 5 s) and pings its connection, so a silently dead connection is noticed within seconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::{connection, ClusterError, ClusterOptions};
use crate::shutdown::Shutdown;

/// A notice longer than this is not ours: ignored (and counted) without being parsed.
pub const MAX_MESSAGE: usize = 256;
/// The format's version: a node ignores notices of a format it does not know.
const VERSION: &str = "tg1";
/// Notices waiting for a slow consumer; past it the consumer is told to resync (`Lagged`).
const NOTICE_QUEUE: usize = 256;
/// The subscriber's connection is pinged this often; no answer within `op_timeout` (at least a
/// second) means it is gone.
const PING_EVERY: Duration = Duration::from_secs(3);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What changed in the shared database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// A trunk was created, replaced or deleted (its numbers and blocks with it).
    Trunks,
    /// A step was imposed or lifted, or an operator's request waits in `enforcement_requests`.
    Enforcement,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Trunks => "trunks",
            Change::Enforcement => "enforcement",
        }
    }

    fn from_code(s: &str) -> Option<Change> {
        match s {
            "trunks" => Some(Change::Trunks),
            "enforcement" => Some(Change::Enforcement),
            _ => None,
        }
    }
}

/// What a node's consumers are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Another node changed this.
    Changed { change: Change, by: String },
    /// The subscription was (re)made, or a consumer fell behind: notices may have been lost, so
    /// everything must be read again.
    Resync,
}

/// The bus's counters (relaxed atomics), for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct BusCounters {
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    /// Notices of other nodes handed to the consumers.
    pub received: AtomicU64,
    /// This node's own notices, ignored.
    pub own: AtomicU64,
    /// Messages of an unknown format or kind, ignored.
    pub unknown: AtomicU64,
    /// Messages longer than `MAX_MESSAGE`, ignored unread.
    pub oversized: AtomicU64,
    /// Subscriptions made (the first one included): each hands out a `Resync`.
    pub subscriptions: AtomicU64,
    /// Subscriptions lost (connection closed, ping unanswered) or refused.
    pub connection_failures: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BusFigures {
    pub published: u64,
    pub publish_failures: u64,
    pub received: u64,
    pub own: u64,
    pub unknown: u64,
    pub oversized: u64,
    pub subscriptions: u64,
    pub connection_failures: u64,
}

impl BusCounters {
    fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn figures(&self) -> BusFigures {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BusFigures {
            published: get(&self.published),
            publish_failures: get(&self.publish_failures),
            received: get(&self.received),
            own: get(&self.own),
            unknown: get(&self.unknown),
            oversized: get(&self.oversized),
            subscriptions: get(&self.subscriptions),
            connection_failures: get(&self.connection_failures),
        }
    }
}

/// A node's end of the change bus: publishes notices, and (with `spawn`) hands other nodes'
/// notices to its consumers (`subscribe`). Clone freely.
#[derive(Clone)]
pub struct ChangeBus {
    core: Arc<BusCore>,
}

struct BusCore {
    node_id: String,
    channel: String,
    op_timeout: Duration,
    /// The subscriber opens its own connections from it.
    client: redis::Client,
    /// Publishing shares one multiplexed connection that reconnects by itself.
    conn: ConnectionManager,
    notices: broadcast::Sender<Notice>,
    counters: BusCounters,
}

impl std::fmt::Debug for ChangeBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeBus")
            .field("node_id", &self.core.node_id)
            .field("channel", &self.core.channel)
            .finish()
    }
}

impl ChangeBus {
    /// The bus of a node; no I/O yet (publishing connects on first use, `spawn` subscribes).
    /// Must be called inside a Tokio runtime.
    pub fn new(opts: &ClusterOptions) -> Result<ChangeBus, ClusterError> {
        let client = redis::Client::open(opts.redis_url.as_str()).map_err(ClusterError::Url)?;
        let conn = connection(&client, opts.op_timeout)?;
        let (notices, _) = broadcast::channel(NOTICE_QUEUE);
        Ok(ChangeBus {
            core: Arc::new(BusCore {
                node_id: opts.node_id.clone(),
                channel: channel_name(&opts.key_prefix),
                op_timeout: opts.op_timeout,
                client,
                conn,
                notices,
                counters: BusCounters::default(),
            }),
        })
    }

    pub fn node_id(&self) -> &str {
        &self.core.node_id
    }

    pub fn counters(&self) -> &BusCounters {
        &self.core.counters
    }

    /// Tells the other nodes that `change` is in the database (call it after the commit). A
    /// failure is logged and counted, not fatal: the others find the change at their periodic
    /// re-check.
    pub async fn publish(&self, change: Change) -> Result<(), ClusterError> {
        let message = format!("{VERSION} {} {}", change.as_str(), self.core.node_id);
        let mut conn = self.core.conn.clone();
        let sent = tokio::time::timeout(
            self.core.op_timeout,
            redis::cmd("PUBLISH")
                .arg(&self.core.channel)
                .arg(&message)
                .query_async::<i64>(&mut conn),
        )
        .await;
        let result = match sent {
            Ok(Ok(_receivers)) => Ok(()),
            Ok(Err(e)) => Err(ClusterError::Redis(e)),
            Err(_) => Err(ClusterError::Timeout(self.core.op_timeout)),
        };
        match &result {
            Ok(()) => BusCounters::add(&self.core.counters.published),
            Err(e) => {
                BusCounters::add(&self.core.counters.publish_failures);
                tracing::warn!(change = change.as_str(), error = %e, "cannot publish a change notice; the other nodes find it at their periodic re-check");
            }
        }
        result
    }

    /// The notices of other nodes from now on (and `Resync` after each subscription).
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.core.notices.subscribe()
    }

    /// Starts the subscriber task; it stops at `shutdown`.
    pub fn spawn(&self, shutdown: Shutdown) -> JoinHandle<()> {
        tokio::spawn(subscriber(Arc::clone(&self.core), shutdown))
    }
}

/// The channel of a cluster's notices (a channel is not a key, but shares its prefix so that
/// clusters and tests on one Redis do not hear each other).
fn channel_name(prefix: &str) -> String {
    format!("{{{prefix}}}:changes")
}

/// Parses one message; `None` for anything that is not a notice of a known kind.
fn parse(payload: &[u8]) -> Option<(Change, String)> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.split(' ');
    let (version, kind, node) = (parts.next()?, parts.next()?, parts.next()?);
    if version != VERSION || parts.next().is_some() || node.is_empty() {
        return None;
    }
    Some((Change::from_code(kind)?, node.to_string()))
}

impl BusCore {
    fn on_message(&self, payload: &[u8]) {
        if payload.len() > MAX_MESSAGE {
            BusCounters::add(&self.counters.oversized);
            return;
        }
        match parse(payload) {
            None => BusCounters::add(&self.counters.unknown),
            Some((_, by)) if by == self.node_id => BusCounters::add(&self.counters.own),
            Some((change, by)) => {
                BusCounters::add(&self.counters.received);
                // No consumer yet is no error: they read everything when they start.
                let _ = self.notices.send(Notice::Changed { change, by });
            }
        }
    }

    /// One subscription, until its connection is lost (`Ok`: it was made and later lost) or
    /// shutdown (`Err(None)`), or it cannot be made (`Err(Some(e))`).
    async fn subscribed(&self, shutdown: &mut Shutdown) -> Result<(), Option<ClusterError>> {
        let timeout = self.op_timeout.max(Duration::from_secs(1));
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Err(Some(ClusterError::Redis(e))),
            Err(_) => return Err(Some(ClusterError::Timeout(timeout))),
        };
        BusCounters::add(&self.counters.subscriptions);
        // Whatever was published before this moment is lost to this node.
        let _ = self.notices.send(Notice::Resync);
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(m) => self.on_message(m.get_payload_bytes()),
                    None => return Ok(()),
                },
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        return Ok(());
                    }
                }
                _ = shutdown.recv() => return Err(None),
            }
        }
    }
}

/// Subscribes, hands out notices, and resubscribes with a backoff whenever the connection is
/// lost, until shutdown.
async fn subscriber(core: Arc<BusCore>, mut shutdown: Shutdown) {
    let mut backoff = BACKOFF_FIRST;
    let mut failing = false;
    while !shutdown.is_shutdown() {
        match core.subscribed(&mut shutdown).await {
            Err(None) => break,
            Ok(()) => {
                BusCounters::add(&core.counters.connection_failures);
                tracing::warn!(node = %core.node_id, "change bus subscription lost; resubscribing");
                backoff = BACKOFF_FIRST;
                failing = false;
            }
            Err(Some(e)) => {
                BusCounters::add(&core.counters.connection_failures);
                if !failing {
                    tracing::warn!(node = %core.node_id, error = %e, "cannot subscribe to the change bus; retrying with a backoff");
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.recv() => break,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Change, MAX_MESSAGE};

    #[test]
    fn parses_only_notices_of_known_kinds() {
        assert_eq!(
            parse(b"tg1 trunks gw-a"),
            Some((Change::Trunks, "gw-a".to_string()))
        );
        assert_eq!(
            parse(b"tg1 enforcement gw-b"),
            Some((Change::Enforcement, "gw-b".to_string()))
        );
        for bad in [
            &b"tg2 trunks gw-a"[..],
            b"tg1 colours gw-a",
            b"tg1 trunks",
            b"tg1 trunks gw-a extra",
            b"tg1 trunks ",
            b"",
            b"\xff\xfe",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert!(MAX_MESSAGE >= "tg1 enforcement ".len() + 64);
    }
}
