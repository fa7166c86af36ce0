//! One side of a call as a dialog (RFC 3261 §12): identifiers, CSeq, remote target and route
//! set, and the requests we send within it.

use std::fmt::Write;
use std::net::SocketAddr;

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method};

use crate::sip::message;
use crate::sip::transport::{Peer, Proto, Side};

/// Serializable so that the journal can keep it (`b2bua::restart::record`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Leg {
    pub side: Side,
    /// Where requests on this leg go. For a trunk peer this is its configured or source
    /// address, never an address taken from a Contact: a peer cannot steer us elsewhere.
    pub peer: Peer,
    /// Our interface address on this side (Via, Contact).
    pub local_addr: SocketAddr,
    pub call_id: String,
    pub local_tag: String,
    /// Our From (as UAC) or To (as UAS) value, tag included.
    pub local_hdr: String,
    /// The other party's header value, its tag included once known.
    pub remote_hdr: String,
    pub remote_tag: Option<String>,
    #[serde(with = "uri_text")]
    pub remote_target: rsip::Uri,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    /// CSeq of the INVITE that created this leg (ACK for its 2xx reuses it).
    pub invite_cseq: u32,
}

impl Leg {
    pub fn contact(&self) -> String {
        match self.peer.proto {
            Proto::Udp => format!("<sip:{}>", self.local_addr),
            Proto::Tcp => format!("<sip:{};transport=tcp>", self.local_addr),
            // A peer that addresses us (or that we address) with sips: gets a sips: Contact.
            Proto::Tls if self.remote_target.scheme == Some(rsip::Scheme::Sips) => {
                format!("<sips:{}>", self.local_addr)
            }
            Proto::Tls => format!("<sip:{};transport=tls>", self.local_addr),
        }
    }

    pub fn via(&self, branch: &str) -> String {
        // RFC 5923 `alias`: over TLS the connection carries requests both ways.
        let alias = if self.peer.proto == Proto::Tls {
            ";alias"
        } else {
            ""
        };
        // Pushed, not `format!`ed: a request or two of every call on the signalling path.
        let mut via = String::with_capacity(48 + branch.len());
        via.push_str("SIP/2.0/");
        via.push_str(self.peer.proto.via_name());
        via.push(' ');
        // Writing into a String cannot fail.
        let _ = write!(via, "{}", self.local_addr);
        via.push_str(";branch=");
        via.push_str(branch);
        via.push_str(";rport");
        via.push_str(alias);
        via
    }

    /// Learn the remote tag (and header) from a response that creates or confirms the dialog.
    pub fn learn_remote(&mut self, resp: &rsip::Response) {
        if let Some(tag) = message::to_tag(resp) {
            if self.remote_tag.as_deref() != Some(tag.as_str()) {
                self.remote_tag = Some(tag);
                if let Ok(to) = resp.to_header_value() {
                    self.remote_hdr = to;
                }
            }
        }
        if let Some(contact) = message::contact_uri(resp) {
            self.remote_target = contact;
        }
        let rr = message::record_routes(&resp.headers);
        if !rr.is_empty() {
            // As UAC the route set is the Record-Route of the response, reversed (§12.1.2).
            self.route_set = rr.into_iter().rev().collect();
        }
    }

    /// A request within the dialog with a new CSeq (ACK passes the INVITE's CSeq instead).
    /// Points a leg that has no dialog yet at another peer (carrier failover): the
    /// Request-URI and To keep their users and name the new host.
    pub fn retarget(&mut self, peer: Peer) {
        let host = peer.addr;
        let sips = self.remote_target.scheme == Some(rsip::Scheme::Sips);
        let user = self.remote_target.user().unwrap_or_default().to_string();
        if let Some(uri) = message::parse_uri(&target_uri(&user, peer, sips)) {
            self.remote_target = uri;
        }
        let to_user = self
            .remote_hdr
            .split_once("sip:")
            .and_then(|(_, r)| r.split_once('@'))
            .map(|(user, _)| user.to_string())
            .unwrap_or_default();
        self.remote_hdr = format!("<sip:{}@{}>", to_user, message::uri_host(host.ip()));
        self.peer = peer;
    }

