//! Leniency, limits, and hostile input: mutations of real bodies must never panic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tests::{
    anchor_v4, crlf, ip, lines, ASTERISK_OFFER, CARRIER_ANSWER, FREESWITCH_V6, YEALINK_OFFER,
};
use super::*;

#[test]
fn lenient_forms() {
    // LF only, blank lines, trailing blanks, unknown lines, missing o=/s=/t=.
    let body = "v=0\n\nc=IN IP4 10.0.0.1  \nx=vendor thing\nm=audio 4000/2 RTP/AVP 0\t\n\
                a=X-nonsense\nc=garbage\n";
    let sdp = parse(body.as_bytes()).unwrap();
    let a = sdp.audio().unwrap();
    assert_eq!(a.port, 4000);
    assert_eq!(
        a.connection, None,
        "media-level garbage c= overrides: unreachable"
    );
    let out = sdp.anchor(&anchor_v4(), &mut Origin::new(ip("198.51.100.1")));
    let text = lines(&out.sdp);
    assert!(text.contains(&"m=audio 20000 RTP/AVP 0".to_string()));
    assert!(text.contains(&"x=vendor thing".to_string()));
    assert_eq!(text.iter().filter(|l| l.starts_with("c=")).count(), 2);
}

#[test]
fn limits_and_errors() {
    assert_eq!(
        parse(&vec![b'a'; MAX_SDP_BYTES + 1]),
        Err(SdpError::TooLarge(MAX_SDP_BYTES + 1))
    );
    let mut many = String::from("v=0\r\n");
    for _ in 0..=MAX_MEDIA {
        many.push_str("m=audio 0 RTP/AVP 0\r\n");
    }
    assert_eq!(parse(many.as_bytes()), Err(SdpError::TooManyMedia));
    assert_eq!(parse(b"v=0\r\n\xff\r\n"), Err(SdpError::NotUtf8));
    assert_eq!(parse(b"o=x\r\nv=0\r\n"), Err(SdpError::MissingVersion));
    assert_eq!(parse(b""), Err(SdpError::MissingVersion));
    assert!(matches!(
        parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n"),
        Err(SdpError::Malformed { line: 2, .. })
    ));
    assert!(matches!(
        parse(b"v=0\r\nhello\r\n"),
        Err(SdpError::Malformed { line: 2, .. })
    ));
    assert!(matches!(
        parse(b"v=0\r\na=x\ry\r\n"),
        Err(SdpError::Malformed { .. })
    ));
}

/// Random mutations of real bodies, fixed seed: parse, summarize, rewrite and re-parse must never
/// panic, and whatever parses must render to something that parses again.
#[test]
fn mutations_never_panic() {
    let seeds: Vec<Vec<u8>> = [YEALINK_OFFER, ASTERISK_OFFER, CARRIER_ANSWER, FREESWITCH_V6]
        .iter()
        .map(|s| crlf(s).into_bytes())
        .collect();
    let tokens: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"m=",
        b"c=",
        b"a=rtcp:",
        b"a=rtpmap:",
        b" ",
        b"/",
        b":",
        b"0",
        b"65535",
        b"99999",
        b"IN IP6 ::",
        b"IN IP4 0.0.0.0",
        b"\r",
        b"\0",
        b"\xff",
        b"=",
        b"m=audio 0 RTP/AVP",
    ];
    let mut rng = StdRng::seed_from_u64(0x5d9_7a11);
    let anchor = anchor_v4();
    let mut origin = Origin::new(anchor.address);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut body = seeds[rng.gen_range(0..seeds.len())].clone();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..=body.len());
            match rng.gen_range(0..5) {
                0 if !body.is_empty() => {
                    let i = rng.gen_range(0..body.len());
                    body[i] = rng.gen();
                }
                1 => {
                    let t = tokens[rng.gen_range(0..tokens.len())];
                    body.splice(at..at, t.iter().copied());
                }
                2 => {
                    let end = (at + rng.gen_range(0..40)).min(body.len());
                    body.drain(at..end);
                }
                3 => body.truncate(at),
                _ => {
                    let end = (at + rng.gen_range(0..200)).min(body.len());
                    let copy = body[at..end].to_vec();
                    body.splice(at..at, copy);
                }
            }
        }
        if let Ok(sdp) = parse(&body) {
            parsed += 1;
            for m in sdp.media() {
                let _ = (
                    m.remote_rtp(),
                    m.remote_rtcp(),
                    m.telephone_event(),
                    m.is_hold(),
                );
                let _ = m.clock_rate();
            }
            let out = sdp.anchor(&anchor, &mut origin).sdp.to_bytes();
            if out.len() <= MAX_SDP_BYTES {
                let again = parse(&out).expect("rendered SDP parses again");
                assert_eq!(again.media_count(), sdp.media_count());
            }
        }
    }
    assert!(
        parsed > 1000,
        "mutations too destructive to test much: {parsed}"
    );
}
