//! PCI pause by DTMF with SIPp (issue 17): the real `trunkguard` binary, its trunk's commands
//! `pause_dtmf = "*7"` and `resume_dtmf = "*8"`, SIPp as the PBX playing a capture made here
//! (`play_pcap_audio`): 6 s of a speech-like signal in PCMU with RFC 4733 telephone-events for
//! `*7` at 1.5 s and `*8` at 3.5 s, on the stream's SSRC and sequence, as a phone sends them.
//! SIPp as the carrier answers with the SDP of a UDP socket of the test, which reads all the
//! gateway relays to the carrier and sends the customer's speech (another signal) back.
//!
//! Checked after the call (gateway stopped with SIGTERM):
//! - the command digits were not relayed: no telephone-event packet reached the carrier's
//!   socket, and the sequence numbers it saw have no gap (the withheld packets renumbered
//!   away, `src/media/dtmf_renumber.rs`);
//! - the CDR lists one pause, paused and resumed by `dtmf`, as long as from the `7` to the `8`;
//! - the recording: both channels all zero over the paused interval; before and after it, each
//!   channel is its side's signal (normalized correlation with what was sent), at one alignment
//!   for the whole call (the timeline kept) that does not put the signal's start before the
//!   file's (the first packets are recorded: the relay is tapped before the PBX gets the 2xx),
//!   and the pause begins where the `7` was in it.
//!
//! The capture (pcap, Ethernet/IPv4/UDP) is written by `capture()` below: a generator, nothing
//! committed. SIPp sends it through a raw socket, which needs CAP_NET_RAW (root).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Scenario, Scene, SippSpec, TrunkLimits, CARRIER_IP, INSIDE_IP, OUTSIDE_IP, PBX_IP};
use trunkguard::model::{PauseEnd, RecordingStatus};
use trunkguard::recording::g711::encode_ulaw;

const RATE: usize = 8000;
const PACKET: usize = 160;
/// The capture: 6 s, 300 packets of speech.
const PACKETS: usize = 300;
/// Where the commands' events start, in packets (20 ms): `*` then `7`; `*` then `8`.
const EVENTS: [(usize, u8); 4] = [(75, 10), (85, 7), (175, 10), (185, 8)];
const PAUSE_AT: f64 = 85.0 * 0.02;
const RESUME_AT: f64 = 185.0 * 0.02;
const PBX_SSRC: u32 = 0x5eed_0001;

/// A speech-like signal: a voice whose pitch wanders (two incommensurate modulations, so no
/// stretch repeats), six harmonics, syllables of a quarter second. `seed` makes another voice.
fn speech(seed: f64) -> Vec<i16> {
    let mut phase = 0.0f64;
    (0..PACKETS * PACKET + RATE)
        .map(|n| {
            let t = n as f64 / RATE as f64;
            let f0 = 130.0 * seed
                + 35.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin()
                + 20.0 * (2.0 * std::f64::consts::PI * 2.3 * seed * t).sin();
            phase += 2.0 * std::f64::consts::PI * f0 / RATE as f64;
            let voice: f64 = (1..=6).map(|k| (k as f64 * phase).sin() / k as f64).sum();
            let syllable = 0.25 + 0.75 * (std::f64::consts::PI * t / (0.25 * seed)).sin().abs();
            (4000.0 * syllable * voice) as i16
        })
        .collect()
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn pcmu(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| encode_ulaw(s)).collect()
}

/// The PBX's RTP, in sending order with the time (µs) each leaves: a speech packet every 20 ms
/// and, from each event's start, one telephone-event packet a tick (two updates, then the end
/// packet three times under one sequence number, RFC 4733 §2.5.1.4).
fn pbx_stream(voice: &[i16]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut seq: u16 = 40_000;
    let mut next = || {
        seq = seq.wrapping_add(1);
        seq
    };
    for i in 0..PACKETS {
        let at = i as u64 * 20_000;
        let chunk = &voice[i * PACKET..(i + 1) * PACKET];
        out.push((
            at,
            rtp(0, next(), (i * PACKET) as u32, PBX_SSRC, &pcmu(chunk)),
        ));
        for &(start, code) in &EVENTS {
            let k = i.wrapping_sub(start);
            if k < 3 {
                let end = k == 2;
                let d = (160 * (k as u16 + 1)).to_be_bytes();
                let flags = if end { 0x8a } else { 0x0a };
                let p = rtp(
                    101,
                    next(),
                    (start * PACKET) as u32,
                    PBX_SSRC,
                    &[code, flags, d[0], d[1]],
                );
                for copy in 0..if end { 3 } else { 1 } {
                    out.push((at + 1000 + copy * 1000, p.clone()));
                }
            }
        }
    }
    out
}

