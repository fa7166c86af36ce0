//! Header normalization before rsip sees a message: unfold continuation lines, expand compact
//! names, drop LWS around the colon, check and canonicalize the header fields the gateway relies
//! on, put one Via/Contact/Route value per line, and enforce the header limits.

use super::error::Fault;
use super::syntax::{
    check_call_id, check_name_addr, check_via, collapse_lws, is_token, parse_cseq, parse_decimal,
    split_top,
};
use super::Limits;

/// One header field: name with compact forms expanded, value unfolded and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub name: String,
    pub value: String,
}

impl Field {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// RFC 3261 §7.3.3 and the IANA registry's compact forms.
const COMPACT: [(u8, &str); 20] = [
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'n', "Identity-Info"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// The full name of a compact form, else `name` itself.
pub(crate) fn expand_name(name: &str) -> &str {
    match name.as_bytes() {
        [c] => COMPACT
            .iter()
            .find(|(k, _)| *k == c.to_ascii_lowercase())
            .map_or(name, |(_, full)| full),
        _ => name,
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// Turns the header lines (everything after the start line, split at CRLF) into fields.
/// In `strict` mode a broken line is a fault; otherwise it is skipped, which is how the headers
/// needed for an error response are salvaged from a broken message.
pub(crate) fn unfold(lines: &[&[u8]], limits: &Limits, strict: bool) -> Result<Vec<Field>, Fault> {
    let mut raw: Vec<(String, Vec<u8>)> = Vec::new();
    let mut skipping = false;
    for line in lines {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // a continuation line: CRLF + WSP is one SP (RFC 3261 §7.3.1)
            match raw.last_mut() {
                Some((_, value)) if !skipping => {
                    let more = trim(line);
                    if !more.is_empty() {
                        value.push(b' ');
                        value.extend_from_slice(more);
                    }
                }
                _ if strict => return Err(Fault::bad("Malformed Header Folding")),
                _ => {}
            }
            continue;
        }
        let parsed = line.iter().position(|&b| b == b':').and_then(|colon| {
            let name = std::str::from_utf8(trim(&line[..colon])).ok()?;
            is_token(name).then(|| {
                (
                    expand_name(name).to_string(),
                    trim(&line[colon + 1..]).to_vec(),
                )
            })
        });
        match parsed {
            Some(field) => {
                if strict && raw.len() >= limits.max_headers {
                    return Err(Fault::too_large("Too Many Headers"));
                }
                raw.push(field);
                skipping = false;
            }
            None if strict => return Err(Fault::bad("Malformed Header Line")),
            None => skipping = true,
        }
    }
    let mut fields = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let value = trim(&value);
        if value.iter().any(|&b| b == b'\r' || b == b'\n') {
            if strict {
                return Err(Fault::bad(format!("Bare CR or LF in {name}")));
            }
            continue;
        }
        let value = match std::str::from_utf8(value) {
            Ok(v) => v.to_string(),
            Err(_) if strict => return Err(Fault::bad(format!("Invalid UTF-8 in {name}"))),
            Err(_) => String::from_utf8_lossy(value).into_owned(),
        };
        fields.push(Field { name, value });
    }
    Ok(fields)
}

/// Splits a list header into its values; None if a quote is unbalanced or a value is empty.
pub(crate) fn split_list(value: &str) -> Option<Vec<&str>> {
    let parts = split_top(value, b',')?;
    let parts: Vec<&str> = parts.into_iter().map(str::trim).collect();
    (!parts.iter().any(|p| p.is_empty())).then_some(parts)
}

/// Checks and canonicalizes the header fields the gateway relies on.
pub(crate) fn structure(fields: Vec<Field>, limits: &Limits) -> Result<Vec<Field>, Fault> {
    let mut out = Vec::with_capacity(fields.len());
    let mut vias = 0usize;
    let push = |out: &mut Vec<Field>, name: &str, value: String| {
        out.push(Field {
            name: name.to_string(),
            value,
        })
    };
    for f in fields {
        let lower = f.name.to_ascii_lowercase();
        match lower.as_str() {
            "via" => {
                let v = collapse_lws(&f.value, b"/;=,:");
                let parts = split_list(&v).ok_or_else(|| Fault::bad("Malformed Via"))?;
                for p in parts {
                    if !check_via(p) {
                        return Err(Fault::bad("Malformed Via"));
                    }
                    vias += 1;
                    if vias > limits.max_via {
                        return Err(Fault::too_large("Too Many Via Headers"));
                    }
                    push(&mut out, "Via", p.to_string());
                }
            }
            "from" | "to" => {
                let name = if lower == "to" { "To" } else { "From" };
                let v = collapse_lws(&f.value, b";=");
                if !check_name_addr(&v, false) {
                    return Err(Fault::bad(format!("Malformed {name}")));
                }
                push(&mut out, name, v);
            }
            "contact" | "route" | "record-route" => {
                let name = match lower.as_str() {
                    "contact" => "Contact",
                    "route" => "Route",
                    _ => "Record-Route",
                };
                let v = collapse_lws(&f.value, b";=,");
                if name == "Contact" && v == "*" {
                    push(&mut out, name, v);
                    continue;
                }
                let bad = || Fault::bad(format!("Malformed {name}"));
                for p in split_list(&v).ok_or_else(bad)? {
                    if !check_name_addr(p, name != "Contact") {
                        return Err(bad());
                    }
                    push(&mut out, name, p.to_string());
                }
            }
            "call-id" => {
                if !check_call_id(&f.value) {
                    return Err(Fault::bad("Malformed Call-ID"));
                }
                push(&mut out, "Call-ID", f.value);
            }
            "cseq" => {
                let (seq, method) = parse_cseq(&f.value).map_err(Fault::bad)?;
                push(&mut out, "CSeq", format!("{seq} {method}"));
            }
            "max-forwards" => match parse_decimal(&f.value) {
                Some(n) if n <= 255 => push(&mut out, "Max-Forwards", n.to_string()),
                _ => return Err(Fault::bad("Bad Max-Forwards")),
            },
            "content-length" => match parse_decimal(&f.value) {
                Some(n) => push(&mut out, "Content-Length", n.to_string()),
                None => return Err(Fault::bad("Bad Content-Length")),
            },
            _ => out.push(f),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Result<Vec<Field>, Fault> {
        let lines: Vec<&[u8]> = text.split("\r\n").map(str::as_bytes).collect();
        let limits = Limits::default();
        structure(unfold(&lines, &limits, true)?, &limits)
    }

    fn pairs(f: &[Field]) -> Vec<(&str, &str)> {
        f.iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect()
    }

    #[test]
    fn folding_is_unfolded() {
        let f = fields("Subject: one\r\n  two\r\n\tthree\r\nXy: y").unwrap();
        assert_eq!(pairs(&f), [("Subject", "one two three"), ("Xy", "y")]);
        let f = fields("cseq: 0009\r\n  INVITE").unwrap();
        assert_eq!(pairs(&f), [("CSeq", "9 INVITE")]);
        assert!(fields("  leading continuation").is_err());
    }

    #[test]
    fn compact_names_expand() {
        let text = "i: a@b\r\nm: <sip:x@y>\r\ne: gzip\r\nl: 0\r\nc: application/sdp\r\n\
                    f: <sip:a@b>;tag=1\r\ns: hi\r\nk: timer\r\nt: sip:c@d\r\nv: SIP/2.0/UDP h\r\n\
                    o: refer\r\nr: <sip:z@w>\r\nb: <sip:q@w>\r\nx: 90\r\nu: talk\r\ny: abc\r\n\
                    a: *;audio\r\nj: *;video\r\nd: proxy\r\nn: <http://x/y>;alg=rsa-sha1\r\nz: kept";
        let names: Vec<String> = fields(text).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "Call-ID",
                "Contact",
                "Content-Encoding",
                "Content-Length",
                "Content-Type",
                "From",
                "Subject",
                "Supported",
                "To",
                "Via",
                "Event",
                "Refer-To",
                "Referred-By",
                "Session-Expires",
                "Allow-Events",
                "Identity",
                "Accept-Contact",
                "Reject-Contact",
                "Request-Disposition",
                "Identity-Info",
                "z"
            ]
        );
    }

    #[test]
    fn lws_around_colon_and_lists() {
        let f = fields("Via  :  SIP / 2.0 / UDP a , SIP/2.0/TCP b ; branch = z9hG4bK1").unwrap();
        assert_eq!(
            pairs(&f),
            [
                ("Via", "SIP/2.0/UDP a"),
                ("Via", "SIP/2.0/TCP b;branch=z9hG4bK1")
            ]
        );
        let f = fields("Contact: <sip:a@b>;q=0.5, \"x, y\" <sip:c@d>").unwrap();
        assert_eq!(
            pairs(&f),
            [
                ("Contact", "<sip:a@b>;q=0.5"),
                ("Contact", "\"x, y\" <sip:c@d>")
            ]
        );
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_headers: 3,
            max_via: 2,
            ..Limits::default()
        };
        let four: Vec<&[u8]> = vec![b"A: 1", b"B: 2", b"C: 3", b"D: 4"];
        let err = unfold(&four, &limits, true).unwrap_err();
        assert_eq!((err.status, err.reason.as_str()), (513, "Too Many Headers"));
        // salvage mode never fails
        assert_eq!(unfold(&four, &limits, false).unwrap().len(), 4);
        let vias: Vec<&[u8]> = vec![b"Via: SIP/2.0/UDP a, SIP/2.0/UDP b", b"v: SIP/2.0/UDP c"];
        let err = structure(unfold(&vias, &limits, true).unwrap(), &limits).unwrap_err();
        assert_eq!(
            (err.status, err.reason.as_str()),
            (513, "Too Many Via Headers")
        );
    }

    #[test]
    fn broken_values_are_named() {
        let reason = |t: &str| fields(t).unwrap_err().reason;
        assert_eq!(reason("Via: SIP/2.0/UDP 192.0.2.15;;,;,,"), "Malformed Via");
        assert_eq!(reason("To: \"Mr. J. User <sip:j@x>"), "Malformed To");
        assert_eq!(reason("Call-ID: a b"), "Malformed Call-ID");
        assert_eq!(reason("Max-Forwards: 300"), "Bad Max-Forwards");
        assert_eq!(reason("No colon here"), "Malformed Header Line");
        assert_eq!(reason("Bad Name: x"), "Malformed Header Line");
        let latin1: Vec<&[u8]> = vec![b"Subject: caf\xe9"];
        let err = unfold(&latin1, &Limits::default(), true).unwrap_err();
        assert_eq!(err.reason, "Invalid UTF-8 in Subject");
    }
}
