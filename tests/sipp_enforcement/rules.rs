//! What the gateway decides by itself: a caller ID suspended by the error-rate rule at its 10th
//! invalid number and resumed after its hysteresis; a burst to one callee refused at admission's
//! callee limit.

use super::*;

/// The error-rate rule made quick to cross and quick to clear: half the calls offered to the
/// carrier being invalid numbers, over at least 10 in 60 s, suspends the number for 5 s (and
/// until the rule has stayed clear for its 60 s window).
const ERROR_RATE_RULE: &str = r#"
[trunks.rules.error_rate]
threshold = 0.5
min_sample = 10
window = "60s"
step = "suspend_number"
resume_after = "5s"
"#;

/// Poll the log (every 250 ms, at most `limit`) until a row satisfies `pred`.
fn wait_for_log_row(
    scene: &Scene,
    limit: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let log = enforcement_log(scene);
        if let Some(row) = log.iter().find(|r| pred(r)) {
            return row.clone();
        }
        if Instant::now() >= deadline {
            scene.fail(format!(
                "no {what} in the enforcement log within {limit:?}; the log:\n{}",
                log.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        sleep(Duration::from_millis(250));
    }
}

fn time_field(scene: &Scene, row: &serde_json::Value, name: &str) -> DateTime<Utc> {
    let v = field(row, name);
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| scene.fail(format!("log field {name} = {v:?}: {e}")))
}

/// The anomalies stored for the trunk's number, read from the gateway's database.
fn anomalies(scene: &Scene) -> Vec<AnomalyRow> {
    let url = format!("sqlite://{}", scene.path().join("cdrs.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| scene.fail(format!("tokio runtime: {e}")));
    let r = rt.block_on(async {
        let store = Store::connect(&url).await.map_err(|e| e.to_string())?;
        let rows = store
            .anomalies(
                Utc::now() - chrono::Duration::hours(1),
                Utc::now() + chrono::Duration::minutes(1),
                Some(TRUNK),
                Some(caller_digits()),
            )
            .await
            .map_err(|e| e.to_string());
        store.close().await;
        rows
    });
    scene.ok(r)
}

/// Ten calls the carrier answers 404: the error-rate rule fires at the 10th CDR (not before:
/// all ten reach the carrier), the next call presenting the number gets 403 and the log says
/// why (the rule, its anomaly and the 404 calls that show it); once the resume time has passed
/// and the rule has stayed clear for its window, the step lifts and the number calls again.
#[test]
fn invalid_numbers_suspend_the_caller_id_until_it_resumes() {
    let mut scene = Scene::start_with(TrunkLimits::default(), |_| ERROR_RATE_RULE.to_string());
    let c404 = carrier(
        &mut scene,
        "carrier-404",
        Scenario::File("carrier_uas_404.xml"),
        10,
    );
    let uac = pbx_calls(&mut scene, "pbx-404s", "pbx_uac_any.xml", 10, 10);
    let got_404 = count(&scene, uac, "404_Recv");
    scene.ensure(got_404 == 10, || {
        format!("{got_404} of the 10 calls got the carrier's 404")
    });
    // Calls 1–10 were all admitted: the rule did not fire one call early.
    carrier_reached(&mut scene, c404, 10);

    let impose = wait_for_log_row(&scene, Duration::from_secs(5), "impose row", |r| {
        field(r, "action") == "impose"
    });
    scene.ensure(
        field(&impose, "step") == "suspend_number"
            && field(&impose, "cause") == "rule"
            && field(&impose, "rule") == "error_rate"
            && field(&impose, "subject") == "caller_id"
            && field(&impose, "number") == caller_digits(),
        || format!("impose row: {impose}"),
    );
    let anomaly_id = field(&impose, "anomaly_id").to_string();

    // The next call presenting the number is refused at admission.
    let refused = pbx_calls(&mut scene, "pbx-refused", "pbx_uac_refused.xml", 1, 10);
    let got_403 = count(&scene, refused, "403_Recv");
    scene.ensure(got_403 == 1, || format!("{got_403} calls got 403"));

    let cdrs = scene.ok(scene.gateway.cdrs());
    let invalid: HashSet<&str> = cdrs
        .iter()
        .filter(|c| c.outcome.final_status == 404 && c.outcome.refusal_reason.is_none())
        .map(|c| c.attempt.id.as_str())
        .collect();
    scene.ensure(invalid.len() == 10, || {
        format!("expected 10 CDRs of 404 calls:\n{}", summary(&cdrs))
    });
    let stored = anomalies(&scene);
    let anomaly = stored
        .iter()
        .find(|a| a.id == anomaly_id)
        .unwrap_or_else(|| scene.fail(format!("anomaly {anomaly_id} not stored: {stored:#?}")));
    scene.ensure(
        anomaly.rule == "error_rate"
            && anomaly.sample == 10
            && anomaly.window_secs == 60
            && anomaly.observed >= 0.99
            && !anomaly.call_ids.is_empty()
            && anomaly
                .call_ids
                .iter()
                .all(|id| invalid.contains(id.as_str())),
        || format!("anomaly evidence: {anomaly:#?}\n404 calls: {invalid:?}"),
    );
    // One firing, one step: the refused call did not fire the rule again.
    let fired = stored.iter().filter(|a| a.rule == "error_rate").count();
    scene.ensure(fired == 1, || format!("error_rate fired {fired} times"));

    // Lifted once 5 s have passed and the rule has stayed clear for its 60 s window (the
    // refused call's CDR still saw it hold); the tick runs every second.
    let lift = wait_for_log_row(&scene, Duration::from_secs(90), "lift row", |r| {
        field(r, "action") == "lift"
    });
    scene.ensure(
        field(&lift, "cause") == "resumed"
            && lift.get("imposition") == impose.get("imposition")
            && field(&lift, "step") == "suspend_number",
        || format!("lift row: {lift}\nimpose row: {impose}"),
    );
    let held = time_field(&scene, &lift, "at") - time_field(&scene, &impose, "at");
    scene.ensure(held >= chrono::Duration::seconds(60), || {
        format!("lifted after {held}, before the rule's 60 s window of hysteresis")
    });

    // Admitted again: the call reaches the carrier and is answered.
    let uas = carrier(&mut scene, "carrier-uas", Scenario::Builtin("uas"), 1);
    let again = pbx_calls(&mut scene, "pbx-again", "pbx_uac_any.xml", 1, 10);
    let got_200 = count(&scene, again, "200_Recv");
    scene.ensure(got_200 == 1, || {
        format!("{got_200} calls answered after the lift")
    });
    carrier_reached(&mut scene, uas, 1);

    let cdrs = stop_and_read_cdrs(&mut scene);
    let n_refused = cdrs
        .iter()
        .filter(|c| refused_with(c, 403, "caller_id_suspended"))
        .count();
    let n_answered = cdrs
        .iter()
        .filter(|c| {
            c.outcome.disposition == Disposition::Answered && c.outcome.refusal_reason.is_none()
        })
        .count();
    scene.ensure(
        cdrs.len() == 12 && n_refused == 1 && n_answered == 1,
        || {
            format!(
                "expected 12 CDRs (10 × 404, 1 refused caller_id_suspended, 1 answered):\n{}",
                summary(&cdrs)
            )
        },
    );
    let newest = &cdrs[0];
    scene.ensure(newest.outcome.disposition == Disposition::Answered, || {
        format!("the last call is not the answered one:\n{}", summary(&cdrs))
    });
}

/// Three calls to one number at 10/s with the callee limit on (by default a 2nd call within
/// 60 s is refused): the first is answered, the other two get 480 at admission.
#[test]
fn a_burst_to_one_callee_hits_the_callee_limit() {
    let mut scene = Scene::start(TrunkLimits {
        callee_limit: true,
        ..TrunkLimits::default()
    });
    let uas = carrier(&mut scene, "carrier-uas", Scenario::Builtin("uas"), 1);
    let uac = pbx_calls(&mut scene, "pbx-burst", "pbx_uac_any.xml", 3, 10);
    let answered = count(&scene, uac, "200_Recv");
    let limited = count(&scene, uac, "480_Recv");
    scene.ensure(answered == 1 && limited == 2, || {
        format!("{answered} answered, {limited} got 480; expected 1 and 2")
    });
    carrier_reached(&mut scene, uas, 1);

    let cdrs = stop_and_read_cdrs(&mut scene);
    let n_limited = cdrs
        .iter()
        .filter(|c| refused_with(c, 480, "callee_frequency_limit"))
        .count();
    let n_answered = cdrs
        .iter()
        .filter(|c| c.outcome.disposition == Disposition::Answered)
        .count();
    scene.ensure(cdrs.len() == 3 && n_limited == 2 && n_answered == 1, || {
        format!(
            "expected 1 answered and 2 refused 480 callee_frequency_limit:\n{}",
            summary(&cdrs)
        )
    });
    let first = &cdrs[2];
    scene.ensure(first.outcome.disposition == Disposition::Answered, || {
        format!(
            "the first call is not the answered one:\n{}",
            summary(&cdrs)
        )
    });
}
