//! The call's recording: the folder's health verdict read before anything is sent to the B side
//! (so that a recording that cannot start can still refuse the call), the file opened and fed
//! by the media relay's tap from the answer (or from the first 18x with SDP, when
//! `record_early_media`), `[recording] on_failure` applied when it fails after that, closed
//! after the media, and described on the CDR as evidence.

use std::time::Instant;

use rsip::headers::UntypedHeader;

use crate::config::OnRecordingFailureInCall;
use crate::media::sdp::PayloadInfo;
use crate::media::{TapOffer, TapPacket, TapSender, TapSink};
use crate::model::{Cdr, EndReason, Ending};
use crate::model::{RecordingInfo, RecordingStatus};
use crate::recording::{
    Codec, Leg, PayloadMap, RecPacket, Recorder, RecorderTap, RecordingError, RecordingPool,
    RecordingResult, RecordingSpec,
};

use super::Call;

/// How calls are recorded.
#[derive(Debug, Clone)]
pub struct RecordingSettings {
    pub pool: RecordingPool,
    /// Refuse a call whose recording cannot be started.
    pub required: bool,
    /// Record before the answer too (183 with early media).
    pub early_media: bool,
    /// A recording that fails once recorded media started: go on unrecorded, or hang up.
    pub on_failure: OnRecordingFailureInCall,
    /// A PCI pause left open resumes by itself after this (`[recording] max_pause_secs`).
    pub max_pause: std::time::Duration,
}

/// The relay's tap, emptied straight into the recorder's queue (no task in between).
struct RecorderSink(RecorderTap);

impl TapSink for RecorderSink {
    fn has_room(&self) -> bool {
        true
    }

    fn offer(&self, p: TapPacket) -> TapOffer {
        let leg = match p.leg {
            crate::media::Leg::Inside => Leg::Inside,
            crate::media::Leg::Outside => Leg::Outside,
        };
        let payload = p.data.slice_ref(p.payload());
        let pkt = RecPacket {
            leg,
            arrival: p.at,
            payload_type: p.header.payload_type,
            marker: p.header.marker,
            sequence: p.header.sequence,
            timestamp: p.header.timestamp,
            ssrc: p.header.ssrc,
            payload,
        };
        if self.0.push(pkt) {
            TapOffer::Taken
        } else {
            TapOffer::Full
        }
    }
}

/// The payload map of an SDP's audio stream, and the codec it prefers (its first format).
pub(crate) fn payloads_of(payloads: &[PayloadInfo]) -> (PayloadMap, Codec) {
    let mut map = PayloadMap::new();
    for p in payloads.iter().filter(|p| !p.encoding.is_empty()) {
        // Only the encoding name picks the codec (`Codec::from_rtpmap` reads up to the '/').
        map = map.with_rtpmap(p.pt, &p.encoding);
    }
    let codec = payloads
        .iter()
        .find(|p| !p.is_telephone_event())
        .map(|p| map.codec(p.pt).clone())
        .unwrap_or(Codec::Pcmu);
    (map, codec)
}

impl Call {
    /// At admission, before anything is sent to the B side: can this call be recorded? The
    /// folder's health watcher answers (its last verdict: no I/O, so calls admitted together
    /// never race each other); the file is opened when recorded media can start (the answer,
    /// or the first early media with `record_early_media`), so that it begins with the audio,
    /// not with the ringing before it. An error is returned only when the call must be refused
    /// for it; otherwise the failure is kept for the CDR and the call goes on unrecorded.
    pub(super) fn prepare_recording(&mut self) -> Result<(), RecordingError> {
        let Some(settings) = self.ctx.settings.recording.as_ref() else {
            return Ok(());
        };
        let Err(problem) = settings.pool.disk().verdict() else {
            return Ok(());
        };
        let e = RecordingError::DiskUnusable(problem);
        // Counted per call that meets it (the watcher's own rounds are not counted).
        settings.pool.counters().failed(&e);
        if settings.required {
            return Err(e);
        }
        tracing::warn!(error = %e, "recording cannot start; call goes on unrecorded");
        self.recording_failure = Some(format!("{}: {e}", e.reason()));
        Ok(())
    }

    /// B sent a provisional response with SDP: early media may flow from now on. With
    /// `record_early_media` the recording starts now.
    pub(super) fn early_media_offered(&mut self) {
        let early = self
            .ctx
            .settings
            .recording
            .as_ref()
            .is_some_and(|s| s.early_media);
        if early {
            self.arm_recording();
        }
    }

