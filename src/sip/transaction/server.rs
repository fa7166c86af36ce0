//! Server transactions (§17.2). INVITE: 100 Trying at once, provisional and final responses
//! from the TU, non-2xx finals retransmitted by timer G until ACK or timer H, ACK absorbed for
//! timer I. Non-INVITE: the last response resent on every retransmission until timer J.

use std::sync::Arc;

use bytes::Bytes;
use rsip::Method;
use tokio::time::Instant;

use super::table::Expiring;
use super::{Inner, Received, ServerKey};
use crate::model::StatusLine;
use crate::sip::message;
use crate::sip::response::response_for;
use crate::sip::transport::{Peer, Side};

pub(super) enum ServerState {
    /// INVITE waiting for a final response; `last` is the latest provisional (100 at first).
    InviteProceeding { last: Bytes },
    /// INVITE answered with a non-2xx final, which is retransmitted until the ACK comes.
    InviteCompleted { last: Bytes },
    /// Only absorbs retransmissions, resending `last` when there is one.
    Absorbing { last: Option<Bytes> },
}

pub(super) struct ServerEntry {
    state: ServerState,
    peer: Peer,
    /// Moved only through the table (`expire_at`), which schedules it.
    expires: Instant,
}

impl Expiring for ServerEntry {
    fn expires(&self) -> Option<Instant> {
        Some(self.expires)
    }

    fn set_expires(&mut self, at: Instant) {
        self.expires = at;
    }
}

/// The TU's handle on one server transaction.
#[derive(Clone)]
pub struct ServerTx {
    inner: Arc<Inner>,
    key: ServerKey,
    peer: Peer,
    request: Arc<rsip::Request>,
}

impl std::fmt::Debug for ServerTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTx")
            .field("key", &self.key)
            .field("peer", &self.peer)
            .finish()
    }
}

/// A TU that never answers must not pin an entry forever; ringing may legitimately last long.
const PROCEEDING_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);

pub(super) fn on_request(
    inner: &Arc<Inner>,
    side: Side,
    peer: Peer,
    req: rsip::Request,
) -> Received {
    let Some(key) = ServerKey::for_request(side, &req) else {
        return Received::Unmatchable;
    };
    let now = Instant::now();
    let mut map = inner.server.shard(&key);
    if req.method == Method::Ack {
        return match map.get_mut(&key) {
            Some(entry) => {
                if let ServerState::InviteCompleted { .. } = entry.state {
                    // Confirmed: absorb further ACKs for timer I.
                    entry.state = ServerState::Absorbing { last: None };
                    map.expire_at(&key, now + reliable_or(peer, inner.timers.t4));
                }
                Received::Absorbed
            }
            None => Received::AckForDialog(req),
        };
    }
    if let Some(entry) = map.get(&key) {
        let resend = match &entry.state {
            ServerState::InviteProceeding { last } | ServerState::InviteCompleted { last } => {
                Some(last.clone())
            }
            ServerState::Absorbing { last } => last.clone(),
        };
        let to = entry.peer;
        drop(map);
        if let Some(bytes) = resend {
            inner.ifaces.send(side, to, bytes);
        }
        return Received::Absorbed;
    }
    let is_invite = req.method == Method::Invite;
    let is_cancel = req.method == Method::Cancel;
    let request = Arc::new(req);
    let state = if is_invite {
        let trying = response_for(
            &request,
            StatusLine::TRYING.code,
            StatusLine::TRYING.phrase,
            None,
        );
        let bytes = message::encode(&rsip::SipMessage::Response(trying));
        inner.ifaces.send(side, peer, bytes.clone());
        ServerState::InviteProceeding { last: bytes }
    } else {
        ServerState::Absorbing { last: None }
    };
    let limit = if is_invite {
        PROCEEDING_LIMIT
    } else {
        inner.timers.timeout() * 2
    };
    map.insert(
        key.clone(),
        ServerEntry {
            state,
            peer,
            expires: now + limit,
        },
    );
    let invite_pending = is_cancel
        && matches!(
            map.get(&key.invite_of_cancel()).map(|e| &e.state),
            Some(ServerState::InviteProceeding { .. })
        );
    drop(map);
    let tx = ServerTx {
        inner: inner.clone(),
        key,
        peer,
        request,
    };
    if is_cancel {
        Received::Cancel {
            cancel: tx,
            invite_pending,
        }
    } else {
        Received::New(tx)
    }
}

