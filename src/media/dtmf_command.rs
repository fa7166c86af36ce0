//! DTMF commands keyed by the agent (the inside leg's peer, the PBX): a configured sequence
//! (`pause_dtmf = "*7"`, `resume_dtmf = "*8"`) pauses or resumes the call's recording, and its
//! RFC 4733 packets are not relayed to the carrier, so the customer never hears the command.
//!
//! The difficulty: a digit's packets are relayed as they come, but whether a digit belongs to a
//! command is known only when the next digit starts (a `*` may begin `*7`, or be a `*` the IVR
//! on the far side is waiting for). So the gate **holds back** the packets of an event that could
//! begin a command (`*` here), and decides when the next event starts:
//! - the sequence so far is a whole command: the held packets are dropped, and so is every
//!   packet of the command's last event (its end packets and their retransmissions too); the
//!   digits are not reported (they were a command, not keyed for the far side);
//! - it is still a proper prefix of a command: that event is held too;
//! - anything else: the held packets are sent on at once, in their order, before the packet that
//!   decided it, and their digits reported; the new event is then judged on its own.
//!
//! A held event that no digit follows is released after [`HOLD_TIMEOUT`] (1 s after its last
//! packet; the relay thread wakes for it, `engine`). Why 1 s: a person keys the second digit of
//! `*7` within a few hundred milliseconds, a PBX at once; longer would delay a lone `*` meant for
//! the far side's IVR, which then arrives late (its RTP timestamp unchanged: a receiver that plays
//! events by timestamp may play it late or, with a strict jitter buffer, drop it — the price of
//! not relaying commands). The withheld packets would leave a gap in the RTP sequence numbers
//! the far side sees (counted as loss there): the inside leg's later packets are renumbered to
//! close it (`dtmf_renumber`).
//!
//! The gate costs nothing on the hot path unless the trunk has commands and the packet is a
//! telephone-event; at most [`MAX_HELD`] packets are held (beyond it everything is released).

use std::time::{Duration, Instant};

use super::dtmf::{digit_of, Digit};
use super::rtp::RtpHeader;

#[path = "dtmf_renumber.rs"]
mod renumber;

/// How long a held event waits (after its last packet) for the digit that decides it.
pub const HOLD_TIMEOUT: Duration = Duration::from_millis(1000);
/// Most packets held back at once.
pub const MAX_HELD: usize = 64;
/// Longest command sequence.
pub const MAX_COMMAND_DIGITS: usize = crate::config::MAX_DTMF_COMMAND;
/// Events whose fate is remembered (their later packets and retransmissions follow it).
const DECIDED: usize = 16;

/// What a recognised sequence asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfCommand {
    PauseRecording,
    ResumeRecording,
}

impl DtmfCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            DtmfCommand::PauseRecording => "pause_recording",
            DtmfCommand::ResumeRecording => "resume_recording",
        }
    }
}

/// A trunk's command sequences (digits `0-9 * # A-D`, at most [`MAX_COMMAND_DIGITS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtmfCommands {
    pause: Option<String>,
    resume: Option<String>,
}

/// Whether `s` can be a command: 1 to [`MAX_COMMAND_DIGITS`] DTMF digits (letters upper case).
pub fn valid_sequence(s: &str) -> bool {
    crate::config::valid_dtmf_sequence(s)
}

enum Lookup {
    Command(DtmfCommand),
    Prefix,
    Nothing,
}

impl DtmfCommands {
    /// The commands of a trunk; a sequence that is not [`valid_sequence`] is left out (the
    /// configuration's validation refuses it before it gets here).
    pub fn new(pause: Option<&str>, resume: Option<&str>) -> DtmfCommands {
        let keep = |s: Option<&str>| s.filter(|s| valid_sequence(s)).map(str::to_string);
        DtmfCommands {
            pause: keep(pause),
            resume: keep(resume),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pause.is_none() && self.resume.is_none()
    }

    fn lookup(&self, seq: &str) -> Lookup {
        let mut prefix = false;
        for (command, s) in [
            (DtmfCommand::PauseRecording, &self.pause),
            (DtmfCommand::ResumeRecording, &self.resume),
        ] {
            let Some(s) = s else { continue };
            if s == seq {
                return Lookup::Command(command);
            }
            prefix |= s.starts_with(seq);
        }
        if prefix {
            Lookup::Prefix
        } else {
            Lookup::Nothing
        }
    }
}

type Key = (u32, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Forward,
    Withhold,
}

/// What the pump does with one telephone-event packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Relay it now (after whatever `take_released` hands out).
    Forward,
    /// Not now: held back, or a command's (never relayed).
    Withhold,
}

