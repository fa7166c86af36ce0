use super::*;

fn peer(port: u16) -> Peer {
    Peer {
        addr: SocketAddr::from(([127, 0, 0, 2], port)),
        proto: Proto::Udp,
    }
}

fn crossed(side: Side, direction: TraceDirection, bytes: &[u8]) -> Crossed<'_> {
    Crossed {
        side,
        direction,
        local: SocketAddr::from(([127, 0, 0, 1], 5060)),
        peer: peer(5062),
        bytes,
    }
}

fn msg(first: &str, call_id: &str) -> Vec<u8> {
    format!("{first}\r\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK1\r\nCall-ID: {call_id}\r\nContent-Length: 0\r\n\r\n")
        .into_bytes()
}

fn traces(limits: TraceLimits) -> (SipTraces, mpsc::Receiver<SipTrace>) {
    let (tx, rx) = mpsc::channel(8);
    (SipTraces::new(limits, tx), rx)
}

#[test]
fn call_id_is_found_long_or_compact_in_any_case() {
    assert_eq!(
        call_id_of(&msg("INVITE sip:1@x SIP/2.0", "abc@h")),
        Some("abc@h")
    );
    assert_eq!(call_id_of(b"SIP/2.0 200 OK\r\ni:  x1 \r\n\r\n"), Some("x1"));
    assert_eq!(
        call_id_of(b"SIP/2.0 200 OK\r\nCALL-id:y\r\n\r\n"),
        Some("y")
    );
    // Only the header section counts.
    assert_eq!(
        call_id_of(b"SIP/2.0 200 OK\r\nTo: a\r\n\r\nCall-ID: body"),
        None
    );
    assert_eq!(call_id_of(b"garbage"), None);
}

#[test]
fn both_legs_of_a_call_land_in_one_trace_in_order_with_retransmissions_marked() {
    let (t, mut rx) = traces(TraceLimits::default());
    let invite = msg("INVITE sip:1@x SIP/2.0", "a-leg");
    assert!(t.begin(crossed(Side::Inside, TraceDirection::In, &invite), "a-leg"));
    // A retransmission of the INVITE finds the capture: recorded, not begun again.
    assert!(!t.begin(crossed(Side::Inside, TraceDirection::In, &invite), "a-leg"));
    t.record(crossed(Side::Inside, TraceDirection::In, &invite));
    t.claim(Side::Inside, "a-leg", "call-1");
    t.join(Side::Inside, "a-leg", Side::Outside, "b-leg");
    let b_invite = msg("INVITE sip:1@carrier SIP/2.0", "b-leg");
    t.record(crossed(Side::Outside, TraceDirection::Out, &b_invite));
    t.record(crossed(Side::Outside, TraceDirection::Out, &b_invite));
    // Another call's message is not taken.
    t.record(crossed(
        Side::Outside,
        TraceDirection::In,
        &msg("SIP/2.0 200 OK", "other"),
    ));
    // Same Call-ID, other side: a different leg, not this call.
    t.record(crossed(
        Side::Outside,
        TraceDirection::In,
        &msg("SIP/2.0 200 OK", "a-leg"),
    ));
    assert_eq!(t.live(), 1);
    t.finish(
        "call-1",
        &[
            (Side::Inside, Some("a-leg")),
            (Side::Outside, Some("b-leg")),
        ],
    );
    // Lingering: still taking the call's messages.
    t.sweep(Some(Instant::now()));
    assert!(rx.try_recv().is_err());
    t.record(crossed(
        Side::Inside,
        TraceDirection::In,
        &msg("ACK sip:1@x SIP/2.0", "a-leg"),
    ));
    t.sweep(None);
    let trace = rx.try_recv().unwrap();
    assert_eq!(trace.call_id, "call-1");
    let lines: Vec<_> = trace
        .messages
        .iter()
        .map(|m| {
            (
                m.leg,
                m.direction,
                m.first_line().to_string(),
                m.retransmission,
            )
        })
        .collect();
    use TraceDirection::{In, Out};
    assert_eq!(
        lines,
        vec![
            (
                Side::Inside,
                In,
                "INVITE sip:1@x SIP/2.0".to_string(),
                false
            ),
            (Side::Inside, In, "INVITE sip:1@x SIP/2.0".to_string(), true),
            (
                Side::Outside,
                Out,
                "INVITE sip:1@carrier SIP/2.0".to_string(),
                false
            ),
            (
                Side::Outside,
                Out,
                "INVITE sip:1@carrier SIP/2.0".to_string(),
                true
            ),
            (Side::Inside, In, "ACK sip:1@x SIP/2.0".to_string(), false),
        ]
    );
    assert_eq!(trace.messages[0].message.as_bytes(), &invite[..]);
    assert_eq!(t.live(), 0);
    // Gone from the map: later messages of those Call-IDs are not kept anywhere.
    t.record(crossed(Side::Inside, TraceDirection::In, &invite));
    assert_eq!(t.counters().handed, 1);
}

