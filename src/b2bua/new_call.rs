//! A new INVITE: admission by policy, then the two legs and the call task — or a refusal with
//! its SIP response and its CDR.

use std::sync::Arc;

use chrono::Utc;
use rsip::headers::UntypedHeader;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::call::setup::{self, Presented};
use super::call::{Call, CallMedia, CallSetup, CdrDraft};
use super::registry::LiveCall;
use super::Ctx;
use crate::config::TransportKind;
use crate::monitor::cdr::{Direction, Disposition};
use crate::policy::{self, AdmissionRequest, Decision};
use crate::sip::frontend::Rejection;
use crate::sip::message;
use crate::sip::response::response_for;
use crate::sip::transaction::ServerTx;
use crate::sip::transport::{Peer, Proto, Side};

/// Capacity of a call's inbox of in-dialog messages.
const CALL_INBOX: usize = 64;

/// Our id for a call: sortable by time, unique, safe as a file name.
fn new_call_id(now: chrono::DateTime<Utc>) -> String {
    format!(
        "{}-{}",
        now.format("%Y%m%dT%H%M%S"),
        message::random_token(10)
    )
}

fn direction_of(side: Side) -> Direction {
    match side {
        Side::Inside => Direction::Outbound,
        Side::Outside => Direction::Inbound,
    }
}

fn user_of(uri: &rsip::Uri) -> String {
    uri.user().unwrap_or_default().to_string()
}

/// The draft CDR every attempt starts with; the attempt is counted.
fn draft(
    ctx: &Ctx,
    side: Side,
    peer: Peer,
    req: &rsip::Request,
    trunk: Option<String>,
) -> CdrDraft {
    ctx.attempts.count(trunk.as_deref(), direction_of(side));
    let now = Utc::now();
    let call_id = message::call_id(req).map(str::to_string);
    let (inside_call_id, outside_call_id) = match side {
        Side::Inside => (call_id, None),
        Side::Outside => (None, call_id),
    };
    CdrDraft {
        id: new_call_id(now),
        inside_call_id,
        outside_call_id,
        trunk,
        direction: direction_of(side),
        source: peer.addr.to_string(),
        caller: message::from_uri(req).and_then(|u| policy::normalize_number(&u.to_string())),
        callee: policy::normalize_number(&req.uri.to_string()),
        presented_from: message::from_uri(req).map(|u| user_of(&u)),
        pai: message::other_header(&req.headers, "P-Asserted-Identity").map(str::to_string),
        invite_at: now,
        ringing_at: None,
        answer_at: None,
        q850: None,
        refusal_reason: None,
        trunk_active: None,
        caller_active: None,
    }
}

fn refuse(
    ctx: &Ctx,
    tx: &ServerTx,
    mut d: CdrDraft,
    status: u16,
    phrase: &str,
    code: &str,
    retry_after: Option<u32>,
) {
    let mut resp = response_for(
        tx.request(),
        status,
        phrase,
        Some(&message::random_token(8)),
    );
    if let Some(secs) = retry_after {
        resp.headers
            .push(rsip::Header::RetryAfter(rsip::headers::RetryAfter::new(
                secs.to_string(),
            )));
    }
    tx.respond(resp);
    d.refusal_reason = Some(code.to_string());
    tracing::info!(call_id = %d.id, trunk = d.trunk.as_deref().unwrap_or("-"), status, reason = code, "call refused");
    ctx.cdrs
        .submit(d.finish(status, phrase, Disposition::Refused, "refused", None));
}

/// An INVITE from a source that is no configured peer, refused with 403.
pub(super) fn record_unknown_source(ctx: &Ctx, side: Side, peer: Peer, req: &rsip::Request) {
    let mut d = draft(ctx, side, peer, req, None);
    d.refusal_reason = Some("unknown_source".into());
    ctx.cdrs
        .submit(d.finish(403, "Forbidden", Disposition::Refused, "refused", None));
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
    let mut d = draft(ctx, side, peer, req, trunk);
    d.refusal_reason = Some("invalid_request".into());
    ctx.cdrs
        .submit(d.finish(status, reason, Disposition::Refused, "refused", None));
}

