use chrono::Duration;

use super::*;
use crate::model::{sample_cdr, Disposition};
use crate::model::{EndReason, RefusalReason};
use crate::store::testing::on_each_backend;
use crate::store::{AnomalyRow, SubjectKey};

async fn memory_store() -> Store {
    Store::connect("sqlite::memory:").await.unwrap()
}

fn cdr(id: &str, trunk: &str, caller: &str, callee: &str, secs: i64) -> Cdr {
    let mut c = sample_cdr(id);
    let t = c.attempt.invite_at + Duration::seconds(secs);
    c.attempt.invite_at = t;
    c.attempt.ringing_at = None;
    c.attempt.answer_at = None;
    c.outcome.end_at = t + Duration::seconds(1);
    c.attempt.trunk = Some(trunk.into());
    c.attempt.caller = Some(caller.into());
    c.attempt.callee = Some(callee.into());
    c
}

fn ids(cdrs: &[Cdr]) -> Vec<&str> {
    cdrs.iter().map(|c| c.attempt.id.as_str()).collect()
}

async fn seeded() -> (Store, DateTime<Utc>) {
    let store = memory_store().await;
    let t = seed(&store).await;
    (store, t)
}

/// Five CDRs; returns the sample INVITE time they are placed around.
async fn seed(store: &Store) -> DateTime<Utc> {
    let t = sample_cdr("x").attempt.invite_at;
    let mut refused = cdr("e", "b", "+1", "+3", 2);
    refused.outcome.disposition = Disposition::Refused;
    // Same INVITE time for c and d: the id breaks the tie.
    store
        .insert_cdrs(&[
            cdr("d", "a", "+1", "+2", 1),
            cdr("c", "a", "+2", "+1", 1),
            cdr("a", "a", "+1", "+2", 0),
            refused,
            cdr("b", "b", "+4", "+5", 3),
        ])
        .await
        .unwrap();
    t
}

#[tokio::test]
async fn filters_combine() {
    on_each_backend(|store| async move {
        let t = seed(&store).await;
        let q = |f: fn(&mut CdrQuery)| {
            let mut q = CdrQuery {
                limit: 100,
                ..CdrQuery::default()
            };
            f(&mut q);
            q
        };
        let all = store.search_cdrs(&q(|_| {})).await.unwrap();
        assert_eq!(ids(&all), vec!["a", "c", "d", "e", "b"]);
        let by_number = store
            .search_cdrs(&q(|q| q.number = Some("+1".into())))
            .await
            .unwrap();
        assert_eq!(ids(&by_number), vec!["a", "c", "d", "e"]);
        let by_trunk = store
            .search_cdrs(&q(|q| q.trunks = Some(vec!["b".into()])))
            .await
            .unwrap();
        assert_eq!(ids(&by_trunk), vec!["e", "b"]);
        let none = store
            .search_cdrs(&q(|q| q.trunks = Some(vec![])))
            .await
            .unwrap();
        assert!(none.is_empty());
        let refused = store
            .search_cdrs(&q(|q| q.disposition = Some("refused".into())))
            .await
            .unwrap();
        assert_eq!(ids(&refused), vec!["e"]);
        let mut range = q(|_| {});
        range.from = Some(t + Duration::seconds(1));
        range.to = Some(t + Duration::seconds(3));
        assert_eq!(
            ids(&store.search_cdrs(&range).await.unwrap()),
            vec!["c", "d", "e"]
        );
        range.number = Some("+2".into());
        range.trunks = Some(vec!["a".into(), "b".into()]);
        assert_eq!(
            ids(&store.search_cdrs(&range).await.unwrap()),
            vec!["c", "d"]
        );
    })
    .await;
}

