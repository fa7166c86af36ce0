//! SIP over TCP on both interfaces: a PBX that connects to the inside interface, and a carrier
//! reached over TCP (`carrier_transport = "tcp"`). Messages are framed by Content-Length.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::tcp::*;
use common::*;
use tokio::net::TcpListener;
use trunkguard::model::Disposition;

#[tokio::test]
async fn pbx_over_tcp_places_a_call() {
    let mut h = start_gateway(&[]).await;
    let inside = h.inside();
    let mut pbx = TcpPeer::connect(PBX_IP, inside).await;
    let from = format!("<sip:{CALLER}@{PBX_IP}>;tag={}", token("ft"));
    let to = format!("<sip:{CALLEE}@{}>", inside.ip());
    let uri = format!("sip:{CALLEE}@{inside}");
    let call_id = token("tcp-call");
    pbx.send(&request(
        "INVITE",
        pbx.local,
        &uri,
        &from,
        &to,
        &call_id,
        1,
        &sdp("sendrecv"),
    ))
    .await;
    pbx.expect_status(100).await;

    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 200, Some("carrier-tag")).await;
    let ok = pbx.expect_status(200).await;
    let to_tagged = ok.must("To").to_string();
    pbx.send(&request(
        "ACK", pbx.local, &uri, &from, &to_tagged, &call_id, 1, "",
    ))
    .await;
    h.carrier.expect_request("ACK").await;

    pbx.send(&request(
        "BYE", pbx.local, &uri, &from, &to_tagged, &call_id, 2, "",
    ))
    .await;
    let c_bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&c_bye, 200, None).await;
    pbx.expect_status(200).await;

    h.assert_idle().await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.attempt.source, pbx.local.to_string());
}

#[tokio::test]
async fn carrier_reached_over_tcp() {
    // The carrier listens on TCP at the address the trunk names.
    let listener = TcpListener::bind(format!("{CARRIER_IP}:0"))
        .await
        .expect("listen");
    let carrier_addr = listener.local_addr().expect("addr");
    let carrier_cfg = format!("trunk.carrier = \"{carrier_addr}\"");
    let mut h = start_gateway(&[&carrier_cfg, "trunk.carrier_transport = \"tcp\""]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;

    let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("gateway connects to the carrier")
        .expect("accept");
    let mut carrier = TcpPeer::accepted(stream);
    let c_invite = carrier.expect_request("INVITE").await;
    assert!(
        c_invite.must("Via").starts_with("SIP/2.0/TCP"),
        "Via names TCP: {}",
        c_invite.must("Via")
    );
    carrier.send(&response(&c_invite, 180, "ct1", "")).await;
    carrier
        .send(&response(&c_invite, 200, "ct1", &sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let dialog = Dialog::uac(&invite, &ok);
    h.pbx.ack(&dialog, invite.cseq).await;
    carrier.expect_request("ACK").await;

    // The carrier hangs up over the same connection.
    let local = carrier.local;
    let bye = format!(
        "BYE {} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
         From: {};tag=ct1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        c_invite.contact_uri().unwrap_or_else(|| "sip:gw".into()),
        token("b"),
        c_invite.must("To"),
        c_invite.must("From"),
        c_invite.call_id()
    );
    carrier.send(&bye).await;
    let p_bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&p_bye, 200, None).await;
    carrier.expect_status(200).await;

    h.assert_idle().await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}
