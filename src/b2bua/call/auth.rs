//! Answering the carrier's Digest challenges (RFC 3261 §22.2/§22.3) for what the call sends
//! toward the outside: the initial INVITE, re-INVITEs and UPDATEs relayed there, and BYE.
//!
//! A 401/407 is the gateway's business, not the PBX's: the request is sent again with the
//! trunk's credentials (same Call-ID and tags, next CSeq, new branch); a second challenge for
//! the same request (unless it only says the nonce went stale), no credentials, or a realm not
//! ours to answer ends it — the PBX sees `403 Forbidden` and the CDR `carrier_auth_failed`,
//! never the carrier's challenge. The ACK for a 2xx carries the credentials of the INVITE it
//! acknowledges (§13.2.2.4). Nothing here logs the password.

use std::sync::Arc;

use rsip::headers::UntypedHeader;
use rsip::Header;
use tokio::time::Instant;

use super::{Call, Leg};
use crate::config::Credentials;
use crate::sip::digest;
use crate::sip::message;
use crate::sip::transaction::{ClientEvent, ClientEventKind};
use crate::sip::transport::Side;

/// Further answers to challenges that only say the nonce expired (`stale=true`).
const MAX_STALE: u8 = 2;

/// Why a challenge is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unanswered {
    /// The trunk has no credentials.
    NoCredentials,
    /// No Digest challenge we support (or none of `auth_realm`).
    NoChallenge,
    /// Our credentials were refused: challenged again for the same request.
    Refused,
}

impl Unanswered {
    fn as_str(self) -> &'static str {
        match self {
            Unanswered::NoCredentials => "the trunk has no credentials",
            Unanswered::NoChallenge => "no challenge the trunk can answer",
            Unanswered::Refused => "credentials refused",
        }
    }
}

/// The trunk's credentials and how to use them.
pub(crate) struct Authenticator {
    creds: Arc<Credentials>,
}

impl Authenticator {
    pub(crate) fn new(creds: Arc<Credentials>) -> Authenticator {
        Authenticator { creds }
    }

    /// The credentials header answering the challenge of `resp` (a 401/407 to `req`), when
    /// `tries` answers were given in this chain already.
    fn answer(
        &self,
        req: &rsip::Request,
        resp: &rsip::Response,
        tries: u8,
    ) -> Result<Header, Unanswered> {
        let all = digest::challenges(resp);
        let ch = digest::pick(&all, self.creds.realm.as_deref()).ok_or(Unanswered::NoChallenge)?;
        if tries > 0 && !(ch.stale && tries <= MAX_STALE) {
            return Err(Unanswered::Refused);
        }
        let uri = req.uri.to_string();
        let cnonce = digest::new_cnonce();
        let value = digest::credentials(
            &ch,
            &digest::Request {
                username: &self.creds.username,
                password: self.creds.password.expose(),
                method: message::method_name(&req.method),
                uri: &uri,
                body: &req.body,
                cnonce: &cnonce,
                nc: 1,
            },
        );
        tracing::info!(
            realm = %ch.realm,
            algorithm = ch.algorithm.name(),
            stale = ch.stale,
            method = %req.method,
            "answering the carrier's challenge"
        );
        Ok(digest::header(ch.kind, value))
    }
}

/// `req` again with `credentials`: a new branch, CSeq `cseq`, earlier credentials replaced.
fn reissue(leg: &Leg, req: &rsip::Request, cseq: u32, credentials: Header) -> rsip::Request {
    let mut out = req.clone();
    let branch = message::new_branch();
    let mut via_done = false;
    out.headers.retain(|h| !digest::is_credentials(h));
    for h in out.headers.iter_mut() {
        match h {
            Header::Via(_) if !via_done => {
                *h = Header::Via(rsip::headers::Via::new(leg.via(&branch)));
                via_done = true;
            }
            Header::CSeq(_) => {
                *h = Header::CSeq(rsip::headers::CSeq::new(format!(
                    "{cseq} {}",
                    message::method_name(&req.method)
                )))
            }
            _ => {}
        }
    }
    out.headers.push(credentials);
    out
}

/// The credential headers a request carries (copied onto the ACK of its 2xx).
pub(super) fn credentials_of(req: &rsip::Request) -> Vec<Header> {
    req.headers
        .iter()
        .filter(|h| digest::is_credentials(h))
        .cloned()
        .collect()
}

