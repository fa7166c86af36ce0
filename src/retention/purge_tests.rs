use std::collections::HashSet;

use super::*;
use crate::model::{sample_cdr, Cdr};

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    outside: PathBuf,
    store: Store,
    now: DateTime<Utc>,
}

/// A call started `days_ago` days before `now`, whose WAV (and pcap) are real files.
fn call(s: &Setup, id: &str, days_ago: i64, pcap: bool) -> Cdr {
    let mut c = sample_cdr(id);
    let shift = c.attempt.invite_at - (s.now - Duration::days(days_ago));
    c.attempt.invite_at -= shift;
    c.outcome.end_at -= shift;
    c.attempt.ringing_at = c.attempt.ringing_at.map(|t| t - shift);
    c.attempt.answer_at = c.attempt.answer_at.map(|t| t - shift);
    let day = s.dir.join("2026/01/01");
    std::fs::create_dir_all(&day).unwrap();
    let wav = day.join(format!("{id}.wav"));
    std::fs::write(&wav, id.as_bytes()).unwrap();
    let rec = c.recording.as_mut().unwrap();
    rec.path = Some(wav.display().to_string());
    if pcap {
        let p = day.join(format!("{id}.pcap"));
        std::fs::write(&p, b"pcap").unwrap();
        rec.pcap_path = Some(p.display().to_string());
    }
    c
}

async fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let dir = root.join("recordings");
    std::fs::create_dir_all(&dir).unwrap();
    let outside = root.join("outside.wav");
    std::fs::write(&outside, b"not ours").unwrap();
    Setup {
        _tmp: tmp,
        dir,
        outside,
        store: Store::connect("sqlite::memory:").await.unwrap(),
        now: sample_cdr("x").attempt.invite_at + Duration::days(1000),
    }
}

fn wav(s: &Setup, id: &str) -> PathBuf {
    s.dir.join(format!("2026/01/01/{id}.wav"))
}

