use super::*;
use sha2::Digest as _;

/// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
fn rfc7616(algorithm: &str) -> Challenge {
    let value = format!(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    );
    let mut all = challenge::parse(Kind::Www, &value);
    assert_eq!(all.len(), 1, "{value}");
    all.remove(0)
}

fn rfc7616_request() -> Request<'static> {
    Request {
        username: "Mufasa",
        password: "Circle of Life",
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        nc: 1,
    }
}

#[test]
fn rfc7616_md5_vector() {
    let ch = rfc7616("MD5");
    assert_eq!(ch.algorithm, Algorithm::Md5);
    assert_eq!(ch.qop, Some(Qop::Auth), "auth is preferred to auth-int");
    assert_eq!(
        response(&ch, &rfc7616_request()),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
}

#[test]
fn rfc7616_sha256_vector() {
    let ch = rfc7616("SHA-256");
    assert_eq!(ch.algorithm, Algorithm::Sha256);
    assert_eq!(
        response(&ch, &rfc7616_request()),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

/// RFC 2617 §3.5's example (MD5, qop=auth), the one most SIP stacks were written against.
#[test]
fn rfc2617_vector() {
    let ch = challenge::parse(
        Kind::Www,
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .remove(0);
    let r = Request {
        username: "Mufasa",
        password: "Circle Of Life",
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
        cnonce: "0a4f113b",
        nc: 1,
    };
    assert_eq!(response(&ch, &r), "6629fae49393a05397450978507c4ef1");
}

/// Without qop (RFC 2069 style) the response covers HA1, nonce and HA2 only: computed here by
/// hand from the definition, with independent calls to the hash.
#[test]
fn no_qop_and_sess_follow_the_definitions() {
    let ch = challenge::parse(Kind::Proxy, "Digest realm=\"r\", nonce=\"n\"").remove(0);
    assert_eq!(
        (ch.kind, ch.algorithm, ch.qop),
        (Kind::Proxy, Algorithm::Md5, None)
    );
    let r = Request {
        username: "u",
        password: "p",
        method: "INVITE",
        uri: "sip:1@h",
        body: b"v=0",
        cnonce: "c",
        nc: 1,
    };
    let md5 = |s: &str| hex::encode(Md5::digest(s.as_bytes()));
    let expect = md5(&format!("{}:n:{}", md5("u:r:p"), md5("INVITE:sip:1@h")));
    assert_eq!(response(&ch, &r), expect);

    let ch = challenge::parse(
        Kind::Www,
        "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256-sess, qop=\"auth-int\"",
    )
    .remove(0);
    let sha = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    let ha1 = sha(&format!("{}:n:c", sha("u:r:p")));
    let ha2 = sha(&format!("INVITE:sip:1@h:{}", sha("v=0")));
    let expect = sha(&format!("{ha1}:n:00000001:c:auth-int:{ha2}"));
    assert_eq!(response(&ch, &r), expect);
}

#[test]
fn credentials_header_carries_every_part() {
    let ch = rfc7616("SHA-256");
    let v = credentials(&ch, &rfc7616_request());
    assert!(
        v.starts_with("Digest username=\"Mufasa\", realm=\"http-auth@example.org\""),
        "{v}"
    );
    for part in [
        "uri=\"/dir/index.html\"",
        "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\"",
        "algorithm=SHA-256",
        "qop=auth,",
        "nc=00000001",
        "cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\"",
        "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
    ] {
        assert!(v.contains(part), "{part} missing in {v}");
    }
    // What we wrote parses back as the same parameters (quotes and escapes round-trip).
    let back = challenge::split(&v);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].get("nonce"), Some(ch.nonce.as_str()));
}

#[test]
fn escapes_and_several_challenges() {
    let all = challenge::parse(
        Kind::Www,
        "Basic realm=\"x\", Digest realm=\"a\\\"b\", nonce=\"n1\", algorithm=SHA-512-256, \
         Digest realm=\"c\", nonce=\"n2\", algorithm=MD5",
    );
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].realm, "a\"b");
    assert_eq!(all[0].algorithm, Algorithm::Sha512_256);
    assert_eq!(
        pick(&all, Some("c")).map(|c| c.nonce),
        Some("n2".to_string())
    );
    assert_eq!(pick(&all, None).map(|c| c.nonce), Some("n1".to_string()));
    assert_eq!(pick(&all, Some("elsewhere")), None);
    let ch = &all[0];
    let v = credentials(
        ch,
        &Request {
            username: "we\"ird\\",
            password: "p",
            method: "BYE",
            uri: "sip:x",
            body: b"",
            cnonce: "c",
            nc: 1,
        },
    );
    assert!(v.contains("username=\"we\\\"ird\\\\\""), "{v}");
    assert!(v.contains("realm=\"a\\\"b\""), "{v}");
}

