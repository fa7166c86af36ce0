//! The stored form written since issue 16: an LZ4 frame (the `lz4` CLI reads it) holding a
//! version byte and the trace in postcard (serde's compact binary format, a documented wire
//! format). A short call's trace takes about a quarter of the time gzip of the JSON took (a
//! seventh of the instructions) and is a little smaller; docs/architecture.md, "SIP trace", has
//! the figures.
//!
//! The layout is its own private mirror of the trace, not the public types' serde: those are
//! shaped for the JSON (`at` as an RFC 3339 string, addresses as text), and a change there must
//! not change what rows stored already mean. Only the three code enums (`Side`,
//! `TraceDirection`, `TraceTransport`) are taken as they are: postcard stores a variant by its
//! position, so a variant is only ever added at the end (the golden test in `tests.rs` fails
//! otherwise).

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{SipTrace, SipTraceError, TraceDirection, TraceTransport, TracedMessage};
use crate::model::Side;

/// The first bytes of an LZ4 frame (its magic number, little-endian 0x184D2204).
pub(super) const MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// The first byte inside the frame: the layout of what follows. A new layout takes the next
/// number and `decode` keeps reading the old ones.
const VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct StoredTrace<'a> {
    call_id: &'a str,
    #[serde(borrow)]
    messages: Vec<StoredMessage<'a>>,
    dropped_messages: u32,
    dropped_bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredMessage<'a> {
    /// Microseconds since the Unix epoch: the precision the JSON has, as a number (formatting
    /// RFC 3339 text for each message cost more than the rest of the encoding).
    at_micros: i64,
    leg: Side,
    direction: TraceDirection,
    local: StoredAddr,
    peer: StoredAddr,
    transport: TraceTransport,
    retransmission: bool,
    message: &'a str,
}

/// An address, all of it: serde's own binary form of `SocketAddrV6` drops the scope id, which a
/// link-local peer needs (and the JSON text keeps).
#[derive(Serialize, Deserialize)]
enum StoredAddr {
    V4([u8; 4], u16),
    V6 {
        ip: [u8; 16],
        port: u16,
        flowinfo: u32,
        scope_id: u32,
    },
}

impl From<SocketAddr> for StoredAddr {
    fn from(addr: SocketAddr) -> StoredAddr {
        match addr {
            SocketAddr::V4(a) => StoredAddr::V4(a.ip().octets(), a.port()),
            SocketAddr::V6(a) => StoredAddr::V6 {
                ip: a.ip().octets(),
                port: a.port(),
                flowinfo: a.flowinfo(),
                scope_id: a.scope_id(),
            },
        }
    }
}

impl From<StoredAddr> for SocketAddr {
    fn from(addr: StoredAddr) -> SocketAddr {
        match addr {
            StoredAddr::V4(ip, port) => SocketAddrV4::new(Ipv4Addr::from(ip), port).into(),
            StoredAddr::V6 {
                ip,
                port,
                flowinfo,
                scope_id,
            } => SocketAddrV6::new(Ipv6Addr::from(ip), port, flowinfo, scope_id).into(),
        }
    }
}

