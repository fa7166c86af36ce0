//! Header normalization before rsip sees a message: unfold continuation lines, expand compact
//! names, drop LWS around the colon, check and canonicalize the header fields the gateway relies
//! on, put one Via/Contact/Route value per line, and enforce the header limits.

use super::error::Fault;
use super::syntax::{
    check_call_id, check_name_addr, check_via, collapse_lws, is_token, parse_cseq, parse_decimal,
    TopLevel,
};
use super::Limits;
use std::borrow::Cow;
use std::fmt;

/// One header field: name with compact forms expanded, value unfolded and trimmed. Both borrow
/// the received bytes unless unfolding or canonicalization changed the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

impl Field<'_> {
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
/// needed for an error response are salvaged from a broken message. When `strict` succeeds,
/// the lenient mode gives the same fields.
pub(crate) fn unfold<'a>(
    lines: &[&'a [u8]],
    limits: &Limits,
    strict: bool,
) -> Result<Vec<Field<'a>>, Fault> {
    let mut raw: Vec<(&'a str, Cow<'a, [u8]>)> = Vec::with_capacity(lines.len());
    let mut skipping = false;
    for line in lines {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // a continuation line: CRLF + WSP is one SP (RFC 3261 §7.3.1)
            match raw.last_mut() {
                Some((_, value)) if !skipping => {
                    let more = trim(line);
                    if !more.is_empty() {
                        let value = value.to_mut();
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
            let value = Cow::Borrowed(trim(&line[colon + 1..]));
            is_token(name).then(|| (expand_name(name), value))
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
        if trim(&value).iter().any(|&b| b == b'\r' || b == b'\n') {
            if strict {
                return Err(Fault::bad(format!("Bare CR or LF in {name}")));
            }
            continue;
        }
        // A display name in Latin-1 (old PBXs) is carried with its bytes replaced: being
        // liberal there costs nothing, while refusing it refuses the call.
        let refuse_bad_utf8 = strict && !carries_display_name(name);
        let value = match value {
            Cow::Borrowed(v) => match std::str::from_utf8(trim(v)) {
                Ok(v) => Cow::Borrowed(v),
                Err(_) if refuse_bad_utf8 => {
                    return Err(Fault::bad(format!("Invalid UTF-8 in {name}")))
                }
                Err(_) => replaced(name, trim(v), strict),
            },
            Cow::Owned(v) => {
                let v = trim(&v);
                match std::str::from_utf8(v) {
                    Ok(v) => Cow::Owned(v.to_string()),
                    Err(_) if refuse_bad_utf8 => {
                        return Err(Fault::bad(format!("Invalid UTF-8 in {name}")))
                    }
                    Err(_) => Cow::Owned(replaced(name, v, strict).into_owned()),
                }
            }
        };
        fields.push(Field { name, value });
    }
    Ok(fields)
}

/// Headers whose value starts with a display name, which may come in any charset.
fn carries_display_name(name: &str) -> bool {
    ["From", "To", "P-Asserted-Identity"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// A value that is not UTF-8, its bad bytes replaced by U+FFFD; logged once (in the strict
/// pass, the one whose fields are used).
fn replaced<'a>(name: &str, value: &'a [u8], log: bool) -> Cow<'a, str> {
    if log {
        tracing::info!(
            header = name,
            "invalid UTF-8 bytes replaced in a header value"
        );
    }
    String::from_utf8_lossy(value)
}

/// Splits a list header into its values; None if a quote is unbalanced or a value is empty.
pub(crate) fn split_list(value: &str) -> Option<Vec<&str>> {
    list_ok(value).then(|| {
        TopLevel::new(value, b',')
            .map(|p| p.unwrap_or_default().trim())
            .collect()
    })
}

/// Whether [`split_list`] would succeed, without collecting the values.
fn list_ok(value: &str) -> bool {
    TopLevel::new(value, b',').all(|p| p.is_some_and(|p| !p.trim().is_empty()))
}

/// Calls `each` with every value of a list header in order, or fails with `bad()` first if
/// [`split_list`] would fail. Values borrow the message text when `value` does.
fn each_value<'a>(
    value: Cow<'a, str>,
    bad: impl Fn() -> Fault,
    mut each: impl FnMut(Cow<'a, str>) -> Result<(), Fault>,
) -> Result<(), Fault> {
    if !list_ok(&value) {
        return Err(bad());
    }
    match value {
        Cow::Borrowed(v) => TopLevel::new(v, b',')
            .try_for_each(|p| each(Cow::Borrowed(p.unwrap_or_default().trim()))),
        Cow::Owned(v) => TopLevel::new(&v, b',')
            .try_for_each(|p| each(Cow::Owned(p.unwrap_or_default().trim().to_string()))),
    }
}

/// `collapse_lws` that keeps the borrow of the message text when nothing changes.
fn collapse<'a>(value: Cow<'a, str>, seps: &[u8]) -> Cow<'a, str> {
    match value {
        Cow::Borrowed(v) => collapse_lws(v, seps),
        Cow::Owned(v) => Cow::Owned(collapse_lws(&v, seps).into_owned()),
    }
}

/// Whether formatting `args` gives exactly `text` (compared as it is written: no allocation).
fn formats_as(text: &str, args: fmt::Arguments<'_>) -> bool {
    struct Compare<'s> {
        rest: &'s [u8],
        same: bool,
    }
    impl fmt::Write for Compare<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            match self.rest.strip_prefix(s.as_bytes()) {
                Some(rest) if self.same => self.rest = rest,
                _ => self.same = false,
            }
            Ok(())
        }
    }
    let mut cmp = Compare {
        rest: text.as_bytes(),
        same: true,
    };
    let _ = fmt::write(&mut cmp, args);
    cmp.same && cmp.rest.is_empty()
}

