//! The HTTP API against the real gateway (listener on 127.0.0.1:0): token roles and refusals,
//! the audit log (one row per request), CDR search with cursor paging, a call's full record,
//! hanging up a live call, /healthz, /metrics and the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use common::api::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use trunkguard::api::{route_table, Role};
use trunkguard::model::EndReason;
use trunkguard::store::AuditFilter;

/// An answered outbound call from CALLER to `callee`, ended by the PBX.
async fn answered_call(h: &mut Harness, callee: &str) {
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(CALLER, callee))
        .await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    let tag = token_tag();
    h.carrier
        .reply_with(&c_invite, 200, Some(&tag), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, invite.cseq).await;
    h.carrier.expect_request("ACK").await;
    h.hang_up_from_pbx(&mut pbx).await;
}

fn token_tag() -> String {
    common::token("ct")
}

/// A call refused by the gateway (caller ID not the trunk's).
async fn refused_call(h: &mut Harness) {
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new("+861099999999", CALLEE))
        .await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(403).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
}

#[tokio::test]
async fn roles_are_enforced_and_every_request_is_audited() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let admin = api_token(&h, "ops", Role::Admin, &[]).await;
    let compliance = api_token(&h, "officer", Role::Compliance, &[]).await;
    let carrier = api_token(&h, "carrier-all", Role::Carrier, &[]).await;
    let limited = api_token(&h, "carrier-other", Role::Carrier, &["other"]).await;
    let revoked = api_token(&h, "gone", Role::Admin, &[]).await;
    assert!(h
        .gw
        .store()
        .revoke_api_token("gone", chrono::Utc::now())
        .await
        .unwrap());
    refused_call(&mut h).await;
    wait_for_cdrs(&h, 1).await;

    let tokens = [
        (Role::Admin, &admin),
        (Role::Compliance, &compliance),
        (Role::Carrier, &carrier),
    ];
    // Every guarded route of the table, with a concrete path.
    for r in route_table() {
        let trunkguard::api::Access::Roles(allowed) = r.access else {
            continue;
        };
        let path = r
            .path
            .replace("{id}", "no-such-call")
            .replace("{day}", "2001-01-01");
        let m = Method::from_bytes(r.method.as_str().as_bytes()).unwrap();
        api.call(m.clone(), &path, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        api.call(m.clone(), &path, Some("tg_wrong"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        api.call(m.clone(), &path, Some(&revoked))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        for (role, t) in &tokens {
            let reply = api.call(m.clone(), &path, Some(t)).await;
            if allowed.contains(role) {
                // An order sent without its body is a 400 naming the body: allowed, not refused.
                let needs_body = m == Method::POST && reply.status == StatusCode::BAD_REQUEST;
                assert!(
                    reply.status == StatusCode::OK
                        || reply.status == StatusCode::NOT_FOUND
                        || reply.status == StatusCode::ACCEPTED
                        || needs_body,
                    "{role} {} {path}: {} {}",
                    r.method,
                    reply.status,
                    reply.text
                );
            } else {
                reply.assert_error(StatusCode::FORBIDDEN, "forbidden");
            }
        }
    }

    // A carrier limited to another trunk: 403 naming ours, and none of our rows otherwise.
    api.get(&format!("/api/v1/cdrs?trunk={TRUNK}"), &limited)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let page = api.get("/api/v1/cdrs", &limited).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.json()["items"].as_array().unwrap().len(), 0);
    let page = api.get("/api/v1/cdrs", &carrier).await.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["disposition"], "refused");
    let metrics = api.get("/metrics", &limited).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(!metrics.text.contains(&format!("trunk=\"{TRUNK}\"")));

    // /healthz is public and not audited; unknown paths are a JSON 404.
    let health = api.call(Method::GET, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    let unknown = api.get("/api/v1/nothing", &admin).await;
    unknown.assert_error(StatusCode::NOT_FOUND, "not_found");
    let wrong_method = api.call(Method::DELETE, "/api/v1/cdrs", Some(&admin)).await;
    wrong_method.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    api.audited.fetch_sub(1, Ordering::SeqCst);
    // (unmatched paths and methods are not audited)
    let made = api.audited() - 1;

    let store = h.gw.store().clone();
    assert_eq!(store.count_audit().await.unwrap(), made);
    let rows = store
        .audit_entries(&AuditFilter {
            limit: 10_000,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let unknown_rows = rows.iter().filter(|r| r.entry.actor == "unknown").count();
    let guarded = route_table()
        .iter()
        .filter(|r| r.access != trunkguard::api::Access::Public)
        .count();
    // No token, a wrong one and a revoked one, for each guarded route.
    assert_eq!(unknown_rows, guarded * 3);
    assert!(rows
        .iter()
        .filter(|r| r.entry.actor == "unknown")
        .all(|r| r.entry.status == 401 && r.entry.role.is_none()));
    let forbidden: Vec<_> = rows.iter().filter(|r| r.entry.status == 403).collect();
    assert!(forbidden.iter().any(|r| r.entry.actor == "carrier-other"
        && r.entry.action == "cdrs.search"
        && r.entry.query == format!("trunk={TRUNK}")));
    assert!(forbidden
        .iter()
        .any(|r| r.entry.actor == "officer" && r.entry.role.as_deref() == Some("compliance")));
    let record = rows
        .iter()
        .find(|r| r.entry.action == "calls.get" && r.entry.actor == "officer")
        .expect("the compliance officer's read");
    assert_eq!(record.entry.call_id.as_deref(), Some("no-such-call"));
    assert_eq!(record.entry.status, 404);
    assert!(record.entry.client.starts_with("127.0.0.1:"));
    h.finish().await;
}

#[tokio::test]
async fn cdr_search_pages_with_a_cursor_and_reads_the_full_record() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let officer = api_token(&h, "officer", Role::Compliance, &[]).await;
    for callee in [CALLEE, CALLEE2, CALLEE] {
        answered_call(&mut h, callee).await;
    }
    refused_call(&mut h).await;
    wait_for_cdrs(&h, 4).await;

    // Pages of one: each CDR once, in (invite_at, id) order.
    let mut seen: Vec<Value> = Vec::new();
    let mut path = "/api/v1/cdrs?limit=1".to_string();
    loop {
        let page = api.get(&path, &officer).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let page = page.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        seen.extend(items.iter().cloned());
        match page["next"].as_str() {
            Some(c) => path = format!("/api/v1/cdrs?limit=1&cursor={c}"),
            None => break,
        }
        assert!(seen.len() <= 4, "paging does not end");
    }
    assert_eq!(seen.len(), 4);
    let ids: BTreeSet<&str> = seen.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4);
    let keys: Vec<(String, String)> = seen
        .iter()
        .map(|c| {
            (
                c["invite_at"].as_str().unwrap().to_string(),
                c["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // Filters.
    let q = format!("/api/v1/cdrs?number={}", CALLEE.replace('+', "%2B"));
    let by_number = api.get(&q, &officer).await.json();
    assert_eq!(
        by_number["items"].as_array().unwrap().len(),
        3,
        "{by_number}"
    );
    let answered = api
        .get("/api/v1/cdrs?disposition=answered&limit=500", &officer)
        .await
        .json();
    assert_eq!(answered["items"].as_array().unwrap().len(), 3);
    assert!(answered["next"].is_null());
    let first = seen[0]["invite_at"].as_str().unwrap();
    let ranged = api
        .get(
            &format!(
                "/api/v1/cdrs?from=2000-01-01&to={}",
                first.replace('+', "%2B")
            ),
            &officer,
        )
        .await
        .json();
    assert_eq!(ranged["items"].as_array().unwrap().len(), 0);
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("from=yesterday", "from"),
        ("disposition=maybe", "disposition"),
        ("cursor=nonsense", "cursor"),
        ("colour=red", "colour"),
    ] {
        let r = api.get(&format!("/api/v1/cdrs?{q}"), &officer).await;
        r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(r.json()["error"]["field"], field, "{q}");
    }

    // The full record of an answered call.
    let id = answered["items"][0]["id"].as_str().unwrap().to_string();
    let rec = api.get(&format!("/api/v1/calls/{id}"), &officer).await;
    assert_eq!(rec.status, StatusCode::OK, "{}", rec.text);
    let rec = rec.json();
    assert_eq!(rec["cdr"]["id"], id.as_str());
    assert_eq!(rec["cdr"]["disposition"], "answered");
    assert_eq!(rec["media"].as_array().unwrap().len(), 2, "{rec}");
    assert!(rec["recording"]["status"].is_string(), "{rec}");
    assert!(rec["anomalies"].as_array().unwrap().is_empty());
    assert!(rec["enforcement"].as_array().unwrap().is_empty());
    assert!(rec["dtmf"].is_array());
    api.get("/api/v1/calls/nope", &officer)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    assert_eq!(h.gw.store().count_audit().await.unwrap(), api.audited());
    h.finish().await;
}

#[tokio::test]
async fn an_admin_hangs_up_a_live_call() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let admin = api_token(&h, "ops", Role::Admin, &[]).await;
    let call = h.establish().await;

    let live = api.get("/api/v1/calls/live", &admin).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.text);
    let live = live.json();
    let items = live["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{live}");
    let c = &items[0];
    assert_eq!(c["trunk"], TRUNK);
    assert_eq!(c["direction"], "outbound");
    assert!(c["answered_at"].is_string(), "{c}");
    assert!(c["duration_ms"].as_i64().unwrap() >= c["talk_ms"].as_i64().unwrap());
    let legs = c["legs"].as_array().unwrap();
    assert_eq!(legs[0]["side"], "inside");
    assert_eq!(legs[0]["call_id"], call.invite.call_id.as_str());
    assert_eq!(legs[1]["call_id"], call.c_invite.call_id());
    let id = c["id"].as_str().unwrap().to_string();

    let r = api
        .call(
            Method::POST,
            &format!("/api/v1/calls/live/{id}/hangup"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let c_bye = h.carrier.expect_request("BYE").await;
    assert_eq!(c_bye.call_id(), call.c_invite.call_id());
    h.carrier.reply(&c_bye, 200, None).await;
    let p_bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&p_bye, 200, None).await;
    h.assert_idle().await;
    api.call(
        Method::POST,
        &format!("/api/v1/calls/live/{id}/hangup"),
        Some(&admin),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    let empty = api.get("/api/v1/calls/live", &admin).await.json();
    assert!(empty["items"].as_array().unwrap().is_empty());

    let rows =
        h.gw.store()
            .audit_entries(&AuditFilter {
                call_id: Some(id.clone()),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
    let statuses: Vec<u16> = rows.iter().map(|r| r.entry.status).collect();
    assert_eq!(statuses, vec![202, 404]);
    assert!(rows.iter().all(|r| r.entry.action == "calls.hangup"));

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.attempt.id, id);
    assert_eq!(cdr.outcome.end_reason, EndReason::OperatorHangup);
}

#[tokio::test]
async fn healthz_is_503_when_the_recording_dir_is_not_writable() {
    let h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let ok = api.call(Method::GET, "/healthz", None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let body = ok.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"]["ok"], true);
    assert_eq!(body["checks"]["recording_dir"]["ok"], true);

    // A file where the folder should be: nothing can be created under it (also as root).
    let dir = h.dir.path().join("recordings");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a folder").unwrap();
    // /healthz reads the disk watcher's verdict, which follows within a round.
    h.wait_for_disk(false).await;
    let bad = api.call(Method::GET, "/healthz", None).await;
    assert_eq!(bad.status, StatusCode::SERVICE_UNAVAILABLE, "{}", bad.text);
    let body = bad.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["ok"], true);
    assert_eq!(body["checks"]["recording_dir"]["ok"], false);
    assert!(body["checks"]["recording_dir"]["error"].is_string());

    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    h.wait_for_disk(true).await;
    assert_eq!(
        api.call(Method::GET, "/healthz", None).await.status,
        StatusCode::OK
    );
    assert_eq!(h.gw.store().count_audit().await.unwrap(), 0);
    h.finish().await;
}

/// Checks the Prometheus text format line by line; returns the samples (name with labels,
/// value).
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    let mut typed = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                let t = parts.next().unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
                if t == "histogram" {
                    histograms.insert(name.to_string());
                }
                typed.insert(name.to_string());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| histograms.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        samples.push((series.to_string(), v));
    }
    samples
}

#[tokio::test]
async fn metrics_show_the_call() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let carrier = api_token(&h, "carrier", Role::Carrier, &[TRUNK]).await;
    let mut call = h.establish().await;

    let during = api.get("/metrics", &carrier).await;
    assert_eq!(during.status, StatusCode::OK, "{}", during.text);
    let samples = parse_prometheus(&during.text);
    let value = |samples: &[(String, f64)], series: &str| {
        samples
            .iter()
            .find(|(s, _)| s == series)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {series} in {samples:?}"))
    };
    assert_eq!(
        value(
            &samples,
            &format!("trunkguard_active_calls{{trunk=\"{TRUNK}\"}}")
        ),
        1.0
    );
    assert_eq!(value(&samples, "trunkguard_concurrency_drift"), 0.0);
    value(&samples, "trunkguard_cdr_queue_depth");
    value(&samples, "trunkguard_recordings_active");

    h.hang_up_from_pbx(&mut call.pbx).await;
    refused_call(&mut h).await;
    h.assert_idle().await;
    wait_for_cdrs(&h, 2).await;

    let after = parse_prometheus(&api.get("/metrics", &carrier).await.text);
    assert_eq!(
        value(
            &after,
            &format!("trunkguard_calls_admitted_total{{trunk=\"{TRUNK}\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            &format!(
                "trunkguard_call_attempts_total{{trunk=\"{TRUNK}\",disposition=\"answered\",reason=\"\"}}"
            )
        ),
        1.0
    );
    assert!(!after
        .iter()
        .any(|(s, _)| s.starts_with("trunkguard_active_calls{")));
    assert_eq!(value(&after, "trunkguard_cdrs_written_total"), 2.0);
    h.finish().await;
}

/// A carrier pulls the day's KPI CSV: its counts equal the calls placed; JSON says the same; a
/// carrier token limited to another trunk sees none of them and may not name this trunk.
#[tokio::test]
async fn the_carrier_pulls_the_days_kpis_and_they_count_the_calls_placed() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let carrier = api_token(&h, "carrier", Role::Carrier, &[TRUNK]).await;
    let other = api_token(&h, "carrier-other", Role::Carrier, &["other"]).await;
    answered_call(&mut h, CALLEE).await;
    answered_call(&mut h, CALLEE2).await;
    refused_call(&mut h).await;
    wait_for_cdrs(&h, 3).await;
    // The monitor's view agrees: the writer stored the buckets with the CDRs.
    h.assert_idle().await;

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let csv = api
        .get(
            &format!("/api/v1/reports/kpis?from={today}&bucket=day&format=csv"),
            &carrier,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    let mut lines = csv.text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(header, trunkguard::monitor::report::COLUMNS);
    let col = |name: &str| header.iter().position(|c| *c == name).expect("column");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let trunk_row = rows
        .iter()
        .find(|r| r[col("subject")] == "trunk")
        .unwrap_or_else(|| panic!("a trunk row in {}", csv.text));
    assert_eq!(trunk_row[col("attempts")], "3");
    assert_eq!(trunk_row[col("answered")], "2");
    assert_eq!(trunk_row[col("refused_by_gateway")], "1");
    assert_eq!(trunk_row[col("asr")], "1.0000", "2 answered of 2 offered");

    let json = api
        .get(
            &format!("/api/v1/reports/kpis?from={today}&bucket=day"),
            &carrier,
        )
        .await
        .json();
    let items = json["items"].as_array().expect("items");
    let trunk = items
        .iter()
        .find(|r| r["subject"] == "trunk")
        .expect("trunk row");
    assert_eq!(trunk["attempts"], 3);
    assert_eq!(trunk["answered"], 2);

    let none = api.get("/api/v1/reports/kpis", &other).await.json();
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));
    api.get(&format!("/api/v1/reports/kpis?trunk={TRUNK}"), &other)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    api.get("/api/v1/reports/kpis?bucket=week", &carrier)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    h.finish().await;
}

