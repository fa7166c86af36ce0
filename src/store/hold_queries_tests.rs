use chrono::Duration;

use super::*;
use crate::model::sample_cdr;
use crate::store::testing::on_each_backend;

fn t0() -> DateTime<Utc> {
    sample_cdr("x").attempt.invite_at
}

#[tokio::test]
async fn a_hold_is_placed_once_released_and_its_history_kept() {
    on_each_backend(|store| async move {
        assert!(!store.is_on_hold("C1").await.unwrap());
        assert_eq!(
            store
                .release_hold("C1", "officer", None, t0())
                .await
                .unwrap(),
            None,
            "nothing to release"
        );

        let PlaceHold::Placed(first) = store
            .place_hold("C1", "officer", "court order 12", t0())
            .await
            .unwrap()
        else {
            panic!("a new hold")
        };
        assert!(first.is_active());
        assert!(store.is_on_hold("C1").await.unwrap());
        assert!(!store.is_on_hold("C2").await.unwrap(), "per call");

        // A second hold while one is active changes nothing.
        let again = store
            .place_hold("C1", "other", "again", t0() + Duration::seconds(5))
            .await
            .unwrap();
        assert_eq!(again, PlaceHold::AlreadyHeld(first.clone()));

        let released = store
            .release_hold(
                "C1",
                "chief",
                Some("case closed"),
                t0() + Duration::hours(1),
            )
            .await
            .unwrap()
            .expect("released");
        assert_eq!(released.id, first.id);
        assert_eq!(released.released_by.as_deref(), Some("chief"));
        assert_eq!(released.release_reason.as_deref(), Some("case closed"));
        assert_eq!(released.released_at, Some(t0() + Duration::hours(1)));
        assert!(!store.is_on_hold("C1").await.unwrap());

        // Held again: a new row; the released one stays.
        let PlaceHold::Placed(second) = store
            .place_hold("C1", "officer", "appeal", t0() + Duration::hours(2))
            .await
            .unwrap()
        else {
            panic!("a new hold after the release")
        };
        assert_ne!(second.id, first.id);
        let history = store.holds_of_call("C1").await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0], released);
        assert_eq!(history[1], second);
        assert!(history[1].is_active());
    })
    .await;
}
