//! A new INVITE refused before it became a call: the response sent and the attempt's CDR,
//! for every way it can be refused (policy, the gateway itself, the validator, the parser, the offer).

use chrono::Utc;
use rsip::headers::UntypedHeader;

use super::new_attempt::{attempt_of, new_attempt, trunk_of, user_of, InviteFields};
use super::Ctx;
use crate::config::MediaEncryption;
use crate::media::sdp;
use crate::model::{normalize_number, Attempt, Ending, RefusalReason, StatusLine};
use crate::policy::Refusal;
use crate::sip::frontend::Rejection;
use crate::sip::message;
use crate::sip::response::response_for;
use crate::sip::transaction::ServerTx;
use crate::sip::transport::{Peer, Side};
use crate::sip::uri_text::uri_text;

/// A refusal of a new INVITE: the CDR's ending and the Retry-After sent with it.
pub(super) struct Refused {
    pub(super) ending: Ending,
    pub(super) retry_after: Option<u32>,
}

impl Refused {
    /// Refused by the gateway itself (no resource, a bad request, shutting down).
    pub(super) fn by_gateway(ctx: &Ctx, reason: RefusalReason) -> Refused {
        Refused {
            ending: Ending::refused(reason),
            retry_after: reason.retry_after_secs(ctx.settings.retry_after_secs),
        }
    }

    /// Refused by the gateway with another status than the reason's usual one.
    pub(super) fn by_gateway_as(reason: RefusalReason, line: StatusLine) -> Refused {
        Refused {
            ending: Ending::refused_as(reason, line),
            retry_after: None,
        }
    }

    /// Refused by the admission policy, with its status and Retry-After.
    pub(super) fn by_policy(r: &Refusal) -> Refused {
        Refused {
            ending: Ending::refused_with_phrase(r.reason, r.status, &r.phrase),
            retry_after: r.retry_after,
        }
    }
}

/// Answer the INVITE with the refusal and submit the attempt's CDR.
pub(super) fn refuse(ctx: &Ctx, tx: &ServerTx, attempt: Attempt, refused: Refused) {
    let Refused {
        ending,
        retry_after,
    } = refused;
    let mut resp = response_for(
        tx.request(),
        ending.status,
        &ending.phrase,
        Some(&message::random_token(8)),
    );
    if let Some(secs) = retry_after {
        resp.headers
            .push(rsip::Header::RetryAfter(rsip::headers::RetryAfter::new(
                secs.to_string(),
            )));
    }
    tx.respond(resp);
    tracing::info!(
        call_id = %attempt.id,
        trunk = attempt.trunk.as_deref().unwrap_or("-"),
        status = ending.status,
        reason = ending.refusal.map(RefusalReason::as_str).unwrap_or("-"),
        "call refused"
    );
    ctx.submit_cdr(attempt.close(ending, Utc::now()));
}

/// An INVITE from a source that is no configured peer, refused with 403.
pub(super) fn record_unknown_source(ctx: &Ctx, side: Side, peer: Peer, req: &rsip::Request) {
    let attempt = new_attempt(ctx, side, peer, req, None);
    let ending = Ending::refused(RefusalReason::UnknownSource);
    ctx.submit_cdr(attempt.close(ending, Utc::now()));
}

/// An INVITE the validator refused (4xx/5xx before any policy).
pub(super) fn record_invalid(
    ctx: &Ctx,
    side: Side,
    peer: Peer,
    req: &rsip::Request,
    status: u16,
    reason: &str,
) {
    let trunk = trunk_of(ctx, side, peer, req).map(|t| t.name.clone());
    let attempt = new_attempt(ctx, side, peer, req, trunk);
    let ending = Ending::refused_with_phrase(RefusalReason::InvalidRequest, status, reason);
    ctx.submit_cdr(attempt.close(ending, Utc::now()));
}

/// An INVITE the front end could not parse: its CDR holds what could be salvaged.
pub(super) fn record_malformed(ctx: &Ctx, side: Side, peer: Peer, rejection: &Rejection) {
    let resp = rejection.response.as_ref();
    // No request URI to tell trunks sharing a carrier apart: the carrier's address alone.
    let trunk = match side {
        Side::Inside => ctx.policy.pbx_trunk(peer.addr.ip()),
        Side::Outside => ctx.policy.carrier_trunk(peer.addr),
    };
    let from = resp.and_then(message::from_uri);
    let attempt = attempt_of(
        ctx,
        side,
        peer,
        trunk.map(|t| t.name.clone()),
        InviteFields {
            call_id: resp.and_then(message::call_id).map(str::to_string),
            caller: from.as_ref().and_then(|u| normalize_number(&uri_text(u))),
            callee: resp
                .and_then(message::to_uri)
                .and_then(|u| normalize_number(&uri_text(&u))),
            presented_from: from.as_ref().map(user_of),
            pai: None,
        },
    );
    let ending = Ending::refused_with_phrase(
        RefusalReason::MalformedRequest,
        rejection.status,
        &rejection.reason,
    );
    ctx.trace_claim(side, &attempt);
    let at = attempt.invite_at;
    ctx.submit_cdr(attempt.close(ending, at));
}

/// Why the INVITE's offer cannot be carried, if it cannot: an offer the gateway cannot parse
/// or anchor is refused here, before any lease or port is taken, rather than sent on without
/// its body (the answer would then answer nothing the caller offered: RFC 3264).
pub(super) fn offer_refusal(
    req: &rsip::Request,
    attempt: &Attempt,
    encryption: MediaEncryption,
) -> Option<RefusalReason> {
    let ct = message::content_type(&req.headers);
    if req.body.is_empty() || !sdp::is_sdp(ct) {
        return None;
    }
    let e = sdp::check_offer(&req.body, encryption).err()?;
    tracing::info!(call_id = %attempt.id, error = %e, "INVITE offer refused");
    Some(offer_reason(&e))
}

/// The refusal an offer that cannot be carried gets (also for re-offers, in `call::relay`).
pub(super) fn offer_reason(e: &sdp::OfferError) -> RefusalReason {
    match e {
        sdp::OfferError::Security(sdp::SecurityError::Dtls(_)) => {
            RefusalReason::DtlsSrtpUnsupported
        }
        sdp::OfferError::Security(sdp::SecurityError::NoUsableCrypto(_)) => {
            RefusalReason::SrtpUnsupported
        }
        sdp::OfferError::SrtpNotAllowed(_) => RefusalReason::SrtpNotAllowed,
        sdp::OfferError::SrtpRequired => RefusalReason::SrtpRequired,
        sdp::OfferError::Unparseable(sdp::SdpError::TooLarge(_) | sdp::SdpError::TooManyMedia) => {
            RefusalReason::SdpTooLarge
        }
        sdp::OfferError::Unparseable(_) => RefusalReason::SdpMalformed,
    }
}