/// A pcap (Ethernet, microsecond times) of `packets` as UDP datagrams from the PBX to the
/// gateway's inside address (SIPp keeps only the UDP payload and the destination port's offset
/// from the lowest one).
fn capture(packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    // The global header: magic (µs times), version 2.4, zone, accuracy, snaplen, Ethernet.
    let mut f = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65_535, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    let base = 1_700_000_000u64 * 1_000_000;
    for (at, payload) in packets {
        let udp_len = 8 + payload.len();
        let ip_len = 20 + udp_len;
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[0x45, 0, (ip_len >> 8) as u8, ip_len as u8]);
        frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        frame.extend_from_slice(&PBX_IP.octets());
        frame.extend_from_slice(&INSIDE_IP.octets());
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]); // no checksum (IPv4); SIPp computes its own
        frame.extend_from_slice(payload);
        let t = base + at;
        f.extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
        f.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&frame);
    }
    f
}

/// The carrier's media: answers what the gateway relays with the customer's speech (from the
/// first packet's source, where the gateway expects it), 20 ms a packet; keeps every datagram.
fn carrier_media(
    sock: UdpSocket,
    voice: Vec<i16>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut got = Vec::new();
        let mut gateway: Option<SocketAddr> = None;
        let mut started = None;
        let mut sent = 0usize;
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                got.push(buf[..n].to_vec());
                gateway.get_or_insert(from);
            }
            if let Some(to) = gateway {
                let t0 = *started.get_or_insert_with(Instant::now);
                while sent < PACKETS
                    && t0 + Duration::from_millis(20 * sent as u64) <= Instant::now()
                {
                    let chunk = &voice[sent * PACKET..(sent + 1) * PACKET];
                    let p = rtp(0, sent as u16, (sent * PACKET) as u32, 0xca11, &pcmu(chunk));
                    let _ = sock.send_to(&p, to);
                    sent += 1;
                }
            }
        }
        got
    })
}

/// The normalized correlation of `a` and `b` (same length).
fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1.0)
}

/// Where `sent` starts in `channel` (samples, negative when the channel begins after the
/// signal's start): the best correlation of its `[from, to)` seconds over offsets from `-early`
/// to `max` seconds (every other sample, then the best one's neighbours).
fn alignment(
    channel: &[i16],
    sent: &[i16],
    from: f64,
    to: f64,
    early: f64,
    max: f64,
) -> (i64, f64) {
    let (a, b) = ((from * RATE as f64) as i64, (to * RATE as f64) as i64);
    let reference = &sent[a as usize..b as usize];
    let at = |o: i64| {
        let (start, end) = (o + a, o + b);
        (start >= 0 && end as usize <= channel.len()).then(|| {
            (
                o,
                correlation(&channel[start as usize..end as usize], reference),
            )
        })
    };
    let best = |offsets: &mut dyn Iterator<Item = i64>| {
        offsets
            .filter_map(at)
            .fold((0, f64::MIN), |best, c| if c.1 > best.1 { c } else { best })
    };
    let (lo, hi) = (-(early * RATE as f64) as i64, (max * RATE as f64) as i64);
    let coarse = best(&mut (lo..hi).step_by(2));
    best(&mut (coarse.0 - 1..=coarse.0 + 1))
}

