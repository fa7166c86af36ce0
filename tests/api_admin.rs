//! The admin's and the carrier's side of the HTTP API against the real gateway: numbers and
//! blocked numbers changed over HTTP decide the very next call; trunks created, read, changed
//! and deleted (with the 400/404/409 answers); CDR search by reason; the CDRs of a period as CSV
//! (a carrier limited to another trunk sees none); `trunkguard cdr search` run as a binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::api::*;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use trunkguard::api::Role;
use trunkguard::store::AuditFilter;

/// A caller ID that is not (yet) one of the trunk's numbers.
const NEW_NUMBER: &str = "+861012340000";

/// Wait (bounded) until the store holds `n` CDRs.
async fn wait_for_cdrs(h: &Harness, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let have = h.gw.store().count_cdrs().await.expect("count");
        if have >= n {
            assert_eq!(have, n, "more CDRs than calls placed");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{have} CDRs stored, waiting for {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An outbound call the gateway refuses: the PBX gets `status` with `phrase`.
async fn refused_call(h: &mut Harness, caller: &str, callee: &str, status: u16, phrase: &str) {
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(caller, callee))
        .await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(status).await;
    assert_eq!(resp.reason(), phrase);
    h.pbx.ack_non2xx(&invite, &resp).await;
}

/// An outbound call the gateway admits: it reaches the carrier, which answers busy.
async fn admitted_call(h: &mut Harness, caller: &str, callee: &str) {
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(caller, callee))
        .await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier
        .reply(&c_invite, 486, Some(&common::token("ct")))
        .await;
    h.carrier.expect_request("ACK").await;
    let resp = h.pbx.expect_response(486).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
}

fn plus(n: &str) -> String {
    n.replace('+', "%2B")
}

#[tokio::test]
async fn an_admin_adds_a_number_and_the_next_call_with_it_is_admitted() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let admin = api_token(&h, "ops", Role::Admin, &[]).await;
    let officer = api_token(&h, "officer", Role::Compliance, &[]).await;
    let numbers = format!("/api/v1/trunks/{TRUNK}/numbers");

    // Not one of the trunk's numbers: refused.
    refused_call(&mut h, NEW_NUMBER, CALLEE, 403, "Caller ID Not Authorized").await;

    // The admin authorizes it (any spelling; stored normalized with its +).
    let added = api
        .post(&numbers, &admin, json!({ "number": "+86 1012 340000" }))
        .await
        .ok(StatusCode::CREATED)
        .json();
    assert_eq!(
        added["items"],
        json!([CALLER, CALLER2, NEW_NUMBER]),
        "{added}"
    );
    api.post(&numbers, &admin, json!({ "number": NEW_NUMBER }))
        .await
        .refused(StatusCode::CONFLICT, "conflict", None);
    api.post(&numbers, &admin, json!({ "number": "not a number" }))
        .await
        .refused(StatusCode::BAD_REQUEST, "bad_request", Some("number"));
    api.post(&numbers, &admin, json!({ "digits": NEW_NUMBER }))
        .await
        .refused(StatusCode::BAD_REQUEST, "bad_request", Some("body"));
    api.post(
        "/api/v1/trunks/nope/numbers",
        &admin,
        json!({ "number": NEW_NUMBER }),
    )
    .await
    .refused(StatusCode::NOT_FOUND, "not_found", None);
    let listed = api.get(&numbers, &admin).await.ok(StatusCode::OK).json();
    assert_eq!(listed["items"], added["items"]);
    // The compliance officer may not change trunks.
    api.post(&numbers, &officer, json!({ "number": "+861012340001" }))
        .await
        .refused(StatusCode::FORBIDDEN, "forbidden", None);

    // The very next call with it is admitted.
    admitted_call(&mut h, NEW_NUMBER, CALLEE).await;

    // Withdrawn: refused again.
    let left = api
        .delete(&format!("{numbers}/{NEW_NUMBER}"), &admin)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(left["items"], json!([CALLER, CALLER2]));
    api.delete(&format!("{numbers}/{NEW_NUMBER}"), &admin)
        .await
        .refused(StatusCode::NOT_FOUND, "not_found", None);
    refused_call(&mut h, NEW_NUMBER, CALLEE, 403, "Caller ID Not Authorized").await;

    // A blocked callee: refused with the blocked reason; unblocked: admitted.
    let blocked = format!("/api/v1/trunks/{TRUNK}/blocked");
    let list = api
        .post(&blocked, &admin, json!({ "number": CALLEE2 }))
        .await
        .ok(StatusCode::CREATED)
        .json();
    assert_eq!(list["items"], json!([CALLEE2]));
    refused_call(&mut h, CALLER, CALLEE2, 403, "Number Blocked").await;
    let list = api
        .delete(&format!("{blocked}/{}", plus(CALLEE2)), &admin)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(list["items"], json!([]));
    admitted_call(&mut h, CALLER, CALLEE2).await;

    // The trunk's last number cannot go: a 409 (the request is well formed, the trunk's state
    // refuses it) naming `numbers`, nothing changed.
    api.delete(&format!("{numbers}/{CALLER}"), &admin)
        .await
        .ok(StatusCode::OK);
    api.delete(&format!("{numbers}/{CALLER2}"), &admin)
        .await
        .refused(StatusCode::CONFLICT, "conflict", Some("numbers"));
    assert_eq!(h.gw.trunks().await[0].numbers, [CALLER2]);

    // The CDRs say why; the search finds them by reason.
    wait_for_cdrs(&h, 5).await;
    let by_reason = |reason: &str| format!("/api/v1/cdrs?reason={reason}");
    let unauthorized = api
        .get(&by_reason("caller_id_not_authorized"), &officer)
        .await
        .ok(StatusCode::OK)
        .json();
    let items = unauthorized["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{unauthorized}");
    assert!(items
        .iter()
        .all(|c| c["caller"] == NEW_NUMBER.trim_start_matches('+') || c["caller"] == NEW_NUMBER));
    let blocked_cdrs = api.get(&by_reason("number_blocked"), &officer).await.json();
    assert_eq!(blocked_cdrs["items"].as_array().unwrap().len(), 1);
    assert_eq!(blocked_cdrs["items"][0]["disposition"], "refused");
    let busy = api.get(&by_reason("busy"), &officer).await.json();
    assert_eq!(busy["items"].as_array().unwrap().len(), 2, "{busy}");
    api.get("/api/v1/cdrs?reason=Number%20Blocked", &officer)
        .await
        .refused(StatusCode::BAD_REQUEST, "bad_request", Some("reason"));

    // Who changed the trunk: the token's name, in the store and in the audit log.
    let stored = h.gw.store().trunk_definitions().await.expect("read");
    assert_eq!(stored[0].updated_by, "ops");
    let audit =
        h.gw.store()
            .audit_entries(&AuditFilter {
                limit: 1000,
                ..AuditFilter::default()
            })
            .await
            .expect("audit");
    let adds: Vec<_> = audit
        .iter()
        .filter(|r| r.entry.action == "trunks.numbers.add")
        .collect();
    assert_eq!(adds.len(), 6, "every attempt audited, refused ones too");
    assert!(adds
        .iter()
        .any(|r| r.entry.actor == "ops" && r.entry.status == 201));
    assert!(adds
        .iter()
        .any(|r| r.entry.actor == "officer" && r.entry.status == 403));
    h.finish().await;
}

