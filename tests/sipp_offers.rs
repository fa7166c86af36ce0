//! Offers the gateway must never lie about, with the real `trunkguard` binary between SIPp as the
//! PBX and SIPp as the carrier (issue 15, findings 1–4):
//! - an offer it cannot parse (65 media lines) or cannot serve (SRTP, until SRTP is terminated)
//!   is refused at admission with 488 and a stored reason, and nothing reaches the carrier;
//! - an offer over the old 8 KiB SDP limit but within the front end's 12 KiB body limit is
//!   carried with its body anchored;
//! - an answered call whose offer lets no RTP flow (c=0.0.0.0, port 0) is relayed, and its
//!   recording says `no_media`, not `complete`;
//! - a Latin-1 display name is carried (not 400), and no answer names the gateway's software.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use harness::{args, pbx_local, Scenario, Scene, SippSpec, TrunkLimits, PBX_IP, TRUNK_NUMBER};
use trunkguard::model::{Cdr, Disposition};

const CALLEE: &str = "8613800138000";

fn summary(cdrs: &[Cdr]) -> String {
    cdrs.iter()
        .map(|c| {
            format!(
                "{} {} {} {} refusal={:?} recording={:?}",
                c.attempt.id,
                c.outcome.disposition,
                c.outcome.final_status,
                c.outcome.end_reason,
                c.outcome.refusal_reason,
                c.recording.as_ref().map(|r| r.status)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The carrier: SIPp's built-in UAS, tracing what it receives.
fn carrier_uas(scene: &mut Scene, calls: u32) -> usize {
    let mut a = args(&["-trace_msg"]);
    if calls > 0 {
        a.extend(args(&["-m", &calls.to_string()]));
    }
    let local = scene.addrs.carrier;
    scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::Builtin("uas"),
        local,
        remote: None,
        args: a,
        timeout_secs: 30,
    })
}

/// One call from the PBX with `scenario`; SIPp must end it as the scenario expects.
fn pbx_call(scene: &mut Scene, scenario: &'static str) -> usize {
    let inside = scene.addrs.inside;
    let uac = scene.sipp(SippSpec {
        name: "pbx-uac",
        scenario: Scenario::File(scenario),
        local: pbx_local(),
        remote: Some(inside),
        args: args(&[
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            CALLEE,
            "-m",
            "1",
            "-d",
            "1000",
            "-trace_msg",
        ]),
        timeout_secs: 30,
    });
    scene.expect_exit_ok(uac);
    uac
}

/// An offer refused 488 with `reason` on the CDR, and nothing sent to the carrier.
fn refused_488(scenario: &'static str, reason: &str) {
    let mut scene = Scene::start(TrunkLimits::default());
    let uas = carrier_uas(&mut scene, 0);
    let uac = pbx_call(&mut scene, scenario);
    let counts = scene.ok(scene.sipps[uac].counts());
    let got = scene.ok(counts.first("488_Recv"));
    let again = scene.ok(counts.first("488_Retrans"));
    scene.ensure(got == 1 && again == 0, || {
        format!("PBX SIPp: {got} 488s, {again} retransmitted; expected 1 and 0")
    });
    let r = scene.sipps[uas].finish();
    scene.ok(r);
    let stats = scene.ok(scene.sipps[uas].stats());
    let reached = scene.ok(stats.get("IncomingCall"));
    scene.ensure(reached == 0, || {
        format!("{reached} refused calls reached the carrier")
    });
    let cdrs = scene.stop_and_read_cdrs();
    let ok = cdrs.len() == 1
        && cdrs[0].outcome.disposition == Disposition::Refused
        && cdrs[0].outcome.final_status == 488
        && cdrs[0].outcome.refusal_reason.map(|r| r.as_str()) == Some(reason)
        && cdrs[0].attempt.outside_call_id.is_none();
    scene.ensure(ok, || {
        format!(
            "expected one CDR refused 488 {reason} without a carrier leg:\n{}",
            summary(&cdrs)
        )
    });
}

/// RTP/SAVP whose only a=crypto key has an MKI and a short lifetime: the gateway cannot serve
/// it, so it refuses it rather than relay and record encrypted audio as clear (finding 1).
#[test]
fn srtp_offer_it_cannot_serve_is_refused_488() {
    refused_488("pbx_uac_srtp.xml", "srtp_unsupported");
}

/// RTP/SAVP in crypto suites the gateway does not serve (AES-256, F8).
#[test]
fn srtp_offer_in_unknown_suites_is_refused_488() {
    refused_488("pbx_uac_srtp_unknown_suite.xml", "srtp_unsupported");
}

/// DTLS-SRTP only (UDP/TLS/RTP/SAVP, a=fingerprint): SDES is all the gateway keys SRTP with.
#[test]
fn dtls_srtp_offer_is_refused_488() {
    refused_488("pbx_uac_dtls.xml", "dtls_srtp_unsupported");
}

/// 65 media lines: the parser takes 64; the call is refused, never carried without its offer
/// (finding 2).
#[test]
fn offer_with_65_media_lines_is_refused_488() {
    refused_488("pbx_uac_65_media.xml", "sdp_too_large");
}

/// A 9 KiB offer, within the front end's body limit: carried to the carrier with its body,
/// anchored on the gateway's address, and answered (finding 2: the limits agree).
#[test]
fn offer_over_8_kib_is_carried_anchored() {
    let mut scene = Scene::start(TrunkLimits::default());
    let uas = carrier_uas(&mut scene, 1);
    let uac = pbx_call(&mut scene, "pbx_uac_big_sdp.xml");
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || format!("PBX SIPp: {ok} successful calls"));
    scene.expect_exit_ok(uas);
    let invite = scene.received_invite(uas);
    // Anchored: our o= line, and the PBX's address nowhere in the body.
    let body = invite
        .split_once("\r\n\r\n")
        .or_else(|| invite.split_once("\n\n"))
        .map_or("", |(_, b)| b);
    scene.ensure(
        body.contains("\no=trunkguard ")
            && body.contains("\nm=audio ")
            && body.contains("a=x-padding-100:")
            && !body.contains(&PBX_IP.to_string()),
        || format!("the carrier's INVITE does not carry the anchored offer:\n{invite}"),
    );
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 1 && cdrs[0].outcome.disposition == Disposition::Answered,
        || format!("expected one answered CDR:\n{}", summary(&cdrs)),
    );
}

