//! Error responses for messages that could not be parsed: the header fields a response echoes
//! are salvaged from the raw bytes as far as they can be found.

use super::error::Fault;
use super::normalize::{split_list, unfold};
use super::startline::{is_response, method_of};
use super::{split_lines, Limits, Parsed, Rejection};
use crate::sip::response::Echo;
use std::hash::{Hash, Hasher};

/// The outcome for a broken message: responses and ACKs are dropped (neither is ever answered),
/// other requests are rejected.
pub(crate) fn refuse(head: &[u8], fault: Fault, limits: &Limits) -> Parsed {
    let lines = split_lines(head);
    let start = lines.first().copied().unwrap_or_default();
    if is_response(start) {
        return Parsed::Drop(fault.drop);
    }
    if method_of(start) == b"ACK" {
        return Parsed::Drop("invalid ACK (an ACK is never answered)");
    }
    let invite = method_of(start) == b"INVITE";
    let mut r = rejection(&lines, fault, limits);
    r.rejection.initial_invite = invite && !r.to_has_tag;
    Parsed::Reject(r.rejection)
}

/// Like [`refuse`], for a stream error: the rejection to send before closing, if any.
pub(crate) fn rejection_for(head: &[u8], fault: Fault, limits: &Limits) -> Option<Box<Rejection>> {
    match refuse(head, fault, limits) {
        Parsed::Reject(r) => Some(Box::new(r)),
        _ => None,
    }
}

struct Salvaged {
    rejection: Rejection,
    to_has_tag: bool,
}

/// Whether a raw To value carries a tag parameter (outside any <…> URI).
fn has_tag(to: &str) -> bool {
    let params = match to.rfind('>') {
        Some(i) => &to[i + 1..],
        None => to,
    };
    params
        .split(';')
        .skip(1)
        .any(|p| p.trim().to_ascii_lowercase().starts_with("tag="))
}

fn rejection(lines: &[&[u8]], fault: Fault, limits: &Limits) -> Salvaged {
    let fields = unfold(lines.get(1..).unwrap_or_default(), limits, false).unwrap_or_default();
    let mut echo = Echo::default();
    for f in &fields {
        let value = || Some(f.value.to_string());
        if f.is("Via") {
            match split_list(&f.value) {
                Some(parts) => echo.vias.extend(parts.into_iter().map(str::to_string)),
                None => echo.vias.push(f.value.to_string()),
            }
        } else if f.is("From") && echo.from.is_none() {
            echo.from = value();
        } else if f.is("To") && echo.to.is_none() {
            echo.to = value();
        } else if f.is("Call-ID") && echo.call_id.is_none() {
            echo.call_id = value();
        } else if f.is("CSeq") && echo.cseq.is_none() {
            echo.cseq = value();
        }
    }
    // Without a Via there is nowhere to send a response (RFC 3261 §18.2.2).
    let response = (!echo.vias.is_empty()).then(|| {
        let tag = stateless_tag(&echo);
        echo.build(
            fault.status,
            &fault.reason,
            Some(&tag),
            fault.headers.clone(),
        )
    });
    Salvaged {
        to_has_tag: echo.to.as_deref().is_some_and(has_tag),
        rejection: Rejection {
            status: fault.status,
            reason: fault.reason,
            response,
            initial_invite: false,
        },
    }
}

/// A To tag derived from the request, so a retransmission gets the same answer without any state
/// (std's default hasher has fixed keys, so this is stable within a build).
fn stateless_tag(echo: &Echo) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&echo.call_id, &echo.from, &echo.cseq, echo.vias.first()).hash(&mut h);
    format!("tg{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_tag_detection() {
        assert!(has_tag("<sip:a@b>;tag=1"));
        assert!(has_tag("sip:a@b;TAG=1"));
        assert!(!has_tag("<sip:a@b;tag=1>"));
        assert!(!has_tag("<sip:a@b>"));
    }

    #[test]
    fn salvages_what_it_can() {
        let head =
            b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g\r\n\
            garbage line\r\n  folded garbage\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\n\
            Call-ID: x@y\r\nCSeq: 1 INVITE";
        let Parsed::Reject(r) = refuse(head, Fault::bad("Malformed Thing"), &Limits::default())
        else {
            panic!("not rejected");
        };
        assert_eq!((r.status, r.reason.as_str()), (400, "Malformed Thing"));
        let text = r.response.expect("has a Via").to_string();
        assert!(
            text.starts_with("SIP/2.0 400 Malformed Thing\r\n"),
            "{text}"
        );
        assert!(text.contains("Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP g\r\n"));
        assert!(text.contains("To: <sip:a@b>;tag=tg"));
        assert!(text.contains("Call-ID: x@y\r\nCSeq: 1 INVITE\r\n"));
        // same request, same tag
        let again = refuse(head, Fault::bad("Malformed Thing"), &Limits::default());
        let Parsed::Reject(again) = again else {
            panic!("not rejected");
        };
        assert_eq!(again.response.map(|r| r.to_string()), Some(text));
    }

    #[test]
    fn no_via_no_response_and_no_answers_to_ack_or_responses() {
        let Parsed::Reject(r) = refuse(b"INVITE x\r\nTo: a", Fault::bad("x"), &Limits::default())
        else {
            panic!("not rejected");
        };
        assert!(r.response.is_none());
        let ack = refuse(
            b"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h",
            Fault::bad("x"),
            &Limits::default(),
        );
        assert!(matches!(ack, Parsed::Drop(_)));
        let resp = refuse(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h",
            Fault::bad("x"),
            &Limits::default(),
        );
        assert_eq!(resp, Parsed::Drop("malformed response"));
    }
}
