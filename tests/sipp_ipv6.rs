//! IPv6 (issue 15, item 6): the gateway listens on `[::1]` on both interfaces, with SIPp over
//! IPv6 as the PBX and the carrier. Every URI the PBX sends names an IPv6 reference (Via, From,
//! To, Contact, the Request-URI; rsip 0.4's URI parser refuses those, the front end's own parser
//! reads them), the Contact has a dotted user part, and the SDP `c=IN IP6` is anchored on the
//! gateway's IPv6 media address both ways.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use harness::{args, Scenario, Scene, SippSpec, TrunkLimits, PBX_IP, TRUNK_NUMBER};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use trunkguard::model::Disposition;

const CALLEE: &str = "8613800138000";

/// A port free on ::1 for UDP (and TCP when `tcp`). Loopback IPv6 has one address, so the
/// roles differ by port only.
fn free_v6(tcp: bool) -> SocketAddr {
    for _ in 0..200 {
        let udp = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).expect("bind UDP on ::1");
        let addr = udp.local_addr().expect("local addr");
        if tcp && TcpListener::bind(addr).is_err() {
            continue;
        }
        return addr;
    }
    panic!("no free port on ::1");
}

#[test]
fn a_call_over_ipv6_with_ipv6_uris_and_media() {
    let (inside, outside) = (free_v6(true), free_v6(true));
    let (carrier, pbx) = (free_v6(false), free_v6(false));
    let mut scene = Scene::start_edited(TrunkLimits::default(), |_, config| {
        // The harness's IPv4 roles, moved to ::1.
        let mut c = replace_value(&config, "inside = ", &format!("\"{inside}\""));
        c = replace_value(&c, "outside = ", &format!("\"{outside}\""));
        c = replace_value(&c, "carrier = ", &format!("\"{carrier}\""));
        c = replace_value(&c, "inbound_to = ", &format!("\"{pbx}\""));
        c = c.replace(&format!("\"{PBX_IP}/32\""), "\"::1/128\"");
        c.replace(
            "[media]\n",
            "[media]\ninside_address = \"::1\"\noutside_address = \"::1\"\n",
        )
    });
    let uas = scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::Builtin("uas"),
        local: carrier,
        remote: None,
        args: args(&["-m", "1", "-trace_msg"]),
        timeout_secs: 30,
    });
    let uac = scene.sipp(SippSpec {
        name: "pbx-uac",
        scenario: Scenario::File("pbx_uac_ipv6.xml"),
        local: pbx,
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
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || format!("PBX SIPp: {ok} successful calls"));
    scene.expect_exit_ok(uas);
    let invite = scene.received_invite(uas);
    scene.ensure(
        invite.starts_with(&format!("INVITE sip:{CALLEE}@{carrier} "))
            && invite.contains(&format!("Via: SIP/2.0/UDP {outside};"))
            && invite.contains("c=IN IP6 ::1")
            && invite.contains("o=trunkguard ")
            && invite.contains("@[::1]>"),
        || format!("the carrier's INVITE should name IPv6 hosts and media:\n{invite}"),
    );
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 1 && cdrs[0].outcome.disposition == Disposition::Answered,
        || format!("expected one answered CDR: {cdrs:#?}"),
    );
}

/// The rest of the line after `key` replaced by `value`.
fn replace_value(config: &str, key: &str, value: &str) -> String {
    config
        .lines()
        .map(|l| match l.strip_prefix(key) {
            Some(_) => format!("{key}{value}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
