//! The evidence package over the HTTP API against the real gateway, after a real answered call
//! with audio and a refused one: a compliance officer downloads a call's package, unpacks it
//! and every file's SHA-256 matches the manifest; its verification says `ok` and its WAV is the
//! recording's bytes; once the file on disk is tampered with, a new package says `mismatch`.
//! A search's package holds both calls; a search finding more than the limit is refused with
//! the limit named; a carrier gets 403; every call packed is a row of the audit log. Once the
//! calls' SIP traces are stored (polled through the trace API), the package holds each as
//! JSON and text equal to the API's, listed with their digests; a call without a trace has no
//! trace file and the manifest says why.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;
#[path = "console/support.rs"]
mod support;

use std::time::Duration;

use common::evidence::{sha256_hex, unpack_and_check};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use support::scene;
use trunkguard::store::AuditFilter;

struct Got {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn error(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name}: {:?}", self.headers))
    }
}

async fn get(base: &str, path: &str, token: &str) -> Got {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let resp = client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    Got {
        status: resp.status(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body").to_vec(),
    }
}

async fn audit_rows(h: &Harness, action: &str) -> Vec<trunkguard::store::AuditRow> {
    h.gw.store()
        .audit_entries(&AuditFilter {
            action: Some(action.into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_calls_package_checks_digest_by_digest_and_says_when_the_recording_was_changed() {
    let s = scene().await;
    let id = s.answered.clone();
    let path = format!("/api/v1/calls/{id}/evidence");
    let got = get(&s.base, &path, &s.officer).await;
    assert_eq!(
        got.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&got.body)
    );
    assert_eq!(got.header("content-type"), "application/zip");
    assert_eq!(
        got.header("content-disposition"),
        format!("attachment; filename=\"evidence-{id}.zip\"")
    );
    let p = unpack_and_check(&got.body);
    let dir = format!("calls/{id}");
    for name in [
        "cdr.json",
        "legs.json",
        "holds.json",
        "anomalies.json",
        "audit.json",
        "recording.wav",
        "verification.json",
    ] {
        assert!(p.files.contains_key(&format!("{dir}/{name}")), "{name}");
    }
    assert!(
        !p.files.contains_key(&format!("{dir}/recording.pcap")),
        "no pcap for PCMU"
    );
    assert!(p.files.contains_key("README.txt"));
    let m = &p.manifest;
    assert_eq!(m["format"], "trunkguard-evidence/1");
    assert_eq!(m["created_by"], "officer");
    assert_eq!(m["role"], "compliance");
    assert!(m["query"].is_null());
    assert_eq!(m["calls"][0]["call_id"], id.as_str());
    assert_eq!(p.json(&format!("{dir}/cdr.json"))["id"], id.as_str());
    assert_eq!(
        p.json(&format!("{dir}/legs.json"))["media"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The WAV is the recording as stored, and its check says so.
    let info =
        s.h.gw
            .store()
            .recording(&id)
            .await
            .unwrap()
            .expect("recording");
    let stored_digest = info.sha256.clone().expect("digest");
    let on_disk_path = trunkguard::recording::paths::resolve(
        &s.h.config.recording.dir,
        std::path::Path::new(info.path.as_deref().unwrap()),
    );
    let on_disk = std::fs::read(&on_disk_path).unwrap();
    assert_eq!(p.files[&format!("{dir}/recording.wav")], on_disk);
    let v = p.json(&format!("{dir}/verification.json"));
    assert_eq!(v["result"], "ok", "{v}");
    assert_eq!(v["wav"]["stored_sha256"], stored_digest.as_str());
    assert_eq!(v["wav"]["computed_sha256"], stored_digest.as_str());
    assert_eq!(v["wav"]["packed_as"], format!("{dir}/recording.wav"));
    assert_eq!(v["checked_by"], "officer");

    // Audited with the recording's name.
    let rows = audit_rows(&s.h, "evidence.call").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].entry.call_id.as_deref(), Some(id.as_str()));
    assert_eq!(rows[0].entry.status, 200);
    assert!(rows[0].entry.recording.is_some());

    // The next package's audit trail shows the first download.
    let again = unpack_and_check(&get(&s.base, &path, &s.officer).await.body);
    let trail = again.json(&format!("{dir}/audit.json"));
    assert!(
        trail["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "evidence.call"),
        "{trail}"
    );

    // One byte changed on disk: the package still checks (it holds what is there), its
    // verification says mismatch with the digest of the changed bytes.
    let mut tampered = on_disk.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x55;
    std::fs::write(&on_disk_path, &tampered).unwrap();
    let p = unpack_and_check(&get(&s.base, &path, &s.officer).await.body);
    let v = p.json(&format!("{dir}/verification.json"));
    assert_eq!(v["result"], "mismatch", "{v}");
    assert_eq!(v["wav"]["stored_sha256"], stored_digest.as_str());
    assert_eq!(v["wav"]["computed_sha256"], sha256_hex(&tampered).as_str());
    assert_eq!(v["wav"]["matches"], false);

    // A missing file: the package says so (no WAV in it).
    std::fs::remove_file(&on_disk_path).unwrap();
    let p = unpack_and_check(&get(&s.base, &path, &s.officer).await.body);
    let v = p.json(&format!("{dir}/verification.json"));
    assert_eq!(v["result"], "mismatch", "{v}");
    assert_eq!(v["wav"]["problem"], "the file is missing");
    assert!(!p.files.contains_key(&format!("{dir}/recording.wav")));

    // A carrier never gets a package; an unknown call is a 404.
    let refused = get(&s.base, &path, &s.carrier).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.error()["error"]["code"], "forbidden");
    let refused = get(&s.base, "/api/v1/evidence?number=8613900000001", &s.carrier).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let unknown = get(&s.base, "/api/v1/calls/nope/evidence", &s.officer).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let rows = audit_rows(&s.h, "evidence.call").await;
    assert!(rows
        .iter()
        .any(|r| r.entry.status == 403 && r.entry.actor == "acme"));
    s.h.finish().await;
}

#[tokio::test]
async fn a_searchs_package_holds_each_call_and_refuses_beyond_its_limit() {
    let s = scene().await;
    let got = get(&s.base, "/api/v1/evidence?number=8613900000001", &s.officer).await;
    assert_eq!(
        got.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&got.body)
    );
    let p = unpack_and_check(&got.body);
    let calls: Vec<&str> = p.manifest["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.contains(&s.answered.as_str()) && calls.contains(&s.refused.as_str()));
    assert_eq!(p.manifest["query"], "number=8613900000001");
    let answered = p.json(&format!("calls/{}/verification.json", s.answered));
    assert_eq!(answered["result"], "ok", "{answered}");
    let refused = p.json(&format!("calls/{}/verification.json", s.refused));
    assert_eq!(refused["result"], "none", "{refused}");
    assert!(!p
        .files
        .contains_key(&format!("calls/{}/recording.wav", s.refused)));
    assert!(p.json(&format!("calls/{}/cdr.json", s.refused))["refusal_reason"].is_string());

    // One audit row per call packed.
    let rows = audit_rows(&s.h, "evidence.search").await;
    let mut ids: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.entry.call_id.as_deref())
        .collect();
    ids.sort();
    let mut want = vec![s.answered.as_str(), s.refused.as_str()];
    want.sort();
    assert_eq!(ids, want);

    // Paging is not a package's; nothing found is a 404.
    let bad = get(&s.base, "/api/v1/evidence?limit=5", &s.officer).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.error()["error"]["field"], "limit");
    let none = get(&s.base, "/api/v1/evidence?number=8613900000999", &s.officer).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);

    // More calls than a package holds: refused, the limit named.
    let store = s.h.gw.store();
    let template = store.get_cdr(&s.refused).await.unwrap().unwrap();
    let copies: Vec<_> = (0..trunkguard::api::evidence::MAX_CALLS)
        .map(|i| {
            let mut c = template.clone();
            c.attempt.id = format!("{}-copy-{i}", template.attempt.id);
            c
        })
        .collect();
    store.insert_cdrs(&copies).await.unwrap();
    let over = get(&s.base, "/api/v1/evidence?number=8613900000001", &s.officer).await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST);
    let message = over.error()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("at most 50"), "{message}");
    s.h.finish().await;
}

