//! The stream connections' reuse and reopening, over TCP (TLS is the same code after its
//! handshake): a connection the gateway opened carries the peer's requests back to the
//! handler, a peer's CRLFCRLF ping gets a CRLF pong, and a connection that died is opened again
//! for the next message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::sip::frontend::Parsed;

#[derive(Default)]
struct Seen(Mutex<Vec<(Peer, String)>>);

impl Handler for Seen {
    fn accept_peer(&self, _: Side, _: SocketAddr) -> bool {
        true
    }
    fn admit(&self, _: Side, _: SocketAddr, _: bool) -> bool {
        true
    }
    fn on_message(&self, _: Side, peer: Peer, parsed: Parsed, _: &[u8], _: Duration) {
        if let Parsed::Message(m) = parsed {
            self.0.lock().push((peer, m.to_string()));
        }
    }
}

const OPTIONS: &[u8] = b"OPTIONS sip:peer@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

async fn read_some(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("bytes within 5 s")
        .unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn an_opened_connection_carries_both_ways_and_is_reopened_when_it_dies() {
    let (iface, listener) = Interface::bind(
        Side::Outside,
        "127.0.0.1:0".parse().unwrap(),
        Limits::default(),
        Arc::default(),
    )
    .await
    .unwrap();
    let seen = Arc::new(Seen::default());
    let (_trigger, shutdown) = crate::shutdown::channel();
    iface.start(listener, seen.clone(), shutdown);

    let carrier = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = Peer {
        addr: carrier.local_addr().unwrap(),
        proto: Proto::Tcp,
    };
    iface.send(peer, Bytes::from_static(OPTIONS));
    let (mut first, _) = carrier.accept().await.unwrap();
    assert!(read_some(&mut first).await.starts_with(b"OPTIONS "));

    // The peer's request on our connection reaches the handler, as from the peer's address.
    first.write_all(OPTIONS).await.unwrap();
    // Its ping gets a pong.
    first.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_some(&mut first).await, b"\r\n");
    let got = seen.0.lock().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, peer);

    // The peer closes; the next message opens a new connection.
    drop(first);
    for _ in 0..50 {
        if iface.conns.lock().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        iface.conns.lock().is_empty(),
        "the dead connection is forgotten"
    );
    iface.send(peer, Bytes::from_static(OPTIONS));
    let (mut second, _) = tokio::time::timeout(Duration::from_secs(5), carrier.accept())
        .await
        .expect("a new connection")
        .unwrap();
    assert!(read_some(&mut second).await.starts_with(b"OPTIONS "));
}
