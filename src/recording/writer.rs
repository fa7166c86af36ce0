//! `Recorder`: the handle a call holds on its recording, and how a recording file is started.
//!
//! Lifecycle of the files of call `ID` started on day D (UTC):
//! - open: `dir/YYYY/MM/DD/ID.wav.part` is created (mode 0600, never overwriting), the WAV header
//!   is written and flushed at once, so an unwritable directory or a full disk fails here;
//! - recording: samples are appended as time advances and the header is rewritten
//!   (`wav::WavWriter::flush`) at least once a second; `ID.pcap.part` appears if a codec cannot
//!   be decoded;
//! - finish: header finalized and the file closed; then, with the others closed meanwhile
//!   (`durable`): synced, renamed to `ID.wav` (and `ID.pcap`), the folder synced, the digest
//!   computed;
//! - crash: the `.part` files stay; `repair` fixes and renames them on the next start.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::codec::{Codec, PayloadMap};
use super::counters::RecordingCounters;
use super::error::RecordingError;
use super::packet::RecPacket;
use super::pool::{CallLine, RecordingPool, WorkerSetup};
use super::queue::{packet_queue, PacketReceiver, PacketSender, Refused};
use super::session::{CallWriter, Control, WavOut};
use super::wav::WavWriter;

/// Suffix of a recording (WAV or pcap) that is still being written.
pub const PART_SUFFIX: &str = ".part";
/// Readable by the service user only (evidence; issue 6).
const FILE_MODE: u32 = 0o600;
pub(crate) const DIR_MODE: u32 = 0o700;

/// What a recording is opened with.
#[derive(Debug, Clone)]
pub struct RecordingSpec {
    /// Our call id; the file name (must be a plain file name: letters, digits, `._-+@`).
    pub call_id: String,
    /// Wall-clock start, UTC: picks the `YYYY/MM/DD` folder and stamps the pcap.
    pub started_at: DateTime<Utc>,
    /// The same moment on the monotonic clock that `RecPacket::arrival` uses; position 0.
    pub started: Instant,
    /// Payload types of the call (static types plus the SDP's `a=rtpmap` lines).
    pub payloads: PayloadMap,
    /// The negotiated audio codec; G.722 makes a 16 kHz file, anything else 8 kHz.
    pub codec: Codec,
}

impl RecordingSpec {
    /// A recording that starts now.
    pub fn new(call_id: impl Into<String>, payloads: PayloadMap, codec: Codec) -> Self {
        RecordingSpec {
            call_id: call_id.into(),
            started_at: Utc::now(),
            started: Instant::now(),
            payloads,
            codec,
        }
    }
}

/// What a finished recording is: all that the CDR stores about it.
#[derive(Debug, Clone)]
pub struct RecordingResult {
    pub call_id: String,
    /// The final `.wav`.
    pub path: PathBuf,
    /// The raw RTP of both legs, when some payload could not be decoded.
    pub pcap_path: Option<PathBuf>,
    pub codec: Codec,
    pub sample_rate: u32,
    pub duration_ms: u64,
    pub size_bytes: u64,
    pub sha256_hex: String,
    pub pcap_sha256_hex: Option<String>,
    /// Closed normally with every packet the relay tapped: no overflow and no write error.
    pub complete: bool,
    /// Packets received per leg: `[inside, outside]`.
    pub packets: [u64; 2],
    /// Packets dropped because the recorder's queue was full (never silent: counted here).
    pub overflowed_packets: u64,
    /// Packets that came after their place was written and could not be put there (dropped).
    pub late_packets: u64,
    /// Packets that came after their place was written and were put there afterwards.
    pub patched_packets: u64,
    /// Packets of codecs the recorder cannot decode (kept in the pcap).
    pub undecoded_packets: u64,
    /// Re-anchors of a leg (SSRC change, timestamp jump).
    pub reanchors: u64,
    /// First write error, if any (the file then holds what was written before it).
    pub error: Option<String>,
}

