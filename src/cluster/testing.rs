//! What tests in several parts need to run against the real Redis at 127.0.0.1:6379
//! (scripts/test.sh starts one when missing): the PING check that fails under CI=true, a
//! per-test key prefix deleted on drop, a node's options for tests.

use std::time::Duration;

use super::ClusterOptions;
use crate::config::OnSharedStateDown;

pub(crate) const REDIS: &str = "redis://127.0.0.1:6379/0";

/// Whether Redis answers PING. Under CI=true a Redis that cannot be reached fails the test.
pub(crate) async fn redis_here(test: &str) -> bool {
    let ping = async {
        let client = redis::Client::open(REDIS).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        Some(pong == "PONG")
    };
    let up = tokio::time::timeout(Duration::from_secs(3), ping).await == Ok(Some(true));
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: no Redis at 127.0.0.1:6379 under CI=true (scripts/test.sh starts one)"
        );
        eprintln!("{test}: skipped: no Redis at 127.0.0.1:6379 (scripts/test.sh starts one)");
    }
    up
}

/// A test's own key prefix; its keys are deleted when it is dropped.
pub(crate) struct Prefix(pub(crate) String);

impl Prefix {
    pub(crate) fn new() -> Prefix {
        Prefix(format!("tgtest-{:016x}", rand::random::<u64>()))
    }

    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{{{}}}:{rest}", self.0)
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(REDIS) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let pattern = format!("{{{}}}*", self.0);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

pub(crate) fn options(prefix: &Prefix, node: &str) -> ClusterOptions {
    ClusterOptions {
        node_id: node.to_string(),
        redis_url: REDIS.to_string(),
        heartbeat: Duration::from_millis(200),
        node_timeout: Duration::from_secs(3),
        on_down: OnSharedStateDown::Refuse,
        key_prefix: prefix.0.clone(),
        // Generous: the machine running the tests is shared and loaded.
        op_timeout: Duration::from_secs(2),
        reconcile_every: Duration::from_secs(60),
    }
}

/// A TCP proxy in front of the test Redis that a test can cut: the node behind it sees Redis
/// go away (connections reset, new ones refused) and come back, while other nodes and the
/// test still reach Redis directly.
pub(crate) struct RedisProxy {
    url: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<parking_lot::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl RedisProxy {
    pub(crate) async fn start() -> RedisProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}/0", listener.local_addr().unwrap());
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is reset
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().push(task.abort_handle());
            }
        });
        RedisProxy {
            url,
            up,
            conns,
            accept,
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Redis "stops": every connection through the proxy is cut, new ones are dropped.
    pub(crate) fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    /// Redis "is back".
    pub(crate) fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