/// An admin suspends a caller ID over the API: the next call is refused, the steps in force and
/// the log show it with the token's name and reason; lifted by its id, the number calls again.
#[tokio::test]
async fn an_admin_imposes_and_lifts_a_step_over_the_api() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let admin = api_token(&h, "ops", Role::Admin, &[]).await;
    let carrier = api_token(&h, "carrier", Role::Carrier, &[TRUNK]).await;
    let post = |path: &str, body: Value| {
        api.client
            .post(format!("{}{path}", api.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let bad = post(
        "/api/v1/enforcement",
        serde_json::json!({"trunk": TRUNK, "number": CALLER, "step": "shut_down", "reason": "x"}),
    )
    .await
    .expect("request");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["field"], "step", "{body}");

    let done = post(
        "/api/v1/enforcement",
        serde_json::json!({"trunk": TRUNK, "number": CALLER, "step": "suspend_number",
                           "duration": "2h", "reason": "carrier ticket 4711"}),
    )
    .await
    .expect("request");
    assert_eq!(done.status(), StatusCode::CREATED);
    refused_call_with(&mut h, CALLER, 403).await;

    let state = api.get("/api/v1/enforcement", &carrier).await.json();
    let in_force = state["in_force"].as_array().expect("in_force");
    assert_eq!(in_force.len(), 1, "{state}");
    assert_eq!(in_force[0]["step"], "suspend_number");
    assert_eq!(in_force[0]["cause"], "operator");
    let id = in_force[0]["id"].as_str().expect("id").to_string();
    let log = state["log"].as_array().expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["operator"], "ops");
    assert_eq!(log[0]["reason"], "carrier ticket 4711");

    let lifted = post(
        &format!("/api/v1/enforcement/{id}/lift"),
        serde_json::json!({"reason": "resolved"}),
    )
    .await
    .expect("request");
    assert_eq!(lifted.status(), StatusCode::OK);
    let again = post(
        &format!("/api/v1/enforcement/{id}/lift"),
        serde_json::json!({"reason": "twice"}),
    )
    .await
    .expect("request");
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    answered_call(&mut h, CALLEE).await;
    let state = api.get("/api/v1/enforcement", &carrier).await.json();
    assert_eq!(state["in_force"].as_array().map(Vec::len), Some(0));
    assert_eq!(state["log"].as_array().map(Vec::len), Some(2));
    // Anomalies: none here (operators' steps are no anomalies), and the list answers.
    let anomalies = api.get("/api/v1/anomalies", &carrier).await.json();
    assert_eq!(anomalies["items"].as_array().map(Vec::len), Some(0));
    h.finish().await;
}

