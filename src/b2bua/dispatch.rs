//! From the sockets to the calls: source check, request validation, transaction matching,
//! and routing to a new or live call.

use std::net::SocketAddr;
use std::time::Duration;

use rsip::headers::UntypedHeader;
use rsip::Method;

use super::registry::CallMsg;
use super::{B2bua, Ctx};
use crate::config::UnknownSources;
use crate::model::{RefusalReason, StatusLine};
use crate::sip::flood::Verdict;
use crate::sip::frontend::Parsed;
use crate::sip::message;
use crate::sip::response::response_for;
use crate::sip::transaction::Received;
use crate::sip::transport::{Handler, Peer, Side, TlsClientSpec};
use crate::sip::validate;

impl Handler for B2bua {
    fn accept_peer(&self, side: Side, addr: SocketAddr) -> bool {
        if self
            .ctx
            .settings
            .flood
            .is_banned(addr.ip(), std::time::Instant::now())
        {
            return false;
        }
        self.ctx.known_source(side, addr)
            || self.ctx.settings.unknown_sources == UnknownSources::Reject
    }

    fn admit(&self, side: Side, addr: SocketAddr, request: bool) -> bool {
        let flood = &self.ctx.settings.flood;
        let now = std::time::Instant::now();
        let peer_cps = self.ctx.peer_max_cps(side, addr);
        // A peer's responses answer our own requests: not counted. Anything else is.
        if !request && peer_cps.is_some() {
            return !flood.is_banned(addr.ip(), now);
        }
        // The guard logs the ban itself.
        flood.check(addr.ip(), flood.budget(peer_cps), now) == Verdict::Pass
    }

    fn tls_client(&self, side: Side, addr: SocketAddr) -> Option<TlsClientSpec> {
        self.ctx.tls_client(side, addr)
    }

    fn on_connect_failed(&self, side: Side, peer: Peer, why: &str) {
        self.ctx.layer.transport_failed(side, peer, why);
    }

    fn screen(&self, side: Side, peer: Peer, raw: &[u8], queued: Duration) -> bool {
        self.ctx.screen(side, peer, raw, queued)
    }

    fn on_message(&self, side: Side, peer: Peer, parsed: Parsed, raw: &[u8], queued: Duration) {
        // Observed in `screen` (UDP); an INVITE `screen` could not read is judged here.
        let late = self.ctx.overload.is_late(queued);
        // A registrar that is none of the carrier addresses answers our REGISTERs (only those:
        // the transaction layer matches a response to a branch we made, or drops it).
        let registrar = side == Side::Outside
            && matches!(parsed, Parsed::Message(rsip::SipMessage::Response(_)))
            && self.ctx.policy.is_registrar(peer.addr);
        let known = self.ctx.known_source(side, peer.addr) || registrar;
        if !known && self.ctx.settings.unknown_sources == UnknownSources::Drop {
            tracing::debug!(%side, %peer, "message from unknown source dropped");
            return;
        }
        if known {
            self.ctx.trace_received(side, peer, raw);
        }
        match parsed {
            Parsed::Drop(why) => tracing::debug!(%side, %peer, why, "message dropped"),
            Parsed::Reject(rejection) => {
                tracing::info!(%side, %peer, status = rejection.status, reason = %rejection.reason, "malformed message refused");
                if known && rejection.initial_invite {
                    if let Some(call_id) = rejection.response.as_ref().and_then(message::call_id) {
                        self.ctx.trace_begin(side, peer, call_id, raw);
                    }
                    super::refusal::record_malformed(&self.ctx, side, peer, &rejection);
                }
                if let Some(resp) = rejection.response {
                    self.ctx
                        .layer
                        .send_stateless(side, peer, rsip::SipMessage::Response(resp));
                }
            }
            Parsed::Message(rsip::SipMessage::Response(resp)) => {
                if !known {
                    return;
                }
                if let Some(stray) = self.ctx.layer.on_response(side, resp) {
                    // A late answer to an INVITE a restart cancelled belongs to no call.
                    let Some(stray) = self.ctx.late.on_response(&self.ctx.layer, side, stray)
                    else {
                        return;
                    };
                    if let Some(call_id) = message::call_id(&stray).map(str::to_string) {
                        self.ctx.registry.route(
                            side,
                            &call_id,
                            CallMsg::StrayResponse(Box::new(stray), side),
                        );
                    }
                }
            }
            Parsed::Message(rsip::SipMessage::Request(req)) => {
                if known {
                    self.ctx.on_request(side, peer, req, raw, late);
                } else if req.method != Method::Ack {
                    // unknown_sources = "reject"
                    let line = RefusalReason::UnknownSource.status_line();
                    let tag = message::random_token(8);
                    let resp = response_for(&req, line.code, line.phrase, Some(&tag));
                    self.ctx
                        .layer
                        .send_stateless(side, peer, rsip::SipMessage::Response(resp));
                    if req.method == Method::Invite && message::to_tag(&req).is_none() {
                        super::refusal::record_unknown_source(&self.ctx, side, peer, &req);
                    }
                }
            }
        }
    }
}

