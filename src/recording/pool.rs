//! The recording workers: a few plain threads, off the async runtime, each serving many calls.
//!
//! A worker makes a round every `tick` (100 ms): it drains each of its calls' packet queues,
//! writes what is final and flushes headers when due. Batching by round instead of waking per
//! packet keeps the cost per call low (1,000 calls make 100,000 packets a second), and each
//! round touches every call's state once, found cold in the cache, so fewer rounds cost less
//! (20 ms rounds cost 8–16 % more of the whole gateway's CPU a call: bench/README.md, session
//! 16). A call's queue is sized for seconds of audio, so a slow disk fills queues (counted
//! overflow) but never blocks the relay. What a call tells its recording (`Control`: a new
//! payload map, finish) comes through the worker's one channel with the call's key and is
//! handled when it comes, between rounds: a call's end never waits for a round.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::counters::RecordingCounters;
use super::disk::{DiskHealth, DiskWatchOptions, DiskWatcher};
use super::durable;
use super::error::RecordingError;
use super::session::{CallWriter, Control, Scratch};
use super::writer::{PendingRecording, Recorder};

/// Tunables of the recorders; the defaults suit production.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// Worker threads.
    pub workers: usize,
    /// Packets a call's queue holds (both legs): 1,024 is about 10 s of 20 ms packets.
    pub queue_packets: usize,
    /// How long a packet may wait for reordered ones before its place is written.
    pub jitter_window: Duration,
    /// A timestamp further than this from the arrival time re-anchors the leg.
    pub jump_threshold: Duration,
    /// How far back late packets are still put in their place in the file (see `timeline`).
    pub patch_horizon: Duration,
    /// The header is rewritten at least this often while audio is written.
    pub flush_interval: Duration,
    /// How often a worker makes its round over its calls.
    pub tick: Duration,
    /// With no packets, the timeline follows the clock this far behind (so queued packets are
    /// not made late by it).
    pub idle_grace: Duration,
    /// The folder's health watcher (`disk`).
    pub disk: DiskWatchOptions,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            workers: 2,
            queue_packets: 1024,
            jitter_window: Duration::from_millis(200),
            jump_threshold: Duration::from_secs(1),
            patch_horizon: Duration::from_secs(30),
            flush_interval: Duration::from_secs(1),
            tick: Duration::from_millis(100),
            idle_grace: Duration::from_secs(1),
            disk: DiskWatchOptions::default(),
        }
    }
}

struct Worker {
    tx: Mutex<Option<mpsc::Sender<WorkerMsg>>>,
    calls: Arc<AtomicUsize>,
}

/// What a worker is sent.
pub(crate) enum WorkerMsg {
    Open(Open),
    /// For the recording with this key (`CallLine`).
    Control(CallKey, Control),
}

/// A recording's name on its worker (unique for the worker's life).
pub(crate) type CallKey = u64;

/// How a `Recorder` reaches its recording: the worker's channel and the call's key on it.
#[derive(Debug)]
pub(crate) struct CallLine {
    tx: mpsc::Sender<WorkerMsg>,
    key: CallKey,
}

impl CallLine {
    /// Fails only when the worker is gone.
    pub(crate) fn send(&self, control: Control) -> Result<(), ()> {
        self.tx
            .send(WorkerMsg::Control(self.key, control))
            .map_err(drop)
    }
}

/// What a worker needs to start a recording: where, how, and what to count it in.
pub(crate) struct WorkerSetup {
    pub(crate) dir: PathBuf,
    pub(crate) opts: RecorderOptions,
    pub(crate) counters: Arc<RecordingCounters>,
}

/// A recording to start on a worker, and where its `Recorder` goes.
pub(crate) struct Open {
    pending: PendingRecording,
    reply: oneshot::Sender<Result<Recorder, RecordingError>>,
    /// The worker's channel, for the recorder to reach its recording (the worker keeps no
    /// sender of its own: its channel closes once the pool and every recorder let go).
    line: mpsc::Sender<WorkerMsg>,
}

