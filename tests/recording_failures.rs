//! Issue 16: admission reads the recordings folder's health verdict (no probe file per call, so
//! calls admitted in the same instant never collide), and a recording that fails after the
//! answer is never silent: `[recording] on_failure = "continue"` goes on unrecorded and counts
//! it, `"hangup"` ends the call with BYE on both legs (`recording_failed`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::api::{api_token, wait_for_cdrs, Api};
use common::recording::SmallDisk;
use common::rtp::{self, establish_with_media};
use common::*;
use trunkguard::api::Role;
use trunkguard::model::{Disposition, EndReason, HangupSide, RecordingStatus};

/// The value of one sample of `/metrics` (0 when absent).
async fn metric(h: &Harness, sample: &str) -> f64 {
    let api = Api::new(h);
    let bearer = api_token(h, &token("metrics"), Role::Admin, &[]).await;
    let text = api.get("/metrics", &bearer).await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

/// A file where the recordings folder was: nothing can be created under it, also as root.
fn break_recordings_folder(h: &Harness) {
    let dir = h.dir.path().join("recordings");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove");
    }
    std::fs::write(&dir, b"not a folder").expect("write");
}

/// INVITE, 100, the carrier's 100, then 200 with SDP from the carrier: the gateway opens the
/// recording now. Returns the PBX's INVITE, its 200 and the carrier's INVITE and tag.
async fn answer_after(h: &mut Harness, between: impl FnOnce(&Harness)) -> (Sent, Msg, Msg, String) {
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    between(h);
    let tag = token("ct");
    h.carrier
        .reply_with(&c_invite, 200, Some(&tag), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    (invite, ok, c_invite, tag)
}

#[tokio::test]
async fn many_invites_in_one_burst_are_never_refused_for_the_recording() {
    const N: usize = 200;
    let mut h = start_gateway(&[
        "recording.required = true",
        // The subject is the recording's admission check, not overload control: 200 INVITEs
        // read at once by a debug build may queue past its 200 ms and be refused `overload`.
        "sip.max_queue_delay_ms = 0",
        "trunk.max_concurrent = 1000",
        "trunk.max_concurrent_per_caller_id = 1000",
        "trunk.max_cps = 1000.0",
    ])
    .await;
    let mut sent = HashMap::new();
    for _ in 0..N {
        let invite = h
            .pbx
            .invite(h.inside(), &InviteSpec::new(CALLER, CALLEE))
            .await;
        sent.insert(invite.call_id.clone(), invite);
    }
    // Every call reaches the carrier: none was refused at admission (a refusal sends nothing
    // to the B side). The gateway retransmits an INVITE a full socket buffer dropped.
    let mut offered = Vec::new();
    for _ in 0..N {
        offered.push(h.carrier_gets_invite().await);
    }
    for inv in &offered {
        h.carrier.reply(inv, 486, Some(&token("b"))).await;
    }
    for _ in 0..N {
        let resp = h
            .pbx
            .next_new(Duration::from_secs(10), |m| {
                m.status().is_some_and(|s| s >= 200)
            })
            .await
            .expect("a final response for every call");
        assert_eq!(resp.status(), Some(486), "{}", resp.head());
        h.pbx.ack_non2xx(&sent[resp.call_id()], &resp).await;
    }
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), N);
    let refused: Vec<_> = cdrs
        .iter()
        .filter(|c| c.outcome.disposition == Disposition::Refused)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
}

#[tokio::test]
async fn a_recording_that_fails_at_the_answer_goes_on_unrecorded_and_is_counted() {
    let mut h = start_gateway(&["recording.required = true"]).await;
    let (invite, ok, _, _) = answer_after(&mut h, break_recordings_folder).await;
    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, invite.cseq).await;
    h.carrier.expect_request("ACK").await;
    // The call goes on.
    h.pbx.expect_nothing_new(Duration::from_millis(500)).await;
    assert_eq!(
        metric(
            &h,
            "trunkguard_recordings_failed_in_call_total{on_failure=\"continue\"}"
        )
        .await,
        1.0
    );
    h.pbx.bye(&mut pbx).await;
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    h.pbx.expect_response_to("BYE", 200).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.outcome.end_reason, EndReason::NormalClearing);
    let rec = cdr.recording.as_ref().expect("the CDR says why");
    assert_eq!(rec.status, RecordingStatus::Failed);
    assert!(
        rec.note
            .as_deref()
            .unwrap_or_default()
            .starts_with("recording_not_writable"),
        "{rec:#?}"
    );
}

#[tokio::test]
async fn with_on_failure_hangup_a_recording_that_fails_at_the_answer_ends_the_call() {
    let mut h = start_gateway(&["recording.on_failure = \"hangup\""]).await;
    let (invite, ok, _, _) = answer_after(&mut h, break_recordings_folder).await;
    let pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, invite.cseq).await;
    // The carrier's 200 is acknowledged, then both legs get a BYE.
    h.carrier.expect_request("ACK").await;
    let c_bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&c_bye, 200, None).await;
    let p_bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&p_bye, 200, None).await;
    wait_for_cdrs(&h, 1).await;
    assert_eq!(
        metric(
            &h,
            "trunkguard_recordings_failed_in_call_total{on_failure=\"hangup\"}"
        )
        .await,
        1.0
    );
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(
        cdr.outcome.end_reason,
        EndReason::RecordingFailed,
        "{cdr:#?}"
    );
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
    let rec = cdr.recording.as_ref().expect("the CDR says why");
    assert_eq!(rec.status, RecordingStatus::Failed);
}

#[tokio::test]
async fn with_on_failure_hangup_a_disk_that_fills_mid_call_ends_the_call() {
    let Some(disk) = SmallDisk::mount("512k") else {
        return;
    };
    let setting = disk.setting();
    let mut h = start_gateway(&[&setting, "recording.on_failure = \"hangup\""]).await;
    let m = establish_with_media(&mut h).await;
    // The PBX talks (a recording writes nothing before its first packet): once the disk is
    // full, the recorder's next write fails within a second or two.
    let (pbx_rtp, pbx_to) = (m.pbx_rtp, m.pbx_to);
    let talk = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        // At most 15 s of audio: the BYE is awaited 10 s.
        for seq in 0..750u16 {
            tick.tick().await;
            let _ = pbx_rtp
                .send_to(&rtp::tone_packet(seq, 0x1111, 440.0), pbx_to)
                .await;
        }
    });
    let _filler = disk.fill();
    let c_bye = h
        .carrier
        .expect_request_within("BYE", Duration::from_secs(10))
        .await;
    talk.abort();
    h.carrier.reply(&c_bye, 200, None).await;
    let p_bye = h.pbx.expect_request("BYE").await;
    assert_eq!(p_bye.call_id(), m.call.pbx.call_id);
    h.pbx.reply(&p_bye, 200, None).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(
        cdr.outcome.end_reason,
        EndReason::RecordingFailed,
        "{cdr:#?}"
    );
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
    let rec = cdr.recording.as_ref().expect("recording");
    assert_ne!(rec.status, RecordingStatus::Complete, "{rec:#?}");
    assert!(
        rec.note
            .as_deref()
            .unwrap_or_default()
            .contains("recording_disk_full"),
        "{rec:#?}"
    );
    drop(disk);
}
