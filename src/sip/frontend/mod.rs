//! The SIP front end: raw bytes from a socket to an rsip message, or to the error response the
//! transport should send back. No I/O here.
//!
//! rsip 0.4 rejects folded lines, leaves compact names untyped, misreads some valid URIs and
//! accepts some invalid headers, so every message is framed (`framing`), unfolded and checked
//! (`normalize`, `syntax`, `startline`, `uri`) before the rsip message is made from the
//! normalized fields (`message`). Broken requests are answered (`reject`), broken responses
//! dropped.
//!
//! A header section is split into lines and unfolded once ([`message::Head`]): framing reads
//! Content-Length from those fields, and the checks and the rsip message are built from the
//! same fields, which borrow the received bytes unless a value had to be rewritten.

mod error;
mod framing;
mod message;
mod normalize;
mod reject;
mod startline;
pub(crate) mod syntax;
mod uri;

#[cfg(test)]
mod tests;

pub use error::FramingError;
pub use framing::{parse_datagram, StreamFramer};
pub(crate) use normalize::expand_name;
pub(crate) use uri::parse_sip_uri;

/// Resource limits for one message; a message beyond them is refused with 513.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_message_bytes: usize,
    /// header fields (lines after unfolding)
    pub max_headers: usize,
    /// Via values, counting each comma-separated value
    pub max_via: usize,
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 16 * 1024,
            max_headers: 128,
            max_via: 16,
            max_body_bytes: 12 * 1024,
        }
    }
}

/// What the front end made of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A well-formed message, normalized: one Via/Contact/Route value per header, compact
    /// names expanded, CSeq/Max-Forwards/Content-Length canonical.
    Message(rsip::SipMessage),
    /// A broken request: send `response` if there is one.
    Reject(Rejection),
    /// Silently discarded (broken responses, broken ACKs, keep-alives), with why, for logs.
    Drop(&'static str),
}

/// Why a request was refused, and the response for the transport to send back.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
    /// Via/From/To/Call-ID/CSeq copied from the raw request, a To tag, Content-Length: 0.
    /// None when no Via could be found, so the response cannot be routed.
    pub response: Option<rsip::Response>,
    /// The broken message was an INVITE without a To tag: a call attempt, which gets a CDR.
    pub initial_invite: bool,
}

/// The lines of a header section (CRLF-separated, the final CRLF not included).
pub(crate) fn split_lines(head: &[u8]) -> Vec<&[u8]> {
    // header lines are rarely shorter than 32 bytes on average: usually one allocation
    let mut lines = Vec::with_capacity(2 + head.len() / 32);
    let mut start = 0;
    while let Some(i) = find(head, b"\r\n", start) {
        lines.push(&head[start..i]);
        start = i + 2;
    }
    lines.push(&head[start..]);
    lines
}

/// Position of `needle` (not empty) in `hay` at or after `from`.
pub(crate) fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let hay = hay.get(from..)?;
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while let Some(p) = hay.get(at..)?.iter().position(|&b| b == first) {
        at += p;
        if hay[at + 1..].starts_with(rest) {
            return Some(from + at);
        }
        at += 1;
    }
    None
}
