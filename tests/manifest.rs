#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! Signed daily manifests against the real gateway (issue 17): a day of real calls (one
//! answered with audio and recorded, one refused) is sealed; `trunkguard manifest verify`
//! finds it intact, then — one change at a time, each undone before the next — names a deleted
//! CDR row, an edited `talk_ms`, a replaced WAV, a deleted WAV, an inserted CDR; the manifest
//! copied elsewhere checks with the public key alone (no database, no configuration) and a
//! changed copy does not; the call's evidence package carries its inclusion proof, which
//! checks with the public key and fails for a package made while the CDR was altered; the API
//! serves the manifest and its verification by role; a retention purge of the day is reported
//! as such, not as tampering; a deleted manifest breaks the chain of the next day's.

mod common;
#[path = "console/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use support::scene_with;
use trunkguard::evidence::keys;
use trunkguard::evidence::seal::{seal_day, SealContext};
use trunkguard::store::{testing, Backend, Store};

/// The binary with `args`; its exit code and JSON lines.
fn cli(args: &[&str]) -> (Output, Vec<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l} ({out:?})")))
        .collect();
    (out, lines)
}

/// `manifest verify --day D`: whether it passed, and the report.
fn verify(config: &Path, day: &str) -> (bool, Value) {
    let (out, lines) = cli(&[
        "--config",
        config.to_str().unwrap(),
        "manifest",
        "verify",
        "--day",
        day,
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{out:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines.len(), 1, "{out:?}");
    let report = lines.into_iter().next().unwrap();
    assert_eq!(out.status.success(), report["ok"] == true, "{report}");
    (out.status.success(), report)
}

/// The findings' kinds and whom they name.
fn named(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let who = ["id", "call_id", "path", "previous_day"]
                .iter()
                .find_map(|k| f[*k].as_str())
                .unwrap_or("")
                .to_string();
            (f["kind"].as_str().unwrap().to_string(), who)
        })
        .collect()
}

fn pair(kind: &str, who: &str) -> (String, String) {
    (kind.to_string(), who.to_string())
}

fn config_file(
    dir: &Path,
    db_url: &str,
    recordings: &Path,
    key: &Path,
    evidence: &Path,
) -> PathBuf {
    let path = dir.join("cli.toml");
    std::fs::write(
        &path,
        format!(
            "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n\
             [database]\nurl = \"{db_url}\"\n\
             [recording]\ndir = \"{}\"\n\
             [evidence]\nsigning_key = \"{}\"\ndir = \"{}\"\n\
             [[trunks]]\nname = \"demo\"\npbx = [\"127.0.0.10/32\"]\n\
             carrier = \"127.0.0.1:5080\"\ninbound_to = \"127.0.0.10:5060\"\n\
             numbers = [\"+861012345678\"]\n",
            recordings.display(),
            key.display(),
            evidence.display()
        ),
    )
    .unwrap();
    path
}

async fn get(base: &str, path: &str, token: &str) -> (reqwest::StatusCode, Vec<u8>) {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.bytes().await.unwrap().to_vec())
}