impl RecordingResult {
    /// Every packet that crossed the trunk is in the file: nothing overflowed, nothing failed
    /// to be written, nothing came too late to be placed.
    pub fn is_complete(&self) -> bool {
        self.complete && self.late_packets == 0
    }
}

/// The relay's side of a recording: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct RecorderTap {
    tx: PacketSender,
    overflow: Arc<AtomicU64>,
}

impl RecorderTap {
    /// Queues a packet for the recorder. A full queue drops it and counts it as an overflow;
    /// after the recording is closed packets are ignored. Returns whether it was queued.
    pub fn push(&self, pkt: RecPacket) -> bool {
        match self.tx.try_push(pkt) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.overflow.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// Packets dropped so far because the queue was full.
    pub fn overflowed(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }
}

/// One call's recording. Dropping it without `finish` still closes the file (logged as
/// abandoned), but only `finish` returns the digest for the CDR.
#[derive(Debug)]
pub struct Recorder {
    call_id: String,
    path: PathBuf,
    tap: RecorderTap,
    /// To the worker that writes the recording.
    line: CallLine,
    /// `finish` (or a test's `crash`) has told the worker: dropping the recorder says nothing
    /// more.
    told: bool,
    counters: Arc<RecordingCounters>,
    /// The first write failure while the call runs (`CallWriter::fail`).
    failure: Option<tokio::sync::oneshot::Receiver<String>>,
}

impl Recorder {
    /// Starts the recording of a call. Creates directories and the file, on the recording
    /// worker that will write it. An error means no recording: refuse the call or go on
    /// unrecorded (`OnRecordingFailure`).
    pub async fn open(pool: &RecordingPool, spec: RecordingSpec) -> Result<Self, RecordingError> {
        Recorder::prepare(pool, spec).open(pool).await
    }

    /// `open` for threads that may block (not the async runtime).
    pub fn open_blocking(
        pool: &RecordingPool,
        spec: RecordingSpec,
    ) -> Result<Self, RecordingError> {
        Recorder::prepare(pool, spec).open_blocking(pool)
    }

    /// The recording's queue, before its file exists (no I/O): the relay can be tapped at the
    /// very moment recorded media starts, while the file is opened on a recording worker; the
    /// packets wait in the queue meanwhile. If the open fails, the queue goes with it.
    pub fn prepare(pool: &RecordingPool, spec: RecordingSpec) -> PendingRecording {
        let (tx, rx) = packet_queue(pool.options().queue_packets);
        let overflow = Arc::new(AtomicU64::new(0));
        PendingRecording {
            spec,
            tap: RecorderTap { tx, overflow },
            rx,
        }
    }

    /// The handle the media relay pushes packets into (clone it for each leg's task).
    pub fn tap(&self) -> RecorderTap {
        self.tap.clone()
    }

    /// Resolves with the failure's note (`recording_disk_full: write: …`) when the worker first
    /// fails to write this recording; pending forever once told, or when nothing failed.
    pub async fn failure(&mut self) -> String {
        let told = match self.failure.as_mut() {
            Some(rx) => rx.await.ok(),
            None => None,
        };
        self.failure = None;
        match told {
            Some(note) => note,
            None => std::future::pending().await,
        }
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Where the finished recording will be.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the recording is while it is being written.
    pub fn part_path(&self) -> PathBuf {
        part_path(&self.path)
    }

    /// Replaces the payload type map after a renegotiation (re-INVITE or UPDATE with a new
    /// `a=rtpmap`). The file's sample rate stays what it was opened with; other rates are
    /// converted.
    pub fn update_payloads(&self, payloads: PayloadMap) {
        // Only fails when the worker is gone, which `finish` reports.
        let _ = self.line.send(Control::Payloads(payloads));
    }

    /// From now on the file keeps time even without packets: the call is keeping its audio
    /// back (a pause). Without it a recording writes nothing before its first packet.
    pub fn follow_clock(&self) {
        // Only fails when the worker is gone, which `finish` reports.
        let _ = self.line.send(Control::FollowClock);
    }

    /// Closes the recording at `ended` (once a packet came, or `follow_clock`, the file is
    /// padded with silence up to that moment; without either it holds no samples):
    /// writes what is buffered, finalizes and syncs the file, renames it and computes its
    /// digest, all on the recording worker. Awaiting does not block the runtime.
    pub async fn finish(mut self, ended: Instant) -> Result<RecordingResult, RecordingError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let asked = self.tell(Control::Finish { ended, reply });
        let result = match asked {
            Ok(()) => rx.await.unwrap_or(Err(RecordingError::WorkerGone)),
            Err(e) => Err(e),
        };
        self.counters.closed(result)
    }

