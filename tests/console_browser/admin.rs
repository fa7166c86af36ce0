//! An admin's pages: a call arriving without a reload and hung up; a trunk's limits edited, each
//! refusal beside its field.

use super::*;

#[tokio::test]
async fn an_admin_sees_a_call_arrive_without_a_reload_and_hangs_it_up() {
    let _one = SERIAL.lock().await;
    let mut s = scene().await;
    let Some(b) = Browser::start(&s.base, "admin", EN, LAPTOP).await else {
        return;
    };
    b.goto("/console/").await;
    b.sign_in(&s.admin).await;
    assert_eq!(b.path().await, "/console/live");
    assert!(b
        .text_of("#live-rows")
        .await
        .contains("No call is in progress."));
    b.js("window.__tgSamePage = true; return true;").await;

    // The call starts after the page was loaded: the table shows it by itself.
    let call = s.h.establish().await;
    b.wait_for(
        "document.querySelector('#live-rows tr[data-call]') !== null",
        Duration::from_secs(10),
        "the live call appears",
    )
    .await;
    assert_eq!(
        b.js("return window.__tgSamePage === true").await,
        Value::Bool(true),
        "no reload"
    );
    b.screenshot("1-live").await;

    // Hang up from the page: both sides get a BYE.
    b.click_and_wait("#live-rows button[type=submit]").await;
    let bye = s.h.pbx.expect_request("BYE").await;
    s.h.pbx.reply(&bye, 200, None).await;
    let bye = s.h.carrier.expect_request("BYE").await;
    s.h.carrier.reply(&bye, 200, None).await;
    drop(call);
    assert!(b
        .text_of("main")
        .await
        .contains("The call is being hung up."));
    b.wait_for(
        "document.querySelector('#live-rows tr[data-call]') === null",
        Duration::from_secs(10),
        "the call leaves the table",
    )
    .await;

    // Enforcement: impose on the caller ID, then lift.
    b.click_and_wait("header nav a[href='/console/enforcement']")
        .await;
    b.fill("#impose-number", "+861012345678").await;
    b.click("#impose-step option[value='suspend_number']").await;
    b.fill("#impose-duration", "2h").await;
    b.fill("#impose-reason", "carrier ticket 4711").await;
    b.click_and_wait("#impose-form button[type=submit]").await;
    assert!(b.text_of("main").await.contains("The step is in force."));
    b.screenshot("2-enforcement").await;
    b.fill("tr[data-step] input[name=reason]", "resolved").await;
    b.click_and_wait("tr[data-step] button[type=submit]").await;
    assert!(b.text_of("main").await.contains("The step is lifted."));
    assert!(b.text_of("#in-force").await.contains("Steps in force"));

    // Trunks: a number added from the page.
    b.click_and_wait("header nav a[href='/console/trunks']")
        .await;
    b.fill("#test-numbers-add", "+861012340000").await;
    b.click_and_wait("[data-list=numbers] form.row button[type=submit]")
        .await;
    assert!(b.text_of("main").await.contains("The number is added"));
    assert!(b
        .text_of("[data-list=numbers] ul.numbers")
        .await
        .contains("861012340000"));
    b.screenshot("3-trunks").await;
    b.close().await;
    s.h.finish().await;
}

