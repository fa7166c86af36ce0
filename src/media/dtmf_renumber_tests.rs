//! The carrier's view of the agent's stream across DTMF commands: a real `MediaSession`
//! between UDP sockets, the trunk's commands `*7` and `*8`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::newer;
use crate::media::rtp::tests::packet;
use crate::media::{
    Direction, DtmfCommand, DtmfCommands, Leg, MediaEngine, MediaEvent, MediaSession,
    PortAllocator, RemoteMedia, SessionConfig,
};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SSRC: u32 = 0x7777;

/// What the PBX sends, in order: audio packets and RFC 4733 events sharing one sequence.
struct Pbx {
    seq: u16,
    ts: u32,
    sent: Vec<Vec<u8>>,
}

impl Pbx {
    fn audio(&mut self, n: usize) {
        for _ in 0..n {
            let p = packet(0, self.seq, self.ts, SSRC, &[0x55; 160]);
            self.sent.push(p);
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(160);
        }
    }

    /// Two updates, then the end packet three times under one sequence number (RFC 4733
    /// §2.5.1.4 lets a sender repeat it so).
    fn event(&mut self, code: u8) {
        let ts = self.ts;
        for (i, end) in [false, false, true].into_iter().enumerate() {
            let d = (160 * (i as u16 + 1)).to_be_bytes();
            let flags = if end { 0x8a } else { 0x0a };
            let p = packet(101, self.seq, ts, SSRC, &[code, flags, d[0], d[1]]);
            let copies = if end { 3 } else { 1 };
            for _ in 0..copies {
                self.sent.push(p.clone());
            }
            self.seq = self.seq.wrapping_add(1);
        }
        self.ts = self.ts.wrapping_add(480);
    }
}

fn seq_of(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[2], p[3]])
}

fn event_code(p: &[u8]) -> Option<u8> {
    (p[1] & 0x7f == 101).then_some(p[12])
}

crate::media::relay_tests::on_both_engines!(
    withheld_commands_leave_no_gap_in_the_sequence_the_carrier_sees
);

async fn withheld_commands_leave_no_gap_in_the_sequence_the_carrier_sees(engine: MediaEngine) {
    let shift = match engine {
        MediaEngine::Epoll => 0,
        MediaEngine::IoUring => crate::media::relay_tests::ENGINE_PORT_SHIFT,
    };
    let ports = PortAllocator::new([31140 + shift, 31159 + shift]).unwrap();
    let config = SessionConfig {
        timeout: None,
        one_way_after: Duration::from_secs(30),
        tap: None,
        counters: None,
        engine: Some(engine),
    };
    let (session, mut events) = MediaSession::start(
        ports.allocate(LOCAL).unwrap(),
        ports.allocate(LOCAL).unwrap(),
        config,
    )
    .unwrap();
    session.set_dtmf_commands(DtmfCommands::new(Some("*7"), Some("*8")));
    let pbx = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let carrier = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let mut pbx_media = RemoteMedia::new(pbx.local_addr().unwrap(), Direction::SendRecv);
    pbx_media.telephone_event = Some(101);
    session.update_remote(Leg::Inside, pbx_media);
    session.update_remote(
        Leg::Outside,
        RemoteMedia::new(carrier.local_addr().unwrap(), Direction::SendRecv),
    );
    let inside = session.anchor(Leg::Inside);
    let to = SocketAddr::new(inside.address, inside.rtp_port);

    // Across the sequence number's wrap: audio; *7 with audio while the * is held; audio;
    // a * that begins no command (released by the 1) with audio while it is held; *8.
    let mut p = Pbx {
        seq: 65_525,
        ts: 1000,
        sent: Vec::new(),
    };
    p.audio(5);
    p.event(10);
    p.audio(3);
    p.event(7);
    p.audio(5);
    p.event(10);
    p.audio(2);
    p.event(1);
    p.audio(4);
    p.event(10);
    p.event(8);
    p.audio(3);
    for datagram in &p.sent {
        pbx.send_to(datagram, to).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(r) =
        tokio::time::timeout(Duration::from_millis(300), carrier.recv_from(&mut buf)).await
    {
        got.push(buf[..r.unwrap().0].to_vec());
    }

    let commands: Vec<DtmfCommand> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|e| match e {
            MediaEvent::DtmfCommand { command, .. } => Some(command),
            _ => None,
        })
        .collect();
    assert_eq!(
        commands,
        [DtmfCommand::PauseRecording, DtmfCommand::ResumeRecording]
    );
    // Relayed: the audio, the * released and the 1, each end packet three times; not the
    // commands.
    let codes: Vec<u8> = got.iter().filter_map(|p| event_code(p)).collect();
    assert_eq!(codes, [10, 10, 10, 10, 10, 1, 1, 1, 1, 1], "{codes:?}");
    let audio = got.iter().filter(|p| event_code(p).is_none()).count();
    assert_eq!(audio, 22);
    // Every payload as sent.
    for g in &got {
        assert!(
            p.sent
                .iter()
                .any(|s| s[12..] == g[12..] && s[4..12] == g[4..12]),
            "{g:?}"
        );
    }

    // The numbers the carrier saw: from the first one sent, each next one once (the end
    // packets' copies repeat theirs), none skipped: what it counts as lost is nothing.
    let first = seq_of(&p.sent[0]);
    let mut seen: Vec<u16> = got.iter().map(|g| seq_of(g)).collect();
    seen.sort_by_key(|s| s.wrapping_sub(first));
    seen.dedup();
    let expected: Vec<u16> = (0..seen.len() as u16)
        .map(|i| first.wrapping_add(i))
        .collect();
    assert_eq!(seen, expected, "gapless from {first}");
    // 22 audio packets and two events of 3 numbers each.
    assert_eq!(seen.len(), 22 + 6);
    // Audio keeps its order under its new numbers.
    let audio_seqs: Vec<u16> = got
        .iter()
        .filter(|g| event_code(g).is_none())
        .map(|g| seq_of(g))
        .collect();
    assert!(
        audio_seqs.windows(2).all(|w| newer(w[1], w[0])),
        "{audio_seqs:?}"
    );

    let stats = session.close().await;
    assert_eq!(
        stats.inside.dtmf_withheld,
        2 * (5 + 5),
        "two events of five packets each"
    );
    assert_eq!(stats.inside.rtp_in.lost, 0);
}
