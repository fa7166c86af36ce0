//! Building the two legs of a new call: the A leg from the INVITE we received, the B leg and
//! its INVITE toward the other side. Topology hiding happens here: the B INVITE is built from
//! scratch, carrying over only the numbers, the session description and what the far end
//! needs (Max-Forwards, P-Asserted-Identity, Privacy); the A side's Call-ID, tags, Via,
//! Contact, addresses and any other header never cross.

use std::net::SocketAddr;

use rsip::headers::UntypedHeader;
use rsip::message::HeadersExt;
use rsip::{Header, Headers, Method};

use super::leg::Leg;
use crate::model::Side;
use crate::sip::message;
use crate::sip::transport::Peer;

/// The A leg: we are its UAS.
pub(crate) fn a_leg(
    req: &rsip::Request,
    side: Side,
    peer: Peer,
    local_addr: SocketAddr,
) -> Option<Leg> {
    let call_id = message::call_id(req)?.to_string();
    let remote_hdr = req.from_header().ok()?.value().to_string();
    let to_raw = req.to_header().ok()?.value().to_string();
    let (cseq, _) = message::cseq(req)?;
    let local_tag = message::random_token(12);
    let remote_target =
        message::contact_uri(req).or_else(|| message::parse_uri(&format!("sip:{}", peer.addr)))?;
    Some(Leg {
        side,
        peer,
        local_addr,
        call_id,
        local_hdr: format!("{to_raw};tag={local_tag}"),
        local_tag,
        remote_tag: message::from_tag(req),
        remote_hdr,
        remote_target,
        // As UAS the route set is the Record-Route of the request, in order (§12.1.1).
        route_set: message::record_routes(&req.headers),
        local_cseq: 0,
        invite_cseq: cseq,
    })
}

/// What the B leg presents: user parts taken from the A INVITE.
pub(crate) struct Presented<'a> {
    pub from_user: &'a str,
    pub to_user: &'a str,
    pub ruri_user: &'a str,
}

/// Keep only characters that are safe unescaped in a SIP URI user part, so nothing a peer
/// put there can break the header it is copied into.
pub(crate) fn safe_user(user: &str) -> String {
    user.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+-_.!~*'()%".contains(*c))
        .take(64)
        .collect()
}

/// The B leg: we are its UAC, toward `target` (`sips`: a `sips:` Request-URI over TLS).
pub(crate) fn b_leg(
    side: Side,
    target: Peer,
    local_addr: SocketAddr,
    p: &Presented,
    sips: bool,
) -> Option<Leg> {
    let local_tag = message::random_token(12);
    let (from_user, to_user, ruri_user) = (
        safe_user(p.from_user),
        safe_user(p.to_user),
        safe_user(p.ruri_user),
    );
    let anonymous = p.from_user.eq_ignore_ascii_case("anonymous");
    let from = if anonymous {
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>".to_string()
    } else {
        format!("<sip:{}@{}>", from_user, message::uri_host(local_addr.ip()))
    };
    let host = target.addr;
    let remote_target = message::parse_uri(&super::leg::target_uri(&ruri_user, target, sips))?;
    Some(Leg {
        side,
        peer: target,
        local_addr,
        call_id: message::random_token(24),
        local_hdr: format!("{from};tag={local_tag}"),
        local_tag,
        remote_tag: None,
        remote_hdr: format!("<sip:{}@{}>", to_user, message::uri_host(host.ip())),
        remote_target,
        route_set: Vec::new(),
        local_cseq: 1,
        invite_cseq: 1,
    })
}

/// The INVITE on the B leg.
pub(crate) fn b_invite(a_req: &rsip::Request, b: &mut Leg) -> rsip::Request {
    let mut req = b.request(Method::Invite, Some(b.invite_cseq), Vec::new(), None);
    let h: &mut Headers = &mut req.headers;
    // Max-Forwards decremented; the front end refused 0 already (483).
    let mf = message::max_forwards(&a_req.headers)
        .unwrap_or(70)
        .saturating_sub(1);
    h.retain(|x| !matches!(x, Header::MaxForwards(_)));
    h.push(Header::MaxForwards(rsip::headers::MaxForwards::new(
        mf.to_string(),
    )));
    if let Some(pai) = message::other_header(&a_req.headers, "P-Asserted-Identity") {
        if let Some(v) = rewrite_identity(pai, b.local_addr) {
            h.push(Header::Other("P-Asserted-Identity".into(), v));
        }
    }
    if let Some(privacy) = message::other_header(&a_req.headers, "Privacy") {
        h.push(Header::Other("Privacy".into(), privacy.to_string()));
    }
    h.push(Header::Allow(rsip::headers::Allow::new(super::ALLOW)));
    if !a_req.body.is_empty() {
        if let Some(ct) = message::content_type(&a_req.headers) {
            h.push(Header::ContentType(rsip::headers::ContentType::new(ct)));
        }
        req.body = a_req.body.clone();
    }
    req
}

/// P-Asserted-Identity keeps its number but not the inside host: `<sip:+86…@10.1.2.3>` becomes
/// `<sip:+86…@OUTSIDE>`; a tel: URI is kept as it is.
fn rewrite_identity(value: &str, local: SocketAddr) -> Option<String> {
    let first = message::split_list(value).into_iter().next()?;
    let uri = message::uri_in_name_addr(&first);
    if uri.len() > 4 && uri[..4].eq_ignore_ascii_case("tel:") {
        return Some(format!("<{uri}>"));
    }
    let user = uri
        .split_once(':')
        .map(|(_, rest)| rest)
        .unwrap_or(uri)
        .split('@')
        .next()?;
    let user = safe_user(user);
    if user.is_empty() {
        return None;
    }
    Some(format!("<sip:{}@{}>", user, message::uri_host(local.ip())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_loses_inside_host() {
        let local: SocketAddr = "192.0.2.1:5070".parse().unwrap();
        assert_eq!(
            rewrite_identity("\"Agent 7\" <sip:+861012345678@10.1.2.3;user=phone>", local)
                .as_deref(),
            Some("<sip:+861012345678@192.0.2.1>")
        );
        assert_eq!(
            rewrite_identity("<tel:+861012345678>", local).as_deref(),
            Some("<tel:+861012345678>")
        );
    }
}
