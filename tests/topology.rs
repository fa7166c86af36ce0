//! Topology hiding: what the carrier receives names the gateway's outside interface only — new
//! Call-ID, tags and Via, no inside address, no internal header — while the numbers carry over.
//! SDP passes unchanged in this issue (media anchoring comes next), so the test SDP uses a
//! documentation address and the checks look at the SIP header fields.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::net::IpAddr;

use common::*;
use trunkguard::model::Disposition;

/// Whether `text` names `ip` as an address (so 127.0.0.1 does not match inside 127.0.0.10).
fn names_ip(text: &str, ip: IpAddr) -> bool {
    let ip = ip.to_string();
    text.match_indices(&ip).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + ip.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_digit() || c == '.')
    })
}

/// Header fields a B-leg request may carry: everything else would come from the inside.
const ALLOWED: [&str; 12] = [
    "Via",
    "Max-Forwards",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "P-Asserted-Identity",
    "Privacy",
    "Allow",
    "Content-Type",
    "Content-Length",
];

/// Internal details a PBX puts on its messages.
const INTERNAL: [&str; 4] = [
    "X-Internal-Agent: agent-7@10.20.30.40",
    "User-Agent: InternalPBX/1.0",
    "Record-Route: <sip:10.20.30.40;lr>",
    "Via: SIP/2.0/UDP 10.20.30.40:5060;branch=z9hG4bKinner1",
];

/// Assert that a message the carrier received reveals nothing of the inside.
fn assert_hidden(h: &Harness, m: &Msg, pbx_call: &Sent) {
    let head = m.head();
    for ip in [
        h.pbx.addr().ip(),
        h.inside().ip(),
        "10.20.30.40".parse().unwrap(),
    ] {
        assert!(
            !names_ip(head, ip),
            "inside address {ip} reached the carrier:\n{head}"
        );
    }
    for secret in [
        pbx_call.call_id.as_str(),
        &pbx_call.from_tag(),
        &pbx_call.branch,
        "InternalPBX",
        "agent-7",
    ] {
        assert!(
            !head.contains(secret),
            "{secret:?} reached the carrier:\n{head}"
        );
    }
    for name in m.header_names() {
        assert!(
            ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(name)),
            "header {name} reached the carrier:\n{head}"
        );
    }
    assert_eq!(m.headers("Via").len(), 1, "only our Via:\n{head}");
    assert!(
        m.must("Via").contains(&h.outside().to_string()),
        "our Via names the outside interface:\n{head}"
    );
}

