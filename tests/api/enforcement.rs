//! Enforcement over the API: a step imposed and lifted by an admin, complaints filed by a
//! carrier feeding the rules at once.

use super::*;

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
