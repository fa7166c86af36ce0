//! Calls up at the SIGKILL: after the restart the CDR is closed with `gateway_restart`, the
//! recording repaired and playable, and every peer (our UA, SIPp, a PBX on TCP) gets its BYE.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_call_leaves_a_closed_cdr_and_a_playable_recording() {
    let Setup {
        dir,
        mut pbx,
        mut carrier,
        addrs,
        config,
        mut gw,
    } = Setup::start().await;

    // An answered call with RTP both ways.
    let pbx_rtp = UdpSocket::bind(format!("{}:0", common::PBX_IP))
        .await
        .expect("bind");
    let carrier_rtp = UdpSocket::bind(format!("{}:0", common::CARRIER_IP))
        .await
        .expect("bind");
    let mut spec = InviteSpec::new(CALLER, CALLEE);
    spec.sdp = Some(sdp_at(pbx_rtp.local_addr().expect("addr")));
    let invite = pbx.invite(addrs.inside, &spec).await;
    pbx.expect_response(100).await;
    let c_invite = carrier.expect_request("INVITE").await;
    carrier.reply(&c_invite, 100, None).await;
    let carrier_to = rtp_target(&c_invite.body);
    let answer = sdp_at(carrier_rtp.local_addr().expect("addr"));
    carrier
        .reply_with(&c_invite, 200, Some("crash"), &[], Some(&answer))
        .await;
    let ok = pbx.expect_response(200).await;
    let pbx_to = rtp_target(&ok.body);
    let dialog = Dialog::uac(&invite, &ok);
    pbx.ack(&dialog, invite.cseq).await;
    carrier.expect_request("ACK").await;
    wait_journaled(&dir.path().join("tg.db"), r#""state":"confirmed""#).await;

    // Three seconds of talk, then the gateway is killed without warning.
    let talk = 150u16;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..talk {
        tick.tick().await;
        pbx_rtp
            .send_to(&tone_packet(seq, 0x1111, 440.0), pbx_to)
            .await
            .expect("send");
        carrier_rtp
            .send_to(&tone_packet(seq, 0x2222, 1000.0), carrier_to)
            .await
            .expect("send");
    }
    gw.kill();

    // Restart: the crash is cleaned up before the gateway listens again.
    let mut gw = harness::Gateway::start(dir.path(), &config);

    // Both peers still held the call: each gets a BYE within its dialog, CSeq above the last.
    let bye = pbx.expect_request("BYE").await;
    assert_eq!(bye.call_id(), dialog.call_id);
    assert_eq!(bye.from_tag(), dialog.remote_tag(), "{}", bye.raw);
    assert_eq!(bye.to_tag(), Some(invite.from_tag()), "{}", bye.raw);
    assert!(bye.uri().contains(&pbx.addr().to_string()), "{}", bye.raw);
    assert_eq!(bye.src, addrs.inside);
    pbx.reply(&bye, 200, None).await;
    let c_bye = carrier.expect_request("BYE").await;
    assert_eq!(c_bye.call_id(), c_invite.call_id());
    assert_eq!(c_bye.from_tag(), c_invite.from_tag(), "{}", c_bye.raw);
    assert_eq!(c_bye.to_tag().as_deref(), Some("crash"), "{}", c_bye.raw);
    assert!(c_bye.cseq().0 > c_invite.cseq().0, "{}", c_bye.raw);
    assert!(
        c_bye
            .header("Reason")
            .is_some_and(|r| r.contains("cause=41")),
        "{}",
        c_bye.raw
    );
    carrier.reply(&c_bye, 200, None).await;
    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr.outcome.end_reason, EndReason::GatewayRestart);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert!(
        cdr.outcome.talk_ms >= 2_000,
        "talk time up to the crash: {cdr:#?}"
    );
    let rec = cdr.recording.as_ref().expect("the recording is on the CDR");
    assert_eq!(rec.status, RecordingStatus::Incomplete, "{rec:#?}");
    // Stored relative to the recordings folder (the config's, under the gateway's directory).
    let stored = rec.path.as_deref().expect("path");
    assert!(!std::path::Path::new(stored).is_absolute(), "{stored}");
    let root = dir.path().join(
        trunkguard::config::Config::from_toml(&config)
            .expect("the test config")
            .recording
            .dir,
    );
    let file = trunkguard::recording::paths::resolve(&root, std::path::Path::new(stored));
    let path = file.to_str().expect("a UTF-8 path");
    let mut reader = hound::WavReader::open(path).expect("the repaired file plays");
    assert_eq!(reader.spec().channels, 2);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let secs = left.len() as f64 / 8000.0;
    let sent = f64::from(talk) * 0.02;
    // Audio up to about one second before the kill (the header is made valid every second).
    assert!(
        secs >= sent - 1.3,
        "{secs:.2} s recorded of {sent:.2} s sent"
    );
    let last = |ch: &[i16]| ch[ch.len().saturating_sub(4000)..].to_vec();
    assert!(power_at(&last(&left), 440.0, 8000.0) > 10.0 * power_at(&last(&left), 1000.0, 8000.0));
    assert!(
        power_at(&last(&right), 1000.0, 8000.0) > 10.0 * power_at(&last(&right), 440.0, 8000.0)
    );
    assert!(
        !std::path::Path::new(&format!("{path}.part")).exists(),
        "no .part file left"
    );
}

