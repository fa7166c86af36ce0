//! New INVITEs read straight from the datagram, for overload control to refuse before the
//! front end parses them (`b2bua::overload`): the few header fields a refusal and its CDR need,
//! found by a scan of the header lines, and the stateless `503` built from them as bytes.
//!
//! Anything this scan is not sure of — folded lines, a field missing or repeated, a To tag,
//! another method in CSeq, bytes that are not UTF-8 where text is needed — is `Other`: the
//! full front end then reads it as any message, so a refusal here never misjudges a request.
//!
//! The refusal's To tag starts with [`SHED_TAG_PREFIX`], which `message::random_token` (letters
//! and digits) never makes: the ACK that answers the refusal is known by its tag alone and
//! dropped unparsed, with no state kept for it.

/// The start of every stateless overload refusal's To tag.
pub const SHED_TAG_PREFIX: &str = "ol-";
/// More Via lines than this: left to the front end (which refuses too many).
const MAX_VIAS: usize = 32;

/// What a datagram is, as far as overload control cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raw<'a> {
    /// An INVITE without a To tag: a new call.
    InitialInvite(RawInvite<'a>),
    /// The ACK of a stateless overload refusal: nothing more to do.
    AckToShed,
    /// Anything else.
    Other,
}

/// A new INVITE's fields, borrowed from the datagram (values trimmed, names not kept: a
/// response names them in full).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawInvite<'a> {
    pub request_uri: &'a str,
    pub call_id: &'a str,
    /// The From value (name-addr or addr-spec, with its parameters).
    pub from: &'a str,
    pub pai: Option<&'a str>,
    /// The first Via's value and the CSeq's: with the Call-ID they tell a retransmission.
    pub top_via: &'a [u8],
    pub cseq: &'a [u8],
    vias: Vec<&'a [u8]>,
    from_raw: &'a [u8],
    to_raw: &'a [u8],
    call_id_raw: &'a [u8],
}

/// Read a datagram far enough to tell a new INVITE or the ACK of an overload refusal.
pub fn classify(bytes: &[u8]) -> Raw<'_> {
    // Most datagrams are neither: told by their first bytes, before any scan.
    if !bytes.starts_with(b"INVITE ") && !bytes.starts_with(b"ACK ") {
        return Raw::Other;
    }
    let head = match super::frontend::find(bytes, b"\r\n\r\n", 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    };
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(start) = lines.next() else {
        return Raw::Other;
    };
    if start.starts_with(b"ACK ") {
        return ack(lines);
    }
    let Some(uri) = start
        .strip_prefix(b"INVITE ")
        .and_then(|rest| rest.strip_suffix(b" SIP/2.0"))
        .and_then(|uri| std::str::from_utf8(uri).ok())
        .filter(|uri| !uri.is_empty() && !uri.contains(' '))
    else {
        return Raw::Other;
    };
    invite(uri, lines).map_or(Raw::Other, Raw::InitialInvite)
}

/// A header line's name and value (trimmed); None for a continuation, a line without a colon,
/// or one with a control character (a refusal echoes values as they came: nothing that could
/// split a line of it).
fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.first().is_some_and(|b| *b == b' ' || *b == b'\t')
        || line.iter().any(|b| b.is_ascii_control() && *b != b'\t')
    {
        return None;
    }
    let colon = line.iter().position(|b| *b == b':')?;
    Some((line[..colon].trim_ascii(), line[colon + 1..].trim_ascii()))
}

fn is(name: &[u8], long: &str, compact: Option<&str>) -> bool {
    name.eq_ignore_ascii_case(long.as_bytes())
        || compact.is_some_and(|c| name.eq_ignore_ascii_case(c.as_bytes()))
}

/// Set `slot` once; a second occurrence makes the message one for the front end.
fn once<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(value);
    true
}

