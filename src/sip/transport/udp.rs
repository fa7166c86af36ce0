//! UDP: one socket per interface, large kernel buffers, one datagram = one message.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::{is_keepalive, looks_like_response, Handler, Interface, Peer, Proto};
use crate::shutdown::Shutdown;
use crate::sip::frontend::parse_datagram;

/// Kernel buffers sized for bursts of a few thousand messages.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

pub(super) fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

pub(super) async fn recv_loop(
    iface: Arc<Interface>,
    handler: Arc<dyn Handler>,
    mut shutdown: Shutdown,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (len, from) = tokio::select! {
            r = iface.udp.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => {
                    // ICMP port unreachable surfaces here on some systems; keep reading.
                    tracing::debug!(side = %iface.side, error = %e, "udp recv error");
                    continue;
                }
            },
            _ = shutdown.recv() => return,
        };
        let peer = Peer {
            addr: from,
            proto: Proto::Udp,
        };
        let bytes = &buf[..len];
        if !is_keepalive(bytes) && !handler.admit(iface.side, from, !looks_like_response(bytes)) {
            continue;
        }
        let parsed = parse_datagram(bytes, &iface.limits);
        iface.received(&parsed);
        handler.on_message(iface.side, peer, parsed, bytes);
    }
}
