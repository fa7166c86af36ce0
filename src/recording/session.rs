//! The worker's side of one recording: takes packets off the call's queue, places them on the
//! timeline, writes final frames, keeps the header valid, and closes the files.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::codec::{AudioKind, Codec, PayloadMap};
use super::digest::sha256_file;
use super::error::RecordingError;
use super::packet::RecPacket;
use super::patch::{coalesce, patch_channel, MAX_PENDING_PATCHES};
use super::pcap::{truncate_to_whole_records, PcapWriter, GLOBAL_HEADER_LEN};
use super::pool::RecorderOptions;
use super::queue::PacketReceiver;
use super::repair::fix_wav_header;
use super::timeline::Timeline;
use super::wav::WavWriter;
use super::writer::{create_file, part_path, RecordingResult, RecordingSpec};
use crate::model::RefusalReason;

pub(crate) struct WavOut {
    pub(crate) wav: WavWriter,
    /// The same file (and descriptor) as the writer's, kept to fsync it after the writer has
    /// let go of it and to put late audio in place (positional reads and writes).
    pub(crate) sync: Arc<File>,
}

/// What a recording worker lends the recording it serves: buffers shared by its calls, so that
/// each call does not keep its own (issue 16's memory per call).
#[derive(Default)]
pub(crate) struct Scratch {
    /// The frames written this round (it grows to the largest round, ~8 KiB), and past them
    /// the samples of the packet being decoded (`Timeline::release`).
    samples: Vec<i16>,
    /// The packets of a drain, read without the queue's lock: swapped with the call's queue,
    /// so that a call holds one packet buffer, not two.
    batch: VecDeque<RecPacket>,
}

/// Where a finished recording's result goes: the call awaiting `Recorder::finish`.
pub(crate) type Reply = tokio::sync::oneshot::Sender<Result<RecordingResult, RecordingError>>;

/// What a call tells its recording, through its worker's channel (`pool::WorkerMsg`): handled
/// as soon as the worker reads it, not at its next round, so that a call's end does not wait
/// for the round.
pub(crate) enum Control {
    /// The call renegotiated (re-INVITE/UPDATE): new payload type mappings.
    Payloads(PayloadMap),
    /// From now on the file follows the clock even if no packet ever comes (the call's audio
    /// is being kept back from the recorder: a pause), so that it keeps the call's length.
    FollowClock,
    Finish {
        ended: Instant,
        reply: Reply,
    },
    /// The `Recorder` was dropped without `finish`: the recording is closed as it stands.
    Abandoned,
    #[cfg(test)]
    Crash(std::sync::mpsc::Sender<()>),
}

pub(crate) struct CallWriter {
    call_id: String,
    path: PathBuf,
    wav: Option<WavOut>,
    timeline: Timeline,
    payloads: PayloadMap,
    codec: Codec,
    rate: u32,
    started: Instant,
    started_wall: SystemTime,
    pcap: Option<PcapWriter>,
    /// Set once the pcap is wanted; stays set if it could not be created (so we try once).
    pcap_wanted: bool,
    packets_rx: PacketReceiver,
    overflow: Arc<AtomicU64>,
    packets: [u64; 2],
    /// Time counts without packets (`Control::FollowClock`).
    follow_clock: bool,
    undecoded: u64,
    unflushed_frames: u64,
    last_flush: Instant,
    flush_interval: Duration,
    idle_grace: Duration,
    error: Option<String>,
    /// Told the first failure while the call runs (`Recorder::failure`), so that the call can
    /// apply `[recording] on_failure` at once instead of learning it at the end.
    failure_signal: Option<tokio::sync::oneshot::Sender<String>>,
    /// Set once the files are written and closed: what the durability group needs to finish.
    /// Boxed: only at the end.
    closing: Option<Box<Closing>>,
}

/// A recording whose files are written and closed but still `.part`: it waits to be made
/// durable together with the others closed meanwhile (`durable`), then is renamed and digested.
struct Closing {
    /// The call asked for the close (false: its recorder was dropped).
    requested: bool,
    reply: Option<Reply>,
    /// Frames in the file, or why it cannot be described.
    frames: Result<u64, RecordingError>,
    /// Handles on the closed files, to sync them one by one if the group's sync fails.
    files: Vec<Arc<File>>,
    /// The pcap's final name, once renamed.
    pcap_path: Option<PathBuf>,
}

