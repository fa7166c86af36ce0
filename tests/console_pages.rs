//! The web console over plain HTTP against the real gateway (no browser: `console_browser.rs`
//! drives Chromium): no session means the sign-in page; the sign-in sets a strict session cookie
//! and signs out; every form without the session's CSRF token is refused and changes nothing; a
//! revoked token ends its session; a carrier never reaches a call's page or its recording; the
//! search finds a call by its last digits and exports it as CSV; the pages follow the language;
//! every request is in the audit log with its actor, role, action and call.
//!
//! This file holds the audit rows' reader the groups share; the tests stand in `console_pages/`:
//! `sessions.rs` (sign-in, session cookie, CSRF, a revoked token), `calls.rs` (a call's page and
//! recording by role, the search and its CSV, the language), `admin.rs` (an admin's hangup, steps,
//! numbers).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;
#[path = "console/support.rs"]
mod support;

use reqwest::StatusCode;
use support::{scene, Client};
use trunkguard::store::AuditFilter;

#[path = "console_pages/admin.rs"]
mod admin;
#[path = "console_pages/calls.rs"]
mod calls;
#[path = "console_pages/sessions.rs"]
mod sessions;

async fn audit(s: &support::Scene, action: &str) -> Vec<trunkguard::store::NewAudit> {
    s.h.gw
        .store()
        .audit_entries(&AuditFilter {
            action: Some(action.to_string()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect()
}
