//! SIP over TLS with SIPp: the real `trunkguard` binary with `[sip] inside_tls` / `outside_tls`
//! listeners and a trunk with `carrier_transport = "tls"`, certificates made by the test with
//! the `openssl` command (a test CA, the gateway's certificate, the carrier's, and the bad ones).
//!
//! Debian's SIPp is built without TLS (`-t l1`: "you must compile SIPp with OpenSSL"), so SIPp
//! speaks TCP (`-t t1`) and the TLS is done by two small rustls relays in the test, one per
//! side, each a plain byte pump once its handshake is done:
//! - PBX side: SIPp connects over TCP to the relay, which opens TLS from the PBX's address to
//!   the gateway's `inside_tls`, verifying the gateway's certificate with the test CA;
//! - carrier side: the gateway connects over TLS to the relay (the trunk's carrier), which
//!   serves the carrier's certificate and passes the bytes to SIPp's UAS over TCP.
//!
//! Every message SIPp sees crossed a TLS connection to or from the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;
#[path = "sipp/tls.rs"]
mod tls;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use harness::{
    args, Scenario, Scene, SippSpec, TrunkLimits, CARRIER_IP, INSIDE_IP, OUTSIDE_IP, PBX_IP,
    TRUNK_NUMBER,
};
use rustls::pki_types::ServerName;
use tls::{
    acceptor, carrier_relay, connect_from, connector, make_certs, pbx_relay, server, Certs,
    CARRIER_NAME,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use trunkguard::model::{Cdr, Direction, Disposition, EndReason, RecordingStatus};
use trunkguard::recording::g711::encode_ulaw;

const CALLEE: &str = "8613800138000";

fn free(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::new(ip.into(), harness::free_port(ip, true))
}

/// The gateway with TLS listeners on both sides and its trunk's carriers at `carriers`, over
/// TLS verified with the test CA for `carrier.test`; `recordings` on, and with `mutual` the
/// trunk shows the carrier the gateway's certificate (mutual TLS).
fn start(
    carriers: &[SocketAddr],
    recordings: bool,
    mutual: bool,
) -> (Scene, Certs, SocketAddr, SocketAddr) {
    let inside_tls = free(INSIDE_IP);
    let outside_tls = free(OUTSIDE_IP);
    let mut made = None;
    let carrier_list = carriers
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let scene = Scene::start_edited(TrunkLimits::default(), |dir, config| {
        let certs = make_certs(dir);
        let sip_tls = format!(
            "retry_after_secs = 5\ninside_tls = \"{inside_tls}\"\noutside_tls = \"{outside_tls}\"\n\
             tls_certificate = \"{}\"\ntls_key = \"{}\"\n",
            certs.gateway.0.display(),
            certs.gateway.1.display()
        );
        let carrier_line = config
            .lines()
            .find(|l| l.starts_with("carrier = "))
            .unwrap()
            .to_string();
        let mut trunk_tls = format!(
            "carrier = [{carrier_list}]\ncarrier_transport = \"tls\"\ntls_ca_file = \"{}\"\n\
             tls_server_name = \"{CARRIER_NAME}\"",
            certs.ca.display()
        );
        if mutual {
            trunk_tls.push_str(&format!(
                "\ntls_client_certificate = \"{}\"\ntls_client_key = \"{}\"",
                certs.gateway.0.display(),
                certs.gateway.1.display()
            ));
        }
        let mut config = config
            .replacen("retry_after_secs = 5\n", &sip_tls, 1)
            .replacen(&carrier_line, &trunk_tls, 1);
        if recordings {
            config.push_str(&format!(
                "\n[recording]\ndir = \"{}\"\nrequired = true\n",
                dir.join("recordings").display()
            ));
            config = config.replacen(
                "[media]\n",
                &format!(
                    "[media]\ninside_address = \"{INSIDE_IP}\"\noutside_address = \"{OUTSIDE_IP}\"\n"
                ),
                1,
            );
        }
        made = Some(certs);
        config
    });
    (scene, made.unwrap(), inside_tls, outside_tls)
}

/// One second of a 440 Hz tone as raw PCMU (what SIPp's RTPSTREAM plays).
fn tone() -> Vec<u8> {
    (0..8000)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            encode_ulaw((8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
        })
        .collect()
}

fn media_args(ip: Ipv4Addr) -> Vec<String> {
    args(&[
        "-t",
        "t1",
        "-mi",
        &ip.to_string(),
        "-mp",
        &harness::free_port(ip, false).to_string(),
        "-rtp_payload",
        "0",
        "-key",
        "codec_pt",
        "0",
        "-key",
        "codec_name",
        "PCMU",
        "-m",
        "1",
        "-trace_msg",
    ])
}

fn only_cdr(scene: &mut Scene) -> Cdr {
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(cdrs.len() == 1, || {
        format!("expected one CDR, found {}: {cdrs:#?}", cdrs.len())
    });
    cdrs.into_iter().next().unwrap()
}

/// Before the call: two hostile clients on `inside_tls` from the PBX's address, one silent
/// (stuck in the handshake), one speaking plain SIP. Returns the silent one and when it came.
async fn hostile_clients(inside_tls: SocketAddr) -> (TcpStream, Instant) {
    let silent = connect_from(PBX_IP, inside_tls).await;
    let opened = Instant::now();
    let mut plain = connect_from(PBX_IP, inside_tls).await;
    plain
        .write_all(b"OPTIONS sip:gw SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.10:5060\r\n\r\n")
        .await
        .unwrap();
    // The listener ends the handshake (an alert at most) and closes: no SIP answer.
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "a plain-TCP client on the TLS port was not closed"
    );
    assert!(
        !String::from_utf8_lossy(&got).contains("SIP/2.0"),
        "plain SIP on the TLS port got a SIP answer: {got:?}"
    );
    (silent, opened)
}

