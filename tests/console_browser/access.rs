//! What the console refuses: a carrier any recording, a visitor without a session any page (the
//! sign-in comes back after), a form without its CSRF token.

use super::*;

#[tokio::test]
async fn a_carrier_sees_no_recording_anywhere() {
    let _one = SERIAL.lock().await;
    let s = scene().await;
    let Some(b) = Browser::start(&s.base, "carrier", EN, LAPTOP).await else {
        return;
    };
    b.goto("/console/").await;
    b.sign_in(&s.carrier).await;
    assert_eq!(b.path().await, "/console/calls");
    let page = b.source().await;
    assert!(
        page.contains("8613900000001"),
        "its trunk's calls are listed"
    );
    for hidden in ["<audio", "/recording", "name=\"recording\"", "Legal hold"] {
        assert!(!page.contains(hidden), "{hidden} shown to a carrier");
    }
    let links = b
        .js("return document.querySelectorAll('a[href^=\"/console/calls/\"]:not([href^=\"/console/calls/export\"])').length")
        .await;
    assert_eq!(links, Value::from(0), "no way into a call");
    b.screenshot("1-calls").await;

    for (path, shot) in [
        (format!("/console/calls/{}", s.answered), "2-call-refused"),
        (
            format!("/console/calls/{}/recording", s.answered),
            "3-recording-refused",
        ),
    ] {
        b.goto(&path).await;
        assert_eq!(b.text_of("h1").await, "Not allowed", "{path}");
        let page = b.source().await;
        assert!(
            !page.contains("<audio") && !page.contains("<video"),
            "{path}"
        );
        assert!(
            !page.contains("8613900000001"),
            "{path}: nothing of the call"
        );
        b.screenshot(shot).await;
    }

    // The KPI chart shows the calls placed: two attempts, one answered.
    b.goto("/console/kpis").await;
    assert_eq!(b.text_of("h1").await, "Key figures");
    let bars = b
        .js("return Array.from(document.querySelectorAll('#chart-attempts g[data-attempts]')).map(g => [Number(g.dataset.attempts), Number(g.dataset.answered)])")
        .await;
    let (attempts, answered) = bars.as_array().unwrap().iter().fold((0, 0), |(a, n), b| {
        (a + b[0].as_u64().unwrap(), n + b[1].as_u64().unwrap())
    });
    assert_eq!((attempts, answered), (2, 1), "{bars}");
    assert!(!b.source().await.contains("<audio"));
    b.screenshot("4-kpis").await;
    b.close().await;
    s.h.finish().await;
}

#[tokio::test]
async fn without_a_session_a_page_leads_to_sign_in_and_back() {
    let _one = SERIAL.lock().await;
    let s = scene().await;
    let Some(b) = Browser::start(&s.base, "no-session", EN, LAPTOP).await else {
        return;
    };
    for path in [
        "/".to_string(),
        "/console/".to_string(),
        "/console/calls".to_string(),
        format!("/console/calls/{}", s.answered),
        format!("/console/calls/{}/verify", s.answered),
    ] {
        b.goto(&path).await;
        assert!(
            b.path().await.starts_with("/console/sign-in"),
            "{path}: {}",
            b.path().await
        );
        assert_eq!(b.text_of("h1").await, "Sign in");
    }
    b.goto(&format!("/console/calls/{}", s.answered)).await;
    b.screenshot("1-sign-in-first").await;
    b.sign_in(&s.officer).await;
    assert_eq!(b.path().await, format!("/console/calls/{}", s.answered));
    // Signed out: back to the sign-in page, and the call is out of reach again.
    b.click_and_wait("header .who button[type=submit]").await;
    assert_eq!(b.path().await, "/console/sign-in?out=1");
    assert!(b.text_of("main").await.contains("You are signed out."));
    b.goto(&format!("/console/calls/{}", s.answered)).await;
    assert!(b.path().await.starts_with("/console/sign-in"));
    b.close().await;
    s.h.finish().await;
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let _one = SERIAL.lock().await;
    let s = scene().await;
    let Some(b) = Browser::start(&s.base, "csrf", EN, LAPTOP).await else {
        return;
    };
    b.goto(&format!("/console/calls/{}", s.answered)).await;
    b.sign_in(&s.officer).await;
    b.fill("#hold-reason", "case 7").await;
    // A forged form: the same fields without the session's token.
    b.js("document.querySelector('#hold-form input[name=csrf]').remove(); return true;")
        .await;
    b.click_and_wait("#hold-form button[type=submit]").await;
    assert_eq!(b.text_of("h1").await, "Form refused");
    b.screenshot("1-refused").await;
    assert!(!s.h.gw.store().is_on_hold(&s.answered).await.unwrap());
    // The page's own form goes through.
    b.goto(&format!("/console/calls/{}", s.answered)).await;
    b.fill("#hold-reason", "case 7").await;
    b.click_and_wait("#hold-form button[type=submit]").await;
    assert!(b.text_of("main").await.contains("The call is on hold."));
    assert!(s.h.gw.store().is_on_hold(&s.answered).await.unwrap());
    b.screenshot("2-held").await;
    b.close().await;
    s.h.finish().await;
}