struct PoolInner {
    /// `[recording] dir`: stored paths are relative to it (`paths`).
    root: PathBuf,
    /// Where this node records: the root, or `root/node_id` in a cluster.
    dir: PathBuf,
    opts: RecorderOptions,
    workers: Vec<Worker>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    counters: Arc<RecordingCounters>,
    disk: DiskWatcher,
}

/// The recording service of the gateway: where recordings go and the threads that write them.
/// Cheap to clone.
#[derive(Clone)]
pub struct RecordingPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for RecordingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingPool")
            .field("dir", &self.inner.dir)
            .field("active", &self.active_calls())
            .finish()
    }
}

impl RecordingPool {
    /// Starts the workers and the folder's health watcher, which checks `dir` once before this
    /// returns (blocking: a `statvfs` and a probe file), so that the first call admitted meets
    /// a verdict.
    pub fn start(dir: impl Into<PathBuf>, opts: RecorderOptions) -> std::io::Result<Self> {
        let dir = dir.into();
        Self::start_in(dir.clone(), dir, opts)
    }

    /// `start`, recording in `dir` (a node's folder) under the root `root`.
    fn start_in(root: PathBuf, dir: PathBuf, opts: RecorderOptions) -> std::io::Result<Self> {
        let (disk, watcher) = DiskWatcher::start(dir.clone(), opts.disk.clone())?;
        let (committer, committing) = durable::start(dir.clone())?;
        let counters: Arc<RecordingCounters> = Arc::default();
        let mut workers = Vec::new();
        let mut handles = vec![watcher];
        for i in 0..opts.workers.max(1) {
            let (tx, rx) = mpsc::channel();
            let calls = Arc::new(AtomicUsize::new(0));
            let (count, tick) = (calls.clone(), opts.tick);
            let closed = Closed {
                committer: committer.clone(),
                dir: dir.clone(),
            };
            let setup = WorkerSetup {
                dir: dir.clone(),
                opts: opts.clone(),
                counters: Arc::clone(&counters),
            };
            let worker = WorkerLoop {
                rx,
                count,
                closed,
                setup,
                calls: Calls::default(),
                scratch: Scratch::default(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("recording-{i}"))
                .spawn(move || worker.run(tick))?;
            workers.push(Worker {
                tx: Mutex::new(Some(tx)),
                calls,
            });
            handles.push(handle);
        }
        // The committer ends once the workers (the senders' holders) are gone: joined last.
        drop(committer);
        handles.push(committing);
        Ok(RecordingPool {
            inner: Arc::new(PoolInner {
                root,
                dir,
                opts,
                workers,
                handles: Mutex::new(handles),
                counters,
                disk,
            }),
        })
    }

    /// The pool for `[recording]` on a single node: it records in `[recording] dir`.
    pub fn from_config(cfg: &crate::config::RecordingConfig) -> std::io::Result<Self> {
        Self::from_config_on(cfg, None)
    }

    /// The pool for `[recording]` with default tunables, on cluster node `node` (`[cluster]
    /// node_id`): it records in its own folder under `[recording] dir` (`paths::node_dir`),
    /// which may be shared by the nodes. The folder is created (or narrowed) to the service
    /// user only. A folder that cannot be made is not fatal: the gateway runs, and each call
    /// meets the `required` policy when its recording cannot start.
    pub fn from_config_on(
        cfg: &crate::config::RecordingConfig,
        node: Option<&str>,
    ) -> std::io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = super::paths::node_dir(&cfg.dir, node);
        let private = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(super::writer::DIR_MODE)
            .create(&dir)
            .and_then(|()| {
                let mode = std::fs::Permissions::from_mode(super::writer::DIR_MODE);
                std::fs::set_permissions(&cfg.dir, mode.clone())?;
                std::fs::set_permissions(&dir, mode)
            });
        if let Err(e) = private {
            tracing::error!(dir = %dir.display(), error = %e, "recordings folder unusable: calls meet the `required` policy");
        }
        let mut opts = RecorderOptions::default();
        opts.disk.min_free_bytes = cfg.min_free_mb.saturating_mul(1024 * 1024);
        Self::start_in(cfg.dir.clone(), dir, opts)
    }

