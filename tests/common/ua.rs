//! A small SIP user agent for tests: a UDP socket that sends raw SIP text and receives parsed
//! messages. It keeps no call state of its own beyond what the test holds (`Sent`, `Dialog`),
//! so each test spells out its call flow. Every wait is bounded.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::msg::Msg;

/// How long `expect_*` wait by default: far longer than any gateway reaction on loopback,
/// short enough that a missing message fails the test quickly.
pub const WAIT: Duration = Duration::from_secs(3);

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh token for tags, branches and Call-IDs (unique within the test process).
pub fn token(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{n}x{}", std::process::id())
}

pub fn reason_for(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        491 => "Request Pending",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

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
        super::msg::param(&self.from, "tag").unwrap_or_default()
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
        super::msg::param(&self.local, "tag").unwrap_or_default()
    }

    pub fn remote_tag(&self) -> Option<String> {
        super::msg::param(&self.remote, "tag")
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

pub struct Ua {
    name: &'static str,
    sock: UdpSocket,
    addr: SocketAddr,
    /// New messages received while waiting for something else, for later `expect_*`.
    backlog: VecDeque<Msg>,
    /// Keys of every message received so far: a message seen again is a retransmission.
    seen: HashSet<String>,
}

impl Ua {
    /// Bind on `ip:0` (loopback only).
    pub async fn bind(name: &'static str, ip: &str) -> Ua {
        let sock = UdpSocket::bind(format!("{ip}:0"))
            .await
            .unwrap_or_else(|e| panic!("{name}: bind {ip}: {e}"));
        let addr = sock.local_addr().expect("local addr");
        Ua {
            name,
            sock,
            addr,
            backlog: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn send_raw(&self, to: SocketAddr, text: &str) {
        self.sock
            .send_to(text.as_bytes(), to)
            .await
            .unwrap_or_else(|e| panic!("{}: send to {to}: {e}", self.name));
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {};branch={branch};rport", self.addr)
    }

    /// Build and send a request; headers in `extra` are added verbatim, `body` with its type.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &self,
        to: SocketAddr,
        method: &str,
        uri: &str,
        from: &str,
        to_hdr: &str,
        call_id: &str,
        cseq: u32,
        branch: &str,
        extra: &[String],
        body: Option<(&str, &str)>,
        max_forwards: u32,
    ) -> Sent {
        let via = self.via(branch);
        let mut t = format!(
            "{method} {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: {max_forwards}\r\n\
             From: {from}\r\nTo: {to_hdr}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        );
        if matches!(method, "INVITE" | "UPDATE" | "SUBSCRIBE") {
            t.push_str(&format!("Contact: <sip:{}>\r\n", self.addr));
        }
        for h in extra {
            t.push_str(h);
            t.push_str("\r\n");
        }
        let body_text = match body {
            Some((ct, b)) => {
                t.push_str(&format!("Content-Type: {ct}\r\n"));
                b
            }
            None => "",
        };
        t.push_str(&format!(
            "Content-Length: {}\r\n\r\n{body_text}",
            body_text.len()
        ));
        self.send_raw(to, &t).await;
        Sent {
            text: t,
            to,
            method: method.to_string(),
            uri: uri.to_string(),
            via,
            branch: branch.to_string(),
            call_id: call_id.to_string(),
            from: from.to_string(),
            to_hdr: to_hdr.to_string(),
            cseq,
        }
    }

    /// A new INVITE to `gw` (an interface of the gateway).
    pub async fn invite(&self, gw: SocketAddr, spec: &InviteSpec) -> Sent {
        let host = gw.ip();
        let from = match &spec.from_value {
            Some(v) => format!("{v};tag={}", token("ft")),
            None => format!("<sip:{}@{}>;tag={}", spec.from, self.addr.ip(), token("ft")),
        };
        let to_hdr = format!("<sip:{}@{host}>", spec.to);
        let uri = format!("sip:{}@{gw}", spec.to);
        let mut extra = Vec::new();
        if let Some(pai) = &spec.pai {
            extra.push(format!(
                "P-Asserted-Identity: <sip:{pai}@{}>",
                self.addr.ip()
            ));
        }
        if let Some(p) = &spec.privacy {
            extra.push(format!("Privacy: {p}"));
        }
        extra.extend(spec.extra.iter().cloned());
        self.request(
            gw,
            "INVITE",
            &uri,
            &from,
            &to_hdr,
            &format!("{}@{}", token("call"), self.addr.ip()),
            1,
            &format!("z9hG4bK{}", token("b")),
            &extra,
            spec.sdp.as_deref().map(|s| ("application/sdp", s)),
            spec.max_forwards.unwrap_or(70),
        )
        .await
    }

    /// Send a request again, byte for byte (a retransmission).
    pub async fn resend(&self, sent: &Sent) {
        self.send_raw(sent.to, &sent.text).await;
    }

    /// CANCEL of an INVITE we sent (§9.1: same Request-URI, Call-ID, From, To, CSeq number and
    /// top Via branch).
    pub async fn cancel(&self, invite: &Sent) -> Sent {
        let t = format!(
            "CANCEL {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: {} CANCEL\r\nContent-Length: 0\r\n\r\n",
            invite.uri, invite.via, invite.from, invite.to_hdr, invite.call_id, invite.cseq
        );
        self.send_raw(invite.to, &t).await;
        Sent {
            text: t,
            method: "CANCEL".into(),
            ..invite.clone()
        }
    }

    /// ACK for a non-2xx final response: part of the INVITE transaction (same branch).
    pub async fn ack_non2xx(&self, invite: &Sent, resp: &Msg) {
        let t = format!(
            "ACK {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
            invite.uri,
            invite.via,
            invite.from,
            resp.must("To"),
            invite.call_id,
            invite.cseq
        );
        self.send_raw(invite.to, &t).await;
    }

    /// A request within a dialog with the next CSeq (ACK: the INVITE's CSeq; use `ack`).
    pub async fn in_dialog(
        &self,
        dlg: &mut Dialog,
        method: &str,
        body: Option<(&str, &str)>,
    ) -> Sent {
        dlg.cseq += 1;
        self.in_dialog_with(dlg, method, dlg.cseq, &[], body).await
    }

    pub async fn in_dialog_with(
        &self,
        dlg: &Dialog,
        method: &str,
        cseq: u32,
        extra: &[String],
        body: Option<(&str, &str)>,
    ) -> Sent {
        self.request(
            dlg.peer,
            method,
            &dlg.target,
            &dlg.local,
            &dlg.remote,
            &dlg.call_id,
            cseq,
            &format!("z9hG4bK{}", token("b")),
            extra,
            body,
            70,
        )
        .await
    }

    /// ACK for a 2xx to the dialog's INVITE (or to a re-INVITE with CSeq `cseq`): a new
    /// transaction of its own (§13.2.2.4).
    pub async fn ack(&self, dlg: &Dialog, cseq: u32) -> Sent {
        self.in_dialog_with(dlg, "ACK", cseq, &[], None).await
    }

    pub async fn bye(&self, dlg: &mut Dialog) -> Sent {
        self.in_dialog(dlg, "BYE", None).await
    }

    /// Answer a request: Via, From, To (plus `tag` when it has none), Call-ID and CSeq
    /// copied; our Contact on 101–299 responses that carry a tag; `extra` headers verbatim; an
    /// SDP body when given.
    pub async fn reply_with(
        &self,
        req: &Msg,
        code: u16,
        tag: Option<&str>,
        extra: &[&str],
        sdp_body: Option<&str>,
    ) -> String {
        let mut t = format!("SIP/2.0 {code} {}\r\n", reason_for(code));
        for via in req.headers("Via") {
            t.push_str(&format!("Via: {via}\r\n"));
        }
        t.push_str(&format!("From: {}\r\n", req.must("From")));
        let to = req.must("To");
        match tag {
            Some(tag) if req.to_tag().is_none() => t.push_str(&format!("To: {to};tag={tag}\r\n")),
            _ => t.push_str(&format!("To: {to}\r\n")),
        }
        t.push_str(&format!(
            "Call-ID: {}\r\nCSeq: {}\r\n",
            req.call_id(),
            req.must("CSeq")
        ));
        if (101..300).contains(&code) && tag.is_some() {
            t.push_str(&format!("Contact: <sip:{}>\r\n", self.addr));
        }
        for h in extra {
            t.push_str(h);
            t.push_str("\r\n");
        }
        let body = match sdp_body {
            Some(b) => {
                t.push_str("Content-Type: application/sdp\r\n");
                b
            }
            None => "",
        };
        t.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.send_raw(req.src, &t).await;
        t
    }

    pub async fn reply(&self, req: &Msg, code: u16, tag: Option<&str>) -> String {
        self.reply_with(req, code, tag, &[], None).await
    }

    /// Receive one datagram from the socket, waiting until `deadline`.
    async fn recv_socket(&self, deadline: Instant) -> Option<Msg> {
        let mut buf = vec![0u8; 65_535];
        match tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await {
            Ok(Ok((n, src))) => Some(Msg::parse(&buf[..n], src)),
            Ok(Err(e)) => panic!("{}: recv: {e}", self.name),
            Err(_) => None,
        }
    }

    /// The next message, retransmissions included: the backlog first, then the socket.
    pub async fn recv_timeout(&mut self, d: Duration) -> Option<Msg> {
        if let Some(m) = self.backlog.pop_front() {
            return Some(m);
        }
        let m = self.recv_socket(Instant::now() + d).await?;
        self.seen.insert(m.key());
        Some(m)
    }

    /// The first message satisfying `pred` within `d`, retransmissions included; other
    /// new messages are kept for later.
    pub async fn recv_matching(&mut self, d: Duration, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + d;
        loop {
            let m = self.recv_socket(deadline).await?;
            let new = self.seen.insert(m.key());
            if pred(&m) {
                return Some(m);
            }
            if new {
                self.backlog.push_back(m);
            }
        }
    }

    /// The first new message (not a retransmission of one seen before) satisfying `pred`.
    pub async fn next_new(&mut self, d: Duration, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + d;
        loop {
            let m = self.recv_socket(deadline).await?;
            if !self.seen.insert(m.key()) {
                continue; // a retransmission
            }
            if pred(&m) {
                return Some(m);
            }
            self.backlog.push_back(m);
        }
    }

    fn pending(&self) -> String {
        self.backlog
            .iter()
            .map(|m| format!("  {} ({})", m.start_line(), m.header("CSeq").unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The next new request with this method (retransmissions skipped, other messages kept).
    pub async fn expect_request(&mut self, method: &str) -> Msg {
        self.expect_request_within(method, WAIT).await
    }

    pub async fn expect_request_within(&mut self, method: &str, d: Duration) -> Msg {
        match self.next_new(d, |m| m.method() == Some(method)).await {
            Some(m) => m,
            None => panic!(
                "{}: no {method} within {d:?}; other messages received:\n{}",
                self.name,
                self.pending()
            ),
        }
    }

    /// The next new response with this status (retransmissions skipped, others kept).
    pub async fn expect_response(&mut self, code: u16) -> Msg {
        self.expect_response_within(code, WAIT).await
    }

    pub async fn expect_response_within(&mut self, code: u16, d: Duration) -> Msg {
        match self.next_new(d, |m| m.status() == Some(code)).await {
            Some(m) => m,
            None => panic!(
                "{}: no {code} response within {d:?}; other messages received:\n{}",
                self.name,
                self.pending()
            ),
        }
    }

    /// The next new response to a request with this CSeq method and status.
    pub async fn expect_response_to(&mut self, method: &str, code: u16) -> Msg {
        let found = self
            .next_new(WAIT, |m| {
                m.status() == Some(code) && m.cseq().1.eq_ignore_ascii_case(method)
            })
            .await;
        match found {
            Some(m) => m,
            None => panic!(
                "{}: no {code} to {method} within {WAIT:?}; other messages received:\n{}",
                self.name,
                self.pending()
            ),
        }
    }

    /// Assert that no new message arrives for `d` (retransmissions of earlier ones are
    /// allowed) and that none is waiting in the backlog.
    pub async fn expect_nothing_new(&mut self, d: Duration) {
        assert!(
            self.backlog.is_empty(),
            "{}: unexpected messages:\n{}",
            self.name,
            self.pending()
        );
        if let Some(m) = self.next_new(d, |_| true).await {
            panic!("{}: unexpected message:\n{}", self.name, m.raw);
        }
    }

    /// Assert that nothing at all arrives for `d`, not even a retransmission.
    pub async fn expect_silence(&mut self, d: Duration) {
        assert!(
            self.backlog.is_empty(),
            "{}: unexpected messages:\n{}",
            self.name,
            self.pending()
        );
        if let Some(m) = self.recv_socket(Instant::now() + d).await {
            panic!("{}: expected silence, got:\n{}", self.name, m.raw);
        }
    }

    /// Forget what is waiting (messages the test does not care about).
    pub fn clear_backlog(&mut self) {
        self.backlog.clear();
    }
}

/// The carrier answers the INVITE the PBX sent (`invite`) with a 200 and an SDP, and the PBX
/// acknowledges it: an answered call through the gateway. Returns the carrier's INVITE.
pub async fn answer_and_ack(pbx: &mut Ua, carrier: &mut Ua, invite: &Sent, tag: &str) -> Msg {
    let c_invite = carrier.expect_request("INVITE").await;
    carrier
        .reply_with(&c_invite, 200, Some(tag), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = pbx.expect_response(200).await;
    pbx.ack(&Dialog::uac(invite, &ok), invite.cseq).await;
    carrier.expect_request("ACK").await;
    c_invite
}
