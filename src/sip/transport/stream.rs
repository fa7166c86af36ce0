//! One SIP connection over a byte stream — plain TCP, or TLS once its handshake is done (the
//! same framing, the same handler path): a reader task that frames what arrives and a writer
//! task fed through a bounded queue. The connection is kept by its peer (address and transport)
//! and used both ways: responses and requests from the peer on a connection we opened are
//! read like those on one it opened (RFC 5923's alias, without the Via parameter's ceremony).
//!
//! Keepalive (RFC 5626 §3.5.1): on a TLS connection we opened (toward a carrier), the writer
//! sends a CRLFCRLF ping every `KEEPALIVE`, so that NAT and firewall state stays, and nothing
//! we send times it out; a peer's ping is answered with a CRLF pong on every connection. A
//! connection still closes after `IDLE_TIMEOUT` with nothing read (a peer that answers pings
//! never gets there) and when a write fails.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Handler, Interface, Peer};
use crate::shutdown::Shutdown;
use crate::sip::frontend::{Parsed, StreamFramer};
use crate::sip::message;

/// Messages queued for one connection's writer before new ones are dropped.
pub(super) const WRITE_QUEUE: usize = 512;
/// Nothing read for this long (or, without keepalive, nothing sent): the connection closes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a connection we opened sends its CRLFCRLF ping.
pub(super) const KEEPALIVE: Duration = Duration::from_secs(30);

const PING: &[u8] = b"\r\n\r\n";
const PONG: &[u8] = b"\r\n";

/// Whether we keep a connection alive with pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Liveness {
    /// Closed after `IDLE_TIMEOUT` with nothing sent or nothing read.
    Idle,
    /// We ping every `KEEPALIVE` (a connection we opened to a carrier over TLS).
    Ping,
}

/// Serve an established stream: its reader and writer tasks. `tx` is the sender kept in the
/// interface's connection map for `peer`; `rx` its receiving end.
pub(super) fn serve<S>(
    iface: Arc<Interface>,
    peer: Peer,
    stream: S,
    tx: mpsc::Sender<Bytes>,
    rx: mpsc::Receiver<Bytes>,
    liveness: Liveness,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, write) = tokio::io::split(stream);
    if let (Some(handler), Some(shutdown)) = (iface.handler.get(), iface.shutdown.get()) {
        tokio::spawn(reader(
            iface.clone(),
            peer,
            read,
            tx.clone(),
            handler.clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(writer(iface, peer, write, tx, rx, liveness));
}

/// Forget the connection to `peer` if it is still the one `tx` feeds (a newer connection to
/// the same peer, opened after this one died, stays).
pub(super) fn forget(iface: &Interface, peer: Peer, tx: &mpsc::Sender<Bytes>) {
    let mut conns = iface.conns.lock();
    if conns.get(&peer).is_some_and(|c| c.same_channel(tx)) {
        conns.remove(&peer);
    }
}

async fn writer<W>(
    iface: Arc<Interface>,
    peer: Peer,
    mut write: W,
    tx: mpsc::Sender<Bytes>,
    mut rx: mpsc::Receiver<Bytes>,
    liveness: Liveness,
) where
    W: AsyncWrite + Unpin,
{
    // The writer holds no sender of its own: when the map and the reader drop theirs, `recv`
    // ends and so does the connection.
    let this = tx.downgrade();
    drop(tx);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let bytes = if liveness == Liveness::Ping {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(b) => b,
                    None => break,
                },
                _ = ping.tick() => Bytes::from_static(PING),
            }
        } else {
            match tokio::time::timeout(IDLE_TIMEOUT, rx.recv()).await {
                Ok(Some(b)) => b,
                Ok(None) | Err(_) => break,
            }
        };
        if let Err(e) = write.write_all(&bytes).await {
            tracing::debug!(side = %iface.side, %peer, error = %e, "stream write failed");
            break;
        }
    }
    if let Some(tx) = this.upgrade() {
        forget(&iface, peer, &tx);
    }
    let _ = write.shutdown().await;
}

async fn reader<R>(
    iface: Arc<Interface>,
    peer: Peer,
    mut read: R,
    tx: mpsc::Sender<Bytes>,
    handler: Arc<dyn Handler>,
    mut shutdown: Shutdown,
) where
    R: AsyncRead + Unpin,
{
    let addr: SocketAddr = peer.addr;
    let mut framer = StreamFramer::new(iface.limits);
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        let n = tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, read.read(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => n,
            },
            _ = shutdown.recv() => break,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_with_raw() {
                Ok(Some((parsed, raw))) => {
                    let request = !matches!(parsed, Parsed::Message(rsip::SipMessage::Response(_)));
                    if !handler.admit(iface.side, addr, request) {
                        tracing::debug!(side = %iface.side, %peer, "closing the connection of a banned source");
                        break 'conn;
                    }
                    iface.received(&parsed);
                    // No per-message receive time on a stream: flow control pushes back on the
                    // sender instead of queueing its requests here.
                    handler.on_message(iface.side, peer, parsed, &raw, Duration::ZERO)
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(side = %iface.side, %peer, error = %e, "closing connection on framing error");
                    if let Some(rejection) = e.rejection() {
                        if let Some(resp) = &rejection.response {
                            let bytes = message::encode(&rsip::SipMessage::Response(resp.clone()));
                            iface.send(peer, bytes);
                        }
                    }
                    break 'conn;
                }
            }
        }
        // RFC 5626 §4.4.1: a CRLFCRLF ping gets a CRLF pong (one per read is enough).
        if framer.take_pings() > 0 && tx.try_send(Bytes::from_static(PONG)).is_err() {
            tracing::debug!(side = %iface.side, %peer, "write queue full: pong not sent");
        }
    }
    forget(&iface, peer, &tx);
}

/// The next connection `listener` accepts that may be served: from a peer the handler accepts,
/// within the connection limit, Nagle off. `None` once `shutdown` fires. `what` names the
/// transport in the log.
pub(super) async fn accept_admitted(
    iface: &Interface,
    listener: &TcpListener,
    handler: &dyn Handler,
    shutdown: &mut Shutdown,
    what: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let (tcp, from) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(side = %iface.side, error = %e, transport = what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => return None,
        };
        if !handler.accept_peer(iface.side, from) {
            continue; // dropped before anything is read: an unknown source learns nothing
        }
        if iface.at_connection_limit() {
            tracing::warn!(side = %iface.side, peer = %from, transport = what, "connection limit reached");
            continue;
        }
        let _ = tcp.set_nodelay(true);
        return Some((tcp, from));
    }
}

/// Serve an accepted connection of `peer`, kept by its address for what we send it.
pub(super) fn register_and_serve<S>(iface: Arc<Interface>, peer: Peer, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    iface.conns.lock().insert(peer, tx.clone());
    serve(iface, peer, stream, tx, rx, Liveness::Idle);
}
