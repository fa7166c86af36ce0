//! RFC 4475 torture messages through the front end (`parse_datagram`, `StreamFramer`) and
//! `check_request`, one test per message, driven by testdata/sip-torture/INDEX.tsv.
//! Where the RFC names a registrar's or proxy's answer, the B2BUA's answer is expected
//! (REGISTER is 405: a trunk has no registrar).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::{Header, SipMessage};
use trunkguard::sip::frontend::{parse_datagram, FramingError, Limits, Parsed, StreamFramer};
use trunkguard::sip::validate::check_request;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sip-torture");

/// Every message this file has a test for.
const COVERED: [&str; 49] = [
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
    "badinv01",
    "clerr",
    "ncl",
    "scalar02",
    "scalarlg",
    "quotbal",
    "ltgtruri",
    "lwsruri",
    "lwsstart",
    "trws",
    "escruri",
    "baddate",
    "regbadct",
    "badaspec",
    "baddn",
    "badvers",
    "mismatch01",
    "mismatch02",
    "bigcode",
    "badbranch",
    "insuf",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "multi01",
    "mcl01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
    "inv2543",
];

/// The INDEX.tsv row of a message: (class, expected behaviour).
fn index_row(name: &str) -> (String, String) {
    let index = std::fs::read_to_string(format!("{DIR}/INDEX.tsv")).expect("INDEX.tsv");
    let file = format!("{name}.dat");
    let row = index
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&file.as_str()))
        .unwrap_or_else(|| panic!("{file} is not in INDEX.tsv"));
    (row[3].to_string(), row[4].to_string())
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}.dat")).expect("torture message")
}

/// What the gateway does with a message: front end, then the B2BUA's request checks.
#[derive(Debug)]
enum Outcome {
    Accepted(SipMessage),
    /// status, reason, the response to send (None when no Via was found)
    Answered(u16, String, Option<rsip::Response>),
    Dropped(&'static str),
}

fn outcome(parsed: Parsed) -> Outcome {
    match parsed {
        Parsed::Message(SipMessage::Request(req)) => match check_request(&req) {
            Ok(()) => Outcome::Accepted(SipMessage::Request(req)),
            Err(refusal) => {
                let response = refusal.response(&req, Some("test-tag"));
                Outcome::Answered(refusal.status, refusal.reason, Some(response))
            }
        },
        Parsed::Message(msg) => Outcome::Accepted(msg),
        Parsed::Reject(r) => Outcome::Answered(r.status, r.reason, r.response),
        Parsed::Drop(why) => Outcome::Dropped(why),
    }
}

/// Runs a message through UDP and checks INDEX.tsv knows it.
fn udp(name: &str) -> Outcome {
    let (class, expected) = index_row(name);
    assert!(!class.is_empty() && !expected.is_empty());
    outcome(parse_datagram(&load(name), &Limits::default()))
}

fn request(name: &str) -> rsip::Request {
    match udp(name) {
        Outcome::Accepted(SipMessage::Request(req)) => req,
        other => panic!("{name}: expected an accepted request, got {other:?}"),
    }
}

fn response(name: &str) -> rsip::Response {
    match udp(name) {
        Outcome::Accepted(SipMessage::Response(resp)) => resp,
        other => panic!("{name}: expected an accepted response, got {other:?}"),
    }
}

/// Asserts the answer's status and reason, that a routable response exists and that it echoes
/// the request's Call-ID; returns the response text.
fn answered(name: &str, status: u16, reason: &str) -> String {
    match udp(name) {
        Outcome::Answered(s, r, Some(resp)) => {
            assert_eq!((s, r.as_str()), (status, reason), "{name}");
            assert_eq!(resp.status_code.code(), status);
            let text = resp.to_string();
            let bytes = load(name);
            let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n");
            let call_id = String::from_utf8_lossy(&bytes[..head_end.unwrap_or(bytes.len())])
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID: ").map(str::to_string));
            if let Some(call_id) = call_id {
                assert!(text.contains(&format!("Call-ID: {call_id}\r\n")), "{text}");
            }
            if let Some(to) = text.lines().find(|l| l.starts_with("To: ")) {
                assert!(to.contains(";tag="), "a To tag is added: {text}");
            }
            assert!(text.contains("Content-Length: 0\r\n"), "{text}");
            text
        }
        other => panic!("{name}: expected {status} {reason}, got {other:?}"),
    }
}

fn dropped(name: &str) -> &'static str {
    match udp(name) {
        Outcome::Dropped(why) => why,
        other => panic!("{name}: expected a drop, got {other:?}"),
    }
}