async fn run(s: &Setup, live: &[&str]) -> PurgeReport {
    let live: HashSet<String> = live.iter().map(|x| x.to_string()).collect();
    let is_running = move |id: &str| live.contains(id);
    purge(
        &s.store,
        &s.dir,
        &RetentionConfig::default(),
        s.now,
        &is_running,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn expired_goes_held_fresh_and_live_stay() {
    let s = setup().await;
    let mut outside = call(&s, "outside", 200, false);
    outside.recording.as_mut().unwrap().path = Some(s.outside.display().to_string());
    let gone = call(&s, "gone", 200, false);
    std::fs::remove_file(wav(&s, "gone")).unwrap();
    s.store
        .insert_cdrs(&[
            call(&s, "old", 200, false),
            call(&s, "ancient", 400, true),
            call(&s, "held", 400, false),
            call(&s, "fresh", 10, false),
            call(&s, "live", 400, false),
            outside,
            gone,
        ])
        .await
        .unwrap();
    s.store
        .place_hold("held", "officer", "case 7", s.now)
        .await
        .unwrap();
    // SIP traces go with the recordings: "old"'s expires, "held"'s is on hold, "fresh"'s is not due.
    let traces: Vec<_> = [("old", 200), ("held", 400), ("fresh", 10)]
        .into_iter()
        .map(|(id, days_ago)| crate::store::sip_trace::StoredSipTrace {
            cdr_id: id.to_string(),
            invite_at: s.now - Duration::days(days_ago),
            messages: 1,
            trace: crate::model::SipTrace::default().encode().unwrap(),
        })
        .collect();
    s.store.insert_sip_traces(&traces).await.unwrap();

    let report = run(&s, &["live"]).await;
    assert_eq!(
        report,
        PurgeReport {
            recordings_purged: 3,
            files_deleted: 3,
            files_missing: 1,
            recordings_failed: 1,
            cdrs_deleted: 1,
            sip_traces_deleted: 1,
            skipped: 1,
            capped: false,
        },
        "old (wav), ancient (wav + pcap) and gone (missing) purged; outside refused; live \
         skipped (its CDR, whose recording keeps its file, is not even offered)"
    );
    let exists = |id: &str| wav(&s, id).exists();
    assert!(!exists("old") && !exists("ancient"));
    assert!(!s.dir.join("2026/01/01/ancient.pcap").exists());
    assert!(exists("held") && exists("fresh") && exists("live"));
    assert!(s.outside.exists(), "nothing outside the folder is deleted");
    for (id, kept) in [("old", false), ("held", true), ("fresh", true)] {
        let trace = s.store.sip_trace_bytes(id).await.unwrap();
        assert_eq!(trace.is_some(), kept, "trace of {id}");
    }

    // The purged recording's row stays; the ancient CDR is gone with its recording row.
    assert!(s.store.recording_purged_at("old").await.unwrap().is_some());
    assert!(s.store.get_cdr("old").await.unwrap().is_some());
    assert!(s.store.get_cdr("ancient").await.unwrap().is_none());
    for kept in ["held", "fresh", "live", "outside"] {
        assert!(s.store.get_cdr(kept).await.unwrap().is_some(), "{kept}");
        assert_eq!(
            s.store.recording_purged_at(kept).await.unwrap(),
            None,
            "{kept}"
        );
    }
    let log = s.store.retention_entries(None, 100).await.unwrap();
    let ancient: Vec<(String, Option<String>)> = log
        .iter()
        .filter(|e| e.call_id == "ancient")
        .map(|e| (e.kind.clone(), e.file.clone()))
        .collect();
    assert_eq!(ancient.len(), 3, "wav, pcap, cdr: {ancient:?}");
    assert_eq!(ancient[2], ("cdr".to_string(), None));
    let gone_note = log.iter().find(|e| e.call_id == "gone").unwrap();
    assert_eq!(gone_note.note.as_deref(), Some("already missing"));

    // Again at the same time: nothing more is deleted or logged.
    let again = run(&s, &["live"]).await;
    assert_eq!(again.recordings_purged + again.cdrs_deleted, 0, "{again:?}");
    assert_eq!(
        s.store.retention_entries(None, 100).await.unwrap().len(),
        log.len()
    );

    // Released and no longer live: they go too.
    s.store
        .release_hold("held", "officer", None, s.now)
        .await
        .unwrap();
    let later = run(&s, &[]).await;
    assert_eq!(later.recordings_purged, 2, "{later:?}");
    assert_eq!(later.cdrs_deleted, 2, "{later:?}");
    assert!(!exists("held") && !exists("live"));
    assert!(exists("fresh"));
}

#[tokio::test]
async fn a_short_cdr_retention_takes_the_recording_with_it() {
    let s = setup().await;
    s.store
        .insert_cdrs(&[call(&s, "a", 40, false), call(&s, "b", 20, false)])
        .await
        .unwrap();
    let retention = RetentionConfig {
        recordings_days: 180,
        cdrs_days: 30,
    };
    let report = purge(&s.store, &s.dir, &retention, s.now, &|_: &str| false)
        .await
        .unwrap();
    assert_eq!((report.recordings_purged, report.cdrs_deleted), (1, 1));
    assert!(!wav(&s, "a").exists(), "no orphaned file");
    assert!(wav(&s, "b").exists());
}

#[tokio::test]
async fn many_expired_calls_go_in_batches() {
    let s = setup().await;
    let n = BATCH as usize * 2 + 7;
    let cdrs: Vec<Cdr> = (0..n)
        .map(|i| {
            let mut c = call(&s, &format!("c{i:04}"), 400, false);
            // A failed recording has no file: only rows to purge.
            c.recording = Some(crate::model::RecordingInfo::failed("x"));
            c
        })
        .collect();
    s.store.insert_cdrs(&cdrs).await.unwrap();
    let report = run(&s, &[]).await;
    assert_eq!(report.recordings_purged, n as u64);
    assert_eq!(report.cdrs_deleted, n as u64);
    assert_eq!(s.store.count_cdrs().await.unwrap(), 0);
}

/// A cluster node purges the recordings it can see, its own and (in a shared folder) another
/// node's, stored relative to the folder; another node's recording that is not in its folder is
/// left to that node, with its CDR.
#[tokio::test]
async fn another_nodes_recording_not_in_this_folder_is_left_to_it() {
    let s = setup().await;
    let relative = |mut c: Cdr, node: &str| {
        c.attempt.node = Some(node.to_string());
        let rec = c.recording.as_mut().unwrap();
        let path = PathBuf::from(rec.path.take().unwrap());
        rec.path = Some(path.strip_prefix(&s.dir).unwrap().display().to_string());
        c
    };
    let elsewhere = relative(call(&s, "elsewhere", 400, false), "gw-a");
    std::fs::remove_file(wav(&s, "elsewhere")).unwrap();
    let shared = relative(call(&s, "shared", 400, false), "gw-a");
    let own = relative(call(&s, "own", 400, false), "gw-b");
    s.store
        .insert_cdrs(&[elsewhere, shared, own])
        .await
        .unwrap();
    let report = purge_on(
        &s.store,
        &s.dir,
        Some("gw-b"),
        &RetentionConfig::default(),
        s.now,
        &|_: &str| false,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            report.recordings_purged,
            report.files_deleted,
            report.files_missing,
            report.skipped
        ),
        (2, 2, 0, 1),
        "{report:?}"
    );
    assert!(!wav(&s, "shared").exists() && !wav(&s, "own").exists());
    assert_eq!(
        s.store.recording_purged_at("elsewhere").await.unwrap(),
        None
    );
    assert!(s.store.get_cdr("elsewhere").await.unwrap().is_some());
    // Node gw-a itself finds its file gone: purged as already missing.
    let report = purge_on(
        &s.store,
        &s.dir,
        Some("gw-a"),
        &RetentionConfig::default(),
        s.now,
        &|_: &str| false,
    )
    .await
    .unwrap();
    assert_eq!(
        (report.recordings_purged, report.files_missing),
        (1, 1),
        "{report:?}"
    );
}