#[test]
fn a_capture_keeps_at_most_its_cap_and_counts_the_rest() {
    let (t, mut rx) = traces(TraceLimits {
        max_messages: 3,
        max_bytes: 100_000,
    });
    let invite = msg("INVITE sip:1@x SIP/2.0", "c");
    t.begin(crossed(Side::Inside, TraceDirection::In, &invite), "c");
    t.claim(Side::Inside, "c", "id");
    for _ in 0..5 {
        t.record(crossed(Side::Inside, TraceDirection::Out, &invite));
    }
    t.finish("id", &[(Side::Inside, Some("c"))]);
    t.sweep(None);
    let trace = rx.try_recv().unwrap();
    assert_eq!(trace.messages.len(), 3);
    assert_eq!(trace.dropped_messages, 3);
    assert_eq!(trace.dropped_bytes, 3 * invite.len() as u64);

    let (t, mut rx) = traces(TraceLimits {
        max_messages: 100,
        max_bytes: invite.len() * 2,
    });
    t.begin(crossed(Side::Inside, TraceDirection::In, &invite), "c");
    t.claim(Side::Inside, "c", "id");
    for _ in 0..4 {
        t.record(crossed(Side::Inside, TraceDirection::Out, &invite));
    }
    t.finish("id", &[(Side::Inside, Some("c"))]);
    t.sweep(None);
    let trace = rx.try_recv().unwrap();
    assert_eq!(trace.messages.len(), 2);
    assert_eq!(trace.dropped_messages, 3);
}

#[test]
fn a_refused_duplicate_does_not_close_the_live_calls_trace() {
    let (t, mut rx) = traces(TraceLimits::default());
    let invite = msg("INVITE sip:1@x SIP/2.0", "dup");
    t.begin(crossed(Side::Inside, TraceDirection::In, &invite), "dup");
    t.claim(Side::Inside, "dup", "live-call");
    // The second INVITE's attempt: the capture stays the first call's.
    t.claim(Side::Inside, "dup", "refused-call");
    t.finish("refused-call", &[(Side::Inside, Some("dup"))]);
    t.sweep(None);
    assert!(rx.try_recv().is_err());
    assert_eq!(t.live(), 1);
    t.finish("live-call", &[(Side::Inside, Some("dup"))]);
    t.sweep(None);
    assert_eq!(rx.try_recv().unwrap().call_id, "live-call");
}

#[test]
fn an_abandoned_begin_and_a_full_sink_leave_nothing_behind() {
    let (tx, rx) = mpsc::channel(1);
    let t = SipTraces::new(TraceLimits::default(), tx);
    let invite = msg("INVITE sip:1@x SIP/2.0", "x");
    t.begin(crossed(Side::Inside, TraceDirection::In, &invite), "x");
    t.abandon(Side::Inside, "x");
    assert_eq!(t.live(), 0);
    for id in ["1", "2"] {
        t.begin(crossed(Side::Inside, TraceDirection::In, &invite), id);
        t.claim(Side::Inside, id, id);
        t.finish(id, &[(Side::Inside, Some(id))]);
    }
    t.sweep(None);
    assert_eq!(t.live(), 0);
    assert_eq!(
        t.counters(),
        TraceCounters {
            handed: 1,
            lost: 1,
            untraced: 0
        }
    );
    drop(rx);
}

#[test]
fn a_checkpoint_hands_over_the_trace_so_far_and_the_capture_goes_on() {
    let (t, mut rx) = traces(TraceLimits::default());
    let invite = msg("INVITE sip:1@x SIP/2.0", "k");
    t.begin(crossed(Side::Inside, TraceDirection::In, &invite), "k");
    // Not claimed by a call yet: nothing to store under.
    t.checkpoint(Side::Inside, "k");
    assert!(rx.try_recv().is_err());
    t.claim(Side::Inside, "k", "call-k");
    t.record(crossed(
        Side::Inside,
        TraceDirection::Out,
        &msg("SIP/2.0 200 OK", "k"),
    ));
    t.checkpoint(Side::Inside, "k");
    let so_far = rx.try_recv().unwrap();
    assert_eq!(
        (so_far.call_id.as_str(), so_far.messages.len()),
        ("call-k", 2)
    );
    t.record(crossed(
        Side::Inside,
        TraceDirection::In,
        &msg("BYE sip:1@x SIP/2.0", "k"),
    ));
    t.finish("call-k", &[(Side::Inside, Some("k"))]);
    t.sweep(None);
    assert_eq!(rx.try_recv().unwrap().messages.len(), 3);
}

