//! What the gateway shows of itself and its calls: /healthz, /metrics (checked line by line
//! against the Prometheus text format) and the carrier's KPI report.

use super::*;

#[tokio::test]
async fn healthz_is_503_when_the_recording_dir_is_not_writable() {
    let h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let ok = api.call(Method::GET, "/healthz", None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let body = ok.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"]["ok"], true);
    assert_eq!(body["checks"]["recording_dir"]["ok"], true);

    // A file where the folder should be: nothing can be created under it (also as root).
    let dir = h.dir.path().join("recordings");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a folder").unwrap();
    // /healthz reads the disk watcher's verdict, which follows within a round.
    h.wait_for_disk(false).await;
    let bad = api.call(Method::GET, "/healthz", None).await;
    assert_eq!(bad.status, StatusCode::SERVICE_UNAVAILABLE, "{}", bad.text);
    let body = bad.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["ok"], true);
    assert_eq!(body["checks"]["recording_dir"]["ok"], false);
    assert!(body["checks"]["recording_dir"]["error"].is_string());

    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    h.wait_for_disk(true).await;
    assert_eq!(
        api.call(Method::GET, "/healthz", None).await.status,
        StatusCode::OK
    );
    assert_eq!(h.gw.store().count_audit().await.unwrap(), 0);
    h.finish().await;
}

/// Checks the Prometheus text format line by line; returns the samples (name with labels,
/// value).
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    let mut typed = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                let t = parts.next().unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
                if t == "histogram" {
                    histograms.insert(name.to_string());
                }
                typed.insert(name.to_string());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| histograms.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        samples.push((series.to_string(), v));
    }
    samples
}

#[tokio::test]
async fn metrics_show_the_call() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let carrier = api_token(&h, "carrier", Role::Carrier, &[TRUNK]).await;
    let mut call = h.establish().await;

    let during = api.get("/metrics", &carrier).await;
    assert_eq!(during.status, StatusCode::OK, "{}", during.text);
    let samples = parse_prometheus(&during.text);
    let value = |samples: &[(String, f64)], series: &str| {
        samples
            .iter()
            .find(|(s, _)| s == series)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {series} in {samples:?}"))
    };
    assert_eq!(
        value(
            &samples,
            &format!("trunkguard_active_calls{{trunk=\"{TRUNK}\"}}")
        ),
        1.0
    );
    assert_eq!(value(&samples, "trunkguard_concurrency_drift"), 0.0);
    value(&samples, "trunkguard_cdr_queue_depth");
    value(&samples, "trunkguard_recordings_active");

    h.hang_up_from_pbx(&mut call.pbx).await;
    refused_call(&mut h).await;
    h.assert_idle().await;
    wait_for_cdrs(&h, 2).await;

    let after = parse_prometheus(&api.get("/metrics", &carrier).await.text);
    assert_eq!(
        value(
            &after,
            &format!("trunkguard_calls_admitted_total{{trunk=\"{TRUNK}\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            &format!(
                "trunkguard_call_attempts_total{{trunk=\"{TRUNK}\",disposition=\"answered\",reason=\"\"}}"
            )
        ),
        1.0
    );
    assert!(!after
        .iter()
        .any(|(s, _)| s.starts_with("trunkguard_active_calls{")));
    assert_eq!(value(&after, "trunkguard_cdrs_written_total"), 2.0);
    h.finish().await;
}

/// A carrier pulls the day's KPI CSV: its counts equal the calls placed; JSON says the same; a
/// carrier token limited to another trunk sees none of them and may not name this trunk.
#[tokio::test]
async fn the_carrier_pulls_the_days_kpis_and_they_count_the_calls_placed() {
    let mut h = start_gateway(&[]).await;
    let api = Api::new(&h);
    let carrier = api_token(&h, "carrier", Role::Carrier, &[TRUNK]).await;
    let other = api_token(&h, "carrier-other", Role::Carrier, &["other"]).await;
    answered_call(&mut h, CALLEE).await;
    answered_call(&mut h, CALLEE2).await;
    refused_call(&mut h).await;
    wait_for_cdrs(&h, 3).await;
    // The monitor's view agrees: the writer stored the buckets with the CDRs.
    h.assert_idle().await;

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let csv = api
        .get(
            &format!("/api/v1/reports/kpis?from={today}&bucket=day&format=csv"),
            &carrier,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    let mut lines = csv.text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(header, trunkguard::monitor::report::COLUMNS);
    let col = |name: &str| header.iter().position(|c| *c == name).expect("column");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let trunk_row = rows
        .iter()
        .find(|r| r[col("subject")] == "trunk")
        .unwrap_or_else(|| panic!("a trunk row in {}", csv.text));
    assert_eq!(trunk_row[col("attempts")], "3");
    assert_eq!(trunk_row[col("answered")], "2");
    assert_eq!(trunk_row[col("refused_by_gateway")], "1");
    assert_eq!(trunk_row[col("asr")], "1.0000", "2 answered of 2 offered");

    let json = api
        .get(
            &format!("/api/v1/reports/kpis?from={today}&bucket=day"),
            &carrier,
        )
        .await
        .json();
    let items = json["items"].as_array().expect("items");
    let trunk = items
        .iter()
        .find(|r| r["subject"] == "trunk")
        .expect("trunk row");
    assert_eq!(trunk["attempts"], 3);
    assert_eq!(trunk["answered"], 2);

    let none = api.get("/api/v1/reports/kpis", &other).await.json();
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));
    api.get(&format!("/api/v1/reports/kpis?trunk={TRUNK}"), &other)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    api.get("/api/v1/reports/kpis?bucket=week", &carrier)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    h.finish().await;
}
