//! Tests of `sip::message`: header lookups, lists, encoding.

use super::*;

fn request_with(headers: &[(&str, &str)]) -> rsip::Request {
    let mut h = Headers::default();
    for (name, value) in headers {
        h.push(match *name {
            "From" => Header::From(rsip::headers::From::new(*value)),
            "To" => Header::To(rsip::headers::To::new(*value)),
            _ => Header::Contact(rsip::headers::Contact::new(*value)),
        });
    }
    rsip::Request {
        method: Method::Invite,
        uri: parse_uri("sip:1@[::1]").unwrap(),
        version: rsip::Version::V2,
        headers: h,
        body: Vec::new(),
    }
}

/// Torture-style header URIs (RFC 4475 spirit): IPv6 references with and without ports,
/// dotted and escaped user parts, name-addr and addr-spec forms, parameters on both sides
/// of the `>` — every one read, where rsip 0.4 refuses the IPv6 ones.
#[test]
fn header_uris_with_ipv6_hosts_and_dotted_users_are_read() {
    let req = request_with(&[
        (
            "From",
            "\"Agent 7\" <sip:+861012345678@[2001:db8::1]:5060;user=phone>;tag=a1",
        ),
        ("To", "<sip:j.doe.smith@[::1]>"),
        (
            "Contact",
            "<sip:pbx@[2001:db8::10]:5062;transport=udp>;expires=60, <sip:b@x>",
        ),
    ]);
    let from = from_uri(&req).unwrap();
    assert_eq!(from.user(), Some("+861012345678"));
    assert_eq!(from.host_with_port.to_string(), "[2001:db8::1]:5060");
    assert_eq!(from_tag(&req).as_deref(), Some("a1"));
    assert_eq!(to_uri(&req).unwrap().user(), Some("j.doe.smith"));
    assert_eq!(to_tag(&req), None);
    let contact = contact_uri(&req).unwrap();
    assert_eq!(
        contact.to_string(),
        "sip:pbx@[2001:db8::10]:5062;transport=UDP"
    );

    // addr-spec form: the parameters after the URI are the header's.
    let req = request_with(&[
        ("From", "sip:alice@[::1]:5070;tag=xyz"),
        ("To", "sip:b@[::1]"),
    ]);
    assert_eq!(from_tag(&req).as_deref(), Some("xyz"));
    assert_eq!(from_uri(&req).unwrap().to_string(), "sip:alice@[::1]:5070");
    // A tag inside the brackets is the URI's, not the header's.
    let req = request_with(&[("To", "<sip:b@[::1];tag=inner>")]);
    assert_eq!(to_tag(&req), None);
    // tel: From still reads (rsip's parser), broken ones give nothing and never panic.
    let req = request_with(&[("From", "<tel:+861012345678>;tag=t")]);
    assert_eq!(from_tag(&req).as_deref(), Some("t"));
    for bad in [
        "<sip:a@[::1>",
        "<sip:a@[zz::1]:5060>",
        "<>",
        "sip:",
        "<sip:a@[::1]:99999>",
    ] {
        let req = request_with(&[("From", bad), ("Contact", bad)]);
        assert_eq!(contact_uri(&req), None, "{bad}");
        let _ = from_uri(&req);
    }
}

#[test]
fn ip_hosts_are_bracketed_when_v6() {
    assert_eq!(uri_host("192.0.2.1".parse().unwrap()), "192.0.2.1");
    assert_eq!(uri_host("2001:db8::1".parse().unwrap()), "[2001:db8::1]");
    let target = format!("sip:+8610@{}", uri_host("::1".parse().unwrap()));
    assert_eq!(parse_uri(&target).unwrap().to_string(), "sip:+8610@[::1]");
}

#[test]
fn encode_keeps_binary_body_and_sets_length() {
    let mut req = rsip::Request {
        method: Method::Info,
        uri: rsip::Uri::try_from("sip:a@127.0.0.1").unwrap(),
        version: rsip::Version::V2,
        headers: Headers::default(),
        body: vec![0, 1, 2, 255],
    };
    req.headers
        .push(Header::ContentLength(rsip::headers::ContentLength::new(
            "99",
        )));
    let bytes = encode(&SipMessage::Request(req));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("INFO sip:a@127.0.0.1 SIP/2.0\r\n"));
    assert!(text.contains("Content-Length: 4\r\n\r\n"));
    assert!(!text.contains("99"));
    assert_eq!(&bytes[bytes.len() - 4..], &[0, 1, 2, 255]);
}

