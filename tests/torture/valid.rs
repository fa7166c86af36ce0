//! RFC 4475 3.1.1: valid messages, each parsed as the RFC says and the same on a stream as over
//! UDP.

use super::*;

#[test]
fn wsinv() {
    let req = request("wsinv");
    let h = &req.headers;
    assert_eq!(req.method, rsip::Method::Invite);
    assert_eq!(header_values(h, "Call-ID"), ["wsinv.ndaksdj@192.0.2.1"]);
    assert_eq!(header_values(h, "CSeq"), ["9 INVITE"]);
    assert_eq!(header_values(h, "Max-Forwards"), ["68"]);
    assert_eq!(
        header_values(h, "To"),
        ["sip:vivekg@chair-dnrc.example.com;tag=1918181833n"]
    );
    assert_eq!(
        header_values(h, "From"),
        ["\"J Rosenberg \\\\\\\"\" <sip:jdrosen@example.com>;tag=98asjd8"]
    );
    // the compact v: holds two values; each becomes a Via of its own
    assert_eq!(
        header_values(h, "Via"),
        [
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw",
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8",
            "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239"
        ]
    );
    assert_eq!(
        header_values(h, "Contact"),
        ["\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com>;newparam=newvalue;secondparam;q=0.33"]
    );
    assert_eq!(header_values(h, "Subject"), [""]);
    // unknown headers are kept (unfolded), unusual values untouched
    assert_eq!(
        header_values(h, "NewFangledHeader"),
        ["newfangled value continued newfangled value"]
    );
    assert_eq!(
        header_values(h, "UnknownHeaderWithUnusualValue"),
        [";;,,;;,;"]
    );
    assert_eq!(
        header_values(h, "Route"),
        ["<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"]
    );
    assert_eq!(req.body.len(), 150);
    assert_eq!(
        req.uri.to_string(),
        "sip:vivekg@chair-dnrc.example.com;unknownparam"
    );
    stream_same_as_udp("wsinv");
}

#[test]
fn intmeth() {
    // valid, but an extension method: an endpoint answers 501 with Allow
    let text = answered("intmeth", 501, "Not Implemented");
    assert!(text.contains(&format!("Allow: {}\r\n", trunkguard::sip::validate::ALLOW)));
    assert!(text.contains("CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"));
    assert!(text.contains("Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"));
    stream_same_as_udp("intmeth");
}