impl Ctx {
    /// How to verify the carrier at `addr` over TLS: the CA file, name and client certificate
    /// of the trunk that names `addr` among its carriers with `carrier_transport = "tls"`.
    fn tls_client(&self, side: Side, addr: SocketAddr) -> Option<TlsClientSpec> {
        if side != Side::Outside {
            return None;
        }
        let trunk = self.policy.tls_carrier_trunk(addr)?;
        Some(TlsClientSpec {
            ca_file: trunk.tls_ca_file.clone()?,
            server_name: trunk
                .tls_server_name
                .clone()
                .unwrap_or_else(|| addr.ip().to_string()),
            client_identity: trunk
                .tls_client_certificate
                .clone()
                .zip(trunk.tls_client_key.clone()),
        })
    }

    /// The call rate (`max_cps`) of the trunk whose peer `addr` is; None for an unknown source.
    fn peer_max_cps(&self, side: Side, addr: SocketAddr) -> Option<f64> {
        match side {
            Side::Inside => self.policy.pbx_trunk(addr.ip()).map(|t| t.max_cps),
            Side::Outside => self.policy.carrier_trunk(addr).map(|t| t.max_cps),
        }
    }

    /// A configured peer: on the inside a PBX of some trunk, on the outside one of its carriers.
    pub(crate) fn known_source(&self, side: Side, addr: SocketAddr) -> bool {
        match side {
            Side::Inside => self.policy.pbx_trunk(addr.ip()).is_some(),
            Side::Outside => self.policy.carrier_trunk(addr).is_some(),
        }
    }

    fn on_request(
        self: &std::sync::Arc<Self>,
        side: Side,
        peer: Peer,
        req: rsip::Request,
        raw: &[u8],
        late: bool,
    ) {
        // A new INVITE's trace starts before the transaction layer answers 100 Trying.
        let new_trace = (req.method == Method::Invite && message::to_tag(&req).is_none())
            .then(|| message::call_id(&req).map(str::to_string))
            .flatten()
            .filter(|call_id| self.trace_begin(side, peer, call_id, raw));
        let abandon = |this: &Self| {
            if let Some(call_id) = &new_trace {
                this.trace_abandon(side, call_id);
            }
        };
        if let Err(refusal) = validate::check_request(&req) {
            if req.method == Method::Ack {
                return;
            }
            let is_new_invite = req.method == Method::Invite && message::to_tag(&req).is_none();
            let mut resp = response_for(
                &req,
                refusal.status,
                &refusal.reason,
                Some(&message::random_token(8)),
            );
            for h in &refusal.headers {
                resp.headers.push(h.clone());
            }
            if is_new_invite {
                super::refusal::record_invalid(
                    self,
                    side,
                    peer,
                    &req,
                    refusal.status,
                    &refusal.reason,
                );
            }
            // Through a server transaction, so retransmissions get the same answer.
            match self.layer.on_request(side, peer, req) {
                Received::New(tx) | Received::Cancel { cancel: tx, .. } => tx.respond(resp),
                _ => abandon(self),
            }
            return;
        }
        let received = self.layer.on_request(side, peer, req);
        if !matches!(received, Received::New(_)) {
            abandon(self);
        }
        match received {
            Received::Absorbed | Received::Unmatchable => {}
            Received::AckForDialog(ack) => {
                if let Some(call_id) = message::call_id(&ack).map(str::to_string) {
                    self.registry
                        .route(side, &call_id, CallMsg::Ack(Box::new(ack), side));
                }
            }
            Received::Cancel { cancel, .. } => {
                let call_id = message::call_id(cancel.request())
                    .unwrap_or_default()
                    .to_string();
                let cancel2 = cancel.clone();
                if !self
                    .registry
                    .route(side, &call_id, CallMsg::Cancel(Box::new(cancel)))
                {
                    let tag = message::random_token(8);
                    cancel2.reply_line(StatusLine::CALL_DOES_NOT_EXIST, Some(&tag));
                }
            }
            Received::New(tx) => {
                let in_dialog = message::to_tag(tx.request()).is_some();
                let method = tx.request().method;
                if in_dialog {
                    let call_id = message::call_id(tx.request())
                        .unwrap_or_default()
                        .to_string();
                    let tx2 = tx.clone();
                    if !self
                        .registry
                        .route(side, &call_id, CallMsg::Request(Box::new(tx)))
                    {
                        tx2.reply_line(StatusLine::CALL_DOES_NOT_EXIST, None);
                    }
                    return;
                }
                match method {
                    Method::Invite => super::new_call::on_invite(self, tx, late),
                    Method::Options => {
                        let ok = StatusLine::OK;
                        let tag = message::random_token(8);
                        let mut resp = response_for(tx.request(), ok.code, ok.phrase, Some(&tag));
                        resp.headers
                            .push(rsip::Header::Allow(rsip::headers::Allow::new(
                                super::call::ALLOW,
                            )));
                        resp.headers
                            .push(rsip::Header::Accept(rsip::headers::Accept::new(
                                "application/sdp",
                            )));
                        tx.respond(resp);
                    }
                    _ => {
                        let tag = message::random_token(8);
                        tx.reply_line(StatusLine::CALL_DOES_NOT_EXIST, Some(&tag));
                    }
                }
            }
        }
    }
}
