//! The web console over plain HTTP against the real gateway (no browser: `console_browser.rs`
//! drives Chromium): no session means the sign-in page; the sign-in sets a strict session cookie
//! and signs out; every form without the session's CSRF token is refused and changes nothing; a
//! revoked token ends its session; a carrier never reaches a call's page or its recording; the
//! search finds a call by its last digits and exports it as CSV; the pages follow the language;
//! every request is in the audit log with its actor, role, action and call.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;
#[path = "console/support.rs"]
mod support;

use reqwest::StatusCode;
use support::{scene, Client};
use trunkguard::store::AuditFilter;

async fn audit(s: &support::Scene, action: &str) -> Vec<trunkguard::store::NewAudit> {
    s.h.gw
        .store()
        .audit_entries(&AuditFilter {
            action: Some(action.to_string()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect()
}

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

#[tokio::test]
async fn a_carrier_never_reaches_a_recording() {
    let s = scene().await;
    let mut c = Client::new(&s.base);
    c.sign_in(&s.carrier).await;
    let list = c.get("/console/calls").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    // Its trunk's calls, without a way into them and nothing about recordings.
    assert!(list.text.contains("+861012345678") || list.text.contains("861012345678"));
    for hidden in [
        "/recording",
        "name=\"recording\"",
        "name=\"hold\"",
        &format!("href=\"/console/calls/{}\"", s.answered),
    ] {
        assert!(!list.text.contains(hidden), "{hidden} shown to a carrier");
    }
    // Both calls (two number cells each), whatever a typed URL asks about recordings.
    assert_eq!(list.text.matches("<td class=\"number\">").count(), 4);
    let filtered = c.get("/console/calls?recording=none").await;
    assert_eq!(
        filtered.text.matches("<td class=\"number\">").count(),
        4,
        "a carrier's recording filter is ignored"
    );
    let id = &s.answered;
    for path in [
        format!("/console/calls/{id}"),
        format!("/console/calls/{id}/recording"),
        format!("/console/calls/{id}/verify"),
    ] {
        let p = c.get(&path).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!p.text.contains("RIFF"), "{path}");
    }
    let csrf = list.csrf();
    let p = c
        .post(
            &format!("/console/calls/{id}/hold"),
            &[("reason", "x"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // A trunk that is not its own: refused, as in the API.
    let p = c.get("/console/calls?trunk=other").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let rows = audit(&s, "console.recordings.play").await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].actor.as_str(), rows[0].status), ("acme", 403));
    assert_eq!(rows[0].role.as_deref(), Some("carrier"));

    // The carrier's figures: the page with its charts, and the CSV.
    let kpis = c.get("/console/kpis").await;
    assert_eq!(kpis.status, StatusCode::OK, "{}", kpis.text);
    assert!(kpis.text.contains("id=\"chart-attempts\""), "{}", kpis.text);
    let csv = c.get("/console/kpis/export?bucket=day").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.text.starts_with("bucket_start,subject,trunk"),
        "{}",
        csv.text
    );
    assert_eq!(
        c.get("/console/kpis?trunk=other").await.status,
        StatusCode::FORBIDDEN
    );
    let bad = c.get("/console/kpis?from=soon").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // An admin has no calls search in the API, so none here.
    let mut a = Client::new(&s.base);
    a.sign_in(&s.admin).await;
    assert_eq!(a.get("/console/calls").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        a.get(&format!("/console/calls/{id}")).await.status,
        StatusCode::FORBIDDEN
    );
    s.h.finish().await;
}

#[tokio::test]
async fn the_search_finds_a_call_by_its_last_digits_and_exports_it() {
    let s = scene().await;
    let mut c = Client::new(&s.base);
    c.sign_in(&s.officer).await;
    // The callee is +8613900000001: its last digits, anywhere or at the end.
    let found = c.get("/console/calls?number=0001&match=suffix").await;
    assert!(found.text.contains(&s.answered), "{}", found.text);
    assert!(
        found.text.contains(&s.refused),
        "the refused call was to it too"
    );
    let none = c.get("/console/calls?number=0002&match=suffix").await;
    assert!(!none.text.contains(&s.answered));
    assert!(none.text.contains("No call matches"), "{}", none.text);
    let refused = c.get("/console/calls?disposition=refused").await;
    assert!(refused.text.contains(&s.refused) && !refused.text.contains(&s.answered));
    let kept = c.get("/console/calls?recording=kept").await;
    assert!(kept.text.contains(&s.answered) && !kept.text.contains(&s.refused));
    let bad = c.get("/console/calls?number=abc&from=soon").await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.text.contains("id=\"number-error\""), "{}", bad.text);
    assert!(bad.text.contains("id=\"from-error\""));

    let csv = c
        .get("/console/calls/export?number=0001&match=suffix")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let mut r = csv::Reader::from_reader(csv.text.as_bytes());
    let ids: Vec<String> = r.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(ids.len(), 2, "{}", csv.text);
    assert!(ids.contains(&s.answered) && ids.contains(&s.refused));
    let rows = audit(&s, "console.calls.export").await;
    assert_eq!(rows[0].query, "number=0001&match=suffix");

    // The call's page shows its audit trail: who listened and read it before.
    let wav = c
        .get(&format!("/console/calls/{}/recording", s.answered))
        .await;
    assert_eq!(wav.status, StatusCode::OK);
    assert!(wav.text.starts_with("RIFF"));
    let page = c.get(&format!("/console/calls/{}", s.answered)).await;
    let trail = page.text.split("id=\"trail\"").nth(1).expect("a trail");
    assert!(trail.contains("console.recordings.play"), "{trail}");
    assert!(trail.contains("officer (compliance)"), "{trail}");
    s.h.finish().await;
}

