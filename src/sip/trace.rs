//! Capture of each call's SIP trace where the bytes cross the wire: the dispatcher hands over
//! what it receives (`received`, `begin` for a new INVITE), the interfaces what they send
//! (`sent`). A capture is found by its leg's side and SIP Call-ID (one per leg: the B2BUA gives
//! the B leg its own), so sends and receipts cost a header scan and one lookup in a sharded map,
//! on the thread that handles the message: no channel, no extra task per message.
//!
//! A capture is bounded (`TraceLimits`): past its cap the messages are counted, not kept. Once
//! the call's CDR is submitted (`finish`) the capture lingers `LINGER` more (the ACK of a
//! refusal, a last retransmission), then the sweeper hands the finished `SipTrace` to the writer
//! (`sink`). The live captures are capped too (`MAX_LIVE`): a flood of new INVITEs cannot grow
//! the map without bound.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::transport::{Peer, Proto};
use crate::model::{Side, SipTrace, TraceDirection, TraceTransport, TracedMessage};
use crate::shutdown::Shutdown;

/// How long a finished capture still takes the call's messages (an ACK to a refusal, a final
/// response retransmitted once more).
pub const LINGER: Duration = Duration::from_secs(2);
/// Captures at once, at most (live and lingering): beyond it new INVITEs go untraced, counted.
pub const MAX_LIVE: usize = 65_536;
const SHARDS: usize = 16;
/// A capture's message list grows by this many (a call is about 10 to 14 messages).
const GROW_MESSAGES: usize = 4;

/// A call's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
}

impl Default for TraceLimits {
    /// A normal call is about 10 messages and 10 KB; re-INVITEs, INFOs and retransmissions
    /// add some. 256 messages or 256 KB keep any sane call whole.
    fn default() -> Self {
        TraceLimits {
            max_messages: 256,
            max_bytes: 256 * 1024,
        }
    }
}

/// What the captures did (`/metrics`, tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceCounters {
    /// Finished traces handed to the writer.
    pub handed: u64,
    /// Finished traces the writer's queue could not take (lost).
    pub lost: u64,
    /// New INVITEs not traced because `MAX_LIVE` captures were open.
    pub untraced: u64,
}

type Key = (Side, Box<str>);

struct Capture {
    /// The call's id (the CDR's), once its attempt exists.
    call_id: Option<String>,
    keys: Vec<Key>,
    messages: Vec<TracedMessage>,
    /// A hash of each kept message's bytes with its leg and direction: retransmissions.
    seen: Vec<u64>,
    bytes: usize,
    dropped_messages: u32,
    dropped_bytes: u64,
    finished: bool,
}

impl Capture {
    fn new(key: Key) -> Capture {
        Capture {
            call_id: None,
            keys: vec![key],
            messages: Vec::new(),
            seen: Vec::new(),
            bytes: 0,
            dropped_messages: 0,
            dropped_bytes: 0,
            finished: false,
        }
    }

    fn push(&mut self, limits: &TraceLimits, m: Crossed<'_>) {
        let len = m.bytes.len();
        if self.messages.len() >= limits.max_messages || self.bytes + len > limits.max_bytes {
            self.dropped_messages = self.dropped_messages.saturating_add(1);
            self.dropped_bytes += len as u64;
            return;
        }
        // Not SipHash: a message can be kilobytes, and a collision only mislabels one message
        // as a retransmission (it is kept all the same).
        let leg_and_way =
            (m.side == Side::Inside) as u64 * 2 + (m.direction == TraceDirection::In) as u64;
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(m.bytes, leg_and_way);
        let retransmission = self.seen.contains(&hash);
        if self.messages.len() == self.messages.capacity() {
            // A few slots at a time, not doubled: a call keeps its trace for its whole life,
            // and doubling left it up to half empty (16 slots of 104 bytes for 9 messages).
            self.messages.reserve_exact(GROW_MESSAGES);
            self.seen.reserve_exact(GROW_MESSAGES);
        }
        self.seen.push(hash);
        self.bytes += len;
        self.messages.push(TracedMessage {
            at: Utc::now(),
            leg: m.side,
            direction: m.direction,
            local: m.local,
            peer: m.peer.addr,
            transport: match m.peer.proto {
                Proto::Udp => TraceTransport::Udp,
                Proto::Tcp => TraceTransport::Tcp,
                Proto::Tls => TraceTransport::Tls,
            },
            retransmission,
            message: redact_sdes_keys(&utf8_lossy(m.bytes)).into_owned(),
        });
    }

