//! TCP: connections accepted from peers and opened to them on demand, one reader and one
//! writer task each, framed by the front end's `StreamFramer`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Handler, Interface, Peer, Proto, MAX_TCP_CONNECTIONS};
use crate::shutdown::Shutdown;
use crate::sip::frontend::{Parsed, StreamFramer};
use crate::sip::message;

/// Messages queued for one connection's writer before new ones are dropped.
const WRITE_QUEUE: usize = 512;
/// A connection with no traffic either way for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn accept_loop(
    iface: Arc<Interface>,
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    mut shutdown: Shutdown,
) {
    loop {
        let (stream, from) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(side = %iface.side, error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => return,
        };
        if !handler.accept_peer(iface.side, from) {
            continue; // dropped: an unknown source learns nothing
        }
        if iface.tcp_conns.lock().len() >= MAX_TCP_CONNECTIONS {
            tracing::warn!(side = %iface.side, peer = %from, "tcp connection limit reached");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        iface.tcp_conns.lock().insert(from, tx);
        tokio::spawn(writer(iface.clone(), from, write, rx));
        tokio::spawn(reader(
            iface.clone(),
            from,
            read,
            handler.clone(),
            shutdown.clone(),
        ));
    }
}

/// Queue bytes for a peer, opening a connection when there is none.
pub(super) fn send(iface: &Arc<Interface>, addr: SocketAddr, bytes: Bytes) {
    let mut conns = iface.tcp_conns.lock();
    if let Some(tx) = conns.get(&addr) {
        if tx.try_send(bytes).is_err() {
            tracing::warn!(side = %iface.side, peer = %addr, "tcp write queue full, message dropped");
        }
        return;
    }
    if conns.len() >= MAX_TCP_CONNECTIONS {
        tracing::warn!(side = %iface.side, peer = %addr, "tcp connection limit reached");
        return;
    }
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let _ = tx.try_send(bytes);
    conns.insert(addr, tx);
    drop(conns);
    tokio::spawn(connect_and_write(iface.clone(), addr, rx));
}

async fn connect_and_write(iface: Arc<Interface>, addr: SocketAddr, rx: mpsc::Receiver<Bytes>) {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(side = %iface.side, peer = %addr, error = %e, "tcp connect failed");
            forget(&iface, addr);
            return;
        }
        Err(_) => {
            tracing::warn!(side = %iface.side, peer = %addr, "tcp connect timed out");
            forget(&iface, addr);
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    // Responses and in-dialog requests come back on this connection too.
    if let (Some(handler), Some(shutdown)) = (iface.handler.get(), iface.shutdown.get()) {
        tokio::spawn(reader(
            iface.clone(),
            addr,
            read,
            handler.clone(),
            shutdown.clone(),
        ));
    }
    writer(iface, addr, write, rx).await;
}

fn forget(iface: &Interface, addr: SocketAddr) {
    iface.tcp_conns.lock().remove(&addr);
}

async fn writer(
    iface: Arc<Interface>,
    addr: SocketAddr,
    mut write: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Bytes>,
) {
    while let Ok(Some(bytes)) = tokio::time::timeout(IDLE_TIMEOUT, rx.recv()).await {
        if let Err(e) = write.write_all(&bytes).await {
            tracing::debug!(side = %iface.side, peer = %addr, error = %e, "tcp write failed");
            break;
        }
    }
    forget(&iface, addr);
    let _ = write.shutdown().await;
}

async fn reader(
    iface: Arc<Interface>,
    addr: SocketAddr,
    mut read: OwnedReadHalf,
    handler: Arc<dyn Handler>,
    mut shutdown: Shutdown,
) {
    let peer = Peer {
        addr,
        proto: Proto::Tcp,
    };
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
                        tracing::debug!(side = %iface.side, peer = %addr, "closing tcp connection of a banned source");
                        break 'conn;
                    }
                    iface.received(&parsed);
                    // No per-message receive time on a stream: TCP's flow control pushes back on the
                    // sender instead of queueing its requests here.
                    handler.on_message(iface.side, peer, parsed, &raw, Duration::ZERO)
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(side = %iface.side, peer = %addr, error = %e, "closing tcp connection on framing error");
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
    }
    // Dropping the sender ends the writer, which closes the socket.
    forget(&iface, addr);
}