fn header_values(headers: &rsip::Headers, name: &str) -> Vec<String> {
    headers
        .iter()
        .filter_map(|h| match (h, name) {
            (Header::Via(v), "Via") => Some(v.value().to_string()),
            (Header::Contact(v), "Contact") => Some(v.value().to_string()),
            (Header::To(v), "To") => Some(v.value().to_string()),
            (Header::From(v), "From") => Some(v.value().to_string()),
            (Header::CallId(v), "Call-ID") => Some(v.value().to_string()),
            (Header::CSeq(v), "CSeq") => Some(v.value().to_string()),
            (Header::MaxForwards(v), "Max-Forwards") => Some(v.value().to_string()),
            (Header::Subject(v), "Subject") => Some(v.value().to_string()),
            (Header::Accept(v), "Accept") => Some(v.value().to_string()),
            (Header::Route(v), "Route") => Some(v.value().to_string()),
            (Header::Other(n, v), _) if n == name => Some(v.clone()),
            _ => None,
        })
        .collect()
}

// ---- stream framing -------------------------------------------------------------------------

type StreamResult = Result<Parsed, FramingError>;

/// Everything a framer yields for `bytes` pushed in `chunk`-sized pieces, and what it still holds.
fn stream(bytes: &[u8], chunk: usize, limits: Limits) -> (Vec<StreamResult>, usize) {
    let mut framer = StreamFramer::new(limits);
    let mut out = Vec::new();
    'outer: for piece in bytes.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.next() {
                Ok(Some(p)) => out.push(Ok(p)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    break 'outer;
                }
            }
        }
    }
    (out, framer.buffered())
}

/// Whole and byte-by-byte streams agree; returns the results.
fn stream_consistent(name: &str, limits: Limits) -> (Vec<StreamResult>, usize) {
    let bytes = load(name);
    let whole = stream(&bytes, bytes.len().max(1), limits);
    let bytewise = stream(&bytes, 1, limits);
    let sevens = stream(&bytes, 7, limits);
    assert_eq!(whole, bytewise, "{name}: whole vs 1-byte chunks");
    assert_eq!(whole, sevens, "{name}: whole vs 7-byte chunks");
    whole
}

/// On a stream the message gives exactly what it gives over UDP.
fn stream_same_as_udp(name: &str) {
    stream_same_as_udp_with(name, Limits::default());
}

fn stream_same_as_udp_with(name: &str, limits: Limits) {
    let (results, left) = stream_consistent(name, limits);
    let udp = parse_datagram(&load(name), &limits);
    assert_eq!(results, vec![Ok(udp)], "{name}: stream vs UDP");
    assert_eq!(left, 0, "{name}: nothing left over");
}

// ---- 3.1.1 valid messages -------------------------------------------------------------------

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

// ---- 3.1.2 invalid, 3.2 transaction, 3.3 application, 3.4 compatibility ----------------------

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

#[test]
fn index_files_and_tests_agree() {
    let index = std::fs::read_to_string(format!("{DIR}/INDEX.tsv")).expect("INDEX.tsv");
    let mut indexed: Vec<String> = index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(|f| f.trim_end_matches(".dat").to_string())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(DIR)
        .expect("corpus dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".dat").map(str::to_string))
        .collect();
    let mut covered: Vec<String> = COVERED.iter().map(|s| s.to_string()).collect();
    indexed.sort();
    files.sort();
    covered.sort();
    assert_eq!(indexed, files);
    assert_eq!(indexed, covered);
}

#[test]
fn typed_views_of_normalized_headers() {
    // what downstream code reads through rsip's typed headers after normalization
    let req = request("wsinv");
    let to = header_values(&req.headers, "To");
    let to = rsip::headers::To::new(to[0].clone())
        .typed()
        .expect("typed To");
    assert_eq!(
        to.tag().map(|t| t.to_string()),
        Some("1918181833n".to_string())
    );
    let cseq = req.headers.iter().find_map(|h| match h {
        Header::CSeq(c) => c.typed().ok(),
        _ => None,
    });
    assert_eq!(cseq.map(|c| c.seq), Some(9));
}
