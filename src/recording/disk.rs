//! The recordings folder's health, watched off the calls' path.
//!
//! A thread of its own checks the folder every `check_every` (0.5 s): it is a directory the
//! service may write (`access`), and its file system keeps more than the floor free
//! (`statvfs`, `[recording] min_free_mb`); every `probe_every` (10 s), and every round while
//! the verdict is bad (so that a recovery shows at once), it also writes, fsyncs and removes a
//! probe file in today's folder, which is what proves the disk takes data. The verdict is
//! published in a `watch` cell: admission and `/healthz` read it without any I/O.
//!
//! Why not a probe per call: it cost every admitted call a file creation and an fsync, and two
//! probes in the same nanosecond shared a name (a false `recording_exists` refusal). The price
//! of the watcher is a verdict up to one round old: a disk that fills between two rounds is met
//! by the calls admitted meanwhile when their file is opened at the answer (`on_failure`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::RecordingError;
use super::writer::{recording_path, DIR_MODE};
use crate::model::RefusalReason;

const MIB: u64 = 1024 * 1024;

/// How the folder is watched; the defaults suit production.
#[derive(Debug, Clone)]
pub struct DiskWatchOptions {
    /// Free space at or below which the disk counts as full (0: only a disk with no room).
    pub min_free_bytes: u64,
    /// How often the folder and the free space are checked.
    pub check_every: Duration,
    /// How often a probe file is written (and every round while the verdict is bad).
    pub probe_every: Duration,
}

impl Default for DiskWatchOptions {
    fn default() -> Self {
        DiskWatchOptions {
            min_free_bytes: 512 * MIB,
            check_every: Duration::from_millis(500),
            probe_every: Duration::from_secs(10),
        }
    }
}

/// Why recordings cannot start now: the refusal reason and the error the watcher met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskProblem {
    pub reason: RefusalReason,
    pub detail: Arc<str>,
}

impl std::fmt::Display for DiskProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for DiskProblem {}

impl From<&RecordingError> for DiskProblem {
    fn from(e: &RecordingError) -> Self {
        DiskProblem {
            reason: e.reason(),
            detail: e.to_string().into(),
        }
    }
}

/// The latest verdict.
#[derive(Debug, Clone, Default)]
struct Verdict {
    problem: Option<DiskProblem>,
    /// Free bytes at the last successful `statvfs`.
    free_bytes: Option<u64>,
}

/// The watcher's verdict, shared with admission, `/healthz` and `/metrics`.
#[derive(Debug)]
pub struct DiskHealth {
    verdict: watch::Sender<Verdict>,
}

impl DiskHealth {
    fn new(first: Verdict) -> DiskHealth {
        DiskHealth {
            verdict: watch::Sender::new(first),
        }
    }

    /// Can recordings start? No I/O: the watcher's last verdict.
    pub fn verdict(&self) -> Result<(), DiskProblem> {
        match &self.verdict.borrow().problem {
            None => Ok(()),
            Some(p) => Err(p.clone()),
        }
    }

    /// Free bytes on the folder's file system at the last check (`None` when it failed).
    pub fn free_bytes(&self) -> Option<u64> {
        self.verdict.borrow().free_bytes
    }

    /// Publishes a round's result; says whether the verdict changed (usable or not).
    fn publish(&self, round: &Round) -> bool {
        let next = Verdict {
            problem: round.result.as_ref().err().map(DiskProblem::from),
            free_bytes: round.free_bytes,
        };
        let was_ok = self.verdict.borrow().problem.is_none();
        let now_ok = next.problem.is_none();
        self.verdict.send_replace(next);
        was_ok != now_ok
    }
}

