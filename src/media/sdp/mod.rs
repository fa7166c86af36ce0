//! SDP (RFC 8866, ex-4566): a lenient but bounded parser, a per-media summary of what the peer
//! offered or answered, and (in `anchor`) the rewrite that puts our address and ports in it.
//!
//! The body is kept as its list of `x=value` lines so that everything we do not rewrite (codecs,
//! rtpmap, fmtp, ptime, telephone-event, crypto…) goes out exactly as it came in.
//!
//! Lenient: LF or CRLF line ends, blank lines, trailing blanks, unknown line types and attributes,
//! missing o=/s=/t=, unparseable c= (the media is then just unreachable). Strict where a mistake
//! would be unsafe or would make the rewrite wrong: size and media-count limits, UTF-8, a `v=`
//! first line, `x=` shape of every line, no stray CR or NUL, a well-formed m= line.

mod anchor;
pub mod crypto;
#[cfg(test)]
mod crypto_tests;
mod exchange;
#[cfg(test)]
mod robust_tests;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

pub use anchor::{Anchor, Anchored, Origin};
pub use crypto::{CryptoLine, CryptoLineError, OfferedSecurity, SecurityError};
pub use exchange::{check_body, declined_stream, Exchange, UnusableSdp};

use crate::config::MediaEncryption;

/// Bodies larger than this are refused: real offers are well under 2 KiB. The SIP front end's
/// body limit (`sip::frontend::Limits::max_body_bytes`) is the same 12 KiB, so a body the front
/// end takes is never too large here (tests/frontend_bounds.rs checks that they agree).
pub const MAX_SDP_BYTES: usize = 12 * 1024;
/// More media lines than this are refused (a real call has one or two).
pub const MAX_MEDIA: usize = 64;
/// RTP clock rate assumed when the SDP does not say (G.711, and G.722's RTP clock).
pub const DEFAULT_CLOCK_RATE: u32 = 8000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body of {0} bytes is over the {MAX_SDP_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("SDP body has more than {MAX_MEDIA} media lines")]
    TooManyMedia,
    #[error("SDP body is not UTF-8")]
    NotUtf8,
    #[error("SDP body does not start with a v= line")]
    MissingVersion,
    #[error("SDP line {line}: {reason}")]
    Malformed { line: usize, reason: &'static str },
}

/// Why an offer cannot be carried: the gateway refuses the call rather than send it on without
/// its body (or with a body it does not understand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error(transparent)]
    Unparseable(#[from] SdpError),
    /// SRTP the gateway cannot terminate (DTLS-SRTP, no usable `a=crypto`): relayed, its
    /// packets would be recorded as if they were clear audio.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// SRTP offered on a leg whose encryption is `none`.
    #[error("the offer asks for SRTP (profile {0}) and the leg's media_encryption is \"none\"")]
    SrtpNotAllowed(String),
    /// Plain RTP offered on a leg whose encryption is `required`.
    #[error("the offer is plain RTP and the leg's media_encryption is \"required\"")]
    SrtpRequired,
}

/// Whether a body of this Content-Type is SDP (no Content-Type: taken as SDP, as peers that
/// omit it mean).
pub fn is_sdp(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
    })
}

/// Check an offer the gateway is to anchor (an INVITE's body, a re-offer) from a leg whose
/// `media_encryption` is `encryption`: parsed, and its audio stream one the relay can carry
/// (plain RTP, or SRTP keyed by SDES in a suite the gateway serves) as that leg allows. Streams
/// the gateway disables (video, T.38, extra audio) are not looked at: they get port 0 whatever
/// they ask for.
pub fn check_offer(
    body: &[u8],
    encryption: MediaEncryption,
) -> Result<SessionDescription, OfferError> {
    let parsed = parse(body)?;
    if let Some(audio) = parsed.audio() {
        match (parsed.offered_security(&audio)?, encryption) {
            (OfferedSecurity::Sdes { required: true, .. }, MediaEncryption::None) => {
                return Err(OfferError::SrtpNotAllowed(
                    audio.protocol.chars().take(40).collect(),
                ));
            }
            (OfferedSecurity::Plain, MediaEncryption::Required) => {
                return Err(OfferError::SrtpRequired);
            }
            _ => {}
        }
    }
    Ok(parsed)
}

/// Media direction (RFC 8866 §6.7), as the peer that wrote the SDP means it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_attribute(attr: &str) -> Option<Direction> {
        match attr.to_ascii_lowercase().as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Anything but sendrecv is some form of hold (one side or both silent on purpose).
    pub fn is_hold(self) -> bool {
        self != Direction::SendRecv
    }
}

/// One `x=value` line. `kind` is the ASCII letter before `=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Line {
    pub kind: u8,
    pub value: String,
}

impl Line {
    fn new(kind: u8, value: impl Into<String>) -> Line {
        Line {
            kind,
            value: value.into(),
        }
    }

    /// For `a=name:value` or `a=name`: the name (case kept) and the value after the colon.
    fn attribute(&self) -> Option<(&str, Option<&str>)> {
        if self.kind != b'a' {
            return None;
        }
        Some(match self.value.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (self.value.as_str(), None),
        })
    }
}

