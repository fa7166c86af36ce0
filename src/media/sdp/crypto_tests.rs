//! SDES: `a=crypto` parsing, what an offer asks for, `check_offer` per leg mode, and the per-leg
//! negotiation (`media::sdes`) on real-shaped offers and answers.

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;

use super::crypto::*;
use super::*;
use crate::config::MediaEncryption;
use crate::media::sdes::{AnswerError, Sdes};
use crate::media::srtp::{MasterKey, Suite};
use crate::media::Leg;

/// 30 bytes of key and salt, base64 (RFC 4568 §4's example key).
const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn offer(profile: &str, crypto: &[&str]) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 16000 {profile} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    );
    for c in crypto {
        s.push_str(&format!("a=crypto:{c}\r\n"));
    }
    s
}

fn crypto_lines(sdp: &SessionDescription) -> Vec<String> {
    sdp.media
        .iter()
        .flatten()
        .filter(|l| l.value.starts_with("crypto:"))
        .map(|l| l.value.clone())
        .collect()
}

fn profile_of(sdp: &SessionDescription) -> String {
    sdp.audio().unwrap().protocol
}

#[test]
fn parses_the_suites_served() {
    let line = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")).unwrap();
    assert_eq!((line.tag, line.suite), (1, Suite::AesCm128HmacSha1_80));
    assert_eq!(line.key.inline(), KEY);
    let line = parse_crypto(&format!("7 aes_cm_128_hmac_sha1_32 inline:{KEY}|2^31")).unwrap();
    assert_eq!((line.tag, line.suite), (7, Suite::AesCm128HmacSha1_32));
    // Lifetime in decimal, KDR=0 and a window-size hint are fine.
    parse_crypto(&format!(
        "2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|4294967296 KDR=0 WSH=64"
    ))
    .unwrap();
    let gcm = base64::engine::general_purpose::STANDARD.encode([9u8; 28]);
    let line = parse_crypto(&format!("3 AEAD_AES_128_GCM inline:{gcm}")).unwrap();
    assert_eq!(line.suite, Suite::AeadAes128Gcm);
}

#[test]
fn refuses_what_it_cannot_serve_and_says_why() {
    let cases = [
        (
            format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}"),
            "AES_256_CM_HMAC_SHA1_80 is not supported",
        ),
        (
            format!("1 F8_128_HMAC_SHA1_80 inline:{KEY}"),
            "not supported",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!".to_string(),
            "not valid base64",
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:AAAAAAAAAAAAAAAAAAAAAA==".to_string(),
            "16 bytes, not 30",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31|1:4"),
            "MKI",
        ),
        (format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1:4"), "MKI"),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20"),
            "lifetime",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1048576"),
            "lifetime",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} KDR=24"),
            "KDR=24",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP"),
            "UNENCRYPTED_SRTP",
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}"),
            "several keys",
        ),
        (
            format!("x AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            "malformed",
        ),
        ("1 AES_CM_128_HMAC_SHA1_80".to_string(), "malformed"),
        (format!("1 AES_CM_128_HMAC_SHA1_80 key:{KEY}"), "malformed"),
        (
            format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            "malformed",
        ),
    ];
    for (line, why) in cases {
        let e = parse_crypto(&line).unwrap_err();
        assert!(e.to_string().contains(why), "{line}: {e}");
        // An error never quotes the key.
        assert!(!e.to_string().contains(KEY), "{e}");
    }
}

