//! The requests and responses that end what a crash left open, and the wait for the peers'
//! answers.

use std::collections::HashMap;
use std::sync::Arc;

use rsip::{Header, Method};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};

use super::record::{DialogRecord, LegRecord, LegState};
use crate::b2bua::Ctx;
use crate::model::{EndReason, StatusLine};
use crate::monitor::recovery::{final_status, Interrupted};
use crate::shutdown::Shutdown;
use crate::sip::message;
use crate::sip::transaction::{cancel_for, ClientEvent, ClientEventKind, ClientKey};
use crate::sip::transport::{Peer, Proto, Side};

/// In-dialog requests sent after the last journal entry used CSeq numbers we no longer know;
/// the peer refuses a number below one it has seen (§12.2.2), so the BYE goes well above.
const CSEQ_GAP: u32 = 10_000;
/// CSeq numbers must stay below 2**31 (§8.1.1.5).
const MAX_CSEQ: u32 = (1 << 31) - 1;
/// What a peer is told: the call failed in the gateway (Q.850 41, temporary failure).
const REASON_RESTART: &str = "Q.850;cause=41;text=\"gateway restarted\"";
/// The same, the call's node lost (a survivor ends the call).
const REASON_NODE_LOST: &str = "Q.850;cause=41;text=\"node lost\"";
/// Events of the requests sent; more than this many pending answers are waited for by timeout.
const EVENT_QUEUE: usize = 256;
/// Between two interrupted calls' requests: 100 calls (at most 200 requests) a second.
const PACE: Duration = Duration::from_millis(10);

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
    let (events_tx, mut events_rx) = mpsc::channel(EVENT_QUEUE);
    let timeout = ctx.layer.timers().timeout();
    let mut ender = Ender {
        ctx,
        events: events_tx,
        pending: HashMap::new(),
        resends: Vec::new(),
        watched: Vec::new(),
        report: RestartReport::default(),
    };
    let mut queue = calls.into_iter();
    // One call's requests per `PACE`: a crash with many calls up must not end in a burst that
    // a carrier's own flood limits would take for an attack.
    let mut next_call = Some(Instant::now());
    let mut deadline = Instant::now() + timeout;
    loop {
        let now = Instant::now();
        if next_call.is_some_and(|t| t <= now) {
            next_call = match queue.next() {
                Some(call) => {
                    // The last requests sent get their full 64·T1 too.
                    deadline = now + timeout;
                    ender.end_call(call, deadline);
                    Some(now + PACE)
                }
                None => None,
            };
        }
        ender.resend_due(now);
        // Cancelled INVITEs may still draw late responses (487, or a 2xx) until the deadline.
        let quiet = ender.pending.is_empty() && ender.resends.is_empty() && !ender.ctx.late.any();
        if next_call.is_none() && (now >= deadline || quiet) {
            break;
        }
        let wake = [ender.next_resend(), next_call, Some(deadline)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(deadline);
        tokio::select! {
            Some(ev) = events_rx.recv() => ender.on_event(*ev),
            _ = tokio::time::sleep_until(wake) => {}
            _ = shutdown.recv() => break,
        }
    }
    // Only this run's: another run (a lost node's calls) may be waiting for its own.
    ender.ctx.late.forget(&ender.watched);
    let report = ender.report;
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

/// The restart's requests in flight and final responses to repeat.
struct Ender {
    ctx: Arc<Ctx>,
    events: mpsc::Sender<Box<ClientEvent>>,
    pending: HashMap<ClientKey, Pending>,
    resends: Vec<Resend>,
    /// Call-IDs of the INVITEs this run cancelled (`LateResponses`).
    watched: Vec<String>,
    report: RestartReport,
}

impl Ender {
    /// Send what ends each leg of one interrupted call.
    fn end_call(&mut self, call: Interrupted, late_until: Instant) {
        let record = match call.dialogs.as_deref().map(DialogRecord::decode) {
            Some(Ok(record)) => record,
            Some(Err(error)) => {
                tracing::error!(call_id = %call.cdr_id, %error, "journaled dialog state does not decode: the peers are not told");
                self.report.without_dialogs += 1;
                return;
            }
            None => {
                tracing::warn!(call_id = %call.cdr_id, "no journaled dialog state: the peers are not told");
                self.report.without_dialogs += 1;
                return;
            }
        };
        let why = call.end_reason;
        for leg in record.legs {
            let (side, peer) = (leg.leg.side, target(&leg));
            tracing::info!(call_id = %call.cdr_id, trunk = call.trunk.as_deref().unwrap_or(""), %side, %peer, what = leg.state.ending(), "ending a dialog left by the crash");
            match &leg.state {
                LegState::Confirmed => {
                    self.report.byes += 1;
                    // From this node's own interface: the BYE of a lost node's call is sent by
                    // a survivor, and its answer must come back here.
                    let own = self.own_addr(side);
                    self.send(&call.cdr_id, &leg, bye(&leg, own, why));
                }
                LegState::Inviting { .. } => {
                    let Some(invite) = leg.invite_sent() else {
                        continue;
                    };
                    // Its Via is the INVITE's (§9.1), naming the node that sent it: a lost
                    // node's carrier answers there, the CANCEL still ends its INVITE.
                    let mut cancel = cancel_for(&invite);
                    cancel.headers.push(reason_header(why));
                    self.report.cancels += 1;
                    self.watched.push(leg.leg.call_id.clone());
                    self.ctx.late.watch_for(
                        leg.leg.clone(),
                        invite,
                        late_until,
                        why,
                        self.events.clone(),
                    );
                    self.send(&call.cdr_id, &leg, cancel);
                }
                LegState::Invited { .. } => {
                    let StatusLine {
                        code,
                        phrase: reason,
                    } = final_status(why);
                    let Some(resp) = leg.final_response(code, reason, vec![reason_header(why)])
                    else {
                        continue;
                    };
                    self.report.final_responses += 1;
                    let now = Instant::now();
                    let t1 = self.ctx.layer.timers().t1;
                    let at = match peer.proto {
                        Proto::Udp => vec![now, now + t1, now + t1 * 3],
                        Proto::Tcp | Proto::Tls => vec![now],
                    };
                    self.resends.push(Resend {
                        side,
                        peer,
                        resp,
                        at,
                    });
                }
            }
        }
    }

    /// This node's interface address on `side`.
    fn own_addr(&self, side: Side) -> std::net::SocketAddr {
        match side {
            Side::Inside => self.ctx.settings.inside_addr,
            Side::Outside => self.ctx.settings.outside_addr,
        }
    }

    /// A request through the transaction layer, its answer awaited.
    fn send(&mut self, cdr_id: &str, leg: &LegRecord, req: rsip::Request) {
        let (side, peer, method) = (leg.leg.side, target(leg), req.method);
        if let Some(key) = self
            .ctx
            .layer
            .send_request(side, peer, req, self.events.clone())
        {
            self.pending.insert(
                key,
                Pending {
                    cdr_id: cdr_id.to_string(),
                    side,
                    method,
                },
            );
        }
    }

    fn resend_due(&mut self, now: Instant) {
        for r in &mut self.resends {
            while r.at.first().is_some_and(|t| *t <= now) {
                r.at.remove(0);
                self.ctx.layer.send_stateless(
                    r.side,
                    r.peer,
                    rsip::SipMessage::Response(r.resp.clone()),
                );
            }
        }
        self.resends.retain(|r| !r.at.is_empty());
    }

    fn next_resend(&self) -> Option<Instant> {
        self.resends
            .iter()
            .filter_map(|r| r.at.first().copied())
            .min()
    }

    fn on_event(&mut self, ev: ClientEvent) {
        let Some(p) = self.pending.get(&ev.key) else {
            // The BYE of a late 2xx (see `late`).
            return;
        };
        match ev.kind {
            ClientEventKind::Response(resp) => {
                let (code, _) = message::status_parts(&resp.status_code);
                if code < 200 {
                    return;
                }
                tracing::info!(call_id = %p.cdr_id, side = %p.side, method = %p.method, status = code, "peer answered the restart's request");
                self.report.answered += 1;
            }
            ClientEventKind::Timeout | ClientEventKind::TransportFailed(_) => {
                tracing::warn!(call_id = %p.cdr_id, side = %p.side, method = %p.method, "no answer to the restart's request");
                self.report.timed_out += 1;
            }
        }
        self.pending.remove(&ev.key);
    }
}

/// Where to send on a leg after the restart. Over UDP, the peer as journaled. Over TCP the
/// connection died with the process, and a PBX's address as journaled is the source port of
/// that connection, which nothing listens on: a new connection goes to the port it named
/// itself — its Contact for requests, its Via's sent-by for a response (§18.2.2) — on the same
/// IP address only, so that a peer still cannot steer us elsewhere.
fn target(record: &LegRecord) -> Peer {
    let peer = record.leg.peer;
    if peer.proto != Proto::Tcp || record.leg.side != Side::Inside {
        return peer;
    }
    let named = match &record.state {
        LegState::Invited { vias } => vias
            .first()
            .and_then(|via| message::via_sent_by(via))
            .and_then(host_port),
        _ => host_port(&record.leg.remote_target.host_with_port.to_string()),
    };
    match named {
        Some((ip, port)) if ip == peer.addr.ip() => Peer {
            addr: std::net::SocketAddr::new(ip, port.unwrap_or(DEFAULT_SIP_PORT)),
            proto: Proto::Tcp,
        },
        _ => peer,
    }
}

/// The port a SIP URI or sent-by without one means (§19.1.2).
const DEFAULT_SIP_PORT: u16 = 5060;

/// An IP literal host and its port, if any: `192.0.2.1:5062`, `192.0.2.1`, `[2001:db8::1]:5062`.
fn host_port(text: &str) -> Option<(std::net::IpAddr, Option<u16>)> {
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Some((addr.ip(), Some(addr.port())));
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse().ok().map(|ip| (ip, None))
}

/// A BYE within the leg's dialog, its CSeq well above the last journaled, sent from
/// `local_addr` (its Via: where the answer comes back) and telling why (`reason`).
pub(super) fn bye(
    record: &LegRecord,
    local_addr: std::net::SocketAddr,
    reason: EndReason,
) -> rsip::Request {
    let mut leg = record.leg.clone();
    leg.local_addr = local_addr;
    leg.local_cseq = leg.local_cseq.saturating_add(CSEQ_GAP).min(MAX_CSEQ - 1);
    let mut req = leg.request(Method::Bye, None, Vec::new(), None);
    req.headers.push(reason_header(reason));
    req
}

/// The Reason header of what ends a call cut off (`gateway_restart` or `node_lost`).
pub(super) fn reason_header(reason: EndReason) -> Header {
    let text = match reason {
        EndReason::NodeLost => REASON_NODE_LOST,
        _ => REASON_RESTART,
    };
    Header::Other("Reason".into(), text.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b2bua::call::Leg;

    fn leg(proto: Proto, side: Side, contact: &str, state: LegState) -> LegRecord {
        LegRecord {
            leg: Leg {
                side,
                peer: Peer {
                    addr: "10.0.0.5:40312".parse().unwrap(),
                    proto,
                },
                local_addr: "192.0.2.1:5060".parse().unwrap(),
                call_id: "c".into(),
                local_tag: "l".into(),
                local_hdr: "<sip:gw@192.0.2.1>;tag=l".into(),
                remote_hdr: "<sip:pbx@10.0.0.5>;tag=r".into(),
                remote_tag: Some("r".into()),
                remote_target: rsip::Uri::try_from(contact).unwrap(),
                route_set: Vec::new(),
                local_cseq: 1,
                invite_cseq: 1,
            },
            state,
        }
    }

    fn invited(via: &str) -> LegState {
        LegState::Invited {
            vias: vec![via.to_string()],
        }
    }

    #[test]
    fn udp_goes_where_the_peer_was() {
        let l = leg(
            Proto::Udp,
            Side::Inside,
            "sip:pbx@10.0.0.5:5062",
            LegState::Confirmed,
        );
        assert_eq!(target(&l).addr, "10.0.0.5:40312".parse().unwrap());
    }

    #[test]
    fn a_tcp_pbx_is_reached_on_the_port_it_named() {
        let l = leg(
            Proto::Tcp,
            Side::Inside,
            "sip:pbx@10.0.0.5:5062;transport=tcp",
            LegState::Confirmed,
        );
        assert_eq!(target(&l).addr, "10.0.0.5:5062".parse().unwrap());
        let l = leg(
            Proto::Tcp,
            Side::Inside,
            "sip:pbx@10.0.0.5;transport=tcp",
            LegState::Confirmed,
        );
        assert_eq!(target(&l).addr, "10.0.0.5:5060".parse().unwrap());
        let l = leg(
            Proto::Tcp,
            Side::Inside,
            "sip:pbx@10.0.0.5:5062",
            invited("SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bKx"),
        );
        assert_eq!(target(&l).addr, "10.0.0.5:5070".parse().unwrap());
    }

    #[test]
    fn another_address_named_is_not_followed() {
        let l = leg(
            Proto::Tcp,
            Side::Inside,
            "sip:pbx@10.9.9.9:5062",
            LegState::Confirmed,
        );
        assert_eq!(target(&l).addr, "10.0.0.5:40312".parse().unwrap());
        let l = leg(
            Proto::Tcp,
            Side::Inside,
            "sip:pbx@pbx.example:5062",
            LegState::Confirmed,
        );
        assert_eq!(target(&l).addr, "10.0.0.5:40312".parse().unwrap());
        let l = leg(
            Proto::Tcp,
            Side::Outside,
            "sip:c@10.0.0.5:5062",
            LegState::Confirmed,
        );
        assert_eq!(target(&l).addr, "10.0.0.5:40312".parse().unwrap());
    }
}
