//! The gateway on PostgreSQL (`[database] url = "postgres://…"`), each test on a fresh
//! database (`trunkguard::store::testing`): a real call's CDR, legs and recording row stored by
//! the CDR writer in PostgreSQL with its KPI buckets, read back through the store and the HTTP
//! API. Without a server these tests skip (and fail under CI=true). The whole in-process suite
//! runs on PostgreSQL with `TRUNKGUARD_TEST_BACKEND=postgres`; the crash test on PostgreSQL is
//! in `crash.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::api::*;
use common::*;
use reqwest::StatusCode;
use trunkguard::api::Role;
use trunkguard::model::{Disposition, RecordingStatus, RefusalReason};
use trunkguard::monitor::kpi::KpiCounters;
use trunkguard::store::testing;
use trunkguard::store::{Backend, Store};

#[tokio::test]
async fn a_real_call_is_stored_in_postgres_and_read_through_the_api() {
    let Some(mut h) = start_gateway_on_postgres(&[]).await else {
        return;
    };
    let url = h.pg.as_ref().unwrap().url();
    assert_eq!(h.gw.store().backend(), Backend::Postgres);
    let api = Api::new(&h);
    let officer = api_token(&h, "officer", Role::Compliance, &[]).await;

    // An answered call, ended by the PBX; a refused one.
    let mut call = h.establish().await;
    h.hang_up_from_pbx(&mut call.pbx).await;
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new("+861099999999", CALLEE))
        .await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(403).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
    wait_for_cdrs(&h, 2).await;

    // In PostgreSQL, as its own types, read by another process's store.
    let store = Store::connect(&url).await.unwrap();
    let kinds = testing::fetch_text(&store, "SELECT pg_typeof(invite_at)::text FROM cdrs", &[])
        .await
        .unwrap();
    assert_eq!(kinds.len(), 2);
    assert!(kinds
        .iter()
        .all(|k| k.as_deref() == Some("timestamp with time zone")));
    let cdrs = store.recent_cdrs(10).await.unwrap();
    let answered = cdrs
        .iter()
        .find(|c| c.outcome.disposition == Disposition::Answered)
        .expect("the answered call's CDR");
    let refused = cdrs
        .iter()
        .find(|c| c.outcome.disposition == Disposition::Refused)
        .expect("the refused call's CDR");
    assert_eq!(
        refused.outcome.refusal_reason,
        Some(RefusalReason::CallerIdNotAuthorized)
    );
    assert_eq!(answered.media.len(), 2, "{answered:#?}");
    let rec = answered.recording.as_ref().expect("its recording row");
    // Signalling only: no RTP crossed, and the recording says so.
    assert_eq!(rec.status, RecordingStatus::NoMedia, "{rec:#?}");
    let path = rec.path.as_deref().expect("a file");
    let file =
        trunkguard::recording::paths::resolve(&h.config.recording.dir, std::path::Path::new(path));
    assert!(file.exists(), "{path}");
    assert_eq!(
        store.find_recording_by_path(path).await.unwrap(),
        Some((answered.attempt.id.clone(), rec.clone()))
    );
    // The KPI buckets were updated in the CDRs' transaction.
    let buckets: Vec<(trunkguard::store::BucketKey, KpiCounters)> = store
        .kpi_buckets(
            answered.attempt.invite_at - chrono::Duration::hours(2),
            answered.attempt.invite_at + chrono::Duration::hours(2),
            Some("trunk"),
            Some(TRUNK),
            None,
        )
        .await
        .unwrap();
    assert_eq!(buckets.iter().map(|(_, k)| k.attempts).sum::<u64>(), 2);
    assert_eq!(buckets.iter().map(|(_, k)| k.answered).sum::<u64>(), 1);
    assert!(store.journaled_calls().await.unwrap().is_empty());

    // The API reads the same rows: a search paged one by one, and the call in full.
    let mut seen = Vec::new();
    let mut path = "/api/v1/cdrs?limit=1".to_string();
    loop {
        let page = api.get(&path, &officer).await.ok(StatusCode::OK).json();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(c) => path = format!("/api/v1/cdrs?limit=1&cursor={c}"),
            None => break,
        }
        assert!(seen.len() <= 2, "paging does not end");
    }
    let mut want: Vec<String> = cdrs.iter().map(|c| c.attempt.id.clone()).collect();
    want.reverse();
    assert_eq!(seen, want, "oldest first, each once");
    let full = api
        .get(&format!("/api/v1/calls/{}", answered.attempt.id), &officer)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(full["cdr"]["disposition"], "answered");
    assert_eq!(full["media"].as_array().unwrap().len(), 2, "{full}");
    assert_eq!(full["recording"]["status"], "no_media", "{full}");
    assert_eq!(full["recording"]["sha256"], rec.sha256.as_deref().unwrap());
    let refused_only = api
        .get("/api/v1/cdrs?disposition=refused", &officer)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(refused_only["items"].as_array().unwrap().len(), 1);

    // Every request audited, in PostgreSQL too.
    assert_eq!(store.count_audit().await.unwrap(), api.audited());
    store.close().await;
    h.finish().await;
}