/// SIPp as both peers: the PBX keeps the call until it gets a BYE, the carrier (SIPp's
/// built-in UAS) likewise; the gateway is killed mid-call and restarted, and both SIPp
/// instances complete their call — each received the restart's BYE and answered it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_peers_get_their_bye_after_a_sigkill() {
    use harness::{Scenario, Scene, SippSpec, TRUNK_NUMBER};
    let mut scene = Scene::start(harness::TrunkLimits::default());
    let config = std::fs::read_to_string(scene.gateway.config_path()).expect("config");
    let carrier = scene.addrs.carrier;
    let uas = scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::Builtin("uas"),
        local: carrier,
        remote: None,
        args: vec!["-m".into(), "1".into()],
        timeout_secs: 60,
    });
    let pbx_local = std::net::SocketAddr::new(
        harness::PBX_IP.into(),
        harness::free_port(harness::PBX_IP, false),
    );
    let inside = scene.addrs.inside;
    let uac = scene.sipp(SippSpec {
        name: "pbx-uac",
        scenario: Scenario::File("pbx_uac_until_bye.xml"),
        local: pbx_local,
        remote: Some(inside),
        args: [
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            "8613800138000",
            "-m",
            "1",
        ]
        .map(String::from)
        .to_vec(),
        timeout_secs: 60,
    });
    wait_journaled(&scene.path().join("cdrs.db"), r#""state":"confirmed""#).await;
    scene.gateway.kill();
    scene.gateway = harness::Gateway::start(scene.path(), &config);

    scene.expect_exit_ok(uac);
    scene.expect_exit_ok(uas);
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 1 && cdrs[0].outcome.end_reason == EndReason::GatewayRestart,
        || format!("one CDR closed by the restart expected: {cdrs:#?}"),
    );
}

