//! The HTTP API against the real gateway (listener on 127.0.0.1:0): token roles and refusals,
//! the audit log (one row per request), CDR search with cursor paging, a call's full record,
//! hanging up a live call, /healthz, /metrics and the OpenAPI document.
//!
//! This file holds the helpers the groups share; the tests stand in `api/` by what they cover:
//! `access.rs` (roles, audit rows, the OpenAPI document), `calls.rs` (CDR search, a call's record,
//! hangup), `observability.rs` (/healthz, /metrics, the KPI report), `enforcement.rs` (steps imposed
//! and lifted, complaints).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use common::api::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use trunkguard::api::{route_table, Role};
use trunkguard::model::EndReason;
use trunkguard::store::AuditFilter;

#[path = "api/access.rs"]
mod access;
#[path = "api/calls.rs"]
mod calls;
#[path = "api/enforcement.rs"]
mod enforcement;
#[path = "api/observability.rs"]
mod observability;

/// An answered outbound call from CALLER to `callee`, ended by the PBX.
async fn answered_call(h: &mut Harness, callee: &str) {
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(CALLER, callee))
        .await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    let tag = token_tag();
    h.carrier
        .reply_with(&c_invite, 200, Some(&tag), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, invite.cseq).await;
    h.carrier.expect_request("ACK").await;
    h.hang_up_from_pbx(&mut pbx).await;
}

fn token_tag() -> String {
    common::token("ct")
}

/// A call refused by the gateway (caller ID not the trunk's).
async fn refused_call(h: &mut Harness) {
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new("+861099999999", CALLEE))
        .await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response(403).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
}
