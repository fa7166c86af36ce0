//! A new INVITE: admission by policy, then the two legs and the call task — or a refusal with
//! its SIP response and its CDR.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::call::setup::{self, Presented};
use super::call::{Call, CallMedia, CallSetup, Leg};
use super::new_attempt::{new_attempt, trunk_of, user_of};
use super::refusal::{offer_refusal, refuse, Refused};
use super::registry::{CallMsg, LiveCall};
use super::Ctx;
use crate::config::{MediaEncryption, TransportKind};
use crate::media::sdp;
use crate::model::{Attempt, Direction, RefusalReason, StatusLine};
use crate::policy::{self, Admission, AdmissionRequest, Decision};
use crate::sip::message;
use crate::sip::transaction::ServerTx;
use crate::sip::transport::{Peer, Proto, Side};
use crate::sip::uri_text::uri_text;

/// Capacity of a call's inbox of in-dialog messages.
const CALL_INBOX: usize = 64;

/// The `media_encryption` of the trunk's inside (PBX) and outside (carrier) legs.
fn encryption_legs(trunk: &policy::TrunkRef) -> [MediaEncryption; 2] {
    [trunk.pbx_media_encryption, trunk.carrier_media_encryption]
}

/// The `media_encryption` of the leg toward `side`.
fn encryption_of(trunk: &policy::TrunkRef, side: Side) -> MediaEncryption {
    encryption_legs(trunk)[match side {
        Side::Inside => 0,
        Side::Outside => 1,
    }]
}

fn proto_of(kind: TransportKind) -> Proto {
    match kind {
        TransportKind::Udp => Proto::Udp,
        TransportKind::Tcp => Proto::Tcp,
        TransportKind::Tls => Proto::Tls,
    }
}

/// A new INVITE: admitted by policy, its legs and media set up and its call task started —
/// or refused, each step saying why. `late`: it waited in the SIP queue past the overload
/// limit, and is refused before anything else (`overload`). Over UDP overload control judged
/// it before it was parsed (`b2bua::shed`); over a stream it is judged here.
pub(super) fn on_invite(ctx: &Arc<Ctx>, tx: ServerTx, late: bool) {
    let (side, peer) = (tx.side(), tx.peer());
    let trunk = trunk_of(ctx, side, peer, tx.request());
    let name = trunk.as_ref().map(|t| t.name.clone());
    let attempt = new_attempt(ctx, side, peer, tx.request(), name);
    if late || (peer.proto != Proto::Udp && !ctx.overload.judge()) {
        ctx.overload.count_refusal();
        let refused = Refused::by_gateway(ctx, RefusalReason::Overload);
        return refuse(ctx, &tx, attempt, refused);
    }
    let Some(trunk) = trunk else {
        // The dispatcher checked the source; a trunk removed meanwhile lands here.
        let refused = Refused::by_gateway(ctx, RefusalReason::UnknownSource);
        return refuse(ctx, &tx, attempt, refused);
    };
    if !ctx.admitting() {
        let refused = Refused::by_gateway(ctx, RefusalReason::ShuttingDown);
        return refuse(ctx, &tx, attempt, refused);
    }
    if ctx.over_capacity() {
        let refused = Refused::by_gateway(ctx, RefusalReason::DescriptorLimit);
        return refuse(ctx, &tx, attempt, refused);
    }
    if let Some(reason) = offer_refusal(tx.request(), &attempt, encryption_of(&trunk, side)) {
        let refused = Refused::by_gateway(ctx, reason);
        return refuse(ctx, &tx, attempt, refused);
    }
    let asking = std::time::Instant::now();
    match &ctx.settings.cluster {
        None => {
            let decision = ctx
                .policy
                .admit(&asked(&trunk, &tx, &attempt).request(), now());
            ctx.admission_times.record(asking.elapsed());
            admitted(ctx, trunk, tx, attempt, decision);
        }
        // The shared state answers over the network: the rest of the INVITE waits in its own
        // task (the transaction layer absorbs retransmissions meanwhile).
        Some(shared) => {
            let (ctx, shared) = (Arc::clone(ctx), shared.clone());
            spawn_started(async move {
                let decision = {
                    let asked = asked(&trunk, &tx, &attempt);
                    let policy = &ctx.policy;
                    policy
                        .admit_in_cluster(&shared, &asked.request(), now())
                        .await
                };
                ctx.admission_times.record(asking.elapsed());
                admitted(&ctx, trunk, tx, attempt, decision);
            });
        }
    }
}

/// Run `task` on the runtime, polled once here first, so that its first step happens now: for
/// a cluster node's admission, the request written to Redis. Spawned only, the task first runs
/// when a worker gets to it, which under load is after the receive loop has drained its socket
/// (hundreds of microseconds; bench/README.md, session 13), and only then would the request
/// leave. A future may be polled with a new waker each time (the task's own from then on):
/// the first poll's no-op waker is dropped, and the task, scheduled on spawn, polls again.
fn spawn_started<F>(task: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut task = Box::pin(task);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if task.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(task);
    }
}

