use chrono::Duration;

use super::*;
use crate::model::sample_cdr;
use crate::store::testing::{self, on_each_backend};

fn t0() -> DateTime<Utc> {
    sample_cdr("x").attempt.invite_at
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
    imposition: i64,
    at: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    anomaly: Option<&str>,
) -> NewEnforcement {
    NewEnforcement {
        at,
        action: "impose".into(),
        imposition,
        subject: number("+861012345678"),
        step: "suspend_number".into(),
        until,
        cause: if anomaly.is_some() {
            "rule"
        } else {
            "operator"
        }
        .into(),
        rule: anomaly.map(|_| "error_rate".to_string()),
        anomaly_id: anomaly.map(str::to_string),
        operator: anomaly.is_none().then(|| "alice".to_string()),
        reason: "test".into(),
        detail_json: "{}".into(),
    }
}

fn lift(imposition: i64, at: DateTime<Utc>) -> NewEnforcement {
    NewEnforcement {
        action: "lift".into(),
        cause: "operator".into(),
        until: None,
        ..impose(imposition, at, None, None)
    }
}

#[tokio::test]
async fn anomaly_with_its_step_and_what_is_in_force() {
    on_each_backend(|store| async move {
        let t = t0();
        let a = anomaly("A1", t);
        let ids = store
            .record_anomaly(
                &a,
                &[impose(7, t, Some(t + Duration::minutes(30)), Some("A1"))],
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

        // In force until lifted, past its `until` too (the ladder decides when it lifts).
        let in_force = store.enforcement_in_force().await.unwrap();
        assert_eq!(in_force.len(), 1);
        assert_eq!(in_force[0].id, ids[0]);
        assert_eq!(in_force[0].entry.imposition, 7);
        store
            .append_enforcement(&[impose(8, t, None, None)])
            .await
            .unwrap();
        assert_eq!(store.enforcement_in_force().await.unwrap().len(), 2);
        store
            .append_enforcement(&[lift(8, t + Duration::seconds(5))])
            .await
            .unwrap();
        let left = store.enforcement_in_force().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].entry.imposition, 7);
        // A step is imposed once and lifted once.
        assert!(store.append_enforcement(&[lift(8, t)]).await.is_err());
        assert!(store
            .append_enforcement(&[impose(7, t, None, None)])
            .await
            .is_err());

        let log = store
            .enforcement_log(t, t + Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0].entry.rule.as_deref(), Some("error_rate"));
        assert_eq!(store.last_enforcement_id().await.unwrap(), log[2].id);
        assert_eq!(
            store.enforcement_after(log[0].id, 10).await.unwrap().len(),
            2
        );
        assert_eq!(
            store.enforcement_entry(log[1].id).await.unwrap(),
            Some(log[1].clone())
        );
    })
    .await;
}

#[tokio::test]
async fn the_log_is_append_only() {
    on_each_backend(|store| async move {
        let t = t0();
        store
            .append_enforcement(&[impose(1, t, None, None)])
            .await
            .unwrap();
        for sql in [
            "UPDATE enforcement_log SET reason = 'edited'",
            "DELETE FROM enforcement_log",
        ] {
            let err = testing::execute(&store, sql, &[]).await.unwrap_err();
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
    })
    .await;
}

#[tokio::test]
async fn bad_codes_are_refused_by_the_schema() {
    on_each_backend(|store| async move {
        let t = t0();
        let mut e = impose(1, t, None, None);
        e.step = "shut_down".into();
        assert!(store.append_enforcement(&[e]).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn log_rows_citing_anomalies() {
    on_each_backend(|store| async move {
        let t = t0();
        store
            .record_anomaly(&anomaly("A1", t), &[impose(7, t, None, Some("A1"))])
            .await
            .unwrap();
        store
            .record_anomaly(&anomaly("A2", t), &[impose(9, t, None, Some("A2"))])
            .await
            .unwrap();
        store
            .append_enforcement(&[impose(8, t, None, None)])
            .await
            .unwrap();
        let rows = store.enforcement_citing(&["A1".into()]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].entry.imposition, 7);
        let rows = store
            .enforcement_citing(&["A1".into(), "A2".into(), "nope".into()])
            .await
            .unwrap();
        let ids: Vec<i64> = rows.iter().map(|r| r.entry.imposition).collect();
        assert_eq!(ids, vec![7, 9]);
        assert!(store.enforcement_citing(&[]).await.unwrap().is_empty());
    })
    .await;
}
