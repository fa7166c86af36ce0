//! SIP responses by interface side, direction and class, counted by the transport as they
//! cross the sockets (retransmissions included: what the wire carried; a sent one when it is
//! handed to the socket or the TCP writer). Relaxed atomics only, no lock.

use std::sync::atomic::{AtomicU64, Ordering};

use super::transport::Side;

/// Which way a message crossed an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Sent,
    Received,
}

impl Flow {
    pub const BOTH: [Flow; 2] = [Flow::Sent, Flow::Received];

    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Sent => "sent",
            Flow::Received => "received",
        }
    }

    fn index(self) -> usize {
        match self {
            Flow::Sent => 0,
            Flow::Received => 1,
        }
    }
}

/// Response classes 1xx to 6xx.
pub const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

fn side_index(side: Side) -> usize {
    match side {
        Side::Inside => 0,
        Side::Outside => 1,
    }
}

/// Shared (`Arc`) by both interfaces and the metrics handler.
#[derive(Debug, Default)]
pub struct SipStats {
    /// `[side][flow][class - 1]`.
    responses: [[[AtomicU64; 6]; 2]; 2],
}

impl SipStats {
    /// One response with this status crossed `side`'s interface; statuses outside 100–699
    /// are not counted.
    pub fn count_response(&self, side: Side, flow: Flow, status: u16) {
        if let Some(class) = (status / 100).checked_sub(1).filter(|c| *c < 6) {
            self.responses[side_index(side)][flow.index()][usize::from(class)]
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An encoded message about to be sent: counted when it is a response (its status line
    /// is `SIP/2.0 NNN …`).
    pub fn count_sent(&self, side: Side, bytes: &[u8]) {
        if let Some(status) = response_status(bytes) {
            self.count_response(side, Flow::Sent, status);
        }
    }

    /// Responses of class `class` (1 to 6) so far.
    pub fn responses(&self, side: Side, flow: Flow, class: usize) -> u64 {
        class
            .checked_sub(1)
            .and_then(|c| self.responses[side_index(side)][flow.index()].get(c))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// The status code of an encoded response; `None` for a request.
fn response_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"SIP/2.0 ")?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_side_flow_and_class() {
        let s = SipStats::default();
        s.count_sent(Side::Inside, b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n");
        s.count_sent(Side::Inside, b"SIP/2.0 180 Ringing\r\n\r\n");
        s.count_sent(Side::Inside, b"INVITE sip:1@x SIP/2.0\r\n\r\n");
        s.count_sent(Side::Inside, b"SIP/2.0 2x0 Odd\r\n\r\n");
        s.count_response(Side::Outside, Flow::Received, 486);
        s.count_response(Side::Outside, Flow::Received, 603);
        s.count_response(Side::Outside, Flow::Received, 99);
        s.count_response(Side::Outside, Flow::Received, 700);
        assert_eq!(s.responses(Side::Inside, Flow::Sent, 2), 1);
        assert_eq!(s.responses(Side::Inside, Flow::Sent, 1), 1);
        assert_eq!(s.responses(Side::Inside, Flow::Received, 2), 0);
        assert_eq!(s.responses(Side::Outside, Flow::Received, 4), 1);
        assert_eq!(s.responses(Side::Outside, Flow::Received, 6), 1);
        let all: u64 = [Side::Inside, Side::Outside]
            .iter()
            .flat_map(|&side| {
                Flow::BOTH.map(|f| (1..=6).map(|c| s.responses(side, f, c)).sum::<u64>())
            })
            .sum();
        assert_eq!(
            all, 4,
            "a request, a bad status and 99/700 are not responses"
        );
        assert_eq!(s.responses(Side::Inside, Flow::Sent, 0), 0);
        assert_eq!(s.responses(Side::Inside, Flow::Sent, 7), 0);
    }
}
