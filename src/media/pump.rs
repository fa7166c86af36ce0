//! The hot path: one pump per leg and socket kind. It handles what arrives on its own leg's
//! socket: checks the source against the latch, measures (RTP only: stats, DTMF, tap) and sends
//! the datagram as it came out of the other leg's socket of the same kind.
//!
//! Pumps are plain state driven by a relay thread (`engine`), which receives the datagram and
//! calls `on_datagram`. Per packet: one non-blocking `sendto` (a full socket buffer drops the
//! packet, as the network would), a few atomic loads and stores; no allocation, no lock of ours,
//! no log line (strays: the first and every 1000th).
//!
//! SRTP legs (`srtp`): what arrives from an SRTP peer is decrypted and authenticated before
//! anything else looks at it (a packet that fails is dropped and counted, never measured,
//! recorded or relayed), and what goes to an SRTP peer is encrypted on its way out. A pump
//! holds the contexts of its own leg's inbound direction and the other leg's outbound one
//! (it is the only sender toward that peer for its socket kind). This path costs the cipher
//! work and a buffer per packet; a plain leg pays one branch.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::counters::{DropReason, Fate};
use super::dtmf::DtmfDetector;
use super::dtmf_command::{CommandGate, Pass};
use super::egress::Egress;
use super::latch::{Latch, Verdict};
use super::peer_dest::PeerDest;
use super::pump_report::{Counts, PumpReport};
use super::relay::{Activity, Control, MediaEvent};
use super::rtp::RtpHeader;
use super::sdp::DEFAULT_CLOCK_RATE;
use super::srtp::{MasterKey, SrtpContext, SrtpFailure};
use super::stats::StreamMeter;
use super::tap::TapWriter;
use super::Leg;

#[cfg(test)]
#[path = "hot_path_tests.rs"]
mod hot_path_tests;

/// The longest datagram a pump is handed (the relay's receive buffer cuts longer ones).
pub(crate) const MAX_DATAGRAM: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Rtp,
    Rtcp,
}

impl Kind {
    pub(crate) const BOTH: [Kind; 2] = [Kind::Rtp, Kind::Rtcp];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Rtp => "rtp",
            Kind::Rtcp => "rtcp",
        }
    }

    /// 0 for RTP, 1 for RTCP.
    pub(crate) fn index(self) -> usize {
        match self {
            Kind::Rtp => 0,
            Kind::Rtcp => 1,
        }
    }
}

/// Channels tying a pump to the rest of its session.
pub(crate) struct Wiring {
    /// Where this leg's peer is, for the other leg's pump.
    pub publish: Arc<PeerDest>,
    /// Where the other leg's peer is.
    pub peer_dest: Arc<PeerDest>,
    pub activity: Arc<Activity>,
    pub events: mpsc::Sender<MediaEvent>,
    /// The call's span: the pump's rare log lines belong to it.
    pub span: tracing::Span,
}

/// What only an RTP pump has: the stream's measures, DTMF, the commands, the tap.
struct RtpParts {
    meter: StreamMeter,
    dtmf: DtmfDetector,
    /// DTMF commands: the inside leg's RTP pump only (the agent keys them), made when the trunk
    /// first has some. Boxed: most pumps never do.
    gate: Option<Box<CommandGate>>,
    tap: TapWriter,
    /// The recording is paused: nothing goes to the tap.
    paused: bool,
}

impl RtpParts {
    fn gate(&self) -> Option<&CommandGate> {
        self.gate.as_deref()
    }

    /// A reported digit, unless the gate holds it back (`CommandGate::claim`).
    fn claim(&mut self, digit: super::dtmf::Digit) -> Option<super::dtmf::Digit> {
        match self.gate.as_mut() {
            Some(gate) => gate.claim(digit),
            None => Some(digit),
        }
    }
}