/// A second trunk: its own PBX network, carrier and number.
fn second_trunk(h: &Harness) -> Value {
    json!({
        "name": "second",
        "pbx": ["127.0.0.20/32"],
        "carrier": [h.carrier.addr().to_string(), "127.0.0.12:5060"],
        "inbound_to": h.pbx.addr().to_string(),
        "numbers": ["+861099990000"],
        "max_cps": 5,
        "calling_hours": "08:00-20:00",
        "timezone": "Asia/Shanghai",
        "rules": { "error_rate": { "threshold": 0.2, "window": "1h", "step": "alert" } }
    })
}

#[tokio::test]
async fn trunks_are_created_read_changed_and_deleted_over_http() {
    let h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let admin = api_token(&h, "ops", Role::Admin, &[]).await;
    let carrier = api_token(&h, "carrier", Role::Carrier, &[]).await;

    let list = api
        .get("/api/v1/trunks", &admin)
        .await
        .ok(StatusCode::OK)
        .json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], TRUNK);
    assert_eq!(items[0]["updated_by"], "config file");
    assert_eq!(items[0]["definition"]["numbers"], json!([CALLER, CALLER2]));
    api.get("/api/v1/trunks", &carrier)
        .await
        .refused(StatusCode::FORBIDDEN, "forbidden", None);

    // Create: what is read back is what was sent; admission and the monitor have it.
    let body = second_trunk(&h);
    let created = api
        .post("/api/v1/trunks", &admin, body.clone())
        .await
        .ok(StatusCode::CREATED)
        .json();
    assert_eq!(created["definition"], body);
    assert_eq!(created["updated_by"], "ops");
    let read = api
        .get("/api/v1/trunks/second", &admin)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(read["definition"], body);
    let second = h.gw.trunks().await.into_iter().nth(1).expect("in force");
    assert_eq!((second.name.as_str(), second.max_cps), ("second", 5.0));
    assert_eq!(second.carrier.len(), 2);
    assert_eq!(second.timezone, chrono_tz::Asia::Shanghai);
    assert!(h.gw.policy().live("second").is_some(), "admission knows it");
    api.post("/api/v1/trunks", &admin, body.clone())
        .await
        .refused(StatusCode::CONFLICT, "conflict", None);

    // Bad definitions: a 400 naming the key, nothing stored.
    let with = |key: &str, value: Value| {
        let mut b = second_trunk(&h);
        b["name"] = json!("third");
        b["pbx"] = json!(["127.0.0.30/32"]);
        b["numbers"] = json!(["+861099990001"]);
        b[key] = value;
        b
    };
    for (body, field) in [
        (with("max_cps", json!(0)), "max_cps"),
        (with("max_cps", json!("fast")), "max_cps"),
        (with("colour", json!("red")), "colour"),
        (with("timezone", json!("Mars/Olympus")), "timezone"),
        (with("calling_hours", json!("9 to 5")), "calling_hours"),
        (with("pbx", json!([])), "pbx"),
        // Forms the config would read but the document does not allow.
        (with("pbx", json!(["127.0.0.030/32"])), "pbx[0]"),
        (with("inbound_to", json!("127.0.0.1:0")), "inbound_to"),
        (with("calling_hours", json!("+9:00-17:00")), "calling_hours"),
        (
            with("max_call_secs", json!(30 * 24 * 3600)),
            "max_call_secs",
        ),
        (with("name", json!("bad name")), "name"),
        (with("carrier", Value::Null), "carrier"),
        (
            with("rules", json!({ "error_rate": { "window": "3d" } })),
            "rules.error_rate.window",
        ),
        (json!(["not", "a", "table"]), "body"),
    ] {
        api.post("/api/v1/trunks", &admin, body.clone())
            .await
            .refused(StatusCode::BAD_REQUEST, "bad_request", Some(field));
    }
    // Numbers valid alone that clash: another trunk's, or one listed twice once normalized.
    for numbers in [json!([CALLER]), json!(["+861099990001", "+86 1099 990001"])] {
        api.post("/api/v1/trunks", &admin, with("numbers", numbers))
            .await
            .refused(StatusCode::CONFLICT, "conflict", Some("numbers"));
    }
    assert_eq!(h.gw.trunks().await.len(), 2);

    // Change: the name stays; applied at once; the same body again changes nothing.
    let mut changed = body.clone();
    changed["max_cps"] = json!(7.5);
    changed["blocked_numbers"] = json!([CALLEE]);
    let put = api
        .put("/api/v1/trunks/second", &admin, changed.clone())
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(put["definition"], changed);
    let second = h.gw.trunks().await.into_iter().nth(1).expect("in force");
    assert_eq!(second.max_cps, 7.5);
    assert_eq!(second.blocked_numbers, [CALLEE]);
    let again = api
        .put("/api/v1/trunks/second", &admin, put["definition"].clone())
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(again["definition"], changed);
    let mut renamed = changed.clone();
    renamed["name"] = json!("renamed");
    api.put("/api/v1/trunks/second", &admin, renamed)
        .await
        .refused(StatusCode::CONFLICT, "conflict", Some("name"));
    api.put("/api/v1/trunks/nope", &admin, changed.clone())
        .await
        .refused(StatusCode::NOT_FOUND, "not_found", None);
    api.get("/api/v1/trunks/nope", &admin)
        .await
        .refused(StatusCode::NOT_FOUND, "not_found", None);

    // Delete.
    api.delete("/api/v1/trunks/second", &admin)
        .await
        .ok(StatusCode::NO_CONTENT);
    api.delete("/api/v1/trunks/second", &admin).await.refused(
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    api.get("/api/v1/trunks/second", &admin).await.refused(
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert!(
        h.gw.policy().live("second").is_none(),
        "admission forgot it"
    );
    let stored = h.gw.store().trunk_definitions().await.expect("read");
    assert_eq!(stored.len(), 1);
    h.finish().await;
}

/// An answered outbound call from CALLER to `callee`, ended by the PBX.
async fn answered_call(h: &mut Harness, callee: &str) {
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(CALLER, callee))
        .await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    let tag = common::token("ct");
    h.carrier
        .reply_with(&c_invite, 200, Some(&tag), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, invite.cseq).await;
    h.carrier.expect_request("ACK").await;
    h.hang_up_from_pbx(&mut pbx).await;
}