/// The API's view of a trunk, read with the admin's token.
async fn trunk_via_api(s: &Scene, name: &str) -> Value {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/api/v1/trunks/{name}", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn an_admin_edits_a_trunks_limits_and_sees_each_refusal_beside_its_field() {
    let _one = SERIAL.lock().await;
    let s = scene().await;
    let before = trunk_via_api(&s, common::TRUNK).await["definition"].clone();
    let Some(b) = Browser::start(&s.base, "admin-limits", EN, LAPTOP).await else {
        return;
    };
    b.goto("/console/trunks").await;
    b.sign_in(&s.admin).await;
    assert_eq!(b.path().await, "/console/trunks");
    b.click("section[data-trunk=test] details.limits > summary")
        .await;
    // Two bad values and a good one: each bad one has the server's message beside it, the
    // values come back as typed, and nothing is stored.
    b.fill("#test-max_cps", "0").await;
    b.fill("#test-calling_hours", "9-17").await;
    b.fill("#test-max_concurrent", "12").await;
    b.click_and_wait("section[data-trunk=test] form.limits button[type=submit]")
        .await;
    assert!(b
        .text_of("main")
        .await
        .contains("Some values could not be read"));
    let cps_error = b.text_of("#test-max_cps-error").await;
    assert!(cps_error.contains('0'), "the server's words: {cps_error}");
    let hours_error = b.text_of("#test-calling_hours-error").await;
    assert!(!hours_error.is_empty());
    // Beside its own field: the message follows the input in the same field, which points to it.
    for key in ["max_cps", "calling_hours"] {
        let tied = b
            .js(&format!(
                "const i = document.querySelector('#test-{key}');
                 const e = document.querySelector('#test-{key}-error');
                 return i.closest('.field') === e.closest('.field')
                   && i.getAttribute('aria-invalid') === 'true'
                   && i.getAttribute('aria-describedby').split(' ').includes('test-{key}-error');"
            ))
            .await;
        assert_eq!(tied, Value::Bool(true), "{key}");
    }
    let others = b
        .js("return document.querySelectorAll('form.limits .field-error').length")
        .await;
    assert_eq!(others, Value::from(2), "only the two bad fields");
    for (css, typed) in [
        ("#test-max_cps", "0"),
        ("#test-calling_hours", "9-17"),
        ("#test-max_concurrent", "12"),
    ] {
        let v = b
            .js(&format!("return document.querySelector('{css}').value"))
            .await;
        assert_eq!(v, Value::from(typed), "{css} as typed");
    }
    b.screenshot("1-limits-refused").await;
    assert_eq!(
        trunk_via_api(&s, common::TRUNK).await["definition"],
        before,
        "nothing stored"
    );

    // Good values: saved, visible through the API, the other keys as they were.
    b.fill("#test-max_cps", "2.5").await;
    b.fill("#test-calling_hours", "08:00-20:00").await;
    b.fill("#test-rules-over_frequent_number-threshold", "40")
        .await;
    b.click("#test-rules-over_frequent_number-window option[value='5m']")
        .await;
    b.click_and_wait("section[data-trunk=test] form.limits button[type=submit]")
        .await;
    assert!(
        b.text_of("main").await.contains("The limits are saved"),
        "{}",
        b.text_of("main").await
    );
    let t = trunk_via_api(&s, common::TRUNK).await;
    let d = &t["definition"];
    assert_eq!(d["max_cps"], 2.5);
    assert_eq!(d["max_concurrent"], 12);
    assert_eq!(d["calling_hours"], "08:00-20:00");
    assert_eq!(d["rules"]["over_frequent_number"]["threshold"], 40);
    assert_eq!(d["rules"]["over_frequent_number"]["window"], "5m");
    assert_eq!(d["numbers"], before["numbers"]);
    assert_eq!(t["updated_by"], "root");
    assert!(b
        .text_of("section[data-trunk=test] dl.details")
        .await
        .contains("2.5"));
    b.screenshot("2-limits-saved").await;

    // A form without the session's CSRF token changes nothing.
    b.click("section[data-trunk=test] details.limits > summary")
        .await;
    b.fill("#test-max_cps", "7").await;
    b.js("document.querySelector('section[data-trunk=test] form.limits input[name=csrf]').remove(); return true;")
        .await;
    b.click_and_wait("section[data-trunk=test] form.limits button[type=submit]")
        .await;
    assert_eq!(b.text_of("h1").await, "Form refused");
    assert_eq!(
        trunk_via_api(&s, common::TRUNK).await["definition"]["max_cps"],
        2.5
    );
    b.close().await;

    // Audited: who saved which trunk's limits, the refusal too.
    let rows =
        s.h.gw
            .store()
            .audit_entries(&trunkguard::store::AuditFilter {
                action: Some("console.trunks.limits".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
    let statuses: Vec<u16> = rows.iter().map(|r| r.entry.status).collect();
    assert!(
        statuses.contains(&400) && statuses.contains(&303),
        "{statuses:?}"
    );
    assert!(rows
        .iter()
        .all(|r| r.entry.actor == "root" && r.entry.path == "/console/trunks/test/limits"));

    // The same form in Chinese on a tablet: Chinese labels, the refusal beside its field, and
    // the open form fits the width.
    let Some(zh) = Browser::start(&s.base, "admin-limits-zh", ZH, TABLET).await else {
        return;
    };
    zh.goto("/console/trunks").await;
    zh.sign_in(&s.admin).await;
    assert_eq!(
        zh.text_of("section[data-trunk=test] details.limits > summary")
            .await,
        "修改限制"
    );
    zh.click("section[data-trunk=test] details.limits > summary")
        .await;
    assert_eq!(zh.text_of("label[for=test-max_cps]").await, "每秒呼叫数");
    zh.fill("#test-throttle_share", "2").await;
    zh.click_and_wait("section[data-trunk=test] form.limits button[type=submit]")
        .await;
    assert!(!zh.text_of("#test-throttle_share-error").await.is_empty());
    assert!(zh.text_of("main").await.contains("部分输入无法识别"));
    assert_fits(&zh).await;
    zh.screenshot("1-limits-refused").await;
    zh.close().await;
    s.h.finish().await;
}