/// One pump: everything a packet may change.
pub(crate) struct State {
    leg: Leg,
    kind: Kind,
    latch: Latch,
    publish: Arc<PeerDest>,
    peer_dest: Arc<PeerDest>,
    /// Cached from `peer_dest`, as of `dest_version`.
    dest: Option<SocketAddr>,
    dest_version: u64,
    activity: Arc<Activity>,
    events: mpsc::Sender<MediaEvent>,
    /// `Some` for an RTP pump. Boxed, so that the RTCP pumps (half of a call's) do not carry
    /// it: the relay held 6.3 KiB a call with them inline (issue 16).
    rtp: Option<Box<RtpParts>>,
    /// Decrypts what this leg's peer sends, when it sends SRTP; with the key it used before a
    /// rekey, kept until the new key has worked once (packets in flight). Boxed: a plain RTP
    /// call (most calls) then carries a pointer per context, not three contexts per pump
    /// (~2.7 KiB a call, issue 16's memory per call).
    decrypt: Option<Box<SrtpContext>>,
    decrypt_before: Option<Box<SrtpContext>>,
    /// Encrypts what goes to the other leg's peer, when it takes SRTP.
    encrypt: Option<Box<SrtpContext>>,
    counts: Counts,
    span: tracing::Span,
}

impl State {
    pub(crate) fn new(leg: Leg, kind: Kind, wiring: Wiring) -> State {
        let Wiring {
            publish,
            peer_dest,
            activity,
            events,
            span,
        } = wiring;
        let (dest_version, dest) = peer_dest.read();
        let rtp = (kind == Kind::Rtp).then(|| {
            Box::new(RtpParts {
                meter: StreamMeter::new(DEFAULT_CLOCK_RATE),
                dtmf: DtmfDetector::new([None, None], DEFAULT_CLOCK_RATE),
                gate: None,
                tap: TapWriter::new(None),
                paused: false,
            })
        });
        State {
            leg,
            kind,
            latch: Latch::new(None),
            publish,
            peer_dest,
            dest,
            dest_version,
            activity,
            events,
            rtp,
            decrypt: None,
            decrypt_before: None,
            encrypt: None,
            counts: Counts::default(),
            span,
        }
    }

