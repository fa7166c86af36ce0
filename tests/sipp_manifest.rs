//! A day of real SIPp calls sealed and verified (issue 17, the first test bullet): the real
//! `trunkguard` binary, its `[evidence] signing_key` made by `trunkguard keys create` and its
//! manifests' `dir`, SIPp as the PBX and as the carrier talking through it with RTPSTREAM (a tone
//! each way, recorded) and SIPp as a PBX presenting a caller ID that is not the trunk's (403).
//!
//! After the calls the gateway is stopped (SIGTERM: CDRs flushed) and, with the binary and the
//! gateway's own config, `manifest seal --day D` (today so far) seals every CDR and recording of
//! the day, and `manifest verify --day D` finds it intact. Then, one change at a time in the
//! database and the recordings folder, each undone before the next (verify intact again): a
//! deleted CDR row (an answered call's, then the refused call's), an edited `talk_ms`, a WAV
//! replaced by another call's WAV, a deleted WAV — each named by `manifest verify` with its
//! finding kind and the call it concerns, and nothing else named.
//!
//! Every process is bounded (SIPp `-timeout`, a Rust-side deadline, kill on drop) and a failure
//! prints the gateway log and the SIPp screens (the test's directory is kept).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;
use harness::{
    args, Scenario, Scene, SippSpec, TrunkLimits, CARRIER_IP, INSIDE_IP, OUTSIDE_IP, PBX_IP,
    TRUNK_NUMBER,
};
use serde_json::Value;
use trunkguard::model::{Cdr, Disposition, RecordingStatus};
use trunkguard::recording::g711::encode_ulaw;
use trunkguard::store::{testing, Store};

/// Answered calls, each talking `TALK_MS`, one at a time.
const CALLS: u64 = 3;
const TALK_MS: u64 = 1000;
const CALLEE: &str = "8613800138000";
/// Not one of the trunk's numbers: refused with 403 before anything reaches the carrier.
const ROGUE: &str = "+861099999999";

fn free_local(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::new(ip.into(), harness::free_port(ip, false))
}

/// One second of a sine at `hz` in PCMU (what RTPSTREAM loops).
fn tone(hz: f64) -> Vec<u8> {
    (0..8000)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            encode_ulaw((8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
        })
        .collect()
}

/// `trunkguard --config CONFIG ARGS`: its exit code, its stdout as JSON lines, and everything it
/// printed (for messages).
fn cli(scene: &Scene, config: &Path, list: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
        .arg("--config")
        .arg(config)
        .args(list)
        .current_dir(scene.path())
        .output()
        .unwrap_or_else(|e| scene.fail(format!("cannot run trunkguard {list:?}: {e}")));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let printed = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let lines = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                scene.fail(format!(
                    "trunkguard {list:?} printed a line that is not JSON ({e}):\n{printed}"
                ))
            })
        })
        .collect();
    (out.status.code(), lines, printed)
}

/// `manifest verify --day D`: whether the day is intact, and the report.
fn verify(scene: &Scene, config: &Path, day: &str) -> (bool, Value) {
    let (code, lines, printed) = cli(scene, config, &["manifest", "verify", "--day", day]);
    scene.ensure(matches!(code, Some(0 | 1)) && lines.len() == 1, || {
        format!("manifest verify: exit {code:?}, one report line expected:\n{printed}")
    });
    let report = lines.into_iter().next().unwrap();
    scene.ensure((code == Some(0)) == (report["ok"] == true), || {
        format!(
            "exit {code:?} but the report says ok = {}: {report}",
            report["ok"]
        )
    });
    (code == Some(0), report)
}

/// The findings' kinds and the call (or path) each names.
fn named(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let who = ["id", "call_id", "path", "previous_day"]
                .iter()
                .find_map(|k| f[*k].as_str())
                .unwrap_or("")
                .to_string();
            (f["kind"].as_str().unwrap_or("?").to_string(), who)
        })
        .collect()
}

