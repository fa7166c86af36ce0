//! The call: one task owning both legs, relaying between them, and ending them. Everything a
//! call does to the network goes through the transaction layer; everything it learns ends up
//! in its CDR when it ends. The admission lease lives here and is dropped exactly once, when
//! the call ends, whatever the ending.

mod leg;
mod record;
mod relay;
pub(crate) mod setup;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rsip::Method;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(crate) use leg::Leg;
pub(crate) use record::CdrDraft;

use super::registry::CallMsg;
use super::Ctx;
use crate::monitor::cdr::{Disposition, HangupSide};
use crate::policy::Lease;
use crate::sip::message;
use crate::sip::transaction::{ClientEvent, ClientEventKind, ClientKey, ServerKey, ServerTx};
use crate::sip::transport::Side;

pub(crate) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO";

/// Capacity of a call's queue of client-transaction events.
const EVENT_QUEUE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE sent to the B side, no final response relayed to A yet.
    Early,
    Answered,
    Ended,
}

/// A 2xx we sent and retransmit until its ACK comes (§13.3.1.4); the ACK is then passed on
/// to the other leg with the CSeq of the INVITE we sent there.
struct Unacked {
    side: Side,
    cseq: u32,
    resp: rsip::Response,
    next: Instant,
    interval: Duration,
    deadline: Instant,
    ack_other_cseq: u32,
}

/// An in-dialog request we passed on: its response goes back through `origin`.
struct Relay {
    origin: ServerTx,
    method: Method,
    other_cseq: u32,
}

pub(crate) struct CallSetup {
    pub id: String,
    pub trunk: String,
    pub a: Leg,
    pub a_tx: ServerTx,
    pub b: Leg,
    pub b_invite: rsip::Request,
    pub lease: Lease,
    pub cdr: CdrDraft,
    pub max_call: Duration,
}

pub(crate) struct Call {
    ctx: Arc<Ctx>,
    a: Leg,
    b: Leg,
    a_tx: ServerTx,
    b_key: Option<ClientKey>,
    phase: Phase,
    /// A has had its final response to the INVITE.
    a_final_sent: bool,
    /// B has sent its final response to our INVITE (or it timed out).
    b_final_seen: bool,
    lease: Option<Lease>,
    cdr: CdrDraft,
    events_tx: mpsc::Sender<ClientEvent>,
    relays: HashMap<ClientKey, Relay>,
    unacked: Option<Unacked>,
    /// The ACK we sent for B's 2xx, resent if B retransmits its 2xx.
    b_ack: Option<rsip::Request>,
    /// Per leg, the ACK we last sent for a 2xx to a re-INVITE we relayed there, with that
    /// re-INVITE's CSeq: resent when the 2xx is retransmitted (our ACK was lost, §13.3.1.4).
    reinvite_acks: HashMap<Side, (u32, rsip::Request)>,
    ring_deadline: Option<Instant>,
    max_deadline: Option<Instant>,
    max_call: Duration,
    /// After the call ended, wait this long for B's final response to a CANCEL.
    linger_until: Option<Instant>,
}

