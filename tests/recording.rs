//! Recording end to end: real calls through the gateway with real RTP, then the recording file
//! and the CDR read back. G.722 (a 16 kHz file), the pcap fallback for a codec the recorder
//! cannot decode, early media with `record_early_media` on and off, and a disk that fills up
//! (mid-call, and before the call at admission). After every test the gateway's ports, leases,
//! recordings and open files are back to where they were before the call.
//!
//! The tests of this file run one at a time (`SERIAL`): open files are counted for the whole
//! test process, so a test running beside them would disturb the count.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::rtp::*;
use common::*;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::Instant;
use trunkguard::model::{Cdr, Disposition};
use trunkguard::model::{EndReason, RefusalReason};
use trunkguard::model::{RecordingInfo, RecordingStatus};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// RTP

/// SDP naming a real RTP socket, offering one codec (`pt` with its `a=rtpmap`) and
/// telephone-event.
fn sdp_codec(addr: SocketAddr, pt: u8, rtpmap: &str) -> String {
    format!(
        "v=0\r\no=ua 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {rtpmap}\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

/// An RTP packet: version 2, no CSRC, no extension.
fn rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Everything a socket receives until it is stopped (then 300 ms more for stragglers), or
/// until nothing came for 10 s.
struct Collector {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Vec<Vec<u8>>>,
}

impl Collector {
    fn start(sock: Arc<UdpSocket>) -> Collector {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            let mut until = Instant::now() + Duration::from_secs(10);
            let mut stopping = false;
            loop {
                tokio::select! {
                    _ = &mut stopped, if !stopping => {
                        stopping = true;
                        until = Instant::now() + Duration::from_millis(300);
                    }
                    r = tokio::time::timeout_at(until, sock.recv_from(&mut buf)) => match r {
                        Ok(Ok((n, _))) => {
                            got.push(buf[..n].to_vec());
                            if !stopping {
                                until = Instant::now() + Duration::from_secs(10);
                            }
                        }
                        _ => break,
                    },
                }
            }
            got
        });
        Collector {
            stop: Some(stop),
            task,
        }
    }

    async fn finish(mut self) -> Vec<Vec<u8>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("collector task")
    }
}

/// One side's RTP endpoint: its socket, where the gateway told it to send, and what it gets.
struct Peer {
    sock: Arc<UdpSocket>,
    to: Option<SocketAddr>,
    rx: Option<Collector>,
}

