use std::net::{IpAddr, SocketAddr};

use super::*;

/// Yealink T46 offer (LF ends as some firmwares send them… here CRLF is added by `crlf`).
pub(super) const YEALINK_OFFER: &str = "v=0
o=- 20045 20045 IN IP4 192.168.1.50
s=SDP data
c=IN IP4 192.168.1.50
t=0 0
m=audio 11780 RTP/AVP 0 8 9 18 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=ptime:20
a=sendrecv
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
";

/// Asterisk PBX offer: static types without rtpmap would be legal; Asterisk writes them anyway.
pub(super) const ASTERISK_OFFER: &str = "v=0
o=- 1193766127 1193766127 IN IP4 10.20.0.5
s=Asterisk
c=IN IP4 10.20.0.5
t=0 0
m=audio 17324 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
";

/// Carrier SBC answer with a media-level c= and a=rtcp naming an address.
pub(super) const CARRIER_ANSWER: &str = "v=0
o=Sonus_UAC 412633 262745 IN IP4 203.0.113.10
s=SIP Media Capabilities
t=0 0
m=audio 38612 RTP/AVP 8 101
c=IN IP4 203.0.113.20
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:38619 IN IP4 203.0.113.21
a=sendrecv
a=ptime:20
";

/// FreeSWITCH over IPv6, with a video stream the gateway cannot carry.
pub(super) const FREESWITCH_V6: &str = "v=0
o=FreeSWITCH 1706000000 1706000001 IN IP6 2001:db8::10
s=FreeSWITCH
c=IN IP6 2001:db8::10
t=0 0
m=audio 24560 RTP/AVP 9 0 101
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=rtcp:24561 IN IP6 2001:db8::10
m=video 24580 RTP/AVP 96
a=rtpmap:96 H264/90000
";

pub(super) fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

