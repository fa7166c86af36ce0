//! SIGKILL with calls up or being set up. After a restart: an answered call's CDR is closed
//! with end reason `gateway_restart` and its recording repaired, marked incomplete, playing
//! the audio up to about one second before the kill; and the PBX and the carrier are told of
//! the dialogs they still hold — BYE for an answered call, a final 500 for the PBX's pending
//! INVITE, CANCEL for the carrier's (with the ACK of its 487, or ACK and BYE for a 2xx that
//! came while the gateway was down). Tested with our UA and with SIPp on both sides.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::Path;
use std::time::Duration;

use common::binary::{harness, Setup};
use common::rtp::*;
use common::{Dialog, InviteSpec, Ua, CALLEE, CALLER};
use sqlx::{Connection, SqliteConnection};
use tokio::net::UdpSocket;
use trunkguard::model::Disposition;
use trunkguard::model::EndReason;
use trunkguard::model::RecordingStatus;

/// Polls of 100 ms for a journal entry (bounded; a hang fails).
const JOURNAL_POLLS: usize = 100;

/// Wait until the journal holds a call whose dialog state contains `needle`: the CDR writer
/// stores entries in the background, and a kill before that would leave nothing to end.
async fn wait_journaled(db: &Path, needle: &str) {
    wait_journaled_calls(db, needle, 1).await;
}

