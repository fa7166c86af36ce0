//! The web console in a real browser (headless Chromium through chromedriver) against a real
//! gateway that carried a real call with audio — the agent (PBX, left channel) playing 440 Hz,
//! the customer (carrier, right channel) 1 kHz — and refused another:
//! - a compliance officer signs in, finds the call by the callee's last digits, opens it,
//!   presses play: the audio element's position advances and its duration is the recording's;
//!   with "the customer only" what is heard is the 1 kHz tone, with "the agent only" the 440 Hz
//!   one (measured on the page's own Web Audio output); ±10 s and speed work; "verify now" says
//!   the file matches its digest; the call's evidence package and its search's (downloaded by
//!   the page's links) check digest by digest;
//! - the same in Chinese shows Chinese labels, and the switch brings English back;
//! - a carrier sees no recording anywhere and is refused the call's page and its recording when
//!   it types their URLs;
//! - without a session every page leads to the sign-in page, which comes back after;
//! - a form stripped of its CSRF token is refused and changes nothing;
//! - an admin edits a trunk's limits: bad values come back as typed with the server's message
//!   beside each one's field (in English and in Chinese), nothing stored; good ones are saved
//!   and the API shows them; audited; without the CSRF token refused;
//! - the KPI page lists the period's caller IDs and draws one caller ID's charts (its call
//!   only); the anomalies of one kind about that caller ID lead to the calls they name.
//!
//! Every page is saved as a PNG under `target/console-screenshots/<test>/` (looked at by a
//! person). Without Chromium the tests are skipped with a message, except under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "console/browser.rs"]
mod browser;
mod common;
#[path = "console/support.rs"]
mod support;

use std::time::Duration;

use browser::{Browser, SERIAL};
use serde_json::Value;
use support::{scene, Scene};

const EN: &str = "en-US,en";
const ZH: &str = "zh-CN,zh";
const LAPTOP: (u32, u32) = (1366, 900);
const TABLET: (u32, u32) = (820, 1180);

