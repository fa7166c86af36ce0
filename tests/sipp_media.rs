//! Media and recording with SIPp: the real `trunkguard` binary between SIPp as the PBX (UAC) and
//! SIPp as the carrier (UAS), both talking through the gateway with SIPp's RTPSTREAM
//! (`<exec rtp_stream="FILE,LOOPS"/>`, payload type from `-rtp_payload`), once with PCMU and
//! once with PCMA. The audio is made here: one second of a tone, G.711-encoded with the
//! gateway's own encoder, looped by SIPp: 440 Hz from the PBX, 1 kHz from the carrier.
//!
//! After the call the gateway is stopped with SIGTERM (CDRs flushed) and the test checks:
//! - the SDP each SIPp received names the gateway's media address and only the codec under
//!   test (from SIPp's `-trace_msg` log);
//! - the CDR's per-leg media figures: packets in on both legs, nothing lost, nothing stray,
//!   every packet received on one leg relayed to the other;
//! - the recording: complete, mode 0600, its SHA-256 the one on the CDR, a 2-channel 8 kHz
//!   16-bit WAV (hound) whose left channel carries the PBX's tone and not the carrier's and
//!   whose right channel carries the carrier's and not the PBX's (Goertzel), with every
//!   received packet's audio present, and as long as the call's talk time (±0.3 s);
//! - `trunkguard verify` by path and by call id: 0 for the file as recorded, 1 once a byte of
//!   it is flipped, 0 again once it is restored.
//!
//! Every process is bounded (SIPp `-timeout`, a Rust-side deadline, kill on drop) and a failure
//! prints the gateway log and the SIPp screens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use harness::{
    args, Scenario, Scene, SippSpec, TrunkLimits, CARRIER_IP, INSIDE_IP, OUTSIDE_IP, PBX_IP,
    TRUNK_NUMBER,
};
use sha2::{Digest, Sha256};
use trunkguard::model::{Cdr, Direction, Disposition};
use trunkguard::model::{LegQuality, RecordingStatus};
use trunkguard::recording::g711::{encode_alaw, encode_ulaw};

const CALLEE: &str = "8613800138000";
/// What the PBX (the agent, left channel) plays.
const PBX_HZ: f64 = 440.0;
/// What the carrier (the customer, right channel) plays.
const CARRIER_HZ: f64 = 1000.0;
/// Peak of the generated tones (about -12 dBFS).
const AMPLITUDE: f64 = 8000.0;
const RATE: usize = 8000;
/// Goertzel blocks: 100 ms, a whole number of cycles of both tones.
const BLOCK: usize = RATE / 10;
/// SIPp's packets: 20 ms of G.711.
const PACKET_MS: u64 = 20;
/// SIPp instance names (and their directories, where the audio files go).
const PBX_SIPP: &str = "pbx-uac-media";
const CARRIER_SIPP: &str = "carrier-uas-media";

#[derive(Debug, Clone, Copy)]
enum G711 {
    Pcmu,
    Pcma,
}

impl G711 {
    fn payload_type(self) -> u8 {
        match self {
            G711::Pcmu => 0,
            G711::Pcma => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            G711::Pcmu => "PCMU",
            G711::Pcma => "PCMA",
        }
    }

    fn encode(self, sample: i16) -> u8 {
        match self {
            G711::Pcmu => encode_ulaw(sample),
            G711::Pcma => encode_alaw(sample),
        }
    }
}

