//! Phone-number normalization: the one form in which caller IDs, trunk numbers and block lists
//! are compared.

/// Normalize a number as presented in SIP (`+86 10-1234 5678`, `tel:+861012345678`,
/// `sip:+861012345678@host;user=phone`, `<sip:...>`) to its digits: the scheme, the host part,
/// URI parameters, a leading `+` and visual separators (space, `-`, `.`, `(`, `)`) are removed.
/// Returns `None` when what is left is not 3 to 20 digits: such a string is no phone number.
pub fn normalize_number(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    s = s.strip_prefix('<').unwrap_or(s);
    s = s.strip_suffix('>').unwrap_or(s);
    s = strip_scheme(s);
    // user@host;params → user ; tel:+123;phone-context=... → +123
    let s = s.split('@').next().unwrap_or("");
    let s = s.split(';').next().unwrap_or("");
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    if (3..=20).contains(&out.len()) {
        Some(out)
    } else {
        None
    }
}

/// Remove a leading `sips:`, `sip:` or `tel:` (any case). `get` rather than slicing: the input
/// comes off the network and a multi-byte character at the cut would panic.
pub fn strip_scheme(s: &str) -> &str {
    for scheme in ["sips:", "sip:", "tel:"] {
        if s.get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        {
            return &s[scheme.len()..];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::normalize_number as n;

    #[test]
    fn strips_forms_and_separators() {
        let want = Some("861012345678".to_string());
        assert_eq!(n("+861012345678"), want);
        assert_eq!(n("+86 10-1234.5678"), want);
        assert_eq!(n("(86) 10 1234 5678"), want);
        assert_eq!(n("tel:+861012345678"), want);
        assert_eq!(n("sip:+861012345678@10.0.0.1;user=phone"), want);
        assert_eq!(n("<sip:861012345678@pbx>"), want);
        assert_eq!(n("tel:+861012345678;phone-context=example.com"), want);
    }

    #[test]
    fn refuses_what_is_no_number() {
        assert_eq!(n("anonymous"), None);
        assert_eq!(n("sip:anonymous@anonymous.invalid"), None);
        assert_eq!(n(""), None);
        assert_eq!(n("+"), None);
        assert_eq!(n("12"), None);
        assert_eq!(n("123456789012345678901"), None);
        assert_eq!(n("12a45"), None);
        // Non-ASCII input is refused, not a panic.
        assert_eq!(n("ééé"), None);
        assert_eq!(n("<sé:123>"), None);
    }
}