#[tokio::test]
async fn pages_speak_the_browsers_language_or_the_chosen_one() {
    let s = scene().await;
    let mut c = Client::new(&s.base);
    c.accept_language = "zh-CN,zh;q=0.9,en;q=0.5";
    let form = c.get("/console/sign-in").await;
    assert!(form.text.contains("<html lang=\"zh-CN\""), "{}", form.text);
    assert!(form.text.contains("API 令牌"));
    c.sign_in(&s.officer).await;
    let page = c.get(&format!("/console/calls/{}", s.answered)).await;
    for label in [
        "通话经过",
        "双向通话质量",
        "录音",
        "立即校验",
        "法律保全",
        "仅客户",
    ] {
        assert!(page.text.contains(label), "{label}");
    }
    // The switch keeps English for this browser and comes back.
    let back = format!("/console/calls/{}", s.answered);
    let switch = c
        .get(&format!(
            "/console/lang/en?back={}",
            back.replace('/', "%2F")
        ))
        .await;
    assert_eq!(switch.location(), back);
    assert_eq!(c.cookies.get("tg_lang").map(String::as_str), Some("en"));
    let page = c.get(&back).await;
    assert!(page.text.contains("What happened"));
    assert!(!page.text.contains("通话经过"));
    // Nowhere else to go back to.
    let away = c
        .get("/console/lang/zh?back=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(away.location(), "/console/");
    s.h.finish().await;
}

#[tokio::test]
async fn an_admin_hangs_up_a_live_call_and_imposes_and_lifts_a_step() {
    let mut s = scene().await;
    let mut c = Client::new(&s.base);
    assert_eq!(c.sign_in(&s.admin).await.location(), "/console/");
    assert_eq!(c.get("/console/").await.location(), "/console/live");

    // A live call, listed with its legs, hung up from the page: both sides get a BYE.
    let call = s.h.establish().await;
    let page = c.get("/console/live").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let id = s.h.gw.registry().list()[0].id.clone();
    assert!(
        page.text.contains(&format!("data-call=\"{id}\"")),
        "{}",
        page.text
    );
    let rows = c.get("/console/live/rows").await;
    assert_eq!(rows.headers["x-console-fragment"], "1");
    assert!(rows.text.contains(&id) && !rows.text.contains("<html"));
    let csrf = page.csrf();
    let hang = format!("/console/live/{id}/hangup");
    assert_eq!(c.post(&hang, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.h.gw.registry().len(),
        1,
        "a form without its token hangs nothing up"
    );
    let done = c.post(&hang, &[("csrf", &csrf)]).await;
    assert_eq!(done.location(), "/console/live?done=hung");
    let bye = s.h.pbx.expect_request("BYE").await;
    s.h.pbx.reply(&bye, 200, None).await;
    let bye = s.h.carrier.expect_request("BYE").await;
    s.h.carrier.reply(&bye, 200, None).await;
    drop(call);
    s.h.assert_idle().await;
    let after = c.get("/console/live").await;
    assert!(
        after.text.contains("No call is in progress."),
        "{}",
        after.text
    );

    // Impose: the API's refusal shown next to its field, then the step, then the next call
    // from that caller ID refused; lift: the same.
    let page = c.get("/console/enforcement").await;
    let csrf = page.csrf();
    let form = |reason: &'static str| {
        vec![
            ("trunk", "test"),
            ("number", common::CALLER),
            ("step", "suspend_number"),
            ("duration", "2h"),
            ("reason", reason),
        ]
    };
    let mut without_token = form("ticket 1");
    let refused = c.post("/console/enforcement", &without_token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    without_token.push(("csrf", &csrf));
    let mut no_reason = form(" ");
    no_reason.push(("csrf", &csrf));
    let bad = c.post("/console/enforcement", &no_reason).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(
        bad.text.contains("id=\"impose-reason-error\""),
        "{}",
        bad.text
    );
    assert!(
        bad.text.contains(common::CALLER),
        "the form keeps what was typed"
    );
    // A number that is not the trunk's, a trunk that is not there (the API's 404): the form
    // again, the field at fault marked.
    for (key, value, marked) in [
        ("number", "+861099999999", "impose-number-error"),
        ("trunk", "nope", "impose-trunk-error"),
    ] {
        let elsewhere: Vec<(&str, &str)> = without_token
            .iter()
            .map(|&(k, v)| if k == key { (k, value) } else { (k, v) })
            .collect();
        let refused = c.post("/console/enforcement", &elsewhere).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
        assert!(
            refused.text.contains(&format!("id=\"{marked}\"")),
            "{key}: {}",
            refused.text
        );
        if key == "number" {
            assert!(
                refused.text.contains(value),
                "the form keeps what was typed"
            );
        }
    }
    let ok = c.post("/console/enforcement", &without_token).await;
    assert_eq!(
        ok.location(),
        "/console/enforcement?done=imposed",
        "{}",
        ok.text
    );
    let page = c.get("/console/enforcement?done=imposed").await;
    assert!(page.text.contains("The step is in force."));
    let step = page
        .text
        .split("data-step=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a step in force")
        .to_string();
    let invite =
        s.h.pbx
            .invite(
                s.h.inside(),
                &common::InviteSpec::new(common::CALLER, common::CALLEE2),
            )
            .await;
    s.h.pbx.expect_response(100).await;
    let no = s.h.pbx.expect_response(403).await;
    assert_eq!(no.reason(), "Caller ID Suspended");
    s.h.pbx.ack_non2xx(&invite, &no).await;

    let lift = format!("/console/enforcement/{step}/lift");
    let bad = c.post(&lift, &[("reason", ""), ("csrf", &csrf)]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("Say why."));
    let ok = c
        .post(&lift, &[("reason", "resolved"), ("csrf", &csrf)])
        .await;
    assert_eq!(ok.location(), "/console/enforcement?done=lifted");
    let page = c.get("/console/enforcement").await;
    assert!(page.text.contains("No step is in force."), "{}", page.text);
    let mut call = s.h.establish().await;
    s.h.hang_up_from_pbx(&mut call.pbx).await;

    // A carrier reads the steps of its trunks, without the forms.
    let mut carrier = Client::new(&s.base);
    carrier.sign_in(&s.carrier).await;
    let page = carrier.get("/console/enforcement").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("impose-form") && !page.text.contains("/lift"));
    assert_eq!(
        carrier
            .post("/console/enforcement", &without_token)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        carrier.get("/console/live").await.status,
        StatusCode::FORBIDDEN
    );
    let rows = audit(&s, "console.calls.hangup").await;
    let statuses: Vec<(u16, Option<&str>)> = rows
        .iter()
        .map(|r| (r.status, r.call_id.as_deref()))
        .collect();
    assert_eq!(
        statuses,
        vec![(403, Some(id.as_str())), (303, Some(id.as_str()))]
    );
    s.h.finish().await;
}

#[tokio::test]
async fn an_admin_adds_a_number_and_the_next_call_with_it_is_admitted() {
    let mut s = scene().await;
    let mut c = Client::new(&s.base);
    c.sign_in(&s.admin).await;
    let page = c.get("/console/trunks").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("data-trunk=\"test\""));
    let csrf = page.csrf();
    let new = "+861012340000";

    // Refusals next to the field: not a number, on the list already.
    let bad = c
        .post(
            "/console/trunks/test/numbers",
            &[("number", "abc"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("Use digits"), "{}", bad.text);
    let twice = c
        .post(
            "/console/trunks/test/numbers",
            &[("number", common::CALLER), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(twice.text.contains("on the list already"));

    // Before: refused; added from the page: admitted.
    let refused =
        s.h.pbx
            .invite(s.h.inside(), &common::InviteSpec::new(new, common::CALLEE))
            .await;
    s.h.pbx.expect_response(100).await;
    let no = s.h.pbx.expect_response(403).await;
    s.h.pbx.ack_non2xx(&refused, &no).await;
    let ok = c
        .post(
            "/console/trunks/test/numbers",
            &[("number", new), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(ok.location(), "/console/trunks?done=added", "{}", ok.text);
    let page = c.get("/console/trunks?done=added").await;
    assert!(page.text.contains("861012340000"), "{}", page.text);
    let invite =
        s.h.pbx
            .invite(s.h.inside(), &common::InviteSpec::new(new, common::CALLEE))
            .await;
    s.h.pbx.expect_response(100).await;
    let c_invite = s.h.carrier_gets_invite().await;
    s.h.carrier.reply(&c_invite, 486, Some("busy")).await;
    let busy = s.h.pbx.expect_response(486).await;
    s.h.pbx.ack_non2xx(&invite, &busy).await;
    s.h.carrier.expect_request("ACK").await;

    // Blocked from the page: the next call to that number is refused.
    let ok = c
        .post(
            "/console/trunks/test/blocked",
            &[("number", common::CALLEE2), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(ok.location(), "/console/trunks?done=added");
    let invite =
        s.h.pbx
            .invite(
                s.h.inside(),
                &common::InviteSpec::new(common::CALLER, common::CALLEE2),
            )
            .await;
    s.h.pbx.expect_response(100).await;
    let no = s.h.pbx.expect_response(403).await;
    assert_eq!(no.reason(), "Number Blocked");
    s.h.pbx.ack_non2xx(&invite, &no).await;

    // Removed: gone from the page and from admission.
    let gone = c
        .post(
            "/console/trunks/test/numbers/remove",
            &[("number", new), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(gone.location(), "/console/trunks?done=removed");
    let again = c
        .post(
            "/console/trunks/test/numbers/remove",
            &[("number", new), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.text.contains("not on the list"));
    assert_eq!(
        c.post("/console/trunks/test/numbers", &[("number", new)])
            .await
            .status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let rows = audit(&s, "console.trunks.numbers.add").await;
    assert!(rows
        .iter()
        .all(|r| r.actor == "root" && r.role.as_deref() == Some("admin")));
    s.h.finish().await;
}
