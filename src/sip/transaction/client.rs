//! Client transactions (§17.1). INVITE: retransmitted by timer A while Calling, timed out by
//! timer B, non-2xx finals ACKed here and absorbed for timer D, 2xx passed up (RFC 6026
//! Accepted, so 2xx retransmissions reach the TU that must re-ACK). Non-INVITE: timer E
//! retransmits, timer F times out, timer K absorbs.

use std::sync::Arc;

use bytes::Bytes;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::table::Expiring;
use super::{ClientKey, Inner};
use crate::sip::message;
use crate::sip::transport::{Peer, Side};

/// What a client transaction tells its user. Sent boxed: a user's channel allocates its slots
/// 32 at a time, and a call holds one (4.6 KiB of slots inline, 256 bytes boxed).
#[derive(Debug)]
pub struct ClientEvent {
    pub key: ClientKey,
    pub kind: ClientEventKind,
}

#[derive(Debug)]
pub enum ClientEventKind {
    Response(rsip::Response),
    /// Timer B or F: no final response (INVITE: not even a provisional one).
    Timeout,
    /// The connection to the peer could not be made (TLS: the certificate or the handshake
    /// failed); the request never left. RFC 3261 §8.1.3.1 treats it as a 503; the reason is
    /// kept for the log.
    TransportFailed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientState {
    /// Calling (INVITE) or Trying (non-INVITE).
    Trying,
    Proceeding,
    /// INVITE answered 2xx: further 2xx still go up.
    Accepted,
    Completed,
}

pub(super) struct ClientEntry {
    pub(super) state: ClientState,
    request: rsip::Request,
    bytes: Bytes,
    peer: Peer,
    events: mpsc::Sender<Box<ClientEvent>>,
    ack: Option<Bytes>,
    cancel_pending: bool,
    /// Set only through the table (`expire_at`), which schedules it. None: the retransmission
    /// task, a final response or a CANCEL ends the transaction.
    expires: Option<Instant>,
}

impl Expiring for ClientEntry {
    fn expires(&self) -> Option<Instant> {
        self.expires
    }

