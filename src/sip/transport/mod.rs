//! SIP sockets: one `Interface` per side (inside faces the PBXs, outside the carriers), each on
//! UDP and TCP at the same address, and on TLS at an address of its own when configured.
//! Sending never awaits: UDP uses `try_send_to` (SIP retransmissions cover a full socket
//! buffer) and TCP and TLS hand bytes to a per-connection writer through a bounded queue.

mod stream;
mod tcp;
pub mod tls;
mod udp;

pub use tls::{TlsClientSpec, TlsFileError};

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use crate::model::TraceDirection;
use crate::shutdown::Shutdown;
use crate::sip::frontend::{Limits, Parsed};
use crate::sip::stats::{Flow, SipStats};
use crate::sip::trace::{Crossed, SipTraces};

/// The side an interface faces; defined with the call's vocabulary (`model`), where the
/// recorder and the CDR use it too.
pub use crate::model::Side;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Udp,
    Tcp,
    Tls,
}

impl Proto {
    pub fn via_name(&self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
        }
    }

    pub fn is_reliable(&self) -> bool {
        matches!(self, Proto::Tcp | Proto::Tls)
    }
}

/// A remote SIP peer as seen by the transport: where a message came from, or where to send one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub addr: SocketAddr,
    pub proto: Proto,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.proto.via_name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind {side} {proto} on {addr}: {source}")]
    Bind {
        side: Side,
        proto: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Receives what the sockets read: every framed message of one side, parsed or refused.
pub trait Handler: Send + Sync + 'static {
    /// Whether a TCP connection from this address may be accepted at all.
    fn accept_peer(&self, side: Side, addr: SocketAddr) -> bool;
    /// Before a message is parsed: false drops it unread (a flooding source). `request` is
    /// false for responses and true for anything else (garbage counts as a request).
    fn admit(&self, side: Side, addr: SocketAddr, request: bool) -> bool;
    /// One framed message, with its bytes as they were read (`raw`) and how long it waited in
    /// the kernel's queue before it was read (`queued`; zero over TCP). Called on the socket's
    /// reader task; must not block.
    fn on_message(&self, side: Side, peer: Peer, parsed: Parsed, raw: &[u8], queued: Duration);
    /// A UDP datagram before it is parsed, with how long it waited in the kernel's queue:
    /// true when the handler has dealt with it already (overload control answers new INVITEs
    /// it refuses from the raw bytes), false to parse it and pass it to `on_message`.
    fn screen(&self, _side: Side, _peer: Peer, _raw: &[u8], _queued: Duration) -> bool {
        false
    }
    /// How to verify a TLS peer we connect to (a carrier of a `carrier_transport = "tls"`
    /// trunk); None: no TLS connection is opened to `addr`.
    fn tls_client(&self, _side: Side, _addr: SocketAddr) -> Option<TlsClientSpec> {
        None
    }
    /// A connection we opened to `peer` failed before any message crossed it (`why`: connect,
    /// certificate or handshake): what was queued for it is lost.
    fn on_connect_failed(&self, _side: Side, _peer: Peer, _why: &str) {}
}

/// Whether raw bytes are a response (`SIP/2.0 ` status line) rather than a request; only the
/// first bytes are looked at.
pub fn looks_like_response(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..8].eq_ignore_ascii_case(b"SIP/2.0 ")
}

/// A keepalive (RFC 5626 CRLF ping) or empty datagram: nothing to count or parse.
pub fn is_keepalive(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == b'\r' || *b == b'\n')
}

/// Largest number of TCP and TLS connections (handshakes under way included) per interface;
/// more are refused (each costs two tasks).
pub const MAX_TCP_CONNECTIONS: usize = 1024;

pub struct Interface {
    side: Side,
    local: SocketAddr,
    udp: Arc<UdpSocket>,
    /// TCP and TLS connections by peer, whoever opened them: each carries both directions.
    conns: Mutex<HashMap<Peer, mpsc::Sender<Bytes>>>,
    /// TLS handshakes under way (they count against `MAX_TCP_CONNECTIONS`).
    handshaking: AtomicUsize,
    /// The TLS listener (`[sip] inside_tls` / `outside_tls`): its address, and the listener
    /// and acceptor until `start` takes them.
    tls_local: OnceLock<SocketAddr>,
    tls_listener: Mutex<Option<(TcpListener, tokio_rustls::TlsAcceptor)>>,
    limits: Limits,
    /// Responses sent and received, counted here (shared by both interfaces).
    stats: Arc<SipStats>,
    /// Set once by `start`; connections we open ourselves need them for their reader.
    handler: OnceLock<Arc<dyn Handler>>,
    shutdown: OnceLock<Shutdown>,
    /// Calls' SIP traces (`[recording] sip_trace`): every message sent is offered to them.
    traces: OnceLock<Arc<SipTraces>>,
}

impl Interface {
    /// Bind UDP and TCP on `addr` (port 0 picks a free port, the same one for both). The
    /// responses that cross it are counted in `stats`.
    pub async fn bind(
        side: Side,
        addr: SocketAddr,
        limits: Limits,
        stats: Arc<SipStats>,
    ) -> Result<(Arc<Interface>, TcpListener), TransportError> {
        // Port 0: the kernel picks a free UDP port, which TCP may hold already (an outgoing
        // connection's ephemeral port): pick again rather than fail.
        let tries = if addr.port() == 0 { 20 } else { 1 };
        let mut attempt = 0;
        let (udp, local, listener) = loop {
            attempt += 1;
            let udp = udp::bind(addr).map_err(|source| TransportError::Bind {
                side,
                proto: "UDP",
                addr,
                source,
            })?;
            let local = udp.local_addr().map_err(|source| TransportError::Bind {
                side,
                proto: "UDP",
                addr,
                source,
            })?;
            match TcpListener::bind(local).await {
                Ok(listener) => break (udp, local, listener),
                Err(e) if attempt < tries && e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(source) => {
                    return Err(TransportError::Bind {
                        side,
                        proto: "TCP",
                        addr: local,
                        source,
                    })
                }
            }
        };
        let iface = Arc::new(Interface {
            side,
            local,
            udp: Arc::new(udp),
            conns: Mutex::new(HashMap::new()),
            handshaking: AtomicUsize::new(0),
            tls_local: OnceLock::new(),
            tls_listener: Mutex::new(None),
            limits,
            stats,
            handler: OnceLock::new(),
            shutdown: OnceLock::new(),
            traces: OnceLock::new(),
        });
        Ok((iface, listener))
    }