/// One second of a sine at `hz` as raw G.711 (what RTPSTREAM reads: no header). A whole number
/// of cycles, so that SIPp can loop it without a click.
fn tone(hz: f64, codec: G711) -> Vec<u8> {
    (0..RATE)
        .map(|i| {
            let t = i as f64 / RATE as f64;
            codec.encode((AMPLITUDE * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
        })
        .collect()
}

/// Power of `samples` at `hz` (Goertzel), normalized by length: a full-scale sine of amplitude
/// A gives A²/4.
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

/// What one channel of the recording holds.
#[derive(Debug)]
struct ChannelReport {
    /// Power at this channel's own tone and at the other side's, over the whole channel.
    own: f64,
    other: f64,
    /// 100 ms blocks that are all this channel's tone, undistorted, at the level sent (and
    /// nothing of the other's).
    tone_blocks: usize,
    /// 100 ms blocks that carry some of the other side's tone.
    crosstalk_blocks: usize,
}

fn analyse(channel: &[i16], own_hz: f64, other_hz: f64) -> ChannelReport {
    let full = AMPLITUDE * AMPLITUDE / 4.0;
    let mut tone_blocks = 0;
    let mut crosstalk_blocks = 0;
    for block in channel.chunks_exact(BLOCK) {
        let own = power_at(block, own_hz);
        let other = power_at(block, other_hz);
        // A sine's mean square is twice its Goertzel power: anything else in the block
        // (distortion, as when PCMA is decoded as PCMU) lowers this purity.
        let mean_square =
            block.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / block.len() as f64;
        let purity = 2.0 * own / mean_square.max(1.0);
        // 0.8 to 1.2 of the power: the tone, at the level sent, fills about 90 % of the block
        // or more.
        if own > 0.8 * full && own < 1.2 * full && purity > 0.95 && other < own / 1000.0 {
            tone_blocks += 1;
        }
        if other > full / 1000.0 {
            crosstalk_blocks += 1;
        }
    }
    ChannelReport {
        own: power_at(channel, own_hz),
        other: power_at(channel, other_hz),
        tone_blocks,
        crosstalk_blocks,
    }
}

fn free_local(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::new(ip.into(), harness::free_port(ip, false))
}

/// The audio part of an SDP body: the `c=` address, the `m=audio` port and formats, and the
/// `a=rtpmap` lines.
#[derive(Debug)]
struct AudioSdp {
    address: String,
    port: u16,
    formats: Vec<String>,
    rtpmaps: Vec<String>,
}

fn audio_sdp(message: &str) -> Option<AudioSdp> {
    let lines: Vec<&str> = message.lines().map(str::trim).collect();
    let address = lines
        .iter()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .to_string();
    let mut m = lines
        .iter()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split_whitespace();
    let port = m.next()?.parse().ok()?;
    if m.next()? != "RTP/AVP" {
        return None;
    }
    Some(AudioSdp {
        address,
        port,
        formats: m.map(str::to_string).collect(),
        rtpmaps: lines
            .iter()
            .filter_map(|l| l.strip_prefix("a=rtpmap:"))
            .map(str::to_string)
            .collect(),
    })
}

/// A call in progress: the gateway, the carrier (index 0) and the PBX (index 1).
struct MediaCall {
    scene: Scene,
    codec: G711,
    carrier: usize,
    pbx: usize,
    /// The PBX's INVITE has no SDP: the offer comes in the 200, the answer in the ACK.
    late: bool,
}

/// Starts the gateway (media anchored on its interface addresses, recordings in the test's
/// directory), the carrier (answers after `ring_ms`) and the PBX (hangs up `talk_ms` after
/// the answer), both streaming their tone in `codec`; `late`: with a late offer.
fn start_call(codec: G711, ring_ms: u64, talk_ms: u64, late: bool) -> MediaCall {
    let mut scene = Scene::start_with(TrunkLimits::default(), |dir| {
        format!(
            "\n[media]\ninside_address = \"{INSIDE_IP}\"\noutside_address = \"{OUTSIDE_IP}\"\n\
             \n[recording]\ndir = \"{}\"\nrequired = true\n",
            dir.join("recordings").display()
        )
    });
    // RTPSTREAM caches its file when the scenario loads: it must be there first.
    for (name, file, hz) in [
        (PBX_SIPP, "pbx.g711", PBX_HZ),
        (CARRIER_SIPP, "carrier.g711", CARRIER_HZ),
    ] {
        let path = harness::sipp_dir(scene.path(), name).join(file);
        fs::write(&path, tone(hz, codec)).expect("write the test audio");
    }
    let pt = codec.payload_type().to_string();
    // RTP ports: SIPp binds its streams from -mp upwards (next free even offset); a port picked
    // free per instance keeps parallel tests apart.
    let media = |ip: Ipv4Addr| harness::free_port(ip, false).to_string();
    let codec_args = |ip: Ipv4Addr| {
        args(&[
            "-mi",
            &ip.to_string(),
            "-mp",
            &media(ip),
            "-rtp_payload",
            &pt,
            "-key",
            "codec_pt",
            &pt,
            "-key",
            "codec_name",
            codec.name(),
            "-m",
            "1",
            "-trace_msg",
        ])
    };
    let carrier_local = scene.addrs.carrier;
    let mut carrier_args = codec_args(CARRIER_IP);
    carrier_args.extend(args(&["-key", "ring_ms", &ring_ms.to_string()]));
    let carrier = scene.sipp(SippSpec {
        name: CARRIER_SIPP,
        scenario: Scenario::File(if late {
            "carrier_uas_media_late.xml"
        } else {
            "carrier_uas_media.xml"
        }),
        local: carrier_local,
        remote: None,
        args: carrier_args,
        timeout_secs: 30,
    });
    let inside = scene.addrs.inside;
    let mut pbx_args = codec_args(PBX_IP);
    pbx_args.extend(args(&[
        "-key",
        "caller",
        TRUNK_NUMBER,
        "-s",
        CALLEE,
        "-d",
        &talk_ms.to_string(),
    ]));
    let pbx = scene.sipp(SippSpec {
        name: PBX_SIPP,
        scenario: Scenario::File(if late {
            "pbx_uac_media_late.xml"
        } else {
            "pbx_uac_media.xml"
        }),
        local: free_local(PBX_IP),
        remote: Some(inside),
        args: pbx_args,
        timeout_secs: 30,
    });
    MediaCall {
        scene,
        codec,
        carrier,
        pbx,
        late,
    }
}

impl MediaCall {
    /// Both SIPp instances end by themselves with one successful call each, and the SDP each
    /// received offers/answers the codec under test on the gateway's media address.
    fn expect_call_completed(&mut self) {
        let scene = &mut self.scene;
        scene.expect_exit_ok(self.pbx);
        scene.expect_exit_ok(self.carrier);
        for (i, role) in [(self.pbx, "PBX"), (self.carrier, "carrier")] {
            let stats = scene.ok(scene.sipps[i].stats());
            let ok = scene.ok(stats.get("SuccessfulCall"));
            let failed = scene.ok(stats.get("FailedCall"));
            scene.ensure(ok == 1 && failed == 0, || {
                format!("{role} SIPp: {ok} successful, {failed} failed calls; expected 1/0")
            });
        }

        let pt = self.codec.payload_type().to_string();
        let rtpmap = format!("{pt} {}/8000", self.codec.name());
        // The PBX got the carrier's answer in the 200 to its INVITE; the carrier got the
        // PBX's offer in the INVITE (late offer: the other way round, the carrier's offer in
        // the 200, the PBX's answer in the ACK). Both rewritten by the gateway to its own
        // media address.
        let pbx_msgs = scene.ok(scene.sipps[self.pbx].received_messages());
        let answer = pbx_msgs
            .iter()
            .find(|m| {
                m.starts_with("SIP/2.0 200") && m.lines().any(|l| l.trim().ends_with("1 INVITE"))
            })
            .cloned();
        let carrier_msgs = scene.ok(scene.sipps[self.carrier].received_messages());
        let late = self.late;
        let offer = carrier_msgs
            .iter()
            .find(|m| m.starts_with(if late { "ACK " } else { "INVITE " }))
            .cloned();
        for (what, msg, media_ip) in [
            ("answer the PBX received", answer, INSIDE_IP),
            ("offer the carrier received", offer, OUTSIDE_IP),
        ] {
            let Some(msg) = msg else {
                scene.fail(format!("no {what} in SIPp's message trace"))
            };
            let sdp = audio_sdp(&msg);
            scene.ensure(
                sdp.as_ref().is_some_and(|s| {
                    s.address == media_ip.to_string()
                        && s.port != 0
                        && s.formats == [pt.clone()]
                        && s.rtpmaps.contains(&rtpmap)
                }),
                || {
                    format!(
                        "the {what} should name only {rtpmap} on {media_ip}; found {sdp:?} in:\n{msg}"
                    )
                },
            );
        }
    }

    /// SIGTERM the gateway and read the one CDR, an answered outbound call with a recording.
    fn the_cdr(&mut self) -> Cdr {
        let cdrs = self.scene.stop_and_read_cdrs();
        let scene = &self.scene;
        scene.ensure(cdrs.len() == 1, || {
            format!("expected one CDR, found {}: {cdrs:#?}", cdrs.len())
        });
        let cdr = cdrs.into_iter().next().expect("one CDR");
        scene.ensure(
            cdr.attempt.direction == Direction::Outbound
                && cdr.outcome.disposition == Disposition::Answered
                && cdr.outcome.final_status == 200
                && cdr.outcome.talk_ms > 0
                && cdr.recording.is_some(),
            || format!("expected an answered outbound call with a recording: {cdr:#?}"),
        );
        cdr
    }
}

fn leg<'a>(scene: &Scene, cdr: &'a Cdr, name: &str) -> &'a LegQuality {
    cdr.media
        .iter()
        .find(|q| q.leg == name)
        .unwrap_or_else(|| scene.fail(format!("no {name} leg in the CDR's media: {cdr:#?}")))
}

