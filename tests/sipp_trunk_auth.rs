//! Trunk authentication toward the carrier and registration (issue 15, item 3), with the real
//! `trunkguard` binary between SIPp as the PBX and SIPp as the carrier:
//! - the carrier challenges the INVITE with 401 (MD5; SIPp's `verifyauth` checks the
//!   Authorization — SIPp 3.6's verifies MD5 only) or its proxy with 407 (SHA-256; the digest
//!   recomputed here, apart from the gateway's code): the call goes through, the INVITE sent again with the next CSeq, the
//!   same Call-ID and a new branch, and the ACK of the 2xx carries the credentials;
//! - wrong credentials: the carrier challenges again, the gateway gives up, the PBX gets a
//!   clean 403 and the CDR says `carrier_auth_failed`; the password is in no log line;
//! - the carrier challenges the BYE: answered, checked by `verifyauth`;
//! - a registrar requiring REGISTER with a 401 challenge: calls are refused
//!   `503 Trunk Not Registered` until it has granted a binding and admitted after; the refresh
//!   (Expires: 4, so every 2 s) is seen on the wire, and the clean stop removes the binding.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness::{args, pbx_local, Scenario, Scene, SippSpec, TrunkLimits, CARRIER_IP, TRUNK_NUMBER};
use sha2::{Digest, Sha256};
use trunkguard::model::{Cdr, Disposition, EndReason, RefusalReason};

const CALLEE: &str = "8613800138000";
const USER: &str = "trunkguard-gw";
const PASSWORD: &str = "carrier-s3cret-pw";

fn summary(cdrs: &[Cdr]) -> String {
    cdrs.iter()
        .map(|c| {
            format!(
                "{} {} {} {} refusal={:?}",
                c.attempt.id,
                c.outcome.disposition,
                c.outcome.final_status,
                c.outcome.end_reason,
                c.outcome.refusal_reason,
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The gateway with the trunk's credentials (`password` configured) and `extra` trunk keys.
fn scene_with(password: &str, extra: &str) -> Scene {
    let keys = format!(
        "blocked_numbers = []\nauth_username = \"{USER}\"\nauth_password = \"{password}\"\n{extra}"
    );
    Scene::start_edited(TrunkLimits::default(), |_, config| {
        config.replacen("blocked_numbers = []\n", &keys, 1)
    })
}

/// The carrier: SIPp running `scenario` on the trunk's carrier address, tracing messages.
fn carrier(scene: &mut Scene, scenario: &'static str, keys: &[(&str, &str)]) -> usize {
    let mut a = args(&["-m", "1", "-trace_msg"]);
    for (k, v) in keys {
        a.extend(args(&["-key", k, v]));
    }
    let local = scene.addrs.carrier;
    scene.sipp(SippSpec {
        name: "carrier",
        scenario: Scenario::File(scenario),
        local,
        remote: None,
        args: a,
        timeout_secs: 30,
    })
}

/// One call from the PBX with `scenario` (named `name`); SIPp must end it as the scenario
/// expects.
fn pbx_call(scene: &mut Scene, name: &str, scenario: &'static str) -> usize {
    let inside = scene.addrs.inside;
    let uac = scene.sipp(SippSpec {
        name,
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
            "500",
            "-trace_msg",
        ]),
        timeout_secs: 30,
    });
    scene.expect_exit_ok(uac);
    uac
}

/// A header's value in a traced message (first occurrence, name case-insensitive).
fn header<'m>(msg: &'m str, name: &str) -> Option<&'m str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// `name=value` parameters of a credentials header, unquoted.
fn params(value: &str) -> std::collections::HashMap<String, String> {
    let value = value.trim_start_matches("Digest").trim();
    value
        .split(", ")
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect()
}

fn top_branch(msg: &str) -> String {
    header(msg, "Via")
        .and_then(|v| v.split(";branch=").nth(1))
        .map(|b| b.split(';').next().unwrap_or(b).to_string())
        .unwrap_or_default()
}

/// The requests of `method` among the carrier's received messages.
fn requests<'a>(received: &'a [String], method: &str) -> Vec<&'a String> {
    received
        .iter()
        .filter(|m| m.starts_with(&format!("{method} ")))
        .collect()
}