impl CallWriter {
    pub(crate) fn new(
        spec: RecordingSpec,
        path: PathBuf,
        wav: WavOut,
        packets_rx: PacketReceiver,
        overflow: Arc<AtomicU64>,
        opts: &RecorderOptions,
    ) -> Self {
        let rate = spec.codec.file_rate();
        CallWriter {
            timeline: Timeline::new(
                spec.started,
                rate,
                opts.jitter_window,
                opts.jump_threshold,
                opts.patch_horizon,
            ),
            call_id: spec.call_id,
            path,
            wav: Some(wav),
            payloads: spec.payloads,
            codec: spec.codec,
            rate,
            started: spec.started,
            started_wall: SystemTime::from(spec.started_at),
            pcap: None,
            pcap_wanted: false,
            packets_rx,
            overflow,
            packets: [0; 2],
            follow_clock: false,
            undecoded: 0,
            unflushed_frames: 0,
            last_flush: Instant::now(),
            flush_interval: opts.flush_interval,
            idle_grace: opts.idle_grace,
            error: None,
            failure_signal: None,
            closing: None,
        }
    }

    /// Its files are closed and wait for the durability group (`durable`).
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    /// Where the first failure is told while the call runs.
    pub(crate) fn signal_failure_to(&mut self, tx: tokio::sync::oneshot::Sender<String>) {
        self.failure_signal = Some(tx);
    }

