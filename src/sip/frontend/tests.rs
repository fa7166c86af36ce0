//! Framing and robustness tests of the whole front end.

use super::*;
use crate::sip::response::response_for;
use crate::sip::validate::check_request;
use rsip::SipMessage;

fn options(call_id: &str, body: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP pbx.example.com;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn call_id(p: &Parsed) -> String {
    match p {
        Parsed::Message(SipMessage::Request(r)) => r
            .headers
            .iter()
            .find_map(|h| match h {
                rsip::Header::CallId(c) => Some(c.to_string()),
                _ => None,
            })
            .unwrap_or_default(),
        other => panic!("not a request: {other:?}"),
    }
}

fn drain(f: &mut StreamFramer) -> Vec<Parsed> {
    let mut out = Vec::new();
    while let Some(p) = f.next().expect("no framing error") {
        out.push(p);
    }
    out
}

#[test]
fn two_messages_in_one_read() {
    let mut data = options("one", "hello");
    data.extend(options("two", ""));
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(&data);
    let got = drain(&mut framer);
    assert_eq!(got.len(), 2);
    assert_eq!(call_id(&got[0]), "Call-ID: one");
    assert_eq!(call_id(&got[1]), "Call-ID: two");
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn message_split_across_reads() {
    let data = options("split", "body bytes");
    let mut framer = StreamFramer::new(Limits::default());
    let (a, b) = data.split_at(data.len() - 3);
    framer.push(a);
    assert_eq!(framer.next(), Ok(None));
    framer.push(b);
    assert_eq!(drain(&mut framer).len(), 1);
}

#[test]
fn crlf_keepalives_between_messages() {
    let mut data = b"\r\n\r\n".to_vec();
    data.extend(options("k1", ""));
    data.extend(b"\r\n\r\n\r\n\r\n");
    data.extend(options("k2", ""));
    data.extend(b"\r\n");
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(&data);
    assert_eq!(drain(&mut framer).len(), 2);
    assert_eq!(framer.take_pings(), 3);
    assert_eq!(framer.take_pings(), 0);
    assert_eq!(
        framer.buffered(),
        2,
        "a lone CRLF waits to see if a ping follows"
    );
    assert_eq!(
        parse_datagram(b"\r\n\r\n", &Limits::default()),
        Parsed::Drop("keep-alive")
    );
}

#[test]
fn binary_body_survives() {
    let body: Vec<u8> = (0u8..=255).collect();
    let mut data = options("bin", "");
    let cut = data.len() - "Content-Length: 0\r\n\r\n".len();
    data.truncate(cut);
    data.extend(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    data.extend(&body);
    for parsed in [parse_datagram(&data, &Limits::default()), {
        let mut f = StreamFramer::new(Limits::default());
        f.push(&data);
        drain(&mut f).remove(0)
    }] {
        let Parsed::Message(msg) = parsed else {
            panic!("{parsed:?}");
        };
        assert_eq!(msg.body(), &body);
    }
}

#[test]
fn oversize_is_refused() {
    let limits = Limits {
        max_message_bytes: 600,
        max_body_bytes: 100,
        ..Limits::default()
    };
    // UDP: a big body and a big datagram are 513s with a response
    let big_body = options("big", &"x".repeat(200));
    match parse_datagram(&big_body, &limits) {
        Parsed::Reject(r) => assert_eq!((r.status, r.response.is_some()), (513, true)),
        other => panic!("{other:?}"),
    }
    let huge = options("huge", &"x".repeat(1000));
    assert!(matches!(parse_datagram(&huge, &limits), Parsed::Reject(r) if r.status == 513));
    // stream: the declared size is refused before the body arrives
    let mut framer = StreamFramer::new(limits);
    framer.push(&big_body[..big_body.len() - 200]);
    let err = framer.next().unwrap_err();
    assert!(matches!(err, FramingError::MessageTooLarge { .. }));
    assert_eq!(err.rejection().map(|r| r.status), Some(513));
    assert_eq!(
        framer.next(),
        Err(FramingError::Failed),
        "a failed stream stays failed"
    );
    // stream: a header section that never ends
    let mut framer = StreamFramer::new(limits);
    let mut endless = options("endless", "");
    endless.truncate(endless.len() - 4);
    framer.push(&endless);
    while framer.buffered() <= limits.max_message_bytes {
        framer.push(b"\r\nX-Filler: 0123456789");
        if framer.buffered() <= limits.max_message_bytes {
            assert_eq!(framer.next(), Ok(None));
        }
    }
    let err = framer.next().unwrap_err();
    assert!(matches!(
        err,
        FramingError::HeaderTooLarge { limit: 600, .. }
    ));
    assert!(err.rejection().is_some_and(|r| r.response.is_some()));
}

#[test]
fn buffer_is_bounded() {
    let limits = Limits {
        max_message_bytes: 2000,
        ..Limits::default()
    };
    let one = options("b", "");
    let mut framer = StreamFramer::new(limits);
    // many small messages pushed at once: the buffer keeps at most 2 x max_message_bytes
    framer.push(&one.repeat(100));
    assert!(framer.buffered() <= 4000);
    let mut framed = 0;
    let err = loop {
        match framer.next() {
            Ok(Some(_)) => framed += 1,
            Ok(None) => panic!("the cut message must not wait for more data"),
            Err(e) => break e,
        }
    };
    assert!(framed >= 4000 / one.len() - 1);
    assert_eq!(err, FramingError::BufferOverflow);
}

#[test]
fn missing_content_length_on_a_stream_closes() {
    let mut data = options("ncl", "");
    let cut = data.len() - "Content-Length: 0\r\n\r\n".len();
    data.truncate(cut);
    data.extend(b"\r\n");
    let mut framer = StreamFramer::new(Limits::default());
    framer.push(&data);
    let err = framer.next().unwrap_err();
    assert!(
        matches!(err, FramingError::MissingContentLength { rejection: Some(ref r) } if r.status == 400)
    );
}

/// xorshift64: a tiny deterministic generator, enough to mutate messages.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, msg: &mut Vec<u8>) {
    const SPICE: &[u8] = b"\r\n :;,=<>\"\\%@/\t\x00\xff\xc3-0123456789";
    for _ in 0..=rng.below(4) {
        let at = rng.below(msg.len() + 1);
        match rng.below(6) {
            0 if at < msg.len() => msg[at] ^= 1 << rng.below(8),
            1 => msg.insert(at, SPICE[rng.below(SPICE.len())]),
            2 if at < msg.len() => {
                msg.remove(at);
            }
            3 => {
                let len = rng.below(40).min(msg.len() - at);
                let piece = msg[at..at + len].to_vec();
                let to = rng.below(msg.len() + 1);
                msg.splice(to..to, piece);
            }
            4 => msg.splice(at..at, b"\r\n ".iter().copied()).for_each(drop),
            _ => msg.truncate(at.max(1)),
        }
    }
}

/// RFC 4475's messages (testdata/sip-torture/*.dat), sorted by content: a fixed order for the
/// seeded mutations.
fn torture_corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sip-torture");
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("corpus")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "dat"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    corpus.sort();
    corpus
}

#[test]
fn mutated_torture_messages_never_panic() {
    let corpus = torture_corpus();
    assert_eq!(corpus.len(), 49);
    let limits = Limits::default();
    let mut rng = XorShift(0x5eed_1234_abcd_0042);
    for i in 0..20_000 {
        let mut msg = corpus[i % corpus.len()].clone();
        mutate(&mut rng, &mut msg);
        let parsed = parse_datagram(&msg, &limits);
        match &parsed {
            Parsed::Message(SipMessage::Request(req)) => {
                let _ = check_request(req);
                let _ = response_for(req, 500, "x", Some("t")).to_string();
                let _ = req.to_string();
            }
            Parsed::Reject(r) => {
                let _ = r.response.as_ref().map(|x| x.to_string());
            }
            _ => {}
        }
        if i % 10 == 0 {
            let mut framer = StreamFramer::new(limits);
            for chunk in msg.chunks(1 + rng.below(64)) {
                framer.push(chunk);
                while let Ok(Some(_)) = framer.next() {}
            }
        }
    }
}

/// The fields go into the rsip message directly (`message::headers_of`), no longer written out
/// and tokenized by rsip: every torture message, mutated as above, and responses parse to the
/// same value both ways.
#[test]
fn messages_parse_as_when_rsip_tokenized_the_fields() {
    let mut corpus = torture_corpus();
    corpus.push(options("c1", "a body\r\n\r\nwith a blank line"));
    corpus.push(
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
          To: <sip:b@h>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\nX-Odd:   \t spaced \r\n\
          Content-Length: 0\r\n\r\n"
            .to_vec(),
    );
    corpus.push(
        b"SIP/2.0 299 Whatever Phrase\r\nv: SIP/2.0/UDP h;branch=z9hG4bK2\r\nf: <sip:a@h>;tag=1\r\n\
          t: <sip:b@h>\r\ni: r2\r\nCSeq: 2 INVITE\r\nc: application/sdp\r\nl: 5\r\n\r\nv=0\r\n"
            .to_vec(),
    );
    let limits = Limits::default();
    let both = |msg: &[u8]| {
        let new = parse_datagram(msg, &limits);
        message::reference::ON.set(true);
        let old = parse_datagram(msg, &limits);
        message::reference::ON.set(false);
        (new, old)
    };
    let mut messages = 0;
    for msg in &corpus {
        let (new, old) = both(msg);
        assert_eq!(new, old, "{}", String::from_utf8_lossy(msg));
        messages += matches!(new, Parsed::Message(_)) as usize;
    }
    // Most of the corpus parses (the rest is refused before rsip, both ways).
    assert!(messages > 20, "{messages}");
    let mut rng = XorShift(0x0dd_ba11_5eed_0016);
    for i in 0..20_000 {
        let mut msg = corpus[i % corpus.len()].clone();
        mutate(&mut rng, &mut msg);
        let (new, old) = both(&msg);
        assert_eq!(new, old, "{}", String::from_utf8_lossy(&msg));
    }
}
