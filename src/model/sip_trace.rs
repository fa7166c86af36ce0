//! A call's SIP trace: every message of both legs as it crossed the wire (when, which leg, which
//! way, the two addresses, the transport, the bytes), kept with the call. The gateway captures it
//! (`sip::trace`), the store keeps it gzip-compressed (`SipTrace::encode`), the API and the
//! evidence package read it back (`store::sip_trace::read`) as JSON or as text (`to_text`).

use std::io::{Read, Write};
use std::net::SocketAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::Side;

/// Which way a message crossed the gateway's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceDirection {
    /// Received by the gateway.
    In,
    /// Sent by the gateway.
    Out,
}

/// The transport a message crossed.
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

impl SipTrace {
    /// gzip-compressed JSON: what the store keeps.
    pub fn encode(&self) -> Result<Vec<u8>, SipTraceError> {
        let fail = |source| SipTraceError::Encode {
            call_id: self.call_id.clone(),
            source,
        };
        let json = serde_json::to_vec(self).map_err(|e| fail(std::io::Error::other(e)))?;
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(json.len() / 4),
            flate2::Compression::fast(),
        );
        gz.write_all(&json).map_err(fail)?;
        gz.finish().map_err(fail)
    }

    /// The inverse of `encode`.
    pub fn decode(bytes: &[u8]) -> Result<SipTrace, SipTraceError> {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_DECODED_BYTES)
            .read_to_end(&mut json)
            .map_err(|e| SipTraceError::Decode(e.to_string()))?;
        serde_json::from_slice(&json).map_err(|e| SipTraceError::Decode(e.to_string()))
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
mod tests {
    use super::*;

    fn message(direction: TraceDirection, text: &str) -> TracedMessage {
        TracedMessage {
            at: DateTime::parse_from_rfc3339("2026-12-06T10:00:00.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            leg: Side::Inside,
            direction,
            local: "127.0.0.1:5060".parse().unwrap(),
            peer: "127.0.0.2:5062".parse().unwrap(),
            transport: TraceTransport::Udp,
            retransmission: direction == TraceDirection::Out,
            message: text.to_string(),
        }
    }

    fn trace() -> SipTrace {
        SipTrace {
            call_id: "20261206T100000-abc".into(),
            messages: vec![
                message(
                    TraceDirection::In,
                    "INVITE sip:1@x SIP/2.0\r\nCall-ID: a\r\n\r\n",
                ),
                message(
                    TraceDirection::Out,
                    "SIP/2.0 100 Trying\r\nCall-ID: a\r\n\r\n",
                ),
            ],
            dropped_messages: 3,
            dropped_bytes: 1200,
        }
    }

    #[test]
    fn encode_and_decode_give_the_same_trace_back_compressed() {
        let mut t = trace();
        // A repetitive trace compresses well, as real SIP does.
        for _ in 0..50 {
            t.messages.push(t.messages[0].clone());
        }
        let json = serde_json::to_vec(&t).unwrap();
        let bytes = t.encode().unwrap();
        assert!(
            bytes.len() * 5 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
        assert_eq!(SipTrace::decode(&bytes).unwrap(), t);
    }

    #[test]
    fn decode_refuses_what_is_not_a_trace() {
        assert!(SipTrace::decode(b"not gzip").is_err());
    }

    #[test]
    fn json_times_have_microseconds_and_codes_are_lowercase() {
        let v = serde_json::to_value(trace().messages[0].clone()).unwrap();
        assert_eq!(v["at"], "2026-12-06T10:00:00.123456Z");
        assert_eq!(v["leg"], "inside");
        assert_eq!(v["direction"], "in");
        assert_eq!(v["transport"], "udp");
        assert_eq!(v["peer"], "127.0.0.2:5062");
    }

    #[test]
    fn the_text_form_names_each_message_and_the_dropped_ones() {
        let text = trace().to_text();
        assert!(text.starts_with(
            "2026-12-06T10:00:00.123456Z inside 127.0.0.2:5062 -> 127.0.0.1:5060 UDP\nINVITE sip:1@x SIP/2.0\r\nCall-ID: a\n\n"
        ), "{text}");
        assert!(text
            .contains("127.0.0.1:5060 -> 127.0.0.2:5062 UDP (retransmission)\nSIP/2.0 100 Trying"));
        assert!(text.ends_with("3 more messages (1200 bytes) not kept: over the per-call cap\n"));
    }
}