/// Per-leg figures: both peers sent, nothing was lost or stray on loopback, and everything
/// received on one leg was relayed to the other.
fn check_media_figures(scene: &Scene, cdr: &Cdr) {
    let inside = leg(scene, cdr, "inside");
    let outside = leg(scene, cdr, "outside");
    scene.ensure(
        inside.packets_in > 0
            && outside.packets_in > 0
            && inside.lost == 0
            && outside.lost == 0
            && inside.stray == 0
            && outside.stray == 0
            && outside.packets_out == inside.packets_in
            && inside.packets_out == outside.packets_in,
        || {
            format!(
                "per-leg media: expected packets in on both legs, 0 lost, 0 stray, and every \
                 packet relayed; found\ninside: {inside:#?}\noutside: {outside:#?}"
            )
        },
    );
}

/// The recording: complete, evidence that verifies, two channels each with its own side's
/// audio, every received packet in it, as long as the talk time. Returns the WAV's path.
fn check_recording(scene: &Scene, cdr: &Cdr) -> String {
    let rec = cdr.recording.as_ref().expect("checked by the_cdr");
    let inside = leg(scene, cdr, "inside");
    let outside = leg(scene, cdr, "outside");
    let Some(stored) = rec.path.clone() else {
        scene.fail(format!("the recording has no path: {rec:#?}"))
    };
    // Stored relative to the recordings folder (the test's `recordings`).
    scene.ensure(!std::path::Path::new(&stored).is_absolute(), || {
        format!("a stored path relative to the recordings folder: {stored}")
    });
    let path = scene
        .path()
        .join("recordings")
        .join(&stored)
        .display()
        .to_string();
    scene.ensure(
        rec.status == RecordingStatus::Complete && rec.overflowed_packets == 0,
        || format!("expected a complete recording without overflow: {rec:#?}"),
    );
    let bytes = fs::read(&path).unwrap_or_else(|e| scene.fail(format!("cannot read {path}: {e}")));
    let digest = format!("{:x}", Sha256::digest(&bytes));
    scene.ensure(rec.sha256.as_deref() == Some(digest.as_str()), || {
        format!(
            "the file's SHA-256 is {digest}, the CDR says {:?}",
            rec.sha256
        )
    });
    scene.ensure(rec.size_bytes == bytes.len() as i64, || {
        format!(
            "the file has {} bytes, the CDR says {}",
            bytes.len(),
            rec.size_bytes
        )
    });
    let mode = fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    scene.ensure(mode == 0o600, || {
        format!("the recording's mode is {mode:o}, expected 600")
    });

    let mut reader = hound::WavReader::open(&path)
        .unwrap_or_else(|e| scene.fail(format!("{path} is not a WAV hound can read: {e}")));
    let spec = reader.spec();
    scene.ensure(
        spec.channels == 2
            && spec.sample_rate == RATE as u32
            && spec.bits_per_sample == 16
            && spec.sample_format == hound::SampleFormat::Int,
        || format!("expected stereo 8 kHz 16-bit PCM, found {spec:?}"),
    );
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| scene.fail(format!("cannot read the samples of {path}: {e}")));
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let file_ms = left.len() as f64 * 1000.0 / RATE as f64;
    let agent = analyse(&left, PBX_HZ, CARRIER_HZ);
    let customer = analyse(&right, CARRIER_HZ, PBX_HZ);
    let figures = || {
        format!(
            "file {file_ms:.0} ms (CDR duration {} ms), talk {} ms; left (agent, {} packets in): \
             {agent:?}; right (customer, {} packets in): {customer:?}",
            rec.duration_ms, cdr.outcome.talk_ms, inside.packets_in, outside.packets_in
        )
    };

    // Each channel is its own side's tone, and not the other's.
    scene.ensure(
        agent.own > 100.0 * agent.other && agent.crosstalk_blocks == 0,
        || format!("the left channel should carry the PBX's {PBX_HZ} Hz and not the carrier's {CARRIER_HZ} Hz: {}", figures()),
    );
    scene.ensure(
        customer.own > 100.0 * customer.other && customer.crosstalk_blocks == 0,
        || format!("the right channel should carry the carrier's {CARRIER_HZ} Hz and not the PBX's {PBX_HZ} Hz: {}", figures()),
    );
    // Every packet the gateway received is in the file: N packets of 20 ms make a run of
    // N·20 ms of tone, which covers all but at most the two 100 ms blocks at its ends.
    for (name, report, q) in [("left", &agent, inside), ("right", &customer, outside)] {
        let expected = (q.packets_in * PACKET_MS / 100).saturating_sub(2);
        scene.ensure(report.tone_blocks as u64 >= expected, || {
            format!(
                "the {name} channel has {} blocks of 100 ms of the tone as sent; the {} packets received \
                 make at least {expected}: audio the gateway received is missing or altered. {}",
                report.tone_blocks,
                q.packets_in,
                figures()
            )
        });
    }
    // The file spans the call's talk time, and the CDR's duration is the file's.
    scene.ensure(
        (file_ms - cdr.outcome.talk_ms as f64).abs() <= 300.0,
        || {
            format!(
                "the file should be as long as the talk time (±300 ms): {}",
                figures()
            )
        },
    );
    scene.ensure((file_ms - rec.duration_ms as f64).abs() <= 1.0, || {
        format!("the CDR's duration should be the file's: {}", figures())
    });
    path
}