    pub fn request(
        &mut self,
        method: Method,
        cseq: Option<u32>,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> rsip::Request {
        let seq = match cseq {
            Some(s) => s,
            None => {
                self.local_cseq = self.local_cseq.wrapping_add(1);
                self.local_cseq
            }
        };
        let branch = message::new_branch();
        let mut h = Headers::default();
        h.push(Header::Via(rsip::headers::Via::new(self.via(&branch))));
        for r in &self.route_set {
            h.push(Header::Route(rsip::headers::Route::new(r.clone())));
        }
        h.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        h.push(Header::From(rsip::headers::From::new(
            self.local_hdr.clone(),
        )));
        h.push(Header::To(rsip::headers::To::new(self.remote_hdr.clone())));
        h.push(Header::CallId(rsip::headers::CallId::new(
            self.call_id.clone(),
        )));
        h.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{seq} {method}"
        ))));
        if matches!(method, Method::Invite | Method::Update) {
            h.push(Header::Contact(rsip::headers::Contact::new(self.contact())));
        }
        if let Some(ct) = content_type {
            if !body.is_empty() {
                h.push(Header::ContentType(rsip::headers::ContentType::new(ct)));
            }
        }
        rsip::Request {
            method,
            uri: self.remote_target.clone(),
            version: rsip::Version::V2,
            headers: h,
            body,
        }
    }
}

/// The Request-URI toward a trunk peer: `sip:user@host`, over TLS `sips:user@host` (`sips`)
/// or `sip:user@host;transport=tls`.
pub(crate) fn target_uri(user: &str, peer: Peer, sips: bool) -> String {
    let host = peer.addr;
    match peer.proto {
        Proto::Tls if sips => format!("sips:{user}@{host}"),
        Proto::Tls => format!("sip:{user}@{host};transport=tls"),
        Proto::Udp | Proto::Tcp => format!("sip:{user}@{host}"),
    }
}

trait ToHeaderValue {
    fn to_header_value(&self) -> Result<String, ()>;
}

impl ToHeaderValue for rsip::Response {
    fn to_header_value(&self) -> Result<String, ()> {
        use rsip::message::HeadersExt;
        self.to_header()
            .map(|h| h.value().to_string())
            .map_err(|_| ())
    }
}

/// A URI as its text in serialized form (rsip's Uri has no serde support).
mod uri_text {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(uri: &rsip::Uri, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::sip::uri_text::uri_text(uri))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<rsip::Uri, D::Error> {
        let text = String::deserialize(d)?;
        crate::sip::message::parse_uri(&text)
            .ok_or_else(|| D::Error::custom(format!("not a SIP URI: {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(addr: &str) -> Peer {
        Peer {
            addr: addr.parse().unwrap(),
            proto: Proto::Tls,
        }
    }

    #[test]
    fn a_tls_leg_names_tls_in_its_uris_and_via() {
        let carrier = tls("192.0.2.7:5061");
        assert_eq!(
            target_uri("+8613800000000", carrier, false),
            "sip:+8613800000000@192.0.2.7:5061;transport=tls"
        );
        assert_eq!(
            target_uri("+8613800000000", carrier, true),
            "sips:+8613800000000@192.0.2.7:5061"
        );
        let udp = Peer {
            proto: Proto::Udp,
            ..carrier
        };
        assert_eq!(target_uri("1", udp, true), "sip:1@192.0.2.7:5061");

        let mut leg = Leg {
            side: Side::Outside,
            peer: carrier,
            local_addr: "198.51.100.1:5061".parse().unwrap(),
            call_id: "c".into(),
            local_tag: "t".into(),
            local_hdr: "<sip:a@198.51.100.1>;tag=t".into(),
            remote_hdr: "<sip:b@192.0.2.7>".into(),
            remote_tag: None,
            remote_target: rsip::Uri::try_from(target_uri("b", carrier, true).as_str()).unwrap(),
            route_set: Vec::new(),
            local_cseq: 1,
            invite_cseq: 1,
        };
        assert_eq!(leg.contact(), "<sips:198.51.100.1:5061>");
        assert!(leg
            .via("z9hG4bKx")
            .starts_with("SIP/2.0/TLS 198.51.100.1:5061;"));
        assert!(leg.via("z9hG4bKx").ends_with(";alias"));
        assert_eq!(
            leg.via("z9hG4bKx"),
            "SIP/2.0/TLS 198.51.100.1:5061;branch=z9hG4bKx;rport;alias"
        );
        let tls_peer = leg.peer;
        leg.peer = udp;
        leg.local_addr = "[2001:db8::1]:5060".parse().unwrap();
        assert_eq!(
            leg.via("z9hG4bKy"),
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKy;rport"
        );
        (leg.peer, leg.local_addr) = (tls_peer, "198.51.100.1:5061".parse().unwrap());
        // Failover keeps the scheme.
        leg.retarget(tls("192.0.2.8:5061"));
        assert_eq!(leg.remote_target.to_string(), "sips:b@192.0.2.8:5061");
        leg.remote_target = rsip::Uri::try_from("sip:b@192.0.2.8:5061").unwrap();
        assert_eq!(leg.contact(), "<sip:198.51.100.1:5061;transport=tls>");
    }
}