#[tokio::test]
async fn keyset_pages_give_each_row_once_in_order() {
    on_each_backend(|store| async move {
        seed(&store).await;
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .search_cdrs(&CdrQuery {
                    after: after.clone(),
                    limit: 2,
                    ..CdrQuery::default()
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(CdrSearchKey {
                invite_at: last.attempt.invite_at,
                id: last.attempt.id.clone(),
            });
            seen.extend(page.iter().map(|c| c.attempt.id.clone()));
        }
        assert_eq!(seen, vec!["a", "c", "d", "e", "b"]);
    })
    .await;
}

#[tokio::test]
async fn search_uses_an_index() {
    let (store, _) = seeded().await;
    for (sql, index) in [
        (
            "EXPLAIN QUERY PLAN SELECT id FROM cdrs WHERE trunk IN ($1) AND invite_at >= $2 ORDER BY invite_at, id",
            "cdrs_trunk_invite_at",
        ),
        (
            "EXPLAIN QUERY PLAN SELECT id FROM cdrs WHERE (invite_at, id) > ($1, $2) ORDER BY invite_at, id",
            "cdrs_invite_at",
        ),
        (
            "EXPLAIN QUERY PLAN SELECT id FROM cdrs WHERE disposition = $1 AND invite_at >= $2 ORDER BY invite_at, id",
            "cdrs_disposition_invite_at",
        ),
    ] {
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sql)
            .bind("x")
            .bind("y")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let text: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
        assert!(
            text.iter().any(|l| l.contains(index)),
            "{sql}: {text:?}"
        );
    }
}