/// The trunk a new call belongs to: by the PBX's address, or by the carrier's address and the
/// called number (several trunks may share one carrier).
/// An INVITE the front end could not parse: its CDR holds what could be salvaged.
pub(super) fn record_malformed(ctx: &Ctx, side: Side, peer: Peer, rejection: &Rejection) {
    let resp = rejection.response.as_ref();
    let call_id = resp.and_then(message::call_id).map(str::to_string);
    let trunk = match side {
        Side::Inside => ctx.policy.pbx_trunk(peer.addr.ip()),
        Side::Outside => ctx.policy.carrier_trunk(peer.addr),
    };
    ctx.attempts
        .count(trunk.as_ref().map(|t| t.name.as_str()), direction_of(side));
    let now = Utc::now();
    let from = resp.and_then(message::from_uri);
    let d = CdrDraft {
        id: new_call_id(now),
        inside_call_id: if side == Side::Inside {
            call_id.clone()
        } else {
            None
        },
        outside_call_id: if side == Side::Outside { call_id } else { None },
        trunk: trunk.map(|t| t.name.clone()),
        direction: direction_of(side),
        source: peer.addr.to_string(),
        caller: from
            .as_ref()
            .and_then(|u| policy::normalize_number(&u.to_string())),
        callee: resp
            .and_then(message::to_uri)
            .and_then(|u| policy::normalize_number(&u.to_string())),
        presented_from: from.as_ref().map(user_of),
        pai: None,
        invite_at: now,
        ringing_at: None,
        answer_at: None,
        q850: None,
        refusal_reason: Some("malformed_request".into()),
        trunk_active: None,
        caller_active: None,
    };
    ctx.cdrs.submit(d.finish(
        rejection.status,
        &rejection.reason,
        Disposition::Refused,
        "refused",
        None,
    ));
}

fn trunk_of(ctx: &Ctx, side: Side, peer: Peer, req: &rsip::Request) -> Option<policy::TrunkRef> {
    match side {
        Side::Inside => ctx.policy.pbx_trunk(peer.addr.ip()),
        Side::Outside => ctx.policy.inbound_trunk(peer.addr, &req.uri.to_string()),
    }
}

fn proto_of(kind: TransportKind) -> Proto {
    match kind {
        TransportKind::Udp => Proto::Udp,
        TransportKind::Tcp => Proto::Tcp,
    }
}

