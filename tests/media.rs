//! Media anchoring through a real call: RTP both ways through the gateway's ports, the media
//! timeout, and the ports back in the pool after every ending.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::rtp::*;
use common::*;
use tokio::net::UdpSocket;
use trunkguard::media::DropReason;
use trunkguard::model::Disposition;
use trunkguard::model::{EndReason, RefusalReason};

async fn recv_rtp(sock: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some((buf[..n].to_vec(), from))
}

#[tokio::test]
async fn rtp_crosses_the_gateway_both_ways() {
    let mut h = start_gateway(&[]).await;
    let mut m = establish_with_media(&mut h).await;
    // The peers were given the gateway's media address, never each other's.
    assert_eq!(m.pbx_to.ip().to_string(), MEDIA_IP);
    assert_eq!(m.carrier_to.ip().to_string(), MEDIA_IP);
    assert_ne!(m.pbx_to, m.carrier_to, "one port pair per leg");

    for seq in 0..20u16 {
        m.pbx_rtp
            .send_to(&rtp(seq, 0x1111), m.pbx_to)
            .await
            .expect("send");
        let (pkt, from) = recv_rtp(&m.carrier_rtp)
            .await
            .expect("carrier gets the agent's RTP");
        assert_eq!(pkt, rtp(seq, 0x1111), "relayed unchanged");
        assert_eq!(from, m.carrier_to, "from the gateway's outside port");
        m.carrier_rtp
            .send_to(&rtp(seq, 0x2222), m.carrier_to)
            .await
            .expect("send");
        let (pkt, from) = recv_rtp(&m.pbx_rtp)
            .await
            .expect("PBX gets the customer's RTP");
        assert_eq!(pkt, rtp(seq, 0x2222));
        assert_eq!(from, m.pbx_to);
    }
    // A stray source aimed at the agent's anchor is not relayed.
    let stray = UdpSocket::bind(format!("{PBX_IP}:0")).await.expect("bind");
    stray
        .send_to(&rtp(999, 0x6666), m.pbx_to)
        .await
        .expect("send");
    assert!(
        recv_rtp(&m.carrier_rtp).await.is_none(),
        "stray packet relayed"
    );

    h.hang_up_from_pbx(&mut m.call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn silence_ends_the_call_after_the_media_timeout() {
    let mut h = start_gateway(&["media.timeout_secs = 1"]).await;
    let m = establish_with_media(&mut h).await;
    // A little RTP, then nothing: the gateway ends the call on both legs.
    m.pbx_rtp
        .send_to(&rtp(1, 0x1111), m.pbx_to)
        .await
        .expect("send");
    let p_bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&p_bye, 200, None).await;
    let c_bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&c_bye, 200, None).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.end_reason, EndReason::MediaTimeout);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    drop(m);
}

#[tokio::test]
async fn a_ringing_call_owes_no_rtp() {
    let mut h = start_gateway(&["media.timeout_secs = 1"]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("r")).await;
    h.pbx.expect_response(180).await;
    // Longer than the media timeout while ringing: no BYE, no CANCEL.
    h.carrier.expect_silence(Duration::from_millis(1500)).await;
    h.pbx.cancel(&invite).await;
    h.pbx.expect_response(200).await;
    let c_cancel = h.carrier.expect_request("CANCEL").await;
    h.carrier.reply(&c_cancel, 200, None).await;
    h.carrier.reply(&c_invite, 487, Some("r")).await;
    h.pbx.expect_response(487).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Cancelled);
}