/// Several calls up at the kill: after the restart each one's PBX and carrier dialogs get a BYE
/// (sent one call after another, not in one burst), and each call has its CDR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_up_at_the_kill_gets_its_byes() {
    const CALLS: usize = 8;
    let Setup {
        dir,
        mut pbx,
        mut carrier,
        addrs,
        config,
        mut gw,
    } = Setup::start().await;
    let mut pbx_calls = std::collections::HashSet::new();
    let mut carrier_calls = std::collections::HashSet::new();
    for i in 0..CALLS {
        let invite = pbx
            .invite(addrs.inside, &InviteSpec::new(CALLER, CALLEE))
            .await;
        let c_invite =
            common::answer_and_ack(&mut pbx, &mut carrier, &invite, &format!("up{i}")).await;
        pbx_calls.insert(invite.call_id.clone());
        carrier_calls.insert(c_invite.call_id().to_string());
    }
    wait_journaled_calls(&dir.path().join("tg.db"), r#""state":"confirmed""#, CALLS).await;
    gw.kill();

    let mut gw = harness::Gateway::start(dir.path(), &config);
    let (mut pbx_byes, mut carrier_byes) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    for _ in 0..CALLS {
        let bye = pbx.expect_request("BYE").await;
        pbx.reply(&bye, 200, None).await;
        pbx_byes.insert(bye.call_id().to_string());
        let bye = carrier.expect_request("BYE").await;
        carrier.reply(&bye, 200, None).await;
        carrier_byes.insert(bye.call_id().to_string());
    }
    assert_eq!(pbx_byes, pbx_calls);
    assert_eq!(carrier_byes, carrier_calls);

    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), CALLS, "{cdrs:#?}");
    assert!(cdrs
        .iter()
        .all(|c| c.outcome.end_reason == EndReason::GatewayRestart));
    assert!(
        gw.log().contains("byes=16") && gw.log().contains("answered=16"),
        "{}",
        gw.log_tail(20)
    );
}

/// A PBX on TCP: the gateway's connection dies with it, and the PBX's address as journaled is
/// the source port of that connection. After the restart the BYE comes on a new connection to
/// the port the PBX named (its Contact), on its own address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_on_tcp_gets_its_bye_on_the_port_it_named() {
    use common::tcp::{request, response, TcpPeer};
    let Setup {
        dir,
        mut carrier,
        addrs,
        config,
        mut gw,
        ..
    } = Setup::start().await;
    let listener = tokio::net::TcpListener::bind(format!("{}:0", common::PBX_IP))
        .await
        .expect("listen");
    let named = listener.local_addr().expect("addr");
    let mut pbx = TcpPeer::connect(common::PBX_IP, addrs.inside).await;
    let from = format!("<sip:{CALLER}@{}>;tag=pbx1", common::PBX_IP);
    let to = format!("<sip:{CALLEE}@{}>", addrs.inside.ip());
    let uri = format!("sip:{CALLEE}@{}", addrs.inside);
    let body = common::sdp("sendrecv");
    pbx.send(&request(
        "INVITE",
        named,
        &uri,
        &from,
        &to,
        "tcp-crash-1",
        1,
        &body,
    ))
    .await;
    let c_invite = carrier.expect_request("INVITE").await;
    carrier
        .reply_with(&c_invite, 200, Some("up"), &[], Some(&body))
        .await;
    let ok = pbx.expect_status(200).await;
    let ack_to = ok.must("To").to_string();
    let target = ok.contact_uri().expect("Contact");
    pbx.send(&request(
        "ACK",
        named,
        &target,
        &from,
        &ack_to,
        "tcp-crash-1",
        1,
        "",
    ))
    .await;
    carrier.expect_request("ACK").await;
    wait_journaled(&dir.path().join("tg.db"), r#""state":"confirmed""#).await;
    gw.kill();

    let mut gw = harness::Gateway::start(dir.path(), &config);
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap_or_else(|_| panic!("no connection to {named}\n{}", gw.log_tail(30)))
        .expect("accept");
    let mut back = TcpPeer::accepted(stream);
    let bye = back.expect_request("BYE").await;
    assert_eq!(bye.call_id(), "tcp-crash-1");
    assert_eq!(bye.to_tag().as_deref(), Some("pbx1"), "{}", bye.raw);
    assert!(bye.must("Via").starts_with("SIP/2.0/TCP"), "{}", bye.raw);
    back.send(&response(&bye, 200, "pbx1", "")).await;
    let c_bye = carrier.expect_request("BYE").await;
    carrier.reply(&c_bye, 200, None).await;

    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    assert!(gw.log().contains("answered=2"), "{}", gw.log_tail(20));
}
