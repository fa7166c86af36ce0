//! The change bus between two nodes: notices cross, a node ignores its own, junk is counted, and
//! a lost subscription comes back with "everything changed".

use std::time::Duration;

use tokio::sync::broadcast;

use super::{options, raw, redis_here, Prefix};
use crate::cluster::bus::{Change, ChangeBus, Notice};
use crate::shutdown::{self, ShutdownTrigger};

/// A node's bus with its subscriber running, and its consumer's receiver.
struct BusNode {
    bus: ChangeBus,
    rx: broadcast::Receiver<Notice>,
    _stop: ShutdownTrigger,
}

async fn bus_node(prefix: &Prefix, node: &str) -> BusNode {
    let bus = ChangeBus::new(&options(prefix, node)).unwrap();
    let mut rx = bus.subscribe();
    let (stop, shutdown) = shutdown::channel();
    bus.spawn(shutdown);
    // The first subscription says "everything changed": the node is now listening.
    assert_eq!(next(&mut rx).await, Notice::Resync);
    BusNode {
        bus,
        rx,
        _stop: stop,
    }
}

async fn next(rx: &mut broadcast::Receiver<Notice>) -> Notice {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a notice within 5 s")
        .expect("the bus is open")
}

/// Nothing arrives for a while.
async fn quiet(rx: &mut broadcast::Receiver<Notice>) {
    let got = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    assert!(got.is_err(), "expected no notice, got {got:?}");
}

#[tokio::test]
async fn notices_cross_between_nodes_and_a_node_ignores_its_own() {
    if !redis_here("bus_crosses").await {
        return;
    }
    let prefix = Prefix::new();
    let mut a = bus_node(&prefix, "gw-a").await;
    let mut b = bus_node(&prefix, "gw-b").await;

    a.bus.publish(Change::Trunks).await.unwrap();
    assert_eq!(
        next(&mut b.rx).await,
        Notice::Changed {
            change: Change::Trunks,
            by: "gw-a".into()
        }
    );
    b.bus.publish(Change::Enforcement).await.unwrap();
    assert_eq!(
        next(&mut a.rx).await,
        Notice::Changed {
            change: Change::Enforcement,
            by: "gw-b".into()
        }
    );
    // Neither heard itself.
    quiet(&mut a.rx).await;
    quiet(&mut b.rx).await;
    assert_eq!(a.bus.counters().figures().own, 1);
    assert_eq!(b.bus.counters().figures().own, 1);
    assert_eq!(a.bus.counters().figures().received, 1);
    assert_eq!(a.bus.counters().figures().published, 1);

    // Another cluster on the same Redis is not heard.
    let other = Prefix::new();
    let mut c = bus_node(&other, "gw-a").await;
    c.bus.publish(Change::Trunks).await.unwrap();
    quiet(&mut a.rx).await;
    quiet(&mut c.rx).await;
}

#[tokio::test]
async fn junk_on_the_channel_is_ignored_and_counted() {
    if !redis_here("bus_junk").await {
        return;
    }
    let prefix = Prefix::new();
    let mut a = bus_node(&prefix, "gw-a").await;
    let mut conn = raw().await;
    let channel = prefix.key("changes");
    for junk in [
        "hello".to_string(),
        "tg1 colours gw-b".to_string(),
        "tg9 trunks gw-b".to_string(),
        format!("tg1 trunks {}", "x".repeat(400)),
    ] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(&junk)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // A good one after the junk still arrives, and is the only one.
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg("tg1 trunks gw-b")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        next(&mut a.rx).await,
        Notice::Changed {
            change: Change::Trunks,
            by: "gw-b".into()
        }
    );
    quiet(&mut a.rx).await;
    let f = a.bus.counters().figures();
    assert_eq!((f.unknown, f.oversized, f.received), (3, 1, 1), "{f:?}");
}

/// A TCP relay to Redis that can cut every connection through it, as a network failure would.
struct Relay {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start() -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect("127.0.0.1:6379").await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay { addr, cut }
    }

    /// Closes every connection open through the relay (new ones are relayed again).
    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test]
async fn a_lost_subscription_comes_back_with_everything_changed() {
    if !redis_here("bus_reconnect").await {
        return;
    }
    let prefix = Prefix::new();
    let relay = Relay::start().await;
    let mut opts = options(&prefix, "gw-a");
    opts.redis_url = format!("redis://{}/0", relay.addr);
    let a_bus = ChangeBus::new(&opts).unwrap();
    let mut a_rx = a_bus.subscribe();
    let (_stop, shutdown) = shutdown::channel();
    a_bus.spawn(shutdown);
    assert_eq!(next(&mut a_rx).await, Notice::Resync);
    let b = bus_node(&prefix, "gw-b").await;

    // The network between a and Redis fails: a's subscription is gone.
    relay.cut();
    // Whatever b published meanwhile may be lost: a is told to read everything again.
    assert_eq!(next(&mut a_rx).await, Notice::Resync);
    let f = a_bus.counters().figures();
    assert_eq!(f.subscriptions, 2, "{f:?}");
    assert!(f.connection_failures >= 1, "{f:?}");
    // And it hears notices again.
    b.bus.publish(Change::Enforcement).await.unwrap();
    assert_eq!(
        next(&mut a_rx).await,
        Notice::Changed {
            change: Change::Enforcement,
            by: "gw-b".into()
        }
    );
}

#[tokio::test]
async fn a_bus_without_redis_retries_and_publishing_fails_fast() {
    let prefix = Prefix::new();
    let mut opts = options(&prefix, "gw-a");
    // Nothing listens there.
    opts.redis_url = "redis://127.0.0.1:1/0".into();
    opts.op_timeout = Duration::from_millis(300);
    let bus = ChangeBus::new(&opts).unwrap();
    let mut rx = bus.subscribe();
    let (_stop, shutdown) = shutdown::channel();
    bus.spawn(shutdown);
    let started = tokio::time::Instant::now();
    assert!(bus.publish(Change::Trunks).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(bus.counters().figures().publish_failures, 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        bus.counters().figures().connection_failures >= 2,
        "retried: {:?}",
        bus.counters().figures()
    );
    assert!(rx.try_recv().is_err(), "never subscribed, no resync");
}
