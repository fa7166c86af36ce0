//! The API's contract: schemathesis (`st run --checks all`) generates requests from the
//! gateway's own `/api/v1/openapi.json` — valid ones (which must be accepted) and invalid ones
//! (which must be refused with a documented 4xx) — against a throwaway gateway on its own temp
//! database, once with an admin token and once with a compliance token. Zero failures: each
//! parameter and field in the document carries the format, pattern, length and nullability
//! the server enforces.
//!
//! schemathesis comes from `TRUNKGUARD_SCHEMATHESIS` (the `st` executable; scripts/test.sh
//! installs it into a venv under ~/.cache/trunkguard and sets it), else `st` on the PATH.
//! Without it the test is skipped with a message, except under `CI=true`, where it fails.
//! `TRUNKGUARD_ST_EXAMPLES` sets the examples per operation (default 30).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::api::*;
use common::*;
use trunkguard::api::Role;

/// The `st` executable, if any.
fn schemathesis() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TRUNKGUARD_SCHEMATHESIS") {
        return Some(PathBuf::from(p));
    }
    let home_venv = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/trunkguard/schemathesis/bin/st"));
    if let Some(p) = home_venv.filter(|p| p.is_file()) {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("st"))
            .find(|p| p.is_file())
    })
}

/// The `st` executable, or `None` (after saying why) when it is missing and CI is not set.
fn schemathesis_or_skip(test: &str) -> Option<PathBuf> {
    let found = schemathesis();
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: schemathesis (`st`) not found under CI=true (scripts/test.sh installs it)"
        );
        eprintln!("{test}: SKIPPED, schemathesis (`st`) not found; pip install schemathesis");
    }
    found
}

/// One `st run` against the gateway's own document with `token`, over the operations `filter`
/// selects (`st` arguments): whether every check passed (schemathesis's report is printed).
async fn run_schemathesis(
    st: &PathBuf,
    h: &Harness,
    token: &str,
    role: &str,
    filter: &[&str],
) -> bool {
    let addr = h.gw.http_addr().expect("the API is enabled");
    let examples = std::env::var("TRUNKGUARD_ST_EXAMPLES").unwrap_or_else(|_| "30".into());
    let report = h.dir.path().join(format!("st-{role}"));
    let mut cmd = tokio::process::Command::new(st);
    cmd.arg("run")
        .arg(format!("http://{addr}/api/v1/openapi.json"))
        .args(["--url", &format!("http://{addr}")])
        .args(["--checks", "all"])
        .args(["--max-examples", &examples])
        .args(["--seed", "20261127"])
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--output-sanitize", "false"])
        .args(filter)
        .arg("--no-color")
        .arg("--report-dir")
        .arg(&report)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(h.dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("schemathesis finishes within 5 minutes")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("== schemathesis as {role}\n{stdout}\n{stderr}");
    // Not a vacuous pass: the run generated requests for the operations.
    assert!(stdout.contains("passed"), "no test cases ran:\n{stdout}");
    out.status.success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_accepts_what_its_schema_calls_valid_and_refuses_the_rest() {
    let Some(st) = schemathesis_or_skip("api_contract") else {
        return;
    };
    // A throwaway gateway: schemathesis deletes trunks, imposes orders, places holds.
    let h = start_gateway(&[]).await;
    let admin = api_token(&h, "contract-admin", Role::Admin, &[]).await;
    let officer = api_token(&h, "contract-officer", Role::Compliance, &[]).await;
    // Each token over the operations its role may call (the others answer it 403 whatever
    // the request, which teaches nothing and doubles the time): the admin's (tag `admin`), and
    // every other one with the compliance token.
    let compliance =
        run_schemathesis(&st, &h, &officer, "compliance", &["--exclude-tag", "admin"]).await;
    let admin = run_schemathesis(&st, &h, &admin, "admin", &["--include-tag", "admin"]).await;
    h.shutdown().await;
    assert!(
        compliance && admin,
        "schemathesis found failures (compliance token clean: {compliance}, admin token \
         clean: {admin}): see the reports above"
    );
}