#[tokio::test]
async fn an_answered_call_is_recorded_in_stereo_with_each_side_on_its_channel() {
    // Our own recordings dir and database: the harness's go with it.
    let keep = tempfile::tempdir().expect("tempdir");
    let recordings = format!("recording.dir = \"{}/rec\"", keep.path().display());
    let db = format!(
        "database.url = \"sqlite://{}/tg.db\"",
        keep.path().display()
    );
    let mut h = start_gateway(&[&recordings, &db]).await;
    let mut m = establish_with_media(&mut h).await;
    // One second each way: the agent at 440 Hz, the customer at 1 kHz, paced like a phone.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..50u16 {
        tick.tick().await;
        m.pbx_rtp
            .send_to(&tone_packet(seq, 0x1111, 440.0), m.pbx_to)
            .await
            .expect("send");
        m.carrier_rtp
            .send_to(&tone_packet(seq, 0x2222, 1000.0), m.carrier_to)
            .await
            .expect("send");
    }
    h.pbx.bye(&mut m.call.pbx).await;
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    let store = h.gw.store().clone();
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    let rec = cdr.recording.as_ref().expect("recording on the CDR");
    assert_eq!(
        rec.status,
        trunkguard::model::RecordingStatus::Complete,
        "{rec:#?}"
    );
    // Stored relative to the recordings folder (any node finds it in a shared one); the
    // harness gives it resolved.
    let root = keep.path().join("rec");
    let stored = store.recording(&cdr.attempt.id).await.unwrap().unwrap();
    let stored = stored.path.expect("a stored path");
    assert!(!std::path::Path::new(&stored).is_absolute(), "{stored}");
    let path = rec.path.as_deref().expect("path");
    assert_eq!(std::path::Path::new(path), root.join(&stored));
    assert!(
        trunkguard::recording::digest::verify(
            std::path::Path::new(path),
            rec.sha256.as_deref().expect("digest")
        )
        .expect("readable"),
        "digest matches"
    );
    let mut reader = hound::WavReader::open(path).expect("a playable WAV");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    // The file spans the call (about 1 s of talk), give or take the setup and a packet.
    let secs = left.len() as f64 / 8000.0;
    let talk = cdr.outcome.talk_ms as f64 / 1000.0;
    assert!(
        (secs - talk).abs() < 0.3,
        "file {secs:.2} s vs talk {talk:.2} s"
    );
    assert!(
        power_at(&left, 440.0, 8000.0) > 10.0 * power_at(&left, 1000.0, 8000.0),
        "left = agent"
    );
    assert!(
        power_at(&right, 1000.0, 8000.0) > 10.0 * power_at(&right, 440.0, 8000.0),
        "right = customer"
    );
    // Per-leg quality is on the CDR.
    let inside = cdr
        .media
        .iter()
        .find(|q| q.leg == "inside")
        .expect("inside leg");
    assert_eq!(inside.packets_in, 50);
    assert_eq!(inside.lost, 0);

    // `trunkguard verify`: by call id and by path, then after tampering.
    use trunkguard::evidence::verify::verify;
    let v = verify(&store, &root, &cdr.attempt.id)
        .await
        .expect("verify by call id");
    assert!(v.matches(), "{v:?}");
    let v = verify(&store, &root, path).await.expect("verify by path");
    assert!(
        v.matches() && v.call_id.as_deref() == Some(cdr.attempt.id.as_str()),
        "{v:?}"
    );
    let mut bytes = std::fs::read(path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(path, bytes).expect("tamper");
    let v = verify(&store, &root, &cdr.attempt.id)
        .await
        .expect("verify tampered");
    assert!(!v.matches(), "a changed file must not verify");
}

#[tokio::test]
async fn a_recording_that_cannot_start_refuses_the_call_when_required() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("file");
    let setting = format!("recording.dir = \"{}/recordings\"", blocker.display());
    let mut h = start_gateway(&[&setting, "recording.required = true"]).await;
    h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(503).await;
    assert!(resp.header("Retry-After").is_some());
    h.carrier.expect_silence(Duration::from_millis(300)).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Refused);
    assert_eq!(
        cdr.outcome.refusal_reason,
        Some(RefusalReason::RecordingNotWritable)
    );
}

#[tokio::test]
async fn with_recording_optional_the_call_goes_on_unrecorded_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("file");
    let setting = format!("recording.dir = \"{}/recordings\"", blocker.display());
    let mut h = start_gateway(&[&setting, "recording.required = false"]).await;
    let mut call = h.establish().await;
    h.pbx.bye(&mut call.pbx).await;
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    let rec = cdr
        .recording
        .as_ref()
        .expect("the CDR says why there is no recording");
    assert_eq!(rec.status, trunkguard::model::RecordingStatus::Failed);
    assert!(
        rec.note
            .as_deref()
            .unwrap_or_default()
            .starts_with("recording_not_writable"),
        "{rec:#?}"
    );
}

