//! ACKs: A's ACK for our 2xx passed on to B, and ACKs resent when a 2xx is retransmitted.

use super::*;
use crate::media::sdp::Exchange;

impl Call {
    pub(super) fn on_ack(&mut self, ack: rsip::Request, side: Side) {
        let Some((seq, _)) = message::cseq(&ack) else {
            return;
        };
        let matches = matches!(&self.unacked, Some(u) if u.side == side && u.cseq == seq);
        if !matches {
            return;
        }
        let Some(u) = self.unacked.take() else { return };
        let ct = message::content_type(&ack.headers).map(str::to_string);
        // An ACK's SDP is the answer to the offer of a 2xx (late offer).
        let answer = self.across(side, Exchange::Answer, ct.as_deref(), &ack.body);
        let initial =
            side == self.a.side && u.ack_other_cseq == self.b.invite_cseq && self.b_ack.is_none();
        let body = match answer {
            Ok(body) => body,
            Err(_) if initial => {
                // A's answer cannot be anchored: B's dialog gets its ACK (without it) and both
                // end; the relay never learned A's media.
                self.ack_b(Vec::new(), None);
                self.send_bye_with(side, vec![super::invite::unusable_sdp_reason()]);
                self.send_bye(side.other());
                self.end(Ending::answered(
                    EndReason::bad_sdp_from(side),
                    HangupSide::Gateway,
                ));
                return;
            }
            // A re-INVITE's: the other side's 2xx is still ACKed, without it, and the relay
            // stays on the media it had.
            Err(_) => Vec::new(),
        };
        if initial {
            self.ack_b(body, ct.as_deref());
        } else {
            let other = side.other();
            let leg = self.leg_mut(other);
            let mut req = leg.request(Method::Ack, Some(u.ack_other_cseq), body, ct.as_deref());
            req.headers.extend(u.ack_credentials);
            let peer = leg.peer;
            self.ctx
                .layer
                .send_stateless(other, peer, rsip::SipMessage::Request(req.clone()));
            self.reinvite_acks.insert(other, (u.ack_other_cseq, req));
        }
    }

    /// Send again the ACK for a re-INVITE's 2xx that `side` retransmits.
    pub(super) fn reack(&self, side: Side, resp: &rsip::Response) {
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
    pub(super) fn ack_b(&mut self, body: Vec<u8>, ct: Option<&str>) {
        let cseq = self.b.invite_cseq;
        let mut req = self.b.request(Method::Ack, Some(cseq), body, ct);
        // §13.2.2.4: the ACK carries the credentials of the INVITE it acknowledges.
        if let Some(invite) = &self.b_invite {
            req.headers.extend(super::auth::credentials_of(invite));
        }
        self.ctx.layer.send_stateless(
            self.b.side,
            self.b.peer,
            rsip::SipMessage::Request(req.clone()),
        );
        self.b_ack = Some(req);
    }

    pub(super) fn on_stray_response(&mut self, resp: rsip::Response, side: Side) {
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
}