/// The two INVITEs the carrier saw: the second the first again (RFC 3261 §22.2): same Call-ID
/// and From tag, CSeq one higher, another branch, with `creds` (Authorization or
/// Proxy-Authorization) answering with `algorithm`, qop=auth, nc and cnonce.
fn check_invite_resent(scene: &Scene, received: &[String], creds: &str, algorithm: &str) -> String {
    let invites = requests(received, "INVITE");
    scene.ensure(invites.len() == 2, || {
        format!("the carrier saw {} INVITEs, expected 2", invites.len())
    });
    let (first, second) = (invites[0], invites[1]);
    let cseq = |m: &str| header(m, "CSeq").unwrap_or_default().to_string();
    scene.ensure(
        header(first, "Call-ID") == header(second, "Call-ID")
            && header(first, "From") == header(second, "From")
            && cseq(first) == "1 INVITE"
            && cseq(second) == "2 INVITE"
            && top_branch(first) != top_branch(second)
            && header(first, creds).is_none(),
        || format!("the INVITE was not sent again as §22.2 says:\n{first}\n---\n{second}"),
    );
    let value = header(second, creds)
        .unwrap_or_else(|| scene.fail(format!("no {creds} in the second INVITE:\n{second}")))
        .to_string();
    let p = params(&value);
    scene.ensure(
        p.get("username").map(String::as_str) == Some(USER)
            && p.get("algorithm").map(String::as_str) == Some(algorithm)
            && p.get("qop").map(String::as_str) == Some("auth")
            && p.get("nc").map(String::as_str) == Some("00000001")
            && p.get("cnonce").is_some_and(|c| !c.is_empty()),
        || format!("{creds} lacks a part: {value}"),
    );
    value
}

/// The gateway log never shows the password.
fn check_no_password_logged(scene: &Scene) {
    let log = scene.gateway.log();
    scene.ensure(!log.contains(PASSWORD), || {
        "the password appears in the gateway log".to_string()
    });
}

/// A 401 challenge (WWW-Authenticate, `algo`) answered and checked by SIPp's verifyauth.
fn invite_challenged_with_401(algo: &str) {
    let mut scene = scene_with(PASSWORD, "");
    let uas = carrier(
        &mut scene,
        "carrier_uas_auth.xml",
        &[("algo", algo), ("user", USER), ("pass", PASSWORD)],
    );
    let uac = pbx_call(&mut scene, "pbx", "pbx_uac.xml");
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || {
        format!("PBX SIPp: {ok} successful calls, expected 1")
    });
    scene.expect_exit_ok(uas);
    let received = scene.ok(scene.sipps[uas].received_messages());
    let creds = check_invite_resent(&scene, &received, "Authorization", algo);
    let p = params(&creds);
    scene.ensure(
        p.get("realm").map(String::as_str) == Some("carrier.test")
            && p.get("opaque").map(String::as_str) == Some("op4que"),
        || format!("realm or opaque not echoed: {creds}"),
    );
    // §13.2.2.4: the ACK for the 2xx carries the INVITE's credentials.
    let acks = requests(&received, "ACK");
    scene.ensure(
        acks.last()
            .and_then(|ack| header(ack, "Authorization"))
            .is_some_and(|v| v == creds),
        || format!("the ACK of the 2xx lacks the INVITE's credentials: {acks:?}"),
    );
    check_no_password_logged(&scene);
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 1 && cdrs[0].outcome.disposition == Disposition::Answered,
        || format!("expected one answered CDR:\n{}", summary(&cdrs)),
    );
}

#[test]
fn invite_challenged_401_md5_is_answered() {
    invite_challenged_with_401("MD5");
}

/// A 407 from the carrier's proxy, SHA-256 (RFC 8760): SIPp cannot check a
/// Proxy-Authorization, so the digest is recomputed here from its definition (RFC 7616 §3.4.1)
/// with the hash crate directly.
#[test]
fn invite_challenged_407_sha256_is_answered() {
    let mut scene = scene_with(PASSWORD, "");
    let uas = carrier(&mut scene, "carrier_uas_proxy_auth.xml", &[]);
    let uac = pbx_call(&mut scene, "pbx", "pbx_uac.xml");
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || {
        format!("PBX SIPp: {ok} successful calls, expected 1")
    });
    scene.expect_exit_ok(uas);
    let received = scene.ok(scene.sipps[uas].received_messages());
    let creds = check_invite_resent(&scene, &received, "Proxy-Authorization", "SHA-256");
    let p = params(&creds);
    let sha = |s: String| hex::encode(Sha256::digest(s.as_bytes()));
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let ha1 = sha(format!("{USER}:{}:{PASSWORD}", get("realm")));
    let ha2 = sha(format!("INVITE:{}", get("uri")));
    let expected = sha(format!(
        "{ha1}:{}:{}:{}:auth:{ha2}",
        get("nonce"),
        get("nc"),
        get("cnonce")
    ));
    scene.ensure(
        get("realm") == "proxy.carrier.test" && get("response") == expected,
        || format!("the SHA-256 digest does not verify: {creds} (expected response {expected})"),
    );
    let invite_uri = requests(&received, "INVITE")[1]
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    scene.ensure(get("uri") == invite_uri, || {
        format!(
            "digest uri {} is not the Request-URI {invite_uri}",
            get("uri")
        )
    });
    check_no_password_logged(&scene);
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 1 && cdrs[0].outcome.disposition == Disposition::Answered,
        || format!("expected one answered CDR:\n{}", summary(&cdrs)),
    );
}

