use chrono::Duration;

use super::*;
use crate::monitor::cdr::sample_cdr;

async fn memory_store() -> Store {
    Store::connect("sqlite::memory:").await.unwrap()
}

fn t0() -> DateTime<Utc> {
    sample_cdr("x").invite_at
}

fn number(n: &str) -> SubjectKey {
    SubjectKey {
        kind: "caller_id".into(),
        trunk: "demo".into(),
        number: n.into(),
    }
}

fn anomaly(id: &str, at: DateTime<Utc>) -> AnomalyRow {
    AnomalyRow {
        id: id.into(),
        detected_at: at,
        rule: "error_rate".into(),
        subject: number("+861012345678"),
        window_secs: 3600,
        observed: 0.42,
        threshold: 0.1,
        sample: 100,
        step: "suspend_number".into(),
        detail: String::new(),
        call_ids: vec!["C2".into(), "C1".into()],
    }
}

fn impose(
    at: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    anomaly: Option<&str>,
) -> NewEnforcement {
    NewEnforcement {
        at,
        action: "impose".into(),
        subject: number("+861012345678"),
        step: "suspend_number".into(),
        until,
        cause: if anomaly.is_some() {
            "anomaly"
        } else {
            "operator"
        }
        .into(),
        anomaly_id: anomaly.map(str::to_string),
        operator: anomaly.is_none().then(|| "alice".to_string()),
        reason: "test".into(),
        lifts: None,
        origin: "gateway".into(),
    }
}

#[tokio::test]
async fn anomaly_with_its_step_and_what_is_in_force() {
    let store = memory_store().await;
    let t = t0();
    let a = anomaly("A1", t);
    let ids = store
        .record_anomaly(
            &a,
            &[impose(t, Some(t + Duration::minutes(30)), Some("A1"))],
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    let mut expected = a.clone();
    expected.call_ids = vec!["C1".into(), "C2".into()];
    let found = store
        .anomalies(t, t + Duration::seconds(1), Some("demo"), None)
        .await
        .unwrap();
    assert_eq!(found, vec![expected.clone()]);
    assert_eq!(store.anomalies_of_call("C1").await.unwrap(), vec![expected]);
    assert!(store.anomalies_of_call("C9").await.unwrap().is_empty());

    // In force until its time, and no longer once lifted.
    let in_force = store.enforcement_in_force(t).await.unwrap();
    assert_eq!(in_force.len(), 1);
    assert_eq!(in_force[0].id, ids[0]);
    assert!(store
        .enforcement_in_force(t + Duration::minutes(31))
        .await
        .unwrap()
        .is_empty());
    let manual = store
        .append_enforcement(&[impose(t, None, None)])
        .await
        .unwrap();
    assert_eq!(store.enforcement_in_force(t).await.unwrap().len(), 2);
    let lift = NewEnforcement {
        action: "lift".into(),
        cause: "operator".into(),
        lifts: Some(manual[0]),
        until: None,
        ..impose(t + Duration::seconds(5), None, None)
    };
    store
        .append_enforcement(std::slice::from_ref(&lift))
        .await
        .unwrap();
    let left = store.enforcement_in_force(t).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, ids[0]);
    // A step is lifted once.
    assert!(store.append_enforcement(&[lift]).await.is_err());

    let log = store
        .enforcement_log(t, t + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(store.last_enforcement_id().await.unwrap(), log[2].id);
    assert_eq!(
        store.enforcement_after(log[0].id, 10).await.unwrap().len(),
        2
    );
    assert_eq!(
        store.enforcement_entry(log[1].id).await.unwrap(),
        Some(log[1].clone())
    );
}

#[tokio::test]
async fn the_log_is_append_only() {
    let store = memory_store().await;
    let t = t0();
    store
        .append_enforcement(&[impose(t, None, None)])
        .await
        .unwrap();
    for sql in [
        "UPDATE enforcement_log SET reason = 'edited'",
        "DELETE FROM enforcement_log",
    ] {
        let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(
        store
            .enforcement_log(t, t + Duration::seconds(1))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn bad_codes_are_refused_by_the_schema() {
    let store = memory_store().await;
    let t = t0();
    let mut e = impose(t, None, None);
    e.step = "shut_down".into();
    assert!(store.append_enforcement(&[e]).await.is_err());
}
