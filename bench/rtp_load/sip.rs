//! A minimal SIP UA of the bench's own over UDP: the PBX places the calls through the gateway's
//! inside interface (ramped at `--cps`), the carrier answers 200 with SDP, and both hang up
//! with BYE at the end.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::{CALLER, PBX_IP};

struct Msg {
    start: String,
    headers: Vec<(String, String)>,
    body: String,
    src: SocketAddr,
}

fn long_name(n: &str) -> String {
    let l = n.trim().to_ascii_lowercase();
    match l.as_str() {
        "v" => "via".into(),
        "f" => "from".into(),
        "t" => "to".into(),
        "i" => "call-id".into(),
        "m" => "contact".into(),
        "l" => "content-length".into(),
        "c" => "content-type".into(),
        _ => l,
    }
}

impl Msg {
    fn parse(buf: &[u8], src: SocketAddr) -> Option<Msg> {
        let text = std::str::from_utf8(buf).ok()?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_string();
        let headers = lines
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                Some((long_name(n), v.trim().to_string()))
            })
            .collect();
        Some(Msg {
            start,
            headers,
            body: body.to_string(),
            src,
        })
    }
    fn h(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn status(&self) -> Option<u16> {
        self.start.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }
    fn method(&self) -> &str {
        self.start.split(' ').next().unwrap_or("")
    }
    fn cseq_method(&self) -> &str {
        self.h("cseq").split_whitespace().nth(1).unwrap_or("")
    }
    fn contact_uri(&self) -> Option<String> {
        let c = self.h("contact");
        let s = c.find('<')?;
        let e = c[s..].find('>')?;
        Some(c[s + 1..s + e].to_string())
    }
    /// Where this message's SDP says to send RTP.
    fn sdp_target(&self) -> Option<SocketAddr> {
        let ip = self
            .body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))?;
        let port = self
            .body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))?
            .split(' ')
            .next()?;
        format!("{}:{}", ip.trim(), port).parse().ok()
    }
}

fn sdp_at(a: SocketAddr) -> String {
    format!(
        "v=0\r\no=bench 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = a.ip(),
        port = a.port()
    )
}

/// A response to `req` (Via, From, To [+tag], Call-ID, CSeq copied).
fn response(
    req: &Msg,
    code: u16,
    tag: Option<&str>,
    contact: SocketAddr,
    sdp: Option<&str>,
) -> String {
    let reason = if code == 200 { "OK" } else { "Whatever" };
    let mut t = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.all("via") {
        let _ = write!(t, "Via: {v}\r\n");
    }
    let to = req.h("to");
    let _ = write!(t, "From: {}\r\n", req.h("from"));
    match tag {
        Some(tag) if !to.contains("tag=") => {
            let _ = write!(t, "To: {to};tag={tag}\r\n");
        }
        _ => {
            let _ = write!(t, "To: {to}\r\n");
        }
    }
    let _ = write!(
        t,
        "Call-ID: {}\r\nCSeq: {}\r\n",
        req.h("call-id"),
        req.h("cseq")
    );
    if tag.is_some() {
        let _ = write!(t, "Contact: <sip:{contact}>\r\n");
    }
    let body = sdp.unwrap_or("");
    if sdp.is_some() {
        t.push_str("Content-Type: application/sdp\r\n");
    }
    let _ = write!(t, "Content-Length: {}\r\n\r\n{body}", body.len());
    t
}

/// The PBX's view of call i.
#[derive(Default, Clone)]
pub struct PbxCall {
    invited: bool,
    /// To header of the 200 (with the gateway's tag).
    to: Option<String>,
    target: Option<String>,
    /// Where the gateway wants our RTP (its inside port for this call).
    pub rtp_to: Option<SocketAddr>,
    bye_sent: bool,
    bye_ok: bool,
}

/// The carrier's view of call i.
#[derive(Default, Clone)]
pub struct CarrierCall {
    pub rtp_to: Option<SocketAddr>,
    acked: bool,
    bye_got: bool,
}

