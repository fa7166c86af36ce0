//! RTP/RTCP port pairs from `[media] port_range`: an even port for RTP, the next one for RTCP,
//! both bound when handed out so that a pair in hand is a pair that works.
//!
//! One pool of port numbers serves every address (inside and outside may be the same address,
//! and usually are in tests); a pair is bound on the address asked for. Free pairs are handed out
//! round-robin: a pair just released is reused last, so late packets of an ended call do not
//! land in a new one. The pool's mutex is taken only to allocate and release, never per packet.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::sdp::Anchor;
use super::MediaError;

/// Hands out bound RTP/RTCP pairs. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    range: [u16; 2],
    /// Even RTP ports not handed out, oldest released first.
    free: Mutex<VecDeque<u16>>,
    capacity: usize,
    in_use: AtomicUsize,
}

impl PortAllocator {
    /// Every even port `p` with `p` and `p + 1` inside the inclusive range (port 0 excluded).
    pub fn new(range: [u16; 2]) -> Result<PortAllocator, MediaError> {
        let [start, end] = range;
        let low = start.max(2);
        let first = low.saturating_add(low % 2);
        let free: VecDeque<u16> = (first..end).step_by(2).collect();
        if free.is_empty() {
            return Err(MediaError::EmptyRange { start, end });
        }
        Ok(PortAllocator {
            pool: Arc::new(Pool {
                range,
                capacity: free.len(),
                free: Mutex::new(free),
                in_use: AtomicUsize::new(0),
            }),
        })
    }

    pub fn from_config(config: &crate::config::MediaConfig) -> Result<PortAllocator, MediaError> {
        PortAllocator::new(config.port_range)
    }

    /// Bind the next free pair on `ip`. Ports the OS refuses (taken by another process) are
    /// skipped and stay in the pool for later. Fails when no pair can be had: the call is then
    /// refused (503).
    pub fn allocate(&self, ip: IpAddr) -> Result<PortPair, MediaError> {
        // Each free pair is tried at most once per call: bounded however busy the host is.
        let attempts = self.pool.free.lock().len();
        for _ in 0..attempts {
            let Some(port) = self.pool.free.lock().pop_front() else {
                break;
            };
            // Bind outside the lock: syscalls must not serialize other calls' allocations.
            match bind_pair(ip, port) {
                Ok((rtp, rtcp)) => {
                    self.pool.in_use.fetch_add(1, Ordering::Relaxed);
                    return Ok(PortPair {
                        rtp,
                        rtcp,
                        lease: PortLease {
                            pool: Arc::clone(&self.pool),
                            ip,
                            port,
                        },
                    });
                }
                Err(e) => {
                    self.pool.free.lock().push_back(port);
                    if e.kind() == std::io::ErrorKind::AddrNotAvailable {
                        // Not our address at all: every other port would fail the same way.
                        return Err(MediaError::Bind { ip, source: e });
                    }
                    tracing::debug!(%ip, port, error = %e, "RTP port pair refused by the OS; skipped");
                }
            }
        }
        let [start, end] = self.pool.range;
        tracing::warn!(%ip, start, end, in_use = self.in_use(), "no free RTP port pair");
        Err(MediaError::PortsExhausted { ip, start, end })
    }

    /// Pairs handed out and not yet dropped.
    pub fn in_use(&self) -> usize {
        self.pool.in_use.load(Ordering::Relaxed)
    }

    /// Pairs in the range.
    pub fn capacity(&self) -> usize {
        self.pool.capacity
    }
}

fn bind_pair(ip: IpAddr, port: u16) -> std::io::Result<(UdpSocket, UdpSocket)> {
    let rtp = UdpSocket::bind(SocketAddr::new(ip, port))?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1))?;
    // The relay drives them from tokio, which needs non-blocking sockets.
    rtp.set_nonblocking(true)?;
    rtcp.set_nonblocking(true)?;
    Ok((rtp, rtcp))
}

/// A bound RTP socket (even port) and RTCP socket (port + 1). Dropping it closes both sockets,
/// then returns the ports to the pool, exactly once.
#[derive(Debug)]
pub struct PortPair {
    // Field order matters: fields drop in declaration order, so the sockets are closed before
    // the lease puts the ports back in the pool.
    rtp: UdpSocket,
    rtcp: UdpSocket,
    lease: PortLease,
}

impl PortPair {
    pub fn ip(&self) -> IpAddr {
        self.lease.ip
    }

    pub fn rtp_port(&self) -> u16 {
        self.lease.port
    }

    pub fn rtcp_port(&self) -> u16 {
        self.lease.port + 1
    }

    /// What to put in SDP sent on this pair's leg.
    pub fn anchor(&self) -> Anchor {
        Anchor {
            address: self.ip(),
            rtp_port: self.rtp_port(),
            rtcp_port: self.rtcp_port(),
        }
    }

    /// For the relay, which re-registers the sockets with tokio and must keep the lease alive
    /// (and dropped last) for as long as it holds them.
    pub(crate) fn into_parts(self) -> (UdpSocket, UdpSocket, PortLease) {
        (self.rtp, self.rtcp, self.lease)
    }
}

