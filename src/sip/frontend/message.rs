//! One framed message (start line + header section, and its body) to a [`Parsed`] value: the
//! checks run in the order RFC 3261 and RFC 4475 expect, then the rsip message is made from the
//! normalized fields (`headers_of`). A request's method and Request-URI are ours, not rsip's: its
//! URI tokenizer misreads valid URIs (see `uri.rs`), and its request tokenizer builds error values
//! that copy the whole rest of the message on paths that do not match.

use super::error::Fault;
use super::normalize::{structure, unfold, Field};
use super::reject::refuse;
use super::startline::{is_response, parse_request_line, parse_status_line};
use super::syntax::{is_token, via_branch};
use super::uri::{parse_request_uri, UriError};
use super::{split_lines, Limits, Parsed};
use crate::sip::validate::{allow_header, missing_reason};
use rsip::{Method, SipMessage};

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
    match headers_and_body(&fields, body) {
        Some((headers, body)) => Ok(rsip::Request {
            method: rsip_method,
            uri,
            version: rsip::Version::V2,
            headers,
            body,
        }),
        None => Err(Fault::bad("Malformed Message")),
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
    // rsip reads the status line alone (its status code and reason phrase as it makes them);
    // the header fields go in as `headers_of` makes them.
    let mut response = rsip::Response::try_from(assemble(&line, &[], b"").as_slice())
        .map_err(|_| "response rsip cannot parse")?;
    (response.headers, response.body) =
        headers_and_body(&fields, body).ok_or("response rsip cannot parse")?;
    Ok(response)
}

fn headers_and_body(fields: &[Field<'_>], body: &[u8]) -> Option<(rsip::Headers, Vec<u8>)> {
    #[cfg(test)]
    if reference::ON.get() {
        return reference::headers_and_body(fields, body);
    }
    Some((headers_of(fields)?, body.to_vec()))
}

/// The header fields as rsip's message tokenizer reads them from the lines `assemble` writes
/// (`name: value`: a name of token characters, then the value after the blanks that follow the
/// colon; rsip's name → header table), made from the fields themselves: writing the message out
/// and tokenizing it again took a quarter of a message's parsing. None where rsip would refuse
/// the message.
fn headers_of(fields: &[Field<'_>]) -> Option<rsip::Headers> {
    fields
        .iter()
        .map(|f| {
            if !is_token(f.name) {
                return None;
            }
            let value = f.value.trim_start_matches([' ', '\t']);
            rsip::headers::header::Tokenizer::from((f.name.as_bytes(), value.as_bytes()))
                .try_into()
                .ok()
        })
        .collect::<Option<Vec<rsip::Header>>>()
        .map(rsip::Headers::from)
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

/// How the fields went to rsip before `headers_of`: written out behind a placeholder status
/// line and tokenized by rsip. The front end's tests parse messages both ways.
#[cfg(test)]
pub(super) mod reference {
    use super::*;

    thread_local! {
        /// Parse this thread's messages the old way.
        pub static ON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    pub fn headers_and_body(fields: &[Field<'_>], body: &[u8]) -> Option<(rsip::Headers, Vec<u8>)> {
        let text = assemble(&[b"SIP/2.0 200 OK"], fields, body);
        let parsed = rsip::Response::try_from(text.as_slice()).ok()?;
        Some((parsed.headers, parsed.body))
    }
}
