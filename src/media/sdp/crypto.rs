//! SDES (RFC 4568): the `a=crypto` lines of the anchored audio stream, what an offer asks for,
//! and the rewrite that puts the gateway's own keys (or none) in the SDP it sends.
//!
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [<param>…]`.
//! A line is usable when its suite is one the gateway serves (`srtp::Suite`), its key decodes
//! to the suite's length, it names one key with no MKI, a lifetime the gateway never has to
//! rekey for (at least 2^31 packets; it cannot rekey in a call), and no session parameter it
//! cannot honour (KDR other than 0, unencrypted or unauthenticated SRTP, FEC keys; `WSH`, a
//! window-size hint, is fine). The first usable line, in the offerer's order, is the one taken.

use base64::Engine as _;

use super::{Line, MediaInfo, SessionDescription};
use crate::media::srtp::{MasterKey, Suite};

/// Smallest key lifetime (packets) the gateway accepts: it cannot rekey inside a call, and
/// 2^31 packets is over a year of one 50-packet/s stream.
const MIN_LIFETIME_LOG2: u32 = 31;
/// Longest tag (RFC 4568 §9.1: 1*9DIGIT).
const MAX_TAG: u32 = 999_999_999;

/// One usable `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoLine {
    pub tag: u32,
    pub suite: Suite,
    pub key: MasterKey,
}

