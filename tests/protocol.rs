//! Protocol basics at the gateway's interfaces: OPTIONS, REGISTER, unknown methods, malformed
//! requests, requests for dialogs that do not exist, loops of hops.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use trunkguard::model::Disposition;
use trunkguard::model::RefusalReason;

const QUIET: Duration = Duration::from_millis(300);

/// An out-of-dialog request from `ua` to `to`, built by hand so that any method name goes.
fn request(ua: &Ua, to: SocketAddr, method: &str, extra: &str) -> String {
    format!(
        "{method} sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
         From: <sip:{CALLER}@{}>;tag={}\r\nTo: <sip:{to}>\r\nCall-ID: {}\r\nCSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n",
        ua.addr(),
        token("b"),
        ua.addr().ip(),
        token("t"),
        token("c"),
    )
}

#[tokio::test]
async fn options_from_a_trunk_peer_is_answered_200() {
    let mut h = start_gateway(&[]).await;
    let inside = h.inside();
    let outside = h.outside();
    h.pbx
        .send_raw(inside, &request(&h.pbx, inside, "OPTIONS", ""))
        .await;
    let ok = h.pbx.expect_response(200).await;
    assert!(ok.to_tag().is_some());
    assert!(ok.header("Allow").is_some_and(|a| a.contains("INVITE")));
    // The carrier's keep-alive probes get the same.
    h.carrier
        .send_raw(outside, &request(&h.carrier, outside, "OPTIONS", ""))
        .await;
    h.carrier.expect_response(200).await;
    h.carrier.expect_nothing_new(QUIET).await;
    let cdrs = h.finish().await;
    assert!(cdrs.is_empty(), "OPTIONS is no call attempt: {cdrs:#?}");
}

#[tokio::test]
async fn register_is_refused_405() {
    let mut h = start_gateway(&[]).await;
    let inside = h.inside();
    h.pbx
        .send_raw(
            inside,
            &request(
                &h.pbx,
                inside,
                "REGISTER",
                "Contact: <sip:pbx@127.0.0.10>\r\n",
            ),
        )
        .await;
    let resp = h.pbx.expect_response(405).await;
    assert_eq!(resp.reason(), "Method Not Allowed");
    let allow = resp.header("Allow").expect("405 carries Allow");
    assert!(
        !allow.contains("REGISTER") && allow.contains("INVITE"),
        "{allow}"
    );
    h.carrier.expect_silence(QUIET).await;
    h.finish().await;
}

#[tokio::test]
async fn unknown_method_is_answered_501() {
    let mut h = start_gateway(&[]).await;
    let inside = h.inside();
    h.pbx
        .send_raw(inside, &request(&h.pbx, inside, "FROBNICATE", ""))
        .await;
    let resp = h.pbx.expect_response(501).await;
    assert_eq!(resp.cseq(), (1, "FROBNICATE".to_string()));
    h.carrier.expect_silence(QUIET).await;
    h.finish().await;
}

/// Turns a valid request's text into a broken one.
type Mutation = fn(&str) -> String;

#[tokio::test]
async fn malformed_invites_are_answered_400_naming_the_problem() {
    let mut h = start_gateway(&[]).await;
    let inside = h.inside();
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 486, Some("m")).await;
    h.carrier.expect_request("ACK").await;
    let busy = h.pbx.expect_response(486).await;
    h.pbx.ack_non2xx(&invite, &busy).await;

    // (what is broken, a word the reason phrase must contain)
    let cases: [(&str, Mutation, &str); 4] = [
        (
            "no Call-ID",
            |t| {
                t.split("\r\n")
                    .filter(|l| !l.starts_with("Call-ID"))
                    .collect::<Vec<_>>()
                    .join("\r\n")
            },
            "Call-ID",
        ),
        (
            "CSeq names another method",
            |t| t.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
            "CSeq",
        ),
        (
            "Content-Length larger than the body",
            |t| t.replace("Content-Length: ", "Content-Length: 9"),
            "Content-Length",
        ),
        (
            "Max-Forwards out of range",
            |t| t.replace("Max-Forwards: 70", "Max-Forwards: 300"),
            "Max-Forwards",
        ),
    ];
    for (what, mutate, word) in cases {
        let fresh = invite
            .text
            .replace(&invite.call_id, &token("bad"))
            .replace(&invite.branch, &format!("z9hG4bK{}", token("bad")));
        h.pbx.send_raw(inside, &mutate(&fresh)).await;
        let resp = h
            .pbx
            .next_new(WAIT, |m| m.status().is_some_and(|s| s >= 400))
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(resp.status(), Some(400), "{what}: {}", resp.start_line());
        assert!(
            resp.reason().contains(word),
            "{what}: reason {:?} should name {word}",
            resp.reason()
        );
    }
    // Nothing of it reached the carrier.
    h.carrier.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    // Every INVITE is an attempt with a CDR, even one the front end could not parse: what
    // could be salvaged from it is recorded with the refusal.
    assert_eq!(cdrs.len(), 5, "{cdrs:#?}");
    assert_eq!(
        cdrs.iter()
            .filter(|c| c.outcome.disposition == Disposition::Busy)
            .count(),
        1
    );
    let refused: Vec<_> = cdrs
        .iter()
        .filter(|c| c.outcome.disposition == Disposition::Refused)
        .collect();
    assert_eq!(refused.len(), 4, "{cdrs:#?}");
    for c in refused {
        assert_eq!(c.outcome.final_status, 400, "{c:#?}");
        assert!(
            matches!(
                c.outcome.refusal_reason,
                Some(RefusalReason::MalformedRequest | RefusalReason::InvalidRequest)
            ),
            "{c:#?}"
        );
        assert_eq!(c.attempt.trunk.as_deref(), Some("test"), "{c:#?}");
    }
}

