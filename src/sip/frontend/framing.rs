//! Framing: where a message ends. A UDP datagram carries one message whose body runs to the end
//! of the datagram or to Content-Length; a stream needs Content-Length (RFC 3261 §18.3). All of
//! it on bytes, so binary bodies survive.

use super::error::{Fault, FramingError};
use super::message::{parse_frame, Head};
use super::normalize::{unfold, Field};
use super::reject::{refuse, rejection_for};
use super::syntax::parse_decimal;
use super::{find, split_lines, Limits, Parsed};
use bytes::{Buf, Bytes, BytesMut};

const END_OF_HEADERS: &[u8] = b"\r\n\r\n";

enum BodyLength {
    Missing,
    Exact(u64),
    Bad(&'static str),
}

/// The Content-Length of a header section, read leniently so that a message with other broken
/// headers can still be framed (and answered) without losing the stream. The strictly unfolded
/// fields are the lenient ones when they could be had at all, so only a broken section is
/// unfolded a second time.
fn content_length(head: &Head<'_>, limits: &Limits) -> BodyLength {
    match &head.fields {
        Ok(fields) => body_length(fields),
        Err(_) => {
            let lines = split_lines(head.raw);
            let headers = lines.get(1..).unwrap_or_default();
            body_length(&unfold(headers, limits, false).unwrap_or_default())
        }
    }
}

fn body_length(fields: &[Field<'_>]) -> BodyLength {
    let mut values = fields.iter().filter(|f| f.is("Content-Length"));
    let Some(first) = values.next() else {
        return BodyLength::Missing;
    };
    if values.next().is_some() {
        return BodyLength::Bad("Multiple Content-Length");
    }
    if first.value.starts_with('-') {
        return BodyLength::Bad("Negative Content-Length");
    }
    match parse_decimal(&first.value) {
        Some(n) => BodyLength::Exact(n),
        None => BodyLength::Bad("Bad Content-Length"),
    }
}

fn skip_crlf(mut data: &[u8]) -> &[u8] {
    while let Some(rest) = data.strip_prefix(b"\r\n") {
        data = rest;
    }
    data
}

/// Parses one UDP datagram.
pub fn parse_datagram(bytes: &[u8], limits: &Limits) -> Parsed {
    let data = skip_crlf(bytes);
    if data.is_empty() {
        return Parsed::Drop("keep-alive");
    }
    // A datagram is the whole message, so a header section that ends at the end of the
    // datagram without its blank line is taken as complete (RFC 4475 baddn).
    let (head, rest, terminated) = match find(data, END_OF_HEADERS, 0) {
        Some(i) => (&data[..i], &data[i + 4..], true),
        None => match data.strip_suffix(b"\r\n") {
            Some(head) => (head, &[][..], true),
            None => (data, &[][..], false),
        },
    };
    if bytes.len() > limits.max_message_bytes {
        return refuse(head, Fault::too_large("Message Too Large"), limits);
    }
    if !terminated {
        return refuse(head, Fault::bad("Unterminated Header Section"), limits);
    }
    let head = Head::new(head, limits);
    let body = match content_length(&head, limits) {
        BodyLength::Bad(reason) => return refuse(head.raw, Fault::bad(reason), limits),
        // RFC 3261 §18.3: without Content-Length a datagram's body runs to its end (inv2543)
        BodyLength::Missing => rest,
        BodyLength::Exact(n) => match usize::try_from(n).ok().and_then(|n| rest.get(..n)) {
            // octets after Content-Length are not part of the message (dblreq)
            Some(body) => body,
            None => {
                let fault = Fault::bad("Content-Length Larger Than Message");
                return refuse(head.raw, fault, limits);
            }
        },
    };
    if body.len() > limits.max_body_bytes {
        return refuse(head.raw, Fault::too_large("Body Too Large"), limits);
    }
    parse_frame(head, body, limits)
}

/// Frames messages out of a TCP (or TLS) byte stream. Push what the socket gave, then call
/// [`StreamFramer::next`] until it returns `Ok(None)`. The buffer never holds more than twice
/// `max_message_bytes`; on any error, send its rejection (if any) and close the connection.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
    /// bytes already searched for the end of the header section
    scanned: usize,
    overflowed: bool,
    failed: bool,
    pings: usize,
    /// (end of the header section, size of the message) of a message whose body is incomplete
    pending: Option<(usize, usize)>,
}

impl StreamFramer {
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buf: BytesMut::new(),
            limits,
            scanned: 0,
            overflowed: false,
            failed: false,
            pings: 0,
            pending: None,
        }
    }

    fn capacity(&self) -> usize {
        self.limits.max_message_bytes.saturating_mul(2).max(1024)
    }

    /// Appends received bytes. What does not fit is discarded and the next call to `next`
    /// that needs it fails with [`FramingError::BufferOverflow`].
    pub fn push(&mut self, data: &[u8]) {
        if self.failed || self.overflowed {
            return;
        }
        let room = self.capacity().saturating_sub(self.buf.len());
        if data.len() > room {
            self.overflowed = true;
        }
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// CRLFCRLF keep-alive pings seen since the last call; RFC 5626 §4.4.1 wants a CRLF back.
    pub fn take_pings(&mut self) -> usize {
        std::mem::take(&mut self.pings)
    }

    /// The next complete message, `Ok(None)` if more data is needed.
    #[allow(clippy::should_implement_trait)] // fallible and resumable: not an Iterator
    pub fn next(&mut self) -> Result<Option<Parsed>, FramingError> {
        Ok(self.next_with_raw()?.map(|(parsed, _)| parsed))
    }

    /// `next`, with the message's bytes as they were framed (for the SIP trace).
    pub fn next_with_raw(&mut self) -> Result<Option<(Parsed, Bytes)>, FramingError> {
        if self.failed {
            return Err(FramingError::Failed);
        }
        let result = self.frame();
        if result.is_err() {
            self.failed = true;
            self.buf.clear();
        }
        result
    }

    fn skip_keepalives(&mut self) {
        loop {
            if self.buf.starts_with(END_OF_HEADERS) {
                self.buf.advance(4);
                self.pings += 1;
            } else if self.buf.starts_with(b"\r\n") && self.buf.get(2).is_some_and(|&b| b != b'\r')
            {
                // a lone CRLF: a pong, or a line end left over before a start line (§7.5)
                self.buf.advance(2);
            } else {
                return;
            }
            self.scanned = 0;
            self.pending = None;
        }
    }

    fn more_data<T>(&self) -> Result<Option<T>, FramingError> {
        if self.overflowed {
            Err(FramingError::BufferOverflow)
        } else {
            Ok(None)
        }
    }

    fn frame(&mut self) -> Result<Option<(Parsed, Bytes)>, FramingError> {
        self.skip_keepalives();
        let limits = self.limits;
        if self.buf.is_empty() {
            return self.more_data();
        }
        if let Some((end, size)) = self.pending {
            if self.buf.len() < size {
                return self.more_data();
            }
            let head = Head::new(&self.buf[..end], &limits);
            let parsed = parse_frame(head, &self.buf[end + 4..size], &limits);
            return Ok(Some((parsed, self.consume(size))));
        }
        let Some(end) = find(&self.buf, END_OF_HEADERS, self.scanned.saturating_sub(3)) else {
            self.scanned = self.buf.len();
            if self.buf.len() > limits.max_message_bytes {
                // answer from the complete lines seen so far
                let seen = &self.buf[..limits.max_message_bytes];
                let head = complete_lines(seen);
                let fault = Fault::too_large("Header Section Too Large");
                return Err(FramingError::HeaderTooLarge {
                    limit: limits.max_message_bytes,
                    rejection: rejection_for(head, fault, &limits),
                });
            }
            return self.more_data();
        };
        let head = Head::new(&self.buf[..end], &limits);
        let n = match content_length(&head, &limits) {
            BodyLength::Exact(n) => n,
            BodyLength::Missing => {
                let fault = Fault::bad("Missing Content-Length");
                let rejection = rejection_for(head.raw, fault, &limits);
                return Err(FramingError::MissingContentLength { rejection });
            }
            BodyLength::Bad(detail) => {
                let rejection = rejection_for(head.raw, Fault::bad(detail), &limits);
                return Err(FramingError::BadContentLength { detail, rejection });
            }
        };
        let size = (end as u64 + 4).saturating_add(n);
        if n > limits.max_body_bytes as u64 || size > limits.max_message_bytes as u64 {
            let fault = Fault::too_large("Message Too Large");
            let rejection = rejection_for(head.raw, fault, &limits);
            return Err(FramingError::MessageTooLarge { size, rejection });
        }
        // size <= max_message_bytes, so it fits in usize
        let size = size as usize;
        if self.buf.len() < size {
            // the header section stays as it is: framed again when the body is complete
            self.pending = Some((end, size));
            return self.more_data();
        }
        let parsed = parse_frame(head, &self.buf[end + 4..size], &limits);
        Ok(Some((parsed, self.consume(size))))
    }

    /// Removes a framed message of `size` bytes from the front of the buffer and returns it.
    fn consume(&mut self, size: usize) -> Bytes {
        self.scanned = 0;
        self.pending = None;
        self.buf.split_to(size).freeze()
    }
}

/// The bytes up to the last CRLF: only complete header lines are salvaged.
fn complete_lines(b: &[u8]) -> &[u8] {
    b.windows(2)
        .rposition(|w| w == b"\r\n")
        .map_or(b, |p| &b[..p])
}
