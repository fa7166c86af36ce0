use std::time::Duration;

use super::*;
use crate::recording::{RecorderOptions, RecordingPool};

fn fast(min_free_bytes: u64) -> DiskWatchOptions {
    DiskWatchOptions {
        min_free_bytes,
        check_every: Duration::from_millis(20),
        probe_every: Duration::from_millis(100),
    }
}

fn pool(dir: &Path, disk: DiskWatchOptions) -> RecordingPool {
    let opts = RecorderOptions {
        disk,
        ..RecorderOptions::default()
    };
    RecordingPool::start(dir, opts).unwrap()
}

/// Waits (bounded) until the verdict is `usable`; returns the last verdict.
fn wait_for(health: &DiskHealth, usable: bool) -> Result<(), DiskProblem> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = health.verdict();
        if v.is_ok() == usable || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn probes_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                found.push(e.path());
            }
        }
    }
    found
}

#[test]
fn a_writable_folder_is_usable_and_the_probe_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path(), fast(0));
    assert_eq!(p.disk().verdict(), Ok(()));
    assert!(p.disk().free_bytes().is_some_and(|f| f > 0));
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(p.disk().verdict(), Ok(()));
    // Listed once the watcher has stopped: a probe in flight is not one left behind.
    p.shutdown_blocking();
    assert!(probes_under(dir.path()).is_empty());
}

#[test]
fn a_floor_above_the_free_space_makes_the_disk_full() {
    let dir = tempfile::tempdir().unwrap();
    // No file system here has an exabyte free.
    let p = pool(dir.path(), fast(1 << 60));
    let problem = p.disk().verdict().unwrap_err();
    assert_eq!(problem.reason, RefusalReason::RecordingDiskFull);
    assert!(
        problem.detail.contains("recording.min_free_mb"),
        "{problem}"
    );
    assert!(
        p.disk().free_bytes().is_some(),
        "the free space is still shown"
    );
    p.shutdown_blocking();
}

#[test]
fn a_folder_replaced_by_a_file_flips_the_verdict_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).unwrap();
    let p = pool(&rec, fast(0));
    assert_eq!(p.disk().verdict(), Ok(()));
    // A file where the folder should be: nothing can be created under it, also as root.
    std::fs::remove_dir_all(&rec).unwrap();
    std::fs::write(&rec, b"not a folder").unwrap();
    let problem = wait_for(p.disk(), false).unwrap_err();
    assert_eq!(problem.reason, RefusalReason::RecordingNotWritable);
    std::fs::remove_file(&rec).unwrap();
    std::fs::create_dir(&rec).unwrap();
    assert_eq!(wait_for(p.disk(), true), Ok(()), "recovery is seen");
    p.shutdown_blocking();
}

#[test]
fn a_missing_folder_is_created_again_by_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let p = pool(&rec, fast(0));
    assert_eq!(p.disk().verdict(), Ok(()), "the first probe made it");
    std::fs::remove_dir_all(&rec).unwrap();
    // Either round may see it missing; the next probe recreates it.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(wait_for(p.disk(), true), Ok(()));
    assert!(rec.is_dir());
    p.shutdown_blocking();
}

#[test]
fn probe_names_are_unique() {
    let mut names = ProbeNames::default();
    let a = names.next();
    let b = names.next();
    assert_ne!(a, b);
    assert!(a.starts_with(&format!(".probe-{}-", std::process::id())));
}

/// Issue 16: two per-call probes in the same nanosecond shared a name and one call was
/// refused `recording_exists`. Admission now reads the watcher's verdict: 200 admissions in
/// one instant are all admitted and write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_admissions_in_one_instant_are_never_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path(), DiskWatchOptions::default());
    let before = probes_under(dir.path());
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (p, barrier) = (p.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                p.disk().verdict()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(()));
    }
    assert_eq!(probes_under(dir.path()), before, "no file per admission");
    let pool = p.clone();
    tokio::task::spawn_blocking(move || pool.shutdown_blocking())
        .await
        .unwrap();
}
