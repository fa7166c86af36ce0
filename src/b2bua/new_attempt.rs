//! The attempt every new INVITE starts with: what its CDR begins from, and its trunk.

use chrono::Utc;

use super::call_id::new_call_id;
use super::Ctx;
use crate::model::{normalize_number, Attempt};
use crate::policy;
use crate::sip::message;
use crate::sip::transport::{Peer, Side};
use crate::sip::uri_text::uri_text;

pub(super) fn user_of(uri: &rsip::Uri) -> String {
    uri.user().unwrap_or_default().to_string()
}

/// The attempt every INVITE starts with; the attempt is counted.
pub(super) fn new_attempt(
    ctx: &Ctx,
    side: Side,
    peer: Peer,
    req: &rsip::Request,
    trunk: Option<String>,
) -> Attempt {
    let from = message::from_uri(req);
    let attempt = attempt_of(
        ctx,
        side,
        peer,
        trunk,
        InviteFields {
            call_id: message::call_id(req).map(str::to_string),
            caller: from.as_ref().and_then(|u| normalize_number(&uri_text(u))),
            callee: normalize_number(&uri_text(&req.uri)),
            presented_from: from.as_ref().map(user_of),
            pai: message::other_header(&req.headers, "P-Asserted-Identity").map(str::to_string),
        },
    );
    ctx.trace_claim(side, &attempt);
    attempt
}

/// What an attempt takes from its INVITE, parsed (`new_attempt`) or scanned (`shed`).
pub(super) struct InviteFields {
    pub call_id: Option<String>,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub presented_from: Option<String>,
    pub pai: Option<String>,
}

/// A new INVITE's attempt, counted: one place for what every attempt's CDR starts from.
pub(super) fn attempt_of(
    ctx: &Ctx,
    side: Side,
    peer: Peer,
    trunk: Option<String>,
    invite: InviteFields,
) -> Attempt {
    let direction = side.direction_of_invite();
    ctx.attempts.count(trunk.as_deref(), direction);
    let now = Utc::now();
    let (inside_call_id, outside_call_id) = match side {
        Side::Inside => (invite.call_id, None),
        Side::Outside => (None, invite.call_id),
    };
    Attempt {
        id: new_call_id(now),
        inside_call_id,
        outside_call_id,
        trunk,
        direction,
        source: peer.addr.to_string(),
        caller: invite.caller,
        callee: invite.callee,
        presented_from: invite.presented_from,
        pai: invite.pai,
        invite_at: now,
        ringing_at: None,
        answer_at: None,
        trunk_active: None,
        caller_active: None,
        node: ctx.settings.node.clone(),
    }
}

/// The trunk a new call belongs to: by the PBX's address, or by the carrier's address and the
/// called number (several trunks may share one carrier).
pub(super) fn trunk_of(
    ctx: &Ctx,
    side: Side,
    peer: Peer,
    req: &rsip::Request,
) -> Option<policy::TrunkRef> {
    match side {
        Side::Inside => ctx.policy.pbx_trunk(peer.addr.ip()),
        Side::Outside => ctx.policy.inbound_trunk(peer.addr, &uri_text(&req.uri)),
    }
}