#[test]
fn the_first_usable_line_is_taken() {
    let gcm = base64::engine::general_purpose::STANDARD.encode([9u8; 28]);
    let sdp = parse(
        offer(
            "RTP/SAVP",
            &[
                &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}"),
                "2 AES_CM_128_HMAC_SHA1_80 inline:bad!",
                &format!("3 AEAD_AES_128_GCM inline:{gcm}"),
                &format!("4 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            ],
        )
        .as_bytes(),
    )
    .unwrap();
    match sdp.offered_security(&sdp.audio().unwrap()).unwrap() {
        OfferedSecurity::Sdes { line, required } => {
            assert_eq!(
                (line.tag, line.suite, required),
                (3, Suite::AeadAes128Gcm, true)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn offers_the_gateway_cannot_serve() {
    let body = offer(
        "RTP/SAVP",
        &[&format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}")],
    );
    let e = check_offer(body.as_bytes(), MediaEncryption::Optional).unwrap_err();
    assert!(
        matches!(&e, OfferError::Security(SecurityError::NoUsableCrypto(why)) if why.contains("AES_256")),
        "{e}"
    );
    // SAVP without any a=crypto.
    let e = check_offer(offer("RTP/SAVP", &[]).as_bytes(), MediaEncryption::Required).unwrap_err();
    assert!(
        matches!(e, OfferError::Security(SecurityError::NoUsableCrypto(_))),
        "{e}"
    );
    // DTLS-SRTP: its profile, or SAVP keyed by a fingerprint.
    let dtls =
        offer("UDP/TLS/RTP/SAVPF", &[]) + "a=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\n";
    let e = check_offer(dtls.as_bytes(), MediaEncryption::Optional).unwrap_err();
    assert!(
        matches!(e, OfferError::Security(SecurityError::Dtls(_))),
        "{e}"
    );
    let dtls = offer("RTP/SAVP", &[]) + "a=fingerprint:sha-256 AB:CD\r\n";
    let e = check_offer(dtls.as_bytes(), MediaEncryption::Optional).unwrap_err();
    assert!(
        matches!(e, OfferError::Security(SecurityError::Dtls(_))),
        "{e}"
    );
}

#[test]
fn check_offer_follows_the_legs_mode() {
    let srtp = offer(
        "RTP/SAVP",
        &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")],
    );
    let plain = offer("RTP/AVP", &[]);
    let best_effort = offer(
        "RTP/AVP",
        &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")],
    );
    use MediaEncryption::*;
    for mode in [None, Optional, Required] {
        let s = check_offer(srtp.as_bytes(), mode);
        let p = check_offer(plain.as_bytes(), mode);
        let b = check_offer(best_effort.as_bytes(), mode);
        match mode {
            None => assert!(matches!(s, Err(OfferError::SrtpNotAllowed(_))) && p.is_ok()),
            Optional => assert!(s.is_ok() && p.is_ok()),
            Required => assert!(s.is_ok() && matches!(p, Err(OfferError::SrtpRequired))),
        }
        // Best effort (AVP + a=crypto) can always be answered: plain or SRTP.
        assert!(b.is_ok(), "{mode:?}");
    }
    // Video with SAVP next to plain audio is not looked at (it gets port 0).
    let body = plain.clone() + "m=video 0 RTP/SAVP 96\r\na=crypto:1 FOO inline:x\r\n";
    assert!(check_offer(body.as_bytes(), Required).is_err());
    assert!(check_offer(body.as_bytes(), None).is_ok());
}

/// Run an offer from `from` through the negotiation; the body for the other leg.
fn offered(sdes: &mut Sdes, from: Leg, body: &str) -> SessionDescription {
    let sdp = parse(body.as_bytes()).unwrap();
    let mut out = sdp.clone();
    sdes.offer(from, &sdp, sdp.audio().as_ref(), &mut out);
    out
}

fn answered(sdes: &mut Sdes, from: Leg, body: &str) -> Result<SessionDescription, AnswerError> {
    let sdp = parse(body.as_bytes()).unwrap();
    let mut out = sdp.clone();
    assert!(sdes.answers_pending(from));
    sdes.answer(from, &sdp, sdp.audio().as_ref(), &mut out)?;
    Ok(out)
}

/// The answer a peer gives to `our_offer` (it picks our line `tag`), with its own key.
fn peer_answer(our_offer: &SessionDescription, tag: Option<u32>) -> (String, Option<MasterKey>) {
    let Some(tag) = tag else {
        return (offer("RTP/AVP", &[]), None);
    };
    let line = crypto_lines(our_offer)
        .into_iter()
        .find(|l| l.starts_with(&format!("crypto:{tag} ")))
        .unwrap();
    let suite = Suite::from_name(line.split(' ').nth(1).unwrap()).unwrap();
    let key = MasterKey::random(suite);
    let body = offer(
        &profile_of(our_offer),
        &[&format!("{tag} {} inline:{}", suite.name(), key.inline())],
    );
    (body, Some(key))
}

#[test]
fn srtp_pbx_plain_carrier_when_the_carrier_is_optional() {
    let mut sdes = Sdes::new([MediaEncryption::Optional, MediaEncryption::None]);
    let pbx_key = MasterKey::random(Suite::AesCm128HmacSha1_32);
    let pbx_offer = offer(
        "RTP/SAVP",
        &[
            &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}"),
            &format!("2 AES_CM_128_HMAC_SHA1_32 inline:{}", pbx_key.inline()),
        ],
    );
    let to_carrier = offered(&mut sdes, Leg::Inside, &pbx_offer);
    assert_eq!(profile_of(&to_carrier), "RTP/AVP");
    assert!(
        crypto_lines(&to_carrier).is_empty(),
        "the PBX's keys never cross"
    );
    let to_pbx = answered(&mut sdes, Leg::Outside, &offer("RTP/AVP", &[])).unwrap();
    assert_eq!(profile_of(&to_pbx), "RTP/SAVP");
    let lines = crypto_lines(&to_pbx);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"),
        "{lines:?}"
    );
    assert!(
        !lines[0].contains(&pbx_key.inline()),
        "our own key, not the PBX's"
    );
    let keys = sdes.keys();
    assert_eq!(keys[0].inbound.as_deref(), Some(&pbx_key));
    assert_eq!(
        keys[0].outbound.as_ref().unwrap().inline(),
        lines[0].rsplit("inline:").next().unwrap()
    );
    assert!(keys[1].is_plain());
    // The 200 repeating the 183's answer: the same key to the PBX, no change in force.
    let before = sdes.keys().clone();
    let again = answered(&mut sdes, Leg::Outside, &offer("RTP/AVP", &[])).unwrap();
    assert_eq!(crypto_lines(&again), lines);
    assert_eq!(sdes.keys(), &before);
}

#[test]
fn plain_pbx_srtp_carrier_when_the_carrier_is_required() {
    let mut sdes = Sdes::new([MediaEncryption::Optional, MediaEncryption::Required]);
    let to_carrier = offered(&mut sdes, Leg::Inside, &offer("RTP/AVP", &[]));
    assert_eq!(profile_of(&to_carrier), "RTP/SAVP");
    let ours = crypto_lines(&to_carrier);
    assert_eq!(ours.len(), Suite::ALL.len(), "{ours:?}");
    // The carrier takes our second line.
    let (answer, carrier_key) = peer_answer(&to_carrier, Some(2));
    let to_pbx = answered(&mut sdes, Leg::Outside, &answer).unwrap();
    assert_eq!(profile_of(&to_pbx), "RTP/AVP");
    assert!(crypto_lines(&to_pbx).is_empty());
    let keys = sdes.keys();
    assert!(keys[0].is_plain());
    assert_eq!(keys[1].inbound.as_deref(), carrier_key.as_ref());
    let out = keys[1].outbound.as_ref().unwrap();
    assert!(
        ours[1].ends_with(&out.inline()),
        "the key of the line it took"
    );

    // A plain answer from a required carrier is refused, and nothing changes.
    let mut sdes = Sdes::new([MediaEncryption::Optional, MediaEncryption::Required]);
    offered(&mut sdes, Leg::Inside, &offer("RTP/AVP", &[]));
    let e = answered(&mut sdes, Leg::Outside, &offer("RTP/AVP", &[])).unwrap_err();
    assert_eq!(e, AnswerError::SrtpRequired);
    assert!(sdes.keys().iter().all(|k| k.is_plain()));
    // An answer naming a tag we did not offer, or a bad key.
    let bad = offer(
        "RTP/SAVP",
        &[&format!("9 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")],
    );
    assert!(matches!(
        answered(&mut sdes, Leg::Outside, &bad),
        Err(AnswerError::BadCrypto(_))
    ));
    let bad = offer("RTP/SAVP", &["1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"]);
    assert!(matches!(
        answered(&mut sdes, Leg::Outside, &bad),
        Err(AnswerError::BadCrypto(_))
    ));
}

#[test]
fn srtp_both_legs_and_a_rekey() {
    let mut sdes = Sdes::new([MediaEncryption::Optional, MediaEncryption::Optional]);
    let pbx_key = MasterKey::random(Suite::AesCm128HmacSha1_80);
    let pbx_offer = |k: &MasterKey| {
        offer(
            "RTP/SAVP",
            &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", k.inline())],
        )
    };
    let to_carrier = offered(&mut sdes, Leg::Inside, &pbx_offer(&pbx_key));
    assert_eq!(profile_of(&to_carrier), "RTP/SAVP");
    let ours = crypto_lines(&to_carrier);
    assert!(
        ours[0].starts_with("crypto:1 AES_CM_128_HMAC_SHA1_80 "),
        "the offerer's suite first"
    );
    assert!(!ours.iter().any(|l| l.contains(&pbx_key.inline())));
    let (answer, carrier_key) = peer_answer(&to_carrier, Some(1));
    let to_pbx = answered(&mut sdes, Leg::Outside, &answer).unwrap();
    assert!(!crypto_lines(&to_pbx)[0].contains(&carrier_key.as_ref().unwrap().inline()));
    let first = sdes.keys().clone();
    assert_eq!(first[0].inbound.as_deref(), Some(&pbx_key));
    assert_eq!(first[1].inbound.as_deref(), carrier_key.as_ref());
    // Our keys differ per leg.
    assert_ne!(first[0].outbound, first[1].outbound);

    // The PBX re-INVITEs with a new key: the inbound key changes, ours stay.
    let new_key = MasterKey::random(Suite::AesCm128HmacSha1_80);
    let again = offered(&mut sdes, Leg::Inside, &pbx_offer(&new_key));
    assert_eq!(
        crypto_lines(&again),
        ours,
        "our offer to the carrier is the same"
    );
    let (answer, _) = peer_answer(&again, Some(1));
    answered(&mut sdes, Leg::Outside, &answer).unwrap();
    let keys = sdes.keys();
    assert_eq!(keys[0].inbound.as_deref(), Some(&new_key));
    assert_eq!(keys[0].outbound, first[0].outbound);
    assert_eq!(keys[1].outbound, first[1].outbound);
}

#[test]
fn a_none_leg_answers_best_effort_srtp_plain() {
    let mut sdes = Sdes::new([MediaEncryption::None, MediaEncryption::Optional]);
    let best_effort = offer(
        "RTP/AVP",
        &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")],
    );
    let to_carrier = offered(&mut sdes, Leg::Inside, &best_effort);
    assert!(crypto_lines(&to_carrier).is_empty());
    let to_pbx = answered(&mut sdes, Leg::Outside, &offer("RTP/AVP", &[])).unwrap();
    assert_eq!(profile_of(&to_pbx), "RTP/AVP");
    assert!(crypto_lines(&to_pbx).is_empty());
    assert!(sdes.keys().iter().all(|k| k.is_plain()));
}

#[test]
fn disabled_streams_lose_their_crypto_too() {
    let body = offer("RTP/AVP", &[])
        + &format!(
            "m=video 5000 RTP/SAVP 96\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"
        );
    let sdp = parse(body.as_bytes()).unwrap();
    let anchor = Anchor {
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        rtp_port: 30000,
        rtcp_port: 30001,
    };
    let mut out = sdp.anchor(&anchor, &mut Origin::new(anchor.address)).sdp;
    let mut sdes = Sdes::new([MediaEncryption::Optional; 2]);
    sdes.offer(Leg::Outside, &sdp, sdp.audio().as_ref(), &mut out);
    let text = String::from_utf8(out.to_bytes()).unwrap();
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains("m=video 0 RTP/SAVP 96"), "{text}");
}

#[test]
fn an_unchecked_srtp_offer_it_cannot_take_is_never_heard_as_clear() {
    // A late offer (in a 2xx, not checked at admission) in a suite the gateway does not serve.
    let mut sdes = Sdes::new([MediaEncryption::Optional; 2]);
    let body = offer(
        "RTP/SAVP",
        &[&format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}")],
    );
    let to_pbx = offered(&mut sdes, Leg::Outside, &body);
    assert!(crypto_lines(&to_pbx).is_empty());
    answered(&mut sdes, Leg::Inside, &offer("RTP/AVP", &[])).unwrap();
    let carrier = &sdes.keys()[1];
    // Its packets go through a key it does not have: all fail authentication, none is clear.
    assert!(carrier.inbound.is_some() && carrier.outbound.is_none());
}