impl Call {
    pub(crate) async fn run(ctx: Arc<Ctx>, setup: CallSetup, mut inbox: mpsc::Receiver<CallMsg>) {
        let (events_tx, mut events_rx) = mpsc::channel(EVENT_QUEUE);
        let ring = ctx.settings.ring_timeout;
        let mut call = Call {
            ctx,
            a: setup.a,
            b: setup.b,
            a_tx: setup.a_tx,
            b_key: None,
            phase: Phase::Early,
            a_final_sent: false,
            b_final_seen: false,
            lease: Some(setup.lease),
            cdr: setup.cdr,
            events_tx,
            relays: HashMap::new(),
            unacked: None,
            b_ack: None,
            reinvite_acks: HashMap::new(),
            ring_deadline: Some(Instant::now() + ring),
            max_deadline: None,
            max_call: setup.max_call,
            linger_until: None,
        };
        call.b_key = call.ctx.layer.send_request(
            call.b.side,
            call.b.peer,
            setup.b_invite,
            call.events_tx.clone(),
        );
        tracing::info!(direction = ?call.cdr.direction, to = %call.b.peer, "call started");
        loop {
            if call.finished() {
                break;
            }
            let wake = call.next_deadline();
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(m) => call.on_msg(m),
                    None => call.hangup("shutdown"),
                },
                Some(ev) = events_rx.recv() => call.on_event(ev),
                _ = tokio::time::sleep_until(wake) => call.on_timer(Instant::now()),
            }
        }
        call.ctx.registry.remove(&call.a, &call.b);
    }

    fn finished(&self) -> bool {
        self.phase == Phase::Ended && self.linger_until.is_none()
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        [
            self.unacked.as_ref().map(|u| u.next.min(u.deadline)),
            self.ring_deadline,
            self.max_deadline,
            self.linger_until,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far)
    }

    fn leg_mut(&mut self, side: Side) -> &mut Leg {
        if self.a.side == side {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    fn on_msg(&mut self, msg: CallMsg) {
        match msg {
            CallMsg::Request(tx) => self.on_request(tx),
            CallMsg::Cancel(tx) => self.on_cancel(tx),
            CallMsg::Ack(ack, side) => self.on_ack(ack, side),
            CallMsg::StrayResponse(resp, side) => self.on_stray_response(resp, side),
            CallMsg::Hangup(reason) => self.hangup(reason),
        }
    }

    fn on_event(&mut self, ev: ClientEvent) {
        if self.b_key.as_ref() == Some(&ev.key) {
            match ev.kind {
                ClientEventKind::Response(resp) => self.on_b_invite_response(resp),
                ClientEventKind::Timeout => self.on_b_invite_timeout(),
            }
        } else if self.relays.contains_key(&ev.key) {
            relay::relay_response(self, ev.key, ev.kind);
        } else if let ClientEventKind::Response(resp) = ev.kind {
            // A 2xx retransmitted to a re-INVITE whose final response was relayed already.
            self.reack(ev.key.side, &resp);
        }
        // Responses to our own BYE and CANCEL need no action.
    }

    fn on_b_invite_response(&mut self, resp: rsip::Response) {
        let (code, reason) = message::status_parts(&resp.status_code);
        match code {
            101..=199 => {
                if self.phase != Phase::Early || self.a_final_sent {
                    return;
                }
                self.b.learn_remote(&resp);
                if code == 180 || code == 183 {
                    self.cdr.ringing_at.get_or_insert_with(chrono::Utc::now);
                }
                let out = self.a_dialog_response(code, &reason, &resp);
                self.a_tx.respond(out);
            }
            200..=299 => {
                let first = !self.b_final_seen;
                self.b_final_seen = true;
                if first {
                    self.b.learn_remote(&resp);
                }
                if self.phase == Phase::Early && !self.a_final_sent {
                    self.answer(code, &reason, &resp);
                } else if first {
                    // Answered after A gave up (CANCEL race, ring timeout): end it at once.
                    self.ack_b(Vec::new(), None);
                    self.send_bye(self.b.side);
                    self.linger_until = None;
                } else if let Some(ack) = &self.b_ack {
                    // B retransmits its 2xx: our ACK was lost.
                    self.ctx.layer.send_stateless(
                        self.b.side,
                        self.b.peer,
                        rsip::SipMessage::Request(ack.clone()),
                    );
                }
            }
            _ => {
                self.b_final_seen = true;
                if self.phase == Phase::Early && !self.a_final_sent {
                    let out = message_response(&self.a_tx, code, &reason, &self.a.local_tag);
                    self.a_tx.respond(out);
                    self.a_final_sent = true;
                    let cause = message::other_header(&resp.headers, "Reason")
                        .and_then(crate::monitor::q850::parse_reason_header);
                    let disposition = Disposition::from_final_with_ringing(
                        code,
                        false,
                        false,
                        self.cdr.ringing_at.is_some(),
                    );
                    self.cdr.q850 = cause;
                    // The called party refused: the carrier on outbound calls, the PBX on
                    // inbound ones.
                    let hangup = side_of(self.b.side);
                    self.end(
                        code,
                        &reason,
                        disposition,
                        end_reason_for(code),
                        Some(hangup),
                    );
                }
                self.linger_until = None;
            }
        }
    }

    fn on_b_invite_timeout(&mut self) {
        self.b_final_seen = true;
        self.linger_until = None;
        if self.phase == Phase::Early && !self.a_final_sent {
            let out = message_response(&self.a_tx, 408, "Request Timeout", &self.a.local_tag);
            self.a_tx.respond(out);
            self.a_final_sent = true;
            // Whoever we called never answered: the carrier, or the PBX on inbound calls.
            let end_reason = match self.b.side {
                Side::Outside => "carrier_timeout",
                Side::Inside => "pbx_timeout",
            };
            self.end(
                408,
                "Request Timeout",
                Disposition::Failed,
                end_reason,
                Some(HangupSide::Gateway),
            );
        }
    }

    /// B answered: relay the 2xx to A and retransmit it until A's ACK.
    fn answer(&mut self, code: u16, reason: &str, resp: &rsip::Response) {
        let out = self.a_dialog_response(code, reason, resp);
        self.a_tx.respond(out.clone());
        self.a_final_sent = true;
        self.phase = Phase::Answered;
        self.cdr.answer_at = Some(chrono::Utc::now());
        self.ring_deadline = None;
        let now = Instant::now();
        self.max_deadline = Some(now + self.max_call);
        let t = self.ctx.layer.timers();
        self.unacked = Some(Unacked {
            side: self.a.side,
            cseq: self.a.invite_cseq,
            resp: out,
            next: now + t.t1,
            interval: t.t1,
            deadline: now + t.timeout(),
            ack_other_cseq: self.b.invite_cseq,
        });
        tracing::info!("call answered");
    }

    /// A response to A's INVITE that carries dialog state: our tag, Contact, the body.
    fn a_dialog_response(
        &self,
        code: u16,
        reason: &str,
        from_b: &rsip::Response,
    ) -> rsip::Response {
        let mut out = message_response(&self.a_tx, code, reason, &self.a.local_tag);
        relay::copy_dialog_parts(&mut out, from_b, &self.a.contact(), code);
        out
    }

    fn on_cancel(&mut self, tx: ServerTx) {
        // §8.2.6.2: a response to a request without To tag carries one; §9.2: the same as in
        // the responses to the INVITE being cancelled.
        let tag = if tx.side() == self.a.side {
            self.a.local_tag.clone()
        } else {
            self.b.local_tag.clone()
        };
        // §9.2: a CANCEL matching none of our INVITE server transactions (same Call-ID, other
        // branch) is answered 481 and cancels nothing.
        let invite_key =
            ServerKey::for_request(tx.side(), tx.request()).map(|k| k.invite_of_cancel());
        let key_of = |t: &ServerTx| ServerKey::for_request(t.side(), t.request());
        let matches_initial = invite_key.is_some() && invite_key == key_of(&self.a_tx);
        let matches_relayed = invite_key.is_some()
            && self
                .relays
                .values()
                .any(|r| invite_key == key_of(&r.origin));
        if !matches_initial && !matches_relayed {
            tx.reply(481, "Call/Transaction Does Not Exist", Some(&tag));
            return;
        }
        tx.reply(200, "OK", Some(&tag));
        if !matches_initial {
            // A re-INVITE's CANCEL: it runs its course on the other leg.
            return;
        }
        if tx.side() != self.a.side || self.phase != Phase::Early || self.a_final_sent {
            return;
        }
        let out = message_response(&self.a_tx, 487, "Request Terminated", &self.a.local_tag);
        self.a_tx.respond(out);
        self.a_final_sent = true;
        if let Some(key) = &self.b_key {
            self.ctx.layer.cancel(key);
        }
        let hangup = side_of(self.a.side);
        self.end(
            487,
            "Request Terminated",
            Disposition::Cancelled,
            "cancelled",
            Some(hangup),
        );
        if !self.b_final_seen {
            self.linger_until = Some(Instant::now() + self.ctx.layer.timers().timeout());
        }
    }

    fn on_ack(&mut self, ack: rsip::Request, side: Side) {
        let Some((seq, _)) = message::cseq(&ack) else {
            return;
        };
        let matches = matches!(&self.unacked, Some(u) if u.side == side && u.cseq == seq);
        if !matches {
            return;
        }
        let Some(u) = self.unacked.take() else { return };
        let ct = message::content_type(&ack.headers).map(str::to_string);
        if side == self.a.side && u.ack_other_cseq == self.b.invite_cseq && self.b_ack.is_none() {
            self.ack_b(ack.body, ct.as_deref());
        } else {
            let other = side.other();
            let leg = self.leg_mut(other);
            let req = leg.request(Method::Ack, Some(u.ack_other_cseq), ack.body, ct.as_deref());
            let peer = leg.peer;
            self.ctx
                .layer
                .send_stateless(other, peer, rsip::SipMessage::Request(req.clone()));
            self.reinvite_acks.insert(other, (u.ack_other_cseq, req));
        }
    }

    /// Send again the ACK for a re-INVITE's 2xx that `side` retransmits.
    fn reack(&self, side: Side, resp: &rsip::Response) {
        let Some((seq, Method::Invite)) = message::cseq(resp) else {
            return;
        };
        if !(200..300).contains(&resp.status_code.code()) {
            return;
        }
        if let Some((acked, ack)) = self.reinvite_acks.get(&side) {
            if *acked == seq {
                let peer = if side == self.a.side {
                    self.a.peer
                } else {
                    self.b.peer
                };
                self.ctx
                    .layer
                    .send_stateless(side, peer, rsip::SipMessage::Request(ack.clone()));
            }
        }
    }

    /// ACK B's 2xx to our INVITE (kept for B's retransmissions).
    fn ack_b(&mut self, body: Vec<u8>, ct: Option<&str>) {
        let cseq = self.b.invite_cseq;
        let req = self.b.request(Method::Ack, Some(cseq), body, ct);
        self.ctx.layer.send_stateless(
            self.b.side,
            self.b.peer,
            rsip::SipMessage::Request(req.clone()),
        );
        self.b_ack = Some(req);
    }

    fn on_stray_response(&mut self, resp: rsip::Response, side: Side) {
        let is_invite_2xx = matches!(message::cseq(&resp), Some((_, Method::Invite)))
            && (200..300).contains(&resp.status_code.code());
        if side == self.b.side && is_invite_2xx {
            if let Some(ack) = &self.b_ack {
                let initial = message::cseq(&resp).map(|(s, _)| s) == Some(self.b.invite_cseq);
                if initial {
                    self.ctx.layer.send_stateless(
                        self.b.side,
                        self.b.peer,
                        rsip::SipMessage::Request(ack.clone()),
                    );
                    return;
                }
            }
        }
        if is_invite_2xx {
            self.reack(side, &resp);
        }
    }

    fn on_request(&mut self, tx: ServerTx) {
        let side = tx.side();
        let method = tx.request().method;
        if self.phase == Phase::Ended {
            tx.reply(481, "Call/Transaction Does Not Exist", None);
            return;
        }
        match method {
            Method::Bye => {
                tx.reply(200, "OK", None);
                let hangup = side_of(side);
                if self.phase == Phase::Answered {
                    if self
                        .unacked
                        .as_ref()
                        .is_some_and(|u| u.ack_other_cseq == self.b.invite_cseq)
                    {
                        self.unacked = None;
                        self.ack_b(Vec::new(), None);
                    }
                    self.send_bye(side.other());
                    self.end(
                        200,
                        "OK",
                        Disposition::Answered,
                        "normal_clearing",
                        Some(hangup),
                    );
                } else if side == self.a.side {
                    // BYE on an early dialog from the caller: the call is abandoned.
                    let out =
                        message_response(&self.a_tx, 487, "Request Terminated", &self.a.local_tag);
                    self.a_tx.respond(out);
                    self.a_final_sent = true;
                    if let Some(key) = &self.b_key {
                        self.ctx.layer.cancel(key);
                    }
                    self.end(
                        487,
                        "Request Terminated",
                        Disposition::Cancelled,
                        "cancelled",
                        Some(hangup),
                    );
                    self.linger_until = Some(Instant::now() + self.ctx.layer.timers().timeout());
                } else {
                    let out = message_response(
                        &self.a_tx,
                        480,
                        "Temporarily Unavailable",
                        &self.a.local_tag,
                    );
                    self.a_tx.respond(out);
                    self.a_final_sent = true;
                    self.end(
                        480,
                        "Temporarily Unavailable",
                        Disposition::Failed,
                        match side {
                            Side::Outside => "early_bye_outside",
                            Side::Inside => "early_bye_inside",
                        },
                        Some(hangup),
                    );
                }
            }
            _ => relay::relay_request(self, tx),
        }
    }

    fn on_timer(&mut self, now: Instant) {
        if let Some(u) = &mut self.unacked {
            if now >= u.deadline {
                // §13.3.1.4: no ACK within 64·T1 — the dialog is confirmed and then ended.
                let initial = u.ack_other_cseq == self.b.invite_cseq && u.side == self.a.side;
                self.unacked = None;
                tracing::warn!("no ACK for 2xx; ending call");
                if initial && self.b_ack.is_none() {
                    self.ack_b(Vec::new(), None);
                }
                self.bye_both("ack_timeout");
                return;
            }
            if now >= u.next {
                let t2 = self.ctx.layer.timers().t2;
                u.interval = (u.interval * 2).min(t2);
                u.next = now + u.interval;
                let peer = if u.side == self.a.side {
                    self.a.peer
                } else {
                    self.b.peer
                };
                let resp = u.resp.clone();
                let side = u.side;
                self.ctx
                    .layer
                    .send_stateless(side, peer, rsip::SipMessage::Response(resp));
            }
        }
        if self.ring_deadline.is_some_and(|d| now >= d) {
            self.ring_deadline = None;
            if self.phase == Phase::Early && !self.a_final_sent {
                let out = message_response(&self.a_tx, 408, "Request Timeout", &self.a.local_tag);
                self.a_tx.respond(out);
                self.a_final_sent = true;
                if let Some(key) = &self.b_key {
                    self.ctx.layer.cancel(key);
                }
                self.end(
                    408,
                    "Request Timeout",
                    Disposition::NoAnswer,
                    "ring_timeout",
                    Some(HangupSide::Gateway),
                );
                self.linger_until = Some(now + self.ctx.layer.timers().timeout());
            }
        }
        if self.max_deadline.is_some_and(|d| now >= d) {
            self.max_deadline = None;
            if self.phase == Phase::Answered {
                tracing::info!(
                    max_call_secs = self.max_call.as_secs(),
                    "maximum call duration reached"
                );
                self.bye_both("max_duration");
            }
        }
        if self.linger_until.is_some_and(|d| now >= d) {
            self.linger_until = None;
        }
    }

    /// The gateway ends the call: shutdown, operator, policy.
    pub(crate) fn hangup(&mut self, reason: &'static str) {
        match self.phase {
            Phase::Answered => self.bye_both(reason),
            Phase::Early => {
                if !self.a_final_sent {
                    let out =
                        message_response(&self.a_tx, 503, "Service Unavailable", &self.a.local_tag);
                    self.a_tx.respond(out);
                    self.a_final_sent = true;
                }
                if let Some(key) = &self.b_key {
                    self.ctx.layer.cancel(key);
                }
                self.end(
                    503,
                    "Service Unavailable",
                    Disposition::Failed,
                    reason,
                    Some(HangupSide::Gateway),
                );
                if !self.b_final_seen {
                    self.linger_until = Some(Instant::now() + self.ctx.layer.timers().timeout());
                }
            }
            Phase::Ended => {}
        }
    }

    fn bye_both(&mut self, reason: &'static str) {
        if self.unacked.take().is_some() && self.b_ack.is_none() {
            self.ack_b(Vec::new(), None);
        }
        self.send_bye(self.a.side);
        self.send_bye(self.b.side);
        self.end(
            200,
            "OK",
            Disposition::Answered,
            reason,
            Some(HangupSide::Gateway),
        );
    }

    fn send_bye(&mut self, side: Side) {
        let events = self.events_tx.clone();
        let leg = self.leg_mut(side);
        let req = leg.request(Method::Bye, None, Vec::new(), None);
        let peer = leg.peer;
        self.ctx.layer.send_request(side, peer, req, events);
    }

    /// The call is over: close the CDR, release the slot. Runs once.
    fn end(
        &mut self,
        status: u16,
        reason: &str,
        disposition: Disposition,
        end_reason: &str,
        hangup: Option<HangupSide>,
    ) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        self.unacked = None;
        self.ring_deadline = None;
        self.max_deadline = None;
        // §15.1.2: requests still pending in the dialog get a final response when it ends;
        // their relayed copies end with the dialog on the other leg.
        for (_, relay) in self.relays.drain() {
            relay.origin.reply(487, "Request Terminated", None);
        }
        drop(self.lease.take());
        let cdr = self
            .cdr
            .finish(status, reason, disposition, end_reason, hangup);
        tracing::info!(status, end_reason, talk_ms = cdr.talk_ms, "call ended");
        self.ctx.cdrs.submit(cdr);
    }
}

fn side_of(side: Side) -> HangupSide {
    match side {
        Side::Inside => HangupSide::Inside,
        Side::Outside => HangupSide::Outside,
    }
}

fn message_response(tx: &ServerTx, code: u16, reason: &str, tag: &str) -> rsip::Response {
    crate::sip::response::response_for(tx.request(), code, reason, Some(tag))
}

/// Machine code for a call that ended on a final failure response from the far end.
fn end_reason_for(code: u16) -> &'static str {
    match code {
        486 | 600 => "busy",
        480 | 408 => "no_answer",
        404 | 410 | 484 | 604 => "invalid_number",
        487 => "cancelled",
        500..=599 => "far_end_failure",
        _ => "rejected",
    }
}
