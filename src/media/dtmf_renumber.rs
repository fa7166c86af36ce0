//! Sequence numbers the far side sees across a withheld DTMF command (`dtmf_command`): the
//! command's packets are never relayed, so without this the carrier would see a gap in the
//! RTP sequence numbers of the agent's stream — counted as loss there, concealed by its jitter
//! buffer, reported in its RTCP. The inside leg's packets are renumbered instead:
//!
//! - every packet relayed after a withheld one goes out with its sequence number minus the
//!   number of distinct sequence numbers withheld so far (a retransmitted end packet repeats
//!   its number and counts once);
//! - while an event is held (it may begin a command), the packets relayed meanwhile are shifted
//!   down by the held numbers too, as if the held ones were withheld; if the hold ends in a
//!   release, the released packets take the numbers just below the next packet's, in their
//!   order (they go out late anyway: their timestamps are unchanged, a receiver plays an event
//!   by its timestamp), so nothing is numbered twice and nothing is skipped.
//!
//! One stream is followed: the SSRC of the latest held or withheld event (a PBX sends its
//! events on its audio stream's SSRC). Another SSRC passes unchanged; a command keyed on a new
//! SSRC starts afresh (the old stream, should it come back, keeps its numbers: a gap, never a
//! number sent twice). A packet older than the first held one keeps the shift of before the
//! hold. Nothing here allocates per audio packet; the held list grows with held events only.

/// Whether sequence number `a` comes after `b` (RFC 3550 modulo arithmetic).
fn newer(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

#[derive(Debug, Default)]
pub(crate) struct Renumber {
    /// The stream followed, once an event was held or withheld.
    ssrc: Option<u32>,
    /// Distinct sequence numbers withheld for good.
    withheld: u16,
    /// The newest of them (a repeat of it, or anything older, is not counted again).
    last_withheld: Option<u16>,
    /// Distinct sequence numbers of the held packets, in their order of arrival.
    held: Vec<u16>,
    /// The newest sequence number seen on the stream.
    highest: u16,
}

impl Renumber {
    /// Follows `ssrc` from now on (a different stream starts afresh).
    fn follow(&mut self, ssrc: u32, seq: u16) {
        if self.ssrc != Some(ssrc) {
            *self = Renumber {
                ssrc: Some(ssrc),
                highest: seq.wrapping_sub(1),
                ..Renumber::default()
            };
        }
    }

    fn see(&mut self, seq: u16) {
        if newer(seq, self.highest) {
            self.highest = seq;
        }
    }

    /// A packet of `ssrc` held back (it may be a command's).
    pub(crate) fn held(&mut self, ssrc: u32, seq: u16) {
        if self.ssrc != Some(ssrc) && !self.held.is_empty() {
            // Held packets of two streams at once: the old stream's keep their numbers.
            self.held.clear();
        }
        self.follow(ssrc, seq);
        if !self.held.contains(&seq) {
            self.held.push(seq);
        }
        self.see(seq);
    }

    /// A packet of `ssrc` withheld for good (a command's).
    pub(crate) fn withheld(&mut self, ssrc: u32, seq: u16) {
        self.follow(ssrc, seq);
        if self.last_withheld.is_none_or(|last| newer(seq, last)) {
            self.withheld = self.withheld.wrapping_add(1);
            self.last_withheld = Some(seq);
        }
        self.see(seq);
    }

    /// The held packets turned out to be a command's: withheld for good.
    pub(crate) fn commit_held(&mut self) {
        for seq in std::mem::take(&mut self.held) {
            if self.last_withheld.is_none_or(|last| newer(seq, last)) {
                self.last_withheld = Some(seq);
            }
            self.withheld = self.withheld.wrapping_add(1);
        }
    }

    /// The held packets go on after all: each is given the number of its place just below
    /// the next packet's (see the module docs).
    pub(crate) fn release(&mut self, packets: &mut [Vec<u8>]) {
        let held = std::mem::take(&mut self.held);
        let Some(ssrc) = self.ssrc else { return };
        if held.is_empty() {
            return;
        }
        let base = self
            .highest
            .wrapping_sub(self.withheld)
            .wrapping_sub(held.len() as u16)
            .wrapping_add(1);
        for p in packets.iter_mut() {
            if p.len() < 12 || p[8..12] != ssrc.to_be_bytes() {
                continue;
            }
            let seq = u16::from_be_bytes([p[2], p[3]]);
            if let Some(i) = held.iter().position(|&s| s == seq) {
                p[2..4].copy_from_slice(&base.wrapping_add(i as u16).to_be_bytes());
            }
        }
    }

    /// The number to send a relayed packet (`ssrc`, `seq`) with, when it is not its own.
    pub(crate) fn out_seq(&mut self, ssrc: u32, seq: u16) -> Option<u16> {
        if self.ssrc != Some(ssrc) {
            return None;
        }
        self.see(seq);
        let mut shift = self.withheld;
        if let Some(&first) = self.held.first() {
            if newer(seq, first) {
                shift = shift.wrapping_add(self.held.len() as u16);
            }
        }
        (shift != 0).then(|| seq.wrapping_sub(shift))
    }
}

#[cfg(test)]
#[path = "dtmf_renumber_tests.rs"]
mod tests;
