//! One framed message (start line + header section, and its body) to a [`Parsed`] value: the
//! checks run in the order RFC 3261 and RFC 4475 expect, then rsip parses the normalized text.

use super::error::Fault;
use super::normalize::{structure, unfold, Field};
use super::reject::refuse;
use super::startline::{is_response, parse_request_line, parse_status_line};
use super::syntax::via_branch;
use super::uri::{parse_request_uri, UriError};
use super::{split_lines, Limits, Parsed};
use crate::sip::validate::{allow_header, missing_reason};
use rsip::{Method, SipMessage};

/// The start line of the text rsip parses for a request. rsip needs a start line it can read;
/// the real method and Request-URI are set afterwards because its URI tokenizer misreads valid
/// URIs (see `uri.rs`). A status line, because rsip's request tokenizer builds error values that
/// copy the whole rest of the message on paths that do not match (the response tokenizer tried
/// first, the userinfo and the URI parameters of the Request-Line); the header section and the
/// body are tokenized by the same code either way.
const PLACEHOLDER_LINE: &[u8] = b"SIP/2.0 200 OK";

/// A header section (start line included), split into lines and unfolded once: framing reads
/// Content-Length from these fields and parsing goes on with them.
pub(crate) struct Head<'a> {
    /// the whole header section, for error responses
    pub raw: &'a [u8],
    pub start: &'a [u8],
    /// the header fields unfolded strictly, or the first fault found
    pub fields: Result<Vec<Field<'a>>, Fault>,
}

impl<'a> Head<'a> {
    pub fn new(raw: &'a [u8], limits: &Limits) -> Self {
        let lines = split_lines(raw);
        let start = lines.first().copied().unwrap_or_default();
        let fields = unfold(lines.get(1..).unwrap_or_default(), limits, true);
        Head { raw, start, fields }
    }
}

pub(crate) fn parse_frame(head: Head<'_>, body: &[u8], limits: &Limits) -> Parsed {
    let Head { raw, start, fields } = head;
    if is_response(start) {
        return match parse_response(start, fields, body, limits) {
            Ok(resp) => Parsed::Message(SipMessage::Response(resp)),
            Err(why) => Parsed::Drop(why),
        };
    }
    match parse_request(start, fields, body, limits) {
        Ok(req) => Parsed::Message(SipMessage::Request(req)),
        Err(fault) => refuse(raw, fault, limits),
    }
}

/// Methods are case-sensitive (RFC 3261 §7.1); rsip knows these fourteen and no others.
pub(crate) fn known_method(m: &str) -> Option<Method> {
    Some(match m {
        "ACK" => Method::Ack,
        "BYE" => Method::Bye,
        "CANCEL" => Method::Cancel,
        "INFO" => Method::Info,
        "INVITE" => Method::Invite,
        "MESSAGE" => Method::Message,
        "NOTIFY" => Method::Notify,
        "OPTIONS" => Method::Options,
        "PRACK" => Method::PRack,
        "PUBLISH" => Method::Publish,
        "REFER" => Method::Refer,
        "REGISTER" => Method::Register,
        "SUBSCRIBE" => Method::Subscribe,
        "UPDATE" => Method::Update,
        _ => return None,
    })
}

fn parse_request(
    start: &[u8],
    fields: Result<Vec<Field<'_>>, Fault>,
    body: &[u8],
    limits: &Limits,
) -> Result<rsip::Request, Fault> {
    let (method, uri) = parse_request_line(start)?;
    let fields = structure(fields?, limits)?;
    if let Some(reason) = missing_reason(|name| fields.iter().any(|f| f.is(name))) {
        return Err(Fault::bad(reason));
    }
    // An unknown method is a 501 even when its CSeq disagrees (RFC 4475 mismatch02).
    let Some(rsip_method) = known_method(method) else {
        let mut fault = Fault::new(501, "Not Implemented", "unknown method");
        fault.headers.push(allow_header());
        return Err(fault);
    };
    for f in fields.iter().filter(|f| f.is("CSeq")) {
        if f.value.split(' ').nth(1) != Some(method) {
            return Err(Fault::bad("CSeq Method Mismatch"));
        }
    }
    // A branch that is only the magic cookie identifies no transaction (RFC 4475 badbranch).
    if let Some(top) = fields.iter().find(|f| f.is("Via")) {
        if via_branch(&top.value) == Some("z9hG4bK") {
            return Err(Fault::bad("Bad Via Branch"));
        }
    }
    let uri = parse_request_uri(uri).map_err(|e| match e {
        UriError::Scheme(_) => Fault::new(416, "Unsupported URI Scheme", "unsupported scheme"),
        UriError::Malformed(reason) => Fault::bad(reason),
    })?;
    let text = assemble(&[PLACEHOLDER_LINE], &fields, body);
    match rsip::Response::try_from(text.as_slice()) {
        Ok(parsed) => Ok(rsip::Request {
            method: rsip_method,
            uri,
            version: parsed.version,
            headers: parsed.headers,
            body: parsed.body,
        }),
        Err(_) => Err(Fault::bad("Malformed Message")),
    }
}

fn parse_response(
    start: &[u8],
    fields: Result<Vec<Field<'_>>, Fault>,
    body: &[u8],
    limits: &Limits,
) -> Result<rsip::Response, &'static str> {
    let (code, reason) = parse_status_line(start)?;
    let fields = fields
        .and_then(|f| structure(f, limits))
        .map_err(|f| f.drop)?;
    if missing_reason(|name| fields.iter().any(|f| f.is(name))).is_some() {
        return Err("response without a mandatory header");
    }
    // We are the UAC of every transaction we start (RFC 3261 §8.1.3.3).
    if fields.iter().filter(|f| f.is("Via")).count() > 1 {
        return Err("response with more than one Via");
    }
    // three digits, 100 to 699 (`parse_status_line`)
    let digits = [100, 10, 1].map(|d| b'0' + (code / d % 10) as u8);
    let line = [&b"SIP/2.0 "[..], &digits, b" ", reason.as_bytes()];
    rsip::Response::try_from(assemble(&line, &fields, body).as_slice())
        .map_err(|_| "response rsip cannot parse")
}

/// The text rsip parses: the start line (in pieces), one field per line, the body.
fn assemble(start: &[&[u8]], fields: &[Field<'_>], body: &[u8]) -> Vec<u8> {
    let size = start.iter().map(|p| p.len()).sum::<usize>() + body.len() + 4;
    let size = fields
        .iter()
        .fold(size, |n, f| n + f.name.len() + f.value.len() + 4);
    let mut out = Vec::with_capacity(size);
    for piece in start {
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(b"\r\n");
    for f in fields {
        out.extend_from_slice(f.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(f.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}
