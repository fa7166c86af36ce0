//! Admission policy at the gateway: every refusal reason with its status, reason phrase and
//! CDR, decided before anything reaches the other side; and the admissions that sit next to
//! each refusal (the same trunk with the rule satisfied), so a refusal is known to come from
//! the rule under test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::*;
use trunkguard::model::EndReason;
use trunkguard::model::{Cdr, Direction, Disposition};

/// Long enough for any answer from the gateway on loopback to have arrived.
const QUIET: Duration = Duration::from_millis(300);

/// Send an INVITE from the PBX and expect the gateway to refuse it: 100 Trying, then `code`
/// with `phrase`; ACK it. Returns the refusal.
async fn refused(h: &mut Harness, spec: &InviteSpec, code: u16, phrase: &str) -> Msg {
    let invite = h.pbx.invite(h.inside(), spec).await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(code).await;
    assert_eq!(resp.reason(), phrase);
    assert_eq!(resp.call_id(), invite.call_id);
    assert!(resp.to_tag().is_some(), "a final response carries a To tag");
    h.pbx.ack_non2xx(&invite, &resp).await;
    resp
}

/// An admitted call that rings at the carrier; returns our INVITE and the carrier's.
async fn ringing(h: &mut Harness, spec: &InviteSpec) -> (Sent, Msg) {
    let invite = h.pbx.invite(h.inside(), spec).await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("rg")).await;
    h.pbx.expect_response_to("INVITE", 180).await;
    (invite, c_invite)
}

/// End a ringing call with a 486 from the carrier.
async fn end_busy(h: &mut Harness, invite: &Sent, c_invite: &Msg) {
    h.carrier.reply(c_invite, 486, Some("rg")).await;
    h.carrier.expect_request("ACK").await;
    let busy = h
        .pbx
        .next_new(WAIT, |m| {
            m.status() == Some(486) && m.call_id() == invite.call_id
        })
        .await
        .expect("486 relayed");
    h.pbx.ack_non2xx(invite, &busy).await;
}

fn assert_refused(cdr: &Cdr, status: u16, phrase: &str, reason: &str) {
    assert_eq!(cdr.outcome.disposition, Disposition::Refused, "{cdr:#?}");
    assert_eq!(cdr.outcome.final_status, status, "{cdr:#?}");
    assert_eq!(cdr.outcome.final_reason, phrase, "{cdr:#?}");
    assert_eq!(
        cdr.outcome.refusal_reason.map(|r| r.as_str()),
        Some(reason),
        "{cdr:#?}"
    );
    assert_eq!(cdr.outcome.end_reason, EndReason::Refused);
    assert!(cdr.attempt.answer_at.is_none());
    // No second leg was ever created.
    let other_leg = match cdr.attempt.direction {
        Direction::Outbound => &cdr.attempt.outside_call_id,
        Direction::Inbound => &cdr.attempt.inside_call_id,
    };
    assert!(other_leg.is_none(), "{cdr:#?}");
}

#[tokio::test]
async fn caller_id_not_in_the_list() {
    let mut h = start_gateway(&[]).await;
    let spec = InviteSpec::new("+861099999999", CALLEE);
    refused(&mut h, &spec, 403, "Caller ID Not Authorized").await;
    h.carrier.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_refused(
        cdr,
        403,
        "Caller ID Not Authorized",
        "caller_id_not_authorized",
    );
    assert_eq!(cdr.attempt.caller.as_deref(), Some("861099999999"));
    assert_eq!(cdr.attempt.trunk.as_deref(), Some(TRUNK));
    assert_eq!(cdr.attempt.direction, Direction::Outbound);
}

#[tokio::test]
async fn p_asserted_identity_not_in_the_list() {
    let mut h = start_gateway(&[]).await;
    // From is authorized; the asserted identity is not.
    let spec = InviteSpec::new(CALLER, CALLEE).pai("+861099999999");
    refused(&mut h, &spec, 403, "Caller ID Not Authorized").await;
    h.carrier.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_refused(
        cdr,
        403,
        "Caller ID Not Authorized",
        "caller_id_not_authorized",
    );
    assert!(
        cdr.attempt
            .pai
            .as_deref()
            .is_some_and(|p| p.contains("+861099999999")),
        "the presented P-Asserted-Identity is recorded: {:?}",
        cdr.attempt.pai
    );
}