/// `trunkguard verify` by path and by call id: 0 for the file as recorded, 1 once one byte is
/// flipped, 0 again once the original bytes are back.
fn check_verify(scene: &Scene, cdr: &Cdr, path: &str) {
    let expect = |target: &str, code: i32, when: &str| {
        let (got, out) = scene.ok(scene.gateway.verify(target));
        scene.ensure(got == Some(code), || {
            format!("`trunkguard verify {target}` {when}: exit {got:?}, expected {code}; it said:\n{out}")
        });
    };
    expect(path, 0, "on the file as recorded");
    expect(&cdr.attempt.id, 0, "by call id, on the file as recorded");

    let original = fs::read(path).expect("read the recording");
    let copy = scene.path().join("pristine.wav");
    fs::write(&copy, &original).expect("keep a copy");
    let mut tampered = original.clone();
    // One bit of one sample in the middle of the audio.
    let at = 44 + (tampered.len() - 44) / 2;
    tampered[at] ^= 0x01;
    fs::write(path, &tampered).expect("flip a byte of the recording");
    expect(path, 1, "after a byte of the file was flipped");
    expect(
        &cdr.attempt.id,
        1,
        "by call id, after a byte of the file was flipped",
    );

    fs::copy(&copy, path).expect("restore the recording");
    expect(path, 0, "once the original bytes are back");
}