/// Why an `a=crypto` line cannot be served (its text never holds the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoLineError {
    #[error("malformed a=crypto line")]
    Malformed,
    #[error("crypto suite {0} is not supported")]
    UnknownSuite(String),
    #[error("{suite} key is not valid base64")]
    BadBase64 { suite: &'static str },
    #[error("{suite} key is {got} bytes, not {want}")]
    KeyLength {
        suite: &'static str,
        got: usize,
        want: usize,
    },
    #[error("{0} keys with MKI are not supported")]
    Mki(&'static str),
    #[error("{0} key lifetime is too short (the gateway cannot rekey)")]
    Lifetime(&'static str),
    #[error("{0}: several keys in one line are not supported")]
    SeveralKeys(&'static str),
    #[error("{suite} session parameter {param} is not supported")]
    SessionParam { suite: &'static str, param: String },
}

/// Parse the value of an `a=crypto:` attribute (after the colon).
pub fn parse_crypto(value: &str) -> Result<CryptoLine, CryptoLineError> {
    let mut fields = value.split_ascii_whitespace();
    let tag = fields
        .next()
        .filter(|t| !t.is_empty() && t.len() <= 9 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u32>().ok())
        .filter(|t| *t <= MAX_TAG)
        .ok_or(CryptoLineError::Malformed)?;
    let suite_name = fields.next().ok_or(CryptoLineError::Malformed)?;
    let suite = Suite::from_name(suite_name)
        .ok_or_else(|| CryptoLineError::UnknownSuite(printable(suite_name)))?;
    let name = suite.name();
    let key_params = fields.next().ok_or(CryptoLineError::Malformed)?;
    if key_params.contains(';') {
        return Err(CryptoLineError::SeveralKeys(name));
    }
    let info = key_params
        .get(..7)
        .filter(|m| m.eq_ignore_ascii_case("inline:"))
        .and_then(|_| key_params.get(7..))
        .ok_or(CryptoLineError::Malformed)?;
    let mut parts = info.split('|');
    let encoded = parts.next().unwrap_or_default();
    for part in parts {
        if part.contains(':') {
            return Err(CryptoLineError::Mki(name));
        }
        if !lifetime_ok(part).ok_or(CryptoLineError::Malformed)? {
            return Err(CryptoLineError::Lifetime(name));
        }
    }
    for param in fields {
        session_param_ok(param)
            .map_err(|param| CryptoLineError::SessionParam { suite: name, param })?;
    }
    let material = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| CryptoLineError::BadBase64 { suite: name })?;
    let key = MasterKey::from_bytes(suite, &material).ok_or(CryptoLineError::KeyLength {
        suite: name,
        got: material.len(),
        want: suite.key_salt_len(),
    })?;
    Ok(CryptoLine { tag, suite, key })
}

/// A suite name as it may appear in a log line or an error: bounded, printable.
fn printable(s: &str) -> String {
    s.chars()
        .take(40)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// `Some(true)`: a lifetime we never reach; `Some(false)`: one we would have to rekey for;
/// `None`: not a lifetime.
fn lifetime_ok(s: &str) -> Option<bool> {
    if let Some(exp) = s.strip_prefix("2^") {
        let exp: u32 = exp.parse().ok()?;
        return Some(exp >= MIN_LIFETIME_LOG2);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More digits than u64 holds is a lifetime long enough.
    Some(
        s.parse::<u64>()
            .map_or(true, |n| n >= 1u64 << MIN_LIFETIME_LOG2),
    )
}

fn session_param_ok(param: &str) -> Result<(), String> {
    let (name, value) = param.split_once('=').unwrap_or((param, ""));
    match name.to_ascii_uppercase().as_str() {
        "WSH" => Ok(()),
        "KDR" if value == "0" => Ok(()),
        _ => Err(printable(param)),
    }
}

/// What an offer's anchored audio stream asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferedSecurity {
    /// Plain RTP (an AVP profile; `a=crypto` lines none of which is usable count as none: a
    /// best-effort offer, RFC 4568 §7.1.1 aside).
    Plain,
    /// SDES: the first usable line. `required`: a secure (SAVP) profile, so plain RTP is no
    /// answer to it; false for best-effort SRTP offered in an AVP profile.
    Sdes { line: CryptoLine, required: bool },
}

/// Why an offer's SRTP cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    /// DTLS-SRTP (RFC 5763): `UDP/TLS/RTP/SAVP`, or an SAVP stream keyed by `a=fingerprint`.
    #[error("DTLS-SRTP (profile {0}) is not supported: SDES only")]
    Dtls(String),
    /// An SAVP stream with no usable `a=crypto` line: the first line's reason.
    #[error("no usable a=crypto line: {0}")]
    NoUsableCrypto(String),
}

fn crypto_values(lines: &[Line]) -> impl Iterator<Item = &str> {
    lines.iter().filter_map(|l| match l.attribute()? {
        (name, Some(value)) if name.eq_ignore_ascii_case("crypto") => Some(value),
        _ => None,
    })
}

fn has_attribute(lines: &[Line], wanted: &str) -> bool {
    lines.iter().any(|l| {
        l.attribute()
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case(wanted))
    })
}

impl SessionDescription {
    /// What the stream `audio` (from `audio()`) of this offer asks for.
    pub fn offered_security(&self, audio: &MediaInfo) -> Result<OfferedSecurity, SecurityError> {
        let lines = self.media.get(audio.index).map_or(&[][..], Vec::as_slice);
        let profile = audio.protocol.to_ascii_uppercase();
        let fingerprint =
            has_attribute(lines, "fingerprint") || has_attribute(&self.session, "fingerprint");
        let mut first_error = None;
        let mut usable = None;
        for value in crypto_values(lines) {
            match parse_crypto(value) {
                Ok(line) => {
                    usable = Some(line);
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let secure_profile = profile.contains("SAVP");
        if profile.contains("TLS") || (secure_profile && usable.is_none() && fingerprint) {
            return Err(SecurityError::Dtls(printable(&audio.protocol)));
        }
        match usable {
            Some(line) => Ok(OfferedSecurity::Sdes {
                line,
                required: secure_profile,
            }),
            None if secure_profile => Err(SecurityError::NoUsableCrypto(first_error.map_or_else(
                || "the SAVP stream has no a=crypto line".to_string(),
                |e| e.to_string(),
            ))),
            None => Ok(OfferedSecurity::Plain),
        }
    }

    /// The usable `a=crypto` line of an answer's stream `index`: the answerer names one
    /// line, whose tag picks one of the offered keys. `None` when it names none.
    pub fn answered_crypto(&self, index: usize) -> Option<Result<CryptoLine, CryptoLineError>> {
        let lines = self.media.get(index)?;
        crypto_values(lines).next().map(parse_crypto)
    }

    /// Our body's SRTP for stream `index`: drops every `a=crypto` line of every stream (a
    /// peer's keys never cross the gateway), then for `index` sets the m= profile and adds our
    /// own lines (`(tag, key)`; none for plain RTP).
    pub fn set_crypto(
        &mut self,
        index: Option<usize>,
        profile: Option<&str>,
        ours: &[(u32, &MasterKey)],
    ) {
        for (i, lines) in self.media.iter_mut().enumerate() {
            lines.retain(|l| {
                !l.attribute()
                    .is_some_and(|(name, _)| name.eq_ignore_ascii_case("crypto"))
            });
            if Some(i) != index {
                continue;
            }
            if let (Some(profile), Some(m_line)) = (profile, lines.first_mut()) {
                let mut fields: Vec<&str> = m_line.value.split_ascii_whitespace().collect();
                if fields.len() >= 3 {
                    fields[2] = profile;
                    m_line.value = fields.join(" ");
                }
            }
            for (tag, key) in ours {
                lines.push(Line::new(
                    b'a',
                    format!(
                        "crypto:{tag} {} inline:{}",
                        key.suite().name(),
                        key.inline()
                    ),
                ));
            }
        }
    }
}

/// The profile of a plain stream of the same family (`RTP/SAVP` → `RTP/AVP`, `RTP/SAVPF` →
/// `RTP/AVPF`).
pub fn plain_profile(profile: &str) -> String {
    let upper = profile.to_ascii_uppercase();
    if upper.ends_with("AVPF") {
        "RTP/AVPF".to_string()
    } else {
        "RTP/AVP".to_string()
    }
}

/// The secure profile of the same family (`RTP/AVP` → `RTP/SAVP`, `RTP/AVPF` → `RTP/SAVPF`).
pub fn secure_profile(profile: &str) -> String {
    let upper = profile.to_ascii_uppercase();
    if upper.ends_with("AVPF") {
        "RTP/SAVPF".to_string()
    } else {
        "RTP/SAVP".to_string()
    }
}