/// A parsed body: the session-level lines, then one list of lines per media (its m= first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub(crate) session: Vec<Line>,
    pub(crate) media: Vec<Vec<Line>>,
}

/// One payload type of an m= line, with its rtpmap (or the static RFC 3551 assignment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadInfo {
    pub pt: u8,
    /// As written in rtpmap (`PCMU`, `telephone-event`…); empty for an unmapped dynamic type.
    pub encoding: String,
    pub clock_rate: u32,
}

impl PayloadInfo {
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }
}

/// What one media section says about the peer that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// Position among the m= lines (answers match offers by position).
    pub index: usize,
    /// `audio`, `video`, `image`…
    pub media: String,
    /// 0 = declined / disabled stream.
    pub port: u16,
    pub protocol: String,
    /// Media-level c= or else session-level c=; `None` when absent or unparseable.
    pub connection: Option<IpAddr>,
    /// From `a=rtcp:` (RFC 3605), with the connection address when it names none.
    pub rtcp: Option<SocketAddr>,
    pub payloads: Vec<PayloadInfo>,
    /// Media-level direction attribute, else session-level, else sendrecv.
    pub direction: Direction,
}

impl MediaInfo {
    pub fn is_audio(&self) -> bool {
        self.media.eq_ignore_ascii_case("audio")
    }

    /// An RTP profile (RTP/AVP, RTP/SAVP, RTP/AVPF…): something the relay can carry.
    pub fn is_rtp(&self) -> bool {
        self.protocol.to_ascii_uppercase().contains("RTP/")
    }

    /// A secure RTP profile (RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVP…).
    pub fn is_encrypted(&self) -> bool {
        self.protocol.to_ascii_uppercase().contains("SAVP")
    }

    pub fn is_declined(&self) -> bool {
        self.port == 0
    }

    /// Hold: a non-sendrecv direction, or the old RFC 2543 way, c=0.0.0.0 (or `::`).
    pub fn is_hold(&self) -> bool {
        self.direction.is_hold() || self.connection.is_some_and(|ip| ip.is_unspecified())
    }

    /// Where the peer wants RTP; `None` when declined or without an address.
    pub fn remote_rtp(&self) -> Option<SocketAddr> {
        match (self.connection, self.port) {
            (_, 0) | (None, _) => None,
            (Some(ip), port) => Some(SocketAddr::new(ip, port)),
        }
    }

    /// Where the peer wants RTCP: `a=rtcp`, else the RTP port + 1 (RFC 3550 §11).
    pub fn remote_rtcp(&self) -> Option<SocketAddr> {
        if self.rtcp.is_some() {
            return self.rtcp;
        }
        let rtp = self.remote_rtp()?;
        let port = rtp.port().checked_add(1)?;
        Some(SocketAddr::new(rtp.ip(), port))
    }

    /// The dynamic payload type of RFC 4733 telephone-event, if offered.
    pub fn telephone_event(&self) -> Option<u8> {
        self.payloads
            .iter()
            .find(|p| p.is_telephone_event())
            .map(|p| p.pt)
    }

    /// RTP clock of the first voice codec listed (the preferred one).
    pub fn clock_rate(&self) -> u32 {
        self.payloads
            .iter()
            .find(|p| !p.is_telephone_event() && p.clock_rate > 0)
            .map_or(DEFAULT_CLOCK_RATE, |p| p.clock_rate)
    }
}

/// Static payload types of RFC 3551 that a trunk may see without an rtpmap.
fn static_payload(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000), // RTP clock 8000 although sampled at 16 kHz (RFC 3551 §4.5.2)
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

/// Parse a body. Never panics, whatever the bytes.
pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
    let mut session = Vec::new();
    let mut media: Vec<Vec<Line>> = Vec::new();
    for (n, raw) in text.split('\n').enumerate() {
        let line_no = n + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let raw = raw.trim_end_matches([' ', '\t']);
        if raw.is_empty() {
            continue;
        }
        if raw.contains(['\r', '\0']) {
            return Err(malformed(line_no, "stray CR or NUL"));
        }
        let bytes = raw.as_bytes();
        if bytes.len() < 2 || !bytes[0].is_ascii_alphabetic() || bytes[1] != b'=' {
            return Err(malformed(line_no, "not a `x=value` line"));
        }
        let line = Line::new(bytes[0].to_ascii_lowercase(), &raw[2..]);
        if session.is_empty() && media.is_empty() && line.kind != b'v' {
            return Err(SdpError::MissingVersion);
        }
        if line.kind == b'm' {
            if media.len() == MAX_MEDIA {
                return Err(SdpError::TooManyMedia);
            }
            if MLine::parse(&line.value).is_none() {
                return Err(malformed(line_no, "m= line is not `media port proto fmt…`"));
            }
            media.push(vec![line]);
        } else if let Some(current) = media.last_mut() {
            current.push(line);
        } else {
            session.push(line);
        }
    }
    if session.is_empty() {
        return Err(SdpError::MissingVersion);
    }
    Ok(SessionDescription { session, media })
}

