//! Symmetric latching (RFC 7362 §4.1), guarded against RTP injection.
//!
//! A leg sends to where its peer really sends from, which behind NAT is not what its SDP says.
//! Accepted sources, for one socket of one leg:
//! - the SDP address, always: it latches even over an earlier NAT source, so a stray that got in
//!   first cannot keep the real peer out when the peer is reachable as signalled;
//! - otherwise the first source seen, if it arrives within the first `LATCH_WINDOW` packets since
//!   the SDP address was (re)set;
//! - nothing before any SDP address is known (no one to expect).
//!
//! Everything else is stray: dropped and counted. A new SDP address (re-INVITE to another media
//! server) starts latching over; a hold or declined stream (unspecified address, port 0) only
//! stops sending and keeps the latch, so resuming needs no new latching.

use std::net::SocketAddr;

/// Packets after a (re)set during which a source other than the SDP address may latch.
pub const LATCH_WINDOW: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the latched source.
    Accept,
    /// Accepted, and now the source to send to.
    Latched(SocketAddr),
    /// Dropped.
    Stray,
}

#[derive(Debug, Clone, Default)]
pub struct Latch {
    expected: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    seen: u32,
    suspended: bool,
}

impl Latch {
    pub fn new(remote: Option<SocketAddr>) -> Latch {
        let mut latch = Latch::default();
        latch.set_remote(remote);
        latch
    }

    /// The peer's address from its latest SDP.
    pub fn set_remote(&mut self, remote: Option<SocketAddr>) {
        match remote {
            Some(addr) if !addr.ip().is_unspecified() && addr.port() != 0 => {
                self.suspended = false;
                if self.expected != Some(addr) {
                    self.expected = Some(addr);
                    self.latched = None;
                    self.seen = 0;
                }
            }
            _ => self.suspended = true,
        }
    }

    pub fn on_packet(&mut self, source: SocketAddr) -> Verdict {
        self.seen = self.seen.saturating_add(1);
        if self.latched == Some(source) {
            return Verdict::Accept;
        }
        let expected = match self.expected {
            Some(expected) => expected,
            None => return Verdict::Stray,
        };
        if source == expected || (self.latched.is_none() && self.seen <= LATCH_WINDOW) {
            self.latched = Some(source);
            return Verdict::Latched(source);
        }
        Verdict::Stray
    }

    /// Where to send to this leg's peer: the latched source, else the SDP address; nothing on
    /// hold or before any SDP.
    pub fn destination(&self) -> Option<SocketAddr> {
        if self.suspended {
            None
        } else {
            self.latched.or(self.expected)
        }
    }

    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sdp_address_latches() {
        let mut l = Latch::new(Some(a("10.0.0.1:4000")));
        assert_eq!(l.destination(), Some(a("10.0.0.1:4000")));
        assert_eq!(
            l.on_packet(a("10.0.0.1:4000")),
            Verdict::Latched(a("10.0.0.1:4000"))
        );
        assert_eq!(l.on_packet(a("10.0.0.1:4000")), Verdict::Accept);
        assert_eq!(l.on_packet(a("10.0.0.9:4000")), Verdict::Stray);
        assert_eq!(l.destination(), Some(a("10.0.0.1:4000")));
    }

    #[test]
    fn nat_source_latches_within_window_only() {
        let mut l = Latch::new(Some(a("192.168.1.5:4000")));
        assert_eq!(
            l.on_packet(a("203.0.113.7:61000")),
            Verdict::Latched(a("203.0.113.7:61000"))
        );
        assert_eq!(l.destination(), Some(a("203.0.113.7:61000")));
        // A second source is stray even inside the window.
        assert_eq!(l.on_packet(a("203.0.113.8:61000")), Verdict::Stray);

        // Late first packet (after the window): not latched.
        let mut l = Latch::new(Some(a("192.168.1.5:4000")));
        l.latched = None;
        l.seen = LATCH_WINDOW;
        assert_eq!(l.on_packet(a("203.0.113.7:61000")), Verdict::Stray);
        assert_eq!(l.destination(), Some(a("192.168.1.5:4000")));
    }

    #[test]
    fn sdp_address_wins_over_an_earlier_stray() {
        let mut l = Latch::new(Some(a("10.0.0.1:4000")));
        assert_eq!(
            l.on_packet(a("6.6.6.6:666")),
            Verdict::Latched(a("6.6.6.6:666"))
        );
        assert_eq!(
            l.on_packet(a("10.0.0.1:4000")),
            Verdict::Latched(a("10.0.0.1:4000"))
        );
        assert_eq!(l.on_packet(a("6.6.6.6:666")), Verdict::Stray);
        assert_eq!(l.destination(), Some(a("10.0.0.1:4000")));
    }

    #[test]
    fn nothing_before_sdp() {
        let mut l = Latch::new(None);
        assert_eq!(l.on_packet(a("10.0.0.1:4000")), Verdict::Stray);
        assert_eq!(l.destination(), None);
        l.set_remote(Some(a("10.0.0.1:4000")));
        assert_eq!(
            l.on_packet(a("10.0.0.1:4000")),
            Verdict::Latched(a("10.0.0.1:4000"))
        );
    }

    #[test]
    fn hold_keeps_latch_new_address_relatches() {
        let mut l = Latch::new(Some(a("192.168.1.5:4000")));
        l.on_packet(a("203.0.113.7:61000"));
        // c=0.0.0.0 hold: send nothing, keep the latch, still accept music on hold.
        l.set_remote(Some(a("0.0.0.0:4000")));
        assert_eq!(l.destination(), None);
        assert_eq!(l.on_packet(a("203.0.113.7:61000")), Verdict::Accept);
        // Resume with the same SDP: latched source again.
        l.set_remote(Some(a("192.168.1.5:4000")));
        assert_eq!(l.destination(), Some(a("203.0.113.7:61000")));
        // Declined (port 0), then moved to another media server: latching starts over.
        l.set_remote(Some(a("192.168.1.5:0")));
        assert_eq!(l.destination(), None);
        l.set_remote(Some(a("192.168.1.77:5000")));
        assert_eq!(l.destination(), Some(a("192.168.1.77:5000")));
        assert_eq!(
            l.on_packet(a("203.0.113.7:61000")),
            Verdict::Latched(a("203.0.113.7:61000"))
        );
    }
}
