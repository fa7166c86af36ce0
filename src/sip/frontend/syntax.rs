//! RFC 3261 grammar checks for the header fields the gateway relies on.
//!
//! rsip's typed parsers are lax in some places (they accept `garbage` as a From) and strict in
//! others (they reject unknown Via transports and quoted parameter values), so validity is decided
//! here, on the unfolded text, and rsip only stores the result.

use std::borrow::Cow;

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Length of the quoted string that starts at `s[0] == '"'`, both quotes included; None if the
/// closing quote is missing.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            // quoted-pair may escape anything but CR and LF
            b'\\' => match s.get(i + 1) {
                Some(b'\r') | Some(b'\n') | None => return None,
                Some(_) => i += 2,
            },
            b'"' => return Some(i + 1),
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// The pieces of `s` between `sep` bytes outside quoted strings and `<...>`, in order; an item
/// is None (and the last one) where a quote is unbalanced.
pub(crate) struct TopLevel<'a> {
    s: &'a str,
    sep: u8,
    start: usize,
    done: bool,
}

impl<'a> TopLevel<'a> {
    pub fn new(s: &'a str, sep: u8) -> Self {
        TopLevel {
            s,
            sep,
            start: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for TopLevel<'a> {
    type Item = Option<&'a str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let b = self.s.as_bytes();
        let mut i = self.start;
        while i < b.len() {
            match b[i] {
                b'"' => match quoted_len(&b[i..]) {
                    Some(n) => i += n,
                    None => {
                        self.done = true;
                        return Some(None);
                    }
                },
                b'<' => match b[i..].iter().position(|&c| c == b'>') {
                    Some(p) => i += p + 1,
                    None => i = b.len(),
                },
                c if c == self.sep => {
                    let part = &self.s[self.start..i];
                    self.start = i + 1;
                    return Some(Some(part));
                }
                _ => i += 1,
            }
        }
        self.done = true;
        Some(Some(&self.s[self.start..]))
    }
}

/// Whether `collapse_lws` leaves `b` as it is, found without walking it byte by byte (most
/// values, and every message runs several through it): each white space is one SP between two
/// bytes that are neither white space nor separators. Inside a quoted string or `<...>` such a
/// space is kept as well, so where it stands does not matter; any other white space (even one
/// `collapse_lws` would keep, inside quotes) sends the value the long way.
fn is_collapsed(b: &[u8], seps: &[u8]) -> bool {
    let plain = |c: u8| !is_wsp(c) && !seps.contains(&c);
    memchr::memchr2_iter(b' ', b'\t', b)
        .all(|i| b[i] == b' ' && i > 0 && i + 1 < b.len() && plain(b[i - 1]) && plain(b[i + 1]))
}

/// Removes linear white space next to any of `seps` and squeezes other runs to one SP, outside
/// quoted strings and `<...>`. RFC 3261 allows LWS around `;`, `=`, `/` and friends; rsip does not.
/// Borrows `s` when that changes nothing.
pub(crate) fn collapse_lws<'a>(s: &'a str, seps: &[u8]) -> Cow<'a, str> {
    let b = s.as_bytes();
    if is_collapsed(b, seps) {
        return Cow::Borrowed(s);
    }
    // None while what was written is exactly b[..i]
    let mut out: Option<Vec<u8>> = None;
    // where the white space not yet written starts
    let mut pending_ws: Option<usize> = None;
    let mut last: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_wsp(c) {
            pending_ws.get_or_insert(i);
            i += 1;
            continue;
        }
        let is_sep = seps.contains(&c);
        if let Some(ws) = pending_ws.take() {
            let space = !is_sep && last.is_some_and(|l| !seps.contains(&l));
            let unchanged = space && i - ws == 1 && b[ws] == b' ';
            if !unchanged {
                let out = out.get_or_insert_with(|| {
                    let mut v = Vec::with_capacity(b.len());
                    v.extend_from_slice(&b[..ws]);
                    v
                });
                if space {
                    out.push(b' ');
                }
            } else if let Some(out) = out.as_mut() {
                out.push(b' ');
            }
        }
        let len = match c {
            _ if is_sep => 1,
            b'"' => quoted_len(&b[i..]).unwrap_or(b.len() - i),
            b'<' => b[i..]
                .iter()
                .position(|&x| x == b'>')
                .map_or(b.len() - i, |p| p + 1),
            _ => 1,
        };
        if let Some(out) = out.as_mut() {
            out.extend_from_slice(&b[i..i + len]);
        }
        last = Some(b[i + len - 1]);
        i += len;
    }
    match (out, pending_ws) {
        // trailing white space is dropped
        (None, Some(ws)) => Cow::Borrowed(&s[..ws]),
        (None, None) => Cow::Borrowed(s),
        // Only ASCII white space was removed, so the bytes are still UTF-8.
        (Some(out), _) => {
            Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| s.trim().to_string()))
        }
    }
}