    fn take(&mut self) -> SipTrace {
        SipTrace {
            call_id: self.call_id.clone().unwrap_or_default(),
            messages: std::mem::take(&mut self.messages),
            dropped_messages: self.dropped_messages,
            dropped_bytes: self.dropped_bytes,
        }
    }
}

/// `String::from_utf8_lossy`, through `str::from_utf8` first: it checks ASCII a word at a time,
/// where the lossy form goes chunk by chunk (a tenth of a trace's capture cost for SIP, which is
/// ASCII).
fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// One message crossing a socket.
#[derive(Clone, Copy)]
pub struct Crossed<'a> {
    pub side: Side,
    pub direction: TraceDirection,
    pub local: SocketAddr,
    pub peer: Peer,
    pub bytes: &'a [u8],
}

type Shared = Arc<Mutex<Capture>>;

/// The gateway's captures. Shared by the interfaces (sends) and the B2BUA (receipts, calls).
pub struct SipTraces {
    shards: [Mutex<HashMap<Key, Shared>>; SHARDS],
    live: AtomicUsize,
    limits: TraceLimits,
    /// Finished captures waiting out `LINGER`, oldest first.
    closing: Mutex<VecDeque<(Instant, Shared)>>,
    /// None once closed (`close`): the writer ends when it has stored what it holds.
    sink: Mutex<Option<mpsc::Sender<SipTrace>>>,
    handed: AtomicU64,
    lost: AtomicU64,
    untraced: AtomicU64,
}

impl std::fmt::Debug for SipTraces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipTraces")
            .field("live", &self.live.load(Relaxed))
            .field("limits", &self.limits)
            .finish()
    }
}

impl SipTraces {
    /// Finished traces go to `sink` (a full sink loses them, counted).
    pub fn new(limits: TraceLimits, sink: mpsc::Sender<SipTrace>) -> SipTraces {
        SipTraces {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            live: AtomicUsize::new(0),
            limits,
            closing: Mutex::new(VecDeque::new()),
            sink: Mutex::new(Some(sink)),
            handed: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            untraced: AtomicU64::new(0),
        }
    }

    fn shard(&self, side: Side, call_id: &str) -> &Mutex<HashMap<Key, Shared>> {
        // xxh3 as for the retransmission check: every message sent or received picks a shard,
        // and SipHash (`DefaultHasher`, whose fixed keys made it no harder to aim at one shard)
        // cost several times as much for a Call-ID.
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(call_id.as_bytes(), side as u64);
        &self.shards[(hash as usize) % SHARDS]
    }

    fn find(&self, side: Side, call_id: &str) -> Option<Shared> {
        let key: Key = (side, call_id.into());
        self.shard(side, call_id).lock().get(&key).cloned()
    }

    /// A message the gateway received or sent: kept when its Call-ID has a capture.
    pub fn record(&self, m: Crossed<'_>) {
        if self.live.load(Relaxed) == 0 {
            return;
        }
        let Some(call_id) = call_id_of(m.bytes) else {
            return;
        };
        if let Some(capture) = self.find(m.side, call_id) {
            capture.lock().push(&self.limits, m);
        }
    }

