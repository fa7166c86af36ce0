//! In-dialog requests (BYE ends the call, the rest are relayed), the call's timers, and every
//! way a call ends.

use super::*;

impl Call {
    pub(super) fn on_request(&mut self, tx: ServerTx) {
        let side = tx.side();
        let method = tx.request().method;
        if self.phase == Phase::Ended {
            tx.reply_line(StatusLine::CALL_DOES_NOT_EXIST, None);
            return;
        }
        match method {
            Method::Bye => {
                tx.reply_line(StatusLine::OK, None);
                let hangup = HangupSide::from(side);
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
                    self.end(Ending::answered(EndReason::NormalClearing, hangup));
                } else if side == self.a.side {
                    // BYE on an early dialog from the caller: the call is abandoned.
                    self.give_up_early(
                        Ending::new(
                            StatusLine::REQUEST_TERMINATED,
                            Disposition::Cancelled,
                            EndReason::Cancelled,
                        )
                        .by(hangup),
                    );
                } else {
                    let line = StatusLine::TEMPORARILY_UNAVAILABLE;
                    let out =
                        message_response(&self.a_tx, line.code, line.phrase, &self.a.local_tag);
                    self.a_tx.respond(out);
                    self.a_final_sent = true;
                    self.end(
                        Ending::new(line, Disposition::Failed, EndReason::early_bye_from(side))
                            .by(hangup),
                    );
                }
            }
            _ => relay::relay_request(self, tx),
        }
    }

    pub(super) fn on_timer(&mut self, now: Instant) {
        if let Some(u) = &mut self.unacked {
            if now >= u.deadline {
                // §13.3.1.4: no ACK within 64·T1 — the dialog is confirmed and then ended.
                let initial = u.ack_other_cseq == self.b.invite_cseq && u.side == self.a.side;
                self.unacked = None;
                tracing::warn!("no ACK for 2xx; ending call");
                if initial && self.b_ack.is_none() {
                    self.ack_b(Vec::new(), None);
                }
                self.bye_both(EndReason::AckTimeout);
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
                self.give_up_early(
                    Ending::new(
                        StatusLine::REQUEST_TIMEOUT,
                        Disposition::NoAnswer,
                        EndReason::RingTimeout,
                    )
                    .by(HangupSide::Gateway),
                );
            }
        }
        if self.max_deadline.is_some_and(|d| now >= d) {
            self.max_deadline = None;
            if self.phase == Phase::Answered {
                tracing::info!(
                    max_call_secs = self.max_call.as_secs(),
                    "maximum call duration reached"
                );
                self.bye_both(EndReason::MaxDuration);
            }
        }
        if self.linger_until.is_some_and(|d| now >= d) {
            self.linger_until = None;
        }
        if self.bye_deadline.is_some_and(|d| now >= d) {
            // A BYE the carrier never answered: the call goes anyway.
            self.bye_deadline = None;
            self.byes.clear();
        }
    }

    /// The gateway ends the call: shutdown, operator, policy.
    pub(crate) fn hangup(&mut self, reason: EndReason) {
        match self.phase {
            Phase::Answered => self.bye_both(reason),
            Phase::Early => {
                self.give_up_early(
                    Ending::new(StatusLine::SERVICE_UNAVAILABLE, Disposition::Failed, reason)
                        .by(HangupSide::Gateway),
                );
            }
            Phase::Ended => {}
        }
    }

    pub(super) fn bye_both(&mut self, reason: EndReason) {
        if self.unacked.take().is_some() && self.b_ack.is_none() {
            self.ack_b(Vec::new(), None);
        }
        self.send_bye(self.a.side);
        self.send_bye(self.b.side);
        self.end(Ending::answered(reason, HangupSide::Gateway));
    }

    /// The call ends before the answer: A gets the ending's status (unless it already has a
    /// final response), B's INVITE is cancelled, and the call waits up to 64·T1 for B's final
    /// response so that a 2xx racing the CANCEL is ACKed and ended.
    pub(super) fn give_up_early(&mut self, ending: Ending) {
        if !self.a_final_sent {
            let out =
                message_response(&self.a_tx, ending.status, &ending.phrase, &self.a.local_tag);
            self.a_tx.respond(out);
            self.a_final_sent = true;
        }
        if let Some(key) = &self.b_key {
            self.ctx.layer.cancel(key);
        }
        self.end(ending);
        if !self.b_final_seen {
            self.linger_until = Some(Instant::now() + self.ctx.layer.timers().timeout());
        }
    }

    pub(super) fn send_bye(&mut self, side: Side) {
        self.send_bye_with(side, Vec::new());
    }

    /// A BYE carrying `extra` headers (a `Reason` saying why the gateway ends the dialog).
    pub(super) fn send_bye_with(&mut self, side: Side, extra: Vec<rsip::Header>) {
        let events = self.events_tx.clone();
        let leg = self.leg_mut(side);
        let mut req = leg.request(Method::Bye, None, Vec::new(), None);
        req.headers.extend(extra);
        let peer = leg.peer;
        let key = self.ctx.layer.send_request(side, peer, req.clone(), events);
        self.track_bye(side, req, key, 0);
    }

    /// The call is over: close the CDR, release the slot. Runs once.
    pub(super) fn end(&mut self, ending: Ending) {
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
            relay
                .origin
                .reply_line(StatusLine::REQUEST_TERMINATED, None);
        }
        drop(self.lease.take());
        self.ctx.registry.mark_ended(&self.a);
        let cdr = self.attempt.close(ending, chrono::Utc::now());
        let outcome = &cdr.outcome;
        tracing::info!(
            status = outcome.final_status,
            end_reason = %outcome.end_reason,
            talk_ms = outcome.talk_ms,
            "call ended"
        );
        // Submitted by the run loop once the media figures are in (closing media awaits).
        self.final_cdr = Some(Box::new(cdr));
    }
}
