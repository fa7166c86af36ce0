//! Recordings started, closed (by the status the CDR gets), failed by reason code, and bytes written, since
//! start: the recording part of `/metrics`. Counted by the recording part itself (open, finish)
//! and, for a folder the health watcher finds unusable, by each call that wanted a recording.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::error::RecordingError;
use super::writer::RecordingResult;
use crate::model::{RecordingStatus, RefusalReason};

/// One per recording pool (one per gateway); shared by its recorders.
#[derive(Debug, Default)]
pub struct RecordingCounters {
    started: AtomicU64,
    complete: AtomicU64,
    one_way: AtomicU64,
    no_media: AtomicU64,
    incomplete: AtomicU64,
    bytes: AtomicU64,
    /// Answered calls whose recording failed (open at the answer, or a write mid-call): went on
    /// unrecorded, hung up.
    in_call: [AtomicU64; 2],
    /// By reason code (`recording_disk_full`…). Failures are rare: a lock is fine here.
    failed: Mutex<BTreeMap<String, u64>>,
}

/// The counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingTotals {
    /// Files opened.
    pub started: u64,
    /// Closed with every packet in place and audio from both legs.
    pub complete: u64,
    /// Closed with every packet in place, but packets from one leg only.
    pub one_way: u64,
    /// Closed with no packet from either leg: all silence.
    pub no_media: u64,
    /// Closed, with audio missing (queue overflow, late packets, a write error).
    pub incomplete: u64,
    /// Size of the closed WAV files.
    pub bytes: u64,
    /// Failures by reason code, sorted: to start (disk verdict at admission, open), to close,
    /// to write.
    pub failed: Vec<(String, u64)>,
    /// Calls whose recording failed after recorded media started, by what the call did
    /// (`[recording] on_failure`): went on unrecorded, hung up.
    pub failed_in_call: [u64; 2],
}

impl RecordingCounters {
    pub(crate) fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// A recording could not start or be closed.
    pub fn failed(&self, e: &RecordingError) {
        self.failed_with(e.reason().as_str());
    }

    /// A call's recording failed after recorded media started; `hung_up` per `on_failure`.
    pub fn failed_in_call(&self, hung_up: bool) {
        self.in_call[usize::from(hung_up)].fetch_add(1, Ordering::Relaxed);
    }

    fn failed_with(&self, reason: &str) {
        let mut failed = self.failed.lock();
        *failed.entry(reason.to_string()).or_insert(0) += 1;
    }

    /// A recording closed: its status (as the CDR gets it), its size, and the write error it
    /// met, if any (its text starts with the reason code, as `session` writes it).
    pub(crate) fn finished(&self, r: &RecordingResult) {
        let which = if !r.is_complete() {
            &self.incomplete
        } else {
            match RecordingStatus::of_closed(r.packets) {
                RecordingStatus::OneWay => &self.one_way,
                RecordingStatus::NoMedia => &self.no_media,
                _ => &self.complete,
            }
        };
        which.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(r.size_bytes, Ordering::Relaxed);
        if let Some(error) = &r.error {
            let code = error
                .split(':')
                .next()
                .and_then(|c| c.parse::<RefusalReason>().ok())
                .unwrap_or(RefusalReason::RecordingIoError);
            self.failed_with(code.as_str());
        }
    }

    /// Counts a finish's outcome and passes it on.
    pub(crate) fn closed(
        &self,
        r: Result<RecordingResult, RecordingError>,
    ) -> Result<RecordingResult, RecordingError> {
        match &r {
            Ok(result) => self.finished(result),
            Err(e) => self.failed(e),
        }
        r
    }

    pub fn totals(&self) -> RecordingTotals {
        let failed = self.failed.lock();
        RecordingTotals {
            started: self.started.load(Ordering::Relaxed),
            complete: self.complete.load(Ordering::Relaxed),
            one_way: self.one_way.load(Ordering::Relaxed),
            no_media: self.no_media.load(Ordering::Relaxed),
            incomplete: self.incomplete.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            failed: failed.iter().map(|(k, n)| (k.clone(), *n)).collect(),
            failed_in_call: self.in_call.each_ref().map(|n| n.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::recording::Codec;

    fn result(complete: bool, late: u64, size: u64, error: Option<&str>) -> RecordingResult {
        with_packets([50, 50], complete, late, size, error)
    }

    fn with_packets(
        packets: [u64; 2],
        complete: bool,
        late: u64,
        size: u64,
        error: Option<&str>,
    ) -> RecordingResult {
        RecordingResult {
            call_id: "c".into(),
            path: PathBuf::from("/r/c.wav"),
            pcap_path: None,
            codec: Codec::Pcmu,
            sample_rate: 8000,
            duration_ms: 1000,
            size_bytes: size,
            sha256_hex: String::new(),
            pcap_sha256_hex: None,
            complete,
            packets,
            overflowed_packets: 0,
            late_packets: late,
            patched_packets: 0,
            undecoded_packets: 0,
            reanchors: 0,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn closes_and_failures_by_reason() {
        let c = RecordingCounters::default();
        c.started();
        c.started();
        let _ = c.closed(Ok(result(true, 0, 1000, None)));
        let _ = c.closed(Ok(result(true, 2, 500, None)));
        let _ = c.closed(Ok(result(
            false,
            0,
            44,
            Some("recording_disk_full: write: No space left on device (os error 28)"),
        )));
        let _ = c.closed(Err(RecordingError::WorkerGone));
        let _ = c.closed(Ok(with_packets([50, 0], true, 0, 10, None)));
        let _ = c.closed(Ok(with_packets([0, 0], true, 0, 10, None)));
        let _ = c.closed(Ok(with_packets([0, 7], true, 0, 10, None)));
        c.failed(&RecordingError::InvalidCallId("../x".into()));
        let t = c.totals();
        assert_eq!(t.started, 2);
        assert_eq!(t.complete, 1);
        assert_eq!(t.incomplete, 2, "late packets or a write error: incomplete");
        assert_eq!(
            (t.one_way, t.no_media),
            (2, 1),
            "whole files by the legs heard"
        );
        assert_eq!(t.bytes, 1574);
        assert_eq!(
            t.failed,
            vec![
                ("recording_bad_call_id".to_string(), 1),
                ("recording_disk_full".to_string(), 1),
                ("recording_unavailable".to_string(), 1),
            ]
        );
    }
}