/// `wait_journaled` for `calls` calls.
async fn wait_journaled_calls(db: &Path, needle: &str, calls: usize) {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut last = String::new();
    for _ in 0..JOURNAL_POLLS {
        match SqliteConnection::connect(&url).await {
            Ok(mut conn) => {
                let rows: Result<Vec<Option<String>>, _> =
                    sqlx::query_scalar("SELECT dialogs_json FROM call_journal")
                        .fetch_all(&mut conn)
                        .await;
                match rows {
                    Ok(rows)
                        if rows
                            .iter()
                            .flatten()
                            .filter(|json| json.contains(needle))
                            .count()
                            >= calls =>
                    {
                        return
                    }
                    Ok(rows) => last = format!("{} rows", rows.len()),
                    Err(e) => last = format!("query: {e}"),
                }
            }
            Err(e) => last = format!("connect: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(db.with_file_name("gateway.log")).unwrap_or_default();
    panic!("no journaled call with {needle} after {JOURNAL_POLLS} polls (last: {last}); gateway log:\n{log}");
}

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

/// A call ringing at the carrier when the gateway is killed (and, with `answer_while_down`,
/// answered by the carrier while the gateway is down). Returns what the peers saw of it.
struct Ringing {
    dir: tempfile::TempDir,
    config: String,
    addrs: harness::Addrs,
    pbx: Ua,
    carrier: Ua,
    invite: common::Sent,
    ringing: common::Msg,
    c_invite: common::Msg,
}

async fn ringing_then_killed() -> Ringing {
    let Setup {
        dir,
        mut pbx,
        mut carrier,
        addrs,
        config,
        mut gw,
    } = Setup::start_with(harness::TrunkLimits {
        // One call at a time: a slot the crash leaked would refuse the next call.
        max_concurrent: 1,
        max_concurrent_per_caller_id: 1,
        ..harness::TrunkLimits::default()
    })
    .await;
    let invite = pbx
        .invite(addrs.inside, &InviteSpec::new(CALLER, CALLEE))
        .await;
    pbx.expect_response(100).await;
    let c_invite = carrier.expect_request("INVITE").await;
    carrier.reply(&c_invite, 180, Some("ring")).await;
    let ringing = pbx.expect_response(180).await;
    wait_journaled(&dir.path().join("tg.db"), r#""state":"inviting""#).await;
    gw.kill();
    Ringing {
        dir,
        config,
        addrs,
        pbx,
        carrier,
        invite,
        ringing,
        c_invite,
    }
}

/// After the restart: the PBX's INVITE gets a final 500 (same transaction, the To tag of the
/// 180), which the PBX acknowledges; the carrier gets a CANCEL of its INVITE.
async fn pbx_fails_and_carrier_is_cancelled(r: &mut Ringing) -> common::Msg {
    let fail = r.pbx.expect_response(500).await;
    assert_eq!(fail.call_id(), r.invite.call_id);
    assert_eq!(fail.cseq(), (r.invite.cseq, "INVITE".to_string()));
    assert_eq!(fail.branch(), r.invite.branch, "{}", fail.raw);
    assert_eq!(fail.to_tag(), r.ringing.to_tag(), "{}", fail.raw);
    r.pbx.ack_non2xx(&r.invite, &fail).await;
    let cancel = r.carrier.expect_request("CANCEL").await;
    assert_eq!(cancel.call_id(), r.c_invite.call_id());
    assert_eq!(cancel.branch(), r.c_invite.branch(), "{}", cancel.raw);
    assert_eq!(
        cancel.cseq(),
        (r.c_invite.cseq().0, "CANCEL".to_string()),
        "{}",
        cancel.raw
    );
    assert_eq!(cancel.to_tag(), None, "{}", cancel.raw);
    cancel
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_ringing_fails_the_pbx_invite_and_cancels_the_carrier_invite() {
    let mut r = ringing_then_killed().await;
    let mut gw = harness::Gateway::start(r.dir.path(), &r.config);
    let cancel = pbx_fails_and_carrier_is_cancelled(&mut r).await;
    r.carrier.reply(&cancel, 200, Some("ring")).await;
    r.carrier.reply(&r.c_invite, 487, Some("ring")).await;
    // The 487 is acknowledged as its transaction expects: same branch, CSeq number, To tag.
    let ack = r.carrier.expect_request("ACK").await;
    assert_eq!(ack.branch(), r.c_invite.branch(), "{}", ack.raw);
    assert_eq!(ack.cseq(), (r.c_invite.cseq().0, "ACK".to_string()));
    assert_eq!(ack.to_tag().as_deref(), Some("ring"));
    r.carrier
        .expect_nothing_new(Duration::from_millis(500))
        .await;

    // The trunk allows one call at a time: the interrupted one left no slot taken.
    let next = r
        .pbx
        .invite(r.addrs.inside, &InviteSpec::new(CALLER, CALLEE))
        .await;
    let c_next = r.carrier.expect_request("INVITE").await;
    r.carrier.reply(&c_next, 486, Some("busy")).await;
    let busy = r.pbx.expect_response(486).await;
    r.pbx.ack_non2xx(&next, &busy).await;

    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let mut cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    cdrs.retain(|c| c.outcome.end_reason == EndReason::GatewayRestart);
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    assert_eq!(cdrs[0].outcome.disposition, Disposition::Failed);
    assert_eq!(cdrs[0].outcome.final_status, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_sent_while_the_gateway_was_down_is_acknowledged_and_ended() {
    let mut r = ringing_then_killed().await;
    // The carrier answers while the gateway is down: its 200 reaches nobody.
    r.carrier.reply(&r.c_invite, 200, Some("late")).await;
    let mut gw = harness::Gateway::start(r.dir.path(), &r.config);
    let cancel = pbx_fails_and_carrier_is_cancelled(&mut r).await;
    // Too late to cancel: the INVITE has its final response already (§9.2).
    r.carrier.reply(&cancel, 481, Some("late")).await;
    // The carrier retransmits its 2xx (no ACK came): now the gateway hears it.
    r.carrier.reply(&r.c_invite, 200, Some("late")).await;
    let ack = r.carrier.expect_request("ACK").await;
    assert_eq!(ack.call_id(), r.c_invite.call_id());
    assert_eq!(ack.cseq(), (r.c_invite.cseq().0, "ACK".to_string()));
    assert_eq!(ack.to_tag().as_deref(), Some("late"), "{}", ack.raw);
    assert_ne!(
        ack.branch(),
        r.c_invite.branch(),
        "a 2xx's ACK is a transaction of its own"
    );
    let bye = r.carrier.expect_request("BYE").await;
    assert_eq!(bye.call_id(), r.c_invite.call_id());
    assert_eq!(bye.from_tag(), r.c_invite.from_tag());
    assert_eq!(bye.to_tag().as_deref(), Some("late"), "{}", bye.raw);
    assert!(bye.cseq().0 > r.c_invite.cseq().0, "{}", bye.raw);
    assert!(
        bye.uri().contains(&r.carrier.addr().to_string()),
        "{}",
        bye.raw
    );
    r.carrier.reply(&bye, 200, None).await;
    // A retransmitted 2xx gets the ACK again, not a second BYE.
    r.carrier.reply(&r.c_invite, 200, Some("late")).await;
    let again = r
        .carrier
        .recv_matching(Duration::from_secs(2), |m| m.method() == Some("ACK"))
        .await
        .expect("the ACK again");
    assert_eq!(again.to_tag().as_deref(), Some("late"));
    r.carrier
        .expect_nothing_new(Duration::from_millis(500))
        .await;

    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    assert_eq!(cdrs[0].outcome.end_reason, EndReason::GatewayRestart);
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

/// `wait_journaled_calls` for a gateway on PostgreSQL: through the store's own read.
async fn wait_journaled_pg(url: &str, needle: &str, calls: usize) {
    let store = trunkguard::store::Store::connect(url)
        .await
        .expect("connect");
    let mut last = String::new();
    for _ in 0..JOURNAL_POLLS {
        match store.journaled_calls().await {
            Ok(rows) => {
                let found = rows
                    .iter()
                    .flatten()
                    .filter(|c| c.dialogs.as_deref().is_some_and(|d| d.contains(needle)))
                    .count();
                if found >= calls {
                    store.close().await;
                    return;
                }
                last = format!("{} rows", rows.len());
            }
            Err(e) => last = format!("query: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no journaled call with {needle} after {JOURNAL_POLLS} polls (last: {last})");
}

/// The gateway on PostgreSQL, SIGKILLed with two answered calls up (RTP flowing on one): the
/// restart reads the journal from PostgreSQL, tells both peers of both calls (BYE), repairs the
/// recording and stores each call's CDR there, closed with `gateway_restart`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_sigkilled_gateways_calls_are_closed_on_restart() {
    let Some(db) = trunkguard::store::testing::PgTestDb::create().await else {
        return;
    };
    let url = db.url();
    let Setup {
        dir,
        mut pbx,
        mut carrier,
        addrs,
        config,
        mut gw,
    } = Setup::start_on(harness::TrunkLimits::default(), Some(&url)).await;
    assert!(!dir.path().join("tg.db").exists(), "no SQLite file");

    let pbx_rtp = UdpSocket::bind(format!("{}:0", common::PBX_IP))
        .await
        .expect("bind");
    let mut spec = InviteSpec::new(CALLER, CALLEE);
    spec.sdp = Some(sdp_at(pbx_rtp.local_addr().expect("addr")));
    let invite = pbx.invite(addrs.inside, &spec).await;
    let c_invite = carrier.expect_request("INVITE").await;
    carrier
        .reply_with(
            &c_invite,
            200,
            Some("pg1"),
            &[],
            Some(&common::sdp("sendrecv")),
        )
        .await;
    let ok = pbx.expect_response(200).await;
    let pbx_to = rtp_target(&ok.body);
    pbx.ack(&Dialog::uac(&invite, &ok), invite.cseq).await;
    carrier.expect_request("ACK").await;
    let second = pbx
        .invite(addrs.inside, &InviteSpec::new(CALLER, CALLEE))
        .await;
    let c_second = common::answer_and_ack(&mut pbx, &mut carrier, &second, "pg2").await;
    wait_journaled_pg(&url, r#""state":"confirmed""#, 2).await;
    // A second of RTP from the PBX, so the recording has audio to repair.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..50u16 {
        tick.tick().await;
        pbx_rtp
            .send_to(&tone_packet(seq, 0x1111, 440.0), pbx_to)
            .await
            .expect("send");
    }
    gw.kill();

    let mut gw = harness::Gateway::start(dir.path(), &config);
    let mut pbx_byes = std::collections::HashSet::new();
    let mut carrier_byes = std::collections::HashSet::new();
    for _ in 0..2 {
        let bye = pbx.expect_request("BYE").await;
        pbx.reply(&bye, 200, None).await;
        pbx_byes.insert(bye.call_id().to_string());
        let bye = carrier.expect_request("BYE").await;
        carrier.reply(&bye, 200, None).await;
        carrier_byes.insert(bye.call_id().to_string());
    }
    assert_eq!(
        pbx_byes,
        [invite.call_id.clone(), second.call_id.clone()]
            .into_iter()
            .collect()
    );
    assert_eq!(
        carrier_byes,
        [
            c_invite.call_id().to_string(),
            c_second.call_id().to_string()
        ]
        .into_iter()
        .collect()
    );
    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));

    // The CLI reads them from PostgreSQL (the config's url) …
    let cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    for cdr in &cdrs {
        assert_eq!(cdr.outcome.end_reason, EndReason::GatewayRestart);
        assert_eq!(cdr.outcome.disposition, Disposition::Answered);
        let rec = cdr.recording.as_ref().expect("a recording on each CDR");
        assert_eq!(rec.status, RecordingStatus::Incomplete, "{rec:#?}");
    }
    // … and the store finds the journal empty there and nothing in a SQLite file.
    let store = trunkguard::store::Store::connect(&url)
        .await
        .expect("connect");
    assert!(store.journaled_calls().await.expect("journal").is_empty());
    assert_eq!(store.count_cdrs().await.expect("count"), 2);
    store.close().await;
    assert!(!dir.path().join("tg.db").exists(), "no SQLite file");
}
