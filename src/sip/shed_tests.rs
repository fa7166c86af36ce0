use super::*;

const INVITE: &str = "INVITE sip:8613800138000@gw.example SIP/2.0\r\n\
    Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
    v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK0\r\n\
    Max-Forwards: 70\r\n\
    From: \"Alice\" <sip:+861012345678@pbx>;tag=abc\r\n\
    To: <sip:8613800138000@gw.example> \r\n\
    Call-ID: 42@pbx\r\n\
    CSeq: 7 INVITE\r\n\
    P-Asserted-Identity: <sip:+861012345678@pbx>\r\n\
    Content-Type: application/sdp\r\n\
    Content-Length: 4\r\n\r\nv=0\n";

fn raw_invite(text: &str) -> RawInvite<'_> {
    match classify(text.as_bytes()) {
        Raw::InitialInvite(i) => i,
        other => panic!("not a new INVITE: {other:?}"),
    }
}

#[test]
fn a_new_invite_is_read_and_its_refusal_parses_back_with_the_echoed_fields() {
    let inv = raw_invite(INVITE);
    assert_eq!(inv.request_uri, "sip:8613800138000@gw.example");
    assert_eq!(inv.call_id, "42@pbx");
    assert_eq!(inv.from, "\"Alice\" <sip:+861012345678@pbx>;tag=abc");
    assert_eq!(inv.pai, Some("<sip:+861012345678@pbx>"));
    assert_eq!(inv.top_via, b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1");
    let bytes = inv.response(503, "Overloaded", "ol-1234", Some(5), Some("tg"));
    let text = String::from_utf8(bytes).unwrap();
    // Compact names (`v:`) come back in full.
    assert!(text.starts_with("SIP/2.0 503 Overloaded\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 10.0.0.2"), "{text}");
    assert!(
        text.contains("To: <sip:8613800138000@gw.example>;tag=ol-1234\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "CSeq: 7 INVITE\r\nServer: tg\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n"
        ),
        "{text}"
    );
    let resp = rsip::Response::try_from(text.as_str()).expect("parses");
    assert_eq!(resp.status_code.code(), 503);
    assert_eq!(crate::sip::message::call_id(&resp), Some("42@pbx"));
    let vias = resp
        .headers
        .iter()
        .filter(|h| matches!(h, rsip::Header::Via(_)))
        .count();
    assert_eq!(vias, 2);
    // Without a Server name or Retry-After, neither is sent.
    let plain = String::from_utf8(inv.response(503, "Overloaded", "ol-1", None, None)).unwrap();
    assert!(
        !plain.contains("Server:") && !plain.contains("Retry-After:"),
        "{plain}"
    );
}

#[test]
fn whatever_the_scan_is_not_sure_of_goes_to_the_front_end() {
    let cases = [
        // in a dialog (To tag), another method, a CSeq for another method
        INVITE.replace("gw.example> \r\n", "gw.example>;tag=x\r\n"),
        INVITE.replacen("INVITE sip:", "OPTIONS sip:", 1),
        INVITE.replace("CSeq: 7 INVITE", "CSeq: 7 OPTIONS"),
        // folded, repeated, missing fields; a broken start line
        INVITE.replace("Call-ID: 42@pbx\r\n", "Call-ID:\r\n 42@pbx\r\n"),
        INVITE.replace("CSeq: 7 INVITE\r\n", "CSeq: 7 INVITE\r\nCSeq: 8 INVITE\r\n"),
        INVITE.replace("Call-ID: 42@pbx\r\n", ""),
        INVITE.replace("Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nv: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK0\r\n", ""),
        INVITE.replace(" SIP/2.0\r\nVia", " SIP/3.0\r\nVia"),
        // a bare CR inside a value
        INVITE.replace("Call-ID: 42@pbx", "Call-ID: 42\r@pbx"),
        "SIP/2.0 200 OK\r\nVia: x\r\n\r\n".to_string(),
        String::new(),
    ];
    for (i, text) in cases.iter().enumerate() {
        assert_eq!(classify(text.as_bytes()), Raw::Other, "case {i}: {text}");
    }
    // A Call-ID that is not UTF-8.
    let mut bytes = INVITE.as_bytes().to_vec();
    bytes[INVITE.find("42@pbx").unwrap()] = 0xff;
    assert_eq!(classify(&bytes), Raw::Other);
}

#[test]
fn compact_names_count_and_the_ack_of_a_refusal_is_known_by_its_tag() {
    let compact = INVITE
        .replace("From:", "f:")
        .replace("To:", "t:")
        .replace("Call-ID:", "i:");
    assert_eq!(raw_invite(&compact).call_id, "42@pbx");
    let ack = "ACK sip:8613800138000@gw.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
        From: <sip:+861012345678@pbx>;tag=abc\r\n\
        t: <sip:8613800138000@gw.example>;tag=ol-00ff\r\n\
        Call-ID: 42@pbx\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(classify(ack.as_bytes()), Raw::AckToShed);
    // An ACK of any other answer (a random tag: letters and digits only) is the stack's.
    let other = ack.replace("tag=ol-00ff", "tag=ol00ff");
    assert_eq!(classify(other.as_bytes()), Raw::Other);
    let untagged = ack.replace(";tag=ol-00ff", "");
    assert_eq!(classify(untagged.as_bytes()), Raw::Other);
}
