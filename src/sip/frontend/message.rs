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

/// rsip needs a start line it can read; the real method and Request-URI are set afterwards
/// because its URI tokenizer misreads valid URIs (see `uri.rs`).
const PLACEHOLDER_LINE: &str = "OPTIONS sip:placeholder.invalid SIP/2.0";

pub(crate) fn parse_frame(head: &[u8], body: &[u8], limits: &Limits) -> Parsed {
    let lines = split_lines(head);
    let start = lines.first().copied().unwrap_or_default();
    let headers = lines.get(1..).unwrap_or_default();
    if is_response(start) {
        return match parse_response(start, headers, body, limits) {
            Ok(resp) => Parsed::Message(SipMessage::Response(resp)),
            Err(why) => Parsed::Drop(why),
        };
    }
    match parse_request(start, headers, body, limits) {
        Ok(req) => Parsed::Message(SipMessage::Request(req)),
        Err(fault) => refuse(head, fault, limits),
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
    header_lines: &[&[u8]],
    body: &[u8],
    limits: &Limits,
) -> Result<rsip::Request, Fault> {
    let (method, uri) = parse_request_line(start)?;
    let fields = structure(unfold(header_lines, limits, true)?, limits)?;
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
    match SipMessage::try_from(assemble(PLACEHOLDER_LINE, &fields, body).as_slice()) {
        Ok(SipMessage::Request(mut req)) => {
            req.method = rsip_method;
            req.uri = uri;
            Ok(req)
        }
        _ => Err(Fault::bad("Malformed Message")),
    }
}

fn parse_response(
    start: &[u8],
    header_lines: &[&[u8]],
    body: &[u8],
    limits: &Limits,
) -> Result<rsip::Response, &'static str> {
    let (code, reason) = parse_status_line(start)?;
    let fields = unfold(header_lines, limits, true)
        .and_then(|f| structure(f, limits))
        .map_err(|f| f.drop)?;
    if missing_reason(|name| fields.iter().any(|f| f.is(name))).is_some() {
        return Err("response without a mandatory header");
    }
    // We are the UAC of every transaction we start (RFC 3261 §8.1.3.3).
    if fields.iter().filter(|f| f.is("Via")).count() > 1 {
        return Err("response with more than one Via");
    }
    let line = format!("SIP/2.0 {code} {reason}");
    match SipMessage::try_from(assemble(&line, &fields, body).as_slice()) {
        Ok(SipMessage::Response(resp)) => Ok(resp),
        _ => Err("response rsip cannot parse"),
    }
}

fn assemble(start: &str, fields: &[Field], body: &[u8]) -> Vec<u8> {
    let size = start.len() + body.len() + 4;
    let size = fields
        .iter()
        .fold(size, |n, f| n + f.name.len() + f.value.len() + 4);
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(start.as_bytes());
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