/// The INVITE judged: refused, or on to its legs, media and call task.
fn admitted(
    ctx: &Arc<Ctx>,
    trunk: policy::TrunkRef,
    tx: ServerTx,
    mut attempt: Attempt,
    decision: Decision,
) {
    let admission = match settle(&mut attempt, decision) {
        Ok(admission) => admission,
        Err(refused) => return refuse(ctx, &tx, attempt, refused),
    };
    if !ctx.admitting() {
        // The stop began while the shared state was asked: the drain counts no new call.
        drop(admission);
        let refused = Refused::by_gateway(ctx, RefusalReason::ShuttingDown);
        return refuse(ctx, &tx, attempt, refused);
    }
    let side = tx.side();
    let legs = match legs(ctx, &trunk, &tx) {
        Ok(legs) => legs,
        Err(refused) => return refuse(ctx, &tx, attempt, refused),
    };
    let span = tracing::info_span!("call", call_id = %attempt.id, trunk = %trunk.name);
    let mut media = match start_media(ctx, &span, &attempt, encryption_legs(&trunk)) {
        Ok(media) => media,
        Err(refused) => return refuse(ctx, &tx, attempt, refused),
    };
    let Legs {
        a,
        mut b,
        alternates,
    } = legs;
    let req = tx.request();
    let offer_payloads = sdp::parse(&req.body)
        .ok()
        .and_then(|s| s.audio())
        .map(|a| a.payloads)
        .unwrap_or_default();
    media.set_dtmf_commands(crate::media::DtmfCommands::new(
        trunk.pause_dtmf.as_deref(),
        trunk.resume_dtmf.as_deref(),
    ));
    let b_invite = anchored_b_invite(req, &mut b, &mut media);
    match side {
        Side::Inside => attempt.outside_call_id = Some(b.call_id.clone()),
        Side::Outside => attempt.inside_call_id = Some(b.call_id.clone()),
    }
    let Some(inbox) = register(ctx, &trunk, &attempt, &a, &b, &media) else {
        // Same Call-ID already live on this side, under a new branch: a loop or a broken peer.
        let refused = Refused::by_gateway(ctx, RefusalReason::DuplicateCallId);
        return refuse(ctx, &tx, attempt, refused);
    };
    ctx.trace_join((a.side, &a.call_id), (b.side, &b.call_id));
    let setup = CallSetup {
        a,
        a_tx: tx.clone(),
        b,
        b_invite,
        lease: admission.lease,
        attempt,
        max_call: std::time::Duration::from_secs(trunk.max_call_secs),
        media,
        offer_payloads,
        alternates,
        credentials: trunk.credentials(),
    };
    tokio::spawn(Call::run(ctx.clone(), setup, inbox).instrument(span));
}

fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}

/// What the policy is asked about an INVITE (borrowing from it and the attempt).
struct Asked<'r> {
    trunk: &'r str,
    from_uri: String,
    pai: Option<String>,
    privacy: Option<&'r str>,
    callee_uri: String,
    direction: Direction,
}

impl Asked<'_> {
    fn request(&self) -> AdmissionRequest<'_> {
        AdmissionRequest {
            trunk: self.trunk,
            direction: self.direction,
            from_uri: &self.from_uri,
            pai_uri: self.pai.as_deref(),
            privacy: self.privacy,
            callee_uri: &self.callee_uri,
        }
    }
}

fn asked<'r>(trunk: &'r policy::TrunkRef, tx: &'r ServerTx, attempt: &Attempt) -> Asked<'r> {
    let req = tx.request();
    Asked {
        trunk: &trunk.name,
        from_uri: message::from_uri(req)
            .map(|u| uri_text(&u))
            .unwrap_or_default(),
        pai: message::other_header(&req.headers, "P-Asserted-Identity")
            .map(|v| message::uri_in_name_addr(v).to_string()),
        privacy: message::other_header(&req.headers, "Privacy"),
        callee_uri: uri_text(&req.uri),
        direction: attempt.direction,
    }
}

/// The policy's answer on the attempt: its numbers, and an admitted call's concurrency.
fn settle(attempt: &mut Attempt, decision: Decision) -> Result<Admission, Refused> {
    let (caller, callee) = match &decision {
        Decision::Refuse(r) => (r.caller.clone(), r.callee.clone()),
        Decision::Admit(a) => (a.caller.clone(), a.callee.clone()),
    };
    attempt.caller = caller.or(attempt.caller.take());
    attempt.callee = callee.or(attempt.callee.take());
    let admission = match decision {
        Decision::Refuse(r) => return Err(Refused::by_policy(&r)),
        Decision::Admit(a) => a,
    };
    attempt.trunk_active = Some(admission.lease.trunk_active_at_grant());
    // The lease's line is the caller ID outbound, the called number inbound.
    if attempt.direction == Direction::Outbound {
        attempt.caller_active = Some(admission.lease.number_active_at_grant());
    }
    Ok(admission)
}

