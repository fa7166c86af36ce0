//! Recording end to end, by codec: real calls through the gateway with real RTP, then the
//! recording file and the CDR read back. G.722 (a 16 kHz file), and the pcap fallback for a
//! codec the recorder cannot decode. After every test the gateway's ports, leases, recordings
//! and open files are back to where they were before the call (`Idle`; one test at a time).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::recording::*;
use common::*;
use trunkguard::model::RecordingStatus;

// ---------------------------------------------------------------------------------------------
// G.722

fn g722_fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/g722")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn a_g722_call_is_recorded_wideband_with_each_side_on_its_channel() {
    let _serial = SERIAL.lock().await;
    let (mut h, _keep) = start_keeping(&[]).await;
    let idle = Idle::now(&h);
    let agent = g722_fixture("tone440hz.g722");
    let customer = g722_fixture("tone5000hz.g722");
    // 160 bytes = 20 ms at 64 kbit/s; the RTP clock of G.722 is 8 kHz (RFC 3551).
    let packets = |signal: &[u8], ssrc: u32| -> Vec<Vec<u8>> {
        signal
            .chunks_exact(160)
            .enumerate()
            .map(|(i, c)| rtp_packet(9, i as u16, i as u32 * 160, ssrc, c))
            .collect()
    };
    let (to_carrier, to_pbx) = (packets(&agent, 0x1111), packets(&customer, 0x2222));
    assert_eq!(to_carrier.len(), 100, "two seconds of G.722");

    let sdp_of = |a: SocketAddr| sdp_codec(a, 9, "G722/8000");
    let mut m = establish(&mut h, &sdp_of).await;
    let ok_sdp = &m.call.c_invite.body;
    assert!(ok_sdp.contains("a=rtpmap:9 G722/8000"), "{ok_sdp}");
    talk(
        &m.pbx,
        &m.carrier,
        to_carrier.len(),
        |i| Some(to_carrier[i].clone()),
        |i| Some(to_pbx[i].clone()),
    )
    .await;
    h.hang_up_from_pbx(&mut m.call.pbx).await;
    // The relay changes nothing in G.722 packets.
    assert_eq!(m.carrier.received().await, to_carrier, "agent → customer");
    assert_eq!(m.pbx.received().await, to_pbx, "customer → agent");
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    let rec = recording(cdr);
    assert_eq!(rec.status, RecordingStatus::Complete, "{rec:#?}");
    assert_eq!(rec.codec.as_deref(), Some("G722"), "{rec:#?}");
    assert_eq!(rec.pcap_path, None, "G.722 is decoded, no pcap: {rec:#?}");
    assert_digest(rec);
    let wav = Wav::read(rec.path.as_deref().expect("path"));
    assert_eq!(
        (wav.channels, wav.rate, wav.bits),
        (2, 16_000, 16),
        "stereo 16-bit at 16 kHz"
    );
    let talk = cdr.outcome.talk_ms as f64 / 1000.0;
    assert!(
        (wav.secs() - talk).abs() < 0.3,
        "file {:.2} s vs talk {talk:.2} s",
        wav.secs()
    );
    assert_duration_is_the_files(rec, &wav);
    // Each channel carries its own side's tone, and only that one.
    let (left, right) = (&wav.left[..], &wav.right[..]);
    assert!(
        dominant(left, 16_000, 440.0, 5000.0),
        "left = agent (440 Hz)"
    );
    assert!(
        dominant(right, 16_000, 5000.0, 440.0),
        "right = customer (5 kHz: wideband kept)"
    );
    // Decoded at the level it was sent (the fixtures are sines at 1/8 of full scale: RMS
    // 4096/√2), where the tones play (the middle of the call).
    let mid = |ch: &[i16]| rms(Wav::span(ch, 16_000, talk / 2.0 - 0.5, talk / 2.0 + 0.5)) / 2896.0;
    for (name, ch) in [("left", left), ("right", right)] {
        let level = mid(ch);
        assert!(
            (0.6..1.4).contains(&level),
            "{name}: decoded level {level:.2} of the sent one"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// pcap fallback

#[tokio::test]
async fn an_undecodable_codec_keeps_the_raw_rtp_of_both_legs_in_a_pcap() {
    let _serial = SERIAL.lock().await;
    let (mut h, _keep) = start_keeping(&[]).await;
    let idle = Idle::now(&h);
    let n = 50;
    let g729 = |leg: u8, ssrc: u32| -> Vec<Vec<u8>> {
        (0..n as u16)
            .map(|s| rtp_packet(18, s, u32::from(s) * 160, ssrc, &g729_payload(leg, s)))
            .collect()
    };
    let (to_carrier, to_pbx) = (g729(1, 0x1111), g729(2, 0x2222));
    let sdp_of = |a: SocketAddr| sdp_codec(a, 18, "G729/8000");
    let mut m = establish(&mut h, &sdp_of).await;
    talk(
        &m.pbx,
        &m.carrier,
        n,
        |i| Some(to_carrier[i].clone()),
        |i| Some(to_pbx[i].clone()),
    )
    .await;
    h.hang_up_from_pbx(&mut m.call.pbx).await;
    assert_eq!(m.carrier.received().await, to_carrier, "relayed as is");
    assert_eq!(m.pbx.received().await, to_pbx, "relayed as is");
    drop(m);
    idle.assert_back(&h).await;
    let cdrs = h.finish().await;
    let rec = recording(only(&cdrs));
    assert_eq!(rec.codec.as_deref(), Some("G729"), "{rec:#?}");
    let note = rec.note.as_deref().unwrap_or_default();
    assert!(
        note.contains(&format!("{} packets of an undecodable codec", 2 * n)),
        "the CDR says the audio is in the pcap: {rec:#?}"
    );
    let wav_path = rec.path.as_deref().expect("the WAV is there (silent)");
    assert_digest(rec);
    let pcap = rec.pcap_path.as_deref().expect("pcap on the CDR");
    assert_eq!(
        Path::new(pcap),
        Path::new(wav_path).with_extension("pcap"),
        "the pcap sits beside the WAV"
    );
    assert!(!Path::new(&format!("{pcap}.part")).exists(), "pcap closed");
    let wav = Wav::read(wav_path);
    assert!(
        wav.left.iter().chain(&wav.right).all(|&s| s == 0),
        "nothing decodable: the WAV is silence"
    );
    // The pcap holds every packet of both legs, as sent.
    let records = read_pcap(pcap);
    assert_eq!(records.len(), 2 * n, "both legs, every packet");
    // Inside (the agent) and outside (the customer) have their own source address.
    let inside = [192, 0, 2, 1];
    let agent: Vec<Vec<u8>> = records
        .iter()
        .filter(|(src, _)| *src == inside)
        .map(|(_, rtp)| rtp.clone())
        .collect();
    let customer: Vec<Vec<u8>> = records
        .iter()
        .filter(|(src, _)| *src != inside)
        .map(|(_, rtp)| rtp.clone())
        .collect();
    assert_eq!(agent, to_carrier, "the agent's RTP, byte for byte");
    assert_eq!(customer, to_pbx, "the customer's RTP, byte for byte");
    // The pcap is the evidence here: its digest is on the CDR, and a changed byte shows.
    let digest = rec
        .pcap_sha256
        .as_deref()
        .expect("the pcap's digest on the CDR");
    let verify = |p: &str| trunkguard::recording::digest::verify(Path::new(p), digest);
    assert!(verify(pcap).expect("readable"), "{rec:#?}");
    let mut bytes = std::fs::read(pcap).expect("read the pcap");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(pcap, &bytes).expect("tamper with the pcap");
    assert!(
        !verify(pcap).expect("readable"),
        "a tampered pcap does not verify"
    );
}
