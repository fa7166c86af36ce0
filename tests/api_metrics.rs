//! `/metrics` and the live calls' media figures against the real gateway: calls placed with RTP
//! through it are counted (attempts, SIP responses by class on each side, RTP relayed, dropped
//! and lost, a refusal by reason, the recording), the exposition is valid text, and the live
//! list shows each leg's packets while the call runs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::rtp::*;
use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::UdpSocket;
use trunkguard::api::exposition::{parse, sum, Sample};
use trunkguard::api::{create_token, Role};

/// A client of the gateway's API.
struct Api {
    base: String,
    client: reqwest::Client,
    token: String,
}

impl Api {
    async fn admin(h: &Harness) -> Api {
        let addr = h.gw.http_addr().expect("the API is enabled");
        let (token, _) = create_token(
            h.gw.store(),
            "ops",
            Role::Admin,
            &[],
            &[TRUNK.to_string()],
            chrono::Utc::now(),
        )
        .await
        .expect("token");
        Api {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            token,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    /// `/metrics`, checked as exposition text line by line.
    async fn metrics(&self) -> Vec<Sample> {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        parse(&text).unwrap_or_else(|e| panic!("invalid exposition: {e}\n{text}"))
    }

    async fn live_calls(&self) -> Value {
        let (status, text) = self.get("/api/v1/calls/live").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).expect("JSON")
    }
}

async fn recv_rtp(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .expect("RTP relayed in time")
        .expect("recv");
    buf[..n].to_vec()
}

/// The carrier rings, then answers 486.
async fn busy_call(h: &mut Harness) {
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("busy")).await;
    h.pbx.expect_response(180).await;
    h.carrier.reply(&c_invite, 486, Some("busy")).await;
    h.carrier.expect_request("ACK").await;
    let resp = h.pbx.expect_response(486).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
}

/// A caller ID that is not the trunk's: refused by the gateway with 403.
async fn refused_call(h: &mut Harness) {
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new("+861099999999", CALLEE))
        .await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(403).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
}

