//! A URI as text, the same text rsip's `Display` gives, written into one `String`.
//!
//! rsip 0.4's `Display for Uri` formats its scheme and user part into strings of their own and
//! each parameter into a string of its own before it joins them: five or six allocations and
//! `format!` calls a URI, and a call takes the text of its From and Request-URI several times
//! (the attempt's numbers, the policy's request, the journal's dialog record).

use std::fmt::Write;

/// `uri.to_string()`, byte for byte, without rsip's intermediate strings.
pub fn uri_text(uri: &rsip::Uri) -> String {
    let mut text = String::with_capacity(48);
    // Writing into a String cannot fail.
    let _ = write_uri(&mut text, uri);
    text
}

/// The pieces in rsip's order: `scheme:` (`scheme://` for another scheme), `auth@`, host and
/// port, each parameter with its leading `;`.
fn write_uri(out: &mut String, uri: &rsip::Uri) -> std::fmt::Result {
    match &uri.scheme {
        Some(rsip::Scheme::Other(scheme)) => {
            out.push_str(scheme);
            out.push_str("://");
        }
        Some(scheme) => write!(out, "{scheme}:")?,
        None => {}
    }
    if let Some(auth) = &uri.auth {
        write!(out, "{auth}@")?;
    }
    write!(out, "{}", uri.host_with_port)?;
    for param in &uri.params {
        write!(out, "{param}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_as_rsip_display() {
        let uris = [
            "sip:+861012345678@127.0.0.11:5080",
            "sips:alice@example.com",
            "sip:alice:secret@example.com;transport=tcp;lr",
            "sip:127.0.0.1",
            "sip:bob@[2001:db8::1]:5061;user=phone;maddr=192.0.2.1;x-custom=1;flag",
            "sip:8613800138000@10.0.0.1;transport=udp;ttl=5;method=INVITE",
        ];
        for text in uris {
            let uri = crate::sip::message::parse_uri(text).expect(text);
            assert_eq!(uri_text(&uri), uri.to_string(), "{text}");
        }
        let tel: rsip::Uri = rsip::Uri::try_from("tel:+12345;phone-context=x").expect("tel");
        assert_eq!(uri_text(&tel), tel.to_string());
        let other = rsip::Uri {
            scheme: Some(rsip::Scheme::Other("urn".into())),
            ..tel.clone()
        };
        assert_eq!(uri_text(&other), other.to_string());
        let bare = rsip::Uri {
            scheme: None,
            ..tel
        };
        assert_eq!(uri_text(&bare), bare.to_string());
    }
}
