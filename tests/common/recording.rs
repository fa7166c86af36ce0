//! Recording tests' tools (`tests/recording_*.rs`): RTP peers that send and collect real
//! packets, calls placed with a chosen codec (and early media), the resources an idle gateway
//! holds (ports, recordings, open files), and the files read back (WAV, pcap).
//!
//! The tests that use `Idle` run one at a time (`SERIAL`): open files are counted for the whole
//! test process, so a test running beside them would disturb the count.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::Instant;
use trunkguard::model::Cdr;
use trunkguard::model::RecordingInfo;

use super::rtp::{power_at, rtp_target};
use super::{start_gateway, token, Call, Dialog, Harness, InviteSpec, Msg, Sent};
use super::{CALLEE, CALLER, CARRIER_IP, PBX_IP};

/// Held by each test for its whole run: one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// RTP

/// SDP naming a real RTP socket, offering one codec (`pt` with its `a=rtpmap`) and
/// telephone-event.
pub fn sdp_codec(addr: SocketAddr, pt: u8, rtpmap: &str) -> String {
    format!(
        "v=0\r\no=ua 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {rtpmap}\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

/// An RTP packet: version 2, no CSRC, no extension.
pub fn rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Everything a socket receives until it is stopped (then 300 ms more for stragglers), or
/// until nothing came for 10 s.
pub struct Collector {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Vec<Vec<u8>>>,
}

impl Collector {
    pub fn start(sock: Arc<UdpSocket>) -> Collector {
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

    pub async fn finish(mut self) -> Vec<Vec<u8>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("collector task")
    }
}

/// One side's RTP endpoint: its socket, where the gateway told it to send, and what it gets.
pub struct Peer {
    sock: Arc<UdpSocket>,
    pub to: Option<SocketAddr>,
    rx: Option<Collector>,
}

impl Peer {
    pub async fn bind(ip: &str) -> Peer {
        let sock = Arc::new(UdpSocket::bind(format!("{ip}:0")).await.expect("bind"));
        let rx = Some(Collector::start(sock.clone()));
        Peer { sock, to: None, rx }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    pub async fn send(&self, pkt: &[u8]) {
        let to = self.to.expect("told where to send");
        self.sock.send_to(pkt, to).await.expect("send RTP");
    }

    /// Stops receiving and returns every datagram received.
    pub async fn received(&mut self) -> Vec<Vec<u8>> {
        match self.rx.take() {
            Some(c) => c.finish().await,
            None => Vec::new(),
        }
    }
}

/// `n` packets from each side, one every 20 ms (like a phone). `None` sends nothing that tick.
pub async fn talk(
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
pub struct RecordedCall {
    pub call: Call,
    pub pbx: Peer,
    pub carrier: Peer,
    /// When the carrier sent its 183 with SDP, if it did.
    pub early_at: Option<Instant>,
}

pub struct CallSetup<'a> {
    pub sdp_of: &'a dyn Fn(SocketAddr) -> String,
    /// Ring this long (a 180 without SDP), then send a 183 with SDP.
    pub early: Option<Duration>,
}

pub async fn place_call(
    h: &mut Harness,
    setup: &CallSetup<'_>,
) -> (RecordedCall, Sent, Msg, String) {
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
    let call = RecordedCall {
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

pub async fn answer_call(
    h: &mut Harness,
    m: &mut RecordedCall,
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
pub async fn establish(h: &mut Harness, sdp_of: &dyn Fn(SocketAddr) -> String) -> RecordedCall {
    let setup = CallSetup {
        sdp_of,
        early: None,
    };
    let (mut m, invite, c_invite, tag) = place_call(h, &setup).await;
    let answer = sdp_of(m.carrier.addr());
    answer_call(h, &mut m, &invite, &c_invite, &tag, &answer).await;
    m
}

/// A gateway whose recordings and database outlive the harness (`finish` drops its own
/// directory): the files are read after the CDRs.
pub async fn start_keeping(tweaks: &[&str]) -> (Harness, tempfile::TempDir) {
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
pub fn open_files() -> Vec<(String, String)> {
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
pub struct Idle {
    files: Vec<(String, String)>,
}

impl Idle {
    pub fn now(h: &Harness) -> Idle {
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
    pub async fn assert_back(&self, h: &Harness) {
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

pub struct Wav {
    pub rate: u32,
    pub channels: u16,
    pub bits: u16,
    pub left: Vec<i16>,
    pub right: Vec<i16>,
}

impl Wav {
    pub fn read(path: &str) -> Wav {
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

    pub fn secs(&self) -> f64 {
        self.left.len() as f64 / f64::from(self.rate)
    }

    /// Samples of one channel between two times (clamped to the file).
    pub fn span(ch: &[i16], rate: u32, from: f64, to: f64) -> &[i16] {
        let at = |t: f64| ((t * f64::from(rate)) as usize).min(ch.len());
        &ch[at(from)..at(to)]
    }
}

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// `hz` stands out in `samples`: at least 20 times the power of `other`.
pub fn dominant(samples: &[i16], rate: u32, hz: f64, other: f64) -> bool {
    let rate = f64::from(rate);
    power_at(samples, hz, rate) > 20.0 * power_at(samples, other, rate)
}

pub fn recording(cdr: &Cdr) -> &RecordingInfo {
    cdr.recording
        .as_ref()
        .unwrap_or_else(|| panic!("no recording on the CDR: {cdr:#?}"))
}

/// The duration stored on the CDR is the file's, within 50 ms.
pub fn assert_duration_is_the_files(rec: &RecordingInfo, wav: &Wav) {
    assert!(
        (rec.duration_ms as f64 / 1000.0 - wav.secs()).abs() < 0.05,
        "CDR duration {} ms vs file {:.3} s",
        rec.duration_ms,
        wav.secs()
    );
}

pub fn assert_digest(rec: &RecordingInfo) {
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
// Captures

/// A G.729 payload (20 ms = 20 bytes) we can recognize: the leg and the sequence number.
pub fn g729_payload(leg: u8, seq: u16) -> Vec<u8> {
    (0..20u8)
        .map(|i| leg.wrapping_mul(31) ^ (seq as u8).wrapping_add(i))
        .collect()
}

/// A classic pcap (LINKTYPE_RAW) read back: per record, the IPv4 source and the RTP packet.
pub fn read_pcap(path: &str) -> Vec<([u8; 4], Vec<u8>)> {
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

/// Every file under `dir` but `except`, recursively.
pub fn files_under(dir: &Path, except: &str) -> Vec<PathBuf> {
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

// ---------------------------------------------------------------------------------------------
// A small disk

/// A tmpfs of `size` mounted for the recordings; unmounted when dropped.
pub struct SmallDisk {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl SmallDisk {
    /// `None` (after saying why, loudly) when this machine cannot mount one; under CI that
    /// fails the test instead.
    pub fn mount(size: &str) -> Option<SmallDisk> {
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn setting(&self) -> String {
        format!("recording.dir = \"{}\"", self.path().display())
    }

    /// Writes a filler file until the disk is full; returns its path.
    pub fn fill(&self) -> PathBuf {
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
