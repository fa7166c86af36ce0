//! Policy tests: a fake clock (every `now` is explicit) and a small trunk builder.

mod admit;
mod callee;
mod capacity;
mod cluster;
mod hours;
mod restrictions;
mod trunks;

use chrono::{DateTime, TimeZone, Utc};

use super::{AdmissionRequest, Decision, Refusal};
use crate::config::{CallingHours, TransportKind, TrunkConfig};
use crate::model::{Direction, RefusalReason};

/// The trunk's two numbers, as written in config and as normalized.
pub(crate) const A: &str = "+86 10 1234 5678";
pub(crate) const A_DIGITS: &str = "861012345678";
pub(crate) const B: &str = "+861012345679";
pub(crate) const B_DIGITS: &str = "861012345679";
/// A customer.
pub(crate) const CUSTOMER: &str = "sip:+8613800000000@carrier";

pub(crate) fn trunk(name: &str) -> TrunkConfig {
    TrunkConfig {
        name: name.to_string(),
        pbx: vec!["10.0.0.0/24".parse().unwrap()],
        carrier: vec!["192.0.2.10:5060".parse().unwrap()],
        carrier_transport: TransportKind::Udp,
        inbound_to: "10.0.0.5:5060".parse().unwrap(),
        pbx_transport: TransportKind::Udp,
        pbx_media_encryption: Default::default(),
        carrier_media_encryption: Default::default(),
        numbers: vec![A.to_string(), B.to_string()],
        max_concurrent: 30,
        max_concurrent_per_caller_id: 10,
        max_cps: 1000.0,
        allow_anonymous: false,
        calling_hours: CallingHours::always(),
        timezone: chrono_tz::Tz::UTC,
        max_call_secs: 7200,
        blocked_numbers: vec![],
        throttle_share: 0.5,
        hangup_on_suspend: false,
        // Most tests call one customer again and again; `callee.rs` turns the limit on.
        rules: toml::from_str("[over_frequent_callee]\nenabled = false\n").unwrap(),
        pause_dtmf: None,
        resume_dtmf: None,
        auth_username: None,
        auth_password: None,
        auth_password_file: None,
        auth_realm: None,
        register: false,
        register_expires: 3600,
        register_uri: None,
        registrar: None,
        password_from_file: None,
        tls_ca_file: None,
        tls_server_name: None,
        tls_client_certificate: None,
        tls_client_key: None,
        tls_sips_uri: false,
    }
}

/// 2024-03-01 12:00:00 UTC.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()
}

pub(crate) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// An outbound INVITE on trunk "demo".
pub(crate) fn out<'a>(from: &'a str, callee: &'a str) -> AdmissionRequest<'a> {
    AdmissionRequest {
        trunk: "demo",
        direction: Direction::Outbound,
        from_uri: from,
        pai_uri: None,
        privacy: None,
        callee_uri: callee,
    }
}

/// An inbound INVITE on trunk "demo".
pub(crate) fn inb<'a>(from: &'a str, callee: &'a str) -> AdmissionRequest<'a> {
    AdmissionRequest {
        direction: Direction::Inbound,
        ..out(from, callee)
    }
}

pub(crate) fn refused(d: Decision) -> Refusal {
    match d {
        Decision::Refuse(r) => r,
        Decision::Admit(a) => panic!("admitted, expected a refusal: {a:?}"),
    }
}

pub(crate) fn admitted(d: Decision) -> super::Admission {
    match d {
        Decision::Admit(a) => a,
        Decision::Refuse(r) => panic!("refused: {r}"),
    }
}

/// Assert status, phrase and reason of a refusal.
#[track_caller]
pub(crate) fn assert_refused(d: Decision, status: u16, phrase: &str, reason: RefusalReason) {
    let r = refused(d);
    assert_eq!(
        (r.status, r.phrase.as_str(), r.reason),
        (status, phrase, reason)
    );
}
