//! A MediaSession between plain UDP sockets playing PBX and carrier, on 127.0.0.1. Each test
//! runs on both relay engines (`on_both_engines!`), each engine on port ranges of its own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::rtp::tests::packet;
use super::*;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(2);

async fn socket() -> UdpSocket {
    UdpSocket::bind((LOCAL, 0)).await.unwrap()
}

fn to(anchor: Anchor) -> SocketAddr {
    SocketAddr::new(anchor.address, anchor.rtp_port)
}

fn to_rtcp(anchor: Anchor) -> SocketAddr {
    SocketAddr::new(anchor.address, anchor.rtcp_port)
}

async fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("packet relayed in time")
        .unwrap();
    buf[..n].to_vec()
}

async fn nothing_arrives(sock: &UdpSocket) {
    let mut buf = [0u8; 2048];
    let got = timeout(Duration::from_millis(100), sock.recv_from(&mut buf)).await;
    assert!(got.is_err(), "unexpected packet");
}

fn start(
    ports: &PortAllocator,
    engine: MediaEngine,
    mut config: SessionConfig,
) -> (MediaSession, mpsc::Receiver<MediaEvent>) {
    config.engine = Some(engine);
    let inside = ports.allocate(LOCAL).unwrap();
    let outside = ports.allocate(LOCAL).unwrap();
    MediaSession::start(inside, outside, config).unwrap()
}

fn config(timeout: Option<Duration>, tap: Option<TapSender>) -> SessionConfig {
    SessionConfig {
        timeout,
        one_way_after: Duration::from_secs(30),
        tap,
        counters: None,
        engine: None,
    }
}

/// A test's sessions on `engine`, on its port range `[first, last]` (moved up for io_uring, so
/// that both runs of a test never share a port).
fn engine_ports(engine: MediaEngine, [first, last]: [u16; 2]) -> PortAllocator {
    let shift = match engine {
        MediaEngine::Epoll => 0,
        MediaEngine::IoUring => ENGINE_PORT_SHIFT,
    };
    PortAllocator::new([first + shift, last + shift]).unwrap()
}

/// Where the io_uring runs' port ranges start above the epoll runs' (31000–31179).
pub(super) const ENGINE_PORT_SHIFT: u16 = 1000;

/// Runs each named `async fn(MediaEngine)` as two tests, `NAME::epoll` and `NAME::io_uring`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn epoll() {
                super::$name(super::MediaEngine::Epoll).await
            }

            #[tokio::test]
            async fn io_uring() {
                super::$name(super::MediaEngine::IoUring).await
            }
        }
    )*};
}
pub(super) use on_both_engines;

on_both_engines!(
    relays_latches_drops_strays_counts_loss_and_reports_dtmf,
    media_timeout_fires_and_hold_suspends_it,
    timeout_off_until_armed_and_old_style_hold,
    reinvite_moves_the_peer_and_one_way_audio_is_flagged,
    live_snapshot_and_gateway_counters_follow_the_packets,
    a_closing_session_reads_what_its_sockets_still_hold,
);

fn dtmf(seq: u16, ts: u32, digit: u8, end: bool, duration: u16) -> Vec<u8> {
    let d = duration.to_be_bytes();
    let flags = if end { 0x8a } else { 0x0a };
    packet(101, seq, ts, 0x5151, &[digit, flags, d[0], d[1]])
}