pub struct Sip {
    pub pbx: UdpSocket,
    pub car: UdpSocket,
    pub inside: SocketAddr,
    pub pid: u32,
    pub n: usize,
    pub pbx_calls: Vec<PbxCall>,
    pub car_calls: Vec<CarrierCall>,
    /// Carrier B-leg Call-ID → call index.
    pub b_legs: HashMap<String, usize>,
    pub pbx_rtp: Vec<SocketAddr>,
    pub car_rtp: Vec<SocketAddr>,
    pub other_requests: u64,
    pub failures: u64,
}

fn callee(i: usize) -> String {
    format!("+1555{i:07}")
}

impl Sip {
    fn call_id(&self, i: usize) -> String {
        format!("rtpb{i}x{}@{PBX_IP}", self.pid)
    }
    fn index_of(&self, call_id: &str) -> Option<usize> {
        let rest = call_id.strip_prefix("rtpb")?;
        let (i, _) = rest.split_once('x')?;
        i.parse().ok().filter(|&i| i < self.n)
    }
    fn pbx_addr(&self) -> SocketAddr {
        self.pbx.local_addr().expect("addr")
    }
    fn send_pbx(&self, text: &str, to: SocketAddr) {
        let _ = self.pbx.send_to(text.as_bytes(), to);
    }

    fn invite(&mut self, i: usize) {
        let me = self.pbx_addr();
        let sdp = sdp_at(self.pbx_rtp[i % self.pbx_rtp.len()]);
        let t = format!(
            "INVITE sip:{to}@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrtpb{i}i;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{CALLER}@{pip}>;tag=pf{i}\r\nTo: <sip:{to}@{gip}>\r\n\
             Call-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:{me}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            to = callee(i),
            gw = self.inside,
            pip = PBX_IP,
            gip = self.inside.ip(),
            cid = self.call_id(i),
            len = sdp.len(),
        );
        self.send_pbx(&t, self.inside);
        self.pbx_calls[i].invited = true;
    }

    fn in_dialog(&self, i: usize, method: &str, cseq: u32) -> Option<String> {
        let c = &self.pbx_calls[i];
        let me = self.pbx_addr();
        Some(format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrtpb{i}{m}{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{CALLER}@{pip}>;tag=pf{i}\r\nTo: {to}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            target = c.target.as_deref()?,
            to = c.to.as_deref()?,
            pip = PBX_IP,
            cid = self.call_id(i),
            m = &method[..1],
        ))
    }

    fn bye(&mut self, i: usize) {
        if let Some(t) = self.in_dialog(i, "BYE", 2) {
            self.send_pbx(&t, self.inside);
            self.pbx_calls[i].bye_sent = true;
        }
    }

    /// Handle every datagram waiting on either socket; returns how many.
    fn poll(&mut self) -> usize {
        let mut buf = vec![0u8; 65536];
        let mut handled = 0;
        for _ in 0..10_000 {
            let mut any = false;
            if let Ok((n, src)) = self.pbx.recv_from(&mut buf) {
                any = true;
                if let Some(m) = Msg::parse(&buf[..n], src) {
                    self.on_pbx(m);
                }
            }
            if let Ok((n, src)) = self.car.recv_from(&mut buf) {
                any = true;
                if let Some(m) = Msg::parse(&buf[..n], src) {
                    self.on_carrier(m);
                }
            }
            if !any {
                break;
            }
            handled += 1;
        }
        handled
    }

    fn on_pbx(&mut self, m: Msg) {
        let Some(code) = m.status() else {
            // A request from the gateway (e.g. BYE after a media timeout): accept it.
            self.other_requests += 1;
            if m.method() != "ACK" {
                let t = response(&m, 200, None, self.pbx_addr(), None);
                self.send_pbx(&t, m.src);
            }
            return;
        };
        let Some(i) = self.index_of(m.h("call-id")) else {
            return;
        };
        match (code, m.cseq_method()) {
            (200, "INVITE") => {
                let c = &mut self.pbx_calls[i];
                if c.to.is_none() {
                    c.to = Some(m.h("to").to_string());
                    c.target = m.contact_uri();
                    c.rtp_to = m.sdp_target();
                }
                // ACK every 2xx, retransmissions too.
                if let Some(t) = self.in_dialog(i, "ACK", 1) {
                    self.send_pbx(&t, m.src);
                }
            }
            (200, "BYE") => self.pbx_calls[i].bye_ok = true,
            (c, _) if c >= 300 => self.failures += 1,
            _ => {}
        }
    }