fn reliable_or(peer: Peer, d: std::time::Duration) -> std::time::Duration {
    if peer.proto.is_reliable() {
        std::time::Duration::ZERO
    } else {
        d
    }
}

impl ServerTx {
    pub fn request(&self) -> &rsip::Request {
        &self.request
    }

    pub fn peer(&self) -> Peer {
        self.peer
    }

    pub fn side(&self) -> Side {
        self.key.side
    }

    /// Send a response built from the request: Via, From, To (+ tag), Call-ID, CSeq copied.
    pub fn reply(&self, code: u16, reason: &str, to_tag: Option<&str>) {
        self.respond(response_for(&self.request, code, reason, to_tag));
    }

    /// Answer with one of the gateway's status lines (`model::StatusLine`).
    pub fn reply_line(&self, line: StatusLine, to_tag: Option<&str>) {
        self.reply(line.code, line.phrase, to_tag);
    }

    /// Send a response through this transaction and move its state.
    pub fn respond(&self, resp: rsip::Response) {
        let code = resp.status_code.code();
        let mut msg = rsip::SipMessage::Response(resp);
        self.inner.name_software(&mut msg);
        let bytes = message::encode(&msg);
        let now = Instant::now();
        let timers = self.inner.timers;
        let mut start_timer_g = false;
        let mut map = self.inner.server.shard(&self.key);
        if let Some(entry) = map.get_mut(&self.key) {
            let invite = self.key.method == "INVITE";
            let mut expires = None;
            match (&entry.state, invite, code) {
                (ServerState::InviteProceeding { .. }, true, 101..=199) => {
                    entry.state = ServerState::InviteProceeding {
                        last: bytes.clone(),
                    };
                }
                (ServerState::InviteProceeding { .. }, true, 200..=299) => {
                    // RFC 6026 Accepted: the TU retransmits the 2xx; absorb INVITE copies.
                    entry.state = ServerState::Absorbing { last: None };
                    expires = Some(now + timers.timeout());
                }
                (ServerState::InviteProceeding { .. }, true, 300..) => {
                    entry.state = ServerState::InviteCompleted {
                        last: bytes.clone(),
                    };
                    expires = Some(now + timers.timeout()); // timer H
                    start_timer_g = !self.peer.proto.is_reliable();
                }
                (ServerState::Absorbing { .. }, false, 101..=199) => {
                    entry.state = ServerState::Absorbing {
                        last: Some(bytes.clone()),
                    };
                }
                (ServerState::Absorbing { .. }, false, 200..) => {
                    entry.state = ServerState::Absorbing {
                        last: Some(bytes.clone()),
                    };
                    // timer J
                    expires = Some(now + reliable_or(self.peer, timers.timeout()));
                }
                _ => {} // a response after the final: sent, state unchanged
            }
            if let Some(at) = expires {
                map.expire_at(&self.key, at);
            }
        }
        drop(map);
        self.inner.ifaces.send(self.key.side, self.peer, bytes);
        if start_timer_g {
            tokio::spawn(timer_g(self.inner.clone(), self.key.clone()));
        }
    }
}

/// Retransmit a non-2xx final at T1, 2·T1, … capped at T2, until ACK or timer H.
async fn timer_g(inner: Arc<Inner>, key: ServerKey) {
    let mut interval = inner.timers.t1;
    loop {
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(inner.timers.t2);
        let resend = {
            let map = inner.server.shard(&key);
            match map.get(&key) {
                Some(ServerEntry {
                    state: ServerState::InviteCompleted { last },
                    peer,
                    expires,
                }) if *expires > Instant::now() => (last.clone(), *peer),
                _ => return,
            }
        };
        inner.ifaces.send(key.side, resend.1, resend.0);
    }
}