async fn relays_latches_drops_strays_counts_loss_and_reports_dtmf(engine: MediaEngine) {
    let ports = engine_ports(engine, [31000, 31019]);
    let (tap_tx, mut tap_rx) = mpsc::channel(4096);
    let (session, mut events) = start(&ports, engine, config(None, Some(tap_tx.into())));
    assert_eq!(ports.in_use(), 2);
    let (inside, outside) = (session.anchor(Leg::Inside), session.anchor(Leg::Outside));

    let (pbx, pbx_rtcp, carrier, carrier_rtcp, stray) = (
        socket().await,
        socket().await,
        socket().await,
        socket().await,
        socket().await,
    );
    // The PBX is behind NAT: its SDP names a port it does not send from.
    let pbx_sdp: SocketAddr = (LOCAL, 9).into();
    let mut pbx_remote = RemoteMedia::new(pbx_sdp, Direction::SendRecv);
    pbx_remote.telephone_event = Some(101);
    session.update_remote(Leg::Inside, pbx_remote);
    let mut carrier_remote = RemoteMedia::new(carrier.local_addr().unwrap(), Direction::SendRecv);
    carrier_remote.rtcp = Some(carrier_rtcp.local_addr().unwrap());
    session.update_remote(Leg::Outside, carrier_remote);

    let lost = [17u16, 18, 100, 201, 250];
    let mut pbx_sent = 0u64;
    for i in 0..300u16 {
        // PBX → carrier, with gaps in its sequence (lost upstream).
        if !lost.contains(&i) {
            let p = packet(0, 1000 + i, 160 * u32::from(i), 0xa1, &[0xff; 160]);
            pbx.send_to(&p, to(inside)).await.unwrap();
            pbx_sent += 1;
            assert_eq!(
                recv(&carrier).await,
                p,
                "PBX packet {i} reaches the carrier as is"
            );
        }
        // Carrier → PBX: reaches the PBX's real (latched) address, not its SDP one. Its
        // sequence numbers wrap past 65535 on the way.
        let p = packet(
            8,
            65_400u16.wrapping_add(i),
            160 * u32::from(i),
            0xc2,
            &[0xd5; 160],
        );
        carrier.send_to(&p, to(outside)).await.unwrap();
        assert_eq!(recv(&pbx).await, p, "carrier packet {i} reaches the PBX");

        if i == 50 {
            // Someone else sends to the PBX-facing port: dropped, never reaches the carrier.
            for k in 0..20u16 {
                let bad = packet(0, k, 0, 0x666, b"injected");
                stray.send_to(&bad, to(inside)).await.unwrap();
            }
            nothing_arrives(&carrier).await;
        }
        if i == 120 {
            // The agent presses 7: start packets, then the end packet three times.
            let ts = 160 * u32::from(i);
            for (k, (end, duration)) in [
                (false, 160),
                (false, 320),
                (true, 480),
                (true, 480),
                (true, 480),
            ]
            .into_iter()
            .enumerate()
            {
                let p = dtmf(5000 + k as u16, ts, 7, end, duration);
                pbx.send_to(&p, to(inside)).await.unwrap();
                assert_eq!(recv(&carrier).await, p, "telephone-event relayed as is");
            }
        }
    }
    // RTCP both ways, latched the same way.
    let sr = [
        0x80, 200, 0, 6, 0, 0, 0, 0xa1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0,
        0, 0, 0,
    ];
    pbx_rtcp.send_to(&sr, to_rtcp(inside)).await.unwrap();
    assert_eq!(recv(&carrier_rtcp).await, sr);
    carrier_rtcp.send_to(&sr, to_rtcp(outside)).await.unwrap();
    assert_eq!(recv(&pbx_rtcp).await, sr);

    let event = timeout(WAIT, events.recv()).await.unwrap().unwrap();
    match event {
        MediaEvent::Dtmf {
            leg,
            digit,
            duration_ms,
            ..
        } => {
            assert_eq!((leg, digit, duration_ms), (Leg::Inside, '7', 60));
        }
        other => panic!("unexpected event {other:?}"),
    }

    let stats = session.close().await;
    assert_eq!(ports.in_use(), 0, "ports back in the pool after close");
    assert!(events.try_recv().is_err(), "one DTMF report only");

    let inside_in = stats.inside.rtp_in;
    assert_eq!(inside_in.packets, pbx_sent + 5);
    assert_eq!(inside_in.lost, 5);
    assert_eq!(inside_in.expected, 300 + 5);
    assert_eq!(stats.inside.stray, 20);
    assert_eq!(stats.inside.latched, Some(pbx.local_addr().unwrap()));
    assert_eq!(stats.inside.dtmf_digits, 1);
    assert_eq!(stats.inside.rtcp_in.packets, 1);
    assert_eq!(stats.outside.rtp_out.packets, pbx_sent + 5);
    assert_eq!(stats.outside.rtp_out.dropped, 0);
    assert_eq!(stats.outside.rtcp_out.packets, 1);

    let outside_in = stats.outside.rtp_in;
    assert_eq!(
        (outside_in.packets, outside_in.lost, outside_in.expected),
        (300, 0, 300)
    );
    assert_eq!(stats.outside.stray, 0);
    assert_eq!(stats.outside.latched, Some(carrier.local_addr().unwrap()));
    assert_eq!(stats.inside.rtp_out.packets, 300);
    assert_eq!(stats.inside.rtcp_out.packets, 1);
    assert!(
        stats.inside.mos.unwrap() < stats.outside.mos.unwrap(),
        "loss lowers the MOS"
    );
    assert!(!stats.timed_out && stats.one_way_audio.is_none());

    // The tap saw every RTP packet that crossed, with its leg, and no stray.
    let mut tapped = [0u64; 2];
    while let Ok(p) = tap_rx.try_recv() {
        assert_ne!(p.header.ssrc, 0x666);
        tapped[p.leg.index()] += 1;
    }
    assert_eq!(tapped, [pbx_sent + 5, 300]);
    assert_eq!(stats.inside.tap_dropped + stats.outside.tap_dropped, 0);
}

