//! The SIP front end's documented bounds, at their default values, through both entry points
//! (UDP datagram and TCP stream): a message just inside each bound is accepted, one past it is
//! refused with 513 and a routable response (a request) or dropped (a response), never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use trunkguard::sip::frontend::{parse_datagram, FramingError, Limits, Parsed, StreamFramer};

/// An OPTIONS request with `vias` Via values (one per header), `extra` filler headers (about
/// 64 bytes each) and a body of `body` bytes. It has 7 headers besides the Vias and the filler.
fn request(vias: usize, extra: usize, body: usize) -> Vec<u8> {
    let mut m = String::from("OPTIONS sip:bob@example.com SIP/2.0\r\n");
    for i in 0..vias {
        m += &format!("Via: SIP/2.0/UDP hop{i}.example.com;branch=z9hG4bK{i}x\r\n");
    }
    m += "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\n\
          To: <sip:bob@example.com>\r\nCall-ID: bounds@example.com\r\nCSeq: 1 OPTIONS\r\n";
    for i in 0..extra {
        m += &format!("X-Filler-{i}: {i:0>48}\r\n");
    }
    m += &format!("Content-Type: text/plain\r\nContent-Length: {body}\r\n\r\n");
    let mut bytes = m.into_bytes();
    bytes.resize(bytes.len() + body, b'x');
    bytes
}

/// A 200 OK with `vias` Via values, `extra` filler headers and a body of `body` bytes.
fn response(vias: usize, extra: usize, body: usize) -> Vec<u8> {
    let text = String::from_utf8(request(vias, extra, body)).unwrap();
    text.replacen("OPTIONS sip:bob@example.com SIP/2.0", "SIP/2.0 200 OK", 1)
        .into_bytes()
}

const OTHER_HEADERS: usize = 7;

fn udp(bytes: &[u8]) -> Parsed {
    parse_datagram(bytes, &Limits::default())
}

fn tcp(bytes: &[u8]) -> Result<Option<Parsed>, FramingError> {
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(bytes);
    framer.next()
}

fn assert_accepted(bytes: &[u8]) {
    assert!(matches!(udp(bytes), Parsed::Message(_)), "{:?}", udp(bytes));
    assert!(
        matches!(tcp(bytes), Ok(Some(Parsed::Message(_)))),
        "{:?}",
        tcp(bytes)
    );
}

/// Refused with 513 and a response the transport can route back.
fn assert_refused_513(parsed: &Parsed, reason: &str) {
    match parsed {
        Parsed::Reject(r) => {
            assert_eq!((r.status, r.reason.as_str()), (513, reason));
            assert!(r.response.is_some(), "the 513 must be sent back");
        }
        other => panic!("expected a 513 ({reason}), got {other:?}"),
    }
}

#[test]
fn header_count_is_bounded() {
    let max = Limits::default().max_headers;
    let vias = 1;
    assert_accepted(&request(vias, max - OTHER_HEADERS - vias, 0));
    let over = request(vias, max - OTHER_HEADERS - vias + 1, 0);
    assert_refused_513(&udp(&over), "Too Many Headers");
    assert_refused_513(&tcp(&over).unwrap().unwrap(), "Too Many Headers");
    assert!(matches!(udp(&response(vias, max, 0)), Parsed::Drop(_)));
}

#[test]
fn via_depth_is_bounded() {
    let max = Limits::default().max_via;
    assert_accepted(&request(max, 0, 0));
    let over = request(max + 1, 0, 0);
    assert_refused_513(&udp(&over), "Too Many Via Headers");
    assert_refused_513(&tcp(&over).unwrap().unwrap(), "Too Many Via Headers");
    // comma-separated values count one by one
    let text = String::from_utf8(request(1, 0, 0)).unwrap();
    let chain: Vec<String> = (0..=max)
        .map(|i| format!("SIP/2.0/UDP h{i}.example.com;branch=z9hG4bKc{i}"))
        .collect();
    let folded = text.replacen(
        "Via: SIP/2.0/UDP hop0.example.com;branch=z9hG4bK0x",
        &format!("Via: {}", chain.join(", ")),
        1,
    );
    assert_refused_513(&udp(folded.as_bytes()), "Too Many Via Headers");
    assert!(matches!(udp(&response(max + 1, 0, 0)), Parsed::Drop(_)));
}

#[test]
fn body_size_is_bounded() {
    let max = Limits::default().max_body_bytes;
    assert_accepted(&request(1, 0, max));
    let over = request(1, 0, max + 1);
    assert_refused_513(&udp(&over), "Body Too Large");
    // on a stream the declared length is refused before the body is read
    let head_only = &over[..over.len() - (max + 1)];
    match tcp(head_only) {
        Err(e @ FramingError::MessageTooLarge { .. }) => {
            assert_eq!(e.rejection().map(|r| r.status), Some(513));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(udp(&response(1, 0, max + 1)), Parsed::Drop(_)));
}

#[test]
fn message_size_is_bounded() {
    let limits = Limits::default();
    // within the body bound, over the message bound through its headers
    let fill = |n| request(1, n, limits.max_body_bytes);
    let extra = (0..limits.max_headers)
        .find(|&n| fill(n).len() > limits.max_message_bytes)
        .expect("enough filler to pass the message bound");
    assert!(fill(extra - 1).len() <= limits.max_message_bytes);
    let over = fill(extra);
    assert_refused_513(&udp(&over), "Message Too Large");
    assert!(matches!(
        tcp(&over),
        Err(FramingError::MessageTooLarge { .. })
    ));
    // a header section that never ends on a stream
    let mut endless = request(1, 0, 0);
    endless.truncate(endless.len() - 4);
    endless.extend(b"\r\nX-Long: ");
    endless.resize(limits.max_message_bytes + 1, b'a');
    match tcp(&endless) {
        Err(e @ FramingError::HeaderTooLarge { .. }) => {
            assert_eq!(e.rejection().map(|r| r.status), Some(513));
        }
        other => panic!("{other:?}"),
    }
    // a datagram of any size is refused, never parsed
    let mut huge = request(1, 0, 0);
    huge.resize(1 << 20, b'x');
    assert!(matches!(udp(&huge), Parsed::Reject(r) if r.status == 513));
}

/// The front end's body limit and the SDP parser's agree: a body the front end takes is never
/// refused as too large by the SDP parser (issue 15: the call went on without its offer).
#[test]
fn sdp_limit_is_the_front_end_body_limit() {
    assert_eq!(
        trunkguard::media::sdp::MAX_SDP_BYTES,
        trunkguard::sip::frontend::Limits::default().max_body_bytes
    );
}