fn recorded_call_through_the_gateway(codec: G711) {
    let mut call = start_call(codec, 0, 3000, false);
    call.expect_call_completed();
    let cdr = call.the_cdr();
    let scene = &call.scene;
    check_media_figures(scene, &cdr);
    let rec = cdr.recording.as_ref().expect("checked");
    scene.ensure(rec.codec.as_deref() == Some(codec.name()), || {
        format!(
            "the recording's codec is {:?}, expected {}",
            rec.codec,
            codec.name()
        )
    });
    let path = check_recording(scene, &cdr);
    check_verify(scene, &cdr, &path);
}

/// PCMU both ways: the agent's 440 Hz on the left, the customer's 1 kHz on the right.
#[test]
fn pcmu_call_is_recorded_with_each_side_on_its_channel() {
    recorded_call_through_the_gateway(G711::Pcmu);
}

/// PCMA both ways: the agent's 440 Hz on the left, the customer's 1 kHz on the right.
#[test]
fn pcma_call_is_recorded_with_each_side_on_its_channel() {
    recorded_call_through_the_gateway(G711::Pcma);
}

/// A late offer (issue 15, item 4): the carrier's offer in its 200 and the PBX's answer in its
/// ACK both cross anchored, and the audio flows and is recorded both ways.
#[test]
fn late_offer_call_is_recorded_with_each_side_on_its_channel() {
    let mut call = start_call(G711::Pcmu, 0, 3000, true);
    call.expect_call_completed();
    let cdr = call.the_cdr();
    check_media_figures(&call.scene, &cdr);
    check_recording(&call.scene, &cdr);
}