async fn media_timeout_fires_and_hold_suspends_it(engine: MediaEngine) {
    let ports = engine_ports(engine, [31020, 31039]);
    let limit = Duration::from_millis(300);
    let (session, mut events) = start(&ports, engine, config(Some(limit), None));
    let (pbx, carrier) = (socket().await, socket().await);
    let pbx_media = RemoteMedia::new(pbx.local_addr().unwrap(), Direction::SendRecv);
    session.update_remote(Leg::Inside, pbx_media);
    session.update_remote(
        Leg::Outside,
        RemoteMedia::new(carrier.local_addr().unwrap(), Direction::SendRecv),
    );

    // Hold (the PBX's re-INVITE says sendonly) before any RTP: 3 × the timeout, no event.
    session.update_remote(
        Leg::Inside,
        RemoteMedia {
            direction: Direction::SendOnly,
            ..pbx_media
        },
    );
    assert!(
        timeout(limit * 3, events.recv()).await.is_err(),
        "hold suspends the timeout"
    );

    // Resume, talk a little, then both sides go silent.
    session.update_remote(Leg::Inside, pbx_media);
    for i in 0..10u16 {
        let p = packet(0, i, 160 * u32::from(i), 1, &[0xff; 160]);
        pbx.send_to(&p, to(session.anchor(Leg::Inside)))
            .await
            .unwrap();
        recv(&carrier).await;
    }
    let silent_since = Instant::now();
    let event = timeout(WAIT, events.recv()).await.unwrap().unwrap();
    let waited = silent_since.elapsed();
    let MediaEvent::Timeout { idle } = event else {
        panic!("expected a timeout, got {event:?}");
    };
    assert!(
        idle >= limit && waited >= limit - Duration::from_millis(20),
        "{idle:?} {waited:?}"
    );
    // A tick is a quarter of the limit; the margin is for loaded CI machines.
    assert!(
        waited < limit + Duration::from_millis(500),
        "fires soon after: {waited:?}"
    );

    let stats = session.close().await;
    assert!(stats.timed_out);
    assert_eq!(ports.in_use(), 0);
    assert!(
        events.recv().await.is_none(),
        "event channel ends with the session"
    );
}

async fn timeout_off_until_armed_and_old_style_hold(engine: MediaEngine) {
    let ports = engine_ports(engine, [31040, 31059]);
    let (session, mut events) = start(&ports, engine, config(None, None));
    let carrier = socket().await;
    let carrier_media = RemoteMedia::new(carrier.local_addr().unwrap(), Direction::SendRecv);
    session.update_remote(Leg::Outside, carrier_media);
    assert!(
        timeout(Duration::from_millis(400), events.recv())
            .await
            .is_err(),
        "ringing: off"
    );

    // Answered: armed. The carrier holds the old way (c=0.0.0.0): suspended, and nothing is
    // sent toward 0.0.0.0.
    let limit = Duration::from_millis(200);
    session.set_timeout(Some(limit));
    let held: SocketAddr = (Ipv4Addr::UNSPECIFIED, carrier_media.rtp.port()).into();
    session.update_remote(Leg::Outside, RemoteMedia::new(held, Direction::SendRecv));
    assert!(timeout(limit * 3, events.recv()).await.is_err());
    session.update_remote(Leg::Outside, carrier_media);
    assert!(matches!(
        timeout(WAIT, events.recv()).await.unwrap(),
        Some(MediaEvent::Timeout { .. })
    ));
    drop(session);
    // Dropping the session stops its tasks and frees its ports, without close().
    assert!(timeout(WAIT, events.recv()).await.unwrap().is_none());
    let deadline = Instant::now() + WAIT;
    while ports.in_use() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ports.in_use(), 0);
}