#[test]
fn esc01() {
    let req = request("esc01");
    assert_eq!(req.uri.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(req.uri.host().to_string(), "example.net");
    assert_eq!(
        header_values(&req.headers, "Call-ID"),
        ["esc01.239409asdfakjkn23onasd0-3234"]
    );
    assert_eq!(
        header_values(&req.headers, "Contact"),
        ["<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>"]
    );
    stream_same_as_udp("esc01");
}

#[test]
fn escnull() {
    let req = match parse_datagram(&load("escnull"), &Limits::default()) {
        Parsed::Message(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    };
    let contacts = header_values(&req.headers, "Contact");
    assert_eq!(
        contacts,
        [
            "<sip:%00@host5.example.com>",
            "<sip:%00%00@host5.example.com>"
        ]
    );
    let users: Vec<String> = contacts
        .iter()
        .map(|c| {
            rsip::headers::Contact::new(c.clone())
                .typed()
                .expect("typed")
        })
        .map(|c| c.uri.user().unwrap_or_default().to_string())
        .collect();
    assert_eq!(users, ["%00", "%00%00"]);
    assert_eq!(
        header_values(&req.headers, "To"),
        ["sip:null-%00-null@example.com"]
    );
    answered("escnull", 405, "Method Not Allowed");
    stream_same_as_udp("escnull");
}

#[test]
fn esc02() {
    // RE%47IST%45R is not REGISTER: escapes do not apply to methods
    answered("esc02", 501, "Not Implemented");
    stream_same_as_udp("esc02");
}

#[test]
fn lwsdisp() {
    let req = request("lwsdisp");
    let from = header_values(&req.headers, "From");
    assert_eq!(from, ["caller<sip:caller@example.com>;tag=323"]);
    let typed = rsip::headers::From::new(from[0].clone())
        .typed()
        .expect("typed");
    assert_eq!(typed.display_name.as_deref(), Some("caller"));
    stream_same_as_udp("lwsdisp");
}

fn many_vias() -> Limits {
    Limits {
        max_via: 64,
        ..Limits::default()
    }
}

#[test]
fn longreq() {
    // 34 Via values: over the default limit of 16
    answered("longreq", 513, "Too Many Via Headers");
    stream_same_as_udp("longreq");
    let req = match parse_datagram(&load("longreq"), &many_vias()) {
        Parsed::Message(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(check_request(&req), Ok(()));
    let h = &req.headers;
    assert_eq!(header_values(h, "Via").len(), 34);
    assert!(header_values(h, "To")[0].contains(&"extreme".repeat(10)));
    assert!(header_values(h, "From")[0].contains(&"amazinglylongcallername".repeat(5)));
    assert!(header_values(h, "From")[0].contains(&format!(";tag=1{}", "298".repeat(20))));
    assert!(header_values(h, "From")[0].ends_with(&"paramname".repeat(10)));
    assert!(header_values(h, "Call-ID")[0].starts_with("longreq.onereallyreally"));
    let unknown = format!("Unknown-{}-Name", "Long".repeat(20));
    assert_eq!(header_values(h, &unknown).len(), 1);
    assert!(header_values(h, "Via")[33].contains(&"long".repeat(30)));
    assert_eq!(req.body.len(), 150);
    stream_same_as_udp_with("longreq", many_vias());
}

#[test]
fn dblreq() {
    let req = match parse_datagram(&load("dblreq"), &Limits::default()) {
        Parsed::Message(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(req.method, rsip::Method::Register);
    assert!(req.body.is_empty(), "trailing octets are not the body");
    assert_eq!(
        header_values(&req.headers, "Call-ID"),
        ["dblreq.0ha0isndaksdj99sdfafnl3lk233412"]
    );
    assert!(!req.to_string().contains("INVITE"));
    answered("dblreq", 405, "Method Not Allowed");
    // on a stream the trailing octets are the next message
    let (results, _) = stream_consistent("dblreq", Limits::default());
    assert_eq!(
        results[0],
        Ok(parse_datagram(&load("dblreq"), &Limits::default()))
    );
    assert!(
        matches!(&results[1], Ok(Parsed::Message(SipMessage::Request(r))) if r.method == rsip::Method::Invite)
    );
}

#[test]
fn semiuri() {
    let req = request("semiuri");
    assert_eq!(req.uri.user(), Some("user;par=u%40example.net"));
    assert_eq!(req.uri.host().to_string(), "example.com");
    assert_eq!(
        header_values(&req.headers, "Accept"),
        ["application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"]
    );
    stream_same_as_udp("semiuri");
}

#[test]
fn transports() {
    let req = request("transports");
    let vias = header_values(&req.headers, "Via");
    let transports: Vec<&str> = vias
        .iter()
        .filter_map(|v| v.split([' ', '/']).nth(2))
        .collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    stream_same_as_udp("transports");
}

#[test]
fn mpart01() {
    let bytes = load("mpart01");
    let req = match parse_datagram(&bytes, &Limits::default()) {
        Parsed::Message(SipMessage::Request(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(req.body.len(), 553);
    assert!(req.body.contains(&0), "binary body with NULs survives");
    assert!(bytes.ends_with(&req.body));
    // MESSAGE is not a B2BUA method
    answered("mpart01", 405, "Method Not Allowed");
    stream_same_as_udp("mpart01");
}

#[test]
fn unreason() {
    let resp = response("unreason");
    assert_eq!(resp.status_code.code(), 200);
    assert_eq!(resp.body.len(), 154);
    stream_same_as_udp("unreason");
}

#[test]
fn noreason() {
    assert_eq!(response("noreason").status_code.code(), 100);
    stream_same_as_udp("noreason");
}
