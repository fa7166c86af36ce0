//! Start lines: Request-Line and Status-Line (RFC 3261 §7.1, §7.2), checked here because rsip
//! tolerates some malformations (it scans the whole message for "://" to find a URI scheme).

use super::error::Fault;
use super::syntax::is_token;
use super::uri::check_shape;

/// A start line beginning with "SIP/" is a Status-Line; anything else is taken as a request.
pub(crate) fn is_response(line: &[u8]) -> bool {
    line.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
}

/// The method token of a request line, however broken the rest is.
pub(crate) fn method_of(line: &[u8]) -> &[u8] {
    line.split(|&b| b == b' ').next().unwrap_or_default()
}

/// SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, "SIP" case-insensitive (§7.1).
fn is_version(v: &str) -> bool {
    let Some(num) = v.get(4..).filter(|_| is_response(v.as_bytes())) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    num.split_once('.')
        .is_some_and(|(major, minor)| digits(major) && digits(minor))
}

fn is_supported_version(v: &str) -> bool {
    v.eq_ignore_ascii_case("SIP/2.0")
}

/// Method SP Request-URI SP SIP-Version: single spaces, nothing trailing (lwsstart, trws).
pub(crate) fn parse_request_line(line: &[u8]) -> Result<(&str, &str), Fault> {
    let malformed = || Fault::bad("Malformed Request-Line");
    let s = std::str::from_utf8(line).map_err(|_| malformed())?;
    let mut parts = s.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    if !is_token(method) || !is_version(version) {
        return Err(malformed());
    }
    if !is_supported_version(version) {
        return Err(Fault::new(
            505,
            "Version Not Supported",
            "unsupported version",
        ));
    }
    if !check_shape(uri) {
        return Err(Fault::bad("Malformed Request-URI"));
    }
    Ok((method, uri))
}

/// SIP-Version SP Status-Code SP Reason-Phrase. Errors say why the response is dropped.
pub(crate) fn parse_status_line(line: &[u8]) -> Result<(u16, &str), &'static str> {
    let s = std::str::from_utf8(line).map_err(|_| "malformed status line")?;
    let (version, rest) = s.split_once(' ').ok_or("malformed status line")?;
    if !is_version(version) {
        return Err("malformed status line");
    }
    if !is_supported_version(version) {
        return Err("unsupported SIP version in response");
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.is_empty() || !code.bytes().all(|c| c.is_ascii_digit()) {
        return Err("malformed status line");
    }
    let code = match code.parse::<u16>() {
        Ok(c) if code.len() == 3 && (100..=699).contains(&c) => c,
        _ => return Err("status code out of range"),
    };
    if reason.chars().any(|c| c.is_control() && c != '\t') {
        return Err("malformed status line");
    }
    Ok((code, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"INVITE sip:a@b SIP/2.0").unwrap(),
            ("INVITE", "sip:a@b")
        );
        let status = |l: &[u8]| parse_request_line(l).unwrap_err().status;
        assert_eq!(status(b"INVITE  sip:a@b  SIP/2.0"), 400);
        assert_eq!(status(b"OPTIONS sip:a@b SIP/2.0  "), 400);
        assert_eq!(status(b"INVITE sip:a@b; lr SIP/2.0"), 400);
        assert_eq!(status(b"INVITE <sip:a@b> SIP/2.0"), 400);
        assert_eq!(status(b"OPTIONS sip:a@b SIP/7.0"), 505);
        assert_eq!(status(b"GET / HTTP/1.1"), 400);
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"SIP/2.0 100 ").unwrap(), (100, ""));
        assert_eq!(parse_status_line(b"SIP/2.0 180").unwrap(), (180, ""));
        assert_eq!(
            parse_status_line(b"SIP/2.0 4294967301 better not break the receiver"),
            Err("status code out of range")
        );
        assert_eq!(
            parse_status_line(b"SIP/2.0 099 Low"),
            Err("status code out of range")
        );
        assert_eq!(
            parse_status_line(b"SIP/2.0 700 High"),
            Err("status code out of range")
        );
        assert!(parse_status_line(b"SIP/3.0 200 OK").is_err());
    }
}
