//! PCI pauses survive a crash (issue 17): the real binary, a recorded call whose agent keys the
//! trunk's DTMF commands — `*7` … `*8` (a pause over), then `*7` again (a pause still open) —
//! and the gateway SIGKILLed. After the restart the CDR it closes (`gateway_restart`) lists
//! both pauses: the first as resumed by DTMF, the open one closed at the crash (the end of the
//! repaired recording, `call_ended`); and the repaired WAV is silence on both channels over each
//! interval, the tone before, between and nowhere after the open pause began.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::Path;
use std::time::Duration;

use common::binary::{harness, Peers};
use common::recording::{rms, rtp_packet, Wav};
use common::rtp::*;
use common::{Dialog, InviteSpec, CALLEE, CALLER};
use sqlx::{Connection, SqliteConnection};
use tokio::net::UdpSocket;
use trunkguard::model::{EndReason, PauseEnd, RecordingStatus};

/// Polls of 100 ms for the journal (bounded).
const POLLS: usize = 100;

/// Waits until the call's journaled CDR holds everything in `needles`.
async fn wait_journal_holds(db: &Path, needles: &[&str]) {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut last = String::new();
    for _ in 0..POLLS {
        if let Ok(mut conn) = SqliteConnection::connect(&url).await {
            let rows: Vec<String> = sqlx::query_scalar("SELECT cdr_json FROM call_journal")
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
            if rows.iter().any(|j| needles.iter().all(|n| j.contains(n))) {
                return;
            }
            last = rows.join("\n");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the journal never held {needles:?}; last:\n{last}");
}

/// The agent's stream: a 440 Hz tone, RFC 4733 events on the same SSRC and sequence.
struct Agent {
    seq: u16,
}

impl Agent {
    fn next(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn audio(&mut self, tick: u16) -> Vec<u8> {
        let mut p = tone_packet(tick, 0x1111, 440.0);
        let seq = self.next();
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p
    }

    /// Packet `k` (0..4) of an event begun at `start`: three updates, then the end three times.
    fn event(&mut self, start: u16, code: u8, k: u16) -> Vec<Vec<u8>> {
        let end = k == 3;
        let d = (160 * (k + 1)).to_be_bytes();
        let flags = if end { 0x8a } else { 0x0a };
        let seq = self.next();
        let p = rtp_packet(
            101,
            seq,
            u32::from(start) * 160,
            0x1111,
            &[code, flags, d[0], d[1]],
        );
        vec![p; if end { 3 } else { 1 }]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_journaled_before_a_sigkill_are_on_the_cdr_closed_at_restart() {
    let Peers {
        dir,
        mut pbx,
        mut carrier,
        addrs,
        config,
    } = Peers::bind(harness::TrunkLimits::default()).await;
    let config = config.replace(
        "blocked_numbers = []",
        "blocked_numbers = []\npause_dtmf = \"*7\"\nresume_dtmf = \"*8\"",
    );
    assert!(config.contains("pause_dtmf"), "{config}");
    let mut gw = harness::Gateway::start(dir.path(), &config);
    let db = common::binary::db_in(&dir);

    let pbx_rtp = UdpSocket::bind(format!("{}:0", common::PBX_IP))
        .await
        .unwrap();
    let carrier_rtp = UdpSocket::bind(format!("{}:0", common::CARRIER_IP))
        .await
        .unwrap();
    let mut spec = InviteSpec::new(CALLER, CALLEE);
    spec.sdp = Some(sdp_at(pbx_rtp.local_addr().unwrap()));
    let invite = pbx.invite(addrs.inside, &spec).await;
    pbx.expect_response(100).await;
    let c_invite = carrier.expect_request("INVITE").await;
    carrier.reply(&c_invite, 100, None).await;
    let carrier_to = rtp_target(&c_invite.body);
    let answer = sdp_at(carrier_rtp.local_addr().unwrap());
    carrier
        .reply_with(&c_invite, 200, Some("crash"), &[], Some(&answer))
        .await;
    let ok = pbx.expect_response(200).await;
    let pbx_to = rtp_target(&ok.body);
    let dialog = Dialog::uac(&invite, &ok);
    pbx.ack(&dialog, invite.cseq).await;
    carrier.expect_request("ACK").await;

    // 5.5 s of talk: *7 at 1 s, *8 at 2 s, *7 at 3 s (left open); then the kill.
    let events: [(u16, u8); 6] = [(44, 10), (50, 7), (94, 10), (100, 8), (144, 10), (150, 7)];
    let mut agent = Agent { seq: 0 };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..275u16 {
        tick.tick().await;
        pbx_rtp.send_to(&agent.audio(i), pbx_to).await.unwrap();
        for &(start, code) in &events {
            if (start..start + 4).contains(&i) {
                for p in agent.event(start, code, i - start) {
                    pbx_rtp.send_to(&p, pbx_to).await.unwrap();
                }
            }
        }
        carrier_rtp
            .send_to(&tone_packet(i, 0x2222, 1000.0), carrier_to)
            .await
            .unwrap();
    }
    // Both pauses are journaled: the first resumed, the second open.
    wait_journal_holds(&db, &[r#""ended":"resumed""#, r#""ended":"call_ended""#]).await;
    gw.kill();

    let mut gw = harness::Gateway::start(dir.path(), &config);
    let bye = pbx.expect_request("BYE").await;
    pbx.reply(&bye, 200, None).await;
    let c_bye = carrier.expect_request("BYE").await;
    carrier.reply(&c_bye, 200, None).await;
    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let cdrs = gw.cdrs().unwrap();
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr.outcome.end_reason, EndReason::GatewayRestart);
    let rec = cdr.recording.as_ref().expect("the repaired recording");
    assert_eq!(rec.status, RecordingStatus::Incomplete, "{rec:#?}");

    let [first, open] = cdr.recording_pauses.as_slice() else {
        panic!("two pauses on the CDR: {:#?}", cdr.recording_pauses);
    };
    assert_eq!(
        (
            first.paused_by.as_str(),
            first.resumed_by.as_deref(),
            first.ended
        ),
        ("dtmf", Some("dtmf"), PauseEnd::Resumed)
    );
    assert_eq!(
        (
            open.paused_by.as_str(),
            open.resumed_by.as_deref(),
            open.ended
        ),
        ("dtmf", None, PauseEnd::CallEnded)
    );
    let near = |got: i64, want: i64| (got - want).abs() <= 200;
    assert!(
        near(first.end_ms - first.start_ms, 1000) && near(open.start_ms - first.end_ms, 1000),
        "{:#?}",
        cdr.recording_pauses
    );
    assert_eq!(
        open.end_ms, rec.duration_ms,
        "the open pause ends where the crash cut the recording"
    );

    let root = dir.path().join(
        trunkguard::config::Config::from_toml(&config)
            .unwrap()
            .recording
            .dir,
    );
    let file =
        trunkguard::recording::paths::resolve(&root, Path::new(rec.path.as_deref().unwrap()));
    let wav = Wav::read(file.to_str().unwrap());
    assert!(
        (wav.secs() * 1000.0 - rec.duration_ms as f64).abs() < 2.0,
        "{} s, CDR {} ms",
        wav.secs(),
        rec.duration_ms
    );
    let s = |ms: i64| ms as f64 / 1000.0;
    for (name, ch) in [("left", &wav.left), ("right", &wav.right)] {
        for (from, to) in [
            (s(first.start_ms) + 0.06, s(first.end_ms) - 0.06),
            (s(open.start_ms) + 0.06, wav.secs()),
        ] {
            let paused = Wav::span(ch, wav.rate, from, to);
            assert!(paused.len() > 2000, "{name}: {from:.2}..{to:.2} s");
            assert!(
                paused.iter().all(|&x| x == 0),
                "{name}: {} non-zero samples in the paused {from:.2}..{to:.2} s",
                paused.iter().filter(|&&x| x != 0).count()
            );
        }
        for (from, to) in [
            (0.3, s(first.start_ms) - 0.1),
            (s(first.end_ms) + 0.1, s(open.start_ms) - 0.1),
        ] {
            let part = Wav::span(ch, wav.rate, from, to);
            assert!(
                rms(part) > 1000.0,
                "{name}: audio in {from:.2}..{to:.2} s (rms {})",
                rms(part)
            );
        }
    }
}
