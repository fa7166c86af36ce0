//! Where a pump's datagrams leave by: the other leg's socket of the same kind, as the relay
//! engine sends. The pump (`pump::State`) decides what to send and to whom; the engine decides
//! how: the epoll engine sends at once (`sendto`, the socket itself is the egress), the io_uring
//! engine queues a send to be submitted with the others of its round (`uring::Queued`).

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// A way out for datagrams toward one peer socket.
pub(crate) trait Egress {
    /// Sends (or queues) `data` to `dest`; the bytes taken, or why not. A full socket buffer
    /// is an error here, as the network would drop the packet: nothing waits.
    fn send_to(&mut self, data: &[u8], dest: SocketAddr) -> io::Result<usize>;
}

/// The epoll engine's: a plain non-blocking `sendto` on the socket (a std one: tokio's
/// `try_send_to` would refuse until its reactor had seen the socket writable once, dropping the
/// first packets of a fresh session).
impl Egress for &UdpSocket {
    fn send_to(&mut self, data: &[u8], dest: SocketAddr) -> io::Result<usize> {
        UdpSocket::send_to(self, data, dest)
    }
}