#[test]
fn sdes_keys_are_redacted_suites_kept() {
    let key = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    let msg = format!(
        "INVITE sip:1@x SIP/2.0\r\nCall-ID: k\r\n\r\nv=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|1:4 KDR=0\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:{key}\r\n"
    );
    let out = redact_sdes_keys(&msg);
    assert!(!out.contains(key), "{out}");
    assert!(
        out.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted> KDR=0\r\n"),
        "{out}"
    );
    assert!(
        out.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:<redacted>\r\n"),
        "{out}"
    );
    assert!(matches!(
        redact_sdes_keys("BYE sip:x SIP/2.0\r\n\r\n"),
        std::borrow::Cow::Borrowed(_)
    ));
}

/// The scans before they were made one pass (`call_id_of`) and colon-led (`redact_sdes_keys`):
/// the new ones must answer alike on every input.
mod before {
    pub fn call_id_of(bytes: &[u8]) -> Option<&str> {
        let head_end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(bytes.len());
        for line in bytes[..head_end].split(|b| *b == b'\n') {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let name = line[..colon].trim_ascii();
            if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
                let value = std::str::from_utf8(line[colon + 1..].trim_ascii()).ok()?;
                return (!value.is_empty()).then_some(value);
            }
        }
        None
    }

    pub fn redact_sdes_keys(text: &str) -> String {
        let find = |s: &str| {
            s.as_bytes()
                .windows(7)
                .position(|w| w.eq_ignore_ascii_case(b"inline:"))
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = find(rest) {
            let (head, tail) = rest.split_at(at + 7);
            out.push_str(head);
            out.push_str("<redacted>");
            let end = tail
                .find([' ', '\t', '\r', '\n', ';'])
                .unwrap_or(tail.len());
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }
}

#[test]
fn the_scans_answer_as_before_on_awkward_input() {
    let inputs: &[&[u8]] = &[
        b"",
        b"\r\n\r\nCall-ID: a",
        b"\r\nCall-ID: a\r\n\r\n",
        b"\r\r\n\r\nCall-ID: a",
        b"X: y\n\nCall-ID: bare-lf\n",
        b"X: y\n\r\nCall-ID: lf-then-crlf\r\n",
        b"X: y\r\n\r\nCall-ID: body\r\n",
        b"X: y\r\n\r",
        b"X: y\r\n\rCall-ID: z",
        b"X: y\r\n \r\nCall-ID: after-blank-with-space\r\n",
        b"Call-ID:\r\ni: second\r\n",
        b"call-id : spaced \r\n",
        b"I:x",
        b"Contact: <sip:a>\r\nCSeq: 1 INVITE\r\n \t i : folded\r\nCall-ID: later\r\n",
        b"X: y\r\n:i: no-name\r\nc:not\r\nCall-ID:\tz\t\r\n",
        b"\x0ci: form-feed\r\n",
        b"Call-ID: \xff\xfe\r\n",
        b"Via: a\r\nCall-ID: k\r\n\r\nv=0\r\na=crypto:1 AES inline:KEY|2^31\r\n",
        b"inline:x",
        b"INLINE:",
        b":inline:inline::inline:",
        b"a=crypto:1 X inlin:e inline;x INLINE:y\tz inline:",
        b"nline: inlineinline: \xc3\xa9inline:k",
    ];
    for input in inputs {
        assert_eq!(
            call_id_of(input),
            before::call_id_of(input),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        let text = String::from_utf8_lossy(input);
        let redacted = redact_sdes_keys(&text);
        assert_eq!(redacted, before::redact_sdes_keys(&text), "{text:?}");
        if redacted == text {
            assert!(
                matches!(redacted, std::borrow::Cow::Borrowed(_)),
                "{text:?}"
            );
        }
    }
    assert_eq!(
        redact_sdes_keys("a inline:k1;inline:k2 INLINE:k3\r\n"),
        "a inline:<redacted>;inline:<redacted> INLINE:<redacted>\r\n"
    );
}