/// The carrier rings for 1.5 s before it answers. With `record_early_media = false` the
/// recording covers the talk time: the file is opened at the answer, so the ringing is not in
/// it as leading silence (the file and the CDR's `duration_ms` match the talk time).
#[test]
fn ringing_is_not_in_the_recording() {
    let mut call = start_call(G711::Pcmu, 1500, 3000, false);
    call.expect_call_completed();
    let cdr = call.the_cdr();
    check_media_figures(&call.scene, &cdr);
    check_recording(&call.scene, &cdr);
}

/// The PBX's SIPp is stopped for 1.5 s mid-call (as a sender, a host or a network path can
/// stall); on resuming it sends the 75 packets it owes at once (consecutive sequence numbers and
/// timestamps), then goes on in real time. Every packet is relayed, and the recording keeps all
/// of them where their timestamps say: the owed packets come after their place was written, so
/// the recorder puts them into the file afterwards (`src/recording/timeline.rs`, patches), the
/// channel has no hole, and the file is as long as the call.
#[test]
fn a_burst_after_a_sender_stall_keeps_every_received_packet() {
    let mut call = start_call(G711::Pcmu, 0, 4000, false);
    std::thread::sleep(Duration::from_millis(1200));
    let r = call.scene.sipps[call.pbx].suspend_for(Duration::from_millis(1500));
    call.scene.ok(r);
    call.expect_call_completed();
    let cdr = call.the_cdr();
    check_media_figures(&call.scene, &cdr);
    check_recording(&call.scene, &cdr);
}