/// Wait (bounded) until the store holds `n` CDRs.
async fn wait_for_cdrs(h: &Harness, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while h.gw.store().count_cdrs().await.expect("count") < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waiting for {n} CDRs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn responses(samples: &[Sample], side: &str, direction: &str, class: &str) -> f64 {
    sum(
        samples,
        "trunkguard_sip_responses_total",
        &[("side", side), ("direction", direction), ("class", class)],
    )
}

fn rtp_packets(samples: &[Sample], direction: &str) -> f64 {
    sum(
        samples,
        "trunkguard_rtp_packets_total",
        &[("direction", direction)],
    )
}

/// Skipped in the PBX's RTP sequence: lost upstream, as the gateway sees it.
const GAPS: [u16; 2] = [7, 13];
const FROM_PBX: u16 = 30;
const FROM_CARRIER: u16 = 12;

#[tokio::test]
async fn metrics_count_the_calls_responses_media_refusals_and_recording() {
    let mut h = start_gateway(&[]).await;
    let api = Api::admin(&h).await;
    let mut m = establish_with_media(&mut h).await;

    let mut pbx_sent = 0u64;
    for seq in (0..FROM_PBX).filter(|s| !GAPS.contains(s)) {
        let p = rtp(seq, 0x1111);
        m.pbx_rtp.send_to(&p, m.pbx_to).await.expect("send");
        assert_eq!(recv_rtp(&m.carrier_rtp).await, p);
        pbx_sent += 1;
    }
    for seq in 0..FROM_CARRIER {
        let p = rtp(seq, 0x2222);
        m.carrier_rtp.send_to(&p, m.carrier_to).await.expect("send");
        assert_eq!(recv_rtp(&m.pbx_rtp).await, p);
    }
    let rtp_len = rtp(0, 0).len() as u64;

    // While the call runs: the live list shows each leg's media so far.
    let live = api.live_calls().await;
    let items = live["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{live}");
    let legs = items[0]["legs"].as_array().expect("legs");
    let (inside, outside) = (&legs[0]["media"], &legs[1]["media"]);
    assert_eq!(legs[0]["side"], "inside");
    assert_eq!(inside["packets_in"], pbx_sent, "{live}");
    assert_eq!(inside["bytes_in"], pbx_sent * rtp_len);
    assert_eq!(inside["packets_out"], u64::from(FROM_CARRIER));
    assert_eq!(inside["lost"], GAPS.len() as u64);
    assert_eq!(inside["codec"], "PCMU");
    assert_eq!(
        inside["remote"],
        m.pbx_rtp.local_addr().expect("addr").to_string()
    );
    assert!(inside["last_packet_age_ms"].is_u64(), "{live}");
    assert!(inside["jitter_ms"].is_number(), "{live}");
    assert_eq!(legs[1]["side"], "outside");
    assert_eq!(outside["packets_in"], u64::from(FROM_CARRIER), "{live}");
    assert_eq!(outside["packets_out"], pbx_sent);
    assert_eq!(outside["lost"], 0);
    assert_eq!(
        outside["remote"],
        m.carrier_rtp.local_addr().expect("addr").to_string()
    );

    // And /metrics the packets relayed, exactly what each side sent.
    let during = api.metrics().await;
    assert_eq!(
        sum(&during, "trunkguard_active_calls", &[("trunk", TRUNK)]),
        1.0
    );
    assert_eq!(rtp_packets(&during, "inside_to_outside"), pbx_sent as f64);
    assert_eq!(
        rtp_packets(&during, "outside_to_inside"),
        f64::from(FROM_CARRIER)
    );
    assert_eq!(
        sum(
            &during,
            "trunkguard_rtp_bytes_total",
            &[("direction", "inside_to_outside")]
        ),
        (pbx_sent * rtp_len) as f64
    );
    assert_eq!(sum(&during, "trunkguard_recordings_active", &[]), 1.0);

    // A stray source aimed at the agent's anchor: dropped, and counted as such.
    let stray = UdpSocket::bind(format!("{PBX_IP}:0")).await.expect("bind");
    stray
        .send_to(&rtp(999, 0x6666), m.pbx_to)
        .await
        .expect("send");
    let dropped = |s: &[Sample]| {
        sum(
            s,
            "trunkguard_media_dropped_packets_total",
            &[("kind", "rtp"), ("reason", "stray_source")],
        )
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while dropped(&api.metrics().await) < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stray packet is never counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    h.hang_up_from_pbx(&mut m.call.pbx).await;
    busy_call(&mut h).await;
    refused_call(&mut h).await;
    h.assert_idle().await;
    wait_for_cdrs(&h, 3).await;

    let after = api.metrics().await;
    assert_eq!(
        sum(
            &after,
            "trunkguard_calls_total",
            &[("trunk", TRUNK), ("direction", "outbound")]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &after,
            "trunkguard_calls_total",
            &[("direction", "inbound")]
        ),
        0.0
    );
    assert!(sum(&after, "trunkguard_calls_per_second", &[]) > 0.0);
    // Inside, to the PBX: 100 ×3 and the 180; 200 to the INVITE and to the BYE; 486 and 403.
    assert_eq!(responses(&after, "inside", "sent", "1xx"), 4.0);
    assert_eq!(responses(&after, "inside", "sent", "2xx"), 2.0);
    assert_eq!(responses(&after, "inside", "sent", "4xx"), 2.0);
    // Outside, from the carrier: 100 to each INVITE it got (2) and the 180; 200 to the INVITE
    // and to the BYE; the 486.
    assert_eq!(responses(&after, "outside", "received", "1xx"), 3.0);
    assert_eq!(responses(&after, "outside", "received", "2xx"), 2.0);
    assert_eq!(responses(&after, "outside", "received", "4xx"), 1.0);
    let all = |side, direction| {
        ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"]
            .iter()
            .map(|c| responses(&after, side, direction, c))
            .sum::<f64>()
    };
    assert_eq!(all("inside", "received"), 0.0, "the PBX answered nothing");
    assert_eq!(
        all("outside", "sent"),
        0.0,
        "nor did the gateway to the carrier"
    );

    assert_eq!(
        sum(
            &after,
            "trunkguard_calls_refused_total",
            &[("trunk", TRUNK), ("reason", "caller_id_not_authorized")]
        ),
        1.0
    );
    assert_eq!(
        sum(&after, "trunkguard_calls_refused_total", &[]),
        1.0,
        "the busy call was admitted"
    );
    assert_eq!(
        sum(
            &after,
            "trunkguard_rtp_lost_packets_total",
            &[("direction", "inside_to_outside")]
        ),
        GAPS.len() as f64,
        "the gaps in the PBX's sequence, counted when the call's media closed"
    );
    assert_eq!(
        sum(
            &after,
            "trunkguard_rtp_lost_packets_total",
            &[("direction", "outside_to_inside")]
        ),
        0.0
    );
    assert_eq!(
        rtp_packets(&after, "inside_to_outside"),
        pbx_sent as f64,
        "the stray packet was not relayed"
    );
    assert_eq!(sum(&after, "trunkguard_active_calls", &[]), 0.0);
    assert_eq!(sum(&after, "trunkguard_recordings_active", &[]), 0.0);
    assert_eq!(sum(&after, "trunkguard_recordings_started_total", &[]), 1.0);
    assert_eq!(sum(&after, "trunkguard_recordings_failed_total", &[]), 0.0);
    let closed = |status| {
        sum(
            &after,
            "trunkguard_recordings_closed_total",
            &[("status", status)],
        )
    };
    let written = sum(&after, "trunkguard_recordings_written_bytes_total", &[]);

    let cdrs = h.finish().await;
    let answered = cdrs
        .iter()
        .find(|c| c.recording.is_some())
        .expect("the answered call's CDR");
    let recording = answered.recording.as_ref().expect("recording");
    assert_eq!(closed(recording.status.as_str()), 1.0);
    let statuses = ["complete", "one_way", "no_media", "incomplete"];
    assert_eq!(statuses.iter().map(|s| closed(s)).sum::<f64>(), 1.0);
    assert_eq!(written, recording.size_bytes as f64);
    assert!(written > 44.0, "more than a WAV header");
}

#[tokio::test]
async fn a_recording_that_cannot_start_is_counted_by_reason() {
    let mut h = start_gateway(&["recording.required = false"]).await;
    let api = Api::admin(&h).await;
    // A file where the folder should be: nothing can be created under it (also as root).
    let dir = h.dir.path().join("recordings");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove");
    }
    std::fs::write(&dir, b"not a folder").expect("write");

    let mut m = establish_with_media(&mut h).await;
    h.hang_up_from_pbx(&mut m.call.pbx).await;
    h.assert_idle().await;
    wait_for_cdrs(&h, 1).await;
    let after = api.metrics().await;

    let cdrs = h.finish().await;
    let note = only(&cdrs)
        .recording
        .as_ref()
        .and_then(|r| r.note.clone())
        .expect("the CDR says why there is no recording");
    let reason = note.split(':').next().expect("a reason code");
    assert_eq!(
        sum(
            &after,
            "trunkguard_recordings_failed_total",
            &[("reason", reason)]
        ),
        1.0,
        "{note}"
    );
    assert_eq!(sum(&after, "trunkguard_recordings_failed_total", &[]), 1.0);
    assert_eq!(sum(&after, "trunkguard_recordings_started_total", &[]), 0.0);
    assert_eq!(
        sum(
            &after,
            "trunkguard_calls_admitted_total",
            &[("trunk", TRUNK)]
        ),
        1.0,
        "the call went on unrecorded"
    );
}

/// A datagram to a media port no call holds never reaches the gateway: the kernel drops it.
/// `/metrics` shows the kernel's count of such drops (host-wide, so at least ours).
#[tokio::test]
async fn datagrams_to_a_media_port_no_call_holds_are_counted() {
    const SENT: u64 = 20;
    let h = start_gateway(&[]).await;
    let api = Api::admin(&h).await;
    let no_port = |s: &[Sample]| sum(s, "trunkguard_host_udp_no_port_datagrams_total", &[]);
    let before = no_port(&api.metrics().await);
    // A port of the media range on the media address that nothing holds: bound here a moment
    // to be sure (no call is up), then freed.
    let media_ip = h.inside().ip();
    let free = (21_000..25_000)
        .rev()
        .step_by(2)
        .find(|p| std::net::UdpSocket::bind((media_ip, *p)).is_ok())
        .expect("a free media port");
    let target = std::net::SocketAddr::new(media_ip, free);
    let scanner = UdpSocket::bind(format!("{PBX_IP}:0")).await.expect("bind");
    for seq in 0..SENT {
        scanner
            .send_to(&rtp(seq as u16, 0x7777), target)
            .await
            .expect("send");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let after = no_port(&api.metrics().await);
        if after - before >= SENT as f64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {SENT} datagrams counted",
            after - before
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = api.metrics().await;
    assert!(
        all.iter()
            .any(|s| s.name == "trunkguard_host_udp_receive_buffer_errors_total"),
        "the receive-buffer family is shown too"
    );
    h.shutdown().await;
}
