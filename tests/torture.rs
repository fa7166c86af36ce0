//! RFC 4475 torture messages through the front end (`parse_datagram`, `StreamFramer`) and
//! `check_request`, one test per message, driven by testdata/sip-torture/INDEX.tsv.
//! Where the RFC names a registrar's or proxy's answer, the B2BUA's answer is expected
//! (REGISTER is 405: a trunk has no registrar).
//!
//! This file holds the corpus, the helpers and the stream framing both groups use, and the
//! checks of the corpus itself; the messages stand in `torture/`: `valid.rs` (RFC 4475 3.1.1,
//! valid messages) and `invalid.rs` (3.1.2 invalid, 3.2 transaction, 3.3 application, 3.4
//! compatibility).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::{Header, SipMessage};
use trunkguard::sip::frontend::{parse_datagram, FramingError, Limits, Parsed, StreamFramer};
use trunkguard::sip::validate::check_request;

#[path = "torture/invalid.rs"]
mod invalid;
#[path = "torture/valid.rs"]
mod valid;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sip-torture");

/// Every message with a test (in `torture/valid.rs` and `torture/invalid.rs`).
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
