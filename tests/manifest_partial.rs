#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! Manifests against a database the test writes (issue 17), checked by the binary:
//! - a partial seal of today (`manifest seal --day today`), then more calls: the CDR of a call
//!   in progress at the seal, and of one that ended after it, are reported under `after_seal`,
//!   not as tampering; a CDR inserted afterwards with an end before the cut-off is `cdr_added`;
//! - the newest audit row (and the newest enforcement row) deleted after a seal: the chain
//!   itself still links, but `manifest verify` names the sealed head that is gone
//!   (`chain_head_missing`).

#[path = "common/log_rows.rs"]
mod log_rows;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use log_rows::{audit, lift};
use serde_json::Value;
use trunkguard::evidence::keys;
use trunkguard::evidence::seal::{seal_day, SealContext};
use trunkguard::model::{Attempt, Cdr, Direction, Disposition, EndReason, HangupSide, Outcome};
use trunkguard::store::{testing, CdrWrite, Store};

struct Deployment {
    _dir: tempfile::TempDir,
    config: PathBuf,
    store: Store,
    ctx: SealContext,
}

async fn deployment() -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("keys/signing.pem");
    keys::create(&key).unwrap();
    let config = d.join("tg.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n\
             [database]\nurl = \"sqlite://{d}/tg.db?mode=rwc\"\n\
             [recording]\ndir = \"{d}/recordings\"\n\
             [evidence]\nsigning_key = \"{}\"\ndir = \"{d}/evidence\"\n\
             [[trunks]]\nname = \"demo\"\npbx = [\"127.0.0.10/32\"]\n\
             carrier = \"127.0.0.1:5080\"\ninbound_to = \"127.0.0.10:5060\"\n\
             numbers = [\"+861012345678\"]\n",
            key.display(),
            d = d.display()
        ),
    )
    .unwrap();
    let store = Store::connect(&format!("sqlite://{}/tg.db?mode=rwc", d.display()))
        .await
        .unwrap();
    let ctx = SealContext {
        key: keys::load(&key).unwrap(),
        evidence_dir: d.join("evidence"),
        recordings_dir: d.join("recordings"),
    };
    Deployment {
        _dir: dir,
        config,
        store,
        ctx,
    }
}

/// `trunkguard manifest ARGS`: whether it exited 0, and its one JSON line.
fn manifest(config: &Path, args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
        .arg("--config")
        .arg(config)
        .arg("manifest")
        .args(args)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{out:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_else(|| panic!("{out:?}"));
    (out.status.success(), serde_json::from_str(line).unwrap())
}

fn kinds(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let who = ["id", "log"]
                .iter()
                .find_map(|k| f[*k].as_str())
                .unwrap_or("");
            (f["kind"].as_str().unwrap().to_string(), who.to_string())
        })
        .collect()
}

/// An answered call.
fn call(id: &str, invite_at: DateTime<Utc>, end_at: DateTime<Utc>) -> Cdr {
    let ms = trunkguard::model::ms_precision;
    let (invite_at, end_at) = (ms(invite_at), ms(end_at));
    let answer_at = invite_at + Duration::milliseconds(500);
    Cdr {
        attempt: Attempt {
            id: id.to_string(),
            inside_call_id: Some(format!("{id}@pbx")),
            outside_call_id: Some(format!("{id}-out")),
            trunk: Some("demo".into()),
            direction: Direction::Outbound,
            source: "127.0.0.10:5060".into(),
            caller: Some("861012345678".into()),
            callee: Some("8613800138000".into()),
            presented_from: Some("+861012345678".into()),
            pai: None,
            invite_at,
            ringing_at: None,
            answer_at: Some(answer_at),
            trunk_active: Some(1),
            caller_active: Some(1),
            node: None,
        },
        outcome: Outcome {
            end_at,
            talk_ms: Cdr::talk_ms_between(Some(answer_at), end_at),
            final_status: 200,
            final_reason: "OK".into(),
            q850_cause: Some(16),
            hangup_side: Some(HangupSide::Inside),
            disposition: Disposition::Answered,
            end_reason: EndReason::NormalClearing,
            refusal_reason: None,
            declined_media: Vec::new(),
        },
        media: Vec::new(),
        recording: None,
        dtmf: Vec::new(),
        recording_pauses: Vec::new(),
    }
}

