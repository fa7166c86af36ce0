//! A call's SIP trace: every message of both legs as it crossed the wire (when, which leg, which
//! way, the two addresses, the transport, the bytes), kept with the call. The gateway captures it
//! (`sip::trace`), the store keeps it compressed (`SipTrace::encode`: postcard in an LZ4 frame,
//! `binary.rs`; rows written before issue 16 hold gzip of the JSON, still read), the API and the
//! evidence package read it back (`store::sip_trace::read`) as JSON or as text (`to_text`).

use std::io::Read;
use std::net::SocketAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::Side;

mod binary;

/// Which way a message crossed the gateway's socket. A variant's position is its code in the
/// stored form (`binary.rs`): add new ones at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceDirection {
    /// Received by the gateway.
    In,
    /// Sent by the gateway.
    Out,
}

/// The transport a message crossed. A variant's position is its code in the stored form
/// (`binary.rs`): add new ones at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceTransport {
    Udp,
    Tcp,
    /// SIP over TLS: the messages as they were before encryption and after decryption.
    Tls,
}

/// One SIP message as it crossed the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TracedMessage {
    /// When it was read from or handed to the socket (RFC 3339, microseconds, UTC).
    #[serde(with = "micros")]
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// `inside` (PBX ↔ gateway) or `outside` (gateway ↔ carrier).
    #[schema(value_type = String, example = "inside")]
    pub leg: Side,
    pub direction: TraceDirection,
    /// The gateway's address on that leg.
    #[schema(value_type = String, example = "10.0.0.1:5060")]
    pub local: SocketAddr,
    /// The peer's address (where it came from, or where it went).
    #[schema(value_type = String, example = "10.0.0.20:5060")]
    pub peer: SocketAddr,
    pub transport: TraceTransport,
    /// The same bytes crossed this leg the same way before: a retransmission.
    #[serde(default)]
    pub retransmission: bool,
    /// The message as it crossed (bytes that are not UTF-8 shown as U+FFFD).
    pub message: String,
}

impl TracedMessage {
    /// The start line: the method and Request-URI, or the status.
    pub fn first_line(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

/// A call's trace: its messages in the order they crossed, and what the per-call cap left out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SipTrace {
    /// The call (the CDR's id).
    pub call_id: String,
    pub messages: Vec<TracedMessage>,
    /// Messages left out once the call's cap (messages or bytes) was reached.
    pub dropped_messages: u32,
    /// Their bytes.
    pub dropped_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SipTraceError {
    #[error("cannot encode the SIP trace of call {call_id}: {source}")]
    Encode {
        call_id: String,
        source: std::io::Error,
    },
    #[error("cannot decode a stored SIP trace: {0}")]
    Decode(String),
}

/// Decompressed size allowed when reading a stored trace (a corrupted or hostile row cannot
/// exhaust memory): far above the capture's own cap.
const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// The first bytes of the form stored before issue 16: gzip of the JSON.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl SipTrace {
    /// What the store keeps: an LZ4 frame holding a version byte and the trace in postcard
    /// (`binary.rs`). No longer gzip of the JSON: escaping every message's text and setting up
    /// a deflate stream per trace made it ~6 % of the gateway's CPU at 1,000 calls/s (issue 16).
    pub fn encode(&self) -> Result<Vec<u8>, SipTraceError> {
        binary::encode(self).map_err(|source| SipTraceError::Encode {
            call_id: self.call_id.clone(),
            source,
        })
    }

    /// The inverse of `encode`, and of the gzip-compressed JSON stored before it; the two are
    /// told apart by their magic bytes, anything else is refused.
    pub fn decode(bytes: &[u8]) -> Result<SipTrace, SipTraceError> {
        decode_within(bytes, MAX_DECODED_BYTES)
    }

    /// A text export, one block per message like a sngrep/Homer export: a header line
    /// (time, leg, addresses and direction, transport, retransmission), the message, a blank line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for m in &self.messages {
            let (from, to) = match m.direction {
                TraceDirection::In => (m.peer, m.local),
                TraceDirection::Out => (m.local, m.peer),
            };
            let transport = match m.transport {
                TraceTransport::Udp => "UDP",
                TraceTransport::Tcp => "TCP",
                TraceTransport::Tls => "TLS",
            };
            let retransmission = if m.retransmission {
                " (retransmission)"
            } else {
                ""
            };
            out.push_str(&format!(
                "{} {} {} -> {} {}{}\n",
                m.at.to_rfc3339_opts(SecondsFormat::Micros, true),
                m.leg,
                from,
                to,
                transport,
                retransmission
            ));
            out.push_str(m.message.trim_end_matches(['\r', '\n']));
            out.push_str("\n\n");
        }
        if self.dropped_messages > 0 {
            out.push_str(&format!(
                "{} more messages ({} bytes) not kept: over the per-call cap\n",
                self.dropped_messages, self.dropped_bytes
            ));
        }
        out
    }
}

/// `decode` with at most `limit` bytes decompressed.
fn decode_within(bytes: &[u8], limit: u64) -> Result<SipTrace, SipTraceError> {
    if bytes.starts_with(&binary::MAGIC) {
        binary::decode(bytes, limit)
    } else if bytes.starts_with(&GZIP_MAGIC) {
        let json = read_at_most(flate2::read::GzDecoder::new(bytes), limit)?;
        serde_json::from_slice(&json).map_err(|e| SipTraceError::Decode(e.to_string()))
    } else {
        Err(SipTraceError::Decode(format!(
            "neither an LZ4 frame nor gzip (first bytes {:02x?})",
            &bytes[..bytes.len().min(4)]
        )))
    }
}

/// All that `reader` decompresses, refused past `limit` bytes: read through `take`, so a row
/// that claims or holds more never gets the memory.
fn read_at_most(reader: impl Read, limit: u64) -> Result<Vec<u8>, SipTraceError> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| SipTraceError::Decode(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(SipTraceError::Decode(format!(
            "decompresses to more than {limit} bytes"
        )));
    }
    Ok(out)
}

/// Times as RFC 3339 with microseconds.
mod micros {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
