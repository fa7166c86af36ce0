//! The INVITE toward the B side: its provisional and final responses relayed to A, the
//! answer, and CANCEL from A.

use super::*;
use crate::media::sdp::{Exchange, UnusableSdp};
use rsip::headers::UntypedHeader;
use rsip::Header;

impl Call {
    pub(super) fn on_b_invite_response(&mut self, resp: rsip::Response) {
        let (code, reason) = message::status_parts(&resp.status_code);
        match code {
            101..=199 => {
                if self.phase != Phase::Early || self.a_final_sent {
                    return;
                }
                self.b.learn_remote(&resp);
                self.b_provisional = true;
                if code == 180 || code == 183 {
                    self.attempt.ringing_at.get_or_insert_with(chrono::Utc::now);
                }
                // A 18x whose SDP cannot be anchored goes on as plain progress, without it: the
                // answer that counts comes in the 2xx, checked the same way.
                let out = match self.a_dialog_response(code, &reason, &resp) {
                    Ok(out) => out,
                    Err(_) => match self.a_dialog_response(code, &reason, &without_body(&resp)) {
                        Ok(out) => out,
                        Err(_) => return,
                    },
                };
                if let Some(e) = self.media.as_mut().and_then(|m| m.take_answer_failure()) {
                    // Early media whose SRTP cannot be taken: the call cannot go on with it.
                    tracing::warn!(error = %e, "early answer refused");
                    self.give_up_early(Ending::refused(insecure_answer_reason(&e)));
                    return;
                }
                // Armed before A hears of the early media, as at the answer (`answer`).
                if !out.body.is_empty() {
                    self.early_media_offered();
                }
                self.a_tx.respond(out);
            }
            200..=299 => {
                let first = !self.b_final_seen;
                self.b_final_seen = true;
                if first {
                    self.b.learn_remote(&resp);
                }
                if self.phase == Phase::Early && !self.a_final_sent {
                    let out = self.a_dialog_response(code, &reason, &resp);
                    let srtp = self.media.as_mut().and_then(|m| m.take_answer_failure());
                    match (out, srtp) {
                        (Err(e), _) => self.unusable_answer(&e),
                        (Ok(_), Some(e)) => self.refuse_answer(&e),
                        (Ok(out), None) => self.answer(out),
                    }
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
            401 | 407 if self.b.side == Side::Outside => {
                if self.phase == Phase::Early && !self.a_final_sent {
                    if self.answer_invite_challenge(&resp) {
                        return;
                    }
                    // The challenge was the gateway's to answer: the PBX gets a clean 403.
                    let line = StatusLine::FORBIDDEN;
                    let out =
                        message_response(&self.a_tx, line.code, line.phrase, &self.a.local_tag);
                    self.a_tx.respond(out);
                    self.a_final_sent = true;
                    self.end(
                        Ending::new(line, Disposition::Failed, EndReason::CarrierAuthFailed)
                            .by(HangupSide::Gateway),
                    );
                }
                self.b_final_seen = true;
                self.linger_until = None;
            }
            _ => {
                if code == 503 && self.try_next_carrier("503 Service Unavailable") {
                    return;
                }
                self.b_final_seen = true;
                if self.phase == Phase::Early && !self.a_final_sent {
                    let out = message_response(&self.a_tx, code, &reason, &self.a.local_tag);
                    self.a_tx.respond(out);
                    self.a_final_sent = true;
                    let cause = message::other_header(&resp.headers, "Reason")
                        .and_then(crate::model::q850::parse_reason_header);
                    let disposition = Disposition::from_final_with_ringing(
                        code,
                        false,
                        false,
                        self.attempt.ringing_at.is_some(),
                    );
                    // The called party refused: the carrier on outbound calls, the PBX on
                    // inbound ones.
                    let hangup = HangupSide::from(self.b.side);
                    self.end(
                        Ending::with_phrase(
                            code,
                            &reason,
                            disposition,
                            EndReason::for_failure_status(code),
                        )
                        .by(hangup)
                        .with_q850(cause),
                    );
                }
                self.linger_until = None;
            }
        }
    }

    pub(super) fn on_b_invite_timeout(&mut self) {
        if self.try_next_carrier("no answer (timer B)") {
            return;
        }
        self.b_final_seen = true;
        self.linger_until = None;
        if self.phase == Phase::Early && !self.a_final_sent {
            let line = StatusLine::REQUEST_TIMEOUT;
            let out = message_response(&self.a_tx, line.code, line.phrase, &self.a.local_tag);
            self.a_tx.respond(out);
            self.a_final_sent = true;
            // Whoever we called never answered: the carrier, or the PBX on inbound calls.
            let end_reason = match self.b.side {
                Side::Outside => EndReason::CarrierTimeout,
                Side::Inside => EndReason::PbxTimeout,
            };
            self.end(Ending::new(line, Disposition::Failed, end_reason).by(HangupSide::Gateway));
        }
    }

    /// No connection to B could be made (TLS toward a carrier: its certificate failed
    /// verification, or the handshake did; the transport logged why): the next carrier
    /// address, or 503 to A (RFC 3261 §8.1.3.1) with the end reason `carrier_tls_failed`.
    pub(super) fn on_b_invite_transport_failed(&mut self, why: &str) {
        tracing::warn!(call_id = %self.attempt.id, peer = %self.b.peer, error = why, "no connection to the called side");
        if self.try_next_carrier("connection failed") {
            return;
        }
        self.b_final_seen = true;
        self.linger_until = None;
        if self.phase == Phase::Early && !self.a_final_sent {
            let line = StatusLine::SERVICE_UNAVAILABLE;
            let out = message_response(&self.a_tx, line.code, line.phrase, &self.a.local_tag);
            self.a_tx.respond(out);
            self.a_final_sent = true;
            let end_reason = match self.b.peer.proto {
                crate::sip::transport::Proto::Tls => EndReason::CarrierTlsFailed,
                _ => EndReason::FarEndFailure,
            };
            self.end(Ending::new(line, Disposition::Failed, end_reason).by(HangupSide::Gateway));
        }
    }

    /// Failover (RFC 3263 §4.3 in spirit): the carrier called did not take the call — it timed
    /// out or answered 503 before any provisional response — and the trunk names another
    /// address: the same INVITE goes there in a new transaction (new branch, next CSeq, the
    /// Request-URI and To naming the new host). False when there is nothing left to try.
    fn try_next_carrier(&mut self, why: &str) -> bool {
        if self.phase != Phase::Early || self.a_final_sent || self.b_provisional {
            return false;
        }
        let (Some(next), Some(mut req)) = (self.alternates.pop_front(), self.b_invite.clone())
        else {
            return false;
        };
        let from = self.b.peer;
        self.b.retarget(next);
        // Another carrier address: its challenges start afresh, and the last one's
        // credentials (for another nonce) do not go there.
        self.b_auth_tries = 0;
        req.headers
            .retain(|h| !crate::sip::digest::is_credentials(h));
        self.b.invite_cseq += 1;
        self.b.local_cseq = self.b.local_cseq.max(self.b.invite_cseq);
        let branch = message::new_branch();
        req.uri = self.b.remote_target.clone();
        for h in req.headers.iter_mut() {
            match h {
                Header::Via(_) => *h = Header::Via(rsip::headers::Via::new(self.b.via(&branch))),
                Header::To(_) => *h = Header::To(rsip::headers::To::new(self.b.remote_hdr.clone())),
                Header::CSeq(_) => {
                    *h = Header::CSeq(rsip::headers::CSeq::new(format!(
                        "{} INVITE",
                        self.b.invite_cseq
                    )))
                }
                _ => {}
            }
        }
        tracing::warn!(%from, to = %next.addr, why, "carrier did not take the call: trying the next address");
        self.b_invite = Some(req.clone());
        self.journal();
        self.b_key =
            self.ctx
                .layer
                .send_request(self.b.side, self.b.peer, req, self.events_tx.clone());
        true
    }

    /// B answered: relay the 2xx (`out`, made for A) and retransmit it until A's ACK.
    pub(super) fn answer(&mut self, out: rsip::Response) {
        // The recorder's tap and its position 0 come before A hears of the answer: A starts
        // sending as soon as the 2xx reaches it, and its first packets must not cross the relay
        // untapped (they would be missing from the evidence, and the recording's time 0 would
        // come after the audio it starts with).
        self.arm_recording();
        self.a_tx.respond(out.clone());
        self.a_final_sent = true;
        self.phase = Phase::Answered;
        let answered = chrono::Utc::now();
        self.attempt.answer_at = Some(answered);
        self.ctx.registry.mark_answered(&self.a, answered);
        self.ring_deadline = None;
        if let Some(m) = &self.media {
            m.answered();
        }
        // Both dialogs are confirmed: a crash from now on leaves two BYEs to send.
        self.journal();
        self.ctx.trace_checkpoint(self.a.side, &self.a.call_id);
        let now = Instant::now();
        self.max_deadline = Some(now + self.max_call);
        let t = self.ctx.layer.timers();
        self.unacked = Some(Box::new(Unacked {
            side: self.a.side,
            cseq: self.a.invite_cseq,
            resp: out,
            next: now + t.t1,
            interval: t.t1,
            deadline: now + t.timeout(),
            ack_other_cseq: self.b.invite_cseq,
            ack_credentials: Vec::new(),
        }));
        tracing::debug!("call answered");
    }

    /// B answered with SRTP the gateway cannot take (a plain answer on a `required` leg, a key
    /// it did not offer): B's dialog is acknowledged and ended, A gets 488 and the CDR the
    /// reason. Nothing was relayed with the answer.
    fn refuse_answer(&mut self, e: &crate::media::sdes::AnswerError) {
        let reason = insecure_answer_reason(e);
        tracing::warn!(error = %e, reason = reason.as_str(), "answer refused: ending the call");
        self.ack_b(Vec::new(), None);
        self.send_bye(self.b.side);
        let line = reason.status_line();
        let out = message_response(&self.a_tx, line.code, line.phrase, &self.a.local_tag);
        self.a_tx.respond(out);
        self.a_final_sent = true;
        self.end(Ending::refused(reason));
    }

    /// B answered 2xx with SDP the gateway cannot anchor (unparseable, or not an answer to
    /// the offer): nothing of it reaches A. B's dialog is confirmed and ended at once — ACK,
    /// then BYE with a Reason saying why (RFC 3326) — and A gets `502 Bad Gateway`: its offer
    /// was fine (a 488 would tell it otherwise and invite a retry with another offer); what
    /// came back from the far side was not a usable response (RFC 3261 §21.5.3).
    pub(super) fn unusable_answer(&mut self, e: &UnusableSdp) {
        self.ack_b(Vec::new(), None);
        self.send_bye_with(self.b.side, vec![unusable_sdp_reason()]);
        self.linger_until = None;
        let line = StatusLine::BAD_GATEWAY;
        let out = message_response(&self.a_tx, line.code, line.phrase, &self.a.local_tag);
        self.a_tx.respond(out);
        self.a_final_sent = true;
        tracing::warn!(error = %e, "the called side's answer cannot be anchored: call ended");
        self.end(
            Ending::new(
                line,
                Disposition::Failed,
                EndReason::bad_sdp_from(self.b.side),
            )
            .by(HangupSide::Gateway),
        );
    }

    /// What B's INVITE left for its responses to carry: the answer to A's offer, or (A sent
    /// none) B's own offer.
    pub(super) fn b_exchange(&self) -> Exchange {
        match &self.b_invite {
            Some(invite) if !invite.body.is_empty() => Exchange::Answer,
            _ => Exchange::Offer,
        }
    }

    /// A response to A's INVITE that carries dialog state: our tag, Contact, the body; an error
    /// when its SDP cannot be anchored.
    pub(super) fn a_dialog_response(
        &mut self,
        code: u16,
        reason: &str,
        from_b: &rsip::Response,
    ) -> Result<rsip::Response, UnusableSdp> {
        let mut out = message_response(&self.a_tx, code, reason, &self.a.local_tag);
        relay::copy_dialog_parts(&mut out, from_b, &self.a.contact(), code);
        let ct = message::content_type(&out.headers).map(str::to_string);
        let exchange = self.b_exchange();
        out.body = self.across(self.b.side, exchange, ct.as_deref(), &out.body)?;
        Ok(out)
    }

    pub(super) fn on_cancel(&mut self, tx: ServerTx) {
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
            tx.reply_line(StatusLine::CALL_DOES_NOT_EXIST, Some(&tag));
            return;
        }
        tx.reply_line(StatusLine::OK, Some(&tag));
        if !matches_initial {
            // A re-INVITE's CANCEL: it runs its course on the other leg.
            return;
        }
        if tx.side() != self.a.side || self.phase != Phase::Early || self.a_final_sent {
            return;
        }
        let hangup = HangupSide::from(self.a.side);
        self.give_up_early(
            Ending::new(
                StatusLine::REQUEST_TERMINATED,
                Disposition::Cancelled,
                EndReason::Cancelled,
            )
            .by(hangup),
        );
    }
}

/// `resp` without its body (and the Content-Type that described it).
pub(super) fn without_body(resp: &rsip::Response) -> rsip::Response {
    let mut bare = resp.clone();
    bare.body.clear();
    bare.headers
        .retain(|h| !matches!(h, Header::ContentType(_)));
    bare
}

/// The Reason of a BYE (or of a failed re-INVITE's ACK-and-BYE) sent because a peer's SDP
/// could not be anchored: 488, the status the peer would have had for it as a request.
pub(super) fn unusable_sdp_reason() -> rsip::Header {
    Header::Other(
        "Reason".into(),
        "SIP;cause=488;text=\"SDP cannot be anchored\"".into(),
    )
}

/// The refusal an answer gets when its SRTP cannot be taken.
fn insecure_answer_reason(e: &crate::media::sdes::AnswerError) -> crate::model::RefusalReason {
    use crate::media::sdes::AnswerError;
    use crate::model::RefusalReason;
    match e {
        AnswerError::SrtpRequired => RefusalReason::SrtpRequired,
        AnswerError::BadCrypto(_) => RefusalReason::SrtpUnsupported,
    }
}
