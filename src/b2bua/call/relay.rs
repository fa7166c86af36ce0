//! In-dialog requests passed from one leg to the other (re-INVITE, UPDATE, INFO, OPTIONS…)
//! and their responses passed back.

use rsip::headers::UntypedHeader;
use rsip::{Header, Method};
use tokio::time::Instant;

use super::{Call, Relay, Unacked, ALLOW};
use crate::media::sdp::Exchange;
use crate::model::StatusLine;
use crate::sip::message;
use crate::sip::response::response_for;
use crate::sip::transaction::{ClientEventKind, ClientKey, ServerTx};
use crate::sip::transport::Side;

pub(super) fn relay_request(call: &mut Call, tx: ServerTx) {
    let side = tx.side();
    let req = tx.request();
    let method = req.method;
    let invite_busy =
        call.unacked.is_some() || call.relays.values().any(|r| r.method == Method::Invite);
    if method == Method::Invite && invite_busy {
        // §14.1 glare: an INVITE transaction is already under way in this dialog.
        tx.reply_line(StatusLine::REQUEST_PENDING, None);
        return;
    }
    let ct = message::content_type(&req.headers).map(str::to_string);
    let encryption = call
        .media
        .as_ref()
        .map_or_else(Default::default, |m| m.encryption(side));
    if let Some(line) = refused_offer(method, ct.as_deref(), &req.body, encryption) {
        tx.reply_line(line, None);
        return;
    }
    let raw = req.body.clone();
    // INVITE and UPDATE bodies are offers (checked just above); another request's SDP (PRACK)
    // answers one.
    let exchange = match method {
        Method::Invite | Method::Update => Exchange::Offer,
        _ => Exchange::Answer,
    };
    let Ok(body) = call.across(side, exchange, ct.as_deref(), &raw) else {
        tx.reply_line(StatusLine::NOT_ACCEPTABLE_HERE, None);
        return;
    };
    let other = side.other();
    let events = call.events_tx.clone();
    let leg = call.leg_mut(other);
    let mut out = leg.request(method, None, body, ct.as_deref());
    let other_cseq = leg.local_cseq;
    let peer = leg.peer;
    if method == Method::Invite || method == Method::Update {
        out.headers
            .push(Header::Allow(rsip::headers::Allow::new(ALLOW)));
    }
    match call
        .ctx
        .layer
        .send_request(other, peer, out.clone(), events)
    {
        Some(key) => {
            call.relays.insert(
                key,
                Relay {
                    origin: tx,
                    method,
                    other_cseq,
                    sent: out,
                    auth_tries: 0,
                },
            );
        }
        None => tx.reply_line(StatusLine::SERVER_INTERNAL_ERROR, None),
    }
}

/// A re-offer (re-INVITE, UPDATE) the gateway cannot carry is answered here, as an initial
/// offer is refused at admission: never relayed without its body. The call goes on with the
/// session it had (RFC 3261 §14.2).
fn refused_offer(
    method: Method,
    ct: Option<&str>,
    body: &[u8],
    encryption: crate::config::MediaEncryption,
) -> Option<StatusLine> {
    let offers = matches!(method, Method::Invite | Method::Update);
    if !offers || body.is_empty() || !crate::media::sdp::is_sdp(ct) {
        return None;
    }
    let e = crate::media::sdp::check_offer(body, encryption).err()?;
    tracing::info!(method = %method, error = %e, "re-offer refused");
    Some(crate::b2bua::refusal::offer_reason(&e).status_line())
}

