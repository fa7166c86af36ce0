use std::io::Write;

use super::*;

/// The form stored before issue 16, as `SipTrace::encode` wrote it then: gzip (flate2's fast
/// level) of the JSON.
fn gzip_json(trace: &SipTrace) -> Vec<u8> {
    let json = serde_json::to_vec(trace).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json).unwrap();
    gz.finish().unwrap()
}

/// A real trace: an answered call of the SIPp load (`bench/sipp_cps.sh`), 13 messages on both
/// legs.
fn answered_call() -> SipTrace {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/sip-trace/answered-call.json"
    )))
    .unwrap()
}

/// `raw` in an LZ4 frame as the new form frames its payload.
fn lz4_frame(raw: &[u8]) -> Vec<u8> {
    let info = lz4_flex::frame::FrameInfo::new().content_checksum(true);
    let mut frame = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    frame.write_all(raw).unwrap();
    frame.finish().unwrap()
}

/// What is inside an LZ4 frame.
fn unframe(bytes: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    lz4_flex::frame::FrameDecoder::new(bytes)
        .read_to_end(&mut raw)
        .unwrap();
    raw
}

fn message(direction: TraceDirection, text: &str) -> TracedMessage {
    TracedMessage {
        at: DateTime::parse_from_rfc3339("2026-12-06T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc),
        leg: Side::Inside,
        direction,
        local: "127.0.0.1:5060".parse().unwrap(),
        peer: "127.0.0.2:5062".parse().unwrap(),
        transport: TraceTransport::Udp,
        retransmission: direction == TraceDirection::Out,
        message: text.to_string(),
    }
}

fn trace() -> SipTrace {
    SipTrace {
        call_id: "20261206T100000-abc".into(),
        messages: vec![
            message(
                TraceDirection::In,
                "INVITE sip:1@x SIP/2.0\r\nCall-ID: a\r\n\r\n",
            ),
            message(
                TraceDirection::Out,
                "SIP/2.0 100 Trying\r\nCall-ID: a\r\n\r\n",
            ),
        ],
        dropped_messages: 3,
        dropped_bytes: 1200,
    }
}

#[test]
fn json_times_have_microseconds_and_codes_are_lowercase() {
    let v = serde_json::to_value(trace().messages[0].clone()).unwrap();
    assert_eq!(v["at"], "2026-12-06T10:00:00.123456Z");
    assert_eq!(v["leg"], "inside");
    assert_eq!(v["direction"], "in");
    assert_eq!(v["transport"], "udp");
    assert_eq!(v["peer"], "127.0.0.2:5062");
}

#[test]
fn the_text_form_names_each_message_and_the_dropped_ones() {
    let text = trace().to_text();
    assert!(text.starts_with(
        "2026-12-06T10:00:00.123456Z inside 127.0.0.2:5062 -> 127.0.0.1:5060 UDP\nINVITE sip:1@x SIP/2.0\r\nCall-ID: a\n\n"
    ), "{text}");
    assert!(
        text.contains("127.0.0.1:5060 -> 127.0.0.2:5062 UDP (retransmission)\nSIP/2.0 100 Trying")
    );
    assert!(text.ends_with("3 more messages (1200 bytes) not kept: over the per-call cap\n"));
}

fn ipv6_with_scope(ip: &str, port: u16, scope_id: u32) -> SocketAddr {
    std::net::SocketAddrV6::new(ip.parse().unwrap(), port, 0, scope_id).into()
}

/// Every field in its less common values: the outside leg, TCP and TLS, IPv6 with a scope id
/// (a link-local peer), text that was not UTF-8, an empty message, a time with nanoseconds.
fn varied_trace() -> SipTrace {
    let mut t = trace();
    t.messages.push(TracedMessage {
        at: DateTime::parse_from_rfc3339("2026-12-06T10:00:01.987654321Z")
            .unwrap()
            .with_timezone(&Utc),
        leg: Side::Outside,
        direction: TraceDirection::Out,
        local: "[2001:db8::1]:5061".parse().unwrap(),
        peer: ipv6_with_scope("fe80::2", 5062, 3),
        transport: TraceTransport::Tls,
        retransmission: false,
        message: "BYE sip:é@x SIP/2.0\r\nX-Bin: \u{FFFD}\r\n\r\n".into(),
    });
    t.messages.push(TracedMessage {
        leg: Side::Outside,
        transport: TraceTransport::Tcp,
        message: String::new(),
        ..t.messages[0].clone()
    });
    t
}

/// The trace as the JSON gives it back: times to the microsecond.
fn to_micros(mut t: SipTrace) -> SipTrace {
    for m in &mut t.messages {
        m.at = DateTime::from_timestamp_micros(m.at.timestamp_micros()).unwrap();
    }
    t
}

#[test]
fn the_stored_form_is_an_lz4_frame_that_gives_the_same_trace_back() {
    let t = to_micros(varied_trace());
    let bytes = t.encode().unwrap();
    assert_eq!(bytes[..4], binary::MAGIC);
    assert_eq!(SipTrace::decode(&bytes).unwrap(), t);
    // The version byte, then the trace.
    assert_eq!(unframe(&bytes)[0], 1);
}

#[test]
fn a_repetitive_trace_is_stored_compressed() {
    let mut t = trace();
    // A repetitive trace compresses well, as real SIP does.
    for _ in 0..50 {
        t.messages.push(t.messages[0].clone());
    }
    let json = serde_json::to_vec(&t).unwrap();
    let bytes = t.encode().unwrap();
    assert!(
        bytes.len() * 5 < json.len(),
        "{} vs {}",
        bytes.len(),
        json.len()
    );
    assert_eq!(SipTrace::decode(&bytes).unwrap(), t);
}

#[test]
fn traces_encoded_one_after_another_are_the_frames_a_new_encoder_writes() {
    // The thread's encoder is reused (`binary::compress`); each frame must still be what a new
    // encoder makes of the same content, whatever came before it: small, real, over one block
    // (a new encoder of its own), small again, and the first again.
    let mut big = trace();
    while big.messages.len() < 600 {
        let n = big.messages.len();
        let mut m = big.messages[n % 2].clone();
        m.message
            .push_str(&format!("X-Filler: {n} {}\r\n", "ab".repeat(n % 97)));
        big.messages.push(m);
    }
    let traces = [trace(), answered_call(), big, varied_trace(), trace()];
    assert!(unframe(&traces[2].encode().unwrap()).len() > 64 * 1024);
    let mut frames = Vec::new();
    for t in &traces {
        let bytes = t.encode().unwrap();
        assert_eq!(bytes, lz4_frame(&unframe(&bytes)), "{}", t.call_id);
        assert_eq!(SipTrace::decode(&bytes).unwrap(), to_micros(t.clone()));
        frames.push(bytes);
    }
    assert_eq!(frames[0], frames[4]);
}

#[test]
fn a_real_trace_reads_back_from_both_forms_and_is_stored_smaller_than_before() {
    let t = answered_call();
    let (new, old) = (t.encode().unwrap(), gzip_json(&t));
    assert_eq!(SipTrace::decode(&new).unwrap(), t);
    assert_eq!(SipTrace::decode(&old).unwrap(), t);
    assert!(new.len() < old.len(), "{} vs {}", new.len(), old.len());
}

/// What `encode` costs against the form it replaced, on the real trace: prints µs per trace and
/// bytes, asserts nothing (the machine's load decides the figures). Run it optimized:
/// `cargo test --release --lib model::sip_trace::tests::encode_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn encode_cost_against_gzip_json() {
    let t = answered_call();
    type Encode = fn(&SipTrace) -> Vec<u8>;
    let forms: [(&str, Encode); 2] = [
        ("gzip of the JSON (before)", gzip_json),
        ("postcard in an LZ4 frame", |t| t.encode().unwrap()),
    ];
    let runs = 2000;
    for (name, encode) in forms {
        let mut best = std::time::Duration::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            for _ in 0..runs {
                std::hint::black_box(encode(std::hint::black_box(&t)));
            }
            best = best.min(start.elapsed());
        }
        let micros = best.as_secs_f64() * 1e6 / f64::from(runs);
        eprintln!("{name}: {micros:.2} µs, {} bytes", encode(&t).len());
    }
}

