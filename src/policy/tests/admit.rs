//! Identity, block and invalid-number rules, each refusal with its status and phrase.

use super::*;
use crate::model::RefusalReason as R;
use crate::policy::Policy;

const FROM_A: &str = "sip:+861012345678@10.0.0.1";
const FROM_B: &str = "sip:+861012345679@10.0.0.1";

fn policy_with(f: impl FnOnce(&mut TrunkConfig)) -> Policy {
    let mut t = trunk("demo");
    f(&mut t);
    Policy::new(&[t])
}

fn policy() -> Policy {
    policy_with(|_| {})
}

#[test]
fn authorized_caller_is_admitted_with_normalized_parties() {
    let p = policy();
    let a = admitted(p.admit(&out(FROM_A, CUSTOMER), t0()));
    assert_eq!(a.caller.as_deref(), Some(A_DIGITS));
    assert_eq!(a.callee.as_deref(), Some("8613800000000"));
    assert_eq!(a.lease.trunk(), "demo");
    assert_eq!(a.lease.number(), A_DIGITS);
}

#[test]
fn number_forms_are_normalized() {
    let p = policy();
    for from in [
        "sip:+861012345678@10.0.0.1",
        "sip:861012345678@10.0.0.1;user=phone",
        "tel:+86-10-1234-5678",
        "\"Agent 7\" <sip:+86 10-1234 5678@pbx;user=phone>;tag=abc",
        "<sips:+861012345678@pbx:5061>",
    ] {
        let a = admitted(p.admit(&out(from, "tel:+86 138 0000 0000"), t0()));
        assert_eq!(a.caller.as_deref(), Some(A_DIGITS), "{from}");
        assert_eq!(a.callee.as_deref(), Some("8613800000000"), "{from}");
    }
}

#[test]
fn every_reason_has_a_stable_code() {
    let codes: Vec<_> = R::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        codes,
        [
            "unknown_trunk",
            "caller_id_not_authorized",
            "anonymous_not_allowed",
            "number_blocked",
            "outside_calling_hours",
            "rate_limited",
            "trunk_concurrency",
            "caller_id_concurrency",
            "unknown_number",
            "invalid_number",
            "trunk_suspended",
            "caller_id_suspended",
            "trunk_throttled",
            "caller_id_throttled",
            "callee_frequency_limit",
            "shared_state_unavailable",
            "unknown_source",
            "invalid_request",
            "malformed_request",
            "shutting_down",
            "no_carrier",
            "media_unavailable",
            "duplicate_call_id",
            "sdp_malformed",
            "sdp_too_large",
            "srtp_unsupported",
            "dtls_srtp_unsupported",
            "srtp_not_allowed",
            "srtp_required",
            "recording_not_writable",
            "recording_disk_full",
            "recording_exists",
            "recording_bad_call_id",
            "recording_io_error",
            "recording_unrepairable",
            "recording_unavailable",
            "descriptor_limit",
            "overload",
            "trunk_not_registered",
        ]
    );
    for r in R::ALL {
        assert_eq!(r.as_str().parse::<R>(), Ok(*r));
        assert_eq!(r.to_string(), r.as_str());
    }
}

#[test]
fn unknown_trunk() {
    let p = policy();
    let req = AdmissionRequest {
        trunk: "nope",
        ..out(FROM_A, CUSTOMER)
    };
    let r = refused(p.admit(&req, t0()));
    assert_eq!((r.status, r.phrase.as_str()), (403, "Unknown Trunk"));
    assert_eq!(r.reason, R::UnknownTrunk);
    assert_eq!(r.caller.as_deref(), Some(A_DIGITS));
}

#[test]
fn foreign_caller_id_is_not_authorized() {
    let p = policy();
    let d = p.admit(&out("sip:+861099999999@10.0.0.1", CUSTOMER), t0());
    let r = refused(d);
    assert_eq!(
        (r.status, r.phrase.as_str()),
        (403, "Caller ID Not Authorized")
    );
    assert_eq!(r.reason, R::CallerIdNotAuthorized);
    assert_eq!(r.retry_after, None);
    assert_eq!(r.caller.as_deref(), Some("861099999999"));
    assert_eq!(p.total_active(), 0);
}

#[test]
fn pai_must_be_authorized_too() {
    let p = policy();
    let mut req = out(FROM_A, CUSTOMER);
    req.pai_uri = Some("<sip:+861099999999@10.0.0.1>");
    let d = p.admit(&req, t0());
    assert_refused(d, 403, "Caller ID Not Authorized", R::CallerIdNotAuthorized);

    req.pai_uri = Some("sip:anonymous@anonymous.invalid");
    let d = p.admit(&req, t0());
    assert_refused(d, 403, "Caller ID Not Authorized", R::CallerIdNotAuthorized);

    // Another of the trunk's own numbers is fine; the From number stays the caller ID.
    req.pai_uri = Some("tel:+861012345679");
    let a = admitted(p.admit(&req, t0()));
    assert_eq!(a.caller.as_deref(), Some(A_DIGITS));
    assert_eq!(a.lease.number(), A_DIGITS);
}