/// Ownership of one pair's port numbers; returns them to the pool when dropped.
#[derive(Debug)]
pub(crate) struct PortLease {
    pool: Arc<Pool>,
    ip: IpAddr,
    port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.free.lock().push_back(self.port);
        self.pool.in_use.fetch_sub(1, Ordering::Relaxed);
        tracing::trace!(ip = %self.ip, port = self.port, "RTP port pair released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn even_rtp_odd_rtcp_within_range() {
        let ports = PortAllocator::new([30001, 30010]).unwrap();
        // 30002, 30004, 30006, 30008 (30010 has no 30011 in range).
        assert_eq!(ports.capacity(), 4);
        let pair = ports.allocate(LOCAL).unwrap();
        assert_eq!(pair.rtp_port() % 2, 0);
        assert_eq!(pair.rtcp_port(), pair.rtp_port() + 1);
        assert!((30002..=30008).contains(&pair.rtp_port()));
        assert_eq!(pair.ip(), LOCAL);
        assert_eq!(pair.rtp.local_addr().unwrap().port(), pair.rtp_port());
        assert_eq!(pair.rtcp.local_addr().unwrap().port(), pair.rtcp_port());
        let anchor = pair.anchor();
        assert_eq!(
            (anchor.rtp_port, anchor.rtcp_port),
            (pair.rtp_port(), pair.rtcp_port())
        );
    }

    #[test]
    fn empty_ranges_refused() {
        for range in [
            [30021, 30021],
            [30022, 30022],
            [30030, 30020],
            [0, 1],
            [65535, 65535],
        ] {
            assert!(
                matches!(
                    PortAllocator::new(range),
                    Err(MediaError::EmptyRange { .. })
                ),
                "{range:?}"
            );
        }
        assert_eq!(PortAllocator::new([65534, 65535]).unwrap().capacity(), 1);
        assert_eq!(PortAllocator::new([0, 3]).unwrap().capacity(), 1);
    }

    #[test]
    fn exhaustion_then_release_exactly_once() {
        let ports = PortAllocator::new([30040, 30045]).unwrap();
        let mut held = Vec::new();
        while let Ok(pair) = ports.allocate(LOCAL) {
            held.push(pair);
        }
        assert!(held.len() <= 3 && !held.is_empty());
        assert_eq!(ports.in_use(), held.len());
        assert!(matches!(
            ports.allocate(LOCAL),
            Err(MediaError::PortsExhausted {
                start: 30040,
                end: 30045,
                ..
            })
        ));
        let freed = held.pop().unwrap().rtp_port();
        assert_eq!(ports.in_use(), held.len());
        // The released pair is free again (sockets closed before the port went back).
        let again = ports.allocate(LOCAL).unwrap();
        assert_eq!(again.rtp_port(), freed);
        drop(again);
        drop(held);
        assert_eq!(ports.in_use(), 0);
        assert_eq!(
            ports.pool.free.lock().len(),
            ports.capacity(),
            "each port back once"
        );
    }

    #[test]
    fn ports_taken_by_others_are_skipped() {
        let squatter = UdpSocket::bind((LOCAL, 30061)).unwrap(); // RTCP port of the first pair
        let ports = PortAllocator::new([30060, 30063]).unwrap();
        let pair = ports.allocate(LOCAL).unwrap();
        assert_eq!(pair.rtp_port(), 30062);
        assert!(matches!(
            ports.allocate(LOCAL),
            Err(MediaError::PortsExhausted { .. })
        ));
        drop(squatter);
        assert_eq!(ports.allocate(LOCAL).unwrap().rtp_port(), 30060);
    }

    #[test]
    fn round_robin_reuses_released_ports_last() {
        let ports = PortAllocator::new([30080, 30089]).unwrap();
        let first = ports.allocate(LOCAL).unwrap();
        let port = first.rtp_port();
        drop(first);
        let next = ports.allocate(LOCAL).unwrap();
        assert_ne!(next.rtp_port(), port);
    }

    #[test]
    fn foreign_address_fails_fast() {
        let ports = PortAllocator::new([30100, 30999]).unwrap();
        let err = ports.allocate("192.0.2.77".parse().unwrap()).unwrap_err();
        assert!(matches!(err, MediaError::Bind { .. }), "{err}");
        assert_eq!(ports.pool.free.lock().len(), ports.capacity());
    }

    #[test]
    fn many_cycles_keep_counts_exact() {
        let ports = PortAllocator::new([30200, 30219]).unwrap();
        for _ in 0..50 {
            let a = ports.allocate(LOCAL).unwrap();
            let b = ports.allocate(LOCAL).unwrap();
            assert_eq!(ports.in_use(), 2);
            assert_ne!(a.rtp_port(), b.rtp_port());
        }
        assert_eq!(ports.in_use(), 0);
        assert_eq!(ports.pool.free.lock().len(), 10);
    }
}