    /// Start the reader tasks; they stop when `shutdown` fires.
    pub fn start(
        self: &Arc<Self>,
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        shutdown: Shutdown,
    ) {
        let _ = self.handler.set(handler.clone());
        let _ = self.shutdown.set(shutdown.clone());
        tokio::spawn(udp::recv_loop(
            self.clone(),
            handler.clone(),
            shutdown.clone(),
        ));
        if let Some((tls_listener, acceptor)) = self.tls_listener.lock().take() {
            tokio::spawn(tls::accept_loop(
                self.clone(),
                tls_listener,
                acceptor,
                handler.clone(),
                shutdown.clone(),
            ));
        }
        tokio::spawn(tcp::accept_loop(self.clone(), listener, handler, shutdown));
    }

    /// Listen for SIP over TLS on `addr` (port 0: any free port), served with `acceptor` from
    /// `start` on. Once; returns the bound address.
    pub async fn bind_tls(
        &self,
        addr: SocketAddr,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Result<SocketAddr, TransportError> {
        let bind_error = |source| TransportError::Bind {
            side: self.side,
            proto: "TLS",
            addr,
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let _ = self.tls_local.set(local);
        *self.tls_listener.lock() = Some((listener, acceptor));
        Ok(local)
    }

    /// The TLS listener's address, when there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_local.get().copied()
    }

    /// Our address for a leg over `proto`: the TLS listener's for TLS (the interface's own when
    /// none listens: the peer then reaches us over the connection we opened), the interface's
    /// for UDP and TCP.
    pub fn addr_for(&self, proto: Proto) -> SocketAddr {
        match proto {
            Proto::Tls => self.tls_addr().unwrap_or(self.local),
            Proto::Udp | Proto::Tcp => self.local,
        }
    }

    fn at_connection_limit(&self) -> bool {
        self.conns.lock().len() + self.handshaking.load(Ordering::Relaxed) >= MAX_TCP_CONNECTIONS
    }

    /// Offer every message sent from now on to the calls' SIP traces.
    pub fn trace_with(&self, traces: Arc<SipTraces>) {
        let _ = self.traces.set(traces);
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Send one encoded message. Never waits; a message that cannot be queued is dropped and
    /// logged (the transaction layer's retransmissions and timers deal with loss).
    pub fn send(self: &Arc<Self>, peer: Peer, bytes: Bytes) {
        self.stats.count_sent(self.side, &bytes);
        if let Some(traces) = self.traces.get() {
            traces.record(Crossed {
                side: self.side,
                direction: TraceDirection::Out,
                local: self.addr_for(peer.proto),
                peer,
                bytes: &bytes,
            });
        }
        match peer.proto {
            Proto::Udp => {
                if let Err(e) = self.udp.try_send_to(&bytes, peer.addr) {
                    tracing::warn!(side = %self.side, peer = %peer, error = %e, "udp send failed");
                }
            }
            Proto::Tcp | Proto::Tls => self.send_stream(peer, bytes),
        }
    }

    /// Queue bytes for a TCP or TLS peer, opening a connection when there is none.
    fn send_stream(self: &Arc<Self>, peer: Peer, bytes: Bytes) {
        let mut conns = self.conns.lock();
        if let Some(tx) = conns.get(&peer) {
            if tx.try_send(bytes).is_err() {
                tracing::warn!(side = %self.side, %peer, "write queue full, message dropped");
            }
            return;
        }
        if conns.len() + self.handshaking.load(Ordering::Relaxed) >= MAX_TCP_CONNECTIONS {
            tracing::warn!(side = %self.side, %peer, "connection limit reached");
            return;
        }
        let (tx, rx) = mpsc::channel(stream::WRITE_QUEUE);
        let _ = tx.try_send(bytes);
        conns.insert(peer, tx.clone());
        drop(conns);
        match peer.proto {
            Proto::Tls => {
                tokio::spawn(tls::connect_and_serve(self.clone(), peer.addr, tx, rx));
            }
            _ => {
                tokio::spawn(tcp::connect_and_serve(self.clone(), peer.addr, tx, rx));
            }
        }
    }
}

impl Interface {
    /// A framed message read from a socket, on its way to the handler: responses are counted.
    fn received(&self, parsed: &Parsed) {
        if let Parsed::Message(rsip::SipMessage::Response(r)) = parsed {
            self.stats
                .count_response(self.side, Flow::Received, r.status_code.code());
        }
    }
}

/// Both interfaces, for code that sends on either side.
pub struct Interfaces {
    pub inside: Arc<Interface>,
    pub outside: Arc<Interface>,
}

impl Interfaces {
    pub fn get(&self, side: Side) -> &Arc<Interface> {
        match side {
            Side::Inside => &self.inside,
            Side::Outside => &self.outside,
        }
    }

    pub fn send(&self, side: Side, peer: Peer, bytes: Bytes) {
        self.get(side).send(peer, bytes)
    }
}

#[cfg(test)]
mod stream_tests;