/// The ids in a CSV export (checking its header).
fn csv_ids(text: &str) -> Vec<String> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, trunkguard::monitor::cdr_csv::COLUMNS);
    r.records()
        .map(|r| r.expect("a CSV row")[0].to_string())
        .collect()
}

#[tokio::test]
async fn a_carrier_exports_the_periods_cdrs_as_csv_and_sees_only_its_trunks() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let carrier = api_token(&h, "carrier", Role::Carrier, &[TRUNK]).await;
    let elsewhere = api_token(&h, "carrier-other", Role::Carrier, &["other"]).await;
    let officer = api_token(&h, "officer", Role::Compliance, &[]).await;
    let admin = api_token(&h, "ops", Role::Admin, &[]).await;
    let from = chrono::Utc::now() - chrono::Duration::hours(1);
    answered_call(&mut h, CALLEE).await;
    answered_call(&mut h, CALLEE2).await;
    refused_call(&mut h, NEW_NUMBER, CALLEE, 403, "Caller ID Not Authorized").await;
    wait_for_cdrs(&h, 3).await;
    let to = chrono::Utc::now() + chrono::Duration::hours(1);
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let period = format!("from={}&to={}", fmt(from), fmt(to));
    let export = format!("/api/v1/cdrs/export?{period}");

    let csv = api.get(&export, &carrier).await.ok(StatusCode::OK);
    assert!(
        csv.content_type().starts_with("text/csv"),
        "{}",
        csv.content_type()
    );
    let mut ids = csv_ids(&csv.text);
    assert_eq!(ids.len(), 3, "one row per call placed:\n{}", csv.text);
    let mut stored: Vec<String> =
        h.gw.store()
            .recent_cdrs(100)
            .await
            .expect("read")
            .into_iter()
            .map(|c| c.attempt.id)
            .collect();
    ids.sort();
    stored.sort();
    assert_eq!(ids, stored);
    // The same filters as the search.
    let refused = api
        .get(&format!("{export}&disposition=refused"), &carrier)
        .await
        .ok(StatusCode::OK);
    assert_eq!(csv_ids(&refused.text).len(), 1);
    let compliance = api.get(&export, &officer).await.ok(StatusCode::OK);
    assert_eq!(csv_ids(&compliance.text).len(), 3);

    // A carrier limited to another trunk: none of them, and ours is refused by name.
    let none = api.get(&export, &elsewhere).await.ok(StatusCode::OK);
    assert!(csv_ids(&none.text).is_empty(), "{}", none.text);
    api.get(&format!("{export}&trunk={TRUNK}"), &elsewhere)
        .await
        .refused(StatusCode::FORBIDDEN, "forbidden", None);
    api.get(&export, &admin)
        .await
        .refused(StatusCode::FORBIDDEN, "forbidden", None);
    // A period that ends before it starts is empty (the document cannot say "after from");
    // paging is the server's.
    let inverted = api
        .get(
            &format!("/api/v1/cdrs/export?from={}&to={}", fmt(to), fmt(from)),
            &carrier,
        )
        .await
        .ok(StatusCode::OK);
    assert!(csv_ids(&inverted.text).is_empty(), "{}", inverted.text);
    api.get(&format!("{export}&limit=10"), &carrier)
        .await
        .refused(StatusCode::BAD_REQUEST, "bad_request", Some("limit"));

    // `trunkguard cdr search` finds the same calls in the same database.
    let config = h.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n\
             [database]\nurl = {:?}\n",
            h.config.database.url
        ),
    )
    .expect("write config");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trunkguard"))
            .arg("--config")
            .arg(&config)
            .args(["cdr", "search"])
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .expect("run trunkguard");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&["--format", "csv", "--from", &fmt(from), "--to", &fmt(to)]);
    assert!(ok, "{err}");
    let mut cli_ids = csv_ids(&out);
    cli_ids.sort();
    assert_eq!(cli_ids, stored);
    let (ok, out, err) = cli(&["--reason", "caller_id_not_authorized", "--format", "json"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let (ok, out, err) = cli(&["--number", CALLEE2, "--format", "table"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "header and one call:\n{out}");
    let (ok, _, err) = cli(&["--disposition", "maybe"]);
    assert!(!ok);
    assert!(err.contains("--disposition"), "{err}");
    h.finish().await;
}