/// `*( SEMI generic-param )` where generic-param = token [ EQUAL ( token / host / quoted-string ) ].
pub(crate) fn check_params(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let Some(rest) = s.strip_prefix(';') else {
        return false;
    };
    // false on an unbalanced quote, as on any bad parameter
    TopLevel::new(rest, b';').all(|p| {
        let Some(p) = p else {
            return false;
        };
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        is_token(name) && value.is_none_or(check_gen_value)
    })
}

fn check_gen_value(v: &str) -> bool {
    let b = v.as_bytes();
    if b.first() == Some(&b'"') {
        return quoted_len(b) == Some(b.len());
    }
    // token or host (IPv6 references add ':' '[' ']')
    !b.is_empty()
        && b.iter()
            .all(|&c| is_token_char(c) || c == b':' || c == b'[' || c == b']')
}

/// A URI as found in name-addr/addr-spec: a scheme, a colon and no white space or delimiters.
pub(crate) fn check_uri(u: &str) -> bool {
    let Some((scheme, rest)) = u.split_once(':') else {
        return false;
    };
    if !is_scheme(scheme) || rest.is_empty() {
        return false;
    }
    if u.bytes()
        .any(|c| c.is_ascii_control() || matches!(c, b' ' | b'<' | b'>' | b'"'))
    {
        return false;
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        // any '@' ends the userinfo: none may occur in host, params or headers
        let host_part = rest.split_once('@').map_or(rest, |(_, h)| h);
        let hostport = host_part.split([';', '?']).next().unwrap_or("");
        return check_hostport(hostport);
    }
    true
}

pub(crate) fn is_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// host [ ":" port ], host being a hostname, an IPv4 address or an IPv6 reference.
pub(crate) fn check_hostport(s: &str) -> bool {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return false;
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => ("v6", None),
            p => match p.strip_prefix(':') {
                Some(port) => ("v6", Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
    let port_ok = port
        .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()))
        && port.is_none_or(|p| p.parse::<u16>().is_ok());
    host_ok && port_ok
}

