//! The anchoring rewrite: a peer's SDP made fit for the other leg, with our address and ports.
//!
//! - Session and media c= → our address, except an unspecified one (RFC 2543 hold) which stays
//!   unspecified so that the hold reaches the other side as it was meant.
//! - The first audio RTP stream that is not declined → our RTP port; its `a=rtcp` → our RTCP
//!   port. Every other stream → port 0: one port pair per leg carries one stream, and an
//!   un-anchored stream would let the peers reach each other directly (no topology hiding, no
//!   recording). A port of 0 stays 0.
//! - Our own o= line per leg (username `trunkguard`, our address, one session id for the leg,
//!   version +1 whenever the body we send changes — RFC 3264 §8) and `s=-`: nothing of the
//!   peer's origin (user name, host, vendor string) crosses.
//! - ICE attributes are dropped: candidates name the peer's addresses and we do not do ICE.
//! - Everything else (codecs, rtpmap, fmtp, ptime, telephone-event, direction, crypto) is kept:
//!   the gateway does not transcode.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{parse_connection, parse_rtcp, Line, MLine, SessionDescription};

/// User name in our o= lines.
pub const ORIGIN_USERNAME: &str = "trunkguard";

const ICE_ATTRIBUTES: &[&str] = &[
    "candidate",
    "remote-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
    "end-of-candidates",
];

/// Our side of one leg's media: the address and ports we put in the SDP sent on that leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub address: IpAddr,
    pub rtp_port: u16,
    pub rtcp_port: u16,
}

/// Our o= line toward one peer. Keep one per leg for the whole call.
#[derive(Debug, Clone)]
pub struct Origin {
    session_id: u64,
    version: u64,
    address: IpAddr,
    last_body: Option<u64>,
}

impl Origin {
    /// A fresh origin with a random session id.
    pub fn new(address: IpAddr) -> Origin {
        // 52 bits: fits the signed 64-bit integers some stacks parse o= numbers into.
        Origin::with_session_id(address, (rand::random::<u64>() >> 12).max(1))
    }

    pub fn with_session_id(address: IpAddr, session_id: u64) -> Origin {
        Origin {
            session_id,
            version: 1,
            address,
            last_body: None,
        }
    }

    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Version of the last SDP stamped.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Bump the version when the body differs from the previous one sent on this leg, so that a
    /// retransmitted or refreshed SDP keeps its version (RFC 3264 §8).
    fn stamp(&mut self, body_hash: u64) -> String {
        match self.last_body {
            Some(last) if last != body_hash => self.version = self.version.saturating_add(1),
            _ => {}
        }
        self.last_body = Some(body_hash);
        format!(
            "{ORIGIN_USERNAME} {} {} {}",
            self.session_id,
            self.version,
            connection_value(self.address)
        )
    }
}

/// A rewritten body and what the rewrite did.
#[derive(Debug, Clone)]
pub struct Anchored {
    pub sdp: SessionDescription,
    /// The media index carried by the relay, if any stream could be anchored.
    pub anchored: Option<usize>,
    /// Streams we set to port 0 although the peer had not (non-audio, extra audio).
    pub disabled: Vec<usize>,
}

fn connection_value(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => format!("IN IP4 {ip}"),
        IpAddr::V6(ip) => format!("IN IP6 {ip}"),
    }
}

fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn is_ice(line: &Line) -> bool {
    line.attribute()
        .is_some_and(|(name, _)| ICE_ATTRIBUTES.iter().any(|a| name.eq_ignore_ascii_case(a)))
}

fn is_rtcp(line: &Line) -> bool {
    line.attribute()
        .is_some_and(|(name, _)| name.eq_ignore_ascii_case("rtcp"))
}

impl SessionDescription {
    /// Rewrite for sending on the leg whose local side is `anchor`, stamped with that leg's
    /// `origin`. `self` is left as parsed (its `media()` still describes the peer).
    pub fn anchor(&self, anchor: &Anchor, origin: &mut Origin) -> Anchored {
        let anchored = self.audio().map(|m| m.index);
        let ours = Line::new(b'c', connection_value(anchor.address));
        let held = Line::new(b'c', connection_value(unspecified_like(anchor.address)));
        let c_line = |line: &Line| match parse_connection(&line.value) {
            Some(ip) if ip.is_unspecified() => held.clone(),
            _ => ours.clone(),
        };

        // v, o, s first (RFC 8866 §5 order), then the peer's other session lines.
        let mut session = vec![
            Line::new(b'v', "0"),
            Line::new(b'o', String::new()),
            Line::new(b's', "-"),
        ];
        let mut has_c = false;
        for line in &self.session {
            match line.kind {
                b'v' | b'o' | b's' => {}
                b'c' => {
                    has_c = true;
                    session.push(c_line(line));
                }
                _ if is_ice(line) => {}
                _ => session.push(line.clone()),
            }
        }
        if !has_c {
            // c= goes before b=, t=, r=, z=, k=, a= (RFC 8866 §5).
            let at = session
                .iter()
                .skip(3)
                .position(|l| b"btrzka".contains(&l.kind))
                .map_or(session.len(), |p| p + 3);
            session.insert(at, ours.clone());
        }

        let mut disabled = Vec::new();
        let mut media = Vec::with_capacity(self.media.len());
        for (index, lines) in self.media.iter().enumerate() {
            let Some((m_line, rest)) = lines.split_first() else {
                continue;
            };
            let Some(m) = MLine::parse(&m_line.value) else {
                // parse() accepted no such m= line; keep it rather than guess.
                media.push(lines.clone());
                continue;
            };
            let is_anchored = anchored == Some(index);
            let port = if is_anchored { anchor.rtp_port } else { 0 };
            if !is_anchored && m.port != 0 {
                disabled.push(index);
            }
            let mut value = format!("{} {} {}", m.media, port, m.protocol);
            for f in &m.formats {
                value.push(' ');
                value.push_str(f);
            }
            let mut out = vec![Line::new(b'm', value)];
            for line in rest {
                if line.kind == b'c' {
                    out.push(c_line(line));
                } else if is_rtcp(line) {
                    if is_anchored {
                        out.push(rtcp_line(line, anchor));
                    }
                } else if !is_ice(line) {
                    out.push(line.clone());
                }
            }
            media.push(out);
        }

        let mut hasher = DefaultHasher::new();
        for line in session.iter().skip(2).chain(media.iter().flatten()) {
            line.hash(&mut hasher);
        }
        session[1].value = origin.stamp(hasher.finish());
        Anchored {
            sdp: SessionDescription { session, media },
            anchored,
            disabled,
        }
    }
}

/// Our RTCP port; our address too when the peer's line named one.
fn rtcp_line(line: &Line, anchor: &Anchor) -> Line {
    let names_address = line
        .value
        .split_once(':')
        .and_then(|(_, v)| parse_rtcp(v))
        .is_some_and(|(_, addr)| addr.is_some());
    let value = if names_address {
        format!(
            "rtcp:{} {}",
            anchor.rtcp_port,
            connection_value(anchor.address)
        )
    } else {
        format!("rtcp:{}", anchor.rtcp_port)
    };
    Line::new(b'a', value)
}