#[tokio::test]
async fn anonymous_and_privacy_id_are_refused_by_default() {
    let mut h = start_gateway(&[]).await;
    let anon = InviteSpec::new("", CALLEE).anonymous();
    refused(&mut h, &anon, 403, "Anonymous Caller ID Not Allowed").await;
    // An authorized number that asks to be hidden is anonymous too.
    let hidden = InviteSpec::new(CALLER, CALLEE).pai(CALLER).privacy("id");
    refused(&mut h, &hidden, 403, "Anonymous Caller ID Not Allowed").await;
    h.carrier.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    for cdr in &cdrs {
        assert_refused(
            cdr,
            403,
            "Anonymous Caller ID Not Allowed",
            "anonymous_not_allowed",
        );
    }
}

#[tokio::test]
async fn anonymous_allowed_with_an_authorized_asserted_identity() {
    let mut h = start_gateway(&["trunk.allow_anonymous = true"]).await;
    // Without an asserted identity the carrier would not know the line: refused.
    let bare = InviteSpec::new("", CALLEE).anonymous().privacy("id");
    refused(&mut h, &bare, 403, "Caller ID Not Authorized").await;
    h.carrier.expect_silence(QUIET).await;

    let spec = InviteSpec::new("", CALLEE)
        .anonymous()
        .pai(CALLER)
        .privacy("id");
    let (invite, c_invite) = ringing(&mut h, &spec).await;
    // The carrier sees an anonymous From, the line in P-Asserted-Identity, and the request
    // for privacy.
    assert_eq!(c_invite.user_of("From").as_deref(), Some("anonymous"));
    assert_eq!(
        c_invite.user_of("P-Asserted-Identity").as_deref(),
        Some(CALLER)
    );
    assert_eq!(c_invite.header("Privacy"), Some("id"));
    end_busy(&mut h, &invite, &c_invite).await;

    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    assert_refused(
        &cdrs[0],
        403,
        "Caller ID Not Authorized",
        "caller_id_not_authorized",
    );
    assert_eq!(cdrs[1].outcome.disposition, Disposition::Busy);
    // The line is the asserted number.
    assert_eq!(cdrs[1].attempt.caller.as_deref(), Some(&CALLER[1..]));
}

#[tokio::test]
async fn blocked_caller_and_callee() {
    let mut h = start_gateway(&[&format!(
        "trunk.blocked_numbers = [\"{CALLER2}\", \"+8613900000666\"]"
    )])
    .await;
    refused(
        &mut h,
        &InviteSpec::new(CALLER2, CALLEE),
        403,
        "Number Blocked",
    )
    .await;
    refused(
        &mut h,
        &InviteSpec::new(CALLER, "+8613900000666"),
        403,
        "Number Blocked",
    )
    .await;
    h.carrier.expect_silence(QUIET).await;
    // The other caller to another number goes through.
    let (invite, c_invite) = ringing(&mut h, &InviteSpec::new(CALLER, CALLEE)).await;
    end_busy(&mut h, &invite, &c_invite).await;

    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 3, "{cdrs:#?}");
    assert_refused(&cdrs[0], 403, "Number Blocked", "number_blocked");
    assert_refused(&cdrs[1], 403, "Number Blocked", "number_blocked");
    assert_eq!(cdrs[1].attempt.callee.as_deref(), Some("8613900000666"));
    assert_eq!(cdrs[2].outcome.disposition, Disposition::Busy);
}

#[tokio::test]
async fn outside_calling_hours() {
    let hours = format!("trunk.calling_hours = {}", hours_excluding_now());
    let mut h = start_gateway(&[&hours]).await;
    refused(
        &mut h,
        &InviteSpec::new(CALLER, CALLEE),
        403,
        "Outside Calling Hours",
    )
    .await;
    h.carrier.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    assert_refused(
        only(&cdrs),
        403,
        "Outside Calling Hours",
        "outside_calling_hours",
    );
}