/// The two legs of an admitted call: A toward whoever sent the INVITE, B toward the carrier
/// (outbound, with the trunk's further carrier addresses to fail over to) or the PBX.
struct Legs {
    a: Leg,
    b: Leg,
    alternates: Vec<Peer>,
}

fn legs(ctx: &Ctx, trunk: &policy::TrunkRef, tx: &ServerTx) -> Result<Legs, Refused> {
    let (side, peer, req) = (tx.side(), tx.peer(), tx.request());
    let (local, other_local) = match side {
        Side::Inside => (ctx.settings.inside_addr, ctx.settings.outside_addr),
        Side::Outside => (ctx.settings.outside_addr, ctx.settings.inside_addr),
    };
    // Over TLS a leg names the TLS listener's address, where there is one.
    let ifaces = ctx.layer.interfaces();
    let local = match peer.proto {
        Proto::Tls => ifaces.get(side).addr_for(Proto::Tls),
        _ => local,
    };
    let carrier = |addr: &std::net::SocketAddr| Peer {
        addr: *addr,
        proto: proto_of(trunk.carrier_transport),
    };
    let (target, alternates) = match side {
        Side::Inside => match trunk.carrier.split_first() {
            Some((first, rest)) => (carrier(first), rest.iter().map(carrier).collect()),
            None => return Err(Refused::by_gateway(ctx, RefusalReason::NoCarrier)),
        },
        Side::Outside => (
            Peer {
                addr: trunk.inbound_to,
                proto: proto_of(trunk.pbx_transport),
            },
            Vec::new(),
        ),
    };
    let Some(a) = setup::a_leg(req, side, peer, local) else {
        return Err(Refused::by_gateway(ctx, RefusalReason::InvalidRequest));
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
    let other_local = match target.proto {
        Proto::Tls => ifaces.get(side.other()).addr_for(Proto::Tls),
        _ => other_local,
    };
    let sips = side == Side::Inside && trunk.tls_sips_uri;
    let Some(b) = setup::b_leg(side.other(), target, other_local, &presented, sips) else {
        return Err(Refused::by_gateway_as(
            RefusalReason::InvalidNumber,
            StatusLine::ADDRESS_INCOMPLETE,
        ));
    };
    Ok(Legs { a, b, alternates })
}

/// The call's media ports and relay, started inside the call's span (the relay's tasks
/// inherit it).
fn start_media(
    ctx: &Ctx,
    span: &tracing::Span,
    attempt: &Attempt,
    encryption: [MediaEncryption; 2],
) -> Result<CallMedia, Refused> {
    let _in_call = span.enter();
    CallMedia::start(&ctx.settings.media, encryption).map_err(|e| {
        tracing::error!(call_id = %attempt.id, error = %e, "no media ports");
        Refused::by_gateway(ctx, RefusalReason::MediaUnavailable)
    })
}

/// The INVITE toward B, its session description anchored on our media ports.
fn anchored_b_invite(req: &rsip::Request, b: &mut Leg, media: &mut CallMedia) -> rsip::Request {
    let mut b_invite = setup::b_invite(req, b);
    if !req.body.is_empty() {
        let ct = message::content_type(&req.headers);
        // Checked at admission (`sdp::check_offer`): it parses, so it anchors.
        b_invite.body = media
            .rewrite(b.side.other(), sdp::Exchange::Offer, ct, &req.body)
            .unwrap_or_default();
        if b_invite.body.is_empty() {
            b_invite
                .headers
                .retain(|h| !matches!(h, rsip::Header::ContentType(_)));
        }
    }
    b_invite
}

/// The call in the registry under both legs' Call-IDs; `None` when A's Call-ID is live
/// already on its side.
fn register(
    ctx: &Ctx,
    trunk: &policy::TrunkRef,
    attempt: &Attempt,
    a: &Leg,
    b: &Leg,
    media: &CallMedia,
) -> Option<mpsc::Receiver<CallMsg>> {
    let (inbox_tx, inbox_rx) = mpsc::channel(CALL_INBOX);
    let live = LiveCall {
        id: attempt.id.clone(),
        trunk: trunk.name.clone(),
        direction: attempt.direction,
        caller: attempt.caller.clone(),
        callee: attempt.callee.clone(),
        started_at: attempt.invite_at,
        inside_call_id: attempt.inside_call_id.clone().unwrap_or_default(),
        outside_call_id: attempt.outside_call_id.clone().unwrap_or_default(),
        answered_at: None,
    };
    ctx.registry
        .insert(
            live,
            (a.side, a.call_id.clone()),
            (b.side, b.call_id.clone()),
            inbox_tx,
            Some(media.live()),
        )
        .then_some(inbox_rx)
}
