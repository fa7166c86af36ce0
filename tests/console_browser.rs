//! The web console in a real browser (headless Chromium through chromedriver) against a real
//! gateway that carried a real call with audio — the agent (PBX, left channel) playing 440 Hz,
//! the customer (carrier, right channel) 1 kHz — and refused another:
//! - a compliance officer signs in, finds the call by the callee's last digits, opens it,
//!   presses play: the audio element's position advances and its duration is the recording's;
//!   with "the customer only" what is heard is the 1 kHz tone, with "the agent only" the 440 Hz
//!   one (measured on the page's own Web Audio output); ±10 s and speed work; "verify now" says
//!   the file matches its digest; the call's evidence package and its search's (downloaded by
//!   the page's links) check digest by digest;
//! - the same in Chinese shows Chinese labels, and the switch brings English back;
//! - a carrier sees no recording anywhere and is refused the call's page and its recording when
//!   it types their URLs;
//! - without a session every page leads to the sign-in page, which comes back after;
//! - a form stripped of its CSRF token is refused and changes nothing;
//! - an admin edits a trunk's limits: bad values come back as typed with the server's message
//!   beside each one's field (in English and in Chinese), nothing stored; good ones are saved
//!   and the API shows them; audited; without the CSRF token refused;
//! - the KPI page lists the period's caller IDs and draws one caller ID's charts (its call
//!   only); the anomalies of one kind about that caller ID lead to the calls they name.
//!
//! Every page is saved as a PNG under `target/console-screenshots/<test>/` (looked at by a
//! person). Without Chromium the tests are skipped with a message, except under `CI=true`.
//!
//! This file holds what the groups share (languages, window sizes, a page fitting its window);
//! the tests stand in `console_browser/`: `officer.rs` (the officer's call, heard side by side, in
//! English and Chinese), `access.rs` (a carrier, no session, no CSRF token), `admin.rs` (a live
//! call hung up, a trunk's limits edited), `kpis.rs` (caller IDs, charts, anomalies).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "console/browser.rs"]
mod browser;
mod common;
#[path = "console/support.rs"]
mod support;

use std::time::Duration;

use browser::{Browser, SERIAL};
use serde_json::Value;
use support::{scene, Scene};

#[path = "console_browser/access.rs"]
mod access;
#[path = "console_browser/admin.rs"]
mod admin;
#[path = "console_browser/kpis.rs"]
mod kpis;
#[path = "console_browser/officer.rs"]
mod officer;

const EN: &str = "en-US,en";
const ZH: &str = "zh-CN,zh";
const LAPTOP: (u32, u32) = (1366, 900);
const TABLET: (u32, u32) = (820, 1180);

/// The page is no wider than the window (tables scroll inside their own box).
async fn assert_fits(b: &Browser) {
    let overflow = b
        .js("return document.documentElement.scrollWidth > window.innerWidth + 1")
        .await;
    assert_eq!(overflow, Value::from(false), "{} overflows", b.path().await);
}