/// The package's files, `cdr.json` of `folder` replaced by `cdr`.
fn repack(zip: &[u8], folder: &str, cdr: &Value) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name == format!("{folder}/cdr.json") {
            bytes = serde_json::to_vec_pretty(cdr).unwrap();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

async fn drop_trigger(store: &Store, table: &str, trigger: &str) {
    let sql = match store.backend() {
        Backend::Sqlite => format!("DROP TRIGGER {trigger}"),
        Backend::Postgres => format!("DROP TRIGGER {trigger} ON {table}"),
    };
    testing::execute(store, &sql, &[]).await.unwrap();
}

#[tokio::test]
async fn a_sealed_day_of_real_calls_names_every_change_made_after_the_seal() {
    // The deployment's key and evidence folder, given to the gateway (the API verifies with it).
    let own = tempfile::tempdir().unwrap();
    let dir = own.path();
    let evidence = dir.join("evidence");
    let key_path = dir.join("keys/signing.pem");
    let public = keys::create(&key_path).unwrap();
    let s = scene_with(&[
        &format!("evidence.signing_key = \"{}\"", key_path.display()),
        &format!("evidence.dir = \"{}\"", evidence.display()),
    ])
    .await;
    let store = s.h.gw.store().clone();
    let recordings = s.h.config.recording.dir.clone();
    let public_pem = dir.join("public.pem");
    std::fs::write(&public_pem, keys::public_pem(&public).unwrap()).unwrap();
    let config = config_file(
        dir,
        &s.h.config.database.url,
        &recordings,
        &key_path,
        &evidence,
    );

    let answered = store.get_cdr(&s.answered).await.unwrap().unwrap();
    let day: NaiveDate = answered.attempt.invite_at.date_naive();
    let day_text = day.format("%Y-%m-%d").to_string();
    let calls_of_day = store
        .recent_cdrs(10)
        .await
        .unwrap()
        .iter()
        .filter(|c| c.attempt.invite_at.date_naive() == day)
        .count() as u64;

    // Today so far, from the command line: a partial seal.
    let (out, lines) = cli(&[
        "--config",
        config.to_str().unwrap(),
        "manifest",
        "seal",
        "--day",
        &day_text,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lines[0]["final"], false, "{}", lines[0]);
    assert_eq!(lines[0]["counts"]["cdrs"], calls_of_day);

    // The full seal, as the daily task makes it once the day has ended (a clock after it).
    let ctx = SealContext {
        key: keys::load(&key_path).unwrap(),
        evidence_dir: evidence.clone(),
        recordings_dir: recordings.clone(),
    };
    let midnight: DateTime<Utc> = day
        .succ_opt()
        .unwrap()
        .and_hms_opt(0, 10, 0)
        .unwrap()
        .and_utc();
    let sealed = seal_day(&store, &ctx, day, midnight).await.unwrap();
    let m = &sealed.manifest;
    assert!(m.body.is_final);
    assert_eq!(m.body.counts.cdrs, calls_of_day);
    assert_eq!(m.body.counts.recordings, 1, "the answered call's recording");
    assert!(m.body.problems.is_empty(), "{:?}", m.body.problems);
    assert!(sealed.file.ends_with(format!("manifests/{day_text}.json")));

    let (ok, report) = verify(&config, &day_text);
    assert!(ok, "{report}");
    assert_eq!(report["final"], true);
    assert_eq!(report["key"], "configured");

    // One change at a time, each undone before the next.
    let wav = trunkguard::recording::paths::resolve(
        &recordings,
        Path::new(
            answered
                .recording
                .as_ref()
                .unwrap()
                .path
                .as_deref()
                .unwrap(),
        ),
    );
    let audio = std::fs::read(&wav).unwrap();
    let id = s.answered.as_str();

    testing::execute(&store, "DELETE FROM cdrs WHERE id = $1", &[id])
        .await
        .unwrap();
    let (ok, report) = verify(&config, &day_text);
    assert!(!ok);
    assert_eq!(
        named(&report),
        [pair("cdr_deleted", id), pair("recording_row_deleted", id)],
        "{report}"
    );
    store
        .insert_cdrs(std::slice::from_ref(&answered))
        .await
        .unwrap();
    assert!(verify(&config, &day_text).0, "restored");

    testing::execute(
        &store,
        "UPDATE cdrs SET talk_ms = talk_ms + 60000 WHERE id = $1",
        &[id],
    )
    .await
    .unwrap();
    let (ok, report) = verify(&config, &day_text);
    assert!(!ok);
    assert_eq!(named(&report), [pair("cdr_altered", id)], "{report}");
    // A package made now: its CDR is not the sealed one, and its proof says so.
    let (status, altered_package) =
        get(&s.base, &format!("/api/v1/calls/{id}/evidence"), &s.officer).await;
    assert_eq!(status, 200);
    testing::execute(
        &store,
        "UPDATE cdrs SET talk_ms = talk_ms - 60000 WHERE id = $1",
        &[id],
    )
    .await
    .unwrap();
    assert!(verify(&config, &day_text).0, "restored");

    std::fs::write(&wav, b"RIFF not the recording").unwrap();
    let (ok, report) = verify(&config, &day_text);
    assert!(!ok);
    assert_eq!(named(&report), [pair("recording_replaced", id)], "{report}");
    assert_eq!(report["findings"][0]["file"], "wav");
    std::fs::remove_file(&wav).unwrap();
    let (_, report) = verify(&config, &day_text);
    assert_eq!(
        named(&report),
        [pair("recording_file_deleted", id)],
        "{report}"
    );
    std::fs::write(&wav, &audio).unwrap();
    assert!(verify(&config, &day_text).0, "restored");

    let mut intruder = answered.clone();
    intruder.attempt.id = "inserted-by-hand".into();
    intruder.recording = None;
    store.insert_cdrs(&[intruder]).await.unwrap();
    let (ok, report) = verify(&config, &day_text);
    assert!(!ok);
    assert_eq!(
        named(&report),
        [pair("cdr_added", "inserted-by-hand")],
        "{report}"
    );
    testing::execute(
        &store,
        "DELETE FROM cdrs WHERE id = $1",
        &["inserted-by-hand"],
    )
    .await
    .unwrap();
    assert!(verify(&config, &day_text).0, "restored");

    // The manifest copied to another machine: the public key alone checks it, no config.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("manifest.json");
    std::fs::copy(&sealed.file, &copy).unwrap();
    let their_key = elsewhere.path().join("public.pem");
    std::fs::copy(&public_pem, &their_key).unwrap();
    let offline = |file: &Path, package: Option<&Path>| {
        let mut args = vec![
            "--config".to_string(),
            "/nonexistent/trunkguard.toml".to_string(),
            "manifest".into(),
            "verify".into(),
            "--file".into(),
            file.display().to_string(),
            "--public-key".into(),
            their_key.display().to_string(),
        ];
        if let Some(p) = package {
            args.extend(["--package".to_string(), p.display().to_string()]);
        }
        cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (out, lines) = offline(&copy, None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[0]["leaves"], m.body.counts.leaves);
    let mut forged: Value = serde_json::from_str(&std::fs::read_to_string(&copy).unwrap()).unwrap();
    forged["entries"][0]["sha256"] = Value::String("00".repeat(32));
    let forged_path = elsewhere.path().join("forged.json");
    std::fs::write(&forged_path, serde_json::to_vec_pretty(&forged).unwrap()).unwrap();
    let (out, lines) = offline(&forged_path, None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let kinds: Vec<&str> = lines[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"bad_signature"), "{kinds:?}");
    assert!(kinds.contains(&"merkle_root_mismatch"), "{kinds:?}");

    // The call's evidence package carries its inclusion proof; it checks with the key alone,
    // with and without the manifest, and fails for the package made while the CDR was altered
    // and for a package whose cdr.json was changed.
    let (status, package) = get(&s.base, &format!("/api/v1/calls/{id}/evidence"), &s.officer).await;
    assert_eq!(status, 200);
    let package_path = elsewhere.path().join("evidence.zip");
    std::fs::write(&package_path, &package).unwrap();
    let (out, lines) = offline(&copy, Some(&package_path));
    assert!(out.status.success(), "{out:?} {lines:?}");
    assert_eq!(lines[1]["call_id"], id);
    assert_eq!(lines[1]["ok"], true, "{}", lines[1]);
    let proof_only = cli(&[
        "manifest",
        "verify",
        "--package",
        package_path.to_str().unwrap(),
        "--public-key",
        their_key.to_str().unwrap(),
    ]);
    assert!(proof_only.0.status.success(), "{:?}", proof_only.0);
    let altered_path = elsewhere.path().join("altered.zip");
    std::fs::write(&altered_path, &altered_package).unwrap();
    let (out, lines) = offline(&copy, Some(&altered_path));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        lines[1]["problems"][0]
            .as_str()
            .unwrap()
            .contains("cdr.json is not the CDR that was sealed"),
        "{}",
        lines[1]
    );
    let folder = format!("calls/{id}");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&package)).unwrap();
    let mut cdr: Value =
        serde_json::from_reader(archive.by_name(&format!("{folder}/cdr.json")).unwrap()).unwrap();
    cdr["talk_ms"] = Value::from(1);
    let edited_path = elsewhere.path().join("edited.zip");
    std::fs::write(&edited_path, repack(&package, &folder, &cdr)).unwrap();
    let (out, _) = offline(&copy, Some(&edited_path));
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // The API: the manifest to compliance and carrier tokens, its verification to compliance.
    let (status, body) = get(
        &s.base,
        &format!("/api/v1/manifests/{day_text}"),
        &s.carrier,
    )
    .await;
    assert_eq!(status, 200);
    let served: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(served, serde_json::to_value(m).unwrap());
    let (status, body) = get(
        &s.base,
        &format!("/api/v1/manifests/{day_text}/verify"),
        &s.officer,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let report: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let (status, _) = get(
        &s.base,
        &format!("/api/v1/manifests/{day_text}/verify"),
        &s.carrier,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = get(&s.base, "/api/v1/manifests/2026-13-01", &s.officer).await;
    assert_eq!(status, 400);
    let (status, _) = get(&s.base, "/api/v1/manifests/2001-01-01", &s.officer).await;
    assert_eq!(status, 404);

    // The next day is sealed after it, in the chain.
    let next = day.succ_opt().unwrap();
    let next_text = next.format("%Y-%m-%d").to_string();
    let later = next
        .succ_opt()
        .unwrap()
        .and_hms_opt(0, 10, 0)
        .unwrap()
        .and_utc();
    let next_sealed = seal_day(&store, &ctx, next, later).await.unwrap();
    assert_eq!(
        next_sealed.manifest.body.prev_manifest_sha256,
        m.manifest_sha256
    );
    assert!(verify(&config, &next_text).0);

    // The retention purge deletes the day's recordings and CDRs: logged, so not tampering.
    let purge = trunkguard::config::RetentionConfig {
        recordings_days: 1,
        cdrs_days: 2,
    };
    trunkguard::retention::purge_on(
        &store,
        &recordings,
        None,
        &purge,
        midnight + chrono::Duration::days(3),
        &|_| false,
    )
    .await
    .unwrap();
    assert!(store.get_cdr(id).await.unwrap().is_none(), "purged");
    assert!(!wav.exists());
    let (ok, report) = verify(&config, &day_text);
    assert!(ok, "{report}");
    let purged: Vec<&str> = report["retention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["call_id"].as_str().unwrap())
        .collect();
    assert!(purged.contains(&id), "{report}");
    assert_eq!(purged.len() as u64, calls_of_day, "{report}");

    // A range: both days intact.
    let (out, lines) = cli(&[
        "--config",
        config.to_str().unwrap(),
        "manifest",
        "verify",
        "--from",
        &day_text,
        "--to",
        &next_text,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lines.len(), 2);

    // The administrator deletes the first day's manifest: the next one's chain is broken.
    drop_trigger(&store, "evidence_manifests", "evidence_manifests_no_delete").await;
    testing::execute(
        &store,
        "DELETE FROM evidence_manifests WHERE day = $1",
        &[&day_text],
    )
    .await
    .unwrap();
    let (ok, report) = verify(&config, &next_text);
    assert!(!ok);
    assert_eq!(named(&report), [pair("chain_broken", "")], "{report}");
    let (out, lines) = cli(&[
        "--config",
        config.to_str().unwrap(),
        "manifest",
        "verify",
        "--from",
        &day_text,
        "--to",
        &next_text,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines[0]["sealed"], false);
    assert_eq!(lines[1]["findings"][0]["kind"], "chain_broken");
}