fn invite<'a>(
    request_uri: &'a str,
    lines: impl Iterator<Item = &'a [u8]>,
) -> Option<RawInvite<'a>> {
    let mut vias = Vec::with_capacity(2);
    let (mut from, mut to, mut call_id, mut cseq, mut pai) = (None, None, None, None, None);
    for line in lines {
        if line.is_empty() {
            continue;
        }
        // A folded line (or garbage) is the front end's to read.
        let (name, value) = field(line)?;
        let fresh = if is(name, "Via", Some("v")) {
            vias.push(value);
            vias.len() <= MAX_VIAS
        } else if is(name, "From", Some("f")) {
            once(&mut from, value)
        } else if is(name, "To", Some("t")) {
            once(&mut to, value)
        } else if is(name, "Call-ID", Some("i")) {
            once(&mut call_id, value)
        } else if is(name, "CSeq", None) {
            once(&mut cseq, value)
        } else if is(name, "P-Asserted-Identity", None) {
            pai.get_or_insert(value);
            true
        } else {
            true
        };
        if !fresh {
            return None;
        }
    }
    let (from, to, call_id, cseq) = (from?, to?, call_id?, cseq?);
    let method = cseq
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .nth(1);
    if method != Some(b"INVITE".as_slice()) || tag_of(to).is_some() || call_id.is_empty() {
        return None;
    }
    Some(RawInvite {
        request_uri,
        call_id: std::str::from_utf8(call_id).ok()?,
        from: std::str::from_utf8(from).ok()?,
        pai: pai.and_then(|p| std::str::from_utf8(p).ok()),
        top_via: vias.first().copied()?,
        cseq,
        vias,
        from_raw: from,
        to_raw: to,
        call_id_raw: call_id,
    })
}

/// An ACK whose To tag is one of our overload refusals'.
fn ack<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Raw<'a> {
    for line in lines {
        match field(line) {
            Some((name, value)) if is(name, "To", Some("t")) => {
                let ours = tag_of(value).is_some_and(|t| t.starts_with(SHED_TAG_PREFIX.as_bytes()));
                return if ours { Raw::AckToShed } else { Raw::Other };
            }
            _ => {}
        }
    }
    Raw::Other
}

/// The tag parameter of a From/To value (outside any `<…>`).
fn tag_of(value: &[u8]) -> Option<&[u8]> {
    let params = match value.iter().rposition(|b| *b == b'>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(|b| *b == b';').skip(1).find_map(|p| {
        let p = p.trim_ascii();
        let (name, v) = p.split_at(p.iter().position(|b| *b == b'=')?);
        name.trim_ascii()
            .eq_ignore_ascii_case(b"tag")
            .then(|| v[1..].trim_ascii())
    })
}

impl RawInvite<'_> {
    /// The stateless response (RFC 3261 §8.2.7): every Via, From, To with `to_tag` added,
    /// Call-ID and CSeq as received, then `Server` (when named), `Retry-After` (when given),
    /// `Content-Length: 0`. A retransmission given the same tag gets the same bytes.
    pub fn response(
        &self,
        status: u16,
        phrase: &str,
        to_tag: &str,
        retry_after: Option<u32>,
        server: Option<&str>,
    ) -> Vec<u8> {
        let vias: usize = self.vias.iter().map(|v| v.len() + 7).sum();
        let mut out = Vec::with_capacity(192 + vias + self.from_raw.len() + self.to_raw.len());
        out.extend_from_slice(format!("SIP/2.0 {status} {phrase}\r\n").as_bytes());
        let mut field = |name: &[u8], parts: &[&[u8]]| {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            for p in parts {
                out.extend_from_slice(p);
            }
            out.extend_from_slice(b"\r\n");
        };
        for via in &self.vias {
            field(b"Via", &[via]);
        }
        field(b"From", &[self.from_raw]);
        field(b"To", &[self.to_raw, b";tag=", to_tag.as_bytes()]);
        field(b"Call-ID", &[self.call_id_raw]);
        field(b"CSeq", &[self.cseq]);
        if let Some(name) = server {
            field(b"Server", &[name.as_bytes()]);
        }
        if let Some(secs) = retry_after {
            field(b"Retry-After", &[secs.to_string().as_bytes()]);
        }
        field(b"Content-Length", &[b"0"]);
        out.extend_from_slice(b"\r\n");
        out
    }
}

#[cfg(test)]
#[path = "shed_tests.rs"]
mod tests;
