//! Small, total accessors over rsip messages and the one serializer we send with.
//! Every accessor returns `Option`: the front end has validated what it could, but nothing that
//! came from the network is trusted to be there.

use bytes::{BufMut, Bytes, BytesMut};
use rand::Rng;
use rsip::headers::UntypedHeader;
use rsip::message::HeadersExt;
use rsip::prelude::ToTypedHeader;
use rsip::{Header, Headers, Method, SipMessage, StatusCode};
use std::fmt::Write as _;

/// RFC 3261 §8.1.1.7: branches we generate start with the magic cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A random token of `len` alphanumeric characters for tags, branches and Call-IDs.
pub fn random_token(len: usize) -> String {
    let mut token = String::with_capacity(len);
    push_random_token(&mut token, len);
    token
}

/// `len` random letters and digits appended to `out` (a branch, a call id: one allocation).
pub fn push_random_token(out: &mut String, len: usize) {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    out.extend((0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char));
}

pub fn new_branch() -> String {
    let mut branch = String::with_capacity(MAGIC_COOKIE.len() + 16);
    branch.push_str(MAGIC_COOKIE);
    push_random_token(&mut branch, 16);
    branch
}

/// Serialize with the body as raw bytes (rsip's Display would go through lossy UTF-8).
/// Everything is written straight into one buffer: no temporary string per header.
pub fn encode(msg: &SipMessage) -> Bytes {
    let (headers, body) = match msg {
        SipMessage::Request(r) => (&r.headers, &r.body),
        SipMessage::Response(r) => (&r.headers, &r.body),
    };
    let mut out = BytesMut::with_capacity(encoded_size_hint(headers, body.len()));
    // fmt::Write on BytesMut only grows the buffer: it cannot fail
    let _ = match msg {
        SipMessage::Request(r) => {
            out.put_slice(method_name(&r.method).as_bytes());
            out.put_u8(b' ');
            write_uri(&mut out, &r.uri);
            write!(out, " {}\r\n", r.version)
        }
        SipMessage::Response(r) => {
            let (code, reason) = status_parts_ref(&r.status_code);
            write!(out, "{} {} {}\r\n", r.version, code, reason)
        }
    };
    for h in headers.iter() {
        if matches!(h, Header::ContentLength(_)) {
            continue;
        }
        match name_value(h) {
            Some((name, value)) => {
                out.put_slice(name.as_bytes());
                out.put_slice(b": ");
                out.put_slice(value.as_bytes());
                out.put_slice(b"\r\n");
            }
            None => {
                let _ = write!(out, "{h}\r\n");
            }
        }
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.put_slice(body);
    out.freeze()
}

/// Name and value of the headers we send most, as rsip's `Display` writes them (`name: value`),
/// so that they are copied without going through the formatter; None for the others.
fn name_value(h: &Header) -> Option<(&str, &str)> {
    Some(match h {
        Header::Via(v) => ("Via", v.value()),
        Header::From(v) => ("From", v.value()),
        Header::To(v) => ("To", v.value()),
        Header::CallId(v) => ("Call-ID", v.value()),
        Header::CSeq(v) => ("CSeq", v.value()),
        Header::Contact(v) => ("Contact", v.value()),
        Header::MaxForwards(v) => ("Max-Forwards", v.value()),
        Header::ContentType(v) => ("Content-Type", v.value()),
        Header::RecordRoute(v) => ("Record-Route", v.value()),
        Header::Route(v) => ("Route", v.value()),
        Header::Server(v) => ("Server", v.value()),
        Header::UserAgent(v) => ("User-Agent", v.value()),
        Header::Allow(v) => ("Allow", v.value()),
        Header::Supported(v) => ("Supported", v.value()),
        Header::Other(name, value) => (name.as_str(), value.as_str()),
        _ => return None,
    })
}

/// What rsip's `Display` for a URI writes, without the strings it formats for each part.
fn write_uri(out: &mut BytesMut, uri: &rsip::Uri) {
    let _ = match &uri.scheme {
        Some(rsip::Scheme::Other(scheme)) => write!(out, "{scheme}://"),
        Some(scheme) => write!(out, "{scheme}:"),
        None => Ok(()),
    };
    if let Some(auth) = &uri.auth {
        let _ = write!(out, "{auth}@");
    }
    let _ = write!(out, "{}", uri.host_with_port);
    for param in &uri.params {
        let _ = write!(out, "{param}");
    }
}

/// Room for a message: the start line, the headers at a typical length each, the body.
fn encoded_size_hint(headers: &Headers, body: usize) -> usize {
    128 + 96 * headers.iter().size_hint().0 + body
}

/// A method as it is written on the wire (what rsip's Display prints, without its allocation).
pub fn method_name(method: &Method) -> &'static str {
    match method {
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Info => "INFO",
        Method::Invite => "INVITE",
        Method::Message => "MESSAGE",
        Method::Notify => "NOTIFY",
        Method::Options => "OPTIONS",
        Method::PRack => "PRACK",
        Method::Publish => "PUBLISH",
        Method::Refer => "REFER",
        Method::Register => "REGISTER",
        Method::Subscribe => "SUBSCRIBE",
        Method::Update => "UPDATE",
    }
}

