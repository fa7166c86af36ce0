//! The KPI page: the period's caller IDs, one caller ID's charts, and its anomalies of one kind
//! leading to the calls they name.

use super::*;

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
