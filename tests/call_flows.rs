//! Outbound and inbound calls that get answered: setup, relays of provisional and final
//! responses, ACK, in-dialog requests (re-INVITE, INFO, UPDATE) both ways, and BYE from either
//! side. Each test ends with the counters at zero and the CDR of its call.
//!
//! This file holds the relay of one in-dialog request the groups share; the tests stand in
//! `call_flows/`: `setup.rs` (calls set up, answered and ended by BYE), `reinvite.rs` (re-INVITEs
//! both ways, refused, crossing, SRTP re-offers), `requests.rs` (INFO and UPDATE, also in the
//! early dialog).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::*;
use trunkguard::model::EndReason;
use trunkguard::model::{Direction, Disposition, HangupSide};

#[path = "call_flows/reinvite.rs"]
mod reinvite;
#[path = "call_flows/requests.rs"]
mod requests;
#[path = "call_flows/setup.rs"]
mod setup;

/// Relay one in-dialog request from one UA to the other and its 200 back; returns the request
/// as the far UA received it.
async fn relay_in_dialog(
    from: &mut Ua,
    from_dlg: &mut Dialog,
    to: &mut Ua,
    method: &str,
    body: Option<&str>,
    answer: Option<&str>,
) -> Msg {
    let sent = from
        .in_dialog(from_dlg, method, body.map(|b| ("application/sdp", b)))
        .await;
    let got = to.expect_request(method).await;
    match body {
        Some(b) => assert_anchored(&got.body, b),
        None => assert_eq!(got.body, "", "{method} without body"),
    }
    to.reply_with(&got, 200, None, &[], answer).await;
    let resp = from.expect_response_to(method, 200).await;
    assert_eq!(resp.cseq(), (sent.cseq, method.to_string()));
    assert_eq!(resp.call_id(), sent.call_id);
    match answer {
        Some(a) => assert_anchored(&resp.body, a),
        None => assert_eq!(resp.body, "", "{method} answer without body"),
    }
    got
}