#[test]
fn stale_and_case_insensitive_names() {
    let ch = challenge::parse(
        Kind::Www,
        "DIGEST REALM=\"r\",NONCE=n,STALE=TRUE,ALGORITHM=md5-SESS,QOP=\"AUTH\"",
    );
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert!(ch[0].stale);
    assert_eq!(ch[0].algorithm, Algorithm::Md5Sess);
    assert_eq!(ch[0].nonce, "n");
}

/// What a carrier cannot make us answer: unknown algorithms or qop, no realm or nonce,
/// control characters that would end our header, unterminated quotes, oversized values.
#[test]
fn hostile_challenges_are_not_answered() {
    let refused = [
        "",
        "Digest",
        "Digest realm=\"r\"",
        "Digest nonce=\"n\"",
        "Digest realm=\"r\", nonce=\"\"",
        "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1",
        "Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5",
        "Digest realm=\"r\", nonce=\"n\", qop=\"auth-conf\"",
        "Digest realm=\"r\r\nX-Injected: 1\", nonce=\"n\"",
        "Digest realm=\"r\", nonce=\"n\u{0}\"",
        "Digest realm=\"r\", nonce=\"unterminated",
        "Basic realm=\"r\"",
        "Digest \u{7f}realm=\"r\", nonce=\"n\"",
    ];
    for v in refused {
        assert!(
            challenge::parse(Kind::Www, v).is_empty(),
            "{v:?} was answered"
        );
    }
    let long = format!("Digest realm=\"r\", nonce=\"{}\"", "n".repeat(5000));
    assert!(challenge::parse(Kind::Www, &long).is_empty());
    let huge = format!("Digest realm=\"r\", nonce=\"n\", {}", "x=1, ".repeat(4000));
    assert!(challenge::parse(Kind::Www, &huge).is_empty());
    let many = format!("Digest realm=\"r\", nonce=\"n\", {}", "x=1, ".repeat(40));
    assert!(
        challenge::parse(Kind::Www, &many).is_empty(),
        "over the parameter limit"
    );
}

/// Fuzz-style: every prefix of good values, and seeded random bytes and mutations, parse to
/// something or nothing — never a panic — and whatever is accepted echoes no control character.
#[test]
fn parser_is_total_on_random_and_truncated_input() {
    use rand::{Rng, SeedableRng};
    let good = "Digest realm=\"carrier \\\"x\\\" é\", nonce=\"abc\", qop=\"auth,auth-int\", \
                algorithm=SHA-256-sess, opaque=\"o\", stale=true, userhash=true";
    for end in 0..=good.len() {
        if good.is_char_boundary(end) {
            check(&good[..end]);
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7616);
    let alphabet: &[u8] = b"Digest realm=nonce\"\\, \t\r\n=auth-int;qop\x00\xc3\xa9\xff";
    for _ in 0..20_000 {
        let len = rng.gen_range(0..120);
        let bytes: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect();
        check(&String::from_utf8_lossy(&bytes));
        let mut mutated = good.as_bytes().to_vec();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..mutated.len());
            mutated[at] = alphabet[rng.gen_range(0..alphabet.len())];
        }
        check(&String::from_utf8_lossy(&mutated));
    }
}

fn check(value: &str) {
    for ch in challenge::parse(Kind::Proxy, value) {
        let v = credentials(
            &ch,
            &Request {
                username: "u",
                password: "p",
                method: "INVITE",
                uri: "sip:a@b",
                body: b"",
                cnonce: "c",
                nc: 1,
            },
        );
        assert!(!v.chars().any(char::is_control), "{value:?} → {v:?}");
    }
}

/// A 407 carried through rsip: the challenges are found in its headers.
#[test]
fn challenges_of_a_response() {
    let raw = "SIP/2.0 407 Proxy Authentication Required\r\n\
               Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx\r\n\
               From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\
               Proxy-Authenticate: Digest realm=\"carrier\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\"\r\n\
               Content-Length: 0\r\n\r\n";
    let rsip::SipMessage::Response(resp) = rsip::SipMessage::try_from(raw).unwrap() else {
        panic!("not a response");
    };
    let all = challenges(&resp);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].kind, Kind::Proxy);
    assert_eq!(all[0].algorithm, Algorithm::Sha256);
    let h = header(all[0].kind, "Digest x".into());
    assert!(is_credentials(&h));
    assert_eq!(h.to_string(), "Proxy-Authorization: Digest x");
}