/// name-addr / addr-spec followed by header parameters (From, To, Contact, Route...).
/// `value` must already be LWS-collapsed. With `need_angle`, only name-addr is allowed.
pub(crate) fn check_name_addr(value: &str, need_angle: bool) -> bool {
    let b = value.as_bytes();
    let mut i = 0;
    let mut lt = None;
    while i < b.len() {
        match b[i] {
            b'"' => match quoted_len(&b[i..]) {
                Some(n) => i += n,
                None => return false,
            },
            b'<' => {
                lt = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    match lt {
        Some(p) => {
            let display = value[..p].trim_end();
            let display_ok = if display.starts_with('"') {
                quoted_len(display.as_bytes()) == Some(display.len())
            } else {
                display.is_empty() || display.split(' ').all(is_token)
            };
            let Some(close) = value[p + 1..].find('>') else {
                return false;
            };
            let uri = &value[p + 1..p + 1 + close];
            display_ok && check_uri(uri) && check_params(&value[p + 2 + close..])
        }
        None if need_angle => false,
        None => {
            // addr-spec: a URI with ',', '?' or ';' would need the angle brackets
            let end = value.find(';').unwrap_or(value.len());
            let uri = &value[..end];
            !uri.contains([',', '?']) && check_uri(uri) && check_params(&value[end..])
        }
    }
}

/// One LWS-collapsed via-parm: sent-protocol SP sent-by *( ";" via-params ).
pub(crate) fn check_via(v: &str) -> bool {
    let Some((proto, rest)) = v.split_once(' ') else {
        return false;
    };
    let mut parts = proto.split('/');
    let proto_ok = (0..3).all(|_| parts.next().is_some_and(is_token)) && parts.next().is_none();
    let end = rest.find(';').unwrap_or(rest.len());
    proto_ok && check_hostport(&rest[..end]) && check_params(&rest[end..])
}

/// The value of the top Via's branch parameter, if any.
pub(crate) fn via_branch(v: &str) -> Option<&str> {
    let params = &v[v.find(';')?..];
    params.split(';').find_map(|p| {
        let (n, val) = p.split_once('=')?;
        n.eq_ignore_ascii_case("branch").then_some(val)
    })
}

/// callid = word [ "@" word ].
pub(crate) fn check_call_id(v: &str) -> bool {
    let is_word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|c| is_token_char(c) || b"()<>:\\\"/[]?{}".contains(&c))
    };
    match v.split_once('@') {
        Some((a, b)) => is_word(a) && is_word(b),
        None => is_word(v),
    }
}

/// CSeq = 1*DIGIT LWS Method, the number below 2^31 (RFC 3261 §8.1.1.5).
pub(crate) fn parse_cseq(v: &str) -> Result<(u32, &str), &'static str> {
    let mut it = v.split_ascii_whitespace();
    let (Some(num), Some(method), None) = (it.next(), it.next(), it.next()) else {
        return Err("Bad CSeq");
    };
    let n = parse_decimal(num).ok_or("Bad CSeq")?;
    if n >= 1 << 31 {
        return Err("Bad CSeq (sequence number out of range)");
    }
    if !is_token(method) {
        return Err("Bad CSeq");
    }
    Ok((n as u32, method))
}

/// 1*DIGIT as u64; None on anything else, u64::MAX when it overflows.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |acc, c| {
        acc.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    }))
}

/// The header parameters of a name-addr/addr-spec value: what follows the `>` of a name-addr,
/// or the first `;` of an addr-spec.
pub(crate) fn header_params(value: &str) -> &str {
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => match quoted_len(&b[i..]) {
                Some(n) => i += n,
                None => return "",
            },
            b'<' => {
                return value[i..].find('>').map_or("", |p| &value[i + p + 1..]);
            }
            b';' => return &value[i..],
            _ => i += 1,
        }
    }
    ""
}

