//! A small SIP user agent for tests: a UDP socket that sends raw SIP text and receives parsed
//! messages. It keeps no call state of its own beyond what the test holds (`Sent`, `Dialog`),
//! so each test spells out its call flow. Every wait is bounded.
//!
//! This file holds the agent itself and its socket; `ua/dialog.rs` what a test holds of a call
//! (`Sent`, `Dialog`, `InviteSpec`, SDP bodies), `ua/send.rs` the requests and responses it
//! sends, `ua/receive.rs` the bounded waits for what comes back.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::msg::Msg;

mod dialog;
mod receive;
mod send;

pub use dialog::{sdp, Dialog, InviteSpec, Sent};

/// How long `expect_*` wait by default: far longer than any gateway reaction on loopback,
/// short enough that a missing message fails the test quickly.
pub const WAIT: Duration = Duration::from_secs(3);

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh token for tags, branches and Call-IDs (unique within the test process).
pub fn token(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{n}x{}", std::process::id())
}

pub fn reason_for(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        491 => "Request Pending",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

pub struct Ua {
    name: &'static str,
    sock: UdpSocket,
    addr: SocketAddr,
    /// New messages received while waiting for something else, for later `expect_*`.
    backlog: VecDeque<Msg>,
    /// Keys of every message received so far: a message seen again is a retransmission.
    seen: HashSet<String>,
}

impl Ua {
    /// Bind on `ip:0` (loopback only).
    pub async fn bind(name: &'static str, ip: &str) -> Ua {
        let sock = UdpSocket::bind(format!("{ip}:0"))
            .await
            .unwrap_or_else(|e| panic!("{name}: bind {ip}: {e}"));
        let addr = sock.local_addr().expect("local addr");
        Ua {
            name,
            sock,
            addr,
            backlog: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// The carrier answers the INVITE the PBX sent (`invite`) with a 200 and an SDP, and the PBX
/// acknowledges it: an answered call through the gateway. Returns the carrier's INVITE.
pub async fn answer_and_ack(pbx: &mut Ua, carrier: &mut Ua, invite: &Sent, tag: &str) -> Msg {
    let c_invite = carrier.expect_request("INVITE").await;
    carrier
        .reply_with(&c_invite, 200, Some(tag), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = pbx.expect_response(200).await;
    pbx.ack(&Dialog::uac(invite, &ok), invite.cseq).await;
    carrier.expect_request("ACK").await;
    c_invite
}
