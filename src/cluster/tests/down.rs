//! Redis unreachable: the configured answer, quickly, and back to shared state after.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::cluster::Fallback;

/// Far beyond the 300 ms the options allow: the answer must not wait on Redis.
const QUICK: Duration = Duration::from_secs(5);

fn unreachable(prefix: &Prefix, on_down: OnSharedStateDown) -> ClusterOptions {
    ClusterOptions {
        // Nothing listens on port 1.
        redis_url: "redis://127.0.0.1:1/0".into(),
        op_timeout: Duration::from_millis(300),
        on_down,
        ..options(prefix, "a")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_gives_the_configured_answer_quickly() {
    let p = Prefix::new();
    for (on_down, expected) in [
        (OnSharedStateDown::Refuse, Fallback::Refuse),
        (OnSharedStateDown::Local, Fallback::Local { live_nodes: 1 }),
    ] {
        let adm = SharedAdmission::new(unreachable(&p, on_down)).unwrap();
        let joined = tokio::time::timeout(QUICK, adm.join()).await.unwrap();
        assert!(joined.is_err());
        let (_stop, shutdown) = shutdown::channel();
        let _worker = adm.spawn(shutdown);
        for _ in 0..3 {
            let answer = tokio::time::timeout(QUICK, adm.admit(&open_request("t1", "8610")))
                .await
                .unwrap();
            assert_eq!(answer.unwrap_err(), Refused::Unavailable(expected));
        }
        let status = adm.status();
        assert_eq!(status.state, "down");
        assert_eq!(status.on_shared_state_down, on_down.as_str());
        assert!(status.error.is_some());
        assert!(adm.counters().answered_down.load(Ordering::Relaxed) >= 3);
    }
}

/// A TCP relay to the real Redis that can hold every byte (Redis as if hung).
pub(super) struct Relay {
    pub(super) url: String,
    pub(super) held: Arc<AtomicBool>,
}

pub(super) async fn relay() -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/0", listener.local_addr().unwrap());
    let held = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect("127.0.0.1:6379").await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            tokio::spawn(pipe(ri, wo, Arc::clone(&flag)));
            tokio::spawn(pipe(ro, wi, Arc::clone(&flag)));
        }
    });
    Relay { url, held }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    held: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while held.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_one_bounded_wait_then_the_node_recovers() {
    if !redis_here("hung_redis").await {
        return;
    }
    let p = Prefix::new();
    let relay = relay().await;
    let opts = ClusterOptions {
        redis_url: relay.url.clone(),
        op_timeout: Duration::from_millis(300),
        ..options(&p, "a")
    };
    let a = node(opts).await;
    let kept = a.adm.admit(&open_request("t1", "8610")).await.unwrap();

    relay.held.store(true, Ordering::Relaxed);
    let answer = tokio::time::timeout(QUICK, a.adm.admit(&open_request("t1", "8611")))
        .await
        .unwrap();
    assert_eq!(answer.unwrap_err(), Refused::Unavailable(Fallback::Refuse));
    // Known down: the next ones do not wait at all (bounded here by the same generous limit).
    for _ in 0..5 {
        let answer = tokio::time::timeout(QUICK, a.adm.admit(&open_request("t1", "8612")))
            .await
            .unwrap();
        assert!(matches!(answer, Err(Refused::Unavailable(_))));
    }
    assert_eq!(a.adm.status().state, "down");
    // A call ending meanwhile: its release waits for Redis.
    drop(kept);

    relay.held.store(false, Ordering::Relaxed);
    assert!(eventually(Duration::from_secs(20), || async { a.adm.is_up() }).await);
    let lease = a.adm.admit(&open_request("t1", "8613")).await.unwrap();
    // Redis ends up holding exactly the live call: the held release done, and the admission
    // whose answer was lost (it may have run late) reconciled away.
    let settled = eventually(Duration::from_secs(20), || async {
        let _ = a.adm.reconcile().await;
        active(&a.adm, "t1").await == 1
    })
    .await;
    assert!(settled, "active = {}", active(&a.adm, "t1").await);
    assert_eq!(lease.line(), "8613");
}