    /// `[recording] dir`, the folder every stored path is relative to (shared by a cluster's
    /// nodes when it is on shared storage).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// How a file of this pool is stored in the database: relative to the root.
    pub fn stored_path(&self, path: &Path) -> String {
        super::paths::to_stored(&self.inner.root, path)
    }

    /// Where this node records (the root, or its own folder under it in a cluster).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn options(&self) -> &RecorderOptions {
        &self.inner.opts
    }

    /// Can recordings start now? The health watcher's last verdict (no I/O): read at admission,
    /// so that a call whose recording is required is refused before it is placed, while the
    /// file itself is opened at the answer (the recording covers the conversation, not the
    /// ringing).
    pub fn disk(&self) -> &Arc<DiskHealth> {
        self.inner.disk.health()
    }

    /// Recordings started, closed and failed since start (`/metrics`).
    pub fn counters(&self) -> &Arc<RecordingCounters> {
        &self.inner.counters
    }

    /// Recordings open now (for metrics and for tests that check nothing leaks).
    pub fn active_calls(&self) -> usize {
        self.inner
            .workers
            .iter()
            .map(|w| w.calls.load(Ordering::Relaxed))
            .sum()
    }

    /// Has the least busy worker open a recording's file and take it on; the `Recorder` (or
    /// why there is none) comes on the receiver.
    pub(crate) fn open_on_worker(
        &self,
        pending: PendingRecording,
    ) -> Result<oneshot::Receiver<Result<Recorder, RecordingError>>, RecordingError> {
        let worker = self
            .inner
            .workers
            .iter()
            .min_by_key(|w| w.calls.load(Ordering::Relaxed))
            .ok_or(RecordingError::WorkerGone)?;
        let tx = worker.tx.lock();
        let tx = tx.as_ref().ok_or(RecordingError::WorkerGone)?;
        // Counted now, so that calls opening at the same moment spread over the workers; the
        // worker takes it back if the open fails.
        worker.calls.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let open = Open {
            pending,
            reply,
            line: tx.clone(),
        };
        tx.send(WorkerMsg::Open(open)).map_err(|_| {
            worker.calls.fetch_sub(1, Ordering::Relaxed);
            RecordingError::WorkerGone
        })?;
        Ok(rx)
    }

    /// Counts an open's outcome (`/metrics`) and passes it on.
    pub(crate) fn counted(
        &self,
        opened: Result<Recorder, RecordingError>,
    ) -> Result<Recorder, RecordingError> {
        match &opened {
            Ok(_) => self.counters().started(),
            Err(e) => self.counters().failed(e),
        }
        opened
    }

    /// Stops taking recordings and waits for the workers to exit, which they do once every
    /// open recording is finished or dropped, and for the health watcher. Blocking: call it
    /// from a blocking context after the calls have ended.
    pub fn shutdown_blocking(&self) {
        self.inner.disk.stop();
        for w in &self.inner.workers {
            w.tx.lock().take();
        }
        let handles = std::mem::take(&mut *self.inner.handles.lock());
        for h in handles {
            let _ = h.join();
        }
    }
}

/// Where a worker puts the recordings it has closed.
struct Closed {
    committer: mpsc::Sender<CallWriter>,
    dir: PathBuf,
}

impl Closed {
    fn put(&self, writer: CallWriter) {
        if let Err(mpsc::SendError(writer)) = self.committer.send(writer) {
            // The committer died (it should not): commit here rather than lose the result.
            durable::commit(&self.dir, vec![writer]);
        }
    }
}

/// A worker's recordings, by key.
#[derive(Default)]
struct Calls {
    // Boxed: each call's writer is an allocation of its own size (~1.6 KiB), not a slot of a
    // table that doubles (and, while it grows, is there twice).
    by_key: HashMap<CallKey, Box<CallWriter>>,
    next_key: CallKey,
}

/// One worker's thread: its channel, its calls, and where closed recordings go.
struct WorkerLoop {
    rx: mpsc::Receiver<WorkerMsg>,
    count: Arc<AtomicUsize>,
    closed: Closed,
    setup: WorkerSetup,
    calls: Calls,
    /// The buffers of the call being served: shared by the worker's calls.
    scratch: Scratch,
}

