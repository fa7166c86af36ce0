//! Sessions: no session means the sign-in page and back; the sign-in's strict cookie and the
//! sign-out; a form without the session's CSRF token refused; a revoked token ending its sessions.

use super::*;

#[tokio::test]
async fn without_a_session_every_page_leads_to_sign_in() {
    let s = scene().await;
    let mut c = Client::new(&s.base);
    let id = &s.answered;
    for path in [
        "/console/".to_string(),
        "/console/calls?number=5678".to_string(),
        "/console/calls/export".to_string(),
        format!("/console/calls/{id}"),
        format!("/console/calls/{id}/recording"),
        format!("/console/calls/{id}/verify"),
    ] {
        let p = c.get(&path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}: {}", p.text);
        assert!(
            p.location()
                .starts_with("/console/sign-in?next=%2Fconsole%2F"),
            "{path}: {}",
            p.location()
        );
        assert!(!p.text.contains(id.as_str()), "{path}: shows the call");
    }
    for path in [
        format!("/console/calls/{id}/hold"),
        "/console/sign-out".to_string(),
    ] {
        let p = c.post(&path, &[("reason", "x")]).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert!(p.location().starts_with("/console/sign-in"), "{path}");
    }
    assert!(!s.h.gw.store().is_on_hold(id).await.unwrap());
    // `/` leads to the console; the sign-in page is there for anyone.
    assert_eq!(c.get("/").await.location(), "/console/");
    let page = c.get("/console/sign-in?next=%2Fconsole%2Fcalls").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Please sign in"), "{}", page.text);
    // Refused requests are audited as the API's 401s are: actor unknown.
    let rows = audit(&s, "console.calls.get").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor, "unknown");
    assert_eq!(rows[0].status, 303);
    assert_eq!(rows[0].call_id.as_deref(), Some(id.as_str()));
    // Unknown pages: an HTML 404.
    let p = c.get("/console/nothing/here").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    s.h.finish().await;
}

#[tokio::test]
async fn sign_in_keeps_a_strict_session_and_sign_out_ends_it() {
    let s = scene().await;
    let mut c = Client::new(&s.base);

    // A wrong token, a form without its CSRF cookie: refused, no session.
    let form = c.get("/console/sign-in").await;
    let csrf = form.csrf();
    let bad = c
        .post("/console/sign-in", &[("csrf", &csrf), ("token", "tg_nope")])
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.text.contains("not valid"), "{}", bad.text);
    assert!(!c.cookies.contains_key("tg_session"));
    let mut stranger = Client::new(&s.base);
    let forged = stranger
        .post(
            "/console/sign-in",
            &[("csrf", "whatever"), ("token", &s.officer)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    assert!(!stranger.cookies.contains_key("tg_session"));

    let signed = c.sign_in(&s.officer).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.text);
    assert_eq!(signed.location(), "/console/");
    let cookie = signed
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("tg_session="))
        .expect("a session cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(part), "{cookie}: {part}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(
        !cookie.contains(&s.officer),
        "the token never goes to the browser"
    );
    let home = c.get("/console/").await;
    assert_eq!(home.location(), "/console/calls");
    let calls = c.get("/console/calls").await;
    assert_eq!(calls.status, StatusCode::OK);
    assert!(calls.text.contains(&s.answered), "{}", calls.text);
    let csp = calls.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(calls.headers["cache-control"], "no-store");
    assert_eq!(calls.headers["x-frame-options"], "DENY");

    // Sign-out needs the session's CSRF token too.
    let refused = c.post("/console/sign-out", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(c.get("/console/calls").await.status, StatusCode::OK);
    let csrf = calls.csrf();
    let out = c.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/console/sign-in?out=1");
    assert!(!c.cookies.contains_key("tg_session"), "cookie deleted");

    // The old cookie is worth nothing now.
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("tg_session=")
        .to_string();
    c.cookies.insert("tg_session".into(), session);
    assert_eq!(c.get("/console/calls").await.status, StatusCode::SEE_OTHER);

    let rows = audit(&s, "console.sign_in").await;
    let outcomes: Vec<(&str, u16)> = rows.iter().map(|r| (r.actor.as_str(), r.status)).collect();
    assert_eq!(
        outcomes,
        vec![("unknown", 401), ("unknown", 403), ("officer", 303)]
    );
    assert!(
        rows.iter().all(|r| !r.query.contains("tg_")),
        "no token in the log"
    );
    let searches = audit(&s, "console.calls.search").await;
    assert!(searches.iter().any(|r| r.actor == "officer"
        && r.role.as_deref() == Some("compliance")
        && r.status == 200));
    assert_eq!(audit(&s, "console.sign_out").await.len(), 2);
    s.h.finish().await;
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused() {
    let s = scene().await;
    let mut c = Client::new(&s.base);
    c.sign_in(&s.officer).await;
    let page = c.get(&format!("/console/calls/{}", s.answered)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let csrf = page.csrf();
    let hold = format!("/console/calls/{}/hold", s.answered);

    for form in [
        vec![("reason", "case 42")],
        vec![("reason", "case 42"), ("csrf", "")],
        vec![("reason", "case 42"), ("csrf", "0000")],
        vec![("reason", "case 42"), ("csrf", &csrf), ("csrf", &csrf)],
    ] {
        let p = c.post(&hold, &form).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{form:?}");
        assert!(p.text.contains("security token"), "{}", p.text);
    }
    // Another session's token does not do either.
    let mut other = Client::new(&s.base);
    other.sign_in(&s.officer).await;
    let theirs = other.get("/console/calls").await.csrf();
    assert_ne!(theirs, csrf);
    let p = c
        .post(&hold, &[("reason", "case 42"), ("csrf", &theirs)])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(!s.h.gw.store().is_on_hold(&s.answered).await.unwrap());

    // The page's own form: an empty reason is shown next to the field, then it holds.
    let p = c.post(&hold, &[("reason", " "), ("csrf", &csrf)]).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.text.contains("Say why."), "{}", p.text);
    let p = c
        .post(&hold, &[("reason", "case 42"), ("csrf", &csrf)])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
    assert!(s.h.gw.store().is_on_hold(&s.answered).await.unwrap());
    let page = c.get(p.location()).await;
    assert!(page.text.contains("The call is on hold."));
    assert!(page.text.contains("case 42"));
    let rows = audit(&s, "console.holds.place").await;
    let statuses: Vec<u16> = rows.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![403, 403, 403, 403, 403, 400, 303]);
    assert!(rows
        .iter()
        .all(|r| r.call_id.as_deref() == Some(s.answered.as_str())));

    let release = format!("/console/calls/{}/hold/release", s.answered);
    assert_eq!(
        c.post(&release, &[("reason", "done")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(s.h.gw.store().is_on_hold(&s.answered).await.unwrap());
    let p = c
        .post(&release, &[("reason", "done"), ("csrf", &csrf)])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(!s.h.gw.store().is_on_hold(&s.answered).await.unwrap());
    s.h.finish().await;
}

#[tokio::test]
async fn a_revoked_token_ends_its_sessions() {
    let s = scene().await;
    let mut c = Client::new(&s.base);
    c.sign_in(&s.officer).await;
    assert_eq!(c.get("/console/calls").await.status, StatusCode::OK);
    s.h.gw
        .store()
        .revoke_api_token("officer", chrono::Utc::now())
        .await
        .unwrap();
    let p = c.get("/console/calls").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p.location().starts_with("/console/sign-in"));
    assert_eq!(c.sign_in(&s.officer).await.status, StatusCode::UNAUTHORIZED);
    s.h.finish().await;
}
