//! Recording on a disk that fills up (a small tmpfs; skipped without root): mid-call, before
//! the answer, and at admission with the recording required or optional. The relay never
//! stalls, the failure is on the CDR, and the gateway's ports, leases, recordings and open files
//! are back to where they were before the call (`Idle`; one test at a time).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::recording::*;
use common::rtp::*;
use common::*;
use trunkguard::model::Disposition;
use trunkguard::model::{EndReason, RefusalReason};
use trunkguard::model::{RecordingInfo, RecordingStatus};

// ---------------------------------------------------------------------------------------------
// Disk full

/// `before` packets each way, then the disk fills (returns the filler file), then `after`
/// more packets, numbered on.
async fn talk_while_the_disk_fills(
    m: &RecordedCall,
    disk: &SmallDisk,
    (before, after): (usize, usize),
    agent: &dyn Fn(usize) -> Option<Vec<u8>>,
    customer: &dyn Fn(usize) -> Option<Vec<u8>>,
) -> PathBuf {
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
    filler
}

/// 25 packets each way on a full disk, then the PBX hangs up: the media flowed both ways
/// though nothing could be recorded, the gateway is idle again, the answered call's recording
/// failed for the full disk and nothing but the filler is left on the disk (no stray `.part`).
async fn talk_unrecorded_and_hang_up(
    mut h: Harness,
    mut m: RecordedCall,
    idle: Idle,
    disk: &SmallDisk,
) -> RecordingInfo {
    talk(
        &m.pbx,
        &m.carrier,
        25,
        |i| Some(rtp(i as u16, 1)),
        |i| Some(rtp(i as u16, 2)),
    )
    .await;
    h.hang_up_from_pbx(&mut m.call.pbx).await;
    assert_eq!(m.carrier.received().await.len(), 25, "media to the carrier");
    assert_eq!(m.pbx.received().await.len(), 25, "media to the PBX");
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    let rec = recording(cdr).clone();
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
    rec
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
    let filler = talk_while_the_disk_fills(&m, &disk, (before, after), &agent, &customer).await;
    h.hang_up_from_pbx(&mut m.call.pbx).await;
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
    h.hang_up_from_pbx(&mut m.call.pbx).await;
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
    assert_duration_is_the_files(rec, &wav);
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
    h.hang_up_from_pbx(&mut m.call.pbx).await;
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
    let m = establish(&mut h, &sdp_at).await;
    let rec = talk_unrecorded_and_hang_up(h, m, idle, &disk).await;
    assert_eq!(rec.path, None);
    drop(disk);
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
    let filler = talk_while_the_disk_fills(&m, &disk, (before, after), &agent, &customer).await;
    h.hang_up_from_pbx(&mut m.call.pbx).await;
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
async fn a_disk_that_fills_before_the_answer_leaves_the_answered_call_unrecorded_and_says_why() {
    let _serial = SERIAL.lock().await;
    let Some(disk) = SmallDisk::mount("256k") else {
        return;
    };
    // Required, but the call is answered by the time the file would be opened: it cannot be
    // refused any more, so it goes on unrecorded.
    let mut h = start_gateway(&[&disk.setting(), "recording.required = true"]).await;
    let idle = Idle::now(&h);
    let setup = CallSetup {
        sdp_of: &sdp_at,
        early: None,
    };
    let (mut m, invite, c_invite, tag) = place_call(&mut h, &setup).await;
    disk.fill();
    let answer = sdp_at(m.carrier.addr());
    answer_call(&mut h, &mut m, &invite, &c_invite, &tag, &answer).await;
    talk_unrecorded_and_hang_up(h, m, idle, &disk).await;
    drop(disk);
}
