//! Recording and early media: with `record_early_media` on the recording starts at the 183's
//! audio, off it starts at the answer, and a call refused without early media keeps no file.
//! After every test the gateway's ports, leases, recordings and open files are back to where
//! they were before the call (`Idle`; one test at a time).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::recording::*;
use common::rtp::*;
use common::*;
use trunkguard::model::RecordingStatus;
use trunkguard::model::{Cdr, Disposition};

// ---------------------------------------------------------------------------------------------
// Early media

/// An early-media call: 500 ms of ringing, then a 183 with SDP and one second of the carrier's
/// announcement (700 Hz), then the answer and one second of talk (agent 440 Hz, customer
/// 1 kHz). Returns the CDR and how long the call lasted from the 183 to the BYE.
async fn early_media_call(record_early: bool) -> (Cdr, f64, tempfile::TempDir) {
    let setting = format!("recording.record_early_media = {record_early}");
    let (mut h, keep) = start_keeping(&[&setting]).await;
    let idle = Idle::now(&h);
    let setup = CallSetup {
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
    h.hang_up_from_pbx(&mut m.call.pbx).await;
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
