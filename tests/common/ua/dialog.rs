//! What a test holds of a call: the requests it sent, the dialogs (RFC 3261 §12), what an
//! INVITE says, and SDP bodies.

use std::net::SocketAddr;

use super::super::msg::Msg;

/// A request we sent, with what a CANCEL, an ACK or a dialog needs of it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub text: String,
    pub to: SocketAddr,
    pub method: String,
    pub uri: String,
    pub via: String,
    pub branch: String,
    pub call_id: String,
    /// Our From value, tag included.
    pub from: String,
    /// The To value as sent (no tag on an initial request).
    pub to_hdr: String,
    pub cseq: u32,
}

impl Sent {
    // "From tag" is the SIP term, not a conversion.
    #[allow(clippy::wrong_self_convention)]
    pub fn from_tag(&self) -> String {
        super::super::msg::param(&self.from, "tag").unwrap_or_default()
    }
}

/// One side of a dialog as this UA sees it (RFC 3261 §12).
#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    /// Our header value with our tag (From in our requests).
    pub local: String,
    /// The peer's header value with its tag (To in our requests).
    pub remote: String,
    /// Request-URI of our in-dialog requests: the peer's Contact.
    pub target: String,
    /// Where our requests go: the address the peer's messages came from.
    pub peer: SocketAddr,
    /// Our last CSeq number.
    pub cseq: u32,
    /// CSeq number of the INVITE that set up the dialog (its ACK reuses it).
    pub invite_cseq: u32,
}

impl Dialog {
    /// As the caller: from the INVITE we sent and the response (18x/2xx) that has a To tag.
    pub fn uac(invite: &Sent, resp: &Msg) -> Dialog {
        assert!(
            resp.to_tag().is_some(),
            "response without To tag:\n{}",
            resp.raw
        );
        Dialog {
            call_id: invite.call_id.clone(),
            local: invite.from.clone(),
            remote: resp.must("To").to_string(),
            target: resp.contact_uri().unwrap_or_else(|| invite.uri.clone()),
            peer: resp.src,
            cseq: invite.cseq,
            invite_cseq: invite.cseq,
        }
    }

    /// As the called party: from the INVITE we received and the To tag we answer with.
    pub fn uas(invite: &Msg, tag: &str) -> Dialog {
        Dialog {
            call_id: invite.call_id().to_string(),
            local: format!("{};tag={tag}", invite.must("To")),
            remote: invite.must("From").to_string(),
            target: invite
                .contact_uri()
                .unwrap_or_else(|| panic!("INVITE without Contact:\n{}", invite.raw)),
            peer: invite.src,
            // Our CSeq space is our own; start somewhere unlike the peer's.
            cseq: 100,
            invite_cseq: invite.cseq().0,
        }
    }

    pub fn local_tag(&self) -> String {
        super::super::msg::param(&self.local, "tag").unwrap_or_default()
    }

    pub fn remote_tag(&self) -> Option<String> {
        super::super::msg::param(&self.remote, "tag")
    }
}

/// What an INVITE presents. Numbers become `sip:NUMBER@host` URIs; `from_value` replaces the
/// whole From value (anonymous callers).
#[derive(Debug, Clone, Default)]
pub struct InviteSpec {
    pub from: String,
    pub to: String,
    pub from_value: Option<String>,
    pub pai: Option<String>,
    pub privacy: Option<String>,
    pub sdp: Option<String>,
    pub extra: Vec<String>,
    pub max_forwards: Option<u32>,
}

impl InviteSpec {
    pub fn new(from: &str, to: &str) -> InviteSpec {
        InviteSpec {
            from: from.to_string(),
            to: to.to_string(),
            sdp: Some(sdp("sendrecv")),
            ..Default::default()
        }
    }

    pub fn pai(mut self, number: &str) -> Self {
        self.pai = Some(number.to_string());
        self
    }

    pub fn privacy(mut self, v: &str) -> Self {
        self.privacy = Some(v.to_string());
        self
    }

    pub fn anonymous(mut self) -> Self {
        self.from_value = Some("\"Anonymous\" <sip:anonymous@anonymous.invalid>".to_string());
        self
    }

    pub fn header(mut self, line: &str) -> Self {
        self.extra.push(line.to_string());
        self
    }

    pub fn no_sdp(mut self) -> Self {
        self.sdp = None;
        self
    }
}

/// An SDP offer/answer. The media address is a documentation address (192.0.2.0/24), not any
/// SIP address of the test: in this issue SDP passes the gateway unchanged, so the topology
/// checks look for the SIP addresses only.
pub fn sdp(direction: &str) -> String {
    format!(
        "v=0\r\no=ua 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a={direction}\r\n"
    )
}