/// Status code and reason phrase, with the standard phrase for codes rsip names itself
/// (rsip renders those as Rust identifiers, e.g. "BusyHere").
pub fn status_parts(status: &StatusCode) -> (u16, String) {
    let (code, reason) = status_parts_ref(status);
    (code, reason.to_string())
}

/// [`status_parts`] without copying the reason.
fn status_parts_ref(status: &StatusCode) -> (u16, &str) {
    match status {
        StatusCode::Other(code, reason) => (*code, reason.as_str()),
        other => {
            let code = other.code();
            (code, standard_reason(code))
        }
    }
}

pub fn status(code: u16, reason: &str) -> StatusCode {
    StatusCode::Other(code, reason.to_string())
}

/// RFC 3261 §21 reason phrases.
pub fn standard_reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

/// The first header `pick` accepts. rsip's `HeadersExt::*_header` would do the same, but it builds
/// its "missing header" error (an allocated String) before looking, on every call.
fn first<'a, T: HeadersExt, H: 'a>(
    msg: &'a T,
    pick: impl Fn(&'a Header) -> Option<&'a H>,
) -> Option<&'a H> {
    msg.headers().iter().find_map(pick)
}

fn from_header<T: HeadersExt>(msg: &T) -> Option<&rsip::headers::From> {
    first(msg, |h| match h {
        Header::From(f) => Some(f),
        _ => None,
    })
}

fn to_header<T: HeadersExt>(msg: &T) -> Option<&rsip::headers::To> {
    first(msg, |h| match h {
        Header::To(t) => Some(t),
        _ => None,
    })
}

pub fn call_id<T: HeadersExt>(msg: &T) -> Option<&str> {
    first(msg, |h| match h {
        Header::CallId(c) => Some(c),
        _ => None,
    })
    .map(|h| h.value())
}

pub fn cseq<T: HeadersExt>(msg: &T) -> Option<(u32, Method)> {
    let c = first(msg, |h| match h {
        Header::CSeq(c) => Some(c),
        _ => None,
    })?
    .typed()
    .ok()?;
    Some((c.seq, c.method))
}

/// The top Via value, raw. rsip's typed Via is not used: it fails on IPv6 sent-by and on
/// transports it does not know, both of which are valid.
pub fn top_via_value<T: HeadersExt>(msg: &T) -> Option<&str> {
    first(msg, |h| match h {
        Header::Via(v) => Some(v),
        _ => None,
    })
    .map(|v| v.value())
}

/// `SIP/2.0/UDP host:port;branch=…` → `host:port`.
pub fn via_sent_by(via: &str) -> Option<&str> {
    let rest = via.trim().split_once(char::is_whitespace)?.1;
    Some(rest.split(';').next()?.trim())
}

/// A Via parameter's value (case-insensitive name), e.g. `branch`.
pub fn via_param<'a>(via: &'a str, name: &str) -> Option<&'a str> {
    via.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub fn branch<T: HeadersExt>(msg: &T) -> Option<String> {
    top_via_value(msg)
        .and_then(|v| via_param(v, "branch"))
        .filter(|b| !b.is_empty())
        .map(str::to_string)
}

