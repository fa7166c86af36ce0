//! Overload control's refusals, made from the datagram before it is parsed: a new INVITE from
//! a configured peer that `Overload::screen` refuses gets a stateless `503` built from its own
//! header lines (`sip::shed`), and its attempt a CDR through the batched writer — nothing else:
//! no rsip parse, no transaction, no SIP trace, no log line. What a refusal costs is what the
//! gateway still spends on the excess, so it is kept to a scan, one send and one CDR
//! (bench/README.md, session 11, has the profile).

use std::time::Duration;

use bytes::Bytes;

use super::new_attempt::{attempt_of, InviteFields};
use super::overload::{Overload, Screened};
use super::Ctx;
use crate::model::{normalize_number, Ending, RefusalReason};
use crate::sip::message::uri_in_name_addr;
use crate::sip::shed::{classify, Raw, RawInvite};
use crate::sip::transport::{Peer, Side};

impl Ctx {
    /// A UDP datagram before it is parsed: its queue delay observed, and true when it was a
    /// new INVITE refused here (or the ACK of such a refusal).
    pub(crate) fn screen(&self, side: Side, peer: Peer, raw: &[u8], queued: Duration) -> bool {
        let late = self.overload.observe(side, queued);
        if !self.overload.enabled() {
            return false;
        }
        let invite = match classify(raw) {
            Raw::Other => return false,
            Raw::AckToShed => return true,
            Raw::InitialInvite(invite) => invite,
        };
        // An unknown source is answered (or not) by `unknown_sources`, as any message.
        if !self.known_source(side, peer.addr) {
            return false;
        }
        let key = self
            .overload
            .key(side, invite.call_id, invite.cseq, invite.top_via);
        let first = match self.overload.screen(key, late) {
            Screened::Pass => return false,
            Screened::Refuse => true,
            Screened::RefuseAgain => false,
        };
        self.send_shed(side, peer, &invite, key);
        if first {
            self.overload.count_refusal();
            self.record_shed(side, peer, &invite);
        }
        true
    }

    /// The stateless `503 Overloaded` with `Retry-After`; its tag marks its ACK.
    fn send_shed(&self, side: Side, peer: Peer, invite: &RawInvite<'_>, key: u64) {
        let reason = RefusalReason::Overload;
        let line = reason.status_line();
        let bytes = invite.response(
            line.code,
            line.phrase,
            &Overload::refusal_tag(key),
            reason.retry_after_secs(self.settings.retry_after_secs),
            self.layer.software(),
        );
        self.layer.interfaces().send(side, peer, Bytes::from(bytes));
    }

    /// The refused attempt's CDR, from the fields the scan found (the same a parsed INVITE's
    /// attempt takes: `new_attempt::attempt_of`). Not traced: the CDR says all there is.
    fn record_shed(&self, side: Side, peer: Peer, invite: &RawInvite<'_>) {
        let trunk = match side {
            Side::Inside => self.policy.pbx_trunk(peer.addr.ip()),
            Side::Outside => self.policy.inbound_trunk(peer.addr, invite.request_uri),
        }
        .map(|t| t.name.clone());
        let from = uri_in_name_addr(invite.from);
        let attempt = attempt_of(
            self,
            side,
            peer,
            trunk,
            InviteFields {
                call_id: Some(invite.call_id.to_string()),
                caller: normalize_number(from),
                callee: normalize_number(invite.request_uri),
                presented_from: Some(user_part(from).to_string()),
                pai: invite.pai.map(str::to_string),
            },
        );
        let ending = Ending::refused(RefusalReason::Overload);
        let at = attempt.invite_at;
        self.cdrs.submit(attempt.close(ending, at));
    }
}

/// The user part of a SIP URI (`sip:user@host` → `user`; none: empty), as rsip's `user()`.
fn user_part(uri: &str) -> &str {
    let rest = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    rest.split_once('@').map_or("", |(user, _)| user)
}

#[cfg(test)]
mod tests {
    use super::user_part;

    #[test]
    fn the_user_part_as_a_parsed_uri_gives_it() {
        for uri in [
            "sip:+861012345678@pbx;user=phone",
            "sips:alice@example.com:5061",
            "sip:example.com",
        ] {
            let parsed = rsip::Uri::try_from(uri).expect("a valid URI");
            let user = parsed.user().unwrap_or_default().to_string();
            assert_eq!(user_part(uri), user, "{uri}");
        }
    }
}