    /// A new INVITE (no To tag) from a peer: its capture starts with it, before anything is
    /// sent back (the 100 Trying). Returns false when a capture for this Call-ID exists (a
    /// retransmission: `received` kept it already) or too many are open.
    pub fn begin(&self, m: Crossed<'_>, call_id: &str) -> bool {
        let key: Key = (m.side, call_id.into());
        let mut shard = self.shard(m.side, call_id).lock();
        if shard.contains_key(&key) {
            return false;
        }
        if self.live.load(Relaxed) >= MAX_LIVE {
            self.untraced.fetch_add(1, Relaxed);
            return false;
        }
        let mut capture = Capture::new(key.clone());
        capture.push(&self.limits, m);
        shard.insert(key, Arc::new(Mutex::new(capture)));
        self.live.fetch_add(1, Relaxed);
        true
    }

    /// Undo a `begin` whose INVITE became no call (the transaction layer absorbed it).
    pub fn abandon(&self, side: Side, call_id: &str) {
        let key: Key = (side, call_id.into());
        if let Some(capture) = self.shard(side, call_id).lock().remove(&key) {
            self.live.fetch_sub(1, Relaxed);
            drop(capture);
        }
    }

    /// The call `id` (the CDR's) owns the capture of its INVITE's Call-ID, unless another call
    /// does (an INVITE reusing a live call's Call-ID belongs to that call's trace).
    pub fn claim(&self, side: Side, call_id: &str, id: &str) {
        if let Some(capture) = self.find(side, call_id) {
            let mut c = capture.lock();
            if c.call_id.is_none() {
                c.call_id = Some(id.to_string());
            }
        }
    }

    /// The call's other leg (`other`, its own Call-ID) goes into the same capture.
    pub fn join(&self, side: Side, call_id: &str, other: Side, other_call_id: &str) {
        let Some(capture) = self.find(side, call_id) else {
            return;
        };
        let key: Key = (other, other_call_id.into());
        capture.lock().keys.push(key.clone());
        self.shard(other, other_call_id).lock().insert(key, capture);
    }

    /// The call `id` submitted its CDR, whose legs' Call-IDs are `legs`: its capture closes
    /// after `LINGER`.
    pub fn finish(&self, id: &str, legs: &[(Side, Option<&str>)]) {
        for (side, call_id) in legs {
            let Some(call_id) = call_id else { continue };
            let Some(capture) = self.find(*side, call_id) else {
                continue;
            };
            {
                let mut c = capture.lock();
                if c.call_id.as_deref() != Some(id) || c.finished {
                    continue;
                }
                c.finished = true;
            }
            self.closing
                .lock()
                .push_back((Instant::now() + LINGER, capture));
            return;
        }
    }

    /// A copy of the call's capture so far, handed to the writer now (the answer: a crash
    /// later still leaves the call's setup stored; the final trace replaces it).
    pub fn checkpoint(&self, side: Side, call_id: &str) {
        let Some(capture) = self.find(side, call_id) else {
            return;
        };
        let trace = {
            let c = capture.lock();
            if c.call_id.is_none() {
                return;
            }
            SipTrace {
                call_id: c.call_id.clone().unwrap_or_default(),
                messages: c.messages.clone(),
                dropped_messages: c.dropped_messages,
                dropped_bytes: c.dropped_bytes,
            }
        };
        self.hand_over(trace);
    }

