//! SRTP (SDES) terminated per leg, with baresip — SIP software nobody here wrote — as the PBX and
//! as the carrier: the real `trunkguard` binary between them, each baresip playing its own tone
//! from a WAV (`aufile`), SRTP on the legs the case asks for (`mediaenc=srtp-mand`) and plain
//! RTP on the others, the trunk's `pbx_media_encryption` / `carrier_media_encryption` set to
//! match. Cases: SRTP to the PBX and RTP to the carrier, RTP from the PBX and SRTP to the
//! carrier, SRTP on both.
//!
//! Each time: the call was answered and its CDR says 200; the recording is `complete` and its
//! left channel carries the PBX's 440 Hz and its right channel the carrier's 1 kHz (Goertzel,
//! as tests/sipp_media.rs checks): decrypted audio, never the noise that SRTP packets decoded as
//! PCMU would be; the SIP trace stored with the call names the suites but holds no key.
//!
//! baresip is bounded (`-t`), killed on drop; the test fails (not skips) under CI when baresip
//! is missing (scripts/test.sh installs `baresip-core`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{free_port, Scene, TrunkLimits, CARRIER_IP, PBX_IP, TRUNK_NUMBER};
use trunkguard::model::{Cdr, RecordingStatus};
use trunkguard::store::{sip_trace, Store};

const CALLEE: &str = "8613800138000";
const PBX_HZ: f64 = 440.0;
const CARRIER_HZ: f64 = 1000.0;
const AMPLITUDE: f64 = 8000.0;
const RATE: usize = 8000;
/// baresip quits (and hangs up) after this long: about 5 s of talk.
const PBX_SECS: u64 = 7;

/// Whether baresip is there; under CI its absence is a failure (scripts/test.sh installs it).
fn have_baresip() -> bool {
    let found = Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found && std::env::var_os("CI").is_some() {
        panic!("baresip is not installed (apt-get install baresip-core; scripts/test.sh does)");
    }
    if !found {
        eprintln!("baresip not installed: SRTP interop test skipped");
    }
    found
}

