//! SIGKILL in the middle of an answered, recorded call: after a restart the call's CDR is
//! closed with end reason `gateway_restart`, and its recording is repaired, marked incomplete,
//! and plays with the audio up to about one second before the kill.

mod common;
#[path = "sipp/harness.rs"]
mod harness;

use std::time::Duration;

use common::rtp::*;
use common::{Dialog, InviteSpec, Ua, CALLEE, CALLER};
use tokio::net::UdpSocket;
use trunkguard::monitor::call_media::RecordingStatus;
use trunkguard::monitor::cdr::Disposition;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_call_leaves_a_closed_cdr_and_a_playable_recording() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pbx = Ua::bind("pbx", common::PBX_IP).await;
    let mut carrier = Ua::bind("carrier", common::CARRIER_IP).await;
    let addrs = harness::Addrs::pick();
    let config = harness::config_toml(
        &addrs,
        &dir.path().join("tg.db"),
        harness::TrunkLimits::default(),
    )
    .replace(&addrs.carrier.to_string(), &carrier.addr().to_string());
    let mut gw = harness::Gateway::start(dir.path(), &config);

    // An answered call with RTP both ways.
    let pbx_rtp = UdpSocket::bind(format!("{}:0", common::PBX_IP))
        .await
        .expect("bind");
    let carrier_rtp = UdpSocket::bind(format!("{}:0", common::CARRIER_IP))
        .await
        .expect("bind");
    let mut spec = InviteSpec::new(CALLER, CALLEE);
    spec.sdp = Some(sdp_at(pbx_rtp.local_addr().expect("addr")));
    let invite = pbx.invite(addrs.inside, &spec).await;
    pbx.expect_response(100).await;
    let c_invite = carrier.expect_request("INVITE").await;
    carrier.reply(&c_invite, 100, None).await;
    let carrier_to = rtp_target(&c_invite.body);
    let answer = sdp_at(carrier_rtp.local_addr().expect("addr"));
    carrier
        .reply_with(&c_invite, 200, Some("crash"), &[], Some(&answer))
        .await;
    let ok = pbx.expect_response(200).await;
    let pbx_to = rtp_target(&ok.body);
    let dialog = Dialog::uac(&invite, &ok);
    pbx.ack(&dialog, invite.cseq).await;
    carrier.expect_request("ACK").await;

    // Three seconds of talk, then the gateway is killed without warning.
    let talk = 150u16;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..talk {
        tick.tick().await;
        pbx_rtp
            .send_to(&tone_packet(seq, 0x1111, 440.0), pbx_to)
            .await
            .expect("send");
        carrier_rtp
            .send_to(&tone_packet(seq, 0x2222, 1000.0), carrier_to)
            .await
            .expect("send");
    }
    gw.kill();

    // Restart: the crash is cleaned up before the gateway listens again.
    let mut gw = harness::Gateway::start(dir.path(), &config);
    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr.end_reason, "gateway_restart");
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert!(cdr.talk_ms >= 2_000, "talk time up to the crash: {cdr:#?}");
    let rec = cdr.recording.as_ref().expect("the recording is on the CDR");
    assert_eq!(rec.status, RecordingStatus::Incomplete, "{rec:#?}");
    let path = rec.path.as_deref().expect("path");
    let mut reader = hound::WavReader::open(path).expect("the repaired file plays");
    assert_eq!(reader.spec().channels, 2);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let secs = left.len() as f64 / 8000.0;
    let sent = f64::from(talk) * 0.02;
    // Audio up to about one second before the kill (the header is made valid every second).
    assert!(
        secs >= sent - 1.3,
        "{secs:.2} s recorded of {sent:.2} s sent"
    );
    let last = |ch: &[i16]| ch[ch.len().saturating_sub(4000)..].to_vec();
    assert!(power_at(&last(&left), 440.0, 8000.0) > 10.0 * power_at(&last(&left), 1000.0, 8000.0));
    assert!(
        power_at(&last(&right), 1000.0, 8000.0) > 10.0 * power_at(&last(&right), 440.0, 8000.0)
    );
    assert!(
        !std::path::Path::new(&format!("{path}.part")).exists(),
        "no .part file left"
    );
}