/// The `tag` of From or To. These headers, Contact and our own URIs are read here rather than
/// with rsip's typed headers: rsip 0.4 refuses IPv6 hosts (`<sip:1@[2001:db8::1]>`).
pub fn from_tag<T: HeadersExt>(msg: &T) -> Option<String> {
    header_param(from_header(msg)?.value(), "tag")
}

pub fn to_tag<T: HeadersExt>(msg: &T) -> Option<String> {
    header_param(to_header(msg)?.value(), "tag")
}

/// From's URI; a scheme other than sip:/sips: (tel:) as rsip reads it.
pub fn from_uri<T: HeadersExt>(msg: &T) -> Option<rsip::Uri> {
    let from = from_header(msg)?;
    parse_uri(uri_in_name_addr(from.value())).or_else(|| from.typed().ok().map(|f| f.uri))
}

pub fn to_uri<T: HeadersExt>(msg: &T) -> Option<rsip::Uri> {
    let to = to_header(msg)?;
    parse_uri(uri_in_name_addr(to.value())).or_else(|| to.typed().ok().map(|t| t.uri))
}

/// The first Contact's URI (`*` gives none); what the front end's parser refuses (URI headers)
/// as rsip reads it.
pub fn contact_uri<T: HeadersExt>(msg: &T) -> Option<rsip::Uri> {
    let contact = first(msg, |h| match h {
        Header::Contact(c) => Some(c),
        _ => None,
    })?;
    let first = split_list(contact.value()).into_iter().next()?;
    parse_uri(uri_in_name_addr(&first)).or_else(|| contact.typed().ok().map(|c| c.uri))
}

/// A sip:/sips: URI, IPv6 hosts and dotted user parts included (`sip::frontend::uri`).
pub fn parse_uri(text: &str) -> Option<rsip::Uri> {
    crate::sip::frontend::parse_sip_uri(text)
}

/// A header parameter of a name-addr or addr-spec value (`;tag=…` after the URI): after the
/// `>` of a name-addr, after the URI's first `;` otherwise (RFC 3261 §20: without angle
/// brackets, parameters belong to the header).
pub fn header_param(value: &str, name: &str) -> Option<String> {
    let params = match (value.find('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[b + 1..],
        _ => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k.trim().eq_ignore_ascii_case(name) && !v.trim().is_empty()).then(|| v.trim().to_string())
    })
}

/// An IP address as a URI host: IPv6 in brackets (RFC 3261 §25.1 IPv6reference).
pub fn uri_host(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The first value of a header rsip does not model (P-Asserted-Identity, Privacy, Reason…).
pub fn other_header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| match h {
        Header::Other(n, v) if n.eq_ignore_ascii_case(name) => Some(v.as_str()),
        _ => None,
    })
}

/// The URI inside a name-addr or addr-spec value: `"Alice" <sip:a@b>;tag=x` → `sip:a@b`.
pub fn uri_in_name_addr(value: &str) -> &str {
    match (value.find('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

pub fn content_type(headers: &Headers) -> Option<&str> {
    headers.iter().find_map(|h| match h {
        Header::ContentType(c) => Some(c.value()),
        _ => None,
    })
}

pub fn max_forwards(headers: &Headers) -> Option<u32> {
    headers.iter().find_map(|h| match h {
        Header::MaxForwards(m) => m.value().trim().parse().ok(),
        _ => None,
    })
}

/// The value of every header of one kind, in order (Record-Route, Via…).
pub fn all_values<'a, F>(headers: &'a Headers, pick: F) -> Vec<&'a str>
where
    F: Fn(&'a Header) -> Option<&'a str>,
{
    headers.iter().filter_map(pick).collect()
}

pub fn record_routes(headers: &Headers) -> Vec<String> {
    // Each header line may carry several comma-separated entries; split outside <>.
    let mut out = Vec::new();
    for h in headers.iter() {
        if let Header::RecordRoute(rr) = h {
            out.extend(split_list(rr.value()));
        }
    }
    out
}

/// Split a comma-separated header list, not splitting inside <> or quotes.
pub fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => {
                let part = value[start..i].trim();
                if !part.is_empty() {
                    out.push(part.to_string());
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let part = value[start..].trim();
    if !part.is_empty() {
        out.push(part.to_string());
    }
    out
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