/// One second of a sine, 16-bit mono 8 kHz, `secs` long.
fn tone_wav(path: &Path, hz: f64, secs: usize) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..RATE * secs {
        let t = i as f64 / RATE as f64;
        w.write_sample((AMPLITUDE * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// A baresip process, killed on drop.
struct Baresip {
    child: Child,
    log: PathBuf,
}

impl Baresip {
    /// baresip bound to `sip` (SIP and media on its IP), playing `hz`; `srtp`: SRTP mandatory
    /// on its calls; `dial`: the URI it calls at once (else it answers what comes).
    fn spawn(
        dir: &Path,
        name: &str,
        user: &str,
        sip: SocketAddr,
        hz: f64,
        srtp: bool,
        dial: Option<&str>,
    ) -> Baresip {
        let home = dir.join(name);
        fs::create_dir_all(&home).unwrap();
        let wav = home.join("in.wav");
        tone_wav(&wav, hz, 12);
        let rtp = free_port(Ipv4Addr::LOCALHOST, false);
        fs::write(
            home.join("config"),
            format!(
                "poll_method epoll\nsip_listen {sip}\naudio_source aufile,{wav}\naudio_player\n\
                 rtp_ports {rtp}-{}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
                 module aufile.so\nmodule srtp.so\nmodule account.so\nmodule menu.so\n",
                rtp + 40,
                wav = wav.display()
            ),
        )
        .unwrap();
        let mut account = format!("<sip:{user}@{sip}>;regint=0;audio_codecs=PCMU");
        if srtp {
            account.push_str(";mediaenc=srtp-mand");
        }
        if dial.is_none() {
            account.push_str(";answermode=auto");
        }
        fs::write(home.join("accounts"), account + "\n").unwrap();
        let log = home.join("baresip.log");
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(&home).arg("-n").arg(sip.ip().to_string());
        match dial {
            Some(uri) => cmd
                .arg("-e")
                .arg(format!("/dial {uri}"))
                .arg("-t")
                .arg(PBX_SECS.to_string()),
            None => cmd.arg("-t").arg((PBX_SECS + 5).to_string()),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                fs::File::create(home.join("baresip.err")).unwrap(),
            ))
            .spawn()
            .expect("start baresip");
        Baresip { child, log }
    }

    /// Waits (bounded) for it to quit by itself.
    fn wait(&mut self, limit: Duration) -> Result<(), String> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.child.try_wait().map_err(|e| e.to_string())?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("baresip still running after {limit:?}"))
    }

    fn log_tail(&self) -> String {
        harness::tail(&self.log, 25)
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Power of `samples` at `hz` (Goertzel), normalized by length: a sine of amplitude A gives A²/4.
fn power_at(samples: &[i16], hz: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * hz / RATE as f64).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (samples.len() as f64).powi(2)
}

/// 100 ms blocks of `channel` that are `hz` at about the level sent, and no more than noise
/// of the other tone: what the peer played, decrypted. SRTP decoded as PCMU is white noise:
/// no block passes.
fn tone_blocks(channel: &[i16], hz: f64, other_hz: f64) -> usize {
    let full = AMPLITUDE * AMPLITUDE / 4.0;
    channel
        .chunks_exact(RATE / 10)
        .filter(|b| {
            let own = power_at(b, hz);
            let mean_square = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / b.len() as f64;
            own > full * 0.5 && own * 2.0 > mean_square * 0.9 && power_at(b, other_hz) < own / 100.0
        })
        .count()
}

/// The SIP trace stored with call `id`, every message's text.
fn stored_trace(dir: &Path, id: &str) -> String {
    let db = dir.join("cdrs.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let trace = sip_trace::read(&store, id)
            .await
            .unwrap()
            .expect("a stored trace");
        trace
            .messages
            .iter()
            .map(|m| m.message.clone())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

struct Case {
    pbx_srtp: bool,
    carrier_srtp: bool,
}

fn encryption(srtp: bool) -> &'static str {
    if srtp {
        "required"
    } else {
        "none"
    }
}

fn srtp_call(case: Case) {
    if !have_baresip() {
        return;
    }
    let mut carrier_sip = None;
    let mut scene = Scene::start_edited(TrunkLimits::default(), |dir, config| {
        let carrier: SocketAddr = (CARRIER_IP, free_port(CARRIER_IP, false)).into();
        carrier_sip = Some(carrier);
        let trunk_keys = format!(
            "pbx_media_encryption = \"{}\"\ncarrier_media_encryption = \"{}\"\ncarrier = \"{carrier}\"\n",
            encryption(case.pbx_srtp),
            encryption(case.carrier_srtp)
        );
        let config = config
            .lines()
            .filter(|l| !l.starts_with("carrier = "))
            .map(|l| {
                if l.starts_with("blocked_numbers") {
                    format!("{l}\n{trunk_keys}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        format!(
            "{}\n[recording]\ndir = \"{}\"\nrequired = true\n",
            config.replace(
                "[media]\n",
                "[media]\ninside_address = \"127.0.0.20\"\noutside_address = \"127.0.0.21\"\n"
            ),
            dir.join("recordings").display()
        )
    });
    let carrier_sip = carrier_sip.unwrap();
    let dir = scene.path().to_path_buf();
    let _carrier = Baresip::spawn(
        &dir,
        "carrier",
        CALLEE,
        carrier_sip,
        CARRIER_HZ,
        case.carrier_srtp,
        None,
    );
    std::thread::sleep(Duration::from_millis(500));
    let pbx_sip: SocketAddr = (PBX_IP, free_port(PBX_IP, false)).into();
    let dial = format!("sip:{CALLEE}@{}", scene.addrs.inside);
    let mut pbx = Baresip::spawn(
        &dir,
        "pbx",
        TRUNK_NUMBER,
        pbx_sip,
        PBX_HZ,
        case.pbx_srtp,
        Some(&dial),
    );
    if let Err(e) = pbx.wait(Duration::from_secs(PBX_SECS + 8)) {
        scene.fail(format!("{e}\n--- pbx baresip ---\n{}", pbx.log_tail()));
    }
    std::thread::sleep(Duration::from_millis(800));
    let cdrs = scene.stop_and_read_cdrs();
    let logs = || {
        format!(
            "--- pbx baresip ---\n{}\n--- carrier baresip ---\n{}",
            pbx.log_tail(),
            _carrier.log_tail()
        )
    };
    scene.ensure(cdrs.len() == 1, || {
        format!("expected one CDR, got {cdrs:#?}\n{}", logs())
    });
    let cdr: &Cdr = &cdrs[0];
    scene.ensure(
        cdr.outcome.final_status == 200 && cdr.outcome.talk_ms >= 2000,
        || {
            format!(
                "expected an answered call with talk time: {:#?}\n{}",
                cdr.outcome,
                logs()
            )
        },
    );
    let rec = cdr
        .recording
        .clone()
        .unwrap_or_else(|| scene.fail("no recording on the CDR"));
    scene.ensure(rec.status == RecordingStatus::Complete, || {
        format!("expected a complete recording: {rec:#?}")
    });
    let path = dir
        .join("recordings")
        .join(rec.path.clone().unwrap_or_default());
    let samples: Vec<i16> = hound::WavReader::open(&path)
        .unwrap_or_else(|e| scene.fail(format!("{}: {e}", path.display())))
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .unwrap();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let (agent, customer) = (
        tone_blocks(&left, PBX_HZ, CARRIER_HZ),
        tone_blocks(&right, CARRIER_HZ, PBX_HZ),
    );
    let media = format!("{:#?}", cdr.media);
    // About 5 s of talk: 50 blocks each; a margin for the start and the end.
    scene.ensure(agent >= 25 && customer >= 25, || {
        format!(
            "the recording should carry the PBX's tone on the left and the carrier's on the \
             right: {agent} and {customer} blocks of 100 ms (of {}); media {media}\n{}",
            left.len() / (RATE / 10),
            logs()
        )
    });
    // The SIP trace stored with the call: suites named, keys not.
    let trace = stored_trace(&dir, &cdr.attempt.id);
    let srtp = case.pbx_srtp || case.carrier_srtp;
    scene.ensure(
        !srtp || trace.contains("AES_CM_128_HMAC_SHA1_80 inline:<redacted>"),
        || format!("the trace should name the suite with the key redacted:\n{trace}"),
    );
    for line in trace.lines().filter(|l| l.contains("a=crypto")) {
        scene.ensure(line.contains("inline:<redacted>"), || {
            format!("a key in the trace: {line}")
        });
    }
}

#[test]
fn srtp_to_the_pbx_rtp_to_the_carrier() {
    srtp_call(Case {
        pbx_srtp: true,
        carrier_srtp: false,
    });
}

#[test]
fn rtp_from_the_pbx_srtp_to_the_carrier() {
    srtp_call(Case {
        pbx_srtp: false,
        carrier_srtp: true,
    });
}

#[test]
fn srtp_on_both_legs() {
    srtp_call(Case {
        pbx_srtp: true,
        carrier_srtp: true,
    });
}
