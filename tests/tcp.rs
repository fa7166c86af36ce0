//! SIP over TCP on both interfaces: a PBX that connects to the inside interface, and a carrier
//! reached over TCP (`carrier_transport = "tcp"`). Messages are framed by Content-Length.

mod common;

use std::net::SocketAddr;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use trunkguard::monitor::cdr::Disposition;

/// One SIP peer on a TCP connection, reading whole messages.
struct TcpPeer {
    stream: TcpStream,
    buf: Vec<u8>,
    local: SocketAddr,
}

impl TcpPeer {
    async fn connect(from_ip: &str, to: SocketAddr) -> TcpPeer {
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

    async fn send(&mut self, text: &str) {
        self.stream
            .write_all(text.as_bytes())
            .await
            .expect("tcp write");
    }

    /// The next whole message, or None after `WAIT`.
    async fn next(&mut self) -> Option<Msg> {
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

    async fn expect_status(&mut self, code: u16) -> Msg {
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

    async fn expect_request(&mut self, method: &str) -> Msg {
        let m = self.next().await.unwrap_or_else(|| panic!("no {method}"));
        assert_eq!(m.method(), Some(method), "{}", m.start_line());
        m
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[allow(clippy::too_many_arguments)] // a raw request spelled out in full
fn request(
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
fn response(req: &Msg, code: u16, tag: &str, body: &str) -> String {
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

#[tokio::test]
async fn pbx_over_tcp_places_a_call() {
    let mut h = start_gateway(&[]).await;
    let inside = h.inside();
    let mut pbx = TcpPeer::connect(PBX_IP, inside).await;
    let from = format!("<sip:{CALLER}@{PBX_IP}>;tag={}", token("ft"));
    let to = format!("<sip:{CALLEE}@{}>", inside.ip());
    let uri = format!("sip:{CALLEE}@{inside}");
    let call_id = token("tcp-call");
    pbx.send(&request(
        "INVITE",
        pbx.local,
        &uri,
        &from,
        &to,
        &call_id,
        1,
        &sdp("sendrecv"),
    ))
    .await;
    pbx.expect_status(100).await;

    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 200, Some("carrier-tag")).await;
    let ok = pbx.expect_status(200).await;
    let to_tagged = ok.must("To").to_string();
    pbx.send(&request(
        "ACK", pbx.local, &uri, &from, &to_tagged, &call_id, 1, "",
    ))
    .await;
    h.carrier.expect_request("ACK").await;

    pbx.send(&request(
        "BYE", pbx.local, &uri, &from, &to_tagged, &call_id, 2, "",
    ))
    .await;
    let c_bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&c_bye, 200, None).await;
    pbx.expect_status(200).await;

    h.assert_idle().await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.source, pbx.local.to_string());
}

#[tokio::test]
async fn carrier_reached_over_tcp() {
    // The carrier listens on TCP at the address the trunk names.
    let listener = TcpListener::bind(format!("{CARRIER_IP}:0"))
        .await
        .expect("listen");
    let carrier_addr = listener.local_addr().expect("addr");
    let carrier_cfg = format!("trunk.carrier = \"{carrier_addr}\"");
    let mut h = start_gateway(&[&carrier_cfg, "trunk.carrier_transport = \"tcp\""]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;

    let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("gateway connects to the carrier")
        .expect("accept");
    let local = stream.local_addr().expect("addr");
    let mut carrier = TcpPeer {
        stream,
        buf: Vec::new(),
        local,
    };
    let c_invite = carrier.expect_request("INVITE").await;
    assert!(
        c_invite.must("Via").starts_with("SIP/2.0/TCP"),
        "Via names TCP: {}",
        c_invite.must("Via")
    );
    carrier.send(&response(&c_invite, 180, "ct1", "")).await;
    carrier
        .send(&response(&c_invite, 200, "ct1", &sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let dialog = Dialog::uac(&invite, &ok);
    h.pbx.ack(&dialog, invite.cseq).await;
    carrier.expect_request("ACK").await;

    // The carrier hangs up over the same connection.
    let bye = format!(
        "BYE {} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
         From: {};tag=ct1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        c_invite.contact_uri().unwrap_or_else(|| "sip:gw".into()),
        token("b"),
        c_invite.must("To"),
        c_invite.must("From"),
        c_invite.call_id()
    );
    carrier.send(&bye).await;
    let p_bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&p_bye, 200, None).await;
    carrier.expect_status(200).await;

    h.assert_idle().await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).disposition, Disposition::Answered);
}