/// True when the header parameters of a From/To value carry a tag.
pub(crate) fn has_tag(value: &str) -> bool {
    header_params(value).split(';').any(|p| {
        p.split('=')
            .next()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case("tag"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_removes_lws_around_separators() {
        let v = "SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw";
        assert_eq!(
            collapse_lws(v, b"/;=,:"),
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw"
        );
        let f = "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com> ;   tag = 98asjd8";
        assert_eq!(
            collapse_lws(f, b";=,"),
            "\"J Rosenberg \\\\\\\"\" <sip:jdrosen@example.com>;tag=98asjd8"
        );
        // white space inside quotes and <> is left alone
        assert_eq!(collapse_lws("\"a ; b\" < x >", b";"), "\"a ; b\" < x >");
    }

    /// The allocating version `collapse_lws` replaced, kept as the reference.
    fn collapse_reference(s: &str, seps: &[u8]) -> String {
        let b = s.as_bytes();
        let mut out: Vec<u8> = Vec::new();
        let mut pending_ws = false;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if is_wsp(c) {
                pending_ws = true;
                i += 1;
                continue;
            }
            if seps.contains(&c) {
                out.push(c);
                pending_ws = false;
                i += 1;
                continue;
            }
            if pending_ws && out.last().is_some_and(|l| !seps.contains(l)) {
                out.push(b' ');
            }
            pending_ws = false;
            let len = match c {
                b'"' => quoted_len(&b[i..]).unwrap_or(b.len() - i),
                b'<' => b[i..]
                    .iter()
                    .position(|&x| x == b'>')
                    .map_or(b.len() - i, |p| p + 1),
                _ => 1,
            };
            out.extend_from_slice(&b[i..i + len]);
            i += len;
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn collapse_matches_the_reference_and_borrows_when_unchanged() {
        const ALPHABET: &[u8] = b" \t;=,/:<>\"\\ab";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 14) as usize;
            let s: String = (0..len)
                .map(|k| ALPHABET[((x >> (4 + 4 * k)) % ALPHABET.len() as u64) as usize] as char)
                .collect();
            for seps in [&b"/;=,:"[..], b";=", b";=,"] {
                let got = collapse_lws(&s, seps);
                assert_eq!(got, collapse_reference(&s, seps), "{s:?}");
                if s.starts_with(got.as_ref()) {
                    assert!(matches!(got, Cow::Borrowed(_)), "{s:?}");
                }
            }
        }
        let via = "SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK1";
        assert!(matches!(collapse_lws(via, b"/;=,:"), Cow::Borrowed(v) if v == via));
    }

    #[test]
    fn name_addr_forms() {
        assert!(check_name_addr(
            "caller<sip:caller@example.com>;tag=323",
            false
        ));
        assert!(check_name_addr("sip:+1@h;user=phone", false));
        assert!(check_name_addr("isbn:2983792873", false));
        assert!(check_name_addr(
            "A. Bell <sip:a@b>;tag=x;foo=\"a;b\"",
            false
        ));
        assert!(!check_name_addr("Bell, Alexander <sip:a@b>;tag=43", false));
        assert!(!check_name_addr(
            "\"Mr. J. User <sip:j.user@example.com>",
            false
        ));
        assert!(!check_name_addr("\"W\" < sip:t@example.org >", false));
        assert!(!check_name_addr(
            "sip:u@example.com?Route=%3Csip:x%3E",
            false
        ));
        assert!(!check_name_addr("sip:u@example.com", true));
        assert!(!check_name_addr("<sip:a@b>;;", false));
        assert!(!check_name_addr("garbage", false));
    }

    #[test]
    fn via_forms() {
        assert!(check_via(
            "SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en"
        ));
        assert!(check_via(
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx;rport"
        ));
        assert!(check_via("SIP/2.0/UDP h;received=2001:db8::2"));
        assert!(!check_via("SIP/2.0/UDP 192.0.2.15;;"));
        assert!(!check_via("SIP/2.0 host"));
        assert!(!check_via("SIP/2.0/UDP host:99999"));
        assert_eq!(
            via_branch("SIP/2.0/UDP h;rport;branch=z9hG4bK1"),
            Some("z9hG4bK1")
        );
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(parse_cseq("0009 INVITE"), Ok((9, "INVITE")));
        assert_eq!(parse_cseq("2147483647 BYE"), Ok((2147483647, "BYE")));
        assert!(parse_cseq("2147483648 BYE").is_err());
        assert!(parse_cseq("36893488147419103232 REGISTER").is_err());
        assert!(parse_cseq("8").is_err());
        assert!(parse_cseq("-1 INVITE").is_err());
    }

    #[test]
    fn tags_and_call_ids() {
        assert!(has_tag("<sip:a@b>;tag=1"));
        assert!(has_tag("sip:a@b;tag=1"));
        assert!(!has_tag("<sip:a@b;tag=1>"));
        assert!(!has_tag("\"x;tag=1\" <sip:a@b>"));
        assert!(check_call_id(
            "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
        ));
        assert!(!check_call_id("a b"));
        assert!(!check_call_id("a@b@c"));
    }
}
