//! UDP: one socket per interface, large kernel buffers, one datagram = one message, each read
//! with the kernel's receive time (`SO_TIMESTAMPNS`): how long it queued before the gateway
//! read it is what overload control judges by (`b2bua::overload`).

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
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
    // Best effort too: without it every datagram reads as not queued at all.
    if let Err(e) = setsockopt(&socket, sockopt::ReceiveTimestampns, &true) {
        tracing::warn!(%addr, error = %e, "SO_TIMESTAMPNS refused: overload control cannot see the SIP queue");
    }
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

pub(super) async fn recv_loop(
    iface: Arc<Interface>,
    handler: Arc<dyn Handler>,
    mut shutdown: Shutdown,
) {
    let mut buf = vec![0u8; 65_535];
    let mut control = nix::cmsg_space!(TimeSpec);
    loop {
        let read = iface.udp.async_io(Interest::READABLE, || {
            recv_stamped(&iface.udp, &mut buf, &mut control)
        });
        let (len, from, queued) = tokio::select! {
            r = read => match r {
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
        if handler.screen(iface.side, peer, bytes, queued) {
            continue;
        }
        let parsed = parse_datagram(bytes, &iface.limits);
        iface.received(&parsed);
        handler.on_message(iface.side, peer, parsed, bytes, queued);
    }
}

/// One datagram: its length, its source and how long it waited in the socket's queue (zero
/// when the kernel gave no time, or a clock step made it look younger than now).
fn recv_stamped(
    socket: &UdpSocket,
    buf: &mut [u8],
    control: &mut [u8],
) -> io::Result<(usize, SocketAddr, Duration)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(control),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let from = msg.address.as_ref().and_then(socket_addr).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "datagram without an IP source")
    })?;
    let stamp = msg.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
            _ => None,
        })
    });
    Ok((msg.bytes, from, stamp.map_or(Duration::ZERO, queued_since)))
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// Time since the kernel's receive stamp (realtime clock, like `SystemTime`).
fn queued_since(stamp: TimeSpec) -> Duration {
    let (secs, nanos) = (stamp.tv_sec(), stamp.tv_nsec());
    let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
        return Duration::ZERO;
    };
    let received = UNIX_EPOCH + Duration::new(secs, nanos);
    SystemTime::now()
        .duration_since(received)
        .unwrap_or(Duration::ZERO)
}