#[tokio::test]
async fn reason_matches_the_refusal_or_the_end_reason() {
    on_each_backend(|store| async move {
        seed(&store).await;
        let mut blocked = cdr("f", "a", "+1", "+9", 4);
        blocked.outcome.disposition = Disposition::Refused;
        blocked.outcome.refusal_reason = Some(RefusalReason::NumberBlocked);
        blocked.outcome.end_reason = EndReason::Refused;
        let mut busy = cdr("g", "b", "+1", "+2", 5);
        busy.outcome.end_reason = EndReason::Busy;
        store.insert_cdrs(&[blocked, busy]).await.unwrap();
        let by = |reason: &str| {
            let q = CdrQuery {
                reason: Some(reason.into()),
                limit: 100,
                ..CdrQuery::default()
            };
            let store = store.clone();
            async move { store.search_cdrs(&q).await.unwrap() }
        };
        assert_eq!(ids(&by("number_blocked").await), vec!["f"]);
        assert_eq!(ids(&by("busy").await), vec!["g"]);
        assert_eq!(ids(&by("refused").await), vec!["f"]);
        assert!(by("rate_limited").await.is_empty());
        // With the other filters: the blocked call is not on trunk b.
        let q = CdrQuery {
            reason: Some("number_blocked".into()),
            trunks: Some(vec!["b".into()]),
            limit: 100,
            ..CdrQuery::default()
        };
        assert!(store.search_cdrs(&q).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn anomaly_gives_the_calls_it_names() {
    on_each_backend(|store| async move {
        let t = seed(&store).await;
        let anomaly = |id: &str, calls: &[&str]| AnomalyRow {
            id: id.into(),
            detected_at: t,
            rule: "error_rate".into(),
            subject: SubjectKey {
                kind: "caller_id".into(),
                trunk: "a".into(),
                number: "+1".into(),
            },
            window_secs: 3600,
            observed: 0.5,
            threshold: 0.1,
            sample: 10,
            step: "alert".into(),
            detail: String::new(),
            call_ids: calls.iter().map(|c| c.to_string()).collect(),
        };
        // A named call without a CDR (still live then) is simply absent.
        store
            .record_anomaly(&anomaly("1000", &["d", "a", "live"]), &[])
            .await
            .unwrap();
        store
            .record_anomaly(&anomaly("2000", &["b"]), &[])
            .await
            .unwrap();
        let q = |anomaly: &str, number: Option<&str>| CdrQuery {
            anomaly: Some(anomaly.into()),
            number: number.map(str::to_string),
            limit: 100,
            ..CdrQuery::default()
        };
        assert_eq!(
            ids(&store.search_cdrs(&q("1000", None)).await.unwrap()),
            vec!["a", "d"]
        );
        assert_eq!(
            ids(&store.search_cdrs(&q("2000", None)).await.unwrap()),
            vec!["b"]
        );
        assert!(store
            .search_cdrs(&q("2000", Some("+1")))
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .search_cdrs(&q("3000", None))
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_part_of_a_number_matches_where_it_is_asked() {
    on_each_backend(|store| async move {
        store
            .insert_cdrs(&[
                cdr("p", "a", "861012345678", "8613900000001", 0),
                cdr("q", "a", "861099990000", "8613812345600", 1),
                cdr("r", "a", "861055550000", "8613800005678", 2),
            ])
            .await
            .unwrap();
        let by = |digits: &str, at: NumberMatch| {
            let q = CdrQuery {
                number_part: NumberPart::new(digits, at),
                limit: 100,
                ..CdrQuery::default()
            };
            let store = store.clone();
            async move { ids(&store.search_cdrs(&q).await.unwrap()).join(",") }
        };
        assert_eq!(by("5678", NumberMatch::Suffix).await, "p,r");
        assert_eq!(by("5678", NumberMatch::Anywhere).await, "p,r");
        assert_eq!(by("12345", NumberMatch::Anywhere).await, "p,q");
        assert_eq!(by("861099", NumberMatch::Prefix).await, "q");
        assert_eq!(by("86138", NumberMatch::Prefix).await, "q,r");
        assert_eq!(by("0001", NumberMatch::Suffix).await, "p");
        assert_eq!(by("5678", NumberMatch::Prefix).await, "");
    })
    .await;
    // Only digits make a part: no wildcard reaches the pattern.
    for bad in ["", "12%", "_1", "+86", "1".repeat(21).as_str()] {
        assert!(
            NumberPart::new(bad, NumberMatch::Anywhere).is_none(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn newest_first_pages_backwards_and_more_filters_combine() {
    on_each_backend(|store| async move {
        seed(&store).await;
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .search_cdrs(&CdrQuery {
                    after: after.clone(),
                    newest_first: true,
                    limit: 2,
                    ..CdrQuery::default()
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(CdrSearchKey {
                invite_at: last.attempt.invite_at,
                id: last.attempt.id.clone(),
            });
            seen.extend(page.iter().map(|c| c.attempt.id.clone()));
        }
        assert_eq!(seen, vec!["b", "e", "d", "c", "a"]);

        // "s": inbound, 486, unrecorded; "t": on hold, its recording purged; "u": recorded.
        let t0 = sample_cdr("x").attempt.invite_at;
        let mut s = cdr("s", "a", "+7", "+8", 10);
        s.attempt.direction = crate::model::Direction::Inbound;
        s.outcome.final_status = 486;
        s.outcome.talk_ms = 0;
        s.recording = None;
        let mut t = cdr("t", "a", "+7", "+8", 11);
        t.outcome.talk_ms = 90_000;
        let mut u = cdr("u", "a", "+7", "+8", 12);
        u.outcome.talk_ms = 5_000;
        store.insert_cdrs(&[s, t, u]).await.unwrap();
        store
            .place_hold("t", "officer", "case 1", t0)
            .await
            .unwrap();
        crate::store::testing::execute(
            &store,
            &format!(
                "UPDATE recordings SET purged_at = {} WHERE cdr_id = 't'",
                crate::store::testing::time_param(&store, 1)
            ),
            &[&crate::store::cdr_queries::format_time(t0)],
        )
        .await
        .unwrap();
        let q = |f: fn(&mut CdrQuery)| {
            let mut q = CdrQuery {
                number: Some("+7".into()),
                limit: 100,
                ..CdrQuery::default()
            };
            f(&mut q);
            let store = store.clone();
            async move { ids(&store.search_cdrs(&q).await.unwrap()).join(",") }
        };
        assert_eq!(q(|q| q.direction = Some("inbound".into())).await, "s");
        assert_eq!(q(|q| q.direction = Some("outbound".into())).await, "t,u");
        assert_eq!(q(|q| q.final_status = Some(486)).await, "s");
        assert_eq!(q(|q| q.min_talk_ms = Some(5_000)).await, "t,u");
        assert_eq!(q(|q| q.max_talk_ms = Some(5_000)).await, "s,u");
        assert_eq!(q(|q| q.has_recording = Some(true)).await, "u");
        assert_eq!(q(|q| q.has_recording = Some(false)).await, "s,t");
        assert_eq!(q(|q| q.on_hold = Some(true)).await, "t");
        assert_eq!(q(|q| q.on_hold = Some(false)).await, "s,u");
        store.release_hold("t", "officer", None, t0).await.unwrap();
        assert_eq!(q(|q| q.on_hold = Some(true)).await, "");
    })
    .await;
}