impl WorkerLoop {
    fn handle(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Open(job) => self.start(job),
            WorkerMsg::Control(key, control) => {
                let Some(call) = self.calls.by_key.get_mut(&key) else {
                    // Closed already (a bug in it abandoned it): a `Finish`'s reply, dropped
                    // here, tells the call the worker is gone.
                    return;
                };
                let now = Instant::now();
                let scratch = &mut self.scratch;
                // A bug in one recording must not take the others on this worker down with it.
                let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    call.control(control, now, scratch)
                }))
                .unwrap_or_else(|_| {
                    tracing::error!(call_id = %call.call_id(), "recording worker panicked; recording abandoned");
                    true
                });
                if done {
                    if let Some(call) = self.calls.by_key.remove(&key) {
                        retire(&self.count, &self.closed, call);
                    }
                }
            }
        }
    }

    /// Starts a recording on this worker: its file created, its writer kept in `calls`.
    fn start(&mut self, job: Open) {
        let Open {
            pending,
            reply,
            line,
        } = job;
        let key = self.calls.next_key;
        self.calls.next_key += 1;
        let line = CallLine { tx: line, key };
        let setup = &self.setup;
        let started =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pending.start(setup, line)))
                .unwrap_or_else(|_| {
                    tracing::error!("recording worker panicked opening a recording");
                    Err(RecordingError::WorkerGone)
                });
        match started {
            Ok((recorder, writer)) => {
                self.calls.by_key.insert(key, Box::new(writer));
                if let Err(Ok(recorder)) = reply.send(Ok(recorder)) {
                    // The call is gone: its recorder, dropped here, has the recording closed.
                    drop(recorder);
                }
            }
            Err(e) => {
                self.count.fetch_sub(1, Ordering::Relaxed);
                let _ = reply.send(Err(e));
            }
        }
    }

    /// One round over every call.
    fn round(&mut self, now: Instant) {
        let (scratch, count, closed) = (&mut self.scratch, &self.count, &self.closed);
        let done = self.calls.by_key.extract_if(|_, call| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.service(now, scratch)))
                .map(|()| false)
                .unwrap_or_else(|_| {
                    tracing::error!(call_id = %call.call_id(), "recording worker panicked; recording abandoned");
                    true
                })
        });
        for (_, call) in done {
            retire(count, closed, call);
        }
    }

    /// Rounds every `tick` while calls are open; messages handled as they come. Ends once the
    /// channel is closed (the pool and every recorder gone) and no call is left.
    fn run(mut self, tick: Duration) {
        let mut next_round = Instant::now();
        loop {
            let now = Instant::now();
            let waited = if self.calls.by_key.is_empty() {
                // Nothing to do until a call comes: block instead of ticking.
                self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else if next_round > now {
                self.rx.recv_timeout(next_round - now)
            } else {
                Err(RecvTimeoutError::Timeout)
            };
            match waited {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.close_the_rest(),
            }
            // Whatever else came meanwhile, before the round.
            loop {
                match self.rx.try_recv() {
                    Ok(msg) => self.handle(msg),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.close_the_rest(),
                }
            }
            let now = Instant::now();
            if now >= next_round {
                self.round(now);
                // The next round a tick after this one was due; a worker late by more than a
                // tick (or idle) does not make up for the rounds it missed.
                next_round += tick;
                if next_round <= now {
                    next_round = now + tick;
                }
            }
        }
    }

    /// The channel is closed: the pool and every recorder are gone, and each recorder's drop
    /// or `finish` came before the close, so no call should be left; any that is (a bug) is
    /// closed as it stands rather than left a `.part` for the next start to repair.
    fn close_the_rest(mut self) {
        let keys: Vec<CallKey> = self.calls.by_key.keys().copied().collect();
        for key in keys {
            self.handle(WorkerMsg::Control(key, Control::Abandoned));
        }
    }
}

/// A recording that is over: uncounted, and on to `durable` if its files were closed.
fn retire(count: &AtomicUsize, closed: &Closed, call: Box<CallWriter>) {
    count.fetch_sub(1, Ordering::Relaxed);
    if call.is_closing() {
        closed.put(*call);
    }
}
