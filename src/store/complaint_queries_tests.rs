use chrono::Duration;

use super::*;
use crate::model::{sample_cdr, Cdr};
use crate::store::testing::on_each_backend;

fn call(id: &str, caller: &str, callee: &str, at: DateTime<Utc>) -> Cdr {
    let mut c = sample_cdr(id);
    c.attempt.caller = Some(caller.into());
    c.attempt.callee = Some(callee.into());
    c.attempt.invite_at = at;
    c.outcome.end_at = at + Duration::seconds(30);
    c
}

fn complaint(at: DateTime<Utc>) -> NewComplaint {
    NewComplaint {
        complainant: "+8613900000001".into(),
        caller_id: "+861012345678".into(),
        trunk: Some("demo".into()),
        received_at: at,
        category: "harassment".into(),
        source: "carrier".into(),
        text: "called me three times".into(),
    }
}

#[tokio::test]
async fn links_the_calls_it_is_about_and_stores_once() {
    on_each_backend(|store| async move {
        let t = sample_cdr("x").attempt.invite_at;
        let c = complaint(t);
        store
            .insert_cdrs(&[
                // Linked: same caller and callee, 2 h and 1 day before.
                call("A", &c.caller_id, &c.complainant, t - Duration::hours(2)),
                call("B", &c.caller_id, &c.complainant, t - Duration::days(1)),
                // Not: too old, other callee, other caller, long after.
                call("C", &c.caller_id, &c.complainant, t - Duration::days(8)),
                call("D", &c.caller_id, "+8613900000002", t - Duration::hours(1)),
                call("E", "+861000000000", &c.complainant, t - Duration::hours(1)),
                call("F", &c.caller_id, &c.complainant, t + Duration::hours(3)),
            ])
            .await
            .unwrap();
        let stored = store
            .insert_complaint(&c, Duration::days(7), t)
            .await
            .unwrap()
            .expect("new");
        assert_eq!(stored.cdr_ids, vec!["A".to_string(), "B".to_string()]);
        assert_eq!(stored.complaint, c);

        // The same complaint again: nothing new.
        assert!(store
            .insert_complaint(&c, Duration::days(7), t)
            .await
            .unwrap()
            .is_none());
        let listed = store
            .complaints(t - Duration::hours(1), t + Duration::hours(1), None)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].cdr_ids, stored.cdr_ids);
        assert_eq!(listed[0].id, stored.id);
        assert_eq!(store.last_complaint_id().await.unwrap(), stored.id);
        assert!(store
            .complaints_after(stored.id, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.complaints_after(0, 10).await.unwrap().len(), 1);
        // Filters: another caller ID, another period.
        assert!(store
            .complaints(t - Duration::hours(1), t + Duration::hours(1), Some("+1"))
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .complaints(t + Duration::seconds(1), t + Duration::hours(1), None)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn unknown_category_is_refused_by_the_schema() {
    on_each_backend(|store| async move {
        let t = sample_cdr("x").attempt.invite_at;
        let mut c = complaint(t);
        c.category = "spam".into();
        assert!(store
            .insert_complaint(&c, Duration::days(7), t)
            .await
            .is_err());
    })
    .await;
}