pub(super) fn lines(sdp: &SessionDescription) -> Vec<String> {
    String::from_utf8(sdp.to_bytes())
        .unwrap()
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) fn anchor_v4() -> Anchor {
    Anchor {
        address: "198.51.100.1".parse().unwrap(),
        rtp_port: 20000,
        rtcp_port: 20001,
    }
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn phone_offer_summary() {
    let sdp = parse(crlf(YEALINK_OFFER).as_bytes()).unwrap();
    let media = sdp.media();
    assert_eq!(media.len(), 1);
    let a = &media[0];
    assert!(a.is_audio() && a.is_rtp() && !a.is_declined() && !a.is_hold());
    assert_eq!(a.remote_rtp(), Some("192.168.1.50:11780".parse().unwrap()));
    assert_eq!(a.remote_rtcp(), Some("192.168.1.50:11781".parse().unwrap()));
    let pts: Vec<(u8, &str, u32)> = a
        .payloads
        .iter()
        .map(|p| (p.pt, p.encoding.as_str(), p.clock_rate))
        .collect();
    assert_eq!(
        pts,
        [
            (0, "PCMU", 8000),
            (8, "PCMA", 8000),
            (9, "G722", 8000),
            (18, "G729", 8000),
            (101, "telephone-event", 8000)
        ]
    );
    assert_eq!(a.telephone_event(), Some(101));
    assert_eq!(a.clock_rate(), 8000);
    assert_eq!(a.direction, Direction::SendRecv);
}

#[test]
fn static_payloads_without_rtpmap() {
    let sdp = parse(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 8 9 13 96\r\n").unwrap();
    let a = sdp.audio().unwrap();
    let names: Vec<&str> = a.payloads.iter().map(|p| p.encoding.as_str()).collect();
    assert_eq!(names, ["PCMU", "PCMA", "G722", "CN", ""]);
    assert_eq!(a.telephone_event(), None);
}

#[test]
fn anchor_rewrites_addresses_and_keeps_codecs() {
    let sdp = parse(crlf(ASTERISK_OFFER).as_bytes()).unwrap();
    let mut origin = Origin::with_session_id(ip("198.51.100.1"), 777);
    let out = sdp.anchor(&anchor_v4(), &mut origin);
    assert_eq!(out.anchored, Some(0));
    assert!(out.disabled.is_empty());
    assert_eq!(
        lines(&out.sdp),
        [
            "v=0",
            "o=trunkguard 777 1 IN IP4 198.51.100.1",
            "s=-",
            "c=IN IP4 198.51.100.1",
            "t=0 0",
            "m=audio 20000 RTP/AVP 8 0 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=maxptime:150",
            "a=sendrecv",
        ]
    );
    let bytes = out.sdp.to_bytes();
    assert!(bytes.ends_with(b"\r\n") && !bytes.windows(2).any(|w| w == b"\n\n"));
    // Nothing of the PBX's addressing is left.
    assert!(!String::from_utf8(bytes).unwrap().contains("10.20.0.5"));
    // The original still describes the peer.
    assert_eq!(
        sdp.audio().unwrap().remote_rtp(),
        Some("10.20.0.5:17324".parse().unwrap())
    );
}

#[test]
fn carrier_answer_rtcp_and_media_level_c() {
    let sdp = parse(crlf(CARRIER_ANSWER).as_bytes()).unwrap();
    let a = sdp.audio().unwrap();
    assert_eq!(a.remote_rtp(), Some("203.0.113.20:38612".parse().unwrap()));
    assert_eq!(a.remote_rtcp(), Some("203.0.113.21:38619".parse().unwrap()));
    let mut origin = Origin::with_session_id(ip("198.51.100.1"), 9);
    let out = lines(&sdp.anchor(&anchor_v4(), &mut origin).sdp);
    assert!(out.contains(&"a=rtcp:20001 IN IP4 198.51.100.1".to_string()));
    assert!(out.contains(&"c=IN IP4 198.51.100.1".to_string()));
    // Session c= inserted before t= since the carrier only had a media-level one.
    assert_eq!(out[3], "c=IN IP4 198.51.100.1");
    assert_eq!(out[4], "t=0 0");
    assert!(!out
        .iter()
        .any(|l| l.contains("203.0.113") || l.contains("Sonus")));
}

#[test]
fn rtcp_port_only_stays_port_only() {
    let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001\r\n";
    let sdp = parse(body.as_bytes()).unwrap();
    let mut origin = Origin::new(ip("198.51.100.1"));
    let out = lines(&sdp.anchor(&anchor_v4(), &mut origin).sdp);
    assert_eq!(out.last().unwrap(), "a=rtcp:20001");
}

#[test]
fn origin_version_bumps_only_on_change() {
    let offer = parse(crlf(YEALINK_OFFER).as_bytes()).unwrap();
    let mut origin = Origin::with_session_id(ip("198.51.100.1"), 42);
    let first = offer.anchor(&anchor_v4(), &mut origin);
    assert_eq!(origin.version(), 1);
    // A refresh with the same media keeps the version even if the peer bumped its own.
    let refresh = YEALINK_OFFER.replace("20045 20045", "20045 20046");
    let again = parse(refresh.as_bytes())
        .unwrap()
        .anchor(&anchor_v4(), &mut origin);
    assert_eq!(origin.version(), 1);
    assert_eq!(first.sdp, again.sdp);
    // Hold changes the body: version 2, same session id.
    let hold = YEALINK_OFFER.replace("a=sendrecv", "a=sendonly");
    let held = parse(hold.as_bytes())
        .unwrap()
        .anchor(&anchor_v4(), &mut origin);
    assert_eq!(lines(&held.sdp)[1], "o=trunkguard 42 2 IN IP4 198.51.100.1");
    // Resume: 3.
    offer.anchor(&anchor_v4(), &mut origin);
    assert_eq!(origin.version(), 3);
    assert_eq!(origin.session_id(), 42);
}

#[test]
fn hold_forms() {
    let sendonly = parse(YEALINK_OFFER.replace("a=sendrecv", "a=sendonly").as_bytes()).unwrap();
    let a = sendonly.audio().unwrap();
    assert!(a.is_hold());
    assert_eq!(a.direction, Direction::SendOnly);

    // Session-level inactive applies to media without its own attribute.
    let body = "v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert_eq!(
        parse(body.as_bytes()).unwrap().audio().unwrap().direction,
        Direction::Inactive
    );
    // ...and media-level overrides session-level.
    let body = "v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n";
    assert_eq!(
        parse(body.as_bytes()).unwrap().audio().unwrap().direction,
        Direction::RecvOnly
    );

    // RFC 2543 hold: c=0.0.0.0 is hold, and stays 0.0.0.0 through the rewrite.
    let old = parse(
        YEALINK_OFFER
            .replace("IN IP4 192.168.1.50", "IN IP4 0.0.0.0")
            .as_bytes(),
    )
    .unwrap();
    let a = old.audio().unwrap();
    assert!(a.is_hold());
    assert_eq!(a.direction, Direction::SendRecv);
    assert!(a.remote_rtp().unwrap().ip().is_unspecified());
    let mut origin = Origin::new(ip("198.51.100.1"));
    let out = lines(&old.anchor(&anchor_v4(), &mut origin).sdp);
    assert!(out.contains(&"c=IN IP4 0.0.0.0".to_string()));
    assert!(out[1].ends_with("IN IP4 198.51.100.1"), "o= stays ours");
    assert!(out.contains(&"m=audio 20000 RTP/AVP 0 8 9 18 101".to_string()));
}

#[test]
fn ipv6_connection_lines() {
    let sdp = parse(crlf(FREESWITCH_V6).as_bytes()).unwrap();
    let a = sdp.audio().unwrap();
    assert_eq!(a.connection, Some(ip("2001:db8::10")));
    assert_eq!(
        a.remote_rtp(),
        Some("[2001:db8::10]:24560".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(
        a.remote_rtcp(),
        Some("[2001:db8::10]:24561".parse().unwrap())
    );
    assert_eq!(a.payloads[0].encoding, "G722");

    // IPv6 peer, IPv4 leg toward the carrier: c= and o= follow our address family.
    let mut origin = Origin::with_session_id(ip("198.51.100.1"), 5);
    let out = sdp.anchor(&anchor_v4(), &mut origin);
    assert_eq!(out.anchored, Some(0));
    assert_eq!(out.disabled, [1], "video cannot be anchored: disabled");
    let text = lines(&out.sdp);
    assert!(text.contains(&"m=video 0 RTP/AVP 96".to_string()));
    assert!(text.contains(&"a=rtcp:20001 IN IP4 198.51.100.1".to_string()));
    assert!(!text
        .iter()
        .any(|l| l.contains("2001:db8") || l.contains("IP6")));

    // And an IPv6 leg.
    let v6 = Anchor {
        address: ip("2001:db8:ffff::1"),
        rtp_port: 30000,
        rtcp_port: 30001,
    };
    let mut origin = Origin::with_session_id(v6.address, 5);
    let text = lines(&sdp.anchor(&v6, &mut origin).sdp);
    assert_eq!(text[1], "o=trunkguard 5 1 IN IP6 2001:db8:ffff::1");
    assert!(text.contains(&"c=IN IP6 2001:db8:ffff::1".to_string()));
    // IP4/IP6 must match the address.
    let bad = parse(b"v=0\r\nc=IN IP4 2001:db8::1\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap();
    assert_eq!(bad.audio().unwrap().remote_rtp(), None);
}

#[test]
fn declined_streams() {
    // The PBX declines video in its answer; audio anchored, video stays 0 and is not "ours".
    let body =
        "v=0\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n";
    let sdp = parse(body.as_bytes()).unwrap();
    let media = sdp.media();
    assert!(media[1].is_declined());
    assert_eq!(media[1].remote_rtp(), None);
    let out = sdp.anchor(&anchor_v4(), &mut Origin::new(ip("198.51.100.1")));
    assert_eq!((out.anchored, out.disabled.len()), (Some(0), 0));

    // A declined first audio stream: the second one is anchored, the first stays 0.
    let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\nm=audio 5000 RTP/AVP 8\r\n";
    let sdp = parse(body.as_bytes()).unwrap();
    let out = sdp.anchor(&anchor_v4(), &mut Origin::new(ip("198.51.100.1")));
    assert_eq!(out.anchored, Some(1));
    let text = lines(&out.sdp);
    assert!(text.contains(&"m=audio 0 RTP/AVP 0".to_string()));
    assert!(text.contains(&"m=audio 20000 RTP/AVP 8".to_string()));

    // Everything declined: nothing anchored, all ports 0.
    let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n";
    let out = parse(body.as_bytes())
        .unwrap()
        .anchor(&anchor_v4(), &mut Origin::new(ip("198.51.100.1")));
    assert_eq!(out.anchored, None);
    assert!(lines(&out.sdp).contains(&"m=audio 0 RTP/AVP 0".to_string()));

    // T.38 image stream: not RTP, disabled.
    let body = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=image 6000 udptl t38\r\n";
    let out = parse(body.as_bytes())
        .unwrap()
        .anchor(&anchor_v4(), &mut Origin::new(ip("198.51.100.1")));
    assert_eq!((out.anchored, out.disabled.clone()), (None, vec![0]));
}

#[test]
fn ice_attributes_dropped() {
    let body = "v=0\r\nc=IN IP4 10.0.0.1\r\na=ice-lite\r\nm=audio 4000 RTP/AVP 0\r\n\
                a=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecret\r\n\
                a=candidate:1 1 UDP 2130706431 10.0.0.1 4000 typ host\r\n\
                a=candidate:2 1 UDP 1694498815 192.0.2.7 4000 typ srflx\r\na=rtcp-mux\r\n";
    let out = parse(body.as_bytes())
        .unwrap()
        .anchor(&anchor_v4(), &mut Origin::new(ip("198.51.100.1")));
    let text = lines(&out.sdp).join("\n");
    assert!(!text.contains("ice") && !text.contains("candidate") && !text.contains("10.0.0.1"));
    assert!(text.contains("a=rtcp-mux"));
}
