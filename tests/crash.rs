//! SIGKILL with calls up or being set up. After a restart: an answered call's CDR is closed
//! with end reason `gateway_restart` and its recording repaired, marked incomplete, playing
//! the audio up to about one second before the kill; and the PBX and the carrier are told of
//! the dialogs they still hold — BYE for an answered call, a final 500 for the PBX's pending
//! INVITE, CANCEL for the carrier's (with the ACK of its 487, or ACK and BYE for a 2xx that
//! came while the gateway was down). Tested with our UA and with SIPp on both sides.
//!
//! This file holds the journal polls the groups share; the tests stand in `crash/`: `answered.rs`
//! (calls up at the kill: CDR, recording, BYEs, also to SIPp and over TCP), `ringing.rs` (calls
//! being set up at the kill: 500 to the PBX, CANCEL to the carrier, a 2xx that came while down),
//! `postgres.rs` (the same closing on PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::Path;
use std::time::Duration;

use common::binary::{harness, Setup};
use common::rtp::*;
use common::{Dialog, InviteSpec, Ua, CALLEE, CALLER};
use sqlx::{Connection, SqliteConnection};
use tokio::net::UdpSocket;
use trunkguard::model::Disposition;
use trunkguard::model::EndReason;
use trunkguard::model::RecordingStatus;

#[path = "crash/answered.rs"]
mod answered;
#[path = "crash/postgres.rs"]
mod postgres;
#[path = "crash/ringing.rs"]
mod ringing;

/// Polls of 100 ms for a journal entry (bounded; a hang fails).
const JOURNAL_POLLS: usize = 100;

/// Wait until the journal holds a call whose dialog state contains `needle`: the CDR writer
/// stores entries in the background, and a kill before that would leave nothing to end.
async fn wait_journaled(db: &Path, needle: &str) {
    wait_journaled_calls(db, needle, 1).await;
}

/// `wait_journaled` for `calls` calls.
async fn wait_journaled_calls(db: &Path, needle: &str, calls: usize) {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut last = String::new();
    for _ in 0..JOURNAL_POLLS {
        match SqliteConnection::connect(&url).await {
            Ok(mut conn) => {
                let rows: Result<Vec<Option<String>>, _> =
                    sqlx::query_scalar("SELECT dialogs_json FROM call_journal")
                        .fetch_all(&mut conn)
                        .await;
                match rows {
                    Ok(rows)
                        if rows
                            .iter()
                            .flatten()
                            .filter(|json| json.contains(needle))
                            .count()
                            >= calls =>
                    {
                        return
                    }
                    Ok(rows) => last = format!("{} rows", rows.len()),
                    Err(e) => last = format!("query: {e}"),
                }
            }
            Err(e) => last = format!("connect: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(db.with_file_name("gateway.log")).unwrap_or_default();
    panic!("no journaled call with {needle} after {JOURNAL_POLLS} polls (last: {last}); gateway log:\n{log}");
}
