//! The requests and responses that end what a crash left open, and the wait for the peers'
//! answers.

use std::collections::HashMap;
use std::sync::Arc;

use rsip::{Header, Method};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::record::{DialogRecord, LegRecord, LegState};
use crate::b2bua::Ctx;
use crate::monitor::recovery::Interrupted;
use crate::shutdown::Shutdown;
use crate::sip::message;
use crate::sip::transaction::{cancel_for, ClientEventKind, ClientKey};
use crate::sip::transport::{Peer, Proto, Side};

/// In-dialog requests sent after the last journal entry used CSeq numbers we no longer know;
/// the peer refuses a number below one it has seen (§12.2.2), so the BYE goes well above.
const CSEQ_GAP: u32 = 10_000;
/// CSeq numbers must stay below 2**31 (§8.1.1.5).
const MAX_CSEQ: u32 = (1 << 31) - 1;
/// What a peer is told: the call failed in the gateway (Q.850 41, temporary failure).
const REASON: &str = "Q.850;cause=41;text=\"gateway restarted\"";
/// Status of the final response to an INVITE that was waiting for one; as in the call's CDR.
const FINAL_STATUS: (u16, &str) = (500, "Gateway Restart");
/// Events of the requests sent; more than this many pending answers are waited for by timeout.
const EVENT_QUEUE: usize = 256;

/// What the restart sent and what came back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RestartReport {
    /// Calls whose journal entry had no (or no readable) dialog state.
    pub without_dialogs: u32,
    pub byes: u32,
    pub cancels: u32,
    /// Final responses to INVITEs we had received and not answered.
    pub final_responses: u32,
    /// BYEs and CANCELs answered with a final response, and those that timed out.
    pub answered: u32,
    pub timed_out: u32,
}

/// A request sent, waiting for its final response.
struct Pending {
    cdr_id: String,
    side: Side,
    method: Method,
}

/// Final responses sent without a transaction (we hold none after a restart): over UDP they
/// are repeated at T1 and 3·T1, like the first steps of timer G.
struct Resend {
    side: Side,
    peer: Peer,
    resp: rsip::Response,
    at: Vec<Instant>,
}

