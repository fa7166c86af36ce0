//! Every way a call ends other than a plain BYE: busy, no answer, ring timeout, CANCEL (and a
//! 200 racing it), carrier timeout, a PBX that never ACKs, the maximum duration, shutdown.
//! After each: no live call, no slot held, one CDR with the right disposition and reason.
//!
//! The tests stand in `endings/` by how the call ends: `unanswered.rs` (busy, no answer, ring
//! timeout, carrier timeout, the PBX giving up early), `cancel.rs` (CANCEL and its races),
//! `answered.rs` (after the answer), `shutdown.rs` (the gateway stopping or draining),
//! `inbound.rs` (calls from the carrier).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::*;
use trunkguard::model::{Disposition, HangupSide};
use trunkguard::model::{EndReason, RefusalReason};

#[path = "endings/answered.rs"]
mod answered;
#[path = "endings/cancel.rs"]
mod cancel;
#[path = "endings/inbound.rs"]
mod inbound;
#[path = "endings/shutdown.rs"]
mod shutdown;
#[path = "endings/unanswered.rs"]
mod unanswered;
