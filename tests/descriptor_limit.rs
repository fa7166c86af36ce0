//! Issue 16: the gateway raises its soft `RLIMIT_NOFILE` to the hard limit, computes how many
//! calls the descriptors allow and refuses calls beyond it cleanly (503 with Retry-After,
//! `descriptor_limit` on the CDR) before any resource is taken.
//!
//! The real limit is exercised: this test binary lowers its own limits (soft below hard, so
//! that the raise shows) before starting the gateway in-process. One test only in this file:
//! a lowered hard limit cannot be raised again by the process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::api::{api_token, Api};
use common::*;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use trunkguard::api::Role;
use trunkguard::model::{Disposition, RefusalReason};

async fn metric(h: &Harness, name: &str) -> f64 {
    let api = Api::new(h);
    let bearer = api_token(h, &token("metrics"), Role::Admin, &[]).await;
    let text = api.get("/metrics", &bearer).await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn calls_beyond_the_descriptor_budget_are_refused_before_anything_is_taken() {
    // Room for two calls exactly: the reserve, two calls' worth, and less than a third.
    let reserve = trunkguard::app::descriptors::reserve().total();
    let per_call = trunkguard::b2bua::capacity::DESCRIPTORS_PER_CALL;
    let hard = reserve + 2 * per_call + per_call - 1;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard - 100),
            maximum: Some(hard),
        },
    )
    .expect("lower the open-file limits");

    let mut h = start_gateway(&["recording.required = true"]).await;
    assert_eq!(
        getrlimit(Resource::Nofile).current,
        Some(hard),
        "the soft limit is raised to the hard one at start"
    );
    assert_eq!(metric(&h, "trunkguard_open_files_limit").await, hard as f64);
    assert_eq!(
        metric(&h, "trunkguard_call_capacity_descriptors").await,
        2.0
    );

    let mut first = h.establish().await;
    let mut second = h.establish().await;
    let ports = h.gw.media_ports_in_use();

    // The third: 503 with Retry-After at once, nothing sent to the carrier, nothing taken.
    h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(503).await;
    assert!(resp.header("Retry-After").is_some(), "{}", resp.head());
    h.carrier
        .expect_silence(std::time::Duration::from_millis(300))
        .await;
    assert_eq!(h.gw.media_ports_in_use(), ports, "no media port taken");
    assert_eq!(
        h.gw.policy().live(TRUNK).expect("trunk").active,
        2,
        "no concurrency slot taken"
    );

    // A call ends: the next one goes through.
    for call in [&mut first] {
        h.pbx.bye(&mut call.pbx).await;
        let bye = h.carrier.expect_request("BYE").await;
        h.carrier.reply(&bye, 200, None).await;
        h.pbx.expect_response_to("BYE", 200).await;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while h.gw.registry().len() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut third = h.establish().await;
    for call in [&mut second, &mut third] {
        h.pbx.bye(&mut call.pbx).await;
        let bye = h.carrier.expect_request("BYE").await;
        h.carrier.reply(&bye, 200, None).await;
        h.pbx.expect_response_to("BYE", 200).await;
    }

    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 4, "{cdrs:#?}");
    let refused: Vec<_> = cdrs
        .iter()
        .filter(|c| c.outcome.disposition == Disposition::Refused)
        .collect();
    assert_eq!(refused.len(), 1, "{cdrs:#?}");
    assert_eq!(
        refused[0].outcome.refusal_reason,
        Some(RefusalReason::DescriptorLimit)
    );
    assert_eq!(refused[0].outcome.final_status, 503);
}
