//! TCP: connections accepted from peers and opened to them on demand, served by `stream`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::stream::{self, Liveness};
use super::{Handler, Interface, Peer, Proto};
use crate::shutdown::Shutdown;

pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn accept_loop(
    iface: Arc<Interface>,
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    mut shutdown: Shutdown,
) {
    while let Some((tcp, from)) =
        stream::accept_admitted(&iface, &listener, handler.as_ref(), &mut shutdown, "tcp").await
    {
        let peer = Peer {
            addr: from,
            proto: Proto::Tcp,
        };
        stream::register_and_serve(iface.clone(), peer, tcp);
    }
}

/// Open a connection to `addr` and serve it; what was queued on `rx` meanwhile goes first.
pub(super) async fn connect_and_serve(
    iface: Arc<Interface>,
    addr: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    rx: mpsc::Receiver<Bytes>,
) {
    let peer = Peer {
        addr,
        proto: Proto::Tcp,
    };
    let Some(tcp) = connect(&iface, peer).await else {
        stream::forget(&iface, peer, &tx);
        return;
    };
    // Responses and in-dialog requests come back on this connection too.
    stream::serve(iface, peer, tcp, tx, rx, Liveness::Idle);
}

/// A TCP connection to `peer` (TCP or TLS before its handshake), or None (logged).
pub(super) async fn connect(iface: &Interface, peer: Peer) -> Option<TcpStream> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer.addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Some(s)
        }
        Ok(Err(e)) => {
            tracing::warn!(side = %iface.side, %peer, error = %e, "connect failed");
            None
        }
        Err(_) => {
            tracing::warn!(side = %iface.side, %peer, "connect timed out");
            None
        }
    }
}
