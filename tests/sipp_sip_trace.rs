//! The SIP trace kept with each call, end to end: the real `trunkguard` binary between SIPp as
//! the PBX and SIPp as the carrier. An answered call's trace holds INVITE, 100, 180, 200, ACK,
//! BYE and 200 on both legs in the order they crossed, each message the PBX received byte for
//! byte as SIPp logged it; a refused call's trace holds its INVITE and the 403. The traces are
//! read back from the gateway's database after a SIGTERM stop (`store::sip_trace::read`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use harness::{args, local, Scenario, Scene, SippSpec, TrunkLimits, PBX_IP, TRUNK_NUMBER};
use trunkguard::model::{Disposition, Side, SipTrace, TraceDirection};
use trunkguard::store::{sip_trace, Store};

const CALLEE: &str = "8613800138000";

/// The start lines of one leg's messages, with their direction, in order.
fn leg(trace: &SipTrace, side: Side) -> Vec<(TraceDirection, String)> {
    trace
        .messages
        .iter()
        .filter(|m| m.leg == side && !m.retransmission)
        .map(|m| {
            let line = m.first_line();
            // The method, or the status code.
            let word = if line.starts_with("SIP/2.0 ") {
                line.split(' ').nth(1).unwrap_or_default()
            } else {
                line.split(' ').next().unwrap_or_default()
            };
            (m.direction, word.to_string())
        })
        .collect()
}

fn expect(list: &[(TraceDirection, &str)]) -> Vec<(TraceDirection, String)> {
    list.iter().map(|(d, w)| (*d, w.to_string())).collect()
}

#[test]
fn answered_and_refused_calls_keep_their_sip_trace() {
    use TraceDirection::{In, Out};
    let mut scene = Scene::start(TrunkLimits::default());
    let carrier = scene.addrs.carrier;
    let uas = scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::Builtin("uas"),
        local: carrier,
        remote: None,
        args: args(&["-m", "1"]),
        timeout_secs: 60,
    });
    let inside = scene.addrs.inside;
    let uac = scene.sipp(SippSpec {
        name: "pbx-uac",
        scenario: Scenario::File("pbx_uac.xml"),
        local: local(PBX_IP),
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
    scene.expect_exit_ok(uas);
    let refused = scene.sipp(SippSpec {
        name: "pbx-uac-refused",
        scenario: Scenario::File("pbx_uac_refused.xml"),
        local: local(PBX_IP),
        remote: Some(inside),
        args: args(&["-key", "caller", "+861099999999", "-s", CALLEE, "-m", "1"]),
        timeout_secs: 30,
    });
    scene.expect_exit_ok(refused);
    let pbx_received = scene.ok(scene.sipps[uac].received_messages());

    let cdrs = scene.stop_and_read_cdrs();
    let db = scene.path().join("cdrs.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let traces: Vec<(Disposition, Option<SipTrace>)> = rt.block_on(async {
        let store = Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let mut out = Vec::new();
        for cdr in &cdrs {
            let trace = sip_trace::read(&store, &cdr.attempt.id).await.unwrap();
            out.push((cdr.outcome.disposition, trace));
        }
        out
    });
    scene.ensure(traces.len() == 2, || {
        format!("expected 2 CDRs, got {cdrs:?}")
    });
    for (disposition, trace) in &traces {
        let Some(trace) = trace else {
            scene.fail(format!("no SIP trace stored for the {disposition} call"));
        };
        match disposition {
            Disposition::Answered => {
                let inside = leg(trace, Side::Inside);
                let want_inside = expect(&[
                    (In, "INVITE"),
                    (Out, "100"),
                    (Out, "180"),
                    (Out, "200"),
                    (In, "ACK"),
                    (In, "BYE"),
                    (Out, "200"),
                ]);
                scene.ensure(inside == want_inside, || {
                    format!("inside leg {inside:?}, expected {want_inside:?}")
                });
                // SIPp's built-in UAS sends no 100 Trying: none is expected from the carrier.
                let outside = leg(trace, Side::Outside);
                let want_outside = expect(&[
                    (Out, "INVITE"),
                    (In, "180"),
                    (In, "200"),
                    (Out, "ACK"),
                    (Out, "BYE"),
                    (In, "200"),
                ]);
                scene.ensure(outside == want_outside, || {
                    format!("outside leg {outside:?}, expected {want_outside:?}")
                });
                // Both legs interleave in wire order: the carrier's INVITE after the PBX's,
                // the PBX's 200 after the carrier's.
                let pos = |side, dir, word: &str| {
                    trace
                        .messages
                        .iter()
                        .position(|m| {
                            m.leg == side && m.direction == dir && m.first_line().contains(word)
                        })
                        .unwrap()
                };
                scene.ensure(
                    pos(Side::Inside, In, "INVITE") < pos(Side::Outside, Out, "INVITE")
                        && pos(Side::Outside, In, "200 OK") < pos(Side::Inside, Out, "200 OK")
                        && pos(Side::Inside, In, "BYE") < pos(Side::Outside, Out, "BYE"),
                    || format!("legs out of order: {trace:#?}"),
                );
                scene.ensure(
                    trace.messages.windows(2).all(|w| w[0].at <= w[1].at),
                    || "times go backwards".to_string(),
                );
                // What the PBX received is what the trace says the gateway sent, byte for byte
                // (SIPp's log ends each message with its own line breaks).
                let sent: Vec<&str> = trace
                    .messages
                    .iter()
                    .filter(|m| m.leg == Side::Inside && m.direction == Out)
                    .map(|m| m.message.trim_end())
                    .collect();
                scene.ensure(!pbx_received.is_empty(), || "SIPp logged nothing".into());
                for got in &pbx_received {
                    let got = got.trim_end().replace("\r\n", "\n");
                    scene.ensure(sent.iter().any(|s| s.replace("\r\n", "\n") == got), || {
                        format!("the PBX received a message not in the trace:\n{got}")
                    });
                }
                scene.ensure(trace.dropped_messages == 0, || "messages dropped".into());
            }
            Disposition::Refused => {
                let inside = leg(trace, Side::Inside);
                let want = expect(&[(In, "INVITE"), (Out, "100"), (Out, "403"), (In, "ACK")]);
                scene.ensure(inside == want, || {
                    format!("refused call's trace {inside:?}, expected {want:?}")
                });
                scene.ensure(leg(trace, Side::Outside).is_empty(), || {
                    "a refused call has no outside leg".into()
                });
            }
            other => scene.fail(format!("unexpected {other} call")),
        }
    }
}