#[test]
fn both_forms_keep_microseconds_as_the_json_did() {
    let t = varied_trace();
    let new = SipTrace::decode(&t.encode().unwrap()).unwrap();
    let old = SipTrace::decode(&gzip_json(&t)).unwrap();
    assert_eq!(new, old);
    assert_eq!(
        new.messages[2]
            .at
            .to_rfc3339_opts(SecondsFormat::Nanos, true),
        "2026-12-06T10:00:01.987654000Z"
    );
    assert_eq!(new.messages[2].peer.to_string(), "[fe80::2%3]:5062");
}

#[test]
fn a_trace_stored_as_gzip_json_before_still_reads_the_same() {
    let t = to_micros(varied_trace());
    let old = gzip_json(&t);
    assert_eq!(old[..2], GZIP_MAGIC);
    assert_eq!(SipTrace::decode(&old).unwrap(), t);
}

/// The layout rows are stored in, byte for byte: a change to the private mirror or to the order
/// of `Side`'s, `TraceDirection`'s or `TraceTransport`'s variants would make rows already stored
/// read as something else. A new layout takes a new version byte instead.
#[test]
fn the_version_1_layout_does_not_change() {
    let t = SipTrace {
        call_id: "c".into(),
        messages: vec![TracedMessage {
            at: DateTime::from_timestamp_micros(1).unwrap(),
            leg: Side::Outside,
            direction: TraceDirection::Out,
            local: "1.2.3.4:5060".parse().unwrap(),
            peer: ipv6_with_scope("::1", 5061, 7),
            transport: TraceTransport::Tls,
            retransmission: true,
            message: "OK".into(),
        }],
        dropped_messages: 2,
        dropped_bytes: 300,
    };
    let raw = unframe(&t.encode().unwrap());
    let expected: &[u8] = &[
        1, // version
        1, b'c', // call_id
        1,    // one message
        2,    // at: 1 µs, zigzag varint
        1,    // leg: outside
        1,    // direction: out
        0, 1, 2, 3, 4, 0xc4, 0x27, // local: V4, 1.2.3.4, port 5060
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xc5, 0x27, 0, 7, // peer: V6 ::1
        2, // transport: tls
        1, // retransmission
        2, b'O', b'K', // message
        2,    // dropped_messages
        0xac, 0x02, // dropped_bytes: 300
    ];
    assert_eq!(raw, expected);
    assert_eq!(SipTrace::decode(&lz4_frame(expected)).unwrap(), t);
}

