//! Tests against the real Redis at 127.0.0.1:6379 (scripts/test.sh starts one when missing).
//! Without it a test is skipped with a message, except under CI=true, where it fails. Each test
//! has its own random key prefix and deletes its keys at the end, even when it fails.
//! Timing: every wait polls up to a generous bound; nothing asserts a duration tighter than
//! seconds.

mod bus;
mod caps;
mod direct;
mod down;
mod leader;
mod nodes;

use std::future::Future;
use std::time::Duration;

use super::{
    CalleeCheck, ClusterOptions, RateLimit, Refused, SharedAdmission, SharedCaps, SharedLease,
    SharedRequest,
};
use crate::config::OnSharedStateDown;
use crate::shutdown::{self, ShutdownTrigger};

pub(crate) use crate::cluster::testing::{options, redis_here, Prefix, REDIS};

/// A plain connection for looking at the keys directly.
async fn raw() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(REDIS).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// A node that has joined, its worker running until the trigger fires.
struct Node {
    adm: SharedAdmission,
    stop: ShutdownTrigger,
    worker: Option<tokio::task::JoinHandle<()>>,
}

async fn node(opts: ClusterOptions) -> Node {
    let adm = SharedAdmission::new(opts).unwrap();
    adm.join().await.unwrap();
    let (stop, shutdown) = shutdown::channel();
    let worker = adm.spawn(shutdown);
    Node { adm, stop, worker }
}

/// A node that has joined and beats no more (no worker): as good as dead after the timeout.
async fn silent_node(opts: ClusterOptions) -> SharedAdmission {
    let adm = SharedAdmission::new(opts).unwrap();
    adm.join().await.unwrap();
    adm
}

/// Caps and rate that never refuse, to test one limit at a time.
fn open_request<'a>(trunk: &'a str, line: &'a str) -> SharedRequest<'a> {
    SharedRequest {
        trunk,
        line,
        caps: SharedCaps {
            max_concurrent: 10_000,
            max_per_number: 10_000,
        },
        rate: RateLimit {
            per_sec: 10_000.0,
            burst: 10_000.0,
        },
        callee: None,
    }
}

fn callee(number: &str, window: Duration, per_window: u32, daily: Option<u32>) -> CalleeCheck<'_> {
    CalleeCheck {
        number,
        window,
        per_window,
        daily,
    }
}

/// Run `n` admissions at once, alternating between the nodes; `make(i)` builds request i.
async fn admit_all(
    nodes: &[&SharedAdmission],
    n: usize,
    make: impl Fn(usize) -> (String, String, SharedRequestOwned) + Send + Sync,
) -> (Vec<SharedLease>, Vec<Refused>) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let adm = nodes[i % nodes.len()].clone();
        let (trunk, line, r) = make(i);
        set.spawn(async move {
            let req = SharedRequest {
                trunk: &trunk,
                line: &line,
                caps: r.caps,
                rate: r.rate,
                callee: None,
            };
            adm.admit(&req).await
        });
    }
    let mut granted = Vec::new();
    let mut refused = Vec::new();
    while let Some(answer) = set.join_next().await {
        match answer.unwrap() {
            Ok(lease) => granted.push(lease),
            Err(r) => refused.push(r),
        }
    }
    (granted, refused)
}

/// The owned part of a request that crosses into a spawned task.
#[derive(Clone, Copy)]
struct SharedRequestOwned {
    caps: SharedCaps,
    rate: RateLimit,
}

/// Poll `check` every 100 ms until it holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A trunk's calls across the live nodes.
async fn active(adm: &SharedAdmission, trunk: &str) -> u32 {
    adm.load(trunk).await.unwrap().active
}
