//! RFC 4475 3.1.2 invalid messages, 3.2 transaction, 3.3 application and 3.4 compatibility: each
//! answered (or dropped) as the RFC names, the same on a stream as over UDP, or the stream closed
//! after a 400.

use super::*;

/// Messages whose only point is the status they get; UDP and stream agree.
macro_rules! refused {
    ($($name:ident: $status:expr, $reason:expr;)*) => {$(
        #[test]
        fn $name() {
            answered(stringify!($name), $status, $reason);
            stream_same_as_udp(stringify!($name));
        }
    )*};
}

refused! {
    badinv01: 400, "Malformed Via";
    scalar02: 400, "Bad CSeq (sequence number out of range)";
    quotbal: 400, "Malformed To";
    ltgtruri: 400, "Malformed Request-URI";
    lwsruri: 400, "Malformed Request-Line";
    lwsstart: 400, "Malformed Request-Line";
    trws: 400, "Malformed Request-Line";
    escruri: 400, "Headers Not Allowed In Request-URI";
    regbadct: 400, "Malformed Contact";
    badaspec: 400, "Malformed To";
    badvers: 505, "Version Not Supported";
    mismatch01: 400, "CSeq Method Mismatch";
    mismatch02: 501, "Not Implemented";
    badbranch: 400, "Bad Via Branch";
    insuf: 400, "Missing From, To, Call-ID";
    unkscm: 416, "Unsupported URI Scheme";
    novelsc: 416, "Unsupported URI Scheme";
    regaut01: 405, "Method Not Allowed";
    multi01: 400, "Multiple Values In From, To, Call-ID, CSeq, Max-Forwards";
    zeromf: 483, "Too Many Hops";
    regescrt: 405, "Method Not Allowed";
}

/// A stream error that closes the connection after sending a 400.
fn stream_closes_with_400(name: &str, reason: &str) {
    let (results, _) = stream_consistent(name, Limits::default());
    let [Err(e)] = results.as_slice() else {
        panic!("{name}: {results:?}");
    };
    let r = e.rejection().expect("a rejection to send before closing");
    assert_eq!((r.status, r.reason.as_str()), (400, reason));
    assert!(r.response.is_some());
}

#[test]
fn clerr() {
    answered("clerr", 400, "Content-Length Larger Than Message");
    // a stream waits for the 9999 octets announced
    let (results, left) = stream_consistent("clerr", Limits::default());
    assert!(results.is_empty());
    assert_eq!(left, load("clerr").len());
}

#[test]
fn ncl() {
    answered("ncl", 400, "Negative Content-Length");
    stream_closes_with_400("ncl", "Negative Content-Length");
}

#[test]
fn mcl01() {
    answered("mcl01", 400, "Multiple Content-Length");
    stream_closes_with_400("mcl01", "Multiple Content-Length");
}

#[test]
fn baddn() {
    // the datagram lacks its final blank line (see README); UDP reads it as complete
    answered("baddn", 400, "Malformed From");
    let (results, left) = stream_consistent("baddn", Limits::default());
    assert!(
        results.is_empty(),
        "a stream waits for the end of the headers"
    );
    assert_eq!(left, load("baddn").len());
}

#[test]
fn scalarlg() {
    assert_eq!(dropped("scalarlg"), "malformed response");
    stream_same_as_udp("scalarlg");
}

#[test]
fn bigcode() {
    assert_eq!(dropped("bigcode"), "status code out of range");
    stream_same_as_udp("bigcode");
}

#[test]
fn bcast() {
    // a UAC discards responses with more than one Via (RFC 3261 §8.1.3.3)
    assert_eq!(dropped("bcast"), "response with more than one Via");
    stream_same_as_udp("bcast");
}

#[test]
fn baddate() {
    // Date plays no part in what the gateway does: it is carried, not judged
    let req = request("baddate");
    assert!(req
        .headers
        .iter()
        .any(|h| matches!(h, Header::Date(d) if d.value().ends_with("EST"))));
    stream_same_as_udp("baddate");
}

#[test]
fn unksm2() {
    // the URIs parse; a registrar would say 400, a B2BUA has no registrar
    assert!(matches!(
        parse_datagram(&load("unksm2"), &Limits::default()),
        Parsed::Message(_)
    ));
    let text = answered("unksm2", 405, "Method Not Allowed");
    assert!(
        text.contains("To: isbn:2983792873;tag=test-tag\r\n"),
        "{text}"
    );
    stream_same_as_udp("unksm2");
}

#[test]
fn bext01() {
    let text = answered("bext01", 420, "Bad Extension");
    assert!(text.contains("Unsupported: nothingSupportsThis, nothingSupportsThisEither\r\n"));
    assert!(!text.contains("noProxiesSupportThis"));
    stream_same_as_udp("bext01");
}

#[test]
fn invut() {
    let text = answered("invut", 415, "Unsupported Media Type");
    assert!(text.contains("Accept: application/sdp\r\n"));
    stream_same_as_udp("invut");
}

#[test]
fn sdp01() {
    let text = answered("sdp01", 406, "Not Acceptable");
    assert!(text.contains("Warning: 399 trunkguard"));
    stream_same_as_udp("sdp01");
}

fn contact_of(name: &str) -> rsip::typed::Contact {
    let Parsed::Message(msg) = parse_datagram(&load(name), &Limits::default()) else {
        panic!("{name} does not parse");
    };
    let value = header_values(rsip::message::HasHeaders::headers(&msg), "Contact");
    rsip::headers::Contact::new(value[0].clone())
        .typed()
        .expect("typed Contact")
}

#[test]
fn cparam01() {
    // without <>, unknownparam is a contact-param
    let c = contact_of("cparam01");
    assert!(c.uri.params.is_empty());
    assert_eq!(c.params.len(), 1);
    answered("cparam01", 405, "Method Not Allowed");
    stream_same_as_udp("cparam01");
}

#[test]
fn cparam02() {
    // inside <>, unknownparam is a url-param
    let c = contact_of("cparam02");
    assert_eq!(c.uri.params.len(), 1);
    assert!(c.params.is_empty());
    answered("cparam02", 405, "Method Not Allowed");
    stream_same_as_udp("cparam02");
}

#[test]
fn inv2543() {
    let req = request("inv2543");
    assert_eq!(
        req.body.len(),
        105,
        "no Content-Length: the body is the rest of the datagram"
    );
    assert!(!header_values(&req.headers, "From")[0].contains("tag="));
    assert!(!req
        .headers
        .iter()
        .any(|h| matches!(h, Header::MaxForwards(_))));
    assert_eq!(
        header_values(&req.headers, "Via"),
        ["SIP/2.0/UDP iftgw.example.com"]
    );
    // a stream cannot be framed without Content-Length
    let (results, _) = stream_consistent("inv2543", Limits::default());
    assert!(matches!(
        results.as_slice(),
        [Err(FramingError::MissingContentLength { rejection: Some(r) })] if r.status == 400
    ));
}