#[test]
fn anonymous_from_is_refused_by_default() {
    let p = policy();
    for from in [
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
        "sip:Anonymous@10.0.0.1",
        "sip:+861012345678@anonymous.invalid",
        "sip:agent7@10.0.0.1",
    ] {
        let mut req = out(from, CUSTOMER);
        let d = p.admit(&req, t0());
        let phrase = "Anonymous Caller ID Not Allowed";
        assert_refused(d, 403, phrase, R::AnonymousNotAllowed);
        req.pai_uri = Some(FROM_A);
        let d = p.admit(&req, t0());
        assert_refused(d, 403, phrase, R::AnonymousNotAllowed);
    }
}

#[test]
fn privacy_id_user_header_hide_identity() {
    let p = policy();
    for privacy in ["id", "ID", "user", "header;critical", "session; id"] {
        let mut req = out(FROM_A, CUSTOMER);
        req.privacy = Some(privacy);
        let d = p.admit(&req, t0());
        let phrase = "Anonymous Caller ID Not Allowed";
        assert_refused(d, 403, phrase, R::AnonymousNotAllowed);
    }
    for privacy in ["none", "session", ""] {
        let mut req = out(FROM_A, CUSTOMER);
        req.privacy = Some(privacy);
        assert!(p.admit(&req, t0()).is_admit(), "{privacy}");
    }
}

#[test]
fn allow_anonymous_still_needs_an_authorized_pai() {
    let p = policy_with(|t| t.allow_anonymous = true);
    let anon = "sip:anonymous@anonymous.invalid";

    let d = p.admit(&out(anon, CUSTOMER), t0());
    assert_refused(d, 403, "Caller ID Not Authorized", R::CallerIdNotAuthorized);

    let mut req = out(anon, CUSTOMER);
    req.pai_uri = Some("sip:+861099999999@10.0.0.1");
    let d = p.admit(&req, t0());
    assert_refused(d, 403, "Caller ID Not Authorized", R::CallerIdNotAuthorized);

    req.pai_uri = Some(FROM_B);
    let a = admitted(p.admit(&req, t0()));
    assert_eq!(a.caller.as_deref(), Some(B_DIGITS));
    assert_eq!(a.lease.number(), B_DIGITS);

    // Privacy with a real From: the PAI is required as well.
    let mut req = out(FROM_A, CUSTOMER);
    req.privacy = Some("id");
    let d = p.admit(&req, t0());
    assert_refused(d, 403, "Caller ID Not Authorized", R::CallerIdNotAuthorized);
    req.pai_uri = Some(FROM_A);
    assert!(p.admit(&req, t0()).is_admit());
}

#[test]
fn spoofed_number_behind_privacy_is_not_authorized() {
    let p = policy_with(|t| t.allow_anonymous = true);
    let mut req = out("sip:+861099999999@10.0.0.1", CUSTOMER);
    req.privacy = Some("id");
    req.pai_uri = Some(FROM_A);
    let d = p.admit(&req, t0());
    assert_refused(d, 403, "Caller ID Not Authorized", R::CallerIdNotAuthorized);
}

#[test]
fn blocked_callee_and_caller() {
    let p = policy_with(|t| t.blocked_numbers = vec!["+86 138 0000 0000".into(), B.into()]);
    let d = p.admit(&out(FROM_A, "sip:8613800000000@carrier;user=phone"), t0());
    let r = refused(d);
    assert_eq!((r.status, r.phrase.as_str()), (403, "Number Blocked"));
    assert_eq!(r.reason, R::NumberBlocked);
    assert_eq!(r.callee.as_deref(), Some("8613800000000"));

    // A suspended line of our own is blocked as a caller.
    let d = p.admit(&out(FROM_B, "tel:+8613900000000"), t0());
    assert_refused(d, 403, "Number Blocked", R::NumberBlocked);
    assert!(p.admit(&out(FROM_A, "tel:+8613900000000"), t0()).is_admit());
}