/// The inside leg's command recogniser. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct CommandGate {
    commands: DtmfCommands,
    /// Digits of the held events, in order.
    digits: String,
    held: Vec<Vec<u8>>,
    held_keys: Vec<Key>,
    /// Arrival of the last held packet.
    last_held: Option<Instant>,
    /// Digit reports of held events, until their fate is known.
    deferred: Vec<Digit>,
    /// The fate of recent events, newest last.
    decided: Vec<(Key, Fate)>,
    released: Vec<Vec<u8>>,
    released_digits: Vec<Digit>,
    command: Option<DtmfCommand>,
    /// Packets never relayed: the commands'.
    withheld: u64,
    /// Sequence numbers for the far side, gapless across withheld packets.
    renumber: renumber::Renumber,
}

impl CommandGate {
    /// New commands (a re-read trunk, the call's start): what is held is released.
    pub(crate) fn set_commands(&mut self, commands: &DtmfCommands) {
        if &self.commands != commands {
            self.release();
            self.commands = commands.clone();
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.commands.is_empty()
    }

    pub(crate) fn withheld(&self) -> u64 {
        self.withheld
    }

    /// Some event is held back, waiting for the next digit or the timeout.
    pub(crate) fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// One telephone-event packet (`datagram`, whose header is `header`), arrived at `now`.
    pub(crate) fn on_event(
        &mut self,
        header: &RtpHeader,
        payload: &[u8],
        datagram: &[u8],
        now: Instant,
    ) -> Pass {
        if payload.len() < 4 {
            return Pass::Forward;
        }
        let key = (header.ssrc, header.timestamp);
        if self.held_keys.last() == Some(&key) {
            return self.hold(key, header, datagram, now);
        }
        if let Some(fate) = self.fate_of(key) {
            return match fate {
                Fate::Forward => Pass::Forward,
                Fate::Withhold => {
                    self.withheld += 1;
                    self.renumber.withheld(header.ssrc, header.sequence);
                    Pass::Withhold
                }
            };
        }
        let Some(digit) = digit_of(payload[0]) else {
            // Flash or a tone: no command has it; what was held goes first.
            self.release();
            return Pass::Forward;
        };
        if self.holding() {
            let mut candidate = self.digits.clone();
            candidate.push(digit);
            match self.commands.lookup(&candidate) {
                Lookup::Command(command) => return self.recognised(command, key, header),
                Lookup::Prefix => {
                    self.digits = candidate;
                    return self.hold(key, header, datagram, now);
                }
                Lookup::Nothing => self.release(),
            }
        }
        let alone = digit.to_string();
        match self.commands.lookup(&alone) {
            Lookup::Command(command) => self.recognised(command, key, header),
            Lookup::Prefix => {
                self.digits = alone;
                self.hold(key, header, datagram, now)
            }
            Lookup::Nothing => {
                self.decide(key, Fate::Forward);
                Pass::Forward
            }
        }
    }

    /// A digit the detector reports: `Some` to report it now; `None` while its event is held
    /// (reported on release) or when it was a command's.
    pub(crate) fn claim(&mut self, digit: Digit) -> Option<Digit> {
        if self.held_keys.contains(&digit.key) {
            self.deferred.push(digit);
            return None;
        }
        match self.fate_of(digit.key) {
            Some(Fate::Withhold) => None,
            _ => Some(digit),
        }
    }

    /// Releases what has waited longer than [`HOLD_TIMEOUT`]; true when something was.
    pub(crate) fn poll(&mut self, now: Instant) -> bool {
        match self.last_held {
            Some(t) if now.saturating_duration_since(t) >= HOLD_TIMEOUT => {
                self.release();
                true
            }
            _ => false,
        }
    }

    /// Packets to send on now, in order (before the packet being handled).
    pub(crate) fn take_released(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.released)
    }

    /// Digits of released events, to report now.
    pub(crate) fn take_released_digits(&mut self) -> Vec<Digit> {
        std::mem::take(&mut self.released_digits)
    }

