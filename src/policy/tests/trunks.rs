//! Peer classification and inbound routing.

use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::policy::{Policy, TrunkRef};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn two_trunks() -> Policy {
    let mut wide = trunk("wide");
    wide.pbx = vec!["10.0.0.0/16".parse().unwrap()];
    let mut narrow = trunk("narrow");
    narrow.pbx = vec!["10.0.5.0/24".parse().unwrap(), "fd00::/64".parse().unwrap()];
    narrow.numbers = vec!["+861055555555".into()];
    // Same carrier IP (another port) as "wide".
    narrow.carrier = vec![sa("192.0.2.10:5070"), sa("198.51.100.7:5060")];
    Policy::new(&[wide, narrow])
}

fn name(t: Option<TrunkRef>) -> Option<String> {
    t.map(|t| t.name().to_string())
}

#[test]
fn pbx_by_most_specific_cidr() {
    let p = two_trunks();
    assert_eq!(name(p.pbx_trunk(ip("10.0.1.1"))).as_deref(), Some("wide"));
    assert_eq!(name(p.pbx_trunk(ip("10.0.5.9"))).as_deref(), Some("narrow"));
    assert_eq!(
        name(p.pbx_trunk(ip("::ffff:10.0.5.9"))).as_deref(),
        Some("narrow")
    );
    assert_eq!(name(p.pbx_trunk(ip("fd00::1"))).as_deref(), Some("narrow"));
    assert_eq!(name(p.pbx_trunk(ip("10.1.0.1"))), None);
}

#[test]
fn carrier_by_ip_any_port() {
    let p = two_trunks();
    assert_eq!(
        name(p.carrier_trunk(sa("192.0.2.10:40000"))).as_deref(),
        Some("wide")
    );
    assert_eq!(
        name(p.carrier_trunk(sa("[::ffff:198.51.100.7]:5060"))).as_deref(),
        Some("narrow")
    );
    assert_eq!(name(p.carrier_trunk(sa("192.0.2.11:5060"))), None);
}

#[test]
fn numbers_route_inbound() {
    let p = two_trunks();
    assert_eq!(
        name(p.trunk_for_number("861055555555")).as_deref(),
        Some("narrow")
    );
    assert_eq!(
        name(p.trunk_for_number("+86 10 1234 5678")).as_deref(),
        Some("wide")
    );
    assert_eq!(name(p.trunk_for_number("861000000000")), None);
    assert_eq!(name(p.trunk_for_number("abc")), None);

    // A shared carrier IP is disambiguated by the called number.
    let from = sa("192.0.2.10:5060");
    let to_narrow = p.inbound_trunk(from, "sip:+861055555555@gw");
    assert_eq!(name(to_narrow).as_deref(), Some("narrow"));
    let to_wide = p.inbound_trunk(from, "<sip:861012345678@gw;user=phone>");
    assert_eq!(name(to_wide).as_deref(), Some("wide"));
    let unknown = p.inbound_trunk(from, "sip:861000000000@gw");
    assert_eq!(name(unknown).as_deref(), Some("wide"));
    // The number's trunk does not take calls from that carrier: fall back to the carrier's.
    let other = p.inbound_trunk(sa("198.51.100.7:5060"), "sip:861012345678@gw");
    assert_eq!(name(other).as_deref(), Some("narrow"));
    assert_eq!(
        name(p.inbound_trunk(sa("203.0.113.1:5060"), "sip:861012345678@gw")),
        None
    );
}

#[test]
fn trunk_refs_are_snapshots() {
    let p = two_trunks();
    let before = p.trunk("wide").unwrap();
    assert_eq!(before.max_call_secs, 7200);
    let mut edited = trunk("wide");
    edited.max_call_secs = 60;
    p.replace_trunks(&[edited]);
    assert_eq!(before.max_call_secs, 7200);
    let after = p.trunk("wide").unwrap();
    assert_eq!(after.config().max_call_secs, 60);
    assert!(!TrunkRef::ptr_eq(&before, &after));
    assert!(p.trunk("narrow").is_none());
    assert_eq!(p.trunks().len(), 1);
}

#[test]
fn policy_is_shareable() {
    fn check<T: Send + Sync>() {}
    check::<Policy>();
    check::<crate::policy::Lease>();
    check::<TrunkRef>();
}