impl<'a> StoredMessage<'a> {
    fn of(m: &'a TracedMessage) -> StoredMessage<'a> {
        StoredMessage {
            at_micros: m.at.timestamp_micros(),
            leg: m.leg,
            direction: m.direction,
            local: m.local.into(),
            peer: m.peer.into(),
            transport: m.transport,
            retransmission: m.retransmission,
            message: &m.message,
        }
    }

    fn into_message(self) -> Result<TracedMessage, SipTraceError> {
        let at = DateTime::<Utc>::from_timestamp_micros(self.at_micros).ok_or_else(|| {
            SipTraceError::Decode(format!("time out of range: {} µs", self.at_micros))
        })?;
        Ok(TracedMessage {
            at,
            leg: self.leg,
            direction: self.direction,
            local: self.local.into(),
            peer: self.peer.into(),
            transport: self.transport,
            retransmission: self.retransmission,
            message: self.message.to_string(),
        })
    }
}

/// `trace` as an LZ4 frame of `[VERSION] ++ postcard(StoredTrace)`.
pub(super) fn encode(trace: &SipTrace) -> Result<Vec<u8>, std::io::Error> {
    let stored = StoredTrace {
        call_id: &trace.call_id,
        messages: trace.messages.iter().map(StoredMessage::of).collect(),
        dropped_messages: trace.dropped_messages,
        dropped_bytes: trace.dropped_bytes,
    };
    // postcard writes a u8 as that one byte: the version byte, then the trace.
    let raw = postcard::to_allocvec(&(VERSION, &stored)).map_err(std::io::Error::other)?;
    compress(&raw)
}

/// The frame's blocks: lz4_flex's choice for a frame of at most this much, one block.
const BLOCK: usize = 64 * 1024;

thread_local! {
    /// This thread's frame encoder, kept between traces: a new one allocates and zeroes its
    /// 64 KiB input and output buffers and its 16 KiB match table, which cost a trace as much
    /// as compressing it (bench/README.md, session 13). Each frame starts afresh (the encoder
    /// resets its table and checksum for a frame after the first), so a frame's bytes are
    /// those a new encoder writes.
    static ENCODER: std::cell::RefCell<Option<FrameEncoder<Vec<u8>>>> =
        const { std::cell::RefCell::new(None) };
}

type FrameEncoder<W> = lz4_flex::frame::FrameEncoder<W>;

fn frame_info() -> lz4_flex::frame::FrameInfo {
    // The content checksum (xxHash32 of what is inside, checked by `decode`) stands where gzip's
    // CRC-32 stood: a row damaged in the database is refused, not shown as another trace.
    lz4_flex::frame::FrameInfo::new().content_checksum(true)
}

/// `raw` in one LZ4 frame.
fn compress(raw: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    if raw.len() > BLOCK {
        // Larger blocks for these (lz4_flex picks them by the first write): a new encoder.
        let mut frame =
            FrameEncoder::with_frame_info(frame_info(), Vec::with_capacity(raw.len() / 4));
        frame.write_all(raw)?;
        return Ok(frame.finish()?);
    }
    ENCODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let frame = slot.get_or_insert_with(|| {
            let info = frame_info().block_size(lz4_flex::frame::BlockSize::Max64KB);
            FrameEncoder::with_frame_info(info, Vec::new())
        });
        *frame.get_mut() = Vec::with_capacity(raw.len() / 4);
        let written = frame.write_all(raw).and_then(|()| Ok(frame.try_finish()?));
        match written {
            Ok(()) => Ok(std::mem::take(frame.get_mut())),
            Err(e) => {
                // Whatever state it is in, the next trace gets a new one.
                *slot = None;
                Err(e)
            }
        }
    })
}

/// The inverse of `encode`: `bytes` start with `MAGIC`; at most `limit` bytes are decompressed.
pub(super) fn decode(bytes: &[u8], limit: u64) -> Result<SipTrace, SipTraceError> {
    let raw = super::read_at_most(lz4_flex::frame::FrameDecoder::new(bytes), limit)?;
    // lz4_flex takes the input's end where a block could start as the frame's end, so a frame
    // cut short of its end mark and content checksum would read unchecked. `encode` writes one
    // frame, ending with both.
    let footer = [[0; 4], twox_hash::XxHash32::oneshot(0, &raw).to_le_bytes()].concat();
    if !bytes.ends_with(&footer) {
        return Err(SipTraceError::Decode(
            "the LZ4 frame does not end with its end mark and the checksum of its content".into(),
        ));
    }
    let (version, rest) = postcard::take_from_bytes::<u8>(&raw).map_err(decode_error)?;
    if version != VERSION {
        return Err(SipTraceError::Decode(format!(
            "unknown layout version {version} in the LZ4 frame"
        )));
    }
    let (stored, rest) = postcard::take_from_bytes::<StoredTrace>(rest).map_err(decode_error)?;
    if !rest.is_empty() {
        return Err(SipTraceError::Decode(format!(
            "{} bytes after the trace",
            rest.len()
        )));
    }
    Ok(SipTrace {
        call_id: stored.call_id.to_string(),
        messages: stored
            .messages
            .into_iter()
            .map(StoredMessage::into_message)
            .collect::<Result<_, _>>()?,
        dropped_messages: stored.dropped_messages,
        dropped_bytes: stored.dropped_bytes,
    })
}

fn decode_error(e: postcard::Error) -> SipTraceError {
    SipTraceError::Decode(format!("postcard: {e}"))
}
