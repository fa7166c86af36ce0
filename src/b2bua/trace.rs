//! The call's side of the SIP trace (`sip::trace`): a new INVITE starts its capture, its
//! attempt claims it, the B leg joins it, the CDR's submission finishes it. Received messages
//! are offered here (the dispatcher has the bytes as read); the interfaces offer what they send.

use super::Ctx;
use crate::model::{Attempt, Cdr, Side, TraceDirection};
use crate::sip::trace::Crossed;
use crate::sip::transport::{Peer, Proto};

impl Ctx {
    fn local_addr(&self, side: Side) -> std::net::SocketAddr {
        match side {
            Side::Inside => self.settings.inside_addr,
            Side::Outside => self.settings.outside_addr,
        }
    }

    fn received<'a>(&self, side: Side, peer: Peer, raw: &'a [u8]) -> Crossed<'a> {
        Crossed {
            side,
            direction: TraceDirection::In,
            // Over TLS the message came to the TLS listener's address.
            local: match peer.proto {
                Proto::Tls => self.layer.interfaces().get(side).addr_for(Proto::Tls),
                Proto::Udp | Proto::Tcp => self.local_addr(side),
            },
            peer,
            bytes: raw,
        }
    }

    /// A message from a configured peer, as read: kept when its Call-ID is a traced call's.
    pub(crate) fn trace_received(&self, side: Side, peer: Peer, raw: &[u8]) {
        if let Some(traces) = &self.settings.traces {
            traces.record(self.received(side, peer, raw));
        }
    }

    /// A new INVITE (no To tag) with this Call-ID: its capture starts, before anything is sent
    /// back. True when this started one (see `trace_abandon`).
    pub(crate) fn trace_begin(&self, side: Side, peer: Peer, call_id: &str, raw: &[u8]) -> bool {
        self.settings
            .traces
            .as_ref()
            .is_some_and(|t| t.begin(self.received(side, peer, raw), call_id))
    }

    /// Undo `trace_begin` for an INVITE that became no call (a retransmission absorbed).
    pub(crate) fn trace_abandon(&self, side: Side, call_id: &str) {
        if let Some(traces) = &self.settings.traces {
            traces.abandon(side, call_id);
        }
    }

    /// The attempt takes the capture of its INVITE's Call-ID.
    pub(crate) fn trace_claim(&self, side: Side, attempt: &Attempt) {
        let Some(traces) = &self.settings.traces else {
            return;
        };
        let call_id = match side {
            Side::Inside => attempt.inside_call_id.as_deref(),
            Side::Outside => attempt.outside_call_id.as_deref(),
        };
        if let Some(call_id) = call_id {
            traces.claim(side, call_id, &attempt.id);
        }
    }

    /// The B leg (its own Call-ID) joins the A leg's capture.
    pub(crate) fn trace_join(&self, a: (Side, &str), b: (Side, &str)) {
        if let Some(traces) = &self.settings.traces {
            traces.join(a.0, a.1, b.0, b.1);
        }
    }

    /// At the answer: the call's trace so far is stored, so that a crash during the
    /// conversation keeps its setup (the final trace replaces it).
    pub(crate) fn trace_checkpoint(&self, side: Side, call_id: &str) {
        if let Some(traces) = &self.settings.traces {
            traces.checkpoint(side, call_id);
        }
    }

    /// Submit a final CDR; its call's capture finishes (stored after a short linger).
    pub(crate) fn submit_cdr(&self, cdr: Cdr) {
        if let Some(traces) = &self.settings.traces {
            let a = &cdr.attempt;
            traces.finish(
                &a.id,
                &[
                    (Side::Inside, a.inside_call_id.as_deref()),
                    (Side::Outside, a.outside_call_id.as_deref()),
                ],
            );
        }
        self.cdrs.submit(cdr);
    }
}
