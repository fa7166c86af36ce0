//! The SIP transaction table under many live transactions, for instruction counts rather than
//! time (`valgrind --tool=callgrind`; the command and figures are in bench/README.md). Each phase
//! is its own non-inlined function so that `callgrind_annotate --inclusive=yes` shows what it
//! cost:
//!
//! - `insert`: `--transactions N` new non-INVITE server transactions (default 10,000), each with
//!   its own branch, as requests arriving from one PBX;
//! - `retransmit`: each request again (matched and absorbed);
//! - `idle_sweeps`: `--sweeps S` sweeps (default 40, 10 s of the 250 ms ticks) at which nothing
//!   is due yet, the common case of a busy gateway;
//! - `final_sweep`: one sweep after every transaction's timer, which expires them all.
//!
//! Non-INVITE requests are used because their transactions send nothing (no 100 Trying), so the
//! figures are the table's own. The sweeps are given their instant (`expire_due`), so nothing
//! here waits for the clock.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use trunkguard::sip::frontend::Limits;
use trunkguard::sip::transaction::{Received, Timers, TransactionLayer};
use trunkguard::sip::transport::{Interface, Interfaces, Peer, Proto, Side};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn request(i: usize) -> Result<rsip::Request> {
    let text = format!(
        "OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK-bench-{i}\r\n\
         From: <sip:pbx@127.0.0.10>;tag=f{i}\r\n\
         To: <sip:gw@127.0.0.1>\r\n\
         Call-ID: bench-{i}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match rsip::SipMessage::try_from(text.as_str())? {
        rsip::SipMessage::Request(r) => Ok(r),
        rsip::SipMessage::Response(_) => Err("the bench request parsed as a response".into()),
    }
}

#[inline(never)]
fn insert(layer: &TransactionLayer, peer: Peer, requests: &[rsip::Request]) -> Result<()> {
    for r in requests {
        match layer.on_request(Side::Inside, peer, r.clone()) {
            Received::New(_) => {}
            other => return Err(format!("expected a new transaction, got {other:?}").into()),
        }
    }
    Ok(())
}

#[inline(never)]
fn retransmit(layer: &TransactionLayer, peer: Peer, requests: &[rsip::Request]) -> Result<()> {
    for r in requests {
        match layer.on_request(Side::Inside, peer, r.clone()) {
            Received::Absorbed => {}
            other => return Err(format!("expected a retransmission, got {other:?}").into()),
        }
    }
    Ok(())
}

#[inline(never)]
fn idle_sweeps(layer: &TransactionLayer, start: Instant, sweeps: usize) {
    for k in 1..=sweeps {
        layer.expire_due(start + Duration::from_millis(250) * k as u32);
    }
}

#[inline(never)]
fn final_sweep(layer: &TransactionLayer, at: Instant) {
    layer.expire_due(at);
}

async fn bind(side: Side) -> Result<Arc<Interface>> {
    let addr = "127.0.0.1:0".parse()?;
    let (iface, _listener) = Interface::bind(side, addr, Limits::default(), Arc::default()).await?;
    Ok(iface)
}

fn main() -> Result<()> {
    let n = arg("--transactions", 10_000);
    let sweeps = arg("--sweeps", 40);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ifaces = Arc::new(Interfaces {
            inside: bind(Side::Inside).await?,
            outside: bind(Side::Outside).await?,
        });
        let timers = Timers::with_t1(Duration::from_millis(500));
        let layer = TransactionLayer::new(timers, ifaces, None);
        let peer = Peer {
            addr: "127.0.0.10:5060".parse()?,
            proto: Proto::Udp,
        };
        let requests = (0..n).map(request).collect::<Result<Vec<_>>>()?;
        let start = Instant::now();
        insert(&layer, peer, &requests)?;
        retransmit(&layer, peer, &requests)?;
        idle_sweeps(&layer, start, sweeps);
        if layer.sizes() != (n, 0) {
            return Err(format!("an idle sweep expired something: {:?}", layer.sizes()).into());
        }
        // Timer J's limit for a transaction the TU never answers: 2·64·T1, and a margin.
        final_sweep(
            &layer,
            start + timers.timeout() * 2 + Duration::from_secs(60),
        );
        if layer.sizes() != (0, 0) {
            return Err(format!("the final sweep left {:?}", layer.sizes()).into());
        }
        println!("{n} transactions, {sweeps} idle sweeps: done");
        Ok(())
    })
}