#[test]
fn decompressing_past_the_limit_is_refused_in_both_forms() {
    let limit = 64 * 1024;
    let big = vec![0u8; limit as usize + 1];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&big).unwrap();
    for bytes in [lz4_frame(&big), gz.finish().unwrap()] {
        let err = decode_within(&bytes, limit).unwrap_err().to_string();
        assert!(err.contains("more than 65536 bytes"), "{err}");
    }
    // At the limit itself, a trace still reads.
    let t = trace();
    let bytes = t.encode().unwrap();
    let size = unframe(&bytes).len() as u64;
    assert_eq!(decode_within(&bytes, size).unwrap(), t);
    assert!(decode_within(&bytes, size - 1).is_err());
}

#[test]
fn a_frame_claiming_a_huge_content_size_is_refused_without_taking_it() {
    let raw = unframe(&trace().encode().unwrap());
    let info = lz4_flex::frame::FrameInfo::new().content_size(Some(1 << 60));
    let mut frame = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    frame.write_all(&raw).unwrap();
    // The encoder checks the size it was given at the end and writes no end mark...
    assert!(frame.try_finish().is_err());
    let mut bytes = frame.into_inner();
    // ...so the frame ends here as a hostile one would: header, the real block, end mark.
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    let err = SipTrace::decode(&bytes).unwrap_err().to_string();
    assert!(err.contains("ContentLengthError"), "{err}");
}

#[test]
fn decode_refuses_what_is_not_a_trace() {
    let raw = unframe(&trace().encode().unwrap());
    let mut version_2 = raw.clone();
    version_2[0] = 2;
    let mut trailing = raw.clone();
    trailing.push(0);
    let cases: [(&str, Vec<u8>); 7] = [
        ("not gzip", b"not gzip".to_vec()),
        ("empty", Vec::new()),
        (
            "LZ4 magic, then garbage",
            [&binary::MAGIC[..], b"garbage"].concat(),
        ),
        (
            "gzip magic, then garbage",
            [&GZIP_MAGIC[..], b"garbage"].concat(),
        ),
        ("an unknown layout version", lz4_frame(&version_2)),
        ("bytes after the trace", lz4_frame(&trailing)),
        (
            "a frame of JSON",
            lz4_frame(&serde_json::to_vec(&trace()).unwrap()),
        ),
    ];
    for (what, bytes) in cases {
        assert!(
            matches!(SipTrace::decode(&bytes), Err(SipTraceError::Decode(_))),
            "{what}"
        );
    }
}

/// A row damaged in the database, any one bit flipped or cut short anywhere, is refused or reads
/// as the very trace stored (a flipped match offset may point at the same bytes), never as
/// another. lz4_flex alone would take a frame cut within its end mark and content checksum as
/// whole.
#[test]
fn a_damaged_or_cut_stored_trace_never_reads_as_another() {
    let t = to_micros(varied_trace());
    let good = t.encode().unwrap();
    for at in 0..good.len() {
        for bit in 0..8 {
            let mut damaged = good.clone();
            damaged[at] ^= 1 << bit;
            if let Ok(read) = SipTrace::decode(&damaged) {
                assert_eq!(read, t, "bit {bit} of byte {at} flipped");
            }
        }
        assert!(SipTrace::decode(&good[..at]).is_err(), "cut to {at} bytes");
    }
}