#[tokio::test]
async fn invite_with_max_forwards_zero_is_answered_483_and_recorded() {
    let mut h = start_gateway(&[]).await;
    let mut spec = InviteSpec::new(CALLER, CALLEE);
    spec.max_forwards = Some(0);
    let invite = h.pbx.invite(h.inside(), &spec).await;
    let resp = h.pbx.expect_response(483).await;
    assert_eq!(resp.reason(), "Too Many Hops");
    h.pbx.ack_non2xx(&invite, &resp).await;
    h.carrier.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Refused);
    assert_eq!(cdr.outcome.final_status, 483);
    assert_eq!(
        cdr.outcome.refusal_reason,
        Some(RefusalReason::InvalidRequest)
    );
}

#[tokio::test]
async fn requests_for_unknown_dialogs_are_answered_481() {
    let mut h = start_gateway(&[]).await;
    let inside = h.inside();
    let outside = h.outside();
    // A BYE and a re-INVITE (To tag present) for a Call-ID the gateway never saw.
    let ghost = Dialog {
        call_id: token("ghost"),
        local: format!("<sip:{CALLER}@{}>;tag={}", h.pbx.addr().ip(), token("l")),
        remote: format!("<sip:{CALLEE}@{}>;tag={}", inside.ip(), token("r")),
        target: format!("sip:{inside}"),
        peer: inside,
        cseq: 5,
        invite_cseq: 1,
    };
    let mut d = ghost.clone();
    h.pbx.bye(&mut d).await;
    let resp = h.pbx.expect_response_to("BYE", 481).await;
    assert_eq!(resp.reason(), "Call/Transaction Does Not Exist");
    let reinvite = h.pbx.reinvite(&mut d, "sendonly").await;
    // Any INVITE gets 100 Trying from its transaction first.
    h.pbx.expect_response_to("INVITE", 100).await;
    let resp = h.pbx.expect_response_to("INVITE", 481).await;
    // ACKed, or timer G would repeat the 481.
    h.pbx.ack_non2xx(&reinvite, &resp).await;
    // A stray ACK for a 2xx is never answered.
    h.pbx.ack(&d, d.cseq).await;
    // A CANCEL for an INVITE that does not exist; the response carries a To tag (§8.2.6.2).
    let stray = Sent {
        text: String::new(),
        to: inside,
        method: "INVITE".into(),
        uri: format!("sip:{CALLEE}@{inside}"),
        via: format!("SIP/2.0/UDP {};branch=z9hG4bK{}", h.pbx.addr(), token("b")),
        branch: String::new(),
        call_id: token("ghost"),
        from: format!("<sip:{CALLER}@{}>;tag=x", h.pbx.addr().ip()),
        to_hdr: format!("<sip:{CALLEE}@{}>", inside.ip()),
        cseq: 1,
    };
    h.pbx.cancel(&stray).await;
    let resp = h.pbx.expect_response_to("CANCEL", 481).await;
    assert!(resp.to_tag().is_some());
    // The carrier's side behaves the same.
    let mut d = Dialog {
        peer: outside,
        target: format!("sip:{outside}"),
        ..ghost
    };
    h.carrier.bye(&mut d).await;
    h.carrier.expect_response_to("BYE", 481).await;
    h.pbx.expect_silence(QUIET).await;
    h.carrier.expect_silence(QUIET).await;
    h.finish().await;
}

#[tokio::test]
async fn bye_after_the_call_ended_is_answered_481() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    h.pbx.bye(&mut call.pbx).await;
    h.pbx.expect_response_to("BYE", 200).await;
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    h.assert_idle().await;
    // The carrier's own BYE crossing ours: a new transaction in a dialog that is gone.
    h.carrier.bye(&mut call.carrier).await;
    h.carrier.expect_response_to("BYE", 481).await;
    h.pbx.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    assert_eq!(
        only(&cdrs).outcome.hangup_side,
        Some(trunkguard::model::HangupSide::Inside)
    );
}

#[tokio::test]
async fn a_second_invite_with_a_live_call_id_is_a_loop() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    // Same Call-ID and From tag, a new branch and no To tag: not a retransmission, not a
    // re-INVITE — a request that went round in a loop.
    let looped = call
        .invite
        .text
        .replace(&call.invite.branch, &format!("z9hG4bK{}", token("loop")));
    h.pbx.send_raw(h.inside(), &looped).await;
    let resp = h
        .pbx
        .next_new(WAIT, |m| m.status() == Some(482))
        .await
        .expect("482");
    assert_eq!(resp.reason(), "Loop Detected");
    h.carrier.expect_nothing_new(QUIET).await;
    // The live call is untouched and its slot count is still one.
    assert_eq!(h.gw.registry().len(), 1);
    assert_eq!(h.gw.policy().total_active(), 1);
    h.hang_up_from_pbx(&mut call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    assert!(cdrs
        .iter()
        .any(|c| c.outcome.refusal_reason == Some(RefusalReason::DuplicateCallId)));
}
