//! Application-level checks the B2BUA makes on a parsed request before it acts on it
//! (RFC 3261 §8.2 as a UAS, §16.3 for Max-Forwards since we forward, RFC 4475 §3.3).
//! A refusal is a value: the status, a reason naming the problem, and the headers to add.
//! ACK is never answered: a refusal of an ACK means "discard it".

use super::frontend::syntax::{parse_cseq, parse_decimal};
use super::frontend::{expand_name, find};
use super::message::method_name;
use super::response::Echo;
use rsip::headers::{self, UntypedHeader};
use rsip::{Header, Method, Scheme};

/// The methods the B2BUA implements, as sent in Allow. PRACK is not among them: we never
/// advertise 100rel, so no peer may send reliable provisionals that would need it.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO";

/// Header fields every request must carry (RFC 3261 §8.1.1).
pub const MANDATORY: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];

/// Header fields that may appear once only (RFC 3261 §20, §7.3.1).
const SINGLE: [&str; 7] = [
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
    "Content-Length",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<rsip::Header>,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    fn with(mut self, header: Header) -> Self {
        self.headers.push(header);
        self
    }

    /// The response to send for this refusal (not for an ACK, which is never answered).
    pub fn response(&self, req: &rsip::Request, to_tag: Option<&str>) -> rsip::Response {
        Echo::of(req).build(self.status, &self.reason, to_tag, self.headers.clone())
    }
}

pub fn allow_header() -> Header {
    Header::Allow(headers::Allow::new(ALLOW))
}

/// "Missing X, Y" for the mandatory headers `has` does not find.
pub(crate) fn missing_reason(has: impl Fn(&str) -> bool) -> Option<String> {
    let missing: Vec<&str> = MANDATORY.into_iter().filter(|n| !has(n)).collect();
    (!missing.is_empty()).then(|| format!("Missing {}", missing.join(", ")))
}

/// Canonical name of a header, compact forms of unknown headers included ("" for the typed
/// headers the checks never ask for).
fn name_of(h: &Header) -> &str {
    match h {
        Header::Via(_) => "Via",
        Header::From(_) => "From",
        Header::To(_) => "To",
        Header::CallId(_) => "Call-ID",
        Header::CSeq(_) => "CSeq",
        Header::MaxForwards(_) => "Max-Forwards",
        Header::ContentType(_) => "Content-Type",
        Header::ContentLength(_) => "Content-Length",
        Header::ContentEncoding(_) => "Content-Encoding",
        Header::Require(_) => "Require",
        Header::Accept(_) => "Accept",
        Header::Other(name, _) => expand_name(name),
        _ => "",
    }
}

/// The value of a header `name_of` knows.
fn value_of(h: &Header) -> &str {
    match h {
        Header::Other(_, v) => v.as_str(),
        Header::Via(v) => v.value(),
        Header::From(v) => v.value(),
        Header::To(v) => v.value(),
        Header::CallId(v) => v.value(),
        Header::CSeq(v) => v.value(),
        Header::MaxForwards(v) => v.value(),
        Header::ContentType(v) => v.value(),
        Header::ContentLength(v) => v.value(),
        Header::ContentEncoding(v) => v.value(),
        Header::Require(v) => v.value(),
        Header::Accept(v) => v.value(),
        _ => "",
    }
}

/// Values of every header called `name` (canonical spelling), in order; nothing is allocated.
fn values<'a>(req: &'a rsip::Request, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.headers
        .iter()
        .filter(move |h| name_of(h).eq_ignore_ascii_case(name))
        .map(value_of)
}

