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

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use socket2::{SockAddr, SockRef};
use tokio::sync::{mpsc, watch};

use super::counters::{DropReason, Fate};
use super::dtmf::DtmfDetector;
use super::dtmf_command::{CommandGate, Pass};
use super::latch::{Latch, Verdict};
use super::relay::{Activity, Control, LegStats, MediaEvent, SessionStats};
use super::rtp::RtpHeader;
use super::sdp::DEFAULT_CLOCK_RATE;
use super::srtp::{MasterKey, SrtpContext, SrtpFailure};
use super::stats::{Counters, StreamMeter, StreamStats};
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

/// What a pump hands back when it ends (or, as a snapshot, while it runs).
#[derive(Debug, Default, Clone)]
pub(crate) struct PumpReport {
    stream: StreamStats,
    received: Counters,
    sent: Counters,
    stray: u64,
    latched: Option<SocketAddr>,
    dtmf_digits: u64,
    dtmf_dropped: u64,
    tap_dropped: u64,
    /// Payload type of the last RTP packet that was not an RFC 4733 event.
    payload_type: Option<u8>,
    dtmf_withheld: u64,
    paused_packets: u64,
    srtp_rejected: u64,
}

/// Channels tying a pump to the rest of its session.
pub(crate) struct Wiring {
    /// Where this leg's peer is, for the other leg's pump.
    pub publish: watch::Sender<Option<SocketAddr>>,
    /// Where the other leg's peer is.
    pub peer_dest: watch::Receiver<Option<SocketAddr>>,
    pub activity: Arc<Activity>,
    pub events: mpsc::Sender<MediaEvent>,
    /// The call's span: the pump's rare log lines belong to it.
    pub span: tracing::Span,
}

/// One pump: everything a packet may change.
pub(crate) struct State {
    leg: Leg,
    kind: Kind,
    latch: Latch,
    publish: watch::Sender<Option<SocketAddr>>,
    peer_dest: watch::Receiver<Option<SocketAddr>>,
    /// Cached from `peer_dest`, with the socket-address form sendto takes.
    dest: Option<(SocketAddr, SockAddr)>,
    activity: Arc<Activity>,
    events: mpsc::Sender<MediaEvent>,
    meter: StreamMeter,
    dtmf: DtmfDetector,
    /// DTMF commands: the inside leg's RTP pump only (the agent keys them).
    gate: CommandGate,
    tap: TapWriter,
    /// The recording is paused: nothing goes to the tap.
    paused: bool,
    /// Decrypts what this leg's peer sends, when it sends SRTP; with the key it used before a
    /// rekey, kept until the new key has worked once (packets in flight). Boxed: a plain RTP
    /// call (most calls) then carries a pointer per context, not three contexts per pump
    /// (~2.7 KiB a call, issue 16's memory per call).
    decrypt: Option<Box<SrtpContext>>,
    decrypt_before: Option<Box<SrtpContext>>,
    /// Encrypts what goes to the other leg's peer, when it takes SRTP.
    encrypt: Option<Box<SrtpContext>>,
    report: PumpReport,
    span: tracing::Span,
}