/// A CRLFCRLF keepalive ping on a TLS connection gets a CRLF pong (RFC 5626 §4.4.1).
async fn ping_pong(inside_tls: SocketAddr, tls: &TlsConnector) {
    let tcp = connect_from(PBX_IP, inside_tls).await;
    let name = ServerName::IpAddress(inside_tls.ip().into());
    let mut secure = tls
        .connect(name, tcp)
        .await
        .expect("the gateway's certificate");
    secure.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), secure.read_exact(&mut pong))
        .await
        .expect("a pong within 5 s")
        .unwrap();
    assert_eq!(&pong, b"\r\n");
}

/// A PBX over TLS to `inside_tls`, a carrier over mutual TLS (the gateway the client,
/// verifying the carrier's certificate with the test CA and showing its own): the call
/// completes, both hear each other, the CDR is answered and the recording complete; the messages name TLS and the TLS listeners. On the
/// way, hostile clients on the TLS port neither crash nor hold up the listener, and a
/// keepalive ping is answered.
#[test]
fn a_call_over_tls_on_both_sides_is_carried_and_recorded() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let carrier_relay_addr = free(CARRIER_IP);
    let (mut scene, certs, inside_tls, outside_tls) = start(&[carrier_relay_addr], true, true);
    for name in ["pbx-uac", "carrier-uas"] {
        let file = if name == "pbx-uac" {
            "pbx.g711"
        } else {
            "carrier.g711"
        };
        fs::write(harness::sipp_dir(scene.path(), name).join(file), tone()).unwrap();
    }
    let tls = connector(&certs.ca);
    let carrier_sipp = free(CARRIER_IP);
    let pbx_relay_addr = free(PBX_IP);
    let (silent, opened) = runtime.block_on(async {
        let carrier = TcpListener::bind(carrier_relay_addr).await.unwrap();
        // The carrier wants the gateway's certificate (mutual TLS).
        tokio::spawn(carrier_relay(
            carrier,
            server(&certs.carrier, Some(&certs.ca)),
            Some(carrier_sipp),
        ));
        let pbx = TcpListener::bind(pbx_relay_addr).await.unwrap();
        tokio::spawn(pbx_relay(pbx, inside_tls, tls.clone()));
        let hostile = hostile_clients(inside_tls).await;
        ping_pong(inside_tls, &tls).await;
        hostile
    });

    let mut carrier_args = media_args(CARRIER_IP);
    carrier_args.extend(args(&["-key", "ring_ms", "0"]));
    let carrier = scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::File("carrier_uas_media.xml"),
        local: carrier_sipp,
        remote: None,
        args: carrier_args,
        timeout_secs: 30,
    });
    let mut pbx_args = media_args(PBX_IP);
    pbx_args.extend(args(&[
        "-key",
        "caller",
        TRUNK_NUMBER,
        "-s",
        CALLEE,
        "-d",
        "2000",
    ]));
    let pbx = scene.sipp(SippSpec {
        name: "pbx-uac",
        scenario: Scenario::File("pbx_uac_media.xml"),
        local: free(PBX_IP),
        remote: Some(pbx_relay_addr),
        args: pbx_args,
        timeout_secs: 30,
    });
    scene.expect_exit_ok(pbx);
    scene.expect_exit_ok(carrier);
    for (i, role) in [(pbx, "PBX"), (carrier, "carrier")] {
        let stats = scene.ok(scene.sipps[i].stats());
        let ok = scene.ok(stats.get("SuccessfulCall"));
        let failed = scene.ok(stats.get("FailedCall"));
        scene.ensure(ok == 1 && failed == 0, || {
            format!("{role} SIPp: {ok} successful, {failed} failed calls; expected 1/0")
        });
    }

    // What crossed: the carrier's INVITE came over TLS from the outside TLS listener's
    // address, with a TLS Request-URI and Contact; the PBX's 200 names the inside listener.
    let invite = scene.received_invite(carrier);
    // URI parameters' values are case-insensitive (RFC 3261 §19.1.4): rsip writes `TLS`.
    let lower = invite.to_ascii_lowercase();
    for want in [
        format!("invite sip:{CALLEE}@{carrier_relay_addr};transport=tls sip/2.0"),
        format!("sip/2.0/tls {outside_tls};branch="),
        ";alias".to_string(),
        format!("<sip:{outside_tls};transport=tls>"),
    ] {
        scene.ensure(lower.contains(&want), || {
            format!("the carrier's INVITE lacks `{want}`:\n{invite}")
        });
    }
    let pbx_msgs = scene.ok(scene.sipps[pbx].received_messages());
    let ok = pbx_msgs
        .iter()
        .find(|m| m.starts_with("SIP/2.0 200") && m.contains("INVITE"))
        .cloned()
        .unwrap_or_else(|| scene.fail("the PBX got no 200 to its INVITE"));
    let want = format!("<sip:{inside_tls};transport=tls>");
    scene.ensure(ok.contains(&want), || {
        format!("the PBX's 200 lacks the Contact {want}:\n{ok}")
    });

    // The silent client was dropped by the handshake timeout (10 s).
    runtime.block_on(async {
        let mut silent = silent;
        let left = Duration::from_secs(14).saturating_sub(opened.elapsed());
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(left, silent.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a client silent in the TLS handshake was not closed after 10 s: {read:?}"
        );
    });

    let cdr = only_cdr(&mut scene);
    scene.ensure(
        cdr.attempt.direction == Direction::Outbound
            && cdr.outcome.disposition == Disposition::Answered
            && cdr.outcome.final_status == 200
            && cdr.outcome.talk_ms > 0,
        || format!("expected an answered outbound call: {cdr:#?}"),
    );
    let rec = cdr
        .recording
        .as_ref()
        .unwrap_or_else(|| scene.fail(format!("no recording: {cdr:#?}")));
    scene.ensure(rec.status == RecordingStatus::Complete, || {
        format!("expected a complete recording: {rec:#?}")
    });
    for leg in ["inside", "outside"] {
        let q = cdr.media.iter().find(|q| q.leg == leg);
        scene.ensure(q.is_some_and(|q| q.packets_in > 0), || {
            format!("expected RTP from the {leg} leg: {:#?}", cdr.media)
        });
    }
}

