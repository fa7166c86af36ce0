//! A SIP peer on a TCP connection of our own (tests of SIP over TCP): whole messages framed by
//! Content-Length, requests and responses spelled out.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{reason_for, token, Msg, CARRIER_IP, WAIT};

/// One SIP peer on a TCP connection, reading whole messages.
pub struct TcpPeer {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub local: SocketAddr,
}

impl TcpPeer {
    /// A connection the other side opened (accepted from our listener).
    pub fn accepted(stream: TcpStream) -> TcpPeer {
        let local = stream.local_addr().expect("local addr");
        TcpPeer {
            stream,
            buf: Vec::new(),
            local,
        }
    }

    pub async fn connect(from_ip: &str, to: SocketAddr) -> TcpPeer {
        let sock = TcpSocket::new_v4().expect("socket");
        sock.bind(format!("{from_ip}:0").parse().expect("addr"))
            .expect("bind");
        let stream = sock.connect(to).await.expect("connect");
        let local = stream.local_addr().expect("local addr");
        TcpPeer {
            stream,
            buf: Vec::new(),
            local,
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.stream
            .write_all(text.as_bytes())
            .await
            .expect("tcp write");
    }

    /// The next whole message, or None after `WAIT`.
    pub async fn next(&mut self) -> Option<Msg> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        let k = k.trim();
                        (k.eq_ignore_ascii_case("content-length") || k == "l")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                let total = end + 4 + len;
                if self.buf.len() >= total {
                    let msg: Vec<u8> = self.buf.drain(..total).collect();
                    let peer = self.stream.peer_addr().expect("peer addr");
                    return Some(Msg::parse(&msg, peer));
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn expect_status(&mut self, code: u16) -> Msg {
        loop {
            let m = self.next().await.unwrap_or_else(|| panic!("no {code}"));
            if m.status() == Some(code) {
                return m;
            }
            assert!(
                m.status().is_some_and(|s| s < 200),
                "expected {code}, got {}",
                m.start_line()
            );
        }
    }

    pub async fn expect_request(&mut self, method: &str) -> Msg {
        let m = self.next().await.unwrap_or_else(|| panic!("no {method}"));
        assert_eq!(m.method(), Some(method), "{}", m.start_line());
        m
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[allow(clippy::too_many_arguments)] // a raw request spelled out in full
pub fn request(
    method: &str,
    via_host: SocketAddr,
    uri: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_string()
    };
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TCP {via_host};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
         From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:pbx@{via_host};transport=tcp>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        token("b"),
        body.len()
    )
}

/// Answer a request received on a TCP connection (the response goes back on it).
pub fn response(req: &Msg, code: u16, tag: &str, body: &str) -> String {
    let mut t = format!("SIP/2.0 {code} {}\r\n", reason_for(code));
    for v in req.headers("Via") {
        t.push_str(&format!("Via: {v}\r\n"));
    }
    let to = req.must("To");
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag={tag}")
    };
    t.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:carrier@{}:5080;transport=tcp>\r\n",
        req.must("From"),
        req.call_id(),
        req.must("CSeq"),
        CARRIER_IP
    ));
    if !body.is_empty() {
        t.push_str("Content-Type: application/sdp\r\n");
    }
    t.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    t
}