    /// Recorded media starts now (the answer, or early media when it is recorded): tap the
    /// relay into the recording's queue at once, so that no packet of the first milliseconds
    /// is missed, and have the run loop open the file (on a recording worker, off this task).
    pub(super) fn arm_recording(&mut self) {
        if self.recorder.is_some()
            || self.pending_recording.is_some()
            || self.recording_failure.is_some()
            || self.phase == super::Phase::Ended
        {
            return;
        }
        let Some(settings) = self.ctx.settings.recording.as_ref() else {
            return;
        };
        let (map, codec) = payloads_of(&self.payloads);
        let spec = RecordingSpec::new(self.attempt.id.clone(), map, codec);
        self.pauses.recording_armed(spec.started);
        let pending = Recorder::prepare(&settings.pool, spec);
        if let Some(media) = &self.media {
            media.set_tap(Some(TapSender::new(RecorderSink(pending.tap()))));
            self.tapping = true;
        }
        self.pending_recording = Some(Box::new(pending));
        self.recording_due = true;
    }

    /// Opens the file of the recording armed at the answer (or early media). A failure here
    /// (the disk filled since admission, no descriptor left) cannot refuse a call already under
    /// way: the CDR says why there is no recording, and `on_failure` decides whether the call
    /// goes on.
    pub(super) async fn start_recording_when_due(&mut self) {
        let Some(pending) = self.pending_recording.take() else {
            return;
        };
        let Some(settings) = self.ctx.settings.recording.clone() else {
            return;
        };
        match (*pending).open(&settings.pool).await {
            Ok(rec) => {
                self.recorder = Some(rec);
                self.journal();
            }
            Err(e) => {
                tracing::error!(error = %e, "recording could not start");
                self.recording_failure = Some(format!("{}: {e}", e.reason()));
                if let Some(media) = &self.media {
                    media.set_tap(None);
                }
                self.tapping = false;
                self.recording_lost(settings.on_failure);
            }
        }
    }

    /// The recorder failed to write mid-call (its worker told us): the recording is cut short
    /// (the CDR will say so from the recorder's result); `on_failure` decides the rest.
    pub(super) fn on_recording_failure(&mut self, note: String) {
        let Some(on_failure) = self.ctx.settings.recording.as_ref().map(|s| s.on_failure) else {
            return;
        };
        tracing::warn!(note = %note, "recording failed mid-call");
        self.recording_lost(on_failure);
    }

    /// A recording failed after recorded media started: never silent. Counted (`/metrics`),
    /// logged, and with `on_failure = "hangup"` the call is ended (BYE both legs once
    /// answered; 503 to A and CANCEL to B with recorded early media).
    fn recording_lost(&mut self, on_failure: OnRecordingFailureInCall) {
        if self.phase == super::Phase::Ended {
            return;
        }
        let hang_up = on_failure == OnRecordingFailureInCall::Hangup;
        if let Some(s) = &self.ctx.settings.recording {
            s.pool.counters().failed_in_call(hang_up);
        }
        tracing::warn!(
            on_failure = on_failure.as_str(),
            "the call's recording failed after recorded media started"
        );
        if hang_up {
            self.hangup(EndReason::RecordingFailed);
        }
    }

    /// The recording cannot start and `[recording] required` is set: 503 to A, nothing sent
    /// to B, a refused CDR with the reason.
    pub(super) fn refuse_unrecordable(&mut self, e: RecordingError) {
        tracing::error!(error = %e, "recording could not start: call refused");
        let reason = e.reason();
        let line = reason.status_line();
        let mut out =
            super::message_response(&self.a_tx, line.code, line.phrase, &self.a.local_tag);
        if let Some(secs) = reason.retry_after_secs(self.ctx.settings.retry_after_secs) {
            out.headers
                .push(rsip::Header::RetryAfter(rsip::headers::RetryAfter::new(
                    secs.to_string(),
                )));
        }
        self.a_tx.respond(out);
        self.a_final_sent = true;
        self.b_final_seen = true;
        self.end(Ending::refused(reason));
    }

    /// The negotiated payloads changed (answer, re-INVITE): tell the recorder.
    pub(super) fn update_recording_payloads(&mut self, payloads: Vec<PayloadInfo>) {
        if let Some(rec) = &self.recorder {
            rec.update_payloads(payloads_of(&payloads).0);
        }
        self.payloads = payloads;
    }

