//! A call's SIP trace through the API and the console, against the real gateway (one answered
//! call with audio, one refused: `console/support.rs`): `GET /api/v1/calls/{id}/sip` as JSON
//! (times in µs) and as text (`?format=text`, `Accept: text/plain`); a carrier sees its trunk's
//! calls' outside leg only and no other trunk's; each read is audited; the call's page shows the
//! ladder in both languages; the retention purge deletes a trace with the recordings' retention
//! and keeps a held call's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;
#[path = "console/support.rs"]
mod support;

use std::time::Duration;

use common::api::{api_token, Api};
use reqwest::StatusCode;
use support::{scene, Client};
use trunkguard::api::Role;
use trunkguard::model::SipTrace;
use trunkguard::store::{sip_trace, AuditFilter};

/// The call's final trace once its writer has stored it (a moment after the CDR; an answered
/// call's setup is stored at the answer already): the one holding a message starting `last`.
async fn stored_trace(s: &support::Scene, id: &str, last: &str) -> SipTrace {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(t) = sip_trace::read(s.h.gw.store(), id).await.unwrap() {
            if t.messages.iter().any(|m| m.first_line().starts_with(last)) {
                return t;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no SIP trace stored for {id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn first_lines(v: &serde_json::Value, leg: &str) -> Vec<String> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["leg"] == leg)
        .map(|m| {
            let text = m["message"].as_str().unwrap();
            format!(
                "{} {}",
                m["direction"].as_str().unwrap(),
                text.lines().next().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn the_api_serves_the_trace_as_json_and_text_to_the_roles_that_may_see_it() {
    let s = scene().await;
    let api = Api::new(&s.h);
    let trace = stored_trace(&s, &s.answered, "BYE ").await;
    let path = format!("/api/v1/calls/{}/sip", s.answered);

    let r = api.get(&path, &s.officer).await.ok(StatusCode::OK);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    let v = r.json();
    assert_eq!(v["call_id"], s.answered.as_str());
    assert_eq!(
        v["messages"].as_array().unwrap().len(),
        trace.messages.len()
    );
    let m0 = &v["messages"][0];
    // RFC 3339 with microseconds, UTC.
    let at = m0["at"].as_str().unwrap();
    assert_eq!(at.len(), "2026-12-06T10:00:00.123456Z".len(), "{at}");
    assert!(at.ends_with('Z') && at.as_bytes()[19] == b'.', "{at}");
    assert_eq!(m0["leg"], "inside");
    assert_eq!(m0["direction"], "in");
    assert_eq!(m0["transport"], "udp");
    assert_eq!(m0["local"], s.h.inside().to_string());
    assert!(m0["peer"]
        .as_str()
        .unwrap()
        .parse::<std::net::SocketAddr>()
        .is_ok());
    assert!(m0["message"].as_str().unwrap().starts_with("INVITE sip:"));
    let inside = first_lines(&v, "inside");
    assert!(inside[0].starts_with("in INVITE "), "{inside:?}");
    assert!(
        inside.iter().any(|l| l.starts_with("in BYE ")),
        "{inside:?}"
    );
    assert!(first_lines(&v, "outside")
        .iter()
        .any(|l| l.starts_with("out INVITE ")));

    // Text: by the query parameter or by Accept.
    let text = api
        .get(&format!("{path}?format=text"), &s.officer)
        .await
        .ok(StatusCode::OK);
    assert!(
        text.content_type().starts_with("text/plain"),
        "{}",
        text.content_type()
    );
    assert_eq!(text.text, trace.to_text());
    assert!(
        text.text.contains(&format!(
            " inside {} -> {} UDP\nINVITE sip:",
            m0["peer"].as_str().unwrap(),
            s.h.inside()
        )),
        "{}",
        text.text
    );
    let by_accept = api
        .client
        .get(format!("{}{path}", api.base))
        .bearer_auth(&s.officer)
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(by_accept.status(), StatusCode::OK);
    assert_eq!(by_accept.text().await.unwrap(), trace.to_text());
    api.get(&format!("{path}?format=xml"), &s.officer)
        .await
        .refused(StatusCode::BAD_REQUEST, "bad_request", Some("format"));

    // The refused call has its INVITE and its 403.
    stored_trace(&s, &s.refused, "SIP/2.0 403 ").await;
    let refused = api
        .get(&format!("/api/v1/calls/{}/sip", s.refused), &s.officer)
        .await
        .ok(StatusCode::OK)
        .json();
    let lines = first_lines(&refused, "inside");
    assert!(lines[0].starts_with("in INVITE "), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("out SIP/2.0 403 ")),
        "{lines:?}"
    );

    // A carrier: its trunk's calls, the outside leg only; not another trunk's.
    let carrier = api.get(&path, &s.carrier).await.ok(StatusCode::OK).json();
    assert!(first_lines(&carrier, "inside").is_empty());
    assert_eq!(first_lines(&carrier, "outside"), first_lines(&v, "outside"));
    let stranger = api_token(&s.h, "other-carrier", Role::Carrier, &["other"]).await;
    api.get(&path, &stranger)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    api.get(&path, &s.admin)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    api.get("/api/v1/calls/no-such-call/sip", &s.officer)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Every read is audited, with its call.
    let audited =
        s.h.gw
            .store()
            .audit_entries(&AuditFilter {
                action: Some("calls.sip_trace".to_string()),
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
    assert!(audited.len() >= 8, "{audited:?}");
    assert!(audited
        .iter()
        .any(|r| r.entry.call_id.as_deref() == Some(s.answered.as_str())));
    s.h.finish().await;
}

#[tokio::test]
async fn the_call_page_shows_the_ladder_in_both_languages() {
    let s = scene().await;
    stored_trace(&s, &s.answered, "BYE ").await;
    let mut c = Client::new(&s.base);
    c.sign_in(&s.officer).await;
    let page = c.get(&format!("/console/calls/{}", s.answered)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let t = &page.text;
    assert!(t.contains("SIP ladder of both legs"), "{t}");
    assert!(t.contains("<ol class=\"ladder\">"), "{t}");
    assert!(
        t.contains("<li class=\"msg inside\"><details><summary>"),
        "{t}"
    );
    assert!(
        t.contains("<li class=\"msg outside\"><details><summary>"),
        "{t}"
    );
    assert!(t.contains("<code>INVITE sip:"), "{t}");
    assert!(t.contains("<pre class=\"sip\">INVITE sip:"), "{t}");
    assert!(t.contains("+0.000 s"), "{t}");
    for lane in ["PBX", "Gateway", "Carrier"] {
        assert!(t.contains(&format!("<span>{lane}</span>")), "{lane}");
    }

    let mut zh = Client::new(&s.base);
    zh.accept_language = "zh-CN,zh;q=0.9";
    zh.sign_in(&s.officer).await;
    let page = zh.get(&format!("/console/calls/{}", s.answered)).await;
    assert!(page.text.contains("双向 SIP 信令时序图"), "{}", page.text);
    assert!(page.text.contains("<span>运营商</span>"), "{}", page.text);
    s.h.finish().await;
}

#[tokio::test]
async fn retention_deletes_the_trace_with_the_recording_but_not_under_hold() {
    let s = scene().await;
    stored_trace(&s, &s.answered, "BYE ").await;
    stored_trace(&s, &s.refused, "SIP/2.0 403 ").await;
    let store = s.h.gw.store().clone();
    store
        .place_hold(&s.answered, "officer", "case 9", chrono::Utc::now())
        .await
        .unwrap();
    let later = chrono::Utc::now() + chrono::Duration::days(400);
    let report = trunkguard::retention::purge(
        &store,
        &s.h.config.recording.dir,
        &s.h.config.retention,
        later,
        &|_| false,
    )
    .await
    .unwrap();
    assert_eq!(report.sip_traces_deleted, 1, "{report:?}");
    assert!(sip_trace::read(&store, &s.answered)
        .await
        .unwrap()
        .is_some());
    assert!(sip_trace::read(&store, &s.refused).await.unwrap().is_none());
    s.h.finish().await;
}

#[tokio::test]
async fn an_answered_calls_setup_is_stored_at_the_answer() {
    let mut h = common::start_gateway(&[]).await;
    let mut call = h.establish().await;
    let id = h.gw.registry().list()[0].id.clone();
    // While the call runs: its setup, both legs up to the 200 (a crash now keeps it).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let setup = loop {
        if let Some(t) = sip_trace::read(h.gw.store(), &id).await.unwrap() {
            break t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no trace at the answer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lines: Vec<String> = setup
        .messages
        .iter()
        .map(|m| format!("{} {:?} {}", m.leg, m.direction, m.first_line()))
        .collect();
    assert!(lines[0].starts_with("inside In INVITE "), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("outside Out INVITE ")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("outside In SIP/2.0 200 ")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("inside Out SIP/2.0 200 ")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("BYE")), "{lines:?}");
    h.hang_up_from_pbx(&mut call.pbx).await;
    h.finish().await;
}