/// The heard level (dB) at 440 Hz and at 1 kHz, from the page's analyser on the output.
async fn heard(b: &Browser) -> (f64, f64) {
    let v = b
        .js(
            "const p = window.tgPlayer; const a = p.analyser; a.smoothingTimeConstant = 0;
             const d = new Float32Array(a.frequencyBinCount); a.getFloatFrequencyData(d);
             const at = hz => { const c = Math.round(hz * a.fftSize / p.context.sampleRate);
               let m = -1000; for (let i = c - 3; i <= c + 3; i++) m = Math.max(m, d[i]); return m; };
             return [at(440), at(1000)];",
        )
        .await;
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

/// Rewinds (the page's −10 s button), lets the analyser fill, and measures.
async fn listen(b: &Browser) -> (f64, f64) {
    b.click("button[data-seek='-10']").await;
    b.wait_for(
        "!document.querySelector('#audio').paused && document.querySelector('#audio').currentTime > 0.4",
        Duration::from_secs(5),
        "playing again from the start",
    )
    .await;
    heard(b).await
}

/// Sign in (from wherever the browser was sent), search the callee's last digits, open the
/// call. Returns at the call's page.
async fn find_the_call(b: &Browser, s: &Scene, shots: bool) {
    b.goto("/console/calls").await;
    assert!(
        b.path().await.starts_with("/console/sign-in?next="),
        "no session: {}",
        b.path().await
    );
    if shots {
        b.screenshot("1-sign-in").await;
    }
    b.sign_in(&s.officer).await;
    assert_eq!(b.path().await, "/console/calls");
    b.fill("#number", "0001").await;
    b.click("#match option[value='suffix']").await;
    b.click_and_wait("form.search button[type=submit]").await;
    assert!(b.path().await.contains("number=0001"), "{}", b.path().await);
    if shots {
        b.screenshot("2-calls").await;
    }
    b.click_and_wait(&format!("a[href='/console/calls/{}']", s.answered))
        .await;
    assert_eq!(b.path().await, format!("/console/calls/{}", s.answered));
}

/// The bytes of the file a page's download link (`css`) leads to, fetched by the page itself.
async fn fetched(b: &Browser, css: &str) -> Vec<u8> {
    let bytes = b
        .js(&format!(
            "const a = document.querySelector(\"{css}\");
             return fetch(a.href).then(r => {{
               if (!r.ok) throw new Error('status ' + r.status);
               return r.arrayBuffer();
             }}).then(buf => Array.from(new Uint8Array(buf)));"
        ))
        .await;
    bytes
        .as_array()
        .expect("bytes")
        .iter()
        .map(|v| u8::try_from(v.as_u64().expect("a byte")).expect("a byte"))
        .collect()
}

#[tokio::test]
async fn an_officer_finds_a_call_plays_it_and_hears_each_side() {
    let _one = SERIAL.lock().await;
    let s = scene().await;
    let Some(b) = Browser::start(&s.base, "officer", EN, LAPTOP).await else {
        return;
    };
    find_the_call(&b, &s, true).await;
    let summary = b.text_of("section[aria-labelledby=what]").await;
    assert!(
        summary.contains("Outbound call from 861012345678 to 8613900000001 on trunk test"),
        "{summary}"
    );
    assert!(
        summary.contains("Hung up by the agent's side (PBX)"),
        "{summary}"
    );
    let legs = b
        .js("return document.querySelectorAll('tr[data-leg]').length")
        .await;
    assert_eq!(legs, Value::from(2));
    // The waveform: both channels drawn from the file, each with its tone's level (8000 of
    // 32768: about 0.24).
    b.wait_for(
        "document.querySelector('#waveform').hasAttribute('data-peaks')",
        Duration::from_secs(10),
        "the waveform is drawn",
    )
    .await;
    let peaks = b
        .js("return document.querySelector('#waveform').dataset.peaks")
        .await;
    let peaks: Vec<f64> = peaks
        .as_str()
        .unwrap()
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(peaks.len(), 2);
    assert!(peaks.iter().all(|p| (0.2..0.3).contains(p)), "{peaks:?}");
    b.screenshot("3-call").await;

    // Play: the position advances; the duration is the recording's.
    b.click("#play").await;
    b.wait_for(
        "document.querySelector('#audio').currentTime > 0.5",
        Duration::from_secs(10),
        "the audio position advances",
    )
    .await;
    let duration = b
        .js("return document.querySelector('#audio').duration")
        .await;
    let duration_ms = duration.as_f64().unwrap() * 1000.0;
    assert!(
        (duration_ms - s.recording_ms as f64).abs() < 30.0,
        "the player's duration {duration_ms} ms, the recording {} ms",
        s.recording_ms
    );
    assert_eq!(b.text_of("#play").await, "Pause");

    // Both voices, then each alone.
    let (agent, customer) = heard(&b).await;
    assert!(
        agent > -70.0 && customer > -70.0,
        "both heard: {agent} {customer}"
    );
    b.click("input[name=channel][value=customer]").await;
    let (agent, customer) = listen(&b).await;
    assert!(
        customer - agent > 20.0,
        "the customer only: 1 kHz {customer} dB, 440 Hz {agent} dB"
    );
    b.screenshot("4-playing-customer").await;
    b.click("input[name=channel][value=agent]").await;
    let (agent, customer) = listen(&b).await;
    assert!(
        agent - customer > 20.0,
        "the agent only: 440 Hz {agent} dB, 1 kHz {customer} dB"
    );

    // +10 s goes to the end at most; speed changes the rate.
    b.click("button[data-seek='10']").await;
    let at = b
        .js("return document.querySelector('#audio').currentTime")
        .await;
    assert!(
        at.as_f64().unwrap() >= duration.as_f64().unwrap() - 0.1,
        "{at}"
    );
    b.click("#speed option[value='1.5']").await;
    let rate = b
        .js("return document.querySelector('#audio').playbackRate")
        .await;
    assert_eq!(rate, Value::from(1.5));

    // Verify now.
    b.click_and_wait("form.inline button[type=submit]").await;
    assert_eq!(
        b.path().await,
        format!("/console/calls/{}/verify", s.answered)
    );
    let result = b
        .js("return document.querySelector('#verification').dataset.result")
        .await;
    assert_eq!(result, Value::from("ok"));
    assert!(b
        .text_of("#verification")
        .await
        .contains("Verified: the file matches"));
    b.screenshot("5-verified").await;

    // The evidence package, downloaded by the page's own link (the session's cookie): every
    // digest in it checks, and its verification says ok.
    let href = b
        .js("return document.querySelector('a#evidence').getAttribute('href')")
        .await;
    assert_eq!(
        href,
        Value::from(format!("/console/calls/{}/evidence", s.answered))
    );
    let p = common::evidence::unpack_and_check(&fetched(&b, "a#evidence").await);
    let v = p.json(&format!("calls/{}/verification.json", s.answered));
    assert_eq!(v["result"], "ok", "{v}");
    assert_eq!(p.manifest["created_by"], "officer");
    // And the search's: both calls to 8613900000001.
    b.goto("/console/calls?number=0001&match=suffix").await;
    let p = common::evidence::unpack_and_check(&fetched(&b, "a#evidence-search").await);
    assert_eq!(p.manifest["calls"].as_array().unwrap().len(), 2);
    b.close().await;

    // The same page on a tablet.
    let Some(t) = Browser::start(&s.base, "officer-tablet", EN, TABLET).await else {
        return;
    };
    t.goto(&format!("/console/calls/{}", s.answered)).await;
    t.sign_in(&s.officer).await;
    assert_eq!(t.path().await, format!("/console/calls/{}", s.answered));
    t.screenshot("call-tablet").await;
    let overflow = t
        .js("return document.documentElement.scrollWidth > window.innerWidth + 1")
        .await;
    assert_eq!(
        overflow,
        Value::from(false),
        "the page fits a tablet's width"
    );
    t.close().await;

    // The recording was listened to: the audit log says who.
    let rows =
        s.h.gw
            .store()
            .audit_entries(&trunkguard::store::AuditFilter {
                action: Some("console.recordings.play".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.entry.actor == "officer"
        && r.entry.call_id.as_deref() == Some(s.answered.as_str())
        && r.entry.recording.is_some()));
    s.h.finish().await;
}

#[tokio::test]
async fn the_same_flow_in_chinese_shows_chinese_labels() {
    let _one = SERIAL.lock().await;
    let s = scene().await;
    let Some(b) = Browser::start(&s.base, "officer-zh", ZH, LAPTOP).await else {
        return;
    };
    b.goto("/console/calls").await;
    assert_eq!(b.text_of("h1").await, "登录");
    assert!(b.text_of("label[for=token]").await.contains("API 令牌"));
    b.screenshot("1-sign-in").await;
    b.sign_in(&s.officer).await;
    assert_eq!(b.text_of("h1").await, "通话记录");
    assert_eq!(b.text_of("label[for=number]").await, "号码");
    b.fill("#number", "0001").await;
    b.click("#match option[value='suffix']").await;
    b.click_and_wait("form.search button[type=submit]").await;
    b.screenshot("2-calls").await;
    b.click_and_wait(&format!("a[href='/console/calls/{}']", s.answered))
        .await;
    for (css, text) in [
        ("#what", "通话经过"),
        ("#legs", "双向通话质量"),
        ("#dtmf", "DTMF 按键"),
        ("#rec", "录音"),
        ("#hold", "法律保全"),
        ("#play", "播放"),
        ("form.inline button", "立即校验"),
        (".player fieldset legend", "收听"),
    ] {
        assert_eq!(b.text_of(css).await, text, "{css}");
    }
    let summary = b.text_of("section[aria-labelledby=what]").await;
    assert!(summary.contains("呼出通话"), "{summary}");
    assert!(summary.contains("挂断方：坐席侧（PBX）"), "{summary}");
    b.click("#play").await;
    b.wait_for(
        "document.querySelector('#audio').currentTime > 0.3",
        Duration::from_secs(10),
        "the audio position advances",
    )
    .await;
    b.click("input[name=channel][value=customer]").await;
    let (agent, customer) = listen(&b).await;
    assert!(customer - agent > 20.0, "客户: {customer} / {agent}");
    b.screenshot("3-call").await;

    // The switch: English, and it stays.
    b.click_and_wait("header .lang a[hreflang=en]").await;
    assert_eq!(b.text_of("#what").await, "What happened");
    b.goto("/console/calls").await;
    assert_eq!(b.text_of("h1").await, "Calls");
    b.close().await;
    s.h.finish().await;
}

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

/// The page is no wider than the window (tables scroll inside their own box).
async fn assert_fits(b: &Browser) {
    let overflow = b
        .js("return document.documentElement.scrollWidth > window.innerWidth + 1")
        .await;
    assert_eq!(overflow, Value::from(false), "{} overflows", b.path().await);
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

/// An anomaly of `rule` about the caller ID, naming `calls`, detected a minute ago.
async fn record_anomaly(s: &Scene, id: &str, rule: &str, calls: &[&str]) {
    use trunkguard::store::{AnomalyRow, SubjectKey};
    let row = AnomalyRow {
        id: id.into(),
        detected_at: chrono::Utc::now() - chrono::Duration::minutes(1),
        rule: rule.into(),
        subject: SubjectKey {
            kind: "caller_id".into(),
            trunk: common::TRUNK.into(),
            number: "861012345678".into(),
        },
        window_secs: 3600,
        observed: 75.0,
        threshold: 60.0,
        sample: 75,
        step: "throttle".into(),
        detail: format!("{rule} over the last hour"),
        call_ids: calls.iter().map(|c| c.to_string()).collect(),
    };
    s.h.gw.store().record_anomaly(&row, &[]).await.unwrap();
}

#[tokio::test]
async fn kpis_per_caller_id_and_anomalies_of_a_kind_lead_to_their_calls() {
    let _one = SERIAL.lock().await;
    let s = scene().await;
    record_anomaly(&s, "1001", "over_frequent_number", &[&s.answered]).await;
    record_anomaly(&s, "1002", "unauthorized_caller_id", &[&s.refused]).await;
    let Some(b) = Browser::start(&s.base, "carrier-callers", EN, LAPTOP).await else {
        return;
    };
    b.goto("/console/kpis").await;
    b.sign_in(&s.carrier).await;
    assert_eq!(b.path().await, "/console/kpis");
    assert_eq!(b.text_of("#charts-of").await, "Charts of the trunks");
    // Every caller ID of the period, each with a link to its own charts.
    let callers = b
        .js("return Array.from(document.querySelectorAll('table.callers tr[data-caller]')).map(r => r.dataset.caller)")
        .await;
    let callers: Vec<&str> = callers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let ours = *callers
        .iter()
        .find(|c| c.ends_with("1012345678"))
        .unwrap_or_else(|| panic!("the agent's caller ID is listed: {callers:?}"));
    b.screenshot("1-kpis-callers").await;
    b.click_and_wait(&format!("tr[data-caller='{ours}'] a"))
        .await;
    assert!(b.path().await.contains("number="), "{}", b.path().await);
    assert!(b.text_of("#charts-of").await.contains(ours));
    // This caller ID's chart: its one call, answered (the stranger's refusal is another's).
    let bars = b
        .js("return Array.from(document.querySelectorAll('#chart-attempts g[data-attempts]')).map(g => [Number(g.dataset.attempts), Number(g.dataset.answered)])")
        .await;
    let (attempts, answered) = bars.as_array().unwrap().iter().fold((0, 0), |(a, n), b| {
        (a + b[0].as_u64().unwrap(), n + b[1].as_u64().unwrap())
    });
    assert_eq!((attempts, answered), (1, 1), "{bars}");
    assert_eq!(
        b.js("return document.querySelectorAll('table.callers').length")
            .await,
        Value::from(0),
        "one caller ID's page lists no others"
    );
    b.screenshot("2-kpis-one-caller").await;

    // Its anomalies: both kinds, then one kind; its calls are the anomaly's.
    b.click_and_wait("#anomalies-link").await;
    assert!(b.path().await.starts_with("/console/anomalies"));
    let rows = b
        .js("return document.querySelectorAll('tr[data-anomaly]').length")
        .await;
    assert_eq!(rows, Value::from(2));
    b.click("#rule option[value='over_frequent_number']").await;
    b.click_and_wait("#anomaly-filter button[type=submit]")
        .await;
    let rules = b
        .js("return Array.from(document.querySelectorAll('tr[data-anomaly]')).map(r => r.dataset.rule)")
        .await;
    assert_eq!(rules, serde_json::json!(["over_frequent_number"]));
    assert!(b
        .text_of("tr[data-anomaly='1001']")
        .await
        .contains("too many calls from one caller ID"));
    b.screenshot("3-anomalies-of-a-kind").await;
    b.click_and_wait("tr[data-anomaly='1001'] a.calls").await;
    assert!(
        b.path().await.contains("anomaly=1001"),
        "{}",
        b.path().await
    );
    let listed = b
        .js("return document.querySelectorAll('table.calls tbody tr').length")
        .await;
    assert_eq!(listed, Value::from(1), "the anomaly's one call");
    assert!(b.text_of("table.calls").await.contains("8613900000001"));
    assert!(b.text_of("table.calls").await.contains("answered"));
    b.screenshot("4-calls-of-the-anomaly").await;
    b.close().await;

    // In Chinese, for the compliance officer, on a tablet.
    let Some(zh) = Browser::start(&s.base, "officer-callers-zh", ZH, TABLET).await else {
        return;
    };
    zh.goto(&format!("/console/kpis?number={ours}")).await;
    zh.sign_in(&s.officer).await;
    assert!(zh.text_of("#charts-of").await.contains("的图表"));
    assert_eq!(zh.text_of("label[for=number]").await, "主叫号码");
    assert_fits(&zh).await;
    zh.screenshot("1-kpis-one-caller").await;
    zh.goto("/console/anomalies").await;
    assert_eq!(zh.text_of("h1").await, "异常");
    assert!(zh
        .text_of("tr[data-anomaly='1002']")
        .await
        .contains("未授权主叫号码"));
    assert_fits(&zh).await;
    zh.screenshot("2-anomalies").await;
    zh.close().await;
    s.h.finish().await;
}