fn malformed(line: usize, reason: &'static str) -> SdpError {
    SdpError::Malformed { line, reason }
}

/// The fields of an m= line.
pub(crate) struct MLine<'a> {
    pub media: &'a str,
    pub port: u16,
    pub protocol: &'a str,
    pub formats: Vec<&'a str>,
}

impl<'a> MLine<'a> {
    pub(crate) fn parse(value: &'a str) -> Option<MLine<'a>> {
        let mut it = value.split_ascii_whitespace();
        let media = it.next()?;
        // `port/count` (RFC 8866 §5.14): we anchor one port, so the count is dropped on rewrite.
        let port = it.next()?.split('/').next()?.parse().ok()?;
        let protocol = it.next()?;
        Some(MLine {
            media,
            port,
            protocol,
            formats: it.collect(),
        })
    }
}

/// `IN IP4 addr[/ttl[/n]]` → the address.
pub(crate) fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut it = value.split_ascii_whitespace();
    if !it.next()?.eq_ignore_ascii_case("IN") {
        return None;
    }
    let family = it.next()?;
    let addr = it.next()?.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    match (family.to_ascii_uppercase().as_str(), ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

/// `a=rtcp:port [IN IP4 addr]` → (port, address if named).
pub(crate) fn parse_rtcp(value: &str) -> Option<(u16, Option<IpAddr>)> {
    let (port, rest) = match value.trim().split_once(' ') {
        Some((port, rest)) => (port, Some(rest)),
        None => (value.trim(), None),
    };
    Some((port.parse().ok()?, rest.and_then(parse_connection)))
}

impl SessionDescription {
    /// Number of media sections.
    pub fn media_count(&self) -> usize {
        self.media.len()
    }

    /// Summary of every media section, in order.
    pub fn media(&self) -> Vec<MediaInfo> {
        let session_conn = find(&self.session, b'c').and_then(|l| parse_connection(&l.value));
        let session_dir = direction_of(&self.session).unwrap_or_default();
        self.media
            .iter()
            .enumerate()
            .filter_map(|(index, lines)| {
                let m = MLine::parse(&lines.first()?.value)?;
                let connection = match find(lines, b'c') {
                    Some(c) => parse_connection(&c.value),
                    None => session_conn,
                };
                Some(MediaInfo {
                    index,
                    media: m.media.to_string(),
                    port: m.port,
                    protocol: m.protocol.to_string(),
                    connection,
                    rtcp: rtcp_of(lines, connection),
                    payloads: payloads_of(&m, lines),
                    direction: direction_of(lines).unwrap_or(session_dir),
                })
            })
            .collect()
    }

    /// The stream the relay anchors: the first audio RTP stream not declined.
    pub fn audio(&self) -> Option<MediaInfo> {
        self.media()
            .into_iter()
            .find(|m| m.is_audio() && m.is_rtp() && !m.is_declined())
    }

    /// Render with CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        for line in self.session.iter().chain(self.media.iter().flatten()) {
            out.push(line.kind);
            out.push(b'=');
            out.extend_from_slice(line.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

fn find(lines: &[Line], kind: u8) -> Option<&Line> {
    lines.iter().find(|l| l.kind == kind)
}

/// The last direction attribute wins, as most stacks do when a body repeats one.
fn direction_of(lines: &[Line]) -> Option<Direction> {
    lines.iter().rev().find_map(|l| match l.attribute()? {
        (name, None) => Direction::from_attribute(name),
        _ => None,
    })
}

fn rtcp_of(lines: &[Line], connection: Option<IpAddr>) -> Option<SocketAddr> {
    let value = lines.iter().find_map(|l| match l.attribute() {
        Some((name, Some(value))) if name.eq_ignore_ascii_case("rtcp") => Some(value),
        _ => None,
    })?;
    let (port, addr) = parse_rtcp(value)?;
    Some(SocketAddr::new(addr.or(connection)?, port))
}

fn payloads_of(m: &MLine<'_>, lines: &[Line]) -> Vec<PayloadInfo> {
    m.formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok().filter(|pt| *pt < 128))
        .map(|pt| {
            let (encoding, clock_rate) = rtpmap(lines, pt)
                .or_else(|| static_payload(pt).map(|(e, c)| (e.to_string(), c)))
                .unwrap_or_default();
            PayloadInfo {
                pt,
                encoding,
                clock_rate,
            }
        })
        .collect()
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
fn rtpmap(lines: &[Line], pt: u8) -> Option<(String, u32)> {
    lines.iter().find_map(|l| {
        let (name, value) = l.attribute()?;
        if !name.eq_ignore_ascii_case("rtpmap") {
            return None;
        }
        let (num, map) = value?.trim().split_once(' ')?;
        if num.parse::<u8>().ok()? != pt {
            return None;
        }
        let mut parts = map.trim().split('/');
        let encoding = parts.next()?.to_string();
        let clock = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        Some((encoding, clock))
    })
}