#[test]
fn encode_writes_start_line_headers_and_length() {
    let text = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x@y\r\n\
                CSeq: 1 INVITE\r\nContent-Length: 0\r\nP-Asserted-Identity: <sip:1@h>\r\n\r\n";
    let resp = rsip::Response::try_from(text).unwrap();
    let bytes = encode(&SipMessage::Response(resp));
    let expected = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                    From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x@y\r\n\
                    CSeq: 1 INVITE\r\nP-Asserted-Identity: <sip:1@h>\r\n\
                    Content-Length: 0\r\n\r\n";
    assert_eq!(String::from_utf8_lossy(&bytes), expected);
    for m in Method::all() {
        assert_eq!(method_name(&m), m.to_string());
    }
    let mut uris = vec![
        rsip::Uri::try_from("sip:+15551234567@gw.example.com:5060;user=phone;lr").unwrap(),
        rsip::Uri::try_from("sip:127.0.0.1").unwrap(),
    ];
    let mut other = rsip::Uri::try_from("sip:a@127.0.0.1:5061;transport=tcp").unwrap();
    other.scheme = Some(rsip::Scheme::Other("tel".into()));
    other.auth = Some(rsip::Auth {
        user: "a".into(),
        password: Some("pw".into()),
    });
    uris.push(other);
    uris.push(rsip::Uri {
        scheme: None,
        ..uris[0].clone()
    });
    for uri in uris {
        let line = format!("BYE {uri} SIP/2.0\r\n");
        let req = rsip::Request {
            method: Method::Bye,
            uri,
            version: rsip::Version::V2,
            headers: Headers::default(),
            body: Vec::new(),
        };
        assert!(encode(&SipMessage::Request(req)).starts_with(line.as_bytes()));
    }
    let mut resp = rsip::Response::try_from(text).unwrap();
    resp.status_code = status(403, "Caller ID Not Authorized");
    let bytes = encode(&SipMessage::Response(resp));
    assert!(bytes.starts_with(b"SIP/2.0 403 Caller ID Not Authorized\r\n"));
}

#[test]
fn copied_headers_read_as_rsip_writes_them() {
    use rsip::headers::*;
    let v = "a value; with=params";
    let all = [
        Header::Via(Via::new(v)),
        Header::From(From::new(v)),
        Header::To(To::new(v)),
        Header::CallId(CallId::new(v)),
        Header::CSeq(CSeq::new(v)),
        Header::Contact(Contact::new(v)),
        Header::MaxForwards(MaxForwards::new(v)),
        Header::ContentType(ContentType::new(v)),
        Header::RecordRoute(RecordRoute::new(v)),
        Header::Route(Route::new(v)),
        Header::Server(Server::new(v)),
        Header::UserAgent(UserAgent::new(v)),
        Header::Allow(Allow::new(v)),
        Header::Supported(Supported::new(v)),
        Header::Other("P-Asserted-Identity".into(), v.into()),
    ];
    for h in all {
        let (name, value) = name_value(&h).expect("copied");
        assert_eq!(format!("{name}: {value}"), h.to_string());
    }
    assert_eq!(name_value(&Header::Subject(Subject::new(v))), None);
}

#[test]
fn status_phrases_are_words() {
    assert_eq!(
        status_parts(&StatusCode::BusyHere),
        (486, "Busy Here".to_string())
    );
    assert_eq!(
        status_parts(&status(403, "Caller ID Not Authorized")),
        (403, "Caller ID Not Authorized".to_string())
    );
}

#[test]
fn via_parts_without_rsip() {
    let v = "SIP/2.0/UNKNOWN [2001:db8::9:1]:5060;Branch=z9hG4bKabc;rport";
    assert_eq!(via_sent_by(v), Some("[2001:db8::9:1]:5060"));
    assert_eq!(via_param(v, "branch"), Some("z9hG4bKabc"));
    assert_eq!(via_param(v, "rport"), Some(""));
    assert_eq!(via_param(v, "received"), None);
}

#[test]
fn list_split_respects_brackets() {
    assert_eq!(
        split_list("<sip:a@b;lr>, <sip:c,d@e>,\"x,y\" <sip:f@g>"),
        vec!["<sip:a@b;lr>", "<sip:c,d@e>", "\"x,y\" <sip:f@g>"]
    );
    assert_eq!(uri_in_name_addr("\"A\" <sip:1@h>;tag=x"), "sip:1@h");
    assert_eq!(uri_in_name_addr("sip:1@h;tag=x"), "sip:1@h");
}