/// Wrong credentials: the carrier challenges the second INVITE again; the gateway does not try
/// a third time, the PBX gets 403 (not the carrier's 401), the CDR says carrier_auth_failed.
#[test]
fn wrong_credentials_end_in_403_and_carrier_auth_failed() {
    let mut scene = scene_with("not-the-password", "");
    let uas = carrier(
        &mut scene,
        "carrier_uas_auth.xml",
        &[("algo", "MD5"), ("user", USER), ("pass", PASSWORD)],
    );
    let uac = pbx_call(&mut scene, "pbx", "pbx_uac_refused.xml");
    let counts = scene.ok(scene.sipps[uac].counts());
    let got = scene.ok(counts.first("403_Recv"));
    scene.ensure(got == 1, || format!("PBX SIPp: {got} 403s, expected 1"));
    scene.expect_exit_ok(uas);
    let received = scene.ok(scene.sipps[uas].received_messages());
    check_invite_resent(&scene, &received, "Authorization", "MD5");
    let pbx_saw = scene.ok(scene.sipps[uac].received_messages());
    scene.ensure(
        pbx_saw
            .iter()
            .all(|m| !m.starts_with("SIP/2.0 401") && !m.contains("WWW-Authenticate")),
        || "the carrier's challenge reached the PBX".to_string(),
    );
    let log = scene.gateway.log();
    scene.ensure(!log.contains("not-the-password"), || {
        "the password appears in the gateway log".to_string()
    });
    let cdrs = scene.stop_and_read_cdrs();
    let ok = cdrs.len() == 1
        && cdrs[0].outcome.final_status == 403
        && cdrs[0].outcome.end_reason == EndReason::CarrierAuthFailed
        && cdrs[0].outcome.disposition == Disposition::Failed;
    scene.ensure(ok, || {
        format!(
            "expected one CDR 403 carrier_auth_failed:\n{}",
            summary(&cdrs)
        )
    });
}

/// The carrier challenges the BYE: sent again with credentials, which verifyauth accepts (the
/// scenario waits forever on a wrong answer, failing by its timeout).
#[test]
fn bye_challenged_is_answered() {
    let mut scene = scene_with(PASSWORD, "");
    let uas = carrier(
        &mut scene,
        "carrier_uas_auth_bye.xml",
        &[("user", USER), ("pass", PASSWORD)],
    );
    let uac = pbx_call(&mut scene, "pbx", "pbx_uac.xml");
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || {
        format!("PBX SIPp: {ok} successful calls, expected 1")
    });
    scene.expect_exit_ok(uas);
    let received = scene.ok(scene.sipps[uas].received_messages());
    let byes = requests(&received, "BYE");
    scene.ensure(
        byes.len() == 2
            && header(byes[0], "Authorization").is_none()
            && header(byes[1], "Authorization").is_some()
            && header(byes[0], "CSeq").map(|c| c.split(' ').next().unwrap_or_default().to_string())
                != header(byes[1], "CSeq")
                    .map(|c| c.split(' ').next().unwrap_or_default().to_string()),
        || format!("expected a BYE, then the same with credentials and the next CSeq: {byes:?}"),
    );
    check_no_password_logged(&scene);
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 1 && cdrs[0].outcome.disposition == Disposition::Answered,
        || format!("expected one answered CDR:\n{}", summary(&cdrs)),
    );
}

/// Lines of the gateway log for a granted registration.
fn registered_lines(scene: &Scene) -> usize {
    scene
        .gateway
        .log()
        .lines()
        .filter(|l| l.contains(" registered ") && l.contains("trunk=interop"))
        .count()
}