/// SDP naming a real RTP socket with a given direction (hold: `sendonly`).
fn sdp_dir(addr: SocketAddr, direction: &str) -> String {
    sdp_at(addr).replace("a=sendrecv", &format!("a={direction}"))
}

#[tokio::test]
async fn hold_suspends_the_media_timeout_and_resume_rearms_it() {
    let mut h = start_gateway(&["media.timeout_secs = 1"]).await;
    let mut m = establish_with_media(&mut h).await;
    // The PBX puts the customer on hold: a re-INVITE with a=sendonly, answered recvonly.
    let hold = sdp_dir(m.pbx_rtp.local_addr().expect("addr"), "sendonly");
    h.pbx
        .in_dialog(&mut m.call.pbx, "INVITE", Some(("application/sdp", &hold)))
        .await;
    let reinvite = h.carrier.expect_request("INVITE").await;
    assert!(reinvite.body.contains("a=sendonly"), "{}", reinvite.body);
    let answer = sdp_dir(m.carrier_rtp.local_addr().expect("addr"), "recvonly");
    h.carrier
        .reply_with(&reinvite, 200, None, &[], Some(&answer))
        .await;
    let ok = h.pbx.expect_response_to("INVITE", 200).await;
    h.pbx
        .in_dialog_with(&m.call.pbx, "ACK", ok.cseq().0, &[], None)
        .await;
    h.carrier.expect_request("ACK").await;
    // On hold, silence is no failure: no BYE for longer than the timeout.
    h.pbx.expect_response_to("INVITE", 100).await;
    h.pbx.expect_silence(Duration::from_millis(2500)).await;
    h.carrier.expect_silence(Duration::from_millis(10)).await;

    // Resume, and stay silent: now the timeout ends the call.
    let resume = sdp_at(m.pbx_rtp.local_addr().expect("addr"));
    h.pbx
        .in_dialog(
            &mut m.call.pbx,
            "INVITE",
            Some(("application/sdp", &resume)),
        )
        .await;
    let reinvite = h.carrier.expect_request("INVITE").await;
    let answer = sdp_at(m.carrier_rtp.local_addr().expect("addr"));
    h.carrier
        .reply_with(&reinvite, 200, None, &[], Some(&answer))
        .await;
    let ok = h.pbx.expect_response_to("INVITE", 200).await;
    h.pbx
        .in_dialog_with(&m.call.pbx, "ACK", ok.cseq().0, &[], None)
        .await;
    h.carrier.expect_request("ACK").await;
    let bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&bye, 200, None).await;
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.end_reason, EndReason::MediaTimeout);
}

/// An RFC 4733 end-of-event packet for `digit` (event code), sent three times as senders do.
fn dtmf_end(seq: u16, ssrc: u32, event: u8) -> Vec<u8> {
    let mut p = vec![0x80, 101];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&8000u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[event, 0x80 | 10, 0x03, 0x20]); // end bit, volume 10, 800 samples
    p
}

#[tokio::test]
async fn loss_and_dtmf_are_on_the_cdr() {
    let mut h = start_gateway(&[]).await;
    let mut m = establish_with_media(&mut h).await;
    // 50 packets from the PBX with 5 missing, then the digit 5 (end packet sent three times).
    for seq in (0..50u16).filter(|s| !(20..25).contains(s)) {
        m.pbx_rtp
            .send_to(&rtp(seq, 0x1111), m.pbx_to)
            .await
            .expect("send");
        recv_rtp(&m.carrier_rtp).await.expect("relayed");
    }
    for i in 0..3 {
        m.pbx_rtp
            .send_to(&dtmf_end(50 + i, 0x1111, 5), m.pbx_to)
            .await
            .expect("send");
        recv_rtp(&m.carrier_rtp).await.expect("DTMF relayed as is");
    }
    h.pbx.bye(&mut m.call.pbx).await;
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    let inside = cdr
        .media
        .iter()
        .find(|q| q.leg == "inside")
        .expect("inside");
    assert_eq!(inside.lost, 5, "{inside:#?}");
    assert_eq!(
        cdr.dtmf.len(),
        1,
        "one digit, reported once: {:#?}",
        cdr.dtmf
    );
    assert_eq!(cdr.dtmf[0].digit, "5");
    assert_eq!(cdr.dtmf[0].leg, "inside");
}