fn sipp_args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn dtmf_pause_played_by_sipp_silences_both_channels_and_never_reaches_the_carrier() {
    let mut scene = Scene::start_edited(TrunkLimits::default(), |dir, config| {
        let config = config.replace(
            "blocked_numbers = []",
            "blocked_numbers = []\npause_dtmf = \"*7\"\nresume_dtmf = \"*8\"",
        );
        let media = "[media]\nport_range = [25000, 28999]\n";
        assert!(
            config.contains("pause_dtmf") && config.contains(media),
            "{config}"
        );
        let config = config.replace(
            media,
            &format!(
                "{media}inside_address = \"{INSIDE_IP}\"\noutside_address = \"{OUTSIDE_IP}\"\n"
            ),
        );
        format!(
            "{config}\n[recording]\ndir = \"{}\"\nrequired = true\n",
            dir.join("recordings").display()
        )
    });
    let agent = speech(1.0);
    let customer = speech(1.37);
    let stream = pbx_stream(&agent);
    let events_sent = stream.iter().filter(|(_, p)| p[1] == 101).count();
    std::fs::write(
        harness::sipp_dir(scene.path(), "pbx-uac-pcap").join("pbx.pcap"),
        capture(&stream),
    )
    .unwrap();

    let media = UdpSocket::bind((CARRIER_IP, 0)).unwrap();
    let media_addr = media.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let carrier_media = carrier_media(media, customer.clone(), stop.clone());
    let carrier_local = scene.addrs.carrier;
    let carrier = scene.sipp(SippSpec {
        name: "carrier-uas-rtp-socket",
        scenario: Scenario::File("carrier_uas_rtp_socket.xml"),
        local: carrier_local,
        remote: None,
        args: sipp_args(&[
            "-key",
            "rtp_ip",
            &media_addr.ip().to_string(),
            "-key",
            "rtp_port",
            &media_addr.port().to_string(),
            "-mi",
            &CARRIER_IP.to_string(),
            "-mp",
            &harness::free_port(CARRIER_IP, false).to_string(),
            "-m",
            "1",
        ]),
        timeout_secs: 30,
    });
    let inside = scene.addrs.inside;
    let pbx = scene.sipp(SippSpec {
        name: "pbx-uac-pcap",
        scenario: Scenario::File("pbx_uac_pcap.xml"),
        local: SocketAddr::new(PBX_IP.into(), harness::free_port(PBX_IP, false)),
        remote: Some(inside),
        args: sipp_args(&[
            "-mi",
            &PBX_IP.to_string(),
            "-mp",
            &harness::free_port(PBX_IP, false).to_string(),
            "-key",
            "caller",
            harness::TRUNK_NUMBER,
            "-s",
            "8613800138000",
            "-d",
            "6500",
            "-m",
            "1",
        ]),
        timeout_secs: 30,
    });
    scene.expect_exit_ok(pbx);
    scene.expect_exit_ok(carrier);
    stop.store(true, Ordering::Relaxed);
    let relayed = carrier_media.join().unwrap();
    let cdrs = scene.stop_and_read_cdrs();

    // Not relayed: no event at all reached the carrier (each one keyed was a command's), and
    // the agent's sequence numbers have no gap there.
    let from_pbx: Vec<&Vec<u8>> = relayed
        .iter()
        .filter(|p| p.len() >= 12 && p[8..12] == PBX_SSRC.to_be_bytes())
        .collect();
    scene.ensure(from_pbx.len() > 250, || {
        format!(
            "{} of the PBX's packets reached the carrier",
            from_pbx.len()
        )
    });
    let events: Vec<u8> = from_pbx
        .iter()
        .filter(|p| p[1] & 0x7f == 101)
        .map(|p| p[12])
        .collect();
    scene.ensure(events.is_empty(), || {
        format!(
            "the commands' events reached the carrier: codes {events:?} (of {events_sent} sent)"
        )
    });
    let mut seqs: Vec<u16> = from_pbx
        .iter()
        .map(|p| u16::from_be_bytes([p[2], p[3]]))
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    let gaps: Vec<(u16, u16)> = seqs
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| (w[0], w[1]))
        .collect();
    scene.ensure(gaps.is_empty(), || {
        format!("gaps in the sequence numbers the carrier saw: {gaps:?}")
    });

    // The CDR's pause.
    scene.ensure(cdrs.len() == 1, || format!("{cdrs:#?}"));
    let cdr = &cdrs[0];
    let [pause] = cdr.recording_pauses.as_slice() else {
        scene.fail(format!("one pause on the CDR: {:#?}", cdr.recording_pauses))
    };
    scene.ensure(
        pause.paused_by == "dtmf"
            && pause.resumed_by.as_deref() == Some("dtmf")
            && pause.ended == PauseEnd::Resumed
            && ((pause.end_ms - pause.start_ms) as f64 - (RESUME_AT - PAUSE_AT) * 1000.0).abs()
                < 150.0,
        || format!("a pause by dtmf of {} s: {pause:?}", RESUME_AT - PAUSE_AT),
    );
    let digits: Vec<&str> = cdr.dtmf.iter().map(|d| d.digit.as_str()).collect();
    scene.ensure(digits.is_empty(), || {
        format!("the commands' digits are not on the CDR: {digits:?}")
    });

    // The recording.
    let rec = cdr.recording.as_ref().expect("a recording");
    scene.ensure(rec.status == RecordingStatus::Complete, || {
        format!("{rec:#?}")
    });
    let path = scene
        .path()
        .join("recordings")
        .join(rec.path.as_deref().expect("a path"));
    let mut reader = hound::WavReader::open(&path).unwrap();
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let (start, end) = (pause.start_ms as f64 / 1000.0, pause.end_ms as f64 / 1000.0);
    let at = |s: f64| ((s * RATE as f64) as usize).min(left.len());
    for (name, ch) in [("left", &left), ("right", &right)] {
        let paused = &ch[at(start + 0.06)..at(end - 0.06)];
        scene.ensure(
            paused.len() > 12_000 && paused.iter().all(|&s| s == 0),
            || {
                format!(
                    "{name} channel: {} non-zero samples of {} in the pause {start:.3}..{end:.3} s",
                    paused.iter().filter(|&&s| s != 0).count(),
                    paused.len()
                )
            },
        );
    }
    // Each side's speech, aligned once before the pause and found at that alignment after it.
    for (name, ch, sent, before, after) in [
        ("left (agent)", &left, &agent, (0.3, 1.3), (4.0, 5.5)),
        (
            "right (customer)",
            &right,
            &customer,
            (0.3, 1.0),
            (4.0, 5.0),
        ),
    ] {
        let (offset, r) = alignment(ch, sent, before.0, before.1, 0.1, 1.5);
        let o = offset as f64 / RATE as f64;
        let (a, b) = (at(after.0 + o), at(after.1 + o));
        let later = if b <= ch.len() && a < b {
            let (sa, sb) = ((a as i64 - offset) as usize, (b as i64 - offset) as usize);
            correlation(&ch[a..b], &sent[sa..sb])
        } else {
            0.0
        };
        eprintln!("{name}: offset {o:.3} s, correlation {r:.3} before, {later:.3} after; pause {start:.3}..{end:.3}; {} from the PBX at the carrier, {events_sent} events sent", from_pbx.len());
        scene.ensure(r > 0.95 && later > 0.95, || {
            format!(
                "{name}: the speech sent at {o:.3} s into the file correlates {r:.3} before the \
                 pause and {later:.3} after it"
            )
        });
        // The recording starts at the answer, before either side's first packet (the gateway
        // taps the relay before the 2xx reaches the PBX): the file holds each side's speech
        // from its first sample, so the speech cannot start before the file.
        scene.ensure(offset >= 0, || {
            format!(
                "{name}: the speech starts {:.2} ms before the file: its first packet(s) are \
                 not in the recording",
                -o * 1000.0
            )
        });
        if name.starts_with("left") {
            // The pause begins where the 7 was (recognised at its first packet).
            scene.ensure((start - (o + PAUSE_AT)).abs() < 0.12, || {
                format!(
                    "the pause starts at {start:.3} s; the 7 is at {:.3} s",
                    o + PAUSE_AT
                )
            });
        }
    }
}