#[tokio::test]
async fn carrier_sees_nothing_of_the_inside() {
    let mut h = start_gateway(&[]).await;
    let mut spec = InviteSpec::new(CALLER, CALLEE).pai(CALLER);
    spec.max_forwards = Some(42);
    for line in INTERNAL {
        spec = spec.header(line);
    }
    let invite = h.pbx.invite(h.inside(), &spec).await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;

    assert_hidden(&h, &c_invite, &invite);
    assert_ne!(c_invite.call_id(), invite.call_id);
    assert_ne!(
        c_invite.from_tag().as_deref(),
        Some(invite.from_tag().as_str())
    );
    assert_eq!(c_invite.header("Max-Forwards"), Some("41"), "decremented");
    assert_eq!(
        c_invite.contact_uri().as_deref(),
        Some(format!("sip:{}", h.outside()).as_str())
    );
    // The numbers carry over: Request-URI, From, To, P-Asserted-Identity.
    assert!(
        c_invite.uri().starts_with(&format!("sip:{CALLEE}@")),
        "{}",
        c_invite.uri()
    );
    assert_eq!(c_invite.user_of("From").as_deref(), Some(CALLER));
    assert_eq!(c_invite.user_of("To").as_deref(), Some(CALLEE));
    assert_eq!(
        c_invite.user_of("P-Asserted-Identity").as_deref(),
        Some(CALLER)
    );
    // The PBX's media address does not cross either: the SDP is anchored on the gateway.
    assert_anchored(&c_invite.body, &sdp("sendrecv"));

    // The rest of the dialog hides the inside as well: ACK, re-INVITE, INFO, BYE.
    h.carrier
        .reply_with(&c_invite, 200, Some("th"), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let mut pbx = Dialog::uac(&invite, &ok);
    let internal: Vec<String> = INTERNAL[..2].iter().map(|s| s.to_string()).collect();
    h.pbx.in_dialog_with(&pbx, "ACK", 1, &internal, None).await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_hidden(&h, &ack, &invite);

    pbx.cseq += 1;
    let hold = sdp("sendonly");
    h.pbx
        .in_dialog_with(
            &pbx,
            "INVITE",
            pbx.cseq,
            &internal,
            Some(("application/sdp", &hold)),
        )
        .await;
    let reinvite = h.carrier.expect_request("INVITE").await;
    assert_hidden(&h, &reinvite, &invite);
    h.carrier
        .reply_with(&reinvite, 200, None, &[], Some(&sdp("recvonly")))
        .await;
    h.pbx.expect_response_to("INVITE", 200).await;
    h.pbx
        .in_dialog_with(&pbx, "ACK", pbx.cseq, &internal, None)
        .await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_hidden(&h, &ack, &invite);

    pbx.cseq += 1;
    h.pbx
        .in_dialog_with(&pbx, "INFO", pbx.cseq, &internal, None)
        .await;
    let info = h.carrier.expect_request("INFO").await;
    assert_hidden(&h, &info, &invite);
    h.carrier.reply(&info, 200, None).await;
    h.pbx.expect_response_to("INFO", 200).await;

    pbx.cseq += 1;
    h.pbx
        .in_dialog_with(&pbx, "BYE", pbx.cseq, &internal, None)
        .await;
    let bye = h.carrier.expect_request("BYE").await;
    assert_hidden(&h, &bye, &invite);
    h.carrier.reply(&bye, 200, None).await;
    h.pbx.expect_response_to("BYE", 200).await;

    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn responses_from_the_pbx_reveal_nothing_to_the_carrier() {
    // Inbound: the carrier calls, the PBX answers with internal details on its responses.
    let mut h = start_gateway(&[]).await;
    let invite = h
        .carrier
        .invite(h.outside(), &InviteSpec::new(CALLEE, CALLER))
        .await;
    h.carrier.expect_response(100).await;
    let p_invite = h.pbx.expect_request("INVITE").await;
    h.pbx
        .reply_with(&p_invite, 180, Some("in"), &INTERNAL[..3], None)
        .await;
    let ringing = h.carrier.expect_response(180).await;
    h.pbx
        .reply_with(
            &p_invite,
            200,
            Some("in"),
            &INTERNAL[..3],
            Some(&sdp("sendrecv")),
        )
        .await;
    let ok = h.carrier.expect_response(200).await;
    for m in [&ringing, &ok] {
        let head = m.head();
        for ip in [
            h.pbx.addr().ip(),
            h.inside().ip(),
            "10.20.30.40".parse().unwrap(),
        ] {
            assert!(
                !names_ip(head, ip),
                "inside address {ip} reached the carrier:\n{head}"
            );
        }
        assert!(
            !head.contains("InternalPBX") && !head.contains("agent-7"),
            "{head}"
        );
        assert!(!head.contains("Record-Route"), "{head}");
        assert_ne!(
            m.to_tag().as_deref(),
            Some("in"),
            "the PBX's tag stays inside"
        );
    }
    assert_eq!(
        ok.contact_uri().as_deref(),
        Some(format!("sip:{}", h.outside()).as_str())
    );
    let mut carrier = Dialog::uac(&invite, &ok);
    h.carrier.ack(&carrier, 1).await;
    h.pbx.expect_request("ACK").await;
    h.carrier.bye(&mut carrier).await;
    let bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&bye, 200, None).await;
    h.carrier.expect_response_to("BYE", 200).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}
