//! A compliance officer's call: found by its last digits, played, each side heard alone (measured
//! on the page's own Web Audio output), verified, its evidence packages checked; the same in
//! Chinese.

use super::*;

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
