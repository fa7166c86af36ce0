//! What the journal keeps of a call's dialogs so that, after a crash, the next start can end
//! them: per leg the dialog state of RFC 3261 §12 (Call-ID, tags, remote target, route set,
//! local CSeq, and where the peer is), and for a leg still being set up what its CANCEL
//! (§9.1) or its final response (§8.2.6) needs. Written as JSON in `call_journal.dialogs_json`.

use rsip::headers::UntypedHeader;
use rsip::{Header, Method};
use serde::{Deserialize, Serialize};

use crate::b2bua::call::Leg;
use crate::sip::response::Echo;

/// The legs of one call that a peer may still hold: at most two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DialogRecord {
    pub legs: Vec<LegRecord>,
}

/// Where a leg stood when it was journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum LegState {
    /// We sent the INVITE and had no final response: the INVITE's Request-URI, top Via (its
    /// branch names the transaction) and To, for a CANCEL and for the ACK of a late response.
    Inviting {
        uri: String,
        via: String,
        to: String,
    },
    /// We received the INVITE and sent no final response: its Via values, in order, for one.
    Invited { vias: Vec<String> },
    /// A 2xx was exchanged: the dialog is confirmed and ends with a BYE.
    Confirmed,
}

/// A leg and where it stood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LegRecord {
    #[serde(flatten)]
    pub leg: Leg,
    #[serde(flatten)]
    pub state: LegState,
}

impl LegState {
    /// What ends a leg in this state, for the log.
    pub fn ending(&self) -> &'static str {
        match self {
            LegState::Confirmed => "BYE",
            LegState::Inviting { .. } => "CANCEL",
            LegState::Invited { .. } => "final response",
        }
    }
}

impl DialogRecord {
    /// None only if serde cannot encode it, which these types never cause.
    pub fn encode(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }

    pub fn decode(json: &str) -> Result<DialogRecord, serde_json::Error> {
        serde_json::from_str(json)
    }
}

impl crate::store::DialogsJson for DialogRecord {
    fn json(&self) -> Option<String> {
        self.encode()
    }
}

impl LegRecord {
    pub fn new(leg: &Leg, state: LegState) -> LegRecord {
        LegRecord {
            leg: leg.clone(),
            state,
        }
    }

    /// The `Inviting` state of a leg whose INVITE is `invite`.
    pub fn inviting(invite: &rsip::Request) -> Option<LegState> {
        let via = invite.headers.iter().find_map(|h| match h {
            Header::Via(v) => Some(v.value().to_string()),
            _ => None,
        })?;
        let to = invite.headers.iter().find_map(|h| match h {
            Header::To(t) => Some(t.value().to_string()),
            _ => None,
        })?;
        Some(LegState::Inviting {
            uri: crate::sip::uri_text::uri_text(&invite.uri),
            via,
            to,
        })
    }

    /// The `Invited` state of a leg whose INVITE we received as `invite`.
    pub fn invited(invite: &rsip::Request) -> LegState {
        LegState::Invited {
            vias: invite
                .headers
                .iter()
                .filter_map(|h| match h {
                    Header::Via(v) => Some(v.value().to_string()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The INVITE we sent on an `Inviting` leg, as far as its CANCEL and ACK need it.
    pub fn invite_sent(&self) -> Option<rsip::Request> {
        let LegState::Inviting { uri, via, to } = &self.state else {
            return None;
        };
        let leg = &self.leg;
        let mut h = rsip::Headers::default();
        h.push(Header::Via(rsip::headers::Via::new(via.clone())));
        for r in &leg.route_set {
            h.push(Header::Route(rsip::headers::Route::new(r.clone())));
        }
        h.push(Header::From(rsip::headers::From::new(
            leg.local_hdr.clone(),
        )));
        h.push(Header::To(rsip::headers::To::new(to.clone())));
        h.push(Header::CallId(rsip::headers::CallId::new(
            leg.call_id.clone(),
        )));
        h.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{} INVITE",
            leg.invite_cseq
        ))));
        Some(rsip::Request {
            method: Method::Invite,
            uri: crate::sip::message::parse_uri(uri)?,
            version: rsip::Version::V2,
            headers: h,
            body: Vec::new(),
        })
    }

    /// A final response to the INVITE of an `Invited` leg, with `extra` headers.
    pub fn final_response(
        &self,
        code: u16,
        reason: &str,
        extra: Vec<Header>,
    ) -> Option<rsip::Response> {
        let LegState::Invited { vias } = &self.state else {
            return None;
        };
        let leg = &self.leg;
        let echo = Echo {
            vias: vias.clone(),
            from: Some(leg.remote_hdr.clone()),
            // Our To already carries our tag.
            to: Some(leg.local_hdr.clone()),
            call_id: Some(leg.call_id.clone()),
            cseq: Some(format!("{} INVITE", leg.invite_cseq)),
        };
        Some(echo.build(code, reason, None, extra))
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
