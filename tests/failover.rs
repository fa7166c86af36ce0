//! Carrier failover: a trunk with two carrier addresses (`carrier = ["a", "b"]`). When the first
//! answers 503 or never answers (timer B) before any provisional response, the INVITE goes to
//! the second in a new transaction; once the first has taken the call (180), its failure is
//! the PBX's answer. A trunk with one carrier relays the 503 as before.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::*;
use trunkguard::model::Disposition;

const SECOND_CARRIER_IP: &str = "127.0.0.12";

/// The harness's trunk with `carriers` as its carrier list, applied at once.
async fn with_carriers(h: &Harness, carriers: &[std::net::SocketAddr]) {
    let mut table: toml::Table = toml::from_str(&h.config.trunk_sources[0]).expect("trunk toml");
    table.insert(
        "carrier".into(),
        toml::Value::Array(
            carriers
                .iter()
                .map(|a| toml::Value::String(a.to_string()))
                .collect(),
        ),
    );
    h.gw.put_trunk(&toml::to_string(&table).expect("toml"), "test")
        .await
        .expect("trunk with two carriers");
}

/// A gateway (with `tweaks`) whose trunk has two carriers: the harness's carrier UA first, then
/// a second UA, returned.
async fn two_carriers(tweaks: &[&str]) -> (Harness, Ua) {
    let h = start_gateway(tweaks).await;
    let second = Ua::bind("carrier2", SECOND_CARRIER_IP).await;
    with_carriers(&h, &[h.carrier.addr(), second.addr()]).await;
    (h, second)
}

/// The second carrier takes the INVITE and answers; the call is ended by the PBX.
async fn second_carrier_answers(h: &mut Harness, second: &mut Ua, invite: &Sent) {
    let c2 = second.expect_request("INVITE").await;
    assert!(
        c2.uri().contains(SECOND_CARRIER_IP),
        "the Request-URI names the second carrier: {}",
        c2.uri()
    );
    let tag = token("c2");
    second
        .reply_with(&c2, 200, Some(&tag), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let mut pbx = Dialog::uac(invite, &ok);
    h.pbx.ack(&pbx, invite.cseq).await;
    second.expect_request("ACK").await;
    h.pbx.bye(&mut pbx).await;
    let bye = second.expect_request("BYE").await;
    second.reply(&bye, 200, None).await;
    h.pbx.expect_response_to("BYE", 200).await;
}

#[tokio::test]
async fn a_503_from_the_first_carrier_fails_over_to_the_second() {
    let (mut h, mut second) = two_carriers(&[]).await;

    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c1 = h.carrier_gets_invite().await;
    h.carrier.reply(&c1, 503, Some("busy1")).await;
    h.carrier.expect_request("ACK").await;
    second_carrier_answers(&mut h, &mut second, &invite).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.outcome.final_status, 200);
}

#[tokio::test]
async fn a_carrier_that_never_answers_fails_over_after_timer_b() {
    // T1 = 50 ms: timer B (64·T1) fires after 3.2 s.
    let (mut h, mut second) = two_carriers(&["sip.t1_ms = 50"]).await;

    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    // The first carrier hears the INVITE (and its retransmissions) and says nothing.
    h.carrier.expect_request("INVITE").await;
    let c2 = second
        .expect_request_within("INVITE", h.timeout() + Duration::from_secs(2))
        .await;
    second.reply(&c2, 486, Some("busy2")).await;
    second.expect_request("ACK").await;
    let busy = h.pbx.expect_response(486).await;
    h.pbx.ack_non2xx(&invite, &busy).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.final_status, 486);
    assert_eq!(cdr.outcome.disposition, Disposition::Busy);
}

#[tokio::test]
async fn no_failover_once_the_first_carrier_took_the_call_or_when_there_is_no_other() {
    let (mut h, mut second) = two_carriers(&[]).await;

    // Ringing, then 503: the PBX gets the 503, the second carrier hears nothing.
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c1 = h.carrier_gets_invite().await;
    h.carrier.reply(&c1, 180, Some("ring1")).await;
    h.pbx.expect_response(180).await;
    h.carrier.reply(&c1, 503, Some("ring1")).await;
    let failed = h.pbx.expect_response(503).await;
    h.pbx.ack_non2xx(&invite, &failed).await;
    second.expect_silence(Duration::from_millis(300)).await;

    // One carrier only: its 503 is the PBX's answer.
    with_carriers(&h, &[h.carrier.addr()]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c1 = h.carrier_gets_invite().await;
    h.carrier.reply(&c1, 503, Some("only")).await;
    let failed = h.pbx.expect_response(503).await;
    h.pbx.ack_non2xx(&invite, &failed).await;
    second.expect_silence(Duration::from_millis(300)).await;

    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2);
    assert!(cdrs.iter().all(|c| c.outcome.final_status == 503));
}