    pub(crate) fn leg(&self) -> Leg {
        self.leg
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The call's span, for log lines about this pump.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The owner's wishes changed (or the pump starts): follow them.
    pub(crate) fn apply(&mut self, control: &Control) {
        let remote = control.remote[self.leg.index()];
        let address = remote.and_then(|r| match self.kind {
            Kind::Rtp => Some(r.rtp),
            Kind::Rtcp => r.rtcp_addr(),
        });
        self.latch.set_remote(address);
        self.publish_destination();
        self.apply_keys(control);
        let Some(rtp) = self.rtp.as_mut() else {
            return;
        };
        if let Some(r) = remote {
            rtp.meter.set_clock_rate(r.clock_rate);
            let types = control.remote.map(|r| r.and_then(|r| r.telephone_event));
            rtp.dtmf.configure(types, r.clock_rate);
        }
        rtp.tap.set(control.tap.clone());
        rtp.paused = control.recording_paused;
        if self.leg == Leg::Inside {
            // A gate with no commands does nothing: it is made with the first ones and kept
            // (what it holds and its renumbering outlive a change of the commands).
            match rtp.gate.as_mut() {
                Some(gate) => gate.set_commands(&control.dtmf_commands),
                None if control.dtmf_commands.is_empty() => {}
                None => {
                    let mut gate = Box::<CommandGate>::default();
                    gate.set_commands(&control.dtmf_commands);
                    rtp.gate = Some(gate);
                }
            }
        }
    }

    /// The SRTP keys: a context is (re)built only when its key changed.
    fn apply_keys(&mut self, control: &Control) {
        let inbound = control.keys[self.leg.index()].inbound.as_ref();
        let outbound = control.keys[self.leg.other().index()].outbound.as_ref();
        let rebuilt = |current: &Option<Box<SrtpContext>>, key: Option<&Arc<MasterKey>>| match key {
            None => Some(None),
            Some(k) if current.as_ref().is_some_and(|c| c.keyed_with(k)) => None,
            Some(k) => Some(SrtpContext::new(k).map(Box::new)),
        };
        if let Some(new) = rebuilt(&self.decrypt, inbound) {
            if new.is_some() && inbound.is_some() {
                tracing::debug!(parent: &self.span, leg = self.leg.as_str(), kind = self.kind.as_str(), "SRTP inbound key set");
            }
            self.decrypt_before = if new.is_some() {
                self.decrypt.take()
            } else {
                None
            };
            self.decrypt = new;
        }
        if let Some(new) = rebuilt(&self.encrypt, outbound) {
            self.encrypt = new;
        }
        if inbound.is_some() && self.decrypt.is_none()
            || outbound.is_some() && self.encrypt.is_none()
        {
            tracing::error!(parent: &self.span, leg = self.leg.as_str(), kind = self.kind.as_str(), "SRTP context could not be built; that direction's packets are dropped");
        }
    }

    /// An SRTP leg's packet, decrypted (RTCP too, multiplexed or not); `None` when it failed:
    /// counted and logged (the first and every 1000th).
    fn decrypted(&mut self, data: &[u8], rtcp: bool) -> Option<bytes::BytesMut> {
        let ctx = self.decrypt.as_mut()?;
        let failure = match ctx.decrypt(data, rtcp) {
            Ok(plain) => {
                self.decrypt_before = None;
                return Some(plain);
            }
            Err(e) => e,
        };
        if let Some(before) = self.decrypt_before.as_mut() {
            if let Ok(plain) = before.decrypt(data, rtcp) {
                return Some(plain);
            }
        }
        self.counts.srtp_rejected += 1;
        let count = self.counts.srtp_rejected;
        if count == 1 || count.is_multiple_of(1000) {
            let why = match failure {
                SrtpFailure::Rejected => "failed authentication or not SRTP",
                SrtpFailure::TooManySsrcs => "too many SSRCs for one key",
            };
            tracing::warn!(parent: &self.span, leg = self.leg.as_str(), kind = self.kind.as_str(), count, why, "SRTP packet dropped");
        }
        None
    }

    fn gate_mut(&mut self) -> Option<&mut CommandGate> {
        self.rtp.as_mut()?.gate.as_deref_mut()
    }

    /// An event is held back (a possible DTMF command): the relay thread must call `poll`.
    pub(crate) fn holding(&self) -> bool {
        let gate = self.rtp.as_ref().and_then(|rtp| rtp.gate());
        gate.is_some_and(CommandGate::holding)
    }

    /// Sends on what was held back longer than the command timeout.
    pub(crate) fn poll(&mut self, now: Instant, peer: &mut impl Egress) {
        if self.gate_mut().is_some_and(|gate| gate.poll(now)) {
            self.send_released(peer);
        }
    }

    /// Held packets the gate let go, sent in their order, and their digits reported.
    fn send_released(&mut self, peer: &mut impl Egress) {
        let Some(gate) = self.gate_mut() else {
            return;
        };
        let (datagrams, digits) = (gate.take_released(), gate.take_released_digits());
        for datagram in datagrams {
            let _ = self.forward(&datagram, peer);
        }
        for digit in digits {
            self.report_digit(digit);
        }
    }

    fn publish_destination(&self) {
        self.publish.publish(self.latch.destination());
    }

    /// One datagram from `source` on this pump's socket: checked, measured, sent on out of
    /// `peer`. Returns what became of it, for the gateway's counters.
    pub(crate) fn on_datagram(
        &mut self,
        data: &[u8],
        source: SocketAddr,
        peer: &mut impl Egress,
    ) -> Fate {
        match self.latch.on_packet(source) {
            Verdict::Accept => {}
            Verdict::Latched(addr) => {
                tracing::info!(parent: &self.span, leg = self.leg.as_str(), kind = self.kind.as_str(), %addr, "media source latched");
                self.publish_destination();
            }
            Verdict::Stray => {
                self.counts.stray += 1;
                let count = self.counts.stray;
                if count == 1 || count.is_multiple_of(1000) {
                    tracing::warn!(parent: &self.span, leg = self.leg.as_str(), kind = self.kind.as_str(), %source, count, "stray media source dropped");
                }
                return Fate::Dropped(DropReason::StraySource);
            }
        }
        if self.decrypt.is_some() {
            let rtcp = self.kind == Kind::Rtcp || is_rtcp(data);
            return match self.decrypted(data, rtcp) {
                Some(plain) => self.on_clear(&plain, peer),
                None => Fate::Dropped(DropReason::Srtp),
            };
        }
        self.on_clear(data, peer)
    }

    /// A datagram in clear (as it came, or decrypted): measured and sent on.
    fn on_clear(&mut self, data: &[u8], peer: &mut impl Egress) -> Fate {
        let rtp = match self.kind {
            Kind::Rtp => match self.measure(data) {
                Some((rtp, Pass::Forward, seq)) => {
                    self.send_released(peer);
                    if let Some(seq) = seq {
                        return self.forward_renumbered(data, seq, peer, rtp);
                    }
                    rtp
                }
                Some((_, Pass::Withhold, _)) => {
                    self.send_released(peer);
                    return Fate::Withheld;
                }
                None => return Fate::Dropped(DropReason::Malformed),
            },
            Kind::Rtcp => {
                if !is_rtcp(data) {
                    return Fate::Dropped(DropReason::Malformed);
                }
                self.counts.received.packets += 1;
                self.counts.received.bytes += data.len() as u64;
                false
            }
        };
        match self.forward(data, peer) {
            Ok(bytes) => Fate::Relayed { bytes, rtp },
            Err(reason) => Fate::Dropped(reason),
        }
    }

    /// A packet relayed under another sequence number (a DTMF command was withheld before it,
    /// `dtmf_renumber`): a copy on the stack, so the hot path still does not allocate.
    fn forward_renumbered(
        &mut self,
        data: &[u8],
        seq: u16,
        peer: &mut impl Egress,
        rtp: bool,
    ) -> Fate {
        let mut copy = [0u8; MAX_DATAGRAM];
        let Some(out) = copy.get_mut(..data.len()) else {
            return Fate::Dropped(DropReason::Malformed);
        };
        out.copy_from_slice(data);
        out[2..4].copy_from_slice(&seq.to_be_bytes());
        match self.forward(out, peer) {
            Ok(bytes) => Fate::Relayed { bytes, rtp },
            Err(reason) => Fate::Dropped(reason),
        }
    }

    /// Whether the datagram was RTP (true) or RTCP multiplexed on the RTP port (false),
    /// whether to relay it now (a DTMF command's packet is withheld) and under which sequence
    /// number if not its own; None for anything else (garbage, STUN — a trunk negotiates no
    /// ICE): dropped.
    fn measure(&mut self, data: &[u8]) -> Option<(bool, Pass, Option<u16>)> {
        let rtp = self.rtp.as_mut()?;
        let Some(header) = RtpHeader::parse(data) else {
            if is_rtcp(data) {
                rtp.meter.on_not_rtp(); // rtcp-mux (RFC 5761): relayed, not measured
                return Some((false, Pass::Forward, None));
            }
            return None;
        };
        let now = Instant::now();
        let is_event = rtp.dtmf.is_event(&header);
        rtp.meter.on_packet(now, &header, data.len(), is_event);
        self.activity.touch(self.leg, now);
        let mut verdict = Pass::Forward;
        let mut command = None;
        let mut digits = [None, None];
        if is_event {
            let payload = header.payload(data);
            if let Some(gate) = rtp.gate.as_mut().filter(|g| g.is_active()) {
                verdict = gate.on_event(&header, payload, data, now);
                command = gate.take_command();
            }
            let detected = rtp.dtmf.on_packet(&header, payload, chrono::Utc::now);
            for (slot, digit) in digits.iter_mut().zip(detected) {
                *slot = digit.and_then(|d| rtp.claim(d));
            }
        } else {
            self.counts.payload_type = Some(header.payload_type);
        }
        if rtp.paused {
            // PCI pause: the audio never reaches the recorder (nor its pcap).
            self.counts.paused_packets += 1;
        } else {
            rtp.tap.offer(self.leg, now, header, data);
        }
        let seq = match (verdict, rtp.gate.as_mut()) {
            (Pass::Forward, Some(gate)) if gate.is_active() => gate.out_seq(&header),
            _ => None,
        };
        if let Some(command) = command {
            self.report_command(command);
        }
        for digit in digits.into_iter().flatten() {
            self.report_digit(digit);
        }
        Some((true, verdict, seq))
    }

    fn report_command(&mut self, command: super::DtmfCommand) {
        tracing::info!(parent: &self.span, command = command.as_str(), "DTMF command");
        let event = MediaEvent::DtmfCommand {
            command,
            at: chrono::Utc::now(),
        };
        if self.events.try_send(event).is_err() {
            tracing::warn!(parent: &self.span, command = command.as_str(), "DTMF command lost: event queue full");
        }
    }

    fn report_digit(&mut self, digit: super::dtmf::Digit) {
        self.counts.dtmf_digits += 1;
        // The digit itself stays out of the logs: callers key in card numbers.
        tracing::debug!(
            parent: &self.span,
            leg = self.leg.as_str(),
            duration_ms = digit.duration_ms,
            "DTMF digit"
        );
        let event = MediaEvent::Dtmf {
            leg: self.leg,
            digit: digit.digit,
            at: digit.at,
            duration_ms: digit.duration_ms,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(event) {
            self.counts.dtmf_dropped += 1;
        }
    }

    /// Sends the datagram on; the bytes sent, or why not.
    fn forward(&mut self, data: &[u8], peer: &mut impl Egress) -> Result<usize, DropReason> {
        if self.peer_dest.version() != self.dest_version {
            (self.dest_version, self.dest) = self.peer_dest.read();
        }
        let Some(dest) = self.dest else {
            self.counts.sent.dropped += 1;
            return Err(DropReason::NoDestination);
        };
        let sealed;
        let data = match self.encrypt.as_mut() {
            None => data,
            Some(ctx) => {
                let rtcp = self.kind == Kind::Rtcp || is_rtcp(data);
                match ctx.encrypt(data, rtcp) {
                    Ok(out) => {
                        sealed = out;
                        &sealed[..]
                    }
                    Err(_) => {
                        // Never sent in clear to a leg that takes SRTP.
                        self.counts.sent.dropped += 1;
                        return Err(DropReason::Srtp);
                    }
                }
            }
        };
        // Sent now (epoll engine) or queued for the round's submission (io_uring engine); a
        // queued send that fails later is taken back by `send_failed_late`.
        match peer.send_to(data, dest) {
            Ok(n) => {
                self.counts.sent.packets += 1;
                self.counts.sent.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.counts.sent.dropped += 1;
                if self.counts.sent.dropped == 1 {
                    tracing::debug!(parent: &self.span, leg = self.leg.other().as_str(), kind = self.kind.as_str(), %dest, error = %e, "media send failed");
                }
                Err(DropReason::SendFailed)
            }
        }
    }

    /// A send the egress had taken (`forward` counted it sent) failed once submitted (the
    /// io_uring engine learns it from the completion): counted as dropped instead.
    pub(crate) fn send_failed_late(&mut self, bytes: usize) {
        let sent = &mut self.counts.sent;
        sent.packets = sent.packets.saturating_sub(1);
        sent.bytes = sent.bytes.saturating_sub(bytes as u64);
        sent.dropped += 1;
    }

    /// The figures so far, the pump going on (a live call's view).
    pub(crate) fn snapshot(&self) -> PumpReport {
        let rtp = self.rtp.as_deref();
        PumpReport {
            stream: rtp.map(|r| r.meter.snapshot()).unwrap_or_default(),
            latched: self.latch.latched(),
            tap_dropped: rtp.map_or(0, |r| r.tap.dropped()),
            dtmf_withheld: rtp
                .and_then(RtpParts::gate)
                .map_or(0, CommandGate::withheld),
            counts: self.counts.clone(),
        }
    }

    pub(crate) fn finish(mut self) -> PumpReport {
        // A command's digit stays unreported; one still held back dies with the call.
        let flushed = self.rtp.as_mut().and_then(|rtp| {
            let digit = rtp.dtmf.flush()?;
            rtp.claim(digit)
        });
        if let Some(digit) = flushed {
            self.report_digit(digit);
        }
        self.snapshot()
    }
}

/// An RTCP packet as RFC 5761 §4 tells it apart: version 2, packet type 192–223, at least the
/// 8-byte header of a report.
fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && data[0] >> 6 == 2 && (192..=223).contains(&data[1])
}
