//! Late responses to the INVITEs a restart cancelled: the peer's transaction outlived our
//! process, so its final response reaches no transaction and no call. A non-2xx (the 487 of
//! the CANCEL) is acknowledged as its transaction expects (§17.1.1.3); a 2xx — the peer
//! answered before the CANCEL arrived, maybe while we were down — is acknowledged and the
//! dialog it made ended with a BYE (as §13.2.2.4 does for a 2xx the UAC does not want).

use std::collections::HashMap;

use parking_lot::Mutex;
use rsip::Method;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::b2bua::call::Leg;
use crate::model::{EndReason, Side};
use crate::sip::message;
use crate::sip::transaction::{ack_for, ClientEvent, TransactionLayer};

/// INVITEs cancelled by a restart, by Call-ID; only filled in the first 64·T1 after a
/// restart, and never with more entries than the journal held.
#[derive(Default)]
pub(crate) struct LateResponses {
    expected: Mutex<HashMap<String, Expected>>,
}

struct Expected {
    /// The leg we had sent the INVITE on, as journaled.
    leg: Leg,
    invite: rsip::Request,
    until: Instant,
    /// A 2xx came and its dialog got a BYE: retransmissions only get the ACK again.
    ended: bool,
    /// Why the call was cut off (the BYE's Reason).
    reason: EndReason,
    events: mpsc::Sender<Box<ClientEvent>>,
}

impl LateResponses {
    /// Until `until`, a final response to `invite` (sent on `leg`) is handled here; a BYE it
    /// causes reports on `events`.
    pub fn watch_for(
        &self,
        leg: Leg,
        invite: rsip::Request,
        until: Instant,
        reason: EndReason,
        events: mpsc::Sender<Box<ClientEvent>>,
    ) {
        self.expected.lock().insert(
            leg.call_id.clone(),
            Expected {
                leg,
                invite,
                until,
                ended: false,
                reason,
                events,
            },
        );
    }

    /// Some INVITE is still expected to draw a late response.
    pub fn any(&self) -> bool {
        !self.expected.lock().is_empty()
    }

    /// Stop expecting responses to the INVITEs of these Call-IDs (a run of the restart is over;
    /// another may still wait for its own).
    pub fn forget(&self, call_ids: &[String]) {
        let mut map = self.expected.lock();
        for id in call_ids {
            map.remove(id);
        }
    }

    /// Handle a response no transaction or call took, if it answers a cancelled INVITE;
    /// otherwise hand it back.
    pub fn on_response(
        &self,
        layer: &TransactionLayer,
        side: Side,
        resp: rsip::Response,
    ) -> Option<rsip::Response> {
        let mut map = self.expected.lock();
        if map.is_empty() {
            return Some(resp);
        }
        let now = Instant::now();
        map.retain(|_, e| e.until > now);
        let Some(call_id) = message::call_id(&resp) else {
            return Some(resp);
        };
        let Some(e) = map.get_mut(call_id) else {
            return Some(resp);
        };
        let answers_invite = message::cseq(&resp)
            .is_some_and(|(seq, m)| m == Method::Invite && seq == e.leg.invite_cseq);
        if e.leg.side != side || !answers_invite {
            return Some(resp);
        }
        let (code, _) = message::status_parts(&resp.status_code);
        let peer = e.leg.peer;
        match code {
            0..=199 => {}
            200..=299 => {
                let mut leg = e.leg.clone();
                leg.learn_remote(&resp);
                let ack = leg.request(Method::Ack, Some(leg.invite_cseq), Vec::new(), None);
                layer.send_stateless(side, peer, rsip::SipMessage::Request(ack));
                if !e.ended {
                    e.ended = true;
                    let mut bye = leg.request(Method::Bye, None, Vec::new(), None);
                    bye.headers.push(super::hangup::reason_header(e.reason));
                    tracing::warn!(call_id = %leg.call_id, %side, %peer, "late 2xx to an INVITE cancelled by the restart: acknowledged and ended with BYE");
                    layer.send_request(side, peer, bye, e.events.clone());
                }
            }
            _ => {
                let ack = ack_for(&e.invite, &resp);
                layer.send_stateless(side, peer, rsip::SipMessage::Request(ack));
            }
        }
        None
    }
}