    fn set_expires(&mut self, at: Instant) {
        self.expires = Some(at);
    }
}

pub(super) fn send_request(
    inner: &Arc<Inner>,
    side: Side,
    peer: Peer,
    req: rsip::Request,
    events: mpsc::Sender<Box<ClientEvent>>,
) -> Option<ClientKey> {
    let branch = message::branch(&req)?;
    let key = ClientKey {
        side,
        branch,
        method: req.method.to_string(),
    };
    let bytes = message::encode(&rsip::SipMessage::Request(req.clone()));
    inner.client.shard(&key).insert(
        key.clone(),
        ClientEntry {
            state: ClientState::Trying,
            request: req,
            bytes: bytes.clone(),
            peer,
            events,
            ack: None,
            cancel_pending: false,
            expires: None,
        },
    );
    inner.ifaces.send(side, peer, bytes);
    tokio::spawn(retransmit_and_timeout(inner.clone(), key.clone()));
    Some(key)
}

/// Timers A/B (INVITE) and E/F (non-INVITE). Over TCP only the timeout applies.
async fn retransmit_and_timeout(inner: Arc<Inner>, key: ClientKey) {
    let timers = inner.timers;
    let invite = key.method == "INVITE";
    let deadline = Instant::now() + timers.timeout();
    let mut interval = timers.t1;
    loop {
        let reliable = {
            let map = inner.client.shard(&key);
            match map.get(&key) {
                Some(e) => e.peer.proto.is_reliable(),
                None => return,
            }
        };
        let wake = if reliable {
            deadline
        } else {
            (Instant::now() + interval).min(deadline)
        };
        tokio::time::sleep_until(wake).await;
        let now = Instant::now();
        let mut map = inner.client.shard(&key);
        let Some(entry) = map.get_mut(&key) else {
            return;
        };
        match entry.state {
            ClientState::Trying | ClientState::Proceeding if now >= deadline => {
                // Timer B fires only while Calling; a ringing INVITE waits for the TU.
                if invite && entry.state == ClientState::Proceeding {
                    return;
                }
                let events = entry.events.clone();
                map.remove(&key);
                drop(map);
                let _ = events.try_send(Box::new(ClientEvent {
                    key,
                    kind: ClientEventKind::Timeout,
                }));
                return;
            }
            ClientState::Trying => {
                let (bytes, peer) = (entry.bytes.clone(), entry.peer);
                drop(map);
                inner.ifaces.send(key.side, peer, bytes);
                interval = if invite {
                    interval * 2
                } else {
                    (interval * 2).min(timers.t2)
                };
            }
            ClientState::Proceeding if !invite => {
                let (bytes, peer) = (entry.bytes.clone(), entry.peer);
                drop(map);
                inner.ifaces.send(key.side, peer, bytes);
                interval = timers.t2;
            }
            _ => return,
        }
    }
}

pub(super) fn on_response(
    inner: &Arc<Inner>,
    side: Side,
    resp: rsip::Response,
) -> Option<rsip::Response> {
    let Some(key) = super::ClientKey::for_response(side, &resp) else {
        return Some(resp);
    };
    let code = resp.status_code.code();
    let now = Instant::now();
    let timers = inner.timers;
    let mut map = inner.client.shard(&key);
    let Some(entry) = map.get_mut(&key) else {
        return Some(resp);
    };
    let invite = key.method == "INVITE";
    let reliable = entry.peer.proto.is_reliable();
    let mut send_now: Vec<Bytes> = Vec::new();
    let mut cancel_now = false;
    let mut expires = None;
    let forward = match (entry.state, code) {
        (ClientState::Trying | ClientState::Proceeding, 100..=199) => {
            if entry.state == ClientState::Trying && entry.cancel_pending {
                cancel_now = true;
            }
            entry.state = ClientState::Proceeding;
            code != 100 || !invite
        }
        (ClientState::Trying | ClientState::Proceeding, 200..=299) if invite => {
            entry.state = ClientState::Accepted;
            expires = Some(now + timers.timeout());
            true
        }
        (ClientState::Accepted, 200..=299) => true,
        (ClientState::Trying | ClientState::Proceeding, 300..) if invite => {
            let ack = message::encode(&rsip::SipMessage::Request(ack_for(&entry.request, &resp)));
            send_now.push(ack.clone());
            entry.ack = Some(ack);
            entry.state = ClientState::Completed;
            // timer D: at least 32 s over UDP, 0 over TCP
            expires = Some(
                now + if reliable {
                    std::time::Duration::ZERO
                } else {
                    timers.timeout().max(std::time::Duration::from_secs(32))
                },
            );
            true
        }
        (ClientState::Completed, 300..) if invite => {
            if let Some(ack) = &entry.ack {
                send_now.push(ack.clone());
            }
            false
        }
        (ClientState::Trying | ClientState::Proceeding, 200..) => {
            entry.state = ClientState::Completed;
            // timer K
            expires = Some(
                now + if reliable {
                    std::time::Duration::ZERO
                } else {
                    timers.t4
                },
            );
            true
        }
        _ => false,
    };
    let (events, peer) = (entry.events.clone(), entry.peer);
    if let Some(at) = expires {
        map.expire_at(&key, at);
    }
    drop(map);
    for bytes in send_now {
        inner.ifaces.send(side, peer, bytes);
    }
    if cancel_now {
        send_cancel(inner, &key);
    }
    if forward
        && events
            .try_send(Box::new(ClientEvent {
                key,
                kind: ClientEventKind::Response(resp),
            }))
            .is_err()
    {
        tracing::debug!("client transaction user gone or busy; response dropped");
    }
    None
}

/// §17.1.1.3: the ACK for a non-2xx final is part of the INVITE transaction.
/// The ACK for a non-2xx final response to `invite` (§17.1.1.3): hop by hop, same branch.
pub(crate) fn ack_for(invite: &rsip::Request, resp: &rsip::Response) -> rsip::Request {
    let mut headers = rsip::Headers::default();
    if let Some(via) = invite.headers.iter().find(|h| matches!(h, Header::Via(_))) {
        headers.push(via.clone());
    }
    for h in invite.headers.iter() {
        match h {
            Header::Route(_) | Header::From(_) | Header::CallId(_) => headers.push(h.clone()),
            _ => {}
        }
    }
    if let Some(to) = resp.headers.iter().find(|h| matches!(h, Header::To(_))) {
        headers.push(to.clone());
    }
    let seq = message::cseq(invite).map(|(s, _)| s).unwrap_or(1);
    headers.push(Header::CSeq(rsip::headers::CSeq::new(format!("{seq} ACK"))));
    headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
    rsip::Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// §9.1: a CANCEL copies the INVITE's Request-URI, Call-ID, From, To, CSeq number, Route and
/// top Via (same branch).
/// The CANCEL of `invite` (§9.1): its Request-URI, top Via, Route, From, To, Call-ID.
pub(crate) fn cancel_for(invite: &rsip::Request) -> rsip::Request {
    let mut headers = rsip::Headers::default();
    if let Some(via) = invite.headers.iter().find(|h| matches!(h, Header::Via(_))) {
        headers.push(via.clone());
    }
    for h in invite.headers.iter() {
        match h {
            Header::Route(_) | Header::From(_) | Header::To(_) | Header::CallId(_) => {
                headers.push(h.clone())
            }
            _ => {}
        }
    }
    let seq = message::cseq(invite).map(|(s, _)| s).unwrap_or(1);
    headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
        "{seq} CANCEL"
    ))));
    headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
    rsip::Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

pub(super) fn cancel(inner: &Arc<Inner>, invite: &ClientKey) {
    let send = {
        let mut map = inner.client.shard(invite);
        match map.get_mut(invite) {
            Some(e) if e.state == ClientState::Trying => {
                e.cancel_pending = true;
                false
            }
            Some(e) => e.state == ClientState::Proceeding,
            None => false,
        }
    };
    if send {
        send_cancel(inner, invite);
    }
}

fn send_cancel(inner: &Arc<Inner>, invite: &ClientKey) {
    let (req, peer, events) = {
        let mut map = inner.client.shard(invite);
        let Some(e) = map.get(invite) else { return };
        let cancel = (cancel_for(&e.request), e.peer, e.events.clone());
        // §9.1: without a final response 64·T1 after the CANCEL, the INVITE transaction is
        // destroyed (a final response arriving meanwhile sets its own expiry). Timer B does not
        // run in Proceeding, so without this a far end that never answers would pin the entry.
        map.expire_at(invite, Instant::now() + inner.timers.timeout());
        cancel
    };
    send_request(inner, invite.side, peer, req, events);
}

/// The connection to `peer` failed before the requests waiting for it left: their transactions
/// (still Trying: nothing came back) end now with `TransportFailed` instead of at timer B/F.
pub(super) fn transport_failed(inner: &Arc<Inner>, side: Side, peer: Peer, why: &str) {
    let failed = inner
        .client
        .remove_where(|k, e| k.side == side && e.peer == peer && e.state == ClientState::Trying);
    for (key, entry) in failed {
        let _ = entry.events.try_send(Box::new(ClientEvent {
            key,
            kind: ClientEventKind::TransportFailed(why.to_string()),
        }));
    }
}
