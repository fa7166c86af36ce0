//! Recordings over the HTTP API against the real gateway: a compliance officer finds an answered
//! call with audio, downloads its recording whole and by Range (the bytes and the digest match
//! the file and the stored SHA-256), checks it (ok, then a mismatch once the file is tampered
//! with), and no request reads a file outside the recordings folder (encoded slashes in the id,
//! stored paths with `..`, absolute paths, a planted symlink). Legal hold: placed on a live call,
//! shown in the record, kept by the retention purge until released. The audit rows name the
//! recording.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::rtp::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use trunkguard::api::{create_token, Role};
use trunkguard::store::AuditFilter;

/// A compliance officer's client. Not `common::api::Api`: recordings are binary (bodies kept as
/// bytes) and Range requests need request headers.
struct Api {
    base: String,
    client: reqwest::Client,
    token: String,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers))
    }

    fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.json()["error"]["code"], code, "{}", self.text());
    }
}

impl Api {
    async fn new(h: &Harness) -> Api {
        let (token, _) = create_token(
            h.gw.store(),
            "officer",
            Role::Compliance,
            &[],
            &[TRUNK.to_string()],
            chrono::Utc::now(),
        )
        .await
        .expect("token");
        Api {
            base: format!("http://{}", h.gw.http_addr().expect("the API is enabled")),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            token,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        Reply {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.expect("body").to_vec(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], None).await
    }

    async fn get_range(&self, path: &str, range: &str) -> Reply {
        self.send(Method::GET, path, &[("range", range)], None)
            .await
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An answered call with a second of audio each way; returns it still up, with its sockets.
async fn answered_call_with_audio(h: &mut Harness) -> MediaCall {
    let m = establish_with_media(h).await;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..50u16 {
        tick.tick().await;
        m.pbx_rtp
            .send_to(&tone_packet(seq, 0x1111, 440.0), m.pbx_to)
            .await
            .expect("send");
        m.carrier_rtp
            .send_to(&tone_packet(seq, 0x2222, 1000.0), m.carrier_to)
            .await
            .expect("send");
    }
    m
}

/// The one call's id, once its CDR (with its recording) is stored, found as an officer would:
/// by the caller's number.
async fn find_the_call(api: &Api) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let page = api.get(&format!("/api/v1/cdrs?number={CALLER}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        if let Some(id) = page.json()["items"][0]["id"].as_str() {
            return id.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call's CDR was not stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The recording's file: its stored path (relative to the recordings folder) resolved under
/// the gateway's folder.
fn stored_path(h: &Harness, info: &trunkguard::model::RecordingInfo) -> PathBuf {
    let stored = info.path.as_deref().expect("a WAV path");
    trunkguard::recording::paths::resolve(&h.config.recording.dir, std::path::Path::new(stored))
}

/// Any answer to a request that tries to leave the recordings folder: refused, no file content.
fn assert_no_escape(r: &Reply, what: &str) {
    assert!(
        r.status == StatusCode::NOT_FOUND || r.status == StatusCode::BAD_REQUEST,
        "{what}: {} {}",
        r.status,
        r.text()
    );
    let text = r.text();
    assert!(
        !text.contains("root:"),
        "{what}: file content leaked: {text}"
    );
    assert!(
        !text.contains("secret"),
        "{what}: file content leaked: {text}"
    );
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{what}"
    );
}

#[tokio::test]
async fn an_officer_downloads_seeks_and_verifies_a_recording_and_nothing_else() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h).await;
    let mut m = answered_call_with_audio(&mut h).await;
    h.hang_up_from_pbx(&mut m.call.pbx).await;
    let id = find_the_call(&api).await;
    let base = format!("/api/v1/calls/{id}/recording");

    // The record shows the digest; the store knows the file.
    let record = api.get(&format!("/api/v1/calls/{id}")).await.json();
    let stored_digest = record["recording"]["sha256"]
        .as_str()
        .expect("a digest")
        .to_string();
    assert_eq!(record["recording"]["status"], "complete");
    assert!(record["recording"]["purged_at"].is_null());
    let info = h.gw.store().recording(&id).await.unwrap().expect("stored");
    let on_disk = std::fs::read(stored_path(&h, &info)).expect("the file");
    assert!(on_disk.len() > 1000, "a second of stereo audio");

    // Whole.
    let whole = api.get(&base).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text());
    assert_eq!(whole.header("content-type"), "audio/wav");
    assert_eq!(whole.header("accept-ranges"), "bytes");
    assert_eq!(
        whole.header("content-disposition"),
        format!("attachment; filename=\"{id}.wav\"")
    );
    assert_eq!(whole.header("etag"), format!("\"{stored_digest}\""));
    assert_eq!(whole.header("content-length"), on_disk.len().to_string());
    assert_eq!(sha256_hex(&whole.body), stored_digest);
    assert_eq!(whole.body, on_disk);
    assert!(whole.body.starts_with(b"RIFF"));
    let len = on_disk.len();

    // By Range.
    let part = api.get_range(&base, "bytes=100-1099").await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.header("content-range"),
        format!("bytes 100-1099/{len}")
    );
    assert_eq!(part.header("content-length"), "1000");
    assert_eq!(part.body, on_disk[100..1100]);
    let tail = api.get_range(&base, "bytes=-44").await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.body, on_disk[len - 44..]);
    let from = api.get_range(&base, &format!("bytes={}-", len - 10)).await;
    assert_eq!(from.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(from.body, on_disk[len - 10..]);
    // Several ranges: the first.
    let several = api.get_range(&base, "bytes=0-3, 8-11").await;
    assert_eq!(several.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(several.body, b"RIFF");
    // Beyond the end: 416 with the length.
    let beyond = api.get_range(&base, &format!("bytes={len}-")).await;
    beyond.assert_error(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable");
    assert_eq!(beyond.header("content-range"), format!("bytes */{len}"));
    // If-Range naming another version: the whole file.
    let stale = api
        .send(
            Method::GET,
            &base,
            &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
            None,
        )
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body.len(), len);
    // A bad parameter names itself.
    let bad = api.get(&format!("{base}?format=mp3")).await;
    bad.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(bad.json()["error"]["field"], "format");
    // No pcap for a PCMU call.
    api.get(&format!("{base}?format=pcap"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // The check: ok, then a mismatch once one byte changed on disk.
    let check = api.get(&format!("{base}/verify")).await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.text());
    let check = check.json();
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["result"], "ok");
    assert_eq!(check["wav"]["stored_sha256"], stored_digest.as_str());
    assert_eq!(check["wav"]["computed_sha256"], stored_digest.as_str());
    assert!(check["pcap"].is_null());
    let mut tampered = on_disk.clone();
    tampered[len / 2] ^= 0x55;
    std::fs::write(stored_path(&h, &info), &tampered).expect("tamper");
    let check = api.get(&format!("{base}/verify")).await.json();
    assert_eq!(check["ok"], false, "{check}");
    assert_eq!(check["result"], "mismatch");
    assert_eq!(check["wav"]["stored_sha256"], stored_digest.as_str());
    assert_eq!(
        check["wav"]["computed_sha256"],
        sha256_hex(&tampered).as_str()
    );

    // Ids that try to climb out: never a file.
    for path in [
        "/api/v1/calls/..%2F..%2F..%2F..%2Fetc%2Fpasswd/recording",
        "/api/v1/calls/..%2F..%2F..%2F..%2Fetc%2Fpasswd/recording/verify",
        "/api/v1/calls/%2Fetc%2Fpasswd/recording",
        "/api/v1/calls/..%252F..%252Fetc%252Fpasswd/recording",
        "/api/v1/calls/%2e%2e/%2e%2e/etc/passwd/recording",
        "/api/v1/calls/../../../etc/passwd/recording",
        "/api/v1/calls/..%5C..%5Cetc%5Cpasswd/recording",
    ] {
        assert_no_escape(&api.get(path).await, path);
    }

    // Stored paths that lead out of the folder (someone changed the database or the folder):
    // refused, and the check reports them.
    let dir = std::fs::canonicalize(&h.config.recording.dir).expect("recordings dir");
    let secret = h.dir.path().join("secret.txt");
    std::fs::write(&secret, b"secret").unwrap();
    let planted = dir.join("planted.wav");
    std::os::unix::fs::symlink(&secret, &planted).unwrap();
    let mut linked_dir = dir.join("2031");
    std::os::unix::fs::symlink(h.dir.path(), &linked_dir).unwrap();
    linked_dir.push("secret.txt");
    let climbing = stored_path(&h, &info)
        .parent()
        .unwrap()
        .join("../../../../secret.txt");
    for stored in [
        planted.clone(),
        linked_dir.clone(),
        climbing,
        secret.clone(),
        PathBuf::from("/etc/passwd"),
    ] {
        let mut bad = info.clone();
        bad.path = Some(stored.display().to_string());
        bad.pcap_path = Some(stored.display().to_string());
        h.gw.store().update_recording(&id, &bad).await.unwrap();
        let what = stored.display().to_string();
        assert_no_escape(&api.get(&base).await, &what);
        assert_no_escape(&api.get(&format!("{base}?format=pcap")).await, &what);
        assert_no_escape(
            &api.get_range(&base, "bytes=0-3").await,
            &format!("{what} by range"),
        );
        let check = api.get(&format!("{base}/verify")).await;
        assert_eq!(check.status, StatusCode::OK, "{what}: {}", check.text());
        let check = check.json();
        assert_eq!(check["ok"], false, "{what}: {check}");
        assert!(check["wav"]["computed_sha256"].is_null(), "{what}: {check}");
        assert!(check["wav"]["problem"].is_string(), "{what}: {check}");
        assert!(!check.to_string().contains("root:"));
    }
    assert_eq!(std::fs::read(&secret).unwrap(), b"secret", "untouched");
    h.gw.store().update_recording(&id, &info).await.unwrap();
    assert_eq!(api.get(&base).await.body, tampered, "back to the real file");

    // A pcap kept beside the WAV (a codec that could not be decoded) is served on request and
    // checked with the WAV.
    let pcap_file = stored_path(&h, &info).with_extension("pcap");
    let capture: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&pcap_file, &capture).unwrap();
    let mut with_pcap = info.clone();
    with_pcap.pcap_path = Some(pcap_file.display().to_string());
    with_pcap.pcap_sha256 = Some(sha256_hex(&capture));
    h.gw.store()
        .update_recording(&id, &with_pcap)
        .await
        .unwrap();
    let pcap = api.get(&format!("{base}?format=pcap")).await;
    assert_eq!(pcap.status, StatusCode::OK, "{}", pcap.text());
    assert_eq!(pcap.header("content-type"), "application/vnd.tcpdump.pcap");
    assert_eq!(
        pcap.header("content-disposition"),
        format!("attachment; filename=\"{id}.pcap\"")
    );
    assert_eq!(pcap.body, capture);
    let check = api.get(&format!("{base}/verify")).await.json();
    assert_eq!(check["pcap"]["matches"], true, "{check}");
    assert_eq!(check["wav"]["matches"], false, "still the tampered WAV");
    std::fs::remove_file(&pcap_file).unwrap();
    let check = api.get(&format!("{base}/verify")).await.json();
    assert_eq!(check["pcap"]["matches"], false, "{check}");
    assert_eq!(check["pcap"]["problem"], "the file is missing");
    h.gw.store().update_recording(&id, &info).await.unwrap();

    // The audit rows name the recording: its path under the recordings folder.
    let rows =
        h.gw.store()
            .audit_entries(&AuditFilter {
                call_id: Some(id.clone()),
                limit: 10_000,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
    let name = stored_path(&h, &info)
        .strip_prefix(&h.config.recording.dir)
        .expect("under the folder")
        .display()
        .to_string();
    assert!(name.ends_with(&format!("{id}.wav")), "{name}");
    let served: Vec<_> = rows
        .iter()
        .filter(|r| {
            r.entry.action.starts_with("recordings.")
                && [200, 206, 416].contains(&r.entry.status)
                && r.entry.query.is_empty()
        })
        .collect();
    // whole, 5 ranges, If-Range, 2 checks, 5 checks of bad paths, the last download, 2 checks
    // with the pcap.
    assert!(served.len() >= 14, "{served:#?}");
    let named: Vec<&str> = served
        .iter()
        .filter_map(|r| r.entry.recording.as_deref())
        .collect();
    assert_eq!(named.len(), served.len(), "every such row names it");
    assert!(named.contains(&name.as_str()), "{named:?}");
    assert!(rows.iter().any(|r| r.entry.action == "recordings.verify"
        && r.entry.recording.as_deref() == Some(name.as_str())));
    assert!(rows.iter().any(|r| r.entry.action == "recordings.download"
        && r.entry.status == 206
        && r.entry.recording.as_deref() == Some(name.as_str())));
    h.finish().await;
}

#[tokio::test]
async fn a_held_call_outlives_the_retention_purge_until_released() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h).await;
    let mut m = answered_call_with_audio(&mut h).await;

    // While the call is up: its recording is not final (409), but it can be held.
    let live = h.gw.registry().list();
    assert_eq!(live.len(), 1);
    let id = live[0].id.clone();
    let base = format!("/api/v1/calls/{id}");
    api.get(&format!("{base}/recording"))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    api.get(&format!("{base}/recording/verify"))
        .await
        .assert_error(StatusCode::CONFLICT, "conflict");
    let no_reason = api
        .send(Method::PUT, &format!("{base}/hold"), &[], Some("{}"))
        .await;
    no_reason.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let blank = api
        .send(
            Method::PUT,
            &format!("{base}/hold"),
            &[],
            Some(r#"{"reason": "  "}"#),
        )
        .await;
    blank.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(blank.json()["error"]["field"], "reason");
    let held = api
        .send(
            Method::PUT,
            &format!("{base}/hold"),
            &[],
            Some(r#"{"reason": "complaint 42: keep as evidence"}"#),
        )
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text());
    let hold = held.json();
    assert_eq!(hold["placed_by"], "officer");
    assert_eq!(hold["active"], true);
    h.hang_up_from_pbx(&mut m.call.pbx).await;
    assert_eq!(find_the_call(&api).await, id);

    // Held again: the same hold.
    let again = api
        .send(
            Method::PUT,
            &format!("{base}/hold"),
            &[],
            Some(r#"{"reason": "again"}"#),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["id"], hold["id"]);
    let record = api.get(&base).await.json();
    assert_eq!(record["holds"].as_array().unwrap().len(), 1, "{record}");
    assert_eq!(
        record["holds"][0]["reason"],
        "complaint 42: keep as evidence"
    );
    assert_eq!(record["holds"][0]["active"], true);

    // The purge two days on with a one-day retention: the held recording stays.
    let store = h.gw.store().clone();
    let dir = h.config.recording.dir.clone();
    let info = store.recording(&id).await.unwrap().expect("recorded");
    let file = stored_path(&h, &info);
    let retention = trunkguard::config::RetentionConfig {
        recordings_days: 1,
        cdrs_days: 3650,
    };
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let kept = trunkguard::retention::purge(&store, &dir, &retention, later, &|_: &str| false)
        .await
        .unwrap();
    assert_eq!(kept.recordings_purged, 0, "{kept:?}");
    assert!(file.exists());
    assert_eq!(
        api.get(&format!("{base}/recording")).await.status,
        StatusCode::OK
    );

    // Released (with a reason): the history stays, and the next purge takes the recording.
    let released = api
        .send(
            Method::DELETE,
            &format!("{base}/hold"),
            &[],
            Some(r#"{"reason": "case closed"}"#),
        )
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.text());
    assert_eq!(released.json()["active"], false);
    assert_eq!(released.json()["released_by"], "officer");
    api.send(Method::DELETE, &format!("{base}/hold"), &[], None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let gone = trunkguard::retention::purge(&store, &dir, &retention, later, &|_: &str| false)
        .await
        .unwrap();
    assert_eq!(gone.recordings_purged, 1, "{gone:?}");
    assert_eq!(gone.cdrs_deleted, 0, "the CDR is kept longer");
    assert!(!file.exists());
    api.get(&format!("{base}/recording"))
        .await
        .assert_error(StatusCode::GONE, "gone");
    api.get(&format!("{base}/recording/verify"))
        .await
        .assert_error(StatusCode::GONE, "gone");
    let record = api.get(&base).await.json();
    assert!(record["recording"]["purged_at"].is_string(), "{record}");
    assert_eq!(
        record["recording"]["sha256"],
        info.sha256.as_deref().unwrap(),
        "the record that it existed stays"
    );
    let holds = record["holds"].as_array().unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0]["release_reason"], "case closed");
    let log = store.retention_entries(Some(&id), 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, "recording");
    assert_eq!(log[0].file.as_deref(), info.path.as_deref());

    // A call refused by the gateway has a CDR but no recording.
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new("+861099999999", CALLEE))
        .await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(403).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let page = api.get("/api/v1/cdrs?disposition=refused").await.json();
        if let Some(id) = page["items"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "no refused CDR");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let none = api.get(&format!("/api/v1/calls/{refused}/recording")).await;
    none.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(none.text().contains("has no recording"), "{}", none.text());

    // Holds on unknown calls are refused.
    api.send(
        Method::PUT,
        "/api/v1/calls/no-such-call/hold",
        &[],
        Some(r#"{"reason": "x"}"#),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    h.finish().await;
}