    /// `finish` for threads that may block (not the async runtime: it would panic there).
    pub fn finish_blocking(mut self, ended: Instant) -> Result<RecordingResult, RecordingError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let asked = self.tell(Control::Finish { ended, reply });
        let result = match asked {
            Ok(()) => rx
                .blocking_recv()
                .unwrap_or(Err(RecordingError::WorkerGone)),
            Err(e) => Err(e),
        };
        self.counters.closed(result)
    }

    /// Test hook: the worker abandons this recording as a killed process would (no final
    /// header, buffered bytes lost, no rename). Returns once it has done so.
    #[cfg(test)]
    pub(crate) fn crash(mut self) {
        let (done, rx) = std::sync::mpsc::channel();
        if self.tell(Control::Crash(done)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// The worker's last word from this recorder: nothing is sent when it is dropped.
    fn tell(&mut self, last: Control) -> Result<(), RecordingError> {
        self.told = true;
        self.line
            .send(last)
            .map_err(|()| RecordingError::WorkerGone)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.told {
            // The call is gone without `finish` (a panic, a bug): the worker closes the
            // recording as it stands. Fails only when the worker is gone already.
            let _ = self.line.send(Control::Abandoned);
        }
    }
}

/// A recording whose queue exists and whose file is not open yet (`Recorder::prepare`).
#[derive(Debug)]
pub struct PendingRecording {
    spec: RecordingSpec,
    tap: RecorderTap,
    rx: PacketReceiver,
}

impl PendingRecording {
    /// The handle the relay pushes packets into; they wait until the file is open.
    pub fn tap(&self) -> RecorderTap {
        self.tap.clone()
    }

    /// Has the least busy recording worker open the file and take the queue: the worker does
    /// the file I/O between two rounds, so that a call costs no hop through tokio's blocking
    /// pool (whose threads, one per concurrent open under load, each kept an allocator heap of
    /// their own: issue 16).
    pub async fn open(self, pool: &RecordingPool) -> Result<Recorder, RecordingError> {
        let opened = match pool.open_on_worker(self) {
            Ok(reply) => reply.await.unwrap_or(Err(RecordingError::WorkerGone)),
            Err(e) => Err(e),
        };
        pool.counted(opened)
    }

    /// `open` for threads that may block (not the async runtime: it would panic there).
    pub fn open_blocking(self, pool: &RecordingPool) -> Result<Recorder, RecordingError> {
        let opened = match pool.open_on_worker(self) {
            Ok(reply) => reply
                .blocking_recv()
                .unwrap_or(Err(RecordingError::WorkerGone)),
            Err(e) => Err(e),
        };
        pool.counted(opened)
    }

    /// Creates the file (on a recording worker) and the writer that goes with it: the worker
    /// keeps the writer, the call gets the `Recorder`, which reaches the writer by `line`.
    pub(crate) fn start(
        self,
        at: &WorkerSetup,
        line: CallLine,
    ) -> Result<(Recorder, CallWriter), RecordingError> {
        let PendingRecording { spec, tap, rx } = self;
        check_call_id(&spec.call_id)?;
        let path = recording_path(&at.dir, spec.started_at, &spec.call_id);
        if path.exists() {
            return Err(RecordingError::AlreadyExists { path });
        }
        let part = part_path(&path);
        // The day's folder exists but for the first call of the day: made when missing only
        // (a `mkdir -p` per call was two failing system calls).
        let file = match create_file(&part) {
            Err(RecordingError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let dir = path.parent().unwrap_or(&at.dir);
                DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(dir)
                    .map_err(|e| RecordingError::io(dir, e))?;
                create_file(&part)?
            }
            other => other?,
        };
        let wav = match start_wav(&part, file, spec.codec.file_rate()) {
            Ok(wav) => wav,
            Err(e) => {
                // Leave nothing behind that repair would mistake for a crashed recording.
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        };
        let call_id = spec.call_id.clone();
        let (failure_tx, failure) = tokio::sync::oneshot::channel();
        let mut writer =
            CallWriter::new(spec, path.clone(), wav, rx, tap.overflow.clone(), &at.opts);
        writer.signal_failure_to(failure_tx);
        // Debug, as `call answered` and a complete `recording closed`: at info every call wrote
        // five log lines, each a write(2) on the thread that handles the call (~4 % of the CPU
        // at 1,000 calls/s, issue 16); what they said is on the CDR. `call started` and
        // `call ended` stay at info, and a recording that is not complete is a warning.
        tracing::debug!(call_id = %call_id, path = %path.display(), "recording started");
        let recorder = Recorder {
            call_id,
            path,
            tap,
            line,
            told: false,
            counters: Arc::clone(&at.counters),
            failure: Some(failure),
        };
        Ok((recorder, writer))
    }
}

/// `dir/YYYY/MM/DD/CALL_ID.wav` for a call started at `started_at` (UTC).
pub fn recording_path(dir: &Path, started_at: DateTime<Utc>, call_id: &str) -> PathBuf {
    dir.join(started_at.format("%Y/%m/%d").to_string())
        .join(format!("{call_id}.wav"))
}

pub(crate) fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

fn check_call_id(id: &str) -> Result<(), RecordingError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RecordingError::InvalidCallId(id.to_string()))
    }
}