/// c=0.0.0.0 with the audio on port 0: relayed as offered, answered; no packet crosses, and the
/// recording says `no_media` (finding 3). `verify` still checks the file's digest, and says what
/// the file holds.
#[test]
fn answered_call_without_rtp_is_recorded_no_media() {
    let mut scene = Scene::start_with(TrunkLimits::default(), |dir| {
        format!(
            "\n[recording]\ndir = \"{}\"\nrequired = true\n",
            dir.join("recordings").display()
        )
    });
    let uas = carrier_uas(&mut scene, 1);
    let uac = pbx_call(&mut scene, "pbx_uac_hold_port0.xml");
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || format!("PBX SIPp: {ok} successful calls"));
    scene.expect_exit_ok(uas);
    let invite = scene.received_invite(uas);
    scene.ensure(
        invite.contains("c=IN IP4 0.0.0.0") && invite.contains("m=audio 0 RTP/AVP 0"),
        || format!("the hold offer did not reach the carrier as offered:\n{invite}"),
    );
    let cdrs = scene.stop_and_read_cdrs();
    let status = cdrs
        .first()
        .and_then(|c| c.recording.as_ref())
        .map(|r| r.status.as_str());
    scene.ensure(
        cdrs.len() == 1
            && cdrs[0].outcome.disposition == Disposition::Answered
            && status == Some("no_media"),
        || {
            format!(
                "expected one answered CDR with a no_media recording:\n{}",
                summary(&cdrs)
            )
        },
    );
    let (code, out) = scene.ok(scene.gateway.verify(&cdrs[0].attempt.id));
    scene.ensure(
        code == Some(0) && out.contains("status:   no_media") && out.contains("no audio"),
        || format!("verify ({code:?}) should match the digest and say no audio:\n{out}"),
    );
}