pub(super) fn relay_response(call: &mut Call, key: ClientKey, kind: ClientEventKind) {
    let resp = match kind {
        ClientEventKind::Timeout => {
            if let Some(relay) = call.relays.remove(&key) {
                relay.origin.reply_line(StatusLine::REQUEST_TIMEOUT, None);
            }
            return;
        }
        // §8.1.3.1: a transport failure is a 503.
        ClientEventKind::TransportFailed(_) => {
            if let Some(relay) = call.relays.remove(&key) {
                relay
                    .origin
                    .reply_line(StatusLine::SERVICE_UNAVAILABLE, None);
            }
            return;
        }
        ClientEventKind::Response(r) => r,
    };
    let (code, reason) = message::status_parts(&resp.status_code);
    if code == 100 {
        return;
    }
    if (code == 401 || code == 407) && key.side == Side::Outside {
        answer_challenge(call, key, &resp);
        return;
    }
    let Some(relay) = call.relays.get(&key) else {
        return;
    };
    let origin_side = relay.origin.side();
    let method = relay.method;
    let contact = if origin_side == call.a.side {
        call.a.contact()
    } else {
        call.b.contact()
    };
    // A re-INVITE without SDP gets the other side's offer in the 2xx (and the answer in the ACK).
    let exchange = if method == Method::Invite && relay.sent.body.is_empty() {
        Exchange::Offer
    } else {
        Exchange::Answer
    };
    let mut out = response_for(relay.origin.request(), code, &reason, None);
    let origin = relay.origin.clone();
    if matches!(method, Method::Invite | Method::Update) {
        copy_dialog_parts(&mut out, &resp, &contact, code);
    } else if !resp.body.is_empty() {
        copy_body(&mut out, &resp);
    }
    if !out.body.is_empty() {
        let ct = message::content_type(&out.headers).map(str::to_string);
        let crossed = call.across(origin_side.other(), exchange, ct.as_deref(), &out.body);
        if let Some(e) = call.media.as_mut().and_then(|m| m.take_answer_failure()) {
            // The call cannot go on with media it cannot decrypt (or must not send in clear).
            tracing::warn!(error = %e, "re-offer's answer refused: ending the call");
            call.relays.remove(&key);
            origin.reply_line(StatusLine::NOT_ACCEPTABLE_HERE, None);
            call.bye_both(crate::model::EndReason::SrtpFailed);
            return;
        }
        match crossed {
            Ok(body) => out.body = body,
            Err(_) if (200..300).contains(&code) => {
                unusable_answer(call, key, &resp);
                return;
            }
            // Progress or a failure: it goes on without the SDP.
            Err(_) => {
                out.body.clear();
                out.headers.retain(|h| !matches!(h, Header::ContentType(_)));
            }
        }
    }
    if (200..300).contains(&code) {
        if let Some(target) = message::contact_uri(&resp) {
            if matches!(method, Method::Invite | Method::Update) {
                // A target refresh (§12.2.1.2).
                call.leg_mut(origin_side.other()).remote_target = target;
            }
        }
    }
    origin.respond(out.clone());
    if code >= 200 {
        let Some(relay) = call.relays.remove(&key) else {
            return;
        };
        if relay.method == Method::Invite && (200..300).contains(&code) {
            let t = call.ctx.layer.timers();
            let now = Instant::now();
            let cseq = message::cseq(relay.origin.request())
                .map(|(s, _)| s)
                .unwrap_or(0);
            call.unacked = Some(Box::new(Unacked {
                side: origin_side,
                cseq,
                resp: out,
                next: now + t.t1,
                interval: t.t1,
                deadline: now + t.timeout(),
                ack_other_cseq: relay.other_cseq,
                ack_credentials: super::auth::credentials_of(&relay.sent),
            }));
        }
    }
}

/// The other side accepted a relayed re-INVITE or UPDATE with SDP the gateway cannot anchor:
/// the request fails for the side that sent it (502, as an initial answer would), a re-INVITE's
/// 2xx is ACKed (without SDP, RFC 3261 §13.2.2.4 wants the ACK whatever its 2xx), and the call
/// goes on with the media it had — the relay never learned the refused addresses.
fn unusable_answer(call: &mut Call, key: ClientKey, resp: &rsip::Response) {
    let Some(relay) = call.relays.remove(&key) else {
        return;
    };
    relay.origin.reply_line(StatusLine::BAD_GATEWAY, None);
    if relay.method != Method::Invite {
        return;
    }
    let side = key.side;
    let leg = call.leg_mut(side);
    let cseq = message::cseq(resp).map_or(relay.other_cseq, |(c, _)| c);
    let mut ack = leg.request(Method::Ack, Some(cseq), Vec::new(), None);
    ack.headers.extend(super::auth::credentials_of(&relay.sent));
    let peer = leg.peer;
    call.ctx
        .layer
        .send_stateless(side, peer, rsip::SipMessage::Request(ack.clone()));
    call.reinvite_acks.insert(side, (cseq, ack));
}

/// The carrier challenged a request we relayed there: it goes again with credentials under
/// a new transaction; when it must not, the side that sent it gets `403 Forbidden` (the
/// challenge was the gateway's, not the PBX's to answer) and the dialog goes on.
fn answer_challenge(call: &mut Call, key: ClientKey, resp: &rsip::Response) {
    let Some(relay) = call.relays.remove(&key) else {
        return;
    };
    match call.answer_dialog_challenge(key.side, &relay.sent, resp, relay.auth_tries) {
        Ok((sent, Some(new_key))) => {
            let other_cseq = message::cseq(&sent).map_or(relay.other_cseq, |(c, _)| c);
            call.relays.insert(
                new_key,
                Relay {
                    other_cseq,
                    sent,
                    auth_tries: relay.auth_tries + 1,
                    ..relay
                },
            );
        }
        Ok((_, None)) => relay
            .origin
            .reply_line(StatusLine::SERVER_INTERNAL_ERROR, None),
        Err(_) => relay.origin.reply_line(StatusLine::FORBIDDEN, None),
    }
}

/// Contact (ours), body and Allow onto a response that creates or refreshes a dialog.
pub(super) fn copy_dialog_parts(
    out: &mut rsip::Response,
    from: &rsip::Response,
    contact: &str,
    code: u16,
) {
    if (101..300).contains(&code) {
        out.headers
            .push(Header::Contact(rsip::headers::Contact::new(contact)));
    }
    if (200..300).contains(&code) {
        out.headers
            .push(Header::Allow(rsip::headers::Allow::new(ALLOW)));
    }
    copy_body(out, from);
}

fn copy_body(out: &mut rsip::Response, from: &rsip::Response) {
    if from.body.is_empty() {
        return;
    }
    if let Some(ct) = message::content_type(&from.headers) {
        out.headers
            .push(Header::ContentType(rsip::headers::ContentType::new(ct)));
    }
    out.body = from.body.clone();
}