pub(super) fn on_invite(ctx: &Arc<Ctx>, tx: ServerTx) {
    let side = tx.side();
    let peer = tx.peer();
    let req = tx.request();
    let Some(trunk) = trunk_of(ctx, side, peer, req) else {
        // The dispatcher checked the source; a trunk removed meanwhile lands here.
        let d = draft(ctx, side, peer, req, None);
        refuse(ctx, &tx, d, 403, "Forbidden", "unknown_source", None);
        return;
    };
    let mut d = draft(ctx, side, peer, req, Some(trunk.name.clone()));
    if !ctx.admitting() {
        let retry = Some(ctx.settings.retry_after_secs);
        refuse(
            ctx,
            &tx,
            d,
            503,
            "Service Unavailable",
            "shutting_down",
            retry,
        );
        return;
    }
    let from_uri = message::from_uri(req)
        .map(|u| u.to_string())
        .unwrap_or_default();
    let pai = message::other_header(&req.headers, "P-Asserted-Identity")
        .map(|v| message::uri_in_name_addr(v).to_string());
    let privacy = message::other_header(&req.headers, "Privacy");
    let callee_uri = req.uri.to_string();
    let decision = ctx.policy.admit(
        &AdmissionRequest {
            trunk: &trunk.name,
            direction: match side {
                Side::Inside => policy::Direction::Outbound,
                Side::Outside => policy::Direction::Inbound,
            },
            from_uri: &from_uri,
            pai_uri: pai.as_deref(),
            privacy,
            callee_uri: &callee_uri,
        },
        Utc::now(),
    );
    let admission = match decision {
        Decision::Refuse(r) => {
            d.caller = r.caller.clone().or(d.caller);
            d.callee = r.callee.clone().or(d.callee);
            refuse(
                ctx,
                &tx,
                d,
                r.status,
                &r.phrase,
                r.reason.code(),
                r.retry_after,
            );
            return;
        }
        Decision::Admit(a) => a,
    };
    d.caller = admission.caller.clone().or(d.caller);
    d.callee = admission.callee.clone().or(d.callee);
    d.trunk_active = Some(admission.lease.trunk_active_at_grant());
    // The lease's line is the caller ID outbound, the called number inbound.
    if side == Side::Inside {
        d.caller_active = Some(admission.lease.number_active_at_grant());
    }

    let other = side.other();
    let (local, other_local) = match side {
        Side::Inside => (ctx.settings.inside_addr, ctx.settings.outside_addr),
        Side::Outside => (ctx.settings.outside_addr, ctx.settings.inside_addr),
    };
    // Outbound calls may fail over to the trunk's further carrier addresses.
    let alternates: Vec<Peer> = match side {
        Side::Inside => trunk
            .carrier
            .iter()
            .skip(1)
            .map(|addr| Peer {
                addr: *addr,
                proto: proto_of(trunk.carrier_transport),
            })
            .collect(),
        Side::Outside => Vec::new(),
    };
    let target = match side {
        Side::Inside => match trunk.carrier.first() {
            Some(addr) => Peer {
                addr: *addr,
                proto: proto_of(trunk.carrier_transport),
            },
            None => {
                refuse(ctx, &tx, d, 503, "Service Unavailable", "no_carrier", None);
                return;
            }
        },
        Side::Outside => Peer {
            addr: trunk.inbound_to,
            proto: proto_of(trunk.pbx_transport),
        },
    };
    let Some(a) = setup::a_leg(req, side, peer, local) else {
        refuse(ctx, &tx, d, 400, "Bad Request", "invalid_request", None);
        return;
    };
    let from_user = message::from_uri(req)
        .map(|u| user_of(&u))
        .unwrap_or_default();
    let to_user = message::to_uri(req)
        .map(|u| user_of(&u))
        .unwrap_or_default();
    let ruri_user = user_of(&req.uri);
    let presented = Presented {
        from_user: &from_user,
        to_user: if to_user.is_empty() {
            &ruri_user
        } else {
            &to_user
        },
        ruri_user: &ruri_user,
    };
    let Some(mut b) = setup::b_leg(other, target, other_local, &presented) else {
        refuse(
            ctx,
            &tx,
            d,
            484,
            "Address Incomplete",
            "invalid_number",
            None,
        );
        return;
    };
    let mut b_invite = setup::b_invite(req, &mut b);
    let span = tracing::info_span!("call", call_id = %d.id, trunk = %trunk.name);
    let media = {
        let _in_call = span.enter(); // the relay's tasks inherit the call's span
        CallMedia::start(&ctx.settings.media)
    };
    let mut media = match media {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(call_id = %d.id, error = %e, "no media ports");
            let retry = Some(ctx.settings.retry_after_secs);
            refuse(
                ctx,
                &tx,
                d,
                503,
                "Service Unavailable",
                "media_unavailable",
                retry,
            );
            return;
        }
    };
    let offer_payloads = crate::media::sdp::parse(&req.body)
        .ok()
        .and_then(|s| s.audio())
        .map(|a| a.payloads)
        .unwrap_or_default();
    if !req.body.is_empty() {
        let ct = message::content_type(&req.headers);
        b_invite.body = media.rewrite(side, ct, &req.body);
        if b_invite.body.is_empty() {
            b_invite
                .headers
                .retain(|h| !matches!(h, rsip::Header::ContentType(_)));
        }
    }
    match side {
        Side::Inside => d.outside_call_id = Some(b.call_id.clone()),
        Side::Outside => d.inside_call_id = Some(b.call_id.clone()),
    }
    let (inbox_tx, inbox_rx) = mpsc::channel(CALL_INBOX);
    let live = LiveCall {
        id: d.id.clone(),
        trunk: trunk.name.clone(),
        direction: d.direction,
        caller: d.caller.clone(),
        callee: d.callee.clone(),
        started_at: d.invite_at,
        inside_call_id: d.inside_call_id.clone().unwrap_or_default(),
        outside_call_id: d.outside_call_id.clone().unwrap_or_default(),
        answered_at: None,
    };
    if !ctx.registry.insert(
        live,
        (side, a.call_id.clone()),
        (other, b.call_id.clone()),
        inbox_tx,
        Some(media.live()),
    ) {
        // Same Call-ID already live on this side, under a new branch: a loop or a broken peer.
        refuse(ctx, &tx, d, 482, "Loop Detected", "duplicate_call_id", None);
        return;
    }
    let setup = CallSetup {
        a,
        a_tx: tx.clone(),
        b,
        b_invite,
        lease: admission.lease,
        cdr: d,
        max_call: std::time::Duration::from_secs(trunk.max_call_secs),
        media,
        offer_payloads,
        alternates,
    };
    tokio::spawn(Call::run(ctx.clone(), setup, inbox_rx).instrument(span));
}