fn pair(kind: &str, who: &str) -> (String, String) {
    (kind.to_string(), who.to_string())
}

/// After a change: verify names exactly `expected`.
fn expect_named(
    scene: &Scene,
    config: &Path,
    day: &str,
    change: &str,
    expected: &[(String, String)],
) {
    let (ok, report) = verify(scene, config, day);
    let found = named(&report);
    scene.ensure(!ok && found == expected, || {
        format!("after {change}, manifest verify should name {expected:?}; it found {found:?}: {report}")
    });
}

/// After undoing a change: the day is intact again.
fn expect_intact(scene: &Scene, config: &Path, day: &str, after: &str) {
    let (ok, report) = verify(scene, config, day);
    scene.ensure(
        ok && report["findings"].as_array().is_some_and(Vec::is_empty),
        || format!("{after}: the day should verify intact: {report}"),
    );
}

/// Runs SIPp `i` to its end and requires `calls` successful calls and no failed one.
fn expect_calls(scene: &mut Scene, i: usize, calls: u64) {
    scene.expect_exit_ok(i);
    let stats = scene.ok(scene.sipps[i].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    let failed = scene.ok(stats.get("FailedCall"));
    let name = scene.sipps[i].name.clone();
    scene.ensure(ok == calls && failed == 0, || {
        format!("SIPp {name}: {ok} successful, {failed} failed calls; expected {calls}/0")
    });
}

#[test]
fn a_sealed_day_of_sipp_calls_names_each_change_made_after_the_seal() {
    let mut key_made = String::new();
    let mut scene = Scene::start_edited(TrunkLimits::default(), |dir, config| {
        let media = "[media]\nport_range = [25000, 28999]\n";
        assert!(config.contains(media), "{config}");
        let config = format!(
            "{}\n[recording]\ndir = \"{}\"\nrequired = true\n\
             \n[evidence]\nsigning_key = \"{}\"\ndir = \"{}\"\n",
            config.replace(
                media,
                &format!(
                    "{media}inside_address = \"{INSIDE_IP}\"\noutside_address = \"{OUTSIDE_IP}\"\n"
                ),
            ),
            dir.join("recordings").display(),
            dir.join("keys/signing.pem").display(),
            dir.join("evidence").display()
        );
        // The deployment's key, made by the binary from the config's `[evidence] signing_key`
        // before the gateway starts (it reads the key once, at its start).
        let early = dir.join("keys.toml");
        fs::write(&early, &config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
            .arg("--config")
            .arg(&early)
            .args(["keys", "create"])
            .output()
            .expect("run trunkguard keys create");
        assert!(out.status.success(), "keys create: {out:?}");
        key_made = String::from_utf8_lossy(&out.stdout).to_string();
        config
    });
    scene.ensure(key_made.contains("BEGIN PUBLIC KEY"), || {
        format!("keys create printed no public key: {key_made}")
    });
    let config: PathBuf = scene.gateway.config_path().to_path_buf();

    // The calls: the carrier answers and talks, the PBX talks and hangs up, one call at a time.
    for (name, file, hz) in [
        ("pbx-uac-media", "pbx.g711", 440.0),
        ("carrier-uas-media", "carrier.g711", 1000.0),
    ] {
        fs::write(harness::sipp_dir(scene.path(), name).join(file), tone(hz)).unwrap();
    }
    let media_args = |ip: Ipv4Addr| {
        args(&[
            "-mi",
            &ip.to_string(),
            "-mp",
            &harness::free_port(ip, false).to_string(),
            "-rtp_payload",
            "0",
            "-key",
            "codec_pt",
            "0",
            "-key",
            "codec_name",
            "PCMU",
            "-m",
            &CALLS.to_string(),
        ])
    };
    let mut carrier_args = media_args(CARRIER_IP);
    carrier_args.extend(args(&["-key", "ring_ms", "100"]));
    let carrier = scene.sipp(SippSpec {
        name: "carrier-uas-media",
        scenario: Scenario::File("carrier_uas_media.xml"),
        local: scene.addrs.carrier,
        remote: None,
        args: carrier_args,
        timeout_secs: 30,
    });
    let mut pbx_args = media_args(PBX_IP);
    pbx_args.extend(args(&[
        "-key",
        "caller",
        TRUNK_NUMBER,
        "-s",
        CALLEE,
        "-d",
        &TALK_MS.to_string(),
        "-l",
        "1",
        "-r",
        "5",
    ]));
    let inside = scene.addrs.inside;
    let pbx = scene.sipp(SippSpec {
        name: "pbx-uac-media",
        scenario: Scenario::File("pbx_uac_media.xml"),
        local: free_local(PBX_IP),
        remote: Some(inside),
        args: pbx_args,
        timeout_secs: 30,
    });
    expect_calls(&mut scene, pbx, CALLS);
    expect_calls(&mut scene, carrier, CALLS);
    let refused = scene.sipp(SippSpec {
        name: "pbx-uac-refused",
        scenario: Scenario::File("pbx_uac_refused.xml"),
        local: free_local(PBX_IP),
        remote: Some(inside),
        args: args(&["-key", "caller", ROGUE, "-s", CALLEE, "-m", "1"]),
        timeout_secs: 30,
    });
    expect_calls(&mut scene, refused, 1);
    let cdrs = scene.stop_and_read_cdrs();

    let answered: Vec<&Cdr> = cdrs
        .iter()
        .filter(|c| {
            c.outcome.disposition == Disposition::Answered
                && c.recording
                    .as_ref()
                    .is_some_and(|r| r.status == RecordingStatus::Complete && r.path.is_some())
        })
        .collect();
    let refusals: Vec<&Cdr> = cdrs
        .iter()
        .filter(|c| c.outcome.final_status == 403 && c.recording.is_none())
        .collect();
    scene.ensure(
        cdrs.len() as u64 == CALLS + 1 && answered.len() as u64 == CALLS && refusals.len() == 1,
        || format!("{CALLS} answered and recorded calls and one refused with 403: {cdrs:#?}"),
    );
    let day: NaiveDate = answered[0].attempt.invite_at.date_naive();
    let day_text = day.format("%Y-%m-%d").to_string();
    // Calls made across midnight UTC belong to two days: the test looks at the first one's.
    let of_day = |c: &Cdr| c.attempt.invite_at.date_naive() == day;
    let cdrs_of_day = cdrs.iter().filter(|c| of_day(c)).count() as u64;
    let recordings_of_day = answered.iter().filter(|c| of_day(c)).count() as u64;

    // Seal today so far with the binary and the gateway's config, then verify.
    let (code, lines, printed) = cli(&scene, &config, &["manifest", "seal", "--day", &day_text]);
    scene.ensure(code == Some(0) && lines.len() == 1, || {
        format!("manifest seal --day {day_text}: exit {code:?}:\n{printed}")
    });
    let seal = &lines[0];
    scene.ensure(
        seal["day"] == day_text.as_str()
            && seal["final"] == false
            && seal["counts"]["cdrs"] == cdrs_of_day
            && seal["counts"]["recordings"] == recordings_of_day
            && seal["problems"].as_array().is_some_and(Vec::is_empty)
            && Path::new(seal["file"].as_str().unwrap_or(""))
                .starts_with(scene.path().join("evidence")),
        || {
            format!(
                "a partial seal of {day_text} with {cdrs_of_day} CDRs and {recordings_of_day} \
                 recordings, filed under [evidence] dir: {seal}"
            )
        },
    );
    let (ok, report) = verify(&scene, &config, &day_text);
    scene.ensure(ok && report["key"] == "configured", || {
        format!("the sealed day verifies intact with the configured key: {report}")
    });

    // The changes, each undone before the next, in the gateway's own database and folder.
    let db = scene.path().join("cdrs.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt
        .block_on(Store::connect(&format!("sqlite://{}", db.display())))
        .unwrap_or_else(|e| scene.fail(format!("open {}: {e}", db.display())));
    let sql = |statement: &str, id: &str| {
        let n = rt
            .block_on(testing::execute(&store, statement, &[id]))
            .unwrap_or_else(|e| scene.fail(format!("{statement}: {e}")));
        scene.ensure(n == 1, || format!("{statement} ({id}) changed {n} rows"));
    };
    let restore = |cdr: &Cdr| {
        rt.block_on(store.insert_cdrs(std::slice::from_ref(cdr)))
            .unwrap_or_else(|e| scene.fail(format!("re-insert {}: {e}", cdr.attempt.id)));
    };
    let stored = |id: &str| {
        rt.block_on(store.get_cdr(id))
            .unwrap()
            .unwrap_or_else(|| scene.fail(format!("no CDR {id} in the database")))
    };
    let wav_of = |cdr: &Cdr| {
        let rec = cdr.recording.as_ref().and_then(|r| r.path.as_deref());
        trunkguard::recording::paths::resolve(
            &scene.path().join("recordings"),
            Path::new(rec.expect("a recorded call")),
        )
    };
    let (call, other) = (answered[0], answered[1]);
    let id = call.attempt.id.as_str();

    // An answered call's CDR row deleted (its recording's row goes with it).
    let row = stored(id);
    sql("DELETE FROM cdrs WHERE id = $1", id);
    expect_named(
        &scene,
        &config,
        &day_text,
        "deleting an answered call's CDR row",
        &[pair("cdr_deleted", id), pair("recording_row_deleted", id)],
    );
    restore(&row);
    expect_intact(&scene, &config, &day_text, "the row re-inserted");

    // The refused call's CDR row deleted: refusals are sealed too.
    let refused_id = refusals[0].attempt.id.as_str();
    let refused_row = stored(refused_id);
    sql("DELETE FROM cdrs WHERE id = $1", refused_id);
    expect_named(
        &scene,
        &config,
        &day_text,
        "deleting the refused call's CDR row",
        &[pair("cdr_deleted", refused_id)],
    );
    restore(&refused_row);
    expect_intact(
        &scene,
        &config,
        &day_text,
        "the refused call's row re-inserted",
    );

    // A CDR's talk time edited.
    sql(
        "UPDATE cdrs SET talk_ms = talk_ms + 60000 WHERE id = $1",
        id,
    );
    expect_named(
        &scene,
        &config,
        &day_text,
        "adding a minute to talk_ms",
        &[pair("cdr_altered", id)],
    );
    sql(
        "UPDATE cdrs SET talk_ms = talk_ms - 60000 WHERE id = $1",
        id,
    );
    expect_intact(&scene, &config, &day_text, "talk_ms set back");

    // A WAV replaced by another call's recording (a real WAV, the same length of call).
    let wav = wav_of(call);
    let audio = fs::read(&wav).unwrap();
    fs::copy(wav_of(other), &wav).unwrap();
    scene.ensure(fs::read(&wav).unwrap() != audio, || {
        "two calls recorded the same bytes".to_string()
    });
    expect_named(
        &scene,
        &config,
        &day_text,
        "replacing the WAV with another call's",
        &[pair("recording_replaced", id)],
    );
    fs::write(&wav, &audio).unwrap();
    expect_intact(&scene, &config, &day_text, "the WAV put back");

    // A WAV deleted.
    fs::remove_file(&wav).unwrap();
    expect_named(
        &scene,
        &config,
        &day_text,
        "deleting the WAV",
        &[pair("recording_file_deleted", id)],
    );
    fs::write(&wav, &audio).unwrap();
    expect_intact(&scene, &config, &day_text, "the WAV restored");
}