    pub(crate) fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Applies what the call said. Returns true once the recording is closed (then
    /// `is_closing` tells whether it goes on to `durable`).
    pub(crate) fn control(
        &mut self,
        control: Control,
        now: Instant,
        scratch: &mut Scratch,
    ) -> bool {
        match control {
            // Payload map updates come with the SDP, before packets of a new codec: what is
            // queued is placed at the next round, with the new map.
            Control::Payloads(map) => self.payloads = map,
            Control::FollowClock if !self.heard() => {
                self.catch_up(now, &mut scratch.samples);
                self.follow_clock = true;
            }
            Control::FollowClock => {}
            Control::Finish { ended, reply } => {
                self.drain_queue(scratch);
                self.close_files(ended, true, Some(reply), &mut scratch.samples);
                return true;
            }
            Control::Abandoned => {
                tracing::warn!(call_id = %self.call_id, "recording dropped without finish; closing it");
                self.drain_queue(scratch);
                self.close_files(now, false, None, &mut scratch.samples);
                return true;
            }
            #[cfg(test)]
            Control::Crash(done) => {
                // As if the process died: the header is not rewritten, buffers are lost.
                std::mem::forget(self.wav.take());
                std::mem::forget(self.pcap.take());
                let _ = done.send(());
                return true;
            }
        }
        false
    }

    /// One round: take what is queued, write what is final, flush when due.
    pub(crate) fn service(&mut self, now: Instant, scratch: &mut Scratch) {
        self.drain_queue(scratch);
        // Nothing is written before the first packet: a call that never gets one has a
        // recording without samples (`no_media`), not a file of silence as long as the call,
        // written, synced and digested for nothing. The silence before a first packet is
        // written when it comes (`catch_up`), so that audio keeps its place in the call's time.
        if self.heard() {
            self.timeline.observe_clock(now, self.idle_grace);
            self.write_ready(&mut scratch.samples);
        }
        if self.unflushed_frames >= self.rate as u64
            || ((self.unflushed_frames > 0 || self.timeline.patch_count() > 0)
                && now.duration_since(self.last_flush) >= self.flush_interval)
        {
            self.flush(now);
        }
    }

    /// A packet, audio or not, has come from either leg, or the call said time counts
    /// without one (`Control::FollowClock`).
    fn heard(&self) -> bool {
        self.follow_clock || self.packets != [0, 0]
    }

    fn drain_queue(&mut self, scratch: &mut Scratch) {
        let Scratch { samples, batch } = scratch;
        batch.clear();
        self.packets_rx.take_all(batch);
        if let Some(first) = batch.front().filter(|_| !self.heard()) {
            self.catch_up(first.arrival, samples);
        }
        for (n, pkt) in batch.drain(..).enumerate() {
            self.accept(pkt);
            // After a backlog, write as we go so the buffers stay a window long.
            if (n + 1).is_multiple_of(128) {
                self.write_ready(samples);
            }
        }
    }

    /// Writes the silence from the start up to `until` (a first packet's arrival, or the
    /// moment the call asked to follow the clock), less the jitter window, a second at a time:
    /// the call may have gone on long without media (answered on hold), and the silence must
    /// not be held in memory whole.
    fn catch_up(&mut self, until: Instant, samples: &mut Vec<i16>) {
        self.timeline.observe(until);
        let second = self.rate as usize;
        loop {
            samples.clear();
            let n = self.timeline.drain_ready_at_most(samples, second);
            self.write_samples(samples);
            if n < second || self.error.is_some() {
                return;
            }
        }
    }

    fn write_ready(&mut self, samples: &mut Vec<i16>) {
        samples.clear();
        self.timeline.drain_ready(samples);
        self.write_samples(samples);
        // Late audio waits for the header's next rewrite (`flush`), unless a lot has come.
        if self.timeline.patch_count() >= MAX_PENDING_PATCHES {
            self.apply_patches();
        }
    }

    /// Puts late audio where it belongs in frames already written. Putting it there takes
    /// hound's buffer to the file and rewrites the header, then a read and a write per run of
    /// frames: done per round, as late packets came (a loaded machine delays them past the
    /// jitter window in bursts), it took an eighth of the gateway's CPU at 500 calls/s; so
    /// patches wait for the regular flush (`flush_interval`) or the close, and adjacent ones
    /// are written as one. A crash loses the waiting ones, as it loses hound's unflushed buffer.
    fn apply_patches(&mut self) {
        let patches = coalesce(self.timeline.take_patches());
        if patches.is_empty() {
            return;
        }
        let Some(out) = self.wav.as_mut() else {
            return;
        };
        // The patched frames must be in the file, not in the write buffer.
        let res = out.wav.flush().map_err(|e| e.to_string()).and_then(|()| {
            patches
                .iter()
                .try_for_each(|p| patch_channel(&out.sync, p).map_err(|e| e.to_string()))
        });
        if let Err(e) = res {
            self.fail("wav patch", &e);
            self.wav = None;
        }
    }

    fn accept(&mut self, pkt: RecPacket) {
        self.packets[pkt.leg.channel()] += 1;
        let codec = self.payloads.codec(pkt.payload_type);
        match AudioKind::of(codec) {
            Some(kind) => self.timeline.place(&pkt, kind),
            None => {
                self.timeline.observe(pkt.arrival);
                if let Codec::Other(name) = codec {
                    if !self.pcap_wanted {
                        tracing::info!(call_id = %self.call_id, codec = %name, pt = pkt.payload_type,
                            "codec not decodable; keeping raw RTP in a pcap");
                        self.start_pcap();
                    }
                    self.undecoded += 1;
                }
            }
        }
        if let Some(pcap) = self.pcap.as_mut() {
            let at = match pkt.arrival.checked_duration_since(self.started) {
                Some(d) => self.started_wall + d,
                None => self.started_wall - self.started.duration_since(pkt.arrival),
            };
            if let Err(e) = pcap.write(&pkt, at) {
                self.stop_pcap("pcap write", &e);
            }
        }
    }

    fn pcap_path(&self) -> PathBuf {
        self.path.with_extension("pcap")
    }

    fn start_pcap(&mut self) {
        self.pcap_wanted = true;
        let part = part_path(&self.pcap_path());
        let opened = create_file(&part)
            .map_err(|e| e.to_string())
            .and_then(|f| PcapWriter::new(f).map_err(|e| e.to_string()));
        match opened {
            Ok(p) => self.pcap = Some(p),
            Err(e) => self.fail("pcap create", &e),
        }
    }

    fn write_samples(&mut self, samples: &[i16]) {
        if samples.is_empty() {
            return;
        }
        let frames = (samples.len() / 2) as u64;
        if let Some(out) = self.wav.as_mut() {
            if let Err(e) = out.wav.write_samples(samples) {
                self.fail("wav write", &e);
                // Stop writing; close() fixes the header from what reached the file.
                self.wav = None;
                return;
            }
        }
        self.unflushed_frames += frames;
    }

    /// Makes the header describe everything written so far (rewritten in place).
    fn flush(&mut self, now: Instant) {
        if self.timeline.patch_count() > 0 {
            // Flushes and rewrites the header itself.
            self.apply_patches();
        } else if let Some(out) = self.wav.as_mut() {
            if let Err(e) = out.wav.flush() {
                self.fail("wav flush", &e);
            }
        }
        if let Some(pcap) = self.pcap.as_mut() {
            if let Err(e) = pcap.flush() {
                self.stop_pcap("pcap flush", &e);
            }
        }
        self.unflushed_frames = 0;
        self.last_flush = now;
    }

    /// A pcap write failed (disk full): stop writing it. What reached the file is kept; close()
    /// cuts a torn last record.
    fn stop_pcap(&mut self, what: &str, err: &dyn std::fmt::Display) {
        self.fail(what, err);
        self.pcap = None;
    }

    /// Renames the pcap, if one was started: after a write failure with the records that
    /// reached the file whole (a file without even its global header is removed). Returns the
    /// final path, or None when there is no pcap to keep.
    fn rename_pcap(&mut self) -> Option<PathBuf> {
        if !self.pcap_wanted {
            return None;
        }
        let final_pcap = self.pcap_path();
        let part = part_path(&final_pcap);
        if !part.exists() {
            return None;
        }
        if self.error.is_some() {
            if let Err(e) = truncate_to_whole_records(&part) {
                self.fail("pcap repair", &e);
            }
            let len = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
            if len < GLOBAL_HEADER_LEN {
                if let Err(e) = std::fs::remove_file(&part) {
                    self.fail("pcap remove", &e);
                }
                return None;
            }
        }
        match std::fs::rename(&part, &final_pcap) {
            Ok(()) => Some(final_pcap),
            Err(e) => {
                self.fail("pcap rename", &e);
                None
            }
        }
    }

    /// Keeps the first failure as `reason_code: what: error`, the code as at the start of a
    /// recording (`recording_disk_full` or `recording_io_error`), so that a CDR search finds a
    /// disk that filled mid-call like one that was full from the start.
    fn fail(&mut self, what: &str, err: &dyn std::fmt::Display) {
        tracing::error!(call_id = %self.call_id, error = %err, "recording {what} failed");
        if self.error.is_none() {
            let text = err.to_string();
            // The errors come from std (the WAV) and our pcap writer alike; all of them show the OS
            // error number (ENOSPC 28, EDQUOT 122), which is what tells a full disk.
            let code = if text.contains("os error 28") || text.contains("os error 122") {
                RefusalReason::RecordingDiskFull
            } else {
                RefusalReason::RecordingIoError
            };
            let note = format!("{code}: {what}: {text}");
            if let Some(tx) = self.failure_signal.take() {
                // Nobody listens once the call has asked for the close: fine.
                let _ = tx.send(note.clone());
            }
            self.error = Some(note);
        }
    }

    /// Writes the rest up to `ended` and closes the files, which stay `.part`: syncing,
    /// renaming and digesting them is the durability group's (`durable`), for many recordings
    /// at once. `requested` is false when the call dropped its recorder without finishing.
    fn close_files(
        &mut self,
        ended: Instant,
        requested: bool,
        reply: Option<Reply>,
        samples: &mut Vec<i16>,
    ) {
        // Disconnect the taps now, so packets pushed after this are refused, not queued.
        self.packets_rx.close();
        samples.clear();
        if self.heard() {
            self.timeline.drain_all(ended, samples);
            self.write_samples(samples);
            self.apply_patches();
        }
        let mut files = Vec::new();
        if let Some(WavOut { wav, sync, .. }) = self.wav.take() {
            if let Err(e) = wav.finalize() {
                self.fail("wav finalize", &e);
            }
            files.push(sync);
        }
        if let Some(pcap) = self.pcap.take() {
            match pcap.close() {
                Ok(file) => files.push(Arc::new(file)),
                Err(e) => self.fail("pcap close", &e),
            }
        }
        let frames = if self.error.is_none() {
            Ok(self.timeline.written())
        } else {
            // After a failure the header must match the bytes that did reach the file.
            fix_wav_header(&part_path(&self.path)).map(|facts| facts.frames)
        };
        self.closing = Some(Box::new(Closing {
            requested,
            reply,
            frames,
            files,
            pcap_path: None,
        }));
    }

    /// Syncs this recording's files one by one: only when the group's sync failed.
    pub(crate) fn sync_files(&mut self) {
        let Some(closing) = self.closing.as_mut() else {
            return;
        };
        let failed: Vec<std::io::Error> = closing
            .files
            .iter()
            .filter_map(|f| f.sync_all().err())
            .collect();
        for e in failed {
            self.fail("wav sync", &e);
        }
    }

    /// Gives the files their final names (their content is durable by now). Returns the folder
    /// the names are in, to be synced in its turn.
    pub(crate) fn rename_files(&mut self) -> Option<PathBuf> {
        let renamed = match self.closing.as_ref().map(|c| &c.frames) {
            Some(Ok(_)) => std::fs::rename(part_path(&self.path), &self.path)
                .map_err(|e| RecordingError::io(&self.path, e)),
            _ => return None,
        };
        let pcap_path = self.rename_pcap();
        let closing = self.closing.as_mut()?;
        closing.files.clear();
        closing.pcap_path = pcap_path;
        if let Err(e) = renamed {
            closing.frames = Err(e);
        }
        self.path.parent().map(Path::to_path_buf)
    }

    /// The folder's sync failed after the rename: a power loss could lose the new names.
    pub(crate) fn names_not_synced(&mut self, err: &std::io::Error) {
        self.fail("directory sync", err);
    }

    /// Digests the files and hands the result to the call (or logs it when nobody waits).
    pub(crate) fn deliver(mut self) {
        let Some(closing) = self.closing.take().map(|c| *c) else {
            return;
        };
        let result = closing
            .frames
            .and_then(|frames| self.result(frames, closing.requested, closing.pcap_path));
        match result {
            Ok(r) => {
                if r.is_complete() {
                    tracing::debug!(call_id = %self.call_id, path = %self.path.display(),
                        duration_ms = r.duration_ms, patched = r.patched_packets,
                        "recording closed");
                } else {
                    tracing::warn!(call_id = %self.call_id, path = %self.path.display(),
                        duration_ms = r.duration_ms, requested = closing.requested,
                        overflowed = r.overflowed_packets, late = r.late_packets,
                        patched = r.patched_packets, error = r.error.as_deref().unwrap_or(""),
                        "recording closed incomplete");
                }
                if let Some(reply) = closing.reply {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) => {
                tracing::error!(call_id = %self.call_id, error = %e, "recording could not be closed");
                if let Some(reply) = closing.reply {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }

    fn result(
        &self,
        frames: u64,
        requested: bool,
        pcap_path: Option<PathBuf>,
    ) -> Result<RecordingResult, RecordingError> {
        let size_bytes = std::fs::metadata(&self.path)
            .map_err(|e| RecordingError::io(&self.path, e))?
            .len();
        let sha256_hex = sha256_file(&self.path)?;
        let pcap_sha256_hex = pcap_path.as_deref().map(sha256_file).transpose()?;
        let overflowed_packets = self.overflow.load(Ordering::Relaxed);
        Ok(RecordingResult {
            call_id: self.call_id.clone(),
            path: self.path.clone(),
            pcap_path,
            codec: self.codec.clone(),
            sample_rate: self.rate,
            duration_ms: frames * 1000 / self.rate as u64,
            size_bytes,
            sha256_hex,
            pcap_sha256_hex,
            complete: requested && overflowed_packets == 0 && self.error.is_none(),
            packets: self.packets,
            overflowed_packets,
            late_packets: self.timeline.stats.late_packets,
            patched_packets: self.timeline.stats.patched_packets,
            undecoded_packets: self.undecoded,
            reanchors: self.timeline.stats.reanchors,
            error: self.error.clone(),
        })
    }
}