/// A carrier whose certificate is not signed by the trunk's CA, then one signed by it for
/// another name: both connections fail verification, the PBX gets 503, the CDR says
/// `carrier_tls_failed`, and the log names each verification error.
#[test]
fn a_carrier_that_fails_verification_ends_the_call_503() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let rogue = free(CARRIER_IP);
    let elsewhere = free(CARRIER_IP);
    let (mut scene, certs, inside_tls, _) = start(&[rogue, elsewhere], false, false);
    let pbx_relay_addr = free(PBX_IP);
    runtime.block_on(async {
        for (addr, identity) in [(rogue, &certs.rogue), (elsewhere, &certs.wrong_name)] {
            let l = TcpListener::bind(addr).await.unwrap();
            tokio::spawn(carrier_relay(l, acceptor(identity), None));
        }
        let pbx = TcpListener::bind(pbx_relay_addr).await.unwrap();
        tokio::spawn(pbx_relay(pbx, inside_tls, connector(&certs.ca)));
    });
    let pbx = scene.sipp(SippSpec {
        name: "pbx-uac",
        scenario: Scenario::File("pbx_uac_503.xml"),
        local: free(PBX_IP),
        remote: Some(pbx_relay_addr),
        args: args(&[
            "-t",
            "t1",
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            CALLEE,
            "-m",
            "1",
        ]),
        timeout_secs: 20,
    });
    let started = Instant::now();
    scene.expect_exit_ok(pbx);
    // Failed at once, not after timer B (32 s).
    scene.ensure(started.elapsed() < Duration::from_secs(15), || {
        format!("the 503 took {:?}", started.elapsed())
    });
    let log = scene.gateway.log();
    for want in ["UnknownIssuer", "not valid for name \"carrier.test\""] {
        scene.ensure(log.contains(want), || {
            format!("the gateway log does not name the verification error `{want}`")
        });
    }
    let cdr = only_cdr(&mut scene);
    scene.ensure(
        cdr.outcome.disposition == Disposition::Failed
            && cdr.outcome.final_status == 503
            && cdr.outcome.end_reason == EndReason::CarrierTlsFailed,
        || format!("expected a failed call, 503, carrier_tls_failed: {cdr:#?}"),
    );
}