fn wait_until(scene: &Scene, what: &str, limit: Duration, done: impl Fn(&Scene) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(scene) {
        if Instant::now() >= deadline {
            scene.fail(format!("{what}: not within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A registrar requiring REGISTER (401, MD5): before it answers, outbound calls get 503 Trunk
/// Not Registered; once it granted the binding they are carried; the binding is refreshed every
/// 2 s (Expires: 4, each refresh challenged and answered) and removed at the clean stop.
#[test]
fn registration_gates_calls_and_is_refreshed() {
    let registrar = SocketAddr::new(CARRIER_IP.into(), harness::free_port(CARRIER_IP, false));
    let mut scene = scene_with(
        PASSWORD,
        &format!("register = true\nregister_expires = 4\nregistrar = \"{registrar}\"\n"),
    );
    // No registrar yet: the REGISTER goes unanswered, the trunk is not registered.
    let uac = pbx_call(&mut scene, "pbx-before", "pbx_uac_refused_503.xml");
    let counts = scene.ok(scene.sipps[uac].counts());
    let got = scene.ok(counts.first("503_Recv"));
    scene.ensure(got == 1, || {
        format!("PBX SIPp: {got} 503s before registration, expected 1")
    });
    let pbx_saw = scene.ok(scene.sipps[uac].received_messages());
    scene.ensure(
        pbx_saw
            .iter()
            .any(|m| m.starts_with("SIP/2.0 503 Trunk Not Registered")),
        || format!("the 503 does not say why: {pbx_saw:?}"),
    );
    let reg = scene.sipp(SippSpec {
        name: "registrar",
        scenario: Scenario::File("registrar_auth.xml"),
        local: registrar,
        remote: None,
        args: args(&[
            "-m",
            "1",
            "-trace_msg",
            "-key",
            "user",
            USER,
            "-key",
            "pass",
            PASSWORD,
        ]),
        timeout_secs: 60,
    });
    // The REGISTER is retransmitted (timer E) until the registrar answers.
    wait_until(&scene, "first registration", Duration::from_secs(20), |s| {
        registered_lines(s) >= 1
    });
    let carrier_uas = carrier(
        &mut scene,
        "carrier_uas_auth_bye.xml",
        &[("user", USER), ("pass", PASSWORD)],
    );
    let uac = pbx_call(&mut scene, "pbx-after", "pbx_uac.xml");
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || {
        format!("PBX SIPp: {ok} successful calls after registration")
    });
    scene.expect_exit_ok(carrier_uas);
    // Two refreshes at half of the 4 s granted.
    let refreshed_from = Instant::now();
    wait_until(&scene, "two refreshes", Duration::from_secs(12), |s| {
        registered_lines(s) >= 3
    });
    scene.ensure(
        refreshed_from.elapsed() >= Duration::from_millis(1500),
        || "refreshes came faster than half the grant".to_string(),
    );
    check_no_password_logged(&scene);
    let cdrs = scene.stop_and_read_cdrs();
    // The stop removed the binding: the registrar's scenario ends only on Expires: 0.
    scene.expect_exit_ok(reg);
    let received = scene.ok(scene.sipps[reg].received_messages());
    let registers = requests(&received, "REGISTER");
    let authorized: Vec<&&String> = registers
        .iter()
        .filter(|m| header(m, "Authorization").is_some())
        .collect();
    let expires = |m: &str| header(m, "Expires").unwrap_or_default().to_string();
    scene.ensure(
        authorized.len() >= 4
            && authorized[..authorized.len() - 1]
                .iter()
                .all(|m| expires(m) == "4")
            && authorized.last().is_some_and(|m| expires(m) == "0"),
        || {
            format!(
                "expected ≥ 3 authorized REGISTERs with Expires: 4, then one with Expires: 0: {:?}",
                authorized.iter().map(|m| expires(m)).collect::<Vec<_>>()
            )
        },
    );
    let call_ids: std::collections::HashSet<_> = registers
        .iter()
        .filter_map(|m| header(m, "Call-ID"))
        .collect();
    scene.ensure(call_ids.len() == 1, || {
        format!("REGISTERs of one binding under several Call-IDs: {call_ids:?}")
    });
    let reasons: Vec<_> = cdrs.iter().map(|c| c.outcome.refusal_reason).collect();
    let ok = cdrs.len() == 2
        && reasons.contains(&Some(RefusalReason::TrunkNotRegistered))
        && cdrs
            .iter()
            .any(|c| c.outcome.disposition == Disposition::Answered)
        && cdrs
            .iter()
            .filter(|c| c.outcome.refusal_reason.is_some())
            .all(|c| c.outcome.final_status == 503);
    scene.ensure(ok, || {
        format!(
            "expected one CDR refused 503 trunk_not_registered and one answered:\n{}",
            summary(&cdrs)
        )
    });
}