#[tokio::test]
async fn calling_hours_use_the_trunks_time_zone() {
    // The same window that excludes now in UTC includes now 3 hours ahead: the trunk's time
    // zone decides. Etc/GMT-3 is UTC+3 (POSIX sign).
    let hours = format!("trunk.calling_hours = {}", hours_excluding_now());
    let mut h = start_gateway(&[&hours, "trunk.timezone = \"Etc/GMT-3\""]).await;
    let (invite, c_invite) = ringing(&mut h, &InviteSpec::new(CALLER, CALLEE)).await;
    end_busy(&mut h, &invite, &c_invite).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Busy);
}

#[tokio::test]
async fn trunk_concurrency_limit() {
    let mut h = start_gateway(&["trunk.max_concurrent = 1", "sip.retry_after_secs = 7"]).await;
    let (first, c_first) = ringing(&mut h, &InviteSpec::new(CALLER, CALLEE)).await;
    assert_eq!(h.gw.policy().live(TRUNK).map(|l| l.active), Some(1));
    // Another caller ID, still over the trunk's cap.
    let resp = refused(
        &mut h,
        &InviteSpec::new(CALLER2, CALLEE2),
        503,
        "Trunk Concurrency Limit",
    )
    .await;
    assert_eq!(resp.header("Retry-After"), Some("7"));
    h.carrier.expect_nothing_new(QUIET).await;
    // The slot comes back when the first call ends, and the next call gets it.
    end_busy(&mut h, &first, &c_first).await;
    h.assert_idle().await;
    let (third, c_third) = ringing(&mut h, &InviteSpec::new(CALLER2, CALLEE2)).await;
    end_busy(&mut h, &third, &c_third).await;

    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 3, "{cdrs:#?}");
    let refusals: Vec<_> = cdrs
        .iter()
        .filter(|c| c.outcome.refusal_reason.is_some())
        .collect();
    assert_eq!(refusals.len(), 1);
    assert_refused(
        refusals[0],
        503,
        "Trunk Concurrency Limit",
        "trunk_concurrency",
    );
    assert_eq!(
        cdrs.iter()
            .filter(|c| c.outcome.disposition == Disposition::Busy)
            .count(),
        2
    );
}

#[tokio::test]
async fn caller_id_concurrency_limit() {
    let mut h = start_gateway(&["trunk.max_concurrent_per_caller_id = 1"]).await;
    let (first, c_first) = ringing(&mut h, &InviteSpec::new(CALLER, CALLEE)).await;
    let resp = refused(
        &mut h,
        &InviteSpec::new(CALLER, CALLEE2),
        503,
        "Caller ID Concurrency Limit",
    )
    .await;
    assert_eq!(resp.header("Retry-After"), Some("5"), "the default");
    // The other line is free.
    let (second, c_second) = ringing(&mut h, &InviteSpec::new(CALLER2, CALLEE2)).await;
    let load = h.gw.policy().live(TRUNK).expect("trunk");
    assert_eq!(load.active, 2);
    assert_eq!(load.per_number.get(&CALLER[1..]), Some(&1));
    assert_eq!(load.per_number.get(&CALLER2[1..]), Some(&1));
    end_busy(&mut h, &first, &c_first).await;
    end_busy(&mut h, &second, &c_second).await;

    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 3, "{cdrs:#?}");
    let refusal = cdrs
        .iter()
        .find(|c| c.outcome.refusal_reason.is_some())
        .expect("a refusal");
    assert_refused(
        refusal,
        503,
        "Caller ID Concurrency Limit",
        "caller_id_concurrency",
    );
}

#[tokio::test]
async fn call_rate_limit() {
    // One call per second, burst of one: the second attempt right after the first is refused.
    let mut h = start_gateway(&["trunk.max_cps = 1.0"]).await;
    let (first, c_first) = ringing(&mut h, &InviteSpec::new(CALLER, CALLEE)).await;
    let resp = refused(
        &mut h,
        &InviteSpec::new(CALLER2, CALLEE2),
        503,
        "Call Rate Exceeded",
    )
    .await;
    assert_eq!(resp.header("Retry-After"), Some("1"));
    h.carrier.expect_nothing_new(QUIET).await;
    end_busy(&mut h, &first, &c_first).await;

    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    assert_refused(&cdrs[1], 503, "Call Rate Exceeded", "rate_limited");
}