    /// The command recognised by the last packet, once.
    pub(crate) fn take_command(&mut self) -> Option<DtmfCommand> {
        self.command.take()
    }

    /// The sequence number to relay a packet of the inside leg with (`header`: a packet about
    /// to be relayed), when it is not its own: see `dtmf_renumber`.
    pub(crate) fn out_seq(&mut self, header: &RtpHeader) -> Option<u16> {
        self.renumber.out_seq(header.ssrc, header.sequence)
    }

    fn hold(&mut self, key: Key, header: &RtpHeader, datagram: &[u8], now: Instant) -> Pass {
        if self.held.len() >= MAX_HELD {
            self.release();
            self.decide(key, Fate::Forward);
            return Pass::Forward;
        }
        if self.held_keys.last() != Some(&key) {
            self.held_keys.push(key);
        }
        self.renumber.held(header.ssrc, header.sequence);
        self.held.push(datagram.to_vec());
        self.last_held = Some(now);
        Pass::Withhold
    }

    fn recognised(&mut self, command: DtmfCommand, key: Key, header: &RtpHeader) -> Pass {
        self.command = Some(command);
        self.withheld += self.held.len() as u64 + 1;
        self.renumber.commit_held();
        self.renumber.withheld(header.ssrc, header.sequence);
        for k in std::mem::take(&mut self.held_keys) {
            self.decide(k, Fate::Withhold);
        }
        self.decide(key, Fate::Withhold);
        self.held.clear();
        self.deferred.clear();
        self.digits.clear();
        self.last_held = None;
        Pass::Withhold
    }

    fn release(&mut self) {
        for k in std::mem::take(&mut self.held_keys) {
            self.decide(k, Fate::Forward);
        }
        self.renumber.release(&mut self.held);
        self.released.append(&mut self.held);
        self.released_digits.append(&mut self.deferred);
        self.digits.clear();
        self.last_held = None;
    }

    fn decide(&mut self, key: Key, fate: Fate) {
        self.decided.retain(|(k, _)| *k != key);
        if self.decided.len() >= DECIDED {
            self.decided.remove(0);
        }
        self.decided.push((key, fate));
    }

    fn fate_of(&self, key: Key) -> Option<Fate> {
        self.decided
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| *f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::DtmfDetector;
    use crate::media::rtp::tests::packet;

    /// One RFC 4733 event: `start` packets then 3 end packets, on timestamp `ts`.
    fn event(seq: &mut u16, ts: u32, code: u8) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0..5u16 {
            let end = i >= 2;
            let flags = if end { 0x80 | 10 } else { 10 };
            let d = (160 * (i + 1)).to_be_bytes();
            out.push(packet(101, *seq, ts, 0x1234, &[code, flags, d[0], d[1]]));
            *seq = seq.wrapping_add(1);
        }
        out
    }

    /// What came of a run of packets: those relayed (in order), the digits reported, the
    /// commands recognised.
    #[derive(Debug, Default)]
    struct Outcome {
        relayed: Vec<Vec<u8>>,
        digits: String,
        commands: Vec<DtmfCommand>,
    }

    fn run(gate: &mut CommandGate, packets: &[(u64, Vec<u8>)], end_ms: u64) -> Outcome {
        let mut det = DtmfDetector::new([Some(101), None], 8000);
        run_with(gate, &mut det, packets, end_ms)
    }

    /// `run` with the caller's detector (one stream fed in several runs).
    fn run_with(
        gate: &mut CommandGate,
        det: &mut DtmfDetector,
        packets: &[(u64, Vec<u8>)],
        end_ms: u64,
    ) -> Outcome {
        let t0 = Instant::now();
        let mut out = Outcome::default();
        for (ms, p) in packets {
            let now = t0 + Duration::from_millis(*ms);
            if gate.poll(now) {
                out.relayed.extend(gate.take_released());
                out.digits
                    .extend(gate.take_released_digits().iter().map(|d| d.digit));
            }
            let h = RtpHeader::parse(p).unwrap();
            let verdict = gate.on_event(&h, h.payload(p), p, now);
            let digits = det.on_packet(&h, h.payload(p), chrono::Utc::now);
            out.relayed.extend(gate.take_released());
            out.digits
                .extend(gate.take_released_digits().iter().map(|d| d.digit));
            if verdict == Pass::Forward {
                out.relayed.push(p.clone());
            }
            for d in digits.into_iter().flatten() {
                if let Some(d) = gate.claim(d) {
                    out.digits.push(d.digit);
                }
            }
            out.commands.extend(gate.take_command());
        }
        if gate.poll(t0 + Duration::from_millis(end_ms)) {
            out.relayed.extend(gate.take_released());
            out.digits
                .extend(gate.take_released_digits().iter().map(|d| d.digit));
        }
        out
    }