/// Connection reuse (RFC 5923 style): the carrier hangs up, its BYE coming back over the TLS
/// connection the gateway opened to it (the carrier listens on nothing the gateway could reach
/// otherwise: the relay is the only way in); the gateway's BYE reaches the PBX over the
/// connection the PBX opened.
#[test]
fn the_carriers_bye_comes_back_on_the_connection_the_gateway_opened() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let carrier_relay_addr = free(CARRIER_IP);
    let (mut scene, certs, inside_tls, _) = start(&[carrier_relay_addr], false, false);
    let carrier_sipp = free(CARRIER_IP);
    let pbx_relay_addr = free(PBX_IP);
    runtime.block_on(async {
        let carrier = TcpListener::bind(carrier_relay_addr).await.unwrap();
        tokio::spawn(carrier_relay(
            carrier,
            acceptor(&certs.carrier),
            Some(carrier_sipp),
        ));
        let pbx = TcpListener::bind(pbx_relay_addr).await.unwrap();
        tokio::spawn(pbx_relay(pbx, inside_tls, connector(&certs.ca)));
    });
    let carrier = scene.sipp(SippSpec {
        name: "carrier-uas-bye",
        scenario: Scenario::File("carrier_uas_bye.xml"),
        local: carrier_sipp,
        remote: None,
        args: args(&["-t", "t1", "-m", "1", "-d", "1000"]),
        timeout_secs: 20,
    });
    let pbx = scene.sipp(SippSpec {
        name: "pbx-uac",
        scenario: Scenario::File("pbx_uac_until_bye.xml"),
        local: free(PBX_IP),
        remote: Some(pbx_relay_addr),
        args: args(&[
            "-t",
            "t1",
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            CALLEE,
            "-m",
            "1",
        ]),
        timeout_secs: 20,
    });
    scene.expect_exit_ok(carrier);
    scene.expect_exit_ok(pbx);
    let cdr = only_cdr(&mut scene);
    scene.ensure(
        cdr.outcome.disposition == Disposition::Answered
            && cdr.outcome.end_reason == EndReason::NormalClearing
            && cdr.outcome.hangup_side == Some(trunkguard::model::HangupSide::Outside),
        || format!("expected an answered call the carrier hung up: {cdr:#?}"),
    );
}