impl Peer {
    async fn bind(ip: &str) -> Peer {
        let sock = Arc::new(UdpSocket::bind(format!("{ip}:0")).await.expect("bind"));
        let rx = Some(Collector::start(sock.clone()));
        Peer { sock, to: None, rx }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    async fn send(&self, pkt: &[u8]) {
        let to = self.to.expect("told where to send");
        self.sock.send_to(pkt, to).await.expect("send RTP");
    }

    /// Stops receiving and returns every datagram received.
    async fn received(&mut self) -> Vec<Vec<u8>> {
        match self.rx.take() {
            Some(c) => c.finish().await,
            None => Vec::new(),
        }
    }
}

/// `n` packets from each side, one every 20 ms (like a phone). `None` sends nothing that tick.
async fn talk(
    pbx: &Peer,
    carrier: &Peer,
    n: usize,
    mut from_pbx: impl FnMut(usize) -> Option<Vec<u8>>,
    mut from_carrier: impl FnMut(usize) -> Option<Vec<u8>>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..n {
        tick.tick().await;
        if let Some(p) = from_pbx(i) {
            pbx.send(&p).await;
        }
        if let Some(p) = from_carrier(i) {
            carrier.send(&p).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Calls

/// An outbound call answered with `sdp_of` on both sides; `early` is a 183 with SDP (the
/// carrier's media) sent first, after `ring` of a 180 without SDP.
struct MediaCall {
    call: Call,
    pbx: Peer,
    carrier: Peer,
    /// When the carrier sent its 183 with SDP, if it did.
    early_at: Option<Instant>,
}

struct Setup<'a> {
    sdp_of: &'a dyn Fn(SocketAddr) -> String,
    /// Ring this long (a 180 without SDP), then send a 183 with SDP.
    early: Option<Duration>,
}

async fn place_call(h: &mut Harness, setup: &Setup<'_>) -> (MediaCall, Sent, Msg, String) {
    let mut pbx = Peer::bind(PBX_IP).await;
    let mut carrier = Peer::bind(CARRIER_IP).await;
    let mut spec = InviteSpec::new(CALLER, CALLEE);
    spec.sdp = Some((setup.sdp_of)(pbx.addr()));
    let invite = h.pbx.invite(h.inside(), &spec).await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    carrier.to = Some(rtp_target(&c_invite.body));
    let tag = token("ct");
    let answer = (setup.sdp_of)(carrier.addr());
    let mut early_at = None;
    if let Some(ring) = setup.early {
        h.carrier.reply(&c_invite, 180, Some(&tag)).await;
        h.pbx.expect_response(180).await;
        tokio::time::sleep(ring).await;
        early_at = Some(Instant::now());
        h.carrier
            .reply_with(&c_invite, 183, Some(&tag), &[], Some(&answer))
            .await;
        let progress = h.pbx.expect_response(183).await;
        pbx.to = Some(rtp_target(&progress.body));
    }
    let call = MediaCall {
        call: Call {
            invite: invite.clone(),
            c_invite: c_invite.clone(),
            pbx: Dialog::uas(&c_invite, &tag), // replaced at the answer
            carrier: Dialog::uas(&c_invite, &tag),
        },
        pbx,
        carrier,
        early_at,
    };
    (call, invite, c_invite, tag)
}

async fn answer_call(
    h: &mut Harness,
    m: &mut MediaCall,
    invite: &Sent,
    c_invite: &Msg,
    tag: &str,
    sdp: &str,
) {
    h.carrier
        .reply_with(c_invite, 200, Some(tag), &[], Some(sdp))
        .await;
    let ok = h.pbx.expect_response(200).await;
    m.pbx.to = Some(rtp_target(&ok.body));
    m.call.pbx = Dialog::uac(invite, &ok);
    h.pbx.ack(&m.call.pbx, invite.cseq).await;
    h.carrier.expect_request("ACK").await;
}

/// A call answered at once (no early media), with `sdp_of` on both sides.
async fn establish(h: &mut Harness, sdp_of: &dyn Fn(SocketAddr) -> String) -> MediaCall {
    let setup = Setup {
        sdp_of,
        early: None,
    };
    let (mut m, invite, c_invite, tag) = place_call(h, &setup).await;
    let answer = sdp_of(m.carrier.addr());
    answer_call(h, &mut m, &invite, &c_invite, &tag, &answer).await;
    m
}

/// The PBX hangs up.
async fn hang_up(h: &mut Harness, m: &mut MediaCall) {
    h.pbx.bye(&mut m.call.pbx).await;
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    h.pbx.expect_response_to("BYE", 200).await;
}

/// A gateway whose recordings and database outlive the harness (`finish` drops its own
/// directory): the files are read after the CDRs.
async fn start_keeping(tweaks: &[&str]) -> (Harness, tempfile::TempDir) {
    let keep = tempfile::tempdir().expect("tempdir");
    let recordings = format!("recording.dir = \"{}/rec\"", keep.path().display());
    let db = format!(
        "database.url = \"sqlite://{}/tg.db\"",
        keep.path().display()
    );
    let mut all = vec![recordings.as_str(), db.as_str()];
    all.extend_from_slice(tweaks);
    (start_gateway(&all).await, keep)
}

// ---------------------------------------------------------------------------------------------
// Resources

/// The test process's open files, by descriptor, with what each points to; the database's own
/// files (sqlx opens and closes pool connections as it likes) are left out.
fn open_files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return out;
    };
    for e in dir.flatten() {
        let target = std::fs::read_link(e.path())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".into());
        let db = target.contains("/tg.db") || target.contains("etilqs");
        // The descriptor of read_dir itself is gone once it is done: it reads as "?" or the
        // fd directory.
        if !db && !target.starts_with("/proc/") && target != "?" {
            out.push((e.file_name().to_string_lossy().into_owned(), target));
        }
    }
    out.sort();
    out
}

/// What an idle gateway holds, taken before a test's calls: the same again after them.
struct Idle {
    files: Vec<(String, String)>,
}

impl Idle {
    fn now(h: &Harness) -> Idle {
        assert_eq!(h.gw.media_ports_in_use(), 0, "ports in use before the call");
        assert_eq!(
            h.gw.recordings_active(),
            0,
            "recordings open before the call"
        );
        let files = open_files();
        assert!(
            files.iter().any(|(_, t)| t.starts_with("socket:")),
            "open files are counted (the gateway's sockets among them): {files:?}"
        );
        Idle { files }
    }