/// Polls `GET /api/v1/calls/{id}/sip` until the call's final trace is stored (it is written
/// about 2 s after the CDR; an answered call's setup at the answer already): the one holding a
/// message starting with `last`.
async fn wait_for_trace(s: &support::Scene, id: &str, last: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = get(&s.base, &format!("/api/v1/calls/{id}/sip"), &s.officer).await;
        if got.status == StatusCode::OK {
            let v: Value = serde_json::from_slice(&got.body).unwrap();
            let done = v["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["message"].as_str().unwrap().starts_with(last));
            if done {
                return;
            }
        } else {
            assert_eq!(got.status, StatusCode::NOT_FOUND, "{:?}", got.error());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the SIP trace of {id} was never stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_package_holds_each_calls_sip_trace_and_says_when_a_call_has_none() {
    let s = scene().await;
    wait_for_trace(&s, &s.answered, "BYE ").await;
    wait_for_trace(&s, &s.refused, "SIP/2.0 403 ").await;

    let got = get(&s.base, "/api/v1/evidence?number=8613900000001", &s.officer).await;
    assert_eq!(got.status, StatusCode::OK);
    let p = unpack_and_check(&got.body);
    let mut answered = Value::Null;
    for id in [&s.answered, &s.refused] {
        let dir = format!("calls/{id}");
        // The JSON is the API's trace, message for message; the text is its text form.
        let packed = p.json(&format!("{dir}/sip_trace.json"));
        let api = get(&s.base, &format!("/api/v1/calls/{id}/sip"), &s.officer).await;
        let api: Value = serde_json::from_slice(&api.body).unwrap();
        assert_eq!(packed, api, "{id}");
        if id == &s.answered {
            answered = api;
        }
        let text = String::from_utf8(p.files[&format!("{dir}/sip_trace.txt")].clone()).unwrap();
        let by_text = get(
            &s.base,
            &format!("/api/v1/calls/{id}/sip?format=text"),
            &s.officer,
        )
        .await;
        assert_eq!(text.as_bytes(), by_text.body.as_slice(), "{id}");
        assert!(text.contains("INVITE sip:"), "{text}");
        // Listed with its digest (`unpack_and_check` recomputed it), and the call says packed.
        let listed: Vec<&str> = p.manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["path"].as_str())
            .collect();
        assert!(listed.contains(&format!("{dir}/sip_trace.json").as_str()));
        assert!(listed.contains(&format!("{dir}/sip_trace.txt").as_str()));
        let call = p.manifest["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["call_id"] == id.as_str())
            .unwrap();
        assert_eq!(call["sip_trace"], "packed", "{call}");
    }
    let messages = answered["messages"].as_array().unwrap();
    assert!(
        messages.iter().any(|m| m["leg"] == "inside")
            && messages.iter().any(|m| m["leg"] == "outside"),
        "both legs"
    );

    // A call without a stored trace: no trace files, and the manifest says why.
    let store = s.h.gw.store();
    let mut copy = store.get_cdr(&s.refused).await.unwrap().unwrap();
    copy.attempt.id = format!("{}-untraced", s.refused);
    store
        .insert_cdrs(std::slice::from_ref(&copy))
        .await
        .unwrap();
    let id = copy.attempt.id.clone();
    let got = get(&s.base, &format!("/api/v1/calls/{id}/evidence"), &s.officer).await;
    assert_eq!(got.status, StatusCode::OK);
    let p = unpack_and_check(&got.body);
    assert!(
        !p.files.keys().any(|k| k.contains("sip_trace")),
        "{:?}",
        p.files.keys()
    );
    let why = p.manifest["calls"][0]["sip_trace"].as_str().unwrap();
    assert!(why.starts_with("none stored"), "{why}");
    s.h.finish().await;
}
