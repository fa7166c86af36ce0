//! A call's pages: a carrier never reaches a recording, the search finds a call by its last
//! digits and exports it as CSV, the pages follow the browser's language or the chosen one.

use super::*;

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