async fn reinvite_moves_the_peer_and_one_way_audio_is_flagged(engine: MediaEngine) {
    let ports = engine_ports(engine, [31060, 31079]);
    let mut cfg = config(None, None);
    cfg.one_way_after = Duration::from_millis(300);
    let (session, mut events) = start(&ports, engine, cfg);
    let (pbx, carrier_a, carrier_b) = (socket().await, socket().await, socket().await);
    session.update_remote(
        Leg::Inside,
        RemoteMedia::new(pbx.local_addr().unwrap(), Direction::SendRecv),
    );
    session.update_remote(
        Leg::Outside,
        RemoteMedia::new(carrier_a.local_addr().unwrap(), Direction::SendRecv),
    );
    let (inside, outside) = (session.anchor(Leg::Inside), session.anchor(Leg::Outside));

    let p = packet(0, 1, 160, 1, &[1; 160]);
    carrier_a.send_to(&p, to(outside)).await.unwrap();
    assert_eq!(recv(&pbx).await, p);
    // Re-INVITE: the carrier's media moves to another server.
    session.update_remote(
        Leg::Outside,
        RemoteMedia::new(carrier_b.local_addr().unwrap(), Direction::SendRecv),
    );
    pbx.send_to(&p, to(inside)).await.unwrap();
    assert_eq!(
        recv(&carrier_b).await,
        p,
        "sent to the new SDP address at once"
    );
    carrier_b.send_to(&p, to(outside)).await.unwrap();
    assert_eq!(recv(&pbx).await, p);
    carrier_a.send_to(&p, to(outside)).await.unwrap(); // the old server: stray now
    nothing_arrives(&pbx).await;

    // The PBX talks for a second; the carrier never answers: one-way audio.
    let start_at = Instant::now();
    let mut seq = 2u16;
    while start_at.elapsed() < Duration::from_secs(1) {
        pbx.send_to(
            &packet(0, seq, 160 * u32::from(seq), 1, &[1; 160]),
            to(inside),
        )
        .await
        .unwrap();
        seq += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let event = timeout(WAIT, events.recv()).await.unwrap();
    assert_eq!(
        event,
        Some(MediaEvent::OneWayAudio {
            silent: Leg::Outside
        })
    );
    let stats = session.close().await;
    assert_eq!(stats.one_way_audio, Some(Leg::Outside));
    assert_eq!(stats.outside.stray, 1);
    assert_eq!(ports.in_use(), 0);
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let ports = PortAllocator::new([31080, 31099]).unwrap();
    let inside = ports.allocate(LOCAL).unwrap();
    let outside = ports.allocate(LOCAL).unwrap();
    let err = MediaSession::start(inside, outside, config(None, None)).unwrap_err();
    assert!(matches!(err, MediaError::Runtime(_)), "{err}");
    assert_eq!(ports.in_use(), 0);
}

async fn live_snapshot_and_gateway_counters_follow_the_packets(engine: MediaEngine) {
    let ports = engine_ports(engine, [31120, 31139]);
    let counters = std::sync::Arc::new(MediaCounters::default());
    let mut cfg = config(None, None);
    cfg.counters = Some(counters.clone());
    let (session, _events) = start(&ports, engine, cfg);
    let (inside, outside) = (session.anchor(Leg::Inside), session.anchor(Leg::Outside));
    let (pbx, carrier, stray) = (socket().await, socket().await, socket().await);
    let pbx_addr = pbx.local_addr().unwrap();
    session.update_remote(Leg::Inside, RemoteMedia::new(pbx_addr, Direction::SendRecv));
    session.update_remote(
        Leg::Outside,
        RemoteMedia::new(carrier.local_addr().unwrap(), Direction::SendRecv),
    );
    let probe = session.probe();

    // PBX → carrier: sequence 0..10 without 3 and 4 (lost upstream); carrier → PBX: 5.
    let mut from_pbx = 0u64;
    for seq in (0..10u16).filter(|s| ![3, 4].contains(s)) {
        let p = packet(0, seq, 160 * u32::from(seq), 0xa1, &[0xff; 160]);
        pbx.send_to(&p, to(inside)).await.unwrap();
        recv(&carrier).await;
        from_pbx += 1;
    }
    for seq in 0..5u16 {
        let p = packet(8, seq, 160 * u32::from(seq), 0xc2, &[0xd5; 100]);
        carrier.send_to(&p, to(outside)).await.unwrap();
        recv(&pbx).await;
    }
    for k in 0..3u16 {
        let bad = packet(0, k, 0, 0x666, b"injected");
        stray.send_to(&bad, to(inside)).await.unwrap();
    }
    nothing_arrives(&carrier).await;

    let live = probe.snapshot().await.expect("a running session answers");
    let (i, o) = (&live.inside, &live.outside);
    assert_eq!(i.stats.rtp_in.packets, from_pbx);
    assert_eq!(i.stats.rtp_in.lost, 2);
    assert_eq!(i.stats.rtp_in.bytes, from_pbx * (12 + 160));
    assert_eq!(i.stats.stray, 3);
    assert_eq!(i.stats.latched, Some(pbx_addr));
    assert_eq!(i.stats.payload_type, Some(0));
    assert_eq!(i.remote, Some(pbx_addr));
    assert!(i.last_packet_age.is_some());
    assert_eq!(i.stats.rtp_out.packets, 5, "relayed to the PBX");
    assert_eq!(o.stats.rtp_in.packets, 5);
    assert_eq!(o.stats.payload_type, Some(8));
    assert_eq!(o.stats.rtp_out.packets, from_pbx, "relayed to the carrier");

    let t = counters.totals();
    assert_eq!(t.rtp_packets(Leg::Inside), from_pbx);
    assert_eq!(t.rtp_bytes(Leg::Inside), from_pbx * (12 + 160));
    assert_eq!(t.rtp_packets(Leg::Outside), 5);
    assert_eq!(t.dropped(false, DropReason::StraySource), 3);
    assert_eq!(
        t.lost(Leg::Inside),
        0,
        "loss is added when the session ends"
    );

    let stats = session.close().await;
    assert_eq!(stats.inside.rtp_in.lost, 2);
    let t = counters.totals();
    assert_eq!(t.lost(Leg::Inside), 2);
    assert_eq!(t.lost(Leg::Outside), 0);
    assert!(
        probe.snapshot().await.is_none(),
        "a closed session has no live figures"
    );
}

/// Packets that came during the call but were still queued in the session's socket when it
/// closed (its relay thread behind) are read at the close: recorded and counted, not lost with
/// the socket.
async fn a_closing_session_reads_what_its_sockets_still_hold(engine: MediaEngine) {
    let ports = engine_ports(engine, [31160, 31179]);
    let (inside, outside) = (
        ports.allocate(LOCAL).unwrap(),
        ports.allocate(LOCAL).unwrap(),
    );
    let inside_rtp = SocketAddr::new(LOCAL, inside.rtp_port());
    let pbx = socket().await;
    // Queued before the session starts: the epoll thread reads one datagram per socket and
    // round, and the close asked at once finds nearly all of them still in the socket (the
    // io_uring thread's multishot receive may take them all before: there this only checks
    // that none is counted twice).
    const QUEUED: u16 = 200;
    for seq in 0..QUEUED {
        let p = packet(0, seq, 160 * u32::from(seq), 0xa1, &[0xff; 160]);
        pbx.send_to(&p, inside_rtp).await.unwrap();
    }
    let (tap_tx, mut tap_rx) = mpsc::channel(usize::from(QUEUED) * 2);
    let mut cfg = config(None, Some(tap_tx.into()));
    cfg.engine = Some(engine);
    let (session, _events) = MediaSession::start(inside, outside, cfg).unwrap();
    // Usually before the thread has woken to take the session; the packets it reads before
    // the address is known are strays (still read, counted).
    let pbx_media = RemoteMedia::new(pbx.local_addr().unwrap(), Direction::SendRecv);
    session.update_remote(Leg::Inside, pbx_media);
    let stats = session.close().await;
    let inside = &stats.inside;
    assert_eq!(
        inside.rtp_in.packets + inside.stray,
        u64::from(QUEUED),
        "every queued datagram read: {stats:?}"
    );
    assert_eq!(inside.rtp_in.lost, 0);
    let mut tapped = 0u64;
    while tap_rx.try_recv().is_ok() {
        tapped += 1;
    }
    assert_eq!(
        tapped, inside.rtp_in.packets,
        "every packet handed to the recording"
    );
}
