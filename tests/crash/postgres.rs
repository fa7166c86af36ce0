//! On PostgreSQL: a SIGKILLed gateway's journaled calls closed on restart.

use super::*;

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