    /// Close the recording (after the media, so no packet is still on its way) and describe
    /// it on the CDR. A call that never carried recorded audio keeps no file.
    pub(super) async fn finish_recording(&mut self, cdr: &mut Cdr) {
        if let Some(note) = self.recording_failure.take() {
            cdr.recording = Some(RecordingInfo::failed(note));
        }
        let Some(rec) = self.recorder.take() else {
            return;
        };
        let had_audio = self.tapping;
        let ended = Instant::now();
        let pauses = self.pauses.finish(ended);
        match rec.finish(ended).await {
            Ok(result) if had_audio => {
                let root = self.ctx.settings.recording.as_ref().map(|s| s.pool.root());
                cdr.recording = Some(info_of(&result, root, self.paused_packets, &pauses));
                cdr.recording_pauses = pauses;
            }
            Ok(result) => discard(result).await,
            Err(e) => {
                tracing::error!(error = %e, "recording could not be closed");
                cdr.recording = Some(RecordingInfo::failed(format!("{}: {e}", e.reason())));
            }
        }
    }
}

/// The recorder's first mid-call failure; pending without a recorder (or once told).
pub(super) async fn next_failure(recorder: &mut Option<Recorder>) -> String {
    match recorder {
        Some(r) => r.failure().await,
        None => std::future::pending().await,
    }
}

/// The CDR's recording; its files stored relative to the recordings folder `root` (any node of
/// a cluster finds them wherever it mounts a shared folder).
///
/// `paused`: RTP per leg that crossed the trunk while the recording was paused (never given to
/// the recorder): a leg silent in the file only because of a pause is not `one_way` or
/// `no_media` — its audio was withheld on purpose, and `pauses` says where.
fn info_of(
    r: &RecordingResult,
    root: Option<&std::path::Path>,
    paused: [u64; 2],
    pauses: &[crate::model::RecordingPause],
) -> RecordingInfo {
    let stored = |p: &std::path::Path| match root {
        Some(root) => crate::recording::paths::to_stored(root, p),
        None => p.display().to_string(),
    };
    let mut notes = Vec::new();
    if r.overflowed_packets > 0 {
        notes.push(format!(
            "{} packets lost to a full recorder queue",
            r.overflowed_packets
        ));
    }
    if let Some(e) = &r.error {
        notes.push(format!("write failed: {e}"));
    }
    if r.late_packets > 0 {
        notes.push(format!(
            "{} packets arrived too late to be placed ({} re-anchors)",
            r.late_packets, r.reanchors
        ));
    }
    if r.patched_packets > 0 {
        // Complete, but say so: this audio was written into its place after the fact.
        notes.push(format!(
            "{} late packets put in their place after it was written",
            r.patched_packets
        ));
    }
    if r.undecoded_packets > 0 {
        notes.push(format!(
            "{} packets of an undecodable codec kept in the pcap",
            r.undecoded_packets
        ));
    }
    if !pauses.is_empty() {
        let paused_ms: i64 = pauses.iter().map(|p| p.end_ms - p.start_ms).sum();
        notes.push(format!(
            "paused {} time(s), {paused_ms} ms of silence in all (PCI)",
            pauses.len()
        ));
    }
    let heard = [r.packets[0] + paused[0], r.packets[1] + paused[1]];
    RecordingInfo {
        // Audio that crossed the trunk but is not in the file makes the recording incomplete;
        // a whole file is `complete` only with audio from both legs (withheld by a pause
        // counts: it crossed the trunk).
        status: if r.is_complete() {
            RecordingStatus::of_closed(heard)
        } else {
            RecordingStatus::Incomplete
        },
        path: Some(stored(&r.path)),
        pcap_path: r.pcap_path.as_deref().map(stored),
        sha256: Some(r.sha256_hex.clone()),
        pcap_sha256: r.pcap_sha256_hex.clone(),
        duration_ms: i64::try_from(r.duration_ms).unwrap_or(i64::MAX),
        size_bytes: i64::try_from(r.size_bytes).unwrap_or(i64::MAX),
        codec: Some(r.codec.name().to_string()),
        overflowed_packets: r.overflowed_packets,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

/// An unanswered call's empty recording: removed off the runtime.
async fn discard(result: RecordingResult) {
    let paths: Vec<_> = std::iter::once(result.path)
        .chain(result.pcap_path)
        .collect();
    let _ = tokio::task::spawn_blocking(move || {
        for p in paths {
            if let Err(e) = std::fs::remove_file(&p) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove an empty recording");
            }
        }
    })
    .await;
}
