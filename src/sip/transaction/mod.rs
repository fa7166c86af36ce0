//! The RFC 3261 §17 transaction layer: server and client, INVITE and non-INVITE, with the
//! retransmission and timeout timers A–K over UDP, RFC 6026's Accepted state for 2xx, and
//! CANCEL. State lives in two tables (`table.rs`: sharded by branch, each shard with a heap of
//! expiries); a task runs only while a transaction has timers to serve (A/B, E/F, G), and a
//! sweeper expires what is left (timers D, H, I, J, K and Accepted), touching only what is due.

mod client;
mod key;
mod server;
mod table;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) use client::{ack_for, cancel_for};
pub use client::{ClientEvent, ClientEventKind};
pub use key::{ClientKey, ServerKey};
pub use server::ServerTx;

use crate::shutdown::Shutdown;
use crate::sip::transport::{Interfaces, Peer, Side};

/// RFC 3261 timer base values.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Timers {
    pub fn with_t1(t1: Duration) -> Timers {
        Timers {
            t1,
            t2: Duration::from_secs(4).max(t1),
            t4: Duration::from_secs(5).max(t1),
        }
    }

    /// Timers B, F, H and the Accepted state: 64·T1.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// What the layer made of an incoming request.
#[derive(Debug)]
pub enum Received {
    /// A new server transaction for the transaction user (the B2BUA).
    New(ServerTx),
    /// A new CANCEL transaction; `invite_pending` says whether the INVITE it names still waits
    /// for a final response.
    Cancel {
        cancel: ServerTx,
        invite_pending: bool,
    },
    /// An ACK that matched no transaction: the ACK for a 2xx, which belongs to the dialog.
    AckForDialog(rsip::Request),
    /// A retransmission, answered (or absorbed) here.
    Absorbed,
    /// No transaction key can be derived (no usable Via or CSeq).
    Unmatchable,
}

pub(crate) struct Inner {
    timers: Timers,
    ifaces: Arc<Interfaces>,
    /// `[sip] server_header`: the `Server` value on our responses and `User-Agent` on our
    /// requests; none by default (a product name tells a scanner what it talks to).
    software: Option<String>,
    server: table::Table<ServerKey, server::ServerEntry>,
    client: table::Table<ClientKey, client::ClientEntry>,
}

impl Inner {
    /// `Server` on a response, `User-Agent` on a request, when `[sip] server_header` sets one
    /// and the message has none (put before Content-Length, as the builders do).
    fn name_software(&self, msg: &mut rsip::SipMessage) {
        use rsip::headers::UntypedHeader;
        let Some(name) = &self.software else {
            return;
        };
        let (headers, header) = match msg {
            rsip::SipMessage::Response(r) => (
                &mut r.headers,
                rsip::Header::Server(rsip::headers::Server::new(name.clone())),
            ),
            rsip::SipMessage::Request(r) => (
                &mut r.headers,
                rsip::Header::UserAgent(rsip::headers::UserAgent::new(name.clone())),
            ),
        };
        let named = headers
            .iter()
            .any(|h| matches!(h, rsip::Header::Server(_) | rsip::Header::UserAgent(_)));
        if named {
            return;
        }
        let mut all: Vec<rsip::Header> = std::mem::take(headers).into_iter().collect();
        let at = all
            .iter()
            .position(|h| matches!(h, rsip::Header::ContentLength(_)))
            .unwrap_or(all.len());
        all.insert(at, header);
        *headers = all.into();
    }
}

/// Cheap to clone; all clones share the same transaction tables.
#[derive(Clone)]
pub struct TransactionLayer {
    inner: Arc<Inner>,
}

impl TransactionLayer {
    pub fn new(
        timers: Timers,
        ifaces: Arc<Interfaces>,
        software: Option<String>,
    ) -> TransactionLayer {
        TransactionLayer {
            inner: Arc::new(Inner {
                timers,
                ifaces,
                software,
                server: table::Table::new(),
                client: table::Table::new(),
            }),
        }
    }

    pub fn timers(&self) -> Timers {
        self.inner.timers
    }

    pub fn interfaces(&self) -> &Arc<Interfaces> {
        &self.inner.ifaces
    }

    /// `[sip] server_header`: the name responses built outside this layer carry too.
    pub fn software(&self) -> Option<&str> {
        self.inner.software.as_deref()
    }

    /// Expire finished transactions until shutdown.
    pub fn spawn_sweeper(&self, mut shutdown: Shutdown) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => inner.sweep(Instant::now()),
                    _ = shutdown.recv() => return,
                }
            }
        });
    }

    /// Expire the transactions whose timer is due at `now`: the sweeper's step, public for
    /// `bench/transactions.rs`, which gives it instants of its own.
    pub fn expire_due(&self, now: Instant) {
        self.inner.sweep(now)
    }

    /// Match an incoming request against the server transactions.
    pub fn on_request(&self, side: Side, peer: Peer, req: rsip::Request) -> Received {
        server::on_request(&self.inner, side, peer, req)
    }

    /// Match an incoming response against the client transactions. A response that matches
    /// none (a 2xx retransmitted after the Accepted state, or a stray) is handed back.
    pub fn on_response(&self, side: Side, resp: rsip::Response) -> Option<rsip::Response> {
        client::on_response(&self.inner, side, resp)
    }

    /// Start a client transaction; its responses, and a timeout, arrive on `events`.
    pub fn send_request(
        &self,
        side: Side,
        peer: Peer,
        req: rsip::Request,
        events: tokio::sync::mpsc::Sender<Box<ClientEvent>>,
    ) -> Option<ClientKey> {
        let mut msg = rsip::SipMessage::Request(req);
        self.inner.name_software(&mut msg);
        let rsip::SipMessage::Request(req) = msg else {
            return None;
        };
        client::send_request(&self.inner, side, peer, req, events)
    }

    /// A connection we opened to `peer` failed (TLS certificate or handshake, connect): the
    /// client transactions waiting on it get `TransportFailed` at once.
    pub fn transport_failed(&self, side: Side, peer: Peer, why: &str) {
        client::transport_failed(&self.inner, side, peer, why)
    }

    /// Cancel a pending INVITE client transaction (§9.1): sent at once when a provisional
    /// response has arrived, otherwise as soon as one does. Responses to the CANCEL arrive on
    /// the INVITE's event channel.
    pub fn cancel(&self, invite: &ClientKey) {
        client::cancel(&self.inner, invite)
    }

    /// Send outside any transaction: ACK for 2xx and 2xx retransmissions belong to the dialog.
    pub fn send_stateless(&self, side: Side, peer: Peer, mut msg: rsip::SipMessage) {
        self.inner.name_software(&mut msg);
        let bytes = crate::sip::message::encode(&msg);
        self.inner.ifaces.send(side, peer, bytes);
    }

    /// Live entries (server, client), for tests and metrics.
    pub fn sizes(&self) -> (usize, usize) {
        (self.inner.server.len(), self.inner.client.len())
    }
}

impl Inner {
    fn sweep(&self, now: Instant) {
        self.server.expire(now);
        self.client.expire(now);
    }
}

impl std::fmt::Debug for TransactionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionLayer").finish_non_exhaustive()
    }
}