#[tokio::test]
async fn unknown_source_is_dropped_silently() {
    let mut h = start_gateway(&[]).await;
    let mut stranger = Ua::bind("stranger", "127.0.0.20").await;
    stranger
        .invite(h.inside(), &InviteSpec::new(CALLER, CALLEE))
        .await;
    stranger.expect_silence(Duration::from_secs(1)).await;
    // The outside interface ignores a stranger as well, whatever it sends.
    stranger
        .invite(h.outside(), &InviteSpec::new(CALLEE, CALLER))
        .await;
    let options = format!(
        "OPTIONS sip:{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKopt1\r\nMax-Forwards: 70\r\n\
         From: <sip:scan@{}>;tag=1\r\nTo: <sip:{}>\r\nCall-ID: scan1\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        h.inside(),
        stranger.addr(),
        stranger.addr().ip(),
        h.inside()
    );
    stranger.send_raw(h.inside(), &options).await;
    stranger.expect_silence(Duration::from_secs(1)).await;
    h.carrier.expect_silence(QUIET).await;
    h.pbx.expect_silence(QUIET).await;
    // Dropping says nothing and records nothing: a scanner's flood must not fill the CDR table.
    let cdrs = h.finish().await;
    assert!(cdrs.is_empty(), "{cdrs:#?}");
}

#[tokio::test]
async fn unknown_source_is_refused_when_configured() {
    let mut h = start_gateway(&["sip.unknown_sources = \"reject\""]).await;
    let mut stranger = Ua::bind("stranger", "127.0.0.20").await;
    let invite = stranger
        .invite(h.inside(), &InviteSpec::new(CALLER, CALLEE))
        .await;
    let resp = stranger.expect_response(403).await;
    assert_eq!(resp.call_id(), invite.call_id);
    stranger.ack_non2xx(&invite, &resp).await;
    h.carrier.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_refused(cdr, 403, "Forbidden", "unknown_source");
    assert_eq!(cdr.attempt.trunk, None);
    assert_eq!(cdr.attempt.source, stranger.addr().to_string());
}

#[tokio::test]
async fn inbound_call_to_an_unknown_number() {
    let mut h = start_gateway(&[]).await;
    let invite = h
        .carrier
        .invite(h.outside(), &InviteSpec::new(CALLEE, "+861055555555"))
        .await;
    h.carrier.expect_response(100).await;
    let resp = h.carrier.expect_response(404).await;
    assert_eq!(resp.reason(), "Not Found");
    h.carrier.ack_non2xx(&invite, &resp).await;
    h.pbx.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_refused(cdr, 404, "Not Found", "unknown_number");
    assert_eq!(cdr.attempt.direction, Direction::Inbound);
    assert_eq!(cdr.attempt.callee.as_deref(), Some("861055555555"));
    // Refused inbound: the outside Call-ID is the carrier's, no inside leg exists.
    assert_eq!(
        cdr.attempt.outside_call_id.as_deref(),
        Some(invite.call_id.as_str())
    );
}

#[tokio::test]
async fn a_repeated_refused_invite_is_one_attempt() {
    let mut h = start_gateway(&[]).await;
    let spec = InviteSpec::new("+861099999999", CALLEE);
    let invite = h.pbx.invite(h.inside(), &spec).await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(403).await;
    // The copy (its 403 was lost) gets the same 403 from the transaction, not a new decision.
    h.pbx.resend(&invite).await;
    let again = h
        .pbx
        .recv_matching(WAIT, |m| m.status() == Some(403))
        .await
        .expect("403 again");
    assert!(again.same_as(&resp));
    h.pbx.ack_non2xx(&invite, &resp).await;
    h.carrier.expect_silence(QUIET).await;
    let cdrs = h.finish().await;
    assert_refused(
        only(&cdrs),
        403,
        "Caller ID Not Authorized",
        "caller_id_not_authorized",
    );
}
