//! Who may call what: every route refused to the wrong role and audited, and the OpenAPI
//! document naming every route of the table.

use super::*;

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
        serde_json::from_str(include_str!("../../testdata/openapi/oas-3.1-schema.json")).unwrap();
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