/// Creates a new file with mode 0600 whatever the umask; never replaces one.
pub(crate) fn create_file(path: &Path) -> Result<File, RecordingError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| RecordingError::io(path, e))?;
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .map_err(|e| RecordingError::io(path, e))?;
    Ok(file)
}

/// Writes the header of a stereo 16-bit WAV and puts it on disk now, so that a full disk is
/// found before the call is admitted rather than in the middle of it. The writer and the
/// recorder share the file's one descriptor (positional patches, the sync): a `try_clone` cost
/// every call a second descriptor, one more than the descriptor budget counted
/// (`b2bua::capacity`; issue 16).
fn start_wav(path: &Path, file: File, rate: u32) -> Result<WavOut, RecordingError> {
    let sync = Arc::new(file);
    // A write (not a sync) is enough: file systems reserve space when the page is dirtied.
    let wav =
        WavWriter::create(Arc::clone(&sync), rate).map_err(|e| RecordingError::io(path, e))?;
    Ok(WavOut { wav, sync })
}

/// Syncs a directory so that a rename in it survives a power loss.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RefusalReason;

    #[test]
    fn call_ids_must_be_file_names() {
        assert!(check_call_id("20260101T000000-abcDEF1234").is_ok());
        for bad in ["", "../x", ".hidden", "a/b", "a b", "x\0"] {
            assert!(check_call_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn full_disk_at_open_is_disk_full() {
        // /dev/full fails every write with ENOSPC, as a full file system does.
        let Ok(full) = OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let Err(err) = start_wav(Path::new("/dev/full"), full, 8000) else {
            panic!("a header written to /dev/full must fail");
        };
        assert!(matches!(err, RecordingError::DiskFull { .. }), "{err:?}");
        assert_eq!(err.reason(), RefusalReason::RecordingDiskFull);
    }

    #[test]
    fn path_layout() {
        let at = DateTime::parse_from_rfc3339("2026-03-04T23:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = recording_path(Path::new("/r"), at, "C1");
        assert_eq!(p, Path::new("/r/2026/03/04/C1.wav"));
        assert_eq!(part_path(&p), Path::new("/r/2026/03/04/C1.wav.part"));
    }
}