/// A display name in Latin-1 (not UTF-8) is carried, not refused 400; and no answer the PBX
/// receives names the gateway's software (no `Server` header by default) (finding 4).
#[test]
fn latin1_display_name_is_carried_and_no_server_header() {
    let mut scene = Scene::start(TrunkLimits::default());
    let uas = carrier_uas(&mut scene, 1);
    let uac = pbx_call(&mut scene, "pbx_uac_latin1.xml");
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || format!("PBX SIPp: {ok} successful calls"));
    scene.expect_exit_ok(uas);
    let received = scene.ok(scene.sipps[uac].received_messages());
    let named: Vec<&String> = received
        .iter()
        .filter(|m| {
            m.lines().any(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("server:") || l.starts_with("user-agent:")
            })
        })
        .collect();
    scene.ensure(received.len() >= 2 && named.is_empty(), || {
        format!(
            "{} of {} answers to the PBX name the software:\n{named:?}",
            named.len(),
            received.len()
        )
    });
    let carrier_got = scene.ok(scene.sipps[uas].received_messages());
    let named = carrier_got
        .iter()
        .filter(|m| {
            m.lines()
                .any(|l| l.to_ascii_lowercase().starts_with("user-agent:"))
        })
        .count();
    scene.ensure(named == 0, || {
        format!("{named} requests to the carrier name the software")
    });
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 1 && cdrs[0].outcome.disposition == Disposition::Answered,
        || format!("expected one answered CDR:\n{}", summary(&cdrs)),
    );
    let log = scene.gateway.log();
    scene.ensure(log.contains("invalid UTF-8"), || {
        "the gateway did not log the replaced bytes".to_string()
    });
}

/// Audio, video and T.38 offered: the audio is anchored, the video and the image go on declined
/// with port 0 (both SIPp scenarios check the SDP they get), and the CDR says which streams the
/// gateway declined.
#[test]
fn video_and_t38_are_declined_and_the_cdr_says_so() {
    let mut scene = Scene::start(TrunkLimits::default());
    let local = scene.addrs.carrier;
    let uas = scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::File("carrier_uas_declined.xml"),
        local,
        remote: None,
        args: args(&["-m", "1", "-trace_msg"]),
        timeout_secs: 30,
    });
    let uac = pbx_call(&mut scene, "pbx_uac_av_t38.xml");
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || format!("PBX SIPp: {ok} successful calls"));
    scene.expect_exit_ok(uas);
    let stats = scene.ok(scene.sipps[uas].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || format!("carrier SIPp: {ok} successful calls"));
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 1
            && cdrs[0].outcome.disposition == Disposition::Answered
            && cdrs[0].outcome.declined_media == ["video", "image/t38"],
        || {
            format!(
                "expected one answered CDR declining video and image/t38: {:?}\n{}",
                cdrs.iter()
                    .map(|c| &c.outcome.declined_media)
                    .collect::<Vec<_>>(),
                summary(&cdrs)
            )
        },
    );
}

/// A carrier leg that requires SRTP (`carrier_media_encryption = "required"`): the gateway
/// offers the carrier SRTP with its own key although the PBX offered plain RTP; a carrier that
/// answers in clear anyway gets its 200 ACKed and a BYE, the PBX a 488, and the CDR says
/// `srtp_required` — no clear audio is ever relayed as if the leg were protected.
#[test]
fn a_plain_answer_on_a_leg_that_requires_srtp_ends_the_call_cleanly() {
    let mut scene = Scene::start_edited(TrunkLimits::default(), |_, config| {
        let edited = config.replace(
            "blocked_numbers = []",
            "blocked_numbers = []\ncarrier_media_encryption = \"required\"",
        );
        assert_ne!(edited, config, "the trunk table has a blocked_numbers line");
        edited
    });
    let uas = carrier_uas(&mut scene, 1);
    let uac = pbx_call(&mut scene, "pbx_uac_488_after_ringing.xml");
    let counts = scene.ok(scene.sipps[uac].counts());
    let got = scene.ok(counts.first("488_Recv"));
    scene.ensure(got == 1, || format!("PBX SIPp: {got} 488s, expected 1"));
    // The carrier's call ends by itself: ACK then BYE from the gateway.
    scene.expect_exit_ok(uas);
    let invite = scene.received_invite(uas);
    scene.ensure(
        invite.contains("RTP/SAVP") && invite.contains("a=crypto:"),
        || format!("the carrier was not offered SRTP:\n{invite}"),
    );
    let received = scene.ok(scene.sipps[uas].received_messages());
    for method in ["ACK ", "BYE "] {
        scene.ensure(received.iter().any(|m| m.starts_with(method)), || {
            format!("the carrier got no {method}after its clear answer")
        });
    }
    let cdrs = scene.stop_and_read_cdrs();
    let ok = cdrs.len() == 1
        && cdrs[0].outcome.final_status == 488
        && cdrs[0].outcome.refusal_reason.map(|r| r.as_str()) == Some("srtp_required")
        && cdrs[0].attempt.outside_call_id.is_some()
        && cdrs[0].outcome.talk_ms == 0;
    scene.ensure(ok, || {
        format!(
            "expected one CDR ended 488 srtp_required after the carrier leg:\n{}",
            summary(&cdrs)
        )
    });
}