pub(super) async fn end_dialogs(
    ctx: Arc<Ctx>,
    calls: Vec<Interrupted>,
    mut shutdown: Shutdown,
) -> RestartReport {
    let mut report = RestartReport::default();
    let (events_tx, mut events_rx) = mpsc::channel(EVENT_QUEUE);
    let timers = ctx.layer.timers();
    let deadline = Instant::now() + timers.timeout();
    let mut pending: HashMap<ClientKey, Pending> = HashMap::new();
    let mut resends: Vec<Resend> = Vec::new();
    for call in calls {
        let record = match call.dialogs.as_deref().map(DialogRecord::decode) {
            Some(Ok(record)) => record,
            Some(Err(error)) => {
                tracing::error!(call_id = %call.cdr_id, %error, "journaled dialog state does not decode: the peers are not told");
                report.without_dialogs += 1;
                continue;
            }
            None => {
                tracing::warn!(call_id = %call.cdr_id, "no journaled dialog state: the peers are not told");
                report.without_dialogs += 1;
                continue;
            }
        };
        for leg in record.legs {
            let (side, peer) = (leg.leg.side, leg.leg.peer);
            let log = |what: &str| {
                tracing::info!(call_id = %call.cdr_id, trunk = call.trunk.as_deref().unwrap_or(""), %side, %peer, what, "ending a dialog left by the crash");
            };
            match &leg.state {
                LegState::Confirmed => {
                    let bye = bye(&leg);
                    log("BYE");
                    report.byes += 1;
                    if let Some(key) = ctx.layer.send_request(side, peer, bye, events_tx.clone()) {
                        pending.insert(
                            key,
                            Pending {
                                cdr_id: call.cdr_id.clone(),
                                side,
                                method: Method::Bye,
                            },
                        );
                    }
                }
                LegState::Inviting { .. } => {
                    let Some(invite) = leg.invite_sent() else {
                        continue;
                    };
                    let mut cancel = cancel_for(&invite);
                    cancel.headers.push(reason_header());
                    log("CANCEL");
                    report.cancels += 1;
                    ctx.late
                        .watch_for(leg.leg.clone(), invite, deadline, events_tx.clone());
                    if let Some(key) = ctx
                        .layer
                        .send_request(side, peer, cancel, events_tx.clone())
                    {
                        pending.insert(
                            key,
                            Pending {
                                cdr_id: call.cdr_id.clone(),
                                side,
                                method: Method::Cancel,
                            },
                        );
                    }
                }
                LegState::Invited { .. } => {
                    let (code, reason) = FINAL_STATUS;
                    let Some(resp) = leg.final_response(code, reason, vec![reason_header()]) else {
                        continue;
                    };
                    log("final response");
                    report.final_responses += 1;
                    let now = Instant::now();
                    let at = match peer.proto {
                        Proto::Udp => vec![now, now + timers.t1, now + timers.t1 * 3],
                        Proto::Tcp => vec![now],
                    };
                    resends.push(Resend {
                        side,
                        peer,
                        resp,
                        at,
                    });
                }
            }
        }
    }
    loop {
        let now = Instant::now();
        for r in &mut resends {
            while r.at.first().is_some_and(|t| *t <= now) {
                r.at.remove(0);
                ctx.layer.send_stateless(
                    r.side,
                    r.peer,
                    rsip::SipMessage::Response(r.resp.clone()),
                );
            }
        }
        resends.retain(|r| !r.at.is_empty());
        // Cancelled INVITEs may still draw late responses (487, or a 2xx) until the deadline.
        if now >= deadline || (pending.is_empty() && resends.is_empty() && !ctx.late.any()) {
            break;
        }
        let wake = resends
            .iter()
            .filter_map(|r| r.at.first().copied())
            .min()
            .unwrap_or(deadline)
            .min(deadline);
        tokio::select! {
            Some(ev) = events_rx.recv() => {
                let Some(p) = pending.get(&ev.key) else {
                    // The BYE of a late 2xx (see `late`), or a provisional response.
                    continue;
                };
                match ev.kind {
                    ClientEventKind::Response(resp) => {
                        let (code, _) = message::status_parts(&resp.status_code);
                        if code < 200 {
                            continue;
                        }
                        tracing::info!(call_id = %p.cdr_id, side = %p.side, method = %p.method, status = code, "peer answered the restart's request");
                        report.answered += 1;
                    }
                    ClientEventKind::Timeout => {
                        tracing::warn!(call_id = %p.cdr_id, side = %p.side, method = %p.method, "no answer to the restart's request");
                        report.timed_out += 1;
                    }
                }
                pending.remove(&ev.key);
            }
            _ = tokio::time::sleep_until(wake) => {}
            _ = shutdown.recv() => break,
        }
    }
    ctx.late.clear();
    tracing::info!(
        byes = report.byes,
        cancels = report.cancels,
        final_responses = report.final_responses,
        answered = report.answered,
        timed_out = report.timed_out,
        without_dialogs = report.without_dialogs,
        "dialogs left by the crash ended"
    );
    report
}

/// A BYE within the leg's dialog, its CSeq well above the last journaled.
pub(super) fn bye(record: &LegRecord) -> rsip::Request {
    let mut leg = record.leg.clone();
    leg.local_cseq = leg.local_cseq.saturating_add(CSEQ_GAP).min(MAX_CSEQ - 1);
    let mut req = leg.request(Method::Bye, None, Vec::new(), None);
    req.headers.push(reason_header());
    req
}

pub(super) fn reason_header() -> Header {
    Header::Other("Reason".into(), REASON.into())
}