/// The watcher thread: stopped when dropped (the pool went away) or by `stop`.
#[derive(Debug)]
pub(crate) struct DiskWatcher {
    health: Arc<DiskHealth>,
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl DiskWatcher {
    /// Checks the folder once now (with a probe: the first verdict is known before any call is
    /// admitted), then starts the thread that keeps checking.
    pub(crate) fn start(
        dir: PathBuf,
        opts: DiskWatchOptions,
    ) -> std::io::Result<(DiskWatcher, JoinHandle<()>)> {
        let mut probes = ProbeNames::default();
        let first = check(&dir, &opts, Some(&mut probes));
        log_change(&dir, &first, true);
        let health = Arc::new(DiskHealth::new(Verdict::default()));
        health.publish(&first);
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (health.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("recording-disk".into())
            .spawn(move || watch_loop(&dir, &opts, &h, &s, probes))?;
        let thread = handle.thread().clone();
        Ok((
            DiskWatcher {
                health,
                stop,
                thread,
            },
            handle,
        ))
    }

    pub(crate) fn health(&self) -> &Arc<DiskHealth> {
        &self.health
    }

    /// Ends the thread after its current round (join its handle to wait for it).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

impl Drop for DiskWatcher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn watch_loop(
    dir: &Path,
    opts: &DiskWatchOptions,
    health: &DiskHealth,
    stop: &AtomicBool,
    mut probes: ProbeNames,
) {
    let mut last_probe = Instant::now();
    loop {
        let next = Instant::now() + opts.check_every;
        // Parked until the next round; `stop` unparks (spurious wake-ups just park again).
        while !stop.load(Ordering::Acquire) {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::park_timeout(left);
        }
        if stop.load(Ordering::Acquire) {
            return;
        }
        let probe_due = health.verdict().is_err() || last_probe.elapsed() >= opts.probe_every;
        let round = if probe_due {
            last_probe = Instant::now();
            check(dir, opts, Some(&mut probes))
        } else {
            check(dir, opts, None)
        };
        if health.publish(&round) {
            log_change(dir, &round, false);
        }
    }
}

fn log_change(dir: &Path, round: &Round, first: bool) {
    match &round.result {
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, reason = %e.reason(), "recordings folder unusable: new calls meet `[recording] required`")
        }
        Ok(()) if !first => {
            let free_mib = round.free_bytes.unwrap_or(0) / MIB;
            tracing::info!(dir = %dir.display(), free_mib, "recordings folder usable again")
        }
        Ok(()) => {}
    }
}

/// What one round found: the free space (when `statvfs` answered) and the verdict.
struct Round {
    free_bytes: Option<u64>,
    result: Result<(), RecordingError>,
}

/// Unique probe names: only the watcher probes, and it counts.
#[derive(Debug, Default)]
struct ProbeNames {
    next: u64,
}

impl ProbeNames {
    fn next(&mut self) -> String {
        self.next += 1;
        format!(".probe-{}-{}", std::process::id(), self.next)
    }
}

/// One round: the probe when asked, then the folder and its free space.
fn check(dir: &Path, opts: &DiskWatchOptions, probe: Option<&mut ProbeNames>) -> Round {
    let mut free_bytes = None;
    let result = check_into(dir, opts, probe, &mut free_bytes);
    Round { free_bytes, result }
}

fn check_into(
    dir: &Path,
    opts: &DiskWatchOptions,
    probe: Option<&mut ProbeNames>,
    free_bytes: &mut Option<u64>,
) -> Result<(), RecordingError> {
    if let Some(names) = probe {
        write_probe(dir, names)?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| RecordingError::io(dir, e))?;
    if !meta.is_dir() {
        let e = std::io::Error::from(rustix::io::Errno::NOTDIR);
        return Err(RecordingError::io(dir, e));
    }
    // Root passes any permission check but not a read-only file system (EROFS).
    rustix::fs::access(
        dir,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
    )
    .map_err(|e| RecordingError::io(dir, e.into()))?;
    let vfs = rustix::fs::statvfs(dir).map_err(|e| RecordingError::io(dir, e.into()))?;
    let free = vfs.f_bavail.saturating_mul(vfs.f_frsize);
    *free_bytes = Some(free);
    if free == 0 || free < opts.min_free_bytes {
        let why = std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!(
                "{} MiB free, below recording.min_free_mb ({} MiB)",
                free / MIB,
                opts.min_free_bytes / MIB
            ),
        );
        return Err(RecordingError::DiskFull {
            path: dir.to_path_buf(),
            source: why,
        });
    }
    Ok(())
}

/// Today's folder (created, as the first recording of the day would) takes a byte, synced.
fn write_probe(dir: &Path, names: &mut ProbeNames) -> Result<(), RecordingError> {
    use std::os::unix::fs::DirBuilderExt;
    let day = recording_path(dir, chrono::Utc::now(), "probe")
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.to_path_buf());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(&day)
        .map_err(|e| RecordingError::io(&day, e))?;
    let probe = day.join(names.next());
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"\0").and_then(|()| f.sync_data()));
    let _ = std::fs::remove_file(&probe);
    result.map_err(|e| RecordingError::io(&probe, e))
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
