//! Calls over the API: the CDR search paged with a cursor, a call's full record, a live call
//! hung up by an admin.

use super::*;

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