/// A carrier files complaints over the API: linked to the call they are about, counted once,
/// and three from different complainants suspend the caller ID (rule complaint_batch) at once.
#[tokio::test]
async fn complaints_filed_over_the_api_feed_the_rules_at_once() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let carrier = api_token(&h, "carrier", Role::Carrier, &[TRUNK]).await;
    let other = api_token(&h, "carrier-other", Role::Carrier, &["other"]).await;
    answered_call(&mut h, CALLEE).await;
    wait_for_cdrs(&h, 1).await;
    let file = |t: &str, complainant: &str| {
        api.client
            .post(format!("{}/api/v1/complaints", api.base))
            .bearer_auth(t.to_string())
            .json(&serde_json::json!({
                "complainant": complainant, "caller_id": CALLER,
                "category": "harassment", "text": "called again",
                "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }))
            .send()
    };
    let first = file(&carrier, CALLEE).await.expect("request");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["source"], "carrier");
    assert_eq!(first["calls"].as_array().map(Vec::len), Some(1), "{first}");
    // Another carrier's token may not complain about this trunk's numbers.
    let refused = file(&other, CALLEE2).await.expect("request");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        file(&carrier, CALLEE2).await.expect("request").status(),
        StatusCode::CREATED
    );
    assert_eq!(
        file(&carrier, "+8613900000003")
            .await
            .expect("request")
            .status(),
        StatusCode::CREATED
    );
    // Three complainants about one caller ID: suspended before the answer came back.
    refused_call_with(&mut h, CALLER, 403).await;
    let listed = api.get("/api/v1/complaints", &carrier).await.json();
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );
    let none = api.get("/api/v1/complaints", &other).await.json();
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));
    let anomalies = api.get("/api/v1/anomalies", &carrier).await.json();
    let rules: Vec<&str> = anomalies["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|a| a["rule"].as_str())
        .collect();
    assert!(rules.contains(&"complaint_batch"), "{anomalies}");
    h.finish().await;
}

/// A call from `caller` refused with `status`.
async fn refused_call_with(h: &mut Harness, caller: &str, status: u16) {
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(caller, CALLEE))
        .await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(status).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
}

#[tokio::test]
async fn openapi_document_covers_every_route_and_the_api_stops_with_the_gateway() {
    let h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let carrier = api_token(&h, "carrier", Role::Carrier, &[]).await;
    let doc = api.get("/api/v1/openapi.json", &carrier).await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    // Valid against the OpenAPI Initiative's 3.1 schema (and the check can fail: a document
    // without `info` is not).
    let schema: Value =
        serde_json::from_str(include_str!("../testdata/openapi/oas-3.1-schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the OAS 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "not valid OpenAPI 3.1: {errors:#?}");
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("info");
    assert!(!validator.is_valid(&broken));
    assert!(doc["components"]["schemas"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            assert!(op["security"].is_array(), "{method} {path}");
        }
    }
    let routed: BTreeSet<(String, String)> = route_table()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, routed);

    let addr = h.gw.http_addr().unwrap();
    h.finish().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the API still listens after shutdown"
    );
}