/// The header fields `structure` checks and rewrites, by canonical name.
fn checked_name(name: &str) -> Option<&'static str> {
    const CHECKED: [&str; 10] = [
        "Via",
        "From",
        "To",
        "Contact",
        "Route",
        "Record-Route",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Content-Length",
    ];
    CHECKED.into_iter().find(|c| c.eq_ignore_ascii_case(name))
}

/// Checks and canonicalizes the header fields the gateway relies on.
pub(crate) fn structure<'a>(
    fields: Vec<Field<'a>>,
    limits: &Limits,
) -> Result<Vec<Field<'a>>, Fault> {
    let mut out = Vec::with_capacity(fields.len() + 2);
    let mut vias = 0usize;
    for f in fields {
        let Some(name) = checked_name(f.name) else {
            out.push(f);
            continue;
        };
        match name {
            "Via" => {
                let v = collapse(f.value, b"/;=,:");
                let bad = || Fault::bad("Malformed Via");
                each_value(v, bad, |p| {
                    if !check_via(&p) {
                        return Err(bad());
                    }
                    vias += 1;
                    if vias > limits.max_via {
                        return Err(Fault::too_large("Too Many Via Headers"));
                    }
                    out.push(Field { name, value: p });
                    Ok(())
                })?;
            }
            "From" | "To" => {
                let v = collapse(f.value, b";=");
                if !check_name_addr(&v, false) {
                    return Err(Fault::bad(format!("Malformed {name}")));
                }
                out.push(Field { name, value: v });
            }
            "Contact" | "Route" | "Record-Route" => {
                let v = collapse(f.value, b";=,");
                if name == "Contact" && v == "*" {
                    out.push(Field { name, value: v });
                    continue;
                }
                let bad = || Fault::bad(format!("Malformed {name}"));
                each_value(v, bad, |p| {
                    if !check_name_addr(&p, name != "Contact") {
                        return Err(bad());
                    }
                    out.push(Field { name, value: p });
                    Ok(())
                })?;
            }
            "Call-ID" => {
                if !check_call_id(&f.value) {
                    return Err(Fault::bad("Malformed Call-ID"));
                }
                out.push(Field {
                    name,
                    value: f.value,
                });
            }
            "CSeq" => {
                let (seq, method) = parse_cseq(&f.value).map_err(Fault::bad)?;
                let rewritten = (!formats_as(&f.value, format_args!("{seq} {method}")))
                    .then(|| format!("{seq} {method}"));
                let value = rewritten.map_or(f.value, Cow::Owned);
                out.push(Field { name, value });
            }
            "Max-Forwards" => match parse_decimal(&f.value) {
                Some(n) if n <= 255 => out.push(Field {
                    name,
                    value: canonical_number(f.value, n),
                }),
                _ => return Err(Fault::bad("Bad Max-Forwards")),
            },
            _ => match parse_decimal(&f.value) {
                // Content-Length
                Some(n) => out.push(Field {
                    name,
                    value: canonical_number(f.value, n),
                }),
                None => return Err(Fault::bad("Bad Content-Length")),
            },
        }
    }
    Ok(out)
}

/// `n` in decimal, borrowing `value` when it already is exactly that (no leading zeros).
fn canonical_number(value: Cow<'_, str>, n: u64) -> Cow<'_, str> {
    if formats_as(&value, format_args!("{n}")) {
        value
    } else {
        Cow::Owned(n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Result<Vec<Field<'_>>, Fault> {
        let lines: Vec<&[u8]> = text.split("\r\n").map(str::as_bytes).collect();
        let limits = Limits::default();
        structure(unfold(&lines, &limits, true)?, &limits)
    }

    fn pairs<'a>(f: &'a [Field<'_>]) -> Vec<(&'a str, &'a str)> {
        f.iter().map(|f| (f.name, f.value.as_ref())).collect()
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
    fn values_borrow_the_message_unless_rewritten() {
        let f = fields(
            "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: A <sip:a@b>;tag=1\r\nCSeq: 1 INVITE\r\n\
             Max-Forwards: 70\r\nl: 0\r\nCSeq: 01 INVITE\r\nMax-Forwards: 070\r\nX: a\r\n b",
        )
        .unwrap();
        let owned: Vec<&str> = f
            .iter()
            .filter(|f| matches!(f.value, Cow::Owned(_)))
            .map(|f| f.value.as_ref())
            .collect();
        assert_eq!(owned, ["1 INVITE", "70", "a b"]);
        assert_eq!(f[4].name, "Content-Length");
    }

    #[test]
    fn compact_names_expand() {
        let text = "i: a@b\r\nm: <sip:x@y>\r\ne: gzip\r\nl: 0\r\nc: application/sdp\r\n\
                    f: <sip:a@b>;tag=1\r\ns: hi\r\nk: timer\r\nt: sip:c@d\r\nv: SIP/2.0/UDP h\r\n\
                    o: refer\r\nr: <sip:z@w>\r\nb: <sip:q@w>\r\nx: 90\r\nu: talk\r\ny: abc\r\n\
                    a: *;audio\r\nj: *;video\r\nd: proxy\r\nn: <http://x/y>;alg=rsa-sha1\r\nz: kept";
        let names: Vec<&str> = fields(text).unwrap().into_iter().map(|f| f.name).collect();
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
        // A display name is carried, its bad bytes replaced.
        let from: Vec<&[u8]> = vec![b"From: \"Jos\xe9\" <sip:1@h>;tag=a"];
        let f = unfold(&from, &Limits::default(), true).unwrap();
        assert_eq!(pairs(&f), [("From", "\"Jos\u{fffd}\" <sip:1@h>;tag=a")]);
    }
}
