//! The database file made read-only for the gateway, which runs as an unprivileged service user
//! (as root file modes would not apply): the owner changed to root, mode 0444, as a restore or
//! a mistaken `chown` leaves it. The gateway starts anyway and says so, calls go on, their CDRs
//! go to the spool; once the file is the service user's again the spool is stored within
//! seconds, each CDR once, although the pool's connections were opened read-only (SQLite keeps a
//! connection's mode for its life; the pool would reuse them for 30 min).
//!
//! Needs root and `setpriv` (util-linux) to run the gateway as another user: skipped with a
//! message without them, a failure when `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::HashSet;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::binary::{busy_call, db_in, harness, spool_in, Peers};
use trunkguard::model::EndReason;

/// The service user (and group): `nobody` on Debian and Red Hat alike.
const SERVICE_ID: u32 = 65534;
const CALLS_READ_ONLY: usize = 4;
/// Polls of 100 ms (bounded; a hang fails).
const SPOOL_POLLS: usize = 300;
/// The replay retries every 5 s at most; a connection opened read-only would last 30 min.
const REPLAY_POLLS: usize = 300;

fn callee(i: usize) -> String {
    format!("+86139000002{i:02}")
}

/// Why this test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_string));
    if euid.as_deref() != Some("0") {
        return Some(format!(
            "not root (effective uid {euid:?}): cannot run the gateway as another user"
        ));
    }
    let dropped = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match dropped {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`setpriv … true` as uid {SERVICE_ID} failed: {s}")),
        Err(e) => Some(format!("`setpriv` (util-linux) cannot be run: {e}")),
    }
}

/// The gateway binary, copied into `dir` when the service user cannot reach the built one
/// (a target directory under a private home).
fn reachable_binary(dir: &Path) -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_trunkguard"));
    let reachable = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "test",
            "-x",
        ])
        .arg(&built)
        .status()
        .is_ok_and(|s| s.success());
    if reachable {
        return built;
    }
    let copy = dir.join("trunkguard-bin");
    std::fs::copy(&built, &copy).expect("copy the gateway binary");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    copy
}

/// The database and its WAL files, those that exist.
fn db_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", db.display())))
        .filter(|p| p.exists())
        .collect()
}

/// Owner `id`, `mode`, for the database and its WAL files.
fn set_owner_and_mode(db: &Path, id: u32, mode: u32) {
    for file in db_files(db) {
        chown(&file, Some(id), Some(id)).expect("chown");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

fn spooled_cdrs(spool: &Path) -> usize {
    std::fs::read_to_string(spool)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(r#""kind":"cdr""#))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdrs_of_a_read_only_database_are_spooled_and_stored_once_when_it_is_writable() {
    if let Some(why) = missing_prerequisite() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("db_read_only must run in CI, as root with setpriv (util-linux): {why}");
        }
        eprintln!("SKIPPED db_read_only: {why}");
        return;
    }
    let Peers {
        dir,
        mut pbx,
        mut carrier,
        addrs,
        config,
    } = Peers::bind(harness::TrunkLimits::default()).await;
    chown(dir.path(), Some(SERVICE_ID), Some(SERVICE_ID)).expect("chown the tempdir");
    let binary = reachable_binary(dir.path());
    let db = db_in(&dir);
    let spool = spool_in(&dir);
    let mut call_ids = HashSet::new();

    // A first run creates the database as the service user, with one call.
    let mut gw = harness::Gateway::start_as(dir.path(), &config, &binary, SERVICE_ID);
    call_ids.insert(busy_call(&mut pbx, &mut carrier, addrs.inside, &callee(0)).await);
    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));

    // Read-only for the service user: root's, 0444.
    set_owner_and_mode(&db, 0, 0o444);
    let mut gw = harness::Gateway::start_as(dir.path(), &config, &binary, SERVICE_ID);
    let log = gw.log();
    assert!(
        log.contains("database file is read-only for this process"),
        "the start says the database is read-only; log:\n{}",
        gw.log_tail(40)
    );
    for i in 1..=CALLS_READ_ONLY {
        call_ids.insert(busy_call(&mut pbx, &mut carrier, addrs.inside, &callee(i)).await);
    }
    let mut polls = 0;
    while spooled_cdrs(&spool) < CALLS_READ_ONLY {
        polls += 1;
        assert!(
            polls < SPOOL_POLLS,
            "the spool never held the calls ({} final CDRs); log:\n{}",
            spooled_cdrs(&spool),
            gw.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Fixed by hand while the gateway runs: the service user's again.
    set_owner_and_mode(&db, SERVICE_ID, 0o600);
    let mut polls = 0;
    while std::fs::metadata(&spool).map(|m| m.len()).unwrap_or(0) > 0 {
        polls += 1;
        assert!(
            polls < REPLAY_POLLS,
            "the spool was not stored within {} s of the database becoming writable; log:\n{}",
            REPLAY_POLLS / 10,
            gw.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Writing directly again.
    let last = busy_call(&mut pbx, &mut carrier, addrs.inside, &callee(99)).await;
    call_ids.insert(last);
    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    assert!(
        gw.log()
            .contains("CDR spool stored in the database and emptied"),
        "{}",
        gw.log_tail(40)
    );

    let cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), CALLS_READ_ONLY + 2, "{cdrs:#?}");
    harness::assert_one_cdr_per_call(&cdrs, &call_ids);
    assert!(
        cdrs.iter().all(|c| c.outcome.end_reason == EndReason::Busy),
        "{cdrs:#?}"
    );
    assert_eq!(std::fs::metadata(&spool).expect("spool").len(), 0);
}