    /// Calls, leases, port pairs and open recordings at zero again, and as many open files as
    /// before (polled: the last ones close right after the call task ends). The test's own
    /// RTP sockets must be dropped first.
    async fn assert_back(&self, h: &Harness) {
        h.assert_idle().await;
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let files = open_files();
            let recordings = h.gw.recordings_active();
            if files.len() == self.files.len() && recordings == 0 {
                return;
            }
            if Instant::now() >= deadline {
                let before: std::collections::BTreeSet<_> = self.files.iter().collect();
                let new: Vec<_> = files.iter().filter(|f| !before.contains(f)).collect();
                panic!(
                    "not back to idle: {recordings} recordings open; {} open files before, {} now; \
                     new: {new:#?}",
                    self.files.len(),
                    files.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Files

struct Wav {
    rate: u32,
    channels: u16,
    bits: u16,
    left: Vec<i16>,
    right: Vec<i16>,
}

impl Wav {
    fn read(path: &str) -> Wav {
        let mut reader =
            hound::WavReader::open(path).unwrap_or_else(|e| panic!("{path}: not a WAV: {e}"));
        let spec = reader.spec();
        let samples: Vec<i16> = reader
            .samples::<i16>()
            .map(|s| s.expect("sample"))
            .collect();
        Wav {
            rate: spec.sample_rate,
            channels: spec.channels,
            bits: spec.bits_per_sample,
            left: samples.iter().step_by(2).copied().collect(),
            right: samples.iter().skip(1).step_by(2).copied().collect(),
        }
    }

    fn secs(&self) -> f64 {
        self.left.len() as f64 / f64::from(self.rate)
    }

    /// Samples of one channel between two times (clamped to the file).
    fn span(ch: &[i16], rate: u32, from: f64, to: f64) -> &[i16] {
        let at = |t: f64| ((t * f64::from(rate)) as usize).min(ch.len());
        &ch[at(from)..at(to)]
    }
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// `hz` stands out in `samples`: at least 20 times the power of `other`.
fn dominant(samples: &[i16], rate: u32, hz: f64, other: f64) -> bool {
    let rate = f64::from(rate);
    power_at(samples, hz, rate) > 20.0 * power_at(samples, other, rate)
}

fn recording(cdr: &Cdr) -> &RecordingInfo {
    cdr.recording
        .as_ref()
        .unwrap_or_else(|| panic!("no recording on the CDR: {cdr:#?}"))
}

fn assert_digest(rec: &RecordingInfo) {
    let path = rec.path.as_deref().expect("recording path");
    assert!(
        trunkguard::recording::digest::verify(
            Path::new(path),
            rec.sha256.as_deref().expect("digest")
        )
        .expect("readable"),
        "the stored digest is the file's: {rec:#?}"
    );
    assert!(
        !Path::new(&format!("{path}.part")).exists(),
        "no .part left beside {path}"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. G.722

fn g722_fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/g722")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn a_g722_call_is_recorded_wideband_with_each_side_on_its_channel() {
    let _serial = SERIAL.lock().await;
    let (mut h, _keep) = start_keeping(&[]).await;
    let idle = Idle::now(&h);
    let agent = g722_fixture("tone440hz.g722");
    let customer = g722_fixture("tone5000hz.g722");
    // 160 bytes = 20 ms at 64 kbit/s; the RTP clock of G.722 is 8 kHz (RFC 3551).
    let packets = |signal: &[u8], ssrc: u32| -> Vec<Vec<u8>> {
        signal
            .chunks_exact(160)
            .enumerate()
            .map(|(i, c)| rtp_packet(9, i as u16, i as u32 * 160, ssrc, c))
            .collect()
    };
    let (to_carrier, to_pbx) = (packets(&agent, 0x1111), packets(&customer, 0x2222));
    assert_eq!(to_carrier.len(), 100, "two seconds of G.722");

    let sdp_of = |a: SocketAddr| sdp_codec(a, 9, "G722/8000");
    let mut m = establish(&mut h, &sdp_of).await;
    let ok_sdp = &m.call.c_invite.body;
    assert!(ok_sdp.contains("a=rtpmap:9 G722/8000"), "{ok_sdp}");
    talk(
        &m.pbx,
        &m.carrier,
        to_carrier.len(),
        |i| Some(to_carrier[i].clone()),
        |i| Some(to_pbx[i].clone()),
    )
    .await;
    hang_up(&mut h, &mut m).await;
    // The relay changes nothing in G.722 packets.
    assert_eq!(m.carrier.received().await, to_carrier, "agent → customer");
    assert_eq!(m.pbx.received().await, to_pbx, "customer → agent");
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    let rec = recording(cdr);
    assert_eq!(rec.status, RecordingStatus::Complete, "{rec:#?}");
    assert_eq!(rec.codec.as_deref(), Some("G722"), "{rec:#?}");
    assert_eq!(rec.pcap_path, None, "G.722 is decoded, no pcap: {rec:#?}");
    assert_digest(rec);
    let wav = Wav::read(rec.path.as_deref().expect("path"));
    assert_eq!(
        (wav.channels, wav.rate, wav.bits),
        (2, 16_000, 16),
        "stereo 16-bit at 16 kHz"
    );
    let talk = cdr.outcome.talk_ms as f64 / 1000.0;
    assert!(
        (wav.secs() - talk).abs() < 0.3,
        "file {:.2} s vs talk {talk:.2} s",
        wav.secs()
    );
    assert!(
        (rec.duration_ms as f64 / 1000.0 - wav.secs()).abs() < 0.05,
        "CDR duration {} ms vs file {:.3} s",
        rec.duration_ms,
        wav.secs()
    );
    // Each channel carries its own side's tone, and only that one.
    let (left, right) = (&wav.left[..], &wav.right[..]);
    assert!(
        dominant(left, 16_000, 440.0, 5000.0),
        "left = agent (440 Hz)"
    );
    assert!(
        dominant(right, 16_000, 5000.0, 440.0),
        "right = customer (5 kHz: wideband kept)"
    );
    // Decoded at the level it was sent (the fixtures are sines at 1/8 of full scale: RMS
    // 4096/√2), where the tones play (the middle of the call).
    let mid = |ch: &[i16]| rms(Wav::span(ch, 16_000, talk / 2.0 - 0.5, talk / 2.0 + 0.5)) / 2896.0;
    for (name, ch) in [("left", left), ("right", right)] {
        let level = mid(ch);
        assert!(
            (0.6..1.4).contains(&level),
            "{name}: decoded level {level:.2} of the sent one"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. pcap fallback

/// A G.729 payload (20 ms = 20 bytes) we can recognize: the leg and the sequence number.
fn g729_payload(leg: u8, seq: u16) -> Vec<u8> {
    (0..20u8)
        .map(|i| leg.wrapping_mul(31) ^ (seq as u8).wrapping_add(i))
        .collect()
}

/// A classic pcap (LINKTYPE_RAW) read back: per record, the IPv4 source and the RTP packet.
fn read_pcap(path: &str) -> Vec<([u8; 4], Vec<u8>)> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(data.len() >= 24, "pcap global header");
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let u16le = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    assert_eq!(u32le(&data[0..]), 0xa1b2_c3d4, "classic pcap, microseconds");
    assert_eq!(
        (u16le(&data[4..]), u16le(&data[6..])),
        (2, 4),
        "version 2.4"
    );
    assert_eq!(u32le(&data[20..]), 101, "LINKTYPE_RAW");
    let mut out = Vec::new();
    let mut pos = 24;
    let mut last_ts = 0u64;
    while pos < data.len() {
        assert!(pos + 16 <= data.len(), "record header cut at {pos}");
        let rec = &data[pos..pos + 16];
        let ts = u64::from(u32le(rec)) * 1_000_000 + u64::from(u32le(&rec[4..]));
        assert!(u32le(&rec[4..]) < 1_000_000, "microseconds");
        assert!(
            ts + 200_000 >= last_ts,
            "timestamps in order (give or take)"
        );
        last_ts = last_ts.max(ts);
        let (incl, orig) = (u32le(&rec[8..]) as usize, u32le(&rec[12..]) as usize);
        assert_eq!(incl, orig, "whole packets");
        let ip = &data[pos + 16..pos + 16 + incl];
        assert_eq!(ip[0], 0x45, "IPv4 without options");
        assert_eq!(
            u16::from_be_bytes([ip[2], ip[3]]) as usize,
            incl,
            "IP length"
        );
        assert_eq!(ip[9], 17, "UDP");
        let udp = &ip[20..];
        assert_eq!(
            u16::from_be_bytes([udp[4], udp[5]]) as usize,
            incl - 20,
            "UDP length"
        );
        out.push(([ip[12], ip[13], ip[14], ip[15]], udp[8..].to_vec()));
        pos += 16 + incl;
    }
    out
}

#[tokio::test]
async fn an_undecodable_codec_keeps_the_raw_rtp_of_both_legs_in_a_pcap() {
    let _serial = SERIAL.lock().await;
    let (mut h, _keep) = start_keeping(&[]).await;
    let idle = Idle::now(&h);
    let n = 50;
    let g729 = |leg: u8, ssrc: u32| -> Vec<Vec<u8>> {
        (0..n as u16)
            .map(|s| rtp_packet(18, s, u32::from(s) * 160, ssrc, &g729_payload(leg, s)))
            .collect()
    };
    let (to_carrier, to_pbx) = (g729(1, 0x1111), g729(2, 0x2222));
    let sdp_of = |a: SocketAddr| sdp_codec(a, 18, "G729/8000");
    let mut m = establish(&mut h, &sdp_of).await;
    talk(
        &m.pbx,
        &m.carrier,
        n,
        |i| Some(to_carrier[i].clone()),
        |i| Some(to_pbx[i].clone()),
    )
    .await;
    hang_up(&mut h, &mut m).await;
    assert_eq!(m.carrier.received().await, to_carrier, "relayed as is");
    assert_eq!(m.pbx.received().await, to_pbx, "relayed as is");
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    let rec = recording(only(&cdrs));
    assert_eq!(rec.codec.as_deref(), Some("G729"), "{rec:#?}");
    let note = rec.note.as_deref().unwrap_or_default();
    assert!(
        note.contains(&format!("{} packets of an undecodable codec", 2 * n)),
        "the CDR says the audio is in the pcap: {rec:#?}"
    );
    let wav_path = rec.path.as_deref().expect("the WAV is there (silent)");
    assert_digest(rec);
    let pcap = rec.pcap_path.as_deref().expect("pcap on the CDR");
    assert_eq!(
        Path::new(pcap),
        Path::new(wav_path).with_extension("pcap"),
        "the pcap sits beside the WAV"
    );
    assert!(!Path::new(&format!("{pcap}.part")).exists(), "pcap closed");
    let wav = Wav::read(wav_path);
    assert!(
        wav.left.iter().chain(&wav.right).all(|&s| s == 0),
        "nothing decodable: the WAV is silence"
    );
    // The pcap holds every packet of both legs, as sent.
    let records = read_pcap(pcap);
    assert_eq!(records.len(), 2 * n, "both legs, every packet");
    // Inside (the agent) and outside (the customer) have their own source address.
    let inside = [192, 0, 2, 1];
    let agent: Vec<Vec<u8>> = records
        .iter()
        .filter(|(src, _)| *src == inside)
        .map(|(_, rtp)| rtp.clone())
        .collect();
    let customer: Vec<Vec<u8>> = records
        .iter()
        .filter(|(src, _)| *src != inside)
        .map(|(_, rtp)| rtp.clone())
        .collect();
    assert_eq!(agent, to_carrier, "the agent's RTP, byte for byte");
    assert_eq!(customer, to_pbx, "the customer's RTP, byte for byte");
    // The pcap is the evidence here: its digest is on the CDR, and a changed byte shows.
    let digest = rec
        .pcap_sha256
        .as_deref()
        .expect("the pcap's digest on the CDR");
    let verify = |p: &str| trunkguard::recording::digest::verify(Path::new(p), digest);
    assert!(verify(pcap).expect("readable"), "{rec:#?}");
    let mut bytes = std::fs::read(pcap).expect("read the pcap");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(pcap, &bytes).expect("tamper with the pcap");
    assert!(
        !verify(pcap).expect("readable"),
        "a tampered pcap does not verify"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Early media

/// An early-media call: 500 ms of ringing, then a 183 with SDP and one second of the carrier's
/// announcement (700 Hz), then the answer and one second of talk (agent 440 Hz, customer
/// 1 kHz). Returns the CDR and how long the call lasted from the 183 to the BYE.
async fn early_media_call(record_early: bool) -> (Cdr, f64, tempfile::TempDir) {
    let setting = format!("recording.record_early_media = {record_early}");
    let (mut h, keep) = start_keeping(&[&setting]).await;
    let idle = Idle::now(&h);
    let setup = Setup {
        sdp_of: &sdp_at,
        early: Some(Duration::from_millis(500)),
    };
    let (mut m, invite, c_invite, tag) = place_call(&mut h, &setup).await;
    let early = 50;
    talk(
        &m.pbx,
        &m.carrier,
        early,
        |_| None,
        |i| Some(tone_packet(i as u16, 0x2222, 700.0)),
    )
    .await;
    let answer = sdp_at(m.carrier.addr());
    answer_call(&mut h, &mut m, &invite, &c_invite, &tag, &answer).await;
    talk(
        &m.pbx,
        &m.carrier,
        50,
        |i| Some(tone_packet(i as u16, 0x1111, 440.0)),
        |i| Some(tone_packet((early + i) as u16, 0x2222, 1000.0)),
    )
    .await;
    let early_at = m.early_at.expect("183 sent");
    hang_up(&mut h, &mut m).await;
    let length = early_at.elapsed().as_secs_f64();
    let got = m.pbx.received().await;
    assert!(
        got.len() >= 100,
        "the PBX got the early media and the talk: {}",
        got.len()
    );
    m.carrier.received().await;
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    (only(&cdrs).clone(), length, keep)
}

#[tokio::test]
async fn with_record_early_media_the_recording_starts_at_the_early_media() {
    let _serial = SERIAL.lock().await;
    let (cdr, length, _keep) = early_media_call(true).await;
    let rec = recording(&cdr);
    assert_eq!(rec.status, RecordingStatus::Complete, "{rec:#?}");
    assert_digest(rec);
    let wav = Wav::read(rec.path.as_deref().expect("path"));
    // From the 183 to the end: the early second, the talk, the hang-up.
    assert!(
        (wav.secs() - length).abs() < 0.3,
        "file {:.2} s vs {length:.2} s from the early media to the end",
        wav.secs()
    );
    // The announcement is on the customer's channel, first; then the customer's voice.
    let r = |from, to| Wav::span(&wav.right, 8000, from, to);
    assert!(
        dominant(r(0.1, 0.9), 8000, 700.0, 1000.0),
        "early media at the start of the right channel"
    );
    let end = wav.secs();
    assert!(
        dominant(r(end - 0.9, end - 0.2), 8000, 1000.0, 700.0),
        "then the customer's talk"
    );
    let l = Wav::span(&wav.left, 8000, end - 0.9, end - 0.2);
    assert!(dominant(l, 8000, 440.0, 700.0), "the agent on the left");
}

#[tokio::test]
async fn without_record_early_media_the_early_media_is_not_recorded() {
    let _serial = SERIAL.lock().await;
    let (cdr, _, _keep) = early_media_call(false).await;
    let rec = recording(&cdr);
    assert_eq!(rec.status, RecordingStatus::Complete, "{rec:#?}");
    assert_digest(rec);
    let wav = Wav::read(rec.path.as_deref().expect("path"));
    let talk = cdr.outcome.talk_ms as f64 / 1000.0;
    assert!(
        (wav.secs() - talk).abs() < 0.3,
        "file {:.2} s vs talk {talk:.2} s",
        wav.secs()
    );
    let rate = 8000.0;
    assert!(
        power_at(&wav.right, 700.0, rate) * 100.0 < power_at(&wav.right, 1000.0, rate),
        "no early media in the file"
    );
    assert!(
        dominant(&wav.left, 8000, 440.0, 1000.0),
        "the agent on the left"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Disk full

/// A tmpfs of `size` mounted for the recordings; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl SmallDisk {
    /// `None` (after saying why, loudly) when this machine cannot mount one; under CI that
    /// fails the test instead.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("tempdir");
        let why = if unsafe { libc::geteuid() } != 0 {
            Some("not running as root".to_string())
        } else {
            let out = std::process::Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0755"),
                    "tmpfs",
                ])
                .arg(dir.path())
                .output();
            match out {
                Ok(o) if o.status.success() => None,
                Ok(o) => Some(format!(
                    "mount failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Some(format!("cannot run mount: {e}")),
            }
        };
        match why {
            None => Some(SmallDisk { dir, mounted: true }),
            Some(why) => {
                let msg = format!("SKIPPED: disk-full test needs a tmpfs ({why})");
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{msg}; CI must run it");
                }
                eprintln!("\n*** {msg} ***\n");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn setting(&self) -> String {
        format!("recording.dir = \"{}\"", self.path().display())
    }

    /// Writes a filler file until the disk is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0x55u8; 64 * 1024];
        // Bounded: the disk is a few MiB at most.
        for _ in 0..1024 {
            if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_data()) {
                assert_eq!(
                    e.raw_os_error(),
                    Some(libc::ENOSPC),
                    "the filler stops on a full disk: {e}"
                );
                return path;
            }
        }
        panic!("the disk never filled");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let ok = std::process::Command::new("umount")
                .arg(self.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // Busy (a file still open): detach it so the tempdir can go.
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(self.dir.path())
                    .status();
            }
        }
    }
}

#[tokio::test]
async fn a_disk_that_fills_mid_call_neither_stalls_the_relay_nor_hides_the_failure() {
    let _serial = SERIAL.lock().await;
    let Some(disk) = SmallDisk::mount("2m") else {
        return;
    };
    let mut h = start_gateway(&[&disk.setting()]).await;
    let idle = Idle::now(&h);
    let mut m = establish(&mut h, &sdp_at).await;
    // One second recorded, then the disk is full, then two more seconds of talk.
    let (before, after) = (50usize, 100usize);
    let agent = |i: usize| Some(tone_packet(i as u16, 0x1111, 440.0));
    let customer = |i: usize| Some(tone_packet(i as u16, 0x2222, 1000.0));
    talk(&m.pbx, &m.carrier, before, agent, customer).await;
    let filler = disk.fill();
    talk(
        &m.pbx,
        &m.carrier,
        after,
        |i| agent(before + i),
        |i| customer(before + i),
    )
    .await;
    hang_up(&mut h, &mut m).await;
    // Every packet crossed, the recording's trouble notwithstanding.
    let total = before + after;
    let to_carrier = m.carrier.received().await;
    let to_pbx = m.pbx.received().await;
    assert_eq!(to_carrier.len(), total, "agent → customer kept flowing");
    assert_eq!(to_pbx.len(), total, "customer → agent kept flowing");
    assert_eq!(to_carrier.last(), agent(total - 1).as_ref());
    drop(m);
    idle.assert_back(&h).await;

    // The next call, with room again, is recorded whole.
    std::fs::remove_file(&filler).expect("remove filler");
    h.wait_for_disk(true).await;
    let mut m = establish(&mut h, &sdp_at).await;
    talk(&m.pbx, &m.carrier, 25, agent, customer).await;
    hang_up(&mut h, &mut m).await;
    assert_eq!(m.carrier.received().await.len(), 25);
    drop(m);
    idle.assert_back(&h).await;

    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    let (full, next) = (&cdrs[0], &cdrs[1]);
    assert_eq!(full.outcome.disposition, Disposition::Answered);
    assert_eq!(
        full.outcome.end_reason,
        EndReason::NormalClearing,
        "{full:#?}"
    );
    let rec = recording(full);
    assert_ne!(
        rec.status,
        RecordingStatus::Complete,
        "a recording cut by a full disk is not complete: {rec:#?}"
    );
    let note = rec.note.as_deref().unwrap_or_default();
    assert!(
        note.contains("write failed: recording_disk_full"),
        "the CDR says why: {rec:#?}"
    );
    // What was written before the disk filled is a valid file, and its digest is stored.
    assert_digest(rec);
    let wav = Wav::read(rec.path.as_deref().expect("path"));
    let talk = full.outcome.talk_ms as f64 / 1000.0;
    assert!(
        wav.secs() > 0.3 && wav.secs() < talk - 0.5,
        "the file holds the audio before the disk filled: {:.2} s of {talk:.2} s",
        wav.secs()
    );
    assert!(
        (rec.duration_ms as f64 / 1000.0 - wav.secs()).abs() < 0.05,
        "CDR duration {} ms vs file {:.3} s",
        rec.duration_ms,
        wav.secs()
    );
    assert!(dominant(&wav.left, 8000, 440.0, 1000.0), "left = agent");
    let rec = recording(next);
    assert_eq!(rec.status, RecordingStatus::Complete, "{rec:#?}");
    assert_digest(rec);
    drop(disk);
}

#[tokio::test]
async fn a_full_disk_at_admission_refuses_the_call_when_recording_is_required() {
    let _serial = SERIAL.lock().await;
    let Some(disk) = SmallDisk::mount("256k") else {
        return;
    };
    let mut h = start_gateway(&[&disk.setting(), "recording.required = true"]).await;
    let idle = Idle::now(&h);
    let filler = disk.fill();
    // Admission reads the disk watcher's verdict, which follows within a round.
    h.wait_for_disk(false).await;
    h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(503).await;
    assert!(resp.header("Retry-After").is_some());
    h.carrier.expect_silence(Duration::from_millis(300)).await;
    idle.assert_back(&h).await;
    // Room again: the next call goes through.
    std::fs::remove_file(&filler).expect("remove filler");
    h.wait_for_disk(true).await;
    let mut m = establish(&mut h, &sdp_at).await;
    talk(
        &m.pbx,
        &m.carrier,
        10,
        |i| Some(rtp(i as u16, 1)),
        |i| Some(rtp(i as u16, 2)),
    )
    .await;
    hang_up(&mut h, &mut m).await;
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    assert_eq!(cdrs[0].outcome.disposition, Disposition::Refused);
    assert_eq!(
        cdrs[0].outcome.refusal_reason,
        Some(RefusalReason::RecordingDiskFull),
        "{:#?}",
        cdrs[0]
    );
    assert_eq!(cdrs[1].outcome.disposition, Disposition::Answered);
    assert_eq!(recording(&cdrs[1]).status, RecordingStatus::Complete);
    drop(disk);
}

#[tokio::test]
async fn a_full_disk_at_admission_leaves_the_call_unrecorded_when_recording_is_optional() {
    let _serial = SERIAL.lock().await;
    let Some(disk) = SmallDisk::mount("256k") else {
        return;
    };
    let mut h = start_gateway(&[&disk.setting(), "recording.required = false"]).await;
    let idle = Idle::now(&h);
    disk.fill();
    let mut m = establish(&mut h, &sdp_at).await;
    talk(
        &m.pbx,
        &m.carrier,
        25,
        |i| Some(rtp(i as u16, 1)),
        |i| Some(rtp(i as u16, 2)),
    )
    .await;
    hang_up(&mut h, &mut m).await;
    assert_eq!(
        m.carrier.received().await.len(),
        25,
        "media flows unrecorded"
    );
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    let rec = recording(cdr);
    assert_eq!(rec.status, RecordingStatus::Failed, "{rec:#?}");
    assert!(
        rec.note
            .as_deref()
            .unwrap_or_default()
            .starts_with("recording_disk_full"),
        "{rec:#?}"
    );
    assert_eq!(rec.path, None);
    // Nothing but the filler on the disk: no stray .part.
    let mut stray = Vec::new();
    let mut dirs = vec![disk.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else if e.file_name() != "filler" {
                stray.push(e.path());
            }
        }
    }
    assert!(stray.is_empty(), "files left on the full disk: {stray:?}");
    drop(disk);
}

/// Every file under `dir` but `except`, recursively.
fn files_under(dir: &Path, except: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else if e.file_name() != except {
                found.push(e.path());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn a_disk_that_fills_mid_call_keeps_the_pcap_written_so_far() {
    let _serial = SERIAL.lock().await;
    let Some(disk) = SmallDisk::mount("2m") else {
        return;
    };
    let mut h = start_gateway(&[&disk.setting()]).await;
    let idle = Idle::now(&h);
    let sdp_of = |a: SocketAddr| sdp_codec(a, 18, "G729/8000");
    let mut m = establish(&mut h, &sdp_of).await;
    // Two seconds before the disk fills: the pcap has been flushed at least once by then.
    let (before, after) = (100usize, 100usize);
    let agent = |i: usize| {
        Some(rtp_packet(
            18,
            i as u16,
            i as u32 * 160,
            0x1111,
            &g729_payload(1, i as u16),
        ))
    };
    let customer = |i: usize| {
        Some(rtp_packet(
            18,
            i as u16,
            i as u32 * 160,
            0x2222,
            &g729_payload(2, i as u16),
        ))
    };
    talk(&m.pbx, &m.carrier, before, agent, customer).await;
    let filler = disk.fill();
    talk(
        &m.pbx,
        &m.carrier,
        after,
        |i| agent(before + i),
        |i| customer(before + i),
    )
    .await;
    hang_up(&mut h, &mut m).await;
    let total = before + after;
    assert_eq!(m.carrier.received().await.len(), total, "relay unharmed");
    assert_eq!(m.pbx.received().await.len(), total, "relay unharmed");
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    let rec = recording(only(&cdrs));
    assert_ne!(rec.status, RecordingStatus::Complete, "{rec:#?}");
    let note = rec.note.as_deref().unwrap_or_default();
    assert!(
        note.contains("write failed: recording_disk_full"),
        "the CDR says why: {rec:#?}"
    );
    // The raw RTP written before the disk filled is evidence too: closed, on the CDR, whole
    // records only, and no `.part` left for a restart to mistake for a crash.
    let left: Vec<_> = files_under(disk.path(), "filler")
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(left.is_empty(), ".part files left: {left:?}");
    let pcap = rec
        .pcap_path
        .as_deref()
        .unwrap_or_else(|| panic!("the pcap written so far is on the CDR: {rec:#?}"));
    let records = read_pcap(pcap);
    assert!(
        records.len() >= 2 * before / 2 && records.len() < 2 * total,
        "{} packets kept of {} sent",
        records.len(),
        2 * total
    );
    // Each leg's records are what it sent, from the first packet on, in order.
    for (src, leg, ssrc) in [
        ([192, 0, 2, 1], 1u8, 0x1111),
        ([198, 51, 100, 1], 2, 0x2222),
    ] {
        let kept: Vec<&Vec<u8>> = records
            .iter()
            .filter(|(s, _)| *s == src)
            .map(|(_, rtp)| rtp)
            .collect();
        for (i, rtp) in kept.iter().enumerate() {
            let sent = rtp_packet(
                18,
                i as u16,
                i as u32 * 160,
                ssrc,
                &g729_payload(leg, i as u16),
            );
            assert_eq!(**rtp, sent, "leg {leg} packet {i}");
        }
    }
    drop(filler);
    drop(disk);
}

#[tokio::test]
async fn with_record_early_media_a_call_rejected_without_early_media_keeps_no_file() {
    let _serial = SERIAL.lock().await;
    let (mut h, keep) = start_keeping(&["recording.record_early_media = true"]).await;
    let idle = Idle::now(&h);
    h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("busy")).await;
    h.pbx.expect_response(180).await;
    h.carrier.reply(&c_invite, 486, Some("busy")).await;
    h.carrier.expect_request("ACK").await;
    h.pbx.expect_response(486).await;
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Busy, "{cdr:#?}");
    assert_eq!(cdr.recording, None, "no audio, no recording: {cdr:#?}");
    let rec_dir = keep.path().join("rec");
    let files = if rec_dir.exists() {
        files_under(&rec_dir, "")
    } else {
        Vec::new()
    };
    assert!(
        files.is_empty(),
        "no file for a call without audio: {files:?}"
    );
}

#[tokio::test]
async fn a_disk_that_fills_before_the_answer_leaves_the_answered_call_unrecorded_and_says_why() {
    let _serial = SERIAL.lock().await;
    let Some(disk) = SmallDisk::mount("256k") else {
        return;
    };
    // Required, but the call is answered by the time the file would be opened: it cannot be
    // refused any more, so it goes on unrecorded.
    let mut h = start_gateway(&[&disk.setting(), "recording.required = true"]).await;
    let idle = Idle::now(&h);
    let setup = Setup {
        sdp_of: &sdp_at,
        early: None,
    };
    let (mut m, invite, c_invite, tag) = place_call(&mut h, &setup).await;
    disk.fill();
    let answer = sdp_at(m.carrier.addr());
    answer_call(&mut h, &mut m, &invite, &c_invite, &tag, &answer).await;
    talk(
        &m.pbx,
        &m.carrier,
        25,
        |i| Some(rtp(i as u16, 1)),
        |i| Some(rtp(i as u16, 2)),
    )
    .await;
    hang_up(&mut h, &mut m).await;
    assert_eq!(m.pbx.received().await.len(), 25, "media flows unrecorded");
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    let rec = recording(cdr);
    assert_eq!(rec.status, RecordingStatus::Failed, "{rec:#?}");
    assert!(
        rec.note
            .as_deref()
            .unwrap_or_default()
            .starts_with("recording_disk_full"),
        "{rec:#?}"
    );
    let left = files_under(disk.path(), "filler");
    assert!(left.is_empty(), "files left on the full disk: {left:?}");
    drop(disk);
}
