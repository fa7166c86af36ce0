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
//! The PCMU call runs on both relay engines (`[media] engine`: epoll, the default, and
//! io_uring; the log must say which ran); the other tests run on `TRUNKGUARD_TEST_MEDIA_ENGINE`
//! when it is set (`io_uring` runs the whole file on that engine), else on epoll.
//!
//! Every process is bounded (SIPp `-timeout`, a Rust-side deadline, kill on drop) and a failure
//! prints the gateway log and the SIPp screens.
//!
//! This file holds the tests and what they share; their parts stand in `sipp_media/`: `audio.rs`
//! (the tones made, G.711-encoded, and each channel analysed), `call.rs` (the gateway and both SIPp
//! instances of one call), `checks.rs` (the CDR's media figures, the recording, `trunkguard
//! verify`).
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

#[path = "sipp_media/audio.rs"]
mod audio;
#[path = "sipp_media/call.rs"]
mod call;
#[path = "sipp_media/checks.rs"]
mod checks;

use audio::G711;
use call::{start_call, Engine};
use checks::{check_media_figures, check_recording, check_verify};

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

fn recorded_call_through_the_gateway(codec: G711, engine: Engine) {
    let mut call = start_call(codec, 0, 3000, false, engine);
    call.expect_call_completed();
    // The relay engine that ran (where io_uring cannot be set up, epoll runs instead: logged).
    let running = format!("running=\"{}\"", engine.name());
    let log = call.scene.gateway.log();
    let fell_back = log.contains("io_uring media engine unavailable");
    if fell_back {
        eprintln!("-- io_uring unavailable on this machine: the call ran on the epoll engine");
    }
    call.scene.ensure(fell_back || log.contains(&running), || {
        format!("the gateway's log does not say {running}")
    });
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
    recorded_call_through_the_gateway(G711::Pcmu, Engine::FromEnv);
}

/// The same call relayed by the io_uring engine (`[media] engine = "io_uring"`).
#[test]
fn pcmu_call_on_the_io_uring_engine_is_recorded_with_each_side_on_its_channel() {
    recorded_call_through_the_gateway(G711::Pcmu, Engine::IoUring);
}

/// PCMA both ways: the agent's 440 Hz on the left, the customer's 1 kHz on the right.
#[test]
fn pcma_call_is_recorded_with_each_side_on_its_channel() {
    recorded_call_through_the_gateway(G711::Pcma, Engine::FromEnv);
}

/// A late offer (issue 15, item 4): the carrier's offer in its 200 and the PBX's answer in its
/// ACK both cross anchored, and the audio flows and is recorded both ways.
#[test]
fn late_offer_call_is_recorded_with_each_side_on_its_channel() {
    let mut call = start_call(G711::Pcmu, 0, 3000, true, Engine::FromEnv);
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
    let mut call = start_call(G711::Pcmu, 1500, 3000, false, Engine::FromEnv);
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
    let mut call = start_call(G711::Pcmu, 0, 4000, false, Engine::FromEnv);
    std::thread::sleep(Duration::from_millis(1200));
    let r = call.scene.sipps[call.pbx].suspend_for(Duration::from_millis(1500));
    call.scene.ok(r);
    call.expect_call_completed();
    let cdr = call.the_cdr();
    check_media_figures(&call.scene, &cdr);
    check_recording(&call.scene, &cdr);
}