#[test]
fn callee_that_is_no_number() {
    let p = policy();
    for callee in [
        "sip:alice@carrier",
        "sip:+1234567890123456789012@carrier",
        "sip:carrier",
    ] {
        let r = refused(p.admit(&out(FROM_A, callee), t0()));
        assert_eq!(
            (r.status, r.phrase.as_str()),
            (404, "Not Found"),
            "{callee}"
        );
        assert_eq!(r.reason, R::InvalidNumber);
        assert_eq!(r.caller.as_deref(), Some(A_DIGITS));
        assert_eq!(r.callee, None);
    }
    for callee in ["sip:12@carrier", "tel:+1", "sip:1-2@carrier;user=phone"] {
        let d = p.admit(&out(FROM_A, callee), t0());
        assert_refused(d, 484, "Address Incomplete", R::InvalidNumber);
    }
}

#[test]
fn caller_checks_come_before_callee_checks() {
    let p = policy();
    let d = p.admit(&out("sip:+861099999999@x", "sip:alice@carrier"), t0());
    assert_refused(d, 403, "Caller ID Not Authorized", R::CallerIdNotAuthorized);
}

#[test]
fn inbound_to_our_number_is_admitted_and_counts_on_it() {
    let p = policy();
    let a = admitted(p.admit(&inb(CUSTOMER, "sip:+861012345678@192.0.2.1"), t0()));
    assert_eq!(a.caller.as_deref(), Some("8613800000000"));
    assert_eq!(a.callee.as_deref(), Some(A_DIGITS));
    assert_eq!(a.lease.number(), A_DIGITS);
    assert_eq!(p.live("demo").unwrap().per_number[A_DIGITS], 1);
}

#[test]
fn inbound_unknown_number_is_404() {
    let p = policy();
    let r = refused(p.admit(&inb(CUSTOMER, "sip:+861077777777@192.0.2.1"), t0()));
    assert_eq!((r.status, r.phrase.as_str()), (404, "Not Found"));
    assert_eq!(r.reason, R::UnknownNumber);
    assert_eq!(r.callee.as_deref(), Some("861077777777"));

    let d = p.admit(&inb(CUSTOMER, "sip:sales@192.0.2.1"), t0());
    assert_refused(d, 404, "Not Found", R::InvalidNumber);
}

#[test]
fn inbound_caller_is_not_authorized_but_is_screened() {
    let p = policy_with(|t| t.blocked_numbers = vec!["+8613800000000".into()]);
    // Anonymous and foreign callers reach us: they are customers.
    let a = admitted(p.admit(&inb("sip:anonymous@anonymous.invalid", FROM_A), t0()));
    assert_eq!(a.caller, None);
    assert!(p.admit(&inb("sip:+15550001111@c", FROM_A), t0()).is_admit());
    // A blocked customer does not, not even behind privacy with the number in PAI.
    let d = p.admit(&inb(CUSTOMER, FROM_A), t0());
    assert_refused(d, 403, "Number Blocked", R::NumberBlocked);
    let mut req = inb("sip:anonymous@anonymous.invalid", FROM_A);
    req.pai_uri = Some(CUSTOMER);
    req.privacy = Some("id");
    let d = p.admit(&req, t0());
    assert_refused(d, 403, "Number Blocked", R::NumberBlocked);
}

#[test]
fn identity_refusals_spend_no_rate_token() {
    let p = policy_with(|t| t.max_cps = 1.0);
    for _ in 0..20 {
        assert!(!p
            .admit(&out("sip:+861099999999@x", CUSTOMER), t0())
            .is_admit());
        assert!(!p.admit(&out(FROM_A, "sip:alice@x"), t0()).is_admit());
    }
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    let d = p.admit(&out(FROM_A, CUSTOMER), t0());
    assert_refused(d, 503, "Call Rate Exceeded", R::RateLimited);
}

/// `register = true`: outbound calls wait for the binding (503, Retry-After) and stop when it
/// expires; inbound calls are carried regardless; a trunk that does not register is untouched.
#[test]
fn unregistered_trunk_refuses_outbound_calls() {
    let p = policy_with(|t| t.register = true);
    let r = refused(p.admit(&out(FROM_A, CUSTOMER), t0()));
    assert_eq!(r.reason, R::TrunkNotRegistered);
    assert_eq!((r.status, r.phrase.as_str()), (503, "Trunk Not Registered"));
    assert_eq!(r.retry_after, Some(p.retry_after_secs()));
    admitted(p.admit(&inb(CUSTOMER, "sip:+861012345678@gw"), t0()));
    let until = t0() + chrono::Duration::seconds(30);
    p.registrations().succeeded("demo", 200, t0(), until);
    admitted(p.admit(&out(FROM_A, CUSTOMER), t0()));
    let r = refused(p.admit(&out(FROM_A, CUSTOMER), until));
    assert_eq!(r.reason, R::TrunkNotRegistered, "the binding expired");
    admitted(policy().admit(&out(FROM_A, CUSTOMER), t0()));
}