/// The comma-separated items of every header called `name`.
fn items<'a>(req: &'a rsip::Request, name: &'a str) -> Vec<&'a str> {
    values(req, name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// `type/subtype` of a media type or range, parameters dropped (compare case-insensitively).
fn media(v: &str) -> &str {
    v.split(';').next().unwrap_or("").trim()
}

pub fn check_request(req: &rsip::Request) -> Result<(), Refusal> {
    if let Some(reason) = missing_reason(|n| values(req, n).next().is_some()) {
        return Err(Refusal::new(400, reason));
    }
    let repeated: Vec<&str> = SINGLE
        .into_iter()
        .filter(|n| values(req, n).nth(1).is_some())
        .collect();
    if !repeated.is_empty() {
        let reason = format!("Multiple Values In {}", repeated.join(", "));
        return Err(Refusal::new(400, reason));
    }
    let cseq = values(req, "CSeq").next().unwrap_or("");
    let (_, cseq_method) = parse_cseq(cseq).map_err(|r| Refusal::new(400, r))?;
    if cseq_method != method_name(&req.method) {
        return Err(Refusal::new(400, "CSeq Method Mismatch"));
    }
    let max_forwards = match values(req, "Max-Forwards").next() {
        None => None,
        Some(v) => match parse_decimal(v.trim()) {
            Some(n) if n <= 255 => Some(n),
            _ => return Err(Refusal::new(400, "Bad Max-Forwards")),
        },
    };
    let implemented = matches!(
        req.method,
        Method::Invite
            | Method::Ack
            | Method::Bye
            | Method::Cancel
            | Method::Options
            | Method::Update
            | Method::Info
    );
    if !implemented {
        // REGISTER too: a trunk has no registrar. rsip has no variant for unknown methods;
        // the front end answers those 501.
        return Err(Refusal::new(405, "Method Not Allowed").with(allow_header()));
    }
    let scheme_ok = match &req.uri.scheme {
        Some(Scheme::Sip) | Some(Scheme::Sips) => true,
        Some(Scheme::Other(s)) => s.eq_ignore_ascii_case("tel"),
        None => false,
    };
    if !scheme_ok {
        return Err(Refusal::new(416, "Unsupported URI Scheme"));
    }
    if max_forwards == Some(0) {
        return Err(Refusal::new(483, "Too Many Hops"));
    }
    // We support no extension; Proxy-Require is for proxies. CANCEL and ACK cannot be refused
    // for an extension (RFC 3261 §8.2.2.3).
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let tags = items(req, "Require");
        if !tags.is_empty() {
            let unsupported = Header::Unsupported(headers::Unsupported::new(tags.join(", ")));
            return Err(Refusal::new(420, "Bad Extension").with(unsupported));
        }
    }
    let sdp_method = matches!(
        req.method,
        Method::Invite | Method::Update | Method::Ack | Method::PRack
    );
    if sdp_method && !req.body.is_empty() {
        check_body(req)?;
    }
    if req.method == Method::Invite && values(req, "Accept").next().is_some() {
        let ok = items(req, "Accept").into_iter().any(|r| {
            let range = media(r);
            ["application/sdp", "application/*", "*/*"]
                .iter()
                .any(|ok| range.eq_ignore_ascii_case(ok))
        });
        if !ok {
            // RFC 4475 sdp01: 406 with a 399 warning
            let warning = Header::Warning(headers::Warning::new(
                "399 trunkguard \"Only application/sdp bodies are supported\"",
            ));
            return Err(Refusal::new(406, "Not Acceptable").with(warning));
        }
    }
    Ok(())
}

/// The body of an offer/answer request must be SDP, alone or as a part of a multipart body.
fn check_body(req: &rsip::Request) -> Result<(), Refusal> {
    let Some(content_type) = values(req, "Content-Type").next() else {
        return Err(Refusal::new(400, "Missing Content-Type"));
    };
    let unsupported = || {
        let accept = Header::Accept(headers::Accept::new("application/sdp"));
        Refusal::new(415, "Unsupported Media Type").with(accept)
    };
    if items(req, "Content-Encoding")
        .iter()
        .any(|e| !e.eq_ignore_ascii_case("identity"))
    {
        let identity = Header::AcceptEncoding(headers::AcceptEncoding::new("identity"));
        return Err(unsupported().with(identity));
    }
    let media_type = media(content_type);
    if media_type.eq_ignore_ascii_case("application/sdp") {
        return Ok(());
    }
    let multipart = media_type
        .get(.."multipart/".len())
        .is_some_and(|p| p.eq_ignore_ascii_case("multipart/"));
    if multipart && multipart_has_sdp(content_type, &req.body) {
        return Ok(());
    }
    Err(unsupported())
}

fn multipart_has_sdp(content_type: &str, body: &[u8]) -> bool {
    let boundary = content_type.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
    });
    let Some(boundary) = boundary.filter(|b| !b.is_empty()) else {
        return false;
    };
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = body;
    while let Some(p) = find(rest, delimiter, 0) {
        rest = &rest[p + delimiter.len()..];
        let part_head_end = find(rest, b"\r\n\r\n", 0).unwrap_or(0);
        let part_head = String::from_utf8_lossy(&rest[..part_head_end]);
        let is_sdp = part_head.split("\r\n").any(|line| {
            line.split_once(':').is_some_and(|(n, v)| {
                expand_name(n.trim()).eq_ignore_ascii_case("Content-Type")
                    && media(v).eq_ignore_ascii_case("application/sdp")
            })
        });
        if is_sdp {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::frontend::{parse_datagram, Limits, Parsed};

    fn req(method: &str, extra: &str, body: &str) -> rsip::Request {
        let text = format!(
            "{method} sip:+15551234567@gw.example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP pbx.example.com;branch=z9hG4bK1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n\
             Call-ID: v1@example.com\r\nCSeq: 1 {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match parse_datagram(text.as_bytes(), &Limits::default()) {
            Parsed::Message(rsip::SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn status(r: &rsip::Request) -> u16 {
        check_request(r).err().map_or(0, |e| e.status)
    }

    const SDP: &str = "v=0\r\n";

    #[test]
    fn methods() {
        for m in [
            "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO",
        ] {
            assert_eq!(status(&req(m, "", "")), 0, "{m}");
        }
        for m in [
            "REGISTER",
            "PRACK",
            "SUBSCRIBE",
            "NOTIFY",
            "MESSAGE",
            "REFER",
            "PUBLISH",
        ] {
            let r = req(m, "", "");
            let refusal = check_request(&r).unwrap_err();
            assert_eq!(refusal.status, 405, "{m}");
            let text = refusal.response(&r, Some("t")).to_string();
            assert!(text.contains(&format!("Allow: {ALLOW}\r\n")), "{text}");
        }
    }

    #[test]
    fn missing_and_repeated_headers() {
        let mut r = req("BYE", "", "");
        r.headers
            .retain(|h| !matches!(h, Header::CallId(_) | Header::To(_)));
        assert_eq!(check_request(&r).unwrap_err().reason, "Missing To, Call-ID");
        let r = req(
            "BYE",
            "Max-Forwards: 69\r\nc: text/plain\r\nContent-Type: text/plain\r\n",
            "",
        );
        let refusal = check_request(&r).unwrap_err();
        assert_eq!(
            refusal.reason,
            "Multiple Values In Max-Forwards, Content-Type"
        );
    }

    #[test]
    fn uri_schemes() {
        let mut r = req("INVITE", "", "");
        r.uri.scheme = Some(Scheme::Other("tel".into()));
        assert_eq!(status(&r), 0);
        r.uri.scheme = Some(Scheme::Other("http".into()));
        assert_eq!(status(&r), 416);
    }

    #[test]
    fn max_forwards_and_require() {
        let mut r = req("OPTIONS", "", "");
        r.headers.retain(|h| !matches!(h, Header::MaxForwards(_)));
        r.headers
            .push(Header::MaxForwards(headers::MaxForwards::new("0")));
        assert_eq!(status(&r), 483);
        let r = req(
            "INVITE",
            "Require: 100rel\r\nRequire: timer\r\nProxy-Require: foo\r\n",
            "",
        );
        let refusal = check_request(&r).unwrap_err();
        assert_eq!(refusal.status, 420);
        assert_eq!(
            refusal.headers,
            [Header::Unsupported(headers::Unsupported::new(
                "100rel, timer"
            ))]
        );
        assert_eq!(status(&req("CANCEL", "Require: 100rel\r\n", "")), 0);
        assert_eq!(status(&req("OPTIONS", "Proxy-Require: foo\r\n", "")), 0);
    }

    #[test]
    fn bodies() {
        let sdp = "Content-Type: application/sdp\r\n";
        assert_eq!(status(&req("INVITE", sdp, SDP)), 0);
        assert_eq!(status(&req("UPDATE", "c: Application/SDP;x=1\r\n", SDP)), 0);
        assert_eq!(status(&req("INVITE", "", SDP)), 400);
        let r = req("INVITE", "Content-Type: application/isup\r\n", SDP);
        let refusal = check_request(&r).unwrap_err();
        assert_eq!(refusal.status, 415);
        assert_eq!(
            refusal.headers,
            [Header::Accept(headers::Accept::new("application/sdp"))]
        );
        let gzip = format!("{sdp}Content-Encoding: gzip\r\n");
        assert_eq!(status(&req("INVITE", &gzip, SDP)), 415);
        // INFO carries other bodies (DTMF relay) and is not checked
        assert_eq!(
            status(&req(
                "INFO",
                "Content-Type: application/dtmf-relay\r\n",
                "Signal=1"
            )),
            0
        );
        let multipart = "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\
                         --b1\r\nContent-Type: application/isup\r\n\r\n\x01\x02\r\n--b1--\r\n";
        let ct = "Content-Type: multipart/mixed;boundary=\"b1\"\r\n";
        assert_eq!(status(&req("INVITE", ct, multipart)), 0);
        let no_sdp = multipart.replace("application/sdp", "text/plain");
        assert_eq!(status(&req("INVITE", ct, &no_sdp)), 415);
    }

    #[test]
    fn accept_on_invite() {
        assert_eq!(
            status(&req("INVITE", "Accept: application/sdp, text/html\r\n", "")),
            0
        );
        assert_eq!(status(&req("INVITE", "Accept: application/*\r\n", "")), 0);
        assert_eq!(status(&req("INVITE", "Accept: text/plain\r\n", "")), 406);
        assert_eq!(status(&req("OPTIONS", "Accept: text/plain\r\n", "")), 0);
    }
}