/// RTP abuse: a datagram on a call's RTP port that is neither RTP nor RTCP is dropped and
/// counted, not relayed; a flood from a stray source on one call's port leaves another call's
/// media whole.
#[tokio::test]
async fn malformed_media_is_dropped_and_a_flood_on_one_call_spares_the_other() {
    let mut h = start_gateway(&[]).await;
    let mut a = establish_with_media(&mut h).await;
    let mut b = establish_with_media(&mut h).await;
    // Each side's first packet latches its source.
    for m in [&a, &b] {
        m.pbx_rtp.send_to(&rtp(0, 0x1111), m.pbx_to).await.unwrap();
        recv_rtp(&m.carrier_rtp).await.expect("relayed");
        m.carrier_rtp
            .send_to(&rtp(0, 0x2222), m.carrier_to)
            .await
            .unwrap();
        recv_rtp(&m.pbx_rtp).await.expect("relayed");
    }
    let counters = h.gw.media_counters().clone();
    let malformed_before = counters.totals().dropped(false, DropReason::Malformed);

    // Garbage from the latched source: not relayed.
    a.pbx_rtp
        .send_to(b"\x00\x01 not rtp at all", a.pbx_to)
        .await
        .unwrap();
    // RTCP multiplexed on the RTP port (RFC 5761) is still relayed.
    let rtcp_rr = [0x80u8, 201, 0, 1, 0, 0, 0x11, 0x11];
    a.pbx_rtp.send_to(&rtcp_rr, a.pbx_to).await.unwrap();
    let (got, _) = recv_rtp(&a.carrier_rtp).await.expect("rtcp-mux relayed");
    assert_eq!(
        got, rtcp_rr,
        "the garbage must not arrive before it (it is dropped)"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while counters.totals().dropped(false, DropReason::Malformed) == malformed_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "malformed datagram not counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A stray source floods call A's inside port while call B talks: B loses nothing.
    let target = a.pbx_to;
    let flood = tokio::spawn(async move {
        let stray = UdpSocket::bind(format!("{PBX_IP}:0")).await.expect("bind");
        let pkt = rtp(7, 0x6666);
        for i in 0..30_000u32 {
            let _ = stray.send_to(&pkt, target).await;
            if i % 500 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    for seq in 1..=300u16 {
        b.pbx_rtp
            .send_to(&rtp(seq, 0x1111), b.pbx_to)
            .await
            .unwrap();
        let (pkt, _) = recv_rtp(&b.carrier_rtp)
            .await
            .unwrap_or_else(|| panic!("call B lost packet {seq} during the flood"));
        assert_eq!(pkt, rtp(seq, 0x1111));
        b.carrier_rtp
            .send_to(&rtp(seq, 0x2222), b.carrier_to)
            .await
            .unwrap();
        let (pkt, _) = recv_rtp(&b.pbx_rtp)
            .await
            .unwrap_or_else(|| panic!("call B lost packet {seq} back during the flood"));
        assert_eq!(pkt, rtp(seq, 0x2222));
    }
    flood.await.unwrap();
    // Call A itself relays its own media again once its socket's backlog of flood is drained
    // (the kernel drops what overflows that buffer, A's packets included, while it lasts).
    let mut relayed = false;
    for seq in 1..=100u16 {
        a.pbx_rtp
            .send_to(&rtp(seq, 0x1111), a.pbx_to)
            .await
            .unwrap();
        let mut buf = [0u8; 1500];
        if let Ok(Ok((n, _))) = tokio::time::timeout(
            Duration::from_millis(100),
            a.carrier_rtp.recv_from(&mut buf),
        )
        .await
        {
            assert_eq!(
                &buf[..n],
                &rtp(seq, 0x1111)[..],
                "only A's own packets arrive"
            );
            relayed = true;
            break;
        }
    }
    assert!(relayed, "call A's own media stopped after the flood");
    assert!(counters.totals().dropped(false, DropReason::StraySource) > 0);

    for m in [&mut a, &mut b] {
        h.hang_up_from_pbx(&mut m.call.pbx).await;
    }
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2);
}