#[tokio::test]
async fn calls_after_a_partial_seal_are_not_tampering_but_a_cdr_dated_before_it_is() {
    // A few seconds into the day at least: the calls below began today.
    let since_midnight = Utc::now()
        - Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
    if since_midnight < Duration::seconds(15) {
        tokio::time::sleep((Duration::seconds(16) - since_midnight).to_std().unwrap()).await;
    }
    let d = deployment().await;
    let store = &d.store;
    let now = Utc::now();
    let today = now.date_naive().format("%Y-%m-%d").to_string();

    // Before the seal: a call over, and one in progress (journaled, as the gateway does).
    store
        .insert_cdrs(&[call(
            "over",
            now - Duration::seconds(10),
            now - Duration::seconds(8),
        )])
        .await
        .unwrap();
    let mut talking = call("talking", now - Duration::seconds(9), now);
    talking.outcome.end_reason = EndReason::InProgress;
    store
        .apply_cdr_writes(&[CdrWrite::Journal {
            cdr: talking,
            recording_part: None,
            dialogs: None,
            at: now,
        }])
        .await
        .unwrap();

    let (ok, sealed) = manifest(&d.config, &["seal", "--day", &today]);
    assert!(ok, "{sealed}");
    assert_eq!(sealed["final"], false);
    assert_eq!(sealed["counts"]["cdrs"], 1);
    assert_eq!(sealed["in_progress"], serde_json::json!(["talking"]));
    let cut_off: DateTime<Utc> = sealed["covers_to"].as_str().unwrap().parse().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // After it: the call in progress is closed (its CDR replaces its journal row) — as a
    // restart after a crash closes it, at its last sign of life, before the cut-off: only the
    // manifest's list tells it from a forgery; one that began before the cut-off and ended
    // after it; one that began after it.
    let after = Utc::now();
    store
        .apply_cdr_writes(&[CdrWrite::Cdr(call(
            "talking",
            now - Duration::seconds(9),
            now - Duration::seconds(1),
        ))])
        .await
        .unwrap();
    store
        .insert_cdrs(&[
            call("straddling", cut_off - Duration::seconds(2), after),
            call("later", after, after + Duration::seconds(1)),
        ])
        .await
        .unwrap();
    let (ok, report) = manifest(&d.config, &["verify", "--day", &today]);
    assert!(ok, "{report}");
    assert_eq!(report["final"], false);
    let later: Vec<(&str, bool)> = report["after_seal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap(),
                a["in_progress"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        later,
        [("talking", true), ("straddling", false)],
        "{report}"
    );

    // A CDR inserted by hand, its call dated to have ended before the cut-off: tampering.
    store
        .insert_cdrs(&[call(
            "forged",
            cut_off - Duration::seconds(5),
            cut_off - Duration::seconds(1),
        )])
        .await
        .unwrap();
    let (ok, report) = manifest(&d.config, &["verify", "--day", &today]);
    assert!(!ok);
    assert_eq!(
        kinds(&report),
        [("cdr_added".to_string(), "forged".to_string())],
        "{report}"
    );
    assert_eq!(report["after_seal"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_newest_audit_and_enforcement_rows_deleted_after_a_seal_are_named() {
    let d = deployment().await;
    let store = &d.store;
    let mut audits = Vec::new();
    for i in 0..3 {
        audits.push(store.append_audit(&audit(i)).await.unwrap());
    }
    let lifts = store.append_enforcement(&[lift(1), lift(2)]).await.unwrap();
    let day = (Utc::now() - Duration::days(1)).date_naive();
    let day_text = day.format("%Y-%m-%d").to_string();
    let sealed = seal_day(store, &d.ctx, day, Utc::now()).await.unwrap();
    assert!(sealed.manifest.body.is_final);
    let heads: Vec<(String, Option<i64>)> = sealed
        .manifest
        .body
        .chains
        .iter()
        .map(|c| (c.log.clone(), c.head_id))
        .collect();
    assert_eq!(
        heads,
        [
            ("audit_log".to_string(), Some(audits[2])),
            ("enforcement_log".to_string(), Some(lifts[1])),
        ]
    );
    let (ok, report) = manifest(&d.config, &["verify", "--day", &day_text]);
    assert!(ok, "{report}");

    // The administrator drops the guard and deletes the newest audit row: what is left still
    // links, so only the sealed head shows it.
    testing::execute(store, "DROP TRIGGER audit_log_no_delete", &[])
        .await
        .unwrap();
    testing::execute(
        store,
        "DELETE FROM audit_log WHERE id = CAST($1 AS BIGINT)",
        &[&audits[2].to_string()],
    )
    .await
    .unwrap();
    let (ok, report) = manifest(&d.config, &["verify", "--day", &day_text]);
    assert!(!ok);
    assert_eq!(
        kinds(&report),
        [("chain_head_missing".to_string(), "audit_log".to_string())],
        "{report}"
    );
    assert_eq!(report["findings"][0]["head_id"], audits[2]);

    // The same for the enforcement log.
    testing::execute(store, "DROP TRIGGER enforcement_log_no_delete", &[])
        .await
        .unwrap();
    testing::execute(
        store,
        "DELETE FROM enforcement_log WHERE id = CAST($1 AS BIGINT)",
        &[&lifts[1].to_string()],
    )
    .await
    .unwrap();
    let (_, report) = manifest(&d.config, &["verify", "--day", &day_text]);
    assert_eq!(
        kinds(&report),
        [
            ("chain_head_missing".to_string(), "audit_log".to_string()),
            (
                "chain_head_missing".to_string(),
                "enforcement_log".to_string()
            ),
        ],
        "{report}"
    );
}
