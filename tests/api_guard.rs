//! The API's own defences and the audit log as compliance reads it: `GET /api/v1/audit` with
//! its filters and paging; a body over the limit (413); a client that never finishes its request
//! head is dropped; connections beyond the cap are closed while the others are served; a flood
//! ban shows in `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::api::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trunkguard::api::server::{HEADER_READ_TIMEOUT, MAX_BODY_BYTES, MAX_CONNECTIONS};
use trunkguard::api::Role;

#[tokio::test]
async fn compliance_reads_the_audit_log_by_actor_call_and_action_page_by_page() {
    let h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let officer = api_token(&h, "officer", Role::Compliance, &[]).await;
    let admin = api_token(&h, "ops", Role::Admin, &[]).await;
    let carrier = api_token(&h, "carrier", Role::Carrier, &[]).await;

    // Requests to find afterwards: two reads of a call, a forbidden one, an anonymous one.
    api.get("/api/v1/calls/call-a", &officer)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    api.get("/api/v1/calls/call-a", &officer).await;
    api.get("/api/v1/calls/call-a", &admin)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    api.call(Method::GET, "/api/v1/cdrs", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    api.get("/api/v1/audit", &carrier)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");

    let call = api.get("/api/v1/audit?call=call-a", &officer).await;
    assert_eq!(call.status, StatusCode::OK, "{}", call.text);
    let rows = call.json()["items"].as_array().unwrap().clone();
    let who: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| (r["actor"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(who, vec![("officer", 404), ("officer", 404), ("ops", 403)]);
    assert_eq!(rows[0]["action"], "calls.get");
    assert_eq!(rows[0]["role"], "compliance");
    assert_eq!(rows[0]["path"], "/api/v1/calls/call-a");
    assert!(rows[0]["client"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));

    let anonymous = api
        .get("/api/v1/audit?actor=unknown", &officer)
        .await
        .json();
    assert_eq!(anonymous["items"].as_array().unwrap().len(), 1);
    assert_eq!(anonymous["items"][0]["action"], "cdrs.search");
    assert!(anonymous["items"][0]["role"].is_null());
    let audit_reads = api
        .get("/api/v1/audit?action=audit.list", &officer)
        .await
        .json();
    // The carrier's refused read, then this officer's three reads (the current one included:
    // its row is written when it is answered, so not yet).
    let statuses: Vec<u64> = audit_reads["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![403, 200, 200]);

    // Paging: every row once, in order, whatever the page size.
    let mut seen = Vec::new();
    let mut path = "/api/v1/audit?limit=2".to_string();
    for _ in 0..50 {
        let page = api.get(&path, &officer).await.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|r| r["id"].as_i64().unwrap()));
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/audit?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    let total = h.gw.store().count_audit().await.unwrap();
    // The rows of the paging requests themselves come after the first page was read.
    assert!(
        seen.len() >= 8 && (seen.len() as i64) < total,
        "{seen:?} of {total}"
    );

    for (query, field) in [
        ("limit=0", "limit"),
        ("cursor=x", "cursor"),
        ("from=yesterday", "from"),
        ("callid=x", "callid"),
        ("actor=a&actor=b", "actor"),
    ] {
        let bad = api.get(&format!("/api/v1/audit?{query}"), &officer).await;
        bad.assert_error(StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(bad.json()["error"]["field"], field, "{query}");
    }
    h.finish().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let carrier = api_token(&h, "carrier", Role::Carrier, &[]).await;
    let huge = json!({
        "complainant": "+8613900000009",
        "caller_id": CALLER,
        "category": "harassment",
        "text": "x".repeat(MAX_BODY_BYTES + 1),
    });
    let reply = api.post("/api/v1/complaints", &carrier, huge).await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    // Nothing was filed.
    let list = api.get("/api/v1/complaints", &carrier).await.json();
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    h.finish().await;
}

/// Reads until the server closes the connection (bounded); true when it did.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn slow_clients_are_dropped_and_connections_beyond_the_cap_closed() {
    let h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let admin = api_token(&h, "ops", Role::Admin, &[]).await;
    let addr = h.gw.http_addr().unwrap();

    // Slow loris: half a request head, then nothing.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/v1/calls/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut slow, HEADER_READ_TIMEOUT + Duration::from_secs(5)).await,
        "a request head never finished kept its connection"
    );

    // Fill every slot with idle connections; the next one is closed at once.
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // The server accepts in order: once the extra one is closed, every slot is taken.
    let mut extra = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_by_server(&mut extra, Duration::from_secs(5)).await,
        "connection {} was served beyond the cap",
        MAX_CONNECTIONS + 1
    );
    drop(idle);
    // Slots come back as the idle connections close: the API answers again.
    let mut answered = false;
    for _ in 0..50 {
        let reply = api
            .client
            .get(format!("{}/api/v1/calls/live", api.base))
            .bearer_auth(&admin)
            .send()
            .await;
        if matches!(reply, Ok(r) if r.status() == StatusCode::OK) {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answered,
        "the API did not recover after the idle connections closed"
    );
    h.finish().await;
}

/// A stranger over the flood budget is banned: shown in `/metrics` (bans, drops, banned now)
/// and by the gateway's flood guard.
#[tokio::test]
async fn a_flood_ban_shows_in_metrics() {
    let h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let carrier = api_token(&h, "carrier", Role::Carrier, &[]).await;
    let stranger = tokio::net::UdpSocket::bind("127.0.0.66:0").await.unwrap();
    let options = |i: u32| {
        format!(
            "OPTIONS sip:x@{0} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.66;branch=z9hG4bK{i}\r\n\
             From: <sip:s@127.0.0.66>;tag={i}\r\nTo: <sip:x@{0}>\r\nCall-ID: flood{i}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            h.inside()
        )
    };
    for i in 0..40 {
        stranger
            .send_to(options(i).as_bytes(), h.inside())
            .await
            .unwrap();
    }
    let ip: std::net::IpAddr = "127.0.0.66".parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !h.gw.flood().is_banned(ip, std::time::Instant::now()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stranger was not banned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = api.get("/metrics", &carrier).await.text;
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert_eq!(value("trunkguard_flood_bans_total"), 1.0);
    assert_eq!(value("trunkguard_flood_banned_sources"), 1.0);
    assert!(value("trunkguard_flood_dropped_total") >= 1.0);
    h.finish().await;
}