    /// Digits keyed 200 ms apart, each event's packets 20 ms apart.
    fn keyed(codes: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut seq = 0;
        let mut out = Vec::new();
        for (n, code) in codes.iter().enumerate() {
            for (i, p) in event(&mut seq, 8000 * (n as u32 + 1), *code)
                .into_iter()
                .enumerate()
            {
                out.push((200 * n as u64 + 20 * i as u64, p));
            }
        }
        out
    }

    fn gate() -> CommandGate {
        let mut g = CommandGate::default();
        g.set_commands(&DtmfCommands::new(Some("*7"), Some("*8")));
        g
    }

    #[test]
    fn a_command_is_recognised_and_none_of_its_packets_relayed() {
        let mut g = gate();
        // 1 * 7 2: "*7" is the command; 1 and 2 pass.
        let packets = keyed(&[1, 10, 7, 2]);
        let out = run(&mut g, &packets, 2000);
        assert_eq!(out.commands, [DtmfCommand::PauseRecording]);
        assert_eq!(out.digits, "12", "the command's digits are not reported");
        let relayed: Vec<&Vec<u8>> = packets[..5]
            .iter()
            .chain(&packets[15..])
            .map(|p| &p.1)
            .collect();
        assert_eq!(out.relayed.iter().collect::<Vec<_>>(), relayed);
        assert_eq!(g.withheld(), 10);
        assert!(!g.holding());
    }

    #[test]
    fn a_star_that_begins_no_command_is_released_in_order_before_the_next_digit() {
        let mut g = gate();
        let packets = keyed(&[10, 5]);
        let out = run(&mut g, &packets, 2000);
        assert!(out.commands.is_empty());
        assert_eq!(out.digits, "*5");
        let all: Vec<Vec<u8>> = packets.iter().map(|p| p.1.clone()).collect();
        assert_eq!(out.relayed, all, "every packet, in its order");
        assert_eq!(g.withheld(), 0);
    }

    #[test]
    fn a_lone_star_is_released_after_the_timeout() {
        let mut g = gate();
        let mut det = DtmfDetector::new([Some(101), None], 8000);
        let packets = keyed(&[10]);
        let out = run_with(&mut g, &mut det, &packets[..3], 500);
        assert!(out.relayed.is_empty(), "held within the timeout");
        assert!(g.holding());
        let out = run_with(&mut g, &mut det, &packets[3..], 2000);
        assert_eq!(out.relayed.len(), 5, "released with its late end packets");
        assert_eq!(out.digits, "*");
        assert!(!g.holding());
        // Retransmissions of the released event go straight on.
        let again = run_with(&mut g, &mut det, &packets[4..], 2000);
        assert_eq!(again.relayed.len(), 1);
        assert_eq!(again.digits, "", "reported once");
    }

    #[test]
    fn star_star_seven_releases_the_first_star_only() {
        let mut g = gate();
        let packets = keyed(&[10, 10, 7]);
        let out = run(&mut g, &packets, 3000);
        assert_eq!(out.commands, [DtmfCommand::PauseRecording]);
        assert_eq!(out.digits, "*");
        assert_eq!(out.relayed.len(), 5);
        assert_eq!(out.relayed[0], packets[0].1);
    }

    #[test]
    fn inactive_without_commands_and_sequences_are_checked() {
        let mut g = CommandGate::default();
        assert!(!g.is_active());
        g.set_commands(&DtmfCommands::new(Some("*7x"), Some("")));
        assert!(!g.is_active(), "invalid sequences are left out");
        assert!(valid_sequence("*7") && valid_sequence("#0A") && !valid_sequence("123456789"));
        let mut g = CommandGate::default();
        g.set_commands(&DtmfCommands::new(None, Some("9")));
        let out = run(&mut g, &keyed(&[9]), 100);
        assert_eq!(out.commands, [DtmfCommand::ResumeRecording]);
        assert!(out.relayed.is_empty());
    }
}
