//! The Request-URI. rsip 0.4 splits `sip:j.user@host` and `sip:user;par=u%40x.net@host` at the
//! wrong place (its userinfo stops at the first '.'), so the URI is split here, by RFC 3261 §25.1,
//! and handed to rsip as parts.

use super::syntax::{check_hostport, is_scheme, is_token};
use rsip::param::{OtherParam, OtherParamValue};
use rsip::{Auth, Host, HostWithPort, Param, Port, Scheme, Uri};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UriError {
    /// A well-formed URI whose scheme is not sip/sips.
    Scheme(String),
    Malformed(&'static str),
}

const MALFORMED: UriError = UriError::Malformed("Malformed Request-URI");

/// Checks the shape every Request-URI must have whatever its scheme; used before the method is
/// known so that a broken start line is a 400 whatever the method.
pub(crate) fn check_shape(u: &str) -> bool {
    u.split_once(':')
        .is_some_and(|(scheme, rest)| is_scheme(scheme) && !rest.is_empty())
        && !u
            .bytes()
            .any(|c| c.is_ascii_control() || matches!(c, b' ' | b'<' | b'>' | b'"'))
}

pub(crate) fn parse_request_uri(u: &str) -> Result<Uri, UriError> {
    if !check_shape(u) {
        return Err(MALFORMED);
    }
    let (scheme, rest) = u.split_once(':').ok_or(MALFORMED)?;
    let scheme = if scheme.eq_ignore_ascii_case("sip") {
        Scheme::Sip
    } else if scheme.eq_ignore_ascii_case("sips") {
        Scheme::Sips
    } else {
        // rsip renders any other scheme as "x://", so tel: and friends cannot be carried
        return Err(UriError::Scheme(scheme.to_ascii_lowercase()));
    };
    // Any '@' ends the userinfo: host, params and headers may not contain one.
    let (userinfo, host_part) = match rest.split_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, rest),
    };
    if host_part.contains('?') {
        // RFC 3261 §19.1.1: headers are not allowed in a Request-URI
        return Err(UriError::Malformed("Headers Not Allowed In Request-URI"));
    }
    let mut pieces = host_part.split(';');
    let hostport = pieces.next().unwrap_or("");
    let host_with_port = parse_hostport(hostport).ok_or(MALFORMED)?;
    let auth = match userinfo {
        None => None,
        Some(info) => {
            if info.is_empty() || !chars_ok(info, b"-_.!~*'()&=+$,;?/:") {
                return Err(MALFORMED);
            }
            Some(match info.split_once(':') {
                Some((user, password)) => Auth {
                    user: user.to_string(),
                    password: Some(password.to_string()),
                },
                None => Auth {
                    user: info.to_string(),
                    password: None,
                },
            })
        }
    };
    let params = pieces.map(parse_param).collect::<Option<Vec<_>>>();
    Ok(Uri {
        scheme: Some(scheme),
        auth,
        host_with_port,
        params: params.ok_or(MALFORMED)?,
        headers: Vec::new(),
    })
}

/// A sip:/sips: URI anywhere (a header's, one we build): the Request-URI's parser, which takes
/// what rsip 0.4's refuses — IPv6 references (`sip:1@[2001:db8::1]:5060`) and dotted or
/// escaped user parts.
pub(crate) fn parse_sip_uri(u: &str) -> Option<Uri> {
    parse_request_uri(u.trim()).ok()
}

fn parse_hostport(s: &str) -> Option<HostWithPort> {
    if !check_hostport(s) {
        return None;
    }
    // IPv6 references stay text: rsip would print an IpAddr::V6 without its brackets
    let (host, port) = match s.rfind(':') {
        Some(p) if !s[p..].contains(']') => (&s[..p], Some(&s[p + 1..])),
        _ => (s, None),
    };
    let port = match port {
        Some(p) => Some(Port::from(p.parse::<u16>().ok()?)),
        None => None,
    };
    Some(HostWithPort {
        host: Host::from(host),
        port,
    })
}

fn parse_param(p: &str) -> Option<Param> {
    let (name, value) = match p.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (p, None),
    };
    let extra = b"-_.!~*'()[]/:&+$";
    if name.is_empty() || !chars_ok(name, extra) || !value.is_none_or(|v| chars_ok(v, extra)) {
        return None;
    }
    // rsip refuses e.g. transport=sctp-foo or method=FOO; keep those as plain parameters
    let known = if is_token(name) {
        Param::try_from((name, value)).ok()
    } else {
        None
    };
    Some(
        known.unwrap_or_else(|| {
            Param::Other(OtherParam::new(name), value.map(OtherParamValue::new))
        }),
    )
}

/// Alphanumerics, the `extra` marks, and well-formed %HH escapes; non-ASCII is tolerated.
fn chars_ok(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = b.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if c.is_ascii_alphanumeric() || extra.contains(&c) || !c.is_ascii() {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_with_dots_and_semicolons() {
        let u = parse_request_uri("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert_eq!(u.host().to_string(), "example.com");
        let u = parse_request_uri("sip:j.user@example.com:5070;transport=tcp;lr").unwrap();
        assert_eq!(u.user(), Some("j.user"));
        assert_eq!(
            u.to_string(),
            "sip:j.user@example.com:5070;transport=TCP;lr"
        );
        let u = parse_request_uri("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(u.user(), Some("sips%3Auser%40example.com"));
    }

    #[test]
    fn ipv6_keeps_brackets() {
        let u = parse_request_uri("sips:alice@[2001:db8::1]:5061").unwrap();
        assert_eq!(u.to_string(), "sips:alice@[2001:db8::1]:5061");
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse_request_uri("tel:+15551234567"),
            Err(UriError::Scheme("tel".into()))
        );
        assert!(matches!(
            parse_request_uri("sip:user@example.com?Route=%3Csip:example.com%3E"),
            Err(UriError::Malformed(_))
        ));
        assert!(parse_request_uri("<sip:user@example.com>").is_err());
        assert!(parse_request_uri("sip:@example.com").is_err());
        assert!(parse_request_uri("sip:a@b;;").is_err());
        assert!(parse_request_uri("sip:a%4@b").is_err());
    }
}