    fn on_carrier(&mut self, m: Msg) {
        if m.status().is_some() {
            return;
        }
        let me = self.car.local_addr().expect("addr");
        match m.method() {
            "INVITE" => {
                let to = m.h("to");
                let i = to
                    .find("+1555")
                    .and_then(|p| to.get(p + 5..p + 12))
                    .and_then(|d| d.parse::<usize>().ok())
                    .filter(|&i| i < self.n);
                let Some(i) = i else {
                    let t = response(&m, 404, Some("x"), me, None);
                    let _ = self.car.send_to(t.as_bytes(), m.src);
                    return;
                };
                self.b_legs.insert(m.h("call-id").to_string(), i);
                if self.car_calls[i].rtp_to.is_none() {
                    self.car_calls[i].rtp_to = m.sdp_target();
                }
                let sdp = sdp_at(self.car_rtp[i % self.car_rtp.len()]);
                let t = response(&m, 200, Some(&format!("ct{i}")), me, Some(&sdp));
                let _ = self.car.send_to(t.as_bytes(), m.src);
            }
            "ACK" => {
                if let Some(&i) = self.b_legs.get(m.h("call-id")) {
                    self.car_calls[i].acked = true;
                }
            }
            other => {
                if other == "BYE" {
                    if let Some(&i) = self.b_legs.get(m.h("call-id")) {
                        self.car_calls[i].bye_got = true;
                    }
                } else {
                    self.other_requests += 1;
                }
                let t = response(&m, 200, None, me, None);
                let _ = self.car.send_to(t.as_bytes(), m.src);
            }
        }
    }

    pub fn established(&self, i: usize) -> bool {
        self.pbx_calls[i].rtp_to.is_some()
            && self.car_calls[i].acked
            && self.car_calls[i].rtp_to.is_some()
    }

    /// INVITE call i at `start + i / cps`, until all are set up or the deadline passes.
    pub fn setup(&mut self, cps: u64) -> (usize, f64) {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(self.n as u64 / cps + 20);
        let mut next = 0;
        loop {
            while next < self.n
                && start.elapsed() >= Duration::from_micros(next as u64 * 1_000_000 / cps)
            {
                self.invite(next);
                next += 1;
            }
            if self.poll() == 0 {
                thread::sleep(Duration::from_micros(500));
            }
            let up = (0..self.n).filter(|&i| self.established(i)).count();
            if (next == self.n && up == self.n) || Instant::now() > deadline {
                return (up, start.elapsed().as_secs_f64());
            }
        }
    }

    /// BYE every established call at `cps`, then wait (bounded) for the 200s and the BYEs.
    pub fn teardown(&mut self, cps: u64) -> (usize, usize) {
        let calls: Vec<usize> = (0..self.n).filter(|&i| self.established(i)).collect();
        let start = Instant::now();
        let deadline = start + Duration::from_secs(calls.len() as u64 / cps + 15);
        let mut next = 0;
        loop {
            while next < calls.len()
                && start.elapsed() >= Duration::from_micros(next as u64 * 1_000_000 / cps)
            {
                self.bye(calls[next]);
                next += 1;
            }
            if self.poll() == 0 {
                thread::sleep(Duration::from_micros(500));
            }
            let ok = calls.iter().filter(|&&i| self.pbx_calls[i].bye_ok).count();
            let got = calls.iter().filter(|&&i| self.car_calls[i].bye_got).count();
            if (next == calls.len() && ok == calls.len() && got == calls.len())
                || Instant::now() > deadline
            {
                return (ok, got);
            }
        }
    }
}
