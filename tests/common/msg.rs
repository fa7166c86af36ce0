//! A received SIP message, parsed by simple text inspection: start line, header fields in order
//! (compact names expanded), body. Every message is also parsed by rsip, so a test fails when
//! the gateway emits something a strict parser refuses.

use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct Msg {
    /// The whole datagram as text.
    pub raw: String,
    /// Where it came from.
    pub src: SocketAddr,
    start: String,
    headers: Vec<(String, String)>,
    pub body: String,
}

/// RFC 3261 §7.3.3 compact forms, so lookups by full name find them too.
fn expand(name: &str) -> &str {
    match name.to_ascii_lowercase().as_str() {
        "v" => "Via",
        "f" => "From",
        "t" => "To",
        "i" => "Call-ID",
        "m" => "Contact",
        "l" => "Content-Length",
        "c" => "Content-Type",
        "k" => "Supported",
        "s" => "Subject",
        "e" => "Content-Encoding",
        _ => name,
    }
}

impl Msg {
    pub fn parse(bytes: &[u8], src: SocketAddr) -> Msg {
        let raw = String::from_utf8(bytes.to_vec())
            .unwrap_or_else(|_| panic!("non-UTF-8 SIP message from {src}"));
        if let Err(e) = rsip::SipMessage::try_from(bytes) {
            panic!("rsip cannot parse the message from {src}: {e}\n{raw}");
        }
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of headers from {src}:\n{raw}"));
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap_or_default().to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // A folded continuation line belongs to the previous field.
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line without colon from {src}: {line:?}"));
            headers.push((expand(name.trim()).to_string(), value.trim().to_string()));
        }
        Msg {
            src,
            start,
            headers,
            body: body.to_string(),
            raw,
        }
    }

    pub fn start_line(&self) -> &str {
        &self.start
    }

    pub fn is_request(&self) -> bool {
        !self.start.starts_with("SIP/2.0 ")
    }

    /// The method of a request, None for a response.
    pub fn method(&self) -> Option<&str> {
        self.is_request()
            .then(|| self.start.split(' ').next().unwrap_or_default())
    }

    /// The Request-URI of a request.
    pub fn uri(&self) -> &str {
        self.start.split(' ').nth(1).unwrap_or_default()
    }

    /// The status code of a response, None for a request.
    pub fn status(&self) -> Option<u16> {
        if self.is_request() {
            return None;
        }
        self.start.split(' ').nth(1)?.parse().ok()
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> &str {
        self.start.splitn(3, ' ').nth(2).unwrap_or_default()
    }

    /// The first value of a header field (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header field, in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every header field name, in order.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in:\n{}", self.raw))
    }

    pub fn call_id(&self) -> &str {
        self.must("Call-ID")
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> (u32, String) {
        let v = self.must("CSeq");
        let (n, m) = v
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad CSeq {v:?}"));
        (
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad CSeq {v:?}")),
            m.trim().to_string(),
        )
    }

    /// The branch parameter of the top Via.
    pub fn branch(&self) -> String {
        param(self.must("Via"), "branch").unwrap_or_default()
    }

    // "From tag" is the SIP term, not a conversion.
    #[allow(clippy::wrong_self_convention)]
    pub fn from_tag(&self) -> Option<String> {
        param(self.must("From"), "tag")
    }

    pub fn to_tag(&self) -> Option<String> {
        param(self.must("To"), "tag")
    }

    /// The user part (the number) of the URI in a name-addr header (From, To, P-Asserted-Identity).
    pub fn user_of(&self, name: &str) -> Option<String> {
        self.header(name).and_then(|v| uri_user(uri_of(v)))
    }

    /// The URI inside a Contact header, without angle brackets.
    pub fn contact_uri(&self) -> Option<String> {
        self.header("Contact").map(|v| uri_of(v).to_string())
    }

    /// Whether this is a retransmission of `other`, judged on what identifies a message in a
    /// transaction: start line, Call-ID, CSeq, top Via branch and the tags.
    pub fn same_as(&self, other: &Msg) -> bool {
        self.key() == other.key()
    }

    pub(crate) fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{:?}|{:?}",
            self.start,
            self.header("Call-ID").unwrap_or_default(),
            self.header("CSeq").unwrap_or_default(),
            self.header("Via")
                .and_then(|v| param(v, "branch"))
                .unwrap_or_default(),
            self.header("From").and_then(|v| param(v, "tag")),
            self.header("To").and_then(|v| param(v, "tag")),
        )
    }

    /// Everything before the body.
    pub fn head(&self) -> &str {
        self.raw.split("\r\n\r\n").next().unwrap_or_default()
    }
}

/// A `;name=value` parameter of a header value (outside the `<…>` of a name-addr).
pub fn param(value: &str, name: &str) -> Option<String> {
    let after = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    after.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The URI of a name-addr (`"x" <sip:a@b>;tag=1` → `sip:a@b`) or a bare addr-spec.
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// The user part of a sip:/tel: URI.
pub fn uri_user(uri: &str) -> Option<String> {
    let rest = uri.split_once(':')?.1;
    let user = match rest.split_once('@') {
        Some((u, _)) => u,
        None if uri.starts_with("tel:") => rest.split(';').next().unwrap_or(rest),
        None => return None,
    };
    Some(user.split(';').next().unwrap_or(user).to_string())
}