impl State {
    pub(crate) fn new(leg: Leg, kind: Kind, wiring: Wiring) -> State {
        let Wiring {
            publish,
            mut peer_dest,
            activity,
            events,
            span,
        } = wiring;
        let dest = peer_dest
            .borrow_and_update()
            .map(|d| (d, SockAddr::from(d)));
        State {
            leg,
            kind,
            latch: Latch::new(None),
            publish,
            peer_dest,
            dest,
            activity,
            events,
            meter: StreamMeter::new(DEFAULT_CLOCK_RATE),
            dtmf: DtmfDetector::new([None, None], DEFAULT_CLOCK_RATE),
            gate: CommandGate::default(),
            tap: TapWriter::new(None),
            paused: false,
            decrypt: None,
            decrypt_before: None,
            encrypt: None,
            report: PumpReport::default(),
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
        if let Some(r) = remote {
            self.meter.set_clock_rate(r.clock_rate);
            let types = control.remote.map(|r| r.and_then(|r| r.telephone_event));
            self.dtmf.configure(types, r.clock_rate);
        }
        self.apply_keys(control);
        if self.kind == Kind::Rtp {
            self.tap.set(control.tap.clone());
            self.paused = control.recording_paused;
            if self.leg == Leg::Inside {
                self.gate.set_commands(&control.dtmf_commands);
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
        self.report.srtp_rejected += 1;
        let count = self.report.srtp_rejected;
        if count == 1 || count.is_multiple_of(1000) {
            let why = match failure {
                SrtpFailure::Rejected => "failed authentication or not SRTP",
                SrtpFailure::TooManySsrcs => "too many SSRCs for one key",
            };
            tracing::warn!(parent: &self.span, leg = self.leg.as_str(), kind = self.kind.as_str(), count, why, "SRTP packet dropped");
        }
        None
    }

    /// An event is held back (a possible DTMF command): the relay thread must call `poll`.
    pub(crate) fn holding(&self) -> bool {
        self.gate.holding()
    }

    /// Sends on what was held back longer than the command timeout.
    pub(crate) fn poll(&mut self, now: Instant, peer: &UdpSocket) {
        if self.gate.poll(now) {
            self.send_released(peer);
        }
    }

    /// Held packets the gate let go, sent in their order, and their digits reported.
    fn send_released(&mut self, peer: &UdpSocket) {
        for datagram in self.gate.take_released() {
            let _ = self.forward(&datagram, peer);
        }
        for digit in self.gate.take_released_digits() {
            self.report_digit(digit);
        }
    }

    fn publish_destination(&self) {
        let dest = self.latch.destination();
        self.publish.send_if_modified(|current| {
            let changed = *current != dest;
            *current = dest;
            changed
        });
    }

    /// One datagram from `source` on this pump's socket: checked, measured, sent on out of
    /// `peer`. Returns what became of it, for the gateway's counters.
    pub(crate) fn on_datagram(
        &mut self,
        data: &[u8],
        source: SocketAddr,
        peer: &UdpSocket,
    ) -> Fate {
        match self.latch.on_packet(source) {
            Verdict::Accept => {}
            Verdict::Latched(addr) => {
                tracing::info!(parent: &self.span, leg = self.leg.as_str(), kind = self.kind.as_str(), %addr, "media source latched");
                self.publish_destination();
            }
            Verdict::Stray => {
                self.report.stray += 1;
                let count = self.report.stray;
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
    fn on_clear(&mut self, data: &[u8], peer: &UdpSocket) -> Fate {
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
                self.report.received.packets += 1;
                self.report.received.bytes += data.len() as u64;
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
    fn forward_renumbered(&mut self, data: &[u8], seq: u16, peer: &UdpSocket, rtp: bool) -> Fate {
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
        let Some(header) = RtpHeader::parse(data) else {
            if is_rtcp(data) {
                self.meter.on_not_rtp(); // rtcp-mux (RFC 5761): relayed, not measured
                return Some((false, Pass::Forward, None));
            }
            return None;
        };
        let now = Instant::now();
        let is_event = self.dtmf.is_event(&header);
        self.meter.on_packet(now, &header, data.len(), is_event);
        self.activity.touch(self.leg, now);
        let mut verdict = Pass::Forward;
        if is_event {
            let payload = header.payload(data);
            if self.gate.is_active() {
                verdict = self.gate.on_event(&header, payload, data, now);
                if let Some(command) = self.gate.take_command() {
                    self.report_command(command);
                }
            }
            let digits = self.dtmf.on_packet(&header, payload, chrono::Utc::now);
            for digit in digits.into_iter().flatten() {
                if let Some(digit) = self.gate.claim(digit) {
                    self.report_digit(digit);
                }
            }
        } else {
            self.report.payload_type = Some(header.payload_type);
        }
        if self.paused {
            // PCI pause: the audio never reaches the recorder (nor its pcap).
            self.report.paused_packets += 1;
        } else {
            self.tap.offer(self.leg, now, header, data);
        }
        let seq = match verdict {
            Pass::Forward if self.gate.is_active() => self.gate.out_seq(&header),
            _ => None,
        };
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
        self.report.dtmf_digits += 1;
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
            self.report.dtmf_dropped += 1;
        }
    }

    /// Sends the datagram on; the bytes sent, or why not.
    fn forward(&mut self, data: &[u8], peer: &UdpSocket) -> Result<usize, DropReason> {
        if self.peer_dest.has_changed().unwrap_or(false) {
            self.dest = self
                .peer_dest
                .borrow_and_update()
                .map(|d| (d, SockAddr::from(d)));
        }
        let Some((dest, sock_addr)) = &self.dest else {
            self.report.sent.dropped += 1;
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
                        self.report.sent.dropped += 1;
                        return Err(DropReason::Srtp);
                    }
                }
            }
        };
        // A plain non-blocking sendto: tokio's try_send_to would refuse until its reactor has
        // seen the socket writable once, dropping the first packets of a fresh session.
        match SockRef::from(peer).send_to(data, sock_addr) {
            Ok(n) => {
                self.report.sent.packets += 1;
                self.report.sent.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.report.sent.dropped += 1;
                if self.report.sent.dropped == 1 {
                    tracing::debug!(parent: &self.span, leg = self.leg.other().as_str(), kind = self.kind.as_str(), %dest, error = %e, "media send failed");
                }
                Err(DropReason::SendFailed)
            }
        }
    }

    /// The figures so far, the pump going on (a live call's view).
    pub(crate) fn snapshot(&self) -> PumpReport {
        PumpReport {
            stream: self.meter.snapshot(),
            latched: self.latch.latched(),
            tap_dropped: self.tap.dropped(),
            dtmf_withheld: self.gate.withheld(),
            ..self.report.clone()
        }
    }

    pub(crate) fn finish(mut self) -> PumpReport {
        // A command's digit stays unreported; one still held back dies with the call.
        if let Some(digit) = self.dtmf.flush().and_then(|d| self.gate.claim(d)) {
            self.report_digit(digit);
        }
        self.report.stream = self.meter.snapshot();
        self.report.latched = self.latch.latched();
        self.report.tap_dropped = self.tap.dropped();
        self.report.dtmf_withheld = self.gate.withheld();
        self.report
    }
}

impl PumpReport {
    /// RTP packets missing from what this pump received (by sequence numbers).
    pub(crate) fn lost(&self) -> u64 {
        self.stream.lost
    }

    /// A pump of leg L measured what L's peer sent, and counted what it sent to the other peer.
    pub(crate) fn merge_into(self, stats: &mut SessionStats, leg: Leg, kind: Kind) {
        let own = leg_mut(stats, leg);
        own.stray += self.stray;
        match kind {
            Kind::Rtp => {
                own.rtp_in = self.stream;
                own.latched = self.latched;
                own.dtmf_digits = self.dtmf_digits;
                own.dtmf_dropped = self.dtmf_dropped;
                own.tap_dropped = self.tap_dropped;
                own.payload_type = self.payload_type;
                own.dtmf_withheld = self.dtmf_withheld;
                own.paused_packets = self.paused_packets;
                own.srtp_rejected += self.srtp_rejected;
                leg_mut(stats, leg.other()).rtp_out = self.sent;
            }
            Kind::Rtcp => {
                own.srtp_rejected += self.srtp_rejected;
                own.rtcp_in = self.received;
                leg_mut(stats, leg.other()).rtcp_out = self.sent;
            }
        }
    }
}

fn leg_mut(stats: &mut SessionStats, leg: Leg) -> &mut LegStats {
    match leg {
        Leg::Inside => &mut stats.inside,
        Leg::Outside => &mut stats.outside,
    }
}

/// An RTCP packet as RFC 5761 §4 tells it apart: version 2, packet type 192–223, at least the
/// 8-byte header of a report.
fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && data[0] >> 6 == 2 && (192..=223).contains(&data[1])
}
