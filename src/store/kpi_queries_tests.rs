use chrono::{Duration, TimeZone};
use serde::Deserialize;

use super::*;
use crate::model::sample_cdr;
use crate::store::testing::{self, on_each_backend};
use crate::store::CdrWrite;

/// Counts calls and talk time: enough to show merging and the once-only rule (also used by
/// `multi_row_tests`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(in crate::store) struct Calls {
    pub(in crate::store) calls: u64,
    pub(in crate::store) talk_ms: i64,
}

impl BucketCounters for Calls {
    fn merge(&mut self, other: &Self) {
        self.calls += other.calls;
        self.talk_ms += other.talk_ms;
    }
}

fn hour(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, h, 0, 0).unwrap()
}

fn key(kind: &str, number: &str, h: u32) -> BucketKey {
    BucketKey {
        subject: SubjectKey {
            kind: kind.into(),
            trunk: "demo".into(),
            number: number.into(),
        },
        hour_start: hour(h),
    }
}

/// Each call counts for its trunk and its caller in the hour of its INVITE.
fn rollup(cdr: &Cdr) -> Vec<(BucketKey, Calls)> {
    let h = cdr
        .attempt
        .invite_at
        .format("%H")
        .to_string()
        .parse()
        .unwrap();
    let c = Calls {
        calls: 1,
        talk_ms: cdr.outcome.talk_ms,
    };
    vec![
        (key("trunk", "", h), c.clone()),
        (
            key("caller_id", cdr.attempt.caller.as_deref().unwrap_or(""), h),
            c,
        ),
    ]
}

fn call(id: &str, h: u32, talk_ms: i64) -> CdrWrite {
    let mut c = sample_cdr(id);
    c.attempt.invite_at = hour(h) + Duration::minutes(5);
    c.outcome.talk_ms = talk_ms;
    CdrWrite::Cdr(c)
}

#[tokio::test]
async fn buckets_count_each_inserted_cdr_once() {
    on_each_backend(|store| async move {
        let r: Rollup<'_, Calls> = &rollup;
        let batch = [call("A", 9, 1000), call("B", 9, 500), call("C", 10, 0)];
        store.apply_cdr_writes_with(&batch, Some(r)).await.unwrap();
        // The same CDRs again (a replay) add nothing; a new one adds.
        store
            .apply_cdr_writes_with(&[call("A", 9, 1000), call("D", 9, 1)], Some(r))
            .await
            .unwrap();
        let caller = sample_cdr("x").attempt.caller.unwrap();
        let got: Vec<(BucketKey, Calls)> = store
            .kpi_buckets(hour(0), hour(23), None, Some("demo"), None)
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![
                (
                    key("caller_id", &caller, 9),
                    Calls {
                        calls: 3,
                        talk_ms: 1501
                    }
                ),
                (
                    key("caller_id", &caller, 10),
                    Calls {
                        calls: 1,
                        talk_ms: 0
                    }
                ),
                (
                    key("trunk", "", 9),
                    Calls {
                        calls: 3,
                        talk_ms: 1501
                    }
                ),
                (
                    key("trunk", "", 10),
                    Calls {
                        calls: 1,
                        talk_ms: 0
                    }
                ),
            ]
        );
        // Filters and the half-open range.
        let trunk_only: Vec<(BucketKey, Calls)> = store
            .kpi_buckets(hour(10), hour(11), Some("trunk"), None, None)
            .await
            .unwrap();
        assert_eq!(
            trunk_only,
            vec![(
                key("trunk", "", 10),
                Calls {
                    calls: 1,
                    talk_ms: 0
                }
            )]
        );

        // Direct additions (complaints) merge into the same rows.
        store
            .add_to_buckets(vec![(
                key("trunk", "", 10),
                Calls {
                    calls: 2,
                    talk_ms: 0,
                },
            )])
            .await
            .unwrap();
        let t: Vec<(BucketKey, Calls)> = store
            .kpi_buckets(hour(10), hour(11), Some("trunk"), None, None)
            .await
            .unwrap();
        assert_eq!(t[0].1.calls, 3);
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_bucket_does_not_block_cdrs() {
    on_each_backend(|store| async move {
        let sql = format!(
            "INSERT INTO kpi_buckets (subject_kind, trunk, number, hour_start, counters_json) \
             VALUES ('trunk', 'demo', '', {}, 'not json')",
            testing::time_param(&store, 1)
        );
        testing::execute(
            &store,
            &sql,
            &[&crate::store::cdr_queries::format_time(hour(9))],
        )
        .await
        .unwrap();
        let r: Rollup<'_, Calls> = &rollup;
        let applied = store
            .apply_cdr_writes_with(&[call("A", 9, 1000)], Some(r))
            .await
            .unwrap();
        assert_eq!(applied.cdrs_inserted, 1);
        let err = store
            .kpi_buckets::<Calls>(hour(9), hour(10), Some("trunk"), None, None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("counters_json"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn concurrent_additions_are_all_counted() {
    // A bucket is read, merged and written back: two writers interleaving would lose one's
    // delta. Writers are serialized (SQLite's write lock, PostgreSQL's advisory lock).
    on_each_backend(|store| async move {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    store
                        .add_to_buckets(vec![(
                            key("trunk", "", 9),
                            Calls {
                                calls: 1,
                                talk_ms: 10,
                            },
                        )])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let got: Vec<(BucketKey, Calls)> = store
            .kpi_buckets(hour(9), hour(10), Some("trunk"), None, None)
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![(
                key("trunk", "", 9),
                Calls {
                    calls: 80,
                    talk_ms: 800
                }
            )]
        );
    })
    .await;
}