/// A BYE toward the carrier whose answer may be a challenge.
pub(super) struct PendingBye {
    side: Side,
    req: rsip::Request,
    tries: u8,
}

impl Call {
    /// Whether the requests this call sends on `side` answer challenges at all: only toward
    /// the carrier (a PBX's challenge is not ours to answer with the carrier's credentials).
    fn authenticator(&self, side: Side) -> Option<&Authenticator> {
        (side == Side::Outside)
            .then_some(self.auth.as_ref())
            .flatten()
    }

    /// B answered our INVITE 401/407: send it again with credentials. False when it must not
    /// be (the call then fails `carrier_auth_failed`).
    pub(super) fn answer_invite_challenge(&mut self, resp: &rsip::Response) -> bool {
        let Some(req) = self.b_invite.clone() else {
            return false;
        };
        let tries = self.b_auth_tries;
        let answered = match self.authenticator(self.b.side) {
            None => Err(Unanswered::NoCredentials),
            Some(auth) => auth.answer(&req, resp, tries),
        };
        let credentials = match answered {
            Ok(h) => h,
            Err(why) => {
                tracing::warn!(
                    status = resp.status_code.code(),
                    why = why.as_str(),
                    "carrier authentication failed"
                );
                return false;
            }
        };
        self.b.invite_cseq += 1;
        self.b.local_cseq = self.b.local_cseq.max(self.b.invite_cseq);
        let out = reissue(&self.b, &req, self.b.invite_cseq, credentials);
        self.b_auth_tries = tries + 1;
        self.b_invite = Some(out.clone());
        self.journal();
        self.b_key =
            self.ctx
                .layer
                .send_request(self.b.side, self.b.peer, out, self.events_tx.clone());
        true
    }

    /// An in-dialog request we sent on `side` (`req`, `tries` answers so far) was challenged:
    /// the same request with credentials, sent, and its new transaction key; Err when it must
    /// not be answered.
    pub(super) fn answer_dialog_challenge(
        &mut self,
        side: Side,
        req: &rsip::Request,
        resp: &rsip::Response,
        tries: u8,
    ) -> Result<(rsip::Request, Option<crate::sip::transaction::ClientKey>), Unanswered> {
        let credentials = match self.authenticator(side) {
            None => Err(Unanswered::NoCredentials),
            Some(auth) => auth.answer(req, resp, tries),
        }
        .inspect_err(|why| {
            tracing::warn!(method = %req.method, status = resp.status_code.code(), why = why.as_str(), "carrier authentication failed");
        })?;
        let events = self.events_tx.clone();
        let leg = self.leg_mut(side);
        leg.local_cseq = leg.local_cseq.wrapping_add(1);
        let out = reissue(leg, req, leg.local_cseq, credentials);
        let peer = leg.peer;
        let key = self.ctx.layer.send_request(side, peer, out.clone(), events);
        Ok((out, key))
    }

    /// A BYE just sent on `side`: kept while its answer may be a challenge to answer.
    pub(super) fn track_bye(
        &mut self,
        side: Side,
        req: rsip::Request,
        key: Option<crate::sip::transaction::ClientKey>,
        tries: u8,
    ) {
        let (Some(key), Some(_)) = (key, self.authenticator(side)) else {
            return;
        };
        self.byes.insert(key, PendingBye { side, req, tries });
        let deadline = Instant::now() + self.ctx.layer.timers().timeout();
        self.bye_deadline = Some(self.bye_deadline.map_or(deadline, |d| d.max(deadline)));
    }

    /// The answer to a BYE we track: a challenge is answered once; anything final ends it.
    pub(super) fn on_bye_event(&mut self, ev: ClientEvent) {
        let Some(bye) = self.byes.remove(&ev.key) else {
            return;
        };
        let resp = match ev.kind {
            ClientEventKind::Timeout | ClientEventKind::TransportFailed(_) => return,
            ClientEventKind::Response(r) => r,
        };
        let code = resp.status_code.code();
        if code < 200 {
            self.byes.insert(ev.key, bye);
            return;
        }
        if code == 401 || code == 407 {
            if let Ok((req, key)) =
                self.answer_dialog_challenge(bye.side, &bye.req, &resp, bye.tries)
            {
                self.track_bye(bye.side, req, key, bye.tries + 1);
            }
        }
        if self.byes.is_empty() {
            self.bye_deadline = None;
        }
    }
}