    fn hand_over(&self, trace: SipTrace) {
        let sent = match &*self.sink.lock() {
            Some(sink) => sink.try_send(trace),
            None => Err(mpsc::error::TrySendError::Closed(trace)),
        };
        match sent {
            Ok(()) => {
                self.handed.fetch_add(1, Relaxed);
            }
            Err(e) => {
                let n = self.lost.fetch_add(1, Relaxed) + 1;
                let call_id = match &e {
                    mpsc::error::TrySendError::Full(t) | mpsc::error::TrySendError::Closed(t) => {
                        t.call_id.clone()
                    }
                };
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(%call_id, lost = n, "SIP trace writer queue full; trace not stored");
                }
            }
        }
    }

    /// Hands over the captures whose linger ended by `now` (all of them with `None`).
    pub fn sweep(&self, now: Option<Instant>) {
        loop {
            let due = {
                let mut closing = self.closing.lock();
                match closing.front() {
                    Some((at, _)) if now.is_none_or(|now| *at <= now) => closing.pop_front(),
                    _ => None,
                }
            };
            let Some((_, capture)) = due else { break };
            let (keys, trace) = {
                let mut c = capture.lock();
                (std::mem::take(&mut c.keys), c.take())
            };
            for (side, call_id) in keys {
                let mut shard = self.shard(side, &call_id).lock();
                let key = (side, call_id);
                if shard.get(&key).is_some_and(|c| Arc::ptr_eq(c, &capture)) {
                    shard.remove(&key);
                }
            }
            self.live.fetch_sub(1, Relaxed);
            self.hand_over(trace);
        }
    }

    /// Hands over every finished capture at once and lets the writer go (the gateway's stop,
    /// once the calls have ended).
    pub fn close(&self) {
        self.sweep(None);
        self.sink.lock().take();
    }

    /// Sweeps every 250 ms; on shutdown `close`s. Returns its task.
    pub fn spawn_sweeper(self: &Arc<Self>, mut shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let traces = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => traces.sweep(Some(Instant::now())),
                    _ = shutdown.recv() => break,
                }
            }
            traces.close();
        })
    }

    pub fn counters(&self) -> TraceCounters {
        TraceCounters {
            handed: self.handed.load(Relaxed),
            lost: self.lost.load(Relaxed),
            untraced: self.untraced.load(Relaxed),
        }
    }

    /// Captures open (live or lingering).
    pub fn live(&self) -> usize {
        self.live.load(Relaxed)
    }
}

/// `text` (a SIP message) with the key material of every SDES `a=crypto` line (RFC 4568:
/// `inline:<base64>[|lifetime][|MKI:len]`) replaced by `<redacted>`, the tag and suite kept:
/// a trace is kept as evidence and must never hold the media keys.
pub fn redact_sdes_keys(text: &str) -> std::borrow::Cow<'_, str> {
    const INLINE: &[u8] = b"inline:";
    // Each `inline:` ends with a colon: look only behind each colon (memchr jumps between
    // them), not at every byte (this runs on every message of every trace).
    let find = |s: &str| {
        let bytes = s.as_bytes();
        memchr::memchr_iter(b':', bytes)
            .map(|colon| colon + 1)
            .find(|&end| {
                end >= INLINE.len() && bytes[end - INLINE.len()..end].eq_ignore_ascii_case(INLINE)
            })
            .map(|end| end - INLINE.len())
    };
    if find(text).is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find(rest) {
        let (head, tail) = rest.split_at(at + INLINE.len());
        out.push_str(head);
        out.push_str("<redacted>");
        // The material runs to the next blank, `;` (another key) or line end.
        let end = tail
            .find([' ', '\t', '\r', '\n', ';'])
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// The Call-ID header's value (`Call-ID:` or compact `i:`, any case) in a message's header
/// section (up to the first CRLF CRLF); None when there is none.
pub fn call_id_of(bytes: &[u8]) -> Option<&str> {
    // One pass from the top, ending at the Call-ID (most often among the first headers) or at
    // the blank line: not a search for the section's end first and the lines after it. Only a
    // line whose first letter is c or i can name the header: the others are skipped unread.
    let mut after_cr = false;
    let mut rest = bytes;
    loop {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], Some(&rest[end + 1..])),
            None => (rest, None),
        };
        if after_cr && line == b"\r" {
            // CRLF CRLF: the header section has ended.
            return None;
        }
        after_cr = line.last() == Some(&b'\r');
        let first = line.iter().find(|b| !b.is_ascii_whitespace());
        if matches!(first, Some(b'c' | b'C' | b'i' | b'I')) {
            if let Some(colon) = memchr::memchr(b':', line) {
                let name = line[..colon].trim_ascii();
                if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
                    let value = std::str::from_utf8(line[colon + 1..].trim_ascii()).ok()?;
                    return (!value.is_empty()).then_some(value);
                }
            }
        }
        rest = next?;
    }
}

#[cfg(test)]
#[path = "trace_tests.rs"]
mod tests;
