//! Ports free on loopback, never two alike in one process, and the ports of one test.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Mutex, OnceLock};

use super::{CARRIER_IP, INSIDE_IP, OUTSIDE_IP, PBX_IP};

/// Ports handed out in this process: the kernel may give a just-released port to the next
/// `bind(0)`, and two tests must never share one.
fn handed_out() -> &'static Mutex<HashSet<(IpAddr, u16)>> {
    static PORTS: OnceLock<Mutex<HashSet<(IpAddr, u16)>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A UDP address free on `ip`, for a SIPp instance's `-i`/`-p`.
pub fn local(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::new(ip.into(), free_port(ip, false))
}

/// A UDP address free on the PBX's host.
pub fn pbx_local() -> SocketAddr {
    local(PBX_IP)
}

/// A port free on `ip` for UDP (and TCP too when `tcp`), never handed out before in this process.
pub fn free_port(ip: Ipv4Addr, tcp: bool) -> u16 {
    for _ in 0..200 {
        let udp = UdpSocket::bind((ip, 0)).expect("bind a UDP socket on loopback");
        let port = udp.local_addr().expect("local addr").port();
        if tcp && TcpListener::bind((ip, port)).is_err() {
            continue;
        }
        let mut used = handed_out().lock().unwrap_or_else(|e| e.into_inner());
        if used.insert((IpAddr::V4(ip), port)) {
            return port;
        }
    }
    panic!("no free port on {ip} after 200 tries");
}

/// The ports of one test.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    /// Gateway inside interface (UDP+TCP), where the PBX sends.
    pub inside: SocketAddr,
    /// Gateway outside interface (UDP+TCP), where the carrier sends.
    pub outside: SocketAddr,
    /// The carrier (SIPp UAS for outbound calls): the trunk's `carrier`.
    pub carrier: SocketAddr,
    /// The PBX (SIPp UAS for inbound calls): the trunk's `inbound_to`.
    pub pbx_uas: SocketAddr,
}

impl Addrs {
    pub fn pick() -> Addrs {
        Addrs {
            inside: SocketAddr::new(INSIDE_IP.into(), free_port(INSIDE_IP, true)),
            outside: SocketAddr::new(OUTSIDE_IP.into(), free_port(OUTSIDE_IP, true)),
            carrier: SocketAddr::new(CARRIER_IP.into(), free_port(CARRIER_IP, false)),
            pbx_uas: SocketAddr::new(PBX_IP.into(), free_port(PBX_IP, false)),
        }
    }
}
